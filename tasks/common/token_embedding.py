"""Integer tokens -> vectors, with a learned position embedding and a padding mask."""

import keras
from keras import ops

from tlbkit import checks, registry
from tlbkit.serialization import register_serializable
from tlbkit.streaming import StreamingTokenizer


@registry.TOKENIZERS.register("embedding")
@register_serializable("tlbkit_tasks.common.TokenEmbedding")
class TokenEmbedding(StreamingTokenizer):
    """Embeds integer ids (B, T) into (B, T, dim) tokens plus a (B, T) mask.

    It streams exactly (`tlbkit.streaming`): one token per id, positions continued from the chunk's offset,
    nothing carried between chunks.

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
        return self._embed(ids)

    def _embed(self, ids, offset=0):
        """(B, n) int32 ids at positions `offset + [0, n)` -> the tokenizer's output."""
        positions = ops.arange(ops.shape(ids)[1], dtype="int32") + ops.cast(offset, "int32")
        x = self.embedding(ids) + self.position(positions)[None]
        mask = None if self.pad_id is None else ops.not_equal(ids, self.pad_id)
        return {"tokens": x} if mask is None else {"tokens": x, "mask": mask}

    # === Streaming (tlbkit.streaming.StreamingTokenizer) ===
    def stream_steps(self, chunk_size):
        return chunk_size  # one token per id

    def stream_embed(self, raw_chunk, carry, offset):
        return self._embed(ops.cast(raw_chunk, "int32"), offset), carry

    def stream_max_tokens(self):
        return self.max_length

    def get_config(self):
        config = super().get_config()
        config.update(
            {"vocab_size": self.vocab_size, "dim": self.dim, "max_length": self.max_length, "pad_id": self.pad_id}
        )
        return config
