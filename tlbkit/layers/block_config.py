"""The hyper-parameters an `AttentionBlock` shares with the `TLBCell` that builds it, in one object."""

import dataclasses

from tlbkit import checks

NORM_MODES = ("pre", "qkv")


@dataclasses.dataclass(frozen=True)
class BlockConfig:
    """Hyper-parameters of an attention + feed-forward block, validated on construction.

    `AttentionBlock` stores one (with `key_dim` resolved) and `TLBCell` stores the one it
    hands to each of its blocks, so each value is stored and serialised in one place. The
    per-block settings (`cross_attention`, `norm_epsilon`) are not part of it. Layer
    configs stay flat: `to_dict()` gives the keys a layer's `get_config()` writes, and
    `from_dict()` reads them back from a (possibly larger) layer config.

    Args:
        dim: int. Width of the token vectors.
        num_heads: int. Attention heads. Defaults to `1`.
        key_dim: int or None. Width per head. Defaults to `dim // num_heads` (then `dim`
            must be divisible by `num_heads`).
        ffn_ratio: float. Feed-forward width as a multiple of `dim`. Defaults to `4`.
        dropout: float. Feed-forward dropout rate. Defaults to `0.0`.
        attention_dropout: float. Dropout rate on the attention probabilities. Defaults to `0.0`.
        norm_mode: str. `"pre"` or `"qkv"` (see `AttentionBlock`). Defaults to `"pre"`.
        gelu_approximate: bool. Tanh approximation of GELU. Defaults to `False`.
        custom_gradient: bool. The hand-written backward pass (`True`) or automatic
            differentiation (see `AttentionBlock`). Defaults to `True`.

    Example:
    >>> config = BlockConfig(dim=16, num_heads=2)
    >>> config.head_dim
    8
    >>> BlockConfig.from_dict({**config.to_dict(), "num_layers": 4}) == config
    True
    """

    dim: int
    num_heads: int = 1
    key_dim: int = None
    ffn_ratio: float = 4
    dropout: float = 0.0
    attention_dropout: float = 0.0
    norm_mode: str = "pre"
    gelu_approximate: bool = False
    custom_gradient: bool = True

    def __post_init__(self):
        checks.positive_int("dim", self.dim)
        checks.positive_int("num_heads", self.num_heads)
        if self.key_dim is None:
            checks.divisible("dim", self.dim, "num_heads", self.num_heads)
        checks.positive_int("key_dim", self.head_dim)
        checks.positive_number("ffn_ratio", self.ffn_ratio)
        checks.rate("dropout", self.dropout)
        checks.rate("attention_dropout", self.attention_dropout)
        checks.one_of("norm_mode", self.norm_mode, NORM_MODES)

    @property
    def head_dim(self):
        """int. Width per head: `key_dim`, or `dim // num_heads` when `key_dim` is None."""
        return self.dim // self.num_heads if self.key_dim is None else self.key_dim

    def resolved(self):
        """The same config with `key_dim` set to `head_dim`."""
        return dataclasses.replace(self, key_dim=self.head_dim)

    def to_dict(self):
        """dict of the fields by name: the flat keys a layer's `get_config()` writes."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, config):
        """The block config in `config`, a dict with at least `dim` (other keys are ignored, so a whole
        `TLBCell` or `AttentionBlock` config works); missing fields take their defaults."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in config.items() if name in names})


def block_config_property(name):
    """A read-only layer attribute that reads field `name` of the layer's `block_config`."""
    return property(lambda self: getattr(self.block_config, name), doc=f"`block_config.{name}` (read-only).")
