"""Helpers shared by the text datasets: DataSpec of (text, label) pairs, user files, zip cache."""

import hashlib
import os
import shutil
import tempfile
import zipfile

import numpy as np

from tlbkit.data import DataSpec


def cache_root():
    """`$TLBKIT_CACHE`, else `~/.cache/tlbkit`."""
    return os.environ.get("TLBKIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tlbkit")


def read_text_files(paths):
    """One example per file: the file's whole content as UTF-8 bytes (an object array)."""
    texts = []
    for path in paths:
        with open(path, "rb") as f:
            texts.append(f.read().rstrip(b"\r\n"))
    return np.array(texts, dtype=object)


def text_split(texts, labels):
    """An unbatched tf.data dataset of (tf.string text, int32 label)."""
    import tensorflow as tf

    if len(texts):
        texts = tf.constant(np.array(list(texts), dtype=object), dtype=tf.string)
    else:
        texts = tf.zeros([0], tf.string)
    return tf.data.Dataset.from_tensor_slices((texts, np.asarray(labels, dtype="int32")))


def text_spec(train, validation, test, class_names, read_inputs=read_text_files):
    """A DataSpec from (texts, labels) pairs (None for a missing split)."""
    return DataSpec(
        train=text_split(*train),
        validation=None if validation is None else text_split(*validation),
        test=None if test is None else text_split(*test),
        num_classes=len(class_names),
        class_names=list(class_names),
        read_inputs=read_inputs,
        num_train_examples=len(train[1]),
    )


def extract_zip(zip_path, cache_dir=None):
    """Extracts `zip_path` once into a cache folder and returns that folder.

    The folder is named after the archive's name, size and modification time,
    so a changed archive is extracted again; extraction goes to a temporary
    folder first, so an interrupted one is never mistaken for a finished one.
    """
    if not os.path.isfile(zip_path):
        raise FileNotFoundError(f"zip file not found: {zip_path}")
    stat = os.stat(zip_path)
    key = hashlib.sha1(f"{os.path.abspath(zip_path)}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:10]
    stem = os.path.splitext(os.path.basename(zip_path))[0]
    base = cache_dir or os.path.join(cache_root(), "extracted")
    target = os.path.join(base, f"{stem}-{key}")
    if os.path.isdir(target):
        return target
    os.makedirs(base, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{stem}-", dir=base)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(tmp)
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isdir(target):  # another process may have won the race
            raise
    return target
