"""Backend-agnostic helpers of the time-series tokenizers (keras.ops only)."""

from keras import ops


def split_series(inputs, channels=None):
    """Tokenizer input -> (values (B, T, C), mask (B, T) bool or None).

    Accepts a dict `{"values": ..., "mask": ...}` (mask optional), a
    `(values, mask)` pair, or a values tensor; (B, T) values are univariate.

    A `tf.function` that has seen both layouts ((B, T) and (B, T, 1), as `model.predict` does when called
    with one and then the other) traces values of unknown rank; they are reshaped to (B, T, `channels`).

    Args:
        inputs: the tokenizer's input, as above.
        channels: int or None. The channels the tokenizer was built for (needed for values of unknown rank).

    Raises:
        ValueError: values of unknown rank and `channels` None.
    """
    if isinstance(inputs, dict):
        values, mask = inputs["values"], inputs.get("mask")
    elif isinstance(inputs, (tuple, list)):
        values, mask = inputs[0], inputs[1] if len(inputs) > 1 else None
    else:
        values, mask = inputs, None
    try:
        rank = len(values.shape)
    except ValueError:  # a TensorFlow tensor of unknown rank (no other backend traces one)
        rank = None
    if rank is None:
        if channels is None:
            raise ValueError("series values of unknown rank (a tf.function traced with both (B, T) and (B, T, C) "
                             "values) need the tokenizer's channel count: build the tokenizer first. Received: "
                             f"values={values!r}")
        import tensorflow as tf

        dims = tf.shape(values)
        values = tf.reshape(values, tf.stack([dims[0], dims[1], channels]))
        values.set_shape([None, None, channels])
    elif rank == 2:
        values = ops.expand_dims(values, -1)
    if mask is not None:
        mask = ops.cast(mask, "bool")
    return values, mask


def values_shape(inputs_shape):
    """The values' shape out of a build shape (dict, pair or plain shape), as a (B, T, C) tuple."""
    if isinstance(inputs_shape, dict):
        shape = inputs_shape["values"]
    elif isinstance(inputs_shape, (tuple, list)) and inputs_shape and isinstance(inputs_shape[0], (tuple, list)):
        shape = inputs_shape[0]
    else:
        shape = inputs_shape
    shape = tuple(shape)
    return shape + (1,) if len(shape) == 2 else shape


def masked_moments(values, mask):
    """Per-series, per-channel mean and variance over the real time steps: each (B, 1, C) float32.

    values (B, T, C), mask (B, T) or None (every step real). A series without a real step gets mean 0.
    """
    x = ops.cast(values, "float32")
    if mask is None:
        return ops.mean(x, axis=1, keepdims=True), ops.var(x, axis=1, keepdims=True)
    w = ops.cast(mask, "float32")[..., None]
    count = ops.maximum(ops.sum(w, axis=1, keepdims=True), 1.0)
    mean = ops.sum(x * w, axis=1, keepdims=True) / count
    return mean, ops.sum(ops.square(x - mean) * w, axis=1, keepdims=True) / count


def masked_normalize(values, mask, epsilon=1e-5):
    """Per-series, per-channel standardisation over the real time steps.

    values (B, T, C), mask (B, T) or None. Mean and standard deviation ignore
    masked steps; masked steps come out as 0.
    """
    x = ops.cast(values, "float32")
    mean, var = masked_moments(x, mask)
    if mask is None:
        return (x - mean) / ops.sqrt(var + epsilon)
    return (x - mean) / ops.sqrt(var + epsilon) * ops.cast(mask, "float32")[..., None]


def with_differences(values, mask=None):
    """(B, T, C) values -> (B, T, 2C): the values, then each channel's first difference `x[t] - x[t - 1]`
    (0 at the first step, and wherever step `t` or `t - 1` is masked)."""
    step = values[:, 1:] - values[:, :-1]
    if mask is not None:
        step = zero_masked(step, ops.logical_and(mask[:, 1:], mask[:, :-1]))
    step = ops.pad(step, [[0, 0], [1, 0], [0, 0]])
    return ops.concatenate([values, step], axis=-1)


def zero_masked(values, mask):
    if mask is None:
        return values
    return values * ops.cast(mask, values.dtype)[..., None]


def position_ids(length, offset, period):
    """offset + [0, length), modulo `period` when given."""
    ids = ops.arange(length, dtype="int32") + ops.cast(offset, "int32")
    return ids % period if period else ids
