r"""tlbkit-train: trains the model that gin files describe and writes everything into --model_dir.

    tlbkit-train --gin_file=recall_cpu.gin --model_dir=runs/recall [--gin_param='train.epochs = 3']
    tlbkit-train --gin_file=cifar10_cpu.gin --data_dir=~/data --model_dir=runs/cifar10
    tlbkit-train --list

Rerunning the same command on the same --model_dir resumes after the last finished epoch; a finished run
is left as it is. One process at a time works in a --model_dir: a second one is refused while the first runs.
"""

import time

START = time.time()  # before the heavy imports: the run's wall time counts from here

import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

from absl import flags  # noqa: E402

from tlbkit.bin import cli  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    cli.define_model_dir_flag()
    cli.define_gin_flags()
    cli.define_data_flags()
    cli.define_device_flags()
    cli.define_flag("Run", flags.DEFINE_integer, "seed", None, "Random seed (overrides train.seed).")
    cli.define_flag("Run", flags.DEFINE_string, "init_from", None,
                "Fine-tune: start from the trained weights of a preset (name or folder) or run directory, with a new "
                "head when the data's classes differ (sets train.init_from; give the preset's config.gin first).")
    cli.define_flag("Run", flags.DEFINE_boolean, "overwrite", False,
                "Start afresh in a --model_dir that holds a run with another config.")
    cli.define_flag("Run", flags.DEFINE_boolean, "list", False,
                "Print the shipped configs and every registered plugin with its parameters, then exit.")


def main(argv):
    cli.no_arguments(argv)
    cli.load_plugins()
    if FLAGS.list:
        return print(cli.list_configs_and_plugins())
    if not FLAGS.model_dir or not (FLAGS.gin_file or FLAGS.gin_param):
        raise cli.UsageError("give --model_dir and at least one --gin_file (e.g. --gin_file=recall_cpu.gin).")
    cli.apply_data_dir()
    strategy, is_chief = cli.setup_devices(strategy=True)
    from tlbkit import run_dir, train as train_lib

    params = list(FLAGS.gin_param) + ([f"train.seed = {FLAGS.seed}"] if FLAGS.seed is not None else [])
    if FLAGS.init_from:  # a folder recorded by its absolute path, so a resume from elsewhere finds it
        source = os.path.abspath(FLAGS.init_from) if os.path.isdir(FLAGS.init_from) else FLAGS.init_from
        params.append(f"train.init_from = {source!r}")
    config = cli.config_header() + cli.parse_gin(FLAGS.gin_file, params)
    with run_dir.locked(FLAGS.model_dir) if is_chief else contextlib.nullcontext():
        state = run_dir.prepare(FLAGS.model_dir, config, FLAGS.overwrite) if is_chief else run_dir.RESUME
        if state == run_dir.FINISHED:  # a finished run stays byte-identical
            print(f"tlbkit: {FLAGS.model_dir} holds a finished run; nothing to do.")
            return print(json.dumps(run_dir.read_json(os.path.join(FLAGS.model_dir, run_dir.METRICS_FILE)),
                                    sort_keys=True))
        if is_chief:
            run_dir.append_text(os.path.join(FLAGS.model_dir, "command.txt"), cli.command_line() + "\n")
            if state == run_dir.NEW:
                run_dir.atomic_write_text(os.path.join(FLAGS.model_dir, run_dir.CONFIG_FILE), config)
        metrics = train_lib.train(model_dir=FLAGS.model_dir, strategy=strategy, is_chief=is_chief, start_time=START,
                                  on_first_step=lambda: is_chief and cli.write_operative_config(FLAGS.model_dir))
    print(json.dumps(metrics, sort_keys=True))


def run():
    cli.run(main, __doc__, define_flags)


if __name__ == "__main__":
    run()
