"""TFLite exports: the classifier and the encoder, ids in and raw text in.

`export_tflite(model, out_dir, ...)` writes, for each form in
`quantization` (float32; float16 weights; int8 dynamic-range weights):

* `<kind>_ids.<form>.tflite`: signature `serving_default` on input_ids,
  input_mask, segment_ids int32 [1, T] (any T <= max_position_embeddings).
  TFLite builtin ops only: it runs on any TFLite runtime.
* `<kind>_text.<form>.tflite` (with spm_model_file and do_lower_case):
  signatures `serve_text` (text [1]) and `serve_text_pair` (text_a, text_b
  [1]): preprocessing, tokenization and the `[CLS] a [SEP] (b [SEP])`
  packing with truncation to max_seq_length of the SavedModel's
  (serving/export.py `pack`). They need tf-text's TFLite kernels
  (FastBertNormalize, TFText>FastSentencepieceTokenize, RaggedTensorToTensor)
  registered in the interpreter (`interpreter()` below, README "TFLite").
  No flex (Select TF ops): the `tensorflow` 2.21 pip interpreter has no
  flex delegate, so InGraphTokenizer's regex / code-point ops are replaced
  by tf-text's normalizer (TfliteTokenizer says where that differs).

<kind> is `classifier` (logits, probabilities [1, C], predictions [1]) for
an AlbertClassifier, `multiple_choice` (the same outputs on ids [1, C, T];
ids only, RACE's text building needs regex ops) for AlbertMultipleChoice,
and `encoder` (sequence_output [1, T, H], pooled_output
[1, H]) for any model with an encoder (a classifier exports both).
`tflite.json` lists the files, labels, max_seq_length and the ops needed.

Batch 1: with both the batch and the length dynamic the converter cannot
lower the model's `mask[:, None, None, :]` (a StridedSlice with two new
axes) to a builtin, and on-device inference is one text at a time. The
inputs are declared with a dynamic batch and reshaped to 1 in the graph,
so another batch size fails in the interpreter instead of running (two
texts would otherwise be tokenized as one).

Shared weights stay shared: the graph reads each of the shared layer's
variables once per layer application; freezing (convert_variables_to_
constants_v2) replaces each variable by one constant that all those reads
use, and the flatbuffer stores one buffer per constant, so a 12-layer,
1-group model stores its layer once: the constant buffers add up to the
parameter bytes, and the rest of the file is op metadata (about 18 KB per
layer application, measured). ALBERT-base's float32 ids file is 46.9 MB
for 46.7 MB of parameters (bench/results/tflite_issue20.json);
tests/test_tflite.py checks 6 layers in 1 group. The converter's own path
is not used: it keeps Keras 3's variables as TFLite resource variables with no
initializer (experimental_enable_resource_variables; NaN outputs), which
would also keep dynamic-range quantization off the weights.

Legend: B batch (1), T sequence length, C labels, H hidden_size.
The files are written to a temporary directory beside out_dir and renamed
into place, as export.py does for SavedModels.
"""

from __future__ import annotations

import tempfile
from typing import Sequence

import keras
import numpy as np
import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text
from absl import logging
from tensorflow.python.framework import convert_to_constants

from albert_tf import fileio
from albert_tf.serving import export
from albert_tf.tokenization import text as text_lib

FORMS = ("float32", "float16", "int8")
MANIFEST = "tflite.json"
_FORMAT = "albert_tf.tflite/1"
# Declared [None, ...] and reshaped to batch 1 in the graph (_batch_one):
# a runner resizes inputs to whatever it is given, and a static batch of 1
# would let a batch of 2 texts run as one text.
_IDS = [tf.TensorSpec([None, None], tf.int32, name=name)
        for name in ("input_ids", "input_mask", "segment_ids")]  # [1, T]


def _text(name: str) -> tf.TensorSpec:
    return tf.TensorSpec([None], tf.string, name=name)  # [1]


def _batch_one(x: tf.Tensor) -> tf.Tensor:
    """x [1, ...] as is, with the leading 1 static; any other batch fails
    in the interpreter (RESHAPE: "num_input_elements !=
    num_output_elements")."""
    shape = tf.shape(x)
    return tf.reshape(x, tf.concat([[1], shape[1:]], 0))


# --------------------------------------------------------------------------
# Raw text -> ids with ops TFLite can run.


def _digit_comma_table(sp: spm.SentencePieceProcessor,
                       vocab_size: int) -> np.ndarray | None:
    """The digit-comma rule as a dense table: piece id -> replacement ids.

    The rule (text_lib.split_digit_comma) depends on the piece alone, so it
    is applied here in Python, once per piece of the vocabulary, instead of
    re-running SentencePiece on piece strings in the graph (FastSentencepiece
    returns ids, and TFLite has no string ops to cut pieces). int32
    [vocab_size, R]: row i is i's replacement padded with -1 (row i = [i,
    -1, ...] for the pieces the rule leaves alone); None when the rule
    applies to no piece. Dense, because TFLite has no searchsorted.
    """
    table = {}
    for i in range(sp.GetPieceSize()):
        if sp.IsUnknown(i) or sp.IsControl(i):
            continue
        piece = sp.IdToPiece(i)
        split = text_lib.split_digit_comma(sp, [piece])
        if split != [piece]:
            table[i] = [sp.PieceToId(p) for p in split]
    if not table:
        return None
    width = max(len(row) for row in table.values())
    dense = np.full([vocab_size, width], -1, np.int32)
    dense[:, 0] = np.arange(vocab_size)
    for i, row in table.items():
        dense[i, :len(row)] = row
    return dense


class TfliteTokenizer(tf.Module):
    """One raw text [1] -> ids [1, (T)] int32, with ops TFLite can run.

    TFLite's interpreter has no string builtins and the `tensorflow` pip
    package's interpreter has no flex delegate (checked with 2.21: "Select
    TensorFlow op(s) ... not supported"), so InGraphTokenizer's regex and
    code-point steps cannot run there. This uses only tf-text ops with
    TFLite kernels: FastBertNormalizer (lower-case, NFD, drop accents: the
    original's preprocess_text for do_lower_case) and FastSentencepiece-
    Tokenizer (the model's own normalizer, whitespace collapse included),
    then the digit-comma rule as an id table (_digit_comma_table).

    The same ids as FullTokenizer except where the normalizers differ
    (tests/test_tflite.py): control characters (FastBertNormalizer drops
    them, preprocess_text keeps them for SentencePiece, e.g. NUL -> <unk>),
    NFD where the original decomposes with NFKD (compatibility characters
    that carry accents, e.g. a spacing diaeresis U+00A8), the context rule
    for a final capital sigma, and code points whose case or decomposition
    differs between tf-text's ICU and this Python's Unicode version.
    """

    def __init__(self, spm_model: bytes, vocab_size: int):
        super().__init__()
        self._normalizer = tf_text.FastBertNormalizer(
            lower_case_nfd_strip_accents=True)
        self._sp = tf_text.FastSentencepieceTokenizer(spm_model)
        sp = spm.SentencePieceProcessor()
        sp.LoadFromSerializedProto(spm_model)
        self._digit_comma = _digit_comma_table(sp, vocab_size)

    def __call__(self, text: tf.Tensor) -> tf.RaggedTensor:
        ids = self._sp.tokenize(self._normalizer.normalize(text))
        ids = tf.reshape(tf.cast(ids.flat_values, tf.int32), [-1])  # [N]
        if self._digit_comma is not None:
            rows = tf.gather(tf.constant(self._digit_comma), ids)  # [N, R]
            flat = tf.reshape(rows, [-1])  # [N * R]
            ids = tf.gather(flat, tf.reshape(tf.where(flat >= 0), [-1]))
        return tf.RaggedTensor.from_tensor(ids[None, :])  # [1, (T)]


# --------------------------------------------------------------------------
# Signature modules (batch 1).


def _features(input_ids, input_mask, segment_ids) -> dict:
    return {"input_ids": input_ids, "input_mask": input_mask,
            "segment_ids": segment_ids}


class _Module(tf.Module):
    """One exported kind: `outputs` on ids, and on text when tokenizer."""

    def __init__(self, model: keras.Model, outputs,
                 tokenizer: TfliteTokenizer | None, max_seq_length: int,
                 ids_specs: list[tf.TensorSpec] = _IDS):
        super().__init__()
        self.model = model
        self.ids_specs = ids_specs
        self._outputs = outputs
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length

    def ids_functions(self) -> dict:
        def serving_default(input_ids, input_mask, segment_ids):
            return self._outputs(self.model, _batch_one(input_ids),
                                 _batch_one(input_mask),
                                 _batch_one(segment_ids))
        return {"serving_default": tf.function(
            serving_default, input_signature=self.ids_specs)}

    def text_functions(self) -> dict:
        def serve_text(text):
            ids = export.pack(self.tokenizer(_batch_one(text)), None,
                              self.max_seq_length)
            return self._outputs(self.model, *ids)

        def serve_text_pair(text_a, text_b):
            ids = export.pack(self.tokenizer(_batch_one(text_a)),
                              self.tokenizer(_batch_one(text_b)),
                              self.max_seq_length)
            return self._outputs(self.model, *ids)

        return {"serve_text": tf.function(serve_text,
                                          input_signature=[_text("text")]),
                "serve_text_pair": tf.function(
                    serve_text_pair,
                    input_signature=[_text("text_a"), _text("text_b")])}


def _classifier_outputs(model, input_ids, input_mask, segment_ids) -> dict:
    logits = tf.cast(model(_features(input_ids, input_mask, segment_ids),
                           training=False)["logits"], tf.float32)  # [1, C]
    return {"logits": logits,
            "probabilities": tf.nn.softmax(logits, axis=-1),  # [1, C]
            "predictions": tf.argmax(logits, axis=-1,
                                     output_type=tf.int32)}  # [1]


def _multiple_choice_outputs(model, input_ids, input_mask,
                             segment_ids) -> dict:
    """ids [1, C, T] -> logits, probabilities [1, C], predictions [1]."""
    return _classifier_outputs(model, input_ids, input_mask, segment_ids)


def _encoder_outputs(model, input_ids, input_mask, segment_ids) -> dict:
    outputs = model.encoder(_features(input_ids, input_mask, segment_ids),
                            training=False)
    return {k: tf.cast(outputs[k], tf.float32)
            for k in ("sequence_output", "pooled_output")}


# --------------------------------------------------------------------------
# Conversion.


def _frozen(function) -> tf.types.experimental.ConcreteFunction:
    """A tf.function with an input_signature -> the same outputs (a dict of
    tensors), with every variable read replaced by a constant."""
    concrete = function.get_concrete_function()
    frozen = convert_to_constants.convert_variables_to_constants_v2(
        concrete, lower_control_flow=False)  # TFLite takes v2 control flow.
    names = sorted(concrete.structured_outputs)  # The frozen outputs' order.
    specs = function.input_signature

    def call(*args):
        return dict(zip(names, frozen(*args)))

    return tf.function(call, input_signature=specs).get_concrete_function()


def _convert(functions: dict, form: str, text: bool) -> bytes:
    """tf.functions (by signature key) -> one TFLite flatbuffer."""
    with tempfile.TemporaryDirectory(prefix="albert_tf_tflite") as tmp:
        # A SavedModel of the frozen functions, only to name the signatures
        # (the converter's concrete-function path names them itself).
        tf.saved_model.save(tf.Module(), tmp, signatures={
            name: _frozen(fn) for name, fn in functions.items()})
        converter = tf.lite.TFLiteConverter.from_saved_model(
            tmp, signature_keys=list(functions))
        # Builtins only (no SELECT_TF_OPS: no flex delegate to run them);
        # the text files' tf-text ops become custom ops, run by tf-text's
        # TFLite kernels.
        converter.allow_custom_ops = text
        if form == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif form == "int8":
            # Dynamic range: int8 weights, float activations (no dataset).
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        return converter.convert()


# --------------------------------------------------------------------------
# Atomic directory writes.


def _check_out_dir(out_dir: str) -> None:
    """Refuses to replace anything but an earlier TFLite export."""
    if not tf.io.gfile.exists(out_dir):
        return
    if not tf.io.gfile.isdir(out_dir):
        raise FileExistsError(f"tflite_dir {out_dir} is a file, not a TFLite "
                              f"export directory; refusing to replace it")
    if (tf.io.gfile.listdir(out_dir)
            and not tf.io.gfile.exists(fileio.join(out_dir, MANIFEST))):
        raise FileExistsError(
            f"tflite_dir {out_dir} exists and is not a TFLite export (no "
            f"{MANIFEST}); refusing to overwrite it. Choose another "
            f"tflite_dir or remove it.")


def _write_dir(out_dir: str, files: dict[str, bytes], manifest: dict) -> str:
    """Writes files + manifest into a temporary sibling, renamed into place
    (the SavedModel export's convention), so a reader never sees a
    half-written export and a failed export leaves the old one."""
    def write(tmp: str) -> None:
        tf.io.gfile.makedirs(tmp)
        for filename, data in files.items():
            with tf.io.gfile.GFile(fileio.join(tmp, filename), "wb") as f:
                f.write(data)
        fileio.write_json_atomic(fileio.join(tmp, MANIFEST), manifest)

    return fileio.replace_dir(out_dir, write, _check_out_dir)


# --------------------------------------------------------------------------
# Public API.


def _read_spm(spm_model_file: str, vocab_size: int) -> bytes:
    export._load_spm(spm_model_file, vocab_size)  # noqa: SLF001  (checks)
    with tf.io.gfile.GFile(spm_model_file, "rb") as f:
        return f.read()


def export_tflite(model: keras.Model, out_dir: str, *,
                  spm_model_file: str | None = None,
                  do_lower_case: bool | None = None,
                  max_seq_length: int | None = None,
                  label_list: Sequence[str] | None = None,
                  quantization: Sequence[str] = FORMS) -> dict:
    """Writes the TFLite files of `model` into out_dir; returns the manifest.

    model: an AlbertClassifier (classifier and encoder files), an
    AlbertMultipleChoice, or any model with an `encoder` (encoder files,
    e.g. from `albert_tf.load(...)`); or a text task (AlbertTextClassifier),
    whose Preprocessor supplies the SentencePiece model, do_lower_case and
    max_seq_length unless given. Defaults otherwise: do_lower_case True,
    max_seq_length 128. quantization: any of FORMS.
    Raw-text files need spm_model_file and do_lower_case (see the module
    docstring for why and for the ops they need); ids files are always
    written. Classification only: a regression head (num_labels 1) exports
    its score as `logits` [1, 1].
    """
    preprocessor = getattr(model, "preprocessor", None)
    if getattr(model, "ids_model", None) is not None:  # text_tasks.TextTask
        from albert_tf import text_tasks

        model = model.ids_model
        if preprocessor is not None and spm_model_file is None:
            spm_model_file, _ = text_tasks._tokenizer_files(  # noqa: SLF001
                preprocessor)
        if preprocessor is not None and do_lower_case is None:
            do_lower_case = preprocessor.do_lower_case
        if preprocessor is not None and max_seq_length is None:
            max_seq_length = preprocessor.sequence_length
    do_lower_case = True if do_lower_case is None else do_lower_case
    max_seq_length = 128 if max_seq_length is None else max_seq_length
    forms = list(dict.fromkeys(quantization))
    unknown = [f for f in forms if f not in FORMS]
    if unknown or not forms:
        raise ValueError(f"quantization={list(quantization)}: each must be "
                         f"one of {list(FORMS)} (at least one)")
    if getattr(model, "encoder", None) is None:
        raise ValueError(f"{type(model).__name__} has no ALBERT encoder to "
                         f"export")
    export._check_max_seq_length(model, max_seq_length)  # noqa: SLF001
    config = model.config
    kinds = {}
    num_labels = getattr(model, "num_labels", None)
    if num_labels is not None and hasattr(model, "classifier"):
        labels = ([str(i) for i in range(num_labels)] if label_list is None
                  else [str(x) for x in label_list])
        if len(labels) != num_labels:
            raise ValueError(f"label_list has {len(labels)} names {labels} "
                             f"but the model has num_labels={num_labels}")
        kinds["classifier"] = _classifier_outputs
    elif getattr(model, "num_choices", None):
        labels = None
        kinds["multiple_choice"] = _multiple_choice_outputs
    else:
        labels = None
    kinds["encoder"] = _encoder_outputs
    tokenizer = None
    if spm_model_file and do_lower_case:
        tokenizer = TfliteTokenizer(
            _read_spm(spm_model_file, config.vocab_size), config.vocab_size)
    elif spm_model_file:
        logging.warning("do_lower_case=False: no raw-text TFLite files (the "
                        "original strips accents without lower-casing, "
                        "which tf-text's TFLite normalizer cannot do); "
                        "ids files only.")
    else:
        logging.warning("No spm_model_file: ids TFLite files only.")
    files, entries = {}, []
    for kind, outputs in kinds.items():
        if kind == "multiple_choice":
            # RACE's text building (data.race.RaceTextBuilder) needs the
            # regex ops TFLite lacks: ids [1, C, T] only.
            module = _Module(model, outputs, None, max_seq_length, [
                tf.TensorSpec([None, model.num_choices, None], tf.int32,
                              name=spec.name) for spec in _IDS])
        else:
            module = _Module(model, outputs, tokenizer, max_seq_length)
        variants = [("ids", module.ids_functions())]
        if module.tokenizer is not None:
            variants.append(("text", module.text_functions()))
        for variant, functions in variants:
            for form in forms:
                filename = f"{kind}_{variant}.{form}.tflite"
                files[filename] = _convert(functions, form,
                                           text=variant == "text")
                entries.append({"file": filename, "kind": kind,
                                "input": variant, "form": form,
                                "signatures": sorted(functions),
                                "bytes": len(files[filename])})
                logging.info("TFLite %s: %d bytes", filename,
                             len(files[filename]))
    manifest = {
        "format": _FORMAT, "files": entries, "labels": labels,
        "max_seq_length": max_seq_length, "do_lower_case": do_lower_case,
        "custom_ops": "tensorflow_text SELECT_TFTEXT_OPS (text files only)",
    }
    out_dir = _write_dir(out_dir, files, manifest)
    logging.info("Exported %d TFLite files to %s", len(files), out_dir)
    return manifest


def interpreter(model_path: str, num_threads: int | None = None
                ) -> tf.lite.Interpreter:
    """A tf.lite.Interpreter that can run every file export_tflite writes:
    the builtin ops plus tf-text's TFLite kernels (SELECT_TFTEXT_OPS)."""
    from tensorflow.lite.python import interpreter as tfl_interpreter
    from tensorflow_text.core.pybinds import tflite_registrar

    # tf.lite.Interpreter itself takes no op registerers in TF 2.21.
    return tfl_interpreter.InterpreterWithCustomOps(
        model_path=model_path, num_threads=num_threads,
        custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS)
