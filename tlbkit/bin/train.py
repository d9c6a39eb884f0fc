r"""tlbkit-train: trains the model that gin files describe and writes everything into --model_dir.

    tlbkit-train --gin_file=recall_cpu.gin --model_dir=runs/recall [--gin_param='train.epochs = 3']

Re-running the same command on the same --model_dir resumes after the last finished epoch.
"""

import json
import os
import shutil
import sys

from absl import app, flags

from tlbkit.bin import common

flags.DEFINE_boolean("overwrite", False, "Start afresh in a --model_dir that holds a run with another config.")
FLAGS = flags.FLAGS


def prepare_model_dir(model_dir, config_text):
    """Creates/validates the run directory; returns True when it resumes an earlier run."""
    try:
        os.makedirs(model_dir, exist_ok=True)
        probe = os.path.join(model_dir, ".write-test")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        raise common.UsageError(f"model_dir {model_dir!r} is not writable: {e.strerror}. Choose another --model_dir.")
    saved = os.path.join(model_dir, "config.gin")
    if os.path.exists(saved):
        with open(saved) as f:
            same = f.read() == config_text
        if not same and not FLAGS.overwrite:
            raise common.UsageError(
                f"{model_dir} holds a run with a different gin config (compare {saved}). "
                "Pass --overwrite to start afresh there, or choose a new --model_dir."
            )
        if not same:
            for entry in os.listdir(model_dir):
                path = os.path.join(model_dir, entry)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
            return False
        return True
    return False


def main(argv):
    if len(argv) > 1:
        raise common.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    common.load_plugins()
    if FLAGS.list:
        print(common.list_plugins())
        return
    if not FLAGS.model_dir:
        raise common.UsageError("--model_dir is required (the run directory).")
    if not FLAGS.gin_file and not FLAGS.gin_param:
        raise common.UsageError("give at least one --gin_file (e.g. --gin_file=recall_cpu.gin).")
    common.setup_devices()
    import gin

    from tlbkit import run_dir as rd
    from tlbkit import train as train_lib

    strategy, is_chief = common.make_strategy(FLAGS.strategy)
    params = list(FLAGS.gin_param) + ([f"train.seed = {FLAGS.seed}"] if FLAGS.seed is not None else [])
    config_text = common.config_header() + common.parse_gin(FLAGS.gin_file, params)
    if is_chief:  # other workers of a multi-worker run only read the run directory
        resumed = prepare_model_dir(FLAGS.model_dir, config_text)
        command = " ".join(map(common.shell_quote, sys.argv)) + "\n"
        rd.atomic_write_text(os.path.join(FLAGS.model_dir, "command.txt"), command)
        if not resumed:
            rd.atomic_write_text(os.path.join(FLAGS.model_dir, "config.gin"), config_text)

    def write_operative_config():
        if is_chief:
            text = gin.operative_config_str()
            rd.atomic_write_text(os.path.join(FLAGS.model_dir, "operative_config.gin"), text)
            common.write_config_summary(FLAGS.model_dir, text)

    metrics = train_lib.train(
        model_dir=FLAGS.model_dir, strategy=strategy, is_chief=is_chief, on_first_step=write_operative_config
    )
    print(json.dumps(metrics, sort_keys=True))


def run():
    app.run(lambda argv: common.run_main(main, argv))


if __name__ == "__main__":
    run()
