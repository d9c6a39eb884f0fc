"""Long-range recall: the label is the first token; the model reads it only after the last chunk."""

import numpy as np

from tlbkit import registry
from tlbkit.data import DataSpec


def make_recall_arrays(num_examples, length, num_classes, vocab_size, seed):
    """ids (N, length) int32 and labels (N,) int32.

    Position 0 holds the label id (0..num_classes-1); every other position holds
    a distractor id in [num_classes, vocab_size). Nothing after position 0
    carries information about the label.
    """
    if vocab_size <= num_classes:
        raise ValueError(
            f"vocab_size={vocab_size} must exceed num_classes={num_classes}: the ids "
            "above num_classes are the distractors."
        )
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=num_examples).astype("int32")
    ids = rng.integers(num_classes, vocab_size, size=(num_examples, length)).astype("int32")
    ids[:, 0] = labels
    return ids, labels


def parse_ids(texts, length, vocab_size, sources=None):
    """(N, length) int32 ids from texts of `length` integers separated by commas and/or whitespace.

    Raises:
        ValueError: naming the input, what it holds and what is expected.
    """
    rows = []
    for i, text in enumerate(texts):
        where = sources[i] if sources else f"input {text[:40]!r}"
        fields = [f for f in text.replace(",", " ").split() if f]
        try:
            ids = [int(f) for f in fields]
        except ValueError:
            raise ValueError(f"{where}: expected {length} integer ids separated by commas or spaces, "
                             f"found {next(f for f in fields if not f.lstrip('-').isdigit())!r}.") from None
        if len(ids) != length or not all(0 <= x < vocab_size for x in ids):
            raise ValueError(f"{where}: expected {length} ids in [0, {vocab_size}), found {len(ids)} "
                             f"(range {min(ids, default=0)}..{max(ids, default=0)}).")
        rows.append(ids)
    return np.array(rows, "int32")


@registry.DATASETS.register("long_range_recall")
def long_range_recall(
    length=32, num_classes=4, vocab_size=16, num_train=2048, num_validation=512, num_test=512, seed=0
):
    """A synthetic task that only a model carrying state across chunks can solve.

    Args:
        length: int. Tokens per sequence (use several chunks).
        num_classes: int. Number of labels.
        vocab_size: int. Ids; those >= num_classes are distractors.
        num_train, num_validation, num_test: int. Split sizes.
        seed: int. Data seed (splits use seed, seed+1, seed+2).

    Inputs to `tlbkit-predict`: `length` ids separated by commas or spaces (`3,9,12,...`), as an
    argument, a line of standard input, or a file holding them.
    """
    import tensorflow as tf

    def split(n, offset):
        ids, labels = make_recall_arrays(n, length, num_classes, vocab_size, seed + offset)
        return tf.data.Dataset.from_tensor_slices((ids, labels))

    def read_inputs(paths):
        texts = []
        for path in paths:
            with open(path, encoding="utf-8") as f:
                texts.append(f.read())
        return parse_ids(texts, length, vocab_size, sources=paths)

    return DataSpec(
        train=split(num_train, 0),
        validation=split(num_validation, 1),
        test=split(num_test, 2),
        num_classes=num_classes,
        class_names=[str(i) for i in range(num_classes)],
        read_inputs=read_inputs,
        parse_inputs=lambda texts: parse_ids(texts, length, vocab_size),
        num_train_examples=num_train,
    )
