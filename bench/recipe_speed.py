"""Training and validation examples/s of whole recipes (gin files), input pipeline included, in one process.

Each `--recipe=NAME=GIN_FILE` is built as `tlbkit-train` builds it (its dataset, pipeline, batch size,
model, AdamW, loss and metrics); then `--rounds` rounds time `--steps` training steps on its real
training batches and `--val_steps` validation batches, recipe after recipe, so every recipe sees the
same state of a shared machine and the ratios between them hold even when the machine's speed does not.
The first round traces and fills the caches and is not counted.

    python bench/recipe_speed.py --data_dir=DATA --recipe=tlbkit=cifar10_cpu.gin \
        --recipe=keras_io=cifar10_keras_io_cpu.gin --steps=30 --val_steps=20 --rounds=3

Prints one JSON line per recipe and round, then a table: each recipe's best round, and its rate as a
multiple of the first recipe's.
"""

import json
import os
import sys
import time

from absl import app, flags

flags.DEFINE_multi_string("recipe", ["tlbkit=cifar10_cpu.gin", "keras_io=cifar10_keras_io_cpu.gin"],
                          "NAME=GIN_FILE (by path or shipped name); repeat for each recipe.")
flags.DEFINE_multi_string("gin_param", [], "Gin bindings applied to every recipe.")
flags.DEFINE_string("data_dir", None, "Data folder (as tlbkit-train --data_dir).")
flags.DEFINE_integer("steps", 30, "Timed training steps per recipe and round.")
flags.DEFINE_integer("val_steps", 20, "Timed validation batches per recipe and round.")
flags.DEFINE_integer("rounds", 3, "Timed rounds (after one untimed warm-up round).")
FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(gin_file):
    """(model, train iterator, validation dataset, batch size, parameters) of one recipe, as tlbkit-train builds it."""
    import gin

    from tlbkit import evaluate, gin_utils, pipeline
    from tlbkit.train import compile_for_training, train

    gin.clear_config()
    gin_utils.parse([gin_file], FLAGS.gin_param)
    bound = gin_utils.effective_arguments(train, "train", ["batch_size", "weight_decay", "clip_norm", "label_smoothing",
                                                           "jit_compile"])
    batch = bound.pop("batch_size")
    spec = evaluate.run_spec().load()
    train_ds = pipeline.batched(spec, "train", batch, training=True).repeat()
    val_ds = pipeline.batched(spec, "validation", batch, training=False)  # cached like train()'s
    model = gin_utils.evaluate_binding("train.model")(num_classes=spec.num_classes)
    compile_for_training(model, 1e-4, **bound)  # a fixed learning rate: speed does not depend on its value
    return model, iter(train_ds), iter(val_ds.repeat()), batch


def time_round(model, train_it, val_it, batch):
    """(training examples/s, validation examples/s) over one round."""
    t0 = time.perf_counter()
    for _ in range(FLAGS.steps):
        model.train_on_batch(*next(train_it))
    train_rate = FLAGS.steps * batch / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(FLAGS.val_steps):  # one iterator over all rounds: no per-call start of `evaluate` timed
        model.test_on_batch(*next(val_it))
    val_rate = FLAGS.val_steps * batch / (time.perf_counter() - t0)
    return train_rate, val_rate


def main(argv):
    del argv
    sys.path.insert(0, ROOT)
    from tlbkit import data, plugins

    plugins.load_all()
    data.set_data_dir(FLAGS.data_dir)
    recipes = {}
    for item in FLAGS.recipe:
        name, _, gin_file = item.partition("=")
        if not gin_file:
            raise app.UsageError(f"--recipe={item!r}: expected NAME=GIN_FILE, "
                                 "e.g. --recipe=keras_io=cifar10_keras_io_cpu.gin")
        recipes[name] = build(gin_file)
    best = {name: (0.0, 0.0) for name in recipes}
    for r in range(FLAGS.rounds + 1):
        for name, (model, train_it, val_it, batch) in recipes.items():
            train_rate, val_rate = time_round(model, train_it, val_it, batch)
            if r == 0:
                continue  # tracing and cache filling
            print(json.dumps({"round": r, "recipe": name, "batch": batch, "train_examples_per_s": round(train_rate, 1),
                              "val_examples_per_s": round(val_rate, 1)}), flush=True)
            best[name] = (max(best[name][0], train_rate), max(best[name][1], val_rate))
    first = next(iter(best))
    print(f"\n| recipe | parameters | training ex/s (best of {FLAGS.rounds}) | x {first} | validation ex/s | x {first} |")
    print("|---|---|---|---|---|---|")
    for name, (train_rate, val_rate) in best.items():
        params = recipes[name][0].count_params()
        print(f"| {name} | {params:,} | {train_rate:.1f} | {train_rate / best[first][0]:.2f} | {val_rate:.1f} | "
              f"{val_rate / best[first][1]:.2f} |")


if __name__ == "__main__":
    app.run(main)
