"""The gin-configurable training function behind `tlbkit-train`."""

import contextlib
import math
import os
import sys
import time

import gin
import keras

from tlbkit import pipeline
from tlbkit import run_dir as rd
from tlbkit.losses import Accuracy, SparseCategoricalCrossentropy

SCHEDULES = ("constant", "cosine")


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or Inf loss."""


def make_optimizer(learning_rate, weight_decay, schedule, warmup_steps, total_steps, clip_norm, min_learning_rate):
    """AdamW with a constant or warmup + cosine learning rate."""
    if schedule not in SCHEDULES:
        raise ValueError(f"`schedule` must be one of {SCHEDULES}. Received: schedule={schedule!r}")
    lr = learning_rate
    if schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup_steps else learning_rate,
            decay_steps=max(total_steps - warmup_steps, 1),
            alpha=min_learning_rate / learning_rate if learning_rate else 0.0,
            warmup_target=learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    return keras.optimizers.AdamW(learning_rate=lr, weight_decay=weight_decay, global_clipnorm=clip_norm)


class RunRecorder(keras.callbacks.Callback):
    """Writes the run directory after each epoch: last/best checkpoints, resume state,
    history.csv and curves.png (all atomic), and the operative config after the first step.

    Args:
        model_dir: str. The run directory.
        history: list of per-epoch dicts already completed (resume).
        best: best monitored value so far, or None.
        monitor: str. Metric for `best.keras` (higher is better).
        write: bool. False on non-chief workers (they save to a scratch dir).
        on_first_step: callable run once after the first training step.
    """

    def __init__(self, model_dir, history, best, monitor, write, on_first_step):
        super().__init__()
        self.model_dir = model_dir
        self.history = list(history)
        self.best = best
        self.monitor = monitor
        self.write = write
        self.on_first_step = on_first_step
        self.non_finite = None
        self._stepped = False
        self._epoch_start = None

    def on_train_batch_end(self, batch, logs=None):
        if not self._stepped:
            self._stepped = True
            if self.on_first_step is not None:
                self.on_first_step()
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.non_finite = (batch, float(loss))
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        if self.non_finite is not None:
            return  # keep the last good checkpoint
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if logs is not None:
            logs["learning_rate"] = lr  # in place: the TensorBoard callback after this one logs it too
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        row["learning_rate"] = lr
        row["epoch_time_s"] = round(time.time() - self._epoch_start, 3)
        target = self.model_dir if self.write else os.path.join(self.model_dir, ".worker-scratch")
        os.makedirs(target, exist_ok=True)
        rd.atomic_save_model(self.model, os.path.join(target, "last.keras"))
        value = row.get(self.monitor)
        improved = value is not None and (self.best is None or value > self.best)
        if improved:
            self.best = value
            rd.atomic_save_model(self.model, os.path.join(target, "best.keras"))
        self.history.append(row)
        if not self.write:
            return
        rd.atomic_write_json(
            os.path.join(self.model_dir, rd.RESUME_FILE),
            {"epochs_done": epoch + 1, "history": self.history, "best": self.best, "monitor": self.monitor},
        )
        rd.atomic_write_text(os.path.join(self.model_dir, "history.csv"), rd.history_csv(self.history))
        rd.plot_curves(self.history, os.path.join(self.model_dir, "curves.png"))


@gin.configurable("train", denylist=["model_dir", "strategy", "is_chief", "on_first_step"])
def train(
    model_dir,
    dataset=gin.REQUIRED,
    model=gin.REQUIRED,
    batch_size=32,
    epochs=1,
    learning_rate=1e-3,
    weight_decay=1e-4,
    schedule="constant",
    warmup_epochs=0.0,
    min_learning_rate=0.0,
    label_smoothing=0.0,
    clip_norm=None,
    steps_per_epoch=None,
    shuffle_buffer=10_000,
    cache=True,
    monitor="val_accuracy",
    jit_compile=False,
    seed=0,
    strategy=None,
    is_chief=True,
    on_first_step=None,
):
    """Trains a model on a dataset and writes the run directory.

    Resumes from `model_dir` when it holds a finished epoch (`resume.json`).

    Args:
        model_dir: str. Run directory.
        dataset: `DataSpec`, e.g. `@datasets.long_range_recall()`.
        model: callable `model(num_classes=...) -> keras.Model`, e.g.
            `@models.classifier`.
        batch_size: int. Global batch size (split across replicas).
        epochs: int. Total epochs.
        learning_rate: float. Peak learning rate of AdamW.
        weight_decay: float. AdamW decoupled weight decay.
        schedule: str. `"constant"` or `"cosine"` (with linear warmup).
        warmup_epochs: float. Warmup length for the cosine schedule.
        min_learning_rate: float. Final learning rate of the cosine schedule.
        label_smoothing: float. Label smoothing of the cross-entropy.
        clip_norm: float or None. Global gradient-norm clipping.
        steps_per_epoch: int or None. Limit the steps per epoch.
        shuffle_buffer: int. Shuffle buffer of the training split.
        cache: bool. Cache decoded examples in memory.
        monitor: str. Validation metric that selects `best.keras` (higher is better).
        jit_compile: bool or "auto". XLA-compile the train step.
        seed: int. Seeds weights, dropout and data order.
        strategy: tf.distribute strategy or None.
        is_chief: bool. Whether this worker writes the run directory.
        on_first_step: callable run after the first training step.

    Returns:
        dict of final metrics (also written to `metrics.json`).
    """
    import tensorflow as tf

    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an integer >= 1. Received: batch_size={batch_size!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"`epochs` must be an integer >= 1. Received: epochs={epochs!r}")
    keras.utils.set_random_seed(seed)
    spec = dataset
    resume = rd.read_json(os.path.join(model_dir, rd.RESUME_FILE), default=None) or {}
    initial_epoch = int(resume.get("epochs_done", 0))
    train_ds = pipeline.batched(spec, "train", batch_size, True, seed + initial_epoch, shuffle_buffer, cache)
    val_ds = pipeline.batched(spec, "validation", batch_size, False, cache=cache)

    steps = steps_per_epoch
    if steps is None:
        card = int(train_ds.cardinality())
        steps = card if card > 0 else max((spec.num_train_examples or batch_size) // batch_size, 1)
    total_steps = steps * epochs
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        net = model(num_classes=spec.num_classes)
        optimizer = make_optimizer(
            learning_rate, weight_decay, schedule, int(warmup_epochs * steps), total_steps, clip_norm, min_learning_rate
        )
        net.compile(
            optimizer=optimizer,
            loss=SparseCategoricalCrossentropy(label_smoothing=label_smoothing),
            metrics=[Accuracy()],
            jit_compile=jit_compile,
        )
        example_batch = next(iter(train_ds))
        net(example_batch[0])  # builds; shape errors between tokenizer and encoder surface here
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            _prebuild_for_multi_worker(net, example_batch)
        # Optimizer variables created now, not inside the first traced step: otherwise tf.function
        # traces the training step twice (once to create them), ~10 s more at CIFAR shapes.
        net.optimizer.build(net.trainable_variables)
        if initial_epoch:
            net.load_weights(os.path.join(model_dir, "last.keras"))
    if initial_epoch >= epochs:
        print(f"tlbkit: run in {model_dir} already finished {initial_epoch}/{epochs} epochs; nothing to train.")
    elif initial_epoch:
        print(f"tlbkit: resuming {model_dir} after epoch {initial_epoch}/{epochs}.")

    recorder = RunRecorder(
        model_dir, resume.get("history", []), resume.get("best"), monitor, is_chief, on_first_step
    )
    callbacks = [recorder]
    if is_chief:
        callbacks.append(
            keras.callbacks.TensorBoard(os.path.join(model_dir, "tensorboard"), write_graph=False, update_freq="epoch")
        )
    start = time.time()
    if initial_epoch < epochs:
        net.fit(
            train_ds.repeat() if steps_per_epoch else train_ds,
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps if steps_per_epoch else None,
            validation_data=val_ds,
            callbacks=callbacks,
            verbose=1 if sys.stdout.isatty() else 2,
            shuffle=False,  # the pipeline shuffles (seeded)
        )
    wall = time.time() - start
    if recorder.non_finite is not None:
        batch, loss = recorder.non_finite
        raise NonFiniteLossError(
            f"loss became {loss} at step {batch + 1} of epoch {len(recorder.history) + 1}; training "
            f"stopped and {model_dir}/last.keras keeps the last good epoch ({len(recorder.history)}). "
            "Lower the learning rate or set train.clip_norm."
        )

    metrics = {"params": int(net.count_params()), "epochs_completed": len(recorder.history), "wall_time_s": round(wall, 2)}
    trained_epochs = len(recorder.history) - initial_epoch
    if trained_epochs > 0 and wall > 0:
        metrics["train_examples_per_s"] = round(trained_epochs * steps * batch_size / wall, 2)
    if recorder.history:
        metrics.update({k: v for k, v in recorder.history[-1].items() if k.startswith("val_")})
    test_ds = pipeline.batched(spec, "test", batch_size, False, cache=False)
    if test_ds is not None:
        results = net.evaluate(test_ds, verbose=0, return_dict=True)
        metrics.update({"test_" + k: float(v) for k, v in results.items()})
    if is_chief:
        rd.atomic_write_json(os.path.join(model_dir, "metrics.json"), metrics)
    return metrics


def _prebuild_for_multi_worker(net, batch):
    """Works around Keras 3.15: under MultiWorkerMirroredStrategy `fit` first averages a batch
    across workers to build metrics and optimizer (`_maybe_symbolic_build`), which collective ops
    cannot do for integer inputs or labels. Build from a local batch instead and skip that step."""
    net._symbolic_build(data_batch=batch)
    net._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    # Keras 3.15 also averages the per-step scalar logs with `reduce("MEAN", v, axis=0)`, which
    # fails on scalars under collective ops; average them without an axis.
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if not getattr(tf_trainer.reduce_per_replica, "_tlbkit_patched", False):
        original = tf_trainer.reduce_per_replica

        def reduce_per_replica(values, strategy, reduction):
            if reduction == "auto" and tf_trainer._collective_all_reduce_multi_worker(strategy):
                return keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
            return original(values, strategy, reduction)

        reduce_per_replica._tlbkit_patched = True
        tf_trainer.reduce_per_replica = reduce_per_replica
