"""Gin-configured ablations: a grid of `tlbkit-train` runs, aggregated into a table and a plot.

A sweep is a base gin config (files and bindings) plus axes, each a gin binding
with a list of values; the trials are the product of the axes times the seeds.
Each trial runs `python -m tlbkit.bin.train` in its own subprocess (a crash or
a hang of one trial cannot stop the sweep) with its run directory in
`<root>/trials/<trial_id>/`, and the sweep writes:

- `<root>/results.csv`: one row per trial (bindings, seed, status, error,
  metrics from `metrics.json`);
- `<root>/results.md`: mean ± std over seeds per setting, best one in bold;
- `<root>/results.png`: the metric against each axis (mean, std error bars).

Rerunning the same sweep skips finished trials (`metrics.json`), resumes
interrupted ones (`tlbkit-train` resumes by itself) and retries failed ones.

A sweep file (`gin/ablations/*.sweep`) holds one statement per line; `#` starts
a comment and a list may continue over lines while a bracket is open:

    title = Carry the slow state across chunks?   # heading of results.md
    gin_file = recall_cpu.gin                     # repeatable, parsed in order
    gin_search_path = ../my_configs               # repeatable, relative to this file
    plugin = my_package.plugins                   # repeatable (--plugin)
    param train.epochs = 2                        # repeatable: a fixed gin binding
    sweep encoders.tlb.carry_state = [True, False]  # repeatable: one axis each
    seeds = 2                                     # a count (seeds 0..N-1) or a list [0, 7]
    metric = val_accuracy                         # key of metrics.json to compare

Sweep values are gin literals: numbers, strings (`'state'`), booleans, `None`,
macros (`%DIM`) and references (`@encoders.lstm()`).
"""

from tlbkit.ablate.results import collect, markdown, summarize, write_results
from tlbkit.ablate.runner import run_sweep
from tlbkit.ablate.sweep import (Axis, Sweep, SweepError, Trial, build_sweep, check_axis_names, check_sweep,
                                 make_trials, read_sweep_file)

# The public API: build a sweep (from a file and/or axes), check it, run it, tabulate it.
__all__ = [
    "Axis", "Sweep", "SweepError", "Trial", "build_sweep", "check_axis_names", "check_sweep", "collect", "make_trials", "markdown",
    "read_sweep_file", "run_sweep", "summarize", "write_results",
]
