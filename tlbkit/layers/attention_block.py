"""Pre-LayerNorm attention + feed-forward block, used for self- and cross-attention."""

import math

import keras
from keras import ops

from tlbkit.layers import attention_math
from tlbkit.layers.block_config import BlockConfig, block_config_property
from tlbkit.serialization import register_serializable


@register_serializable("tlbkit.layers.AttentionBlock")
class AttentionBlock(keras.layers.Layer):
    """Pre-LayerNorm multi-head attention with residual, then a feed-forward block.

    `y = x + MHA(LN(x), LN(c)); out = y + FFN(LN(y))` where `c` is `x` itself
    (self-attention) or a context sequence (cross-attention). The LayerNorm affine
    parameters are folded into the query/key/value projection at call time, so
    the fused path does one matmul for Q, K and V in self-attention.

    Two normalisation layouts are supported:
    - `"pre"`: one LayerNorm on the queries and, in cross-attention, one on the
      context (the usual pre-LN Transformer).
    - `"qkv"`: three LayerNorms, one each for query, key and value inputs, as
      the keras-io "When Recurrence meets Transformers" example does.

    Dropout can be driven by precomputed boolean keep masks (`attention_keep`,
    `ffn_keep`); this is how the recurrent encoder runs dropout inside a
    backend loop without carrying random-generator state through it.

    Args:
        dim: int. Width of the token vectors (input and output).
        num_heads: int. Number of attention heads. Defaults to `1`.
        key_dim: int. Width of each head. Defaults to `dim // num_heads`.
        ffn_ratio: float. Hidden width of the feed-forward block as a multiple of
            `dim`. Defaults to `4`.
        dropout: float. Dropout after the feed-forward block. Defaults to `0.0`.
        attention_dropout: float. Dropout on the attention probabilities.
            Defaults to `0.0`.
        norm_mode: str. `"pre"` or `"qkv"` (see above). Defaults to `"pre"`.
        cross_attention: bool. Whether the block will be called with a context.
            Only changes the weights in `"pre"` mode (adds the context
            LayerNorm). Defaults to `False`.
        norm_epsilon: float. LayerNorm epsilon. Defaults to `1e-5`.
        gelu_approximate: bool. Tanh approximation of GELU. Defaults to `False`.
        custom_gradient: bool. Train through the hand-written backward pass
            (`attention_math.block_apply`: less memory, faster tracing) or, with
            `False`, through automatic differentiation of the same forward pass
            (`attention_math.block_forward`, the reference). The outputs are the
            same. Defaults to `True`. Known limit: on an H200 under JAX 0.11.2,
            XLA failed to compile the automatic gradient of a whole `TLBEncoder`
            (its chunk scan; "Shapes must be equal rank"); `True` trains there
            (docs/experiments/2026-12-04-gpu-cifar10-h200.md).
        **kwargs: forwarded to `keras.layers.Layer`.

    The shared hyper-parameters (all but `cross_attention` and `norm_epsilon`)
    are stored once, in `block_config` (a `BlockConfig` with `key_dim`
    resolved), and read through attributes of the same names.

    Call arguments:
        inputs: (B, Q, dim) tensor, the queries and residual stream.
        context: optional (B, K, dim) tensor. Keys/values; `None` means
            self-attention.
        context_mask: optional (B, K) boolean tensor, `True` for real tokens.
        attention_keep: optional (B, H, Q, K) boolean dropout mask, `True` where kept.
        ffn_keep: optional (B, Q, dim) boolean dropout mask.
        training: bool. Dropout is applied only when `True`.
        return_attention_scores: bool. Also return the (B, H, Q, K) probabilities.
        weights: optional dict from `folded_weights` (computed once outside a loop).

    Example:
    >>> block = AttentionBlock(dim=16, num_heads=2)
    >>> block(keras.random.normal((2, 5, 16))).shape
    (2, 5, 16)
    """

    def __init__(
        self,
        dim,
        num_heads=1,
        key_dim=None,
        ffn_ratio=4,
        dropout=0.0,
        attention_dropout=0.0,
        norm_mode="pre",
        cross_attention=False,
        norm_epsilon=1e-5,
        gelu_approximate=False,
        custom_gradient=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.block_config = BlockConfig(
            dim=dim,
            num_heads=num_heads,
            key_dim=key_dim,
            ffn_ratio=ffn_ratio,
            dropout=dropout,
            attention_dropout=attention_dropout,
            norm_mode=norm_mode,
            gelu_approximate=gelu_approximate,
            custom_gradient=custom_gradient,
        ).resolved()
        self.cross_attention = cross_attention
        self.norm_epsilon = norm_epsilon
        self.ffn_dim = int(round(dim * ffn_ratio))
        self.seed_generator = keras.random.SeedGenerator()
        self.supports_masking = False

    @classmethod
    def from_block_config(cls, block_config, cross_attention=False, norm_epsilon=1e-5, **kwargs):
        """A block with the hyper-parameters of `block_config` (a `BlockConfig`), as `TLBCell` builds them.

        Args:
            block_config: `BlockConfig`.
            cross_attention: bool. See the class. Defaults to `False`.
            norm_epsilon: float. LayerNorm epsilon. Defaults to `1e-5`.
            **kwargs: forwarded to `keras.layers.Layer` (`name`, `dtype`).
        """
        return cls(**block_config.to_dict(), cross_attention=cross_attention, norm_epsilon=norm_epsilon, **kwargs)

    dim = block_config_property("dim")
    num_heads = block_config_property("num_heads")
    key_dim = block_config_property("key_dim")
    ffn_ratio = block_config_property("ffn_ratio")
    dropout = block_config_property("dropout")
    attention_dropout = block_config_property("attention_dropout")
    norm_mode = block_config_property("norm_mode")
    gelu_approximate = block_config_property("gelu_approximate")
    custom_gradient = block_config_property("custom_gradient")

    # === Weights ===
    def build(self, inputs_shape=None):
        width = self.num_heads * self.key_dim
        # In "pre" mode: row 0 normalises queries (and keys/values in
        # self-attention), row 1 the context in cross-attention. In "qkv"
        # mode: rows 0, 1, 2 normalise query, key and value inputs.
        if self.norm_mode == "qkv":
            num_norms = 3
        else:
            num_norms = 2 if self.cross_attention else 1
        self.norm_scale = self.add_weight(
            name="norm_scale", shape=(num_norms, self.dim), initializer="ones"
        )
        self.norm_shift = self.add_weight(
            name="norm_shift", shape=(num_norms, self.dim), initializer="zeros"
        )
        self.qkv_kernel = self.add_weight(
            name="qkv_kernel",
            shape=(self.dim, 3, width),
            initializer="glorot_uniform",
        )
        self.qkv_bias = self.add_weight(
            name="qkv_bias", shape=(3, width), initializer="zeros"
        )
        self.output_kernel = self.add_weight(
            name="output_kernel", shape=(width, self.dim), initializer="glorot_uniform"
        )
        self.output_bias = self.add_weight(
            name="output_bias", shape=(self.dim,), initializer="zeros"
        )
        self.ffn_norm_scale = self.add_weight(
            name="ffn_norm_scale", shape=(self.dim,), initializer="ones"
        )
        self.ffn_norm_shift = self.add_weight(
            name="ffn_norm_shift", shape=(self.dim,), initializer="zeros"
        )
        self.ffn_kernel_1 = self.add_weight(
            name="ffn_kernel_1", shape=(self.dim, self.ffn_dim), initializer="glorot_uniform"
        )
        self.ffn_bias_1 = self.add_weight(
            name="ffn_bias_1", shape=(self.ffn_dim,), initializer="zeros"
        )
        self.ffn_kernel_2 = self.add_weight(
            name="ffn_kernel_2", shape=(self.ffn_dim, self.dim), initializer="glorot_uniform"
        )
        self.ffn_bias_2 = self.add_weight(
            name="ffn_bias_2", shape=(self.dim,), initializer="zeros"
        )
        self.built = True

    # === Helpers ===
    def _norm_rows(self, rows):
        """Scale/shift rows (m, dim) for the requested projections."""
        scale = ops.stack([self.norm_scale[i] for i in rows], axis=0)
        shift = ops.stack([self.norm_shift[i] for i in rows], axis=0)
        return scale, shift

    def _fold(self, parts, rows):
        """(kernel, bias) of `LN_j(x) @ W_j + b_j` for the parts j, as one matmul on std(x).

        `LN(x) @ W + b = std(x) @ (diag(scale) W) + (shift @ W + b)`.

        Args:
            parts: list of projection indices (0=query, 1=key, 2=value).
            rows: list of LayerNorm rows, one per part.
        """
        kernel = self.qkv_kernel
        bias = self.qkv_bias
        if parts != [0, 1, 2]:
            kernel = ops.stack([kernel[:, p, :] for p in parts], axis=1)
            bias = ops.stack([bias[p] for p in parts], axis=0)
        scale, shift = self._norm_rows(rows)
        # kernel: (dim, m, width); scale/shift: (m, dim).
        folded_kernel = kernel * ops.expand_dims(ops.transpose(scale), -1)
        folded_bias = bias + ops.einsum("md,dmw->mw", shift, kernel)
        width = self.num_heads * self.key_dim * len(parts)
        return ops.reshape(folded_kernel, (self.dim, width)), ops.reshape(folded_bias, (width,))

    def folded_weights(self, kind="self"):
        """The weights one application uses, with the LayerNorm affines folded in.

        A loop over chunks computes these once, outside the loop, and passes
        them to `call(weights=...)`, so each iteration runs only the
        activation-side ops.

        Args:
            kind: str. `"self"` or `"cross"` (attention to a context).
        """
        w = {}
        width = self.num_heads * self.key_dim
        q_scale = 1.0 / math.sqrt(self.key_dim)  # attention's 1/sqrt(d), folded into the queries
        if kind == "self":
            kernel, bias = self._fold([0, 1, 2], [0, 1, 2] if self.norm_mode == "qkv" else [0, 0, 0])
            column_scale = ops.concatenate(
                [ops.full((width,), q_scale, dtype=kernel.dtype), ops.ones((2 * width,), dtype=kernel.dtype)]
            )
            w["qkv"] = (kernel * column_scale, bias * column_scale)
        else:
            if self.norm_mode == "pre" and not self.cross_attention:
                raise ValueError(
                    f"AttentionBlock '{self.name}' was built with cross_attention=False but called with "
                    "a context. Pass cross_attention=True to create the context LayerNorm."
                )
            kernel, bias = self._fold([0], [0])
            w["q"] = (kernel * q_scale, bias * q_scale)
            w["kv"] = self._fold([1, 2], [1, 2] if self.norm_mode == "qkv" else [1, 1])
        w["out"] = (self.output_kernel, self.output_bias)
        kernel_1 = self.ffn_kernel_1 * ops.expand_dims(self.ffn_norm_scale, -1)
        bias_1 = self.ffn_bias_1 + ops.matmul(self.ffn_norm_shift[None], self.ffn_kernel_1)[0]
        w["ffn1"] = (kernel_1, bias_1)
        w["ffn2"] = (self.ffn_kernel_2, self.ffn_bias_2)
        return w

    def dropout_specs(self, batch_size, query_length, key_length):
        """`{name: (shape, rate)}` of the dropout keep masks one application consumes.

        Names `"attention"` and `"ffn"`, present only where the rate is > 0 (see
        `TLBCell.sample_noise`).
        """
        specs = {}
        if self.attention_dropout > 0:
            specs["attention"] = ((batch_size, self.num_heads, query_length, key_length), self.attention_dropout)
        if self.dropout > 0:
            specs["ffn"] = ((batch_size, query_length, self.dim), self.dropout)
        return specs

    # === Forward ===
    def call(
        self,
        inputs,
        context=None,
        context_mask=None,
        attention_keep=None,
        ffn_keep=None,
        training=None,
        return_attention_scores=False,
        weights=None,
    ):
        cross = context is not None
        w = weights if weights is not None else self.folded_weights("cross" if cross else "self")
        if training:
            batch, queries = ops.shape(inputs)[0], ops.shape(inputs)[1]
            keys = ops.shape(context)[1] if cross else queries
            specs = self.dropout_specs(batch, queries, keys)
            if attention_keep is None and "attention" in specs:
                attention_keep = attention_math.draw_keep(*specs["attention"], self.seed_generator)
            if ffn_keep is None and "ffn" in specs:
                ffn_keep = attention_math.draw_keep(*specs["ffn"], self.seed_generator)
        else:
            attention_keep = ffn_keep = None
        spec = attention_math.BlockSpec(
            self.num_heads, self.norm_epsilon, self.gelu_approximate, cross, self.attention_dropout, self.dropout
        )
        apply = attention_math.block_apply if self.custom_gradient else attention_math.block_forward
        x, probs = apply(spec, inputs, context, w, context_mask, attention_keep, ffn_keep)
        if return_attention_scores:
            return x, probs[:, None] if self.num_heads == 1 else probs
        return x

    def compute_output_shape(self, inputs_shape, *args, **kwargs):
        return tuple(inputs_shape)

    def get_config(self):
        return {
            **super().get_config(),
            **self.block_config.to_dict(),
            "cross_attention": self.cross_attention,
            "norm_epsilon": self.norm_epsilon,
        }
