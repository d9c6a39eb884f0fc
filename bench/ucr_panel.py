"""The time-series default on a panel of UCR/UEA sets, beside 1-NN DTW and ROCKET: one table, one plot.

    python bench/ucr_panel.py --data_dir=DIR [--names=A,B,...] [--root=runs/panel/default] \\
        [--parallel=2] [--backend=jax] [--gin_file=ucr.gin] [--gin_param=...] [--baselines=FILE] [--report_only] \\
        [--order=shuffled] [--threads=N] [--versus=OTHER_ROOT] [--restore_from=OLD_PANEL_CSV]

Each set trains `tlbkit-train --gin_file=ucr.gin --gin_param="UCR_NAME = 'NAME'"` (plus the given
--gin_param bindings) into `<root>/<NAME>`, `--parallel` sets at a time (each held to its share of the CPU
threads), in a fixed shuffled order (a partial panel is a random subset), on the official train/test split;
the test accuracy and wall time are read from each run's `metrics.json`. Runs are resumable: a finished
set is skipped, an interrupted one resumes from its last epoch, so the command can be rerun until the
panel is complete. Without --names every set found in --data_dir's archive (`UCRArchive_2018/<Name>/`,
or sub-folders holding `<Name>_TRAIN.*`) is run, in alphabetical order.

References come from a JSON-lines file written by `bench/ucr_baselines.py --output=FILE` (default
`<root>/../baselines.jsonl`): 1-NN DTW (full window unless the row says `dtw_window`) and ROCKET
(10,000 kernels, seed 0). Sets without a reference row are still reported.

Writes `<root>/panel.csv` (per set: tlbkit accuracy, wall time, `fit` (its
accuracy on its own training data, with `train.score_train`), DTW, ROCKET), `<root>/panel.md` (the table,
wins / ties / losses against each reference, mean accuracy, mean rank) and `<root>/panel.png` (tlbkit
against each reference per set, the diagonal drawn). With `--versus=OTHER_ROOT` (say, the default's panel
while this one trains a candidate) the table adds the other panel's accuracy and a paired comparison over
the sets both have finished: a candidate is screened on the same sets, in the same shuffled order.
`--restore_from=panel.csv` carries a panel over from a session whose run folders are gone.
"""

import concurrent.futures
import csv
import json
import os
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

from tlbkit.run_dir import RunDir

flags.DEFINE_string("data_dir", None, "The folder holding UCRArchive_2018/ (or that folder, or a zip).")
flags.DEFINE_list("names", None, "Sets to run (default: every set found in --data_dir).")
flags.DEFINE_string("root", "runs/panel/default", "Folder of the runs, one sub-folder per set, and the report.")
flags.DEFINE_integer("parallel", 2, "Sets trained at once.")
flags.DEFINE_enum("backend", "jax", ["jax", "tensorflow"], "KERAS_BACKEND of the trainings.")
flags.DEFINE_multi_string("gin_file", ["ucr.gin"], "Config(s) of every run.")
flags.DEFINE_multi_string("gin_param", [], "Extra bindings of every run.")
flags.DEFINE_string("baselines", None, "JSON lines of bench/ucr_baselines.py (default: <root>/../baselines.jsonl).")
flags.DEFINE_bool("report_only", False, "Only write the report from the runs already there.")
flags.DEFINE_enum("order", "shuffled", ["shuffled", "listed"], "Order the sets are trained in: `shuffled` (a fixed "
                  "permutation, so an unfinished panel is a random subset of it, not the first letters) or as listed.")
flags.DEFINE_integer("threads", None, "CPU threads of each training (XLA and TensorFlow); default: the CPU count "
                     "divided by --parallel, so parallel runs do not oversubscribe the cores.")
flags.DEFINE_string("versus", None, "Root of another panel (e.g. the default's): the report adds its accuracy per "
                    "set and a paired comparison over the sets both finished (screening a candidate recipe).")
flags.DEFINE_string("restore_from", None, "A panel.csv kept from an earlier session (runs/ is not kept): its finished "
                    "sets are recorded as done (a metrics.json with their accuracy and wall time) and not trained again.")
FLAGS = flags.FLAGS

DIGITS = 4  # the references are recorded to 4 decimals (bench/ucr_baselines.py): compare at that precision


def at_precision(score):
    """`score` rounded as the references are, so an accuracy equal to a rounded reference's count ties it."""
    return round(float(score), DIGITS)


def find_sets(data_dir):
    """Names of the sets under `data_dir` (archive layout or flat sub-folders)."""
    for folder in (os.path.join(data_dir, "UCRArchive_2018"), data_dir):
        if os.path.isdir(folder):
            names = sorted(d for d in os.listdir(folder)
                           if os.path.isdir(os.path.join(folder, d))
                           and any(f.startswith(f"{d}_TRAIN") for f in os.listdir(os.path.join(folder, d))))
            if names:
                return names
    raise app.UsageError(f"--data_dir={data_dir}: no set folders found (<Name>/<Name>_TRAIN.*); pass --names.")


def train_one(name):
    """Trains (or resumes, or skips) one set; returns (name, seconds, return code, log path)."""
    run = os.path.join(FLAGS.root, name)
    os.makedirs(run, exist_ok=True)
    log = os.path.join(run, "train.log")
    if RunDir(run).is_finished:
        return name, 0.0, 0, log
    command = [sys.executable, "-m", "tlbkit.bin.train", f"--model_dir={run}",
               f"--gin_param=UCR_NAME = '{name}'"]
    # The fit on the training data (the report's `fit` column) costs a scoring pass; only the panel asks.
    command += [f"--gin_file={f}" for f in FLAGS.gin_file] + ["--gin_param=train.score_train = True"]
    command += [f"--gin_param={p}" for p in FLAGS.gin_param]
    if FLAGS.data_dir:
        command.append(f"--data_dir={FLAGS.data_dir}")
    env = dict(os.environ, KERAS_BACKEND=FLAGS.backend, **thread_env())
    start = time.time()
    with open(log, "a") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    return name, time.time() - start, code, log


def thread_env():
    """Environment that holds one training to `--threads` CPU threads (XLA's and TensorFlow's pools)."""
    threads = FLAGS.threads or max(1, (os.cpu_count() or 1) // FLAGS.parallel)
    eigen = "true" if threads > 1 else "false"
    return {"XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={threads}",
            "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads)}


def restore(path):
    """Writes `<root>/<set>/metrics.json` for each finished set of an earlier panel.csv that is not here."""
    restored = 0
    with open(path) as f:
        for row in csv.DictReader(f):
            if not row.get("tlbkit"):
                continue
            run = RunDir(os.path.join(FLAGS.root, row["name"]))
            if run.is_finished:
                continue
            os.makedirs(run.path, exist_ok=True)
            run.write_metrics({"test_accuracy": float(row["tlbkit"]),
                               "wall_time_s": float(row["wall_s"]) if row.get("wall_s") else None,
                               **({"train_accuracy": float(row["fit"])} if row.get("fit") else {}),
                               "restored_from": os.path.abspath(path)})
            restored += 1
    print(f"restored {restored} finished sets from {path}", flush=True)


def read_baselines(path):
    rows = {}
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    rows[row["name"]] = row
    return rows


def collect(names, baselines):
    """One row per set: accuracy and wall time of tlbkit (None if unfinished), the references."""
    rows = []
    for name in names:
        metrics = RunDir(os.path.join(FLAGS.root, name)).read_metrics() or {}
        ref = baselines.get(name, {})
        row = {"name": name, "tlbkit": metrics.get("test_accuracy"), "wall_s": metrics.get("wall_time_s"),
               "fit": metrics.get("train_accuracy"), "dtw": ref.get("dtw_1nn"), "rocket": ref.get("rocket"),
               "train": ref.get("train"), "length": ref.get("length")}
        if FLAGS.versus:
            row["versus"] = (RunDir(os.path.join(FLAGS.versus, name)).read_metrics() or {}).get("test_accuracy")
        rows.append(row)
    return rows


def compare(rows, ref):
    """(wins, ties, losses) of tlbkit against `ref` over the rows where both are known."""
    both = [(at_precision(r["tlbkit"]), at_precision(r[ref])) for r in rows
            if r["tlbkit"] is not None and r[ref] is not None]
    wins = sum(a > b for a, b in both)
    ties = sum(a == b for a, b in both)
    return wins, ties, len(both) - wins - ties


def mean_ranks(rows, methods):
    """Mean rank of each method over the rows where all are known (1 = best; ties share the mean rank)."""
    full = [r for r in rows if all(r[m] is not None for m in methods)]
    if not full:
        return {}, 0
    ranks = np.zeros(len(methods))
    for r in full:
        scores = np.array([at_precision(r[m]) for m in methods])
        for i, s in enumerate(scores):
            ranks[i] += 1 + np.sum(scores > s) + 0.5 * (np.sum(scores == s) - 1)
    return {m: ranks[i] / len(full) for i, m in enumerate(methods)}, len(full)


def report(rows):
    os.makedirs(FLAGS.root, exist_ok=True)
    with open(os.path.join(FLAGS.root, "panel.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    done = [r for r in rows if r["tlbkit"] is not None]
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    versus = f" {os.path.basename(os.path.normpath(FLAGS.versus))} |" if FLAGS.versus else ""
    lines = [f"| set | train | length | tlbkit | wall (min) |{versus} 1-NN DTW | ROCKET |",
             "|---|---|---|---|---|" + ("---|" if versus else "") + "---|---|"]
    for r in rows:
        wall = "–" if r["wall_s"] is None else f"{r['wall_s'] / 60:.1f}"
        other = f" {fmt(r['versus'])} |" if versus else ""
        lines.append(f"| {r['name']} | {r['train'] or '–'} | {r['length'] or '–'} | {fmt(r['tlbkit'])} | {wall} |"
                     f"{other} {fmt(r['dtw'])} | {fmt(r['rocket'])} |")
    lines.append("")
    lines.append(f"Sets finished: {len(done)} of {len(rows)}.")
    for ref, label in (("dtw", "1-NN DTW"), ("rocket", "ROCKET")):
        w, t, l = compare(rows, ref)
        n = w + t + l
        if n:
            both = [r for r in done if r[ref] is not None]
            lines.append(f"- against {label}: {w} wins, {t} ties, {l} losses over {n} sets; at least as good on "
                         f"{(w + t) / n:.0%}; mean accuracy {np.mean([r['tlbkit'] for r in both]):.3f} vs "
                         f"{np.mean([r[ref] for r in both]):.3f}.")
    ranks, n = mean_ranks(rows, ["tlbkit", "dtw", "rocket"])
    if ranks:
        lines.append(f"- mean rank over the {n} sets with all three (1 = best): "
                     + ", ".join(f"{m} {v:.2f}" for m, v in ranks.items()) + ".")
    if FLAGS.versus:
        w, t, l = compare(rows, "versus")
        diffs = [r["tlbkit"] - r["versus"] for r in done if r["versus"] is not None]
        if diffs:
            lines.append(f"- against {FLAGS.versus} (paired, {len(diffs)} sets both finished): {w} wins, {t} ties, "
                         f"{l} losses; mean difference {np.mean(diffs):+.3f} (sd {np.std(diffs):.3f}).")
    fits = [r["fit"] for r in done if r.get("fit") is not None]
    if fits:
        lines.append(f"- the last model on its own training data (train.score_train, no augmentation): median "
                     f"accuracy {np.median(fits):.3f}, below 0.99 on {sum(f < 0.99 for f in fits)} of {len(fits)} sets.")
    walls = [r["wall_s"] for r in done if r["wall_s"] is not None]
    if walls:
        how = "" if FLAGS.report_only else f" ({FLAGS.parallel} sets at a time)"
        lines.append(f"- wall time per set (the run's own wall_time_s): median {np.median(walls) / 60:.1f} min, "
                     f"max {max(walls) / 60:.1f} min{how}.")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(FLAGS.root, "panel.md"), "w") as f:
        f.write(text)
    print(text)
    plot(rows)


def plot(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, (ref, label) in zip(axes, (("dtw", "1-NN DTW"), ("rocket", "ROCKET"))):
        both = [r for r in rows if r["tlbkit"] is not None and r[ref] is not None]
        w, t, l = compare(rows, ref)
        ax.plot([0, 1], [0, 1], color="gray", lw=1)
        ax.scatter([r[ref] for r in both], [r["tlbkit"] for r in both], s=18)
        low = min([r[ref] for r in both] + [r["tlbkit"] for r in both] + [0.5]) - 0.02
        ax.set_xlim(low, 1.01)
        ax.set_ylim(low, 1.01)
        ax.set_xlabel(f"{label} accuracy")
        ax.set_ylabel("tlbkit accuracy")
        ax.set_title(f"tlbkit vs {label}: {w} W / {t} T / {l} L")
        ax.text(0.97, 0.03, f"{label} better", transform=ax.transAxes, ha="right", va="bottom", color="gray")
        ax.text(0.03, 0.97, "tlbkit better", transform=ax.transAxes, ha="left", va="top", color="gray")
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(os.path.join(FLAGS.root, "panel.png"), dpi=110)
    plt.close(fig)


def main(argv):
    del argv
    if FLAGS.parallel < 1:
        raise app.UsageError(f"--parallel must be at least 1; got {FLAGS.parallel}.")
    if not FLAGS.names and not FLAGS.data_dir:
        raise app.UsageError("pass --data_dir (the folder holding UCRArchive_2018/) or --names.")
    names = FLAGS.names or find_sets(FLAGS.data_dir)
    baselines = read_baselines(FLAGS.baselines or os.path.join(os.path.dirname(os.path.normpath(FLAGS.root)),
                                                               "baselines.jsonl"))
    if FLAGS.restore_from:
        restore(FLAGS.restore_from)
    if not FLAGS.report_only:
        with concurrent.futures.ThreadPoolExecutor(FLAGS.parallel) as pool:
            order = list(names) if FLAGS.order == "listed" else list(np.random.default_rng(0).permutation(names))
            futures = [pool.submit(train_one, name) for name in order]
            for future in concurrent.futures.as_completed(futures):
                name, seconds, code, log = future.result()
                status = "ok" if code == 0 else f"FAILED (exit {code}; see {log})"
                print(f"{name}: {status} in {seconds / 60:.1f} min", flush=True)
                if code == 0:
                    report(collect(names, baselines))
    report(collect(names, baselines))


if __name__ == "__main__":
    app.run(main)
