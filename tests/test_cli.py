"""Command-line habits of every binary: --help lists its own flags, bad flags exit 2, start-up is quiet,
a binary defines only the flags it honours."""

import os
import subprocess
import sys

import pytest

from binaries import ROOT, run_binary

BINARIES = {"train": "tlbkit.bin.train", "evaluate": "tlbkit.bin.evaluate", "predict": "tlbkit.bin.predict",
            "export": "tlbkit.bin.export", "ablate": "tlbkit.bin.ablate", "viz": "tlbkit_tasks.vision.viz"}


def run_module(module, *args, env=None):
    full_env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    full_env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell: no TensorFlow setting
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=600,
                          env=full_env, cwd=ROOT)


@pytest.mark.parametrize("name", sorted(BINARIES))
def test_help_lists_the_binarys_own_flags_in_groups(name):
    proc = run_module(BINARIES[name], "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Try --helpfull" not in proc.stdout and "flags:" in proc.stdout
    expected = {"train": ["--model_dir", "--gin_file", "--data_dir", "--seed", "--overwrite", "--strategy"],
                "evaluate": ["--model_dir", "--preset", "--checkpoint", "--split", "--data"],
                "predict": ["--model_dir", "--preset", "--checkpoint", "--output"],
                "export": ["--model_dir", "--output", "--notes"],
                "ablate": ["--sweep", "--sweep_file", "--root", "--seeds"],
                "viz": ["--model_dir", "--output_dir"]}[name]
    for flag in expected + ["--traceback"]:
        assert f"  {flag}\n" in proc.stdout, flag
    assert "Run flags:" in proc.stdout or "Model flags:" in proc.stdout or "Sweep flags:" in proc.stdout


@pytest.mark.parametrize("name, flag", [("evaluate", "--seed=1"), ("evaluate", "--gin_file=recall_cpu.gin"),
                                        ("evaluate", "--strategy=mirrored"), ("predict", "--seed=1"),
                                        ("train", "--no_such_flag")])
def test_flags_a_binary_does_not_honour_are_usage_errors(name, flag):
    proc = run_module(BINARIES[name], flag)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "error: Unknown command line flag" in proc.stderr and "--help" in proc.stderr
    assert "Traceback" not in proc.stderr


def tensorflow_import_is_quiet():
    """Whether `import tensorflow` with TF_CPP_MIN_LOG_LEVEL=2 prints nothing. On some hosts TF 2.21 logs
    (e.g. oneDNN's notice on AVX-512 CPUs) through absl before its logging is initialised, which no
    environment variable silences; there the binaries cannot be quieter than TensorFlow itself."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True, text=True, env=env,
                          timeout=300)
    return "absl::InitializeLog" not in proc.stderr and "cpu_feature_guard" not in proc.stderr


def test_start_up_is_quiet_and_list_has_no_empty_section(tmp_path):
    proc = run_module("tlbkit.bin.train", "--list")
    assert proc.returncode == 0
    if tensorflow_import_is_quiet():
        assert "cpu_feature_guard" not in proc.stderr and "absl::InitializeLog" not in proc.stderr
    lines = proc.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.endswith(":") and not line.startswith(" "):
            assert i + 1 < len(lines) and lines[i + 1].startswith("  "), f"empty section {line!r}"
    assert "configs (by name" in proc.stdout and "  recall_cpu.gin" in proc.stdout


def test_binaries_report_a_missing_run_clearly(tmp_path):
    for name in ("evaluate", "predict", "export"):
        extra = {"predict": ["1,2"], "export": [f"--output={tmp_path / 'out'}"]}.get(name, [])
        proc = run_binary(name, f"--model_dir={tmp_path}", *extra)
        assert proc.returncode == 2 and "config.gin not found" in proc.stderr, (name, proc.stderr[-1000:])
    proc = run_binary("evaluate")
    assert proc.returncode == 2 and "--model_dir" in proc.stderr and "--preset" in proc.stderr


def test_the_cache_and_data_folder_are_documented():
    usage = open(os.path.join(ROOT, "docs", "usage.md")).read()
    for text in ("TLBKIT_CACHE", "TLBKIT_DATA_DIR", "--data_dir", "Your own data"):
        assert text in usage, text
