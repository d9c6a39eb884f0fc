"""The shipped configs on the real data next to the repository (../shared/data), reached as a user would:
through --data_dir, the configs naming their files relative to it. Skipped where the folder is absent."""

import json
import os

import pytest

from binaries import ROOT, run_binary

DATA = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))
needs_data = pytest.mark.skipif(not os.path.isdir(DATA), reason=f"no shared data folder at {DATA}")
TINY = ["--gin_file=sizes/tiny.gin", "--gin_param=train.epochs = 1", "--gin_param=train.steps_per_epoch = 2",
        "--gin_param=train.batch_size = 8"]


def train_tiny(tmp_path, gin_file, *params):
    """Trains `gin_file` for 2 tiny steps on the shared data, with a fresh extraction cache; -> (run dir, env)."""
    env = {"TLBKIT_CACHE": str(tmp_path / "cache")}
    model_dir = tmp_path / "run"
    run_binary("train", f"--gin_file={gin_file}", f"--data_dir={DATA}", f"--model_dir={model_dir}", *TINY,
               *[f"--gin_param={p}" for p in params], env=env, check=True)
    return model_dir, env


@needs_data
@pytest.mark.slow
def test_imdb_words_on_the_shared_zip(tmp_path):
    model_dir, env = train_tiny(tmp_path, "imdb_cpu.gin", "datasets.imdb_folder.max_examples_per_split = 32",
                                "CHUNK_SIZE = 16", "MAX_WORDS = 32")
    metrics = json.load(open(model_dir / "metrics.json"))
    assert metrics["val_examples"] == 32 and "val/ folder" in metrics["validation_data"]
    proc = run_binary("predict", f"--model_dir={model_dir}", "A fine, moving film.", env=env, check=True)
    assert proc.stdout.strip().splitlines()[-1].split()[-3] in ("neg", "pos")


@needs_data
@pytest.mark.slow
def test_cifar_recipe_on_the_shared_zip(tmp_path):
    model_dir, _ = train_tiny(tmp_path, "cifar10_cpu.gin", "datasets.image_folder.max_examples = 64",
                              "datasets.image_folder.validation_count = 16")
    metrics = json.load(open(model_dir / "metrics.json"))
    assert metrics["val_examples"] == 16 and metrics["epochs_completed"] == 1
    assert json.load(open(model_dir / "classes.json"))["class_names"][0] == "airplane"
