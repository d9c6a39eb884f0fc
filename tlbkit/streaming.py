"""Streaming: feed a sequence to a trained model chunk by chunk, with constant memory, a prediction after each chunk.

Two pieces (docs/streaming.md):

- **The tokenizer contract** (`StreamingTokenizer`). Raw inputs are cut along their time axis (axis 1 of
  every array of the input structure: `(B, T)` ids, `(B, T, C)` values, a dict of such arrays). A tokenizer
  that streams says how many raw steps make one encoder chunk (`stream_steps`), what it must carry from one
  chunk to the next besides the encoder's state (`stream_start`: e.g. the previous step, for first
  differences; running statistics), and turns one raw chunk plus its carry into that chunk's tokens
  (`stream_embed`), the same tokens the whole-sequence call gives at those positions.
- **The driver** (`Streamer`): any model whose parts stream (a `SequenceClassifier` with a TLB encoder, or
  an `Ensemble` of them, one state and carry per member), from Python or a run/preset folder
  (`Streamer.from_run`, plugins' runs included); `check` compares the streamed logits with whole-sequence
  calls on each prefix. `tlbkit-stream` is its command.
"""

import os
import warnings

import keras
import numpy as np

from tlbkit.models.sequence_classifier import split_tokens

CHECK_ATOL = 1e-4


class StreamingTokenizer(keras.layers.Layer):
    """Base class of tokenizers that stream: the contract `Streamer` relies on.

    A subclass implements `stream_steps` and `stream_embed`, and `stream_start` when it carries anything from
    one chunk to the next. Its whole-sequence `call` is unchanged; streaming must give, chunk by chunk, the
    tokens that `call` gives for the same positions of the whole sequence (or say otherwise with
    `stream_exact`).

    Args:
        **kwargs: forwarded to `keras.layers.Layer`.

    Example (a tokenizer of ids whose positions repeat every chunk):

    ```python
    class Ids(StreamingTokenizer):
        def stream_steps(self, chunk_size):
            return chunk_size                      # one token per id
        def stream_embed(self, ids, carry, offset):
            return self(ids), carry                # nothing to carry: tokens depend on the chunk only
    ```
    """

    #: bool. Whether streamed tokens equal the whole-sequence call's (False e.g. for statistics of the whole
    #: series, which a stream does not know in advance); `Streamer.check` only holds exact tokenizers to it.
    stream_exact = True

    def stream_steps(self, chunk_size):
        """Raw steps (along axis 1 of the inputs) that make `chunk_size` tokens, one encoder chunk.

        Raises:
            ValueError: when this configuration cannot stream (e.g. overlapping patches).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement stream_steps(chunk_size) to stream.")

    def stream_start(self, batch_size):
        """The carry before the first chunk: a structure of fixed-shape tensors (default: nothing, `{}`)."""
        return {}

    def stream_embed(self, raw_chunk, carry, offset):
        """One raw chunk -> `(tokenized, new_carry)`.

        Args:
            raw_chunk: the raw inputs of `stream_steps(chunk_size)` steps (fewer for a stream's last chunk),
                structured as the whole-sequence inputs.
            carry: `stream_start`'s structure, or the previous chunk's `new_carry`.
            offset: int or scalar int tensor. Index of the chunk's first token in the whole sequence.

        Returns:
            `tokenized` as `call` returns it (`{"tokens": (B, n, dim)}`, plus `"mask"` when padded) and the new
            carry (same structure and shapes as `carry`).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement stream_embed(raw_chunk, carry, offset).")

    def stream_max_tokens(self):
        """The most tokens a stream may reach (a position table's size), or None when unbounded."""
        return None


def _members(model):
    return list(getattr(model, "members", [model]))


def _check_streams(model):
    """(raw steps per chunk, tokens per chunk, token limit or None); a clear error for a part that cannot stream."""
    geometry = set()
    for member in _members(model):
        tokenizer, encoder = getattr(member, "tokenizer", None), getattr(member, "encoder", None)
        if encoder is None or not callable(getattr(encoder, "step", None)):
            raise ValueError(f"{type(encoder).__name__ if encoder is not None else type(member).__name__} does not "
                             "stream: only the TLB encoder has init_state/step (docs/streaming.md).")
        missing = [m for m in ("stream_steps", "stream_start", "stream_embed") if not hasattr(tokenizer, m)]
        if missing:
            raise ValueError(
                f"the tokenizer {type(tokenizer).__name__} does not stream: it lacks {', '.join(missing)}. A tokenizer "
                "streams when it implements the contract of tlbkit.streaming.StreamingTokenizer (docs/streaming.md).")
        limit = tokenizer.stream_max_tokens() if hasattr(tokenizer, "stream_max_tokens") else None
        geometry.add((tokenizer.stream_steps(encoder.chunk_size), encoder.chunk_size, limit))
    if len(geometry) > 1:
        raise ValueError(f"the ensemble's members cut chunks differently (steps, tokens, limit): {sorted(geometry)}")
    return geometry.pop()


def _time_slice(inputs, start, stop):
    return keras.tree.map_structure(lambda x: x[:, start:stop], inputs)


def _length(inputs):
    return int(keras.tree.flatten(inputs)[0].shape[1])


def trim_padding(example):
    """One example's inputs (batch of 1) cut to its real steps: a dict input with a `"mask"` (padded to the
    longest series by a dataset plugin) loses the steps after its last real one."""
    if isinstance(example, dict) and example.get("mask") is not None:
        mask = np.asarray(keras.ops.convert_to_numpy(example["mask"]))[0]
        real = int(np.nonzero(mask)[0].max()) + 1 if mask.any() else 0
        return _time_slice(example, 0, real)
    return example


class Streamer:
    """Streams inputs through a model chunk by chunk: a fixed-size state (the encoder's slow latents and the
    tokenizers' carries) is all that is kept between chunks.

    Args:
        model: a `SequenceClassifier` whose tokenizer implements `StreamingTokenizer`'s contract and whose
            encoder has `step` (the TLB encoder), or an `Ensemble` of them.

    Raises:
        ValueError: naming the part that cannot stream.

    Example:

    ```python
    streamer = Streamer(model)
    state = streamer.start(batch_size=1)
    for k, chunk in enumerate(chunks):               # each (1, streamer.steps, C) raw values
        logits, state = streamer.step(chunk, state, k * streamer.tokens_per_chunk)
    ```
    """

    def __init__(self, model):
        self.model = model
        self.members = _members(model)
        self.steps, self.tokens_per_chunk, self.max_tokens = _check_streams(model)
        self.exact = all(getattr(m.tokenizer, "stream_exact", True) for m in self.members)
        # A stream reads each input once, as it arrives: a model's test-time views (several copies of the whole
        # input, their logits averaged) do not apply, and the stream is checked against the model without them.
        self.views = sorted({type(m.test_time_views).__name__ for m in self.members
                             if getattr(m, "test_time_views", None) is not None})
        self.one_view = model
        if self.views:
            from tlbkit import evaluate

            self.one_view = evaluate.with_test_time_views(model, "none")
        self._step = self._compile(self._eager_step)

    @classmethod
    def from_run(cls, folder, checkpoint=None, params=()):
        """A streamer of a run directory's or preset folder's model, in a fresh process too: the built-in and
        installed plugins are imported, then the run's `config.gin` (which imports the `--plugin` modules the
        run was trained with).

        Args:
            folder: str. A `tlbkit-train` run directory or an exported run (preset) folder.
            checkpoint: `"last"`, `"best"` or None (last, or the one model an exported run holds).
            params: gin bindings overriding the run's config.
        """
        import gin

        from tlbkit import evaluate, gin_utils, plugins
        from tlbkit import run_dir as rd

        plugins.load_all()
        run = rd.RunDir(folder)
        config = run.config_path
        if not os.path.exists(config):
            raise FileNotFoundError(f"{config} not found: is {folder!r} a tlbkit-train run directory or a preset?")
        gin.clear_config()
        gin_utils.parse([config], list(params))
        if checkpoint is None:
            exported = run.read_export()
            checkpoint = exported.get("checkpoint", "last") if exported else "last"
        return cls(evaluate.load_run_model(folder, checkpoint))

    # === One chunk ===
    def start(self, batch_size=1):
        """The state before the first chunk: `{"model": encoder state(s), "carry": one carry per member}`."""
        return {"model": self.model.init_state(batch_size),
                "carry": [m.tokenizer.stream_start(batch_size) for m in self.members]}

    def step(self, raw_chunk, state, offset):
        """One raw chunk (`steps` steps or fewer) -> `(logits after it, new state)`.

        Args:
            raw_chunk: raw inputs, structured as the model's whole-sequence inputs.
            state: `start`'s, or the previous step's.
            offset: int. Index of the chunk's first token (`k * tokens_per_chunk` for the k-th chunk).

        Raises:
            ValueError: when the chunk would reach past the tokenizer's position table.
        """
        n = -(-_length(raw_chunk) * self.tokens_per_chunk // self.steps)
        if self.max_tokens is not None and offset + n > self.max_tokens:
            raise ValueError(
                f"the stream reaches token {offset + n}, past the tokenizer's position table of {self.max_tokens}: "
                "train with positions that repeat every chunk (e.g. tokenizers.series_patch.position_period = "
                "%CHUNK_SIZE) to stream without a length limit.")
        return self._step(raw_chunk, state, np.int32(offset))

    def _eager_step(self, raw_chunk, state, offset):
        chunks, masks, carries = [], [], []
        for member, carry in zip(self.members, state["carry"]):
            tokenized, carry = member.tokenizer.stream_embed(raw_chunk, carry, offset)
            tokens, mask = split_tokens(tokenized)
            chunks.append(tokens)
            masks.append(mask)
            carries.append(carry)
        with warnings.catch_warnings():  # Keras' notice that the cell "does not support masking": it takes the mask
            warnings.filterwarnings("ignore", message=".*does not support masking.*")
            if len(self.members) > 1:
                logits, model_state = self.model.step(chunks, state["model"], masks=masks)
            else:
                logits, model_state = self.model.step(chunks[0], state["model"], mask=masks[0])
        return logits, {"model": model_state, "carry": carries}

    @staticmethod
    def _compile(fn):
        """One traced graph per chunk shape under TensorFlow; eager elsewhere (JAX, PyTorch)."""
        if keras.backend.backend() != "tensorflow":
            return fn
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)

    # === A whole input ===
    def stream(self, inputs):
        """Streams `inputs` (a batch, all of one length) chunk by chunk; yields `(steps seen, logits)` after each
        chunk (the last one may be shorter)."""
        length = _length(inputs)
        state = self.start(int(keras.tree.flatten(inputs)[0].shape[0]))
        for k, start in enumerate(range(0, length, self.steps)):
            logits, state = self.step(_time_slice(inputs, start, start + self.steps), state, k * self.tokens_per_chunk)
            yield min(start + self.steps, length), logits

    def check(self, inputs, max_chunks=None):
        """The largest difference between the logits streamed after each chunk and a whole-sequence call on the
        same prefix of `inputs` (one batch, all of one length), both with one view of the inputs (`views`: the
        model's test-time views, which a stream does not apply).

        Args:
            inputs: raw inputs.
            max_chunks: int or None. Compare only the first chunks.

        Returns:
            float: the max absolute difference over every prefix compared.
        """
        worst = 0.0
        for k, (seen, logits) in enumerate(self.stream(inputs)):
            if max_chunks is not None and k >= max_chunks:
                break
            whole = self.one_view(_time_slice(inputs, 0, seen), training=False)
            difference = np.abs(keras.ops.convert_to_numpy(whole) - keras.ops.convert_to_numpy(logits))
            worst = max(worst, float(difference.max()))
        return worst
