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


NO_TENSORFLOW_SCRIPT = r"""
import sys


class NoTensorFlow:  # a machine with JAX and no TensorFlow (the lent GPU machines)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_datasets"):
            raise ImportError(f"no module named {name!r} (blocked by the test)")


sys.meta_path.insert(0, NoTensorFlow())
import gin
import numpy as np

from tlbkit import gin_utils, plugins

plugins.load_all()
names = [n for n in gin_utils.shipped_configs() if n.endswith(".gin") and "/" not in n and n != "base.gin"]
for name in names:
    gin.clear_config()
    gin_utils.parse([name], ["UCR_NAME = 'GunPoint'"])  # ucr.gin's one required binding
gin.clear_config()
gin_utils.parse(["cifar10.gin"], ["DIM = 16", "tokenizers.conv_stem.filters = [8]"])
net = gin_utils.evaluate_binding("train.model")(num_classes=10)
out = net(np.zeros((2, 32, 32, 3), "float32"))
assert tuple(out.shape) == (2, 10), out.shape

import keras

from tlbkit.train import compile_for_training
from tlbkit_tasks.vision import RandomShift


def augmented(augmentation):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(augmentation(inputs))
    return keras.Model(inputs, keras.layers.Dense(10)(x))


try:
    compile_for_training(augmented(keras.layers.RandomTranslation(0.1, 0.1)), 1e-3)
    raise AssertionError("a model that JAX cannot jit compiled")
except ValueError as e:
    assert "RandomTranslation" in str(e), e
model = augmented(RandomShift(2))
compile_for_training(model, 1e-3)
assert model.jit_compile is True
model.train_on_batch(np.zeros((4, 8, 8, 3), "float32"), np.zeros((4,), "int32"))
assert "tensorflow" not in sys.modules
print("OK", len(names))
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed (pip install -e .[dev])")
def test_shipped_configs_parse_and_build_without_tensorflow():
    """The engine, the plugins' gin registrations and every shipped task config load where TensorFlow is not
    installed, and cifar10.gin's model runs under JAX (bench/gpu_bench.py relies on it on GPU machines);
    training always jits there, and a layer that cannot be jitted is an error, not an op-by-op run."""
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", NO_TENSORFLOW_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    count = int(re.search(r"^OK (\d+)$", proc.stdout, re.M).group(1))
    assert count >= 10, proc.stdout
