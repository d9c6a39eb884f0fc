"""Test-time views of series: copies with the training jitter's noise, so inference sees what training saw."""

import numpy as np

import keras
from keras import ops

from tlbkit import checks, registry
from tlbkit.serialization import register_serializable
from tlbkit_tasks.timeseries import augment, series_ops


@registry.VIEWS.register("series_noise")
@register_serializable("tlbkit_tasks.timeseries.SeriesNoiseViews")
class SeriesNoiseViews(keras.layers.Layer):
    """A batch of series -> `num_views` copies, each with white noise of `noise` x `strength` times each series'
    own standard deviation per channel (over its real steps): the noise of `jitter_scale` training.

    Given to `SequenceClassifier(test_time_views=...)` (gin: `models.classifier.test_time_views =
    @views.series_noise()`), the classifier averages its logits over the noisy copies at inference. A model
    trained on jittered series learns them, not clean ones: on the UCR panel such models scored their own
    clean training series as low as 0.5-0.85 while scoring jittered copies of them perfectly, because the noise
    dominates the first differences of a smooth series. The views give inference the training distribution.

    The noise is the same at every call, on every backend and after a reload: it is read from a table of
    standard normal draws made with NumPy from `seed` (`table_length` steps x 8 channels per view, repeated
    over longer series and more channels), not from a random generator. Padding stays zero. No trainable
    weights; the strength chosen by `adapt` (for `strength="auto"`) is saved with the model.

    Args:
        num_views: int. Noisy copies per series (each one more forward pass). Defaults to `8`.
        noise: float. Noise standard deviation in units of a series' standard deviation, at full strength
            (`augment.NOISE`, the training jitter's). Defaults to `0.05`.
        strength: float in [0, 1] or `"auto"`. Multiplies `noise`, as `augment_strength` does in training:
            bind both to one value. `"auto"`: chosen by `adapt` from the training data exactly as the
            dataset plugins choose it (`augment.strength_from_data`); 1 until then. Defaults to `1.0`.
        include_original: bool. Add the series itself as one more view. Defaults to `False`.
        seed: int. Seed of the noise table and, with `"auto"`, of the sample of series `adapt` measures on
            sets of more than 2,000 (as the dataset's `seed` is for the plugin: bind both alike). Defaults to `0`.
        table_length: int. Steps of the noise table before it repeats. Defaults to `1024`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        inputs: a series batch as the series tokenizers take it: `{"values": (B, T, C), "mask": (B, T)}`, a
            `(values, mask)` pair or a values tensor ((B, T) values are univariate).

    Returns:
        A list of views shaped like `inputs` (the same structure), the original first with
        `include_original`.
    """

    TABLE_CHANNELS = 8

    def __init__(self, num_views=8, noise=augment.NOISE, strength=1.0, include_original=False, seed=0,
                 table_length=1024, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        checks.positive_int("num_views", num_views)
        checks.positive_int("table_length", table_length)
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or noise < 0:
            raise ValueError(f"`noise` must be a number >= 0. Received: noise={noise!r}")
        self.num_views = num_views
        self.noise = float(noise)
        self.strength = augment.check_strength(strength)
        self.include_original = bool(include_original)
        self.seed = seed
        self.table_length = table_length
        self.strength_value = self.add_weight(
            name="strength", shape=(), trainable=False,
            initializer=keras.initializers.Constant(1.0 if self.strength == "auto" else self.strength))
        self._table = np.random.default_rng(seed).standard_normal(
            (num_views, table_length, self.TABLE_CHANNELS)).astype("float32")

    def build(self, inputs_shape=None):
        self.built = True

    # === Data-dependent state ===
    def adapt(self, dataset):
        """With `strength="auto"`, sets the strength from the (unaugmented) training data: batches of
        `(inputs, labels)` in the training file's order, as `tlbkit-train` passes them. Returns the strength."""
        if self.strength != "auto":
            return self.strength
        values, masks, labels = [], [], []
        for batch in dataset:
            if not isinstance(batch, tuple) or len(batch) != 2:
                raise ValueError("SeriesNoiseViews(strength='auto').adapt needs batches of (inputs, labels): the "
                                 "strength depends on how far apart the classes are.")
            inputs, label = batch
            v, m = series_ops.split_series(inputs)
            v = np.asarray(ops.convert_to_numpy(v), "float64")
            values.append(v)
            masks.append(np.ones(v.shape[:2], bool) if m is None else np.asarray(ops.convert_to_numpy(m), bool))
            labels.append(np.asarray(ops.convert_to_numpy(label)))
        if not values:
            raise ValueError("SeriesNoiseViews.adapt saw no training batch: is the dataset empty?")
        length = max(v.shape[1] for v in values)
        pad = lambda a: np.pad(a, [(0, 0), (0, length - a.shape[1])] + [(0, 0)] * (a.ndim - 2))  # noqa: E731
        labels = np.concatenate(labels)
        if labels.ndim > 1:  # one-hot or soft targets
            labels = labels.argmax(-1)
        strength, _ = augment.strength_from_data(np.concatenate([pad(v) for v in values]),
                                                 np.concatenate([pad(m) for m in masks]), labels, self.seed)
        self.strength_value.assign(strength)
        return strength

    # === Views ===
    def noise_table(self, length, channels):
        """(num_views, length, channels) standard normal draws: the table repeated along steps and channels."""
        table = ops.convert_to_tensor(self._table)
        steps = ops.arange(length) % self.table_length
        table = ops.take(table, steps, axis=1)
        return ops.take(table, ops.arange(channels) % self.TABLE_CHANNELS, axis=2)

    def call(self, inputs):
        values, mask = series_ops.split_series(inputs)
        values = ops.cast(values, "float32")
        weight = (ops.ones(ops.shape(values)[:2], "float32") if mask is None else ops.cast(mask, "float32"))[..., None]
        std = ops.sqrt(series_ops.masked_moments(values, mask)[1]) + 1e-6
        scale = self.noise * ops.cast(self.strength_value, "float32") * std  # (B, 1, C)
        table = self.noise_table(ops.shape(values)[1], ops.shape(values)[2])
        views = [values] * self.include_original + [(values + table[k][None] * scale) * weight
                                                    for k in range(self.num_views)]
        return [_like(inputs, v) for v in views]

    def compute_output_spec(self, inputs):
        spec = lambda t: keras.KerasTensor(t.shape, dtype="float32" if "float" in str(t.dtype) else t.dtype)  # noqa: E731
        return [keras.tree.map_structure(spec, inputs) for _ in range(self.num_views + self.include_original)]

    def get_config(self):
        config = super().get_config()
        config.update({"num_views": self.num_views, "noise": self.noise, "strength": self.strength,
                       "include_original": self.include_original, "seed": self.seed,
                       "table_length": self.table_length})
        return config


def _like(inputs, values):
    """`inputs` with its values replaced by (B, T, C) `values` (same structure: dict, pair or tensor; (B, T)
    values stay (B, T))."""
    original = inputs["values"] if isinstance(inputs, dict) else inputs[0] if isinstance(inputs, (tuple, list)) \
        else inputs
    if len(original.shape) == 2:
        values = values[..., 0]
    if isinstance(inputs, dict):
        return {**inputs, "values": values}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)([values, *inputs[1:]])
    return values
