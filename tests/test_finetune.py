"""Fine-tuning: a run that starts from a preset's or run's trained weights (tlbkit-train --init_from)."""

import json

import numpy as np
import pytest

from binaries import run_binary, tiny_params
from tlbkit import presets


def train(tmp_path, name, *params, extra=()):
    model_dir = tmp_path / name
    proc = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={model_dir}", f"--data_dir={tmp_path}",
                      *tiny_params("train.epochs = 1", "train.steps_per_epoch = 2", *params), *extra)
    return model_dir, proc


def weights(model, part):
    return [np.asarray(w) for w in getattr(model, part).get_weights()]


@pytest.fixture()
def source_run(shared_recall_run):
    """A finished run of the same config and sizes (`train` above, 4 classes)."""
    return shared_recall_run


def test_init_from_copies_tokenizer_and_encoder_and_builds_a_new_head_for_other_classes(tmp_path, source_run):
    # learning rate 0: the weights the run saves are the ones it started from
    model_dir, proc = train(tmp_path, "tuned", "NUM_CLASSES = 3", "train.learning_rate = 0.0",
                            extra=[f"--init_from={source_run}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "a new head for 3 classes (the trained one has 4)" in proc.stdout
    source, tuned = presets.load_model(str(source_run)), presets.load_model(str(model_dir))
    assert tuned.class_names == ("0", "1", "2") and source.class_names == ("0", "1", "2", "3")
    for part in ("tokenizer", "encoder"):
        for a, b in zip(weights(tuned, part), weights(source, part)):
            np.testing.assert_array_equal(a, b)
    assert weights(tuned, "head")[-1].shape == (3,)
    config = open(model_dir / "config.gin").read()
    assert f"train.init_from = '{source_run}'" in config  # recorded: a rerun or resume starts the same way
    assert json.load(open(model_dir / presets.PLUGINS_FILE))["plugins"][0]["module"] == "tlbkit_tasks"


def test_init_from_with_the_same_classes_keeps_the_trained_head(tmp_path, source_run):
    model_dir, proc = train(tmp_path, "same", "train.learning_rate = 0.0", extra=[f"--init_from={source_run}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "its head too" in proc.stdout
    for a, b in zip(weights(presets.load_model(str(model_dir)), "head"), weights(presets.load_model(str(source_run)), "head")):
        np.testing.assert_array_equal(a, b)


def test_init_from_a_model_of_another_design_names_the_part_and_the_fix(tmp_path, source_run):
    _, proc = train(tmp_path, "other", "DIM = 24", extra=[f"--init_from={source_run}"])
    assert proc.returncode == 2
    assert "the tokenizer the config builds" in proc.stderr and "preset's config.gin as the first --gin_file" in proc.stderr
    _, proc = train(tmp_path, "missing", extra=[f"--init_from={tmp_path / 'nothing'}"])
    assert proc.returncode == 2 and "unknown preset" in proc.stderr
