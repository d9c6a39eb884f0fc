"""Integer tokens -> vectors, with a learned position embedding and a padding mask."""

import keras
from keras import ops

from tlbkit import registry
from tlbkit.api_export import tlbkit_export
from tlbkit.layers import checks


@registry.TOKENIZERS.register("embedding")
@tlbkit_export("tlbkit_tasks.common.TokenEmbedding")
class TokenEmbedding(keras.layers.Layer):
    """Embeds integer ids (B, T) into (B, T, dim) tokens plus a (B, T) mask.

    Args:
        vocab_size: int. Number of ids, including the padding id.
        dim: int. Output width.
        max_length: int. Longest sequence (size of the position table).
        pad_id: int or None. Id marking padding (masked out). Defaults to `None`
            (no padding).
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, vocab_size, dim, max_length, pad_id=None, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("vocab_size", vocab_size), ("dim", dim), ("max_length", max_length)):
            checks.positive_int(name, value)
        self.vocab_size = vocab_size
        self.dim = dim
        self.max_length = max_length
        self.pad_id = pad_id
        self.embedding = keras.layers.Embedding(vocab_size, dim, dtype=self.dtype_policy, name="embedding")
        self.position = keras.layers.Embedding(max_length, dim, dtype=self.dtype_policy, name="position")

    def build(self, ids_shape=None):
        self.embedding.build((None, None))
        self.position.build((None, None))
        self.built = True

    def call(self, ids):
        ids = ops.cast(ids, "int32")
        length = ids.shape[1]
        if isinstance(length, int) and length > self.max_length:
            raise ValueError(
                f"Sequence length {length} exceeds max_length={self.max_length}. "
                "Raise max_length or truncate the inputs."
            )
        x = self.embedding(ids) + self.position(ops.arange(ops.shape(ids)[1]))[None]
        mask = None if self.pad_id is None else ops.not_equal(ids, self.pad_id)
        return {"tokens": x} if mask is None else {"tokens": x, "mask": mask}

    def get_config(self):
        config = super().get_config()
        config.update(
            {"vocab_size": self.vocab_size, "dim": self.dim, "max_length": self.max_length, "pad_id": self.pad_id}
        )
        return config
