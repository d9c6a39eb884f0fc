"""tlbkit as a user installs it: a built wheel, installed without its dependencies into a fresh folder,
run from a folder outside the repository (no checkout on the path)."""

import json
import os
import subprocess
import sys
import zipfile

import pytest

from binaries import ROOT


def shipped(folder, suffixes):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder)
                  for f in fs if f.endswith(suffixes))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(site folder with the installed wheel, the wheel's file names)."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(work / "dist"), ROOT], check=True, capture_output=True, timeout=600)
    (wheel,) = (work / "dist").glob("tlbkit-*.whl")
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target",
                    str(site), str(wheel)], check=True, capture_output=True, timeout=600)
    return site, zipfile.ZipFile(wheel).namelist()


def run_installed(site, cwd, *args, env=None):
    """A console script of the installed wheel, from `cwd`, with only `site` (and the venv's
    dependencies, but no checkout) importable."""
    code = f"import sys; sys.argv[0] = {args[0]!r}; from {args[1]} import run; run()"
    full_env = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code, *args[2:]], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=600)


def test_wheel_holds_every_package_config_and_preset(installed):
    _, names = installed
    packages = {os.path.dirname(n) for n in names if n.endswith("__init__.py")}
    for folder, package in (("tlbkit", "tlbkit"), ("tasks", "tlbkit_tasks")):
        for d, _, files in os.walk(os.path.join(ROOT, folder)):
            if "__init__.py" in files:
                assert os.path.relpath(d, ROOT).replace(folder, package, 1) in packages, d
    for name in shipped(os.path.join(ROOT, "gin"), (".gin", ".sweep")):
        assert f"tlbkit_configs/{name}" in names, name
    for name in shipped(os.path.join(ROOT, "tasks", "presets"), ("",)):
        if "__pycache__" not in name:
            assert f"tlbkit_tasks/presets/{name}" in names, name


def test_installed_wheel_runs_the_main_job_by_name_from_elsewhere(installed, tmp_path):
    site, _ = installed
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    proc = run_installed(site, outside, "tlbkit-train", "tlbkit.bin.train", "--list")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "recall_cpu.gin" in proc.stdout and "models/tlb.gin" in proc.stdout and "cells.tlb(" in proc.stdout
    assert "\ntasks:" not in proc.stdout
    proc = run_installed(site, outside, "tlbkit-train", "tlbkit.bin.train", "--gin_file=recall_cpu.gin",
                         "--gin_file=sizes/tiny.gin", "--model_dir=run", "--gin_param=train.epochs = 1",
                         "--gin_param=train.steps_per_epoch = 2", "--gin_param=CHUNK_SIZE = 4",
                         "--gin_param=LENGTH = 16", "--gin_param=datasets.long_range_recall.num_train = 128")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.load(open(outside / "run" / "metrics.json"))["epochs_completed"] == 1
    # Nothing of the checkout was used: the modules come from the installed wheel.
    probe = subprocess.run([sys.executable, "-c", "import tlbkit, tlbkit_tasks; print(tlbkit.__file__, "
                            "tlbkit_tasks.__file__)"], cwd=outside, capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(site)))
    assert all(path.startswith(str(site)) for path in probe.stdout.split()), probe.stdout


def test_plugin_package_contributes_its_gin_folder(installed, tmp_path):
    """A plugin package declares a `tlbkit.gin` entry point; its gin file then resolves by name."""
    site, _ = installed
    plugin_site = tmp_path / "plugin_site"
    configs = plugin_site / "toy_plugin" / "configs"
    configs.mkdir(parents=True)
    (plugin_site / "toy_plugin" / "__init__.py").write_text("")
    (configs / "__init__.py").write_text("")
    (configs / "toy_recall.gin").write_text(
        "include 'recall_cpu.gin'\ninclude 'sizes/tiny.gin'\nCHUNK_SIZE = 4\nLENGTH = 16\n"
        "datasets.long_range_recall.num_train = 128\ntrain.epochs = 1\ntrain.steps_per_epoch = 1\n")
    dist = plugin_site / "toy_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tlbkit.gin]\ntoy = toy_plugin.configs\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(plugin_site)])}
    proc = run_installed(site, outside, "tlbkit-train", "tlbkit.bin.train", "--gin_file=toy_recall.gin",
                         "--model_dir=run", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.load(open(outside / "run" / "metrics.json"))["epochs_completed"] == 1
