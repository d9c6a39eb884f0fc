"""Steady-state training-step and evaluation-batch times of the shipped recipes under each Keras backend, in one run.

Keras picks its backend at import, so one worker process per backend (`KERAS_BACKEND=tensorflow`, `jax`)
builds every recipe as `tlbkit-train` does (its dataset, pipeline, batch size, model, AdamW with the
recipe's weight decay, clipping, label smoothing, XLA choice and weight average) and keeps one real
training batch and one evaluation batch of it. The parent then asks the workers in turn: in round 0 each
builds, traces and compiles (the untimed-as-steady `first step`, reported apart), then every round times
`--steps` training steps (`train_on_batch` on the kept batch: the input pipeline is the same `tf.data`
under both backends and is left out) and `--steps` evaluation batches (`tlbkit.evaluate.logits_function`,
the path of `metrics.json` and `tlbkit-eval`) of every recipe under every backend, recipe after recipe,
the backends' order alternating, so both sides of each ratio see the same state of a shared machine.
Only one worker computes at a time. The best round counts (round 0's included). Datasets are cut to a few thousand examples
(`SMALL`): step times depend on shapes, not on the number of examples (a vocabulary built from fewer
reviews is smaller; the table says where).

    python bench/backend_speed.py --data_dir=/work/shared/data --steps=5 --rounds=3 \\
        --json_out=docs/bench/backend_speed.jsonl

Prints one JSON line per recipe, backend and round, then a Markdown table. `shapes` counts the distinct
training-batch shapes among the first 20 batches: JAX compiles the step once per shape.
"""

import json
import os
import subprocess
import sys
import time

from absl import app, flags

# name -> (gin file, bindings): every recipe this CPU trains, and cifar10.gin (the GPU recipe) on the CPU
# recipe's image folder instead of TFDS (same 32x32 images).
SMALL = {
    "image_folder": ["datasets.image_folder.max_examples = 3000", "datasets.image_folder.validation_count = 1000"],
    "imdb_folder": ["datasets.imdb_folder.max_examples_per_split = 1500"],
    "listops": ["datasets.listops.num_train = 2000", "datasets.listops.num_validation = 500",
                "datasets.listops.num_test = 500"],
}
RECIPES = {
    "recall_cpu": ("recall_cpu.gin", []),
    "ucr (GunPoint)": ("ucr_gunpoint.gin", []),
    "ucr (ItalyPowerDemand)": ("ucr_italypower.gin", []),
    "listops_cpu": ("listops_cpu.gin", SMALL["listops"]),
    "imdb_cpu": ("imdb_cpu.gin", SMALL["imdb_folder"]),
    "imdb_bytes_cpu": ("imdb_bytes_cpu.gin", SMALL["imdb_folder"]),
    "cifar10_cpu": ("cifar10_cpu.gin", SMALL["image_folder"]),
    "cifar10_keras_io_cpu": ("cifar10_keras_io_cpu.gin", SMALL["image_folder"]),
    "cifar10 (GPU recipe)": ("cifar10.gin", ["DATASET = @datasets.image_folder()",
                                             "datasets.image_folder.path = 'cifar10-train-jpg.zip'"]
                             + SMALL["image_folder"]),
}
flags.DEFINE_list("recipes", list(RECIPES), "Recipes to time (names of RECIPES).")
flags.DEFINE_list("backends", ["tensorflow", "jax"], "Keras backends; the first is the ratio's base.")
flags.DEFINE_string("data_dir", None, "Data folder (as tlbkit-train --data_dir).")
flags.DEFINE_integer("steps", 5, "Timed training steps and evaluation batches per recipe, backend and round.")
flags.DEFINE_integer("rounds", 3, "Rounds after round 0 (which builds and compiles, then times steps too).")
flags.DEFINE_string("json_out", None, "Also append the JSON lines here.")
flags.DEFINE_string("from_json", None, "Print the table of an earlier run's --json_out file and exit.")
flags.DEFINE_boolean("worker", False, "Internal: serve requests for the backend of this process.")
FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPLY = "@@backend_speed "  # a worker's replies on stdout start with this; Keras' own output does not


# === Worker: one backend ===
def build(gin_file, params):
    """`(model, train batch, eval batch, logits function, facts)` of one recipe, as tlbkit-train builds it."""
    import gin
    import keras
    import numpy as np

    from tlbkit import backends, evaluate, gin_utils, pipeline
    from tlbkit.train import compile_for_training, exclude_vectors_from_weight_decay, train

    gin.clear_config()
    gin_utils.parse([gin_file], params)
    bound = gin_utils.effective_arguments(train, "train", ["batch_size", "weight_decay", "clip_norm", "label_smoothing",
                                                           "jit_compile", "ema_momentum", "weight_decay_vectors"])
    batch = bound.pop("batch_size")
    keras.utils.set_random_seed(0)
    spec = evaluate.run_spec().load()
    train_ds = pipeline.batched(spec, "train", batch, training=True, cache=False)
    backends.check_numeric_inputs(train_ds.element_spec[0], "the recipe's dataset")
    shapes, batches = set(), iter(train_ds)
    first = next(batches)
    for x, _ in [first] + [b for _, b in zip(range(19), batches)]:
        shapes.add(tuple(tuple(t.shape) for t in keras.tree.flatten(x)))
    split = "validation" if spec.split("validation") is not None else "test"
    eval_x, _ = next(iter(pipeline.batched(spec, split, batch, training=False, cache=False)))
    to_numpy = lambda s: keras.tree.map_structure(np.asarray, s)  # noqa: E731
    x, y = to_numpy(first)
    eval_x = to_numpy(eval_x)
    model = gin_utils.evaluate_binding("train.model")(num_classes=spec.num_classes)
    decay_vectors = bound.pop("weight_decay_vectors")
    compile_for_training(model, 1e-4, **bound)  # a fixed learning rate: speed does not depend on its value
    model(x)
    if not decay_vectors:
        exclude_vectors_from_weight_decay(model)
    model.optimizer.build(model.trainable_variables)
    if getattr(model, "needs_adapt", False):
        model.adapt(pipeline.batched(spec, "train", batch, training=False, cache=False))
    facts = {"batch": batch, "params": int(model.count_params()), "shapes": len(shapes)}
    return model, (x, y), eval_x, evaluate.logits_function(model), facts


def timed(fn, steps):
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def serve():
    import numpy as np

    from tlbkit import data, plugins

    plugins.load_all()
    data.set_data_dir(FLAGS.data_dir)
    built = {}
    for line in sys.stdin:
        request = json.loads(line)
        name, steps = request["recipe"], request["steps"]
        try:
            reply = {}
            if name not in built:
                t0 = time.perf_counter()
                model, (x, y), eval_x, logits, facts = build(*RECIPES[name])
                reply["build_s"] = round(time.perf_counter() - t0, 1)
                reply["first_step_s"] = round(timed(lambda: model.train_on_batch(x, y), 1), 1)
                reply["first_eval_s"] = round(timed(lambda: np.asarray(logits(eval_x)), 1), 1)
                built[name] = model, (x, y), eval_x, logits
                reply.update(facts)
            model, (x, y), eval_x, logits = built[name]
            reply["train_ms"] = round(1e3 * timed(lambda: model.train_on_batch(x, y), steps), 1)
            reply["eval_ms"] = round(1e3 * timed(lambda: np.asarray(logits(eval_x)), steps), 1)
        except Exception as e:  # reported, and the other recipes still run
            reply = {"error": f"{type(e).__name__}: {e}"[:500]}
        print(REPLY + json.dumps(reply), flush=True)


# === Parent: every backend, recipe after recipe ===
class Worker:
    def __init__(self, backend):
        env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        args = [sys.executable, os.path.abspath(__file__), "--worker"]
        args += [f"--data_dir={FLAGS.data_dir}"] if FLAGS.data_dir else []
        self.proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=ROOT)

    def ask(self, recipe, steps):
        self.proc.stdin.write(json.dumps({"recipe": recipe, "steps": steps}) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])
        raise RuntimeError(f"the worker ended (exit status {self.proc.wait()}); its stderr is above.")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def emit(obj):
    from bench.timing import emit as emit_line

    emit_line(obj, FLAGS.json_out)


def table(first, best):
    base, other = FLAGS.backends[0], FLAGS.backends[1:]
    head = "| recipe | batch | params | shapes in 20 batches |"
    head += "".join(f" {b} train ms/step |" for b in FLAGS.backends)
    head += "".join(f" {b} / {base} |" for b in other)
    head += "".join(f" {b} eval ms/batch |" for b in FLAGS.backends)
    head += " first step s (" + ", ".join(FLAGS.backends) + ") |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in FLAGS.recipes:
        failed = [f"{b}: {first[name][b]['error'].split('; ')[0][:160]}" for b in FLAGS.backends if "error" in first[name][b]]
        if failed or name not in best or len(best[name]) < len(FLAGS.backends):
            lines.append(f"| {name} | not timed: {'; '.join(failed) or 'a timed round failed'} |")
            continue
        facts = first[name][base]
        row = f"| {name} | {facts['batch']} | {facts['params']:,} | {facts['shapes']} |"
        row += "".join(f" {best[name][b]['train_ms']:.1f} |" for b in FLAGS.backends)
        row += "".join(f" {best[name][b]['train_ms'] / best[name][base]['train_ms']:.2f} |" for b in other)
        row += "".join(f" {best[name][b]['eval_ms']:.1f} |" for b in FLAGS.backends)
        row += " " + ", ".join(f"{first[name][b]['first_step_s']}" for b in FLAGS.backends) + " |"
        lines.append(row)
    return "\n".join(lines)


def main(argv):
    del argv
    sys.path.insert(0, ROOT)
    if FLAGS.worker:
        return serve()
    if FLAGS.from_json:
        return print(table_from_json(FLAGS.from_json))
    unknown = [r for r in FLAGS.recipes if r not in RECIPES]
    if unknown:
        raise app.UsageError(f"--recipes: unknown {unknown}; known: {list(RECIPES)}")
    emit({"machine": f"{os.cpu_count()} CPUs", "load_average": os.getloadavg(), "started": time.ctime()})
    workers = {b: Worker(b) for b in FLAGS.backends}
    first, best = {}, {}
    try:
        for r in range(FLAGS.rounds + 1):
            for i, name in enumerate(FLAGS.recipes):
                order = FLAGS.backends if (r + i) % 2 == 0 else FLAGS.backends[::-1]
                for backend in order:
                    if "error" in first.get(name, {}).get(backend, {}):
                        continue
                    reply = workers[backend].ask(name, FLAGS.steps)
                    emit({"round": r, "recipe": name, "backend": backend, **reply})
                    collect(first, best, {"round": r, "recipe": name, "backend": backend, **reply})
    finally:
        for w in workers.values():
            w.close()
    emit({"finished": time.ctime(), "load_average": os.getloadavg()})
    print(f"\nbest of {FLAGS.rounds + 1} rounds of {FLAGS.steps} steps\n")
    print(table(first, best))


def collect(first, best, line):
    """Keeps round 0's reply (build, first step) and each recipe's and backend's fastest timed steps."""
    name, backend = line["recipe"], line["backend"]
    if line["round"] == 0:
        first.setdefault(name, {})[backend] = line
    if "error" not in line:
        kept = best.setdefault(name, {}).setdefault(backend, dict(line))
        for key in ("train_ms", "eval_ms"):
            kept[key] = min(kept[key], line[key])


def table_from_json(path):
    """The table of an earlier run's JSON lines (--json_out), e.g. one cut short."""
    first, best = {}, {}
    with open(path) as f:
        for line in map(json.loads, f):
            if "recipe" in line:
                collect(first, best, line)
    FLAGS.recipes = [r for r in FLAGS.recipes if r in first]
    return table(first, best)


if __name__ == "__main__":
    app.run(main)
