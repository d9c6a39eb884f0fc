r"""tlbkit-ablate: runs a grid of gin-configured training runs and tabulates the results.

    tlbkit-ablate --gin_file=recall_cpu.gin --sweep='cells.tlb.num_latents=[2, 4]' \
        --sweep='encoders.tlb.chunk_size=[4, 8]' --seeds=3 --root=runs/ablate [--parallel=2]
    tlbkit-ablate --sweep_file=gin/ablations/carry_state.sweep --root=runs/carry_state

Each trial is a `tlbkit-train` subprocess with its run directory in <root>/trials/<trial_id>/;
results go to <root>/results.csv, results.md and results.png. Rerunning the same command skips
finished trials, resumes interrupted ones and retries failed ones. The sweep-file format is
described in tlbkit/ablate/__init__.py.
"""

import sys

from absl import app, flags

from tlbkit.bin import common

flags.DEFINE_multi_string("sweep", [], "An axis: 'gin.binding=[v1, v2]' (gin literals). Repeat for a grid.")
flags.DEFINE_string("sweep_file", None, "A .sweep file (gin files, fixed params, axes, seeds).")
flags.DEFINE_string("seeds", None, "Seeds per setting: a count (3 = seeds 0,1,2) or a list '0,7'. Default 1.")
flags.DEFINE_string("root", None, "Sweep directory: trials/, results.csv, results.md, results.png.")
flags.DEFINE_integer("parallel", 1, "Trials to run at once.")
flags.DEFINE_string("metric", None, "metrics.json key to compare (default val_accuracy).")
flags.DEFINE_float("timeout", None, "Seconds before a trial is killed and recorded as failed.")
flags.DEFINE_boolean("dry_run", False, "Parse every trial's gin config and print the trials; train nothing.")
flags.DEFINE_boolean("overwrite_stale", False, "Delete and rerun trials finished with other flags.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise common.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.model_dir or FLAGS.seed is not None:
        raise common.UsageError("use --root (not --model_dir) and --seeds (not --seed) with tlbkit-ablate.")
    from tlbkit import ablate

    sweep = ablate.build_sweep(FLAGS.sweep_file, FLAGS.gin_file, FLAGS.gin_search_path, FLAGS.plugin,
                               FLAGS.gin_param, FLAGS.sweep, FLAGS.seeds, FLAGS.metric)
    if FLAGS.dry_run:
        errors = ablate.check_sweep(sweep)
        for trial in ablate.make_trials(sweep):
            print(f"{trial.trial_id}: {errors.get(trial.trial_id, 'ok')}")
        if errors:
            raise common.UsageError(f"{len(errors)} trial(s) do not parse (listed above).")
        return
    if not FLAGS.root:
        raise common.UsageError("--root is required (the sweep directory).")
    extra = [f"--{name}={FLAGS[name].value}" for name in ("precision", "strategy") if FLAGS[name].value != "auto"]
    command = " ".join(map(common.shell_quote, ["tlbkit-ablate"] + sys.argv[1:]))
    try:
        rows = ablate.run_sweep(sweep, FLAGS.root, FLAGS.parallel, FLAGS.timeout, extra, FLAGS.overwrite_stale, command)
    except KeyboardInterrupt:
        sys.exit(f"tlbkit-ablate: interrupted; the same command resumes the sweep in {FLAGS.root}.")
    failed = sum(r["status"] != "ok" for r in rows)
    print(f"{len(rows) - failed}/{len(rows)} trials finished; results in {FLAGS.root}/results.md")
    if failed:
        sys.exit(1)  # the results are written; the status tells scripts that some trials failed


def run():
    app.run(lambda argv: common.run_main(main, argv))


if __name__ == "__main__":
    run()
