"""The original learning-rate schedule: linear warmup over polynomial decay.

Both parts are functions of the global step s (Keras `optimizer.iterations`,
0 for the first update), as in the original optimization.create_optimizer:

  decay(s)  = init_lr * (1 - min(s, T) / T) ** poly_power    (ends at 0)
  warmup(s) = init_lr * ((s - s0) / W)      while s - s0 < W

with T = num_train_steps, W = num_warmup_steps, s0 = start_warmup_step.
The decay is counted from step 0, not from the end of warmup, so the rate
drops from init_lr * (W - 1) / W to init_lr * (1 - W / T) at s = s0 + W.
"""

from __future__ import annotations

import keras
from keras import ops

# tf.train.polynomial_decay(..., end_learning_rate=0.0) in the original.
END_LEARNING_RATE = 0.0


@keras.saving.register_keras_serializable(package="albert_tf")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Polynomial decay to 0 with linear warmup from 0, as the original.

    Deliberate deviation, for s < start_warmup_step only: the original's
    warmup branch is taken there too (s - s0 < W holds) and gives a negative
    rate, init_lr * (s - s0) / W, i.e. gradient ascent. Here the rate is 0
    until warmup starts. Every step s >= s0 gives the original's value.

    Example:
        schedule = WarmupPolynomialDecay(
            init_lr=0.00176, num_train_steps=125000, num_warmup_steps=3125)
        schedule(3125)  # 0.00176 * (1 - 3125 / 125000)
    """

    def __init__(self, init_lr: float, num_train_steps: int,
                 num_warmup_steps: int = 0, start_warmup_step: int = 0,
                 poly_power: float = 1.0, name: str | None = None):
        super().__init__()
        if num_train_steps < 1:
            raise ValueError(
                f"num_train_steps={num_train_steps} must be >= 1 (the decay "
                "divides by it)")
        if num_warmup_steps < 0:
            raise ValueError(
                f"num_warmup_steps={num_warmup_steps} must be >= 0")
        if start_warmup_step < 0:
            raise ValueError(
                f"start_warmup_step={start_warmup_step} must be >= 0")
        if init_lr < 0:
            raise ValueError(f"init_lr={init_lr} must be >= 0")
        self.init_lr = init_lr
        self.num_train_steps = num_train_steps
        self.num_warmup_steps = num_warmup_steps
        self.start_warmup_step = start_warmup_step
        self.poly_power = poly_power
        self.name = name

    def __call__(self, step):
        # TF polynomial_decay, cycle=False: the float32 step is capped at T.
        step_float = ops.minimum(ops.cast(step, "float32"),
                                 float(self.num_train_steps))
        fraction_done = step_float / float(self.num_train_steps)
        learning_rate = (
            (self.init_lr - END_LEARNING_RATE)
            * ops.power(1.0 - fraction_done, self.poly_power)
            + END_LEARNING_RATE)
        # As the original, no warmup at all when num_warmup_steps is 0.
        if not self.num_warmup_steps:
            return learning_rate
        # As the original: the offset step and the comparison are int32, the
        # fraction is float32 and is multiplied into init_lr last.
        warmup_steps_done = ops.cast(step, "int32") - self.start_warmup_step
        is_warmup = warmup_steps_done < self.num_warmup_steps
        # The deviation documented above: no negative rate before s0.
        warmup_steps_done = ops.maximum(warmup_steps_done, 0)
        warmup_learning_rate = self.init_lr * (
            ops.cast(warmup_steps_done, "float32")
            / float(self.num_warmup_steps))
        return ops.where(is_warmup, warmup_learning_rate, learning_rate)

    def get_config(self) -> dict:
        return {
            "init_lr": self.init_lr,
            "num_train_steps": self.num_train_steps,
            "num_warmup_steps": self.num_warmup_steps,
            "start_warmup_step": self.start_warmup_step,
            "poly_power": self.poly_power,
            "name": self.name,
        }
