"""UTF-8 bytes -> embedded tokens, as in the Long Range Arena byte-level "Text" task."""

import keras

from tlbkit_tasks.common.token_embedding import TokenEmbedding
from tlbkit_tasks.text import text_ops
from tlbkit import checks, registry
from tlbkit.serialization import register_serializable

NUM_BYTE_IDS = 257  # 0 = padding, byte b -> b + 1


@registry.TOKENIZERS.register("bytes")
@register_serializable("tlbkit_tasks.text.ByteTokenizer")
class ByteTokenizer(keras.layers.Layer):
    """Embeds the UTF-8 bytes of each text: (B,) strings -> (B, T, dim) tokens + (B, T) mask.

    Byte `b` becomes id `b + 1`; id 0 is padding and masked out. Each batch is
    padded to its longest text (at least 1 position), so short batches stay
    short. Texts longer than `max_length` bytes are truncated: `"end"` keeps
    the first `max_length` bytes, `"start"` keeps the last ones. A cut may fall
    inside a multi-byte character; at byte level that is harmless.

    Strings are handled with TensorFlow ops (TensorFlow backend). Under other
    backends, feed int ids made by `tasks.text.text_ops.encode_bytes` in the
    tf.data pipeline: any integer input is taken as ids already.

    Args:
        dim: int. Token width (the cell's `dim`).
        max_length: int. Longest byte sequence kept. Defaults to `4096`.
        truncation: str. `"end"` or `"start"`, which part of an over-long text
            is dropped. Defaults to `"end"`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        inputs: (B,) string tensor, or (B, T) int ids (0 = padding).

    Returns:
        dict: `tokens` (B, T, dim), `mask` (B, T) bool, T <= max_length.

    Example:
    >>> out = ByteTokenizer(dim=8, max_length=16)(tf.constant(["héllo", ""]))
    >>> out["tokens"].shape, out["mask"].numpy().sum(axis=1)
    (TensorShape([2, 6, 8]), array([6, 0]))
    """

    def __init__(self, dim, max_length=4096, truncation="end", **kwargs):
        super().__init__(**kwargs)
        checks.positive_int("dim", dim)
        checks.positive_int("max_length", max_length)
        checks.one_of("truncation", truncation, text_ops.TRUNCATIONS)
        self.dim = dim
        self.max_length = max_length
        self.truncation = truncation
        self.embedding = TokenEmbedding(
            NUM_BYTE_IDS, dim, max_length, pad_id=0, dtype=self.dtype_policy, name="byte_embedding"
        )

    def build(self, inputs_shape=None):
        self.embedding.build((None, None))
        self.built = True

    def encode(self, inputs):
        """Strings -> (B, T) int32 byte ids (ints are returned as they are)."""
        return text_ops.byte_ids(inputs, self.max_length, self.truncation)

    def call(self, inputs):
        return self.embedding(self.encode(inputs))

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim, "max_length": self.max_length, "truncation": self.truncation})
        return config
