"""`train.time_budget_min`: the time-driven cosine schedule, the stopping callback, and a run stopped by it."""

import json
import os

import keras
import numpy as np
import pytest

from tlbkit.layers import ClassificationHead, TLBCell, TLBEncoder
from tlbkit.models import SequenceClassifier
from tlbkit.time_budget import TimeBudget, TimeBudgetCosine
from tlbkit_tasks.common import TokenEmbedding
from tlbkit_tasks.synthetic.long_range_recall import long_range_recall


def lr_at(schedule, step, progress):
    schedule.progress.assign(progress)
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_schedule_warms_up_over_steps_and_decays_over_time():
    s = TimeBudgetCosine(1e-3, min_learning_rate=1e-5, warmup_steps=10)
    assert lr_at(s, 0, 0.0) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.1, rel=1e-5)  # first step of warmup
    assert lr_at(s, 9, 0.0) == pytest.approx(1e-3, rel=1e-5)
    assert lr_at(s, 500, 0.5) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5, rel=1e-5)
    assert lr_at(s, 500, 1.0) == pytest.approx(1e-5, rel=1e-4)
    assert lr_at(s, 500, 3.0) == pytest.approx(1e-5, rel=1e-4)  # past the budget: stays at the floor
    again = TimeBudgetCosine.from_config(s.get_config())
    assert lr_at(again, 500, 0.25) == pytest.approx(lr_at(s, 500, 0.25))


def test_compiled_train_step_reads_the_live_progress():
    # The progress is read inside the traced step at run time, not frozen when it was traced.
    schedule = TimeBudgetCosine(0.1, min_learning_rate=0.0, warmup_steps=0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 1), "float32")
    before = model.get_weights()[0].copy()
    model.train_on_batch(x, y)  # traced with progress 0: moves the weights
    moved = model.get_weights()[0].copy()
    assert np.abs(moved - before).max() > 1e-4
    schedule.progress.assign(1.0)  # the budget spent: learning rate 0
    model.train_on_batch(x, y)
    np.testing.assert_array_equal(model.get_weights()[0], moved)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_callback_drives_progress_and_stops_before_an_epoch_end_overruns():
    clock, schedule = FakeClock(), TimeBudgetCosine(1.0, warmup_steps=0)
    cb = TimeBudget(100.0, clock, schedule, validation_freq=1)
    cb.set_model(keras.Sequential([keras.layers.Dense(1)]))
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    clock.now = 40.0
    cb.on_train_batch_begin(0)
    assert float(keras.ops.convert_to_numpy(schedule.progress)) == pytest.approx(0.4)
    cb.on_train_batch_end(0)
    assert not getattr(cb.model, "stop_training", False)
    cb.on_test_begin()  # validation, then checkpoints: 15 s from the last step to the next epoch
    cb._last_step_end -= 15.0
    cb.on_epoch_end(0)
    cb.on_epoch_begin(1)
    assert cb.reserve_s == pytest.approx(15.0, abs=0.5)
    clock.now = 80.0  # 80 + 15 < 100: keep going; progress is measured against the 85 s left for steps
    cb.on_train_batch_begin(0)
    assert float(keras.ops.convert_to_numpy(schedule.progress)) == pytest.approx(80.0 / (100.0 - cb.reserve_s))
    cb.on_train_batch_end(0)
    assert not getattr(cb.model, "stop_training", False) and not cb.stopped
    clock.now = 86.0  # 86 + 15 >= 100: stop after this step
    cb.on_train_batch_end(1)
    assert cb.model.stop_training and cb.stopped
    # An unvalidated epoch's shorter tail does not shorten the reserve of validated epochs; the longest
    # validated tail is kept.
    cb._last_step_end -= 2.0
    cb.on_epoch_begin(2)
    assert cb.reserve_s == pytest.approx(15.0, abs=0.5)
    for tail, expected in ((20.0, 20.0), (10.0, 20.0)):
        cb.on_train_batch_end(0)
        cb.on_test_begin()
        cb._last_step_end -= tail
        cb.on_epoch_begin(3)
        assert cb.reserve_s == pytest.approx(expected, abs=0.5)
    # A resumed run keeps its reserve and knows the budget stopped it.
    again = TimeBudget(100.0, FakeClock(), state=cb.state())
    assert again.stopped and again.spent() and again.reserve_s == pytest.approx(cb.reserve_s, abs=1e-3)
    assert again.state()["reserve_validated_s"] == pytest.approx(20.0, abs=0.5)
    # An epoch whose end leaves less than the reserve stops the run without starting another epoch.
    late = TimeBudget(100.0, clock, state={"reserve_s": 20.0})
    late.set_model(keras.Sequential([keras.layers.Dense(1)]))
    late.on_epoch_end(0)
    assert late.stopped and late.model.stop_training
    with pytest.raises(ValueError, match="positive"):
        TimeBudget(0, clock)


def test_validated_and_plain_epoch_ends_are_reserved_apart():
    # validation_freq=2: epochs 2, 4, ... (numbered from 1) end with a validation, the others do not.
    clock, schedule = FakeClock(), TimeBudgetCosine(1.0, warmup_steps=0)
    cb = TimeBudget(100.0, clock, schedule, validation_freq=2)
    cb.set_model(keras.Sequential([keras.layers.Dense(1)]))
    cb.on_epoch_begin(0)
    cb.on_train_batch_end(0)
    cb._last_step_end -= 5.0  # a plain end: checkpoints only
    cb.on_epoch_begin(1)
    assert cb.reserve_s == pytest.approx(5.0, abs=0.5)  # no validated end timed yet: the plain one stands in
    cb.on_train_batch_end(0)
    cb.on_test_begin()
    cb._last_step_end -= 30.0  # a validated end
    cb.on_epoch_begin(2)
    assert cb.reserves[True] == pytest.approx(30.0, abs=0.5)
    assert cb.reserve_s == pytest.approx(5.0, abs=0.5)  # epoch 3 will not be validated
    clock.now = 80.0  # 80 + 5 < 100 (80 + 30 would not be): keep training
    cb.on_train_batch_begin(0)
    assert float(keras.ops.convert_to_numpy(schedule.progress)) == pytest.approx(80.0 / (100.0 - cb.reserves[False]))
    cb.on_train_batch_end(0)
    assert not cb.stopped
    cb.on_epoch_end(2)  # epoch 4 would need 30 s for its validated end: stop here
    assert cb.stopped and cb.model.stop_training
    # A resumed run ranks the next epoch's end the same way.
    again = TimeBudget(100.0, clock, state={**cb.state(), "stopped": False}, validation_freq=2)
    assert again.spent(again.validates_epoch(3)) and not again.spent(again.validates_epoch(2))
    assert again.spent()  # the next epoch not known yet: the longer reserve
    # The state written before the two kinds were timed apart: one reserve and its kind.
    old = TimeBudget(100.0, clock, state={"reserve_s": 12.0, "reserve_validated": True}, validation_freq=2)
    assert old.reserves == {True: 12.0, False: 0.0}
    with pytest.raises(ValueError, match="validation_freq"):
        TimeBudget(100.0, clock, validation_freq=0)


def tiny_model(num_classes):
    cell = TLBCell(dim=16, num_heads=2, num_layers=1, r=1, num_latents=2, dropout=0.0)
    return SequenceClassifier(TLBEncoder(cell, chunk_size=4), ClassificationHead(num_classes, pooling="state"),
                              tokenizer=TokenEmbedding(12, 16, 16))


@pytest.mark.slow
def test_a_spent_budget_stops_mid_epoch_and_is_recorded(tmp_path, capsys):
    from tlbkit.train import train

    data = long_range_recall(length=16, vocab_size=12, num_train=256, num_validation=64, num_test=64)
    model_dir = str(tmp_path / "run")
    os.makedirs(model_dir)
    kwargs = dict(dataset=data, model=tiny_model, batch_size=32, epochs=50, learning_rate=1e-3,
                  schedule="cosine", min_learning_rate=1e-5, warmup_epochs=0.5, time_budget_min=1e-4)
    metrics = train(model_dir, **kwargs)  # 6 ms: spent after the first step of 8
    assert metrics["stopped_by"] == "time_budget" and metrics["last_epoch_steps"] == "1/8"
    assert metrics["epochs_completed"] == 1 and metrics["time_budget_s"] == pytest.approx(0.006)
    with open(os.path.join(model_dir, "resume.json")) as f:
        resume = json.load(f)
    row = resume["history"][0]
    assert resume["time_budget"]["stopped"] and resume["time_budget"]["budget_s"] == pytest.approx(0.006)
    assert row["steps"] == 1 and "val_accuracy" in row  # the cut epoch was validated and checkpointed
    assert row["learning_rate"] == pytest.approx(1e-5, rel=1e-3)  # annealed to the floor at the budget
    assert np.isfinite(metrics["val_accuracy"])
    # Interrupted before metrics.json: a rerun sees the budget spent and only writes the metrics.
    os.remove(os.path.join(model_dir, "metrics.json"))
    capsys.readouterr()
    again = train(model_dir, **kwargs)
    assert "has spent its time budget" in capsys.readouterr().out
    assert again["stopped_by"] == "time_budget" and again["epochs_completed"] == 1
    with pytest.raises(ValueError, match="time_budget_min must be a positive"):
        train(str(tmp_path), **{**kwargs, "time_budget_min": -1})


# === Weight decay on vectors (train.weight_decay_vectors) ===
@pytest.mark.parametrize("decay_vectors", [True, False])
def test_weight_decay_can_spare_biases_and_norm_scales(decay_vectors):
    from tlbkit import train as train_lib

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    net = keras.Model(inputs, keras.layers.LayerNormalization()(keras.layers.Dense(3)(inputs)) * 0.0)
    # A zero output: every gradient is 0, so a step changes the weights by the decay alone (AdamW: w -= lr*wd*w).
    train_lib.compile_for_training(net, learning_rate=0.1, weight_decay=0.5)
    if not decay_vectors:
        train_lib.exclude_vectors_from_weight_decay(net)
    before = {v.path: np.array(v) for v in net.trainable_variables}
    net.train_on_batch(np.ones((2, 4), "float32"), np.zeros((2,), "int32"))
    for v in net.trainable_variables:
        ratio = np.array(v) / np.where(before[v.path] == 0, 1.0, before[v.path])
        decayed = len(v.shape) > 1 or decay_vectors
        expected = 1.0 - 0.1 * 0.5 if decayed else 1.0
        np.testing.assert_allclose(ratio[before[v.path] != 0], expected, rtol=1e-5, err_msg=v.path)
    with pytest.raises(ValueError, match="weight_decay_vectors"):
        train_lib.train(model_dir="unused", dataset=None, model=None, weight_decay_vectors="no")
