"""The tests' way of running a binary (`binaries.run_binary`): a child forked from a warm process (one per
backend) answers as a new interpreter would (exit status, streams), and a timeout ends it. That a JAX child
really runs under JAX is checked by test_backends (a JAX-only refusal). The other test files use it throughout
(each binary's behaviour, environments included, is checked there)."""

import subprocess

import pytest

from binaries import JAX_ENV, WarmProcess, run_binary


@pytest.mark.parametrize("env", [None, JAX_ENV], ids=["tensorflow", "jax"])
def test_a_warm_child_answers_as_a_fresh_process(tmp_path, env):
    missing = tmp_path / "none"
    warm = run_binary("evaluate", f"--model_dir={missing}", env=env)
    fresh = run_binary("evaluate", f"--model_dir={missing}", env=env, fresh=True)
    backend = WarmProcess.backend_of(env)  # served by that backend's warm process, which stays up
    assert backend in WarmProcess._instances and WarmProcess._instances[backend].proc.poll() is None
    assert warm.returncode == fresh.returncode == 2
    assert warm.stdout == fresh.stdout
    ours = lambda text: [line for line in text.splitlines() if line.startswith("tlbkit-eval")]  # noqa: E731
    assert ours(warm.stderr) == ours(fresh.stderr) and ours(warm.stderr), warm.stderr
    assert f"{missing}/config.gin not found" in warm.stderr


def test_only_environments_that_leave_start_up_alone_use_the_warm_process():
    assert WarmProcess.can_run(None) and WarmProcess.can_run({"TLBKIT_DATA_DIR": "x", "TLBKIT_CACHE": "y"})
    jax = JAX_ENV  # the JAX warm process's own start-up
    assert WarmProcess.can_run(jax) and WarmProcess.can_run({**jax, "TLBKIT_DATA_DIR": "x"})
    for changes_start_up in ({"KERAS_BACKEND": "jax"}, {**jax, "JAX_PLATFORMS": "gpu"}, {"KERAS_BACKEND": "torch"},
                             {"PYTHONPATH": "plugins"}, {"TF_CONFIG": "{}"}):
        assert not WarmProcess.can_run(changes_start_up)


def test_a_timeout_ends_the_warm_child_and_the_next_command_still_runs(tmp_path):
    with pytest.raises(subprocess.TimeoutExpired):
        run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={tmp_path / 'run'}", timeout=0.5)
    again = run_binary("evaluate", f"--model_dir={tmp_path / 'none'}")
    assert again.returncode == 2 and "config.gin not found" in again.stderr
