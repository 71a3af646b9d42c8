import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
import numpy_reference as ref
from albert_tf import AlbertConfig
from albert_tf import AlbertEncoder
from albert_tf import AlbertPretrainer
from albert_tf import layers
from albert_tf.encoder import group_index

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("size,encoder_params,pretrainer_params", [
    ("base", 11_683_584, 11_813_810),
    ("large", 17_683_968, 17_847_474),
    ("xlarge", 58_724_864, 59_021_490),
    ("xxlarge", 222_595_584, 223_158_450),
])
def test_release_parameter_counts(size, encoder_params, pretrainer_params):
    config = AlbertConfig.from_json_file(CONFIGS / f"albert_{size}_v2.json")
    model = AlbertPretrainer(config)
    assert model.encoder.count_params() == encoder_params
    assert model.count_params() == pretrainer_params
    assert config.num_parameters() == encoder_params
    assert config.num_parameters(pretraining_heads=True) == pretrainer_params


@pytest.mark.parametrize("changes", [
    {},  # E != H, one group.
    {"embedding_size": 8},  # E == H: no projection.
    {"num_hidden_layers": 5, "num_hidden_groups": 3, "inner_group_num": 2},
    {"num_hidden_groups": 2, "type_vocab_size": 3},
])
def test_num_parameters_counts_what_is_built(changes):
    config = helpers.tiny_config(**changes)
    model = AlbertPretrainer(config)
    model(helpers.random_inputs(config))
    assert config.num_parameters() == model.encoder.count_params()
    assert config.num_parameters(pretraining_heads=True) == (
        model.count_params())


def test_outputs_keys_and_shapes():
    config = helpers.tiny_config()
    encoder = AlbertEncoder(config)
    inputs = helpers.random_inputs(config)
    out = encoder({k: inputs[k] for k in
                   ("input_ids", "input_mask", "segment_ids")})
    assert set(out) == {"sequence_output", "pooled_output", "encoder_outputs"}
    assert tuple(out["sequence_output"].shape) == (2, 7, 8)
    assert tuple(out["pooled_output"].shape) == (2, 8)
    # One output per block application: L * inner_group_num.
    assert len(out["encoder_outputs"]) == 3 * 2
    np.testing.assert_array_equal(out["encoder_outputs"][-1],
                                  out["sequence_output"])


def test_matches_numpy_reference_of_the_original():
    config = helpers.tiny_config()
    encoder = AlbertEncoder(config)
    weights = helpers.randomize(encoder)
    inputs = helpers.random_inputs(config)
    out = encoder(inputs)
    seq, pooled, blocks = ref.encoder(
        weights, config.to_dict(), inputs["input_ids"], inputs["input_mask"],
        inputs["segment_ids"])
    np.testing.assert_allclose(out["sequence_output"], seq, atol=1e-5)
    np.testing.assert_allclose(out["pooled_output"], pooled, atol=1e-5)
    for ours, theirs in zip(out["encoder_outputs"], blocks):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_no_projection_when_embedding_equals_hidden():
    config = helpers.tiny_config(embedding_size=8)
    encoder = AlbertEncoder(config)
    assert encoder.embedding_hidden_mapping_in is None
    assert not any("embedding_hidden_mapping_in" in v.path
                   for v in encoder.weights)
    weights = helpers.randomize(encoder)
    inputs = helpers.random_inputs(config)
    seq, _, _ = ref.encoder(weights, config.to_dict(), inputs["input_ids"],
                            inputs["input_mask"], inputs["segment_ids"])
    np.testing.assert_allclose(encoder(inputs)["sequence_output"], seq,
                               atol=1e-5)


def test_parameter_count_is_independent_of_num_hidden_layers():
    counts = {layers_: AlbertEncoder(helpers.tiny_config(
        num_hidden_layers=layers_, num_hidden_groups=1)).count_params()
        for layers_ in (1, 3, 12)}
    assert len(set(counts.values())) == 1, counts


def test_groups_give_distinct_blocks():
    config = helpers.tiny_config(num_hidden_layers=5, num_hidden_groups=3,
                                 inner_group_num=1)
    encoder = AlbertEncoder(config)
    kernels = {v.path for v in encoder.weights if v.path.endswith(
        "attention/query/kernel")}
    assert kernels == {f"encoder/group_{g}/inner_group_0/attention/query/kernel"
                       for g in range(3)}
    single = AlbertEncoder(config.replace(num_hidden_groups=1)).count_params()
    block = (single - AlbertEncoder(
        config.replace(num_hidden_groups=1, inner_group_num=2)).count_params())
    assert encoder.count_params() == single - 2 * block


@pytest.mark.parametrize("layers_,groups,expected", [
    (12, 1, [0] * 12),
    (3, 2, [0, 0, 1]),
    (5, 3, [0, 0, 1, 1, 2]),
    # The original's float expression: 22 groups over 22 layers reuses
    # group 14 and never reaches group 15 (modeling.transformer_model).
    (22, 22, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 14, 16, 17,
              18, 19, 20, 21]),
])
def test_group_routing_is_the_original_expression(layers_, groups, expected):
    config = AlbertConfig(vocab_size=5, hidden_size=4, num_attention_heads=1,
                          intermediate_size=4, num_hidden_layers=layers_,
                          num_hidden_groups=groups)
    assert [group_index(i, config) for i in range(layers_)] == expected


def test_padding_invariance():
    config = helpers.tiny_config()
    encoder = AlbertEncoder(config)
    helpers.randomize(encoder)
    inputs = helpers.random_inputs(config)
    changed = {k: v.copy() for k, v in inputs.items()}
    pad = inputs["input_mask"] == 0
    assert pad.any()
    changed["input_ids"][pad] = 5
    changed["segment_ids"][pad] = 1
    a, b = encoder(inputs), encoder(changed)
    real = inputs["input_mask"] == 1
    np.testing.assert_allclose(np.asarray(a["sequence_output"])[real],
                               np.asarray(b["sequence_output"])[real],
                               atol=1e-6)
    np.testing.assert_allclose(a["pooled_output"], b["pooled_output"],
                               atol=1e-6)


def test_default_mask_and_segments():
    config = helpers.tiny_config()
    encoder = AlbertEncoder(config)
    ids = helpers.random_inputs(config)["input_ids"]
    full = encoder({"input_ids": ids, "input_mask": np.ones_like(ids),
                    "segment_ids": np.zeros_like(ids)})
    short = encoder({"input_ids": ids})
    np.testing.assert_array_equal(full["sequence_output"],
                                  short["sequence_output"])


def test_get_config_round_trip():
    config = helpers.tiny_config()
    encoder = AlbertEncoder(config, name="my_encoder")
    restored = AlbertEncoder.from_config(encoder.get_config())
    assert restored.config == config
    assert restored.name == "my_encoder"
    assert restored.count_params() == encoder.count_params()
    block = layers.AlbertTransformerBlock(config, name="b")
    assert (layers.AlbertTransformerBlock.from_config(
        block.get_config()).config == config)


def test_keras_save_and_load(tmp_path):
    config = helpers.tiny_config()
    encoder = AlbertEncoder(config)
    helpers.randomize(encoder)
    inputs = helpers.random_inputs(config)
    path = tmp_path / "encoder.keras"
    encoder.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(encoder(inputs)["sequence_output"],
                                  restored(inputs)["sequence_output"])


def test_input_longer_than_max_position_embeddings():
    config = helpers.tiny_config(max_position_embeddings=5)
    encoder = AlbertEncoder(config)
    ids = np.ones((2, 7), "int32")
    with pytest.raises(ValueError, match="7 exceeds max_position_embeddings=5"):
        encoder({"input_ids": ids})


def test_dropout_is_active_only_in_training():
    config = helpers.tiny_config(hidden_dropout_prob=0.3,
                                 attention_probs_dropout_prob=0.3)
    encoder = AlbertEncoder(config)
    inputs = helpers.random_inputs(config)
    eval_a = encoder(inputs, training=False)["sequence_output"]
    eval_b = encoder(inputs, training=False)["sequence_output"]
    train = encoder(inputs, training=True)["sequence_output"]
    np.testing.assert_array_equal(eval_a, eval_b)
    assert not np.allclose(eval_a, train)


def test_initialisation_is_truncated_normal_with_initializer_range():
    config = helpers.tiny_config(vocab_size=4000, initializer_range=0.05)
    encoder = AlbertEncoder(config)
    table = np.asarray(encoder.embeddings.word_embeddings)
    assert np.abs(table).max() <= 2 * 0.05 + 1e-6  # cut at 2 stddev
    assert 0.03 < table.std() < 0.05  # truncation shrinks std to ~0.88σ
    bias = np.asarray(encoder.pooler.bias)
    np.testing.assert_array_equal(bias, 0)


def test_layer_norm_epsilon_and_gelu_are_the_original():
    assert layers.LAYER_NORM_EPSILON == 1e-12
    encoder = AlbertEncoder(helpers.tiny_config())
    assert encoder.embeddings.layer_norm.epsilon == 1e-12
    x = np.linspace(-4, 4, 9).astype("float32")
    np.testing.assert_allclose(layers.gelu_tanh(x), ref.gelu_tanh(x),
                               atol=1e-6)
    assert not np.allclose(layers.gelu_exact(x), ref.gelu_tanh(x), atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_variables_and_logits_float32(policy):
    config = helpers.tiny_config()
    model = AlbertPretrainer(config, dtype=policy)
    full = AlbertPretrainer(config)
    helpers.randomize(full)
    helpers.randomize(model)  # same seed: same values
    inputs = helpers.random_inputs(config)
    out = model(inputs)
    assert all(v.dtype == "float32" for v in model.weights)
    assert out["mlm_logits"].dtype == "float32"
    assert out["sop_logits"].dtype == "float32"
    assert out["sequence_output"].dtype == policy.split("_")[1]
    reference = full(inputs)
    np.testing.assert_allclose(out["mlm_logits"], reference["mlm_logits"],
                               atol=0.3)


def test_works_inside_a_jit_compiled_function():
    config = helpers.tiny_config()
    model = AlbertPretrainer(config)
    helpers.randomize(model)
    inputs = helpers.random_inputs(config)

    @tf.function(jit_compile=True)
    def forward(features):
        return model(features)["mlm_logits"]

    np.testing.assert_allclose(forward(inputs), model(inputs)["mlm_logits"],
                               atol=1e-5)


def test_object_checkpoint_holds_every_variable(tmp_path):
    model = AlbertPretrainer(helpers.tiny_config())
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    stored = [name for name, _ in tf.train.list_variables(prefix)
              if name.endswith("VARIABLE_VALUE")]
    assert len(stored) == len(model.weights)
    assert any("group_1/inner_group_1/attention/query" in name
               for name in stored)


@pytest.mark.parametrize("shape", [(7, 3), (2, 7, 3), (2, 4, 7, 3)])
def test_matrix_dense_equals_keras_dense(shape):
    # MatrixDense reshapes to [N, In] for speed; it must compute what
    # keras.layers.Dense computes on the same weights, at any rank.
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    ours = layers.MatrixDense(5, activation=layers.gelu_tanh)
    out = ours(x)
    reference = keras.layers.Dense(5, activation=layers.gelu_tanh)
    reference.build(shape)
    reference.set_weights(ours.get_weights())
    assert tuple(out.shape) == shape[:-1] + (5,)
    np.testing.assert_allclose(out, reference(x), atol=1e-6)
    ours.enable_lora(2)  # Keras's LoRA path is left to Keras.
    np.testing.assert_allclose(ours(x), reference(x), atol=1e-6)
