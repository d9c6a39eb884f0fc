r"""tlbkit-predict: predictions of a finished run's model for user files.

    tlbkit-predict --model_dir=runs/cifar10 cat.jpg dog.png [--output=preds.csv]

Reads the files with the run's dataset plugin (images, text files, CSV series...),
prints a table and optionally writes it as CSV or JSON (by the --output extension).
"""

import csv
import json

from absl import app, flags

from tlbkit.bin import common, run_config

flags.DEFINE_string("output", None, "Also write the predictions to this .csv or .json file.")
flags.DEFINE_enum("checkpoint", "best", ["best", "last"], "Which checkpoint of the run.")
FLAGS = flags.FLAGS
COLUMNS = ("input", "label", "label_id", "probability")


def format_table(rows):
    cells = [COLUMNS] + [tuple(f"{r[c]:.4f}" if c == "probability" else str(r[c]) for c in COLUMNS) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells)


def write_output(rows, path):
    if path.endswith(".json"):
        with open(path, "w") as f:
            json.dump(rows, f, indent=2)
    elif path.endswith(".csv"):
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise common.UsageError(f"--output must end in .csv or .json. Received: {path}")


def main(argv):
    paths = argv[1:]
    if not paths:
        raise common.UsageError("give at least one input file to predict on.")
    if FLAGS.output and not FLAGS.output.endswith((".csv", ".json")):
        raise common.UsageError(f"--output must end in .csv or .json. Received: {FLAGS.output}")
    common.load_plugins()
    common.setup_devices()
    run_config.parse_run_config(FLAGS.model_dir, FLAGS.gin_param)
    from tlbkit import evaluate as evaluate_lib

    rows = evaluate_lib.predict(FLAGS.model_dir, list(paths), checkpoint=FLAGS.checkpoint)
    print(format_table(rows))
    if FLAGS.output:
        write_output(rows, FLAGS.output)


def run():
    app.run(lambda argv: common.run_main(main, argv))


if __name__ == "__main__":
    run()
