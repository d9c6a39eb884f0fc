r"""tlbkit-predict: the label a trained model gives each input.

    tlbkit-predict --preset=cifar10_tlb cat.jpg dog.png
    tlbkit-predict --model_dir=runs/cifar10 cat.jpg [--output=preds.csv|preds.json]
    tlbkit-predict --model_dir=runs/imdb "A wonderful film." reviews/0001.txt
    cat reviews.txt | tlbkit-predict --model_dir=runs/imdb -          # one input per line
    tlbkit-predict --model_dir=runs/recall 3,9,12,9,8,...              # the synthetic task: ids

An input that is an existing file is read by the run's dataset plugin (images, text files, CSV series,
...); other arguments, and with `-` each line of standard input, are taken as the input itself, for
tasks whose plugin parses text (text, ids, series). Each task's input format: docs/usage.md.
"""

import csv
import sys

from absl import flags

from tlbkit.bin import cli

FLAGS = flags.FLAGS
COLUMNS = ("input", "label", "label_id", "probability")


def define_flags():
    cli.define_trained_run_flags()
    cli.define_flag("Output", flags.DEFINE_string, "output", None, "Also write the predictions to this .csv or .json file.")
    cli.define_data_flags()
    cli.define_gin_flags(files=False, params_help="Gin binding overriding the run's config.gin.")
    cli.define_device_flags(strategy=False)


def format_table(rows):
    cells = [COLUMNS] + [tuple(f"{r[c]:.4f}" if c == "probability" else str(r[c]) for c in COLUMNS) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells)


def write_output(rows, path):
    from tlbkit import run_dir

    if path.endswith(".json"):
        run_dir.atomic_write_json(path, rows)
    else:
        import io

        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        run_dir.atomic_write_text(path, text.getvalue())


def read_arguments(args, stdin=None):
    """The inputs: the arguments, with `-` replaced by the non-empty lines of standard input (UTF-8).

    Args:
        args: list of str. The command's arguments.
        stdin: binary file or None. Standard input (default: `sys.stdin.buffer`).

    Raises:
        cli.UsageError: a line of standard input that is not UTF-8, naming the line and the byte.
    """
    inputs = []
    for arg in args:
        inputs += read_stdin_lines(stdin if stdin is not None else sys.stdin.buffer) if arg == "-" else [arg]
    return inputs


def read_stdin_lines(stream):
    lines = []
    for number, raw in enumerate(stream, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise cli.UsageError(
                f"standard input, line {number}: byte {raw[e.start]:#04x} at position {e.start} is not UTF-8; "
                "convert the text to UTF-8 (e.g. iconv -f latin1 -t utf-8).") from None
        if line.strip():
            lines.append(line.rstrip("\r\n"))
    return lines


def main(argv):
    if FLAGS.output and not FLAGS.output.endswith((".csv", ".json")):
        raise cli.UsageError(f"--output must end in .csv or .json. Received: {FLAGS.output}")
    if FLAGS.output:
        cli.check_output_folder(FLAGS.output)
    cli.check_trained_run_flags()  # before the plugins load Keras and TensorFlow
    cli.load_plugins()
    if FLAGS.list_presets:
        return print(cli.list_presets())
    inputs = read_arguments(argv[1:])
    if not inputs:
        raise cli.UsageError("give at least one input (a file, the input itself, or - for standard input).")
    cli.apply_data_dir()
    cli.setup_devices()
    model_dir = cli.trained_run_dir()
    from tlbkit import evaluate

    rows = evaluate.predict(model_dir, inputs, checkpoint=cli.checkpoint_of(model_dir))
    print(format_table(rows))
    if FLAGS.output:
        write_output(rows, FLAGS.output)


def run():
    cli.run(main, __doc__, define_flags)


if __name__ == "__main__":
    run()
