"""Reruns the core engine tests under the JAX backend in a subprocess (Keras picks its backend at import).

Under JAX the tests run op by op on the CPU, several times slower than under TensorFlow; the ones that
test TensorFlow-only loop options or repeat a check per dtype or per block variant run under TensorFlow
only (`SKIP_UNDER_JAX`). The encoder's hand-written gradient is still checked against JAX's autodiff."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

SKIP_UNDER_JAX = "not mixed_bfloat16 and not serial_loop and not unrolled_loop and not block_gradient"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed (pip install -e .[dev])")
def test_engine_under_jax():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    here = os.path.dirname(__file__)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", SKIP_UNDER_JAX,
         os.path.join(here, "test_engine.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    # Every selected engine test ran under JAX (test_backend_is_the_one_requested among them), none skipped.
    collected = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider",
                                "-k", SKIP_UNDER_JAX, os.path.join(here, "test_engine.py")],
                               capture_output=True, text=True, timeout=600)
    expected = int(re.search(r"(\d+)(?:/\d+)? tests? collected", collected.stdout).group(1))
    assert expected >= 15, collected.stdout[-1000:]
    assert f"{expected} passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-1000:]
