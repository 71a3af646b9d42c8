import numpy as np
import pytest
import tensorflow as tf

import pretraining_fixtures as fx
from albert_tf.data import pretraining_input


@pytest.fixture(scope="module")
def records(tiny_spm, tmp_path_factory):
    return fx.write_records(tiny_spm, tmp_path_factory.mktemp("records"))


def test_batches_have_the_original_features_as_int32(records):
    dataset = pretraining_input.pretraining_dataset(
        records, fx.SEQ, fx.PREDICTIONS, batch_size=3, is_training=True,
        seed=1)
    batch = next(iter(dataset))
    assert set(batch) == {"input_ids", "input_mask", "segment_ids",
                          "token_boundary", "masked_lm_positions",
                          "masked_lm_ids", "masked_lm_weights",
                          "next_sentence_labels"}
    assert batch["input_ids"].shape == (3, fx.SEQ)
    assert batch["masked_lm_positions"].shape == (3, fx.PREDICTIONS)
    assert batch["next_sentence_labels"].shape == (3, 1)
    assert batch["input_ids"].dtype == tf.int32
    assert batch["masked_lm_weights"].dtype == tf.float32


def test_seeded_training_order_is_reproducible_and_eval_is_in_order(records):
    def first_ids(seed):
        dataset = pretraining_input.pretraining_dataset(
            records, fx.SEQ, fx.PREDICTIONS, 4, is_training=True, seed=seed)
        return np.concatenate([b["input_ids"].numpy() for b in
                               dataset.take(3)])
    np.testing.assert_array_equal(first_ids(3), first_ids(3))
    assert not np.array_equal(first_ids(3), first_ids(4))
    files = pretraining_input.expand_files(records)
    in_order = [tf.train.Example.FromString(r.numpy()).features.feature[
        "input_ids"].int64_list.value for r in
        tf.data.TFRecordDataset(files).take(4)]
    eval_batch = next(iter(pretraining_input.pretraining_dataset(
        records, fx.SEQ, fx.PREDICTIONS, 4, is_training=False)))
    np.testing.assert_array_equal(eval_batch["input_ids"], in_order)


def test_sharded_per_input_pipeline(records):
    context = tf.distribute.InputContext(num_input_pipelines=2,
                                         input_pipeline_id=1,
                                         num_replicas_in_sync=2)
    dataset = pretraining_input.pretraining_dataset(
        records, fx.SEQ, fx.PREDICTIONS, 2, is_training=False,
        input_context=context)
    # Two files, two pipelines: pipeline 1 reads only the second file.
    second = pretraining_input.expand_files(records)[1]
    first_record = next(iter(tf.data.TFRecordDataset(second)))
    expected = tf.train.Example.FromString(first_record.numpy()).features
    np.testing.assert_array_equal(
        next(iter(dataset))["input_ids"][0],
        expected.feature["input_ids"].int64_list.value)


def test_no_file_matches(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        pretraining_input.pretraining_dataset(
            str(tmp_path / "nothing-here*.tfrecord"), 16, 3, 2, True)


def _write(path, feature_map):
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(tf.train.Example(features=tf.train.Features(
            feature=feature_map)).SerializeToString())


def _ints(n, value=1):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value] * n))


def _good_features():
    return {
        "input_ids": _ints(16), "input_mask": _ints(16),
        "segment_ids": _ints(16), "token_boundary": _ints(16),
        "masked_lm_positions": _ints(3), "masked_lm_ids": _ints(3),
        "masked_lm_weights": tf.train.Feature(
            float_list=tf.train.FloatList(value=[1.0] * 3)),
        "next_sentence_labels": _ints(1)}


def test_missing_feature_names_feature_and_file(tmp_path):
    features = _good_features()
    del features["masked_lm_weights"]
    _write(tmp_path / "broken.tfrecord", features)
    with pytest.raises(ValueError, match="broken.tfrecord.*masked_lm_weights"):
        pretraining_input.pretraining_dataset(
            str(tmp_path / "broken.tfrecord"), 16, 3, 2, True)


def test_wrong_length_names_the_flag(tmp_path):
    _write(tmp_path / "short.tfrecord", _good_features())
    with pytest.raises(ValueError, match="input_ids.*16 values, expected 32"):
        pretraining_input.pretraining_dataset(
            str(tmp_path / "short.tfrecord"), 32, 3, 2, True)


def test_ids_outside_the_vocabulary(tmp_path):
    features = _good_features()
    features["input_ids"] = _ints(16, value=500)
    _write(tmp_path / "big.tfrecord", features)
    with pytest.raises(ValueError, match="500 >= vocab_size=320"):
        pretraining_input.pretraining_dataset(
            str(tmp_path / "big.tfrecord"), 16, 3, 2, True, vocab_size=320)


def test_corrupt_record_names_the_file(records, tmp_path):
    source = pretraining_input.expand_files(records)[0]
    data = bytearray(open(source, "rb").read())
    early, late = bytearray(data), bytearray(data)
    early[40] ^= 0xFF  # A flipped byte breaks the first record's CRC.
    late[-40] ^= 0xFF  # ... the last record's: found only when read.
    (tmp_path / "early.tfrecord").write_bytes(bytes(early))
    (tmp_path / "late.tfrecord").write_bytes(bytes(late))
    with pytest.raises(ValueError, match="early.tfrecord: corrupt"):
        pretraining_input.check_files([str(tmp_path / "early.tfrecord")],
                                      fx.SEQ, fx.PREDICTIONS)
    assert pretraining_input.find_corrupt_file(
        f"{source},{tmp_path / 'late.tfrecord'}") == str(
            tmp_path / "late.tfrecord")
