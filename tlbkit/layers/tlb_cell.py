"""The Temporal Latent Bottleneck cell: one chunk step of the fast and slow streams."""

import keras
from keras import ops

from tlbkit import checks
from tlbkit.layers import attention_math
from tlbkit.layers.attention_block import AttentionBlock
from tlbkit.layers.block_config import BlockConfig, block_config_property
from tlbkit.serialization import register_serializable

LAYOUTS = ("paper", "keras_io")
# Old layout names that configs and saved `.keras` files may hold: they load as the new name.
RENAMED_LAYOUTS = {"seed": "keras_io"}
INITIAL_STATES = ("zeros", "learned")


def _any(mask):
    """(B, C) bool -> (B,) bool: chunk holds at least one real token."""
    return ops.any(mask, axis=-1)


@register_serializable("tlbkit.layers.TLBCell")
class TLBCell(keras.layers.Layer):
    """Reads one chunk of tokens into a small set of slow latent vectors.

    Fast stream: `num_layers` self-attention blocks over the chunk's tokens; after
    every `r`-th one a cross-attention block whose keys/values are the slow
    state. Slow stream: a cross-attention block with the latents as queries and
    the chunk's fast-stream output as keys/values (followed by its feed-forward
    block). A chunk with no real token (all padding) leaves the state unchanged.

    Two layouts:
    - `"paper"`: the cross-attention blocks are separate weights, placed after
      self-attention layers `r-1, 2r-1, ...` (Didolkar et al., 2022).
    - `"keras_io"`: the keras-io example's perceptual module: for each layer `i` a
      block, plus an extra block after it when `i % r == 0`; every block whose
      position in that list is a multiple of `r` is applied twice, first as
      self-attention, then (same weights) as cross-attention to the slow state.
      With `num_layers=4, r=2` that is 6 blocks and 9 applications per chunk.

    The steps before the first read of the slow state do not depend on it; the
    encoder runs them for all chunks at once (`prefix`) and loops only over the
    rest (`recurrent_step`). `call` runs both for a single chunk.

    Args:
        dim: int. Token and latent width.
        num_heads: int. Attention heads. Defaults to `4`.
        key_dim: int. Width per head. Defaults to `dim // num_heads`.
        ffn_ratio: float. Feed-forward width as a multiple of `dim`. Defaults to `4`.
        num_layers: int. Self-attention layers in the fast stream. Defaults to `4`.
        r: int. A cross-attention (read of the slow state) every `r` layers.
            Must be in `[1, num_layers]`. Defaults to `2`.
        num_latents: int. Number of slow-stream vectors. Defaults to `8`.
        dropout: float. Feed-forward dropout. Defaults to `0.1`.
        attention_dropout: float. Dropout on attention probabilities. Defaults to `0.0`.
        initial_state: str. `"zeros"` or `"learned"`. Defaults to `"learned"`:
            with zeros every latent starts equal and, attention being
            symmetric in its queries, stays equal, so `num_latents` > 1 adds
            nothing (the keras-io example uses zeros; keras-io mode keeps them).
        layout: str. `"paper"` or `"keras_io"`. Defaults to `"paper"`. The old name
            `"seed"` still loads, as `"keras_io"` (a deprecation warning says so).
        norm_mode: str. `"pre"` or `"qkv"`, see `AttentionBlock`. Defaults to `"pre"`.
        read_slow: bool. Whether the fast stream reads the slow state (ablation
            switch). Defaults to `True`.
        gelu_approximate: bool. Tanh-approximate GELU. Defaults to `False`.
        custom_gradient: bool. The blocks' hand-written backward pass (`True`)
            or automatic differentiation (see `AttentionBlock`). Defaults to `True`.
        **kwargs: forwarded to `keras.layers.Layer`.

    The hyper-parameters the cell shares with its blocks (`dim`, `num_heads`,
    `key_dim`, `ffn_ratio`, `dropout`, `attention_dropout`, `norm_mode`,
    `gelu_approximate`, `custom_gradient`) are stored once, in `block_config`
    (a `BlockConfig` that every block is built from), and read through
    attributes of the same names; `get_config()` writes them as flat keys.

    Call arguments:
        tokens: (B, C, dim) tensor, one chunk.
        state: (B, num_latents, dim) tensor, the slow state.
        mask: optional (B, C) boolean tensor, `True` for real tokens.
        training: bool.

    Returns:
        `(fast_outputs, new_state)`: (B, C, dim) and (B, num_latents, dim).

    Reference: Didolkar et al., "Temporal Latent Bottleneck: Synthesis of Fast
    and Slow Processing Mechanisms in Sequence Learning", NeurIPS 2022,
    arXiv:2205.14794.
    """

    def __init__(
        self,
        dim,
        num_heads=4,
        key_dim=None,
        ffn_ratio=4,
        num_layers=4,
        r=2,
        num_latents=8,
        dropout=0.1,
        attention_dropout=0.0,
        initial_state="learned",
        layout="paper",
        norm_mode="pre",
        read_slow=True,
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
        )
        checks.positive_int("num_layers", num_layers)
        checks.in_range("r", r, 1, num_layers)
        checks.positive_int("num_latents", num_latents)
        checks.one_of("initial_state", initial_state, INITIAL_STATES)
        layout = checks.renamed("layout", layout, RENAMED_LAYOUTS)
        checks.one_of("layout", layout, LAYOUTS)
        self.num_layers = num_layers
        self.r = r
        self.num_latents = num_latents
        self.initial_state = initial_state
        self.layout = layout
        self.read_slow = read_slow

        # === Layers ===
        # `schedule` lists (block index, "self" | "cross") in execution order.
        fast_stream = self._paper_fast_stream if layout == "paper" else self._keras_io_fast_stream
        self.fast_blocks, self.schedule = fast_stream()
        self.slow_block = self._block("slow_cross", cross=True)
        kinds = [kind for _, kind in self.schedule]
        self.prefix_length = kinds.index("cross") if "cross" in kinds else len(kinds)
        self.seed_generator = keras.random.SeedGenerator()

    dim = block_config_property("dim")
    num_heads = block_config_property("num_heads")
    key_dim = block_config_property("key_dim")
    ffn_ratio = block_config_property("ffn_ratio")
    dropout = block_config_property("dropout")
    attention_dropout = block_config_property("attention_dropout")
    norm_mode = block_config_property("norm_mode")
    gelu_approximate = block_config_property("gelu_approximate")
    custom_gradient = block_config_property("custom_gradient")

    # === Blocks ===
    def _block(self, name, cross):
        """One `AttentionBlock` built from the cell's `block_config`."""
        return AttentionBlock.from_block_config(
            self.block_config, cross_attention=cross, dtype=self.dtype_policy, name=name
        )

    def _paper_fast_stream(self):
        """`"paper"` layout: `(blocks, schedule)` of `num_layers` self-attention blocks and, after
        every `r`-th one (when `read_slow`), a cross-attention block of its own."""
        blocks = [self._block(f"fast_self_{i}", cross=False) for i in range(self.num_layers)]
        schedule = []
        for i in range(self.num_layers):
            schedule.append((i, "self"))
            if self.read_slow and (i + 1) % self.r == 0:
                blocks.append(self._block(f"fast_cross_{i}", cross=True))
                schedule.append((len(blocks) - 1, "cross"))
        return blocks, schedule

    def _keras_io_fast_stream(self):
        """`"keras_io"` layout (the keras-io perceptual module): `(blocks, schedule)` of one block per
        layer plus an extra one after layer `i` when `i % r == 0`; blocks at positions that are
        multiples of `r` also run as cross-attention (when `read_slow`)."""
        blocks = []
        for i in range(self.num_layers):
            blocks.append(self._block(f"fast_{len(blocks)}", cross=True))
            if i % self.r == 0:
                blocks.append(self._block(f"fast_{len(blocks)}", cross=True))
        schedule = []
        for idx in range(len(blocks)):
            schedule.append((idx, "self"))
            if self.read_slow and idx % self.r == 0:
                schedule.append((idx, "cross"))
        return blocks, schedule

    def build(self, tokens_shape=None, state_shape=None):
        chunk = (None, None, self.dim)
        latents = (None, self.num_latents, self.dim)
        for b in self.fast_blocks:
            if not b.built:
                b.build(chunk)
        if not self.slow_block.built:
            self.slow_block.build(latents)
        if self.initial_state == "learned":
            self.learned_state = self.add_weight(
                name="initial_state",
                shape=(self.num_latents, self.dim),
                initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            )
        self.built = True

    # === State ===
    def get_initial_state(self, batch_size):
        """The slow state before the first chunk: (batch_size, num_latents, dim)."""
        if not self.built:
            self.build()
        if self.initial_state == "learned":
            state = ops.cast(self.learned_state, self.compute_dtype)
            return ops.broadcast_to(state[None], (batch_size, self.num_latents, self.dim))
        return ops.zeros((batch_size, self.num_latents, self.dim), dtype=self.compute_dtype)

    # === Dropout noise ===
    def _application_specs(self, batch, chunk, steps):
        specs = []
        for idx, kind in steps:
            key_len = self.num_latents if kind == "cross" else chunk
            specs.append(self.fast_blocks[idx].dropout_specs(batch, chunk, key_len))
        specs.append(self.slow_block.dropout_specs(batch, self.num_latents, chunk))
        return specs

    def sample_noise(self, batch_size, chunk_size, num_chunks=None):
        """Dropout keep masks (boolean, `True` where kept) for the recurrent part of `num_chunks` steps.

        Returns a list (one entry per block application after the prefix, plus
        the slow update) of dicts of tensors with a leading `num_chunks` axis
        (no leading axis when `num_chunks` is None), or None without dropout.
        Booleans take a quarter of the memory of float multipliers; the blocks
        apply the 1/(1-rate) scale.
        """
        if self.dropout == 0 and self.attention_dropout == 0:
            return None
        steps = self.schedule[self.prefix_length :]
        out = []
        for specs in self._application_specs(batch_size, chunk_size, steps):
            entry = {}
            for key, (shape, rate) in specs.items():
                full = shape if num_chunks is None else (num_chunks,) + tuple(shape)
                entry[key] = attention_math.draw_keep(full, rate, self.seed_generator)
            out.append(entry)
        return out

    # === Forward ===
    def _run_block(self, idx, kind, x, mask, state, noise, training, weights=None):
        noise = noise or {}
        block = self.fast_blocks[idx]
        if kind == "self":
            return block(
                x,
                context_mask=mask,
                attention_keep=noise.get("attention"),
                ffn_keep=noise.get("ffn"),
                training=training,
                weights=weights,
            )
        return block(
            x,
            context=state,
            attention_keep=noise.get("attention"),
            ffn_keep=noise.get("ffn"),
            training=training,
            weights=weights,
        )

    def loop_weights(self):
        """Folded weights of every application in `recurrent_step` (then the slow update).

        Computed once before a loop over chunks and passed to each step, so the
        loop body holds only activation-side ops.
        """
        steps = self.schedule[self.prefix_length :]
        weights = [self.fast_blocks[idx].folded_weights(kind) for idx, kind in steps]
        return weights + [self.slow_block.folded_weights("cross")]

    def prefix(self, tokens, mask=None, training=None):
        """The fast-stream steps before the first read of the slow state.

        They do not depend on the state, so any batch of chunks can go through
        at once: tokens (N, C, dim), mask (N, C).
        """
        x = tokens
        for idx, kind in self.schedule[: self.prefix_length]:
            x = self._run_block(idx, kind, x, mask, None, None, training)
        return x

    def recurrent_step(
        self, tokens, state, mask=None, noise=None, training=None, return_attention_scores=False, weights=None
    ):
        """The state-dependent rest of a chunk step, after `prefix`.

        Args:
            weights: optional list from `loop_weights()`.

        Returns `(fast_outputs, new_state)` and, if asked, the slow stream's
        attention probabilities (B, heads, num_latents, C).
        """
        x = tokens
        steps = self.schedule[self.prefix_length :]
        noise = noise if noise is not None else [None] * (len(steps) + 1)
        weights = weights if weights is not None else [None] * (len(steps) + 1)
        for k, (idx, kind) in enumerate(steps):
            x = self._run_block(idx, kind, x, mask, state, noise[k], training, weights[k])
        slow_noise = noise[-1] or {}
        updated, scores = self.slow_block(
            state,
            context=x,
            context_mask=mask,
            attention_keep=slow_noise.get("attention"),
            ffn_keep=slow_noise.get("ffn"),
            training=training,
            return_attention_scores=True,
            weights=weights[-1],
        )
        if mask is not None:
            x = x * ops.cast(mask, x.dtype)[..., None]
            keep = _any(mask)[:, None, None]
            updated = ops.where(keep, updated, state)
        if return_attention_scores:
            return x, updated, scores
        return x, updated

    def call(self, tokens, state, mask=None, training=None):
        x = self.prefix(tokens, mask, training=training)
        return self.recurrent_step(x, state, mask, training=training)

    def get_config(self):
        # Flat keys (the block config's fields beside the cell's own), as `.keras` files have always held.
        return {
            **super().get_config(),
            **self.block_config.to_dict(),
            "num_layers": self.num_layers,
            "r": self.r,
            "num_latents": self.num_latents,
            "initial_state": self.initial_state,
            "layout": self.layout,
            "read_slow": self.read_slow,
        }
