"""An exponential moving average (EMA) of the weights as the model a run validates, saves and scores."""

import keras


def check_ema_momentum(ema_momentum):
    """None, or a float strictly between 0 and 1.

    Raises:
        ValueError: naming the bad value.
    """
    if ema_momentum is None:
        return
    if isinstance(ema_momentum, bool) or not isinstance(ema_momentum, (int, float)) or not 0.0 < ema_momentum < 1.0:
        raise ValueError(f"train.ema_momentum must be None (no average) or a number strictly between 0 and 1, "
                         f"e.g. 0.999 (an average over ~1000 steps); got {ema_momentum!r}.")


class EMAWeights(keras.callbacks.Callback):
    """Makes the optimizer's moving average of the weights the model that `fit` validates, that each epoch's
    checkpoints hold and that is left in the model when training ends; training steps keep updating the raw
    weights.

    The optimizer (built with `use_ema=True`) keeps the average in its own variables; this callback swaps
    the two sets of values in place:

    - around each evaluation (validation inside `fit`): the average is scored;
    - at each epoch end (place this callback before the one that writes checkpoints): the average goes into
      the model and the raw weights into the optimizer's average slots, so a checkpoint with optimizer
      state (`last.keras`) is the averaged model and still holds both sets;
    - at the next epoch's start, in this run or in one resumed from that checkpoint (`resumed=True`):
      swapped back.

    `fit` ends by copying the optimizer's slots into the model (`finalize_variable_values`), which after an
    epoch-end swap would bring back the raw weights: `on_train_end` puts the average back. Non-trainable
    state (BatchNorm's moving statistics) is not averaged: it follows the raw weights.

    Every swap happens where the variables hold the current values under each backend: under JAX, `fit`
    carries the values through its jitted steps and writes them back into the variables at each epoch's
    end, before validation and `on_epoch_end`, and reads them again at the next epoch's first step, after
    `on_epoch_begin`.

    Args:
        resumed: bool. The model's weights and optimizer state were loaded from a checkpoint written
            while this callback had the average in the model (an epoch end).
    """

    def __init__(self, resumed=False):
        super().__init__()
        self.average_in_model = bool(resumed)
        self._for_test = False
        self._average = None

    def _pairs(self):
        optimizer = self.model.optimizer
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # mixed precision's LossScaleOptimizer
        if not getattr(optimizer, "use_ema", False) or not hasattr(optimizer, "_model_variables_moving_average"):
            raise ValueError("EMAWeights needs a built optimizer with use_ema=True (train.ema_momentum).")
        return list(zip(optimizer._trainable_variables, optimizer._model_variables_moving_average))

    def swap(self):
        """Exchanges the model's trainable weights with the optimizer's averages."""
        for variable, average in self._pairs():
            value = keras.ops.convert_to_numpy(variable)
            variable.assign(average)
            average.assign(value)
        self.average_in_model = not self.average_in_model

    def on_epoch_begin(self, epoch, logs=None):
        if self.average_in_model:  # after an epoch end, or resumed from its checkpoint: the raw weights train on
            self.swap()

    def on_test_begin(self, logs=None):
        if not self.average_in_model:
            self.swap()
            self._for_test = True

    def on_test_end(self, logs=None):
        if self._for_test:
            self.swap()
            self._for_test = False

    def on_epoch_end(self, epoch, logs=None):
        if not self.average_in_model:
            self.swap()
        self._average = [keras.ops.convert_to_numpy(variable) for variable, _ in self._pairs()]

    def on_train_end(self, logs=None):
        if self._average is not None:  # undo finalize_variable_values: the average stays in the model
            for (variable, _), value in zip(self._pairs(), self._average):
                variable.assign(value)
