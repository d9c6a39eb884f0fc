"""Time-series plugins: .ts parsing, missing values, UCR datasets, tokenizers, CSV predict, streaming demo."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from binaries import ROOT, assert_eval_reproduces_metrics, run_binary
from layer_test_case import assert_model_reloads
from tlbkit_tasks.timeseries import (SeriesConvTokenizer, SeriesLinearTokenizer, SeriesNoiseViews,
                                    SeriesPatchTokenizer, TSFormatError, parse_ts, ts_files, ucr)
from tlbkit_tasks.timeseries.series_ops import masked_normalize, with_differences
from tlbkit_tasks.timeseries.archive import aeon_data_dir
from tlbkit_tasks.timeseries.augment import auto_strength, class_separation, make_train_map
from tlbkit_tasks.timeseries.inputs import read_csv_series
from tlbkit_tasks.timeseries.series_arrays import handle_missing
from tlbkit import pipeline
from tlbkit.layers import ClassificationHead, TLBCell, TLBEncoder
from tlbkit.models import SequenceClassifier

needs_aeon = pytest.mark.skipif(aeon_data_dir() is None, reason="aeon not installed (pip install --no-deps aeon)")

MULTIVARIATE = """# a comment
% another
@problemName Toy
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true walk run
@data
1,2,3:4,5,6:walk
1.5,?,2.5,3.5:0,0,0,0:run
7,8:9:run
"""


def np_(x):
    return keras.ops.convert_to_numpy(x)


# === .ts parsing ===
def test_parse_multivariate_variable_length_and_missing():
    data = parse_ts(text=MULTIVARIATE)
    assert data.problem_name == "Toy" and data.class_labels == ["walk", "run"]
    assert data.labels == ["walk", "run", "run"] and data.num_channels == 2
    assert [s.shape for s in data.series] == [(3, 2), (4, 2), (2, 2)]
    np.testing.assert_array_equal(data.series[0], [[1, 4], [2, 5], [3, 6]])
    assert np.isnan(data.series[1][1, 0]) and np.isnan(data.series[2][1, 1])  # '?' and a short dimension
    assert data.has_missing


def test_parse_univariate_with_timestamps():
    text = "@problemName T\n@timeStamps true\n@univariate true\n@classLabel true a b\n@data\n" \
           "(2007-01-01 00:00:00,1.5),(2007-01-01 00:01:00,2.5):a\n(0,3),(1,?):b\n"
    data = parse_ts(text=text)
    np.testing.assert_array_equal(data.series[0][:, 0], [1.5, 2.5])
    assert np.isnan(data.series[1][1, 0]) and data.labels == ["a", "b"]


@pytest.mark.parametrize("text, message", [
    ("@problemName X\n1,2:a\n", "expected an @header"),
    ("@classLabel true a\n", "no @data"),
    ("@dimensions 3\n@classLabel true a\n@data\n1,2:3,4:a\n", "@dimensions 3"),
    ("@classLabel true a b\n@data\n1,2:c\n", "not declared"),
    ("@equalLength true\n@seriesLength 3\n@classLabel true a\n@data\n1,2,3:a\n1,2:a\n", "case 2 has 2"),
    ("@classLabel true a\n@data\n1,x,3:a\n", "not a number"),
    ("@targetLabel true\n@data\n1,2:0.5\n", "regression"),
    ("@classLabel true a\n@data\n1,2:a\n1,2:3,4:a\n", "2 dimensions"),
])
def test_parse_errors_name_the_line(text, message):
    with pytest.raises(TSFormatError, match=message):
        parse_ts(text=text)


def test_missing_value_policies():
    series = np.array([[1.0, 0.0], [np.nan, 1.0], [3.0, np.nan]], "float32")
    with pytest.raises(ValueError, match="missing='mask', 'interpolate' or 'zero'"):
        handle_missing(series, "error", "x.ts")
    values, mask = handle_missing(series, "mask", "x.ts")
    np.testing.assert_array_equal(mask, [True, False, False])
    assert not np.isnan(values).any()
    values, mask = handle_missing(series, "interpolate", "x.ts")
    np.testing.assert_allclose(values, [[1, 0], [2, 1], [3, 1]])
    assert mask.all()
    values, _ = handle_missing(series, "zero", "x.ts")
    assert values[1, 0] == 0 and values[2, 1] == 0


def test_window_slicing_shifts_and_stretches_each_series_and_keeps_its_mask():
    import tensorflow as tf

    steps = np.arange(20, dtype="float32")
    values = np.stack([2.0 * steps + 1.0, -steps], axis=1)  # two linear channels
    mask = np.ones(20, bool)
    mask[5] = False  # a missing step (missing='mask')
    train_map = make_train_map("slice_jitter_scale", seed=3, scale=0.0, noise=0.0)
    ds = tf.data.Dataset.from_tensors(({"values": values, "mask": mask}, 0)).repeat(8).map(train_map)
    starts, slopes = [], []
    for inputs, _ in ds:  # the map runs in graph mode, at the series' own length
        out, out_mask = inputs["values"].numpy(), inputs["mask"].numpy()
        assert out.shape == (20, 2) and out_mask.shape == (20,)
        assert 1 <= (~out_mask).sum() <= 3  # the missing step, stretched over its neighbours
        kept = np.flatnonzero(out_mask)
        fit = np.polyfit(kept, out[kept, 0], 1)
        slope = fit[0]
        # a linear series stays linear: a window of 90-100 % of it, starting inside it
        np.testing.assert_allclose(out[kept, 0], np.polyval(fit, kept), atol=1e-4)
        np.testing.assert_allclose(out[kept, 1], -(out[kept, 0] - 1.0) / 2.0, atol=1e-4)
        assert 0.9 * 2.0 - 1e-4 <= slope <= 2.0 + 1e-4
        start = out[0, 0] if out_mask[0] else out[kept[0], 0] - slope * kept[0]
        assert 1.0 - 1e-4 <= start and start + 19 * slope <= 39.0 + 1e-4
        np.testing.assert_array_equal(out[~out_mask], 0.0)  # masked steps are zeroed
        starts.append(start)
        slopes.append(slope)
    assert np.ptp(starts) > 0.1 and np.ptp(slopes) > 0.01  # a new window for every example
    # jitter_scale alone leaves where the series sits alone
    inputs, _ = make_train_map("jitter_scale", seed=3, scale=0.0, noise=0.0)({"values": values, "mask": mask}, 0)
    np.testing.assert_allclose(inputs["values"].numpy()[mask], values[mask], atol=1e-5)
    with pytest.raises(ValueError, match="slice_jitter_scale"):
        make_train_map("slice")


def test_time_warp_moves_parts_of_a_series_and_keeps_its_ends_and_mask():
    import tensorflow as tf

    from tlbkit_tasks.timeseries.augment import warp_time

    steps = np.arange(30, dtype="float32")
    values = np.stack([steps, 10.0 - steps], axis=1)  # a ramp: the output is where each step was read
    mask = np.ones(30, bool)
    same, same_mask = warp_time(values, mask, tf.constant([1.0, 1.0, 1.0, 1.0]))
    np.testing.assert_allclose(same.numpy(), values, atol=1e-4)
    assert same_mask.numpy().all()
    fast_then_slow, _ = warp_time(values, mask, tf.constant([2.0, 2.0, 0.5, 0.5]))
    read = fast_then_slow.numpy()[:, 0]
    assert read[0] == 0.0 and abs(read[-1] - 29.0) < 1e-3  # the ends stay
    assert np.all(np.diff(read) > 0)  # time still runs forward
    assert read[10] > 10.0 + 2.0 and np.diff(read)[-1] < 1.0  # early steps read further on; the end slower
    np.testing.assert_allclose(fast_then_slow.numpy()[:, 1], 10.0 - read, atol=1e-4)  # channels move together
    mask[12] = False  # a missing step is masked where it is read from
    _, warped_mask = warp_time(values, mask, tf.constant([2.0, 2.0, 0.5, 0.5]))
    assert 1 <= (~warped_mask.numpy()).sum() <= 2
    # In the training map: at full strength the warp moves the ramp; the ends and the length stay.
    train_map = make_train_map("warp_jitter_scale", seed=1, scale=0.0, noise=0.0)
    out = [train_map({"values": values, "mask": np.ones(30, bool)}, 0, example_seed=tf.constant([i, 7]))[0]["values"]
           .numpy()[:, 0] for i in range(4)]
    assert all(o.shape == (30,) and abs(o[0]) < 1e-4 and abs(o[-1] - 29.0) < 1e-3 for o in out)
    assert np.ptp([o[15] for o in out]) > 0.5  # each example its own warp
    flat = make_train_map("warp_jitter_scale", seed=1, scale=0.0, noise=0.0, strength=0.0)
    np.testing.assert_allclose(flat({"values": values, "mask": np.ones(30, bool)}, 0)[0]["values"].numpy(), values,
                               atol=1e-4)  # strength 0: no warp


def test_training_draws_are_the_same_for_the_same_seed_under_the_parallel_map():
    """Each example's perturbation comes from its own seed (`pipeline.batched` gives one per example, the
    map draws statelessly from it): two pipelines with one seed draw the same for every example in every
    epoch, although the map runs on several threads; another seed, or the next epoch, draws anew."""
    import tensorflow as tf

    from tlbkit.data import DataSpec

    rng = np.random.default_rng(0)
    values = rng.normal(size=(64, 24, 2)).astype("float32")
    mask = np.ones((64, 24), bool)
    train = tf.data.Dataset.from_tensor_slices(({"values": values, "mask": mask}, np.arange(64)))

    def epochs(seed, count=2):
        spec = DataSpec(train=train, num_classes=64, train_map=make_train_map("slice_jitter_scale", seed=0))
        assert pipeline.takes_example_seed(spec.train_map)
        ds = pipeline.batched(spec, "train", 16, training=True, seed=seed)
        out = []
        for _ in range(count):  # one pass of the dataset is one epoch, reshuffled
            drawn = {}
            for inputs, ids in ds:
                for i, series in zip(np_(ids), np_(inputs["values"])):
                    drawn[int(i)] = series
            assert sorted(drawn) == list(range(64))
            out.append(np.stack([drawn[i] for i in range(64)]))
        return out

    first, again, other = epochs(5), epochs(5), epochs(6)
    for epoch in range(2):
        np.testing.assert_array_equal(first[epoch], again[epoch])
    assert not np.any(np.all(first[0] == other[0], axis=(1, 2)))  # another seed: other draws for every series
    assert not np.any(np.all(first[0] == first[1], axis=(1, 2)))  # a new epoch: new draws
    assert np.all(np.abs(first[0] - values).max(axis=(1, 2)) > 0)  # they perturb every series


def test_class_separation_is_the_median_distance_to_the_nearest_other_class_in_a_series_sds():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(9, 12, 2)) * rng.uniform(0.5, 3.0, size=(9, 1, 2)) + rng.normal(size=(9, 1, 2))
    mask = np.ones((9, 12), bool)
    mask[3, 8:] = False  # a shorter series: padding counts as zeros
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    x = np.where(mask[..., None], values, 0.0)
    nearest = []
    for i in range(9):  # the definition, one pair at a time
        real = x[i][mask[i]]
        sd = real.std(0) + 1e-8
        nearest.append(min(np.sqrt(np.mean(((x[i] - x[j]) / sd) ** 2)) for j in range(9) if labels[j] != labels[i]))
    assert class_separation(values, mask, labels) == pytest.approx(np.median(nearest), rel=1e-9)
    assert class_separation(values, mask, np.zeros(9, int)) == np.inf  # one class: nothing to keep apart


def test_auto_strength_weakens_augmentation_only_where_classes_lie_closer_than_it_perturbs():
    steps = np.linspace(0, 6, 50)
    shapes = np.stack([np.sin(steps), np.sin(steps) + 0.01 * np.cos(3 * steps)])  # two spectra-like classes
    labels = np.repeat([0, 1], 5)
    rng = np.random.default_rng(1)
    near = np.repeat(shapes, 5, 0)[..., None] + 0.001 * rng.normal(size=(10, 50, 1))
    far = np.stack([np.sin(steps), np.sign(np.sin(steps))]).repeat(5, 0)[..., None]
    mask = np.ones((10, 50), bool)
    fine, coarse = class_separation(near, mask, labels), class_separation(far, mask, labels)
    assert fine < 0.02 and auto_strength(fine) < 0.1
    assert auto_strength(coarse) == 1.0 and auto_strength(np.inf) == 1.0
    # The map at that strength moves a series far less than the other class is away.
    inputs = {"values": near[0].astype("float32"), "mask": mask[0]}

    def moved(strength):  # RMS change of the series by the map, over 8 example seeds (as the pipeline gives)
        train_map = make_train_map("jitter_scale", strength=strength)
        return [np.sqrt(np.mean((train_map(inputs, 0, example_seed=np.array([s, 0]))[0]["values"].numpy()
                                 - near[0]) ** 2)) for s in range(8)]

    # its typical size is at most half the distance (the rule: MARGIN), and no draw reaches the other class
    assert np.mean(moved(auto_strength(fine))) < fine / 2 and max(moved(auto_strength(fine))) < fine
    assert min(moved(1.0)) > fine  # at full strength the same series would land nearer the other class
    with pytest.raises(ValueError, match="augment_strength.*'auto' or a number in \\[0, 1\\]. Received: augment_strength=1.5"):
        make_train_map("jitter_scale", strength=1.5)


def test_auto_warp_is_weakened_on_spiky_series_and_left_whole_on_smooth_ones(tmp_path, capsys):
    from tlbkit_tasks.timeseries.augment import warp_displacement, warp_strength_from_data

    steps = np.arange(200)
    mask = np.ones((12, 200), bool)
    labels = np.repeat([0, 1], 6)
    rng = np.random.default_rng(0)
    # Spiky (ACSF1-like): a narrow spike every 10 steps; the classes differ by a small bump, less than a warp
    # moves a spike. Smooth: two sine waves of different frequency.
    spikes = (steps % 10 == 0).astype(float)
    spiky = np.stack([spikes + 0.3 * (i >= 6) * np.exp(-((steps - 100) / 20.0) ** 2) for i in range(12)])
    spiky = (spiky + 0.01 * rng.normal(size=spiky.shape))[..., None]
    smooth = np.stack([np.sin(steps / 15.0 * (1 + (i >= 6))) for i in range(12)])[..., None]
    for values, weakened in ((spiky, True), (smooth, False)):
        separation = class_separation(values, mask, labels)
        moved = warp_displacement(values, mask, 1.0)
        assert moved == warp_displacement(values, mask, 1.0) > 0  # seeded
        assert warp_displacement(values, mask, 0.3) < moved  # a weaker warp moves less
        strength, at_full = warp_strength_from_data(values, mask, 1.0, separation)
        assert at_full == moved
        if weakened:  # a full-strength warp moves a spike train farther than the other class is away
            assert moved > separation and 0 < strength < 1.0
            # the strongest warp within the margin: it moves series at most that far, a little more would not
            assert warp_displacement(values, mask, strength) <= separation
            assert warp_displacement(values, mask, min(1.0, strength * 1.05 + 0.002)) > separation
        else:
            assert moved < separation and strength == 1.0
    assert warp_strength_from_data(smooth, mask, 0.4, np.inf) == (0.4, warp_displacement(smooth, mask, 0.4))
    # warp_strength 0: the map jitters and scales but does not warp (the ends and the middle stay in place).
    inputs = {"values": spiky[0].astype("float32"), "mask": mask[0]}
    still = make_train_map("warp_jitter_scale", seed=1, scale=0.0, noise=0.0, warp_strength=0.0)(inputs, 0)[0]
    np.testing.assert_allclose(still["values"].numpy(), spiky[0], atol=1e-5)
    with pytest.raises(ValueError, match="warp_strength"):
        make_train_map("warp_jitter_scale", warp_strength="auto")
    # The dataset plugin chooses and says both strengths.
    write_ts(tmp_path / "Spiky_TRAIN.ts", [(spiky[i, :, 0], ("up", "down")[labels[i]]) for i in range(12)])
    ts_files(str(tmp_path / "Spiky_TRAIN.ts"), validation_fraction=0.0, augment="warp_jitter_scale",
             augment_strength="auto").load()
    said = capsys.readouterr().out
    warp = float(said.split("time warp at ")[1].split()[0])
    assert warp < 1.0 and "farther than the nearest other class" in said


def test_ts_files_auto_strength_is_chosen_from_the_training_file_and_said(tmp_path, capsys):
    steps = np.linspace(0, 6, 30)
    cases = [(np.sin(steps) + (0.01 * np.cos(3 * steps) if i % 2 else 0.0) + 0.001 * np.cos(i + steps), "up" if i % 2
              else "down") for i in range(12)]
    write_ts(tmp_path / "Toy_TRAIN.ts", cases)
    spec = ts_files(str(tmp_path / "Toy_TRAIN.ts"), validation_fraction=0.0, augment="jitter_scale",
                    augment_strength="auto").load()
    said = capsys.readouterr().out
    strength = float(said.split("augmentation (jitter_scale) at ")[1].split()[0])
    assert strength < 0.2 and "another class is" in said and "Toy_TRAIN.ts" in said
    values = next(iter(spec.split("train")))[0]["values"].numpy()
    out = spec.train_map({"values": values, "mask": np.ones(len(values), bool)}, 0)[0]["values"].numpy()
    assert 0 < np.sqrt(np.mean((out - values) ** 2)) < 0.01  # full strength moves it ~0.1 of its sd (~0.07)
    with pytest.raises(ValueError, match="augment_strength"):
        ts_files(str(tmp_path / "Toy_TRAIN.ts"), augment_strength="strong")


def test_noise_views_jitter_each_series_by_its_own_spread_the_same_way_every_time(tmp_path):
    from tlbkit import evaluate, saving

    rng = np.random.default_rng(0)
    values = (rng.normal(size=(3, 1100, 9)) * rng.uniform(0.5, 50.0, size=(3, 1, 9)) + 100.0).astype("float32")
    mask = np.ones((3, 1100), bool)
    mask[1, 700:] = False  # a shorter series: padding stays zero and counts in no statistic
    values[1, 700:] = 0.0
    views = SeriesNoiseViews(num_views=4, strength=0.5)
    out = [keras.ops.convert_to_numpy(v["values"]) for v in views({"values": values, "mask": mask})]
    assert len(out) == 4 and all(o.shape == values.shape for o in out)
    for o in out:  # each channel's scale varies a lot: the noise follows each series' own
        for i, real in enumerate((values[0], values[1, :700], values[2])):
            step = (o[i] - values[i])[: len(real)]
            np.testing.assert_allclose(step.std(0) / real.std(0), 0.05 * 0.5, rtol=0.2)  # 1,100 steps > table's 1,024
        np.testing.assert_array_equal(o[1, 700:], 0.0)
    assert np.abs(out[0] - out[1]).max() > 0  # different draws per view
    again = [keras.ops.convert_to_numpy(v["values"]) for v in SeriesNoiseViews.from_config(views.get_config())(
        {"values": values, "mask": mask})]
    for a, b in zip(out, again):
        np.testing.assert_array_equal(a, b)  # a table, not a random generator: the same noise every call
    # (B, T) univariate values stay (B, T); with the original as a view.
    flat = SeriesNoiseViews(num_views=2, include_original=True)(values[..., 0])
    assert [tuple(v.shape) for v in flat] == [(3, 1100)] * 3
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(flat[0]), values[..., 0])

    # In a classifier: the mean of the logits over the views at inference, one view in training, kept on reload.
    keras.utils.set_random_seed(0)
    cell = TLBCell(dim=16, num_heads=2, num_layers=1, r=1, num_latents=2, dropout=0.0, attention_dropout=0.0)
    model = SequenceClassifier(TLBEncoder(cell, chunk_size=4), ClassificationHead(3),
                               tokenizer=SeriesPatchTokenizer(16, patch_length=50, normalize="series"),
                               test_time_views=views)
    inputs = {"values": values[..., :2], "mask": mask}
    each = [keras.ops.convert_to_numpy(model.logits(v)) for v in views(inputs)]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(inputs)), np.mean(each, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(inputs, training=True)),
                               keras.ops.convert_to_numpy(model.logits(inputs, training=True)), rtol=1e-5, atol=1e-6)
    path = str(tmp_path / "views.keras")
    model.save(path)
    loaded = saving.load_model(path)
    assert isinstance(loaded.test_time_views, SeriesNoiseViews) and loaded.test_time_views.num_views == 4
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(inputs)), np.mean(each, 0), rtol=1e-4, atol=1e-5)
    assert evaluate.with_test_time_views(loaded, "none").test_time_views is None
    with pytest.raises(ValueError, match="num_views"):
        SeriesNoiseViews(num_views=0)
    with pytest.raises(ValueError, match="augment_strength"):
        SeriesNoiseViews(strength=2.0)


def test_noise_views_auto_strength_is_the_strength_training_used(tmp_path, capsys):
    """ucr.gin binds one AUGMENT_STRENGTH to the training jitter and to the views: with 'auto', the views'
    `adapt` (which tlbkit-train calls on the unaugmented training batches) must choose the strength the
    dataset plugin chose and printed, and the model must save it."""
    from tlbkit import saving

    steps = np.linspace(0, 6, 30)
    cases = [(np.sin(steps) + (0.02 * np.cos(3 * steps) if i % 2 else 0.0) + 0.001 * np.cos(i + steps)
              + (0.0 if i < 10 else np.r_[np.zeros(25), np.full(5, np.nan)]), "up" if i % 2 else "down")
             for i in range(14)]  # the last 4 are shorter (trailing missing values)
    write_ts(tmp_path / "Toy_TRAIN.ts", cases)
    spec = ts_files(str(tmp_path / "Toy_TRAIN.ts"), validation_fraction=0.0, augment="jitter_scale",
                    augment_strength="auto", missing="mask").load()
    said = float(capsys.readouterr().out.split("augmentation (jitter_scale) at ")[1].split()[0])
    views = SeriesNoiseViews(strength="auto")
    assert float(keras.ops.convert_to_numpy(views.strength_value)) == 1.0  # until adapted
    cell = TLBCell(dim=8, num_heads=2, num_layers=1, r=1, num_latents=2, dropout=0.0, attention_dropout=0.0)
    model = SequenceClassifier(TLBEncoder(cell, chunk_size=4), ClassificationHead(2),
                               tokenizer=SeriesPatchTokenizer(8, patch_length=5), test_time_views=views)
    assert model.needs_adapt
    batches = pipeline.batched(spec, "train", 4, training=False, cache=False)
    model.adapt(batches)  # as tlbkit-train does
    model(next(iter(batches))[0])
    chosen = float(keras.ops.convert_to_numpy(views.strength_value))
    assert 0.0 < chosen < 1.0 and f"{chosen:.3g}" == f"{said:.3g}"
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = saving.load_model(path)
    assert float(keras.ops.convert_to_numpy(loaded.test_time_views.strength_value)) == pytest.approx(chosen, rel=1e-6)
    with pytest.raises(ValueError, match="needs batches of \\(inputs, labels\\)"):
        SeriesNoiseViews(strength="auto").adapt([np.zeros((2, 30, 1), "float32")])


@needs_aeon
def test_parse_bundled_gunpoint():
    data = parse_ts(os.path.join(aeon_data_dir(), "GunPoint", "GunPoint_TRAIN.ts"))
    assert len(data.series) == 50 and {s.shape for s in data.series} == {(150, 1)}
    assert data.class_labels == ["1", "2"] and not data.has_missing


# === Datasets ===
def write_toy_files(tmp_path):
    train = tmp_path / "Toy_TRAIN.ts"
    train.write_text(MULTIVARIATE)
    test = tmp_path / "Toy_TEST.ts"
    test.write_text(MULTIVARIATE.replace("1,2,3:4,5,6:walk", "1,2,3,4,5:1,2,3,4,5:walk"))
    return train, test


def test_ts_files_dataset_pads_batches_and_maps_labels(tmp_path, capsys):
    train, test = write_toy_files(tmp_path)
    with pytest.raises(ValueError, match="missing values"):
        ts_files(str(train), str(test)).load()
    spec = ts_files(str(train), str(test), missing="mask", validation_fraction=0.0).load()
    out = capsys.readouterr().out
    assert "1 of the 3 series of" in out and "were cut to 4" in out
    assert spec.validation is None and spec.test is not None  # the test file is never the validation split
    assert spec.class_names == ["walk", "run"] and spec.num_classes == 2
    lengths = [int(x["values"].shape[0]) for x, _ in spec.train]
    assert lengths == [3, 4, 2]
    # Every batch is padded to the longest training series (4 steps): the model's length; the test file's
    # 5-step series is cut to it, with a message.
    inputs, labels = next(iter(pipeline.batched(spec, "test", 3, training=False)))
    assert tuple(inputs["values"].shape) == (3, 4, 2)
    np.testing.assert_array_equal(np_(inputs["mask"]).sum(1), [4, 3, 1])  # row 2: one '?' step masked
    np.testing.assert_array_equal(np_(labels), [0, 1, 1])
    held_out = ts_files(str(train), str(test), missing="zero", validation_fraction=0.34).load()
    assert held_out.num_train_examples == 2 and len(list(held_out.validation)) == 1
    assert "held out" in held_out.validation_note and "test file is not used" in held_out.validation_note
    bad = tmp_path / "bad_TEST.ts"
    bad.write_text(MULTIVARIATE.replace(":walk\n", ":jump\n").replace("walk run", "walk run jump"))
    with pytest.raises(ValueError, match="jump"):
        ts_files(str(train), str(bad), missing="zero").load()


def test_a_training_split_smaller_than_a_batch_still_gives_full_batches(tmp_path, capsys):
    train, test = write_toy_files(tmp_path)  # 3 training series
    spec = ts_files(str(train), str(test), missing="mask", validation_fraction=0.0).load()
    batches = pipeline.batched(spec, "train", 8, training=True, seed=0)
    assert "has 3 examples, fewer than one batch (8)" in capsys.readouterr().out
    assert int(batches.cardinality()) == -1  # endless: train() then runs a set number of steps per epoch
    for inputs, labels in batches.take(2):
        assert tuple(inputs["values"].shape)[:2] == (8, 4) and sorted(set(np_(labels).tolist())) == [0, 1]


def test_ucr_by_name_from_a_folder_and_helpful_error(tmp_path):
    write_toy_files(tmp_path)
    spec = ucr("Toy", data_dir=str(tmp_path), missing="interpolate").load()
    assert spec.test is not None and spec.class_names == ["walk", "run"]
    with pytest.raises(FileNotFoundError, match="data_dir"):
        ucr("NoSuchSet", data_dir=str(tmp_path)).load()


@needs_aeon
def test_ucr_by_name_through_aeon():
    spec = ucr("ItalyPowerDemand").load()
    assert spec.class_names == ["1", "2"] and len(list(spec.test)) == 1029
    # 20% of each class held out for validation, stratified and seeded: 67 = 34 + 33 -> 7 + 7 held out.
    assert spec.num_train_examples == 53 and len(list(spec.validation)) == 14


def test_read_csv_series_formats(tmp_path):
    (tmp_path / "row.csv").write_text("1,2,3,4\n")
    (tmp_path / "col.csv").write_text("1\n2\n?\n")
    (tmp_path / "multi.csv").write_text("a,b\n1,2\n3,4\n5,\n")
    assert read_csv_series(tmp_path / "row.csv").shape == (4, 1)
    col = read_csv_series(tmp_path / "col.csv")
    assert col.shape == (3, 1) and np.isnan(col[2, 0])
    multi = read_csv_series(tmp_path / "multi.csv")
    assert multi.shape == (3, 2) and np.isnan(multi[2, 1])
    (tmp_path / "bad.csv").write_text("1,2\n3,x\n")
    with pytest.raises(ValueError, match="bad.csv:2"):
        read_csv_series(tmp_path / "bad.csv")


# === Tokenizers ===
def series(batch=2, length=10, channels=3, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, length, channels)).astype("float32")


def test_linear_tokenizer_shapes_masks_truncation_and_univariate():
    tok = SeriesLinearTokenizer(dim=8, max_length=6)  # an explicit max_length cuts
    mask = np.ones((2, 10), bool)
    mask[1, 4:] = False
    out = tok({"values": series(), "mask": mask})
    assert tuple(out["tokens"].shape) == (2, 6, 8)  # truncated to max_length
    np.testing.assert_array_equal(np_(out["mask"]).sum(1), [6, 4])
    assert np.abs(np_(out["tokens"])[1, 4:]).max() == 0
    uni = SeriesLinearTokenizer(dim=8, max_length=32)(series(channels=1)[..., 0])
    assert tuple(uni["tokens"].shape) == (2, 10, 8) and "mask" not in uni


def test_patch_tokenizer_patches_and_masks():
    tok = SeriesPatchTokenizer(dim=8, patch_length=4, max_length=64)
    assert "mask" not in tok(series(length=12)) and tuple(tok(series(length=12))["tokens"].shape) == (2, 3, 8)
    mask = np.ones((2, 10), bool)
    mask[1, 5:] = False
    out = tok({"values": series(), "mask": mask})
    np.testing.assert_array_equal(np_(out["mask"]), [[True, True, True], [True, True, False]])
    overlapping = SeriesPatchTokenizer(dim=8, patch_length=4, stride=2, max_length=64)
    assert tuple(overlapping(series())["tokens"].shape) == (2, 4, 8)  # starts 0, 2, 4, 6
    with pytest.raises(ValueError, match="patch_length"):
        SeriesPatchTokenizer(dim=8, patch_length=0)


def test_first_differences_are_channels_of_their_own_normalised_and_saved(tmp_path):
    x = np.array([[[1.0, 10.0], [3.0, 10.0], [6.0, 12.0], [7.0, 0.0]]], "float32")  # (1, 4, 2)
    mask = np.array([[True, True, True, False]])
    np.testing.assert_allclose(np_(with_differences(x, mask))[0],
                               [[1, 10, 0, 0], [3, 10, 2, 0], [6, 12, 3, 2], [7, 0, 0, 0]])  # none next to padding
    np.testing.assert_allclose(np_(with_differences(x))[0, 3, 2:], [1, -12])
    data = series(batch=4, length=12, channels=2, seed=2)
    tok = SeriesPatchTokenizer(dim=8, patch_length=3, differences=True)
    mean, std = tok.adapt([(data, np.zeros(4))])
    steps = np.diff(data, axis=1)  # the stats of the difference channels count the first step's 0 too
    diffs = np.concatenate([np.zeros((4, 1, 2)), steps], 1).reshape(-1, 2)
    np.testing.assert_allclose(mean, np.concatenate([data.reshape(-1, 2).mean(0), diffs.mean(0)]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(std, np.concatenate([data.reshape(-1, 2).std(0), diffs.std(0)]), rtol=1e-4)
    assert tok.value_channels == 4 and tuple(tok.projection.kernel.shape) == (12, 8)
    assert tuple(tok(data)["tokens"].shape) == (4, 4, 8)
    np.testing.assert_allclose(np_(tok.prepare(data)[0]), (np_(with_differences(data)) - mean) / std, atol=1e-5)
    linear = SeriesLinearTokenizer(8, normalize="none", differences=True)
    assert tuple(linear(data)["tokens"].shape) == (4, 12, 8) and tuple(linear.projection.kernel.shape) == (4, 8)
    plain = SeriesPatchTokenizer(dim=8, patch_length=3)
    plain.adapt([(data, np.zeros(4))])
    assert plain.value_channels == 2 and tuple(plain.projection.kernel.shape) == (6, 8)
    assert SeriesLinearTokenizer(8, differences=True).get_config()["differences"] is True
    assert_model_reloads(SeriesPatchTokenizer(16, 4, max_length=64, differences=True),
                         {"values": series(length=18), "mask": np.ones((2, 18), bool)}, tmp_path / "m.keras")


def test_patch_length_and_positions_come_from_the_build_length():
    for length, patch in ((24, 1), (150, 3), (1460, 23)):
        tok = SeriesPatchTokenizer(dim=8)
        tok.build((None, length, 2))
        assert tok.patch == patch and tok.num_patches(length) <= 64
        assert tuple(tok(series(length=length, channels=2))["tokens"].shape) == (2, tok.num_patches(length), 8)
    tok = SeriesPatchTokenizer(dim=8)
    tok(series(length=30))
    with pytest.raises(ValueError, match=r"longer than the 30.*at most 30 steps.*tokenizers\.series_patch\.max_length"):
        tok(series(length=31))
    conv = SeriesConvTokenizer(dim=8)  # the error names the binding of the tokenizer the model has
    conv(series(length=30))
    with pytest.raises(ValueError, match=r"tokenizers\.series_conv\.max_length"):
        conv(series(length=31))
    assert tuple(tok(series(length=20))["tokens"].shape) == (2, 20, 8)  # shorter series are fine
    with pytest.raises(ValueError, match="without a series length"):
        SeriesPatchTokenizer(dim=8).build((None, None, 2))


def test_dataset_normalisation_keeps_amplitude_and_survives_a_reload(tmp_path):
    small = series(batch=4, length=12, channels=2, seed=1)
    data = np.concatenate([small, 10.0 * small])  # same shapes, ten times the amplitude
    tok = SeriesLinearTokenizer(dim=8, normalize="dataset")
    mean, std = tok.adapt([(data, np.zeros(len(data)))])
    np.testing.assert_allclose(mean, data.reshape(-1, 2).mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, data.reshape(-1, 2).std(0), rtol=1e-4)
    tokens = np_(tok(data)["tokens"])
    assert np.abs(tokens[:4] - tokens[4:]).max() > 0.1  # the scale survives
    per_series = np_(SeriesLinearTokenizer(dim=8, normalize="series")(data)["tokens"])
    assert np.abs(per_series[:4] - per_series[4:]).max() < 1e-3  # per-series normalisation loses it
    model = SequenceClassifier(
        TLBEncoder(TLBCell(dim=8, num_heads=2, num_layers=1, r=1, num_latents=2), chunk_size=4),
        ClassificationHead(2), tokenizer=tok)
    expected = np_(model(data))
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(np_(keras.saving.load_model(tmp_path / "m.keras")(data)), expected, atol=1e-5)


def test_masked_normalisation_ignores_padding():
    x = series(batch=1, length=8)
    mask = np.array([[True] * 5 + [False] * 3])
    noisy = x.copy()
    noisy[:, 5:] = 1e3
    a, b = np_(masked_normalize(x, mask)), np_(masked_normalize(noisy, mask))
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a[0, :5].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(a[0, :5].std(0), 1, atol=1e-3)
    for tok in (SeriesLinearTokenizer(8, 32), SeriesPatchTokenizer(8, 2, max_length=32),
                SeriesPatchTokenizer(8, 2, max_length=32, differences=True)):
        keras.utils.set_random_seed(0)
        np.testing.assert_allclose(np_(tok({"values": x, "mask": mask})["tokens"]),
                                   np_(tok({"values": noisy, "mask": mask})["tokens"]), atol=1e-4)


def test_periodic_positions_make_chunk_embedding_equal_whole_embedding():
    tok = SeriesPatchTokenizer(dim=8, patch_length=2, normalize=False, position_period=3)
    x = series(length=12)
    whole = np_(tok(x)["tokens"])
    chunks = [np_(tok.embed(x[:, i:i + 6], None, offset=i // 2)["tokens"]) for i in range(0, 12, 6)]
    np.testing.assert_allclose(np.concatenate(chunks, 1), whole, atol=1e-6)


@pytest.mark.parametrize(
    "make", [lambda: SeriesLinearTokenizer(16, 64), lambda: SeriesPatchTokenizer(16, 4, max_length=64)]
)
def test_series_model_saves_and_reloads(make, tmp_path):
    assert_model_reloads(make(), {"values": series(length=18), "mask": np.ones((2, 18), bool)}, tmp_path / "m.keras")


# === Binaries and the streaming example ===
TINY = ["DIM = 16", "NUM_LAYERS = 1", "models.ensemble.size = 2", "train.epochs = 1", "train.steps_per_epoch = 2",
        "train.warmup_epochs = 0.0"]  # two members, not three: the ensemble's code paths, a third less to trace


def test_streaming_example_emits_a_prediction_per_chunk():  # through an ensemble: each member its own state
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "stream_series.py"), "--chunks=12", "--check", "--members=2"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    chunks = [line for line in proc.stdout.splitlines() if line.startswith("chunk")]
    assert len(chunks) == 12 and "prediction" in chunks[-1]
    assert "max difference" in proc.stdout and "state 2 x (1, 4, 32) = 1024 bytes" in proc.stdout


def test_variable_length_batches_train_under_tf_function():
    """padded_batch gives an unknown length at trace time; the encoder's loop must still trace and differentiate."""
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = SequenceClassifier(
        TLBEncoder(TLBCell(dim=16, num_heads=2, num_layers=1, r=1, num_latents=2, dropout=0.1), chunk_size=4),
        ClassificationHead(2),
        tokenizer=SeriesPatchTokenizer(16, 2, max_length=64),
    )
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    lengths = [5, 9, 14, 3]
    ds = tf.data.Dataset.from_generator(
        lambda: (({"values": series(1, n, 2, seed=n)[0], "mask": np.ones(n, bool)}, n % 2) for n in lengths),
        output_signature=({"values": tf.TensorSpec([None, 2]), "mask": tf.TensorSpec([None], tf.bool)},
                          tf.TensorSpec([], tf.int32)),
    ).padded_batch(2)
    history = model.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def write_ts(path, cases, name="Toy"):
    """A univariate .ts file of (values, label) cases."""
    lines = [f"@problemName {name}", "@timeStamps false", "@univariate true", "@equalLength false",
             "@classLabel true up down", "@data"]
    lines += [",".join(f"{v:.3f}" for v in values) + f":{label}" for values, label in cases]
    path.write_text("\n".join(lines) + "\n")


def toy_cases(n, seed):
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        length = int(rng.integers(20, 40))
        slope = 1.0 if i % 2 else -1.0
        cases.append((slope * np.linspace(0, 1, length) + 0.1 * rng.normal(size=length), "up" if i % 2 else "down"))
    return cases


def test_series_run_scores_a_ts_file_and_text_inputs_without_the_training_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_ts(data / "Toy_TRAIN.ts", toy_cases(20, 0))
    write_ts(tmp_path / "Toy_TEST.ts", toy_cases(8, 1))
    model_dir = tmp_path / "run"
    run_binary("train", "--gin_file=ucr_gunpoint.gin", f"--data_dir={data}", f"--model_dir={model_dir}",
               "--gin_param=datasets.ucr.name = 'Toy'", "--gin_param=datasets.ucr.validation_fraction = 0.2",
               *[f"--gin_param={p}" for p in TINY], check=True)
    metrics = json.load(open(model_dir / "metrics.json"))
    assert metrics["val_examples"] == 4 and "test_accuracy" not in metrics  # no test file: no test numbers
    assert "held out" in metrics["validation_data"]
    assert_eval_reproduces_metrics(model_dir, {"TLBKIT_DATA_DIR": str(data)})
    os.rename(data / "Toy_TRAIN.ts", tmp_path / "gone.ts")
    proc = run_binary("evaluate", f"--model_dir={model_dir}", f"--data={tmp_path / 'Toy_TEST.ts'}", check=True)
    scored = json.loads(proc.stdout.strip().splitlines()[-1])
    assert scored["examples"] == 8 and 0 <= scored["accuracy"] <= 1
    # Inline series (comma- or space-separated) and CSV files (a row, or a column), of other lengths than
    # the training series.
    row, column = tmp_path / "row.csv", tmp_path / "column.csv"
    row.write_text(",".join(f"{np.sin(i / 10):.4f}" for i in range(25)) + "\n")
    column.write_text("\n".join(f"{np.cos(i / 7):.4f}" for i in range(9)) + "\n")
    proc = run_binary("predict", f"--model_dir={model_dir}", "0.1,0.2,0.4,0.5,0.7,0.8,0.9,1.0",
                      "1 0.8 0.5 0.2 0.1 0.0 -0.1", str(row), str(column), check=True)
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["input", "label"]
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == 4 and all(row[-3] in ("up", "down") for row in rows), proc.stdout
    assert [r[0] for r in rows[2:]] == [str(row), str(column)]
    proc = run_binary("predict", f"--model_dir={model_dir}", "0.1,zero,0.4")
    assert proc.returncode == 2 and "not a number in '0.1,zero,0.4'" in proc.stderr
    # ucr.gin trains an ensemble in one run: it exports and comes back as one model, predicting the same.
    from tlbkit import saving
    from tlbkit.models import Ensemble

    out = tmp_path / "exported"
    run_binary("export", f"--model_dir={model_dir}", f"--output={out}", check=True)
    exported, trained = Ensemble.from_preset(str(out)), saving.load_model(str(model_dir / "last.keras"))
    assert exported.size == 2 and metrics["params"] == exported.count_params()  # TINY: two members
    inputs = {"values": np.linspace(-1, 1, 30, dtype="float32").reshape(1, 30, 1), "mask": np.ones((1, 30), bool)}
    np.testing.assert_allclose(np_(exported(inputs)), np_(trained(inputs)), atol=1e-6)
    members = [np_(m(inputs)) for m in exported.members]
    np.testing.assert_allclose(np_(exported(inputs)), np.mean(members, axis=0), atol=1e-6)


# === Issue 29: one model takes both series layouts ===
@pytest.mark.parametrize("make", [
    lambda: SeriesPatchTokenizer(16, 4, max_length=64),
    lambda: SeriesPatchTokenizer(16, 4, max_length=64, differences=True, normalize="dataset"),
    lambda: SeriesLinearTokenizer(16, max_length=64),
])
def test_predict_takes_n_t_and_n_t_1_series_one_after_the_other(make):
    """`predict` traced on (N, T) series and then given (N, T, 1) (and back) retraces for values of unknown
    rank under TensorFlow: the tokenizer reads them with the channel count it was built for."""
    from tlbkit import testing

    model = testing.small_classifier(make())
    x = np.random.default_rng(0).normal(size=(5, 24)).astype("float32")
    expected = np_(model(x))
    for values in (x, x[..., None], x, x[..., None], {"values": x, "mask": np.ones((5, 24), bool)}):
        np.testing.assert_allclose(model.predict(values, verbose=0), expected, atol=1e-5)
    top = model.predict_classes(x[..., None], top_k=2)
    assert top == model.predict_classes(x, top_k=2) and len(top) == 5 and len(top[0]) == 2
