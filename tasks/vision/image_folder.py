"""Image-folder datasets: ROOT/<split>/<class>/*.{jpg,jpeg,png}, from a folder or a zip of one."""

import hashlib
import os

import numpy as np
from absl import logging

from tlbkit import checks, data, registry
from tlbkit.data import DataSpec
from tlbkit_tasks.common import sources
from tlbkit_tasks.vision.augment import make_batch_mix, make_maps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


class BadImageError(ValueError):
    """A file in an image folder cannot be decoded."""


def is_image(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def find_split_root(root, split):
    """ROOT/<split>, also when the folder holds one top folder (cifar10/train/...)."""
    direct = os.path.join(root, split)
    if os.path.isdir(direct):
        return direct
    subdirs = [d for d in sorted(os.listdir(root)) if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")]
    for d in subdirs:
        if os.path.isdir(os.path.join(root, d, split)):
            return os.path.join(root, d, split)
    raise FileNotFoundError(f"no '{split}' folder under {root!r} (expected ROOT/{split}/<class>/*.jpg).")


def list_images(split_root, class_names=None):
    """(paths, labels, class_names) of `split_root/<class>/*.jpg`.

    Without `class_names` the classes are the sorted sub-folders; with them, the sub-folders must be
    among them and label ids follow their order. An empty class folder is an error.
    """
    folders = sorted(d for d in os.listdir(split_root) if os.path.isdir(os.path.join(split_root, d))
                     and not d.startswith("."))
    if not folders:
        raise ValueError(f"{split_root!r} has no class folders (expected {split_root}/<class>/*.jpg).")
    if class_names is None:
        class_names = folders
    index = sources.class_index(class_names, folders, split_root)
    paths, labels = [], []
    for name in folders:
        files = sorted(f for f in os.listdir(os.path.join(split_root, name)) if is_image(f))
        if not files:
            raise ValueError(f"class folder {os.path.join(split_root, name)!r} holds no image: remove it or add images.")
        paths += [os.path.join(split_root, name, f) for f in files]
        labels += [index[name]] * len(files)
    return paths, np.array(labels, "int32"), list(class_names)


def load_image(path, size):
    """Decodes one file to (size, size, 3) uint8; raises BadImageError naming the file."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype="uint8")
    except Exception as e:  # PIL raises several types for bad files
        raise BadImageError(f"cannot decode image {path!r}: {e}. Remove the file or pass skip_corrupt=True.") from e


def read_image_files(paths, size):
    """(N, size, size, 3) uint8 images of user files (tlbkit-predict)."""
    return np.stack([load_image(p, size) for p in paths])


def load_images(paths, labels, size, skip_corrupt, cache=True, workers=1):
    """Decodes all files into one uint8 array, cached in `$TLBKIT_CACHE/decoded` (keyed by files and size).

    `workers` > 1 decodes in that many threads (PIL releases the GIL while decoding); the result is the same.
    """
    key = hashlib.sha1(("\n".join(paths) + f"|{size}|{skip_corrupt}").encode()).hexdigest()[:16]
    path = data.cache_root("decoded", f"images-{key}.npz") if cache else None
    if path and os.path.exists(path):
        with np.load(path) as z:
            return z["images"], z["labels"], int(z["skipped"])
    print(f"tlbkit: decoding {len(paths)} images (once; cached in {os.path.dirname(path)})" if path else
          f"tlbkit: decoding {len(paths)} images", flush=True)

    def decode(file):
        try:
            return load_image(file, size)
        except BadImageError as e:
            if not skip_corrupt:
                raise
            return e

    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            decoded = list(pool.map(decode, paths, chunksize=256))
    else:
        decoded = map(decode, paths)
    images, kept, skipped = [], [], 0
    for result, label in zip(decoded, labels):
        if isinstance(result, BadImageError):
            skipped += 1
            logging.warning("skipping %s", result)
        else:
            images.append(result)
            kept.append(label)
    if skipped:
        print(f"tlbkit: skipped {skipped} unreadable image file(s).")
    images, kept = np.stack(images), np.array(kept, "int32")
    if path:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + ".tmp.npz"
            np.savez(tmp, images=images, labels=kept, skipped=skipped)
            os.replace(tmp, path)
        except OSError:
            pass  # read-only cache: decode again next time
    return images, kept, skipped


def holdout(n, validation_count, validation_fraction, seed):
    """(train_index, validation_index) in a seeded random order; the last part is held out."""
    if validation_fraction is not None:
        if not 0 <= validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1). Received: {validation_fraction}")
        validation_count = int(round(n * validation_fraction))
    if not 0 <= validation_count < n:
        raise ValueError(f"validation_count={validation_count} must be smaller than the {n} training images.")
    # Folder listings are grouped by class: keep the shuffled order, or a shuffle buffer smaller than
    # the dataset would feed batches of one class at a time.
    order = np.random.default_rng(seed).permutation(n)
    return order[: n - validation_count], order[n - validation_count :]


def image_source_reader(load_size, skip_corrupt=False):
    """`read_source(source, class_names, split)` for image tasks (see `DataSpec.read_source`).

    `source` is `tfds:name[:split]`, or a folder or zip holding `<class>/*.jpg` (directly, under
    `<split>/`, or under one top folder).
    """

    def read_source(source, class_names, split="test"):
        import tensorflow as tf

        if sources.is_tfds(source):
            return sources.tfds_source(source, class_names, split)
        root = sources.labelled_root(source, class_names, split, "--data")
        paths, labels, _ = list_images(root, class_names)
        images, labels, _ = load_images(paths, labels, load_size, skip_corrupt, cache=False)
        return tf.data.Dataset.from_tensor_slices((images, labels))

    return read_source


@registry.DATASETS.register("image_folder")
def image_folder(path=None, train_split="train", test_split=None, load_size=32, image_size=32,
                 validation_count=10_000, validation_fraction=None, augment="keras_io", resize_margin=20,
                 skip_corrupt=False, max_examples=None, mixup_alpha=0.0, cutmix_factor=0.0, seed=0):
    """Classification images from ROOT/<split>/<class>/*.{jpg,png} (class = sub-folder name).

    `path` is a folder or a zip of one (extracted once into `$TLBKIT_CACHE`), named relative to the data
    folder (`--data_dir`) or absolute. A seeded permutation of the training folder is split into train
    and the last `validation_count` images (validation); `test_split` names an optional separate test
    folder. Images are decoded once (resized to `load_size`) and cached as uint8; nothing is read until
    training asks for the data, so predicting with a trained run needs no image folder.

    Args:
        path: str. Folder holding `<train_split>/` (or one sub-folder that does), or a zip of it.
        train_split: str. Training sub-folder. Defaults to `"train"`.
        test_split: str or None. Test sub-folder.
        load_size: int. Images are decoded (and resized if needed) to this side.
        image_size: int. Model input side (after augmentation / resizing).
        validation_count: int. Images held out from the training folder.
        validation_fraction: float or None. Overrides `validation_count`.
        augment: str. `"none"`, `"flip"`, `"crop_flip"`, `"keras_io"` or `"strong"` (see augment.py).
        resize_margin: int. Margin of the random crop (`"keras_io"`: resize up by it; `"crop_flip"`: pad by half).
        skip_corrupt: bool. Skip (and count) undecodable files instead of failing.
        max_examples: int or None. Use only N files of a seeded shuffle (quick runs).
        mixup_alpha: float. MixUp on training batches (0 = off).
        cutmix_factor: float. CutMix on training batches (0 = off).
        seed: int. Split and augmentation seed.
    """
    import tensorflow as tf

    if path is None:
        raise ValueError("datasets.image_folder needs `path`: a folder of <split>/<class>/*.jpg, or a zip of one.")
    checks.positive_int("load_size", load_size)
    checks.positive_int("image_size", image_size)
    train_map, eval_map = make_maps(image_size, augment, resize_margin=resize_margin, seed=seed)

    def loader():
        root = data.folder_or_zip(path, "datasets.image_folder.path")
        paths, labels, classes = list_images(find_split_root(root, train_split))
        if max_examples is not None and max_examples < len(paths):
            pick = np.sort(np.random.default_rng(seed + 7).permutation(len(paths))[:max_examples])
            paths, labels = [paths[i] for i in pick], labels[pick]
        images, labels, _ = load_images(paths, labels, load_size, skip_corrupt)
        train_idx, val_idx = holdout(len(images), validation_count, validation_fraction, seed)
        test = None
        if test_split is not None:
            test_paths, test_labels, _ = list_images(find_split_root(root, test_split), classes)
            test_images, test_labels, _ = load_images(test_paths, test_labels, load_size, skip_corrupt)
            test = tf.data.Dataset.from_tensor_slices((test_images, test_labels))

        def split(idx):
            return tf.data.Dataset.from_tensor_slices((images[idx], labels[idx])) if len(idx) else None

        return {"train": split(train_idx), "validation": split(val_idx), "test": test, "class_names": classes,
                "num_train_examples": len(train_idx),
                "batch_map": make_batch_mix(len(classes), mixup_alpha, cutmix_factor, seed),
                "validation_note": f"{len(val_idx)} images held out of {train_split}/ (seeded shuffle, seed {seed})"}

    return DataSpec(loader=loader, train_map=train_map, eval_map=eval_map,
                    read_inputs=lambda files: read_image_files(files, load_size),
                    read_source=image_source_reader(load_size, skip_corrupt))
