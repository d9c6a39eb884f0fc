"""The callback that writes a run directory while `fit` trains."""

import math
import os
import time

import keras

from tlbkit import run_dir as rd
from tlbkit import saving


CURVES_EVERY_S = 30.0  # seconds between redraws of curves.png during training


class RunRecorder(keras.callbacks.Callback):
    """Writes the run directory after each epoch, so a crash never loses more than the epoch under way.

    After each epoch: `last.keras` (model + optimizer; after the first, reloaded once to check that every
    weight comes back), `best.keras` when the monitored validation metric improved, `resume.json` (epochs
    done, history, best value, the run's wall time so far) and `history.csv`; all atomic. `curves.png` is
    redrawn after an epoch when `CURVES_EVERY_S` have passed since it was last drawn, and when training ends
    (drawing it takes about a second: every epoch, it would cost a run of short epochs a fifth of its time).
    Also calls `on_first_step` once after the first training step, and stops training on a NaN/Inf loss,
    keeping the last good epoch.

    The wall time adds up over the segments of a resumed run: each segment counts from `start_time`
    (its process start, data loading and tracing included) to the end of its last epoch. Each history
    row holds `time_s`, the run's wall time at the end of that epoch, so validation accuracy can be
    plotted against wall-clock time, and `steps`, the training steps the epoch ran.

    Args:
        model_dir: str. The run directory.
        resume: dict. The content of `resume.json` (empty for a new run).
        monitor: str. Metric for `best.keras` (higher is better).
        write: bool. False on non-chief workers (they save to a scratch folder).
        on_first_step: callable run once after the first training step, or None.
        start_time: float. `time.time()` when this segment started.
        extra_state: callable returning a dict added to `resume.json` (e.g. a time budget's state), or None.
    """

    def __init__(self, model_dir, resume, monitor, write, on_first_step=None, start_time=None, extra_state=None):
        super().__init__()
        self.model_dir = model_dir
        self.run = rd.RunDir(model_dir)
        self.history = list(resume.get("history", []))
        self.best = resume.get("best")
        self.best_epoch = resume.get("best_epoch")
        self.wall_before = float(resume.get("wall_time_s", 0.0))
        self.monitor = monitor
        self.write = write
        self.on_first_step = on_first_step
        self.start_time = time.time() if start_time is None else start_time
        self.extra_state = extra_state
        self.non_finite = None
        self._stepped = False
        self._checked = False
        self._epoch_start = None
        self._steps = 0
        self._curves_at = None  # time.time() when curves.png was last drawn
        self._curves_stale = False

    def wall_time(self):
        """The run's wall time so far: earlier segments plus this one."""
        return self.wall_before + (time.time() - self.start_time)

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
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
        self._steps = 0

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
        row["steps"] = self._steps  # fewer than an epoch's when a time budget stopped it
        row["time_s"] = round(self.wall_time(), 3)
        target = self.run if self.write else self.run.scratch()
        os.makedirs(target.path, exist_ok=True)
        last = target.save_checkpoint(self.model, "last")
        if not self._checked and self.write:
            # The first checkpoint must reload whole: better to stop now than after the last epoch.
            saving.load_model(last)
            self._checked = True
        value = row.get(self.monitor)
        if value is not None and (self.best is None or value > self.best):
            self.best, self.best_epoch = value, epoch + 1
            target.save_checkpoint(self.model, "best")
        self.history.append(row)
        if not self.write:
            return
        self.run.write_resume({
            "epochs_done": epoch + 1, "history": self.history, "best": self.best, "best_epoch": self.best_epoch,
            "monitor": self.monitor, "wall_time_s": row["time_s"], **(self.extra_state() if self.extra_state else {}),
        })
        draw = self._curves_at is None or time.time() - self._curves_at >= CURVES_EVERY_S
        self.run.write_history(self.history, curves=draw)
        self._curves_stale = not draw
        if draw:
            self._curves_at = time.time()

    def on_train_end(self, logs=None):
        if self._curves_stale:
            self.run.write_history(self.history)
            self._curves_stale = False
