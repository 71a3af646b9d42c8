"""GLUE processors, feature conversion, TFRecord cache and tf.data input.

TSVs are written here in GLUE's exact column layouts (header rows, MNLI's
many columns, test files without labels); nothing reads ../shared.
"""

import os
import pathlib

from absl import flags
import numpy as np
import pytest
import tensorflow as tf

from albert_tf.data import glue
from albert_tf.tokenization import FullTokenizer

T = "\t"
_MNLI_HEAD = ("index promptID pairID genre sentence1_binary_parse "
              "sentence2_binary_parse sentence1_parse sentence2_parse "
              "sentence1 sentence2").split()
_PARSES = ["( ( A b ) )", "( c )", "(ROOT (S A b))", "(ROOT c)"]


def _mnli_row(index, s1, s2, *labels):
    return [index, "31193", f"{index}n", "government", *_PARSES, s1, s2,
            *labels]


# task -> ({relative path: rows}, {split: [(guid, text_a, text_b, label)]}).
# Texts carry capitals, double spaces, accents and a literal quote: the
# processor must lowercase, collapse spaces, strip accents (preprocess_text)
# and keep quotes (no csv quoting).
CASES = {
    "cola": ({
        "CoLA/train.tsv": [["gj04", "1", "", "Our  friends won't buy it."],
                           ["gj04", "0", "*", "They drank the pub."]],
        "CoLA/dev.tsv": [["clc95", "1", "", "The sailors rode the breeze."]],
        "CoLA/test.tsv": [["index", "sentence"], ["0", "Bill whistled."]],
    }, {
        "train": [("train-0", "our friends won't buy it.", None, "1"),
                  ("train-1", "they drank the pub.", None, "0")],
        "dev": [("dev-0", "the sailors rode the breeze.", None, "1")],
        "test": [("0", "bill whistled.", None, "0")],
    }),
    "mnli": ({
        "MNLI/train.tsv": [_MNLI_HEAD + ["label1", "gold_label"],
                           _mnli_row("0", "Café cream.", "Two parts.",
                                     "neutral", "neutral")],
        "MNLI/dev_matched.tsv": [
            _MNLI_HEAD + [f"label{i}" for i in range(1, 6)] + ["gold_label"],
            _mnli_row("7", "A m.", "B m.", "neutral", "contradiction",
                      "contradiction", "neutral", "contradiction",
                      "contradiction")],
        "MNLI/test_matched.tsv": [_MNLI_HEAD, _mnli_row("9", "T m.", "U m.")],
        "MNLI/dev_mismatched.tsv": [
            _MNLI_HEAD + [f"label{i}" for i in range(1, 6)] + ["gold_label"],
            _mnli_row("8", "A mm.", "B mm.", *["entailment"] * 6)],
        "MNLI/test_mismatched.tsv": [_MNLI_HEAD,
                                     _mnli_row("10", "T mm.", "U mm.")],
    }, {
        "train": [("0", "cafe cream.", "two parts.", "neutral")],
        "dev": [("7", "a m.", "b m.", "contradiction")],  # gold, not label1
        "test": [("9", "t m.", "u m.", "contradiction")],
    }),
    "mrpc": ({
        "MRPC/train.tsv": [["Quality", "#1 ID", "#2 ID", "#1 String",
                            "#2 String"],
                           ["1", "702876", "702977", 'He said "no".',
                            "He refused."]],
        "MRPC/dev.tsv": [["Quality", "#1 ID", "#2 ID", "#1 String",
                          "#2 String"],
                         ["0", "1", "2", "A.", "B."],
                         ["1", "3", "4", "C.", "D."]],
        "MRPC/test.tsv": [["index", "#1 ID", "#2 ID", "#1 String",
                           "#2 String"],
                          ["0", "1089874", "1089925", "P.", "Q."]],
    }, {
        "train": [("train-1", 'he said "no".', "he refused.", "1")],
        "dev": [("dev-1", "a.", "b.", "0"), ("dev-2", "c.", "d.", "1")],
        "test": [("0", "p.", "q.", "0")],
    }),
    "sst-2": ({
        "SST-2/train.tsv": [["sentence", "label"],
                            ["hide new secretions ", "0"]],
        "SST-2/dev.tsv": [["sentence", "label"], ["it 's charming .", "1"]],
        "SST-2/test.tsv": [["index", "sentence"], ["0", "Uneasy mishmash ."]],
    }, {
        "train": [("train-1", "hide new secretions", None, "0")],
        "dev": [("dev-1", "it 's charming .", None, "1")],
        "test": [("0", "uneasy mishmash .", None, "0")],
    }),
    "sts-b": ({
        f"STS-B/{split}.tsv": [
            ["index", "genre", "filename", "year", "old_index", "source1",
             "source2", "sentence1", "sentence2"]
            + ([] if split == "test" else ["score"]),
            ["4", "main-captions", "MSRvid", "2012test", "0001", "none",
             "none", "A plane.", "An air plane."]
            + ([] if split == "test" else ["3.800"])]
        for split in ("train", "dev", "test")
    }, {
        "train": [("4", "a plane.", "an air plane.", 3.8)],
        "dev": [("4", "a plane.", "an air plane.", 3.8)],
        "test": [("4", "a plane.", "an air plane.", 0.0)],
    }),
    "qqp": ({
        "QQP/train.tsv": [["id", "qid1", "qid2", "question1", "question2",
                           "is_duplicate"],
                          ["133273", "213221", "213222", "How?", "Which?",
                           "0"],
                          ["5", "broken row"],  # Skipped, as the original.
                          ["6", "1", "2", "Why?", "Why not?", "1"]],
        "QQP/dev.tsv": [["id", "qid1", "qid2", "question1", "question2",
                         "is_duplicate"], ["7", "1", "2", "Q?", "R?", "1"]],
        "QQP/test.tsv": [["id", "question1", "question2"],
                         ["0", "Lonely?", "Fix it?"]],
    }, {
        "train": [("133273", "how?", "which?", "0"),
                  ("6", "why?", "why not?", "1")],
        "dev": [("7", "q?", "r?", "1")],
        "test": [("0", "lonely?", "fix it?", "0")],
    }),
    "ax": ({
        "diagnostic/diagnostic.tsv": [["index", "sentence1", "sentence2"],
                                      ["0", "The cat sat.", "It sat."]],
    }, {
        "test": [("0", "the cat sat.", "it sat.", "contradiction")],
    }),
}


def _pair_case(directory, label, texts=("sentence1", "sentence2")):
    head = ["index", *texts]
    return ({
        f"{directory}/train.tsv": [head + ["label"],
                                   ["0", "Naïve  Q?", "An A.", label]],
        f"{directory}/dev.tsv": [head + ["label"], ["1", "Q2", "A2", label]],
        f"{directory}/test.tsv": [head, ["2", "Q3", "A3"]],
    }, {
        "train": [("0", "naive q?", "an a.", label)],
        "dev": [("1", "q2", "a2", label)],
        "test": [("2", "q3", "a3", None)],  # None: the task's first label
    })


CASES["qnli"] = _pair_case("QNLI", "not_entailment", ("question", "sentence"))
CASES["rte"] = _pair_case("RTE", "not_entailment")
CASES["wnli"] = _pair_case("WNLI", "1")
CASES["mismnli"] = (CASES["mnli"][0], {
    "train": CASES["mnli"][1]["train"],
    "dev": [("8", "a mm.", "b mm.", "entailment")],
    "test": [("10", "t mm.", "u mm.", "contradiction")],
})


def write_tsvs(root, files):
    for relative, rows in files.items():
        path = pathlib.Path(root) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(T.join(row) + "\n" for row in rows),
                        encoding="utf-8")
    return str(root)


def test_cases_cover_every_task():
    assert set(CASES) == set(glue.TASK_NAMES)


@pytest.mark.parametrize("task", sorted(CASES))
def test_processor_reads_glue_layout(task, tmp_path):
    files, expected = CASES[task]
    data_dir = write_tsvs(tmp_path, files)
    processor = glue.get_processor(task.upper())
    for split, rows in expected.items():
        got = processor.get_examples(data_dir, split)
        want = [glue.InputExample(guid, a, b, processor.label_list[0]
                                  if label is None else label)
                for guid, a, b, label in rows]
        assert got == want, (task, split)


def test_labels_and_regression():
    assert glue.get_processor("mnli").label_list == [
        "contradiction", "entailment", "neutral"]
    assert glue.get_processor("qnli").label_list == [
        "entailment", "not_entailment"]
    assert glue.get_processor("cola").label_list == ["0", "1"]
    stsb = glue.get_processor("STS-B")
    assert stsb.is_regression and stsb.num_labels == 1
    assert stsb.label_list == [None]  # As the original's get_labels.
    assert not glue.get_processor("sst-2").is_regression


def test_text_is_preprocessed_only_with_spm(tmp_path):
    data_dir = write_tsvs(tmp_path, CASES["rte"][0])
    cased = glue.get_processor("rte", do_lower_case=False)
    assert cased.get_train_examples(data_dir)[0].text_a == "Naive Q?"
    raw = glue.get_processor("rte", use_spm=False)
    assert raw.get_train_examples(data_dir)[0].text_a == "Naïve  Q?"


# --- bad input ---------------------------------------------------------------

def test_unknown_task_lists_tasks():
    with pytest.raises(ValueError, match="cola, mnli, mismnli, mrpc, sst-2"):
        glue.get_processor("squad")


def test_missing_tsv_names_path(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r"MNLI[/\\]dev_matched\.tsv"):
        glue.get_processor("mnli").get_dev_examples(str(tmp_path))


def test_short_row_names_file_and_line(tmp_path):
    files = {"MRPC/train.tsv": CASES["mrpc"][0]["MRPC/dev.tsv"]
             + [["1", "5", "6", "only one sentence"]]}
    data_dir = write_tsvs(tmp_path, files)
    with pytest.raises(ValueError, match=r"train\.tsv:4: 4 columns.*at "
                       r"least 5"):
        glue.get_processor("mrpc").get_train_examples(data_dir)
    # A labeled row whose last column is a text, not a label.
    data_dir = write_tsvs(tmp_path, {"RTE/train.tsv": [
        ["index", "sentence1", "sentence2", "label"], ["0", "a", "b"]]})
    with pytest.raises(ValueError, match=r"train\.tsv:2: 3 columns.*at "
                       r"least 4"):
        glue.get_processor("rte").get_train_examples(data_dir)
    # A test row (no label) with fewer columns than the texts need.
    data_dir = write_tsvs(tmp_path, {"RTE/test.tsv": [
        ["index", "sentence1", "sentence2"], ["0", "only a"]]})
    with pytest.raises(ValueError, match=r"test\.tsv:2: 2 columns"):
        glue.get_processor("rte").get_test_examples(data_dir)


def test_unknown_label_lists_labels(tmp_path):
    data_dir = write_tsvs(tmp_path, {"RTE/dev.tsv": [
        ["index", "sentence1", "sentence2", "label"],
        ["0", "a", "b", "entailment"], ["1", "a", "b", "maybe"]]})
    with pytest.raises(ValueError, match=r"dev\.tsv:3: unknown label 'maybe'"
                       r".*\['entailment', 'not_entailment'\]"):
        glue.get_processor("rte").get_dev_examples(data_dir)
    example = glue.InputExample("x-1", "a", None, "2")
    with pytest.raises(ValueError, match=r"x-1.*\['0', '1'\]"):
        glue.convert_single_example(example, ["0", "1"], 8, None)


def test_bad_stsb_score_and_missing_split(tmp_path):
    header = CASES["sts-b"][0]["STS-B/dev.tsv"][0]
    files = {"STS-B/dev.tsv": [header, ["1"] + ["x"] * 8 + ["high"]]}
    data_dir = write_tsvs(tmp_path, files)
    with pytest.raises(ValueError, match=r"dev\.tsv:2: STS-B score 'high'"):
        glue.get_processor("sts-b").get_dev_examples(data_dir)
    with pytest.raises(ValueError, match="'ax' has no train set"):
        glue.get_processor("ax").get_train_examples(str(tmp_path))


# --- features ----------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer(tiny_spm):
    return FullTokenizer(spm_model_file=tiny_spm["model"])


def _ids(tokenizer, text):
    return tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))


def test_truncate_seq_pair_longest_first():
    a, b = list("abcdefghij"), list("wxyz")
    glue.truncate_seq_pair(a, b, 9)
    assert (a, b) == (list("abcde"), list("wxyz"))
    a, b = list("abc"), list("xyz")
    glue.truncate_seq_pair(a, b, 5)  # Ties pop from b.
    assert (a, b) == (list("abc"), list("xy"))


def test_convert_pair_exact(tokenizer):
    a_ids, b_ids = _ids(tokenizer, "kari tone"), _ids(tokenizer, "muri")
    length = len(a_ids) + len(b_ids) + 3 + 4  # 4 padding positions.
    example = glue.InputExample("g", "kari tone", "muri", "neutral")
    got = glue.convert_single_example(
        example, ["contradiction", "entailment", "neutral"], length, tokenizer)
    # [CLS]=2 and [SEP]=3 in every ALBERT SentencePiece model.
    assert got["input_ids"] == [2, *a_ids, 3, *b_ids, 3, 0, 0, 0, 0]
    assert got["input_mask"] == [1] * (length - 4) + [0] * 4
    assert got["segment_ids"] == ([0] * (len(a_ids) + 2)
                                  + [1] * (len(b_ids) + 1) + [0] * 4)
    assert got["label_ids"] == [2] and got["is_real_example"] == [1]


def test_convert_truncates_and_handles_single_and_empty_b(tokenizer):
    long_a = " ".join(["karitonemu"] * 12)
    a_ids, b_ids = _ids(tokenizer, long_a), _ids(tokenizer, "ne")
    assert len(a_ids) > 12 and len(b_ids) < 4
    got = glue.convert_single_example(
        glue.InputExample("g", long_a, "ne", "1"), ["0", "1"], 11, tokenizer)
    keep = 11 - 3 - len(b_ids)
    assert got["input_ids"] == [2, *a_ids[:keep], 3, *b_ids, 3]
    for text_b in (None, ""):  # Both give [CLS] a [SEP], as the original.
        got = glue.convert_single_example(
            glue.InputExample("g", long_a, text_b, "0"), ["0", "1"], 9,
            tokenizer)
        assert got["input_ids"] == [2, *a_ids[:7], 3]
        assert got["segment_ids"] == [0] * 9


def test_padding_examples(tokenizer):
    examples = [glue.InputExample(str(i), "ka", None, "0") for i in range(5)]
    padded = glue.pad_examples(examples, 4)
    assert len(padded) == 8 and padded[:5] == examples
    assert all(isinstance(e, glue.PaddingInputExample) for e in padded[5:])
    assert glue.pad_examples(examples, 5) == examples
    fake = glue.convert_single_example(padded[-1], ["0", "1"], 6, tokenizer)
    assert fake == {"input_ids": [0] * 6, "input_mask": [0] * 6,
                    "segment_ids": [0] * 6, "label_ids": [0],
                    "is_real_example": [0]}


def _collect(dataset):
    batches = list(dataset.as_numpy_iterator())
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def _by_hand(tokenizer, example, length):
    """[CLS] a [SEP] b [SEP] (ids 2 and 3), cut longest-first (b on a tie,
    as _truncate_seq_pair), zero-padded; all zeros for a padding example;
    written out without glue.convert_single_example."""
    if isinstance(example, glue.PaddingInputExample):
        zeros = [0] * length
        return {"input_ids": zeros, "input_mask": zeros,
                "segment_ids": zeros}
    a = _ids(tokenizer, example.text_a)
    b = _ids(tokenizer, example.text_b)
    while len(a) + len(b) > length - 3:
        (a if len(a) > len(b) else b).pop()
    ids = [2, *a, 3, *b, 3]
    pad = [0] * (length - len(ids))
    return {"input_ids": ids + pad, "input_mask": [1] * len(ids) + pad,
            "segment_ids": [0] * (len(a) + 2) + [1] * (len(b) + 1) + pad}


def test_tfrecord_round_trip(tokenizer, tmp_path):
    examples = [glue.InputExample(str(i), "kari " * (i + 1), "to", label)
                for i, label in enumerate(["0", "1", "1"])]
    examples = glue.pad_examples(examples, 2)
    path = str(tmp_path / "x.tf_record")
    assert glue.write_features(examples, ["0", "1"], 10, tokenizer,
                               path) == 4
    assert os.listdir(tmp_path) == ["x.tf_record"]  # No temporary left.
    dataset = glue.make_dataset(path, 10, 3, is_training=False)
    got = _collect(dataset)
    for name in ("input_ids", "input_mask", "segment_ids"):
        assert got[name].dtype == np.int32 and got[name].shape == (4, 10)
        want = [_by_hand(tokenizer, e, 10)[name] for e in examples]
        np.testing.assert_array_equal(got[name], want)
    np.testing.assert_array_equal(got["label_ids"], [0, 1, 1, 0])
    np.testing.assert_array_equal(got["is_real_example"], [1, 1, 1, 0])
    assert got["label_ids"].dtype == np.int32

    # STS-B: float labels.
    stsb = [glue.InputExample("0", "ka", "to", 3.8)]
    glue.write_features(stsb, [None], 10, tokenizer, path, is_regression=True)
    got = _collect(glue.make_dataset(path, 10, 2, False, is_regression=True))
    assert got["label_ids"].dtype == np.float32
    np.testing.assert_allclose(got["label_ids"], [3.8])


def test_training_dataset_repeats_shuffles_and_shards(tokenizer, tmp_path):
    # Example i has i + 1 pieces of text, so its mask sum identifies it.
    examples = [glue.InputExample(str(i), " ".join(["ka"] * (i + 1)), None,
                                  str(i % 2)) for i in range(6)]
    path = str(tmp_path / "train.tf_record")
    glue.write_features(examples, ["0", "1"], 9, tokenizer, path)

    def order(seed):
        dataset = glue.make_dataset(path, 9, 4, is_training=True,
                                    drop_remainder=True, seed=seed)
        assert dataset.element_spec["input_ids"].shape == (4, 9)
        # 100 draws: every example shows up unless P < 6 * (5/6)**100 ~ 1e-7.
        batches = list(dataset.take(25).as_numpy_iterator())
        return np.concatenate([b["input_mask"].sum(-1) for b in batches])

    first = order(3)
    np.testing.assert_array_equal(first, order(3))  # Seeded: reproducible.
    assert set(first) == {3, 4, 5, 6, 7, 8}  # [CLS] + i+1 pieces + [SEP]
    assert first[:12].tolist() != [3, 4, 5, 6, 7, 8] * 2  # Shuffled.
    # Sharded: pipeline 1 of 2 reads records 1, 3, 5; per-replica batch 2.
    context = tf.distribute.InputContext(num_input_pipelines=2,
                                         input_pipeline_id=1,
                                         num_replicas_in_sync=2)
    per_replica = context.get_per_replica_batch_size(4)
    got = _collect(glue.make_dataset(path, 9, per_replica, False,
                                     input_context=context))
    np.testing.assert_array_equal(got["input_mask"].sum(-1), [4, 6, 8])
    sizes = [len(b["label_ids"]) for b in glue.make_dataset(
        path, 9, per_replica, False, input_context=context
    ).as_numpy_iterator()]
    assert sizes == [2, 1]


@pytest.fixture
def write_spy(monkeypatch):
    """Paths prepare_features (re)builds, in order."""
    writes = []
    real = glue._write_records

    def spy(examples, label_list, max_seq_length, tokenizer, path, *args):
        writes.append(path)
        return real(examples, label_list, max_seq_length, tokenizer, path,
                    *args)

    monkeypatch.setattr(glue, "_write_records", spy)
    return writes


def test_prepare_features_caches_and_pads(tokenizer, tmp_path, write_spy):
    data_dir = write_tsvs(tmp_path / "glue", CASES["mrpc"][0])
    cached_dir = str(tmp_path / "cache")
    processor = glue.get_processor("mrpc")
    feature_file = glue.prepare_features(processor, data_dir, "eval",
                                         tokenizer, 16, cached_dir,
                                         batch_size=3)
    assert feature_file.path == os.path.join(cached_dir,
                                             "mrpc_eval.tf_record")
    assert [e.guid for e in feature_file.examples] == ["dev-1", "dev-2"]
    assert feature_file.num_padding == 1 and feature_file.num_records == 3
    got = _collect(glue.make_dataset(feature_file.path, 16, 3, False))
    np.testing.assert_array_equal(got["is_real_example"], [1, 1, 0])
    np.testing.assert_array_equal(got["label_ids"], [0, 1, 0])
    assert len(write_spy) == 1

    glue.prepare_features(processor, data_dir, "eval", tokenizer, 16,
                          cached_dir, batch_size=3)
    assert len(write_spy) == 1  # Reused.
    glue.prepare_features(processor, data_dir, "eval", tokenizer, 16,
                          cached_dir, batch_size=4)
    assert len(write_spy) == 2  # Record count changed: rewritten.
    train = glue.prepare_features(processor, data_dir, "train", tokenizer,
                                  12, cached_dir, batch_size=4)
    assert train.num_padding == 0  # Training is never padded.
    predict = glue.prepare_features(processor, data_dir, "predict",
                                    tokenizer, 12, cached_dir, batch_size=4)
    assert predict.path.endswith("mrpc_predict.tf_record")
    assert predict.examples[0].guid == "0"
    assert sorted(os.listdir(cached_dir)) == sorted(
        f"mrpc_{split}.tf_record{suffix}"
        for split in ("eval", "predict", "train")
        for suffix in ("", ".meta.json"))
    with pytest.raises(ValueError, match="must be one of"):
        glue.cached_features_file(cached_dir, "mrpc", "dev")


def _first_ids(path):
    """input_ids of the first record, without padding."""
    record = next(iter(tf.data.TFRecordDataset(path)))
    example = tf.train.Example.FromString(record.numpy())
    ids = list(example.features.feature["input_ids"].int64_list.value)
    return ids[:ids.index(0)] if 0 in ids else ids, len(ids)


_RTE_HEAD = ["index", "sentence1", "sentence2", "label"]


def _rte_dir(root, text):
    return write_tsvs(root, {"RTE/train.tsv": [
        _RTE_HEAD, ["0", text, "Ne.", "entailment"],
        ["1", "Ka.", "To.", "not_entailment"]]})


@pytest.fixture(scope="module")
def other_spm(tiny_spm, tmp_path_factory):
    """A second SentencePiece model that splits words differently."""
    from albert_tf.tokenization import train_spm
    from conftest import make_sentences

    root = tmp_path_factory.mktemp("other_spm")
    text = root / "train.txt"
    text.write_text("\n".join(make_sentences(7, 1500, vocab_words=60))
                    + "\n", encoding="utf-8")
    model, _ = train_spm.train_spm(
        [str(text)], str(root / "other"), vocab_size=120, preprocess=True,
        do_lower_case=True, hard_vocab_limit=False, num_threads=1)
    return model


def test_feature_cache_rebuilds_when_any_input_changes(
        tiny_spm, other_spm, tmp_path, write_spy, caplog):
    text = "Karitone Muri saloPE."
    data_dir = _rte_dir(tmp_path / "a", text)
    cached_dir = str(tmp_path / "cache")
    spm = tiny_spm["model"]

    def prepare(data_dir=data_dir, model=spm, lower=True, length=24):
        tokenizer = FullTokenizer(spm_model_file=model, do_lower_case=lower)
        processor = glue.get_processor("rte", do_lower_case=lower)
        path = glue.prepare_features(processor, data_dir, "train", tokenizer,
                                     length, cached_dir).path
        want = [2, *_ids(tokenizer, processor.process_text(text)), 3,
                *_ids(tokenizer, processor.process_text("Ne.")), 3]
        return _first_ids(path), want

    def assert_rebuilt(field, **changes):
        count = len(write_spy)
        caplog.clear()
        (got, length), want = prepare(**changes)
        assert len(write_spy) == count + 1, field
        assert got == want
        assert length == changes.get("length", 24)
        assert "Rebuilding cached" in caplog.text and field in caplog.text
        return got

    (first, _), _ = prepare()
    path = os.path.join(cached_dir, "rte_train.tf_record")
    mtime = os.stat(path).st_mtime_ns
    (again, _), _ = prepare()
    assert again == first and len(write_spy) == 1  # Unchanged: reused.
    assert os.stat(path).st_mtime_ns == mtime
    # Another data_dir with identical contents: still reused.
    prepare(data_dir=_rte_dir(tmp_path / "copy", text))
    assert len(write_spy) == 1

    edited = text.replace("Muri", "Gabu")
    _rte_dir(tmp_path / "a", edited)  # Same length, same row count.
    text = edited
    assert assert_rebuilt("source_sha256") != first
    text = "Sa lo pe di ga."
    other = assert_rebuilt("source_sha256",
                           data_dir=_rte_dir(tmp_path / "b", text))
    spm_ids = assert_rebuilt("spm_model_sha256", data_dir=str(tmp_path / "b"),
                             model=other_spm)
    assert spm_ids != other
    assert_rebuilt("do_lower_case", data_dir=str(tmp_path / "b"),
                   model=other_spm, lower=False)
    assert_rebuilt("max_seq_length", data_dir=str(tmp_path / "b"),
                   model=other_spm, lower=False, length=20)


def test_feature_cache_without_sidecar_is_rebuilt(tokenizer, tmp_path,
                                                  write_spy):
    data_dir = _rte_dir(tmp_path, "Ka to.")
    processor = glue.get_processor("rte")
    path = glue.prepare_features(processor, data_dir, "train", tokenizer, 16,
                                 str(tmp_path / "c")).path
    os.remove(path + ".meta.json")  # An old cache, or a killed writer.
    glue.prepare_features(processor, data_dir, "train", tokenizer, 16,
                          str(tmp_path / "c"))
    assert len(write_spy) == 2


# --- header, encoding, empty files ------------------------------------------

def _split_of(task, relative):
    """The split whose file `relative` is, None if the task reads it not."""
    processor = glue.get_processor(task)
    for split in ("train", "dev", "test"):
        try:
            if processor.file_path("", split) == relative.replace("/", os.sep):
                return split
        except ValueError:
            pass
    return None


# Every file a task reads that has a header in GLUE (all but CoLA
# train/dev).
_HEADED = [(task, relative, _split_of(task, relative))
           for task, (files, _) in sorted(CASES.items())
           for relative in sorted(files)
           if _split_of(task, relative)
           and relative not in ("CoLA/train.tsv", "CoLA/dev.tsv")]


@pytest.mark.parametrize("task,relative,split", _HEADED)
def test_missing_header_is_an_error(task, relative, split, tmp_path):
    rows = CASES[task][0][relative]
    header = T.join(rows[0])
    data_dir = write_tsvs(tmp_path, {relative: rows[1:] + rows[1:]})
    with pytest.raises(ValueError) as error:
        glue.get_processor(task).get_examples(data_dir, split)
    message = str(error.value)
    assert relative.split("/")[1] + ":1: the first line is not" in message
    assert repr(T.join(rows[1])) in message  # What was found.
    for name in rows[0]:  # The expected header, as GLUE writes it.
        assert name.lower() in message.lower()
    assert header.split(T)[-1] in message


def test_header_with_byte_order_mark_and_no_header_for_cola(tmp_path):
    rows = CASES["mrpc"][0]["MRPC/dev.tsv"]
    path = tmp_path / "MRPC" / "dev.tsv"
    path.parent.mkdir()
    path.write_bytes("\ufeff".encode() + "".join(
        T.join(row) + "\n" for row in rows).encode())
    assert len(glue.get_processor("mrpc").get_dev_examples(
        str(tmp_path))) == 2
    # CoLA train/dev have no header: the first row is an example.
    data_dir = write_tsvs(tmp_path, CASES["cola"][0])
    assert len(glue.get_processor("cola").get_train_examples(data_dir)) == 2


def test_non_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "RTE" / "dev.tsv"
    path.parent.mkdir()
    path.write_bytes(b"index\tsentence1\tsentence2\tlabel\n"
                     b"0\ta\tb\tentailment\n"
                     b"1\tcaf\xe9\tb\tentailment\n")
    with pytest.raises(ValueError, match=r"RTE[/\\]dev\.tsv:3: not UTF-8 "
                       r"\(byte 0xe9 at column 6\)"):
        glue.get_processor("rte").get_dev_examples(str(tmp_path))


@pytest.mark.parametrize("content,why", [
    (b"", "the file is empty"),
    (b"index\tsentence1\tsentence2\tlabel\n", "it has only a header row")])
def test_empty_tsv_names_file(content, why, tmp_path):
    path = tmp_path / "RTE" / "train.tsv"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"RTE[/\\]train\.tsv: no rte train "
                       rf"examples \({why}"):
        glue.get_processor("rte").get_train_examples(str(tmp_path))


def test_qqp_with_only_short_rows_is_an_error(tmp_path):
    head = CASES["qqp"][0]["QQP/train.tsv"][0]
    data_dir = write_tsvs(tmp_path, {"QQP/train.tsv": [head, ["1", "x"]]})
    with pytest.raises(ValueError, match="all 1 rows have too few columns"):
        glue.get_processor("qqp").get_train_examples(data_dir)


# --- test_results.tsv --------------------------------------------------------

def test_write_test_results_matches_run_classifier(tmp_path):
    path = str(tmp_path / "test_results.tsv")
    probabilities = np.array([[0.1, 0.9], [1 / 3, 2 / 3]])
    glue.write_test_results(path, probabilities)
    # run_classifier.py: "\t".join(str(p) for p in float32 row) + "\n".
    assert pathlib.Path(path).read_text() == (
        "0.1\t0.9\n0.33333334\t0.6666667\n")
    np.testing.assert_allclose(np.loadtxt(path, delimiter="\t", ndmin=2),
                               probabilities, rtol=1e-6)
    glue.write_test_results(path, np.array([3.5, 0.25]))  # STS-B: [N]
    assert pathlib.Path(path).read_text() == "3.5\n0.25\n"
    assert os.listdir(tmp_path) == ["test_results.tsv"]
    with pytest.raises(ValueError, match=r"example 1 has non-finite"):
        glue.write_test_results(path, np.array([[0.5, 0.5], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match=r"\[N, C\] or \[N\]"):
        glue.write_test_results(path, np.zeros((2, 2, 2)))
    assert pathlib.Path(path).read_text() == "3.5\n0.25\n"  # Untouched.


# --- configs/glue ------------------------------------------------------------

# ALBERT paper, Table 14: LR, BSZ, ALBERT DR, steps, warmup; and
# run_glue.sh's save_checkpoints_steps.
TABLE_14 = {
    "cola": (1e-5, 16, 0.0, 5336, 320, 100),
    "sts-b": (2e-5, 16, 0.0, 3598, 214, 100),
    "sst-2": (1e-5, 32, 0.0, 20935, 1256, 100),
    "mnli": (3e-5, 128, 0.0, 10000, 1000, 100),
    "qnli": (1e-5, 32, 0.0, 33112, 1986, 200),
    "qqp": (5e-5, 128, 0.1, 14000, 1000, 100),
    "rte": (3e-5, 32, 0.1, 800, 200, 100),
    "mrpc": (2e-5, 32, 0.0, 800, 200, 100),
    "wnli": (2e-5, 16, 0.1, 2000, 250, 100),
}
CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs" / "glue"


@pytest.mark.parametrize("task", sorted(TABLE_14))
def test_glue_flagfiles_match_table_14(task):
    values = flags.FlagValues()
    for name in ("task_name", "optimizer"):
        flags.DEFINE_string(name, None, "", flag_values=values)
    for name in ("learning_rate", "albert_dropout_prob",
                 "classifier_dropout_prob"):
        flags.DEFINE_float(name, None, "", flag_values=values)
    for name in ("train_batch_size", "train_step", "warmup_step",
                 "max_seq_length", "save_checkpoints_steps"):
        flags.DEFINE_integer(name, None, "", flag_values=values)
    flags.DEFINE_bool("do_lower_case", False, "", flag_values=values)
    values(["prog", f"--flagfile={CONFIG_DIR / (task + '.flags')}"])
    assert values.task_name == task and task in glue.TASK_NAMES
    got = (values.learning_rate, values.train_batch_size,
           values.albert_dropout_prob, values.train_step, values.warmup_step,
           values.save_checkpoints_steps)
    assert got == TABLE_14[task]
    assert (values.max_seq_length, values.optimizer,
            values.classifier_dropout_prob, values.do_lower_case) == (
                512, "adamw", 0.1, True)


def test_ram_filesystem_data_and_cache(tokenizer, tmp_path):
    """gs://-style paths: TSVs, cache and sidecar all through tf.io.gfile."""
    root = "ram://glue_test"
    files, expected = CASES["rte"]
    for relative, rows in files.items():
        tf.io.gfile.makedirs(f"{root}/data/RTE")
        with tf.io.gfile.GFile(f"{root}/data/{relative}", "w") as f:
            f.write("".join(T.join(row) + "\n" for row in rows))
    processor = glue.get_processor("rte")
    try:
        feature_file = glue.prepare_features(
            processor, f"{root}/data", "eval", tokenizer, 12,
            f"{root}/cache", batch_size=2)
        assert feature_file.path == f"{root}/cache/rte_eval.tf_record"
        assert [e.guid for e in feature_file.examples] == ["1"]
        got = _collect(glue.make_dataset(feature_file.path, 12, 2, False))
        np.testing.assert_array_equal(got["is_real_example"], [1, 0])
        assert tf.io.gfile.exists(feature_file.path + ".meta.json")
        results = f"{root}/cache/test_results.tsv"
        glue.write_test_results(results, np.array([[0.25, 0.75]]))
        with tf.io.gfile.GFile(results) as f:
            assert f.read() == "0.25\t0.75\n"
    finally:
        tf.io.gfile.rmtree(root)
