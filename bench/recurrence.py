"""Times executions of the TLB recurrence for training on this machine.

Keras-io-mode cell at the CIFAR-10 shapes of the keras-io example (144 tokens of width 64,
chunk 8 -> 18 chunks, 4 layers, r=2, 1 head), inputs already tokenized, float32.

    python bench/recurrence.py --batch=64 --steps=10 --variant=loop --variant=loop_xla --variant=unroll

Variants: `loop` (the encoder's backend loop, graph mode: the default), `loop_xla` (the same
training step compiled by XLA, `jit_compile=True`), `unroll` / `unroll_xla` (the chunk loop unrolled
in the traced graph, without / with XLA).

Prints one JSON line per variant: first step (trace + compile) seconds and
training examples/s after it.
"""

import json
import os
import sys

from absl import app, flags

flags.DEFINE_integer("batch", 64, "Batch size.")
flags.DEFINE_integer("steps", 10, "Timed training steps after the first.")
flags.DEFINE_multi_string("variant", ["loop", "loop_xla", "unroll"], "Variants to time.")
FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")  # keras_io_reference.py: the plain re-implementation of the keras-io example


def build(unroll):
    from tlbkit.layers import ClassificationHead, TLBCell, TLBEncoder
    from tlbkit.models import SequenceClassifier

    cell = TLBCell(dim=64, num_heads=1, key_dim=64, num_layers=4, r=2, num_latents=8, dropout=0.2,
                   attention_dropout=0.2, layout="keras_io", norm_mode="qkv")
    return SequenceClassifier(
        TLBEncoder(cell, chunk_size=8, unroll=unroll),
        ClassificationHead(10, pooling="last_chunk", chunk_size=8, norm=False),
    )


def time_variant(name, batch, steps):
    from bench.timing import time_calls
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    model = build(unroll=name.startswith("unroll"))
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-4, weight_decay=1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=name.endswith("xla"),
    )
    x = np.random.default_rng(0).normal(size=(batch, 144, 64)).astype("float32")
    y = np.zeros((batch,), "int32")
    first, per_step = time_calls(lambda: model.train_on_batch(x, y), steps)
    rate = batch / per_step
    return {"variant": name, "batch": batch, "first_step_s": round(first, 1), "train_examples_per_s": round(rate, 1)}


VARIANTS = ("loop", "loop_xla", "unroll", "unroll_xla")


def main(argv):
    del argv
    sys.path[:0] = [ROOT, TESTS]
    import keras

    from keras_io_reference import check_variants

    check_variants(FLAGS.variant, VARIANTS)
    for name in FLAGS.variant:
        print(json.dumps({"backend": keras.backend.backend(), **time_variant(name, FLAGS.batch, FLAGS.steps)}), flush=True)


if __name__ == "__main__":
    app.run(main)
