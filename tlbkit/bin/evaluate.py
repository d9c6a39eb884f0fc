r"""tlbkit-eval: evaluates a finished run's model with the run's own config.

    tlbkit-eval --model_dir=runs/recall [--split=test] [--checkpoint=last]

Prints one JSON line of metrics and writes <model_dir>/eval_<split>.json.
"""

import json

from absl import app, flags

from tlbkit.bin import common, run_config

flags.DEFINE_enum("split", "validation", ["train", "validation", "test"], "Split to evaluate.")
flags.DEFINE_enum("checkpoint", "best", ["best", "last"], "Which checkpoint of the run.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise common.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    common.load_plugins()
    common.setup_devices()
    run_config.parse_run_config(FLAGS.model_dir, FLAGS.gin_param)
    from tlbkit import evaluate as evaluate_lib

    metrics = evaluate_lib.evaluate(FLAGS.model_dir, FLAGS.split, checkpoint=FLAGS.checkpoint)
    print(json.dumps(metrics, sort_keys=True))


def run():
    app.run(lambda argv: common.run_main(main, argv))


if __name__ == "__main__":
    run()
