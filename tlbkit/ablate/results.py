"""A sweep's results: rows from the trial directories, mean ± std over seeds, table and plot."""

import csv
import io
import math
import os
import statistics

from tlbkit.ablate.sweep import Axis, make_trials
from tlbkit.run_dir import RunDir

ERROR_FILE = "error.txt"
FIRST_COLUMNS = ("val_accuracy", "test_accuracy", "val_cross_entropy", "test_cross_entropy", "params", "wall_time_s")


def collect(sweep, root, errors=None):
    """One row per trial from the trial directories.

    Args:
        sweep: `Sweep`.
        root: str. Sweep directory.
        errors: dict `{trial_id: message}` for trials that failed without `error.txt`.

    Returns:
        list of dicts: `trial_id`, one column per axis, `seed`, `status`
        (`ok`/`failed`/`pending`), `error`, then the metrics.
    """
    rows = []
    for trial in make_trials(sweep):
        trial_dir = os.path.join(root, "trials", trial.trial_id)
        row = {"trial_id": trial.trial_id, **dict(trial.bindings), "seed": trial.seed}
        metrics = RunDir(trial_dir).read_metrics()
        error = (errors or {}).get(trial.trial_id)
        if error is None and os.path.exists(os.path.join(trial_dir, ERROR_FILE)):
            with open(os.path.join(trial_dir, ERROR_FILE)) as f:
                error = f.readline().strip()
        if error is not None:
            row.update(status="failed", error=error)
        else:
            row.update(status="ok" if metrics is not None else "pending", error="")
            row.update(flat_metrics(metrics or {}))
        rows.append(row)
    return rows


def flat_metrics(metrics):
    """`metrics.json` as one row: nested dicts (the best checkpoint's) as `best_<key>` columns."""
    row = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            row.update({f"{key}_{k}": v for k, v in value.items() if not isinstance(v, (dict, list))})
        elif not isinstance(value, list):
            row[key] = value
    return row


def summarize(sweep, rows, metrics):
    """Mean and sample std over seeds of each metric for each setting, in grid order.

    Args:
        sweep: `Sweep`.
        rows: list of dicts from `collect`.
        metrics: list of str. Keys of `metrics.json` to average.

    Returns:
        list of dicts: `setting` (tuple of value texts), `n_ok`, `n`, `errors`
        (list of `(trial_id, message)`)
        and, per metric `m`, `m` (mean, None when no seed finished) and `m_std`
        (sample std, None below 2 finished seeds).
    """
    names = [a.name for a in sweep.axes]
    settings = {}
    for row in rows:
        settings.setdefault(tuple(row[n] for n in names), []).append(row)
    out = []
    for setting, group in settings.items():
        ok = [r for r in group if r["status"] == "ok"]
        entry = {"setting": setting, "n_ok": len(ok), "n": len(group), "errors": [(r["trial_id"], r["error"]) for r in group if r["error"]]}
        for m in metrics:
            values = [float(r[m]) for r in ok if isinstance(r.get(m), (int, float))]
            entry[m] = statistics.fmean(values) if values else None
            entry[m + "_std"] = statistics.stdev(values) if len(values) > 1 else None
        out.append(entry)
    return out


def reported_metrics(metric, rows):
    """`metric` first, then the usual columns present in `rows`."""
    keys = {k for r in rows for k in r}
    extra = [m for m in ("val_accuracy", "test_accuracy", "params", "wall_time_s") if m != metric and m in keys]
    return [metric] + extra


def lower_is_better(metric):
    return any(word in metric for word in ("loss", "error", "time", "params"))


def write_results(sweep, root, rows, command=None, metric=None):
    """Writes `results.csv`, `results.md` and `results.png` into `root`."""
    from tlbkit import run_dir

    metric = metric or sweep.metric
    fixed = ["trial_id"] + [a.name for a in sweep.axes] + ["seed", "status", "error"]
    metric_keys = sorted({k for r in rows for k in r} - set(fixed))
    metric_keys = [k for k in FIRST_COLUMNS if k in metric_keys] + [k for k in metric_keys if k not in FIRST_COLUMNS]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fixed + metric_keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    run_dir.atomic_write_text(os.path.join(root, "results.csv"), out.getvalue())
    metrics = reported_metrics(metric, rows)
    summary = summarize(sweep, rows, metrics)
    run_dir.atomic_write_text(os.path.join(root, "results.md"), markdown(sweep, summary, metrics, command))
    plot(sweep, summary, metric, os.path.join(root, "results.png"))


def _format(mean, std, metric):
    if mean is None:
        return "–"
    digits = 0 if metric == "params" else (1 if "time" in metric else 4)
    text = f"{mean:.{digits}f}"
    return text + (f" ± {std:.{digits}f}" if std is not None and metric not in ("params",) else "")


def markdown(sweep, summary, metrics, command=None):
    """The results table: mean ± std over seeds per setting, the best `metrics[0]` in bold."""
    metric = metrics[0]
    lower = lower_is_better(metric)
    means = [s[metric] for s in summary if s[metric] is not None]
    best = (min(means) if lower else max(means)) if means else None
    lines = [f"# {sweep.title}", ""]
    if command:
        lines += ["```", command, "```", ""]
    base = ", ".join(f"`{f}`" for f in sweep.gin_files) or "(none)"
    lines += [f"Gin files: {base}. Fixed bindings: " + (", ".join(f"`{p}`" for p in sweep.params) or "(none)") + ".",
              f"Seeds: {', '.join(map(str, sweep.seeds))}. Cells: mean ± sample std over the seeds that finished; "
              f"best `{metric}` ({'lower' if lower else 'higher'} is better) in bold.", ""]
    header = [f"`{a.name}`" for a in sweep.axes] + [f"`{m}`" for m in metrics] + ["seeds ok"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in summary:
        bold = best is not None and s[metric] == best
        cells = [f"`{v}`" for v in s["setting"]] + [_format(s[m], s[m + "_std"], m) for m in metrics]
        cells += [f"{s['n_ok']}/{s['n']}"]
        if bold:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    failures = [f"- `{trial_id}`: {error}" for s in summary for trial_id, error in s["errors"]]
    if failures:
        lines += ["", "Failed trials (see `trials/<id>/error.txt`):", ""] + failures
    return "\n".join(lines) + "\n"


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def plot(sweep, summary, metric, path):
    """`metric` against each axis: one subplot per axis, one line per setting of the other axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = sweep.axes or [Axis("(no axis)", ["()"])]
    fig, subplots = plt.subplots(1, len(axes), figsize=(4.5 * len(axes), 3.6), squeeze=False)
    for i, (ax, axis) in enumerate(zip(subplots[0], axes)):
        lines = {}
        for s in summary:
            others = tuple(v for j, v in enumerate(s["setting"]) if j != i)
            value = s["setting"][i] if sweep.axes else "()"
            lines.setdefault(others, {})[value] = (s[metric], s[metric + "_std"])
        positions = range(len(axis.values))
        for others, points in lines.items():
            ys = [points.get(v, (None, None))[0] for v in axis.values]
            errs = [points.get(v, (None, None))[1] or 0.0 for v in axis.values]
            ys = [math.nan if y is None else y for y in ys]
            if all(math.isnan(y) for y in ys):
                continue  # every trial of this line failed
            label = ", ".join(f"{a.name.split('.')[-1]}={v}" for a, v in zip([a for j, a in enumerate(sweep.axes) if j != i], others))
            style = "-" if all(_is_number(v) for v in axis.values) else ":"  # dotted: categorical axis
            ax.errorbar(positions, ys, yerr=errs, marker="o", linestyle=style, capsize=4, label=label or None)
        ax.set_xticks(list(positions), [v.removeprefix("@") for v in axis.values], rotation=15 if len(axis.values) > 3 else 0)
        ax.set_xlabel(axis.name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=7)
    fig.suptitle(sweep.title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
    os.replace(tmp, path)
