"""albert_tf path <-> HF transformers ALBERT parameter name.

HF stores Linear weights as [out, in]; a Keras kernel is [in, out], so
those entries are transposed. Matrices the original stores as [out, in]
(`output_weights`) map without a transpose.
"""

from __future__ import annotations

import keras
import numpy as np

from albert_tf import models
from albert_tf.encoder import AlbertEncoder

BASE_PREFIX = "albert."  # The encoder's scope in every HF ALBERT model.

_EMBEDDINGS = {
    "encoder/embeddings/word_embeddings":
        ("albert.embeddings.word_embeddings.weight", False),
    "encoder/embeddings/token_type_embeddings":
        ("albert.embeddings.token_type_embeddings.weight", False),
    "encoder/embeddings/position_embeddings":
        ("albert.embeddings.position_embeddings.weight", False),
    "encoder/embeddings/layer_norm/gamma":
        ("albert.embeddings.LayerNorm.weight", False),
    "encoder/embeddings/layer_norm/beta":
        ("albert.embeddings.LayerNorm.bias", False),
    "encoder/pooler/kernel": ("albert.pooler.weight", True),
    "encoder/pooler/bias": ("albert.pooler.bias", False),
}

_PROJECTION = {
    "encoder/embedding_hidden_mapping_in/kernel":
        ("albert.encoder.embedding_hidden_mapping_in.weight", True),
    "encoder/embedding_hidden_mapping_in/bias":
        ("albert.encoder.embedding_hidden_mapping_in.bias", False),
}

# encoder/group_{g}/inner_group_{j}/ <->
# albert.encoder.albert_layer_groups.{g}.albert_layers.{j}.
_BLOCK = {
    "attention/query/kernel": ("attention.query.weight", True),
    "attention/query/bias": ("attention.query.bias", False),
    "attention/key/kernel": ("attention.key.weight", True),
    "attention/key/bias": ("attention.key.bias", False),
    "attention/value/kernel": ("attention.value.weight", True),
    "attention/value/bias": ("attention.value.bias", False),
    "attention/output/kernel": ("attention.dense.weight", True),
    "attention/output/bias": ("attention.dense.bias", False),
    "attention_layer_norm/gamma": ("attention.LayerNorm.weight", False),
    "attention_layer_norm/beta": ("attention.LayerNorm.bias", False),
    "ffn_intermediate/kernel": ("ffn.weight", True),
    "ffn_intermediate/bias": ("ffn.bias", False),
    "ffn_output/kernel": ("ffn_output.weight", True),
    "ffn_output/bias": ("ffn_output.bias", False),
    "ffn_layer_norm/gamma": ("full_layer_layer_norm.weight", False),
    "ffn_layer_norm/beta": ("full_layer_layer_norm.bias", False),
}

_PRETRAINING_HEADS = {
    "masked_lm/transform/kernel": ("predictions.dense.weight", True),
    "masked_lm/transform/bias": ("predictions.dense.bias", False),
    "masked_lm/layer_norm/gamma": ("predictions.LayerNorm.weight", False),
    "masked_lm/layer_norm/beta": ("predictions.LayerNorm.bias", False),
    "masked_lm/output_bias": ("predictions.bias", False),
    "sentence_order/output_weights":
        ("sop_classifier.classifier.weight", False),
    "sentence_order/output_bias": ("sop_classifier.classifier.bias", False),
}

_CLASSIFIER_HEAD = {
    "classifier/output_weights": ("classifier.weight", False),
    "classifier/output_bias": ("classifier.bias", False),
}

_SQUAD_HEAD = {
    "squad/output_weights": ("qa_outputs.weight", False),
    "squad/output_bias": ("qa_outputs.bias", False),
}

_HEADS = (
    (models.AlbertPretrainer, _PRETRAINING_HEADS, "AlbertForPreTraining"),
    (models.AlbertClassifier, _CLASSIFIER_HEAD,
     "AlbertForSequenceClassification"),
    (models.AlbertMultipleChoice, _CLASSIFIER_HEAD, "AlbertForMultipleChoice"),
    (models.AlbertSpanLabeler, _SQUAD_HEAD, "AlbertForQuestionAnswering"),
    (models.AlbertTokenClassifier, _CLASSIFIER_HEAD,
     "AlbertForTokenClassification"),
)

# Buffers some HF versions write; not weights.
_BUFFERS = ("albert.embeddings.position_ids",
            "albert.embeddings.token_type_ids")
_DECODER_WEIGHT = "predictions.decoder.weight"
_DECODER_BIAS = "predictions.decoder.bias"
_WORD_EMBEDDINGS = _EMBEDDINGS["encoder/embeddings/word_embeddings"][0]


def _head(model: keras.Model):
    if isinstance(model, AlbertEncoder):
        return {}, "AlbertModel"
    for model_class, table, architecture in _HEADS:
        if isinstance(model, model_class):
            return table, architecture
    raise NotImplementedError(
        f"HF transformers has no equivalent of {type(model).__name__} (the "
        f"original's XLNet-style SQuAD v2 head); use the tf1 or albert_tf "
        f"format")


def hf_architecture(model: keras.Model) -> str:
    return _head(model)[1]


def hf_name_map(model: keras.Model) -> dict[str, tuple[str, bool]]:
    """albert_tf path -> (HF name, transpose) for every variable of `model`."""
    config = model.config
    result = dict(_EMBEDDINGS)
    if config.embedding_size != config.hidden_size:
        result.update(_PROJECTION)
    for g in range(config.num_hidden_groups):
        for j in range(config.inner_group_num):
            ours = f"encoder/group_{g}/inner_group_{j}/"
            theirs = f"albert.encoder.albert_layer_groups.{g}.albert_layers.{j}."
            for path, (name, transpose) in _BLOCK.items():
                result[ours + path] = (theirs + name, transpose)
    result.update(_head(model)[0])
    return result


def add_base_prefix(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A bare AlbertModel saves without `albert.`; normalise to with it."""
    result = {}
    for name, value in tensors.items():
        if name.split(".", 1)[0] in ("embeddings", "encoder", "pooler"):
            name = BASE_PREFIX + name
        result[name] = value
    # Some HF versions save only the decoder's copy of the tied MLM bias.
    if _DECODER_BIAS in result and "predictions.bias" not in result:
        result["predictions.bias"] = result[_DECODER_BIAS]
    return result


def check_tied_and_extra(model: keras.Model, tensors: dict[str, np.ndarray],
                         source: str) -> set[str]:
    """Checks the HF-only tensors; returns their names as consumed.

    Compares the checkpoint's tensors with each other (not with the model,
    which is assigned only after every check passed).
    """
    consumed = {name for name in _BUFFERS if name in tensors}
    config = model.config
    if _DECODER_WEIGHT in tensors and _WORD_EMBEDDINGS in tensors:
        if not np.array_equal(tensors[_DECODER_WEIGHT],
                              tensors[_WORD_EMBEDDINGS]):
            raise ValueError(
                f"{source}: {_DECODER_WEIGHT} differs from the word "
                f"embeddings; ALBERT ties them, so an untied decoder cannot "
                f"be loaded")
        consumed.add(_DECODER_WEIGHT)
    if _DECODER_BIAS in tensors and "predictions.bias" in tensors:
        if not np.array_equal(tensors[_DECODER_BIAS],
                              tensors["predictions.bias"]):
            raise ValueError(f"{source}: {_DECODER_BIAS} differs from "
                             f"predictions.bias; they are tied in ALBERT")
        consumed.add(_DECODER_BIAS)
    if config.embedding_size == config.hidden_size:
        # HF always has the projection; ours exists only when E != H.
        for path, (name, transpose) in _PROJECTION.items():
            if name not in tensors:
                continue
            expected = (np.eye(config.hidden_size) if path.endswith("kernel")
                        else np.zeros(config.hidden_size))
            if not np.allclose(tensors[name], expected, atol=0):
                raise ValueError(
                    f"{source}: embedding_size == hidden_size, so the "
                    f"original has no projection, but {name} is not the "
                    f"identity")
            consumed.add(name)
    return consumed


def extra_tensors(model: keras.Model, tensors: dict[str, np.ndarray]
                  ) -> dict[str, np.ndarray]:
    """The tied copies and identity projection that HF expects on disk."""
    config = model.config
    extra = {}
    if "predictions.bias" in tensors:
        extra[_DECODER_WEIGHT] = np.asarray(model_word_embeddings(model))
        extra[_DECODER_BIAS] = tensors["predictions.bias"].copy()
    if config.embedding_size == config.hidden_size:
        h = config.hidden_size
        extra[_PROJECTION["encoder/embedding_hidden_mapping_in/kernel"][0]] = (
            np.eye(h, dtype=np.float32))
        extra[_PROJECTION["encoder/embedding_hidden_mapping_in/bias"][0]] = (
            np.zeros(h, np.float32))
    return extra


def model_word_embeddings(model: keras.Model):
    encoder = model if isinstance(model, AlbertEncoder) else model.encoder
    return encoder.embeddings.word_embeddings
