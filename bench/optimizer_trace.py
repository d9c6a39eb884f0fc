"""The optimizer's share of a traced TensorFlow training step: Keras' AdamW against tlbkit's, per recipe.

Each recipe's model is built as `tlbkit-train` builds it (its gin model on one batch of its dataset; AdamW
with the recipe's learning-rate schedule, weight decay, 1-D weights exempt unless the recipe decays them,
clipping and weight average). Then one optimizer update of all its trainable variables is traced as a
`tf.function` with each optimizer, alternating, `--rounds` times: the number of graph operations and the
trace time (the best round). Both optimizers give the same updates bit for bit (tests/test_optimizers.py);
only the graph differs.

    python bench/optimizer_trace.py --data_dir=DATA --recipes=recall_cpu.gin,ucr_gunpoint.gin,cifar10_cpu.gin

Prints one JSON line per recipe, then a Markdown table.
"""

import json
import os
import sys
import time

from absl import app, flags

flags.DEFINE_list("recipes", ["recall_cpu.gin", "ucr_gunpoint.gin", "cifar10_cpu.gin"], "Gin files, by name.")
flags.DEFINE_string("data_dir", None, "Data folder (as tlbkit-train --data_dir), for recipes that read files.")
flags.DEFINE_integer("rounds", 3, "Traces per optimizer and recipe; the fastest counts.")
FLAGS = flags.FLAGS


def build(gin_file):
    """`(model, train-argument bindings)` of one recipe, built on one training batch."""
    import gin
    import keras

    from tlbkit import evaluate, gin_utils, pipeline
    from tlbkit.train import train

    gin.clear_config()
    gin_utils.parse([gin_file], [])
    bound = gin_utils.effective_arguments(train, "train", [
        "batch_size", "learning_rate", "schedule", "warmup_epochs", "min_learning_rate", "weight_decay", "clip_norm",
        "ema_momentum", "weight_decay_vectors"])
    keras.utils.set_random_seed(0)
    spec = evaluate.run_spec().load()
    x, _ = next(iter(pipeline.batched(spec, "train", bound["batch_size"], training=True, cache=False)))
    model = gin_utils.evaluate_binding("train.model")(num_classes=spec.num_classes)
    model(x)
    return model, bound


def trace(model, bound, optimizer_class):
    """`(operations, seconds)` of tracing one update of `model`'s trainable variables."""
    import tensorflow as tf

    from tlbkit.train import make_learning_rate

    warmup = 100 if bound["warmup_epochs"] else 0
    lr = make_learning_rate(bound["learning_rate"], bound["schedule"], warmup, 10_000, bound["min_learning_rate"])
    ema = bound["ema_momentum"]
    optimizer = optimizer_class(learning_rate=lr, weight_decay=bound["weight_decay"], global_clipnorm=bound["clip_norm"],
                                use_ema=ema is not None, ema_momentum=0.99 if ema is None else ema)
    variables = model.trainable_variables
    if not bound["weight_decay_vectors"]:
        optimizer.exclude_from_weight_decay(var_list=[v for v in variables if len(v.shape) <= 1])
    optimizer.build(variables)
    step = tf.function(lambda grads: optimizer.apply(grads, variables))
    start = time.perf_counter()
    graph = step.get_concrete_function([tf.TensorSpec(v.shape, v.dtype) for v in variables]).graph
    seconds = time.perf_counter() - start
    return len(graph.get_operations()), seconds


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if FLAGS.data_dir:
        os.environ["TLBKIT_DATA_DIR"] = os.path.abspath(FLAGS.data_dir)
    import keras

    import tlbkit.plugins
    from tlbkit import optimizers

    if keras.backend.backend() != "tensorflow":
        sys.exit("bench/optimizer_trace.py measures TensorFlow graphs: run it with KERAS_BACKEND=tensorflow.")
    tlbkit.plugins.load_all()
    rows = []
    for recipe in FLAGS.recipes:
        model, bound = build(recipe)
        best = {}
        for _ in range(FLAGS.rounds):
            for name, cls in (("keras", keras.optimizers.AdamW), ("tlbkit", optimizers.AdamW)):
                ops, seconds = trace(model, bound, cls)
                best[name] = (ops, min(seconds, best.get(name, (0, float("inf")))[1]))
        row = {"recipe": recipe, "variables": len(model.trainable_variables),
               **{f"{k}_ops": v[0] for k, v in best.items()}, **{f"{k}_trace_s": round(v[1], 3) for k, v in best.items()}}
        print(json.dumps(row), flush=True)
        rows.append(row)
    print("\n| recipe | variables | Keras AdamW: ops, trace s | tlbkit AdamW: ops, trace s | trace time ratio |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['recipe']}` | {r['variables']} | {r['keras_ops']:,}, {r['keras_trace_s']:.2f} | "
              f"{r['tlbkit_ops']:,}, {r['tlbkit_trace_s']:.2f} | {r['tlbkit_trace_s'] / r['keras_trace_s']:.2f} |")


if __name__ == "__main__":
    app.run(main)
