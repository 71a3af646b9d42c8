"""SavedModel export with explicit serving signatures.

`serving_default` takes the original features (`input_ids`, `input_mask`,
`segment_ids`, int32 [B, T]). Given a SentencePiece model, the export also
carries `serve_text`: raw strings in, the same preprocessing and
tokenization as the Python path (in-graph, tensorflow-text), packed as
`[CLS] a [SEP] (b [SEP])` and truncated to `max_seq_length`.

The SavedModel is written to a temporary directory and renamed into place,
so an existing export is never left half-overwritten.
"""

from __future__ import annotations

import os
import shutil

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from albert_tf.tokenization import in_graph

# Fixed by the original vocabulary (train_spm checks them).
CLS_ID, SEP_ID = 2, 3

_IDS = tf.TensorSpec([None, None], tf.int32)


class _Export(tf.Module):
    """The model plus its signatures; outputs are float32 tensors."""

    def __init__(self, model: keras.Model, output_keys: tuple[str, ...],
                 tokenizer: in_graph.InGraphTokenizer | None,
                 max_seq_length: int):
        super().__init__()
        self.model = model
        self.output_keys = output_keys
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length

    def _run(self, input_ids, input_mask, segment_ids):
        outputs = self.model({"input_ids": input_ids, "input_mask": input_mask,
                              "segment_ids": segment_ids}, training=False)
        return {k: tf.cast(outputs[k], tf.float32) for k in self.output_keys}

    @tf.function(input_signature=[_IDS, _IDS, _IDS])
    def serve(self, input_ids, input_mask, segment_ids):
        return self._run(input_ids, input_mask, segment_ids)


class _TextExport(_Export):
    """Adds raw-text signatures (tf.saved_model.save traces every method)."""

    def pack(self, text_a, text_b=None):
        """Raw text -> (input_ids, input_mask, segment_ids), int32 [B, T]."""
        segments = [self.tokenizer(text_a)]
        if text_b is not None:
            segments.append(self.tokenizer(text_b))
        # [CLS] and one [SEP] per segment, as the original's features.
        budget = self.max_seq_length - 1 - len(segments)
        segments = tf_text.RoundRobinTrimmer(budget).trim(segments)
        ids, segment_ids = tf_text.combine_segments(
            segments, start_of_sequence_id=CLS_ID, end_of_segment_id=SEP_ID)
        input_ids = ids.to_tensor(0)
        return (tf.cast(input_ids, tf.int32),
                tf.cast(tf.ones_like(ids).to_tensor(0), tf.int32),
                tf.cast(segment_ids.to_tensor(0), tf.int32))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve_text(self, text):
        return self._run(*self.pack(text))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string),
                                  tf.TensorSpec([None], tf.string)])
    def serve_text_pair(self, text_a, text_b):
        return self._run(*self.pack(text_a, text_b))


def export_model(model: keras.Model, export_dir: str,
                 output_keys: tuple[str, ...],
                 spm_model_file: str | None = None,
                 do_lower_case: bool = True,
                 max_seq_length: int = 512) -> str:
    """Writes a SavedModel of `model` with ids (and text) signatures."""
    tokenizer = None
    if spm_model_file:
        tokenizer = in_graph.InGraphTokenizer.from_file(
            spm_model_file, do_lower_case=do_lower_case)
    module_class = _TextExport if tokenizer is not None else _Export
    module = module_class(model, output_keys, tokenizer, max_seq_length)
    signatures = {"serving_default": module.serve}
    if tokenizer is not None:
        signatures["serve_text"] = module.serve_text
        signatures["serve_text_pair"] = module.serve_text_pair
    export_dir = os.path.abspath(export_dir)
    tmp = export_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tf.saved_model.save(module, tmp, signatures=signatures)
    shutil.rmtree(export_dir, ignore_errors=True)
    os.replace(tmp, export_dir)
    return export_dir


def export_encoder(encoder: keras.Model, export_dir: str,
                   spm_model_file: str | None = None,
                   do_lower_case: bool = True,
                   max_seq_length: int = 512) -> str:
    """The encoder: sequence_output [B, T, H] and pooled_output [B, H]."""
    return export_model(encoder, export_dir,
                        ("sequence_output", "pooled_output"), spm_model_file,
                        do_lower_case, max_seq_length)
