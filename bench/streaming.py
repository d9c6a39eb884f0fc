"""Benchmark 3: peak memory of the streaming API vs. stream length (it must stay flat).

A TLB encoder (dim 64, 4 heads, 4 layers, chunk 64, 8 latents) is fed a random stream chunk by chunk
through `encoder.step` (one compiled step, state carried between calls); each length runs in its own
subprocess so its peak RSS is its own.

    python bench/streaming.py --lengths=4096,65536,262144
"""

import json
import os
import resource
import subprocess
import sys
import time

from absl import app, flags

flags.DEFINE_string("lengths", "4096,65536,262144", "Comma-separated stream lengths (tokens).")
flags.DEFINE_integer("point", 0, "Internal: measure one length.")
flags.DEFINE_string("json_out", None, "Write the results here.")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHUNK = 64


def measure(length):
    import keras
    import numpy as np
    import tensorflow as tf

    sys.path.insert(0, ROOT)
    from tlbkit.layers import TLBCell, TLBEncoder

    keras.utils.set_random_seed(0)
    encoder = TLBEncoder(TLBCell(dim=64, num_heads=4, num_layers=4, r=2, num_latents=8, dropout=0.0), CHUNK)
    step = tf.function(lambda chunk, state: encoder.step(chunk, state))
    state = encoder.init_state(1)
    rng = np.random.default_rng(0)
    chunk = rng.normal(size=(1, CHUNK, 64)).astype("float32")
    out, state = step(chunk, state)  # trace
    rss_after_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    for _ in range(length // CHUNK - 1):
        out, state = step(chunk, state)  # a real stream would read the next chunk here
    elapsed = time.perf_counter() - t0
    return {"length": length, "chunks": length // CHUNK, "ms_per_chunk": round(1000 * elapsed / max(length // CHUNK - 1, 1), 3),
            "peak_rss_mb_after_first_chunk": round(rss_after_first),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "state_finite": bool(np.isfinite(np.asarray(state)).all())}


def main(argv):
    del argv
    if FLAGS.point:
        print(json.dumps(measure(FLAGS.point)), flush=True)
        return
    rows = []
    for length in [int(v) for v in FLAGS.lengths.split(",")]:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), f"--point={length}"], capture_output=True,
                              text=True, env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2"))
        if proc.returncode:
            raise SystemExit(proc.stderr[-2000:])
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'tokens':>8s} {'chunks':>7s} {'ms/chunk':>9s} {'peak MB':>8s}")
    for r in rows:
        print(f"{r['length']:8d} {r['chunks']:7d} {r['ms_per_chunk']:9.2f} {r['peak_rss_mb']:8d}")
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    app.run(main)
