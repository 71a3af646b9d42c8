"""SavedModel exports with explicit serving signatures.

Every export has `serving_default` on the original features (`input_ids`,
`input_mask`, `segment_ids`, int32 [B, T]). Given a SentencePiece model it
also carries raw-text signatures: the same preprocessing and tokenization
as the Python path (in-graph, tensorflow-text), packed as the original's
features: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, with segment ids 0
then 1, and long inputs truncated as `classifier_utils.convert_single_example`
does (a single text keeps its first max_seq_length - 2 pieces; a pair pops
from the longer side, b on ties, as `classifier_utils._truncate_seq_pair`).

* `export_classifier`: `serving_default` (ids), `serve_examples` (the
  original run_classifier export: serialized tf.Example in, `probabilities`
  and `predictions` out), `serve_text` / `serve_text_pair` (adds `label`).
* `export_pretrainer`: the encoder on ids and text, plus `mlm` (fill-mask:
  text with literal `[MASK]` tokens -> top-k pieces) and `sop`, the
  signatures of the original's TF-Hub module (export_to_tfhub.py).

Loading a SavedModel with text signatures needs `import tensorflow_text`
first (it registers the SentencePiece ops).

Legend: B batch, T sequence length, C labels, M masks per text, K top-k,
V vocab_size, H hidden_size.

The SavedModel is written to a temporary directory beside `export_dir` and
renamed into place, so an existing export is never left half-overwritten.
"""

from __future__ import annotations

import json

import keras
import sentencepiece as spm
import tensorflow as tf
from absl import logging

from albert_tf import fileio
from albert_tf import quiet
from albert_tf.serving import checks as serving_checks
from albert_tf.tokenization import full_tokenizer
from albert_tf.tokenization import in_graph
from albert_tf.tokenization import wordpiece

# Fixed by the original vocabulary (FullTokenizer checks them on load).
CLS_ID = full_tokenizer.SPM_SPECIAL_IDS["[CLS]"]
SEP_ID = full_tokenizer.SPM_SPECIAL_IDS["[SEP]"]
MASK_ID = full_tokenizer.SPM_SPECIAL_IDS["[MASK]"]
MASK_TOKEN = "[MASK]"

# Any shape: the signatures check their inputs' shapes in the graph
# (serving_checks), which a declared static shape would fold away.
_IDS = serving_checks.unchecked_spec(tf.int32)  # [B, T]
_TEXT = serving_checks.unchecked_spec(tf.string)  # [B]
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


# --------------------------------------------------------------------------
# In-graph packing, as classifier_utils.convert_single_example.


def truncated_pair_lengths(len_a: tf.Tensor, len_b: tf.Tensor,
                           budget: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Lengths `classifier_utils._truncate_seq_pair` leaves, in closed form.

    The original pops the last piece of the longer sequence (b on ties)
    until len_a + len_b <= budget. That leaves a whole when it fits beside b
    (and b takes the rest), else a keeps ceil(budget / 2) or what b leaves
    over, whichever is more. int32 [B] each.
    """
    half = (budget + 1) // 2
    new_a = tf.minimum(len_a, tf.maximum(half, budget - len_b))
    new_b = tf.minimum(len_b, budget - new_a)
    return new_a, new_b


def pack(ids_a: tf.RaggedTensor, ids_b: tf.RaggedTensor | None,
         max_seq_length: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Ragged ids [B, (Ta)], [B, (Tb)] -> input_ids, input_mask, segment_ids.

    Each int32 [B, T], T = the longest packed row (<= max_seq_length),
    zero-padded. A row whose b has no pieces is packed as a single text, as
    the original (`if tokens_b:`).

    Built with dense ops (one to_tensor per text, then gathers and selects
    by position) rather than ragged concatenation: the same values, but a
    few small ops instead of dozens, which is most of the packing's cost at
    batch 1 (bench/bench_inference.py).
    """
    width = max_seq_length - 2  # The most pieces either text can keep.
    len_a = tf.cast(ids_a.row_lengths(), tf.int32)  # [B]
    dense_a = tf.cast(ids_a.to_tensor(0, shape=[None, width]),
                      tf.int32)  # [B, W]
    if ids_b is None:
        keep_a = tf.minimum(len_a, width)
        keep_b = tf.zeros_like(len_a)
        has_b = tf.zeros_like(len_a, tf.bool)
    else:
        len_b = tf.cast(ids_b.row_lengths(), tf.int32)  # [B]
        dense_b = tf.cast(ids_b.to_tensor(0, shape=[None, width]),
                          tf.int32)  # [B, W]
        has_b = len_b > 0
        pair_a, pair_b = truncated_pair_lengths(len_a, len_b,
                                                max_seq_length - 3)
        keep_a = tf.where(has_b, pair_a, tf.minimum(len_a, width))
        keep_b = tf.where(has_b, pair_b, 0)
    # [CLS] a [SEP] (b [SEP] if has_b): total length per row.
    total = keep_a + 2 + keep_b + tf.cast(has_b, tf.int32)  # [B]
    length = tf.maximum(tf.reduce_max(total), 0)  # 0 for an empty batch.
    pos = tf.broadcast_to(tf.range(length)[None, :],
                          [tf.shape(total)[0], length])  # [B, T]
    ka, kb, tot = keep_a[:, None], keep_b[:, None], total[:, None]
    ids = tf.where(pos <= ka, tf.gather(
        dense_a, tf.clip_by_value(pos - 1, 0, width - 1), batch_dims=1), 0)
    ids = tf.where(pos == 0, CLS_ID, ids)
    if ids_b is not None:
        b_pos = pos - ka - 2  # Position within b.
        b_ids = tf.gather(dense_b, tf.clip_by_value(b_pos, 0, width - 1),
                          batch_dims=1)
        ids = tf.where((b_pos >= 0) & (b_pos < kb), b_ids, ids)
    # The [SEP] after a, and the one after b (at tot - 1 when has_b).
    is_sep = (pos == ka + 1) | ((pos == tot - 1) & has_b[:, None])
    ids = tf.where(is_sep, SEP_ID, ids)
    in_row = pos < tot
    input_ids = tf.where(in_row, ids, 0)  # [B, T]
    input_mask = tf.cast(in_row, tf.int32)  # [B, T]
    segment_ids = tf.cast(in_row & (pos >= ka + 2), tf.int32)  # [B, T]
    return input_ids, input_mask, segment_ids


# --------------------------------------------------------------------------
# Export-time checks.


def _load_spm(spm_model_file: str, vocab_size: int) -> list[str]:
    """The model's pieces, after checking they fit the model's vocabulary."""
    with tf.io.gfile.GFile(spm_model_file, "rb") as f:
        serialized = f.read()
    sp = spm.SentencePieceProcessor()
    try:
        sp.LoadFromSerializedProto(serialized)
    except RuntimeError as e:
        raise ValueError(f"spm_model_file {spm_model_file}: not a "
                         f"SentencePiece model ({e})") from e
    full_tokenizer.check_spm_special_ids(sp, spm_model_file)
    if sp.GetPieceSize() > vocab_size:
        # Larger ids would index past the embedding table (on a GPU, a
        # gather past the end silently reads zeros).
        raise ValueError(
            f"spm_model_file {spm_model_file} has {sp.GetPieceSize()} pieces "
            f"but the model's vocab_size is {vocab_size}")
    pieces = [sp.IdToPiece(i) for i in range(sp.GetPieceSize())]
    # Ids the SentencePiece model never produces have no piece.
    return pieces + [""] * (vocab_size - len(pieces))


def _check_max_seq_length(model: keras.Model, max_seq_length: int) -> None:
    limit = model.config.max_position_embeddings
    if not 3 <= max_seq_length <= limit:
        raise ValueError(f"max_seq_length={max_seq_length} must be in "
                         f"[3, max_position_embeddings={limit}]")


def _tokenizer(spm_model_file: str | None, do_lower_case: bool,
               vocab_size: int, vocab_file: str | None = None
               ) -> tuple[in_graph.InGraphTokenizer | None,
                          list[str] | None]:
    """The in-graph tokenizer and the pieces; WordPiece (vocab_file) only
    where a caller passes it: text classification and multiple choice."""
    if not spm_model_file and vocab_file:
        vocab = wordpiece.load_vocab(vocab_file)
        if max(vocab.values()) >= vocab_size:
            raise ValueError(f"vocab_file {vocab_file} has ids up to "
                             f"{max(vocab.values())}, beyond the model's "
                             f"vocab_size={vocab_size}")
        return in_graph.InGraphWordpieceTokenizer(
            vocab, do_lower_case=do_lower_case), list(vocab)
    if not spm_model_file:
        logging.warning("No spm_model_file: the export has no raw-text "
                        "signatures, only serving_default on ids.")
        return None, None
    pieces = _load_spm(spm_model_file, vocab_size)
    tokenizer = in_graph.InGraphTokenizer.from_file(
        spm_model_file, do_lower_case=do_lower_case)
    return tokenizer, pieces


# --------------------------------------------------------------------------
# Atomic SavedModel writes.


def _is_saved_model(path: str) -> bool:
    return any(tf.io.gfile.exists(fileio.join(path, name))
               for name in _SAVED_MODEL_FILES)


def _check_export_dir(export_dir: str) -> None:
    """Refuses to replace anything but an earlier SavedModel."""
    if not tf.io.gfile.exists(export_dir):
        return
    if not tf.io.gfile.isdir(export_dir):
        raise FileExistsError(f"export_dir {export_dir} is a file, not a "
                              f"SavedModel directory; refusing to replace it")
    if tf.io.gfile.listdir(export_dir) and not _is_saved_model(export_dir):
        raise FileExistsError(
            f"export_dir {export_dir} exists and is not a SavedModel (no "
            f"saved_model.pb); refusing to overwrite it. Choose another "
            f"export_dir or remove it.")


# What `albert_tf.load` reads back from an export (assets/): the model's
# config, its tokenizer, and how the text signatures preprocess.
EXPORT_INFO_NAME = "albert_tf_export.json"
EXPORT_SPM_NAME = "spiece.model"


EXPORT_VOCAB_NAME = "vocab.txt"


def _write_assets(directory: str, model: keras.Model,
                  spm_model_file: str | None, info: dict,
                  vocab_file: str | None = None) -> None:
    """albert_config.json, the tokenizer's file and EXPORT_INFO_NAME."""
    assets = fileio.join(directory, "assets")
    tf.io.gfile.makedirs(assets)
    fileio.write_atomic(fileio.join(assets, "albert_config.json"),
                        model.config.to_json_string())
    for path, name in ((spm_model_file, EXPORT_SPM_NAME),
                       (None if spm_model_file else vocab_file,
                        EXPORT_VOCAB_NAME)):
        if path:
            with tf.io.gfile.GFile(path, "rb") as f:
                fileio.write_atomic(fileio.join(assets, name), f.read())
    info = {"model": type(model).__name__, **info}
    fileio.write_atomic(fileio.join(assets, EXPORT_INFO_NAME),
                        json.dumps(info, indent=2, sort_keys=True) + "\n")


def _save(module: tf.Module, export_dir: str, signatures: dict, *,
          spm_model_file: str | None = None, vocab_file: str | None = None,
          **info) -> str:
    """tf.saved_model.save into a temporary sibling, then rename into place.

    `info` (do_lower_case, max_seq_length, labels...) goes to
    assets/albert_tf_export.json beside the config and the tokenizer, so
    `albert_tf.load(export_dir)` rebuilds the model and its Preprocessor.
    """
    def write(tmp: str) -> None:
        with quiet.saved_model_logs():
            tf.saved_model.save(module, tmp, signatures=signatures)
        _write_assets(tmp, module.model, spm_model_file, info, vocab_file)

    export_dir = fileio.replace_dir(export_dir, write, _check_export_dir)
    if not _is_saved_model(export_dir):
        raise RuntimeError(f"export to {export_dir} left no saved_model.pb")
    logging.info("Exported SavedModel to %s with signatures %s", export_dir,
                 sorted(signatures))
    return export_dir


# --------------------------------------------------------------------------
# Signature modules.


class _TextModule(tf.Module):
    """Model + optional in-graph tokenizer; signatures are its methods."""

    def __init__(self, model: keras.Model,
                 tokenizer: in_graph.InGraphTokenizer | None,
                 max_seq_length: int):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length

    def pack_text(self, text_a, text_b=None):
        """Raw text [B] (and [B]) -> input_ids, input_mask, segment_ids."""
        ids_b = None if text_b is None else self.tokenizer(text_b)
        return pack(self.tokenizer(text_a), ids_b, self.max_seq_length)

    def ids_outputs(self, input_ids, input_mask, segment_ids) -> dict:
        raise NotImplementedError

    def serve(self, input_ids, input_mask, segment_ids):
        return self.ids_outputs(*serving_checks.checked_ids(
            "serving_default", input_ids, input_mask, segment_ids,
            self.model.config))

    def serve_text(self, text):
        text, = serving_checks.checked("serve_text",
                                       [("text", text, ("B",))])
        return self.ids_outputs(*self.pack_text(text))

    def serve_text_pair(self, text_a, text_b):
        text_a, text_b = serving_checks.checked(
            "serve_text_pair", [("text_a", text_a, ("B",)),
                                ("text_b", text_b, ("B",))])
        return self.ids_outputs(*self.pack_text(text_a, text_b))

    def signatures(self) -> dict:
        signatures = {"serving_default": tf.function(
            self.serve, input_signature=[_IDS, _IDS, _IDS])}
        if self.tokenizer is not None:
            signatures["serve_text"] = tf.function(
                self.serve_text, input_signature=[_TEXT])
            signatures["serve_text_pair"] = tf.function(
                self.serve_text_pair, input_signature=[_TEXT, _TEXT])
        return signatures


def _features(input_ids, input_mask, segment_ids) -> dict:
    return {"input_ids": input_ids, "input_mask": input_mask,
            "segment_ids": segment_ids}


class _ClassifierModule(_TextModule):
    """AlbertClassifier outputs as classifier_utils.create_model has them."""

    def __init__(self, model, tokenizer, max_seq_length,
                 label_list: list[str] | None, is_regression: bool):
        super().__init__(model, tokenizer, max_seq_length)
        self.is_regression = is_regression
        self.label_list = None if label_list is None else list(label_list)

    def ids_outputs(self, input_ids, input_mask, segment_ids):
        logits = self.model(_features(input_ids, input_mask, segment_ids),
                            training=False)["logits"]
        logits = tf.cast(logits, tf.float32)  # [B, C]
        if self.is_regression:
            # As the original: `probabilities` are the raw [B, 1] scores and
            # `predictions` the same scores squeezed to [B].
            score = logits[:, 0]  # [B]
            return {"logits": logits, "probabilities": logits,
                    "predictions": score, "score": score}
        probabilities = tf.nn.softmax(logits, axis=-1)  # [B, C]
        predictions = tf.argmax(probabilities, axis=-1,
                                output_type=tf.int32)  # [B]
        return {"logits": logits, "probabilities": probabilities,
                "predictions": predictions}

    def serve_examples(self, serialized):
        """run_classifier._serving_input_receiver_fn: tf.Example in."""
        length = self.max_seq_length
        serialized, = serving_checks.checked(
            "serve_examples", [("input", serialized, ("B",))])
        features = tf.io.parse_example(serialized, {
            name: tf.io.FixedLenFeature([length], tf.int64)
            for name in ("input_ids", "input_mask", "segment_ids")})
        names = ("input_ids", "input_mask", "segment_ids")
        return self.ids_outputs(*serving_checks.checked_ids(
            "serve_examples", *(tf.cast(features[k], tf.int32)
                                for k in names), self.model.config))

    def _with_label(self, outputs):
        if not self.is_regression:
            names = tf.constant(self.label_list)  # [C]
            outputs["label"] = tf.gather(names, outputs["predictions"])
        return outputs

    def serve_text(self, text):
        return self._with_label(super().serve_text(text))

    def serve_text_pair(self, text_a, text_b):
        return self._with_label(super().serve_text_pair(text_a, text_b))

    def signatures(self):
        signatures = super().signatures()
        # The original's serving_default input is named `input` (the
        # Estimator's name for a single receiver tensor).
        signatures["serve_examples"] = tf.function(
            lambda input: self.serve_examples(input),
            input_signature=[tf.TensorSpec(None, tf.string, name="input")])
        return signatures


class _PretrainerModule(_TextModule):
    """AlbertPretrainer: encoder outputs, fill-mask and sentence order."""

    def __init__(self, model, tokenizer, max_seq_length,
                 pieces: list[str] | None, top_k: int):
        super().__init__(model, tokenizer, max_seq_length)
        self.top_k = top_k
        self.pieces = pieces

    def ids_outputs(self, input_ids, input_mask, segment_ids):
        outputs = self.model.encoder(
            _features(input_ids, input_mask, segment_ids), training=False)
        return {k: tf.cast(outputs[k], tf.float32)
                for k in ("sequence_output", "pooled_output")}

    def mask_text_ids(self, text):
        """Text [B] -> ids [B, (T)] with MASK_ID for each literal `[MASK]`.

        The text is split on `[MASK]` and each part tokenized on its own, so
        the mask stays one token (SentencePiece would cut `[MASK]` into
        pieces). Returns the ids and the number of masks per text [B].
        """
        parts = tf.strings.split(text, MASK_TOKEN)  # [B, (S)]
        part_ids = self.tokenizer(parts.flat_values)  # [N, (t)]
        # Every part but a row's last is followed by one [MASK].
        index = tf.range(tf.shape(parts.flat_values, out_type=tf.int64)[0])
        last = tf.gather(parts.row_limits() - 1, parts.value_rowids())
        followed = tf.cast(index != last, tf.int64)  # [N]
        masks = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(followed)], MASK_ID), followed)
        part_ids = tf.cast(part_ids, tf.int32).with_row_splits_dtype(tf.int64)
        merged = tf.concat([part_ids, masks], axis=1)
        ids = parts.with_flat_values(merged).merge_dims(1, 2)  # [B, (T)]
        num_masks = tf.cast(parts.row_lengths() - 1, tf.int32)  # [B]
        return ids, num_masks

    def mlm(self, text):
        """Fill-mask: the top-k pieces at each `[MASK]` of each text."""
        text, = serving_checks.checked("mlm", [("text", text, ("B",))])
        ids, num_masks = self.mask_text_ids(text)
        input_ids, input_mask, segment_ids = pack(ids, None,
                                                  self.max_seq_length)
        is_mask = tf.equal(input_ids, MASK_ID)  # [B, T]
        kept = tf.reduce_sum(tf.cast(is_mask, tf.int32), axis=1)  # [B]
        check = tf.debugging.assert_equal(
            kept, num_masks, message=(
                f"a [MASK] lies beyond max_seq_length={self.max_seq_length} "
                f"pieces and would get no prediction; shorten the text"))
        with tf.control_dependencies([check]):
            positions = tf.ragged.boolean_mask(
                tf.broadcast_to(tf.range(tf.shape(input_ids)[1]),
                                tf.shape(input_ids)), is_mask)  # [B, (M)]
        valid = tf.ones_like(positions, tf.bool).to_tensor(False)  # [B, M]
        dense_positions = positions.to_tensor(0)  # [B, M]
        outputs = self.model({**_features(input_ids, input_mask, segment_ids),
                              "masked_lm_positions": dense_positions},
                             training=False)
        log_probs = tf.nn.log_softmax(
            tf.cast(outputs["mlm_logits"], tf.float32), axis=-1)  # [B, M, V]
        top_log_probs, top_ids = tf.math.top_k(log_probs, k=self.top_k)
        valid_k = tf.broadcast_to(valid[:, :, None], tf.shape(top_ids))
        top_pieces = tf.gather(tf.constant(self.pieces), top_ids)
        return {
            "input_ids": input_ids,  # [B, T] as packed
            "mask_positions": tf.where(valid, dense_positions, -1),  # [B, M]
            "top_k_ids": tf.where(valid_k, top_ids, -1),  # [B, M, K]
            "top_k_pieces": tf.where(valid_k, top_pieces, ""),  # [B, M, K]
            "top_k_probabilities": tf.where(
                valid_k, tf.exp(top_log_probs), 0.0),  # [B, M, K]
        }

    def sop(self, text_a, text_b):
        """Sentence order of a then b; class 1 = swapped (run_pretraining)."""
        text_a, text_b = serving_checks.checked(
            "sop", [("text_a", text_a, ("B",)), ("text_b", text_b, ("B",))])
        features = _features(*self.pack_text(text_a, text_b))
        pooled = self.model.encoder(features, training=False)["pooled_output"]
        logits = self.model.sentence_order_head(pooled)  # [B, 2]
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        # `sop_log_probs` is the original hub module's output name.
        return {"sop_log_probs": log_probs, "probabilities": tf.exp(log_probs)}

    def signatures(self):
        signatures = super().signatures()
        if self.tokenizer is not None:
            signatures["mlm"] = tf.function(self.mlm, input_signature=[_TEXT])
            signatures["sop"] = tf.function(self.sop,
                                            input_signature=[_TEXT, _TEXT])
        return signatures


# --------------------------------------------------------------------------
# Public API.


def export_classifier(model: keras.Model, export_dir: str, *,
                      label_list: list[str] | None, is_regression: bool,
                      spm_model_file: str | None, do_lower_case: bool,
                      max_seq_length: int,
                      vocab_file: str | None = None) -> str:
    """Writes an AlbertClassifier SavedModel; returns export_dir.

    Signatures: `serving_default` (ids -> logits [B, C], probabilities
    [B, C], predictions [B]; regression adds score [B]); `serve_examples`
    (`input`: serialized tf.Example [B] with int64 input_ids, input_mask,
    segment_ids [max_seq_length], other features ignored: the original's
    export); with spm_model_file (or a WordPiece vocab_file),
    `serve_text` (text [B]) and `serve_text_pair` (text_a, text_b [B]),
    which add `label` [B] (the label name) for classification.
    """
    _check_max_seq_length(model, max_seq_length)
    num_labels = model.num_labels
    if is_regression and num_labels != 1:
        raise ValueError(f"is_regression needs num_labels=1, the model has "
                         f"{num_labels}")
    if not is_regression:
        if label_list is None:
            label_list = [str(i) for i in range(num_labels)]
        if len(label_list) != num_labels:
            raise ValueError(f"label_list has {len(label_list)} names "
                             f"{list(label_list)} but the model has "
                             f"num_labels={num_labels}")
        label_list = [str(label) for label in label_list]
    tokenizer, _ = _tokenizer(spm_model_file, do_lower_case,
                              model.config.vocab_size, vocab_file)
    module = _ClassifierModule(model, tokenizer, max_seq_length,
                               None if is_regression else label_list,
                               is_regression)
    return _save(module, export_dir, module.signatures(),
                 spm_model_file=spm_model_file, vocab_file=vocab_file,
                 do_lower_case=do_lower_case,
                 max_seq_length=max_seq_length, num_labels=num_labels,
                 label_list=label_list, is_regression=is_regression)


def export_pretrainer(model: keras.Model, export_dir: str, *,
                      spm_model_file: str | None, do_lower_case: bool,
                      max_seq_length: int, top_k: int = 5) -> str:
    """Writes an AlbertPretrainer SavedModel; returns export_dir.

    Signatures: `serving_default` (ids -> sequence_output [B, T, H],
    pooled_output [B, H]); with spm_model_file also `serve_text`,
    `serve_text_pair` (the same outputs on raw text), `mlm` (text [B] with
    literal `[MASK]` tokens -> mask_positions [B, M] and top_k_ids,
    top_k_pieces, top_k_probabilities [B, M, K], padded with -1 / "" / 0
    where a text has fewer than M masks) and `sop` (text_a, text_b [B] ->
    probabilities and sop_log_probs [B, 2], class 1 = swapped).
    """
    _check_max_seq_length(model, max_seq_length)
    vocab_size = model.config.vocab_size
    if not 1 <= top_k <= vocab_size:
        raise ValueError(f"top_k={top_k} must be in [1, vocab_size="
                         f"{vocab_size}]")
    tokenizer, pieces = _tokenizer(spm_model_file, do_lower_case, vocab_size)
    module = _PretrainerModule(model, tokenizer, max_seq_length, pieces,
                               top_k)
    return _save(module, export_dir, module.signatures(),
                 spm_model_file=spm_model_file, do_lower_case=do_lower_case,
                 max_seq_length=max_seq_length)


class _MultipleChoiceModule(tf.Module):
    """AlbertMultipleChoice on ids [B, C, T] and on raw RACE text."""

    def __init__(self, model, builder, labels: tuple[str, ...]):
        super().__init__()
        self.model = model
        self.builder = builder  # data.race.RaceTextBuilder, or None.
        self.labels = list(labels)

    def serve(self, input_ids, input_mask, segment_ids):
        input_ids, input_mask, segment_ids = serving_checks.checked_ids(
            "serving_default", input_ids, input_mask, segment_ids,
            self.model.config, leading=("B", len(self.labels)))
        logits = tf.cast(self.model(
            _features(input_ids, input_mask, segment_ids),
            training=False)["logits"], tf.float32)  # [B, C]
        probabilities = tf.nn.softmax(logits, axis=-1)
        index = tf.argmax(logits, axis=-1, output_type=tf.int32)  # [B]
        return {"logits": logits, "probabilities": probabilities,
                "prediction": tf.gather(tf.constant(self.labels), index)}

    def serve_choice(self, article, question, options):
        """Exactly the model's number of options per question (RACE: 4),
        checked: its head scores a fixed number of choices."""
        article, question, options = serving_checks.checked(
            "serve_choice", [("article", article, ("B",)),
                             ("question", question, ("B",)),
                             ("options", options, ("B", len(self.labels)))])
        features = self.builder(article, question, options)
        return self.serve(features["input_ids"], features["input_mask"],
                          features["segment_ids"])


def export_multiple_choice(model: keras.Model, export_dir: str, *,
                           spm_model_file: str | None, do_lower_case: bool,
                           max_seq_length: int, max_qa_length: int,
                           vocab_file: str | None = None) -> str:
    """Writes an AlbertMultipleChoice (RACE) SavedModel; returns export_dir.

    Signatures: `serving_default` (input_ids, input_mask, segment_ids int32
    [B, C, T] -> logits, probabilities [B, C], prediction [B] the letter);
    with spm_model_file, `serve_choice` (article [B], question [B],
    options [B, C] strings -> the same), the text built in-graph as
    race_utils does (data.race.RaceTextBuilder).
    """
    from albert_tf.data import race  # Only RACE exports need it.

    _check_max_seq_length(model, max_seq_length)
    tokenizer, _ = _tokenizer(spm_model_file, do_lower_case,
                              model.config.vocab_size, vocab_file)
    builder = None
    if tokenizer is not None:
        builder = race.RaceTextBuilder(tokenizer, max_seq_length,
                                       max_qa_length)
    labels = race.LABELS[:model.num_choices]
    module = _MultipleChoiceModule(model, builder, labels)
    choice_ids = _IDS  # [B, C, T], checked in serve.
    signatures = {"serving_default": tf.function(
        module.serve, input_signature=[choice_ids] * 3)}
    if builder is not None:
        signatures["serve_choice"] = tf.function(
            module.serve_choice, input_signature=[
                _TEXT, _TEXT, _TEXT])  # [B], [B], [B, C], checked.
    return _save(module, export_dir, signatures,
                 spm_model_file=spm_model_file, vocab_file=vocab_file,
                 do_lower_case=do_lower_case,
                 max_seq_length=max_seq_length, max_qa_length=max_qa_length,
                 num_choices=model.num_choices)
