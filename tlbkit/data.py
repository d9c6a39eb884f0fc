"""What a dataset plugin hands to the trainer."""

import dataclasses
from typing import Any, Callable, Optional, Sequence


@dataclasses.dataclass
class DataSpec:
    """The splits and metadata of a classification dataset.

    Each split is an *unbatched* `tf.data.Dataset` of `(inputs, label)` pairs
    (the trainer batches, shuffles and prefetches). `inputs` is whatever the
    task's tokenizer reads (an image, a byte string, a series...).

    Args:
        train: training split.
        validation: validation split (or None).
        test: test split (or None).
        num_classes: int. Number of labels.
        class_names: optional list of label names, index = label id.
        train_map: optional function applied per example to the training split
            only (augmentation), after shuffling.
        eval_map: optional function applied to the evaluation splits.
        batch_map: optional function applied to each *training batch* (e.g.
            MixUp/CutMix; may turn labels into (B, classes) soft targets).
        read_inputs: optional `read_inputs(paths) -> batch` used by
            `tlbkit-predict` to read user files into model inputs.
        padded_shapes: optional shapes for `padded_batch` (variable-length inputs).
        num_train_examples: optional int, for progress bars and schedules.
    """

    train: Any
    validation: Any = None
    test: Any = None
    num_classes: int = 2
    class_names: Optional[Sequence[str]] = None
    train_map: Optional[Callable] = None
    eval_map: Optional[Callable] = None
    batch_map: Optional[Callable] = None
    read_inputs: Optional[Callable] = None
    padded_shapes: Any = None
    num_train_examples: Optional[int] = None

    def split(self, name):
        if name == "train":
            return self.train
        if name in ("validation", "val"):
            return self.validation
        if name == "test":
            return self.test
        raise ValueError(f"Unknown split {name!r}; use one of: train, validation, test.")
