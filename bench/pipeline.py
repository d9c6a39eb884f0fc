"""Input pipeline alone: training examples/s of a config's tf.data pipeline, no model.

Reads, decodes, augments and batches exactly what `tlbkit-train` feeds the model for the given gin
files (the dataset's train split, its train_map and batch_map), and times the batches.

    python bench/pipeline.py --gin_file=cifar10_keras_io_cpu.gin --data_dir=DATA --batch=256 --batches=40

The pipeline keeps up when its rate is well above the model's training rate (bench/throughput.py);
on 2 cores both share the same cores, so the number also says how much CPU the input side takes.
"""

import json
import os
import sys
import time

from absl import app, flags

flags.DEFINE_multi_string("gin_file", ["cifar10_keras_io_cpu.gin"], "Gin files (by path or shipped name).")
flags.DEFINE_multi_string("gin_param", [], "Gin bindings.")
flags.DEFINE_string("data_dir", None, "Data folder (as tlbkit-train --data_dir).")
flags.DEFINE_integer("batch", 256, "Batch size.")
flags.DEFINE_integer("batches", 40, "Timed batches (after a first pass that fills the cache).")
FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv):
    del argv
    sys.path.insert(0, ROOT)
    from tlbkit import data, evaluate, gin_utils, pipeline, plugins

    plugins.load_all()
    data.set_data_dir(FLAGS.data_dir)
    gin_utils.parse(FLAGS.gin_file, FLAGS.gin_param)
    spec = evaluate.run_spec().load()
    # The first epoch decodes and fills the in-memory cache; time a later one, as training sees it.
    ds = pipeline.batched(spec, "train", FLAGS.batch, training=True)
    t0 = time.perf_counter()
    for _ in ds:
        pass
    first_epoch = time.perf_counter() - t0
    it = iter(ds.repeat())
    next(it)
    t0 = time.perf_counter()
    for _ in range(FLAGS.batches):
        next(it)
    rate = FLAGS.batches * FLAGS.batch / (time.perf_counter() - t0)
    print(json.dumps({"gin_file": FLAGS.gin_file, "gin_param": FLAGS.gin_param, "batch": FLAGS.batch, "first_epoch_s": round(first_epoch, 1),
                      "train_examples_per_s": round(rate, 1)}))


if __name__ == "__main__":
    app.run(main)
