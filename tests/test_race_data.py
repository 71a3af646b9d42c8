"""RACE readers (both layouts), features, TFRecords, tf.data, in-graph text."""

import json

import numpy as np
import pytest
import tensorflow as tf

from albert_tf.data import race
from albert_tf.tokenization import preprocess_text
from albert_tf.tokenization.full_tokenizer import FullTokenizer
from conftest import make_sentences

L, Q = 40, 9  # max_seq_length, max_qa_length (distinct, small)


def _article(article_id, article, questions, options, answers):
    return {"id": article_id, "article": article, "questions": questions,
            "options": options, "answers": answers}


def _articles():
    """{level: [article, ...]}: two middle articles, one high."""
    text = " ".join(make_sentences(7, 6))
    return {
        "middle": [
            _article("middle1.txt", "Héllo  Wórld. " + text,
                     ["The cat sat on the _ today.", "Who is Ká?"],
                     [["Mat", "hat", "bat", "rat"], ["A", "B", "C", "D"]],
                     ["A", "D"]),
            _article("middle2.txt", "Short one.", ["Where _ and _?"],
                     [["x", "y", "z", "w"]], ["C"]),
        ],
        "high": [
            _article("high7.txt", text, ["Which is right?"],
                     [["ka ri", "to ne", "mu sa", "lo pe"]], ["B"]),
        ],
    }


def write_released(root, articles, split="dev"):
    """<root>/RACE/<split>/<level>/<n>.txt, one JSON article per file."""
    for level, items in articles.items():
        directory = root / "RACE" / split / level
        directory.mkdir(parents=True, exist_ok=True)
        for n, item in enumerate(items, start=1):
            (directory / f"{n}.txt").write_text(json.dumps(item),
                                                encoding="utf-8")
    return str(root)


def write_original(root, articles, split="dev"):
    """<root>/RACE/<split>/<level>/all.txt, one JSON article per line."""
    for level, items in articles.items():
        directory = root / "RACE" / split / level
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "all.txt").write_text(
            "".join(json.dumps(item) + "\n" for item in items),
            encoding="utf-8")
    return str(root)


@pytest.fixture(scope="module")
def tokenizer(tiny_spm):
    return FullTokenizer(spm_model_file=tiny_spm["model"])


# --- text building ---------------------------------------------------------

def test_build_qa_text_substitutes_every_blank_or_appends():
    assert race.build_qa_text("the _ sat.", "cat") == "the cat sat."
    assert race.build_qa_text("_ and _?", "x") == "x and x?"
    assert race.build_qa_text("who is it?", "bob") == "who is it? bob"


def test_processor_processes_text_as_the_original(tmp_path):
    data_dir = write_released(tmp_path, _articles())
    examples = race.RaceProcessor().get_dev_examples(data_dir)
    first = examples[0]
    # preprocess_text on each piece: spaces collapsed, accents, lower case.
    assert first.context.startswith("hello world. ")
    assert first.endings == ("the cat sat on the mat today.",
                             "the cat sat on the hat today.",
                             "the cat sat on the bat today.",
                             "the cat sat on the rat today.")
    assert examples[1].endings[0] == "who is ka? a"
    assert examples[2].endings == tuple(f"where {o} and {o}?"
                                        for o in "xyzw")
    # Raw text is kept for predictions and the raw-text export.
    assert first.question == "The cat sat on the _ today."
    assert first.options == ("Mat", "hat", "bat", "rat")
    cased = race.RaceProcessor(do_lower_case=False).get_dev_examples(data_dir)
    assert cased[0].context.startswith("Hello World. ")


# --- reading both layouts --------------------------------------------------

def _summary(examples):
    return [(e.example_id, e.question_index, e.level, e.label)
            for e in examples]


def test_released_layout(tmp_path):
    data_dir = write_released(tmp_path, _articles())
    examples = race.RaceProcessor().get_dev_examples(data_dir)
    # Middle first, then high, as the original; labels A-D -> 0-3.
    assert _summary(examples) == [("middle1.txt", 0, "middle", 0),
                                  ("middle1.txt", 1, "middle", 3),
                                  ("middle2.txt", 0, "middle", 2),
                                  ("high7.txt", 0, "high", 1)]


def test_original_layout_gives_the_same_examples(tmp_path):
    released = race.RaceProcessor().get_dev_examples(
        write_released(tmp_path / "a", _articles()))
    original = race.RaceProcessor().get_dev_examples(
        write_original(tmp_path / "b", _articles()))
    assert original == released


def test_all_txt_wins_over_article_files(tmp_path):
    """A level directory with all.txt is the original layout, read alone."""
    articles = _articles()
    write_original(tmp_path, articles)
    write_released(tmp_path, {"high": [_article(
        "stray", "x", ["q?"], [["a", "b", "c", "d"]], ["A"])]})
    examples = race.RaceProcessor().get_dev_examples(str(tmp_path))
    assert "stray" not in {e.example_id for e in examples}
    assert len(examples) == 4


def test_missing_id_falls_back_to_file_name(tmp_path):
    item = _article(None, "x y", ["q?"], [["a", "b", "c", "d"]], ["A"])
    del item["id"]
    data_dir = write_released(tmp_path, {"high": [item]})
    examples = race.RaceProcessor(high_only=True).get_dev_examples(data_dir)
    assert examples[0].example_id == "1.txt"


def test_unlabeled_articles_give_label_none(tmp_path):
    item = _article("t1", "x y", ["q?"], [["a", "b", "c", "d"]], None)
    del item["answers"]
    data_dir = write_released(tmp_path, {"high": [item]}, split="test")
    examples = race.RaceProcessor(high_only=True).get_test_examples(data_dir)
    assert examples[0].label is None


def test_high_only_and_middle_only(tmp_path):
    data_dir = write_released(tmp_path, _articles())
    high = race.RaceProcessor(high_only=True).get_dev_examples(data_dir)
    middle = race.RaceProcessor(middle_only=True).get_dev_examples(data_dir)
    assert {e.level for e in high} == {"high"} and len(high) == 1
    assert {e.level for e in middle} == {"middle"} and len(middle) == 3
    with pytest.raises(ValueError, match="high_only and middle_only"):
        race.RaceProcessor(high_only=True, middle_only=True)


def test_empty_level_directory_is_allowed_but_no_questions_is_not(tmp_path):
    data_dir = write_released(tmp_path, {"high": _articles()["high"]})
    (tmp_path / "RACE" / "dev" / "middle").mkdir()
    assert len(race.RaceProcessor().get_dev_examples(data_dir)) == 1
    with pytest.raises(ValueError, match="no RACE questions"):
        race.RaceProcessor(middle_only=True).get_dev_examples(data_dir)


# --- bad input -------------------------------------------------------------

def test_missing_level_directory_names_the_path(tmp_path):
    data_dir = write_released(tmp_path, {"high": _articles()["high"]})
    missing = str(tmp_path / "RACE" / "dev" / "middle")
    with pytest.raises(FileNotFoundError, match=missing):
        race.RaceProcessor().get_dev_examples(data_dir)
    # Not needed with --high_only.
    assert race.RaceProcessor(high_only=True).get_dev_examples(data_dir)
    with pytest.raises(ValueError, match="split"):
        race.RaceProcessor().get_examples(data_dir, "valid")


def test_malformed_json_names_file_and_line(tmp_path):
    directory = tmp_path / "RACE" / "dev" / "high"
    directory.mkdir(parents=True)
    good = json.dumps(_articles()["high"][0])
    (directory / "all.txt").write_text(good + "\n{not json\n")
    with pytest.raises(ValueError, match=r"all\.txt:2: not valid JSON"):
        race.RaceProcessor(high_only=True).get_dev_examples(str(tmp_path))
    (directory / "all.txt").unlink()
    (directory / "5.txt").write_text('{"article": "x",\n "questions": [}')
    with pytest.raises(ValueError, match=r"5\.txt:2: not valid JSON"):
        race.RaceProcessor(high_only=True).get_dev_examples(str(tmp_path))


def _bad(tmp_path, **changes):
    item = _article("bad.txt", "x y", ["q0?", "q1?"],
                    [["a", "b", "c", "d"], ["a", "b", "c", "d"]], ["A", "B"])
    item.update(changes)
    data_dir = write_released(tmp_path, {"high": [item]})
    return race.RaceProcessor(high_only=True), data_dir


def test_three_options_names_file_and_question(tmp_path):
    processor, data_dir = _bad(
        tmp_path, options=[["a", "b", "c", "d"], ["a", "b", "c"]])
    with pytest.raises(ValueError,
                       match=r"1\.txt: question 1: has 3 options"):
        processor.get_dev_examples(data_dir)


def test_answer_outside_a_to_d_names_file_and_question(tmp_path):
    processor, data_dir = _bad(tmp_path, answers=["A", "E"])
    with pytest.raises(ValueError,
                       match=r"1\.txt: question 1: answer 'E' is not one"):
        processor.get_dev_examples(data_dir)


def test_mismatched_counts_and_missing_fields(tmp_path):
    processor, data_dir = _bad(tmp_path / "a", answers=["A"])
    with pytest.raises(ValueError, match="2 questions, 2 option lists and 1"):
        processor.get_dev_examples(data_dir)
    item = _articles()["high"][0]
    del item["article"]
    data_dir = write_original(tmp_path / "b", {"high": [item]})
    with pytest.raises(ValueError, match=r"all\.txt:1: .* no 'article'"):
        processor.get_dev_examples(data_dir)


# --- features --------------------------------------------------------------

def _example(context, endings, label=2):
    return race.RaceExample("id", 0, "high", context, tuple(endings), label,
                            context, "", ())


def _choices(values):
    """Flattened features -> per-choice (input_ids, segment_ids), unpadded."""
    ids = race.unflatten(values["input_ids"], L)
    mask = race.unflatten(values["input_mask"], L)
    segments = race.unflatten(values["segment_ids"], L)
    out = []
    for row_ids, row_mask, row_segments in zip(ids, mask, segments):
        n = sum(row_mask)
        assert row_mask == [1] * n + [0] * (L - n)
        assert row_ids[n:] == [0] * (L - n) and row_segments[n:] == [0] * (
            L - n)
        out.append((row_ids[:n], row_segments[:n]))
    return out


def test_feature_layout_and_labels(tokenizer):
    context = "ka ri to ne."
    endings = ["mu sa?", "lo pe di", "ga", "bu zo fi ha"]
    values = race.convert_single_example(_example(context, endings), L, Q,
                                         tokenizer)
    assert {k: len(v) for k, v in values.items()} == {
        "input_ids": 4 * L, "input_mask": 4 * L, "segment_ids": 4 * L,
        "label_ids": 1, "is_real_example": 1}
    assert values["label_ids"] == [2] and values["is_real_example"] == [1]
    context_ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(context))
    for (ids, segments), ending in zip(_choices(values), endings):
        qa_ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(ending))
        assert ids == [2, *context_ids, 3, *qa_ids, 3]  # [CLS]=2 [SEP]=3
        assert segments == ([0] * (len(context_ids) + 2)
                            + [1] * (len(qa_ids) + 1))


def test_qa_side_keeps_its_last_tokens(tokenizer):
    long_qa = " ".join(make_sentences(3, 4))
    qa_tokens = tokenizer.tokenize(long_qa)
    assert len(qa_tokens) > Q
    values = race.convert_single_example(
        _example("ka ri.", [long_qa, "ga", "ga", "ga"]), L, Q, tokenizer)
    ids, segments = _choices(values)[0]
    qa_ids = ids[len(ids) - Q - 1:-1]
    assert qa_ids == tokenizer.convert_tokens_to_ids(qa_tokens[-Q:])
    assert qa_ids != tokenizer.convert_tokens_to_ids(qa_tokens[:Q])
    assert segments.count(1) == Q + 1


def test_article_is_cut_at_its_end(tokenizer):
    article = " ".join(make_sentences(4, 12))
    context_tokens = tokenizer.tokenize(article)
    assert len(context_tokens) > L
    endings = ["ka", " ".join(make_sentences(5, 4)), "ri to", "ne"]
    values = race.convert_single_example(_example(article, endings), L, Q,
                                         tokenizer)
    for (ids, _), ending in zip(_choices(values), endings):
        qa_len = min(len(tokenizer.tokenize(ending)), Q)
        kept = L - 3 - qa_len
        assert len(ids) == L  # Full: the article gives way to the QA side.
        assert ids[1:1 + kept] == tokenizer.convert_tokens_to_ids(
            context_tokens[:kept])
        assert ids[1 + kept] == 3


def test_padding_example_and_length_checks(tokenizer):
    values = race.convert_single_example(race.PaddingInputExample(), L, Q,
                                         tokenizer)
    assert values["input_ids"] == [0] * (4 * L)
    assert values["is_real_example"] == [0] and values["label_ids"] == [0]
    with pytest.raises(ValueError, match="max_qa_length=38 must be <= "):
        race.check_lengths(40, 38)
    with pytest.raises(ValueError, match="max_qa_length=0"):
        race.check_lengths(40, 0)
    with pytest.raises(ValueError, match="not 4 choices"):
        race.unflatten([0] * 10, L)


def test_unflatten_reverses_the_record_layout():
    flat = list(range(4 * 3))
    assert race.unflatten(flat, 3) == [[0, 1, 2], [3, 4, 5], [6, 7, 8],
                                       [9, 10, 11]]


def test_write_features_and_make_dataset(tmp_path, tokenizer):
    examples = race.RaceProcessor().get_dev_examples(
        write_released(tmp_path, _articles()))
    padded = race.pad_examples(examples, 3)  # 4 real + 2 fake
    path = str(tmp_path / "race_eval.tf_record")
    assert race.write_features(padded, L, Q, tokenizer, path) == 6
    assert not [p for p in tf.io.gfile.listdir(str(tmp_path)) if ".tmp" in p]
    # The original schema: int64 [4 * L] features, scalar label/real flag.
    record = next(iter(tf.data.TFRecordDataset(path))).numpy()
    feature = tf.train.Example.FromString(record).features.feature
    assert len(feature["input_ids"].int64_list.value) == 4 * L
    assert list(feature["label_ids"].int64_list.value) == [0]
    assert list(feature["is_real_example"].int64_list.value) == [1]

    batches = list(race.make_dataset(path, L, batch_size=4,
                                     is_training=False))
    assert [b["label_ids"].shape[0] for b in batches] == [4, 2]
    first = batches[0]
    assert first["input_ids"].shape == (4, 4, L)
    assert first["input_ids"].dtype == tf.int32
    assert first["label_ids"].numpy().tolist() == [0, 3, 2, 1]
    assert np.concatenate([b["is_real_example"] for b in batches]).tolist() \
        == [1, 1, 1, 1, 0, 0]
    expected = race.convert_single_example(examples[1], L, Q, tokenizer)
    for name in ("input_ids", "input_mask", "segment_ids"):
        np.testing.assert_array_equal(first[name][1].numpy(),
                                      race.unflatten(expected[name], L))
    train = race.make_dataset(path, L, batch_size=5, is_training=True,
                              drop_remainder=True, seed=1)
    assert next(iter(train))["input_ids"].shape == (5, 4, L)


def test_write_features_is_atomic(tmp_path, tokenizer):
    path = str(tmp_path / "race_train.tf_record")
    tf.io.gfile.GFile(path, "w").write("old")

    class Broken:  # Neither a RaceExample nor padding: conversion fails.
        pass

    with pytest.raises(AttributeError):
        race.write_features([Broken()], L, Q, tokenizer, path)
    assert tf.io.gfile.GFile(path).read() == "old"
    assert tf.io.gfile.listdir(str(tmp_path)) == ["race_train.tf_record"]


# --- in-graph text building ------------------------------------------------

def test_in_graph_builder_matches_python_features(tmp_path, tiny_spm,
                                                  tokenizer):
    from albert_tf.tokenization.in_graph import InGraphTokenizer

    long_article = "Ká  ri, 1,000 " + " ".join(make_sentences(4, 12))
    long_question = " ".join(make_sentences(3, 4)) + " _ end"
    articles = {"high": [
        _article("a1", long_article,
                 ["The _ sat.", long_question, "Why did Ká go?"],
                 [["Mat", "HAT", "bat", ""], ["ka", "ri", "to", "ne"],
                  ["mu sa", " lo  pe ", "di", "ga bu"]],
                 ["A", "B", "C"]),
        _article("a2", "", ["_"], [["x", "y", "z", "w"]], ["D"]),
    ]}
    examples = race.RaceProcessor(high_only=True).get_dev_examples(
        write_released(tmp_path, articles))
    builder = race.RaceTextBuilder(
        InGraphTokenizer.from_file(tiny_spm["model"]), L, Q)
    text = tf.TensorSpec([None], tf.string)
    build = tf.function(builder, input_signature=[
        text, text, tf.TensorSpec([None, 4], tf.string)])
    out = build(tf.constant([e.article for e in examples]),
                tf.constant([e.question for e in examples]),
                tf.constant([list(e.options) for e in examples]))
    assert out["input_ids"].shape == (len(examples), 4, L)
    for i, example in enumerate(examples):
        expected = race.convert_single_example(example, L, Q, tokenizer)
        for name in ("input_ids", "input_mask", "segment_ids"):
            np.testing.assert_array_equal(
                out[name][i].numpy(), race.unflatten(expected[name], L),
                err_msg=f"{name} of example {i}")
    # The fixture covers what it claims: a full row and a cut QA side.
    assert int(out["input_mask"][0].numpy().sum(-1).max()) == L
    assert len(tokenizer.tokenize(examples[1].endings[0])) > Q
    qa = builder.qa_text(tf.constant(["a _ b _", "who?"]),
                         tf.constant([["X", "y", "z", "w"]] * 2))
    assert qa.numpy()[0, 0].decode() == "a x b x"
    assert qa.numpy()[1, 1].decode() == "who? y"
    assert preprocess_text("X", lower=True) == "x"


def test_non_utf8_names_the_file_and_line(tmp_path):
    data_dir = write_original(tmp_path, _articles())
    path = tmp_path / "RACE" / "dev" / "high" / "all.txt"
    path.write_bytes(path.read_bytes() + b'{"article": "caf\xe9"}\n')
    with pytest.raises(ValueError, match=r"all.txt:2: not UTF-8"):
        race.RaceProcessor().get_dev_examples(data_dir)
