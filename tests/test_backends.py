"""Reruns the core engine tests under the JAX backend in a subprocess (Keras picks its backend at import)."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed (pip install -e .[dev])")
def test_engine_under_jax():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    here = os.path.dirname(__file__)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", os.path.join(here, "test_engine.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    # Every engine test ran under JAX (test_backend_is_the_one_requested among them), none skipped.
    collected = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider",
                                os.path.join(here, "test_engine.py")], capture_output=True, text=True, timeout=600)
    expected = int(re.search(r"(\d+) tests? collected", collected.stdout).group(1))
    assert f"{expected} passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-1000:]
