import pytest

import helpers
from albert_tf import AlbertClassifier
from albert_tf import AlbertEncoder
from albert_tf import AlbertMultipleChoice
from albert_tf import AlbertPretrainer
from albert_tf import AlbertSpanLabeler
from albert_tf import AlbertSquadV2
from albert_tf.checkpoints import tf1_names

MODELS = [
    (AlbertEncoder, {}),
    (AlbertPretrainer, {}),
    (AlbertClassifier, {"num_labels": 3}),
    (AlbertMultipleChoice, {}),
    (AlbertSpanLabeler, {}),
    (AlbertSquadV2, {}),
]


@pytest.mark.parametrize("model_class,kwargs", MODELS)
@pytest.mark.parametrize("overrides", [
    {}, {"embedding_size": 8}, {"num_hidden_groups": 3, "inner_group_num": 1}])
def test_table_is_a_bijection_onto_the_variables(model_class, kwargs,
                                                 overrides):
    model = model_class(helpers.tiny_config(**overrides), **kwargs)
    tf1_names.check_coverage(model)  # raises on leftovers either way
    table = tf1_names.tf1_name_map(model)
    assert len(table) == len(model.weights)
    reverse = {path: tf1 for tf1, path in table.items()}
    assert len(reverse) == len(table)


def test_names_do_not_depend_on_the_model_name():
    a = AlbertPretrainer(helpers.tiny_config(), name="x")
    b = AlbertPretrainer(helpers.tiny_config(), name="y")
    assert (set(tf1_names.variables_by_path(a))
            == set(tf1_names.variables_by_path(b)))
    encoder = AlbertEncoder(helpers.tiny_config(), name="bert")
    assert set(tf1_names.variables_by_path(encoder)) == {
        p for p in tf1_names.variables_by_path(a) if p.startswith("encoder/")}


def test_every_original_name_with_groups_and_inner_groups():
    model = AlbertPretrainer(helpers.tiny_config())  # G=2, inner=2
    table = tf1_names.tf1_name_map(model)
    block = ["attention_1/self/query/kernel", "attention_1/self/query/bias",
             "attention_1/self/key/kernel", "attention_1/self/key/bias",
             "attention_1/self/value/kernel", "attention_1/self/value/bias",
             "attention_1/output/dense/kernel",
             "attention_1/output/dense/bias", "LayerNorm/gamma",
             "LayerNorm/beta", "ffn_1/intermediate/dense/kernel",
             "ffn_1/intermediate/dense/bias",
             "ffn_1/intermediate/output/dense/kernel",
             "ffn_1/intermediate/output/dense/bias", "LayerNorm_1/gamma",
             "LayerNorm_1/beta"]
    expected = {
        "bert/embeddings/word_embeddings",
        "bert/embeddings/token_type_embeddings",
        "bert/embeddings/position_embeddings",
        "bert/embeddings/LayerNorm/gamma", "bert/embeddings/LayerNorm/beta",
        "bert/encoder/embedding_hidden_mapping_in/kernel",
        "bert/encoder/embedding_hidden_mapping_in/bias",
        "bert/pooler/dense/kernel", "bert/pooler/dense/bias",
        "cls/predictions/transform/dense/kernel",
        "cls/predictions/transform/dense/bias",
        "cls/predictions/transform/LayerNorm/gamma",
        "cls/predictions/transform/LayerNorm/beta",
        "cls/predictions/output_bias",
        "cls/seq_relationship/output_weights",
        "cls/seq_relationship/output_bias",
    } | {f"bert/encoder/transformer/group_{g}/inner_group_{j}/{name}"
         for g in range(2) for j in range(2) for name in block}
    assert set(table) == expected


def test_shapes_are_the_originals():
    config = helpers.tiny_config()  # V=29, E=6, H=8, I=10, max_pos=11
    model = AlbertPretrainer(config)
    paths = tf1_names.variables_by_path(model)
    shape = {tf1: tuple(paths[p].shape)
             for tf1, p in tf1_names.tf1_name_map(model).items()}
    g = "bert/encoder/transformer/group_1/inner_group_1/"
    assert shape["bert/embeddings/word_embeddings"] == (29, 6)
    assert shape["bert/embeddings/token_type_embeddings"] == (2, 6)
    assert shape["bert/embeddings/position_embeddings"] == (11, 6)
    assert shape["bert/encoder/embedding_hidden_mapping_in/kernel"] == (6, 8)
    assert shape[g + "attention_1/self/query/kernel"] == (8, 8)
    assert shape[g + "attention_1/output/dense/kernel"] == (8, 8)
    assert shape[g + "ffn_1/intermediate/dense/kernel"] == (8, 10)
    assert shape[g + "ffn_1/intermediate/output/dense/kernel"] == (10, 8)
    assert shape["cls/predictions/transform/dense/kernel"] == (8, 6)
    assert shape["cls/predictions/output_bias"] == (29,)
    assert shape["cls/seq_relationship/output_weights"] == (2, 8)
