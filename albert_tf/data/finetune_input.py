"""The fine-tuning input pipeline shared by GLUE, SQuAD and RACE.

As the original's `file_based_input_fn_builder` (classifier_utils,
squad_utils, race_utils): TFRecords -> (training: repeat, then shuffle with
a buffer of 100) -> batch -> parse -> int64 cast to int32 (TPUs want
int32). batch_size is per replica (input_context.get_per_replica_batch_size);
with an `input_context` each pipeline reads every n-th record. Keep
evaluation and prediction unsharded so rows stay in the examples' order.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import tensorflow as tf

# The original's shuffle buffer for training.
SHUFFLE_BUFFER = 100


def make_batches(path: Union[str, Sequence[str]], spec: dict,
                 batch_size: int, is_training: bool,
                 drop_remainder: bool = False,
                 input_context: Optional[tf.distribute.InputContext] = None,
                 seed: Optional[int] = None,
                 postprocess: Optional[Callable[[dict], dict]] = None
                 ) -> tf.data.Dataset:
    """Batches of parsed features; `postprocess` reshapes a parsed batch."""
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
        return postprocess(parsed) if postprocess else parsed

    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
