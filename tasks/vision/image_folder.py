"""Image-folder datasets: ROOT/<split>/<class>/*.{jpg,jpeg,png}, optionally extracted from a zip."""

import hashlib
import os
import zipfile

import numpy as np
from absl import logging

from tlbkit import registry
from tlbkit.data import DataSpec
from tlbkit_tasks.vision.augment import make_batch_mix, make_maps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


class BadImageError(ValueError):
    """A file in an image folder cannot be decoded."""


def extract_zip(zip_path, extract_dir=None):
    """Extracts `zip_path` once into a cache folder; returns that folder."""
    if not os.path.exists(zip_path):
        raise FileNotFoundError(f"zip file {zip_path!r} not found.")
    if extract_dir is None:
        base = os.environ.get("TLBKIT_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "tlbkit"))
        extract_dir = os.path.join(base, os.path.splitext(os.path.basename(zip_path))[0])
    marker = os.path.join(extract_dir, ".extracted")
    if not os.path.exists(marker):
        logging.info("extracting %s to %s", zip_path, extract_dir)
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(extract_dir)
        open(marker, "w").close()
    return extract_dir


def find_split_root(root, split):
    """ROOT/<split>, also when the zip holds one top folder (cifar10/train/...)."""
    direct = os.path.join(root, split)
    if os.path.isdir(direct):
        return direct
    subdirs = [d for d in sorted(os.listdir(root)) if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")]
    for d in subdirs:
        if os.path.isdir(os.path.join(root, d, split)):
            return os.path.join(root, d, split)
    raise FileNotFoundError(f"no '{split}' folder under {root!r} (expected ROOT/{split}/<class>/*.jpg).")


def list_images(split_root):
    """(paths, labels, class_names), classes = sorted sub-folders; empty classes are an error."""
    classes = sorted(d for d in os.listdir(split_root) if os.path.isdir(os.path.join(split_root, d)))
    if not classes:
        raise ValueError(f"{split_root!r} has no class folders (expected {split_root}/<class>/*.jpg).")
    paths, labels = [], []
    for i, name in enumerate(classes):
        files = sorted(f for f in os.listdir(os.path.join(split_root, name)) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise ValueError(f"class folder {os.path.join(split_root, name)!r} holds no image: remove it or add images.")
        paths += [os.path.join(split_root, name, f) for f in files]
        labels += [i] * len(files)
    return paths, np.array(labels, "int32"), classes


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


def load_images(paths, labels, size, skip_corrupt, cache_dir=None):
    """Decodes all files into one uint8 array (cached as .npy next to the data when possible)."""
    key = hashlib.sha1(("\n".join(paths) + f"|{size}|{skip_corrupt}").encode()).hexdigest()[:16]
    cache = os.path.join(cache_dir, f".decoded-{key}.npz") if cache_dir else None
    if cache and os.path.exists(cache):
        with np.load(cache) as z:
            return z["images"], z["labels"], int(z["skipped"])
    images, kept, skipped = [], [], 0
    for path, label in zip(paths, labels):
        try:
            images.append(load_image(path, size))
            kept.append(label)
        except BadImageError as e:
            if not skip_corrupt:
                raise
            skipped += 1
            logging.warning("skipping %s", e)
    if skipped:
        print(f"tlbkit: skipped {skipped} unreadable image file(s).")
    images, kept = np.stack(images), np.array(kept, "int32")
    if cache:
        try:
            tmp = cache + ".tmp.npz"
            np.savez(tmp, images=images, labels=kept, skipped=skipped)
            os.replace(tmp, cache)
        except OSError:
            pass  # read-only data folder: no cache
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


@registry.DATASETS.register("image_folder")
def image_folder(root=None, zip_path=None, extract_dir=None, train_split="train", test_split=None, load_size=32,
                 image_size=32, validation_count=10_000, validation_fraction=None, augment="seed",
                 resize_margin=20, skip_corrupt=False, max_examples=None, mixup_alpha=0.0, cutmix_factor=0.0,
                 seed=0):
    """Classification images from ROOT/<split>/<class>/*.{jpg,png} (class = sub-folder name).

    The shared CIFAR-10 zip is such a folder once extracted (`zip_path=`). A
    seeded permutation of the training folder is split into train and the
    last `validation_count` images (validation); `test_split` names an
    optional separate test folder.

    Args:
        root: str. Folder holding `<train_split>/` (or one sub-folder that does).
        zip_path: str. A zip to extract (once, into `extract_dir` or
            `~/.cache/tlbkit/`) and use as `root`.
        extract_dir: str. Where to extract `zip_path`.
        train_split: str. Training sub-folder. Defaults to `"train"`.
        test_split: str or None. Test sub-folder.
        load_size: int. Images are decoded (and resized if needed) to this side.
        image_size: int. Model input side (after augmentation / resizing).
        validation_count: int. Images held out from the training folder.
        validation_fraction: float or None. Overrides `validation_count`.
        augment: str. `"none"`, `"seed"` or `"strong"` (see augment.py).
        resize_margin: int. Resize margin before the random crop (seed: 20).
        skip_corrupt: bool. Skip (and count) undecodable files instead of failing.
        max_examples: int or None. Use only the first N files of a seeded
            shuffle (quick runs).
        mixup_alpha: float. MixUp on training batches (0 = off).
        cutmix_factor: float. CutMix on training batches (0 = off).
        seed: int. Split and augmentation seed.
    """
    import tensorflow as tf

    if root is None and zip_path is None:
        raise ValueError("image_folder needs `root` (a folder) or `zip_path` (a zip of one).")
    if zip_path is not None:
        root = extract_zip(zip_path, extract_dir)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder {root!r} not found.")
    split_root = find_split_root(root, train_split)
    paths, labels, classes = list_images(split_root)
    if max_examples is not None and max_examples < len(paths):
        pick = np.sort(np.random.default_rng(seed + 7).permutation(len(paths))[:max_examples])
        paths, labels = [paths[i] for i in pick], labels[pick]
    images, labels, _ = load_images(paths, labels, load_size, skip_corrupt, cache_dir=split_root)
    train_idx, val_idx = holdout(len(images), validation_count, validation_fraction, seed)
    test = None
    if test_split is not None:
        test_paths, test_labels, test_classes = list_images(find_split_root(root, test_split))
        if test_classes != classes:
            raise ValueError(f"test classes {test_classes} differ from train classes {classes}.")
        test_images, test_labels, _ = load_images(test_paths, test_labels, load_size, skip_corrupt)
        test = tf.data.Dataset.from_tensor_slices((test_images, test_labels))
    train_map, eval_map = make_maps(image_size, augment, resize_margin=resize_margin, seed=seed)

    def read_inputs(files):
        return np.stack([load_image(f, load_size) for f in files])

    def split(idx):
        return tf.data.Dataset.from_tensor_slices((images[idx], labels[idx])) if len(idx) else None

    return DataSpec(train=split(train_idx), validation=split(val_idx), test=test, num_classes=len(classes),
                    class_names=classes, train_map=train_map, eval_map=eval_map, read_inputs=read_inputs,
                    batch_map=make_batch_mix(len(classes), mixup_alpha, cutmix_factor, seed),
                    num_train_examples=len(train_idx))
