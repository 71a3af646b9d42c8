"""LAMBOptimizer: the original lamb_optimizer.py update rule.

The AdamW update u (see adamw.py: no bias correction, epsilon outside the
sqrt, weight decay added to u) scaled per variable by a trust ratio:

  r = ||w|| / ||u||   (Frobenius norms; 1.0 if either is 0)
  w <- w - r * lr * u

Variables matching `exclude_from_layer_adaptation` use r = 1. No clipping of
r. Not `keras.optimizers.Lamb`, which bias-corrects, uses epsilon 1e-7,
decays weights in the base class and adapts every variable.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from albert_tf.optimization.adamw import BETA_1
from albert_tf.optimization.adamw import BETA_2
from albert_tf.optimization.adamw import EPSILON
from albert_tf.optimization.adamw import EXCLUDE_FROM_WEIGHT_DECAY
from albert_tf.optimization.adamw import WEIGHT_DECAY_RATE
from albert_tf.optimization.adamw import AdamWeightDecayOptimizer
from albert_tf.optimization.adamw import matches_any
from albert_tf.optimization.adamw import variable_path


@keras.saving.register_keras_serializable(package="albert_tf")
class LAMBOptimizer(AdamWeightDecayOptimizer):
    """Layer-wise adaptive moments (You et al. 2019), as ALBERT pretrained.

    Args: as AdamWeightDecayOptimizer, plus
        exclude_from_layer_adaptation: re.search patterns on the variable path
            for variables that get r = 1. As the original, None *or empty*
            means "the same as exclude_from_weight_decay".

    Example:
        optimizer = LAMBOptimizer(learning_rate=WarmupPolynomialDecay(
            0.00176, num_train_steps=125000, num_warmup_steps=3125))
    """

    def __init__(self, learning_rate=0.001,
                 weight_decay_rate: float = WEIGHT_DECAY_RATE,
                 beta_1: float = BETA_1, beta_2: float = BETA_2,
                 epsilon: float = EPSILON,
                 exclude_from_weight_decay: Sequence[str] | None = (
                     EXCLUDE_FROM_WEIGHT_DECAY),
                 exclude_from_layer_adaptation: Sequence[str] | None = None,
                 global_clipnorm: float | None = None,
                 name: str = "lamb"):
        super().__init__(
            learning_rate=learning_rate, weight_decay_rate=weight_decay_rate,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            exclude_from_weight_decay=exclude_from_weight_decay,
            global_clipnorm=global_clipnorm, name=name)
        # Truthiness as the original: [] falls back to the decay exclusions.
        self.exclude_from_layer_adaptation = (
            list(exclude_from_layer_adaptation)
            if exclude_from_layer_adaptation else
            self.exclude_from_weight_decay)

    def do_layer_adaptation(self, path: str) -> bool:
        """Whether the update of `path` is scaled by the trust ratio."""
        return not matches_any(self.exclude_from_layer_adaptation, path)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._layer_adaptation_flags = [
            self.do_layer_adaptation(variable_path(v)) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        update = self._adam_update(gradient, variable)
        if self._layer_adaptation_flags[self._get_variable_index(variable)]:
            # ||w|| of the weights before this step, ||u|| including decay.
            w_norm = ops.sqrt(ops.sum(ops.square(variable)))
            u_norm = ops.sqrt(ops.sum(ops.square(update)))
            ratio = ops.where(
                w_norm > 0.0,
                ops.where(u_norm > 0.0, w_norm / u_norm, 1.0),
                1.0)
            learning_rate = ratio * learning_rate
        self.assign_sub(variable, learning_rate * update)

    def get_config(self) -> dict:
        return {**super().get_config(),
                "exclude_from_layer_adaptation":
                    self.exclude_from_layer_adaptation}
