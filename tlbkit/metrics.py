"""Metrics on integer labels or soft (mixed) targets: accuracy and plain cross-entropy."""

import keras
from keras import ops

from tlbkit.api_export import tlbkit_export
from tlbkit.losses import SparseCategoricalCrossentropy, is_soft


def accuracy(y_true, y_pred):
    """Top-1 accuracy for integer labels or soft targets (argmax of the target), per example."""
    predicted = ops.argmax(y_pred, axis=-1)
    if is_soft(y_true, y_pred):
        labels = ops.argmax(y_true, axis=-1)
    else:
        labels = ops.reshape(ops.cast(y_true, "int32"), ops.shape(predicted))
    return ops.cast(ops.equal(ops.cast(labels, "int32"), ops.cast(predicted, "int32")), "float32")


_plain_cross_entropy = SparseCategoricalCrossentropy(reduction=None)


def cross_entropy(y_true, y_pred):
    """Cross-entropy of logits without label smoothing, per example (the number evaluations report)."""
    return _plain_cross_entropy(y_true, y_pred)


@tlbkit_export("tlbkit.metrics.Accuracy")
class Accuracy(keras.metrics.MeanMetricWrapper):
    """Accuracy that accepts integer labels or soft (mixed) targets.

    Args:
        name: str. Defaults to `"accuracy"`.
        **kwargs: forwarded to `keras.metrics.MeanMetricWrapper`.
    """

    def __init__(self, name="accuracy", **kwargs):
        kwargs.pop("fn", None)
        super().__init__(fn=accuracy, name=name, **kwargs)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@tlbkit_export("tlbkit.metrics.CrossEntropy")
class CrossEntropy(keras.metrics.MeanMetricWrapper):
    """Mean cross-entropy of logits, without label smoothing, whatever the training loss smooths.

    Logged next to the training loss so that the per-epoch `val_cross_entropy` of `history.csv` is the
    same quantity that `metrics.json` and `tlbkit-eval` report.

    Args:
        name: str. Defaults to `"cross_entropy"`.
        **kwargs: forwarded to `keras.metrics.MeanMetricWrapper`.
    """

    def __init__(self, name="cross_entropy", **kwargs):
        kwargs.pop("fn", None)
        super().__init__(fn=cross_entropy, name=name, **kwargs)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}
