"""create_optimizer and the gradient clipping of the original recipe.

The original optimization.create_optimizer built the schedule, the optimizer,
the gradients and the clipping in one graph function. Here the optimizer and
its schedule come from `create_optimizer`; the training step computes the
gradients and calls `clip_by_global_norm` before `apply_gradients`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import tensorflow as tf
from absl import logging

from albert_tf.optimization.adamw import BETA_1
from albert_tf.optimization.adamw import BETA_2
from albert_tf.optimization.adamw import EPSILON
from albert_tf.optimization.adamw import EXCLUDE_FROM_WEIGHT_DECAY
from albert_tf.optimization.adamw import WEIGHT_DECAY_RATE
from albert_tf.optimization.adamw import AdamWeightDecayOptimizer
from albert_tf.optimization.lamb import LAMBOptimizer
from albert_tf.optimization.schedules import WarmupPolynomialDecay

OPTIMIZERS = ("adamw", "lamb")
# As the original: clip_by_global_norm(grads, clip_norm=1.0).
GRADIENT_CLIP_NORM = 1.0


def create_optimizer(
    init_lr: float,
    num_train_steps: int,
    num_warmup_steps: int,
    *,
    start_warmup_step: int = 0,
    poly_power: float = 1.0,
    optimizer: str = "adamw",
    weight_decay_rate: float = WEIGHT_DECAY_RATE,
) -> keras.optimizers.Optimizer:
    """The original's optimizer: LAMB or AdamW on WarmupPolynomialDecay.

    `optimizer` defaults to "adamw" as the original function (run_pretraining
    passes "lamb"). The original hard-coded weight_decay_rate=0.01; it is an
    argument here with that default. Its `excluded_tvars` argument is not
    carried over: choose the variables in the training step, building a new
    list (the original removed items from the list it was iterating over,
    which skips the item after each removal).

    Example:
        optimizer = create_optimizer(0.00176, 125000, 3125, optimizer="lamb")
        with tf.GradientTape() as tape:
            loss = ...
        grads = tape.gradient(loss, model.trainable_variables)
        grads, _ = clip_by_global_norm(grads)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"optimizer={optimizer!r} is not supported; expected one of "
            f"{OPTIMIZERS}")
    schedule = WarmupPolynomialDecay(
        init_lr=init_lr, num_train_steps=num_train_steps,
        num_warmup_steps=num_warmup_steps, start_warmup_step=start_warmup_step,
        poly_power=poly_power)
    if num_warmup_steps:
        logging.info("Warmup starts at step %d, for %d steps",
                     start_warmup_step, num_warmup_steps)
    logging.info("Using %s: init_lr=%g, num_train_steps=%d, poly_power=%g, "
                 "weight_decay_rate=%g", optimizer, init_lr, num_train_steps,
                 poly_power, weight_decay_rate)
    optimizer_class = (
        LAMBOptimizer if optimizer == "lamb" else AdamWeightDecayOptimizer)
    return optimizer_class(
        learning_rate=schedule, weight_decay_rate=weight_decay_rate,
        beta_1=BETA_1, beta_2=BETA_2, epsilon=EPSILON,
        exclude_from_weight_decay=EXCLUDE_FROM_WEIGHT_DECAY)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """create_optimizer's arguments, as the runners' flags give them.

    Defaults are run_classifier's (AdamW); run_pretraining passes LAMB,
    0.00176, 125000 steps and 3125 warmup steps.
    """

    optimizer: str = "adamw"
    learning_rate: float = 5e-5
    num_train_steps: int = 1000
    num_warmup_steps: int = 0
    start_warmup_step: int = 0
    poly_power: float = 1.0


def build_optimizer(config: OptimizerConfig,
                    dtype: str = "float32") -> keras.optimizers.Optimizer:
    """create_optimizer(config), with dynamic loss scaling for float16."""
    optimizer = create_optimizer(
        config.learning_rate, config.num_train_steps, config.num_warmup_steps,
        start_warmup_step=config.start_warmup_step,
        poly_power=config.poly_power, optimizer=config.optimizer)
    if dtype == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def clip_by_global_norm(
    grads: Sequence[tf.Tensor | tf.IndexedSlices | None],
    clip_norm: float = GRADIENT_CLIP_NORM,
) -> tuple[list, tf.Tensor]:
    """Scales `grads` so that their joint L2 norm is at most `clip_norm`.

    Returns (clipped_grads, global_norm_before_clipping); None gradients stay
    None. Under `strategy.run` this clips each replica's gradients before
    Keras sums them across replicas, as the original on TPU, whose
    CrossShardOptimizer averaged the already clipped per-shard gradients. With
    a per-replica loss scaled by 1/global_batch (Keras's convention), pass
    clip_norm=GRADIENT_CLIP_NORM / num_replicas to reproduce that exactly:
    clip(g / n, c / n) == clip(g, c) / n.
    """
    # This is how the model was pre-trained.
    clipped, global_norm = tf.clip_by_global_norm(list(grads), clip_norm)
    return clipped, global_norm
