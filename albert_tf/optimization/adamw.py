"""AdamWeightDecayOptimizer: the original's Adam with decoupled weight decay.

Per variable w with gradient g (original optimization.py):

  m <- beta_1 * m + (1 - beta_1) * g
  v <- beta_2 * v + (1 - beta_2) * g^2
  u <- m / (sqrt(v) + epsilon) [+ weight_decay_rate * w]
  w <- w - lr * u

No bias correction; epsilon outside the sqrt; the decay term is skipped for
variables whose full path matches an `exclude_from_weight_decay` regex.
This is not `keras.optimizers.AdamW`, which bias-corrects, puts epsilon
differently and decays through the base class.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import ops

# The values of the original create_optimizer, for both AdamW and LAMB.
BETA_1 = 0.9
BETA_2 = 0.999
EPSILON = 1e-6  # Keras's default is 1e-7.
WEIGHT_DECAY_RATE = 0.01
# re.search patterns on the variable path, as the original's list. They match
# our Keras paths: ".../layer_norm/gamma", ".../attention_layer_norm/beta",
# ".../ffn_output/bias", and "LayerNorm" in TF1-style names.
EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")


def variable_path(variable) -> str:
    """The full path the exclusion regexes see, e.g. "encoder/pooler/bias".

    Keras 3's `variable.name` is only the leaf ("bias", "gamma"); the original
    matched the full TF1 name, so the full Keras path is the equivalent.
    """
    path = getattr(variable, "path", None)
    if path is None:  # A bare tf.Variable: strip the ":0" as the original did.
        path = re.sub(r":\d+$", "", variable.name)
    return path


def matches_any(patterns: Sequence[str] | None, path: str) -> bool:
    return any(re.search(p, path) is not None for p in patterns or ())


@keras.saving.register_keras_serializable(package="albert_tf")
class AdamWeightDecayOptimizer(keras.optimizers.Optimizer):
    """Adam without bias correction, with weight decay added to the update.

    Keras's own weight decay is not available: the decay is part of the
    update rule here. The runners clip in their training step
    (`clip_by_global_norm`); `global_clipnorm` (Keras's, off by default) is
    for Keras's own `fit`, where the base class clips the (unscaled)
    gradients before update_step, as the original's 1.0 global norm.

    Args:
        learning_rate: float or a LearningRateSchedule of
            `optimizer.iterations` (e.g. WarmupPolynomialDecay).
        weight_decay_rate: decoupled decay; 0 disables it, as the original.
        beta_1, beta_2, epsilon: Adam constants (epsilon outside the sqrt).
        exclude_from_weight_decay: re.search patterns on the variable path.
        global_clipnorm: if set, Keras clips gradients to this global norm.
        name: optimizer name (a prefix of its slot variables).

    Example:
        optimizer = AdamWeightDecayOptimizer(learning_rate=2e-5)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    """

    def __init__(self, learning_rate=0.001,
                 weight_decay_rate: float = WEIGHT_DECAY_RATE,
                 beta_1: float = BETA_1, beta_2: float = BETA_2,
                 epsilon: float = EPSILON,
                 exclude_from_weight_decay: Sequence[str] | None = (
                     EXCLUDE_FROM_WEIGHT_DECAY),
                 global_clipnorm: float | None = None,
                 name: str = "adam_weight_decay"):
        # weight_decay=None: the base class adds no decay of its own.
        super().__init__(learning_rate=learning_rate, name=name,
                         global_clipnorm=global_clipnorm)
        self.weight_decay_rate = weight_decay_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.exclude_from_weight_decay = (
            None if exclude_from_weight_decay is None
            else list(exclude_from_weight_decay))

    def do_use_weight_decay(self, path: str) -> bool:
        """Whether `weight_decay_rate * w` is added to the update of `path`."""
        if not self.weight_decay_rate:
            return False
        return not matches_any(self.exclude_from_weight_decay, path)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # Slot names as the original's "<variable>/adam_m" and "/adam_v".
        self._adam_m, self._adam_v = self.add_optimizer_variables(
            variables, ["adam_m", "adam_v"])
        # Decided once from the paths: inside update_step the TF backend
        # passes the bare tf.Variable, whose name is not always the path.
        self._use_weight_decay_flags = [
            self.do_use_weight_decay(variable_path(v)) for v in variables]

    def _adam_update(self, gradient, variable):
        """Updates m and v; returns u = m / (sqrt(v) + eps) [+ decay * w]."""
        index = self._get_variable_index(variable)
        if isinstance(gradient, tf.IndexedSlices):
            # The original densified sparse (embedding) gradients too: its
            # moment updates decay every row, not only the gathered ones.
            gradient = tf.convert_to_tensor(gradient)
        gradient = ops.cast(gradient, variable.dtype)
        m, v = self._adam_m[index], self._adam_v[index]
        next_m = self.beta_1 * m + (1.0 - self.beta_1) * gradient
        next_v = self.beta_2 * v + (1.0 - self.beta_2) * ops.square(gradient)
        update = next_m / (ops.sqrt(next_v) + self.epsilon)
        if self._use_weight_decay_flags[index]:
            update = update + self.weight_decay_rate * variable
        self.assign(m, next_m)
        self.assign(v, next_v)
        return update

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        update = self._adam_update(gradient, variable)
        self.assign_sub(variable, learning_rate * update)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "learning_rate": super().get_config()["learning_rate"],
            "weight_decay_rate": self.weight_decay_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "exclude_from_weight_decay": self.exclude_from_weight_decay,
            "global_clipnorm": self.global_clipnorm,
        }
