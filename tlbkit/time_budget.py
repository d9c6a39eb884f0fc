"""Training to a wall-clock budget: a cosine schedule driven by elapsed time, and the callback that drives it.

`train.time_budget_min` makes a run's length a number of minutes rather than a number of epochs: the
cosine decay reaches its floor when the budget is spent, and training stops there, in the middle of an
epoch if need be (that epoch is checkpointed like any other, and validated when `validation_freq` says so). The budget counts the run's
whole wall time, as `history.csv`'s `time_s` does: process start-up, data loading and tracing
included, summed over the segments of a resumed run. So a recipe stated as "N minutes on this machine"
uses all N minutes on a slower or busier machine too, with its learning rate annealed to the end
instead of cut off mid-schedule.
"""

import math
import time

import keras
from keras import ops

from tlbkit import checks
from tlbkit.serialization import register_serializable


@register_serializable("tlbkit.time_budget.TimeBudgetCosine")
class TimeBudgetCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup over steps times a cosine decay over the fraction of a time budget spent.

    `lr = min_lr + (peak - min_lr) * min(1, step / warmup_steps) * (1 + cos(pi * progress)) / 2`, where
    `progress` in [0, 1] is set from outside (by `TimeBudget`) before each step, and a compiled training
    step reads the value set before it ran, not the one it was compiled with: under TensorFlow the step
    reads the variable; under JAX, whose jitted step sees only the variables Keras passes it (the model's,
    the optimizer's and the metrics'), the step asks the host for the value with
    `jax.experimental.io_callback` (a few microseconds per step on the CPU).

    Args:
        learning_rate: float. Peak learning rate.
        min_learning_rate: float. Learning rate when the budget is spent.
        warmup_steps: int. Steps of linear warmup from 0 (0: none).
    """

    def __init__(self, learning_rate, min_learning_rate=0.0, warmup_steps=0):
        self.learning_rate = float(learning_rate)
        self.min_learning_rate = float(min_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.progress = keras.Variable(0.0, dtype="float32", trainable=False, name="time_budget_progress")

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps)) if self.warmup_steps else 1.0
        cosine = 0.5 * (1.0 + ops.cos(math.pi * ops.clip(self._live_progress(), 0.0, 1.0)))
        return self.min_learning_rate + (self.learning_rate - self.min_learning_rate) * warm * cosine

    def _live_progress(self):
        if keras.backend.backend() != "jax":
            return self.progress
        import jax
        import numpy as np
        from jax.experimental import io_callback

        def read():
            return np.asarray(keras.ops.convert_to_numpy(self.progress), "float32")

        return io_callback(read, jax.ShapeDtypeStruct((), np.float32))

    def get_config(self):
        return {"learning_rate": self.learning_rate, "min_learning_rate": self.min_learning_rate,
                "warmup_steps": self.warmup_steps}


class TimeBudget(keras.callbacks.Callback):
    """Stops training when a wall-clock budget is spent, and tells a `TimeBudgetCosine` how much is.

    Training steps stop early enough for the end of the epoch now running (validation and checkpoints)
    to finish within the budget. The reserve kept for that end is the longest time an epoch of the same
    kind took from its last training step to the start of the next epoch: validated ends and plain ends
    (no validation, `validation_freq`) are timed apart, so a run that validates every few epochs is not
    cut early for a validation its last epoch will not run. Before an end of that kind was timed, the
    other kind's stands in; none before the first epoch's end. An epoch whose end leaves less than the
    next epoch's reserve stops the run there. The schedule's progress is measured against the budget
    less the shortest reserve, so the learning rate never rises between epochs and reaches its floor
    where the run stops (just short of it when the last end is the longer kind). `state()` goes into
    `resume.json`, so a resumed run keeps its reserves and a run the budget stopped stays stopped.

    Args:
        budget_s: float. The run's wall-time budget in seconds.
        clock: callable returning the run's wall time so far in seconds (e.g. `RunRecorder.wall_time`).
        schedule: `TimeBudgetCosine` to drive, or None (constant learning rate: only stop).
        state: dict from an earlier `state()` (a resumed run), or None.
        validation_freq: int or None. `fit`'s `validation_freq`: the epoch numbered `i` from 0 ends
            with a validation when `(i + 1) % validation_freq == 0`; None when nothing is validated.
    """

    def __init__(self, budget_s, clock, schedule=None, state=None, validation_freq=1):
        super().__init__()
        if not budget_s > 0:
            raise ValueError(f"the time budget must be positive; got {budget_s} s.")
        if validation_freq is not None:
            checks.positive_int("validation_freq", validation_freq)
        self.budget_s = float(budget_s)
        self.clock = clock
        self.schedule = schedule
        self.validation_freq = validation_freq
        state = state or {}
        if "reserve_validated" in state:  # written before the two kinds were timed apart: one reserve
            self.reserves = {bool(state["reserve_validated"]): float(state.get("reserve_s", 0.0))}
            self.reserves.setdefault(not state["reserve_validated"], 0.0)
        else:
            self.reserves = {False: float(state.get("reserve_s", 0.0)),
                             True: float(state.get("reserve_validated_s", 0.0))}
        self.stopped = bool(state.get("stopped", False))
        self._last_step_end = None
        self._validated = False  # whether the epoch now running was validated (seen by on_test_begin)
        self._validates = None  # whether the epoch now running will be; None: not known yet

    def validates_epoch(self, epoch):
        """Whether the epoch numbered `epoch` from 0 ends with a validation."""
        return self.validation_freq is not None and (epoch + 1) % self.validation_freq == 0

    def _reserve_for(self, validates):
        if validates is None:  # not known: the longer kind
            return max(self.reserves.values())
        return self.reserves[validates] or self.reserves[not validates]

    @property
    def reserve_s(self):
        """Seconds kept for the end of the epoch now running."""
        return self._reserve_for(self._validates)

    def state(self):
        """What a resumed run needs: the reserves and whether the budget stopped training."""
        return {"budget_s": self.budget_s, "reserve_s": round(self.reserves[False], 3),
                "reserve_validated_s": round(self.reserves[True], 3), "stopped": self.stopped}

    def spent(self, validates=None):
        """Whether the run's wall time has reached the budget less the reserve for an epoch's end (that of
        the epoch now running; with `validates`, that of an epoch which will or will not be validated)."""
        reserve = self.reserve_s if validates is None else self._reserve_for(validates)
        return self.stopped or self.clock() + reserve >= self.budget_s

    def _update(self):
        if self.schedule is not None:
            known = [r for r in self.reserves.values() if r > 0]
            usable = max(self.budget_s - (min(known) if known else 0.0), 1e-9)
            self.schedule.progress.assign(min(self.clock() / usable, 1.0))

    def _stop(self):
        self.stopped = True
        self.model.stop_training = True

    def on_train_begin(self, logs=None):
        self._update()

    def on_epoch_begin(self, epoch, logs=None):
        if self._last_step_end is not None:  # the previous epoch's end: validation, checkpoints
            tail = time.time() - self._last_step_end
            self.reserves[self._validated] = max(self.reserves[self._validated], tail)
        self._last_step_end = None
        self._validated = False
        self._validates = self.validates_epoch(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        self._update()

    def on_train_batch_end(self, batch, logs=None):
        self._last_step_end = time.time()
        if self.spent():
            self._stop()

    def on_test_begin(self, logs=None):
        self._validated = True

    def on_epoch_end(self, epoch, logs=None):
        # Not even one step and the next epoch's end left.
        if not self.stopped and self.spent(self.validates_epoch(epoch + 1)):
            self._stop()
