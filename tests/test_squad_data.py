"""SQuAD reading, alignment, windows and TFRecord/JSON caches.

Fixtures are written here; the SentencePiece model is conftest's tiny_spm.
"""

import json
import random

import numpy as np
import pytest
import tensorflow as tf

from albert_tf.data import squad
from albert_tf.metrics import squad as squad_metrics
from albert_tf.tokenization import encode_ids
from albert_tf.tokenization import FullTokenizer
from albert_tf.tokenization import preprocess_text

# Accents (precomposed), digits with commas, repeated and odd whitespace,
# quotes, a ligature and a fraction that preprocess_text rewrites to
# several characters, and a decomposed accent it drops.
CONTEXT = ("Café  naïve karito 1,000,000 pesos\tin  2019, ``quoted'' "
           "ﬁnance ½ mupe ritoka e\u0301 sane  lopedi 3.0, zobu")


@pytest.fixture(scope="module")
def tokenizer(tiny_spm):
    return FullTokenizer(spm_model_file=tiny_spm["model"])


def write_squad(path, paragraphs, version="1.1"):
    data = {"version": version,
            "data": [{"title": "t", "paragraphs": paragraphs}]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def word_answers(context):
    """(text, start) of every whitespace-separated word."""
    out, i = [], 0
    for word in context.split():
        i = context.index(word, i)
        out.append((word, i))
        i += len(word)
    return out


def qa(qid, question, text=None, start=None, impossible=False):
    answers = [] if text is None else [{"text": text, "answer_start": start}]
    return {"id": qid, "question": question, "answers": answers,
            "is_impossible": impossible}


def reference_lcs(a, b, max_dist):
    """The original _lcs_match as a plain dict DP (test oracle)."""
    f, g = {}, {}
    for i in range(len(a)):
        for j in range(i - max_dist, i + max_dist):
            if j >= len(b) or j < 0:
                continue
            if i > 0:
                g[i, j] = 0
                f[i, j] = f.get((i - 1, j), 0)
            if j > 0 and f.get((i, j - 1), 0) > f.get((i, j), 0):
                g[i, j] = 1
                f[i, j] = f[i, j - 1]
            prev = f.get((i - 1, j - 1), 0) if i > 0 and j > 0 else 0
            if a[i] == b[j] and prev + 1 > f.get((i, j), 0):
                g[i, j] = 2
                f[i, j] = prev + 1
    return f.get((len(a) - 1, len(b) - 1), 0), g


@pytest.mark.parametrize("a,b,max_dist", [
    ("the cat sat", " the cat sat", 6), ("abcabc", "cbacba", 5),
    ("aaaa bbbb", " ab ab ab", 4), ("x", " x", 6), ("ab", "ba", 1)])
def test_banded_lcs_matches_the_plain_dp(a, b, max_dist):
    chars = list(a)
    score, g = squad._lcs_backpointers(chars, b, max_dist)
    ref_score, ref_g = reference_lcs(chars, b, max_dist)
    assert score == ref_score
    width = 2 * max_dist
    ours = {(i, i - max_dist + k): v for i in range(len(a))
            for k in range(width) if (v := g[i * width + k]) != 3}
    assert ours == ref_g


def test_alignment_maps_every_word_back_to_its_characters(tokenizer,
                                                          tmp_path):
    words = word_answers(CONTEXT)
    # Words whose characters preprocess_text keeps one-for-one.
    clean = [(w, s) for w, s in words if w not in ("ﬁnance", "½", "e\u0301")]
    path = write_squad(tmp_path / "train.json", [{
        "context": CONTEXT,
        "qas": [qa(f"q{i}", "karito mupe", w, s)
                for i, (w, s) in enumerate(clean)]}])
    examples = squad.read_squad_examples(path, is_training=True)
    options = squad.FeatureOptions(max_seq_length=24, doc_stride=5,
                                   max_query_length=6)
    feats = list(squad.convert_examples_to_features(
        examples, tokenizer, options, is_training=True))
    windows = {}  # example -> windows that contain its answer
    for f in feats:
        if f.is_impossible:
            assert (f.start_position, f.end_position) == (0, 0)
            continue
        example = examples[f.example_index]
        assert f.doc_offset == len(encode_ids(
            tokenizer.sp_model, preprocess_text(example.question_text,
                                                lower=True))) + 2
        start = f.tok_start_to_orig_index[f.start_position - f.doc_offset]
        end = f.tok_end_to_orig_index[f.end_position - f.doc_offset]
        # A piece's "▁" aligns to the space before the word; the original
        # strips the mapped text (write_predictions_v1), and so do we.
        assert CONTEXT[start:end + 1].strip() == example.orig_answer_text
        windows.setdefault(f.example_index, []).append(f)
    assert len(windows) == len(clean)  # Every answer is in some window.
    # Answers sitting on the first and on the last context token of a
    # window both occur (doc_stride 5 over 24-token windows).
    first = sum(1 for fs in windows.values() for f in fs
                if f.start_position == f.doc_offset)
    last = sum(1 for fs in windows.values() for f in fs
               if f.end_position == f.paragraph_len - 2)
    assert first > 0 and last > 0


def test_prediction_recovers_gold_spans_through_eval_features(tokenizer,
                                                              tmp_path):
    clean = [(w, s) for w, s in word_answers(CONTEXT)
             if w not in ("ﬁnance", "½", "e\u0301")]
    paragraphs = [{"context": CONTEXT,
                   "qas": [qa(f"q{i}", "mupe", w, s)
                           for i, (w, s) in enumerate(clean)]}]
    path = write_squad(tmp_path / "dev.json", paragraphs)
    examples = squad.read_squad_examples(path, is_training=False)
    options = squad.FeatureOptions(max_seq_length=20, doc_stride=4,
                                   max_query_length=4)
    squad.write_features(examples, tokenizer, options, False,
                         str(tmp_path / "f.tfrecord"),
                         str(tmp_path / "f.json"))
    feats = squad.read_eval_features(str(tmp_path / "f.json"), options)
    assert max(f["doc_span_index"] for f in feats) >= 3
    # Logits that peak at each gold span in every window containing it.
    start_logits = np.zeros((len(feats), 20), np.float32)
    end_logits = np.zeros((len(feats), 20), np.float32)
    for row, f in enumerate(feats):
        _, gold_start = clean[f["example_index"]]
        gold_end = gold_start + len(clean[f["example_index"]][0]) - 1
        for i, (s, e) in enumerate(zip(f["tok_start_to_orig_index"],
                                       f["tok_end_to_orig_index"])):
            # The token whose characters cover the gold start / end.
            if s <= gold_start <= e:
                start_logits[row, f["doc_offset"] + i] = 5.0
            if s <= gold_end <= e:
                end_logits[row, f["doc_offset"] + i] = 5.0
    uids = np.array([f["unique_id"] for f in feats])
    predictions, _ = squad_metrics.predict_v1(
        examples, feats, uids, start_logits, end_logits)
    assert predictions == {f"q{i}": w for i, (w, _) in enumerate(clean)}


def test_max_context_windows():
    spans = squad.doc_spans(10, 4, 2)
    assert spans == [(0, 4), (2, 4), (4, 4), (6, 4)]
    # Token 3: 0 left context in window 0, 1 in window 1 -> window 1.
    assert [squad.is_max_context(spans, s, 3) for s in range(4)] == [
        False, True, False, False]
    # Token 5: window 2 (1 left, 2 right) beats window 1 (3 left, 0 right).
    assert [squad.is_max_context(spans, s, 5) for s in range(4)] == [
        False, False, True, False]
    # Every token has exactly one max-context window.
    for p in range(10):
        assert sum(squad.is_max_context(spans, s, p)
                   for s in range(4)) == 1


def test_long_question_is_cut_and_windows_layout(tokenizer, tmp_path):
    question = " ".join(["karito mupe sane"] * 20)
    path = write_squad(tmp_path / "dev.json", [{
        "context": CONTEXT, "qas": [qa("long", question, "mupe",
                                       CONTEXT.index("mupe"))]}])
    examples = squad.read_squad_examples(path, is_training=False)
    options = squad.FeatureOptions(max_seq_length=30, doc_stride=7,
                                   max_query_length=9)
    feats = list(squad.convert_examples_to_features(examples, tokenizer,
                                                    options, False))
    query = encode_ids(tokenizer.sp_model, preprocess_text(question,
                                                           lower=True))
    assert len(query) > 9
    cls_id, sep_id = (tokenizer.sp_model.PieceToId(t)
                      for t in ("[CLS]", "[SEP]"))
    assert [f.unique_id for f in feats] == list(
        range(1000000000, 1000000000 + len(feats)))
    for f in feats:
        n = f.paragraph_len
        assert f.doc_offset == 11
        assert f.input_ids[:11] == [cls_id] + query[:9] + [sep_id]
        assert f.input_ids[n - 1] == sep_id and f.input_ids[n:] == [0] * (
            30 - n)
        assert f.input_mask == [1] * n + [0] * (30 - n)
        assert f.segment_ids == [0] * 11 + [1] * (n - 11) + [0] * (30 - n)
        assert f.p_mask == [0] + [1] * 10 + [0] * (n - 12) + [1] * (31 - n)
        assert f.tokens[0] == "[CLS]" and len(f.tokens) == n


def test_v2_impossible_and_out_of_window_answers(tokenizer, tmp_path):
    start = CONTEXT.index("zobu")
    path = write_squad(tmp_path / "train.json", [{
        "context": CONTEXT,
        "qas": [qa("imp", "sane", impossible=True),
                qa("late", "sane", "zobu", start)]}], version="v2.0")
    examples = squad.read_squad_examples(path, is_training=True)
    assert examples[0].is_impossible and examples[0].start_position == -1
    options = squad.FeatureOptions(max_seq_length=20, doc_stride=6,
                                   max_query_length=4)
    feats = list(squad.convert_examples_to_features(examples, tokenizer,
                                                    options, True))
    imp = [f for f in feats if f.example_index == 0]
    late = [f for f in feats if f.example_index == 1]
    assert len(imp) > 2 and all(
        f.is_impossible and f.start_position == f.end_position == 0
        for f in imp)
    # zobu is the last word: only the last window holds it.
    assert [f.is_impossible for f in late] == [True] * (len(late) - 1) + [
        False]
    assert late[-1].start_position > 0
    assert all(f.start_position == 0 for f in late[:-1])


def test_files_schema_and_num_workers_identical(tokenizer, tmp_path):
    paragraphs = []
    for p in range(6):
        context = f"ritoka {p} " + CONTEXT
        paragraphs.append({"context": context, "qas": [
            qa(f"p{p}q{i}", f"mupe {i}", w, s)
            for i, (w, s) in enumerate(word_answers(context)[:12:3])]})
    path = write_squad(tmp_path / "train.json", paragraphs)
    examples = squad.read_squad_examples(path, is_training=True)
    options = squad.FeatureOptions(max_seq_length=26, doc_stride=5,
                                   max_query_length=5)
    out = {}
    for workers in (1, 2):
        for training in (True, False):
            name = f"w{workers}_{int(training)}"
            squad.write_features(
                examples, tokenizer, options, training,
                str(tmp_path / f"{name}.tfrecord"),
                None if training else str(tmp_path / f"{name}.json"),
                num_workers=workers)
    for ext, training in (("tfrecord", 1), ("tfrecord", 0), ("json", 0)):
        one = (tmp_path / f"w1_{training}.{ext}").read_bytes()
        two = (tmp_path / f"w2_{training}.{ext}").read_bytes()
        assert one == two and len(one) > 1000
    train = list(tf.data.TFRecordDataset(str(tmp_path / "w1_1.tfrecord")))
    record = tf.train.Example.FromString(train[0].numpy()).features.feature
    assert set(record) == {"unique_ids", "input_ids", "input_mask",
                           "segment_ids", "p_mask", "start_positions",
                           "end_positions", "is_impossible"}
    assert record["unique_ids"].int64_list.value == [1000000000]
    predict = list(tf.data.TFRecordDataset(str(tmp_path / "w1_0.tfrecord")))
    record = tf.train.Example.FromString(predict[1].numpy()).features.feature
    assert set(record) == {"unique_ids", "input_ids", "input_mask",
                           "segment_ids", "p_mask"}
    assert record["unique_ids"].int64_list.value == [1000000001]
    feats = list(squad.convert_examples_to_features(examples, tokenizer,
                                                    options, False))
    assert list(record["input_ids"].int64_list.value) == feats[1].input_ids
    batch = next(iter(squad.make_dataset(str(tmp_path / "w1_1.tfrecord"),
                                         26, 3, True, True, seed=1)))
    assert batch["input_ids"].shape == (3, 26)
    assert batch["start_positions"].dtype == tf.int32


def test_training_shuffle_is_the_originals(tmp_path):
    path = write_squad(tmp_path / "train.json", [{
        "context": "ka ri to", "qas": [qa(f"q{i}", "ka", "ri", 3)
                                       for i in range(30)]}])
    examples = squad.read_squad_examples(path, is_training=True)
    expected = list(examples)
    random.Random(12345).shuffle(expected)
    assert squad.shuffle_training_examples(examples) == expected
    assert [e.qas_id for e in examples] == [f"q{i}" for i in range(30)]


def test_eval_keeps_all_gold_answers(tmp_path):
    path = write_squad(tmp_path / "dev.json", [{
        "context": "ka ri to", "qas": [{
            "id": "a", "question": "ka", "answers": [
                {"text": "ri", "answer_start": 3},
                {"text": "ri to", "answer_start": 3}]}]}])
    (example,) = squad.read_squad_examples(path, is_training=False)
    assert example.answers == ("ri", "ri to")
    assert example.start_position is None


def test_malformed_json_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"data": [\n{"paragraphs": ]}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json:2"):
        squad.read_squad_examples(str(path), is_training=False)
    path.write_text('{"version": "1.1"}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json.*'data'"):
        squad.read_squad_examples(str(path), is_training=False)


def test_training_needs_exactly_one_answer(tmp_path):
    path = write_squad(tmp_path / "train.json", [{
        "context": "ka ri to", "qas": [qa("none", "ka")]}])
    with pytest.raises(ValueError, match=r"'none'.*exactly 1 answer"):
        squad.read_squad_examples(path, is_training=True)
    # Evaluation accepts it (v2 dev has answerless questions).
    assert squad.read_squad_examples(path, is_training=False)[0].answers == ()


def test_mismatched_answer_start_is_skipped_and_counted(tokenizer, tmp_path,
                                                        caplog):
    path = write_squad(tmp_path / "train.json", [{
        "context": "ka ri to mupe", "qas": [qa("good", "ka", "ri", 3),
                                            qa("bad", "ka", "ri", 5)]}])
    examples = squad.read_squad_examples(path, is_training=True)
    stats = squad.write_features(examples, tokenizer, squad.FeatureOptions(
        24, 8, 6), True, str(tmp_path / "t.tfrecord"))
    assert (stats.num_examples, stats.num_skipped_answer,
            stats.num_features) == (2, 1, 1)
    assert "'bad'" in caplog.text


def test_max_seq_length_must_exceed_query_plus_three():
    with pytest.raises(ValueError, match=r"max_seq_length \(67\).*\(64\)"):
        squad.FeatureOptions(max_seq_length=67, max_query_length=64)
    squad.FeatureOptions(max_seq_length=68, max_query_length=64)


def test_eval_features_file_is_checked(tokenizer, tmp_path):
    path = write_squad(tmp_path / "dev.json", [{
        "context": "ka ri to", "qas": [qa("a", "ka", "ri", 3)]}])
    examples = squad.read_squad_examples(path, is_training=False)
    options = squad.FeatureOptions(24, 8, 6)
    left = str(tmp_path / "left.json")
    squad.write_features(examples, tokenizer, options, False,
                         str(tmp_path / "p.tfrecord"), left,
                         metadata={"predict_file": path})
    assert squad.read_eval_features(left, options)[0]["unique_id"] == (
        1000000000)
    assert squad.eval_features_metadata(left)["metadata"] == {
        "predict_file": path}
    with pytest.raises(ValueError, match=r"max_seq_length=24 \(now 32\)"):
        squad.read_eval_features(left, squad.FeatureOptions(32, 8, 6))
    (tmp_path / "other.json").write_text("[]")
    with pytest.raises(ValueError, match="not an albert_tf SQuAD"):
        squad.read_eval_features(str(tmp_path / "other.json"))
