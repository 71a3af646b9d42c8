"""The original ALBERT optimizers, schedule and clipping (re-exports only)."""

from albert_tf.optimization.adamw import AdamWeightDecayOptimizer
from albert_tf.optimization.factory import GRADIENT_CLIP_NORM
from albert_tf.optimization.factory import OptimizerConfig
from albert_tf.optimization.factory import build_optimizer
from albert_tf.optimization.factory import clip_by_global_norm
from albert_tf.optimization.factory import create_optimizer
from albert_tf.optimization.lamb import LAMBOptimizer
from albert_tf.optimization.schedules import WarmupPolynomialDecay

__all__ = [
    "AdamWeightDecayOptimizer",
    "GRADIENT_CLIP_NORM",
    "LAMBOptimizer",
    "OptimizerConfig",
    "WarmupPolynomialDecay",
    "build_optimizer",
    "clip_by_global_norm",
    "create_optimizer",
]
