"""IMDB movie-review sentiment: from TensorFlow Datasets or from an aclImdb-style folder (or zip)."""

import os
import random

from tlbkit import data, registry
from tlbkit_tasks.common import sources
from tlbkit_tasks.text import text_data

CLASS_NAMES = ("neg", "pos")


def read_source(source, class_names, split="test"):
    """`DataSpec.read_source` of the IMDB datasets: an aclImdb-style folder or zip (`<class>/*.txt`,
    directly or under `<split>/`), or `tfds:imdb_reviews:test`."""
    if sources.is_tfds(source):
        return sources.tfds_source(source, class_names, split)
    root = sources.labelled_root(source, class_names, split, "--data")
    items = list_folder(root, class_names)
    if not items:
        raise ValueError(f"{root} holds no .txt file under its class folders.")
    return text_data.text_split(text_data.read_text_files([p for p, _ in items]), [label for _, label in items])


@registry.DATASETS.register("imdb_reviews")
def imdb_reviews(data_dir=None, validation_percent=10, download=True, max_examples_per_split=None):
    """IMDB reviews through `tfds.load("imdb_reviews")` (downloads ~80 MB once).

    Splits: the last `validation_percent`% of TFDS `train` is the validation split, TFDS `test` the
    test split. With `validation_percent=0` the TFDS test split is the validation split (as in the Long
    Range Arena) and there is no test split. Inputs are the raw review strings; labels 0 = neg, 1 = pos.

    Args:
        data_dir: str or None. TFDS data folder. Defaults to the data folder (`--data_dir`), else TFDS's.
        validation_percent: int. Share of `train` held out. Defaults to `10`.
        download: bool. Download and prepare when missing. Defaults to `True`.
        max_examples_per_split: int or None. Keep only the first examples of each split (quick runs).
    """
    if not isinstance(validation_percent, int) or not 0 <= validation_percent < 100:
        raise ValueError(f"`validation_percent` must be an integer in [0, 100). Received: {validation_percent!r}")

    def loader():
        import tensorflow as tf
        import tensorflow_datasets as tfds

        v = validation_percent
        names = [f"train[:{100 - v}%]", f"train[{100 - v}%:]", "test"] if v else ["train", "test"]
        try:
            splits = tfds.load("imdb_reviews", split=names, as_supervised=True, data_dir=data_dir or data.data_dir(),
                               download=download)
        except Exception as e:  # offline, or not prepared with download=False
            raise RuntimeError(
                f"tfds.load('imdb_reviews') failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
                "Without internet use datasets.imdb_folder with an aclImdb folder or zip."
            ) from e

        def prepare(ds):
            ds = ds.map(lambda text, label: (text, tf.cast(label, tf.int32)))
            return ds.take(max_examples_per_split) if max_examples_per_split else ds

        splits = [prepare(ds) for ds in splits] + [None]
        card = int(splits[0].cardinality())
        note = f"the last {v}% of TFDS imdb_reviews train" if v else "TFDS imdb_reviews test (as the LRA)"
        return {"train": splits[0], "validation": splits[1], "test": splits[2], "class_names": list(CLASS_NAMES),
                "num_train_examples": card if card > 0 else None, "validation_note": note}

    return text_data.text_spec(loader, read_source=read_source)


def find_imdb_root(folder):
    """`folder` or the first folder below it (2 levels) holding `train/pos` and `train/neg`."""
    candidates = [folder]
    for entry in sorted(os.listdir(folder)):
        sub = os.path.join(folder, entry)
        if os.path.isdir(sub):
            candidates.append(sub)
            candidates += [os.path.join(sub, e) for e in sorted(os.listdir(sub)) if os.path.isdir(os.path.join(sub, e))]
    for c in candidates:
        if all(os.path.isdir(os.path.join(c, "train", name)) for name in CLASS_NAMES):
            return c
    raise FileNotFoundError(f"no train/pos and train/neg folders found in {folder} (aclImdb layout expected).")


def list_folder(root, class_names=CLASS_NAMES):
    """[(path, label)] of ROOT/<class>/*.txt for the class folders present (at least one)."""
    items = []
    for label, name in enumerate(class_names):
        folder = os.path.join(root, name)
        if os.path.isdir(folder):
            items += [(os.path.join(folder, f), label) for f in sorted(os.listdir(folder)) if f.endswith(".txt")]
    return items


def list_split(root, split, max_examples, seed):
    """[(path, label)] of ROOT/split/{neg,pos}/*.txt in a seeded random order; a class-balanced subset if asked."""
    items = []
    for label, name in enumerate(CLASS_NAMES):
        folder = os.path.join(root, split, name)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"missing folder {folder} (expected ROOT/{split}/{{neg,pos}}/*.txt).")
        files = sorted(f for f in os.listdir(folder) if f.endswith(".txt"))
        if max_examples is not None:
            random.Random(f"{seed}:{split}:{name}").shuffle(files)
            files = sorted(files[: max(max_examples // len(CLASS_NAMES), 1)])
        items += [(os.path.join(folder, f), label) for f in files]
    # Seeded mix of the classes: a shuffle buffer smaller than the split must not see one class at a time.
    random.Random(f"{seed}:{split}:order").shuffle(items)
    return items


def read_split(root, split, max_examples, seed):
    items = list_split(root, split, max_examples, seed)
    if not items:
        raise ValueError(f"{os.path.join(root, split)} holds no .txt review under neg/ or pos/.")
    return text_data.read_text_files([p for p, _ in items]), [label for _, label in items]


@registry.DATASETS.register("imdb_folder")
def imdb_folder(path=None, train_split="train", validation_split=None, test_split=None, max_examples_per_split=None,
                seed=0):
    """IMDB reviews from an aclImdb-style folder: `ROOT/<split>/{neg,pos}/*.txt`, one review per file.

    `path` is the folder or a zip of it (extracted once into `$TLBKIT_CACHE`), named relative to the
    data folder (`--data_dir`) or absolute; the folder holding `train/pos` inside it is used. Without a
    `validation_split`, `val` is used if present, else `test`; the test split is `test` when present and
    not already the validation split. Labels 0 = neg, 1 = pos; other folders (e.g. aclImdb's `unsup`)
    are ignored. Nothing is read until training asks for the data.

    Args:
        path: str. The folder holding the split folders (or one above it), or a zip of it.
        train_split, validation_split, test_split: str or None. Split folder names.
        max_examples_per_split: int or None. A seeded, class-balanced subset of each split (quick runs).
        seed: int. Seed of that subset.
    """
    if path is None:
        raise ValueError("datasets.imdb_folder needs `path`: an aclImdb-style folder (or zip) with train/{neg,pos}/.")

    def loader():
        root = find_imdb_root(data.folder_or_zip(path, "datasets.imdb_folder.path"))
        present = lambda s: s is not None and os.path.isdir(os.path.join(root, s))  # noqa: E731
        val_split = validation_split or next((s for s in ("val", "validation", "test") if present(s)), None)
        tst_split = test_split or ("test" if present("test") and val_split != "test" else None)
        train = read_split(root, train_split, max_examples_per_split, seed)
        val = read_split(root, val_split, max_examples_per_split, seed) if val_split else None
        test = read_split(root, tst_split, max_examples_per_split, seed) if tst_split else None
        note = f"the {val_split}/ folder of {path}" if val_split else None
        return text_data.text_fields(train, val, test, CLASS_NAMES, note)

    return text_data.text_spec(loader, read_source=read_source)
