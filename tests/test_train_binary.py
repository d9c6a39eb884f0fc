"""tlbkit-train / tlbkit-eval / tlbkit-predict end to end on the tiny synthetic recall task."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from binaries import ROOT, run_binary, tiny_params

RUN_FILES = ["command.txt", "config.gin", "operative_config.gin", "last.keras", "best.keras", "resume.json",
             "history.csv", "metrics.json", "curves.png", "tensorboard"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("runs") / "recall")
    proc = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={model_dir}",
                      *tiny_params("train.epochs = 2"), check=True)
    return model_dir, proc


def read_history(model_dir):
    with open(os.path.join(model_dir, "history.csv")) as f:
        return list(csv.DictReader(f))


def test_run_directory_is_complete(finished_run):
    model_dir, proc = finished_run
    for name in RUN_FILES:
        assert os.path.exists(os.path.join(model_dir, name)), name
    rows = read_history(model_dir)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(rows[0])
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert metrics["epochs_completed"] == 2 and metrics["params"] > 0
    for key in ("val_accuracy", "test_accuracy", "wall_time_s", "train_examples_per_s"):
        assert key in metrics
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert printed["params"] == metrics["params"]
    operative = open(os.path.join(model_dir, "operative_config.gin")).read()
    assert "train.epochs = 2" in operative and "DIM = 16" in operative and "cells.tlb.dim = %DIM" in operative
    assert "recall_cpu.gin" in open(os.path.join(model_dir, "command.txt")).read()
    assert open(os.path.join(model_dir, "curves.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    events = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(model_dir, "tensorboard"))
              for f in fs if "tfevents" in f]
    blobs = b"".join(open(f, "rb").read() for f in events)
    assert b"learning_rate" in blobs and b"operative_config" in blobs and b"epoch_loss" in blobs
    # Non-tty output: one line per epoch.
    assert proc.stdout.count("Epoch 2/2") == 1


def test_best_metrics_are_the_best_checkpoints_scores(finished_run):
    """metrics.json's "best" numbers are what tlbkit-eval gives for best.keras, whether the best epoch was the
    last one (whose scores `final_metrics` reuses when the weights are equal) or an earlier one."""
    model_dir, _ = finished_run
    best = json.load(open(os.path.join(model_dir, "metrics.json")))["best"]
    assert best["epoch"] in (1, 2) and best["checkpoint"] == "best"
    proc = run_binary("evaluate", f"--model_dir={model_dir}", "--split=validation", "--checkpoint=best", check=True)
    scored = json.loads(proc.stdout.strip().splitlines()[-1])
    assert scored["accuracy"] == pytest.approx(best["val_accuracy"], abs=1e-6)
    assert scored["cross_entropy"] == pytest.approx(best["val_cross_entropy"], rel=1e-5)


def test_same_weights_compares_every_variable():
    import keras

    from tlbkit.train import _same_weights

    def model():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.BatchNormalization()])

    a, b = model(), model()
    assert _same_weights(a, b)
    b.layers[-1].moving_mean.assign([0.0, 1.0])  # a non-trainable variable differs
    assert not _same_weights(a, b)
    assert not _same_weights(a, keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))


def tree_digest(folder):
    """{relative path: sha1} of every file below `folder`."""
    import hashlib

    return {os.path.relpath(os.path.join(d, f), folder): hashlib.sha1(open(os.path.join(d, f), "rb").read()).hexdigest()
            for d, _, files in os.walk(folder) for f in files}


def test_rerun_of_finished_run_changes_nothing(finished_run):
    model_dir, _ = finished_run
    before = tree_digest(model_dir)
    proc = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={model_dir}",
                      *tiny_params("train.epochs = 2"), check=True)
    assert "holds a finished run" in proc.stdout
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == json.load(open(os.path.join(model_dir, "metrics.json")))
    assert tree_digest(model_dir) == before  # byte-identical: metrics.json, command.txt, checkpoints...


def test_start_that_failed_before_training_is_replaced_without_overwrite(tmp_path):
    model_dir = str(tmp_path / "run")
    proc = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={model_dir}",
                      *tiny_params("train.epochs = 1", "datasets.long_range_recall.num_train = 0"))
    assert proc.returncode == 2 and "'train' split is empty" in proc.stderr
    assert os.path.exists(os.path.join(model_dir, "config.gin"))  # the failed start left its config
    proc = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={model_dir}",
                      *tiny_params("train.epochs = 1", "train.steps_per_epoch = 1"), check=True)
    assert "never finished an epoch; replacing it" in proc.stdout
    assert json.load(open(os.path.join(model_dir, "metrics.json")))["epochs_completed"] == 1


def test_eval_and_predict_on_finished_run(finished_run, tmp_path):
    model_dir, _ = finished_run
    proc = run_binary("evaluate", f"--model_dir={model_dir}", "--split=test", check=True)
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert metrics["examples"] == 64 and 0 <= metrics["accuracy"] <= 1
    assert metrics["checkpoint"] == "last" and metrics["loss"] == "cross_entropy"
    assert json.load(open(os.path.join(model_dir, "eval_test_last.json")))["accuracy"] == metrics["accuracy"]
    # One evaluation path: tlbkit-eval of the last model gives metrics.json's numbers.
    recorded = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert metrics["accuracy"] == pytest.approx(recorded["test_accuracy"], abs=1e-6)
    assert metrics["cross_entropy"] == pytest.approx(recorded["test_cross_entropy"], rel=1e-5)
    seq = tmp_path / "seq.csv"
    seq.write_text(",".join(["2"] + ["5"] * 15))
    out = tmp_path / "preds.csv"
    proc = run_binary("predict", f"--model_dir={model_dir}", str(seq), f"--output={out}", check=True)
    assert "probability" in proc.stdout and str(seq) in proc.stdout
    rows = list(csv.DictReader(open(out)))
    assert rows[0]["input"] == str(seq) and rows[0]["label"] in {"0", "1", "2", "3"}


def test_config_change_is_refused_then_overwritten(finished_run, tmp_path):
    model_dir = str(tmp_path / "run")
    shutil.copytree(finished_run[0], model_dir)  # a finished run of another config
    proc = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={model_dir}",
                      *tiny_params("train.epochs = 1", "train.steps_per_epoch = 1", "train.learning_rate = 0.5"))
    assert proc.returncode == 2 and "different gin config" in proc.stderr and "--overwrite" in proc.stderr
    proc = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={model_dir}", "--overwrite",
                      *tiny_params("train.epochs = 1", "train.steps_per_epoch = 1", "train.learning_rate = 0.5"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "learning_rate = 0.5" in open(os.path.join(model_dir, "config.gin")).read()


def test_a_model_dir_in_use_is_refused(finished_run, tmp_path):
    from tlbkit import run_dir

    model_dir = str(tmp_path / "run")
    shutil.copytree(finished_run[0], model_dir)  # the lock file comes along, unlocked: the copy is usable
    with run_dir.locked(model_dir):  # as a training process in that folder would hold it
        proc = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={model_dir}", "--overwrite",
                          *tiny_params("train.epochs = 1"))
    assert proc.returncode == 2 and "is in use by another tlbkit process" in proc.stderr, proc.stderr[-2000:]
    assert tree_digest(model_dir) == tree_digest(finished_run[0])  # --overwrite did not empty it


def test_same_seed_same_first_epoch_loss(finished_run, tmp_path):
    model_dir, _ = finished_run
    other = str(tmp_path / "again")
    run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={other}",
               *tiny_params("train.epochs = 1"), check=True)
    a, b = read_history(model_dir)[0], read_history(other)[0]
    assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-5)
    assert float(a["val_loss"]) == pytest.approx(float(b["val_loss"]), rel=1e-5)


def test_list_prints_plugins_and_parameters():
    proc = run_binary("train", "--list", check=True)
    for name in ("cells.tlb(", "encoders.tlb(", "encoders.transformer(", "encoders.lstm(", "heads.classification(",
                 "datasets.long_range_recall(", "tokenizers.embedding(", "models.classifier("):
        assert name in proc.stdout
    assert "num_latents=8" in proc.stdout and "chunk_size=REQUIRED" in proc.stdout


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path):
    model_dir = str(tmp_path / "killed")
    args = [sys.executable, "-m", "tlbkit.bin.train", "--gin_file=recall_cpu.gin", f"--model_dir={model_dir}",
            *tiny_params("train.epochs = 3", "datasets.long_range_recall.num_train = 4096")]
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resume = os.path.join(model_dir, "resume.json")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(resume) and json.load(open(resume))["epochs_done"] >= 1:
            time.sleep(0.3)  # inside epoch 2 (128 steps)
            break
        time.sleep(0.2)
    assert proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = json.load(open(resume))["epochs_done"]
    assert done in (1, 2)
    rerun = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={model_dir}",
                       *tiny_params("train.epochs = 3", "datasets.long_range_recall.num_train = 4096"), check=True)
    assert f"resuming {model_dir} after epoch {done}/3" in rerun.stdout
    rows = read_history(model_dir)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    # Only the interrupted epoch was redone: the rerun trained 3 - done epochs.
    assert rerun.stdout.count("Epoch ") == 3 - done
    # The run's wall time adds up both segments: more than all epochs together, growing row by row.
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    times = [float(r["time_s"]) for r in rows]
    assert times == sorted(times) and times[-1] <= metrics["wall_time_s"]
    assert metrics["wall_time_s"] >= sum(float(r["epoch_time_s"]) for r in rows)
    assert times[done - 1] < times[done] - float(rows[done]["epoch_time_s"]) + 1e-6  # the second segment's start
    for name in ("last.keras", "best.keras"):  # complete, loadable files (atomic writes)
        import keras

        keras.saving.load_model(os.path.join(model_dir, name), compile=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    model_dir = str(tmp_path / "nan")
    proc = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={model_dir}",
                      *tiny_params("train.epochs = 3", "train.learning_rate = 1e30"))
    assert proc.returncode == 2
    assert "loss became nan" in proc.stderr.lower() or "loss became inf" in proc.stderr.lower()
    assert "keeps the last good epoch" in proc.stderr
