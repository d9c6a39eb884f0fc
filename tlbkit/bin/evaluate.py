r"""tlbkit-eval: scores a trained model on one of its run's splits, or on other labelled data.

    tlbkit-eval --model_dir=runs/recall [--split=test] [--checkpoint=best]
    tlbkit-eval --model_dir=runs/cifar10 --data=~/cifar10_test           # folder of <class>/*.png
    tlbkit-eval --model_dir=runs/imdb --data=aclImdb_v1.zip --split=test   # aclImdb: its test/ folder
    tlbkit-eval --model_dir=runs/gunpoint --data=GunPoint_TEST.ts
    tlbkit-eval --preset=cifar10_tlb --data=tfds:cifar10:test
    tlbkit-eval --preset=cifar10_tlb --data=tfds:cifar10:test --test_time_views=none   # one view, not the flips

--data is read by the run's dataset plugin with the run's class names (docs/usage.md, "Your own data");
the training data need not be present. Prints one JSON line (accuracy, plain cross-entropy, examples,
which checkpoint) and writes it to <model_dir>/eval_<split>_<checkpoint>.json, with --data to
<model_dir>/eval_<data name>_<split>_<checkpoint>.json (or --output).
"""

import json

from absl import flags

from tlbkit.bin import cli

FLAGS = flags.FLAGS


def define_flags():
    cli.define_trained_run_flags()
    cli.define_flag("Data", flags.DEFINE_enum, "split", "validation", ["train", "validation", "test"],
                    "The run's split to score; with --data, the split folder to look for inside it.")
    cli.define_flag("Data", flags.DEFINE_string, "data", None,
                    "Other labelled data to score (folder, zip, .ts file, tfds:name:split) instead of a run split.")
    cli.define_flag("Data", flags.DEFINE_integer, "batch_size", 256, "Evaluation batch size.")
    cli.define_flag("Model", flags.DEFINE_string, "test_time_views", None,
                    "Score the model with other test-time views than it was saved with: 'none' (one view) or a "
                    "registered name ('flip': each image and its mirror). Default: as saved.")
    cli.define_flag("Output", flags.DEFINE_string, "output", None,
                    "JSON file for the result. Default: <model_dir>/eval_<split>_<checkpoint>.json (with --data: "
                    "eval_<data name>_<split>_<checkpoint>.json); "
                    "with --preset, none.")
    cli.define_data_flags()
    cli.define_gin_flags(files=False, params_help="Gin binding overriding the run's config.gin.")
    cli.define_device_flags(strategy=False)


def main(argv):
    cli.no_arguments(argv)
    if FLAGS.output:
        cli.check_output_folder(FLAGS.output)
    cli.check_trained_run_flags()  # before the plugins load Keras and TensorFlow
    cli.load_plugins()
    if FLAGS.list_presets:
        return print(cli.list_presets())
    cli.apply_data_dir()
    cli.setup_devices()
    model_dir = cli.trained_run_dir()
    from tlbkit import evaluate

    output = FLAGS.output or (None if FLAGS.preset else "auto")
    metrics = evaluate.evaluate(model_dir, FLAGS.split, FLAGS.data, cli.checkpoint_of(model_dir), FLAGS.batch_size, output,
                                FLAGS.test_time_views)
    print(json.dumps(metrics, sort_keys=True))


def run():
    cli.run(main, __doc__, define_flags)


if __name__ == "__main__":
    run()
