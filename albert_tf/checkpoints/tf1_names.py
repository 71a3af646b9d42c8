"""The one table from original TF1 variable names to albert_tf variable paths.

Every albert_tf variable has exactly the original's shape, so the table is a
pure renaming: no transposes or reshapes. `tf1_name_map(model)` expands the
per-group and per-inner-group entries for a model's config and heads;
`check_coverage` proves the map is a bijection onto the model's variables.
"""

from __future__ import annotations

import keras

from albert_tf import models
from albert_tf.config import AlbertConfig
from albert_tf.encoder import AlbertEncoder

_EMBEDDINGS = {
    "bert/embeddings/word_embeddings": "encoder/embeddings/word_embeddings",
    "bert/embeddings/token_type_embeddings":
        "encoder/embeddings/token_type_embeddings",
    "bert/embeddings/position_embeddings":
        "encoder/embeddings/position_embeddings",
    "bert/embeddings/LayerNorm/gamma": "encoder/embeddings/layer_norm/gamma",
    "bert/embeddings/LayerNorm/beta": "encoder/embeddings/layer_norm/beta",
}

# Only present when embedding_size != hidden_size, as in the original.
_PROJECTION = {
    "bert/encoder/embedding_hidden_mapping_in/kernel":
        "encoder/embedding_hidden_mapping_in/kernel",
    "bert/encoder/embedding_hidden_mapping_in/bias":
        "encoder/embedding_hidden_mapping_in/bias",
}

# Relative to bert/encoder/transformer/group_{g}/inner_group_{j}/ and
# encoder/group_{g}/inner_group_{j}/. Note the original's nesting of the FFN
# output dense inside `intermediate`, and LayerNorm outside `attention_1`.
_BLOCK = {
    "attention_1/self/query/kernel": "attention/query/kernel",
    "attention_1/self/query/bias": "attention/query/bias",
    "attention_1/self/key/kernel": "attention/key/kernel",
    "attention_1/self/key/bias": "attention/key/bias",
    "attention_1/self/value/kernel": "attention/value/kernel",
    "attention_1/self/value/bias": "attention/value/bias",
    "attention_1/output/dense/kernel": "attention/output/kernel",
    "attention_1/output/dense/bias": "attention/output/bias",
    "LayerNorm/gamma": "attention_layer_norm/gamma",
    "LayerNorm/beta": "attention_layer_norm/beta",
    "ffn_1/intermediate/dense/kernel": "ffn_intermediate/kernel",
    "ffn_1/intermediate/dense/bias": "ffn_intermediate/bias",
    "ffn_1/intermediate/output/dense/kernel": "ffn_output/kernel",
    "ffn_1/intermediate/output/dense/bias": "ffn_output/bias",
    "LayerNorm_1/gamma": "ffn_layer_norm/gamma",
    "LayerNorm_1/beta": "ffn_layer_norm/beta",
}

_POOLER = {
    "bert/pooler/dense/kernel": "encoder/pooler/kernel",
    "bert/pooler/dense/bias": "encoder/pooler/bias",
}

_PRETRAINING_HEADS = {
    "cls/predictions/transform/dense/kernel": "masked_lm/transform/kernel",
    "cls/predictions/transform/dense/bias": "masked_lm/transform/bias",
    "cls/predictions/transform/LayerNorm/gamma": "masked_lm/layer_norm/gamma",
    "cls/predictions/transform/LayerNorm/beta": "masked_lm/layer_norm/beta",
    "cls/predictions/output_bias": "masked_lm/output_bias",
    "cls/seq_relationship/output_weights": "sentence_order/output_weights",
    "cls/seq_relationship/output_bias": "sentence_order/output_bias",
}

# run_classifier and run_race put these at the root scope.
_CLASSIFIER_HEAD = {
    "output_weights": "classifier/output_weights",
    "output_bias": "classifier/output_bias",
}

_SQUAD_V1_HEAD = {
    "cls/squad/output_weights": "squad/output_weights",
    "cls/squad/output_bias": "squad/output_bias",
}

_SQUAD_V2_HEAD = {
    "start_logits/dense/kernel": "squad_v2/start_logits/kernel",
    "start_logits/dense/bias": "squad_v2/start_logits/bias",
    "end_logits/dense_0/kernel": "squad_v2/end_logits_dense_0/kernel",
    "end_logits/dense_0/bias": "squad_v2/end_logits_dense_0/bias",
    "end_logits/LayerNorm/gamma": "squad_v2/end_logits_layer_norm/gamma",
    "end_logits/LayerNorm/beta": "squad_v2/end_logits_layer_norm/beta",
    "end_logits/dense_1/kernel": "squad_v2/end_logits_dense_1/kernel",
    "end_logits/dense_1/bias": "squad_v2/end_logits_dense_1/bias",
    "answer_class/dense_0/kernel": "squad_v2/answer_class_dense_0/kernel",
    "answer_class/dense_0/bias": "squad_v2/answer_class_dense_0/bias",
    "answer_class/dense_1/kernel": "squad_v2/answer_class_dense_1/kernel",
}

_HEADS_BY_MODEL = (
    (models.AlbertPretrainer, _PRETRAINING_HEADS),
    (models.AlbertClassifier, _CLASSIFIER_HEAD),
    (models.AlbertMultipleChoice, _CLASSIFIER_HEAD),
    (models.AlbertSpanLabeler, _SQUAD_V1_HEAD),
    (models.AlbertSquadV2, _SQUAD_V2_HEAD),
    # No original counterpart; the classifier's root names ([C, H]).
    (models.AlbertTokenClassifier, _CLASSIFIER_HEAD),
)


def encoder_name_map(config: AlbertConfig) -> dict[str, str]:
    """TF1 name -> albert_tf path for the encoder (`bert/` scope)."""
    names = dict(_EMBEDDINGS)
    if config.embedding_size != config.hidden_size:
        names.update(_PROJECTION)
    for g in range(config.num_hidden_groups):
        for j in range(config.inner_group_num):
            tf1_prefix = f"bert/encoder/transformer/group_{g}/inner_group_{j}/"
            path_prefix = f"encoder/group_{g}/inner_group_{j}/"
            for tf1, path in _BLOCK.items():
                names[tf1_prefix + tf1] = path_prefix + path
    names.update(_POOLER)
    return names


def head_name_map(model: keras.Model) -> dict[str, str]:
    """TF1 name -> albert_tf path for the model's head ({} for an encoder)."""
    if isinstance(model, AlbertEncoder):
        return {}
    for model_class, table in _HEADS_BY_MODEL:
        if isinstance(model, model_class):
            return dict(table)
    raise TypeError(f"no TF1 name table for {type(model).__name__}")


def tf1_name_map(model: keras.Model) -> dict[str, str]:
    """TF1 name -> albert_tf path for every variable of `model`."""
    return {**encoder_name_map(model.config), **head_name_map(model)}


def variables_by_path(model: keras.Model) -> dict[str, keras.Variable]:
    """albert_tf path -> variable, independent of the model's own name.

    Task models build their sublayers at the root (`encoder/...`,
    `masked_lm/...`); a bare encoder's paths start with its own name, which
    is replaced by `encoder`.
    """
    result = {}
    for variable in model.weights:
        path = variable.path
        if isinstance(model, AlbertEncoder):
            path = "encoder/" + path.split("/", 1)[1]
        if path in result:
            raise ValueError(f"two variables share the path {path!r}")
        result[path] = variable
    return result


def check_coverage(model: keras.Model) -> None:
    """Raises unless tf1_name_map(model) is a bijection onto its variables."""
    names = tf1_name_map(model)
    paths = set(variables_by_path(model))
    mapped = list(names.values())
    if len(set(mapped)) != len(mapped):
        raise ValueError("two TF1 names map to the same albert_tf path")
    unmapped = sorted(paths - set(mapped))
    unknown = sorted(set(mapped) - paths)
    if unmapped or unknown:
        raise ValueError(
            f"TF1 name table does not cover {type(model).__name__}: "
            f"variables without a TF1 name {unmapped}; TF1 names pointing at "
            f"no variable {unknown}")
