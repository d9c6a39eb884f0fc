"""Recurrent encoder: cuts a token sequence into chunks and runs the TLB cell over them."""

import keras
from keras import ops

from tlbkit import checks
from tlbkit.layers.chunk_loop import chunk_loop
from tlbkit.layers.sequence_ops import full_mask, pad_to_multiple
from tlbkit.serialization import register_serializable


CELL_METHODS = ("get_initial_state", "prefix", "recurrent_step", "sample_noise", "loop_weights")
CELL_ATTRIBUTES = ("dim", "num_latents", "num_heads")


def check_cell(cell):
    """Raises a TypeError unless `cell` is a Keras layer with the cell interface the encoder drives.

    `TLBCell` is the reference implementation; a plugin may register another cell (`registry.CELLS`)
    with the same methods and attributes (see docs/architecture.md, "The cell interface").
    """
    missing = [m for m in CELL_METHODS if not callable(getattr(cell, m, None))]
    missing += [a for a in CELL_ATTRIBUTES if not hasattr(cell, a)]
    if not isinstance(cell, keras.layers.Layer) or missing:
        raise TypeError(
            f"`cell` must be a Keras layer with the TLB cell interface (methods {', '.join(CELL_METHODS)}; "
            f"attributes {', '.join(CELL_ATTRIBUTES)}), e.g. a TLBCell. Received: cell={cell!r}"
            + (f", which lacks {', '.join(missing)}" if missing else "")
        )


@register_serializable("tlbkit.layers.TLBEncoder")
class TLBEncoder(keras.layers.Layer):
    """Runs a `TLBCell` over a sequence, one chunk of `chunk_size` tokens at a time.

    The sequence length is padded to a multiple of `chunk_size` (padding is
    masked). The state-independent prefix of the cell (self-attention layers
    before the first read of the slow state) runs for all chunks at once; the
    rest runs in one backend loop (`chunk_loop`: a `tf.while_loop` under
    TensorFlow, `lax.scan` under JAX), so a graph holds one copy of the cell
    whatever the number of chunks. Dropout masks for the loop are drawn before
    it, so no random-generator state crosses the loop.

    Args:
        cell: `TLBCell` (or its config dict), or another layer with the cell
            interface (`check_cell`).
        chunk_size: int. Tokens per chunk.
        carry_state: bool. When `False` every chunk starts again from the
            initial state: the slow stream is cut off across chunks (ablation
            switch). Defaults to `True`.
        unroll: bool. Unroll the chunk loop in the traced graph instead of
            running a backend loop (needs a static number of chunks; compiles
            much slower, see docs/performance.md). Defaults to `False`.
        parallel_iterations: int. TensorFlow only: how many loop iterations
            the executor may run ahead (`tf.while_loop`). `1` lowers the peak
            memory of training (see docs/performance.md) at some speed.
            Defaults to `10`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        tokens: (B, T, dim) tensor.
        padding_mask: optional (B, T) boolean mask, `True` for real tokens.
        initial_state: optional (B, num_latents, dim) slow state to start from.
        training: bool.
        return_attention_scores: bool. Also return the slow stream's attention
            per chunk, (B, N, heads, num_latents, chunk_size).

    Returns:
        A dict: `sequence` (B, N*chunk_size, dim) fast outputs (zero at padding),
        `mask` (B, N*chunk_size), `state` (B, num_latents, dim) final slow state,
        `states` (B, N, num_latents, dim) slow state after each chunk and, if
        asked, `attention`.

    Example:
    >>> cell = TLBCell(dim=16, num_heads=2, num_layers=2, r=1, num_latents=4)
    >>> out = TLBEncoder(cell, chunk_size=4)(keras.random.normal((2, 10, 16)))
    >>> out["sequence"].shape, out["state"].shape
    ((2, 12, 16), (2, 4, 16))
    """

    def __init__(self, cell, chunk_size, carry_state=True, unroll=False, parallel_iterations=10, **kwargs):
        super().__init__(**kwargs)
        if isinstance(cell, dict):
            cell = keras.saving.deserialize_keras_object(cell)
        check_cell(cell)
        checks.positive_int("chunk_size", chunk_size)
        checks.positive_int("parallel_iterations", parallel_iterations)
        self.cell = cell
        self.chunk_size = chunk_size
        self.carry_state = carry_state
        self.unroll = unroll
        self.parallel_iterations = parallel_iterations
        self.dim = cell.dim

    def build(self, tokens_shape=None, padding_mask_shape=None):
        if tokens_shape is not None and tokens_shape[-1] not in (None, self.dim):
            raise ValueError(
                f"TLBEncoder expects tokens of width dim={self.dim}, got shape "
                f"{tuple(tokens_shape)}. Make the tokenizer's output width equal "
                "the cell's `dim`."
            )
        if not self.cell.built:
            self.cell.build()
        self.built = True

    # === Streaming API ===
    def init_state(self, batch_size):
        """Slow state before the first chunk, (batch_size, num_latents, dim)."""
        return self.cell.get_initial_state(batch_size)

    def step(self, chunk_tokens, state, mask=None, training=False):
        """Feeds one chunk (B, C <= chunk_size, dim); returns `(outputs, new_state)`.

        Feeding a sequence chunk by chunk gives the same outputs and states as
        one whole-sequence call.
        """
        if mask is not None:
            mask = ops.cast(mask, "bool")
        return self.cell(chunk_tokens, state, mask=mask, training=training)

    # === Whole sequence ===
    def call(
        self,
        tokens,
        padding_mask=None,
        initial_state=None,
        training=None,
        return_attention_scores=False,
    ):
        c = self.chunk_size
        length = tokens.shape[1]
        # Without padding (no mask given, length a multiple of chunk_size) the
        # loop skips all masking work.
        unpadded = padding_mask is None and isinstance(length, int) and length % c == 0
        mask = full_mask(tokens, padding_mask)
        tokens, mask, n = pad_to_multiple(tokens, mask, c)
        batch = ops.shape(tokens)[0]
        dim = self.dim

        # State-independent prefix for all chunks at once.
        x = ops.reshape(tokens, (-1, c, dim))
        m = None if unpadded else ops.reshape(mask, (-1, c))
        x = self.cell.prefix(x, m, training=training)
        x = ops.transpose(ops.reshape(x, (batch, n, c, dim)), (1, 0, 2, 3))
        xs = {"tokens": x}
        if not unpadded:
            xs["mask"] = ops.transpose(ops.reshape(m, (batch, n, c)), (1, 0, 2))

        state0 = initial_state if initial_state is not None else self.init_state(batch)
        state0 = ops.cast(state0, x.dtype)
        noise = self.cell.sample_noise(batch, c, n) if training else None
        if noise is not None:
            xs["noise"] = noise
        cell = self.cell
        carry_state = self.carry_state
        with_scores = return_attention_scores
        weights = cell.loop_weights()  # loop-invariant: computed once, outside the loop

        def body(state, inputs):
            if not carry_state:
                state = state0
            result = cell.recurrent_step(
                inputs["tokens"],
                state,
                inputs.get("mask"),
                noise=inputs.get("noise"),
                training=training,
                return_attention_scores=with_scores,
                weights=weights,
            )
            new_state = result[1]
            return new_state, (new_state, result[0]) + tuple(result[2:])

        if self.unroll:
            if not isinstance(n, int):
                raise ValueError("TLBEncoder(unroll=True) needs a static sequence length.")
            state, steps = state0, []
            for i in range(n):
                state, ys = body(state, keras.tree.map_structure(lambda t: t[i], xs))
                steps.append(ys)
            final = state
            stacked = tuple(ops.stack([s[j] for s in steps]) for j in range(len(steps[0])))
        else:
            specs = [(state0.shape, state0.dtype), (x.shape[1:], x.dtype)]
            if with_scores:
                specs.append(((x.shape[1], cell.num_heads, cell.num_latents, c), "float32"))
            final, stacked = chunk_loop(body, state0, xs, specs, self.parallel_iterations)
        sequence = ops.reshape(ops.transpose(stacked[1], (1, 0, 2, 3)), (batch, -1, dim))
        outputs = {
            "sequence": sequence,
            "mask": mask,
            "state": final,
            "states": ops.transpose(stacked[0], (1, 0, 2, 3)),
        }
        if with_scores:
            outputs["attention"] = ops.transpose(stacked[2], (1, 0, 2, 3, 4))
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "cell": keras.saving.serialize_keras_object(self.cell),
                "chunk_size": self.chunk_size,
                "carry_state": self.carry_state,
                "unroll": self.unroll,
                "parallel_iterations": self.parallel_iterations,
            }
        )
        return config
