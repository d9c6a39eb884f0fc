"""Timing and output helpers shared by the benchmarks."""

import json
import time

import numpy as np


def time_calls(fn, repeats):
    """(seconds of the first call, mean seconds of `repeats` later calls) of `fn()`.

    Each result is converted to NumPy, so asynchronous backends (JAX on a GPU) are waited for.
    """
    t0 = time.perf_counter()
    np.asarray(fn())
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(repeats):
        np.asarray(fn())
    return first, (time.perf_counter() - t0) / repeats


def emit(obj, json_out=None):
    """Prints `obj` as one JSON line and, with `json_out`, appends the line to that file."""
    line = json.dumps(obj)
    print(line, flush=True)
    if json_out:
        with open(json_out, "a") as f:
            f.write(line + "\n")
