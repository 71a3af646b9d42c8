"""albert_tf.data.race length boundaries, written out by hand."""

import json
import logging

import numpy as np
import pytest
import tensorflow as tf

from albert_tf.data import race
from albert_tf.tokenization.full_tokenizer import FullTokenizer


def test_length_checks_allow_exactly_the_limits():
    race.check_lengths(40, 37)  # [CLS] + 2 [SEP] + 37 = 40: allowed.
    race.check_lengths(40, 1)
    with pytest.raises(ValueError, match="max_qa_length=38 must be <= "
                       r"max_seq_length - 3 = 37 \(\[CLS\] and two \[SEP\]"):
        race.check_lengths(40, 38)


def test_pack_choice_keeps_the_qa_end_and_the_context_start():
    context = [f"c{i}" for i in range(10)]
    qa = [f"q{i}" for i in range(5)]
    tokens, segments = race.pack_choice(context, qa, max_seq_length=10,
                                        max_qa_length=3)
    # QA keeps its last 3 pieces; the context its first 10 - 3 - 3 = 4.
    assert tokens == [race.CLS, "c0", "c1", "c2", "c3", race.SEP,
                      "q2", "q3", "q4", race.SEP]
    assert segments == [0] * 6 + [1] * 4
    # Everything fits: nothing is cut.
    tokens, segments = race.pack_choice(["a"], ["b", "c"], 10, 3)
    assert tokens == [race.CLS, "a", race.SEP, "b", "c", race.SEP]
    assert segments == [0, 0, 0, 1, 1, 1]
    # A QA side exactly max_qa_length long is kept whole.
    tokens, _ = race.pack_choice(context, qa[:3], 8, 3)
    assert tokens == [race.CLS, "c0", "c1", race.SEP, "q0", "q1", "q2",
                      race.SEP]


# --- Hand-computed features with a word-level WordPiece vocabulary ----------

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "c", "d", "e", "f",
         "q", "x", "y", "z", "w"]  # ids 0..14


@pytest.fixture(scope="module")
def words(tmp_path_factory):
    path = tmp_path_factory.mktemp("race_vocab") / "vocab.txt"
    path.write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    return FullTokenizer(vocab_file=str(path), do_lower_case=True)


def _ex(context, endings, label):
    return race.RaceExample("id", 0, "high", context, tuple(endings), label,
                            context, "q", tuple(endings))


def test_an_unlabeled_example_gets_label_zero_and_is_real(words):
    values = race.convert_single_example(
        _ex("a b", ["q x", "q y", "q z", "q w"], None), 8, 3, words)
    assert values["label_ids"] == [0]
    assert values["is_real_example"] == [1]
    # Choice 0: [CLS] a b [SEP] q x [SEP] + 1 pad.
    assert values["input_ids"][:8] == [2, 4, 5, 3, 10, 11, 3, 0]
    assert values["segment_ids"][:8] == [0, 0, 0, 0, 1, 1, 1, 0]
    assert values["input_mask"][8:16] == [1] * 7 + [0]
    values = race.convert_single_example(
        _ex("a b", ["q x", "q y", "q z", "q w"], 3), 8, 3, words)
    assert values["label_ids"] == [3]


def test_make_dataset_keeps_the_full_length_unless_asked(tmp_path, words):
    path = str(tmp_path / "race.tf_record")
    examples = [_ex("a b c", ["x", "y", "z", "q w"], 1),  # Longest: 8.
                _ex("a", ["x", "y", "z", "w"], 2)]
    assert race.write_features(examples, 12, 4, words, path) == 2
    batch = next(iter(race.make_dataset(path, 12, 2, False)))
    assert batch["input_ids"].shape == (2, 4, 12)
    batch = next(iter(race.make_dataset(path, 12, 2, False,
                                        pad_to_multiple=4)))
    # [CLS] a b c [SEP] q w [SEP] = 8 real pieces, a multiple of 4 already.
    for name in ("input_ids", "input_mask", "segment_ids"):
        assert batch[name].shape == (2, 4, 8), name
    np.testing.assert_array_equal(batch["input_ids"][0, 3],
                                  [2, 4, 5, 6, 3, 10, 14, 3])
    np.testing.assert_array_equal(batch["input_ids"][1, 0],
                                  [2, 4, 3, 11, 3, 0, 0, 0])
    assert batch["label_ids"].numpy().tolist() == [1, 2]


def _write_level(root, split, level, articles, original=False):
    directory = root / "RACE" / split / level
    directory.mkdir(parents=True, exist_ok=True)
    if original:
        (directory / "all.txt").write_text(
            "".join(json.dumps(a) + "\n" for a in articles))
    else:
        for n, article in enumerate(articles):
            (directory / f"{n}.txt").write_text(json.dumps(article))
    return directory


def _art(article_id, answers=("A",)):
    return {"id": article_id, "article": "a b", "questions": ["q?"],
            "options": [["x", "y", "z", "w"]], "answers": list(answers)}


def test_each_split_reads_its_own_directory(tmp_path):
    for split in ("train", "dev", "test"):
        _write_level(tmp_path, split, "high", [_art(f"{split}-1")])
    processor = race.RaceProcessor(high_only=True)
    assert [e.example_id for e in processor.get_train_examples(
        str(tmp_path))] == ["train-1"]
    assert [e.example_id for e in processor.get_dev_examples(
        str(tmp_path))] == ["dev-1"]
    assert [e.example_id for e in processor.get_test_examples(
        str(tmp_path))] == ["test-1"]


def test_no_questions_message_names_the_split_and_levels(tmp_path):
    (tmp_path / "RACE" / "train" / "middle").mkdir(parents=True)
    with pytest.raises(ValueError) as e:
        race.RaceProcessor(middle_only=True).get_train_examples(
            str(tmp_path))
    assert str(e.value) == (
        f"no RACE questions in {tmp_path}/RACE/train for levels ['middle'] "
        "(expected *.txt JSON articles or all.txt in each level directory)")
    with pytest.raises(ValueError) as e:
        race.RaceProcessor().get_examples(str(tmp_path), "valid")
    assert str(e.value) == ("RACE split 'valid' must be one of "
                            "['train', 'dev', 'test']")


def test_answers_are_stripped_and_must_be_a_to_d(tmp_path):
    _write_level(tmp_path, "dev", "high", [_art("1", answers=[" C\n"])])
    examples = race.RaceProcessor(high_only=True).get_dev_examples(
        str(tmp_path))
    assert [e.label for e in examples] == [2]
    directory = _write_level(tmp_path, "test", "high",
                             [_art("1", answers=[2])])
    with pytest.raises(ValueError) as e:
        race.RaceProcessor(high_only=True).get_test_examples(str(tmp_path))
    assert str(e.value) == (f"{directory}/0.txt: question 0: answer 2 is "
                            "not one of A, B, C, D")


def test_article_ids_must_be_non_empty_unique_strings(tmp_path):
    directory = _write_level(tmp_path, "dev", "high", [_art("")])
    with pytest.raises(ValueError) as e:
        race.RaceProcessor(high_only=True).get_dev_examples(str(tmp_path))
    assert str(e.value) == (f"{directory}/0.txt: 'id' must be a non-empty "
                            "string, got ''")
    directory = _write_level(tmp_path, "train", "high", [_art("s"), _art("s")],
                             original=True)
    with pytest.raises(ValueError) as e:
        race.RaceProcessor(high_only=True).get_train_examples(str(tmp_path))
    assert str(e.value) == (
        f"{directory}/all.txt:2: article id 's' also appears at "
        f"{directory}/all.txt:1; ids must be unique (predictions are keyed "
        "by id)")


def test_source_files_prefer_all_txt_and_sort_article_files(tmp_path):
    middle = _write_level(tmp_path, "dev", "middle", [_art("m")],
                          original=True)
    (middle / "9.txt").write_text("{}")  # Ignored beside all.txt.
    high = tmp_path / "RACE" / "dev" / "high"
    high.mkdir()
    for name in ("10.txt", "2.txt", ".hidden.txt", "notes.md"):
        (high / name).write_text("{}")
    assert race.RaceProcessor().source_files(str(tmp_path), "dev") == [
        f"{middle}/all.txt", f"{high}/10.txt", f"{high}/2.txt"]
    # A missing level directory contributes nothing.
    assert race.RaceProcessor().source_files(str(tmp_path), "test") == []


def test_process_text_preprocesses_only_with_spm():
    assert race.RaceProcessor().process_text("Héllo  Wörld") == (
        "hello world")
    assert race.RaceProcessor(do_lower_case=False).process_text(
        "Héllo  Wörld") == "Hello World"
    assert race.RaceProcessor(use_spm=False).process_text(
        "Héllo  Wörld") == "Héllo  Wörld"


def test_write_features_replaces_a_file_and_logs_real_tokens(tmp_path, words,
                                                             caplog):
    caplog.set_level(logging.INFO, logger="absl")
    path = tmp_path / "race.tf_record"
    path.write_text("an older cache")
    examples = [_ex("a b", ["q x", "y", "z", "w"], 0)]
    assert race.write_features(examples, 8, 3, words, str(path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race.tf_record"]
    record = next(iter(tf.data.TFRecordDataset(str(path)))).numpy()
    feature = tf.train.Example.FromString(record).features.feature
    assert list(feature["input_ids"].int64_list.value)[:8] == [
        2, 4, 5, 3, 10, 11, 3, 0]
    messages = [r.getMessage() for r in caplog.records if r.name == "absl"]
    # Each choice's real pieces only, not its padding.
    assert "  choice A: [CLS] a b [SEP] q x [SEP]" in messages
    assert "  choice B: [CLS] a b [SEP] y [SEP]" in messages


def test_an_article_that_is_not_a_string_is_named(tmp_path):
    article = _art("1")
    article["article"] = ["a", "b"]
    directory = _write_level(tmp_path, "dev", "high", [article])
    with pytest.raises(ValueError) as e:
        race.RaceProcessor(high_only=True).get_dev_examples(str(tmp_path))
    assert str(e.value) == f"{directory}/0.txt: 'article' must be a string"


def test_both_level_filters_are_refused_with_the_full_message():
    with pytest.raises(ValueError) as e:
        race.RaceProcessor(high_only=True, middle_only=True)
    assert str(e.value) == ("high_only and middle_only are both set: that "
                            "selects no RACE level; set at most one")
