"""Benchmark 1: training / inference throughput of tlbkit's keras-io mode vs. a plain RNN re-implementation.

Same shapes as the keras-io example on CIFAR-10 (48x48x3 images, patch 4 -> 144 tokens, chunk 8 -> 18
chunks, dim 64, 4 layers, r=2, 1 head, float32), same random data, same machine, one run.

- Throughput: every variant is built in this one process; `--rounds` rounds then time `--steps`
  training steps and `--infer_steps` XLA inference batches of each variant in turn (best round counts),
  so the ratios compare variants under the same conditions of a shared machine.
- Peak memory (max RSS) and build / first-step times: each variant in a fresh subprocess of its own
  (`--repeats` times), so its memory and its tracing are its own.

    python bench/throughput.py --batch=256 --steps=3 --infer_steps=3 --rounds=3 [--json_out=docs/bench/throughput.json]

Prints one JSON line per fresh-process run and per round, then a table with the ratios, each rate as a fraction of the
float32 matmul rate measured in the same run, and each rate against the design's matmul floor
(`bench/matmul_floor.py`, timed in the same rounds): the examples/s of a step made of nothing but the design's matrix
products, an upper bound for any implementation, and so a ceiling on any ratio to the plain design.
"""

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

flags.DEFINE_integer("batch", 256, "Batch size.")
flags.DEFINE_integer("steps", 5, "Training steps per round (and after the first step in fresh-process runs).")
flags.DEFINE_integer("infer_steps", 5, "Inference batches per round.")
flags.DEFINE_integer("repeats", 1, "Fresh-process runs per variant (peak memory, first-step times).")
flags.DEFINE_integer("rounds", 3, "Alternating timing rounds in one process; each variant's best round counts.")
flags.DEFINE_multi_string("variants", ["reference_rnn", "tlbkit", "tlbkit_autodiff"], "Variants to run.")
flags.DEFINE_string("variant", None, "Internal: run one variant and print its JSON.")
flags.DEFINE_string("json_out", None, "Also write all results to this JSON file.")
FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")  # keras_io_reference.py: the plain re-implementation of the keras-io example


def keras_io_flops_per_example(tokens=144, chunk=8, dim=64, ffn=256, applications_per_chunk=10, patch_dim=48):
    """Forward multiply-adds x2 of the keras-io design: per chunk 9 fast block applications + the slow update.

    Per application on a chunk of `chunk` queries: Q, K, V, O projections (4 * c*d*d), attention
    scores and mixing (2 * c*c*d), FFN (2 * c*d*ffn); plus the patch projection (tokens * 48 * d).
    """
    per_application = 2 * (4 * chunk * dim * dim + 2 * chunk * chunk * dim + 2 * chunk * dim * ffn)
    return (tokens // chunk) * applications_per_chunk * per_application + 2 * tokens * patch_dim * dim


def matmul_gflops(m=2048, k=2048, n=2048, repeats=10):
    """float32 (m, k) x (k, n) matmul rate of TensorFlow on this machine, GFLOP/s.

    Small products are chained inside one graph (20 per call) so call overhead does not count.
    """
    import tensorflow as tf

    a = tf.random.normal((m, k))
    b = tf.random.normal((k, n))
    chain = 1 if m * k * n >= 2048**3 else 20

    @tf.function
    def f():
        out = tf.zeros((m, n))
        for i in range(chain):
            out += tf.matmul(a + float(i), b)
        return out

    f().numpy()
    t0 = time.perf_counter()
    for _ in range(repeats):
        f().numpy()
    return 2 * m * k * n * chain * repeats / (time.perf_counter() - t0) / 1e9


def best_of(runs):
    """One variant's best fresh-process run: shortest first steps, largest peak memory (the honest side)."""
    best = dict(runs[0])
    for key in ("build_s", "first_train_step_s", "first_inference_s"):
        best[key] = min(r[key] for r in runs)
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return best


def prepared_variant(name, batch):
    """`(model, images, labels, infer, timings)`: variant `name` built, traced for training and XLA
    inference, with its build / first-step / first-inference seconds."""
    import tensorflow as tf

    from keras_io_reference import compiled_variant

    model, images, labels = compiled_variant(name, batch)
    # Build the model and its optimizer first, as tlbkit-train does; otherwise the optimizer's
    # variables are created inside the first traced step and TensorFlow traces it twice.
    t0 = time.perf_counter()
    model(images[:2])
    model.optimizer.build(model.trainable_variables)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.train_on_batch(images, labels)
    first = time.perf_counter() - t0
    # Inference: both XLA-compiled (jit_compile=True), each model's fastest inference here.
    infer = tf.function(lambda x: model(x, training=False), jit_compile=True)
    t0 = time.perf_counter()
    np.asarray(infer(images))
    infer_first = time.perf_counter() - t0
    timings = {"build_s": round(build, 1), "first_train_step_s": round(first, 1),
               "first_inference_s": round(infer_first, 1)}
    return model, images, labels, infer, timings


def fresh_process_run(name, batch, steps):
    """In this (fresh) process: build and first-step times and the peak RSS of `steps` training steps."""
    model, images, labels, infer, timings = prepared_variant(name, batch)
    for _ in range(steps):
        model.train_on_batch(images, labels)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": name, "batch": batch, "params": int(model.count_params()), **timings,
            "peak_rss_mb": round(peak_mb)}


def same_process_rates(names, batch, steps, infer_steps, rounds):
    """`({name: {"train_examples_per_s", "inference_examples_per_s"}}, floor, log)`, all in this process.

    Every variant and the matmul floor are built and traced first; then `rounds` rounds each time
    `steps` training steps and `infer_steps` XLA inference batches of every variant in turn, and the
    floor once; each best round counts, so that all see the same conditions of this shared machine.
    """
    from bench import matmul_floor

    prepared = {name: prepared_variant(name, batch) for name in names}
    # Building a variant sets the global random seed, which makes TensorFlow retrace the functions of
    # the variants built before it: one more untimed call of each, after all are built.
    for name, (model, images, labels, infer, _) in prepared.items():
        model.train_on_batch(images, labels)
        np.asarray(infer(images))
    floor_once = matmul_floor.floor_timer(batch)  # traced after the last seed is set
    floor_best = {}
    best = {name: {"train_examples_per_s": 0.0, "inference_examples_per_s": 0.0} for name in names}
    rounds_log = []
    for r in range(rounds):
        for name, (model, images, labels, infer, _) in prepared.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(images, labels)
            train = batch * steps / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _ in range(infer_steps):
                np.asarray(infer(images))
            inference = batch * infer_steps / (time.perf_counter() - t0)
            rounds_log.append({"round": r, "variant": name, "train_examples_per_s": round(train, 1),
                               "inference_examples_per_s": round(inference, 1)})
            print(json.dumps(rounds_log[-1]), flush=True)
            best[name]["train_examples_per_s"] = max(best[name]["train_examples_per_s"], round(train, 1))
            best[name]["inference_examples_per_s"] = max(best[name]["inference_examples_per_s"], round(inference, 1))
        floor = {k: round(v, 1) for k, v in floor_once().items()}
        rounds_log.append({"round": r, "variant": "matmul_floor", **floor})
        print(json.dumps(rounds_log[-1]), flush=True)
        floor_best = {k: max(floor_best.get(k, 0.0), v) for k, v in floor.items()}
    return best, matmul_floor.summarize(floor_best), rounds_log


def main(argv):
    del argv
    sys.path[:0] = [ROOT, TESTS]
    if FLAGS.variant:
        print(json.dumps(fresh_process_run(FLAGS.variant, FLAGS.batch, FLAGS.steps)), flush=True)
        return
    from keras_io_reference import check_variants

    check_variants(FLAGS.variants)
    gflops = matmul_gflops()
    small = matmul_gflops(2048, 64, 192, repeats=20)  # a QKV projection of one chunk at batch 256
    flops = keras_io_flops_per_example()
    print(json.dumps({"matmul_gflops_float32": round(gflops, 1), "matmul_2048x64x192_gflops": round(small, 1),
                      "forward_mflop_per_example": round(flops / 1e6, 1)}))
    # Peak memory and first-step times: each variant in a fresh process of its own.
    runs = {name: [] for name in FLAGS.variants}
    for _ in range(FLAGS.repeats):
        for name in FLAGS.variants:
            env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), f"--variant={name}", f"--batch={FLAGS.batch}",
                 f"--steps={FLAGS.steps}"],
                capture_output=True, text=True, env=env,
            )
            if proc.returncode:
                raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
            runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[name][-1]), flush=True)
    results = {name: best_of(r) for name, r in runs.items()}
    # Throughput: all variants in this one process, alternating.
    rates, floor, rounds_log = same_process_rates(FLAGS.variants, FLAGS.batch, FLAGS.steps, FLAGS.infer_steps,
                                           FLAGS.rounds)
    for name in results:
        results[name].update(rates[name])
    peak_rate = gflops * 1e9

    def frac(rate, mult):
        return rate * flops * mult / peak_rate

    names = list(results)
    ref = results.get("reference_rnn")
    print()
    print(f"{'':28s}" + "".join(f"{n:>17s}" for n in names) + (f"{'tlbkit/ref':>12s}" if ref and "tlbkit" in results else ""))
    floors = {"train_examples_per_s": floor["floor_train_examples_per_s"],
              "inference_examples_per_s": floor["floor_inference_examples_per_s"]}
    rows = [
        ("train examples/s", "train_examples_per_s", 3),
        ("inference examples/s", "inference_examples_per_s", 1),
        ("model + optimizer build (s)", "build_s", None),
        ("first train step (s)", "first_train_step_s", None),
        ("peak RSS (MB)", "peak_rss_mb", None),
    ]
    summary = {"matmul_gflops_float32": round(gflops, 1), "matmul_2048x64x192_gflops": round(small, 1),
               "forward_mflop_per_example": round(flops / 1e6, 1), "repeats": FLAGS.repeats,
               "rounds": FLAGS.rounds, **floor}
    for label, key, mult in rows:
        line = f"{label:28s}" + "".join(f"{results[n][key]:17.1f}" for n in names)
        if ref and "tlbkit" in results:
            ratio = results["tlbkit"][key] / ref[key]
            line += f"{ratio:11.2f}x"
            summary[key + "_ratio"] = round(ratio, 2)
        print(line)
        if mult:
            print(f"{'  (fraction of matmul rate)':28s}" + "".join(f"{frac(results[n][key], mult):17.0%}" for n in names))
            print(f"{'  (fraction of matmul floor)':28s}" + "".join(f"{results[n][key] / floors[key]:17.0%}" for n in names))
    print(f"matmul floor (bench/matmul_floor.py): {floors['train_examples_per_s']:.1f} training, "
          f"{floors['inference_examples_per_s']:.1f} inference examples/s")
    if ref:
        for key, label in (("train_examples_per_s", "training"), ("inference_examples_per_s", "inference")):
            ceiling = floors[key] / ref[key]
            summary[key + "_ceiling_ratio"] = round(ceiling, 2)
            print(f"ceiling of any {label} ratio to reference_rnn (floor / reference_rnn): {ceiling:.2f}x")
    if FLAGS.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.json_out)), exist_ok=True)
        with open(FLAGS.json_out, "w") as f:
            json.dump({"summary": summary, "best": results, "runs": runs, "rounds": rounds_log}, f, indent=2)


if __name__ == "__main__":
    app.run(main)
