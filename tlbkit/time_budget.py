"""Training to a wall-clock budget: a cosine schedule driven by elapsed time, and the callback that drives it.

`train.time_budget_min` makes a run's length a number of minutes rather than a number of epochs: the
cosine decay reaches its floor when the budget is spent, and training stops there, in the middle of an
epoch if need be (that epoch is validated and checkpointed like any other). The budget counts the run's
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

    Training steps stop early enough for the validation that follows to end within the budget: the
    reserve is the duration of the last validation pass (none before the first).

    Args:
        budget_s: float. The run's wall-time budget in seconds.
        clock: callable returning the run's wall time so far in seconds (e.g. `RunRecorder.wall_time`).
        schedule: `TimeBudgetCosine` to drive, or None (constant learning rate: only stop).
    """

    def __init__(self, budget_s, clock, schedule=None):
        super().__init__()
        if not budget_s > 0:
            raise ValueError(f"the time budget must be positive; got {budget_s} s.")
        self.budget_s = float(budget_s)
        self.clock = clock
        self.schedule = schedule
        self.reserve_s = 0.0
        self.stopped = False
        self.steps_in_epoch = 0
        self._test_start = None

    def spent(self):
        """Whether the run's wall time has reached the budget (less the validation reserve)."""
        return self.clock() + self.reserve_s >= self.budget_s

    def _update(self):
        if self.schedule is not None:
            usable = max(self.budget_s - self.reserve_s, 1e-9)
            self.schedule.progress.assign(min(self.clock() / usable, 1.0))

    def on_train_begin(self, logs=None):
        self._update()

    def on_epoch_begin(self, epoch, logs=None):
        self.steps_in_epoch = 0

    def on_train_batch_begin(self, batch, logs=None):
        self._update()

    def on_train_batch_end(self, batch, logs=None):
        self.steps_in_epoch += 1
        if self.spent():
            self.stopped = True
            self.model.stop_training = True

    def on_test_begin(self, logs=None):
        self._test_start = time.time()

    def on_test_end(self, logs=None):
        if self._test_start is not None:
            self.reserve_s = time.time() - self._test_start
