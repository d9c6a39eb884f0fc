"""Baseline: a stacked LSTM encoder."""

import keras
from keras import ops

from tlbkit import checks
from tlbkit.layers.sequence_ops import full_mask
from tlbkit.serialization import register_serializable


@register_serializable("tlbkit.layers.LSTMEncoder")
class LSTMEncoder(keras.layers.Layer):
    """Stacked LSTM over the tokens, honouring the padding mask.

    Takes the same inputs as `TLBEncoder` and returns the same dict; `state`
    is the last layer's final hidden state, (B, 1, dim).

    Args:
        dim: int. Hidden width (and token width).
        num_layers: int. Stacked LSTM layers. Defaults to `1`.
        dropout: float. Dropout between layers. Defaults to `0.0`.
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, dim, num_layers=1, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        checks.positive_int("dim", dim)
        checks.positive_int("num_layers", num_layers)
        checks.rate("dropout", dropout)
        self.dim = dim
        self.num_layers = num_layers
        self.dropout = dropout
        self.lstms = [
            keras.layers.LSTM(dim, return_sequences=True, return_state=True, dtype=self.dtype_policy, name=f"lstm_{i}")
            for i in range(num_layers)
        ]
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, tokens_shape=None, padding_mask_shape=None):
        for lstm in self.lstms:
            lstm.build((None, None, self.dim))
        self.built = True

    def call(self, tokens, padding_mask=None, training=None):
        mask = full_mask(tokens, padding_mask)
        x = tokens
        h = None
        for i, lstm in enumerate(self.lstms):
            if i:
                x = self.dropout_layer(x, training=training)
            x, h, _ = lstm(x, mask=mask, training=training)
        x = x * ops.cast(mask, x.dtype)[..., None]
        return {"sequence": x, "mask": mask, "state": h[:, None, :]}

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim, "num_layers": self.num_layers, "dropout": self.dropout})
        return config
