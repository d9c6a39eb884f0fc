"""Classification head reading an encoder's output dict."""

import keras
from keras import ops

from tlbkit import checks
from tlbkit.serialization import register_serializable

POOLINGS = ("state", "last_chunk", "mean")


def masked_mean(x, mask):
    """Mean over axis 1 of (B, S, D), counting only positions where mask is True."""
    if mask is None:
        return ops.mean(x, axis=1)
    w = ops.cast(mask, x.dtype)[..., None]
    total = ops.sum(x * w, axis=1)
    count = ops.maximum(ops.sum(w, axis=1), ops.cast(1.0, x.dtype))
    return total / count


def last_chunk_mask(mask, chunk_size):
    """(B, T) mask -> (B, T) mask of the real tokens in each row's last non-empty chunk."""
    mask = ops.cast(mask, "int32")
    length = ops.shape(mask)[1]
    positions = ops.arange(length, dtype="int32")
    last_position = ops.max(ops.where(mask > 0, positions[None, :], -1), axis=1)
    last_chunk = ops.maximum(last_position, 0) // chunk_size
    in_chunk = ops.equal(positions[None, :] // chunk_size, last_chunk[:, None])
    return ops.logical_and(in_chunk, mask > 0)


@register_serializable("tlbkit.layers.ClassificationHead")
class ClassificationHead(keras.layers.Layer):
    """Pools an encoder's outputs and maps them to class logits.

    Pooling:
    - `"state"`: LayerNorm, then mean over the encoder's `state` vectors (the
      TLB's slow latents; all tokens for the Transformer; the last hidden state
      for the LSTM), as the paper's LRA code does.
    - `"last_chunk"`: mean over the fast-stream outputs of each sequence's last
      non-empty chunk, as the keras-io example does (`norm=False` there).
    - `"mean"`: mean over the fast-stream outputs of every real token of every
      chunk: each chunk reaches the logits directly as well as through the slow
      state (the fast stream of a chunk reads the slow state of the chunks before).

    Args:
        num_classes: int. Number of logits.
        pooling: str. `"state"`, `"last_chunk"` or `"mean"`. Defaults to `"state"`.
        chunk_size: int. Chunk length; required for `"last_chunk"`.
        norm: bool. LayerNorm before pooling. Defaults to `True`.
        dropout: float. Dropout before the final projection. Defaults to `0.0`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        outputs: dict from an encoder (`sequence`, `mask`, `state`, optionally
            `state_mask`).

    Returns:
        (B, num_classes) float32 logits.
    """

    def __init__(self, num_classes, pooling="state", chunk_size=None, norm=True, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        checks.positive_int("num_classes", num_classes)
        checks.one_of("pooling", pooling, POOLINGS)
        checks.rate("dropout", dropout)
        if pooling == "last_chunk":
            if chunk_size is None:
                raise ValueError(
                    "ClassificationHead(pooling='last_chunk') needs `chunk_size`. "
                    "Received: chunk_size=None"
                )
            checks.positive_int("chunk_size", chunk_size)
        self.num_classes = num_classes
        self.pooling = pooling
        self.chunk_size = chunk_size
        self.norm = norm
        self.dropout = dropout
        self.norm_layer = (
            keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name="norm")
            if norm
            else None
        )
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(num_classes, dtype="float32", name="logits")

    def build(self, outputs_shape=None):
        dim = None
        if isinstance(outputs_shape, dict):
            key = "state" if self.pooling == "state" else "sequence"
            dim = outputs_shape[key][-1]
        if dim is None:
            raise ValueError("ClassificationHead must be built from an encoder output dict.")
        if self.norm_layer is not None:
            self.norm_layer.build((None, None, dim))
        self.dense.build((None, dim))
        self.built = True

    def pool(self, outputs):
        if self.pooling == "state":
            x, mask = outputs["state"], outputs.get("state_mask")
        elif self.pooling == "mean":
            x, mask = outputs["sequence"], outputs.get("mask")
        else:
            x = outputs["sequence"]
            mask = last_chunk_mask(outputs["mask"], self.chunk_size)
        if self.norm_layer is not None:
            x = self.norm_layer(x)
        return masked_mean(x, mask)

    def call(self, outputs, training=None):
        x = self.dropout_layer(self.pool(outputs), training=training)
        return self.dense(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "pooling": self.pooling,
                "chunk_size": self.chunk_size,
                "norm": self.norm,
                "dropout": self.dropout,
            }
        )
        return config
