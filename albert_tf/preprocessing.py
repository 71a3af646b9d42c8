"""Preprocessor: raw strings -> the model's features, as a Keras layer.

The in-graph tokenizer the SavedModel exports use (tokenization.in_graph:
SentencePiece, or WordPiece for a vocab.txt such as the Chinese releases')
plus the original's packing (classifier_utils.convert_single_example:
[CLS] a [SEP] (b [SEP]), the pair truncated by _truncate_seq_pair), padded
to a fixed `sequence_length`. It runs inside tf.data pipelines (the task
models map it over their input, so the compiled train step sees only ids)
and inside exported graphs.

Legend: B batch, T sequence_length.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from albert_tf.serving import export
from albert_tf.tokenization import in_graph
from albert_tf.tokenization import wordpiece

SPM_ASSET = "spiece.model"
VOCAB_ASSET = "vocab.txt"


@keras.saving.register_keras_serializable(package="albert_tf")
class Preprocessor(keras.layers.Layer):
    """Strings [B] (or a pair of [B]) -> input_ids, input_mask, segment_ids.

    Each output is int32 [B, sequence_length]; ids equal FullTokenizer plus
    the original feature code (tests/test_preprocessing.py checks it on
    held-out text). The SentencePiece model (or vocab.txt) travels with the
    layer: it is a Keras asset of `.keras` files and a resource of
    SavedModels.

    Give `spm_model_file`, or `vocab_file` for a WordPiece vocabulary (the
    original's FullTokenizer without SentencePiece: BasicTokenizer +
    WordPiece, as the Chinese ALBERT releases use).

    Example:
        preprocessor = Preprocessor("30k-clean.model", sequence_length=128)
        zh = Preprocessor(vocab_file="vocab_chinese.txt", sequence_length=128)
        features = preprocessor(tf.constant(["A sentence.", "Another."]))
        pairs = preprocessor((tf.constant(["Question?"]),
                              tf.constant(["The passage."])))
    """

    def __init__(self, spm_model_file: str | None = None,
                 do_lower_case: bool = True, sequence_length: int = 128,
                 vocab_file: str | None = None, **kwargs):
        kwargs.setdefault("dtype", "int32")
        super().__init__(trainable=False, **kwargs)
        if sequence_length < 3:
            raise ValueError(f"sequence_length={sequence_length} must be >= 3 "
                             f"([CLS] piece [SEP])")
        if spm_model_file is not None and vocab_file is not None:
            raise ValueError("give spm_model_file or vocab_file, not both "
                             "(as FullTokenizer, SentencePiece would win)")
        self.do_lower_case = bool(do_lower_case)
        self.sequence_length = int(sequence_length)
        self._spm_model = None
        self._vocab = None
        self.tokenizer = None
        for path, setter, flag in (
                (spm_model_file, self._set_spm_model, "spm_model_file"),
                (vocab_file, self._set_vocab, "vocab_file")):
            if path is None:
                continue
            if not tf.io.gfile.exists(path):
                raise FileNotFoundError(f"{flag} not found: {path}")
            with tf.io.gfile.GFile(path, "rb") as f:
                setter(f.read(), path)
        self.built = True

    @property
    def spm_model(self) -> bytes | None:
        """The SentencePiece model's bytes (None for a WordPiece vocab)."""
        return self._spm_model

    @property
    def vocab(self) -> bytes | None:
        """The WordPiece vocab.txt's bytes (None for SentencePiece)."""
        return self._vocab

    def _set_spm_model(self, spm_model: bytes, source: str) -> None:
        try:
            tokenizer = in_graph.InGraphTokenizer(
                spm_model, do_lower_case=self.do_lower_case)
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{source}: not an ALBERT SentencePiece model "
                             f"({e})") from e
        self._spm_model = spm_model
        self.tokenizer = tokenizer

    def _set_vocab(self, vocab: bytes, source: str) -> None:
        try:
            tokenizer = in_graph.InGraphWordpieceTokenizer(
                wordpiece.parse_vocab(vocab, source),
                do_lower_case=self.do_lower_case)
        except ValueError as e:
            raise ValueError(f"{source}: not a WordPiece vocab.txt ({e})"
                             ) from e
        self._vocab = vocab
        self.tokenizer = tokenizer

    def call(self, inputs):
        """inputs: strings [B] or [B, 1], or a (text_a, text_b) pair."""
        if self.tokenizer is None:
            raise ValueError(
                "this Preprocessor has no vocabulary: build it with "
                "spm_model_file=... or vocab_file=..., or load it with "
                "keras.saving.load_model")
        if isinstance(inputs, dict):
            texts = [inputs[k] for k in ("text_a", "text_b") if k in inputs]
        elif isinstance(inputs, (tuple, list)):
            texts = list(inputs)
        else:
            texts = [inputs]
        if not 1 <= len(texts) <= 2:
            raise ValueError(f"expected one text or a pair, got {len(texts)}")
        texts = [_as_text_vector(t, name)
                 for t, name in zip(texts, ("text_a", "text_b"))]
        ids = [self.tokenizer(t) for t in texts]  # ragged [B, (pieces)]
        input_ids, input_mask, segment_ids = export.pack(
            ids[0], ids[1] if len(ids) == 2 else None, self.sequence_length)
        width = self.sequence_length - tf.shape(input_ids)[1]
        pad = lambda x: tf.ensure_shape(  # noqa: E731
            tf.pad(x, [[0, 0], [0, width]]), [None, self.sequence_length])
        return {"input_ids": pad(input_ids), "input_mask": pad(input_mask),
                "segment_ids": pad(segment_ids)}

    def compute_output_spec(self, inputs):
        first = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
        if isinstance(first, dict):
            first = first["text_a"]
        shape = (first.shape[0], self.sequence_length)
        return {name: keras.KerasTensor(shape, dtype="int32")
                for name in ("input_ids", "input_mask", "segment_ids")}

    def get_config(self):
        config = super().get_config()
        config.pop("trainable", None)
        return {**config, "do_lower_case": self.do_lower_case,
                "sequence_length": self.sequence_length}

    # Keras saving: the SentencePiece model (or vocab.txt) is an asset of
    # the .keras file.
    def save_assets(self, dir_path):
        for data, name in ((self._spm_model, SPM_ASSET),
                           (self._vocab, VOCAB_ASSET)):
            if data is not None:
                with open(os.path.join(dir_path, name), "wb") as f:
                    f.write(data)

    def load_assets(self, dir_path):
        for name, setter in ((SPM_ASSET, self._set_spm_model),
                             (VOCAB_ASSET, self._set_vocab)):
            path = os.path.join(dir_path, name)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    setter(f.read(), path)
                return
        raise FileNotFoundError(f"{dir_path}: the saved Preprocessor has "
                                f"neither {SPM_ASSET} nor {VOCAB_ASSET}")


def _as_text_vector(text, name: str) -> tf.Tensor:
    """str / list / array / tensor -> string [B] (a [B, 1] is squeezed)."""
    text = tf.convert_to_tensor(text)
    if text.dtype != tf.string:
        raise TypeError(f"{name}: expected strings, got {text.dtype.name}")
    if text.shape.rank == 0:
        return text[None]
    if text.shape.rank == 2 and text.shape[1] == 1:
        return tf.squeeze(text, 1)
    if text.shape.rank != 1:
        raise ValueError(f"{name}: expected strings of shape [B] or [B, 1], "
                         f"got {text.shape}")
    return text


@keras.saving.register_keras_serializable(package="albert_tf")
class MultipleChoicePreprocessor(Preprocessor):
    """(article [B], question [B], options [B, 4]) -> features [B, 4, T].

    RACE's features (race_utils.convert_single_example): per option,
    [CLS] article [SEP] qa [SEP], where qa is the question with its "_"
    blank filled by the option (else question + " " + option), keeping the
    last max_qa_length pieces of qa and as much of the article as fits.
    Built by data.race.RaceTextBuilder, which the RACE export also uses.
    """

    def __init__(self, spm_model_file: str | None = None,
                 do_lower_case: bool = True, sequence_length: int = 512,
                 max_qa_length: int = 128, vocab_file: str | None = None,
                 **kwargs):
        from albert_tf.data import race

        race.check_lengths(sequence_length, max_qa_length)
        self.max_qa_length = int(max_qa_length)
        super().__init__(spm_model_file, do_lower_case=do_lower_case,
                         sequence_length=sequence_length,
                         vocab_file=vocab_file, **kwargs)

    def call(self, inputs):
        from albert_tf.data import race

        if self.tokenizer is None:
            raise ValueError("this MultipleChoicePreprocessor has no "
                             "vocabulary")
        if isinstance(inputs, dict):
            inputs = [inputs[k] for k in ("article", "question", "options")]
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 3:
            raise ValueError("expected (article, question, options)")
        article = _as_text_vector(inputs[0], "article")
        question = _as_text_vector(inputs[1], "question")
        options = tf.convert_to_tensor(inputs[2])
        if options.dtype != tf.string or options.shape.rank != 2 or (
                options.shape[1] not in (None, race.NUM_CHOICES)):
            raise ValueError(f"options: expected strings [B, "
                             f"{race.NUM_CHOICES}], got {options.dtype.name} "
                             f"{options.shape}")
        builder = race.RaceTextBuilder(self.tokenizer, self.sequence_length,
                                       self.max_qa_length)
        return builder(article, question, options)

    def compute_output_spec(self, inputs):
        from albert_tf.data import race

        first = inputs[0] if isinstance(inputs, (tuple, list)) else (
            inputs["article"])
        shape = (first.shape[0], race.NUM_CHOICES, self.sequence_length)
        return {name: keras.KerasTensor(shape, dtype="int32")
                for name in ("input_ids", "input_mask", "segment_ids")}

    def get_config(self):
        return {**super().get_config(), "max_qa_length": self.max_qa_length}
