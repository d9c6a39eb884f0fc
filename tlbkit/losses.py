"""The training loss: cross-entropy on integer labels or soft targets, with optional label smoothing."""

import keras
from keras import ops

from tlbkit.serialization import register_renamed, register_serializable


def is_soft(y_true, y_pred):
    """Whether labels are per-class target distributions (B, classes) rather than ids."""
    return len(y_true.shape) == 2 and y_true.shape[-1] is not None and y_true.shape[-1] == y_pred.shape[-1] and (
        y_pred.shape[-1] > 1
    )


@register_serializable("tlbkit.losses.ClassCrossentropy")
class ClassCrossentropy(keras.losses.Loss):
    """Cross-entropy of class logits against integer labels or soft targets, with optional label smoothing.

    Targets are integer class ids `(B,)` or per-class target distributions `(B, classes)` (e.g. from
    MixUp/CutMix), told apart by their shape; predictions are logits (the softmax is applied here). Unlike
    `keras.losses.SparseCategoricalCrossentropy` it takes soft targets too, hence its own name (it was called
    `SparseCategoricalCrossentropy` before; files saved with that name load as this class).

    Args:
        label_smoothing: float in [0, 1). Mass spread uniformly over all classes.
            Defaults to `0.0`.
        name: str. Defaults to `"class_crossentropy"`.
        **kwargs: forwarded to `keras.losses.Loss`.
    """

    def __init__(self, label_smoothing=0.0, name="class_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"`label_smoothing` must be in [0, 1). Received: label_smoothing={label_smoothing}")
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        num_classes = ops.shape(y_pred)[-1]
        if is_soft(y_true, y_pred):  # (B, classes) targets, e.g. from MixUp/CutMix
            targets = ops.cast(y_true, "float32")
        else:
            labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
            targets = ops.one_hot(labels, num_classes, dtype="float32")
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + self.label_smoothing / ops.cast(num_classes, "float32")
        log_probs = ops.log_softmax(y_pred, axis=-1)
        return -ops.sum(targets * log_probs, axis=-1)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


# A run's checkpoints hold the compiled loss: those saved before the rename name it
# `tlbkit>SparseCategoricalCrossentropy`, and still load (`keras.saving.load_model` with `compile=True`).
register_renamed("tlbkit.losses.SparseCategoricalCrossentropy", ClassCrossentropy)
