"""Pretraining TFRecords -> tf.data, as the original run_pretraining input_fn.

Training: shuffle the files, interleave them, shuffle records (buffer 100),
repeat, batch with drop_remainder. Evaluation: files in order, repeated (the
original's TPU eval reads a fixed number of steps). Every int64 feature is
cast to int32. Under tf.distribute the input is sharded per input pipeline.

The files are checked when the dataset is built, so a wrong file fails with
its name rather than deep inside a training step: a missing feature, a
length other than max_seq_length / max_predictions_per_seq, or ids outside
the model's vocabulary (on a sample of records).
"""

from __future__ import annotations

import glob
import os

import numpy as np
import tensorflow as tf

from albert_tf.data import features

# As the original input_fn.
SHUFFLE_BUFFER = 100
_RECORDS_CHECKED_PER_FILE = 100


def expand_files(input_file: str) -> list[str]:
    """A glob or comma-separated list of globs -> sorted existing files."""
    files = []
    for pattern in input_file.split(","):
        pattern = pattern.strip()
        if not pattern:
            continue
        matched = sorted(glob.glob(pattern))
        if not matched:
            raise FileNotFoundError(f"input_file: no file matches {pattern!r}")
        files += matched
    if not files:
        raise FileNotFoundError(f"input_file={input_file!r} names no file")
    return files


def _tf_spec(max_seq_length: int, max_predictions_per_seq: int) -> dict:
    return features.to_tf_spec(features.PRETRAINING, L=max_seq_length,
                               P=max_predictions_per_seq)


def check_files(files: list[str], max_seq_length: int,
                max_predictions_per_seq: int,
                vocab_size: int | None = None) -> None:
    """Reads the first records of each file and names what is wrong."""
    dims = {"L": max_seq_length, "P": max_predictions_per_seq}
    for path in files:
        dataset = tf.data.TFRecordDataset(path).take(_RECORDS_CHECKED_PER_FILE)
        try:
            records = [r.numpy() for r in dataset]
        except tf.errors.DataLossError as e:
            raise ValueError(f"{path}: corrupt TFRecord ({e.message})") from e
        if not records:
            raise ValueError(f"{path}: no records")
        max_id = -1
        for record in records:
            example = tf.train.Example.FromString(record).features.feature
            for name, spec in features.PRETRAINING.items():
                if name not in example:
                    raise ValueError(
                        f"{path}: record has no feature {name!r} (expected "
                        f"the pretraining schema {sorted(features.PRETRAINING)})")
                kind = example[name].WhichOneof("kind")
                values = getattr(example[name], kind).value
                expected = features.resolve_shape(spec, dims)
                if [len(values)] != expected:
                    raise ValueError(
                        f"{path}: feature {name!r} has {len(values)} values, "
                        f"expected {expected[0]} (max_seq_length="
                        f"{max_seq_length}, max_predictions_per_seq="
                        f"{max_predictions_per_seq})")
            max_id = max(max_id, max(example["input_ids"].int64_list.value),
                         max(example["masked_lm_ids"].int64_list.value))
        if vocab_size is not None and max_id >= vocab_size:
            raise ValueError(
                f"{path}: token id {max_id} >= vocab_size={vocab_size}; the "
                f"data was made with a different vocabulary than the config")


def _parse(record, spec):
    parsed = tf.io.parse_single_example(record, spec)
    return {name: tf.cast(value, tf.int32) if value.dtype == tf.int64
            else value for name, value in parsed.items()}


def pretraining_dataset(input_file: str, max_seq_length: int,
                        max_predictions_per_seq: int, batch_size: int,
                        is_training: bool,
                        input_context: tf.distribute.InputContext | None = None,
                        seed: int | None = None,
                        vocab_size: int | None = None) -> tf.data.Dataset:
    """Batches of the original features, int32 (masked_lm_weights float32).

    batch_size is per replica (use input_context.get_per_replica_batch_size).
    With `seed`, the order is deterministic, which resumable training needs.
    """
    files = expand_files(input_file)
    check_files(files, max_seq_length, max_predictions_per_seq, vocab_size)
    spec = _tf_spec(max_seq_length, max_predictions_per_seq)
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
            tf.data.TFRecordDataset, cycle_length=cycle,
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None)
    else:
        dataset = dataset.flat_map(tf.data.TFRecordDataset).repeat()
    if (input_context is not None and input_context.num_input_pipelines > 1
            and not shard_files):
        dataset = dataset.shard(input_context.num_input_pipelines,
                                input_context.input_pipeline_id)
    if is_training:
        dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=seed)
    dataset = dataset.map(lambda r: _parse(r, spec),
                          num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def find_corrupt_file(input_file: str) -> str | None:
    """After a DataLossError: the first file that cannot be read through."""
    for path in expand_files(input_file):
        try:
            for _ in tf.data.TFRecordDataset(path):
                pass
        except tf.errors.DataLossError:
            return path
    return None


def count_records(path: str) -> int:
    return int(tf.data.TFRecordDataset(path).reduce(
        np.int64(0), lambda n, _: n + 1))
