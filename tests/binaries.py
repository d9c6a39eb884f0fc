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


def run_binary(module, *args, env=None, timeout=600, check=False, stdin=None):
    """Runs `python -m tlbkit.bin.<module> args...` (with `stdin` as its standard input); returns CompletedProcess."""
    full_env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                    TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", f"tlbkit.bin.{module}", *args],
        capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT, input=stdin,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def tiny_params(*extra):
    out = []
    for p in TINY + list(extra):
        out.append(f"--gin_param={p}")
    return out


def assert_eval_reproduces_metrics(model_dir, env=None):
    """Reloads the run's last model through tlbkit-eval: the validation numbers of metrics.json come back
    (to 1e-5), so every weight was restored and evaluation has one path."""
    import json

    proc = run_binary("evaluate", f"--model_dir={model_dir}", "--split=validation", "--checkpoint=last", env=env,
                      check=True)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    recorded = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert got["examples"] == recorded["val_examples"]
    assert abs(got["accuracy"] - recorded["val_accuracy"]) <= 1e-5, (got, recorded)
    assert abs(got["cross_entropy"] - recorded["val_cross_entropy"]) <= 1e-5 * max(1.0, recorded["val_cross_entropy"])
    return got
