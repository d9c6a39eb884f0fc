"""Reruns the core engine tests under the JAX backend in a subprocess (Keras picks its backend at import).

Under JAX the tests run op by op on the CPU, several times slower than under TensorFlow; the ones that
test TensorFlow-only loop options, repeat a check per dtype or per block variant, or check only Python-side
structure (argument errors, the seed layout's parameter count) run under TensorFlow only (`SKIP_UNDER_JAX`). The encoder's hand-written gradient is still checked against JAX's autodiff."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

SKIP_UNDER_JAX = ("not mixed_bfloat16 and not serial_loop and not unrolled_loop and not block_gradient "
                  "and not seed_layout_structure and not bad_")


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
    # Every selected engine test ran under JAX and passed (test_backend_is_the_one_requested among them):
    # none skipped or errored, and the selection is not a handful.
    summary = proc.stdout.strip().splitlines()[-1]
    match = re.search(r"(\d+) passed, (\d+) deselected", summary)
    assert match and not re.search(r"skipped|error|failed", summary), summary
    assert int(match.group(1)) >= 12, summary
