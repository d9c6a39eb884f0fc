"""Helpers to run the binaries in subprocesses (as a user would)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = [
    "LENGTH = 16",
    "CHUNK_SIZE = 4",
    "DIM = 16",
    "NUM_CLASSES = 4",
    "VOCAB = 12",
    "datasets.long_range_recall.num_train = 256",
    "datasets.long_range_recall.num_validation = 64",
    "datasets.long_range_recall.num_test = 64",
    "train.batch_size = 32",
]


def run_binary(module, *args, env=None, timeout=600, check=False):
    """Runs `python -m tlbkit.bin.<module> args...`; returns CompletedProcess."""
    full_env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                    TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", f"tlbkit.bin.{module}", *args],
        capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def tiny_params(*extra):
    out = []
    for p in TINY + list(extra):
        out.append(f"--gin_param={p}")
    return out
