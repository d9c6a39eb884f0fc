"""Command-line habits of every binary: --help lists its own flags, bad flags exit 2, start-up is quiet,
a binary defines only the flags it honours."""

import os
import re
import subprocess
import sys

import pytest

from binaries import ROOT, run_binary

BINARIES = {"train": "tlbkit.bin.train", "evaluate": "tlbkit.bin.evaluate", "predict": "tlbkit.bin.predict",
            "export": "tlbkit.bin.export", "ablate": "tlbkit.bin.ablate", "viz": "tlbkit.bin.viz"}


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


def tensorflow_import_noise():
    """The lines `import tensorflow` itself prints with TF_CPP_MIN_LOG_LEVEL=2, without their time stamps. On some
    hosts TF 2.21 logs (oneDNN's notice and the CPU-feature notice on AVX-512 CPUs) through absl before its
    logging is initialised, which no environment variable silences; the binaries drop those
    (`tlbkit.bin.START_UP_NOTICES`)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True, text=True, env=env,
                          timeout=300)
    return {without_stamp(line) for line in proc.stderr.splitlines()}


def without_stamp(line):
    return re.sub(r"^[IWE]\d{4} [\d:.]+ +\d+ ", "", line)


def test_start_up_is_quiet_and_list_has_no_empty_section(tmp_path):
    proc = run_module("tlbkit.bin.train", "--list")
    assert proc.returncode == 0
    # Checked on every host: none of TensorFlow's start-up notices, and nothing beyond the other lines
    # importing TensorFlow prints there (test_tensorflow_start_up_notices_are_dropped_and_nothing_else covers
    # the filter where TensorFlow prints no notice).
    from tlbkit.bin import START_UP_NOTICES

    noise = tensorflow_import_noise()
    extra = [line for line in proc.stderr.splitlines()
             if START_UP_NOTICES.search(line) or without_stamp(line) not in noise]
    assert not extra, extra[:5]
    lines = proc.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.endswith(":") and not line.startswith(" "):
            assert i + 1 < len(lines) and lines[i + 1].startswith("  "), f"empty section {line!r}"
    assert "configs (by name" in proc.stdout and "  recall_cpu.gin" in proc.stdout


FAKE_TENSORFLOW = """import os
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n"
            b"I0000 00:00:1.5 7 port.cc:153] oneDNN custom operations are on. You may see slightly different "
            b"numerical results due to floating-point round-off errors.\\n"
            b"W0000 00:00:1.6 7 some.cc:1] a real warning\\n")
"""


@pytest.mark.parametrize("user_level", [None, "2", "0"])
def test_tensorflow_start_up_notices_are_dropped_and_nothing_else(tmp_path, user_level):
    """A stand-in `tensorflow` writes two start-up notices and a warning to file descriptor 2 at import:
    `tlbkit.bin.import_tensorflow_quietly()` (what every binary calls once its flags are parsed; the real
    binary: test_start_up_is_quiet_and_list_has_no_empty_section) passes on only the warning, at the default level (2)
    as at one the user set; a user who sets TF_CPP_MIN_LOG_LEVEL=0 (every INFO line) sees all of it."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(FAKE_TENSORFLOW)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    if user_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = user_level
    proc = subprocess.run([sys.executable, "-c", "import tlbkit.bin; tlbkit.bin.import_tensorflow_quietly(); import tensorflow; print(tensorflow.__file__)"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "tensorflow" / "__init__.py")  # the stand-in was imported
    lines = proc.stderr.splitlines()
    if user_level != "0":
        assert lines == ["W0000 00:00:1.6 7 some.cc:1] a real warning"], lines
    else:
        assert len(lines) == 3 and "oneDNN custom operations are on" in lines[1], lines


def test_list_says_what_each_parameter_means():
    from tlbkit import plugins
    from tlbkit.bin import cli

    plugins.load_all()
    lines = cli.list_configs_and_plugins(search_paths=()).splitlines()
    assert "train (what tlbkit-train runs; bind as train.NAME):" in lines
    assert "      epochs: int. Total epochs." in lines  # train's, from its docstring
    assert "      num_heads: int. Attention heads." in lines  # cells.tlb's, from the class docstring
    ucr = lines.index(next(line for line in lines if line.startswith("  datasets.ucr(")))
    assert lines[ucr + 3].startswith("      missing: str. `'?'` values:")  # "as in `datasets.ts_files`" followed
    assert [line for line in lines if line.endswith("(undocumented)")] == []  # every parameter says what it means


def test_a_parameters_meaning_is_one_line_of_its_docstring():
    from tlbkit import registry

    def plugin(a, b=2, c=None, d=4, e="x", f=0):
        pass

    plugin.__doc__ = """A plugin.

    Args:
        a: int. The first.
            Wrapped onto a second line. Defaults to nothing.
        b, c: float. Shared by two. Defaults to `2` and None.
        d: int. A long one. """ + "Words go on and on. " * 10 + """
        e (str): typed in parentheses.
    """

    rows = {name: (default, meaning) for name, default, meaning in registry.parameters(plugin)}
    assert rows["a"] == ("REQUIRED", "int. The first. Wrapped onto a second line.")
    assert rows["b"] == (2, "float. Shared by two.")  # a Defaults-to sentence is dropped beside a listed default
    assert rows["c"] == (None, "float. Shared by two. Defaults to `2` and None.")  # kept: None says little
    assert rows["d"][1].startswith("int. A long one. Words go on and on.") and len(rows["d"][1]) <= 100
    assert rows["e"] == ("x", "typed in parentheses.") and rows["f"] == (0, "")


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


# === Issue 29: a series run (ucr.gin: an ensemble without validation) and a recall run, used as users would ===
import json  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from binaries import tiny_params  # noqa: E402

# Two members, not ucr.gin's three: the ensemble's code paths with a third less graph to trace.
SERIES_TINY = ["UCR_NAME = 'Toy'", "DIM = 16", "NUM_LAYERS = 1", "models.ensemble.size = 2", "train.epochs = 1",
               "train.steps_per_epoch = 2", "train.warmup_epochs = 0.0"]


def write_ts(path, n, seed):
    """A univariate .ts file of `n` noisy ramps of 20-39 steps, labelled up/down."""
    rng = np.random.default_rng(seed)
    lines = ["@problemName Toy", "@timeStamps false", "@univariate true", "@equalLength false",
             "@classLabel true up down", "@data"]
    for i in range(n):
        values = (1 if i % 2 else -1) * np.linspace(0, 1, int(rng.integers(20, 40))) + 0.1 * rng.normal(size=1)
        lines.append(",".join(f"{v:.3f}" for v in values) + (":up" if i % 2 else ":down"))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def series_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("series")
    (root / "data").mkdir()
    write_ts(root / "data" / "Toy_TRAIN.ts", 20, 0)
    write_ts(root / "Toy_TEST.ts", 8, 1)
    env = {"TLBKIT_DATA_DIR": str(root / "data")}
    run_binary("train", "--gin_file=ucr.gin", f"--model_dir={root / 'run'}",
               *[f"--gin_param={p}" for p in SERIES_TINY], env=env, check=True)
    return root, env


@pytest.fixture(scope="module")
def recall_run(tmp_path_factory):
    """Validated every other epoch, one epoch: a validation split but no best.keras."""
    root = tmp_path_factory.mktemp("recall")
    run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={root / 'run'}",
               *tiny_params("train.epochs = 1", "train.validation_freq = 2"), check=True)
    return root


def one_error_line(proc):
    assert proc.returncode == 2, proc.stdout[-1500:] + proc.stderr[-1500:]
    assert "Traceback" not in proc.stderr
    return proc.stderr


INLINE = "-0.566,-0.4,-0.3,-0.1,0.0,0.1,0.25,0.3,0.5,0.6,0.61,0.7,0.8,0.85,0.9,0.95,1.0,1.01,1.1,1.2,1.3,1.35"


def test_stream_command_streams_a_ucr_run_over_user_data_and_checks_it(series_run, tmp_path):
    root, env = series_run
    csv = tmp_path / "series.csv"
    csv.write_text("\n".join(f"{np.sin(i / 5):.4f}" for i in range(33)) + "\n")
    proc = run_binary("stream", f"--model_dir={root / 'run'}", INLINE, str(csv), "--check", env=env, check=True)
    assert re.search(r"-0\.566.*chunk +\d+ +steps +22 +(up|down) +p=", proc.stdout), proc.stdout
    assert re.search(r"series\.csv +chunk +\d+ +steps +33 ", proc.stdout), proc.stdout
    worst = float(re.search(r"max difference (\S+)", proc.stdout).group(1))
    assert worst <= 1e-4  # against the model with one view: ucr.gin's noisy test-time views do not stream
    assert "test-time views (SeriesNoiseViews) are not applied" in proc.stdout, proc.stdout


def test_stream_example_loads_a_ucr_run_without_best_checkpoint(series_run):
    root, env = series_run
    assert not (root / "run" / "best.keras").exists()
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "stream_series.py"),
                           f"--model_dir={root / 'run'}", "--chunks=1", "--check"],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, **env, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "check: streamed logits vs whole-sequence calls on 1 prefixes" in proc.stdout


def test_stream_streams_the_main_job_and_refuses_a_model_that_cannot_stream(recall_run):
    ids = ",".join(str(1 + i % 11) for i in range(16))  # LENGTH = 16 ids, CHUNK_SIZE = 4
    proc = run_binary("stream", f"--model_dir={recall_run / 'run'}", ids, "--check", check=True)
    assert re.search(r"chunk +4 +steps +16 ", proc.stdout), proc.stdout
    assert float(re.search(r"max difference (\S+)", proc.stdout).group(1)) <= 1e-4
    from tlbkit import testing
    from tlbkit.streaming import Streamer
    from tlbkit_tasks.text import ByteTokenizer

    with pytest.raises(ValueError, match="the tokenizer ByteTokenizer does not stream: it lacks stream_steps"):
        Streamer(testing.small_classifier(ByteTokenizer(16, max_length=8)))


def test_eval_advises_only_splits_the_run_has(series_run):
    root, env = series_run
    proc = run_binary("evaluate", f"--model_dir={root / 'run'}", env=env)  # default --split=validation
    stderr = one_error_line(proc)
    assert "no 'validation' split; it has train: use --split=train or --data." in stderr, stderr


def test_eval_files_of_two_splits_of_one_data_do_not_overwrite(series_run):
    root, env = series_run
    for split in ("test", "validation"):
        run_binary("evaluate", f"--model_dir={root / 'run'}", f"--data={root / 'Toy_TEST.ts'}", f"--split={split}",
                   env=env, check=True)
        result = json.load(open(root / "run" / f"eval_Toy_TEST.ts_{split}_last.json"))
        assert result["split"] == split and result["data"].endswith("Toy_TEST.ts")


def test_output_into_a_missing_folder_fails_before_inference(series_run, tmp_path):
    root, env = series_run
    for binary, extra in (("predict", [INLINE]), ("evaluate", [f"--data={root / 'Toy_TEST.ts'}"])):
        proc = run_binary(binary, f"--model_dir={root / 'run'}", f"--output={tmp_path / 'no' / 'x.json'}", *extra,
                          env=env)
        assert "does not exist; create it or choose another --output" in one_error_line(proc)
        assert "probability" not in proc.stdout  # nothing was predicted first


def test_ensemble_preset_card_is_true_and_its_commands_resolve(series_run, tmp_path):
    root, env = series_run
    preset = tmp_path / "presets" / "toy_ens"
    run_binary("export", f"--model_dir={root / 'run'}", f"--output={preset}", env=env, check=True)
    card = open(preset / "README.md").read()
    assert "Ensemble of 2 TLB classifiers (2 classes)" in card and "TLB classifier (" not in card
    assert "| validation accuracy | – (no validation split) |" in card and "| validation data | none |" in card
    commands = re.findall(r"^(tlbkit-\w+) (.*)$", card.split("## Use")[1], flags=re.M)
    assert [c[0] for c in commands] == ["tlbkit-predict", "tlbkit-eval"]
    module = {"tlbkit-predict": "predict", "tlbkit-eval": "evaluate"}
    for binary, args in commands:
        args = args.replace("path/to/", f"{preset.parent}/").replace("INPUT...", INLINE).replace(
            "LABELLED_DATA", str(root / "Toy_TEST.ts")).split()
        run_binary(module[binary], *args, env=env, check=True)
    snippet = re.search(r"```python\n(.*?)```", card.split("## Use")[1], flags=re.S).group(1)
    loading = [line for line in snippet.splitlines() if line.startswith(("import ", "from ", "model = "))]
    assert loading, snippet  # the lines that need no data of the user's: import and load
    snippet = "\n".join(loading)
    proc = subprocess.run([sys.executable, "-c", snippet.replace("path/to/", f"{preset.parent}/")
                           + "\nprint(type(model).__name__)"], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, **env, PYTHONPATH=ROOT), cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("Ensemble"), proc.stderr[-2000:]


def test_best_without_an_epoch_validated_is_not_called_missing_validation(recall_run):
    proc = run_binary("evaluate", f"--model_dir={recall_run / 'run'}", "--checkpoint=best")
    stderr = one_error_line(proc)
    assert "has a validation split but validated no epoch" in stderr and "no validation split" not in stderr


def test_a_best_only_preset_is_used_without_checkpoint_flag(tmp_path, shared_recall_run):
    run = shared_recall_run
    preset = tmp_path / "best_only"
    run_binary("export", f"--model_dir={run}", f"--output={preset}", "--checkpoint=best", check=True)
    ids = ",".join(["1"] * 16)
    proc = run_binary("predict", f"--preset={preset}", ids, check=True)
    assert re.search(r"^1,1,1.*\s\d\s", proc.stdout, flags=re.M), proc.stdout
    proc = run_binary("predict", f"--preset={preset}", "--checkpoint=last", ids)
    assert "holding only its 'best' model; drop --checkpoint=last" in one_error_line(proc)


def _sigint_default():
    """Restores SIGINT's default action in a child. A command started in the background by a non-interactive
    shell (`pytest ... &`, as a CI script may) inherits SIGINT ignored, and Python keeps it ignored, so Ctrl-C
    is rightly not seen; the run under test must be one that a user's Ctrl-C reaches."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_says_interrupted_and_how_to_resume(tmp_path):
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "tlbkit.bin.train", "--gin_file=recall_cpu.gin",
                             f"--model_dir={run}", *tiny_params("train.epochs = 50")], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_default)
    # Ctrl-C once the first epoch is done (resume.json written), in the training loop.
    deadline = time.time() + 300
    while not (run / "resume.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "tlbkit-train: interrupted; rerun to resume" in stderr, stderr[-2000:]


def test_an_error_inside_a_traced_call_is_summarised_by_its_cause():
    from tlbkit.bin import cli

    # What tf.function raises when a layer's call fails inside predict (seen from tlbkit-predict).
    text = ("in user code:\n\n    File \"trainer.py\", line 5, in predict_function  *\n        return step(data)\n\n"
            "    ValueError: Exception encountered when calling SeriesPatchTokenizer.call().\n    \n"
            "    a series of 150 steps is longer than the 39 steps the model was built for; bind max_length.\n    \n"
            "    Arguments received by SeriesPatchTokenizer.call():\n      values=tf.Tensor(shape=(1, 150, 1))\n")
    assert cli.error_summary(ValueError(text)) == (
        "a series of 150 steps is longer than the 39 steps the model was built for; bind max_length.")
    assert cli.error_summary(ValueError("plain message\nmore")) == "plain message"
