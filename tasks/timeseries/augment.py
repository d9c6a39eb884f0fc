"""Training-time augmentation of series (a per-example `tf.data` map): jitter and scale, window slicing."""

AUGMENTS = ("none", "jitter_scale", "slice_jitter_scale")


def slice_window(values, mask, ratio, seed=None):
    """Window slicing (Le Guennec et al. 2016): the window of `ratio` x the series' length that starts at a
    random step, stretched back to that length by linear interpolation, so what the series shows sits a
    little earlier or later and is a little wider. A step is kept by `mask` only if both steps it
    interpolates between were. Unbatched `(T, C)` values and `(T,)` mask; TensorFlow ops (a `tf.data` map).

    Args:
        values: (T, C) float tensor.
        mask: (T,) bool tensor.
        ratio: scalar float tensor in (0, 1]: the window's share of the series.
        seed: int or None. Op seed of the window's start.
    """
    import tensorflow as tf

    steps = tf.shape(values)[0]
    last = tf.cast(tf.maximum(steps - 1, 1), values.dtype)
    span = ratio * last
    start = tf.random.uniform([], 0.0, 1.0, seed=seed) * (last - span)
    position = start + tf.cast(tf.range(steps), values.dtype) * (span / last)
    low = tf.cast(tf.floor(position), "int32")
    high = tf.minimum(low + 1, steps - 1)
    weight = (position - tf.cast(low, values.dtype))[:, None]
    sliced = tf.gather(values, low) * (1.0 - weight) + tf.gather(values, high) * weight
    return sliced, tf.logical_and(tf.gather(mask, low), tf.gather(mask, high))


def make_train_map(augment, seed=0, scale=0.1, noise=0.05, min_ratio=0.9):
    """A per-example training map, or None.

    `"jitter_scale"` multiplies each channel of a series by exp(N(0, `scale`)) around its mean and adds
    noise of `noise` times its standard deviation (both computed over the real steps; padding stays
    zero). `"slice_jitter_scale"` first slices a window of a random `min_ratio` to 1 of the series and
    stretches it back to the series' length (`slice_window`): where a shape sits varies too. Small UCR/UEA
    training sets overfit without augmentation.
    """
    if augment not in AUGMENTS:
        raise ValueError(f"`augment` must be one of {AUGMENTS}. Received: augment={augment!r}")
    if augment == "none":
        return None
    import tensorflow as tf

    def train_map(inputs, label):
        values, mask = inputs["values"], inputs["mask"]
        if augment == "slice_jitter_scale":
            values, mask = slice_window(values, mask, tf.random.uniform([], min_ratio, 1.0, seed=seed + 2),
                                         seed=seed + 3)
        weight = tf.cast(mask, values.dtype)[:, None]
        count = tf.maximum(tf.reduce_sum(weight), 1.0)
        mean = tf.reduce_sum(values * weight, 0, keepdims=True) / count
        std = tf.sqrt(tf.reduce_sum(tf.square(values - mean) * weight, 0, keepdims=True) / count) + 1e-6
        factor = tf.exp(tf.random.normal(tf.shape(mean), stddev=scale, seed=seed))
        jitter = tf.random.normal(tf.shape(values), stddev=noise, seed=seed + 1) * std
        return {"values": (mean + (values - mean) * factor + jitter) * weight, "mask": mask}, label

    return train_map
