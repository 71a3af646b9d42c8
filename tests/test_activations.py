"""Every supported `hidden_act` against a formula written out in NumPy.

The original's modeling.gelu is the tanh approximation; HF's "gelu" is the
erf form. A mix-up changes every activation by up to ~5e-4 and goes
unnoticed by shape tests, so each function is checked numerically, and the
encoder and MLM head are checked to use the configured one.
"""

import math

import keras
import numpy as np
import pytest

import helpers
from albert_tf import AlbertEncoder
from albert_tf import config as config_lib
from albert_tf import layers


def _gelu_tanh(x):
    # modeling.gelu in the original.
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi)
                                    * (x + 0.044715 * x ** 3)))


def _gelu_erf(x):
    return np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))
                     for v in x])


def _swish(x):
    # x * sigmoid(x), with sigmoid written so exp never overflows.
    return np.array([v / (1.0 + math.exp(-v)) if v >= 0
                     else v * math.exp(v) / (1.0 + math.exp(v)) for v in x])


REFERENCE = {
    "gelu": _gelu_tanh,
    "gelu_new": _gelu_tanh,
    "gelu_exact": _gelu_erf,
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": lambda x: np.array([math.tanh(v) for v in x]),
    "swish": _swish,
}

# Dense where the functions bend, then large |x| up to float32's range.
_LARGE = [30.0, 50.0, 100.0, 1e3, 1e4, 1e6, 1e13, 1e30, 3e38]
POINTS = np.concatenate([np.linspace(-8.0, 8.0, 3201), [0.0, 1e-30, 1e-7],
                         _LARGE, [-v for v in _LARGE]]).astype(np.float32)


def test_every_supported_activation_has_a_reference():
    assert set(config_lib.ACTIVATIONS) == set(REFERENCE)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activation_matches_numpy_formula(name):
    x = POINTS.astype(np.float64)
    with np.errstate(over="ignore"):  # x**3 of 1e30 is inf: tanh -> +-1.
        expected = REFERENCE[name](x)
    assert np.all(np.isfinite(expected))
    got = np.asarray(layers.get_activation(name)(
        keras.ops.convert_to_tensor(POINTS)), np.float64)
    assert got.dtype == np.float64 and got.shape == POINTS.shape
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-6,
                               err_msg=name)


def test_tanh_and_erf_gelu_are_told_apart():
    """The tolerance above is far below the gap between the two GELUs."""
    x = POINTS.astype(np.float64)
    with np.errstate(over="ignore"):
        gap = np.abs(_gelu_tanh(x) - _gelu_erf(x)).max()
    assert gap > 1e-4
    got = np.asarray(layers.get_activation("gelu")(
        keras.ops.convert_to_tensor(POINTS)), np.float64)
    assert np.abs(got - _gelu_erf(x)).max() > 1e-4


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activation_stays_finite_in_half_precision(name, dtype):
    # x**3 overflows float16 above ~40; the result must not become NaN.
    x = np.array([-6e4, -1e3, -50.0, -1.0, 0.0, 1.0, 50.0, 1e3, 6e4])
    got = np.asarray(keras.ops.cast(layers.get_activation(name)(
        keras.ops.convert_to_tensor(x, dtype=dtype)), "float32"))
    assert np.all(np.isfinite(got)), (name, dtype, got)
    np.testing.assert_allclose(got, REFERENCE[name](x), rtol=2e-2,
                               atol=1e-2)


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="hidden_act='gelu_fast'"):
        layers.get_activation("gelu_fast")


def _encoder(hidden_act, weights=None):
    # initializer_range=1: pre-activations of order 1-10, where they differ.
    config = helpers.tiny_config(hidden_act=hidden_act, initializer_range=1.0)
    encoder = AlbertEncoder(config)
    inputs = helpers.random_inputs(config, seed=3)
    inputs = {k: inputs[k] for k in ("input_ids", "input_mask",
                                     "segment_ids")}
    encoder(inputs)
    if weights is not None:
        encoder.set_weights(weights)
    return encoder, inputs


def test_encoder_uses_the_configured_activation():
    base, inputs = _encoder("gelu")
    weights = base.get_weights()
    outputs = {}
    for name in config_lib.ACTIVATIONS:
        encoder, _ = _encoder(name, weights)
        outputs[name] = np.asarray(encoder(inputs)["sequence_output"])
    np.testing.assert_array_equal(outputs["gelu"], outputs["gelu_new"])
    names = [n for n in config_lib.ACTIVATIONS if n != "gelu_new"]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(outputs[a] - outputs[b]).max() > 1e-4, (a, b)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_ffn_output_matches_numpy(name):
    encoder, _ = _encoder(name)
    block = encoder.layer_groups[0].inner_groups[0]
    x = np.random.default_rng(0).normal(
        0.0, 3.0, (2, 5, encoder.config.hidden_size)).astype(np.float32)
    got = np.asarray(block.ffn_output(block.ffn_intermediate(x)))  # [B, T, H]
    w1, b1 = (np.asarray(v, np.float64)
              for v in block.ffn_intermediate.weights)
    w2, b2 = (np.asarray(v, np.float64) for v in block.ffn_output.weights)
    hidden = x.astype(np.float64) @ w1 + b1  # [B, T, I]
    expected = REFERENCE[name](hidden.ravel()).reshape(hidden.shape) @ w2 + b2
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
