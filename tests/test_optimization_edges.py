"""Edges of albert_tf.optimization's schedule and AdamW, by hand.

The constants of the original (beta_1 0.9, beta_2 0.999, epsilon 1e-6,
weight decay 0.01) are written here, not imported, so a changed library
constant fails.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from albert_tf.optimization import AdamWeightDecayOptimizer
from albert_tf.optimization import WarmupPolynomialDecay
from albert_tf.optimization import adamw


# --- The schedule ------------------------------------------------------------

def _rate(schedule, step):
    return float(schedule(tf.constant(step, tf.int64)))


def test_schedule_validation_bounds_and_messages():
    WarmupPolynomialDecay(0.0, 1, 0, 0)  # Every bound itself is allowed.
    with pytest.raises(ValueError) as e:
        WarmupPolynomialDecay(0.5, 0)
    assert str(e.value) == ("num_train_steps=0 must be >= 1 (the decay "
                            "divides by it)")
    with pytest.raises(ValueError) as e:
        WarmupPolynomialDecay(0.5, 10, num_warmup_steps=-1)
    assert str(e.value) == "num_warmup_steps=-1 must be >= 0"
    with pytest.raises(ValueError) as e:
        WarmupPolynomialDecay(0.5, 10, start_warmup_step=-1)
    assert str(e.value) == "start_warmup_step=-1 must be >= 0"
    with pytest.raises(ValueError) as e:
        WarmupPolynomialDecay(-0.1, 10)
    assert str(e.value) == "init_lr=-0.1 must be >= 0"


def test_schedule_config_keeps_every_argument():
    schedule = WarmupPolynomialDecay(0.25, 30, 4, start_warmup_step=2,
                                     poly_power=3.0, name="lr")
    assert schedule.get_config() == {
        "init_lr": 0.25, "num_train_steps": 30, "num_warmup_steps": 4,
        "start_warmup_step": 2, "poly_power": 3.0, "name": "lr"}
    clone = WarmupPolynomialDecay.from_config(schedule.get_config())
    for step in (0, 3, 5, 6, 29, 30):
        assert _rate(clone, step) == _rate(schedule, step)


def test_warmup_with_an_offset_ends_exactly_at_s0_plus_w():
    # init_lr 1, T = 10, W = 4, s0 = 2: warmup (s - 2) / 4 for s in 2..5,
    # then decay 1 - s / 10 from s = 6.
    schedule = WarmupPolynomialDecay(1.0, 10, 4, start_warmup_step=2)
    expected = {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.25, 5: 0.75, 6: 0.4, 9: 0.1,
                10: 0.0, 12: 0.0}
    for step, rate in expected.items():
        assert _rate(schedule, step) == pytest.approx(rate, abs=1e-7), step


def test_decay_power_and_one_step():
    # poly_power 0.5 at s = 3 of T = 4: sqrt(1 - 3/4) = 0.5.
    assert _rate(WarmupPolynomialDecay(2.0, 4, poly_power=0.5), 3) == (
        pytest.approx(1.0, rel=1e-6))
    # T = 1: the rate is init_lr at step 0 and 0 from step 1.
    schedule = WarmupPolynomialDecay(0.3, 1)
    assert _rate(schedule, 0) == pytest.approx(0.3, rel=1e-7)
    assert _rate(schedule, 1) == 0.0


# --- AdamW -------------------------------------------------------------------

def test_variable_path_strips_only_a_trailing_output_index():
    keras_var = keras.Variable(np.zeros(2), name="bias")
    assert adamw.variable_path(keras_var) == keras_var.path
    bare = tf.Variable(np.zeros(2), name="dense/kernel")
    assert adamw.variable_path(bare) == "dense/kernel"
    assert bare.name == "dense/kernel:0"


def test_exclusion_patterns_are_searched_anywhere_in_the_path():
    assert adamw.matches_any(["bias"], "encoder/pooler/bias")
    assert adamw.matches_any(["^enc"], "encoder/x")
    assert not adamw.matches_any(["^coder"], "encoder/x")
    assert not adamw.matches_any(None, "encoder/bias")
    assert not adamw.matches_any([], "encoder/bias")
    optimizer = AdamWeightDecayOptimizer()
    assert optimizer.exclude_from_weight_decay == [
        "LayerNorm", "layer_norm", "bias"]
    assert not optimizer.do_use_weight_decay("a/attention_layer_norm/gamma")
    assert not optimizer.do_use_weight_decay("bert/LayerNorm/beta")
    assert optimizer.do_use_weight_decay("a/dense/kernel")
    assert not AdamWeightDecayOptimizer(
        weight_decay_rate=0.0).do_use_weight_decay("a/dense/kernel")
    assert AdamWeightDecayOptimizer(
        exclude_from_weight_decay=None).do_use_weight_decay("a/bias")


def test_adamw_config_round_trip():
    optimizer = AdamWeightDecayOptimizer(
        learning_rate=0.125, weight_decay_rate=0.5, beta_1=0.8, beta_2=0.9,
        epsilon=0.25, exclude_from_weight_decay=("x",), global_clipnorm=2.0,
        name="opt")
    config = optimizer.get_config()
    assert {k: config[k] for k in (
        "name", "weight_decay_rate", "beta_1", "beta_2", "epsilon",
        "exclude_from_weight_decay", "global_clipnorm")} == {
        "name": "opt", "weight_decay_rate": 0.5, "beta_1": 0.8,
        "beta_2": 0.9, "epsilon": 0.25, "exclude_from_weight_decay": ["x"],
        "global_clipnorm": 2.0}
    assert float(config["learning_rate"]) == 0.125
    clone = AdamWeightDecayOptimizer.from_config(config)
    assert clone.get_config() == config


def test_two_adamw_steps_by_hand():
    # w = [1, -2] (decayed), b = [0.5] (excluded by "bias"); lr 0.1.
    kernel = keras.Variable(np.array([1.0, -2.0], np.float32),
                            name="kernel")
    bias = keras.Variable(np.array([0.5], np.float32), name="bias")
    optimizer = AdamWeightDecayOptimizer(learning_rate=0.1)
    grads = [(np.array([2.0, 0.0], np.float32), np.array([-1.0], np.float32)),
             (np.array([1.0, 4.0], np.float32), np.array([3.0], np.float32))]
    w, b = [1.0, -2.0], [0.5]
    m = {"w": [0.0, 0.0], "b": [0.0]}
    v = {"w": [0.0, 0.0], "b": [0.0]}
    for step, (gw, gb) in enumerate(grads):
        optimizer.apply_gradients([(tf.constant(gw), kernel),
                                   (tf.constant(gb), bias)])
        if step == 0:
            # w[0]: m = 0.2, v = 0.004, u = 0.2 / (sqrt(0.004) + 1e-6)
            # = 3.16222766, w = 1 - 0.1 * (u + 0.01 * 1) = 0.68277723.
            # w[1]: g = 0, so only the decay moves it: -2 + 0.1 * 0.02.
            # b: m = -0.1, v = 0.001, no decay: 0.5 + 0.1 * 3.16217766.
            np.testing.assert_allclose(kernel.numpy(),
                                       [0.68277723, -1.998], rtol=1e-6)
            np.testing.assert_allclose(bias.numpy(), [0.81621777],
                                       rtol=1e-6)
        for key, params, g, decay in (("w", w, gw, 0.01), ("b", b, gb, 0.0)):
            for i, gi in enumerate(g):
                m[key][i] = 0.9 * m[key][i] + 0.1 * gi
                v[key][i] = 0.999 * v[key][i] + 0.001 * gi * gi
                u = m[key][i] / (math.sqrt(v[key][i]) + 1e-6)
                params[i] -= 0.1 * (u + decay * params[i])
        np.testing.assert_allclose(kernel.numpy(), w, rtol=1e-5)
        np.testing.assert_allclose(bias.numpy(), b, rtol=1e-5)


def test_adamw_name_and_slot_names_are_the_originals():
    # Slots as the original's "<variable>/adam_m" and "/adam_v" (here Keras
    # joins them with "_"), under the optimizer's default name.
    optimizer = AdamWeightDecayOptimizer()
    kernel = keras.Variable(np.zeros(2, np.float32), name="kernel")
    optimizer.build([kernel])
    assert optimizer.name == "adam_weight_decay"
    assert [v.path for v in optimizer.variables] == [
        "adam_weight_decay/iteration", "adam_weight_decay/learning_rate",
        "adam_weight_decay/kernel_adam_m", "adam_weight_decay/kernel_adam_v"]
