"""The training optimizer: Keras' AdamW with each step's scalars computed once, not once per variable."""

import keras
from keras import ops

from tlbkit.serialization import register_serializable


@register_serializable("tlbkit.optimizers.AdamW")
class AdamW(keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` whose updates are the same, bit for bit, in a smaller graph.

    Keras evaluates the learning rate (a whole schedule: warmup, cosine) once for the update and again for
    every weight-decayed variable, and each variable's update recomputes the step's bias corrections
    (casts, two powers, a square root). Within one step these are the same numbers: the step counter
    changes only after every variable is updated. Here they are computed once per step (per dtype) and
    reused, through the same operations in the same order, so every update is unchanged. What shrinks is
    the traced step: for a tiny `recall_cpu.gin` model (67 variables) the optimizer's part of the TensorFlow
    graph fell from 3,042 operations to 1,920, and tracing the first step takes time in proportion to the
    graph (`docs/experiments/2026-12-03-ci-time-tiny-runs.md`).

    Args:
        **kwargs: those of `keras.optimizers.AdamW`.
    """

    _step_learning_rate = None  # the learning rate while one `apply` runs
    _step_alpha = None  # {dtype: the step's bias-corrected learning rate} while one `apply` runs

    def _get_current_learning_rate(self):
        if self._step_learning_rate is not None:
            return self._step_learning_rate
        return super()._get_current_learning_rate()

    def _backend_apply_gradients(self, grads, trainable_variables):
        self._step_learning_rate = super()._get_current_learning_rate()
        self._step_alpha = {}
        try:
            super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            self._step_learning_rate = self._step_alpha = None

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or self._step_alpha is None:  # outside `apply` (called directly): Keras' own step
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        if dtype not in self._step_alpha:  # the same operations as Keras' update_step, once per dtype
            lr = ops.cast(learning_rate, dtype)
            local_step = ops.cast(self.iterations + 1, dtype)
            beta_1_power = ops.power(ops.cast(self.beta_1, dtype), local_step)
            beta_2_power = ops.power(ops.cast(self.beta_2, dtype), local_step)
            self._step_alpha[dtype] = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        alpha = self._step_alpha[dtype]
        gradient = ops.cast(gradient, dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        self.assign_sub(variable, ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon)))
