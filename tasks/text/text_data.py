"""Helpers shared by the text datasets: DataSpecs of (text, label) pairs, user files and text inputs."""

import numpy as np

from tlbkit.data import DataSpec


def read_text_files(paths):
    """One example per file: the file's whole content as UTF-8 bytes (an object array)."""
    texts = []
    for path in paths:
        with open(path, "rb") as f:
            texts.append(f.read().rstrip(b"\r\n"))
    return np.array(texts, dtype=object)


def parse_texts(texts):
    """Inputs given as text (tlbkit-predict arguments or stdin lines) are the texts themselves."""
    return np.array([t.encode("utf-8") if isinstance(t, str) else t for t in texts], dtype=object)


def text_split(texts, labels):
    """An unbatched tf.data dataset of (tf.string text, int32 label)."""
    import tensorflow as tf

    if len(texts):
        texts = tf.constant(np.array(list(texts), dtype=object), dtype=tf.string)
    else:
        texts = tf.zeros([0], tf.string)
    return tf.data.Dataset.from_tensor_slices((texts, np.asarray(labels, dtype="int32")))


def text_fields(train, validation, test, class_names, validation_note=None):
    """The data fields of a DataSpec (what a loader returns) from (texts, labels) pairs (None: no split)."""
    return {
        "train": text_split(*train),
        "validation": None if validation is None else text_split(*validation),
        "test": None if test is None else text_split(*test),
        "class_names": list(class_names),
        "num_train_examples": len(train[1]),
        "validation_note": validation_note,
    }


def text_spec(loader, read_inputs=read_text_files, parse_inputs=parse_texts, read_source=None):
    """A lazy DataSpec of a text dataset whose `loader` returns `text_fields(...)`."""
    return DataSpec(loader=loader, read_inputs=read_inputs, parse_inputs=parse_inputs, read_source=read_source)
