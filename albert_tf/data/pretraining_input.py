"""Pretraining TFRecords -> tf.data, as the original run_pretraining input_fn.

Training: shuffle the files, interleave them, shuffle records (buffer 100),
repeat, batch with drop_remainder. Evaluation: files in order, repeated (the
original's TPU eval reads a fixed number of steps). Every int64 feature is
cast to int32. Under tf.distribute the input is sharded per input pipeline.

As the original `run_pretraining.input_fn_builder` (with masked_lm_budget=0),
only the features the model uses are parsed, so files without
`token_boundary` (BERT's create_pretraining_data output) are read too.

Checks, so that bad data fails with the file named instead of training on
garbage (on a GPU an out-of-range gather reads zeros without an error):

* when the dataset is built: the first record of every file has the
  features and lengths the flags imply, and ids below vocab_size; every
  local file's TFRecord framing is walked (each record's 12-byte header is
  read and its payload skipped: about 0.3 s per 100k records), so a
  truncated file fails before the first step. Remote files (gs://) are not
  walked, which would cost a request per record; a truncated one fails when
  read, and `find_corrupt_file` names it.
* in the pipeline, for every record, vectorised per batch: feature lengths,
  ids in [0, vocab_size), positions in [0, max_seq_length), SOP labels in
  {0, 1}. A failure names the file and the record's index in it.
"""

from __future__ import annotations

import os
import struct
import time

from absl import logging
import tensorflow as tf

from albert_tf import fileio
from albert_tf.data import features

# As the original input_fn.
SHUFFLE_BUFFER = 100

# What the model reads (run_pretraining.model_fn). token_boundary is written
# by create_pretraining_data but only parsed by the original with
# masked_lm_budget > 0, which its model_fn could not run.
MODEL_FEATURES = ("input_ids", "input_mask", "segment_ids",
                  "masked_lm_positions", "masked_lm_ids", "masked_lm_weights",
                  "next_sentence_labels")

_HEADER = struct.Struct("<QI")  # Record length, masked CRC32C of it.
_FOOTER_BYTES = 4  # Masked CRC32C of the payload.


def _truncated(path: str, index: int, offset: int, detail: str) -> ValueError:
    return ValueError(
        f"{path}: truncated or corrupt TFRecord file: record {index} at byte "
        f"{offset} {detail}; recreate the file")


def scan_tfrecord(path: str) -> tuple[int, bytes]:
    """Walks the record framing of a local file: (records, first record).

    Reads each 12-byte header and seeks over the payload, about a
    microsecond or two per record; a file that does not end exactly after
    its last record is truncated (or its framing is corrupt). Payload CRCs
    are checked only when the records are read.
    """
    size = os.path.getsize(path)
    count, offset, first = 0, 0, b""
    with open(path, "rb", buffering=0) as f:  # Unbuffered: 12-byte reads.
        while offset < size:
            f.seek(offset)
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                raise _truncated(path, count, offset,
                                 f"has a {len(header)}-byte header")
            length, _ = _HEADER.unpack(header)
            end = offset + _HEADER.size + length + _FOOTER_BYTES
            if end > size:
                raise _truncated(path, count, offset,
                                 f"needs {end - offset} bytes, the file "
                                 f"has {size - offset} left")
            if count == 0:
                first = f.read(length)
            count += 1
            offset = end
    return count, first


def _first_record(path: str) -> bytes:
    """The first record of any (e.g. remote) file, or b"" if it has none."""
    with tf.io.gfile.GFile(path, "rb") as f:
        header = f.read(_HEADER.size)
        if not header:
            return b""
        if len(header) < _HEADER.size:
            raise _truncated(path, 0, 0, f"has a {len(header)}-byte header")
        length, _ = _HEADER.unpack(header)
        record = f.read(length)
        if len(record) < length or len(f.read(_FOOTER_BYTES)) < 4:
            raise _truncated(path, 0, 0, f"needs {length + 16} bytes")
    return record


def _slots(path: str, record: bytes, max_seq_length: int,
           max_predictions_per_seq: int, vocab_size: int | None) -> int:
    """Checks one record's features; returns its masked_lm_* length.

    create_pretraining_data pads masked_lm_* to max_predictions_per_seq,
    or to twice that with --do_permutation (its permuted positions are
    predicted too, `write_instance_to_example_files`). Both are accepted,
    so data reads with the flags it was written with; the original reader
    needed --max_predictions_per_seq doubled by hand.
    """
    try:
        example = tf.train.Example.FromString(record).features.feature
    except Exception as e:  # protobuf's DecodeError, not exported by TF.
        raise ValueError(f"{path}: first record is not a tf.train.Example "
                         f"({e})") from None
    p = max_predictions_per_seq
    expected = {"L": [max_seq_length], "P": [p, 2 * p], 1: [1]}
    slots = None
    for name in MODEL_FEATURES:
        if name not in example:
            raise ValueError(
                f"{path}: record has no feature {name!r} (the pretraining "
                f"features are {list(MODEL_FEATURES)})")
        spec = features.PRETRAINING[name]
        kind = example[name].WhichOneof("kind")
        want_kind = "float_list" if spec.dtype == "float32" else "int64_list"
        if kind != want_kind:
            raise ValueError(f"{path}: feature {name!r} is a {kind}, "
                             f"expected a {want_kind}")
        n = len(getattr(example[name], kind).value)
        allowed = expected[spec.shape[0]]
        if spec.shape[0] == "P" and slots is not None:
            allowed = [slots]
        if n not in allowed:
            raise ValueError(
                f"{path}: feature {name!r} has {n} values, expected "
                f"{' or '.join(map(str, allowed))} (max_seq_length="
                f"{max_seq_length}, max_predictions_per_seq={p}"
                f"{', x2 with do_permutation' if len(allowed) == 2 else ''})")
        if spec.shape[0] == "P":
            slots = n
    if vocab_size is not None:
        # The common case of another vocabulary, before any step; the
        # pipeline checks every record.
        ids = [*example["input_ids"].int64_list.value,
               *example["masked_lm_ids"].int64_list.value]
        if max(ids) >= vocab_size or min(ids) < 0:
            bad = max(ids) if max(ids) >= vocab_size else min(ids)
            raise ValueError(
                f"{path}: token id {bad} outside [0, vocab_size={vocab_size})"
                "; the data was made with another vocabulary than the model "
                "config")
    return slots


def check_files(files: list[str], max_seq_length: int,
                max_predictions_per_seq: int,
                vocab_size: int | None = None) -> int:
    """Startup checks of every file (see the module docstring).

    Returns the masked_lm_* length of the data: max_predictions_per_seq, or
    twice it for data made with --do_permutation.
    """
    start = time.time()
    slots: dict[int, str] = {}
    records = 0
    for path in files:
        if "://" in path:
            first, count = _first_record(path), None
        else:
            count, first = scan_tfrecord(path)
            records += count
        if not first:
            raise ValueError(f"{path}: no records")
        n = _slots(path, first, max_seq_length, max_predictions_per_seq,
                   vocab_size)
        slots.setdefault(n, path)
    if len(slots) > 1:
        (p1, f1), (p2, f2) = sorted(slots.items())
        raise ValueError(
            f"input files disagree on masked_lm_* length: {f1} has {p1}, "
            f"{f2} has {p2} (one made with --do_permutation, one without?)")
    num_slots = next(iter(slots))
    if num_slots != max_predictions_per_seq:
        logging.info("Input has %d masked_lm slots: made with "
                     "--do_permutation and --max_predictions_per_seq=%d",
                     num_slots, max_predictions_per_seq)
    logging.info("Checked %d input file(s) (%d local records) in %.1fs",
                 len(files), records, time.time() - start)
    return num_slots


def _parse_batch(paths, indexes, records, lengths: dict[str, int],
                 vocab_size: int | None) -> dict[str, tf.Tensor]:
    """[B] serialized records -> features, every record checked.

    Parsed as ragged so that a record with a missing feature or another
    length fails with its file named, not as a bare parse error.
    """
    spec = {name: tf.io.RaggedFeature(
        getattr(tf, features.PRETRAINING[name].dtype), row_splits_dtype=tf.int64)
        for name in MODEL_FEATURES}
    parsed = tf.io.parse_example(records, spec)

    def first_bad(bad):  # [B] bool -> "file record i" of the first bad row.
        return [tf.boolean_mask(paths, bad)[:1], "record",
                tf.boolean_mask(indexes, bad)[:1]]

    checks = []
    out = {}
    for name in MODEL_FEATURES:
        value = parsed[name]
        bad = tf.not_equal(value.row_lengths(), lengths[name])  # [B]
        checks.append(tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)), [
            f"pretraining input: feature {name!r} is missing or has a length "
            f"other than {lengths[name]} in", *first_bad(bad)]))
        out[name] = tf.reshape(value.flat_values, [-1, lengths[name]])

    def in_range(name, low, high, what):
        value = out[name]  # [B, N]
        bad = tf.reduce_any((value < low) | (value >= high), axis=1)  # [B]
        checks.append(tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)), [
            f"pretraining input: {name} outside [{low}, {high}) ({what}) in",
            *first_bad(bad), "values", tf.boolean_mask(value, bad)[:1]]))

    if vocab_size is not None:
        what = (f"vocab_size={vocab_size}: the data was made with another "
                "vocabulary than the model config")
        in_range("input_ids", 0, vocab_size, what)
        in_range("masked_lm_ids", 0, vocab_size, what)
    in_range("masked_lm_positions", 0, lengths["input_ids"], "max_seq_length")
    in_range("next_sentence_labels", 0, 2, "sentence-order label")
    with tf.control_dependencies(checks):
        return {name: tf.cast(value, tf.int32) if value.dtype == tf.int64
                else tf.identity(value) for name, value in out.items()}


def _records_with_source(path):
    """(path, index in file, record): what a failed check names."""
    return tf.data.TFRecordDataset(path).enumerate().map(
        lambda index, record: (path, index, record))


def pretraining_dataset(input_file: str, max_seq_length: int,
                        max_predictions_per_seq: int, batch_size: int,
                        is_training: bool,
                        input_context: tf.distribute.InputContext | None = None,
                        seed: int | None = None,
                        vocab_size: int | None = None) -> tf.data.Dataset:
    """Batches of the model's features, int32 (masked_lm_weights float32).

    input_file: comma-separated globs. batch_size is per replica (use
    input_context.get_per_replica_batch_size). With `seed`, the order is
    deterministic, which resumable training needs. masked_lm_* are [B, P],
    or [B, 2P] for data made with --do_permutation (see `_slots`).
    """
    files = fileio.expand_globs(input_file, "input_file")
    num_slots = check_files(files, max_seq_length, max_predictions_per_seq,
                            vocab_size)
    lengths = {name: {"L": max_seq_length, "P": num_slots, 1: 1}[
        features.PRETRAINING[name].shape[0]] for name in MODEL_FEATURES}
    shard_files = (input_context is not None
                   and input_context.num_input_pipelines > 1
                   and len(files) >= input_context.num_input_pipelines)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shard_files:
        dataset = dataset.shard(input_context.num_input_pipelines,
                                input_context.input_pipeline_id)
    if is_training:
        dataset = dataset.repeat().shuffle(len(files), seed=seed)
        cycle = min(len(files), max(1, os.cpu_count() or 1))
        dataset = dataset.interleave(
            _records_with_source, cycle_length=cycle,
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None)
    else:
        dataset = dataset.flat_map(_records_with_source).repeat()
    if (input_context is not None and input_context.num_input_pipelines > 1
            and not shard_files):
        dataset = dataset.shard(input_context.num_input_pipelines,
                                input_context.input_pipeline_id)
    if is_training:
        dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=seed)
    # Batch, then parse and check the batch: vectorised, and the same
    # elements as the original's per-record parse in map_and_batch.
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(
        lambda p, i, r: _parse_batch(p, i, r, lengths, vocab_size),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def find_corrupt_file(input_file: str) -> str | None:
    """After a DataLossError: the first file that cannot be read through."""
    for path in fileio.expand_globs(input_file, "input_file"):
        try:
            for _ in tf.data.TFRecordDataset(path):
                pass
        except tf.errors.DataLossError:
            return path
    return None
