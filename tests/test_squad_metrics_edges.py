"""SQuAD prediction and scoring edge cases, each worked out by hand.

Exact ties and the documented winner wherever a best item is picked (the
v2 threshold sweep, the n-best, the max-context window), thresholds hit
exactly, unequal start_n_top / end_n_top, the null score's window,
duplicate answer texts and n_best_size=1. The expected values are written
out here, never computed with albert_tf.metrics.squad itself.
"""

import collections

import numpy as np
import pytest

from albert_tf.data import squad
from albert_tf.metrics import squad as m

Example = collections.namedtuple("Example", ["qas_id", "paragraph_text"])

# "the big dog ran": tokens at characters [0,3) [4,7) [8,11) [12,15);
# input layout [CLS] q1 q2 [SEP] ... -> doc_offset 3 (positions 3..6).
TEXT = "the big dog ran"
STARTS, ENDS = [0, 4, 8, 12], [2, 6, 10, 14]


def feature(uid, example_index, max_context, doc_offset=3, starts=STARTS,
            ends=ENDS):
    return {"unique_id": uid, "example_index": example_index,
            "doc_offset": doc_offset, "tok_start_to_orig_index": starts,
            "tok_end_to_orig_index": ends,
            "token_is_max_context": max_context}


# --- The official v2 threshold sweep ---------------------------------------

def test_best_threshold_ties_keep_the_lowest_threshold():
    """find_best_thresh replaces the best only when strictly better."""
    has_answer = {"h0": True, "h1": True, "n1": False, "h2": True}
    predictions = {"h0": "x", "h1": "cat", "n1": "emu", "h2": "dog"}
    scores = {"h0": 0, "h1": 1, "n1": 0, "h2": 1}
    na_probs = {"h0": 0.05, "h1": 0.1, "n1": 0.2, "h2": 0.3}
    # Start 1 (one no-answer question), threshold 0.0. h0 +0 = 1 (a tie
    # with the start: stays 0.0); h1 +1 = 2 (new best, 0.1); n1 has an
    # answer text -> 1; h2 +1 = 2 (a tie with 0.1: stays 0.1).
    best, thresh = m.best_threshold(predictions, scores, na_probs,
                                    has_answer)
    assert thresh == 0.1
    assert best == pytest.approx(100.0 * 2 / 4)
    # Without the gain at h1 the start (0.0) is never beaten.
    scores["h1"] = 0
    best, thresh = m.best_threshold(predictions, scores, na_probs,
                                    has_answer)
    assert (best, thresh) == (pytest.approx(100.0 * 1 / 4), 0.0)


def test_best_threshold_sweeps_in_increasing_odds_not_dict_order():
    has_answer = {"n1": False, "h1": True}
    predictions = {"n1": "emu", "h1": "cat"}
    scores = {"n1": 0, "h1": 1}
    # Dict order n1, h1; odds order h1 (0.2), n1 (0.9).
    # Start 1; h1 +1 = 2 (0.2); n1 -1 = 1.
    best, thresh = m.best_threshold(predictions, scores,
                                    {"n1": 0.9, "h1": 0.2}, has_answer)
    assert (best, thresh) == (pytest.approx(100.0), 0.2)


def test_null_threshold_is_inclusive_and_na_prob_thresh_is_strict():
    best = {"a": "cat", "b": "dog", "c": "emu"}
    odds = {"a": 0.5, "b": 0.5 - 1e-9, "c": 0.6}
    # write_predictions_v2: "" where score_null >= threshold.
    assert m.apply_null_threshold(best, odds, 0.5) == {
        "a": "", "b": "dog", "c": ""}
    # The official script: no-answer guess only where na_prob > thresh.
    has_answer = {"a": True, "b": True, "c": False}
    forced = m.apply_no_answer_threshold({"a": 1, "b": 1, "c": 0},
                                         {"a": 1.0, "b": 1.5, "c": 1.0},
                                         has_answer, 1.0)
    assert forced == {"a": 1, "b": 0.0, "c": 0}


def test_evaluate_v2_na_prob_exactly_at_thresh_is_not_forced():
    data = [{"paragraphs": [{"context": "unused", "qas": [
        {"id": "h", "question": "?",
         "answers": [{"text": "cat", "answer_start": 0}]},
        {"id": "n", "question": "?", "answers": []}]}]}]
    result = m.evaluate_v2(data, {"h": "cat", "n": "emu"},
                           {"h": 1.0, "n": 1.0})
    # Neither is forced to "" at exactly 1.0: h right, n wrong.
    assert result["exact"] == pytest.approx(50.0)
    assert result["HasAns_exact"] == pytest.approx(100.0)
    assert result["NoAns_exact"] == pytest.approx(0.0)


# --- Ranking, n-best ----------------------------------------------------------

def test_best_indexes_ties_keep_the_lower_index():
    assert m.best_indexes([1.0, 3.0, 3.0, 2.0, 3.0], 2) == [1, 2]
    assert m.best_indexes([1.0, 3.0, 3.0, 2.0, 3.0], 4) == [1, 2, 4, 3]
    assert m.best_indexes([0.5], 3) == [0]
    # Long enough that an unstable sort reorders the ties: 30 tied maxima
    # at the odd indices come back in index order.
    assert m.best_indexes([1.0, 3.0] * 30, 30) == list(range(1, 60, 2))


def test_softmax_hand_computed():
    probs = m.softmax([np.log(1.0), np.log(3.0)])
    np.testing.assert_allclose(probs, [0.25, 0.75])
    assert m.softmax([]) == []
    # Large scores do not overflow (shifted by the max).
    np.testing.assert_allclose(m.softmax([1000.0, 1000.0]), [0.5, 0.5])


# "dog big dog": the same text at tokens 0 and 2.
DUP_TEXT = "dog big dog"
DUP_STARTS, DUP_ENDS = [0, 4, 8], [2, 6, 10]


def _dup_logits():
    start = np.full((1, 7), -20.0)
    end = np.full((1, 7), -20.0)
    start[0, [3, 4, 5]] = [5.0, 1.0, 4.0]
    end[0, [3, 4, 5]] = [5.0, 0.0, 4.0]
    return start, end


def _dup_predict(n_best_size):
    feats = [feature(1, 0, [1, 1, 1], starts=DUP_STARTS, ends=DUP_ENDS)]
    start, end = _dup_logits()
    return m.predict_v1([Example("q", DUP_TEXT)], feats, np.array([1]),
                        start, end, n_best_size=n_best_size,
                        max_answer_length=3)


def test_nbest_drops_duplicate_texts_and_fills_up_to_n_best_size():
    # n_best_size 3: starts 3 (5), 5 (4), 4 (1); ends the same positions.
    # Spans in insertion order: (3,3) 10 "dog", (3,5) 9 "dog big dog",
    # (3,4) 5 "dog big", (5,5) 8 "dog" again, (4,5) 5 "big dog",
    # (4,4) 1 "big". Ranked: 10, 9, 8 (duplicate: skipped, not counted),
    # then the tie at 5 keeps insertion order: "dog big" before "big dog".
    preds, nbest = _dup_predict(3)
    assert [e["text"] for e in nbest["q"]] == ["dog", "dog big dog",
                                              "dog big"]
    assert preds["q"] == "dog"
    # The first (better) "dog" keeps its scores, not the duplicate's 4 + 4.
    assert (nbest["q"][0]["start_log_prob"],
            nbest["q"][0]["end_log_prob"]) == (5.0, 5.0)
    expected = np.exp([10.0, 9.0, 5.0]) / np.exp([10.0, 9.0, 5.0]).sum()
    np.testing.assert_allclose([e["probability"] for e in nbest["q"]],
                               expected)


def test_n_best_size_one():
    # Top-1 start 3 and end 3 only: "dog", probability 1.
    preds, nbest = _dup_predict(1)
    assert preds["q"] == "dog"
    assert len(nbest["q"]) == 1
    assert nbest["q"][0]["probability"] == pytest.approx(1.0)


def test_span_filter_boundaries():
    """A span exactly max_answer_length long, one ending on the window's
    last token and one starting at its first token are all valid."""
    feats = [feature(1, 0, [1, 1, 1, 1])]
    start = np.full((1, 8), -20.0)
    end = np.full((1, 8), -20.0)
    start[0, 3], end[0, 6] = 3.0, 3.0  # "the .. ran": 4 tokens.
    preds, nbest = m.predict_v1([Example("q", TEXT)], feats, np.array([1]),
                                start, end, n_best_size=1,
                                max_answer_length=4)
    assert preds["q"] == "the big dog ran"
    preds, _ = m.predict_v1([Example("q", TEXT)], feats, np.array([1]),
                            start, end, n_best_size=1, max_answer_length=3)
    assert preds["q"] == "empty"  # 4 > 3: the only candidate is dropped.
    # A position past the window's real tokens ([SEP] at 7) is never a span.
    start[0, 3], end[0, 6] = -20.0, -20.0
    start[0, 6], end[0, 7] = 3.0, 9.0
    preds, _ = m.predict_v1([Example("q", TEXT)], feats, np.array([1]),
                            start, end, n_best_size=8, max_answer_length=4)
    assert preds["q"] == "ran"


# --- The v2 beam ------------------------------------------------------------

def test_predict_v2_unequal_beam_and_null_in_first_window():
    """start_n_top = 2, end_n_top = 3: row i * 3 + j is the j-th end of the
    i-th start. The smaller cls_logit is in the first window."""
    examples = [Example("q", TEXT)]
    feats = [feature(1, 0, [1, 1, 1, 1]), feature(2, 0, [0, 0, 0, 0])]
    start_top_log_probs = np.array([[-0.1, -0.5], [-0.1, -0.2]])
    start_top_index = np.array([[4, 5], [4, 5]])  # big, dog
    end_top_log_probs = np.array([
        [-0.2, -0.3, -1.0, -0.4, -0.9, -0.1],
        [-0.1, -0.1, -0.1, -0.1, -0.1, -0.1]])
    end_top_index = np.array([
        [5, 4, 6, 5, 6, 4],  # big -> dog, big, ran; dog -> dog, ran, big
        [5, 5, 5, 5, 5, 5]])  # window 2 has no max-context token
    cls_logits = np.array([-2.0, 0.5])
    best, nbest, odds = m.predict_v2(
        examples, feats, np.array([1, 2]), start_top_log_probs,
        start_top_index, end_top_log_probs, end_top_index, cls_logits,
        n_best_size=10, max_answer_length=3, start_n_top=2, end_n_top=3)
    # big..dog -0.3, big..big -0.4, dog..dog -0.9, big..ran -1.1,
    # dog..ran -1.4; dog..big ends before it starts.
    assert [e["text"] for e in nbest["q"]] == [
        "big dog", "big", "dog", "big dog ran", "dog ran"]
    np.testing.assert_allclose(
        [e["start_log_prob"] + e["end_log_prob"] for e in nbest["q"]],
        [-0.3, -0.4, -0.9, -1.1, -1.4])
    assert best["q"] == "big dog"
    assert odds["q"] == -2.0  # min over windows, found in the first
    assert m.apply_null_threshold(best, odds, -2.0) == {"q": ""}
    assert m.apply_null_threshold(best, odds, -1.999) == {"q": "big dog"}


def test_predict_v2_without_a_valid_span():
    feats = [feature(1, 0, [0, 0, 0, 0])]
    best, nbest, odds = m.predict_v2(
        [Example("q", TEXT)], feats, np.array([1]), np.zeros((1, 1)),
        np.array([[4]]), np.zeros((1, 1)), np.array([[4]]),
        np.array([0.25]), start_n_top=1, end_n_top=1)
    assert best["q"] == ""
    assert nbest["q"][0]["start_log_prob"] == -1e6
    assert odds["q"] == 0.25


# --- Max context between overlapping windows ---------------------------------

def test_max_context_ties_keep_the_first_window():
    spans = squad.doc_spans(6, 4, 1)
    assert spans == [(0, 4), (1, 4), (2, 4)]
    # Token 2: min(2, 1) = 1 in window 0, min(1, 2) = 1 in window 1,
    # min(0, 3) = 0 in window 2; equal lengths: a tie, the first wins.
    assert [squad.is_max_context(spans, s, 2) for s in range(3)] == [
        True, False, False]
    # Token 3: 0, 1 (min(2, 1)), 1 (min(1, 2)): windows 1 and 2 tie.
    assert [squad.is_max_context(spans, s, 3) for s in range(3)] == [
        False, True, False]


def test_max_context_length_breaks_equal_context():
    # Token 1 has 1 token of context on its shorter side in both; the
    # longer window wins by 0.01 * length.
    spans = [(0, 3), (0, 5)]
    assert [squad.is_max_context(spans, s, 1) for s in range(2)] == [
        False, True]
    # Outside every window but one: that one.
    assert squad.is_max_context(spans, 1, 4)
    assert not squad.is_max_context(spans, 0, 4)


def test_doc_spans_hand_computed():
    assert squad.doc_spans(5, 4, 2) == [(0, 4), (2, 3)]
    assert squad.doc_spans(4, 4, 2) == [(0, 4)]
    assert squad.doc_spans(9, 4, 3) == [(0, 4), (3, 4), (6, 3)]
    assert squad.doc_spans(3, 4, 8) == [(0, 3)]


# --- The v2 beam under dynamic padding ---------------------------------------

def _squad_task(start_n_top, end_n_top, bucket, v2=True, max_seq_length=40):
    from albert_tf import optimization
    from albert_tf.tasks import squad as squad_task
    import helpers
    options = squad.FeatureOptions(max_seq_length=max_seq_length,
                                   doc_stride=4, max_query_length=4)
    return squad_task.SquadTask(
        helpers.tiny_config(max_position_embeddings=max_seq_length),
        None, version_2_with_negative=v2, spm_model_file=None,
        vocab_file=None, options=options,
        prediction=squad_task.PredictionConfig(start_n_top=start_n_top,
                                               end_n_top=end_n_top),
        train_file=None, predict_file=None, train_feature_file="t",
        predict_feature_file="p", predict_feature_left_file="l",
        pad_to_multiple=bucket)


@pytest.mark.parametrize("start_n_top, end_n_top, bucket, refused", [
    (3, 5, 4, True),  # The wider of the two (end_n_top) counts.
    (5, 3, 4, True),
    (5, 5, 4, True),
    (5, 5, 5, False),  # Every cut width is a multiple of 5: >= the beam.
    (3, 2, 3, False),
    (3, 2, 8, False),
    (5, 5, 0, False),  # Fixed length: nothing is cut.
    (5, 5, 40, False),  # A bucket of max_seq_length never cuts.
])
def test_squad_v2_bucket_must_hold_the_beam(start_n_top, end_n_top, bucket,
                                            refused):
    """A batch cut to `bucket` positions must still have start_n_top /
    end_n_top candidates for the head's top-k."""
    if refused:
        with pytest.raises(ValueError, match=f"padding_bucket={bucket}"):
            _squad_task(start_n_top, end_n_top, bucket)
    else:
        task = _squad_task(start_n_top, end_n_top, bucket)
        assert task.pad_to_multiple == bucket
    # v1 has no beam: any bucket.
    assert _squad_task(start_n_top, end_n_top, bucket,
                       v2=False).pad_to_multiple == bucket


def test_squad_v2_bucket_check_when_the_beam_fills_the_sequence():
    with pytest.raises(ValueError, match="padding_bucket=4"):
        _squad_task(8, 8, 4, max_seq_length=8)


def test_v2_head_beam_on_a_batch_cut_to_the_beam_width():
    """The head's top-k on a batch exactly as wide as the beam: every
    position is a candidate once, best first."""
    from albert_tf.models import AlbertSquadV2
    import helpers
    width = 5
    model = AlbertSquadV2(helpers.tiny_config(max_position_embeddings=16),
                          start_n_top=width, end_n_top=2)
    ids = np.array([[2, 7, 3, 9, 3]], np.int32)
    out = model({"input_ids": ids, "input_mask": np.ones_like(ids),
                 "segment_ids": np.zeros_like(ids),
                 "p_mask": np.zeros_like(ids)}, training=False)
    index = np.asarray(out["start_top_index"])[0]
    probs = np.asarray(out["start_top_log_probs"])[0]
    assert sorted(index.tolist()) == list(range(width))
    assert np.all(np.diff(probs) <= 0)
    assert np.asarray(out["end_top_index"]).shape == (1, width * 2)


# --- The two v2 protocols ----------------------------------------------------

def _v2_data(*questions):
    return [{"paragraphs": [{"context": "unused", "qas": [
        {"id": qid, "question": "?",
         "answers": [{"text": t, "answer_start": 0} for t in golds]}
        for qid, golds in questions]}]}]


def test_dev_tuned_threshold_rethresholds_the_predictions():
    data = _v2_data(("h1", ["big cat"]), ("h2", ["dog"]), ("n1", []),
                    ("n2", []))
    best = {"h1": "cat", "h2": "dog", "n1": "emu", "n2": "ant"}
    odds = {"h1": -1.0, "h2": 0.5, "n2": 0.7, "n1": 0.9}
    metrics, preds = m.evaluate_v2_with_thresholds(data, best, odds)
    # Default fixed threshold 0.0: only h1 (-1.0) keeps its answer.
    assert metrics["null_score_diff_threshold"] == 0.0
    assert preds == {"h1": "cat", "h2": "", "n1": "", "n2": ""}
    # F1 sweep: start 2; h1 + 2/3 (-1.0); h2 + 1 = 3 2/3 (0.5, best);
    # n2 - 1; n1 - 1.
    assert metrics["best_f1_thresh"] == 0.5
    assert metrics["best_f1"] == pytest.approx(100 * (2 + 2 / 3 + 1) / 4)
    # Rethresholded at 0.5: h2, n2, n1 -> "". F1 h1 2/3, h2 0, n 1 + 1.
    assert metrics["dev_tuned_null_score_diff_threshold"] == 0.5
    assert metrics["dev_tuned_f1"] == pytest.approx(100 * (2 / 3 + 2) / 4)
    assert metrics["dev_tuned_exact"] == pytest.approx(50.0)


def test_dev_tuned_rescoring_applies_na_prob_thresh():
    """A tuned threshold above 1.0 keeps answers whose null odds are in
    (1.0, threshold); the rescoring's na_prob_thresh = 1.0 still counts
    them as no-answer guesses, as squad_utils.evaluate_v2 does."""
    data = _v2_data(("h1", ["cat"]), ("h3", ["owl"]), ("h2", ["dog"]),
                    ("n1", []))
    best = {"h1": "cat", "h3": "owl", "h2": "dog", "n1": "emu"}
    odds = {"h1": 0.5, "h3": 1.2, "h2": 1.5, "n1": 3.0}
    metrics, _ = m.evaluate_v2_with_thresholds(data, best, odds, 0.0)
    # Sweep: start 1; +1 (0.5); +1 (1.2); +1 = 4 (1.5, best); n1 - 1.
    assert metrics["best_f1_thresh"] == 1.5
    assert metrics["best_f1"] == pytest.approx(100.0)
    # Tuned: h2, n1 -> "". Rescored: h1 1; h3 forced (1.2 > 1.0) -> 0;
    # h2 0; n1 1.
    assert metrics["dev_tuned_f1"] == pytest.approx(50.0)
    assert metrics["dev_tuned_exact"] == pytest.approx(50.0)


def test_missing_predictions_are_counted_in_the_warning(caplog):
    data = _v2_data(("a", ["cat"]), ("b", ["dog"]), ("c", ["owl"]))
    with caplog.at_level("WARNING"):
        result = m.evaluate_v1(data, {"a": "cat"})
    assert result["exact_match"] == pytest.approx(100 / 3)
    assert "2 of 3 questions have no prediction" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        exact, _ = m.raw_scores_v2(data, {"b": "dog"})
    assert exact == {"a": 0, "b": 1, "c": 0}
    assert "2 questions have no prediction" in caplog.text


def test_evaluate_v1_scores_questions_after_a_missing_one():
    data = _v2_data(("a", ["cat"]), ("b", ["big dog"]), ("c", ["owl"]),
                    ("d", ["emu"]))
    result = m.evaluate_v1(data, {"b": "the big dog", "c": "owl",
                                  "d": "big emu"})
    # a missing (0), b and c exact, d F1 2 * (1/2 * 1) / (3/2) = 2/3.
    assert result["exact_match"] == pytest.approx(100 * 2 / 4)
    assert result["f1"] == pytest.approx(100 * (2 + 2 / 3) / 4)
    with pytest.raises(ValueError, match=r"question 'x' has no gold answer"
                       r": SQuAD v1.1 scoring needs one \(v2.0 data needs "
                       r"--version_2_with_negative\)"):
        m.evaluate_v1(_v2_data(("x", [])), {"x": ""})


def test_answer_text_ends_at_the_last_character_of_its_token():
    # "dog" at [4, 7) is followed by "," with no space: strip() cannot
    # hide a span cut one character too long.
    text = "the dog,ran."
    feats = [feature(1, 0, [1, 1, 1], starts=[0, 4, 8], ends=[2, 6, 10])]
    start = np.full((1, 7), -20.0)
    end = np.full((1, 7), -20.0)
    start[0, 4], end[0, 4] = 5.0, 5.0  # "dog"
    preds, nbest = m.predict_v1([Example("q", text)], feats, np.array([1]),
                                start, end, n_best_size=3,
                                max_answer_length=3)
    assert preds["q"] == "dog"
    start[0, 4], end[0, 5] = 5.0, 9.0  # "dog,ran"
    preds, _ = m.predict_v1([Example("q", text)], feats, np.array([1]),
                            start, end, n_best_size=3, max_answer_length=3)
    assert preds["q"] == "dog,ran"


def test_na_prob_thresh_without_na_probs_forces_nothing():
    data = _v2_data(("h", ["cat"]), ("n", []))
    result = m.evaluate_v2(data, {"h": "cat", "n": "emu"},
                           na_prob_thresh=0.5)
    assert result["exact"] == pytest.approx(50.0)  # h right, n wrong.
    assert result["HasAns_exact"] == pytest.approx(100.0)


def test_default_n_best_size_is_twenty():
    # 30 single-token spans, all valid: the n-best holds 20 of them.
    n = 30
    text = " ".join(f"w{i:02d}" for i in range(n))
    starts = [4 * i for i in range(n)]
    ends = [4 * i + 2 for i in range(n)]
    feats = [feature(1, 0, [1] * n, starts=starts, ends=ends)]
    width = 3 + n + 1
    start = np.full((1, width), -50.0)
    end = np.full((1, width), -50.0)
    start[0, 3:3 + n] = np.arange(n, 0, -1)  # w00 best, then w01, ...
    end[0, 3:3 + n] = np.arange(n, 0, -1)
    preds, nbest = m.predict_v1([Example("q", text)], feats, np.array([1]),
                                start, end, max_answer_length=1)
    assert len(nbest["q"]) == 20
    assert [e["text"] for e in nbest["q"]] == [f"w{i:02d}"
                                               for i in range(20)]


def test_predict_v2_default_beam_is_five_by_five():
    feats = [feature(1, 0, [1, 1, 1, 1])]
    start_index = np.array([[4, 5, 6, 3, 0]])
    end_index = np.tile(np.array([6, 5, 4, 3, 0]), 5)[None, :]  # [1, 25]
    best, nbest, _ = m.predict_v2(
        [Example("q", TEXT)], feats, np.array([1]),
        -np.arange(5.0)[None, :], start_index,
        -np.arange(25.0)[None, :] / 10, end_index, np.array([0.0]))
    # Best: start 4 (big, 0.0) with its first end 6 (ran, 0.0).
    assert best["q"] == "big dog ran"
    assert len(nbest["q"]) == 10  # Every distinct valid span (start <= end).


def test_a_span_proposed_twice_gets_the_mean_of_its_scores():
    """squad_utils accumulates a repeated (start, end) and averages it."""
    feats = [feature(1, 0, [1, 1, 1, 1])]
    _, nbest, _ = m.predict_v2(
        [Example("q", TEXT)], feats, np.array([1]),
        np.array([[-0.1, -0.3]]), np.array([[4, 4]]),
        np.array([[-0.2, -0.4]]), np.array([[5, 5]]), np.array([0.0]),
        start_n_top=2, end_n_top=1)
    assert [e["text"] for e in nbest["q"]] == ["big dog"]
    assert nbest["q"][0]["start_log_prob"] == pytest.approx(-0.2)
    assert nbest["q"][0]["end_log_prob"] == pytest.approx(-0.3)
