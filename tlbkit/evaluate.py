"""Evaluation and prediction with a finished run's model (behind `tlbkit-eval` / `tlbkit-predict`)."""

import dataclasses
import os

import gin
import keras
import numpy as np

from tlbkit import pipeline
from tlbkit import run_dir as rd

CHECKPOINTS = ("best", "last")


def load_run_model(model_dir, checkpoint="best"):
    """Loads `best.keras` (falling back to `last.keras`) from a run directory."""
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"`checkpoint` must be one of {CHECKPOINTS}. Received: checkpoint={checkpoint!r}")
    order = [checkpoint] + [c for c in CHECKPOINTS if c != checkpoint]
    for name in order:
        path = os.path.join(model_dir, f"{name}.keras")
        if os.path.exists(path):
            return keras.saving.load_model(path, compile=False)
    raise FileNotFoundError(f"{model_dir} holds no best.keras or last.keras: train it first with tlbkit-train.")


@gin.configurable("run_dataset")
def run_dataset(dataset=gin.REQUIRED):
    """The run's `DataSpec`, as bound in its config (`run_dataset.dataset = %DATASET` in base.gin)."""
    return dataset


@gin.configurable("evaluate", denylist=["model_dir", "split", "dataset"])
def evaluate(model_dir, split="validation", dataset=None, batch_size=64, checkpoint="best"):
    """Accuracy and loss of a run's model on one split; writes `eval_<split>.json`.

    Args:
        model_dir: str. Run directory.
        split: str. `"train"`, `"validation"` or `"test"`.
        dataset: `DataSpec`; defaults to the run's (`run_dataset()`).
        batch_size: int. Evaluation batch size.
        checkpoint: str. `"best"` or `"last"`.
    """
    dataset = dataset if dataset is not None else run_dataset()
    ds = pipeline.batched(dataset, split, batch_size, training=False, cache=False)
    if ds is None:
        raise ValueError(f"the dataset has no {split!r} split; use --split=validation or --split=test.")
    model = load_run_model(model_dir, checkpoint)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    total, correct, loss_sum = 0, 0, 0.0
    for inputs, labels in ds:
        logits = keras.ops.convert_to_numpy(model(inputs, training=False))
        labels = np.asarray(labels).reshape(-1)
        correct += int((logits.argmax(-1) == labels).sum())
        loss_sum += float(keras.ops.convert_to_numpy(loss_fn(labels, logits))) * len(labels)
        total += len(labels)
    metrics = {"split": split, "examples": total, "accuracy": correct / total, "loss": loss_sum / total}
    rd.atomic_write_json(os.path.join(model_dir, f"eval_{split}.json"), metrics)
    return metrics


@gin.configurable("predict", denylist=["model_dir", "paths", "dataset"])
def predict(model_dir, paths, dataset=None, batch_size=64, checkpoint="best"):
    """Predicted label and probability for each input file.

    Args:
        model_dir: str. Run directory.
        paths: list of str. Files the dataset plugin's `read_inputs` can read.
        dataset: `DataSpec`; defaults to the run's (`run_dataset()`).
        batch_size: int.
        checkpoint: str. `"best"` or `"last"`.

    Returns:
        A list of dicts: input, label, label_id, probability.
    """
    import tensorflow as tf

    dataset = dataset if dataset is not None else run_dataset()

    if dataset.read_inputs is None:
        raise ValueError("this dataset plugin cannot read user files (its DataSpec has no read_inputs).")
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"input file not found: {missing[0]}")
    examples = dataset.read_inputs(list(paths))
    ds = tf.data.Dataset.from_tensor_slices((examples, np.zeros(len(paths), "int32")))
    spec = dataclasses.replace(dataset, test=ds)
    model = load_run_model(model_dir, checkpoint)
    probs = []
    for inputs, _ in pipeline.batched(spec, "test", batch_size, training=False, cache=False):
        probs.append(keras.ops.convert_to_numpy(keras.ops.softmax(model(inputs, training=False))))
    probs = np.concatenate(probs)
    names = dataset.class_names or [str(i) for i in range(dataset.num_classes)]
    return [
        {"input": path, "label": names[int(p.argmax())], "label_id": int(p.argmax()), "probability": float(p.max())}
        for path, p in zip(paths, probs)
    ]
