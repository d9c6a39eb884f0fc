"""One token per time step: a linear projection of the step's channels."""

from tlbkit import registry
from tlbkit.serialization import register_serializable
from tlbkit_tasks.timeseries.patch_tokenizer import SeriesPatchTokenizer


@registry.TOKENIZERS.register("series_linear")
@register_serializable("tlbkit_tasks.timeseries.SeriesLinearTokenizer")
class SeriesLinearTokenizer(SeriesPatchTokenizer):
    """Projects each time step's C channels to a `dim`-wide token, plus a position embedding.

    A `SeriesPatchTokenizer` with one step per patch; normalisation, lengths, masks and positions work as
    there.

    Args:
        dim: int. Token width (the cell's `dim`).
        max_length: int or None. Longest series kept, in steps; None = the build length, no cut.
        normalize: str. `"dataset"`, `"series"` or `"none"`. Defaults to `"dataset"`.
        position_period: int or None. Position ids modulo this. Defaults to `None`.
        differences: bool. Add each channel's first difference as a channel. Defaults to `False`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Example:
    >>> tok = SeriesLinearTokenizer(dim=8, normalize="series")
    >>> tok({"values": np.ones((2, 10, 3)), "mask": np.ones((2, 10), bool)})["tokens"].shape
    (2, 10, 8)
    """

    def __init__(self, dim, max_length=None, normalize="dataset", position_period=None, differences=False, **kwargs):
        for fixed in ("patch_length", "stride", "target_tokens"):
            kwargs.pop(fixed, None)
        super().__init__(dim, patch_length=1, max_length=max_length, normalize=normalize,
                         position_period=position_period, differences=differences, **kwargs)

    def get_config(self):
        config = super().get_config()
        for fixed in ("patch_length", "stride", "target_tokens"):
            config.pop(fixed)
        return config
