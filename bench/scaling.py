"""Benchmark 2: throughput and peak memory vs. sequence length, TLB vs. a same-size Transformer.

Tokens are random (B, T, 64) vectors (no tokenizer); both encoders: dim 64, 4 heads, 4 layers, FFN x4,
classification head on the state. TLB: chunk 64, 8 latents, cross-attention every 2 layers. Forward
pass (inference, graph mode) at batch 1; each (model, length) in its own subprocess for its peak RSS.

    python bench/scaling.py --lengths=256,1024,4096,16384 --png=docs/scaling.png

A length whose run fails (e.g. out of memory) is reported as such.
"""

import json
import os
import resource
import subprocess
import sys

from absl import app, flags

flags.DEFINE_string("lengths", "256,1024,4096,16384", "Comma-separated sequence lengths.")
flags.DEFINE_integer("transformer_max", 16384, "Longest length tried for the Transformer.")
flags.DEFINE_integer("repeats", 3, "Timed forward passes per point.")
flags.DEFINE_string("png", None, "Write the plot here.")
flags.DEFINE_string("json_out", None, "Write the results here.")
flags.DEFINE_string("point", None, "Internal: model:length to measure.")
flags.DEFINE_boolean("jit", False, "XLA-compile the forward pass (jit_compile=True).")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(model_name, length, repeats):
    import keras
    import numpy as np
    import tensorflow as tf

    sys.path.insert(0, ROOT)
    from tlbkit.layers import ClassificationHead, TLBCell, TLBEncoder, TransformerEncoder
    from tlbkit.models import SequenceClassifier
    from bench.timing import time_calls

    keras.utils.set_random_seed(0)
    if model_name == "tlb":
        encoder = TLBEncoder(TLBCell(dim=64, num_heads=4, num_layers=4, r=2, num_latents=8, dropout=0.0),
                             chunk_size=64)
    else:
        encoder = TransformerEncoder(64, num_heads=4, num_layers=4, dropout=0.0)
    model = SequenceClassifier(encoder, ClassificationHead(10))
    x = np.random.default_rng(0).normal(size=(1, length, 64)).astype("float32")
    forward = tf.function(lambda t: model(t, training=False), jit_compile=FLAGS.jit)
    first, per = time_calls(lambda: forward(x), repeats)
    return {"model": model_name, "jit_compile": FLAGS.jit, "length": length, "params": int(model.count_params()), "first_s": round(first, 2),
            "seconds_per_example": round(per, 4), "tokens_per_s": round(length / per),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, label in (("tlb", "TLB (chunk 64)"), ("transformer", "Transformer (full attention)")):
        pts = [r for r in results if r["model"] == name and "error" not in r]
        axes[0].plot([p["length"] for p in pts], [p["seconds_per_example"] for p in pts], "o-", label=label)
        axes[1].plot([p["length"] for p in pts], [p["peak_rss_mb"] for p in pts], "o-", label=label)
    for ax, title in zip(axes, ("forward seconds per sequence", "peak process memory (MB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length (tokens)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv):
    del argv
    if FLAGS.point:
        name, length = FLAGS.point.split(":")
        print(json.dumps(measure(name, int(length), FLAGS.repeats)), flush=True)
        return
    results = []
    for length in [int(v) for v in FLAGS.lengths.split(",")]:
        for name in ("tlb", "transformer"):
            if name == "transformer" and length > FLAGS.transformer_max:
                continue
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), f"--point={name}:{length}",
                                   f"--repeats={FLAGS.repeats}", f"--jit={FLAGS.jit}"], capture_output=True, text=True,
                                  env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2"))
            if proc.returncode:
                row = {"model": name, "length": length, "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
            else:
                row = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{'length':>8s} {'TLB s/seq':>10s} {'TLB MB':>8s} {'Transf. s/seq':>14s} {'Transf. MB':>11s}")
    for length in sorted({r["length"] for r in results}):
        t = next((r for r in results if r["model"] == "tlb" and r["length"] == length), {})
        f = next((r for r in results if r["model"] == "transformer" and r["length"] == length), {})
        print(f"{length:8d} {t.get('seconds_per_example', float('nan')):10.3f} {t.get('peak_rss_mb', 0):8d} "
              f"{f.get('seconds_per_example', float('nan')):14.3f} {f.get('peak_rss_mb', 0):11d}")
    if FLAGS.png:
        plot(results, FLAGS.png)
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    app.run(main)
