"""Series as users hold them: the UCR archive's .tsv (folder, zip), .arff, .csv, NumPy arrays, and the
TLBClassifier estimator trained on arrays (made-up sets; no shared data needed)."""

import json
import os
import zipfile

import gin
import numpy as np
import pytest

from binaries import run_binary
from tlbkit_tasks.timeseries import TLBClassifier, TSFormatError
from tlbkit_tasks.timeseries import archive, formats
from tlbkit_tasks.timeseries.ucr import ucr

ARFF_UNIVARIATE = """% a comment
@relation Toy
@attribute t1 numeric
@attribute t2 numeric
@attribute t3 numeric
@attribute target {up,down}
@data
0.1,0.2,0.3,up
0.3,?,0.1,down
"""

ARFF_MULTIVARIATE = """@relation Toy
@attribute series relational
  @attribute t1 numeric
  @attribute t2 numeric
@end series
@attribute class {a,b}
@data
'1,2\\n3,4',a
'5,6\\n7,?',b
"""


def toy_rows(n, seed, length=(20, 40)):
    """(label, values) rows of a learnable set: rising vs falling lines with noise, lengths varying."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        steps = int(rng.integers(*length))
        slope = 1.0 if i % 2 else -1.0
        rows.append(("1" if i % 2 else "2", slope * np.linspace(0, 1, steps) + 0.1 * rng.normal(size=steps)))
    return rows


def write_tsv(path, rows, pad_to=None):
    """The archive's layout: label first, tab-separated; with `pad_to`, shorter rows end in NaN cells."""
    lines = []
    for label, values in rows:
        cells = [f"{v:.4f}" for v in values] + ["NaN"] * ((pad_to or 0) - len(values))
        lines.append("\t".join([label] + cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def write_archive(root, name="Toy", train=24, test=12):
    """`root/UCRArchive_2018/<name>/<name>_{TRAIN,TEST}.tsv`, as the UCR 2018 download."""
    folder = root / "UCRArchive_2018" / name
    write_tsv(folder / f"{name}_TRAIN.tsv", toy_rows(train, 0))
    write_tsv(folder / f"{name}_TEST.tsv", toy_rows(test, 1), pad_to=40)
    return folder


# === Formats ===
def test_tsv_ragged_rows_trailing_nan_missing_values_and_labels(tmp_path):
    path = tmp_path / "Toy_TRAIN.tsv"
    path.write_text("1.0\t0.5\t0.6\t0.7\n-1\t0.1\tNaN\t0.3\tNaN\tNaN\n1\t1\t2\n")
    data = formats.read_labelled(str(path))
    assert data.labels == ["1", "-1", "1"]  # 1.0 and 1 are one class
    assert [s.shape for s in data.series] == [(3, 1), (3, 1), (2, 1)]  # trailing NaN: a shorter series
    assert np.isnan(data.series[1][1, 0]) and data.series[1][2, 0] == pytest.approx(0.3)  # inner NaN: missing
    path.write_text("1\t0.5\tabc\n")
    with pytest.raises(TSFormatError, match=r"Toy_TRAIN.tsv:1: not a number: 'abc'"):
        formats.read_labelled(str(path))


def test_arff_univariate_and_multivariate():
    uni = formats.parse_arff(text=ARFF_UNIVARIATE)
    assert uni.labels == ["up", "down"] and uni.class_labels == ["up", "down"]
    assert uni.series[0][:, 0].tolist() == pytest.approx([0.1, 0.2, 0.3]) and np.isnan(uni.series[1][1, 0])
    multi = formats.parse_arff(text=ARFF_MULTIVARIATE)
    assert multi.series[0].shape == (2, 2) and multi.series[0].tolist() == [[1, 3], [2, 4]]  # (T, C)
    assert multi.labels == ["a", "b"] and np.isnan(multi.series[1][1, 1])
    with pytest.raises(TSFormatError, match="not nominal"):
        formats.parse_arff(text=ARFF_UNIVARIATE.replace("{up,down}", "numeric"))
    with pytest.raises(TSFormatError, match=r"<text>:8: 3 values, but 4 attributes"):
        formats.parse_arff(text=ARFF_UNIVARIATE.replace("0.1,0.2,0.3,up", "0.1,0.2,up"))


def test_csv_label_column_by_header_first_column_or_name(tmp_path):
    with_header = formats.parse_csv(text="t1,t2,label\n0.1,0.2,a\n0.3,0.4,b\n")
    assert with_header.labels == ["a", "b"] and with_header.series[1][:, 0].tolist() == pytest.approx([0.3, 0.4])
    first = formats.parse_csv(text="1,0.1,0.2,0.3\n2,0.3,0.4,\n")
    assert first.labels == ["1", "2"] and [len(s) for s in first.series] == [3, 2]
    named = formats.parse_csv(text="x,y,kind\n1,2,cat\n", label_column="kind")
    assert named.labels == ["cat"]
    with pytest.raises(TSFormatError, match="label_column='nope'"):
        formats.parse_csv(text="x,y\n1,2\n", label_column="nope")
    with pytest.raises(ValueError, match=r"unknown series file format '\.xlsx'"):
        formats.read_labelled(str(tmp_path / "a.xlsx"))


def test_npz_round_trip_of_ragged_and_aeon_layout_arrays(tmp_path):
    ragged = [np.arange(5, dtype="float32"), np.arange(3, dtype="float32")]
    formats.write_npz(str(tmp_path / "r.npz"), ragged, [1, 2], classes=[2, 1])
    data = formats.read_labelled(str(tmp_path / "r.npz"))
    assert [s[:, 0].tolist() for s in data.series] == [[0, 1, 2, 3, 4], [0, 1, 2]]
    assert data.labels == ["1", "2"] and data.class_labels == ["2", "1"]
    X = np.random.default_rng(0).normal(size=(4, 2, 7)).astype("float32")  # (n, channels, length)
    np.savez(tmp_path / "a.npz", X=X, y=np.array(["a", "b", "a", "b"]))
    data = formats.read_labelled(str(tmp_path / "a.npz"))
    assert data.series[0].shape == (7, 2) and np.allclose(data.series[0], X[0].T)
    with pytest.raises(ValueError, match=r"\(n, channels, length\) or \(n, length\); received shape \(4,\)"):
        formats.series_list(np.zeros(4))


# One small model for a few steps: what is tested is reading, not learning.
SMALL = ["MODEL = @models.classifier", "train.batch_size = 8", "train.epochs = 1", "train.steps_per_epoch = 2",
         "train.warmup_epochs = 0.0", "DIM = 16", "NUM_LAYERS = 1"]


# === The archive by name ===
def test_archive_found_from_parent_folder_itself_a_zip_and_a_folder_of_zips(tmp_path, monkeypatch):
    monkeypatch.setenv("TLBKIT_CACHE", str(tmp_path / "cache"))
    write_archive(tmp_path / "download")
    expected = str(tmp_path / "download" / "UCRArchive_2018" / "Toy" / "Toy_TRAIN.tsv")
    assert archive.locate("Toy", str(tmp_path / "download"))[0] == expected
    assert archive.locate("Toy", str(tmp_path / "download" / "UCRArchive_2018"))[0] == expected
    zipped = tmp_path / "zips" / "UCRArchive_2018.zip"
    zipped.parent.mkdir()
    with zipfile.ZipFile(zipped, "w") as z:
        for f in (tmp_path / "download").rglob("*.tsv"):
            z.write(f, f.relative_to(tmp_path / "download"))
    for where in (zipped, zipped.parent):
        train, test = archive.locate("Toy", str(where))
        assert train.endswith("Toy_TRAIN.tsv") and test.endswith("Toy_TEST.tsv") and str(tmp_path / "cache") in train
        assert open(train).read() == open(expected).read()
    spec = ucr("Toy", data_dir=str(zipped), validation_fraction=0.0).load()
    assert spec.class_names == ["1", "2"] and spec.num_train_examples == 24 and len(list(spec.test)) == 12
    with pytest.raises(FileNotFoundError, match=r"UCRArchive_2018/.*inside \.zip files.*--data_dir"):
        archive.locate("Missing", str(tmp_path / "download"))


def test_archive_download_trains_evaluates_and_predicts_by_the_documented_commands(tmp_path):
    """docs/usage.md, 'Your own data' (time series): the archive's zip as --data_dir's content, a set by name;
    the test file scored without the training file; a series predicted from text and from a .tsv file."""
    download = tmp_path / "download"
    write_archive(download)
    with zipfile.ZipFile(tmp_path / "UCRArchive_2018.zip", "w") as z:
        for f in download.rglob("*.tsv"):
            z.write(f, f.relative_to(download))
    run = tmp_path / "run"
    run_binary("train", "--gin_file=ucr.gin", "--gin_param=UCR_NAME = 'Toy'", f"--data_dir={tmp_path}",
               f"--model_dir={run}", *[f"--gin_param={p}" for p in SMALL],
               env={"TLBKIT_CACHE": str(tmp_path / "cache")}, check=True)
    metrics = json.load(open(run / "metrics.json"))
    assert metrics["test_examples"] == 12 and 0 <= metrics["test_accuracy"] <= 1
    test_file = download / "UCRArchive_2018" / "Toy" / "Toy_TEST.tsv"
    os.remove(download / "UCRArchive_2018" / "Toy" / "Toy_TRAIN.tsv")
    proc = run_binary("evaluate", f"--model_dir={run}", f"--data={test_file}", check=True)
    scored = json.loads(proc.stdout.strip().splitlines()[-1])
    assert scored["examples"] == 12 and scored["accuracy"] == pytest.approx(metrics["test_accuracy"])
    proc = run_binary("predict", f"--model_dir={run}", "--", "-0.5,-0.3,0.1,0.4,0.9", check=True)
    assert proc.stdout.strip().splitlines()[-1].split()[1] in ("1", "2")


# === TLBClassifier ===
FAST = ["MODEL = @models.classifier", "train.batch_size = 16", "train.epochs = 3", "train.steps_per_epoch = 15",
        "train.warmup_epochs = 0.0", "DIM = 16", "NUM_LAYERS = 1"]


def toy_arrays(n, seed, channels=None):
    rows = toy_rows(n, seed, length=(30, 31))
    X = np.stack([values for _, values in rows]).astype("float32")
    y = np.array(["rising" if label == "1" else "falling" for label, _ in rows])
    return (X if channels is None else np.repeat(X[:, None, :], channels, axis=1)), y


def test_tlb_classifier_fits_predicts_scores_saves_and_loads(tmp_path):
    X, y = toy_arrays(40, 0, channels=2)  # aeon's (n, channels, length)
    X_test, y_test = toy_arrays(20, 1, channels=2)
    clf = TLBClassifier(gin_params=FAST, model_dir=str(tmp_path / "run"), verbose=False).fit(X, y)
    assert clf.classes_.tolist() == ["falling", "rising"] and clf.n_channels_ == 2 and clf.length_ == 30
    proba = clf.predict_proba(X_test)
    assert proba.shape == (20, 2) and np.allclose(proba.sum(1), 1.0)
    assert set(clf.predict(X_test)) <= {"falling", "rising"}
    assert clf.score(X_test, y_test) >= 0.9  # the slope is easy: far above chance (0.5)
    assert os.path.exists(tmp_path / "run" / "metrics.json") and os.path.exists(tmp_path / "run" / "config.gin")
    ragged = [x[:, :20] for x in X_test[:3]]  # shorter series of their own lengths
    assert clf.predict_proba(ragged).shape == (3, 2)
    saved = clf.save(str(tmp_path / "preset"))
    loaded = TLBClassifier.load(saved)
    np.testing.assert_allclose(loaded.predict_proba(X_test), proba, atol=1e-6)
    assert loaded.classes_.tolist() == clf.classes_.tolist()
    # The saved folder is a preset: tlbkit-predict reads it and names the same classes.
    proc = run_binary("predict", f"--model_dir={saved}", "--", ",".join(f"{v:.3f}" for v in X_test[0, 0]) + ":"
                      + ",".join(f"{v:.3f}" for v in X_test[0, 1]), check=True)
    assert proc.stdout.strip().splitlines()[-1].split()[1] == clf.predict(X_test[:1])[0]


def test_tlb_classifier_univariate_integer_labels_and_clear_errors(tmp_path):
    X, y = toy_arrays(30, 2)  # (n, length)
    y = np.where(y == "rising", 7, 3)
    with pytest.raises(RuntimeError, match="not fitted"):
        TLBClassifier().predict(X)
    with pytest.raises(ValueError, match="one label per series: 30 series"):
        TLBClassifier(gin_params=FAST).fit(X, y[:5])
    with pytest.raises(ValueError, match="single class"):
        TLBClassifier(gin_params=FAST).fit(X, np.zeros(30))
    clf = TLBClassifier(gin_params=FAST, verbose=False).fit(X, y)
    assert clf.classes_.tolist() == [3, 7] and clf.predict(X).dtype == y.dtype
    # fit left no gin binding behind: a later tlbkit.train.train call in this process would inherit it
    # (FAST's train.steps_per_epoch = 15 once changed another test's run).
    with pytest.raises(ValueError):
        gin.query_parameter("train.steps_per_epoch")
    assert clf.get_params()["gin_params"] == FAST and clf.set_params(seed=3).seed == 3
    with pytest.raises(ValueError, match="2 channels, but the model reads 1"):
        clf.predict(np.zeros((2, 2, 30)))


# === The convolutional series tokenizer ===
def test_conv_tokenizer_config_saving_and_exact_streaming(tmp_path):
    from tlbkit import testing
    from tlbkit_tasks.timeseries import SeriesConvTokenizer

    def make():
        return SeriesConvTokenizer(dim=16, patch_length=3, normalize="dataset", differences=True, conv_width=8,
                                   kernel_sizes=(5, 3), dilations=(1, 2), position_period=4)

    testing.run_config_test(make())
    assert make().receptive_field == 1 + 4 + 2 * 2
    rng = np.random.default_rng(0)
    inputs = {"values": rng.normal(size=(2, 36, 2)).astype("float32"), "mask": np.ones((2, 36), bool)}
    model = testing.small_classifier(make(), chunk_size=4)
    model(inputs)
    model.tokenizer.adapt([inputs])
    testing.run_saving_test(model, inputs, tmp_path)
    # 36 steps = 3 chunks of 12 (4 patches of 3): the carried receptive field makes every chunk exact ...
    assert testing.run_streaming_test(model, inputs) <= 1e-4
    # ... and without the carry (each chunk's features from the chunk alone) the check catches it.
    model.tokenizer.stream_tokens = lambda v, m, c, o: (model.tokenizer.embed(v, m, o), c)
    with pytest.raises(AssertionError, match="streamed logits differ"):
        testing.run_streaming_test(model, inputs)
    with pytest.raises(ValueError, match="one value per kernel size"):
        SeriesConvTokenizer(dim=8, kernel_sizes=(3, 3), dilations=(1,))


def test_synthetic_set_for_wall_time_reads_as_an_archive_set(tmp_path):
    """`bench/ucr_synthetic.py` (docs/results.md times the worst case with it) writes the archive's layout,
    seeded: the plugin reads it by name with the asked counts, length and classes."""
    import subprocess
    import sys

    from binaries import ROOT

    script = os.path.join(ROOT, "bench", "ucr_synthetic.py")
    args = [sys.executable, script, f"--root={tmp_path}", "--name=Tiny", "--train=30", "--test=12", "--length=40",
            "--classes=3", "--seed=1"]
    subprocess.run(args, check=True, capture_output=True)
    spec = ucr("Tiny", data_dir=str(tmp_path), validation_fraction=0.0).load()
    assert spec.class_names == ["1", "2", "3"] and spec.num_train_examples == 30 and len(list(spec.test)) == 12
    first = open(tmp_path / "UCRArchive_2018" / "Tiny" / "Tiny_TRAIN.tsv").readline().split("\t")
    assert len(first) == 41  # the label, then 40 values
    again = tmp_path / "again"
    subprocess.run(args[:2] + [f"--root={again}"] + args[3:], check=True, capture_output=True)
    assert (again / "UCRArchive_2018/Tiny/Tiny_TEST.tsv").read_text() == \
        (tmp_path / "UCRArchive_2018/Tiny/Tiny_TEST.tsv").read_text()
    bad = subprocess.run(args + ["--classes=1"], capture_output=True, text=True)
    assert bad.returncode != 0 and "flag --classes=1: 1 is not integer >= 2" in bad.stderr
