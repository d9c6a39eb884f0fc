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

from tlbkit.api_export import tlbkit_export


@tlbkit_export("tlbkit.time_budget.TimeBudgetCosine")
class TimeBudgetCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup over steps times a cosine decay over the fraction of a time budget spent.

    `lr = min_lr + (peak - min_lr) * min(1, step / warmup_steps) * (1 + cos(pi * progress)) / 2`, where
    `progress` in [0, 1] is set from outside (by `TimeBudget`) before each step.

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
        cosine = 0.5 * (1.0 + ops.cos(math.pi * ops.clip(self.progress, 0.0, 1.0)))
        return self.min_learning_rate + (self.learning_rate - self.min_learning_rate) * warm * cosine

    def get_config(self):
        return {"learning_rate": self.learning_rate, "min_learning_rate": self.min_learning_rate,
                "warmup_steps": self.warmup_steps}


class TimeBudget(keras.callbacks.Callback):
    """Stops training when a wall-clock budget is spent, and tells a `TimeBudgetCosine` how much is.

    Training steps stop early enough for the end of the epoch that follows (validation and checkpoints)
    to finish within the budget: the reserve is the longest time an epoch took from its last training
    step to the start of the next epoch (among validated epochs when there is one); none before the
    first. An epoch whose end leaves less than the reserve stops the run there. `state()` goes into
    `resume.json`, so a resumed run keeps its reserve and a run the budget stopped stays stopped.

    Args:
        budget_s: float. The run's wall-time budget in seconds.
        clock: callable returning the run's wall time so far in seconds (e.g. `RunRecorder.wall_time`).
        schedule: `TimeBudgetCosine` to drive, or None (constant learning rate: only stop).
        state: dict from an earlier `state()` (a resumed run), or None.
    """

    def __init__(self, budget_s, clock, schedule=None, state=None):
        super().__init__()
        if not budget_s > 0:
            raise ValueError(f"the time budget must be positive; got {budget_s} s.")
        self.budget_s = float(budget_s)
        self.clock = clock
        self.schedule = schedule
        state = state or {}
        self.reserve_s = float(state.get("reserve_s", 0.0))
        self.stopped = bool(state.get("stopped", False))
        self._last_step_end = None
        self._validated = False  # whether the epoch now running was validated
        self._reserve_from_validated = bool(state.get("reserve_validated", False))  # reserve_s: a validated end

    def state(self):
        """What a resumed run needs: the reserve and whether the budget stopped training."""
        return {"budget_s": self.budget_s, "reserve_s": round(self.reserve_s, 3),
                "reserve_validated": self._reserve_from_validated, "stopped": self.stopped}

    def spent(self):
        """Whether the run's wall time has reached the budget (less the reserve for an epoch's end)."""
        return self.stopped or self.clock() + self.reserve_s >= self.budget_s

    def _update(self):
        if self.schedule is not None:
            usable = max(self.budget_s - self.reserve_s, 1e-9)
            self.schedule.progress.assign(min(self.clock() / usable, 1.0))

    def _stop(self):
        self.stopped = True
        self.model.stop_training = True

    def on_train_begin(self, logs=None):
        self._update()

    def on_epoch_begin(self, epoch, logs=None):
        if self._last_step_end is not None:  # the previous epoch's end: validation, checkpoints
            tail = time.time() - self._last_step_end
            if self._validated and not self._reserve_from_validated:  # a validated tail outranks others
                self.reserve_s, self._reserve_from_validated = tail, True
            elif self._validated == self._reserve_from_validated:  # the longest end of its kind so far
                self.reserve_s = max(self.reserve_s, tail)
        self._last_step_end = None
        self._validated = False

    def on_train_batch_begin(self, batch, logs=None):
        self._update()

    def on_train_batch_end(self, batch, logs=None):
        self._last_step_end = time.time()
        if self.spent():
            self._stop()

    def on_test_begin(self, logs=None):
        self._validated = True

    def on_epoch_end(self, epoch, logs=None):
        if not self.stopped and self.spent():  # not even one step and an epoch's end left
            self._stop()
