"""Validation accuracy against wall-clock time for several runs, on one plot, with a time budget.

    python bench/time_to_accuracy.py --run="tlbkit recipe=runs/cifar10_cpu" \
        --run="keras-io recipe=runs/cifar10_keras_io_budget" --budget_min=90 --target=0.8 --output=docs/cifar10_time.png

Each run directory's history.csv gives, per validated epoch, `time_s` (the run's wall time at the end of the
epoch: start-up, data loading, tracing and validation included) and `val_accuracy`; a finished run's
metrics.json adds its final model, scored at `wall_time_s` (a recipe that validates only at the end has
that point alone). Prints a markdown table: per
run, the best validation accuracy within the budget, when the target was first reached, the epochs done.
"""

import csv

from absl import app, flags

from tlbkit.run_dir import RunDir

flags.DEFINE_multi_string("run", [], "'label=run_dir', repeatable.")
flags.DEFINE_float("budget_min", 90.0, "Wall-clock budget in minutes (a vertical line; the table stops there).")
flags.DEFINE_float("target", None, "Accuracy target (a horizontal line; the table says when it was reached).")
flags.DEFINE_string("output", None, "PNG to write.")
flags.DEFINE_string("title", "Validation accuracy against wall-clock time", "Plot title.")
FLAGS = flags.FLAGS


def read_history(run_dir):
    run = RunDir(run_dir)
    with open(run.history_path) as f:
        rows = [r for r in csv.DictReader(f) if r.get("val_accuracy")]
    points = [(float(r["time_s"]) / 60, float(r["val_accuracy"]), int(r["epoch"])) for r in rows]
    final = run.read_metrics()
    if final is not None:
        if "val_accuracy" in final and "wall_time_s" in final:
            point = (final["wall_time_s"] / 60, final["val_accuracy"], final.get("epochs_completed", 0))
            if not points or point[0] > points[-1][0]:
                points.append(point)
    return points


def summary(label, points, budget, target):
    inside = [p for p in points if p[0] <= budget]
    best = max(inside, key=lambda p: p[1]) if inside else None
    reached = next((p for p in points if target is not None and p[1] >= target), None)
    return (f"| {label} | {100 * best[1]:.1f} % (epoch {best[2]}, {best[0]:.1f} min) | "
            f"{f'{reached[0]:.1f} min (epoch {reached[2]})' if reached else 'not reached'} | "
            f"{inside[-1][2] if inside else 0} |") if best else f"| {label} | – | – | 0 |"


def main(argv):
    del argv
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [(spec.split("=", 1)[0], read_history(spec.split("=", 1)[1])) for spec in FLAGS.run]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, points in runs:
        alone = len(points) == 1  # a run scored only at its end: a star, to be seen among the curves
        ax.plot([p[0] for p in points], [100 * p[1] for p in points], marker="*" if alone else "o",
                markersize=11 if alone else 3, label=label)
    ax.axvline(FLAGS.budget_min, color="grey", linestyle="--", linewidth=1, label=f"{FLAGS.budget_min:g} min budget")
    if FLAGS.target is not None:
        ax.axhline(100 * FLAGS.target, color="grey", linestyle=":", linewidth=1, label=f"{100 * FLAGS.target:g} % target")
    ax.set_xlabel("wall-clock minutes (2 CPU cores, from process start)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(FLAGS.title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    if FLAGS.output:
        fig.savefig(FLAGS.output, dpi=100)
    print(f"| run | best validation accuracy within {FLAGS.budget_min:g} min | first at "
          f"{'%g %%' % (100 * FLAGS.target) if FLAGS.target else '-'} | epochs within budget |")
    print("|---|---|---|---|")
    for label, points in runs:
        print(summary(label, points, FLAGS.budget_min, FLAGS.target))


if __name__ == "__main__":
    app.run(main)
