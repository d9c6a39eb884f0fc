"""UTF-8 bytes -> fewer, richer tokens: byte embeddings down-sampled by strided 1-D convolutions."""

import keras
from keras import ops

from tlbkit import checks, registry
from tlbkit.serialization import register_serializable
from tlbkit_tasks.text import text_ops
from tlbkit_tasks.text.byte_tokenizer import NUM_BYTE_IDS


@registry.TOKENIZERS.register("byte_conv")
@register_serializable("tlbkit_tasks.text.ByteConvTokenizer")
class ByteConvTokenizer(keras.layers.Layer):
    """Embeds each text's UTF-8 bytes and shortens the sequence with strided convolutions.

    Byte `b` becomes id `b + 1` (0 = padding), embedded in `embed_dim`; then one stage per entry of
    `filters`: a 1-D convolution of `kernel_size` with stride 2 and GELU, then LayerNorm, so each stage
    halves the length. The last stage has `dim` channels: with three stages, 2,048 bytes give 256 tokens,
    each summarising about 8 bytes with its neighbours. A token is real (mask `True`) when its window of
    the previous stage holds a real position. A learned position embedding is added.

    Byte-level models of long texts learn slowly at full length (LRA's byte Transformer stays near chance
    for long); the down-sampling gives the TLB encoder word-sized tokens and an eighth of the steps.

    Args:
        dim: int. Token width (the cell's `dim`).
        max_length: int. Longest byte sequence kept. Defaults to `4096`.
        truncation: str. `"end"` keeps the first `max_length` bytes, `"start"` the last. Defaults to `"end"`.
        embed_dim: int. Width of the byte embedding. Defaults to `32`.
        filters: list of int. Channels of the stages before the last (the last has `dim`). Defaults to
            `(64, 64)`: three stages, 8x shorter.
        kernel_size: int. Convolution width. Defaults to `5`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        inputs: (B,) string tensor, or (B, T) int byte ids (0 = padding).

    Returns:
        dict: `tokens` (B, ceil(T / 2^stages), dim), `mask` (B, ceil(T / 2^stages)) bool.

    Example:
    >>> tok = ByteConvTokenizer(dim=16, max_length=64, filters=(8,))
    >>> tok(tf.constant(["hello world", ""]))["tokens"].shape
    TensorShape([2, 3, 16])
    """

    def __init__(self, dim, max_length=4096, truncation="end", embed_dim=32, filters=(64, 64), kernel_size=5,
                 **kwargs):
        super().__init__(**kwargs)
        checks.positive_int("dim", dim)
        checks.positive_int("max_length", max_length)
        checks.one_of("truncation", truncation, text_ops.TRUNCATIONS)
        checks.positive_int("embed_dim", embed_dim)
        checks.positive_int("kernel_size", kernel_size)
        for f in filters:
            checks.positive_int("filters", f)
        self.dim = dim
        self.max_length = max_length
        self.truncation = truncation
        self.embed_dim = embed_dim
        self.filters = tuple(filters)
        self.kernel_size = kernel_size
        channels = list(self.filters) + [dim]
        self.stages = len(channels)
        self.num_tokens = -(-max_length // 2 ** self.stages)
        self.embedding = keras.layers.Embedding(NUM_BYTE_IDS, embed_dim, dtype=self.dtype_policy, name="embedding")
        self.convs = [keras.layers.Conv1D(c, kernel_size, strides=2, padding="same", dtype=self.dtype_policy,
                                          name=f"conv_{i}") for i, c in enumerate(channels)]
        self.norms = [keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name=f"norm_{i}")
                      for i in range(len(channels))]
        self.position = keras.layers.Embedding(self.num_tokens, dim, dtype=self.dtype_policy, name="position")

    def build(self, inputs_shape=None):
        self.embedding.build((None, None))
        width = self.embed_dim
        for conv, norm in zip(self.convs, self.norms):
            conv.build((None, None, width))
            width = conv.filters
            norm.build((None, None, width))
        self.position.build((None,))
        self.built = True

    def call(self, inputs):
        ids = ops.cast(text_ops.byte_ids(inputs, self.max_length, self.truncation), "int32")
        mask = ops.not_equal(ids, 0)
        x = self.embedding(ids) * ops.cast(mask, self.compute_dtype)[..., None]
        for conv, norm in zip(self.convs, self.norms):
            length = ops.shape(mask)[1]
            mask = ops.pad(mask, [[0, 0], [0, length % 2]], constant_values=False)
            mask = ops.any(ops.reshape(mask, (ops.shape(mask)[0], -1, 2)), axis=-1)
            x = norm(ops.gelu(conv(x), approximate=True)) * ops.cast(mask, self.compute_dtype)[..., None]
        n = ops.shape(x)[1]
        x = x + self.position(ops.arange(n))[None]
        return {"tokens": x * ops.cast(mask, self.compute_dtype)[..., None], "mask": mask}

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim, "max_length": self.max_length, "truncation": self.truncation,
                       "embed_dim": self.embed_dim, "filters": list(self.filters), "kernel_size": self.kernel_size})
        return config
