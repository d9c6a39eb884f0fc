"""Baseline: a plain Transformer encoder with full attention over all tokens."""

import keras
from keras import ops

from tlbkit import checks
from tlbkit.layers.attention_block import AttentionBlock
from tlbkit.layers.sequence_ops import full_mask
from tlbkit.serialization import register_serializable


@register_serializable("tlbkit.layers.TransformerEncoder")
class TransformerEncoder(keras.layers.Layer):
    """ViT-style encoder: `num_layers` pre-LN self-attention blocks over the whole sequence.

    It takes the same (B, T, dim) tokens and padding mask as `TLBEncoder` and
    returns the same dict, so the same heads and tasks run on it. Its cost is
    quadratic in T.

    Args:
        dim: int. Token width.
        num_heads: int. Attention heads. Defaults to `4`.
        num_layers: int. Blocks. Defaults to `4`.
        ffn_ratio: float. Feed-forward width multiple. Defaults to `4`.
        dropout: float. Feed-forward dropout. Defaults to `0.1`.
        attention_dropout: float. Attention-probability dropout. Defaults to `0.0`.
        custom_gradient: bool. See `AttentionBlock`. Defaults to `True`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Returns (from `call`):
        dict with `sequence` (B, T, dim), `mask` (B, T), `state` = `sequence`
        and `state_mask` = `mask` (so state pooling is global average pooling).
    """

    def __init__(self, dim, num_heads=4, num_layers=4, ffn_ratio=4, dropout=0.1, attention_dropout=0.0,
                 custom_gradient=True, **kwargs):
        super().__init__(**kwargs)
        checks.positive_int("num_layers", num_layers)
        self.custom_gradient = custom_gradient
        self.dim = dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.ffn_ratio = ffn_ratio
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.blocks = [
            AttentionBlock(
                dim=dim,
                num_heads=num_heads,
                ffn_ratio=ffn_ratio,
                dropout=dropout,
                attention_dropout=attention_dropout,
                custom_gradient=custom_gradient,
                dtype=self.dtype_policy,
                name=f"block_{i}",
            )
            for i in range(num_layers)
        ]

    def build(self, tokens_shape=None, padding_mask_shape=None):
        for b in self.blocks:
            b.build((None, None, self.dim))
        self.built = True

    def call(self, tokens, padding_mask=None, training=None):
        mask = full_mask(tokens, padding_mask)
        x = tokens
        for b in self.blocks:
            x = b(x, context_mask=mask, training=training)
        x = x * ops.cast(mask, x.dtype)[..., None]
        return {"sequence": x, "mask": mask, "state": x, "state_mask": mask}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "dim": self.dim,
                "num_heads": self.num_heads,
                "num_layers": self.num_layers,
                "ffn_ratio": self.ffn_ratio,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "custom_gradient": self.custom_gradient,
            }
        )
        return config
