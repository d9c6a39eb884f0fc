"""Loading a finished run's own config (for tlbkit-eval / tlbkit-predict)."""

import os

from tlbkit.bin import common


def parse_run_config(model_dir, extra_params=()):
    """Parses `model_dir/config.gin` (the run's full parsed config) plus overrides."""
    if not model_dir:
        raise common.UsageError("--model_dir is required (a directory written by tlbkit-train).")
    path = os.path.join(model_dir, "config.gin")
    if not os.path.exists(path):
        raise common.UsageError(f"{path} not found: is {model_dir!r} a tlbkit-train run directory?")
    return common.parse_gin([path], list(extra_params))
