"""One token per patch of consecutive time steps (PatchTST-style); the patch length can come from the data."""

import math

import keras
import numpy as np
from keras import ops

from tlbkit import checks, registry
from tlbkit.serialization import register_serializable
from tlbkit.streaming import StreamingTokenizer
from tlbkit_tasks.timeseries import series_ops

NORMALIZATIONS = ("dataset", "series", "none")


def normalization_mode(value):
    """`normalize` as one of NORMALIZATIONS (True/False are accepted for `"series"`/`"none"`)."""
    if value is True:
        return "series"
    if value is False or value is None:
        return "none"
    checks.one_of("normalize", value, NORMALIZATIONS)
    return value


@registry.TOKENIZERS.register("series_patch")
@register_serializable("tlbkit_tasks.timeseries.SeriesPatchTokenizer")
class SeriesPatchTokenizer(StreamingTokenizer):
    """Cuts a series into patches of `patch_length` steps and projects each to a token.

    Patch `i` covers steps `[i * stride, i * stride + patch_length)` of all channels (flattened to
    `patch_length * C` numbers, `C` the series' channels, doubled with `differences`); the series is padded
    at the end so the last patch is complete. A patch is real (mask `True`) if any of its steps is; masked
    steps are zeroed before the projection.

    **Lengths from the data.** With `patch_length=None` the patch length is chosen when the layer is built,
    from the series length it is built with (the longest training series: the UCR/UEA datasets pad every
    batch to it), as `ceil(length / target_tokens)`: a 24-step series gets one token per step, a 1,460-step
    series patches of 23. With `max_length=None` nothing is cut: the position table covers the build length
    (a longer series at inference is an error naming `max_length`); an explicit `max_length` keeps only the
    first `max_length` steps.

    **Normalisation.** `"dataset"` standardises each channel with the mean and standard deviation of the
    training data (`adapt()`, which `tlbkit-train` calls before the first step; stored as weights, so a
    reloaded model applies them): amplitude differences between series and between channels survive.
    `"series"` standardises each series on its own (per channel, over its real steps): amplitude is lost.
    `"none"` feeds the values as they are.

    **First differences.** With `differences=True` each channel's first difference `x[t] - x[t - 1]` is
    added as a channel of its own before normalisation and patching (0 at the first step and next to
    padding), so a patch carries the local slopes as well as the levels: with ~3-step patches a token sees
    a bump or a change of slope, not only where the curve is. Normalisation then covers the 2C channels.

    Positions are absolute patch indices or, with `position_period`, taken modulo it: set it to the
    encoder's `chunk_size` (in patches) to stream a series of any length (feed `chunk_size * patch_length`
    steps per chunk, with `stride == patch_length`).

    Args:
        dim: int. Token width (the cell's `dim`).
        patch_length: int or None. Steps per patch; None = from the build length and `target_tokens`.
        stride: int or None. Steps between patch starts. Defaults to `patch_length` (non-overlapping).
        max_length: int or None. Longest series kept, in steps; None = the build length, no cut.
        normalize: str. `"dataset"`, `"series"` or `"none"` (see above). Defaults to `"dataset"`.
        position_period: int or None. Position ids modulo this. Defaults to `None`.
        target_tokens: int. Tokens per series aimed at when `patch_length` is None. Defaults to `64`.
        differences: bool. Add each channel's first difference as a channel (see above). Defaults to
            `False`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        inputs: `{"values": (B, T, C) or (B, T), "mask": (B, T) bool}` (mask optional), a `(values, mask)`
            pair, or a values tensor.

    Returns:
        dict: `tokens` (B, N, dim) and, when some patch can be padding, `mask` (B, N) bool, with
        `N = ceil(max(T - patch_length, 0) / stride) + 1` patches.

    Example:
    >>> tok = SeriesPatchTokenizer(dim=8, patch_length=4, normalize="series")
    >>> tok(np.ones((2, 10, 3)))["tokens"].shape
    (2, 3, 8)

    Reference: Nie et al., "A Time Series is Worth 64 Words", ICLR 2023, arXiv:2211.14730.
    """

    def __init__(self, dim, patch_length=None, stride=None, max_length=None, normalize="dataset",
                 position_period=None, target_tokens=64, differences=False, **kwargs):
        super().__init__(**kwargs)
        checks.positive_int("dim", dim)
        for name, value in (("patch_length", patch_length), ("stride", stride), ("max_length", max_length),
                            ("position_period", position_period)):
            if value is not None:
                checks.positive_int(name, value)
        checks.positive_int("target_tokens", target_tokens)
        self.dim = dim
        self.patch_length = patch_length
        self.stride = stride
        self.max_length = max_length
        self.normalize = normalization_mode(normalize)
        self.position_period = position_period
        self.target_tokens = target_tokens
        self.differences = bool(differences)
        self.projection = keras.layers.Dense(dim, dtype=self.dtype_policy, name="projection")
        self.position = None

    # === Geometry ===
    @property
    def patch(self):
        """The patch length in use (known once built when `patch_length` is None)."""
        return self.patch_length or self._patch

    @property
    def step(self):
        return self.stride or self.patch

    def num_patches(self, length):
        """Patches of a `length`-step series (an int or a scalar tensor)."""
        if isinstance(length, int):
            return -(-max(length - self.patch, 0) // self.step) + 1
        return (ops.maximum(length - self.patch, 0) + self.step - 1) // self.step + 1

    @property
    def value_channels(self):
        """Channels the patches are cut from: the series' own, then their first differences if asked."""
        return self.channels * (2 if self.differences else 1)

    @property
    def patch_channels(self):
        """Channels of the sequence that patches are cut from (`value_channels` here; a subclass that computes
        features first, `SeriesConvTokenizer`, has more)."""
        return self.value_channels

    def add_differences(self, values, mask=None):
        """(B, T, C) values -> (B, T, `value_channels`): with each channel's first differences when
        `differences` (`series_ops.with_differences`), else unchanged."""
        if not self.differences:
            return values
        return series_ops.with_differences(ops.cast(values, "float32"), mask)

    def build(self, inputs_shape):
        shape = series_ops.values_shape(inputs_shape)
        length, channels = shape[1], shape[-1]
        if channels is None:
            raise ValueError(f"{type(self).__name__} needs a static channel count. Received shape: {inputs_shape}")
        self.channels = channels
        channels = self.value_channels
        self.build_length = self.max_length or length
        if self.patch_length is None or (self.position_period is None):
            if self.build_length is None:
                raise ValueError(
                    f"{type(self).__name__} is built without a series length: pad batches to a fixed length "
                    "(the UCR/UEA datasets do), or give max_length (and patch_length)."
                )
        self._patch = self.patch_length or max(1, math.ceil(self.build_length / self.target_tokens))
        self.projection.build((None, None, self.patch * self.patch_channels))
        table = self.position_period or self.num_patches(self.build_length)
        self.position = keras.layers.Embedding(table, self.dim, dtype=self.dtype_policy, name="position")
        self.position.build((None,))
        if self.normalize == "dataset":
            self.data_mean = self.add_weight(name="data_mean", shape=(channels,), initializer="zeros",
                                             trainable=False)
            self.data_std = self.add_weight(name="data_std", shape=(channels,), initializer="ones", trainable=False)
        self.built = True

    # === Normalisation ===
    def adapt(self, dataset, max_batches=None):
        """Sets the `"dataset"` normalisation from data: per channel, the mean and standard deviation of
        every real step of `dataset`: batches of `(inputs, labels)` pairs, as tlbkit's pipelines give, or
        batches of inputs (dicts or arrays; a tuple is always taken as a pair).

        Returns:
            `(mean, std)` as NumPy arrays (unchanged weights for other normalisations).
        """
        total, total_sq, count, longest = 0.0, 0.0, 0.0, 0
        for i, batch in enumerate(dataset):
            if max_batches is not None and i >= max_batches:
                break
            inputs = batch[0] if isinstance(batch, tuple) else batch  # (inputs, labels) or inputs (a dict/array)
            values, mask = series_ops.split_series(inputs)
            channels = values.shape[-1]
            values = np.asarray(ops.convert_to_numpy(self.add_differences(values, mask)), "float64")
            longest = max(longest, values.shape[1])
            weight = np.ones(values.shape[:2]) if mask is None else np.asarray(ops.convert_to_numpy(mask), "float64")
            total = total + np.einsum("btc,bt->c", values, weight)
            total_sq = total_sq + np.einsum("btc,bt->c", values ** 2, weight)
            count += weight.sum()
        if count == 0:
            raise ValueError("adapt() saw no real time step: is the dataset empty?")
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0)) + 1e-5
        if self.normalize == "dataset":
            if not self.built:
                self.build((None, longest, channels))
            self.data_mean.assign(mean.astype("float32"))
            self.data_std.assign(std.astype("float32"))
        return mean, std

    def prepare(self, inputs):
        """Raw inputs -> (values (B, T, `value_channels`), mask or None): split, cut to `max_length`, first
        differences added (with `differences`), normalised."""
        values, mask = series_ops.split_series(inputs, getattr(self, "channels", None))
        length = values.shape[1]
        if self.max_length is not None:
            values = values[:, : self.max_length]
            mask = None if mask is None else mask[:, : self.max_length]
        elif self.position_period is None and isinstance(length, int) and length > self.build_length:
            binding = f"{registry.TOKENIZERS.gin_name(type(self)) or type(self).__name__}.max_length"
            raise ValueError(
                f"a series of {length} steps is longer than the {self.build_length} steps the model was built for "
                f"(its longest training series): give series of at most {self.build_length} steps, or train it "
                f"with {binding} set to the length to cut series to."
            )
        values = self.add_differences(values, mask)
        if self.normalize == "series":
            values = series_ops.masked_normalize(values, mask)
        elif self.normalize == "dataset":
            values = (ops.cast(values, "float32") - self.data_mean) / self.data_std
        return values, mask

    # === Tokens ===
    def patches(self, values, mask=None):
        """(B, T, C) values -> (B, N, patch * C) patches and (B, N) mask."""
        patch, stride = self.patch, self.step
        length = values.shape[1] if isinstance(values.shape[1], int) else ops.shape(values)[1]
        channels = values.shape[-1]
        n = self.num_patches(length)
        pad = (n - 1) * stride + patch - length
        if mask is None:
            mask = ops.ones((ops.shape(values)[0], length), "bool")
        values = ops.pad(values, [[0, 0], [0, pad], [0, 0]])
        mask = ops.pad(mask, [[0, 0], [0, pad]], constant_values=False)
        if stride == patch:
            patches = ops.reshape(values, (-1, n, patch * channels))
            patch_mask = ops.any(ops.reshape(mask, (-1, n, patch)), axis=-1)
        else:
            index = ops.arange(n)[:, None] * stride + ops.arange(patch)[None, :]
            patches = ops.reshape(ops.take(values, index, axis=1), (-1, n, patch * channels))
            patch_mask = ops.any(ops.take(mask, index, axis=1), axis=-1)
        return patches, patch_mask

    def embed(self, values, mask=None, offset=0):
        """Tokens of values already through `prepare` (B, T, `value_channels`); patch positions start at
        `offset`."""
        values = series_ops.zero_masked(ops.cast(values, self.compute_dtype), mask)
        had_mask = mask is not None
        patches, patch_mask = self.patches(values, mask)
        tokens = self.projection(patches)
        n = ops.shape(patches)[1]
        tokens = tokens + self.position(series_ops.position_ids(n, offset, self.position_period))[None]
        length = values.shape[1]
        if not had_mask and isinstance(length, int) and (length - self.patch) % self.step == 0:
            return {"tokens": tokens}  # every patch is complete and real: no mask
        return {"tokens": series_ops.zero_masked(tokens, patch_mask), "mask": patch_mask}

    def call(self, inputs):
        values, mask = self.prepare(inputs)
        return self.embed(values, mask)

    # === Streaming (tlbkit.streaming.StreamingTokenizer) ===
    @property
    def stream_exact(self):
        """Per-series statistics (`normalize="series"`) are estimated from the steps seen so far: not exact."""
        return self.normalize != "series"

    def stream_steps(self, chunk_size):
        if self.step != self.patch:
            raise ValueError(f"streaming needs non-overlapping patches. Received: stride={self.step}, "
                             f"patch_length={self.patch}")
        return chunk_size * self.patch

    def stream_max_tokens(self):
        return None if self.position_period else self.position.input_dim

    def stream_start(self, batch_size):
        """Carry: whether a step was seen, the last raw step (for first differences), and the running count,
        mean and sum of squared deviations of the prepared values (for `normalize="series"`)."""
        channels = self.value_channels
        return {"seen": ops.zeros((batch_size, 1, 1)), "last": ops.zeros((batch_size, 1, self.channels)),
                "count": ops.zeros((batch_size, 1, 1)), "mean": ops.zeros((batch_size, 1, channels)),
                "m2": ops.zeros((batch_size, 1, channels))}

    def stream_embed(self, raw_chunk, carry, offset):
        """`prepare` done causally on one chunk (the previous step carried for the differences; running
        statistics for `"series"`), then `embed` at `offset`."""
        values, mask = series_ops.split_series(raw_chunk, getattr(self, "channels", None))
        values = ops.cast(values, "float32")
        real = ops.ones(ops.shape(values)[:2], "float32") if mask is None else ops.cast(mask, "float32")
        carry = dict(carry)
        if self.differences:
            previous = carry["seen"] * carry["last"] + (1.0 - carry["seen"]) * values[:, :1]
            full_mask = None if mask is None else ops.concatenate([ops.ones_like(mask[:, :1]), mask], axis=1)
            values = self.add_differences(ops.concatenate([previous, values], axis=1), full_mask)[:, 1:]
            carry["last"] = values[:, -1:, : self.channels]
        carry["seen"] = ops.ones_like(carry["seen"])
        if self.normalize == "series":  # Chan et al.'s update of count, mean and squared deviations
            weight = real[..., None]
            n = ops.sum(weight, axis=1, keepdims=True)
            mean = ops.sum(values * weight, axis=1, keepdims=True) / ops.maximum(n, 1.0)
            m2 = ops.sum(ops.square(values - mean) * weight, axis=1, keepdims=True)
            total = carry["count"] + n
            delta = mean - carry["mean"]
            carry["mean"] = carry["mean"] + delta * n / ops.maximum(total, 1.0)
            carry["m2"] = carry["m2"] + m2 + ops.square(delta) * carry["count"] * n / ops.maximum(total, 1.0)
            carry["count"] = total
            values = (values - carry["mean"]) / ops.sqrt(carry["m2"] / ops.maximum(total, 1.0) + 1e-5) * weight
        elif self.normalize == "dataset":
            values = (values - self.data_mean) / self.data_std
        return self.stream_tokens(values, mask, carry, offset)

    def stream_tokens(self, values, mask, carry, offset):
        """Prepared values of one chunk -> `(tokenized, carry)`: `embed` here; a subclass whose tokens read
        earlier steps (`SeriesConvTokenizer`) carries them."""
        return self.embed(values, mask, offset), carry

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "dim": self.dim,
                "patch_length": self.patch_length,
                "stride": self.stride,
                "max_length": self.max_length,
                "normalize": self.normalize,
                "position_period": self.position_period,
                "target_tokens": self.target_tokens,
                "differences": self.differences,
            }
        )
        return config
