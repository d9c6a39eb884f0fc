r"""tlbkit-viz: the slow stream's attention over images, as PNGs.

    tlbkit-viz --model_dir=runs/cifar10_keras_io_cpu cat.jpg dog.png [--output_dir=DIR]

For each image: the image, and the image overlaid with the TLB slow stream's attention (per chunk: max
over latents, mean over heads; each token's weight placed at its patch and upsampled to the image, as the
keras-io example does), titled with the predicted label. Writes <output_dir>/<image name>_attention.png
(<folder>_<image name> when names repeat; default output_dir: <model_dir>/viz).
"""

from absl import flags

from tlbkit import run_dir
from tlbkit.bin import cli

FLAGS = flags.FLAGS


def define_flags():
    cli.define_trained_run_flags()
    cli.define_flag("Output", flags.DEFINE_string, "output_dir", None,
                    "Where to write the PNGs. Default: <model_dir>/viz (with --preset: ./viz).")
    cli.define_gin_flags(files=False, params_help="Gin binding overriding the run's config.gin.")
    cli.define_device_flags(strategy=False)


def main(argv):
    paths = argv[1:]
    cli.check_trained_run_flags()  # before the plugins load Keras and TensorFlow
    cli.load_plugins()
    if FLAGS.list_presets:
        return print(cli.list_presets())
    if not paths:
        raise cli.UsageError("give at least one image file.")
    cli.setup_devices()
    model_dir = cli.trained_run_dir()
    output_dir = FLAGS.output_dir or (run_dir.VIZ_DIR if FLAGS.preset else run_dir.RunDir(model_dir).viz_dir)
    # The maps and figures are image code: they stay in the vision plugin (the built-in plugin package,
    # loaded above), imported only when a command runs, so the engine imports no image code.
    from tlbkit_tasks.vision import attention_maps

    for path in attention_maps.visualize(model_dir, paths, output_dir, cli.checkpoint_of(model_dir)):
        print(path)


def run():
    cli.run(main, __doc__, define_flags)


if __name__ == "__main__":
    run()
