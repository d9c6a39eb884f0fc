r"""tlbkit-export: writes a run's model as a preset folder (model, config, classes, card; no optimizer state).

    tlbkit-export --model_dir=runs/cifar10 --output=my_presets/cifar10_tlb [--checkpoint=best]
    tlbkit-predict --preset=my_presets/cifar10_tlb cat.jpg

The folder works wherever a trained run does (--model_dir, --preset=FOLDER,
SequenceClassifier.from_preset(FOLDER)); a package can ship such folders by name (docs/usage.md).
"""

from absl import flags

from tlbkit.bin import cli

FLAGS = flags.FLAGS


def define_flags():
    cli.define_model_dir_flag("The run directory to export (written by tlbkit-train).")
    cli.define_flag("Run", flags.DEFINE_enum, "checkpoint", "last", ["last", "best"], "Which model of the run.")
    cli.define_flag("Output", flags.DEFINE_string, "output", None, "The preset folder to write (new or empty).")
    cli.define_flag("Output", flags.DEFINE_string, "notes", None, "Extra text for the model card, e.g. the machine.")
    cli.define_gin_flags(files=False, params_help="Gin binding overriding the run's config.gin.")


def main(argv):
    cli.no_arguments(argv)
    if not FLAGS.model_dir or not FLAGS.output:
        raise cli.UsageError("give --model_dir (a run directory) and --output (the preset folder to write).")
    cli.run_config(FLAGS.model_dir)  # before the plugins load Keras and TensorFlow
    cli.load_plugins()
    cli.parse_run_config(FLAGS.model_dir, FLAGS.gin_param)
    from tlbkit import presets

    folder = presets.export(FLAGS.model_dir, FLAGS.output, FLAGS.checkpoint, FLAGS.notes)
    print(f"tlbkit: exported {FLAGS.model_dir} ({FLAGS.checkpoint}) to {folder}")
    print(presets.card_summary(folder))


def run():
    cli.run(main, __doc__, define_flags)


if __name__ == "__main__":
    run()
