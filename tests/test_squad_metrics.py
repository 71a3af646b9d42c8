"""SQuAD prediction and scoring on hand-worked cases."""

import collections
import json

import numpy as np
import pytest

from albert_tf.metrics import squad as m

Example = collections.namedtuple("Example", ["qas_id", "paragraph_text"])


def dataset(*questions):
    """questions: (id, [gold texts])."""
    return [{"paragraphs": [{"context": "unused", "qas": [
        {"id": qid, "question": "?",
         "answers": [{"text": t, "answer_start": 0} for t in golds]}
        for qid, golds in questions]}]}]


def test_normalize_answer():
    assert m.normalize_answer("The  Cat, a dog!") == "cat dog"
    assert m.normalize_answer("An apple-pie.") == "applepie"
    # Only whole-word articles go; "theatre" stays.
    assert m.normalize_answer("the theatre") == "theatre"


def test_exact_and_f1_hand_computed():
    assert m.exact_score("The Cat.", "cat") == 1
    # pred {cat, sat}, gold {cat, sat, down}: P = 1, R = 2/3, F1 = 0.8.
    assert m.f1_score("the cat sat", "a cat sat down") == pytest.approx(0.8)
    # Repeated tokens count by multiplicity: pred {x x y}, gold {x y y}:
    # common = {x:1, y:1} = 2; P = 2/3, R = 2/3.
    assert m.f1_score("x x y", "x y y") == pytest.approx(2 / 3)
    assert m.f1_score("", "cat") == 0.0
    assert m.f1_score("", "", v2=True) == 1.0
    assert m.f1_score("cat", "", v2=True) == 0.0


def test_evaluate_v1_max_over_golds_and_missing():
    data = dataset(("a", ["Denver Broncos", "Broncos"]),
                   ("b", ["the red house"]), ("c", ["x"]))
    preds = {"a": "broncos", "b": "red house on hill"}  # c is missing.
    # a: EM 1, F1 1. b: EM 0, F1: P = 2/4, R = 2/2 -> 2/3. c: 0.
    result = m.evaluate_v1(data, preds)
    assert result["exact_match"] == pytest.approx(100 / 3)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    with pytest.raises(ValueError, match="'n' has no gold answer"):
        m.evaluate_v1(dataset(("n", [])), {"n": ""})


def test_evaluate_v2_empty_predictions_breakdown_and_thresholds():
    data = dataset(("h1", ["cat"]), ("h2", ["big dog"]), ("n1", []),
                   ("n2", []))
    preds = {"h1": "cat", "h2": "dog", "n1": "", "n2": "bird"}
    result = m.evaluate_v2(data, preds)
    # EM: h1 1, h2 0, n1 1 (empty vs empty), n2 0. F1 h2: P 1, R 1/2.
    assert result["exact"] == pytest.approx(50.0)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1) / 4)
    assert result["HasAns_total"] == 2 and result["NoAns_total"] == 2
    assert result["HasAns_exact"] == pytest.approx(50.0)
    assert result["NoAns_f1"] == pytest.approx(50.0)
    assert "best_f1" not in result
    # Null odds: sweep in increasing order h1 (0.1), n2 (0.5), h2 (0.7),
    # n1 (0.9). Start at 2 (no-answer count); +1 (h1) = 3; n2 has a
    # non-empty prediction -> -1 = 2; h2 +0 (EM) = 2; n1 empty -> 2.
    # Best EM 3/4 at threshold 0.1.
    odds = {"h1": 0.1, "n2": 0.5, "h2": 0.7, "n1": 0.9}
    result = m.evaluate_v2(data, preds, odds)
    assert result["best_exact"] == pytest.approx(75.0)
    assert result["best_exact_thresh"] == pytest.approx(0.1)
    # F1 sweep: 2 + 1 = 3 (0.1), 2 (0.5), 2 + 2/3 (0.7), same (0.9).
    assert result["best_f1"] == pytest.approx(75.0)
    assert result["best_f1_thresh"] == pytest.approx(0.1)
    # na_prob_thresh: odds above 1.0 count as a no-answer guess.
    forced = m.evaluate_v2(data, preds, {"h1": 2.0, "n2": 3.0, "h2": 0.0,
                                         "n1": 0.0})
    assert forced["exact"] == pytest.approx(50.0)  # h1 lost, n2 gained.


def test_fixed_and_dev_tuned_thresholds_are_both_reported():
    data = dataset(("h1", ["cat"]), ("h2", ["dog"]), ("n1", []))
    best = {"h1": "cat", "h2": "dog", "n1": "emu"}
    odds = {"h1": -2.0, "h2": 0.5, "n1": 0.8}
    metrics, preds = m.evaluate_v2_with_thresholds(data, best, odds, 0.0)
    # Fixed 0.0: h2 (0.5) and n1 (0.8) become "" -> h1 1, h2 0, n1 1.
    assert preds == {"h1": "cat", "h2": "", "n1": ""}
    assert metrics["exact"] == pytest.approx(200 / 3)
    assert metrics["null_score_diff_threshold"] == 0.0
    # Sweep: start 1; h1 +1 = 2 (-2.0); h2 +1 = 3 (0.5); n1 -1 = 2.
    assert metrics["best_f1"] == pytest.approx(100.0)
    assert metrics["best_f1_thresh"] == 0.5
    # The original then predicts "" where odds >= 0.5: h2 and n1.
    assert metrics["dev_tuned_null_score_diff_threshold"] == 0.5
    assert metrics["dev_tuned_exact"] == pytest.approx(200 / 3)
    assert m.apply_null_threshold(best, odds, None) == best


def feature(uid, example_index, doc_offset, starts, ends, max_context):
    return {"unique_id": uid, "example_index": example_index,
            "doc_offset": doc_offset, "tok_start_to_orig_index": starts,
            "tok_end_to_orig_index": ends,
            "token_is_max_context": max_context}


# "the big dog ran": tokens at characters [0,3) [4,7) [8,11) [12,15).
TEXT = "the big dog ran"
STARTS, ENDS = [0, 4, 8, 12], [2, 6, 10, 14]


def test_predict_v1_filters_and_ranking():
    examples = [Example("q", TEXT), Example("none", TEXT)]
    # Input layout: [CLS] q1 [SEP] the big dog ran [SEP] pad -> offset 3.
    feats = [feature(7, 0, 3, STARTS, ENDS, [1, 1, 1, 0]),
             feature(8, 1, 3, STARTS, ENDS, [0, 0, 0, 0])]
    start = np.full((2, 9), -9.0, np.float32)
    end = np.full((2, 9), -9.0, np.float32)
    start[0, 1] = 9.0  # In the question: dropped.
    start[0, 6] = 8.0  # "ran": not max context: dropped.
    start[0, 4] = 3.0  # "big"
    start[0, 5] = 2.0  # "dog"
    end[0, 5] = 4.0  # "dog"
    end[0, 3] = 6.0  # "the": before every start but "the": dropped.
    end[0, 6] = 1.0
    results = (np.array([8, 7]), start[::-1], end[::-1])  # any row order
    preds, nbest = m.predict_v1(examples, feats, *results, n_best_size=4,
                                max_answer_length=2)
    # Top-4 starts 1, 6, 4, 5; ends 3, 5, 6, 0 (ties: lower index first).
    # big..dog = 7; dog..dog = 6; big..ran is 3 long (> 2): dropped;
    # dog..ran = 3.
    assert preds["q"] == "big dog"
    assert [e["text"] for e in nbest["q"]] == ["big dog", "dog", "dog ran"]
    scores = np.array([7.0, 6.0, 3.0])
    probs = np.exp(scores - scores.max()) / np.exp(scores - 7).sum()
    np.testing.assert_allclose([e["probability"] for e in nbest["q"]],
                               probs)
    assert nbest["q"][0]["start_log_prob"] == 3.0
    # No max-context token at all: the original's placeholder.
    assert preds["none"] == "empty"
    json.loads(m.to_json_text(nbest))


def test_predict_v2_beam_and_null_odds():
    examples = [Example("q", TEXT)]
    feats = [feature(1, 0, 3, STARTS, ENDS, [1, 1, 0, 0]),
             feature(2, 0, 3, STARTS, ENDS, [0, 0, 1, 1])]
    # start_n_top = 2, end_n_top = 2.
    start_top_log_probs = np.array([[-0.1, -1.0], [-0.2, -3.0]])
    start_top_index = np.array([[4, 0], [5, 6]])  # 0 is [CLS]: dropped.
    end_top_log_probs = np.array([[-0.5, -0.6, -0.1, -0.1],
                                  [-0.1, -2.0, -0.3, -0.4]])
    end_top_index = np.array([[5, 4, 0, 1], [5, 6, 6, 5]])
    cls_logits = np.array([0.3, -1.5])
    best, nbest, odds = m.predict_v2(
        examples, feats, np.array([1, 2]), start_top_log_probs,
        start_top_index, end_top_log_probs, end_top_index, cls_logits,
        n_best_size=5, max_answer_length=3, start_n_top=2, end_n_top=2)
    # Candidates: f1 big..dog -0.6, big..big -0.7; f2 dog..dog -0.3,
    # dog..ran -2.2, ran..ran (-3.0 - 0.3), ran..dog (end < start).
    assert [e["text"] for e in nbest["q"]] == [
        "dog", "big dog", "big", "dog ran", "ran"]
    assert best["q"] == "dog"
    assert odds["q"] == -1.5  # min over the two windows.
    assert m.apply_null_threshold(best, odds, -2.0) == {"q": ""}
    assert m.apply_null_threshold(best, odds, 0.0) == {"q": "dog"}
    with pytest.raises(ValueError, match="start_n_top"):
        m.predict_v2(examples, feats, np.array([1, 2]), start_top_log_probs,
                     start_top_index, end_top_log_probs, end_top_index,
                     cls_logits, start_n_top=3, end_n_top=2)


def test_missing_model_output_is_an_error():
    feats = [feature(1, 0, 3, STARTS, ENDS, [1, 1, 1, 1])]
    with pytest.raises(ValueError, match="unique_id 1"):
        m.predict_v1([Example("q", TEXT)], feats, np.array([2]),
                     np.zeros((1, 8)), np.zeros((1, 8)))


def test_predict_v1_ranks_only_real_tokens():
    """Padding logits (positions after the last [SEP]) never crowd a real
    span out of the n-best: a deliberate deviation from the original's
    _get_best_indexes over all max_seq_length positions."""
    examples = [Example("q", TEXT)]
    feats = [feature(7, 0, 3, STARTS, ENDS, [1, 1, 1, 1])]
    start = np.full((1, 12), -9.0, np.float32)  # 8 real positions + 4 pad.
    end = np.full((1, 12), -9.0, np.float32)
    start[0, 5], end[0, 6] = 1.0, 1.0  # "dog ran"
    start[0, 8:], end[0, 8:] = 50.0, 50.0  # Padding: higher than any.
    preds, _ = m.predict_v1(examples, feats, np.array([7]), start, end,
                            n_best_size=2, max_answer_length=3)
    assert preds["q"] == "dog ran"
    # The same outputs cut to the real tokens (dynamic padding) agree.
    cut, _ = m.predict_v1(examples, feats, np.array([7]), start[:, :8],
                          end[:, :8], n_best_size=2, max_answer_length=3)
    assert cut == preds
