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
                "Print the shipped configs, then train and every registered plugin with each parameter's default "
                "and meaning, then exit.")


def main(argv):
    cli.no_arguments(argv)
    cli.load_plugins()
    if FLAGS.list:
        return print(cli.list_configs_and_plugins())
    if not FLAGS.model_dir or not (FLAGS.gin_file or FLAGS.gin_param):
        raise cli.UsageError("give --model_dir and at least one --gin_file (e.g. --gin_file=recall_cpu.gin).")
    cli.apply_data_dir()
    strategy, is_chief = cli.setup_devices(strategy=True)
    params = list(FLAGS.gin_param) + ([f"train.seed = {FLAGS.seed}"] if FLAGS.seed is not None else [])
    if FLAGS.init_from:  # a folder recorded by its absolute path, so a resume from elsewhere finds it
        source = os.path.abspath(FLAGS.init_from) if os.path.isdir(FLAGS.init_from) else FLAGS.init_from
        params.append(f"train.init_from = {source!r}")
    metrics = train_from_config(FLAGS.model_dir, FLAGS.gin_file, params, overwrite=FLAGS.overwrite,
                                strategy=strategy, is_chief=is_chief, start_time=START, header=cli.config_header())
    print(json.dumps(metrics, sort_keys=True))


def train_from_config(model_dir, gin_files, gin_params=(), overwrite=False, strategy=None, is_chief=True,
                      start_time=None, header=""):
    """What `tlbkit-train` does once its flags are read: parses the configs, prepares and locks the run folder
    (config.gin, command.txt; a finished run is left as it is, an interrupted one resumes), trains, and
    returns the final metrics. The Python estimators (`tlbkit_tasks.timeseries.TLBClassifier`) train
    through it too.

    Args:
        model_dir: str. The run folder.
        gin_files: list of str. Configs, by name or path.
        gin_params: list of str. Bindings applied after the files.
        overwrite: bool. Start afresh in a folder holding a run of another config.
        strategy: tf.distribute strategy or None.
        is_chief: bool. Whether this worker writes the run folder.
        start_time: float or None. When the run started (`time.time()`).
        header: str. Lines put before the config in config.gin (`import` lines of --plugin modules).

    The gin config is cleared when it returns (or fails), so that nothing bound here reaches a later call
    in the same process.

    Returns:
        dict of the final metrics (`metrics.json`).
    """
    import gin

    try:
        return _train_parsed(model_dir, gin_files, gin_params, overwrite, strategy, is_chief, start_time, header)
    finally:
        gin.clear_config()  # a Python caller's later `tlbkit.train.train(...)` must not inherit these bindings


def _train_parsed(model_dir, gin_files, gin_params, overwrite, strategy, is_chief, start_time, header):
    from tlbkit import run_dir, train as train_lib

    config = header + cli.parse_gin(list(gin_files), list(gin_params))
    run = run_dir.RunDir(model_dir)
    with run_dir.locked(model_dir) if is_chief else contextlib.nullcontext():
        state = run_dir.prepare(model_dir, config, overwrite) if is_chief else run_dir.RESUME
        if state == run_dir.FINISHED:  # a finished run stays byte-identical
            print(f"tlbkit: {model_dir} holds a finished run; nothing to do.")
            return run.read_metrics()
        if is_chief:
            run.append_command(cli.command_line())
            if state == run_dir.NEW:
                run.write_config(config)
        return train_lib.train(model_dir=model_dir, strategy=strategy, is_chief=is_chief, start_time=start_time,
                               on_first_step=lambda: is_chief and cli.write_operative_config(model_dir))


def run():
    cli.run(main, __doc__, define_flags)


if __name__ == "__main__":
    run()
