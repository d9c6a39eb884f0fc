"""One token per patch of consecutive time steps (PatchTST-style)."""

import keras
from keras import ops

from tlbkit_tasks.timeseries import series_ops
from tlbkit import registry
from tlbkit.api_export import tlbkit_export
from tlbkit.layers import checks


@registry.TOKENIZERS.register("series_patch")
@tlbkit_export("tlbkit_tasks.timeseries.SeriesPatchTokenizer")
class SeriesPatchTokenizer(keras.layers.Layer):
    """Cuts a series into patches of `patch_length` steps and projects each to a token.

    Patch `i` covers steps `[i * stride, i * stride + patch_length)` of all
    channels (flattened to `patch_length * C` numbers); the series is padded
    at the end so the last patch is complete. A patch is real (mask `True`) if
    any of its steps is; masked steps are zeroed before the projection.
    Optionally standardises each series first (per channel, over its real
    steps only). Steps beyond `max_length` are dropped.

    Positions are absolute patch indices or, with `position_period`, taken
    modulo it: set it to the encoder's `chunk_size` (in patches) to stream a
    series of any length (feed `chunk_size * patch_length` steps per chunk,
    with `stride == patch_length`).

    Args:
        dim: int. Token width (the cell's `dim`).
        patch_length: int. Steps per patch.
        stride: int or None. Steps between patch starts. Defaults to
            `patch_length` (non-overlapping patches).
        max_length: int. Longest series kept, in steps. Defaults to `4096`.
        normalize: bool. Per-series standardisation. Defaults to `True`.
        position_period: int or None. Position ids modulo this. Defaults to `None`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        inputs: `{"values": (B, T, C) or (B, T), "mask": (B, T) bool}` (mask
            optional), a `(values, mask)` pair, or a values tensor.

    Returns:
        dict: `tokens` (B, N, dim) and `mask` (B, N) bool (or None), with
        `N = ceil(max(T - patch_length, 0) / stride) + 1` patches.

    Example:
    >>> tok = SeriesPatchTokenizer(dim=8, patch_length=4, max_length=64)
    >>> tok(np.ones((2, 10, 3)))["tokens"].shape
    (2, 3, 8)

    Reference: Nie et al., "A Time Series is Worth 64 Words", ICLR 2023,
    arXiv:2211.14730.
    """

    def __init__(self, dim, patch_length, stride=None, max_length=4096, normalize=True, position_period=None,
                 **kwargs):
        super().__init__(**kwargs)
        checks.positive_int("dim", dim)
        checks.positive_int("patch_length", patch_length)
        stride = patch_length if stride is None else stride
        checks.positive_int("stride", stride)
        checks.positive_int("max_length", max_length)
        if position_period is not None:
            checks.positive_int("position_period", position_period)
        self.dim = dim
        self.patch_length = patch_length
        self.stride = stride
        self.max_length = max_length
        self.normalize = normalize
        self.position_period = position_period
        self.projection = keras.layers.Dense(dim, dtype=self.dtype_policy, name="projection")
        self.position = keras.layers.Embedding(
            position_period or self.num_patches(max_length), dim, dtype=self.dtype_policy, name="position"
        )

    def num_patches(self, length):
        """Patches of a `length`-step series (an int or a scalar tensor)."""
        if isinstance(length, int):
            return -(-max(length - self.patch_length, 0) // self.stride) + 1
        return (ops.maximum(length - self.patch_length, 0) + self.stride - 1) // self.stride + 1

    def build(self, inputs_shape):
        channels = series_ops.values_shape(inputs_shape)[-1]
        if channels is None:
            raise ValueError(f"SeriesPatchTokenizer needs a static channel count. Received shape: {inputs_shape}")
        self.projection.build((None, None, self.patch_length * channels))
        self.position.build((None,))
        self.built = True

    def patches(self, values, mask=None):
        """(B, T, C) values -> (B, N, patch_length * C) patches and (B, N) mask."""
        length = values.shape[1] if isinstance(values.shape[1], int) else ops.shape(values)[1]
        channels = values.shape[-1]
        n = self.num_patches(length)
        pad = (n - 1) * self.stride + self.patch_length - length
        if mask is None:
            mask = ops.ones((ops.shape(values)[0], length), "bool")
        values = ops.pad(values, [[0, 0], [0, pad], [0, 0]])
        mask = ops.pad(mask, [[0, 0], [0, pad]], constant_values=False)
        if self.stride == self.patch_length:
            patches = ops.reshape(values, (-1, n, self.patch_length * channels))
            patch_mask = ops.any(ops.reshape(mask, (-1, n, self.patch_length)), axis=-1)
        else:
            index = ops.arange(n)[:, None] * self.stride + ops.arange(self.patch_length)[None, :]
            patches = ops.reshape(ops.take(values, index, axis=1), (-1, n, self.patch_length * channels))
            patch_mask = ops.any(ops.take(mask, index, axis=1), axis=-1)
        return patches, patch_mask

    def embed(self, values, mask=None, offset=0):
        """Tokens of (already normalised) values (B, T, C); patch positions start at `offset`."""
        values = series_ops.zero_masked(ops.cast(values, self.compute_dtype), mask)
        had_mask = mask is not None
        patches, patch_mask = self.patches(values, mask)
        tokens = self.projection(patches)
        n = ops.shape(patches)[1]
        tokens = tokens + self.position(series_ops.position_ids(n, offset, self.position_period))[None]
        length = values.shape[1]
        if not had_mask and isinstance(length, int) and (length - self.patch_length) % self.stride == 0:
            return {"tokens": tokens, "mask": None}  # every patch is complete and real
        return {"tokens": series_ops.zero_masked(tokens, patch_mask), "mask": patch_mask}

    def call(self, inputs):
        values, mask = series_ops.prepare(inputs, self.max_length, self.normalize)
        return self.embed(values, mask)

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
            }
        )
        return config
