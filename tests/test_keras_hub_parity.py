"""Cross-implementation check: the same weights in keras-hub's AlbertBackbone.

keras-hub routes layers to groups consecutively, which equals the original
only when num_hidden_layers % num_hidden_groups == 0; the config here has
L=4, G=2 and two inner groups.
"""

import numpy as np
import pytest

import helpers
from albert_tf import AlbertEncoder
from albert_tf.checkpoints import tf1_names as names

keras_hub = pytest.importorskip("keras_hub")


def _copy_weights(ours: AlbertEncoder, theirs) -> None:
    c = ours.config
    n, d = c.num_attention_heads, c.attention_head_size
    emb = ours.embeddings
    theirs.token_embedding.embeddings.assign(emb.word_embeddings)
    theirs.position_embedding.position_embeddings.assign(
        emb.position_embeddings)
    theirs.segment_embedding.embeddings.assign(emb.token_type_embeddings)
    theirs.embeddings_layer_norm.gamma.assign(emb.layer_norm.gamma)
    theirs.embeddings_layer_norm.beta.assign(emb.layer_norm.beta)
    theirs.embeddings_projection.kernel.assign(
        ours.embedding_hidden_mapping_in.kernel)
    theirs.embeddings_projection.bias.assign(
        ours.embedding_hidden_mapping_in.bias)
    for g, group in enumerate(ours.layer_groups):
        for j, block in enumerate(group.inner_groups):
            layer = theirs.get_layer(f"group_{g}_inner_layer_{j}")
            mha = layer._self_attention_layer
            for ours_dense, their_dense in (
                    (block.attention.query, mha.query_dense),
                    (block.attention.key, mha.key_dense),
                    (block.attention.value, mha.value_dense)):
                their_dense.kernel.assign(
                    np.reshape(ours_dense.kernel, (c.hidden_size, n, d)))
                their_dense.bias.assign(np.reshape(ours_dense.bias, (n, d)))
            mha.output_dense.kernel.assign(np.reshape(
                block.attention.output_dense.kernel, (n, d, c.hidden_size)))
            mha.output_dense.bias.assign(block.attention.output_dense.bias)
            for ours_ln, their_ln in (
                    (block.attention_layer_norm,
                     layer._self_attention_layer_norm),
                    (block.ffn_layer_norm, layer._feedforward_layer_norm)):
                their_ln.gamma.assign(ours_ln.gamma)
                their_ln.beta.assign(ours_ln.beta)
            for ours_dense, their_dense in (
                    (block.ffn_intermediate,
                     layer._feedforward_intermediate_dense),
                    (block.ffn_output, layer._feedforward_output_dense)):
                their_dense.kernel.assign(ours_dense.kernel)
                their_dense.bias.assign(ours_dense.bias)
    theirs.pooled_dense.kernel.assign(ours.pooler.kernel)
    theirs.pooled_dense.bias.assign(ours.pooler.bias)


def test_same_outputs_as_keras_hub_albert_backbone():
    config = helpers.tiny_config(num_hidden_layers=4, num_hidden_groups=2,
                                 inner_group_num=2)
    ours = AlbertEncoder(config)
    helpers.randomize(ours)
    theirs = keras_hub.models.AlbertBackbone(
        vocabulary_size=config.vocab_size,
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        embedding_dim=config.embedding_size,
        hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size,
        num_groups=config.num_hidden_groups,
        num_inner_repetitions=config.inner_group_num,
        max_sequence_length=config.max_position_embeddings,
        num_segments=config.type_vocab_size)
    assert theirs.count_params() == ours.count_params()
    _copy_weights(ours, theirs)
    inputs = helpers.random_inputs(config)
    out = ours(inputs)
    ref = theirs({"token_ids": inputs["input_ids"],
                  "segment_ids": inputs["segment_ids"],
                  "padding_mask": inputs["input_mask"]})
    np.testing.assert_allclose(out["sequence_output"], ref["sequence_output"],
                               atol=1e-5)
    np.testing.assert_allclose(out["pooled_output"], ref["pooled_output"],
                               atol=1e-5)
    assert len(names.tf1_name_map(ours)) == len(ours.weights)
