"""Metrics on integer labels or soft (mixed) targets: accuracy and plain cross-entropy."""

import keras
from keras import ops

from tlbkit.losses import ClassCrossentropy, is_soft
from tlbkit.serialization import register_serializable


def accuracy(y_true, y_pred):
    """Top-1 accuracy for integer labels or soft targets (argmax of the target), per example."""
    predicted = ops.argmax(y_pred, axis=-1)
    if is_soft(y_true, y_pred):
        labels = ops.argmax(y_true, axis=-1)
    else:
        labels = ops.reshape(ops.cast(y_true, "int32"), ops.shape(predicted))
    return ops.cast(ops.equal(ops.cast(labels, "int32"), ops.cast(predicted, "int32")), "float32")


_plain_cross_entropy = ClassCrossentropy(reduction=None)


def cross_entropy(y_true, y_pred):
    """Cross-entropy of logits without label smoothing, per example (the number evaluations report)."""
    return _plain_cross_entropy(y_true, y_pred)


class _MeanOf(keras.metrics.MeanMetricWrapper):
    """The mean of a per-example function; its config is its name and dtype (the function is fixed)."""

    fn = None

    def __init__(self, name, **kwargs):
        kwargs.pop("fn", None)
        super().__init__(fn=type(self).fn, name=name, **kwargs)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@register_serializable("tlbkit.metrics.Accuracy")
class Accuracy(_MeanOf):
    """Accuracy that accepts integer labels or soft (mixed) targets.

    Args:
        name: str. Defaults to `"accuracy"`.
        **kwargs: forwarded to `keras.metrics.MeanMetricWrapper`.
    """

    fn = staticmethod(accuracy)

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)


@register_serializable("tlbkit.metrics.CrossEntropy")
class CrossEntropy(_MeanOf):
    """Mean cross-entropy of logits, without label smoothing, whatever the training loss smooths.

    Logged next to the training loss so that the per-epoch `val_cross_entropy` of `history.csv` is the
    same quantity that `metrics.json` and `tlbkit-eval` report.

    Args:
        name: str. Defaults to `"cross_entropy"`.
        **kwargs: forwarded to `keras.metrics.MeanMetricWrapper`.
    """

    fn = staticmethod(cross_entropy)

    def __init__(self, name="cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
