"""tlbkit.run_dir.RunDir: the one owner of a run folder's file names, readers and atomic writers."""

import json
import os
import pathlib
import re

import pytest

from tlbkit import run_dir as rd
from tlbkit.run_dir import RunDir

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The on-disk layout a user sees (docs/usage.md, "The run directory"); literals on purpose.
PATHS = {
    "config_path": "config.gin",
    "operative_config_path": "operative_config.gin",
    "command_path": "command.txt",
    "classes_path": "classes.json",
    "plugins_path": "plugins.json",
    "resume_path": "resume.json",
    "metrics_path": "metrics.json",
    "history_path": "history.csv",
    "curves_path": "curves.png",
    "tensorboard_dir": "tensorboard",
    "tensorboard_config_dir": os.path.join("tensorboard", "config"),
    "viz_dir": "viz",
    "lock_path": ".tlbkit.lock",
    "export_path": "export.json",
    "model_path": "model.keras",
    "card_path": "README.md",
}


def test_paths(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.path == str(tmp_path / "run") and os.fspath(run) == run.path
    for attribute, name in PATHS.items():
        assert getattr(run, attribute) == os.path.join(run.path, name), attribute
    assert run.checkpoint() == os.path.join(run.path, "last.keras")
    assert run.checkpoint("best") == os.path.join(run.path, "best.keras")
    assert run.scratch().checkpoint("last") == os.path.join(run.path, ".worker-scratch", "last.keras")
    assert run.eval_path("validation", "last") == os.path.join(run.path, "eval_validation_last.json")
    assert run.eval_path("test", "best", data="/data/my set/", views="flip") == os.path.join(
        run.path, "eval_my_set_test_best_views-flip.json")


def test_unknown_checkpoint_names_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match=r"one of \('last', 'best'\). Received: checkpoint='first'"):
        RunDir(tmp_path).checkpoint("first")


def test_docstring_lists_every_file():
    names = [v for k, v in vars(rd).items() if k.endswith(("_FILE", "_DIR")) and isinstance(v, str)]
    assert len(names) >= 15
    for name in names + [c + rd.CHECKPOINT_SUFFIX for c in rd.CHECKPOINTS]:
        assert name in RunDir.__doc__, name


def test_reads_of_missing_files(tmp_path):
    run = RunDir(tmp_path / "absent")
    assert run.read_config() is None and run.read_metrics() is None and run.read_classes() is None
    assert run.read_export() is None
    assert run.read_resume() == {} and run.read_plugins() == [] and run.read_commands() == []
    assert not run.is_finished and not run.is_exported


def test_read_of_a_broken_file_names_it(tmp_path):
    run = RunDir(tmp_path)
    with open(run.metrics_path, "w") as f:
        f.write('{"accuracy": 0.')
    with pytest.raises(ValueError, match=re.escape(run.metrics_path) + " is not valid JSON"):
        run.read_metrics()


def test_writes_round_trip_in_the_saved_format(tmp_path):
    run = RunDir(tmp_path)
    run.write_metrics({"val_accuracy": 0.5, "params": 3})
    assert open(run.metrics_path).read() == '{\n  "params": 3,\n  "val_accuracy": 0.5\n}\n'
    assert run.read_metrics() == {"params": 3, "val_accuracy": 0.5} and run.is_finished
    run.write_classes(("a", "b"))
    assert json.load(open(run.classes_path)) == {"class_names": ["a", "b"]} and run.read_classes() == ["a", "b"]
    run.write_plugins([{"module": "m", "distribution": None, "version": None}])
    assert run.read_plugins() == [{"module": "m", "distribution": None, "version": None}]
    run.write_resume({"epochs_done": 1})
    assert run.read_resume() == {"epochs_done": 1}
    run.write_config("a = 1\n")
    assert run.read_config() == "a = 1\n"
    run.append_command("tlbkit-train --x")
    run.append_command("tlbkit-train --x")
    assert open(run.command_path).read() == "tlbkit-train --x\ntlbkit-train --x\n"
    assert run.read_commands() == ["tlbkit-train --x"] * 2
    run.write_history([{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.0, "accuracy": 0.5}])
    assert open(run.history_path).read().splitlines() == ["epoch,accuracy,loss", "1,,2.0", "2,0.5,1.0"]
    assert open(run.curves_path, "rb").read(4) == b"\x89PNG"
    assert oct(os.stat(run.metrics_path).st_mode & 0o777) == "0o644"


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    run = RunDir(tmp_path)
    run.write_metrics({"a": 1})

    def fail(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="No space left"):
        run.write_metrics({"a": 2})
    with pytest.raises(OSError):
        run.write_config("new")
    assert run.read_metrics() == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["metrics.json"]  # no temporary file, no partial config.gin


def test_a_failed_checkpoint_save_leaves_no_file(tmp_path, monkeypatch):
    from tlbkit import saving

    def half_written(model, path):
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        raise RuntimeError("killed mid-save")

    monkeypatch.setattr(saving, "save_model", half_written)
    run = RunDir(tmp_path)
    with pytest.raises(RuntimeError, match="mid-save"):
        run.save_checkpoint(object(), "best")
    assert os.listdir(tmp_path) == []


def test_copy_record_from_copies_what_the_run_holds(tmp_path):
    run, preset = RunDir(tmp_path / "run"), RunDir(tmp_path / "preset")
    os.makedirs(run.path)
    os.makedirs(preset.path)
    run.write_config("x = 1\n")
    run.write_classes(["a"])
    run.write_resume({"epochs_done": 1})
    preset.copy_record_from(run)
    assert sorted(os.listdir(preset.path)) == ["classes.json", "config.gin"]
    assert open(preset.config_path, "rb").read() == open(run.config_path, "rb").read()


# Uses of a run-file name outside run_dir.py that are not run folders (a temporary folder's file).
NOT_RUN_FOLDERS = {("tlbkit/saving.py", "model.keras"), ("tlbkit/testing.py", "model.keras")}


def test_no_run_file_name_outside_run_dir():
    """Every module asks `RunDir` for a run folder's paths: no quoted run-file name elsewhere in tlbkit/ or
    tasks/ (tests and bench/ may keep literals)."""
    names = {v for k, v in vars(rd).items() if k.endswith(("_FILE", "_DIR")) and isinstance(v, str)}
    names -= {rd.TENSORBOARD_CONFIG_DIR}  # "config" inside tensorboard/: too common a word to search for
    names |= {c + rd.CHECKPOINT_SUFFIX for c in rd.CHECKPOINTS}
    pattern = re.compile(r"""["'](%s)["']""" % "|".join(re.escape(n) for n in sorted(names)))
    found = []
    for top in ("tlbkit", "tasks"):
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative == "tlbkit/run_dir.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for match in pattern.finditer(line):
                    if (relative, match.group(1)) not in NOT_RUN_FOLDERS:
                        found.append(f"{relative}:{number}: {line.strip()}")
    assert not found, "run-file names outside tlbkit/run_dir.py (use tlbkit.run_dir.RunDir):\n" + "\n".join(found)


def test_curves_are_redrawn_at_most_every_few_seconds_and_at_the_end(tmp_path, monkeypatch):
    # Drawing curves.png takes about a second; a run of short epochs draws it after the first epoch, when
    # CURVES_EVERY_S have passed, and once more when training ends, so the file always shows every epoch.
    # One 4-epoch run: the interval is 0 s for epochs 1-2 (each drawn), then 1e9 s (3 and 4 not drawn; the
    # end of training draws all 4).
    from test_time_budget import tiny_model

    from tlbkit import callbacks
    from tlbkit.train import train
    from tlbkit_tasks.synthetic.long_range_recall import long_range_recall

    drawn = []
    real_plot, real_begin = rd.plot_curves, callbacks.RunRecorder.on_epoch_begin

    def on_epoch_begin(self, epoch, logs=None):
        monkeypatch.setattr(callbacks, "CURVES_EVERY_S", 0.0 if epoch < 2 else 1e9)
        real_begin(self, epoch, logs)

    monkeypatch.setattr(callbacks.RunRecorder, "on_epoch_begin", on_epoch_begin)
    monkeypatch.setattr(rd, "plot_curves", lambda rows, path: (drawn.append(len(rows)), real_plot(rows, path)))
    data = long_range_recall(length=16, vocab_size=12, num_train=64, num_validation=32, num_test=32)
    train(str(tmp_path), dataset=data, model=tiny_model, batch_size=64, epochs=4)
    assert drawn == [1, 2, 4]
    assert open(RunDir(str(tmp_path)).curves_path, "rb").read(4) == b"\x89PNG"
    assert len(open(RunDir(str(tmp_path)).history_path).read().splitlines()) == 5  # written every epoch
