"""Task models: the encoder plus one head, built at construction.

Each model takes the original feature dict (`input_ids`, `input_mask`,
`segment_ids`, plus task features) and returns a dict of float32 logits plus
the encoder outputs. Legend: B batch, T length, P predictions, V vocab,
H hidden, C labels or choices.
"""

from __future__ import annotations

import keras
from keras import ops

from albert_tf import heads
from albert_tf.config import AlbertConfig
from albert_tf.config import from_keras_config
from albert_tf.encoder import AlbertEncoder


class _AlbertTaskModel(keras.Model):
    """Shared plumbing: owns an AlbertEncoder named `encoder`."""

    def __init__(self, config: AlbertConfig, name: str,
                 use_one_hot_embeddings: bool = False,
                 attention_implementation: str = "original", **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.encoder = AlbertEncoder(
            config, name="encoder", dtype=self.dtype_policy,
            use_one_hot_embeddings=use_one_hot_embeddings,
            attention_implementation=attention_implementation)

    def _build_heads(self, *head_layers: keras.layers.Layer):
        """Builds every head now, outside this model's name scope.

        Variable paths are then rooted at the sublayer names (`encoder/...`,
        `masked_lm/...`), whatever this model is called, which is what the
        checkpoint name table relies on.
        """
        for layer in head_layers:
            layer.build()
        self.built = True

    def _extra_config(self) -> dict:
        return {}

    def get_config(self):
        return {"name": self.name, "config": self.config.to_dict(),
                "dtype": keras.dtype_policies.serialize(self.dtype_policy),
                "use_one_hot_embeddings": self.encoder.use_one_hot_embeddings,
                "attention_implementation":
                    self.encoder.attention_implementation,
                **self._extra_config()}

    @classmethod
    def from_config(cls, config):
        return cls(**from_keras_config(config))


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertPretrainer(_AlbertTaskModel):
    """Encoder + MLM head (`cls/predictions`) + SOP head (`cls/seq_relationship`).

    Extra input: `masked_lm_positions` int32 [B, P].
    Outputs: `mlm_logits` [B, P, V], `sop_logits` [B, 2] and the encoder's.
    """

    def __init__(self, config: AlbertConfig, name: str = "albert_pretrainer",
                 **kwargs):
        super().__init__(config, name=name, **kwargs)
        dtype = self.dtype_policy
        self.masked_lm_head = heads.MaskedLMHead(
            config, name="masked_lm", dtype=dtype)
        self.sentence_order_head = heads.SentenceOrderHead(
            config, name="sentence_order", dtype=dtype)
        self._build_heads(self.masked_lm_head, self.sentence_order_head)

    def call(self, inputs, training=None):
        outputs = self.encoder(inputs, training=training)
        mlm_logits = self.masked_lm_head(
            outputs["sequence_output"], inputs["masked_lm_positions"],
            self.encoder.embeddings.word_embeddings)
        sop_logits = self.sentence_order_head(outputs["pooled_output"])
        return {"mlm_logits": mlm_logits, "sop_logits": sop_logits, **outputs}


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertClassifier(_AlbertTaskModel):
    """GLUE classifier (num_labels > 1) or STS-B regressor (num_labels == 1).

    dropout_prob (0.1 in the original) applies to the pooled output only;
    the encoder's dropout comes from the config.
    Output: `logits` [B, C].
    """

    def __init__(self, config: AlbertConfig, num_labels: int,
                 dropout_prob: float = 0.1, name: str = "albert_classifier",
                 **kwargs):
        super().__init__(config, name=name, **kwargs)
        if num_labels < 1:
            raise ValueError(f"num_labels={num_labels} must be >= 1")
        self.num_labels = num_labels
        self.dropout_prob = dropout_prob
        self.classifier = heads.ClassificationHead(
            config, num_outputs=num_labels, dropout_prob=dropout_prob,
            name="classifier", dtype=self.dtype_policy)
        self._build_heads(self.classifier)

    def call(self, inputs, training=None):
        outputs = self.encoder(inputs, training=training)
        logits = self.classifier(outputs["pooled_output"], training=training)
        return {"logits": logits, **outputs}

    def _extra_config(self):
        return {"num_labels": self.num_labels,
                "dropout_prob": self.dropout_prob}


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertMultipleChoice(_AlbertTaskModel):
    """RACE: each choice is a row; `output_weights` [1, H] scores it.

    Inputs are [B, C, T] (or the original's flattened [B, C * T]).
    Output: `logits` [B, C].
    """

    def __init__(self, config: AlbertConfig, num_choices: int = 4,
                 dropout_prob: float = 0.1,
                 name: str = "albert_multiple_choice", **kwargs):
        super().__init__(config, name=name, **kwargs)
        self.num_choices = num_choices
        self.dropout_prob = dropout_prob
        self.classifier = heads.ClassificationHead(
            config, num_outputs=1, dropout_prob=dropout_prob,
            name="classifier", dtype=self.dtype_policy)
        self._build_heads(self.classifier)

    def call(self, inputs, training=None):
        flat = {key: self._flatten_choices(inputs[key])
                for key in ("input_ids", "input_mask", "segment_ids")
                if key in inputs}
        outputs = self.encoder(flat, training=training)
        logits = self.classifier(outputs["pooled_output"], training=training)
        logits = ops.reshape(logits, (-1, self.num_choices))  # [B, C]
        return {"logits": logits, **outputs}

    def _flatten_choices(self, value):
        """[B, C, T], or the original's flattened [B, C * T] -> [B * C, T]."""
        length = value.shape[-1]
        if length is None:  # Unknown until run time (e.g. a text export).
            length = ops.shape(value)[-1]
        if len(value.shape) == 2:
            length //= self.num_choices
        return ops.reshape(value, (-1, length))

    def _extra_config(self):
        return {"num_choices": self.num_choices,
                "dropout_prob": self.dropout_prob}


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertSpanLabeler(_AlbertTaskModel):
    """SQuAD v1.1: `cls/squad` start and end logits [B, T]."""

    def __init__(self, config: AlbertConfig, name: str = "albert_squad",
                 **kwargs):
        super().__init__(config, name=name, **kwargs)
        self.squad_head = heads.SquadHead(
            config, name="squad", dtype=self.dtype_policy)
        self._build_heads(self.squad_head)

    def call(self, inputs, training=None):
        outputs = self.encoder(inputs, training=training)
        start_logits, end_logits = self.squad_head(outputs["sequence_output"])
        return {"start_logits": start_logits, "end_logits": end_logits,
                **outputs}


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertSquadV2(_AlbertTaskModel):
    """SQuAD v2.0 with the original's XLNet-style head (see SquadV2Head).

    Extra inputs: `p_mask` [B, T]; `start_positions` [B] in training, which
    switches the end logits to teacher forcing as in the original.
    """

    def __init__(self, config: AlbertConfig, start_n_top: int = 5,
                 end_n_top: int = 5, dropout_prob: float = 0.1,
                 name: str = "albert_squad_v2", **kwargs):
        super().__init__(config, name=name, **kwargs)
        self.start_n_top = start_n_top
        self.end_n_top = end_n_top
        self.dropout_prob = dropout_prob
        self.squad_head = heads.SquadV2Head(
            config, start_n_top=start_n_top, end_n_top=end_n_top,
            dropout_prob=dropout_prob, name="squad_v2",
            dtype=self.dtype_policy)
        self._build_heads(self.squad_head)

    def call(self, inputs, training=None):
        outputs = self.encoder(inputs, training=training)
        head_outputs = self.squad_head(
            outputs["sequence_output"], inputs["p_mask"],
            start_positions=inputs.get("start_positions"), training=training)
        return {**head_outputs, **outputs}

    def _extra_config(self):
        return {"start_n_top": self.start_n_top, "end_n_top": self.end_n_top,
                "dropout_prob": self.dropout_prob}


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertTokenClassifier(_AlbertTaskModel):
    """Token classification (NER, POS): one tag per word.

    Convention (BERT-NER's): each word is tokenized on its own and only
    the FIRST piece of a word is labelled and scored; its other pieces,
    [CLS], [SEP] and padding are ignored by the loss (label_weights 0) and
    the word's prediction is the argmax at its first piece
    (data.conll.convert_sentence builds those features).
    dropout_prob applies to the sequence output before the classifier.
    Output: `logits` [B, T, C], float32.
    """

    def __init__(self, config: AlbertConfig, num_labels: int,
                 dropout_prob: float = 0.1,
                 name: str = "albert_token_classifier", **kwargs):
        super().__init__(config, name=name, **kwargs)
        if num_labels < 1:
            raise ValueError(f"num_labels={num_labels} must be >= 1")
        self.num_labels = num_labels
        self.dropout_prob = dropout_prob
        # Named "classifier" as AlbertClassifier's: the same [C, H]
        # variables, so the checkpoint name tables reuse its entries.
        self.classifier = heads.TokenClassificationHead(
            config, num_outputs=num_labels, dropout_prob=dropout_prob,
            name="classifier", dtype=self.dtype_policy)
        self._build_heads(self.classifier)

    def call(self, inputs, training=None):
        outputs = self.encoder(inputs, training=training)
        logits = self.classifier(outputs["sequence_output"],
                                 training=training)  # [B, T, C]
        return {"logits": logits, **outputs}

    def _extra_config(self):
        return {"num_labels": self.num_labels,
                "dropout_prob": self.dropout_prob}
