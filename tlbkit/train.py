"""The gin-configurable training function behind `tlbkit-train`."""

import contextlib
import os
import sys
import time

import gin
import keras
import numpy as np

from tlbkit import backends, checks, compat, optimizers
from tlbkit import evaluate as evaluate_lib
from tlbkit import pipeline
from tlbkit import presets
from tlbkit import run_dir as rd
from tlbkit import saving
from tlbkit.callbacks import RunRecorder
from tlbkit.ema import EMAWeights, check_ema_momentum
from tlbkit.losses import ClassCrossentropy
from tlbkit.metrics import Accuracy, CrossEntropy
from tlbkit.time_budget import TimeBudget, TimeBudgetCosine

SCHEDULES = ("constant", "cosine")
CALLER_ARGUMENTS = ("model_dir", "strategy", "is_chief", "on_first_step", "start_time")  # not gin-configurable


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or Inf loss."""


def make_learning_rate(learning_rate, schedule, warmup_steps, total_steps, min_learning_rate, time_budget=False):
    """A constant learning rate, or a linear warmup then a cosine decay to `min_learning_rate` over
    `total_steps` (with `time_budget`, over the time budget: `tlbkit.time_budget.TimeBudgetCosine`)."""
    checks.one_of("schedule", schedule, SCHEDULES)
    if schedule == "constant":
        return learning_rate
    if time_budget:
        return TimeBudgetCosine(learning_rate, min_learning_rate, warmup_steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else learning_rate,
        decay_steps=max(total_steps - warmup_steps, 1),
        alpha=min_learning_rate / learning_rate if learning_rate else 0.0,
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def compile_for_training(net, learning_rate, weight_decay=1e-4, clip_norm=None, label_smoothing=0.0,
                         jit_compile=False, ema_momentum=None):
    """Compiles `net` as `train()` does: AdamW (decoupled weight decay, global-norm clipping; with
    `ema_momentum`, a moving average of the weights), label-smoothed cross-entropy, accuracy and cross-entropy
    metrics. `learning_rate` is a float or a schedule.

    `jit_compile` chooses XLA for TensorFlow's step (a `tf.function` graph without it). Under JAX the step is
    always jitted: an unjitted JAX step runs op by op, orders of magnitude slower. Keras falls back to that
    (with a warning) when a layer declares `supports_jit = False` (e.g. its RandomTranslation); here that is
    an error naming the layers.
    """
    jax = keras.backend.backend() == "jax"
    optimizer = optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay, global_clipnorm=clip_norm,
                                 use_ema=ema_momentum is not None,
                                 ema_momentum=0.99 if ema_momentum is None else ema_momentum)
    net.compile(optimizer=optimizer, loss=ClassCrossentropy(label_smoothing=label_smoothing),
                metrics=[Accuracy(), CrossEntropy()], jit_compile=True if jax else jit_compile)
    if jax and not net.jit_compile:
        eager = sorted({type(layer).__name__ for layer in net._flatten_layers()
                        if not getattr(layer, "supports_jit", True)})
        raise ValueError(f"under JAX, {net.name!r} cannot be jitted: the layer(s) {eager} declare supports_jit=False, "
                         "so every training step would run op by op. Replace them with layers that can be jitted, "
                         "move that work into the dataset's input pipeline, or use the TensorFlow backend.")


def exclude_vectors_from_weight_decay(net):
    """Exempts `net`'s 1-D weights (biases, normalization scales and offsets) from AdamW's weight decay, which
    then shrinks only matrices and kernels (timm's and big_vision's habit). Call it once the model is built and
    before its optimizer is."""
    vectors = [v for v in net.trainable_variables if len(v.shape) <= 1]
    if vectors:
        net.optimizer.exclude_from_weight_decay(var_list=vectors)


@gin.configurable("train", denylist=list(CALLER_ARGUMENTS))
def train(
    model_dir,
    dataset=gin.REQUIRED,
    model=gin.REQUIRED,
    batch_size=32,
    epochs=10,
    learning_rate=1e-3,
    weight_decay=1e-4,
    weight_decay_vectors=True,
    schedule="constant",
    warmup_epochs=0.0,
    min_learning_rate=0.0,
    label_smoothing=0.0,
    clip_norm=None,
    steps_per_epoch=None,
    shuffle_buffer=10_000,
    cache=True,
    monitor="val_accuracy",
    validation_freq=1,
    jit_compile=False,
    time_budget_min=None,
    ema_momentum=None,
    init_from=None,
    score_train=False,
    seed=0,
    strategy=None,
    is_chief=True,
    on_first_step=None,
    start_time=None,
):
    """Trains a model on a dataset and writes the run directory.

    Resumes from `model_dir` when it holds finished epochs (`resume.json`); a finished run (its
    `metrics.json` written) is left untouched and its metrics returned.

    Args:
        model_dir: str. Run directory.
        dataset: `DataSpec`, e.g. `@datasets.long_range_recall()`.
        model: callable `model(num_classes=...) -> keras.Model`, e.g. `@models.classifier`.
        batch_size: int. Global batch size (split across replicas).
        epochs: int. Total epochs.
        learning_rate: float. Peak learning rate of AdamW.
        weight_decay: float. AdamW decoupled weight decay.
        weight_decay_vectors: bool. Decay 1-D weights (biases, normalization scales and offsets) too; False
            decays only matrices and kernels.
        schedule: str. `"constant"` or `"cosine"` (with linear warmup).
        warmup_epochs: float. Warmup length for the cosine schedule.
        min_learning_rate: float. Final learning rate of the cosine schedule.
        label_smoothing: float. Label smoothing of the training loss (evaluations report the plain
            cross-entropy).
        clip_norm: float or None. Global gradient-norm clipping.
        steps_per_epoch: int or None. Limit the steps per epoch.
        shuffle_buffer: int. Shuffle buffer of the training split.
        cache: bool. Cache decoded examples in memory.
        monitor: str. Validation metric that selects `best.keras` (higher is better).
        validation_freq: int. Validate every N epochs (`metrics.json` always scores the final model).
        jit_compile: bool or "auto". XLA-compile the TensorFlow train step (under JAX it is always jitted).
        time_budget_min: float or None. Train for this many minutes of the run's wall time (start-up,
            data loading and tracing included, summed over resumed segments) instead of a number of
            epochs: `epochs` becomes an upper bound, the cosine schedule decays over the budget's time
            rather than over steps, and training stops when the budget is spent, mid-epoch if need be,
            early enough for that epoch's end (validation, checkpoints) to finish in time
            (`tlbkit.time_budget`). Set `epochs` high enough not to stop first. One worker.
        ema_momentum: float or None. Keep an exponential moving average of the weights (`average =
            m * average + (1 - m) * weights` after each step; 0.999 averages over ~1000 steps) and make it
            the model: validation, `last.keras`/`best.keras`, `metrics.json` and presets score the average,
            while training steps update the raw weights (`tlbkit.ema.EMAWeights`). BatchNorm's moving
            statistics are not averaged (they follow the raw weights). None (default): no average.
        init_from: str or None. Fine-tuning: a preset (name or folder) or run directory whose trained weights
            start this run (`tlbkit.presets.initialize_from`): tokenizer and encoder always, the head when
            the preset's classes are this dataset's, else a new head for the dataset's classes. The model
            the config builds must have the preset's design (train with the preset's `config.gin` as the
            first `--gin_file`). The tokenizer's data statistics come from the preset (no `adapt`). None
            (default): random initial weights.
        score_train: bool. Also score the models of `metrics.json` on the training split as `tlbkit-eval
            --split=train` does (`train_accuracy`, `train_cross_entropy`, `train_examples`; no training
            augmentation, the model's test-time views if any): how well they fit the training data itself,
            where fit's `accuracy` scores the augmented batches it trained on (a model can fit those and not
            the clean series). One inference pass over the training data.
            Defaults to `False`.
        seed: int. Seeds weights, dropout and data order.
        strategy: tf.distribute strategy or None.
        is_chief: bool. Whether this worker writes the run directory.
        on_first_step: callable run after the first training step.
        start_time: float. When this process started (`time.time()`), so the run's wall time includes
            start-up, data loading and tracing. Defaults to now.

    Returns:
        dict of final metrics (also written to `metrics.json`).
    """
    start_time = time.time() if start_time is None else start_time
    _check_arguments(batch_size, epochs, validation_freq, weight_decay_vectors, ema_momentum, time_budget_min,
                     steps_per_epoch, strategy)
    finished = rd.RunDir(model_dir).read_metrics()
    if finished is not None:
        print(f"tlbkit: {model_dir} holds a finished run ({finished.get('epochs_completed')} epochs); nothing to do.")
        return finished
    keras.utils.set_random_seed(seed)

    # === Data ===
    spec, names, resume = _load_dataset(dataset, model_dir, is_chief)
    initial_epoch = int(resume.get("epochs_done", 0))
    train_ds = pipeline.batched(spec, "train", batch_size, True, seed + initial_epoch, shuffle_buffer, cache)
    backends.check_numeric_inputs(train_ds.element_spec[0], "train.dataset")
    val_ds = pipeline.batched(spec, "validation", batch_size, False, cache=cache)
    steps = steps_per_epoch or _steps_per_epoch(train_ds, spec, batch_size)

    # === Model and compile ===
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        net = _make_model(model, spec.num_classes, names, model_dir, is_chief)
        lr = make_learning_rate(learning_rate, schedule, int(warmup_epochs * steps), steps * epochs, min_learning_rate,
                                time_budget=time_budget_min is not None)
        compile_for_training(net, lr, weight_decay, clip_norm, label_smoothing, jit_compile, ema_momentum)
        _build_on_first_batch(net, train_ds, strategy, weight_decay_vectors)
        _initialize_weights(net, spec, batch_size, model_dir, init_from, initial_epoch, epochs)

    # === Callbacks ===
    recorder, budget, callbacks = _make_callbacks(
        model_dir, resume, initial_epoch, monitor, is_chief, on_first_step, start_time, ema_momentum, time_budget_min,
        lr, validation_freq if val_ds is not None else None)
    if budget is not None and initial_epoch and budget.spent(budget.validates_epoch(initial_epoch)):
        budget.stopped = True
        print(f"tlbkit: {model_dir} has spent its time budget ({time_budget_min} min); writing its metrics.")
        epochs = initial_epoch

    # === Fit ===
    if initial_epoch < epochs:
        _fit(net, train_ds, val_ds, initial_epoch, epochs, steps, steps_per_epoch, validation_freq, callbacks)
    _raise_if_non_finite(recorder, model_dir)

    # === Final metrics ===
    metrics = final_metrics(net, spec, model_dir, recorder, steps * batch_size, batch_size, score_train)
    metrics.update(_run_facts(strategy, budget, recorder, steps))
    if is_chief:
        rd.RunDir(model_dir).write_metrics(metrics)
    return metrics


# === The steps of `train` ===
def _check_arguments(batch_size, epochs, validation_freq, weight_decay_vectors, ema_momentum, time_budget_min,
                     steps_per_epoch, strategy):
    """Fails before any work (data, model) on a backend `train` does not support or a bad argument value."""
    backends.check_supported("tlbkit.train.train")
    checks.positive_int("batch_size", batch_size)
    checks.positive_int("epochs", epochs)
    checks.positive_int("validation_freq", validation_freq)
    checks.one_of("weight_decay_vectors", weight_decay_vectors, (True, False))
    check_ema_momentum(ema_momentum)
    if time_budget_min is not None:
        if not isinstance(time_budget_min, (int, float)) or not time_budget_min > 0:
            raise ValueError(f"train.time_budget_min must be a positive number of minutes; got {time_budget_min!r}.")
        if strategy is not None and getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)():
            raise ValueError("train.time_budget_min cannot be used with several workers (each would stop on its "
                             "own clock); give the run a number of train.epochs instead.")
    if steps_per_epoch is not None:
        checks.positive_int("steps_per_epoch", steps_per_epoch)


def _load_dataset(dataset, model_dir, is_chief):
    """Loads `dataset` and reads the run's resume state; the chief records the class names in the run directory.

    Returns:
        `(spec, class_names, resume)`: the `DataSpec`, a list of str (`"0"`, `"1"`, ... when the dataset names
        none) and the dict of `resume.json` (empty for a new run).
    """
    spec = dataset.load()
    if spec.num_classes is None:
        raise ValueError("the dataset gives neither `num_classes` nor `class_names`.")
    resume = rd.RunDir(model_dir).read_resume()
    names = list(spec.class_names or [str(i) for i in range(spec.num_classes)])
    if is_chief:
        rd.RunDir(model_dir).write_classes(names)
    return spec, names, resume


def _make_model(model, num_classes, class_names, model_dir, is_chief):
    """`model(num_classes=...)`, given the class names; the chief records the plugins loading it needs."""
    net = model(num_classes=num_classes)
    if hasattr(net, "class_names"):  # saved with the model: predict_classes names the classes
        net.class_names = class_names
    if is_chief:  # the plugin packages (and versions) that loading this run's models needs
        presets.record_plugins(model_dir, net)
    return net


def _build_on_first_batch(net, train_ds, strategy, weight_decay_vectors):
    """Builds the compiled `net` and its optimizer on the first training batch, whose first examples become
    the probe input its checkpoints record outputs on."""
    example_batch = next(iter(train_ds))
    _build_symbolically(net, example_batch[0])  # shape errors between tokenizer and encoder surface here
    saving.set_probe(net, example_batch[0])  # checkpoints record their outputs on it; every reload compares
    compat.prepare_multi_worker_fit(net, example_batch, strategy)
    if not weight_decay_vectors:
        exclude_vectors_from_weight_decay(net)
    # Optimizer variables created now, not inside the first traced step: otherwise tf.function
    # traces the training step twice (once to create them), ~10 s more at CIFAR shapes.
    net.optimizer.build(net.trainable_variables)


def _build_symbolically(net, inputs):
    """Builds `net` (every layer's weights) by calling it on symbolic tensors shaped like `inputs`.

    Nothing runs: under JAX an eager call runs, and first compiles, every op on its own (for the 3-member
    `ucr.gin` model on a shared core: 41 s eagerly, 14 s this way, most of it the weights' initialisers).
    The weights are the same as an eager call's (same initialisers, same order)."""
    def symbolic(x):
        return keras.KerasTensor(tuple(x.shape), dtype=keras.backend.standardize_dtype(x.dtype))

    net(keras.tree.map_structure(symbolic, inputs))


def _initialize_weights(net, spec, batch_size, model_dir, init_from, initial_epoch, epochs):
    """The weights training starts from: a resumed run's `last.keras`; else `init_from`'s trained weights, or
    (for a model that asks, e.g. a tokenizer's dataset statistics) `net.adapt` on the training split."""
    if init_from is not None and not initial_epoch:
        presets.initialize_from(net, init_from)
    elif getattr(net, "needs_adapt", False) and not initial_epoch:  # e.g. a tokenizer's dataset statistics
        net.adapt(pipeline.batched(spec, "train", batch_size, training=False, cache=False))
    if initial_epoch:
        saving.load_weights(net, rd.RunDir(model_dir).checkpoint("last"))
        if initial_epoch >= epochs:  # interrupted after its last epoch, before metrics.json
            print(f"tlbkit: {model_dir} already finished {initial_epoch}/{epochs} epochs; writing its metrics.")
        else:
            print(f"tlbkit: resuming {model_dir} after epoch {initial_epoch}/{epochs}.")


def _make_callbacks(model_dir, resume, initial_epoch, monitor, is_chief, on_first_step, start_time, ema_momentum,
                    time_budget_min, lr, validation_freq):
    """The callbacks of `fit`, in their order: time budget, EMA swap, `RunRecorder`, TensorBoard (chief).

    Args:
        lr: the learning rate or schedule (a `TimeBudgetCosine` is driven by the budget).
        validation_freq: int, or None when there is no validation split.

    Returns:
        `(recorder, budget, callbacks)`; `budget` is None without `time_budget_min`.
    """
    budget = None
    recorder = RunRecorder(model_dir, resume, monitor, is_chief, on_first_step, start_time,
                           extra_state=lambda: {"time_budget": budget.state()} if budget is not None else {})
    callbacks = [recorder]
    if ema_momentum is not None:  # before the recorder: checkpoints hold the average
        callbacks.insert(0, EMAWeights(resumed=bool(initial_epoch)))
    if time_budget_min is not None:
        budget = TimeBudget(60.0 * time_budget_min, recorder.wall_time, lr if isinstance(lr, TimeBudgetCosine) else None,
                            state=resume.get("time_budget"), validation_freq=validation_freq)
        callbacks.insert(0, budget)  # decides to stop before RunRecorder writes the epoch's resume.json
    if is_chief:
        callbacks.append(
            keras.callbacks.TensorBoard(rd.RunDir(model_dir).tensorboard_dir, write_graph=False, update_freq="epoch")
        )
    return recorder, budget, callbacks


def _fit(net, train_ds, val_ds, initial_epoch, epochs, steps, steps_per_epoch, validation_freq, callbacks):
    """`net.fit` from `initial_epoch` to `epochs`; by steps when `steps_per_epoch` is set or the training
    pipeline is endless (a split smaller than a batch, repeated)."""
    endless = int(train_ds.cardinality()) == -1  # tf.data.INFINITE_CARDINALITY: a split smaller than a batch
    net.fit(
        train_ds.repeat() if steps_per_epoch else train_ds,
        epochs=epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps if steps_per_epoch or endless else None,
        validation_data=val_ds,
        validation_freq=validation_freq,
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
        shuffle=False,  # the pipeline shuffles (seeded)
    )


def _raise_if_non_finite(recorder, model_dir):
    """Raises `NonFiniteLossError`, naming the step and epoch, when `recorder` saw a NaN or Inf loss."""
    if recorder.non_finite is not None:
        batch, loss = recorder.non_finite
        raise NonFiniteLossError(
            f"loss became {loss} at step {batch + 1} of epoch {len(recorder.history) + 1}; training "
            f"stopped and {model_dir}/last.keras keeps the last good epoch ({len(recorder.history)}). "
            "Lower the learning rate or set train.clip_norm."
        )


def _run_facts(strategy, budget, recorder, steps):
    """What `metrics.json` adds to `final_metrics`: the number of replicas and, with a time budget, the
    budget, what stopped the run and how far a budget-stopped last epoch got."""
    facts = {"replicas": strategy.num_replicas_in_sync if strategy is not None else 1}
    if budget is not None:
        facts["time_budget_s"] = budget.budget_s
        facts["stopped_by"] = "time_budget" if budget.stopped else "epochs"
        last = recorder.history[-1] if recorder.history else {}
        if budget.stopped and "steps" in last:
            facts["last_epoch_steps"] = f"{last['steps']}/{steps}"
    return facts


def _steps_per_epoch(train_ds, spec, batch_size):
    card = int(train_ds.cardinality())
    return card if card > 0 else max((spec.num_train_examples or batch_size) // batch_size, 1)


def _same_weights(a, b):
    """Whether models `a` and `b` hold equal weights (every variable, trainable or not, in order)."""
    wa, wb = a.weights, b.weights
    numpy = keras.ops.convert_to_numpy
    return len(wa) == len(wb) and all(
        tuple(x.shape) == tuple(y.shape) and np.array_equal(numpy(x), numpy(y)) for x, y in zip(wa, wb))


def final_metrics(net, spec, model_dir, recorder, examples_per_epoch, batch_size, score_train=False):
    """What `metrics.json` holds: the last model's validation and test metrics (the evaluation path of
    `tlbkit-eval`; with `score_train`, its training-split metrics too), the same for the best model under
    `"best"`, and the run's size and wall time."""
    history = recorder.history
    epoch_seconds = sum(r.get("epoch_time_s", 0.0) for r in history)
    # Rows written before `steps` was recorded count as whole epochs.
    examples = sum(r["steps"] * batch_size if "steps" in r else examples_per_epoch for r in history)
    metrics = {
        "params": int(net.count_params()),
        "epochs_completed": len(history),
        "checkpoint": "last",
        "loss": evaluate_lib.LOSS,
        "train_examples_per_s": round(examples / epoch_seconds, 2) if epoch_seconds else None,
    }
    if spec.validation_note:
        metrics["validation_data"] = spec.validation_note
    splits = [s for s in ("train",) * score_train + ("validation", "test") if spec.split(s) is not None]
    prefix = {"train": "train_", "validation": "val_", "test": "test_"}

    def scores(model):
        out, logits_fn = {}, evaluate_lib.logits_function(model)
        for split in splits:
            result = evaluate_lib.evaluate_model(model, spec, split, batch_size, logits_fn)
            out.update({prefix[split] + k: v for k, v in result.items()})
        return out

    last_scores = scores(net)
    metrics.update(last_scores)
    best_path = rd.RunDir(model_dir).checkpoint("best")
    if recorder.best_epoch is not None and os.path.exists(best_path):
        best = saving.load_model(best_path)
        # The best checkpoint is often the last model (e.g. the final epoch validated best): the same weights
        # score the same, so they are not evaluated again.
        metrics["best"] = {"checkpoint": "best", "epoch": recorder.best_epoch, "monitor": recorder.monitor,
                           **(last_scores if _same_weights(best, net) else scores(best))}
    metrics["wall_time_s"] = round(recorder.wall_time(), 2)
    return metrics
