r"""tlbkit-ablate: runs a grid of gin-configured training runs and tabulates the results.

    tlbkit-ablate --gin_file=recall_cpu.gin --sweep='cells.tlb.num_latents=[2, 4]' \
        --sweep='encoders.tlb.chunk_size=[4, 8]' --seeds=3 --root=runs/ablate [--parallel=2]
    tlbkit-ablate --sweep_file=ablations/carry_state.sweep --root=runs/carry_state

Each trial is a `tlbkit-train` subprocess with its run directory in <root>/trials/<trial_id>/;
results go to <root>/results.csv, results.md and results.png. Rerunning the same command skips
finished trials, resumes interrupted ones and retries failed ones. The sweep-file format is
described in tlbkit/ablate/__init__.py.
"""

from absl import flags

from tlbkit.bin import cli

FLAGS = flags.FLAGS


def define_flags():
    cli.define_gin_flags()
    cli.define_data_flags()
    cli.define_device_flags()
    sweep = "Sweep"
    cli.define_flag(sweep, flags.DEFINE_multi_string, "sweep", [],
                    "An axis: 'gin.binding=[v1, v2]' (gin literals). Repeat for a grid.")
    cli.define_flag(sweep, flags.DEFINE_string, "sweep_file", None,
                    "A .sweep file (gin files, fixed params, axes, seeds), by path or by name (ablations/r.sweep).")
    cli.define_flag(sweep, flags.DEFINE_string, "seeds", None,
                    "Seeds per setting: a count (3 = seeds 0,1,2) or a list '0,7'. Default 1.")
    cli.define_flag(sweep, flags.DEFINE_string, "root", None, "Sweep directory: trials/, results.csv, .md, .png.")
    cli.define_flag(sweep, flags.DEFINE_integer, "parallel", 1, "Trials to run at once.")
    cli.define_flag(sweep, flags.DEFINE_string, "metric", None, "metrics.json key to compare (default val_accuracy).")
    cli.define_flag(sweep, flags.DEFINE_float, "timeout", None, "Seconds before a trial is killed and recorded as failed.")
    cli.define_flag(sweep, flags.DEFINE_boolean, "dry_run", False,
                    "Parse every trial's gin config and print the trials; train nothing.")
    cli.define_flag(sweep, flags.DEFINE_boolean, "overwrite_stale", False,
                    "Delete and rerun trials finished with other flags.")


def main(argv):
    cli.no_arguments(argv)
    cli.apply_data_dir()  # trials inherit it ($TLBKIT_DATA_DIR)
    from tlbkit import ablate

    sweep = ablate.build_sweep(FLAGS.sweep_file, FLAGS.gin_file, FLAGS.gin_search_path, FLAGS.plugin,
                               FLAGS.gin_param, FLAGS.sweep, FLAGS.seeds, FLAGS.metric)
    if FLAGS.dry_run:
        errors = ablate.check_sweep(sweep)
        for trial in ablate.make_trials(sweep):
            print(f"{trial.trial_id}: {errors.get(trial.trial_id, 'ok')}")
        if errors:
            raise cli.UsageError(f"{len(errors)} trial(s) do not parse (listed above).")
        return
    if not FLAGS.root:
        raise cli.UsageError("--root is required (the sweep directory).")
    ablate.check_axis_names(sweep)  # a misspelt axis fails here, not in every launched trial
    extra = [f"--{name}={FLAGS[name].value}" for name in ("precision", "strategy") if FLAGS[name].value != "auto"]
    extra += [f"--cpu_devices={FLAGS.cpu_devices}"] if FLAGS.cpu_devices else []
    try:
        rows = ablate.run_sweep(sweep, FLAGS.root, FLAGS.parallel, FLAGS.timeout, extra, FLAGS.overwrite_stale,
                                cli.command_line())
    except KeyboardInterrupt:
        raise SystemExit(f"tlbkit-ablate: interrupted; the same command resumes the sweep in {FLAGS.root}.")
    failed = sum(r["status"] != "ok" for r in rows)
    print(f"{len(rows) - failed}/{len(rows)} trials finished; results in {FLAGS.root}/results.md")
    if failed:
        raise SystemExit(1)  # the results are written; the status tells scripts that some trials failed


def run():
    cli.run(main, __doc__, define_flags)


if __name__ == "__main__":
    run()
