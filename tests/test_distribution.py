"""tf.distribute: mirrored over 2 logical CPU devices, multi-worker with 2 local processes."""

import json
import math
import os
import socket
import subprocess
import sys

import pytest

from binaries import ROOT, run_binary, tiny_params


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus(tmp_path):
    """The global batch is split over two replicas: the run says so and learns (its loss falls, and below
    chance; the one-device recipe learns in test_learning)."""
    model_dir = str(tmp_path / "mirrored")
    run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={model_dir}", "--strategy=mirrored",
               "--cpu_devices=2", *tiny_params("train.epochs = 2", "train.steps_per_epoch = 3"), check=True)
    mirrored = json.load(open(os.path.join(model_dir, "metrics.json")))
    history = json.load(open(os.path.join(model_dir, "resume.json")))["history"]
    assert mirrored["replicas"] == 2 and mirrored["epochs_completed"] == 2
    assert history[1]["loss"] < history[0]["loss"]
    assert mirrored["val_cross_entropy"] < math.log(4)  # 4 classes: chance is log(4)


@pytest.mark.slow
def test_multi_worker_two_local_processes(tmp_path):
    model_dir = str(tmp_path / "multi")
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2",
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        args = [sys.executable, "-m", "tlbkit.bin.train", "--gin_file=recall_cpu.gin", f"--model_dir={model_dir}",
                "--strategy=multi_worker", *tiny_params("train.epochs = 1", "train.steps_per_epoch = 2")]
        procs.append(subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert metrics["epochs_completed"] == 1
    assert os.path.exists(os.path.join(model_dir, "last.keras"))
