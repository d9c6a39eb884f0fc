"""IMDB movie-review sentiment: from TensorFlow Datasets or from an aclImdb-style folder (or zip)."""

import os
import random

from tlbkit_tasks.text import text_data
from tlbkit import registry
from tlbkit.data import DataSpec

CLASS_NAMES = ("neg", "pos")


@registry.DATASETS.register("imdb_reviews")
def imdb_reviews(data_dir=None, validation_percent=10, download=True, max_examples_per_split=None):
    """IMDB reviews through `tfds.load("imdb_reviews")` (downloads ~80 MB once).

    Splits: the last `validation_percent`% of TFDS `train` is the validation
    split, TFDS `test` the test split. With `validation_percent=0` the TFDS
    test split is the validation split (as in the Long Range Arena) and there
    is no test split. Inputs are the raw review strings; labels 0 = neg, 1 = pos.

    Args:
        data_dir: str or None. TFDS data folder. Defaults to TFDS's own.
        validation_percent: int. Share of `train` held out. Defaults to `10`.
        download: bool. Download and prepare when missing. Defaults to `True`.
        max_examples_per_split: int or None. Keep only the first examples of
            each split (quick runs). Defaults to `None`.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    if not isinstance(validation_percent, int) or not 0 <= validation_percent < 100:
        raise ValueError(f"`validation_percent` must be an integer in [0, 100). Received: {validation_percent!r}")
    v = validation_percent
    names = [f"train[:{100 - v}%]", f"train[{100 - v}%:]", "test"] if v else ["train", "test"]
    try:
        splits = tfds.load("imdb_reviews", split=names, as_supervised=True, data_dir=data_dir, download=download)
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
    return DataSpec(
        train=splits[0],
        validation=splits[1],
        test=splits[2],
        num_classes=2,
        class_names=list(CLASS_NAMES),
        read_inputs=text_data.read_text_files,
        num_train_examples=card if card > 0 else None,
    )


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
def imdb_folder(
    root=None,
    zip_path=None,
    cache_dir=None,
    train_split="train",
    validation_split=None,
    test_split=None,
    max_examples_per_split=None,
    seed=0,
):
    """IMDB reviews from an aclImdb-style folder: `ROOT/<split>/{neg,pos}/*.txt`, one review per file.

    With `zip_path`, the archive is extracted once into a cache folder
    (`$TLBKIT_CACHE` or `~/.cache/tlbkit`, or `cache_dir`) and the folder
    holding `train/pos` inside it (or `root` taken relative to it) is used.
    Without a `validation_split`, `val` is used if present, else `test`; the
    test split is `test` when present and not already the validation split.
    Labels 0 = neg, 1 = pos; other folders (e.g. aclImdb's `unsup`) are ignored.

    Args:
        root: str or None. The folder holding the split folders.
        zip_path: str or None. A zip of such a folder (e.g. `imdb-train-val.zip`).
        cache_dir: str or None. Where to extract `zip_path`.
        train_split, validation_split, test_split: str or None. Split folder names.
        max_examples_per_split: int or None. A seeded, class-balanced subset of
            each split (quick runs). Defaults to `None` (all).
        seed: int. Seed of that subset.
    """
    if root is None and zip_path is None:
        raise ValueError("datasets.imdb_folder needs `root` (an aclImdb-style folder) or `zip_path`.")
    if zip_path is not None:
        extracted = text_data.extract_zip(os.path.expanduser(zip_path), cache_dir)
        root = os.path.join(extracted, root) if root else find_imdb_root(extracted)
    root = os.path.expanduser(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"IMDB folder not found: {root}")
    present = lambda s: s is not None and os.path.isdir(os.path.join(root, s))  # noqa: E731
    if validation_split is None:
        validation_split = next((s for s in ("val", "validation", "test") if present(s)), None)
    if test_split is None and present("test") and validation_split != "test":
        test_split = "test"
    train = read_split(root, train_split, max_examples_per_split, seed)
    val = read_split(root, validation_split, max_examples_per_split, seed) if validation_split else None
    test = read_split(root, test_split, max_examples_per_split, seed) if test_split else None
    return text_data.text_spec(train, val, test, CLASS_NAMES)
