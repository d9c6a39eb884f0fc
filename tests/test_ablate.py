"""tlbkit-ablate: sweep parsing, a tiny 2x1x2 sweep end to end, resume, a failing trial,
aggregation against the per-trial metrics.json, and a parse check of every shipped sweep file."""

import csv
import glob
import json
import os
import signal
import statistics
import subprocess
import sys
import time

import pytest

from binaries import ROOT, run_binary
from tlbkit import ablate
from tlbkit.ablate.runner import run_trial
from tlbkit.ablate.sweep import parse_axis, parse_seeds, split_values, train_args

TINY = [
    "train.epochs = 1",
    "train.steps_per_epoch = 2",
    "train.batch_size = 32",
    "LENGTH = 16",
    "DIM = 16",
    "VOCAB = 16",
    "NUM_LAYERS = 1",
    "R = 1",
    "datasets.long_range_recall.num_train = 128",
    "datasets.long_range_recall.num_validation = 64",
    "datasets.long_range_recall.num_test = 64",
]
AXES = ["cells.tlb.num_latents=[2, 4]", "encoders.tlb.chunk_size=[8]"]  # a one-value axis is still a column
RESUMED = "num_latents=4,chunk_size=8,seed=1"


def run_ablate(*args, timeout=600):
    return run_binary("ablate", *args, timeout=timeout)


def sweep_args(root, axes=AXES):
    return (["--gin_file=recall_cpu.gin", f"--root={root}", "--seeds=2", "--parallel=2"]
            + [f"--gin_param={p}" for p in TINY] + [f"--sweep={a}" for a in axes])


def snapshot(root, proc):
    """What a sweep left behind, read before a later test changes the directory."""
    trials = {}
    for path in sorted(glob.glob(os.path.join(root, "trials", "*", "metrics.json"))):
        with open(path) as f:
            trials[os.path.basename(os.path.dirname(path))] = (json.load(f), os.stat(path).st_mtime_ns)
    with open(os.path.join(root, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(root, "results.md")) as f:
        md = f.read()
    return {"root": root, "proc": proc, "trials": trials, "rows": rows, "md": md}


@pytest.fixture(scope="module")
def first_sweep(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("ablate") / "sweep")
    proc = run_ablate(*sweep_args(root))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return snapshot(root, proc)


@pytest.fixture(scope="module")
def second_sweep(first_sweep):
    """Same root: one trial lost its metrics.json (interrupted) and a bad value joins the first axis."""
    root = first_sweep["root"]
    os.remove(os.path.join(root, "trials", RESUMED, "metrics.json"))
    proc = run_ablate(*sweep_args(root, ["cells.tlb.num_latents=[2, 4, 0]", AXES[1]]))
    return snapshot(root, proc)


# === Parsing (no training) ===


def test_split_values_keeps_gin_literals():
    assert split_values("[1, 2.5, -3]") == ["1", "2.5", "-3"]
    assert split_values("['state', 'a,b]', True, None, %DIM]") == ["'state'", "'a,b]'", "True", "None", "%DIM"]
    assert split_values("[@encoders.tlb(), @encoders.lstm(),]") == ["@encoders.tlb()", "@encoders.lstm()"]
    assert split_values("[(1, 2), {'a': [3]}]") == ["(1, 2)", "{'a': [3]}"]
    for bad in ["1, 2", "[1, 2", "[1 2]", "[]", "[1,,2]", "[1] x"]:
        with pytest.raises(ablate.SweepError):
            split_values(bad)


def test_axes_and_seeds():
    assert parse_axis("cells.tlb.r = [1, 2]") == ablate.Axis("cells.tlb.r", ["1", "2"])
    assert parse_axis("CHUNK_SIZE=[4]").name == "CHUNK_SIZE"
    with pytest.raises(ablate.SweepError, match="name = "):
        parse_axis("[1, 2]")
    assert parse_seeds("3") == [0, 1, 2]
    assert parse_seeds("[0, 7]") == parse_seeds("0,7") == [0, 7]
    for bad in ["0", "x", "[]"]:
        with pytest.raises(ablate.SweepError):
            parse_seeds(bad)


def test_sweep_file_format(tmp_path):
    path = tmp_path / "my.sweep"
    path.write_text(
        "# a comment\n"
        "title = My sweep  # trailing comment\n"
        "gin_file = recall_cpu.gin\n"
        "param heads.classification.chunk_size = %CHUNK_SIZE\n"
        "param train.epochs = 2\n"
        "sweep heads.classification.pooling = ['state',  # continues\n"
        "    'last_chunk']\n"
        "sweep models.classifier.encoder = [@encoders.tlb(), @encoders.lstm()]\n"
        "seeds = 2\n"
        "metric = test_accuracy\n"
    )
    sweep = ablate.read_sweep_file(str(path))
    assert sweep.title == "My sweep" and sweep.gin_files == ["recall_cpu.gin"] and sweep.seeds == [0, 1]
    assert sweep.params == ["heads.classification.chunk_size = %CHUNK_SIZE", "train.epochs = 2"]
    assert [a.name for a in sweep.axes] == ["heads.classification.pooling", "models.classifier.encoder"]
    assert sweep.axes[0].values == ["'state'", "'last_chunk'"] and sweep.metric == "test_accuracy"
    assert sweep.gin_search_paths == [str(tmp_path)]
    # Command-line additions come after the file's; a command-line axis replaces the file's.
    merged = ablate.build_sweep(str(path), params=["train.epochs = 3"], axes=["heads.classification.pooling=['state']"],
                                seeds="1")
    assert merged.params[-1] == "train.epochs = 3" and merged.seeds == [0]
    assert [a.name for a in merged.axes] == ["models.classifier.encoder", "heads.classification.pooling"]
    trials = ablate.make_trials(sweep)
    assert [t.trial_id for t in trials[:3]] == [
        "pooling=state,encoder=encoders.tlb,seed=0", "pooling=state,encoder=encoders.tlb,seed=1",
        "pooling=state,encoder=encoders.lstm,seed=0"]
    assert len(trials) == 8
    args = train_args(sweep, trials[2])
    assert "--gin_param=models.classifier.encoder = @encoders.lstm()" in args and args[-1] == "--seed=0"
    assert f"--gin_search_path={tmp_path}" in args and args[0] == "--gin_file=recall_cpu.gin"
    path.write_text("gin_file = recall_cpu.gin\nbogus = 1\n")
    with pytest.raises(ablate.SweepError, match=r"my.sweep:2: unknown key 'bogus'"):
        ablate.read_sweep_file(str(path))


def test_trial_ids_must_be_distinct():
    sweep = ablate.Sweep(gin_files=["recall_cpu.gin"], axes=[ablate.Axis("x.y.z", ["1", "'1'"])])
    with pytest.raises(ablate.SweepError, match="same trial"):
        ablate.make_trials(sweep)
    sweep = ablate.Sweep(axes=[ablate.Axis("encoders.tlb.chunk_size", ["4"]),
                               ablate.Axis("heads.classification.chunk_size", ["4"])])
    assert ablate.make_trials(sweep)[0].trial_id == (
        "encoders.tlb.chunk_size=4,heads.classification.chunk_size=4,seed=0")


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "gin", "ablations", "*.sweep"))),
                         ids=os.path.basename)
def test_shipped_sweep_file_parses(path):
    sweep = ablate.read_sweep_file(path)
    assert sweep.gin_files[0] in ("recall_cpu.gin", "cifar10_cpu.gin") and len(sweep.seeds) >= 2
    assert len(ablate.make_trials(sweep)) >= 4
    assert ablate.check_sweep(sweep) == {}  # every trial's gin parses and its model constructs


def test_check_sweep_reports_bad_trials():
    sweep = ablate.build_sweep(gin_files=["recall_cpu.gin"], axes=["cells.tlb.r=[1, 3]"])
    errors = ablate.check_sweep(sweep)
    assert list(errors) == ["r=3,seed=0"] and "`r` must be between 1 and 2" in errors["r=3,seed=0"]
    sweep = ablate.build_sweep(gin_files=["recall_cpu.gin"], axes=["cells.tlb.num_latentz=[1]"])
    assert "num_latentz" in ablate.check_sweep(sweep)["num_latentz=1,seed=0"]


def test_markdown_marks_the_best_setting():
    sweep = ablate.Sweep(axes=[ablate.Axis("a.b.c", ["1", "2"])], seeds=[0, 1])
    rows = [{"trial_id": f"c={c},seed={s}", "a.b.c": c, "seed": s, "status": "ok", "error": "", "val_accuracy": v}
            for c, s, v in [("1", 0, 0.5), ("1", 1, 0.7), ("2", 0, 0.9), ("2", 1, 0.8)]]
    summary = ablate.summarize(sweep, rows, ["val_accuracy"])
    assert summary[0]["val_accuracy"] == pytest.approx(0.6) and summary[1]["val_accuracy_std"] == pytest.approx(
        statistics.stdev([0.9, 0.8]))
    md = ablate.markdown(sweep, summary, ["val_accuracy"])
    assert "| **`2`** | **0.8500 ± 0.0707** | **2/2** |" in md and "| `1` | 0.6000 ± 0.1414 | 2/2 |" in md
    summary = ablate.summarize(sweep, rows, ["val_loss"])
    assert "| `1` | – | 2/2 |" in ablate.markdown(sweep, summary, ["val_loss"])


def test_usage_errors():
    proc = run_ablate("--gin_file=recall_cpu.gin", "--sweep=cells.tlb.r=[1, 2", "--root=/tmp/x")
    assert proc.returncode == 2 and "error: cannot read the value list '[1, 2'" in proc.stderr


def test_a_hanging_trial_is_killed(tmp_path):
    sweep = ablate.build_sweep(gin_files=["recall_cpu.gin"])
    trial_dir = str(tmp_path / "t")
    status, error = run_trial(trial_dir, train_args(sweep, ablate.make_trials(sweep)[0]), timeout=0.5)
    assert status == "failed" and error.startswith("timed out after 0.5 s")
    assert open(os.path.join(trial_dir, "error.txt")).readline().startswith("timed out after 0.5 s")


def test_a_sweep_root_in_use_is_refused(tmp_path):
    """One sweep per root at a time: a second one would rerun and overwrite the first one's trials."""
    from tlbkit.run_dir import LOCK_FILE, RunDirError, locked

    root = str(tmp_path / "busy")
    sweep = ablate.build_sweep(gin_files=["recall_cpu.gin"])
    with locked(root, "--root"):
        with pytest.raises(RunDirError, match=r"busy is in use by another tlbkit process.*another --root"):
            ablate.run_sweep(sweep, root)
        with pytest.raises(RunDirError):  # a second open of the lock file, even in one process
            with locked(root):
                pass
    assert os.listdir(root) == [LOCK_FILE]  # refused before anything was written
    with locked(root):  # released when the block ends
        pass


# === A tiny sweep end to end ===


def test_sweep_runs_every_trial(first_sweep):
    assert len(first_sweep["trials"]) == 4
    assert "4 trials: 0 finished, 4 to run, 2 at a time." in first_sweep["proc"].stdout
    trial_dir = os.path.join(first_sweep["root"], "trials", "num_latents=4,chunk_size=8,seed=1")
    operative = open(os.path.join(trial_dir, "operative_config.gin")).read()
    assert "cells.tlb.num_latents = 4" in operative and "encoders.tlb.chunk_size = 8" in operative
    assert "train.seed = 1" in operative and "train.steps_per_epoch = 2" in operative
    assert open(os.path.join(first_sweep["root"], "results.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert [r["status"] for r in first_sweep["rows"]] == ["ok"] * 4


def test_results_match_the_trials(first_sweep):
    rows, trials = first_sweep["rows"], first_sweep["trials"]
    assert [r["trial_id"] for r in rows] == [
        f"num_latents={n},chunk_size={c},seed={s}" for n in (2, 4) for c in (8,) for s in (0, 1)]
    for row in rows:
        metrics, _ = trials[row["trial_id"]]
        for key in ("val_accuracy", "test_accuracy", "params", "wall_time_s"):
            assert float(row[key]) == metrics[key], (row["trial_id"], key)
    md_rows = {line.split("|")[1].strip("* `") + "," + line.split("|")[2].strip("* `"): line
               for line in first_sweep["md"].splitlines() if line.startswith("| ") and "`" in line.split("|")[1]
               and "cells" not in line}
    assert len(md_rows) == 2
    means = {}
    for n in (2, 4):
        for c in (8,):
            values = [trials[f"num_latents={n},chunk_size={c},seed={s}"][0]["val_accuracy"] for s in (0, 1)]
            means[f"{n},{c}"] = statistics.fmean(values)
            cell = f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"
            assert cell in md_rows[f"{n},{c}"], (cell, md_rows[f"{n},{c}"])
    best = max(means.values())
    for key, line in md_rows.items():
        assert ("**" in line) == (means[key] == best), line


def test_rerun_resumes_only_the_unfinished_trial_and_records_failures(first_sweep, second_sweep):
    proc = second_sweep["proc"]
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "6 trials: 3 finished, 3 to run, 2 at a time." in proc.stdout
    for trial_id, (_, mtime) in first_sweep["trials"].items():
        new_metrics, new_mtime = second_sweep["trials"][trial_id]
        assert (new_mtime != mtime) == (trial_id == RESUMED), trial_id
    resumed_log = open(os.path.join(second_sweep["root"], "trials", RESUMED, "stdout.txt")).read()
    assert "already finished 1/1 epochs" in resumed_log  # resumed from its checkpoint, not retrained
    failed = [r for r in second_sweep["rows"] if r["status"] == "failed"]
    assert [r["trial_id"] for r in failed] == [f"num_latents=0,chunk_size=8,seed={s}" for s in (0, 1)]
    for row in failed:
        assert row["error"].startswith("exit status 2:") and "num_latents" in row["error"] and row["val_accuracy"] == ""
        error_txt = open(os.path.join(second_sweep["root"], "trials", row["trial_id"], "error.txt")).read()
        assert error_txt.startswith(row["error"]) and "Last lines of stderr.txt" in error_txt
    assert sum(r["status"] == "ok" for r in second_sweep["rows"]) == 4
    assert "| `0` | `8` | – | – | – | – | 0/2 |" in second_sweep["md"]
    assert "Failed trials" in second_sweep["md"] and "`num_latents=0,chunk_size=8,seed=1`" in second_sweep["md"]


def _processes_mentioning(text):
    found = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as f:
                if text.encode() in f.read():
                    found.append(cmdline)
        except OSError:
            pass
    return found


def test_sigterm_ends_the_running_trials(tmp_path):
    root = str(tmp_path / "interrupted")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, "-m", "tlbkit.bin.ablate", *sweep_args(root, ["cells.tlb.num_latents=[2]"])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    trial_json = os.path.join(root, "trials", "num_latents=2,seed=0", "trial.json")
    try:
        for _ in range(600):
            if os.path.exists(trial_json) or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert os.path.exists(trial_json), proc.communicate()
        time.sleep(1.0)
        assert _processes_mentioning(os.path.join(root, "trials")), "no trial subprocess started"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1 and "interrupted; the same command resumes" in stderr
    assert not _processes_mentioning(os.path.join(root, "trials"))  # the trials ended with the sweep
    assert not os.path.exists(os.path.join(os.path.dirname(trial_json), "error.txt"))


@pytest.mark.parametrize("axis, needle", [
    ("cells.tlb.rr=[1, 2]", "rr"),                          # no such parameter
    ("CHUNK_SIZ=[4, 8]", "neither defines nor reads"),      # a misspelt macro: set by every trial, read by none
])
def test_a_bad_axis_name_is_refused_before_any_trial_starts(tmp_path, axis, needle):
    root = tmp_path / "sweep"
    proc = run_ablate("--gin_file=recall_cpu.gin", f"--sweep={axis}", f"--root={root}",
                      *[f"--gin_param={p}" for p in TINY])
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (root / "trials").exists()  # nothing launched


def test_axis_names_that_the_config_reads_pass():
    sweep = ablate.build_sweep(gin_files=["recall_cpu.gin"], axes=["CHUNK_SIZE=[4, 8]", "cells.tlb.r=[1]"])
    ablate.check_axis_names(sweep)
