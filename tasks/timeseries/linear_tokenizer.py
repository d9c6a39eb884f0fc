"""One token per time step: a linear projection of the step's channels."""

import keras
from keras import ops

from tlbkit_tasks.timeseries import series_ops
from tlbkit import registry
from tlbkit.api_export import tlbkit_export
from tlbkit.layers import checks


@registry.TOKENIZERS.register("series_linear")
@tlbkit_export("tlbkit_tasks.timeseries.SeriesLinearTokenizer")
class SeriesLinearTokenizer(keras.layers.Layer):
    """Projects each time step's C channels to a `dim`-wide token, plus a position embedding.

    Optionally standardises each series first (per channel, mean and standard
    deviation over its real steps only). Steps beyond `max_length` are
    dropped. Masked steps (padding, or missing values marked by the dataset)
    are zeroed and keep mask `False`.

    Positions are absolute (`0..max_length-1`) or, with `position_period`,
    taken modulo it: set it to the encoder's `chunk_size` to stream series of
    any length chunk by chunk (each chunk then sees positions 0..chunk_size-1).

    Args:
        dim: int. Token width (the cell's `dim`).
        max_length: int. Longest series kept, in steps. Defaults to `4096`.
        normalize: bool. Per-series standardisation. Defaults to `True`.
        position_period: int or None. Position ids modulo this. Defaults to `None`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        inputs: `{"values": (B, T, C) or (B, T), "mask": (B, T) bool}` (mask
            optional), a `(values, mask)` pair, or a values tensor.

    Returns:
        dict: `tokens` (B, T, dim), `mask` (B, T) bool or None.

    Example:
    >>> tok = SeriesLinearTokenizer(dim=8, max_length=32)
    >>> tok({"values": np.ones((2, 10, 3)), "mask": np.ones((2, 10), bool)})["tokens"].shape
    (2, 10, 8)
    """

    def __init__(self, dim, max_length=4096, normalize=True, position_period=None, **kwargs):
        super().__init__(**kwargs)
        checks.positive_int("dim", dim)
        checks.positive_int("max_length", max_length)
        if position_period is not None:
            checks.positive_int("position_period", position_period)
        self.dim = dim
        self.max_length = max_length
        self.normalize = normalize
        self.position_period = position_period
        self.projection = keras.layers.Dense(dim, dtype=self.dtype_policy, name="projection")
        self.position = keras.layers.Embedding(
            position_period or max_length, dim, dtype=self.dtype_policy, name="position"
        )

    def build(self, inputs_shape):
        channels = series_ops.values_shape(inputs_shape)[-1]
        if channels is None:
            raise ValueError(f"SeriesLinearTokenizer needs a static channel count. Received shape: {inputs_shape}")
        self.projection.build((None, None, channels))
        self.position.build((None,))
        self.built = True

    def embed(self, values, mask=None, offset=0):
        """Tokens of (already normalised) values (B, T, C); positions start at `offset`."""
        values = series_ops.zero_masked(ops.cast(values, self.compute_dtype), mask)
        tokens = self.projection(values)
        positions = series_ops.position_ids(ops.shape(values)[1], offset, self.position_period)
        tokens = tokens + self.position(positions)[None]
        return {"tokens": series_ops.zero_masked(tokens, mask), "mask": mask}

    def call(self, inputs):
        values, mask = series_ops.prepare(inputs, self.max_length, self.normalize)
        return self.embed(values, mask)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "dim": self.dim,
                "max_length": self.max_length,
                "normalize": self.normalize,
                "position_period": self.position_period,
            }
        )
        return config
