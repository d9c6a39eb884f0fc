"""Every user error of the binaries exits non-zero with one or two lines naming the problem and the fix."""

import pytest

from binaries import run_binary, tiny_params


def check_error(proc, *needles):
    assert proc.returncode == 2, proc.stdout[-1500:] + proc.stderr[-1500:]
    lines = [l for l in proc.stderr.strip().splitlines() if l.startswith("train.py") or "error:" in l]
    assert 1 <= len(lines) <= 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--plugin=no_such_plugin_module"], ["Cannot import plugin module 'no_such_plugin_module'"]),
        (["--gin_param=models.classifier.encoder = @encoders.tlbx()"],
         ["unknown encoder 'encoders.tlbx'", "encoders.lstm, encoders.tlb, encoders.transformer"]),
        (["--gin_param=train.epochs == 3"], ["gin config error"]),
        (["--gin_file=does_not_exist.gin"], ["config file 'does_not_exist.gin' not found", "--gin_search_path"]),
        (["--gin_param=datasets.long_range_recall.num_train = 0"], ["'train' split is empty"]),
        (["--gin_param=tokenizers.embedding.dim = 8"], ["expects tokens of width dim=16"]),
        (["--gin_param=NUM_LAYERS = 2", "--gin_param=cells.tlb.r = 7"], ["`r` must be between 1 and 2"]),
    ],
)
def test_user_errors(tmp_path, args, needles):
    proc = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={tmp_path / 'run'}",
                      *tiny_params(), *args)
    check_error(proc, *needles)


def test_missing_required_dataset(tmp_path):
    proc = run_binary("train", "--gin_file=base.gin", f"--model_dir={tmp_path / 'run'}")
    check_error(proc, "DATASET")


def test_model_dir_not_writable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={blocker / 'run'}", *tiny_params())
    check_error(proc, "is not writable", "--model_dir")


def test_traceback_flag_shows_traceback(tmp_path):
    proc = run_binary("train", "--gin_file=recall_cpu.gin", f"--model_dir={tmp_path / 'run'}", "--traceback",
                      *tiny_params("cells.tlb.r = 7"))
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_eval_without_run(tmp_path):
    proc = run_binary("evaluate", f"--model_dir={tmp_path}")
    assert proc.returncode == 2 and "config.gin not found" in proc.stderr


# === Issue 29: defects met on the command line ===
def test_an_argument_starting_with_a_minus_sign_is_an_argument():
    from absl import flags

    from tlbkit.bin import cli, predict

    cli.define_trained_run_flags()
    predict.define_flags()
    argv = ["tlbkit-predict", "--model_dir", "runs/a", "-0.566,-0.1,0.3", "--checkpoint=last", "-", "-1e-3", "--", "x"]
    assert cli.positional_numbers_last(argv) == [
        "tlbkit-predict", "--model_dir", "runs/a", "--checkpoint=last", "--", "-0.566,-0.1,0.3", "-", "-1e-3", "x"]
    assert cli.positional_numbers_last(["p", "--model_dir=a", "1,2"]) == ["p", "--model_dir=a", "1,2"]
    assert flags.FLAGS(cli.positional_numbers_last(argv))[1:] == ["-0.566,-0.1,0.3", "-", "-1e-3", "x"]


def test_invalid_utf8_on_standard_input_names_the_line():
    import io

    from tlbkit.bin import cli, predict

    assert predict.read_arguments(["a", "-"], io.BytesIO(b"1,2\n\n3,4\r\n")) == ["a", "1,2", "3,4"]
    with pytest.raises(cli.UsageError, match=r"standard input, line 2: byte 0xff at position 1 is not UTF-8"):
        predict.read_arguments(["-"], io.BytesIO(b"1,2\n3\xff,4\n"))


def test_a_label_after_classlabel_false_names_the_header(tmp_path):
    from tlbkit_tasks.timeseries.ts_format import TSFormatError, parse_ts

    path = tmp_path / "x.ts"
    path.write_text("@problemName Toy\n@univariate true\n@classLabel false\n@data\n1,2,3:up\n")
    with pytest.raises(TSFormatError, match=r"x.ts:5: the line ends in 'up', a class label, but the header says "
                                            r"@classLabel false: declare the labels with @classLabel true"):
        parse_ts(str(path))
