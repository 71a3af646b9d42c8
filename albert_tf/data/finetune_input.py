"""The fine-tuning input pipeline shared by GLUE, SQuAD and RACE.

As the original's `file_based_input_fn_builder` (classifier_utils,
squad_utils, race_utils): TFRecords -> (training: repeat, then shuffle with
a buffer of 100) -> batch -> parse -> int64 cast to int32 (TPUs want
int32). batch_size is per replica (input_context.get_per_replica_batch_size);
with an `input_context` each pipeline reads every n-th record. Keep
evaluation and prediction unsharded so rows stay in the examples' order.

Dynamic padding (new; the original always fed max_seq_length): with
`pad_to_multiple` > 0 each parsed batch is cut along its last axis to its
longest real example (sum of input_mask), rounded up to a multiple of
`pad_to_multiple` and capped at the static length. The model is
padding-invariant (an additive mask on the keys), so only the cost
changes. The cut happens after batching and shuffling: training sees the
same examples in the same order, and the cached TFRecords keep their
fixed-length schema.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Union

import tensorflow as tf
from absl import logging

# The original's shuffle buffer for training.
SHUFFLE_BUFFER = 100


def make_batches(path: Union[str, Sequence[str]], spec: dict,
                 batch_size: int, is_training: bool,
                 drop_remainder: bool = False,
                 input_context: Optional[tf.distribute.InputContext] = None,
                 seed: Optional[int] = None,
                 postprocess: Optional[Callable[[dict], dict]] = None,
                 pad_to_multiple: int = 0,
                 sequence_features: Sequence[str] = (),
                 mask_feature: str = "input_mask") -> tf.data.Dataset:
    """Batches of parsed features; `postprocess` reshapes a parsed batch.

    pad_to_multiple > 0 cuts `sequence_features` (their last axis, after
    postprocess) to the batch's longest `mask_feature` sum rounded up to a
    multiple of it (see cut_batch); 0 keeps the static length.
    """
    if pad_to_multiple < 0:
        raise ValueError(f"pad_to_multiple={pad_to_multiple} must be >= 0 "
                         f"(0: no dynamic padding)")
    if pad_to_multiple:
        missing = [n for n in (*sequence_features, mask_feature)
                   if n not in spec]
        if missing or not sequence_features:
            raise ValueError(
                f"dynamic padding: sequence_features={list(sequence_features)}"
                f" and mask_feature={mask_feature!r} must be non-empty and "
                f"in the parse spec {sorted(spec)}; missing {missing}")
    dataset = tf.data.TFRecordDataset(path)
    if input_context is not None:
        dataset = dataset.shard(input_context.num_input_pipelines,
                                input_context.input_pipeline_id)
    if is_training:
        # `seed` makes the shuffle, and so a resumed run, reproducible.
        dataset = dataset.repeat().shuffle(SHUFFLE_BUFFER, seed=seed)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)

    def decode(records):
        parsed = tf.io.parse_example(records, spec)
        parsed = {name: tf.cast(t, tf.int32) if t.dtype == tf.int64 else t
                  for name, t in parsed.items()}
        parsed = postprocess(parsed) if postprocess else parsed
        if pad_to_multiple:
            parsed = cut_batch(parsed, sequence_features, pad_to_multiple,
                               mask_feature)
        return parsed

    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def num_widths(static_length: int, pad_to_multiple: int) -> int:
    """How many batch widths dynamic padding can produce."""
    return math.ceil(static_length / pad_to_multiple)


def cut_batch(batch: dict, sequence_features: Sequence[str],
              pad_to_multiple: int, mask_feature: str = "input_mask") -> dict:
    """Cuts the sequence features of one batch to its longest real example.

    width = min(ceil(longest / m) * m, static length), at least m (or the
    static length), where longest is the max over the batch (and over
    RACE's choices) of sum(mask). Only padding is dropped: every real
    token lies before `longest`. Other features pass through.
    """
    mask = batch[mask_feature]  # [B, T] or [B, C, T]
    static = mask.shape[-1]
    length = tf.shape(mask)[-1] if static is None else static
    if static is not None:  # Logged once, when tf.data traces the map.
        logging.info("dynamic padding: batches cut to multiples of %d up to "
                     "%d (at most %d shapes)", pad_to_multiple, static,
                     num_widths(static, pad_to_multiple))
    longest = tf.reduce_max(tf.reduce_sum(mask, axis=-1))
    longest = tf.maximum(longest, 1)  # An all-padding batch keeps m.
    width = tf.minimum(
        (longest + pad_to_multiple - 1) // pad_to_multiple * pad_to_multiple,
        length)
    out = dict(batch)
    for name in sequence_features:
        out[name] = batch[name][..., :width]
    return out
