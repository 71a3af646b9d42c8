"""albert_tf.data.squad edges with hand-computed expectations.

Most tests use `WordModel`, a SentencePieceProcessor whose pieces are the
whitespace-separated words ("▁" + word), so window layouts, answer
positions and max-context flags can be written out by hand. Contexts are
single letters: "a b c d" has the character offsets 0, 2, 4, 6.
"""

import json
import logging

import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf

from albert_tf.data import squad

U = "\u2581"


class WordModel(spm.SentencePieceProcessor):
    """One piece per word; ids in order of first use after the specials."""

    def __init__(self):
        super().__init__()
        self.pieces = ["<pad>", "<unk>", "[CLS]", "[SEP]"]

    def EncodeAsPieces(self, text):  # noqa: N802 (SentencePiece's name)
        return [U + word for word in text.split()]

    def PieceToId(self, piece):  # noqa: N802
        if piece not in self.pieces:
            self.pieces.append(piece)
        return self.pieces.index(piece)

    def IdToPiece(self, i):  # noqa: N802
        return self.pieces[i]

    def DecodePieces(self, pieces):  # noqa: N802
        return "".join(pieces).replace(U, " ").strip()

    def serialized_model_proto(self):
        return b""


def _ids(model, *words):
    return [model.PieceToId(U + w) for w in words]


CONTEXT9 = "a b c d e f g h i"  # Piece i is letter i, at offset 2 * i.


def _example(context, question="q", text=None, start=None,
             impossible=False, qid="x"):
    if impossible:
        text, start = "", -1
    return squad.SquadExample(qid, question, context, text, start,
                              impossible, () if text is None else (text,))


# Query "q" (1 piece): doc_offset 3; max_seq_length 8 leaves 8 - 1 - 3 = 4
# context pieces per window; stride 2 gives, for 9 pieces, the windows
# (0, 4), (2, 4), (4, 4), (6, 3).
OPTIONS = squad.FeatureOptions(max_seq_length=8, doc_stride=2,
                               max_query_length=4)


def _positions(feats):
    return [(f.start_position, f.end_position, f.is_impossible)
            for f in feats]


# --- Windows and answer positions -------------------------------------------

def test_window_layout_of_the_last_short_window():
    model = WordModel()
    status, feats = squad.example_features(_example(CONTEXT9), 0, model,
                                           OPTIONS, is_training=False)
    assert status == "ok"
    assert [(f.doc_span_index, f.doc_offset) for f in feats] == [
        (0, 3), (1, 3), (2, 3), (3, 3)]
    last = feats[3]
    cls_, sep = model.PieceToId("[CLS]"), model.PieceToId("[SEP]")
    assert last.input_ids == ([cls_] + _ids(model, "q") + [sep]
                              + _ids(model, "g", "h", "i") + [sep, 0])
    assert last.input_mask == [1, 1, 1, 1, 1, 1, 1, 0]
    assert last.segment_ids == [0, 0, 0, 1, 1, 1, 1, 0]
    assert last.p_mask == [0, 1, 1, 0, 0, 0, 1, 1]
    assert last.paragraph_len == 7
    assert last.tokens == ["[CLS]", U + "q", "[SEP]", U + "g", U + "h",
                           U + "i", "[SEP]"]
    # A piece starts at its "▁", which is aligned to the space before the
    # word (the first piece has none: offset 0); it ends at its letter.
    assert feats[0].tok_start_to_orig_index == [0, 1, 3, 5]
    assert last.tok_start_to_orig_index == [11, 13, 15]
    assert last.tok_end_to_orig_index == [12, 14, 16]
    # Token 6: 1 + 0.04 in window 2 (g is its 3rd of 4) against 0 + 0.03
    # in window 3; token 7: 0.04 against 1.03; token 8: window 3 only.
    assert last.token_is_max_context == [False, True, True]
    assert feats[2].token_is_max_context == [False, True, True, False]
    assert [f.unique_id for f in feats] == [0, 0, 0, 0]  # Numbered later.
    assert [f.example_index for f in feats] == [0, 0, 0, 0]


@pytest.mark.parametrize("text,start,expected", [
    # "d" (piece 3): the last piece of window 0, the second of window 1.
    ("d", 6, [(6, 6, False), (4, 4, False), (0, 0, True), (0, 0, True)]),
    # "e" (piece 4): first piece of window 2, last of window 1.
    ("e", 8, [(0, 0, True), (5, 5, False), (3, 3, False), (0, 0, True)]),
    # "c d e" (pieces 2-4): ends past window 0, starts before window 2.
    ("c d e", 4, [(0, 0, True), (3, 5, False), (0, 0, True),
                  (0, 0, True)]),
    # "a" at offset 0 (a start of 0 is a valid start).
    ("a", 0, [(3, 3, False), (0, 0, True), (0, 0, True), (0, 0, True)]),
    # "i", the paragraph's last piece: only the last window.
    ("i", 16, [(0, 0, True), (0, 0, True), (0, 0, True), (5, 5, False)]),
])
def test_answer_positions_at_window_edges(text, start, expected):
    status, feats = squad.example_features(
        _example(CONTEXT9, text=text, start=start), 0, WordModel(), OPTIONS,
        is_training=True)
    assert status == "ok"
    assert _positions(feats) == expected
    assert all(f.tokens == [] for f in feats)  # Training keeps no tokens.


def test_impossible_training_example_points_every_window_at_cls():
    status, feats = squad.example_features(
        _example("a b c d e", impossible=True), 0, WordModel(), OPTIONS,
        is_training=True)
    # 5 pieces, 4 per window, stride 2: (0, 4), (2, 3).
    assert status == "ok"
    assert _positions(feats) == [(0, 0, True), (0, 0, True)]


def test_answer_that_does_not_match_its_start_is_skipped():
    model = WordModel()
    for text, start in (("c", 5), ("", 4), ("c", -1), ("i j", 16)):
        assert squad.example_features(
            _example(CONTEXT9, text=text, start=start), 0, model, OPTIONS,
            is_training=True) == ("answer", [])
    # Eval does not look at the answer.
    status, _ = squad.example_features(
        _example(CONTEXT9, text="c", start=5), 0, model, OPTIONS,
        is_training=False)
    assert status == "ok"


def test_the_query_keeps_its_first_max_query_length_pieces():
    model = WordModel()
    options = squad.FeatureOptions(max_seq_length=9, doc_stride=8,
                                   max_query_length=2)
    _, feats = squad.example_features(
        _example("a b", question="x y z"), 0, model, options, False)
    assert feats[0].tokens == ["[CLS]", U + "x", U + "y", "[SEP]",
                               U + "a", U + "b", "[SEP]"]
    assert feats[0].doc_offset == 4


# --- Conversion: ids, statistics, skipped examples ---------------------------

def test_conversion_numbers_features_and_counts_them():
    examples = [
        _example(CONTEXT9, text="d", start=6, qid="d"),  # 2 windows hold d.
        _example("a b", impossible=True, qid="none"),
        _example("a b", text="b", start=1, qid="bad"),  # b is at 2.
        _example("a b", text="b", start=2, qid="b"),
    ]
    stats = squad.ConversionStats()
    feats = list(squad.convert_examples_to_features(
        examples, WordModel(), OPTIONS, is_training=True, stats=stats))
    assert [f.unique_id for f in feats] == list(range(1000000000,
                                                      1000000006))
    assert [f.example_index for f in feats] == [0, 0, 0, 0, 1, 3]
    assert stats == squad.ConversionStats(
        num_examples=4, num_features=6, num_positive=3, num_negative=3,
        num_skipped_alignment=0, num_skipped_answer=1)
    # Eval counts every window as positive, and skips nothing.
    stats = squad.ConversionStats()
    list(squad.convert_examples_to_features(
        examples, WordModel(), OPTIONS, is_training=False, stats=stats))
    assert stats == squad.ConversionStats(
        num_examples=4, num_features=7, num_positive=7, num_negative=0)


def test_skips_are_counted_each_time(caplog):
    caplog.set_level(logging.INFO, logger="absl")
    examples = [_example("a b", text="b", start=1, qid=f"bad{i}")
                for i in range(3)]
    examples.append(_example("a b", text="a", start=0, qid="ok"))
    stats = squad.ConversionStats()
    list(squad.convert_examples_to_features(examples, WordModel(), OPTIONS,
                                            True, stats=stats))
    assert (stats.num_skipped_answer, stats.num_features) == (3, 1)
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "absl" and r.levelno == logging.WARNING]
    assert warnings[-1] == (
        "Skipped 3 of 4 examples: 3 whose answer_start does not match the "
        "answer text, 0 whose context could not be aligned to its pieces "
        "(the original's MISMATCH DETECTED)")
    # The progress line is logged each 10000 examples, not for 4.
    assert not any(r.getMessage().startswith("Converted")
                   for r in caplog.records)


def test_no_features_message_names_the_most_common_reason():
    stats = squad.ConversionStats(num_examples=5, num_skipped_answer=1,
                                  num_skipped_alignment=4)
    assert squad.no_features_message("dev.json", stats, False) == (
        "dev.json: no features from its 5 questions (5 skipped; most common "
        "reason, 4 questions: the context could not be aligned to its "
        "SentencePiece pieces (the original's MISMATCH DETECTED)); nothing "
        "to predict. The skipped questions are named in the warnings "
        "above.")
    stats = squad.ConversionStats(num_examples=3, num_skipped_answer=3)
    assert squad.no_features_message("train.json", stats, True) == (
        "train.json: no features from its 3 questions (3 skipped; most "
        "common reason, 3 questions: answer_start does not point at the "
        "answer text (or the text is empty)); nothing to train on. The "
        "skipped questions are named in the warnings above.")
    assert squad.no_features_message("e.json", squad.ConversionStats(),
                                     True) == (
        "e.json: no questions in the file; nothing to train on")


def test_a_worker_starts_without_a_remembered_paragraph(tiny_spm):
    with open(tiny_spm["model"], "rb") as f:
        proto = f.read()
    saved = dict(squad._WORKER)
    try:
        squad._WORKER.clear()
        squad._init_worker(proto, OPTIONS, False)
        assert squad._WORKER["last"] == (None, None)
        assert squad._WORKER["is_training"] is False
        assert squad._WORKER["options"] == OPTIONS
        out = squad._convert_chunk((5, [_example("ka ri"),
                                        _example("ka ri", qid="y")]))
        assert [status for status, _ in out] == ["ok", "ok"]
        assert [f[0].example_index for _, f in out] == [5, 6]
    finally:
        squad._WORKER.clear()
        squad._WORKER.update(saved)


def test_chunks_of_thirty_two_examples_keep_their_first_index():
    chunks = list(squad._chunks(range(70)))
    assert [(first, len(chunk)) for first, chunk in chunks] == [
        (0, 32), (32, 32), (64, 6)]
    assert list(squad._chunks([])) == []


def test_eval_record_fields():
    feature = squad.SquadFeature(
        unique_id=7, example_index=2, doc_span_index=1, doc_offset=3,
        tokens=["[CLS]"], tok_start_to_orig_index=[4],
        tok_end_to_orig_index=[5], token_is_max_context=[True],
        input_ids=[2], input_mask=[1], segment_ids=[0], p_mask=[0],
        paragraph_len=6)
    assert feature.eval_record() == {
        "unique_id": 7, "example_index": 2, "doc_span_index": 1,
        "doc_offset": 3, "paragraph_len": 6, "tokens": ["[CLS]"],
        "tok_start_to_orig_index": [4], "tok_end_to_orig_index": [5],
        "token_is_max_context": [1]}


# --- Alignment ---------------------------------------------------------------

@pytest.mark.parametrize("pos,start,end", [
    (1, 6, 6),   # Between 5 and 7: a gap of one.
    (3, 7, 7),   # After 7 (m not given): the last aligned one.
    (0, 5, 5),   # Aligned.
])
def test_convert_index_between_and_after(pos, start, end):
    index = [5, None, 7, None]
    assert squad.convert_index(index, pos, is_start=True) == start
    assert squad.convert_index(index, pos, is_start=False) == end


def test_convert_index_edges_hand_computed():
    # Before the first aligned position (4): a start is 0, an end 4 - 1.
    assert squad.convert_index([None, None, 4], 0, is_start=True) == 0
    assert squad.convert_index([None, None, 4], 1, is_start=False) == 3
    # ... unless that position is 0: then it is 0 either way.
    assert squad.convert_index([None, 0], 0, is_start=False) == 0
    # After the last aligned (2) with m = 6: a start is 3, an end m - 1.
    assert squad.convert_index([2, None], 1, 6, is_start=True) == 3
    assert squad.convert_index([2, None], 1, 6, is_start=False) == 5
    # ... at m - 1 already: stays.
    assert squad.convert_index([5, None], 1, 6, is_start=True) == 5
    # Adjacent neighbours (3, 4): a start takes the later, an end the
    # earlier.
    assert squad.convert_index([3, None, 4], 1, is_start=True) == 4
    assert squad.convert_index([3, None, 4], 1, is_start=False) == 3
    with pytest.raises(ValueError, match="no aligned position around 1"):
        squad.convert_index([None, None], 1)


def test_lcs_alignment_at_exactly_eighty_percent():
    # 4 of 5 characters match: 4 = 0.8 * 5 is not a mismatch (the
    # original refuses only below). No table beats it, so the band is
    # doubled twice and the last table computed is used.
    out = squad.lcs_alignment("abcde", "abcdx", False)
    assert out == ([0, 1, 2, 3, None], [0, 1, 2, 3, None])
    # 3 of 5: below.
    assert squad.lcs_alignment("abcde", "abcxy", False) is None
    assert squad.lcs_alignment("", "a", False) is None
    assert squad.lcs_alignment("a", "", False) is None


def test_lcs_alignment_path_along_the_edge_of_the_band():
    # 30 distinct characters; the pieces drop the first 5 and add 5 others
    # at the end: n = m = 30, so the band is |n - m| + 5 = 5 wide each
    # side. Backtracking from the end first skips the 5 added characters
    # (j - i = -5: the band's first column), then matches 25 on that
    # column: 25 > 0.8 * 30 = 24, aligned.
    paragraph = "abcdefghijklmnopqrstuvwxyz0123"
    pieces = paragraph[5:] + "VWXYZ"
    assert squad.lcs_alignment(paragraph, pieces, False) == (
        [None] * 5 + list(range(25)), list(range(5, 30)) + [None] * 5)


def test_lcs_table_value_when_the_corner_is_the_first_band_column():
    # n = 2, m = 1, max_dist = 1: the corner (1, 0) is k = 0 of row 1.
    score, _ = squad._lcs_backpointers(["a", "b"], "a", 1)
    assert score == 1
    # Outside the band: 0.
    score, _ = squad._lcs_backpointers(["a", "b", "c"], "a", 1)
    assert score == 0


# --- Reading -----------------------------------------------------------------

def _write(tmp_path, qas, name="f.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"data": [{"paragraphs": [
        {"context": "a b c", "qas": qas}]}]}))
    return str(path)


def test_answer_start_must_be_an_integer_not_a_boolean(tmp_path):
    path = _write(tmp_path, [{"id": "q1", "question": "?", "answers": [
        {"text": "b", "answer_start": True}]}])
    with pytest.raises(ValueError) as e:
        squad.read_squad_examples(path, is_training=True)
    assert str(e.value) == (f"{path}: question 'q1': answers[0]: "
                            "'answer_start' should be int, got bool")
    path = _write(tmp_path, [{"id": "q1", "question": "?", "answers": [
        {"text": "b"}]}])
    with pytest.raises(ValueError) as e:
        squad.read_squad_examples(path, is_training=True)
    assert str(e.value) == (f"{path}: question 'q1': answers[0]: missing "
                            "key 'answer_start'")
    path = _write(tmp_path, [{"id": "q1", "question": "?",
                              "is_impossible": 0, "answers": []}])
    with pytest.raises(ValueError, match="'is_impossible' should be bool, "
                       "got int"):
        squad.read_squad_examples(path, is_training=False)


def test_examples_read_for_training_and_eval(tmp_path):
    path = _write(tmp_path, [
        {"id": "q1", "question": "?", "answers": [
            {"text": "b", "answer_start": 2}]},
        {"id": "q2", "question": "!", "is_impossible": True,
         "answers": []}])
    assert squad.read_squad_examples(path, True) == [
        squad.SquadExample("q1", "?", "a b c", "b", 2, False, ("b",)),
        squad.SquadExample("q2", "!", "a b c", "", -1, True, ())]
    assert squad.read_squad_examples(path, False) == [
        squad.SquadExample("q1", "?", "a b c", answers=("b",)),
        squad.SquadExample("q2", "!", "a b c", is_impossible=True)]


def test_duplicate_ids_name_both_places(tmp_path):
    path = _write(tmp_path, [{"id": "q", "question": "?", "answers": []},
                             {"id": "q", "question": "?", "answers": []}])
    with pytest.raises(ValueError) as e:
        squad.read_squad_examples(path, False)
    assert str(e.value) == (
        f"{path}: question id 'q' appears twice, at "
        "data[0].paragraphs[0].qas[0] and at data[0].paragraphs[0].qas[1]; "
        "ids must be unique (predictions are keyed by id)")


def test_feature_options_bounds():
    squad.FeatureOptions(max_seq_length=8, doc_stride=1, max_query_length=4)
    with pytest.raises(ValueError, match=r"max_seq_length \(7\) must be "
                       r"greater than max_query_length \(4\) \+ 3"):
        squad.FeatureOptions(max_seq_length=7, max_query_length=4)
    with pytest.raises(ValueError, match="doc_stride=0 must be >= 1"):
        squad.FeatureOptions(max_seq_length=8, doc_stride=0,
                             max_query_length=4)
    with pytest.raises(ValueError, match="max_query_length=0 must be >= 1"):
        squad.FeatureOptions(max_seq_length=8, max_query_length=0)


# --- Files and datasets ------------------------------------------------------

def _squad_file(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"data": [{"paragraphs": [
        {"context": "a b c d e", "qas": [
            {"id": "1", "question": "q", "answers": [
                {"text": "b", "answer_start": 2}]},
            {"id": "2", "question": "q r", "answers": [
                {"text": "e", "answer_start": 8}]}]}]}]}))
    return str(path)


def test_write_train_features_writes_the_training_schema(tmp_path):
    out = str(tmp_path / "train.tf_record")
    count, stats = squad.write_train_features(
        _squad_file(tmp_path), WordModel(),
        squad.FeatureOptions(max_seq_length=10, doc_stride=2,
                             max_query_length=4), out)
    assert (count, stats.num_features) == (2, 2)
    spec = squad.feature_spec(10, is_training=True,
                              version_2_with_negative=True)
    records = [tf.io.parse_single_example(r, spec)
               for r in tf.data.TFRecordDataset(out)]
    # Query "q" (doc_offset 3) with "b" (piece 1) at 4; "q r" (doc_offset
    # 4) with "e" (piece 4) at 8. Shuffled with seed 12345: 2 first.
    got = sorted((int(r["start_positions"]), int(r["end_positions"]),
                  int(r["is_impossible"])) for r in records)
    assert got == [(4, 4, 0), (8, 8, 0)]


@pytest.mark.parametrize("v2", [False, True])
def test_make_dataset_cuts_every_sequence_feature(tmp_path, v2):
    path = str(tmp_path / "eval.tf_record")
    examples = [_example("a b c", qid="1"), _example("a", qid="2")]
    squad.write_features(examples, WordModel(),
                         squad.FeatureOptions(max_seq_length=16,
                                              doc_stride=8,
                                              max_query_length=4),
                         False, path)
    batch = next(iter(squad.make_dataset(path, 16, 2, False, v2,
                                         pad_to_multiple=4)))
    # Longest: [CLS] q [SEP] a b c [SEP] = 7 real, rounded up to 8.
    names = {"unique_ids", "input_ids", "input_mask", "segment_ids"}
    assert set(batch) == (names | {"p_mask"} if v2 else names)
    for name in names - {"unique_ids"} | ({"p_mask"} if v2 else set()):
        assert batch[name].shape == (2, 8), name
    np.testing.assert_array_equal(batch["input_mask"], [
        [1] * 7 + [0], [1] * 5 + [0] * 3])
    if v2:
        np.testing.assert_array_equal(batch["p_mask"][1],
                                      [0, 1, 1, 0, 1, 1, 1, 1])
    # Without dynamic padding: the full 16. A last, short batch is kept
    # by default (batch size 3, 2 features).
    batch = next(iter(squad.make_dataset(path, 16, 3, False, v2)))
    assert batch["input_ids"].shape == (2, 16)


def test_write_features_logs_what_it_wrote(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="absl")
    path = str(tmp_path / "eval.tf_record")
    left = str(tmp_path / "left.json")
    options = squad.FeatureOptions(max_seq_length=16, doc_stride=8,
                                   max_query_length=4)
    examples = [_example("a b c", qid="1"), _example("a", qid="2")]
    squad.write_features(examples, WordModel(), options, False, path)
    squad.write_features(examples, WordModel(), options, False, path, left)
    wrote = [r.getMessage() for r in caplog.records
             if r.getMessage().startswith("Wrote")]
    assert wrote == [f"Wrote 2 features of 2 examples to {path}",
                     f"Wrote 2 features of 2 examples to {path} and {left}"]


def test_no_feature_at_all_is_an_error_naming_the_source(tmp_path):
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"data": [{"paragraphs": [
        {"context": "a b", "qas": [
            {"id": "1", "question": "q", "answers": [
                {"text": "b", "answer_start": 1}]}]}]}]}))
    out = tmp_path / "train.tf_record"
    with pytest.raises(ValueError) as e:
        squad.write_train_features(str(train), WordModel(), OPTIONS,
                                   str(out))
    assert str(e.value) == (
        f"{train}: no features from its 1 questions (1 skipped; most common "
        "reason, 1 questions: answer_start does not point at the answer "
        "text (or the text is empty)); nothing to train on. The skipped "
        "questions are named in the warnings above.")
    assert not out.exists() and list(tmp_path.iterdir()) == [train]
    # Without a source, the feature file is named.
    with pytest.raises(ValueError, match=f"^{out}: no features"):
        squad.write_features([_example("a b", text="b", start=1)],
                             WordModel(), OPTIONS, True, str(out))


def test_a_paragraph_without_qas_names_the_file(tmp_path):
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"data": [{"paragraphs": [
        {"context": "a b"}]}]}))
    with pytest.raises(ValueError) as e:
        squad.read_squad_examples(str(path), False)
    assert str(e.value) == (f"{path}: data[0].paragraphs[0]: missing key "
                            "'qas'")


def test_alignment_lowercases_the_context_only_when_asked():
    assert squad.lcs_alignment("Ab", "ab", True) == ([0, 1], [0, 1])
    # Without lowercasing "A" matches nothing: 1 of 2 < 80%.
    assert squad.lcs_alignment("Ab", "ab", False) is None


def test_eval_features_keep_the_examples_impossibility():
    _, feats = squad.example_features(_example("a b", impossible=True), 0,
                                      WordModel(), OPTIONS, False)
    assert [f.is_impossible for f in feats] == [True]


def test_a_missing_paragraphs_list_names_its_entry(tmp_path):
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"data": [{"paragraphs": []}, {"x": 1}]}))
    with pytest.raises(ValueError) as e:
        squad.read_squad_examples(str(path), False)
    assert str(e.value) == f"{path}: data[1]: missing key 'paragraphs'"


def test_an_incomplete_eval_features_file_says_how_many_were_read(
        tmp_path):
    path = str(tmp_path / "left.json")
    squad.write_features([_example("a b", qid="1")], WordModel(), OPTIONS,
                         False, str(tmp_path / "f.tf_record"), path)
    with open(path) as f:
        value = json.load(f)
    value["num_features"] = 3
    with open(path, "w") as f:
        json.dump(value, f)
    with pytest.raises(ValueError) as e:
        squad.read_eval_features(path)
    assert str(e.value) == f"{path}: incomplete (num_features 3, read 1)"


def test_feature_arrays_hold_the_tfrecord_values_in_memory():
    model = WordModel()
    _, feats = squad.example_features(_example("a b", text="b", start=2), 0,
                                      model, OPTIONS, True)
    arrays = squad.feature_arrays(feats, 8, is_training=True,
                                  version_2_with_negative=True)
    assert sorted(arrays) == sorted([
        "unique_ids", "input_ids", "input_mask", "segment_ids", "p_mask",
        "start_positions", "end_positions", "is_impossible"])
    cls_, sep = model.PieceToId("[CLS]"), model.PieceToId("[SEP]")
    np.testing.assert_array_equal(arrays["input_ids"], [
        [cls_, *_ids(model, "q"), sep, *_ids(model, "a", "b"), sep, 0, 0]])
    assert arrays["input_ids"].dtype == np.int32
    np.testing.assert_array_equal(arrays["p_mask"], [[0, 1, 1, 0, 0, 1, 1,
                                                      1]])
    # "b" is context piece 1, at input position 3 + 1.
    assert arrays["start_positions"].tolist() == [4]
    assert arrays["unique_ids"].tolist() == [0]
    v1 = squad.feature_arrays(feats, 8, False, False)
    assert sorted(v1) == ["input_ids", "input_mask", "segment_ids",
                          "unique_ids"]
