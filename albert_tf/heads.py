"""Heads on top of the encoder, each with the original's variable shapes.

Legend: B batch, T sequence length, P max_predictions_per_seq, V vocab_size,
E embedding_size, H hidden_size, C number of labels or choices, K top-k.

Every head returns float32 logits, also under a mixed-precision policy.
Matrices stored as [out, in] in the original (`output_weights`) keep that
layout here, so checkpoints map 1:1 without transposes.
"""

from __future__ import annotations

import keras
from keras import ops

from albert_tf import layers
from albert_tf.config import AlbertConfig
from albert_tf.layers import ConfigLayer

# As the original SQuAD v2 head: masked logits get -1e30.
_SPAN_MASK_VALUE = 1e30


def gather_positions(sequence_output, positions):
    """[B, T, H] gathered at int [B, P] positions -> [B, P, H]."""
    return ops.take_along_axis(
        sequence_output, ops.cast(positions, "int32")[:, :, None], axis=1)


def _linear_transposed(x, weights, bias):
    """x @ weights^T + bias for an original-style [out, in] matrix."""
    x = ops.cast(x, "float32")
    weights = ops.cast(weights, "float32")
    return ops.matmul(x, ops.transpose(weights)) + ops.cast(bias, "float32")


@keras.saving.register_keras_serializable(package="albert_tf")
class MaskedLMHead(ConfigLayer):
    """`cls/predictions`: dense H->E + act + LayerNorm, tied decoder + bias.

    The decoder is the encoder's `word_embeddings` table, passed to `call`
    rather than owned, so the weight is shared and never duplicated.
    """

    def __init__(self, config: AlbertConfig, **kwargs):
        super().__init__(config, **kwargs)
        dtype = self.dtype_policy
        self.transform = layers.dense(
            config.embedding_size, config, "transform", dtype,
            activation=layers.get_activation(config.hidden_act))
        self.layer_norm = layers.layer_norm("layer_norm", dtype)

    def build(self, input_shape=None):
        c = self.config
        self.transform.build((None, None, c.hidden_size))
        self.layer_norm.build((None, None, c.embedding_size))
        self.output_bias = self.add_weight(
            shape=(c.vocab_size,), initializer="zeros", name="output_bias")

    def call(self, sequence_output, masked_lm_positions, word_embeddings):
        x = gather_positions(sequence_output, masked_lm_positions)  # [B, P, H]
        x = self.layer_norm(self.transform(x))  # [B, P, E]
        # The decoder runs in the compute dtype; logits come out float32.
        table = ops.cast(word_embeddings, self.compute_dtype)  # [V, E]
        logits = ops.matmul(x, ops.transpose(table))  # [B, P, V]
        # Inside call() Keras autocasts variables to the compute dtype.
        return ops.cast(logits, "float32") + ops.cast(self.output_bias,
                                                      "float32")


class _OutputWeightsHead(ConfigLayer):
    """`output_weights` [C, H] and `output_bias` [C], the original layout."""

    def __init__(self, config: AlbertConfig, num_outputs: int,
                 dropout_prob: float = 0.0, **kwargs):
        super().__init__(config, **kwargs)
        self.num_outputs = num_outputs
        self.dropout_prob = dropout_prob
        self.dropout = keras.layers.Dropout(
            dropout_prob, dtype=self.dtype_policy, name="dropout")

    def build(self, input_shape=None):
        # The original creates these with plain tf.get_variable and a
        # truncated_normal_initializer(stddev=0.02), not initializer_range.
        self.output_weights = self.add_weight(
            shape=(self.num_outputs, self.config.hidden_size),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="output_weights")
        self.output_bias = self.add_weight(
            shape=(self.num_outputs,), initializer="zeros", name="output_bias")

    def project(self, x, training=None):
        x = self.dropout(x, training=training)
        return _linear_transposed(x, self.output_weights, self.output_bias)

    def get_config(self):
        return {**super().get_config(), "num_outputs": self.num_outputs,
                "dropout_prob": self.dropout_prob}


@keras.saving.register_keras_serializable(package="albert_tf")
class SentenceOrderHead(_OutputWeightsHead):
    """`cls/seq_relationship`: pooled [B, H] -> [B, 2]; label 1 = swapped.

    The original initialises these with initializer_range and adds no
    dropout.
    """

    def __init__(self, config: AlbertConfig, **kwargs):
        kwargs.pop("num_outputs", None)
        kwargs.pop("dropout_prob", None)
        super().__init__(config, num_outputs=2, **kwargs)

    def build(self, input_shape=None):
        self.output_weights = self.add_weight(
            shape=(2, self.config.hidden_size),
            initializer=layers.initializer(self.config), name="output_weights")
        self.output_bias = self.add_weight(
            shape=(2,), initializer="zeros", name="output_bias")

    def call(self, pooled_output):
        return self.project(pooled_output)  # [B, 2]


@keras.saving.register_keras_serializable(package="albert_tf")
class ClassificationHead(_OutputWeightsHead):
    """Root `output_weights` [C, H]: dropout on the pooled output, linear.

    C = 1 is the STS-B regression head; RACE uses C = 1 per choice.
    """

    def call(self, pooled_output, training=None):
        return self.project(pooled_output, training=training)  # [B, C]


@keras.saving.register_keras_serializable(package="albert_tf")
class SquadHead(_OutputWeightsHead):
    """SQuAD v1 `cls/squad`: [B, T, H] -> start and end logits [B, T].

    No dropout, as in the original.
    """

    def __init__(self, config: AlbertConfig, **kwargs):
        kwargs.pop("num_outputs", None)
        kwargs.pop("dropout_prob", None)
        super().__init__(config, num_outputs=2, **kwargs)

    def call(self, sequence_output):
        logits = self.project(sequence_output)  # [B, T, 2]
        return logits[..., 0], logits[..., 1]


@keras.saving.register_keras_serializable(package="albert_tf")
class SquadV2Head(ConfigLayer):
    """The original's XLNet-style SQuAD v2 head.

    start: dense(1) on every position. end: dense_0(tanh) over
    concat(h, h_start) -> LayerNorm -> dense_1, conditioned on the gold start
    in training and on the top `start_n_top` starts (beam) at inference.
    answer_class: concat(softmax(start)-weighted h, h_[CLS]) -> dense_0(tanh)
    -> dropout -> dense_1 (no bias) = `cls_logits`.
    """

    def __init__(self, config: AlbertConfig, start_n_top: int = 5,
                 end_n_top: int = 5, dropout_prob: float = 0.1, **kwargs):
        super().__init__(config, **kwargs)
        self.start_n_top = start_n_top
        self.end_n_top = end_n_top
        self.dropout_prob = dropout_prob
        h, dtype = config.hidden_size, self.dtype_policy
        self.start_dense = layers.dense(1, config, "start_logits", dtype)
        self.end_dense_0 = layers.dense(
            h, config, "end_logits_dense_0", dtype, activation="tanh")
        self.end_layer_norm = layers.layer_norm("end_logits_layer_norm", dtype)
        self.end_dense_1 = layers.dense(1, config, "end_logits_dense_1", dtype)
        self.answer_dense_0 = layers.dense(
            h, config, "answer_class_dense_0", dtype, activation="tanh")
        self.answer_dropout = keras.layers.Dropout(
            dropout_prob, dtype=dtype, name="answer_class_dropout")
        self.answer_dense_1 = layers.dense(
            1, config, "answer_class_dense_1", dtype, use_bias=False)

    def build(self, input_shape=None):
        h = self.config.hidden_size
        self.start_dense.build((None, None, h))
        self.end_dense_0.build((None, None, 2 * h))
        self.end_layer_norm.build((None, None, h))
        self.end_dense_1.build((None, None, h))
        self.answer_dense_0.build((None, 2 * h))
        self.answer_dense_1.build((None, h))

    def _end_logits(self, sequence_output, start_features):
        """[B, T, H] + [B, ..., H] start features -> float32 end logits."""
        x = ops.concatenate([sequence_output, start_features], axis=-1)
        x = self.end_layer_norm(self.end_dense_0(x))
        return ops.cast(ops.squeeze(self.end_dense_1(x), -1), "float32")

    def call(self, sequence_output, p_mask, start_positions=None,
             training=None):
        """p_mask: [B, T], 1 where an answer cannot be (question, pad, SEP).

        Returns, with `start_positions` (training): start_log_probs and
        end_log_probs [B, T]. Without: start_top_log_probs/index [B, K1] and
        end_top_log_probs/index [B, K1 * K2]. Always cls_logits [B].
        """
        p_mask = ops.cast(p_mask, "float32")  # [B, T]
        start_logits = ops.cast(
            ops.squeeze(self.start_dense(sequence_output), -1), "float32")
        start_masked = start_logits * (1 - p_mask) - _SPAN_MASK_VALUE * p_mask
        start_log_probs = ops.log_softmax(start_masked, axis=-1)  # [B, T]
        outputs = {}
        if start_positions is not None:
            start_h = gather_positions(
                sequence_output, ops.reshape(start_positions, (-1, 1)))
            start_h = ops.broadcast_to(start_h, ops.shape(sequence_output))
            end_logits = self._end_logits(sequence_output, start_h)  # [B, T]
            end_masked = end_logits * (1 - p_mask) - _SPAN_MASK_VALUE * p_mask
            outputs["start_log_probs"] = start_log_probs
            outputs["end_log_probs"] = ops.log_softmax(end_masked, axis=-1)
        else:
            k1, k2 = self.start_n_top, self.end_n_top
            start_top_log_probs, start_top_index = ops.top_k(start_log_probs, k1)
            start_h = gather_positions(sequence_output, start_top_index)
            # Every position paired with each of the K1 starts: [B, K1, T, H].
            seq = ops.broadcast_to(
                sequence_output[:, None],
                (ops.shape(sequence_output)[0], k1) + tuple(
                    ops.shape(sequence_output)[1:]))
            start_h = ops.broadcast_to(start_h[:, :, None, :], ops.shape(seq))
            end_logits = self._end_logits(seq, start_h)  # [B, K1, T]
            mask = p_mask[:, None, :]
            end_masked = end_logits * (1 - mask) - _SPAN_MASK_VALUE * mask
            end_log_probs = ops.log_softmax(end_masked, axis=-1)
            end_top_log_probs, end_top_index = ops.top_k(end_log_probs, k2)
            outputs["start_top_log_probs"] = start_top_log_probs
            outputs["start_top_index"] = start_top_index
            outputs["end_top_log_probs"] = ops.reshape(
                end_top_log_probs, (-1, k1 * k2))
            outputs["end_top_index"] = ops.reshape(end_top_index, (-1, k1 * k2))

        start_p = ops.softmax(start_masked, axis=-1)  # [B, T]
        h = ops.cast(sequence_output, "float32")
        start_feature = ops.einsum("bth,bt->bh", h, start_p)
        cls_feature = h[:, 0, :]
        answer = ops.concatenate([start_feature, cls_feature], axis=-1)
        answer = self.answer_dense_0(ops.cast(answer, self.compute_dtype))
        answer = self.answer_dropout(answer, training=training)
        outputs["cls_logits"] = ops.cast(
            ops.squeeze(self.answer_dense_1(answer), -1), "float32")
        return outputs

    def get_config(self):
        return {**super().get_config(), "start_n_top": self.start_n_top,
                "end_n_top": self.end_n_top, "dropout_prob": self.dropout_prob}


@keras.saving.register_keras_serializable(package="albert_tf")
class TokenClassificationHead(_OutputWeightsHead):
    """Per-position tags: dropout on [B, T, H], then `output_weights`
    [C, H] -> float32 logits [B, T, C].

    The original has no token classification; this is the classifier's
    layout applied at every position (HF's AlbertForTokenClassification
    `classifier` too: dropout, then one linear layer).
    """

    def call(self, sequence_output, training=None):
        return self.project(sequence_output, training=training)  # [B, T, C]
