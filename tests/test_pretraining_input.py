"""The pretraining tf.data input: features, order, sharding, bad files."""

import numpy as np
import pytest
import tensorflow as tf

import pretraining_fixtures as fx
from albert_tf import fileio
from albert_tf.data import pretraining_input


@pytest.fixture(scope="module")
def records(tiny_spm, tmp_path_factory):
    return fx.write_records(tiny_spm, tmp_path_factory.mktemp("records"))


def _dataset(input_file, seq=16, predictions=3, batch_size=2,
             is_training=False, **kwargs):
    return pretraining_input.pretraining_dataset(
        str(input_file), seq, predictions, batch_size, is_training, **kwargs)


def _read_all(dataset, steps):
    return [batch for batch in dataset.take(steps)]


def test_batches_have_the_model_features_as_int32(records):
    dataset = pretraining_input.pretraining_dataset(
        records, fx.SEQ, fx.PREDICTIONS, batch_size=3, is_training=True,
        seed=1, vocab_size=320)
    batch = next(iter(dataset))
    # As the original input_fn: token_boundary is written but not parsed.
    assert set(batch) == {"input_ids", "input_mask", "segment_ids",
                          "masked_lm_positions", "masked_lm_ids",
                          "masked_lm_weights", "next_sentence_labels"}
    assert batch["input_ids"].shape == (3, fx.SEQ)
    assert batch["masked_lm_positions"].shape == (3, fx.PREDICTIONS)
    assert batch["next_sentence_labels"].shape == (3, 1)
    assert batch["input_ids"].dtype == tf.int32
    assert batch["masked_lm_weights"].dtype == tf.float32


def test_batches_equal_the_records_parsed_one_by_one(records):
    files = fileio.expand_globs(records)
    spec = {name: tf.io.FixedLenFeature(
        [{"L": fx.SEQ, "P": fx.PREDICTIONS, 1: 1}[
            pretraining_input.features.PRETRAINING[name].shape[0]]],
        tf.float32 if name == "masked_lm_weights" else tf.int64)
        for name in pretraining_input.MODEL_FEATURES}
    expected = [tf.io.parse_single_example(r, spec)
                for r in tf.data.TFRecordDataset(files).take(8)]
    batches = _read_all(_dataset(records, fx.SEQ, fx.PREDICTIONS, 4), 2)
    for name in pretraining_input.MODEL_FEATURES:
        ours = np.concatenate([b[name].numpy() for b in batches])
        np.testing.assert_array_equal(
            ours, np.stack([e[name].numpy() for e in expected]))


def test_seeded_training_order_is_reproducible_and_eval_is_in_order(records):
    def first_ids(seed):
        dataset = pretraining_input.pretraining_dataset(
            records, fx.SEQ, fx.PREDICTIONS, 4, is_training=True, seed=seed)
        return np.concatenate([b["input_ids"].numpy() for b in
                               dataset.take(3)])
    np.testing.assert_array_equal(first_ids(3), first_ids(3))
    assert not np.array_equal(first_ids(3), first_ids(4))
    files = fileio.expand_globs(records)
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
    second = fileio.expand_globs(records)[1]
    first_record = next(iter(tf.data.TFRecordDataset(second)))
    expected = tf.train.Example.FromString(first_record.numpy()).features
    np.testing.assert_array_equal(
        next(iter(dataset))["input_ids"][0],
        expected.feature["input_ids"].int64_list.value)


def test_no_file_matches(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        _dataset(tmp_path / "nothing-here*.tfrecord")


# --- Hand-made records -------------------------------------------------------

def _ints(n, value=1):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value] * n))


def _features(seq=16, slots=3, token_boundary=True):
    feature_map = {
        "input_ids": _ints(seq, 7), "input_mask": _ints(seq),
        "segment_ids": _ints(seq, 0),
        "masked_lm_positions": _ints(slots), "masked_lm_ids": _ints(slots, 9),
        "masked_lm_weights": tf.train.Feature(
            float_list=tf.train.FloatList(value=[1.0] * slots)),
        "next_sentence_labels": _ints(1)}
    if token_boundary:
        feature_map["token_boundary"] = _ints(seq)
    return feature_map


def _write(path, feature_maps):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for feature_map in feature_maps:
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature_map)).SerializeToString())
    return str(path)


def test_missing_feature_names_feature_and_file(tmp_path):
    feature_map = _features()
    del feature_map["masked_lm_weights"]
    _write(tmp_path / "broken.tfrecord", [feature_map])
    with pytest.raises(ValueError, match="broken.tfrecord.*masked_lm_weights"):
        _dataset(tmp_path / "broken.tfrecord")


def test_wrong_length_names_the_flag(tmp_path):
    _write(tmp_path / "short.tfrecord", [_features()])
    with pytest.raises(ValueError, match="input_ids.*16 values, expected 32"):
        _dataset(tmp_path / "short.tfrecord", seq=32)


def test_bert_format_without_token_boundary_is_read(tmp_path):
    # BERT's create_pretraining_data writes no token_boundary; the original
    # run_pretraining parses only what the model uses.
    path = _write(tmp_path / "bert.tfrecord",
                  [_features(token_boundary=False)] * 4)
    batch = next(iter(_dataset(path, vocab_size=320)))
    assert batch["input_ids"].shape == (2, 16)
    assert int(batch["masked_lm_ids"][0, 0]) == 9


@pytest.mark.parametrize("feature, value, message", [
    ("input_ids", 500, r"input_ids outside \[0, 320\)"),
    ("masked_lm_ids", -1, r"masked_lm_ids outside \[0, 320\)"),
    ("masked_lm_positions", 16, r"masked_lm_positions outside \[0, 16\)"),
    ("next_sentence_labels", 2, r"next_sentence_labels outside \[0, 2\)"),
])
def test_bad_value_in_record_150_names_file_and_record(tmp_path, feature,
                                                       value, message):
    good = [_features() for _ in range(200)]
    bad = _features()
    bad[feature] = _ints(len(bad[feature].int64_list.value), value)
    good[150] = bad
    path = _write(tmp_path / "late.tfrecord", good)
    dataset = _dataset(path, batch_size=10, vocab_size=320)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=message + r"[\s\S]*late\.tfrecord[\s\S]*150"):
        _read_all(dataset, 20)
    # The same file without the bad record reads through.
    good[150] = _features()
    _write(tmp_path / "late.tfrecord", good)
    assert len(_read_all(_dataset(path, batch_size=10, vocab_size=320),
                         20)) == 20


def test_another_length_inside_a_file_names_file_and_record(tmp_path):
    # Two files of different max_seq_length concatenated: the first record
    # is fine, record 5 is not.
    maps = [_features()] * 5 + [_features(seq=32)] + [_features()] * 4
    path = _write(tmp_path / "mixed.tfrecord", maps)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"input_ids.*length other than 16[\s\S]*"
                             r"mixed\.tfrecord[\s\S]*5"):
        _read_all(_dataset(path, batch_size=10), 1)


def test_truncated_file_fails_before_any_step_naming_it(records, tmp_path):
    source = fileio.expand_globs(records)[1]
    data = open(source, "rb").read()
    (tmp_path / "cut.tfrecord").write_bytes(data[:-7])
    both = f"{fileio.expand_globs(records)[0]},{tmp_path / 'cut.tfrecord'}"
    with pytest.raises(ValueError, match=r"cut\.tfrecord: truncated"):
        _dataset(both, fx.SEQ, fx.PREDICTIONS)
    # A cut inside a header, and an empty file.
    count, first = pretraining_input.scan_tfrecord(source)
    (tmp_path / "header.tfrecord").write_bytes(data[:len(first) + 16 + 5])
    with pytest.raises(ValueError, match=r"header\.tfrecord.*record 1 "):
        _dataset(tmp_path / "header.tfrecord", fx.SEQ, fx.PREDICTIONS)
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.tfrecord: no records"):
        _dataset(tmp_path / "empty.tfrecord", fx.SEQ, fx.PREDICTIONS)
    assert count == sum(1 for _ in tf.data.TFRecordDataset(source))


def test_framing_scan_reads_headers_not_payloads(tmp_path, monkeypatch):
    # The startup scan's cost: one 12-byte header per record plus the
    # first record, whatever the record size.
    path = _write(tmp_path / "big.tfrecord", [_features(seq=2000)] * 50)
    reads = []
    real_open = open

    class Counting:
        def __init__(self, f):
            self._f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

        def seek(self, offset):
            self._f.seek(offset)

        def read(self, n):
            data = self._f.read(n)
            reads.append(len(data))
            return data

    monkeypatch.setattr(pretraining_input, "open",
                        lambda p, mode, **kw: Counting(
                            real_open(p, mode, **kw)),
                        raising=False)
    count, first = pretraining_input.scan_tfrecord(path)
    assert count == 50
    assert sum(reads) == 50 * 12 + len(first)
    assert len(first) > 4000  # The payloads are much larger than headers.


def test_corrupt_payload_is_named_by_find_corrupt_file(records, tmp_path):
    source = fileio.expand_globs(records)[0]
    late = bytearray(open(source, "rb").read())
    late[-40] ^= 0xFF  # Breaks the last record's CRC: found only when read.
    (tmp_path / "late.tfrecord").write_bytes(bytes(late))
    assert pretraining_input.find_corrupt_file(
        f"{source},{tmp_path / 'late.tfrecord'}") == str(
            tmp_path / "late.tfrecord")


def test_do_permutation_data_reads_with_the_same_flags(tiny_spm, tmp_path):
    # create_pretraining_data --do_permutation pads masked_lm_* to 2P; the
    # reader accepts it with the same --max_predictions_per_seq.
    glob = fx.write_records(tiny_spm, tmp_path / "perm", do_permutation=True)
    batches = _read_all(_dataset(glob, fx.SEQ, fx.PREDICTIONS, 8,
                                 vocab_size=320), 4)
    weights = np.concatenate([b["masked_lm_weights"].numpy()
                              for b in batches])
    assert weights.shape == (32, 2 * fx.PREDICTIONS)
    assert (weights.sum(axis=1) > fx.PREDICTIONS).any()  # Permuted slots.
    # Mixed with data made without it: refused, naming both files.
    plain = fx.write_records(tiny_spm, tmp_path / "plain", num_files=1)
    with pytest.raises(ValueError, match=r"plain.*has 3.*perm.*has 6"):
        _dataset(f"{plain},{glob}", fx.SEQ, fx.PREDICTIONS)


def test_ram_filesystem_end_to_end(tiny_spm):
    # Corpus in, TFRecords and stats out, TFRecords read back: all ram://.
    corpus = "ram://pretraining_input_test/corpus.txt"
    tf.io.gfile.makedirs("ram://pretraining_input_test")
    tf.io.gfile.copy(tiny_spm["corpus"], corpus, overwrite=True)
    glob = fx.write_records(tiny_spm, "ram://pretraining_input_test/out",
                            corpus=corpus)
    files = fileio.expand_globs(glob)
    assert len(files) == 2
    assert tf.io.gfile.exists("ram://pretraining_input_test/out/stats.json")
    batch = next(iter(_dataset(glob, fx.SEQ, fx.PREDICTIONS, 4,
                               vocab_size=320)))
    assert batch["input_ids"].shape == (4, fx.SEQ)
    # A truncated remote file (not scanned at startup) is named when read.
    with tf.io.gfile.GFile(files[0], "rb") as f:
        data = f.read()
    cut = "ram://pretraining_input_test/cut.tfrecord"
    with tf.io.gfile.GFile(cut, "wb") as f:
        f.write(data[:-7])
    with pytest.raises(tf.errors.DataLossError):
        _read_all(_dataset(cut, fx.SEQ, fx.PREDICTIONS, 4), 1000)
    assert pretraining_input.find_corrupt_file(f"{files[1]},{cut}") == cut


def test_another_vocabulary_fails_before_any_step(tmp_path):
    path = _write(tmp_path / "big.tfrecord", [_features()] * 3)
    with pytest.raises(ValueError, match=r"big\.tfrecord: token id 9 "
                                         r"outside \[0, vocab_size=8\)"):
        _dataset(path, vocab_size=8)
