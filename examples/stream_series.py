r"""Streams an unbounded series through a TLB classifier, one chunk at a time, with constant memory.

    python examples/stream_series.py                        # small untrained demo model
    python examples/stream_series.py --chunks=2000 --print_every=100 --check
    python examples/stream_series.py --members=3 --check    # an ensemble: one state per member
    python examples/stream_series.py --model_dir=runs/gunpoint_stream   # a tlbkit-train run

Each chunk of raw values is prepared as the tokenizer would prepare a whole
series (`ChunkValues`: first differences, carrying the previous chunk's last
step, then normalisation), tokenized on its own (`tokenizer.embed(values,
offset=...)`) and fed to `model.step(tokens, state)`, which returns the logits
after that chunk and the new slow state; only that fixed-size state is kept
between chunks, so memory does not grow with the length of the stream. An
`Ensemble` run (`ucr.gin`) streams the same way, each member with its own
tokenizer and state, and the members' logits averaged. The series here is
synthetic and generated chunk by chunk (a noisy sine whose frequency drifts).
See docs/streaming.md.
"""

import argparse
import os
import resource
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tlbkit_tasks  # noqa: E402,F401  (registers the tokenizers for loading a run)
from tlbkit_tasks.timeseries import SeriesPatchTokenizer  # noqa: E402
from tlbkit.layers import ClassificationHead, TLBCell, TLBEncoder  # noqa: E402
from tlbkit.models import Ensemble, SequenceClassifier  # noqa: E402


def demo_model(channels=2, num_classes=3, dim=32, patch_length=4, chunk_size=8, seed=0, size=1):
    """A small untrained patch-tokenizer TLB classifier whose positions repeat every chunk (an `Ensemble` of
    `size` of them for `size` > 1)."""
    keras.utils.set_random_seed(seed)

    def classifier():
        return SequenceClassifier(
            encoder=TLBEncoder(TLBCell(dim=dim, num_heads=2, num_layers=2, r=1, num_latents=4, dropout=0.0),
                               chunk_size),
            head=ClassificationHead(num_classes, pooling="state"),
            tokenizer=SeriesPatchTokenizer(dim, patch_length, normalize="none", position_period=chunk_size,
                                           differences=True),  # as ucr.gin's: levels and their first differences
        )

    model = classifier() if size == 1 else Ensemble([classifier() for _ in range(size)])
    model(np.zeros((1, chunk_size * patch_length, channels), "float32"))
    return model


def members(model):
    """The classifiers that stream: an `Ensemble`'s members, or the model itself."""
    return list(getattr(model, "members", [model]))


def geometry(model):
    """(steps per chunk, channels, positions table size or None if periodic); an ensemble's members must agree."""
    shapes = {_geometry(member) for member in members(model)}
    if len(shapes) > 1:
        raise ValueError(f"the ensemble's members tokenize chunks differently: {sorted(shapes)}")
    return shapes.pop()


def _geometry(model):
    tok, chunk = model.tokenizer, model.encoder.chunk_size
    if isinstance(tok, SeriesPatchTokenizer):  # SeriesLinearTokenizer too (patches of one step)
        if tok.step != tok.patch:
            raise ValueError("streaming needs non-overlapping patches (stride == patch_length).")
        steps, channels = chunk * tok.patch, tok.channels
    else:
        raise ValueError(f"the model's tokenizer is not a series tokenizer: {type(tok).__name__}")
    if tok.position_period is not None and tok.position_period != chunk:
        raise ValueError(f"position_period={tok.position_period} must equal the chunk size {chunk} for streaming.")
    return steps, channels, None if tok.position_period else tok.position.input_dim


def synthetic_chunks(steps, channels, seed=0):
    """Endless chunks (steps, channels) of a noisy sine with a drifting frequency."""
    rng = np.random.default_rng(seed)
    t, phase, freq = 0, 0.0, 0.05
    while True:
        freq = float(np.clip(freq + rng.normal(0, 0.002), 0.01, 0.2))
        phases = phase + 2 * np.pi * freq * np.arange(1, steps + 1)
        phase = phases[-1]
        chunk = np.sin(phases[:, None] + np.arange(channels)[None, :]) + 0.1 * rng.normal(size=(steps, channels))
        t += steps
        yield chunk.astype("float32")


class RunningNorm:
    """Causal per-channel standardisation with the mean/std of everything seen so far."""

    def __init__(self, channels):
        self.n, self.mean, self.m2 = 0, np.zeros(channels), np.zeros(channels)

    def __call__(self, chunk):
        for row in chunk:  # Welford
            self.n += 1
            delta = row - self.mean
            self.mean += delta / self.n
            self.m2 += delta * (row - self.mean)
        std = np.sqrt(self.m2 / max(self.n, 1)) + 1e-5
        return ((chunk - self.mean) / std).astype("float32")


def max_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_step(model, steps):
    """`step(values, state, offset) -> (logits, state)`, `values` a list of (1, steps, C) arrays, one per member
    (each prepared as its member's tokenizer would: `ChunkValues`); one traced graph under TensorFlow."""
    parts = members(model)

    def step(values, state, offset):
        tokens = [m.tokenizer.embed(v, None, offset)["tokens"] for m, v in zip(parts, values)]
        return model.step(tokens if len(parts) > 1 else tokens[0], state)

    if keras.backend.backend() != "tensorflow":
        return step
    import tensorflow as tf

    state = model.init_state(1)
    return tf.function(step, input_signature=[
        [tf.TensorSpec((1, steps, m.tokenizer.value_channels), "float32") for m in parts],
        tf.nest.map_structure(lambda s: tf.TensorSpec(s.shape, s.dtype), state),
        tf.TensorSpec((), "int32"),
    ])


class ChunkValues:
    """What the tokenizer's `prepare` does to a whole series' raw values, done causally on each chunk: the
    first differences when it adds them (the previous chunk's last step carried over), then its normalisation.

    Args:
        tok: the member's `SeriesPatchTokenizer` (or `SeriesLinearTokenizer`), built.

    Call: `(steps, C)` raw values of one chunk -> `(steps, value_channels)` float32.
    """

    def __init__(self, tok):
        self.tok, self.differences, self.last = tok, tok.differences, None
        self.norm = normaliser(tok, tok.value_channels)

    def __call__(self, raw):
        if self.differences:
            previous = raw[:1] if self.last is None else self.last  # the first step's difference is 0
            self.last = raw[-1:]
            raw = keras.ops.convert_to_numpy(self.tok.add_differences(np.concatenate([previous, raw])[None]))[0, 1:]
        return (raw if self.norm is None else self.norm(raw)).astype("float32")


def normaliser(tok, channels):
    """What the tokenizer's normalisation does to a whole series' values, done causally on each chunk (or None)."""
    if tok.normalize == "series":  # whole-series statistics are unknown while streaming: a causal estimate
        return RunningNorm(channels)
    if tok.normalize == "dataset":  # the training data's statistics, stored in the tokenizer
        mean, std = (keras.ops.convert_to_numpy(w) for w in (tok.data_mean, tok.data_std))
        return lambda chunk: ((chunk - mean) / std).astype("float32")
    return None


def stream(model, chunks, num_chunks, print_every=1, class_names=None):
    """Feeds `num_chunks` chunks; prints a prediction every `print_every` chunks; returns the logits list."""
    steps, _, table = geometry(model)
    prepare = [ChunkValues(m.tokenizer) for m in members(model)]
    state = model.init_state(1)
    step = make_step(model, steps)
    tokens_per_chunk = members(model)[0].encoder.chunk_size
    history, rss = [], {}
    for i in range(num_chunks):
        raw = next(chunks)
        values = [p(raw)[None] for p in prepare]
        offset = i * tokens_per_chunk
        if table is not None and offset + tokens_per_chunk > table:
            raise ValueError(
                f"chunk {i + 1} needs position {offset + tokens_per_chunk - 1}, past the tokenizer's table of {table}: "
                "train with tokenizer position_period = CHUNK_SIZE to stream without a length limit."
            )
        logits, state = step(values, state, np.int32(offset))
        probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))[0]
        history.append(keras.ops.convert_to_numpy(logits)[0])
        if (i + 1) % print_every == 0 or i + 1 == num_chunks:
            label = class_names[int(probs.argmax())] if class_names else int(probs.argmax())
            print(f"chunk {i + 1:6d}  steps {(i + 1) * steps:9d}  prediction {label}  p={probs.max():.3f}", flush=True)
        if i + 1 in (min(10, num_chunks), num_chunks):
            rss[i + 1] = max_rss_mb()
    shapes = [tuple(s.shape) for s in keras.tree.flatten(state)]
    state_bytes = sum(int(np.prod(shape)) * 4 for shape in shapes)
    first, last = min(rss), max(rss)
    shown = shapes[0] if len(shapes) == 1 else f"{len(shapes)} x {shapes[0]}"
    print(f"state {shown} = {state_bytes} bytes; peak RSS {rss[first]:.0f} MB after chunk {first}, "
          f"{rss[last]:.0f} MB after chunk {last}")
    return history


def check_against_whole_sequence(model, num_chunks, seed):
    """Streamed logits after each of the first chunks == a whole-sequence call on that prefix."""
    steps, channels, _ = geometry(model)
    chunks = synthetic_chunks(steps, channels, seed)
    values = np.concatenate([next(chunks) for _ in range(num_chunks)])
    with open(os.devnull, "w") as devnull:
        stdout, sys.stdout = sys.stdout, devnull
        try:
            streamed = stream(model, synthetic_chunks(steps, channels, seed), num_chunks)
        finally:
            sys.stdout = stdout
    worst = 0.0
    for k in range(1, num_chunks + 1):
        whole = keras.ops.convert_to_numpy(model(values[None, : k * steps]))[0]
        worst = max(worst, float(np.abs(whole - streamed[k - 1]).max()))
    print(f"check: streamed logits vs whole-sequence calls on {num_chunks} prefixes: max difference {worst:.2e}")
    if worst > 1e-4:
        raise SystemExit("check failed: streaming differs from the whole-sequence call")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", help="a tlbkit-train run with a series tokenizer (default: demo model)")
    parser.add_argument("--checkpoint", default="best", choices=["best", "last"])
    parser.add_argument("--chunks", type=int, default=200, help="number of chunks to stream")
    parser.add_argument("--print_every", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--members", type=int, default=1, help="demo model: an ensemble of this many classifiers")
    parser.add_argument("--check", action="store_true", help="compare with whole-sequence calls (demo model)")
    args = parser.parse_args()

    if args.model_dir:
        from tlbkit.evaluate import load_run_model

        model = load_run_model(args.model_dir, args.checkpoint)
    else:
        model = demo_model(seed=args.seed, size=args.members)
    steps, channels, _ = geometry(model)
    print(f"streaming {args.chunks} chunks of {steps} steps x {channels} channels "
          f"({args.chunks * steps} steps in all)")
    stream(model, synthetic_chunks(steps, channels, args.seed), args.chunks, args.print_every)
    if args.check:
        if any(m.tokenizer.normalize == "series" for m in members(model)):
            raise SystemExit("--check needs a tokenizer without per-series normalisation (whole-series statistics "
                             "differ).")
        check_against_whole_sequence(model, min(args.chunks, 4), args.seed)


if __name__ == "__main__":
    main()
