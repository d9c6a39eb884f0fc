"""Every Keras backend tlbkit runs under: the engine tests and the time-budget, weight-average and optimizer
tests rerun under JAX in one subprocess (Keras picks its backend at import); the README's main job
(`recall_cpu.gin`, trained through `tlbkit-ablate`) and `ucr.gin` trained, scored, predicted with and exported
under JAX, as a user runs them; the PyTorch backend refused at start.

Under JAX the engine tests run op by op on the CPU, several times slower than under TensorFlow; the ones that
test TensorFlow-only loop options, repeat a check per dtype or per block variant, or check only Python-side
structure (argument errors, the keras-io layout's parameter count) run under TensorFlow only (`SKIP_UNDER_JAX`),
as do the two ensemble training tests (54 s under JAX): `test_ucr_ensemble_trains_and_scores_under_jax` trains an
ensemble under JAX end to end. The encoder's hand-written gradient is still checked against JAX's autodiff."""

import csv
import glob
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

from binaries import JAX_ENV as JAX
from binaries import assert_eval_reproduces_metrics, run_binary, tiny_params

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason="jax not installed (pip install -e .[dev])")

SKIP_UNDER_JAX = ("not mixed_bfloat16 and not serial_loop and not unrolled_loop and not block_gradient "
                  "and not keras_io_layout_structure and not bad_ and not ensemble_fit and not ensemble_averages")


# Tests of other files rerun under JAX, in one subprocess (one interpreter start, one collection): the engine
# tests but those in SKIP_UNDER_JAX, and the training options whose JAX path differs (the live time-budget
# schedule inside the jitted step, the stopped run, the weight average, the optimizer's stateless update).
JAX_RERUNS = ["test_engine.py",
              "test_time_budget.py::test_compiled_train_step_reads_the_live_progress",
              "test_time_budget.py::test_a_spent_budget_stops_mid_epoch_and_is_recorded",
              "test_ema.py::test_a_run_with_an_average_scores_saves_and_resumes_the_average",
              "test_optimizers.py::test_updates_equal_keras_adamw_bit_for_bit"]


@pytest.mark.slow
@needs_jax
def test_engine_and_training_options_under_jax():
    here = os.path.dirname(__file__)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-k", SKIP_UNDER_JAX,
         *[os.path.join(here, t) for t in JAX_RERUNS]],
        env=dict(os.environ, **JAX), capture_output=True, text=True, timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    # Every selected test ran under JAX and passed (test_backend_is_the_one_requested among them): none
    # skipped or errored, each named one there, and the engine's selection is not a handful.
    summary = proc.stdout.strip().splitlines()[-1]
    assert not re.search(r"skipped|error|failed", summary), summary
    passed = re.findall(r"^PASSED \S*?(test_\w+\.py::\S+)", proc.stdout, flags=re.M)
    for named in JAX_RERUNS[1:]:
        assert named in passed, (named, summary)
    assert "test_engine.py::test_backend_is_the_one_requested" in passed, summary
    assert sum(p.startswith("test_engine.py") for p in passed) >= 12, summary


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


@needs_jax
def test_shipped_configs_parse_and_build_without_tensorflow():
    """The engine, the plugins' gin registrations and every shipped task config load where TensorFlow is not
    installed, and cifar10.gin's model runs under JAX (bench/gpu_bench.py relies on it on GPU machines);
    training always jits there, and a layer that cannot be jitted is an error, not an op-by-op run."""
    proc = subprocess.run([sys.executable, "-c", NO_TENSORFLOW_SCRIPT], env=dict(os.environ, **JAX), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    count = int(re.search(r"^OK (\d+)$", proc.stdout, re.M).group(1))
    assert count >= 10, proc.stdout


# === The command-line tools under JAX ===
@pytest.fixture(scope="module")
def jax_recall_run(tmp_path_factory):
    """`recall_cpu.gin`, shrunk, trained under JAX as one trial of `tlbkit-ablate`: (root, run directory)."""
    root = str(tmp_path_factory.mktemp("jax_ablate"))
    proc = run_binary("ablate", "--gin_file=recall_cpu.gin", f"--root={root}", "--sweep=cells.tlb.num_latents=[2]",
                      *tiny_params("train.epochs = 1", "train.steps_per_epoch = 3"), env=JAX)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = glob.glob(os.path.join(root, "trials", "*"))
    return root, run


@pytest.mark.slow
@needs_jax
def test_recall_trains_through_ablate_and_scores_under_jax(jax_recall_run):
    root, run = jax_recall_run
    with open(os.path.join(root, "results.csv")) as f:
        (row,) = list(csv.DictReader(f))
    assert row["status"] == "ok", row
    with open(os.path.join(run, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["val_examples"] == 64 and metrics["test_examples"] == 64, metrics
    # tlbkit-eval reloads the last model under JAX and gives metrics.json's validation numbers back.
    assert_eval_reproduces_metrics(run, env=JAX)


@pytest.mark.slow
@needs_jax
def test_predict_and_export_under_jax(jax_recall_run, tmp_path):
    _, run = jax_recall_run
    ids = ",".join(str(1 + i % 11) for i in range(16))  # recall's input: LENGTH=16 ids below VOCAB=12
    proc = run_binary("predict", f"--model_dir={run}", ids, f"--output={tmp_path / 'p.json'}", env=JAX, check=True)
    (row,) = json.load(open(tmp_path / "p.json"))
    assert row["input"] == ids and row["label"] == str(row["label_id"]) and 0.25 <= row["probability"] <= 1.0, proc.stdout
    preset = str(tmp_path / "preset")
    run_binary("export", f"--model_dir={run}", f"--output={preset}", env=JAX, check=True)
    proc = run_binary("evaluate", f"--model_dir={preset}", "--split=test", env=JAX, check=True)
    scored = json.loads(proc.stdout.strip().splitlines()[-1])
    recorded = json.load(open(os.path.join(run, "metrics.json")))
    assert scored["examples"] == 64 and scored["accuracy"] == pytest.approx(recorded["test_accuracy"], abs=1e-6)


@pytest.mark.slow
@needs_jax
def test_ucr_ensemble_trains_and_scores_under_jax(tmp_path):
    """ucr.gin (an ensemble, the convolutional stem, differences, dataset normalisation) on aeon's bundled
    GunPoint, shrunk to two one-layer members (the compile time follows the graph)."""
    run = str(tmp_path / "gunpoint")
    proc = run_binary("train", "--gin_file=ucr.gin", f"--model_dir={run}", "--gin_param=UCR_NAME = 'GunPoint'",
                      "--gin_param=train.epochs = 1", "--gin_param=train.steps_per_epoch = 2", "--gin_param=DIM = 16",
                      "--gin_param=NUM_LAYERS = 1", "--gin_param=models.ensemble.size = 2",
                      "--gin_param=train.score_train = True", env=JAX)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    recorded = json.load(open(os.path.join(run, "metrics.json")))
    assert recorded["test_examples"] == 150, recorded  # GunPoint's test split: 150 series, batches 48+48+48+6
    # The compiled steps went into the compilation cache (conftest's TLBKIT_CACHE), for tlbkit-eval to reuse.
    assert os.listdir(os.path.join(os.environ["TLBKIT_CACHE"], "jax")), "no JAX compilation cache written"
    # train.score_train scores the model on its own (clean) training data too: the numbers tlbkit-eval
    # gives for that split, through the one evaluation path.
    assert recorded["train_examples"] == 50, recorded
    proc = run_binary("evaluate", f"--model_dir={run}", "--split=train", env=JAX, check=True)
    scored = json.loads(proc.stdout.strip().splitlines()[-1])
    assert scored["examples"] == 50
    assert scored["accuracy"] == pytest.approx(recorded["train_accuracy"], abs=1e-6)
    assert scored["cross_entropy"] == pytest.approx(recorded["train_cross_entropy"], rel=1e-5)


def test_the_pytorch_backend_is_refused_at_start(tmp_path):
    proc = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={tmp_path / 'run'}",
                      env={"KERAS_BACKEND": "torch"}, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "the Keras backend is 'torch'" in proc.stderr and "KERAS_BACKEND=jax" in proc.stderr, proc.stderr
    assert not os.path.exists(tmp_path / "run")  # refused before anything was written


@needs_jax
def test_a_model_reading_strings_is_refused_under_jax_naming_the_fix(tmp_path):
    # listops_cpu.gin's tokenizer looks tokens up with TensorFlow string ops inside the model.
    proc = run_binary("train", "--gin_file=listops_cpu.gin", f"--model_dir={tmp_path / 'run'}",
                      "--gin_param=datasets.listops.num_train = 64", "--gin_param=datasets.listops.num_validation = 16",
                      "--gin_param=datasets.listops.num_test = 16", env=JAX, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "gives the model strings" in proc.stderr and "KERAS_BACKEND=tensorflow" in proc.stderr, proc.stderr
    assert not os.path.exists(tmp_path / "run" / "last.keras")


def test_the_jax_compilation_cache_is_set_once_and_can_be_turned_off(tmp_path, monkeypatch):
    import jax

    from tlbkit import backends

    before = (jax.config.jax_compilation_cache_dir, jax.config.jax_compilation_cache_max_size)
    monkeypatch.setattr(backends, "requested", lambda: "jax")
    monkeypatch.setenv("TLBKIT_CACHE", str(tmp_path))
    try:
        jax.config.update("jax_compilation_cache_dir", None)
        jax.config.update("jax_compilation_cache_max_size", -1)
        monkeypatch.setenv("TLBKIT_JAX_CACHE", "0")
        assert backends.use_compilation_cache() is None and jax.config.jax_compilation_cache_dir is None
        monkeypatch.delenv("TLBKIT_JAX_CACHE")
        assert backends.use_compilation_cache() == str(tmp_path / "jax") == jax.config.jax_compilation_cache_dir
        # filelock comes with the dev extra; without it JAX cannot cap the size and tlbkit leaves it uncapped.
        capped = importlib.util.find_spec("filelock") is not None
        assert jax.config.jax_compilation_cache_max_size == (backends.JAX_CACHE_MAX_BYTES if capped else -1)
        jax.config.update("jax_compilation_cache_dir", str(tmp_path / "mine"))  # the user's own choice stays
        assert backends.use_compilation_cache() == str(tmp_path / "mine")
        monkeypatch.setattr(backends, "requested", lambda: "tensorflow")
        assert backends.use_compilation_cache() is None
    finally:
        jax.config.update("jax_compilation_cache_dir", before[0])
        jax.config.update("jax_compilation_cache_max_size", before[1])
