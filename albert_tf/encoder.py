"""AlbertEncoder: factorized embeddings, E -> H projection, shared groups, pooler.

Legend: B batch, T sequence length, E embedding_size, H hidden_size,
L num_hidden_layers, G num_hidden_groups.
"""

from __future__ import annotations

import keras
from keras import ops

from albert_tf import layers
from albert_tf.config import AlbertConfig
from albert_tf.config import from_keras_config


def group_index(layer_index: int, config: AlbertConfig) -> int:
    """The group that layer `layer_index` shares its weights with.

    Exactly the original expression, divide first then multiply, in floating
    point: it differs from HF's int(i / (L / G)) for some L % G != 0 configs.
    """
    return int(layer_index / config.num_hidden_layers * config.num_hidden_groups)


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertEncoder(keras.Model):
    """The ALBERT encoder (the original `bert/` scope), built at construction.

    Inputs: a dict of int32 [B, T] tensors named as the original features:
    `input_ids`, `input_mask` (1 real, 0 padding; default all ones) and
    `segment_ids` (default all zeros).

    Outputs: a dict with `sequence_output` [B, T, H], `pooled_output` [B, H]
    and `encoder_outputs`, a list with one [B, T, H] tensor per block
    application (L * inner_group_num of them).

    Two options change how it computes, never its variables or (in
    float32) its values: `use_one_hot_embeddings` (the original's TPU word
    lookup, see layers.AlbertEmbeddings) and `attention_implementation`
    (layers.ATTENTION_IMPLEMENTATIONS).

    Example:
        encoder = AlbertEncoder(AlbertConfig.from_json_file("albert_config.json"))
        outputs = encoder({"input_ids": ids, "input_mask": mask,
                           "segment_ids": segments})
    """

    def __init__(self, config: AlbertConfig, name: str = "encoder",
                 use_one_hot_embeddings: bool = False,
                 attention_implementation: str = "original", **kwargs):
        super().__init__(name=name, **kwargs)
        layers.check_attention_implementation(attention_implementation)
        self.config = config
        self.use_one_hot_embeddings = bool(use_one_hot_embeddings)
        self.attention_implementation = attention_implementation
        dtype = self.dtype_policy
        self.embeddings = layers.AlbertEmbeddings(
            config, use_one_hot_embeddings=use_one_hot_embeddings,
            name="embeddings", dtype=dtype)
        # As the original, the projection exists only when E != H.
        self.embedding_hidden_mapping_in = None
        if config.embedding_size != config.hidden_size:
            self.embedding_hidden_mapping_in = layers.dense(
                config.hidden_size, config, "embedding_hidden_mapping_in", dtype)
        self.layer_groups = [
            layers.AlbertGroup(
                config, attention_implementation=attention_implementation,
                name=f"group_{g}", dtype=dtype)
            for g in range(config.num_hidden_groups)
        ]
        # tf.train.Checkpoint does not see into Keras's tracked lists: name
        # each group as an attribute too, so object checkpoints include it.
        for g, group in enumerate(self.layer_groups):
            setattr(self, f"group_{g}", group)
        self.pooler = layers.dense(
            config.hidden_size, config, "pooler", dtype, activation="tanh")
        self.build()

    def build(self, input_shape=None):
        c = self.config
        self.embeddings.build()
        if self.embedding_hidden_mapping_in is not None:
            self.embedding_hidden_mapping_in.build((None, None, c.embedding_size))
        for group in self.layer_groups:
            group.build()
        self.pooler.build((None, c.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        input_ids = inputs["input_ids"]
        input_mask = inputs.get("input_mask")
        segment_ids = inputs.get("segment_ids")
        if input_mask is None:
            input_mask = ops.ones_like(input_ids)
        if segment_ids is None:
            segment_ids = ops.zeros_like(input_ids)
        seq_length = input_ids.shape[1]
        if (seq_length is not None
                and seq_length > self.config.max_position_embeddings):
            raise ValueError(
                f"input length {seq_length} exceeds max_position_embeddings="
                f"{self.config.max_position_embeddings}")

        x = self.embeddings(input_ids, segment_ids, training=training)  # [B,T,E]
        if self.embedding_hidden_mapping_in is not None:
            x = self.embedding_hidden_mapping_in(x)  # [B, T, H]

        encoder_outputs = []
        for layer_index in range(self.config.num_hidden_layers):
            group = self.layer_groups[group_index(layer_index, self.config)]
            encoder_outputs += group(x, input_mask, training=training)
            x = encoder_outputs[-1]
        pooled_output = self.pooler(x[:, 0, :])  # [B, H]
        return {
            "sequence_output": x,
            "pooled_output": pooled_output,
            "encoder_outputs": encoder_outputs,
        }

    def get_config(self):
        return {"name": self.name, "config": self.config.to_dict(),
                "dtype": keras.dtype_policies.serialize(self.dtype_policy),
                "use_one_hot_embeddings": self.use_one_hot_embeddings,
                "attention_implementation": self.attention_implementation}

    @classmethod
    def from_config(cls, config):
        return cls(**from_keras_config(config))
