"""What averaging the models of several runs would give: a measurement for deciding on ensembles.

    python bench/seed_ensemble.py --runs='runs/ucr_seeds/trials/UCR_NAME=ItalyPowerDemand,seed=*' [--split=test]

The runs must share one config up to `train.seed` (e.g. the seeds of one `tlbkit-ablate` setting). Each run's
model (`--checkpoint`) scores the split; then the mean of the logits of the first k runs (in seed order)
scores it, for every k, and the mean over every window of k consecutive runs (so that one lucky seed does
not make the number). Prints a markdown table and one JSON line.

    python bench/seed_ensemble.py --members --runs='runs/ucr/trials/UCR_NAME=GunPoint,seed=*'

With `--members`, the models are the members of runs that trained an ensemble (`models.ensemble`): each
member scores the split on its own, then averages of k members as above (windows run across runs too).
Without it an ensemble run is one model (its members' averaged logits). With one ensemble run, `--members`
accepts a single run.
"""

import glob
import json
import os
import re
import statistics

import numpy as np
from absl import app, flags

flags.DEFINE_multi_string("runs", [], "Run directories or glob patterns (repeatable).")
flags.DEFINE_string("split", "test", "Split to score: 'test' or 'validation'.")
flags.DEFINE_string("checkpoint", "last", "'last' or 'best'.")
flags.DEFINE_string("data_dir", None, "As for tlbkit-eval: where the runs' data files are found.")
flags.DEFINE_bool("members", False, "Score each member of ensemble runs as a model of its own.")
FLAGS = flags.FLAGS

SEED = re.compile(r"^train\.seed = .*$", re.M)


def run_dirs(patterns, fewest=2):
    from tlbkit.run_dir import RunDir

    found = sorted({d for p in patterns for d in glob.glob(p) if os.path.exists(RunDir(d).config_path)})
    if len(found) < fewest:
        raise SystemExit(f"seed_ensemble: need at least {fewest} run director{'y' if fewest == 1 else 'ies'}; "
                         f"{patterns} matched {found}.")
    texts = {d: RunDir(d).read_config() for d in found}
    if len({SEED.sub("", text) for text in texts.values()}) != 1:
        raise SystemExit("seed_ensemble: the runs' config.gin differ in more than train.seed; give the seeds of "
                         "one setting.")

    def seed(d):
        match = SEED.search(texts[d])
        return match.group(0) if match else ""

    return sorted(found, key=lambda d: (len(seed(d)), seed(d)))


def main(argv):
    del argv
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # one traced function per model: expected here
    from tlbkit import data, evaluate, pipeline, plugins
    from tlbkit.bin import cli

    plugins.load_all(())
    if FLAGS.data_dir:
        data.set_data_dir(FLAGS.data_dir)
    dirs = run_dirs(FLAGS.runs, fewest=1 if FLAGS.members else 2)
    cli.parse_run_config(dirs[0])  # the data spec: the same for every run (checked above)
    spec = evaluate.run_spec()
    batches = list(pipeline.batched(spec, FLAGS.split, 256, training=False, cache=False))
    labels = np.concatenate([np.asarray(y).reshape(-1) for _, y in batches])
    logits, names = [], []
    for d in dirs:
        model = evaluate.load_run_model(d, FLAGS.checkpoint)
        models = list(getattr(model, "members", [])) if FLAGS.members else [model]
        if not models:
            raise SystemExit(f"seed_ensemble: --members, but {d} trained one model, not an ensemble.")
        for i, m in enumerate(models):
            fn = evaluate.logits_function(m)
            logits.append(np.concatenate([np.asarray(fn(x), dtype=np.float64) for x, _ in batches]))
            names.append(f"{d}#member{i}" if FLAGS.members else d)
    if len(logits) < 2:
        raise SystemExit("seed_ensemble: need at least 2 models to average.")
    single = [float(np.mean(np.argmax(z, -1) == labels)) for z in logits]

    def accuracy(members):
        return float(np.mean(np.argmax(np.mean([logits[i] for i in members], axis=0), -1) == labels))

    n = len(logits)
    print(f"{n} {'members' if FLAGS.members else 'runs'}, {len(labels)} {FLAGS.split} examples; single models: "
          f"{statistics.mean(single):.4f} ± {statistics.stdev(single):.4f} ({', '.join(f'{a:.4f}' for a in single)})")
    print("| members k | first k runs | over the n windows of k consecutive runs (cyclic): mean ± std (min–max) |")
    print("|---|---|---|")
    rows = []
    for k in range(1, n + 1):
        windows = [accuracy([(s + i) % n for i in range(k)]) for s in range(n)]
        rows.append({"k": k, "first": accuracy(range(k)), "windows_mean": statistics.mean(windows),
                     "windows_std": statistics.stdev(windows) if k < n else 0.0,
                     "windows_min": min(windows), "windows_max": max(windows)})
        print(f"| {k} | {rows[-1]['first']:.4f} | {rows[-1]['windows_mean']:.4f} ± {rows[-1]['windows_std']:.4f} "
              f"({min(windows):.4f}–{max(windows):.4f}) |")
    print(json.dumps({"runs": dirs, "models": names, "split": FLAGS.split, "single": single, "ensembles": rows}))


if __name__ == "__main__":
    app.run(main)
