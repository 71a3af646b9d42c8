"""LAMB's two exclusion lists set differently, against a NumPy reference.

albert_tf.optimization.LAMBOptimizer takes exclude_from_weight_decay and
exclude_from_layer_adaptation (lamb_optimizer.py of the original). With
the two lists disjoint, each variable falls in one of four cases (decay
and trust ratio, either alone, neither); the reference applies each rule
from its own list, so using one list where the other belongs fails.
"""

import numpy as np
import pytest
import tensorflow as tf

from albert_tf.optimization import AdamWeightDecayOptimizer
from albert_tf.optimization import LAMBOptimizer
from test_optimization import BIAS
from test_optimization import EMBEDDINGS
from test_optimization import GAMMA
from test_optimization import KERNEL
from test_optimization import SHAPES
from test_optimization import ZERO_KERNEL
from test_optimization import make_variable
from test_optimization import reference_step

PATHS = [KERNEL, BIAS, GAMMA, EMBEDDINGS, ZERO_KERNEL]
LR = 0.05


def _run(optimizer, steps=3, seed=3):
    rng = np.random.default_rng(seed)
    values = {p: rng.normal(size=SHAPES[p]).astype("float32") for p in PATHS}
    values[ZERO_KERNEL][:] = 0.0
    grads = [{p: rng.normal(size=SHAPES[p]) for p in PATHS}
             for _ in range(steps)]
    variables = {p: make_variable(p, values[p]) for p in PATHS}
    optimizer.build(list(variables.values()))
    for step_grads in grads:
        optimizer.apply_gradients(
            [(tf.constant(step_grads[p], tf.float32), variables[p])
             for p in PATHS])
    return values, grads, {p: v.numpy() for p, v in variables.items()}


def _reference(values, grads, decayed, adapted):
    out = {}
    for p in PATHS:
        w = values[p].astype(np.float64)
        m = v = np.zeros_like(w)
        for step_grads in grads:
            w, m, v = reference_step(w, m, v, step_grads[p], LR,
                                     decay=p in decayed, adapt=p in adapted)
        out[p] = w
    return out


@pytest.mark.parametrize("decay_excl, adapt_excl, decayed, adapted", [
    # Decay skips biases and LayerNorm; the trust ratio skips embeddings
    # and LayerNorm: the kernel gets both, the bias only the ratio, the
    # embeddings only decay, gamma neither.
    (["bias", "layer_norm"], ["word_embeddings", "layer_norm"],
     {KERNEL, EMBEDDINGS, ZERO_KERNEL}, {KERNEL, BIAS, ZERO_KERNEL}),
    # Disjoint lists the other way round.
    (["kernel"], ["bias", "gamma"],
     {BIAS, GAMMA, EMBEDDINGS}, {KERNEL, EMBEDDINGS, ZERO_KERNEL}),
])
def test_each_list_rules_its_own_rule(decay_excl, adapt_excl, decayed,
                                      adapted):
    optimizer = LAMBOptimizer(learning_rate=LR,
                              exclude_from_weight_decay=decay_excl,
                              exclude_from_layer_adaptation=adapt_excl)
    for p in PATHS:
        assert optimizer.do_use_weight_decay(p) == (p in decayed), p
        assert optimizer.do_layer_adaptation(p) == (p in adapted), p
    values, grads, actual = _run(optimizer)
    expected = _reference(values, grads, decayed, adapted)
    for p in PATHS:
        np.testing.assert_allclose(actual[p], expected[p], rtol=2e-5,
                                   atol=1e-7, err_msg=p)
    # The cases differ enough to tell apart: swapping the two lists'
    # roles moves every mixed variable.
    swapped = _reference(values, grads, adapted, decayed)
    assert any(not np.allclose(actual[p], swapped[p], rtol=1e-3)
               for p in decayed ^ adapted)


def test_layer_adaptation_defaults_to_the_decay_list():
    """None or [] (truthiness, as the original) means the decay list."""
    for adapt in (None, []):
        optimizer = LAMBOptimizer(learning_rate=LR,
                                  exclude_from_weight_decay=["kernel"],
                                  exclude_from_layer_adaptation=adapt)
        assert optimizer.exclude_from_layer_adaptation == ["kernel"]
        assert not optimizer.do_layer_adaptation(KERNEL)
        assert optimizer.do_layer_adaptation(BIAS)
    config = LAMBOptimizer(
        exclude_from_weight_decay=["bias"],
        exclude_from_layer_adaptation=["gamma"]).get_config()
    assert config["exclude_from_weight_decay"] == ["bias"]
    assert config["exclude_from_layer_adaptation"] == ["gamma"]
    restored = LAMBOptimizer.from_config(config)
    assert restored.do_use_weight_decay(GAMMA)
    assert not restored.do_layer_adaptation(GAMMA)


def test_adamw_never_uses_a_trust_ratio():
    optimizer = AdamWeightDecayOptimizer(
        learning_rate=LR, exclude_from_weight_decay=["bias"])
    values, grads, actual = _run(optimizer)
    decayed = {p for p in PATHS if "bias" not in p}
    expected = _reference(values, grads, decayed, adapted=set())
    for p in PATHS:
        np.testing.assert_allclose(actual[p], expected[p], rtol=2e-5,
                                   atol=1e-7, err_msg=p)


def test_trust_ratio_when_the_update_norm_is_below_one():
    """||u|| in (0, 1) (gradients that change sign) still gives
    ratio ||w|| / ||u||, not 1."""
    path = "encoder/pooler/kernel"
    w0 = np.array([2.0], "float32")
    grads = [1.0, -1.0, 1.0, -1.0]
    variable = make_variable(path, w0)
    optimizer = LAMBOptimizer(learning_rate=LR)
    optimizer.build([variable])
    w = w0.astype(np.float64)
    m = v = np.zeros(1)
    norms = []
    for g in grads:
        optimizer.apply_gradients([(tf.constant([g], tf.float32), variable)])
        m_next = 0.9 * m + 0.1 * g
        v_next = 0.999 * v + 0.001 * g * g
        norms.append(abs(m_next / (np.sqrt(v_next) + 1e-6) + 0.01 * w)[0])
        w, m, v = reference_step(w, m, v, np.array([g]), LR, decay=True,
                                 adapt=True)
    assert min(norms) < 1.0  # The case this test is for occurred.
    np.testing.assert_allclose(variable.numpy(), w, rtol=2e-5)
