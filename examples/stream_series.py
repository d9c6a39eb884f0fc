r"""Streams an unbounded synthetic series through a TLB classifier, one chunk at a time, with constant memory.

    python examples/stream_series.py                        # small untrained demo model
    python examples/stream_series.py --chunks=2000 --print_every=100 --check
    python examples/stream_series.py --members=3 --check    # an ensemble: one state per member
    python examples/stream_series.py --model_dir=runs/gunpoint   # a tlbkit-train run (or preset folder)

The driver is `tlbkit.streaming.Streamer`: each chunk of raw values goes through the tokenizer's
`stream_embed` (which carries what the tokenizer needs between chunks: the previous step for first
differences, running statistics) and the model's `step`, which returns the logits after that chunk and
the new slow state; only that fixed-size state is kept, so memory does not grow with the stream. An
`Ensemble` run (`ucr.gin`) streams the same way, each member with its own tokenizer, carry and state.
The series here is generated chunk by chunk (a noisy sine whose frequency drifts); to stream your own
data, use `tlbkit-stream`. See docs/streaming.md.
"""

import argparse
import os
import resource
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tlbkit_tasks.timeseries import SeriesPatchTokenizer  # noqa: E402
from tlbkit.layers import ClassificationHead, TLBCell, TLBEncoder  # noqa: E402
from tlbkit.models import Ensemble, SequenceClassifier  # noqa: E402
from tlbkit.streaming import CHECK_ATOL, Streamer  # noqa: E402


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


def synthetic_chunks(steps, channels, seed=0):
    """Endless chunks (1, steps, channels) of a noisy sine with a drifting frequency."""
    rng = np.random.default_rng(seed)
    phase, freq = 0.0, 0.05
    while True:
        freq = float(np.clip(freq + rng.normal(0, 0.002), 0.01, 0.2))
        phases = phase + 2 * np.pi * freq * np.arange(1, steps + 1)
        phase = phases[-1]
        chunk = np.sin(phases[:, None] + np.arange(channels)[None, :]) + 0.1 * rng.normal(size=(steps, channels))
        yield chunk[None].astype("float32")


def channels_of(model):
    """The raw channels the model's (first) series tokenizer reads."""
    tokenizer = getattr(model, "members", [model])[0].tokenizer
    if not hasattr(tokenizer, "channels"):
        raise SystemExit(f"this example streams synthetic series; the model's tokenizer {type(tokenizer).__name__} "
                         "does not read series. Stream your own data with tlbkit-stream (docs/streaming.md).")
    return tokenizer.channels


def max_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stream(streamer, chunks, num_chunks, print_every=1):
    """Feeds `num_chunks` chunks; prints a prediction every `print_every` chunks; returns the logits list."""
    state = streamer.start(1)
    history, rss = [], {}
    for i in range(num_chunks):
        logits, state = streamer.step(next(chunks), state, i * streamer.tokens_per_chunk)
        probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))[0]
        history.append(keras.ops.convert_to_numpy(logits)[0])
        if (i + 1) % print_every == 0 or i + 1 == num_chunks:
            print(f"chunk {i + 1:6d}  steps {(i + 1) * streamer.steps:9d}  prediction {int(probs.argmax())}  "
                  f"p={probs.max():.3f}", flush=True)
        if i + 1 in (min(10, num_chunks), num_chunks):
            rss[i + 1] = max_rss_mb()
    shapes = [tuple(s.shape) for s in keras.tree.flatten(state["model"])]
    state_bytes = sum(int(np.prod(shape)) * 4 for shape in shapes)
    first, last = min(rss), max(rss)
    shown = shapes[0] if len(shapes) == 1 else f"{len(shapes)} x {shapes[0]}"
    print(f"state {shown} = {state_bytes} bytes; peak RSS {rss[first]:.0f} MB after chunk {first}, "
          f"{rss[last]:.0f} MB after chunk {last}")
    return history


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", help="a tlbkit-train run or preset folder with a series tokenizer "
                        "(default: demo model)")
    parser.add_argument("--checkpoint", default=None, choices=["best", "last"],
                        help="default: last, or the one model of a preset")
    parser.add_argument("--chunks", type=int, default=200, help="number of chunks to stream")
    parser.add_argument("--print_every", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--members", type=int, default=1, help="demo model: an ensemble of this many classifiers")
    parser.add_argument("--check", action="store_true", help="compare with whole-sequence calls on 4 prefixes")
    args = parser.parse_args()

    try:
        model = (Streamer.from_run(args.model_dir, args.checkpoint).model if args.model_dir
                 else demo_model(seed=args.seed, size=args.members))
        streamer = Streamer(model)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"stream_series.py: error: {e}")
    channels = channels_of(model)
    print(f"streaming {args.chunks} chunks of {streamer.steps} steps x {channels} channels "
          f"({args.chunks * streamer.steps} steps in all)")
    stream(streamer, synthetic_chunks(streamer.steps, channels, args.seed), args.chunks, args.print_every)
    if args.check:
        if not streamer.exact:
            raise SystemExit("--check needs a tokenizer that streams exactly (per-series normalisation uses running "
                             "statistics while streaming).")
        chunks = synthetic_chunks(streamer.steps, channels, args.seed)
        values = np.concatenate([next(chunks) for _ in range(min(args.chunks, 4))], axis=1)
        worst = streamer.check(values)
        print(f"check: streamed logits vs whole-sequence calls on {min(args.chunks, 4)} prefixes: "
              f"max difference {worst:.2e}")
        if worst > CHECK_ATOL:
            raise SystemExit("check failed: streaming differs from the whole-sequence call")


if __name__ == "__main__":
    main()
