"""`train.ema_momentum`: the moving average of the weights is what a run validates, saves, resumes and scores."""

import json
import os

import keras
import numpy as np
import pytest

from tlbkit import saving
from tlbkit.ema import EMAWeights, check_ema_momentum
from tlbkit.train import compile_for_training

MOMENTUM = 0.5


def dense_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    compile_for_training(model, 0.1, weight_decay=0.0, ema_momentum=MOMENTUM)
    model.optimizer.build(model.trainable_variables)
    return model


def weights(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables]


class RawRecorder(keras.callbacks.Callback):
    """The raw weights after every training step."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(weights(self.model))


def test_the_average_is_validated_checkpointed_left_in_the_model_and_swapped_back_on_resume(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 3)).astype("float32"), rng.integers(0, 2, 32)
    model, ema, raw = dense_model(), EMAWeights(), RawRecorder()
    path = str(tmp_path / "last.keras")
    save = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: model.save(path))
    history = model.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), callbacks=[raw, ema, save], verbose=0)

    # Keras' average: the weights after the first step, then m * average + (1 - m) * weights.
    expected = raw.steps[0]
    for step in raw.steps[1:]:
        expected = [MOMENTUM * a + (1 - MOMENTUM) * w for a, w in zip(expected, step)]
    assert max(np.abs(a - b).max() for a, b in zip(expected, raw.steps[-1])) > 1e-3  # a real difference
    for got, want in zip(weights(model), expected):  # fit's finalize_variable_values did not undo it
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # Validation inside fit scored the average (the model after fit), not the raw weights.
    val_loss = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)["loss"]
    assert history.history["val_loss"][-1] == pytest.approx(val_loss, rel=1e-5)

    # The epoch-end checkpoint: the average as the model, the raw weights in the optimizer's slots; a
    # resumed run trains on from the raw weights.
    assert [w.tolist() for w in weights(saving.load_model(path))] == [w.tolist() for w in weights(model)]
    resumed = dense_model()
    saving.load_weights(resumed, path)
    callback = EMAWeights(resumed=True)
    callback.set_model(resumed)
    callback.on_epoch_begin(0)
    for got, want in zip(weights(resumed), raw.steps[-1]):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    averages = [keras.ops.convert_to_numpy(v) for v in resumed.optimizer._model_variables_moving_average]
    for got, want in zip(averages, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_mixed_precision_wraps_the_optimizer_and_the_average_is_still_found():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = dense_model()
        assert hasattr(model.optimizer, "inner_optimizer")  # Keras' LossScaleOptimizer around the AdamW
        x, y = np.ones((8, 3), "float32"), np.zeros(8, "int32")
        raw = RawRecorder()
        model.fit(x, y, batch_size=4, epochs=1, validation_data=(x, y), callbacks=[raw, EMAWeights()], verbose=0)
        averages = model.optimizer.inner_optimizer._model_variables_moving_average
        for got, want in zip(averages, raw.steps[-1]):  # the slots hold the raw weights after the epoch's swap
            np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, rtol=1e-6)
    finally:
        keras.config.set_dtype_policy("float32")


def test_bad_momentum_and_an_optimizer_without_an_average_fail_clearly():
    for bad in (0, 1.0, -0.5, "0.99", True):
        with pytest.raises(ValueError, match="train.ema_momentum must be None .* strictly between 0 and 1"):
            check_ema_momentum(bad)
    check_ema_momentum(0.999)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    callback = EMAWeights()
    callback.set_model(model)
    with pytest.raises(ValueError, match="use_ema=True"):
        callback.on_epoch_end(0)


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_a_run_with_an_average_scores_saves_and_resumes_the_average(tmp_path, monkeypatch):
    from test_time_budget import tiny_model

    from tlbkit import evaluate
    from tlbkit.callbacks import RunRecorder
    from tlbkit.train import train
    from tlbkit_tasks.synthetic.long_range_recall import long_range_recall

    # One batch per epoch: a resumed run sees the same batch as an uninterrupted one, whatever the order.
    data = long_range_recall(length=16, vocab_size=12, num_train=64, num_validation=64, num_test=64)
    kwargs = dict(dataset=data, model=tiny_model, batch_size=64, epochs=3, learning_rate=1e-2, ema_momentum=0.5)
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    os.makedirs(straight)
    os.makedirs(resumed)
    metrics = train(straight, **kwargs)
    with open(os.path.join(straight, "resume.json")) as f:
        history = json.load(f)["history"]
    last = evaluate.load_run_model(straight)
    scored = evaluate.evaluate_model(last, data.load(), "validation", 64)
    assert metrics["val_accuracy"] == pytest.approx(scored["accuracy"])
    assert metrics["val_cross_entropy"] == pytest.approx(scored["cross_entropy"], rel=1e-5)
    # Validation inside fit scored the same (averaged) model as the checkpoint and metrics.json.
    assert history[-1]["val_cross_entropy"] == pytest.approx(scored["cross_entropy"], rel=1e-4)

    # Interrupted before its third epoch, then resumed: the raw weights train on, the average continues.
    original = RunRecorder.on_epoch_begin

    def crash_before_the_third_epoch(self, epoch, logs=None):
        if epoch == 2:
            raise Interrupted()
        original(self, epoch, logs)

    monkeypatch.setattr(RunRecorder, "on_epoch_begin", crash_before_the_third_epoch)
    with pytest.raises(Interrupted):
        train(resumed, **kwargs)
    monkeypatch.setattr(RunRecorder, "on_epoch_begin", original)
    train(resumed, **kwargs)
    for a, b in zip(weights(last), weights(evaluate.load_run_model(resumed))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

    # A finished run whose metrics.json was lost scores the saved average again, without training.
    os.remove(os.path.join(straight, "metrics.json"))
    again = train(straight, **kwargs)
    assert again["val_cross_entropy"] == pytest.approx(metrics["val_cross_entropy"], rel=1e-6)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        train(str(tmp_path / "bad"), **{**kwargs, "ema_momentum": 1.5})
