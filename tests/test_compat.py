"""Each Keras work-around in tlbkit/compat.py: the bug it works around still exists in the installed Keras.

When one of these tests fails because the bug is gone, delete the work-around and its test.
"""

import json
import os
import socket
import subprocess
import sys

import keras
import pytest

from tlbkit import compat

HERE = os.path.dirname(os.path.abspath(__file__))


def test_version_guard():
    assert compat.affected("3.15.1", "3.15.1") and compat.affected("3.15.1", "3.9.0")
    assert not compat.affected("3.15.1", "3.16.0") and not compat.affected("3.15.1", "4.0.0")


def test_installed_keras_was_checked():
    """A Keras newer than the last one checked may have fixed the bugs (or not): re-run the tests
    below on it and move the LAST_SEEN versions of tlbkit/compat.py."""
    for name in ("MULTI_WORKER_BUILD_LAST_SEEN", "MULTI_WORKER_SCALAR_LOGS_LAST_SEEN"):
        assert compat.affected(getattr(compat, name)), f"Keras {keras.__version__} is newer than compat.{name}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_workers(mode):
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen([sys.executable, os.path.join(HERE, "multi_worker_fit.py"), mode], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=300))
        except subprocess.TimeoutExpired:
            p.kill()
            outs.append(p.communicate())
    return [p.returncode for p in procs], "".join(o + e for o, e in outs)


@pytest.mark.slow
def test_multi_worker_fit_still_needs_both_work_arounds():
    # Each bug is recognised by its own error in both workers, so an unrelated crash is not taken for it.
    codes, log = two_workers("none")
    assert codes != [0, 0], "Keras builds multi-worker fit itself now: drop compat's _maybe_symbolic_build work-around"
    assert log.count("ValueError: Attempt to convert a value (PerReplica:") == 2, log[-3000:]
    codes, log = two_workers("build")
    assert codes != [0, 0], "Keras reduces scalar logs itself now: drop compat._average_scalar_logs_without_axis"
    assert log.count("ValueError: Invalid reduction dimension 0 for input with 0 dimensions") == 2, log[-3000:]
    # With both, multi-worker fit works: test_distribution.test_multi_worker_two_local_processes trains
    # through tlbkit-train, which applies them.
