"""Patch tokens over a convolutional stem: local shapes are read at full resolution before patching."""

import keras
from keras import ops

from tlbkit import checks, registry
from tlbkit.serialization import register_serializable
from tlbkit_tasks.timeseries import series_ops
from tlbkit_tasks.timeseries.patch_tokenizer import SeriesPatchTokenizer


@registry.TOKENIZERS.register("series_conv")
@register_serializable("tlbkit_tasks.timeseries.SeriesConvTokenizer")
class SeriesConvTokenizer(SeriesPatchTokenizer):
    """A `SeriesPatchTokenizer` whose patches are cut from convolutional features of the series.

    After `prepare` (first differences, normalisation: as `SeriesPatchTokenizer`), `len(kernel_sizes)`
    causal 1-D convolutions of `conv_width` filters (each followed by a LayerNorm over the filters and a
    GELU; the i-th dilated by `dilations[i]`) run over every time step; the values and the last
    convolution's features are concatenated, cut into patches and projected to tokens as in
    `SeriesPatchTokenizer`. A token then sees the shapes the filters detect around each of its steps (slopes,
    bumps, peaks at several widths), not only the raw levels (the FCN/ResNet habit of time-series
    classification; the CIFAR-10 recipe's convolutional stem plays the same part for images).

    The convolutions are causal (step `t` reads steps `t - receptive_field + 1 .. t`), so a stream fed chunk by
    chunk gives the whole-sequence tokens when the last `receptive_field - 1` prepared steps of the previous
    chunk are carried in front of the next chunk (and their tokens dropped). Masked steps are zeroed before
    and after every convolution.

    Args:
        dim: int. Token width (the cell's `dim`).
        conv_width: int or None. Filters per convolution. Defaults to `dim`.
        kernel_sizes: tuple of int. Kernel size of each convolution. Defaults to `(7, 5, 3)`.
        dilations: tuple of int or None. Dilation of each convolution. Defaults to 1 for each.
        **kwargs: the `SeriesPatchTokenizer` arguments (`patch_length`, `target_tokens`, `normalize`,
            `differences`, `max_length`, `position_period`, `stride`) and `keras.layers.Layer`'s.

    Example:
    >>> tok = SeriesConvTokenizer(dim=8, patch_length=4, normalize="series")
    >>> tok(np.ones((2, 10, 3)))["tokens"].shape
    (2, 3, 8)
    """

    def __init__(self, dim, conv_width=None, kernel_sizes=(7, 5, 3), dilations=None, **kwargs):
        super().__init__(dim, **kwargs)
        kernel_sizes = tuple(kernel_sizes)
        if not kernel_sizes:
            raise ValueError("`kernel_sizes` must name at least one convolution. Received: kernel_sizes=()")
        for k in kernel_sizes:
            checks.positive_int("kernel_sizes[i]", k)
        dilations = tuple(dilations) if dilations is not None else (1,) * len(kernel_sizes)
        if len(dilations) != len(kernel_sizes):
            raise ValueError(f"`dilations` needs one value per kernel size ({len(kernel_sizes)}). "
                             f"Received: dilations={dilations}, kernel_sizes={kernel_sizes}")
        for d in dilations:
            checks.positive_int("dilations[i]", d)
        self.conv_width = conv_width or dim
        checks.positive_int("conv_width", self.conv_width)
        self.kernel_sizes = kernel_sizes
        self.dilations = dilations
        self.convs = [keras.layers.Conv1D(self.conv_width, k, padding="causal", dilation_rate=d,
                                          dtype=self.dtype_policy, name=f"conv_{i}")
                      for i, (k, d) in enumerate(zip(kernel_sizes, dilations))]
        self.norms = [keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name=f"conv_norm_{i}")
                      for i in range(len(kernel_sizes))]

    @property
    def receptive_field(self):
        """Steps each convolutional feature reads (the current one included)."""
        return 1 + sum((k - 1) * d for k, d in zip(self.kernel_sizes, self.dilations))

    @property
    def patch_channels(self):
        """Channels the patches are cut from: the prepared values, then the stem's features."""
        return self.value_channels + self.conv_width

    def build(self, inputs_shape):
        super().build(inputs_shape)
        width = self.value_channels
        for conv, norm in zip(self.convs, self.norms):
            conv.build((None, None, width))
            norm.build((None, None, self.conv_width))
            width = self.conv_width

    def features(self, values, mask=None):
        """Prepared (B, T, `value_channels`) values -> (B, T, `patch_channels`): values and stem features."""
        values = series_ops.zero_masked(ops.cast(values, self.compute_dtype), mask)
        x = values
        for conv, norm in zip(self.convs, self.norms):
            x = series_ops.zero_masked(keras.activations.gelu(norm(conv(x))), mask)
        return ops.concatenate([values, x], axis=-1)

    def embed(self, values, mask=None, offset=0):
        return super().embed(self.features(values, mask), mask, offset)

    # === Streaming ===
    def stream_start(self, batch_size):
        """The patch tokenizer's carry, plus the last `receptive_field - 1` prepared steps and their mask
        (zeros and False before the first chunk: the causal convolutions' own left padding)."""
        carry = super().stream_start(batch_size)
        history = self.receptive_field - 1
        carry["history"] = ops.zeros((batch_size, history, self.value_channels))
        carry["history_mask"] = ops.zeros((batch_size, history), "bool")
        return carry

    def stream_tokens(self, values, mask, carry, offset):
        """Features of the chunk computed with the carried steps in front (so they equal the whole sequence's),
        then patched and embedded as `embed` does."""
        steps = ops.shape(values)[1]
        real = ops.ones(ops.shape(values)[:2], "bool") if mask is None else mask
        history = carry["history"]
        full = ops.concatenate([ops.cast(history, values.dtype), values], axis=1)
        full_mask = ops.concatenate([carry["history_mask"], real], axis=1)
        features = self.features(full, full_mask)[:, -steps:]
        carry = dict(carry)
        keep = self.receptive_field - 1
        carry["history"] = ops.cast(full[:, -keep:], "float32") if keep else history
        carry["history_mask"] = full_mask[:, -keep:] if keep else carry["history_mask"]
        return SeriesPatchTokenizer.embed(self, features, mask, offset), carry

    def get_config(self):
        config = super().get_config()
        config.update({"conv_width": self.conv_width, "kernel_sizes": list(self.kernel_sizes),
                       "dilations": list(self.dilations)})
        return config
