"""Presets: the shipped ones load and predict right after install; any run exports as one."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from binaries import run_binary, tiny_params
from tlbkit import presets


def test_the_cifar_preset_ships_and_predicts(tmp_path):
    assert "cifar10_tlb" in presets.available()
    folder = presets.resolve("cifar10_tlb")
    for name in ("model.keras", "config.gin", "classes.json", "metrics.json", "export.json", "README.md"):
        assert os.path.exists(os.path.join(folder, name)), name
    assert os.path.getsize(os.path.join(folder, "model.keras")) < 8e6  # weights only, no optimizer state
    card = open(os.path.join(folder, "README.md")).read()
    for text in ("validation accuracy", "training wall time", "tlbkit-train", "seed"):
        assert text in card, text
    classes = json.load(open(os.path.join(folder, "classes.json")))["class_names"]
    image = tmp_path / "some.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(image)
    proc = run_binary("predict", "--preset=cifar10_tlb", str(image), check=True)
    row = proc.stdout.strip().splitlines()[-1].split()
    assert row[0] == str(image) and row[1] in classes and 0 < float(row[3]) <= 1


def test_from_preset_gives_the_keras_model():
    from tlbkit.models import SequenceClassifier

    model = SequenceClassifier.from_preset("cifar10_tlb")
    logits = model(np.zeros((2, 32, 32, 3), "float32"))
    assert tuple(logits.shape) == (2, 10)
    with pytest.raises(presets.PresetError, match="unknown preset 'nope'.*cifar10_tlb"):
        SequenceClassifier.from_preset("nope")


def test_any_run_exports_as_a_preset_that_predicts_the_same(tmp_path):
    model_dir = tmp_path / "run"
    run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={model_dir}", f"--data_dir={tmp_path}",
               *tiny_params("train.epochs = 1", "train.steps_per_epoch = 2"), check=True)
    out = tmp_path / "exported"
    run_binary("export", f"--model_dir={model_dir}", f"--output={out}", "--notes=made by a test", check=True)
    card = open(out / "README.md").read()
    assert "made by a test" in card and "--data_dir=DATA" in card
    for name in ("README.md", "export.json"):  # a published preset names no folder of the machine it came from
        assert str(tmp_path) not in open(out / name).read(), name
    assert not (out / "last.keras").exists() and (out / "model.keras").exists()
    ids = ",".join(["1"] + ["7"] * 15)
    a = run_binary("predict", f"--model_dir={model_dir}", ids, check=True).stdout.strip().splitlines()[-1]
    b = run_binary("predict", f"--preset={out}", ids, check=True).stdout.strip().splitlines()[-1]
    assert a == b
    proc = run_binary("export", f"--model_dir={model_dir}", f"--output={out}")
    assert proc.returncode == 2 and "not empty" in proc.stderr
    proc = run_binary("predict", f"--preset={out}", "--checkpoint=best", ids)
    assert proc.returncode == 2 and "holding only its 'last' model" in proc.stderr
