"""SQuAD prediction (n-best, v2 null odds) and the official EM/F1 scoring.

Pure NumPy/Python, so runners, exports and tests call the same functions.
Algorithms from google-research/albert `squad_utils.py`
(`accumulate_predictions_v1/v2`, `write_predictions_v1/v2`, `evaluate_v2`)
and the official SQuAD v1.1 / v2.0 evaluation scripts, re-implemented:

* v1: per window, the top n_best_size start and end logits (of the real
  tokens only, not the padding: a deliberate deviation); spans that
  start outside the window's context or where it lacks max context, end
  before they start or are longer than max_answer_length are dropped;
  the rest are ranked by start + end logit over all windows; text is
  `paragraph_text[orig_start:orig_end + 1].strip()` through the alignment.
* v2: the XLNet-style beam (start_n_top x end_n_top from the head's top-k
  outputs), likewise filtered; an example's null score is the min over its
  windows of cls_logits (`null_odds.json`); the answer is "" when the null
  score is >= null_score_diff_threshold.

`features` are the dicts of `albert_tf.data.squad.read_eval_features`
(unique_id, example_index, doc_offset, tok_start_to_orig_index,
tok_end_to_orig_index, token_is_max_context); `examples` are anything
with `.qas_id` and `.paragraph_text` (data.squad.SquadExample), indexed by
example_index. `dataset` is the "data" list of the SQuAD JSON.

Legend: F = features, L = max_seq_length, S = start_n_top, E = end_n_top.
"""

from __future__ import annotations

import collections
import json
import math
import re
import string
from typing import Any, Iterable, Mapping, Optional, Sequence

from absl import logging
import numpy as np

NA_PROB_THRESH = 1.0  # The official v2 script's default --na-prob-thresh.


# --- Prediction -------------------------------------------------------------

def best_indexes(logits: Sequence[float], n_best_size: int) -> list[int]:
    """Indices of the n largest logits; ties keep the lower index first."""
    order = np.argsort(-np.asarray(logits, np.float64), kind="stable")
    return [int(i) for i in order[:n_best_size]]


def num_real_tokens(feature: Mapping) -> int:
    """`[CLS] query [SEP] window [SEP]`: the positions input_mask covers."""
    return feature["doc_offset"] + len(feature["tok_start_to_orig_index"]) + 1


def softmax(scores: Sequence[float]) -> list[float]:
    """squad_utils._compute_softmax, in float64."""
    if not scores:
        return []
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _features_by_example(features: Sequence[Mapping], num_examples: int
                         ) -> list[list[Mapping]]:
    grouped: list[list[Mapping]] = [[] for _ in range(num_examples)]
    for feature in features:
        index = feature["example_index"]
        if not 0 <= index < num_examples:
            raise ValueError(f"feature {feature['unique_id']} has "
                             f"example_index {index}, but there are "
                             f"{num_examples} examples")
        grouped[index].append(feature)
    return grouped


def _rows_by_unique_id(unique_ids: Sequence[int]) -> dict[int, int]:
    return {int(u): row for row, u in enumerate(np.asarray(unique_ids))}


def _row(rows: Mapping[int, int], feature: Mapping) -> int:
    try:
        return rows[feature["unique_id"]]
    except KeyError:
        raise ValueError(f"no model output for feature unique_id "
                         f"{feature['unique_id']}") from None


def _span_ok(feature: Mapping, start: int, end: int,
             max_answer_length: int) -> bool:
    # The original's filters. A start before the context is rejected in
    # v2 explicitly and in v1 by token_is_max_context (no entry there).
    offset = feature["doc_offset"]
    num_doc = len(feature["tok_start_to_orig_index"])
    if start - offset >= num_doc or end - offset >= num_doc:
        return False
    if start < offset:
        return False
    if not feature["token_is_max_context"][start - offset]:
        return False
    return start <= end and end - start + 1 <= max_answer_length


class _SpanScores:
    """One window's candidate spans, as the original's result_dict: a span
    proposed twice (possible in the v2 beam) keeps its first place and the
    mean of its scores."""

    def __init__(self, position: int):
        self.position = position
        self.scores: dict = {}

    def add(self, start_idx: int, end_idx: int, start: float,
            end: float) -> None:
        self.scores.setdefault((start_idx, end_idx), []).append((start, end))

    def averaged(self) -> list[tuple]:
        out = []
        for (start_idx, end_idx), pairs in self.scores.items():
            start = end = 0
            for s, e in pairs:
                start += s
                end += e
            out.append((self.position, start_idx, end_idx,
                        start / len(pairs), end / len(pairs)))
        return out


def _nbest(example, features: Sequence[Mapping], prelim: list,
           n_best_size: int) -> list[dict]:
    """prelim: (feature_position, start_idx, end_idx, start, end) with
    context-relative indices, in the original's insertion order."""
    prelim = sorted(prelim, key=lambda p: p[3] + p[4], reverse=True)
    seen = set()
    nbest = []
    for position, start_idx, end_idx, start_score, end_score in prelim:
        if len(nbest) >= n_best_size:
            break
        feature = features[position]
        orig_start = feature["tok_start_to_orig_index"][start_idx]
        orig_end = feature["tok_end_to_orig_index"][end_idx]
        text = example.paragraph_text[orig_start:orig_end + 1].strip()
        if text in seen:
            continue
        seen.add(text)
        nbest.append((text, start_score, end_score))
    return nbest


def _nbest_json(nbest: list) -> list[dict]:
    probs = softmax([s + e for _, s, e in nbest])
    return [collections.OrderedDict(text=text, probability=prob,
                                    start_log_prob=s, end_log_prob=e)
            for (text, s, e), prob in zip(nbest, probs)]


def predict_v1(examples: Sequence, features: Sequence[Mapping],
               unique_ids: Sequence[int], start_logits: np.ndarray,
               end_logits: np.ndarray, n_best_size: int = 20,
               max_answer_length: int = 30
               ) -> tuple[collections.OrderedDict, collections.OrderedDict]:
    """Model outputs -> (predictions, nbest) as the original's v1 files.

    Args:
      unique_ids: int [F], the unique_ids the model saw, row by row.
      start_logits, end_logits: float [F, L].
    Returns:
      predictions: qas_id -> answer text (predictions.json);
      nbest: qas_id -> list of {text, probability, start_log_prob,
        end_log_prob} (nbest_predictions.json). An example without any
        valid span gets the original's placeholder "empty".
    """
    start_logits = np.asarray(start_logits, np.float64)  # [F, L]
    end_logits = np.asarray(end_logits, np.float64)  # [F, L]
    rows = _rows_by_unique_id(unique_ids)
    predictions = collections.OrderedDict()
    all_nbest = collections.OrderedDict()
    grouped = _features_by_example(features, len(examples))
    for example, feats in zip(examples, grouped):
        prelim = []
        for position, feature in enumerate(feats):
            row = _row(rows, feature)
            # Deliberate deviation: squad_utils.write_predictions ranks
            # (_get_best_indexes) the top n_best_size over all
            # max_seq_length positions, padding included, and drops the
            # invalid ones afterwards, so padding logits can crowd real
            # candidates out. Ranking only the window's real tokens
            # makes the result independent of padding (dynamic padding
            # cuts it); only spans inside them are ever valid.
            real = num_real_tokens(feature)
            starts = best_indexes(start_logits[row, :real], n_best_size)
            ends = best_indexes(end_logits[row, :real], n_best_size)
            offset = feature["doc_offset"]
            spans = _SpanScores(position)
            for start in starts:
                for end in ends:
                    if _span_ok(feature, start, end, max_answer_length):
                        spans.add(start - offset, end - offset,
                                  float(start_logits[row, start]),
                                  float(end_logits[row, end]))
            prelim.extend(spans.averaged())
        nbest = _nbest(example, feats, prelim, n_best_size)
        if not nbest:
            nbest = [("empty", 0.0, 0.0)]
        entries = _nbest_json(nbest)
        predictions[example.qas_id] = entries[0]["text"]
        all_nbest[example.qas_id] = entries
    return predictions, all_nbest


def predict_v2(examples: Sequence, features: Sequence[Mapping],
               unique_ids: Sequence[int], start_top_log_probs: np.ndarray,
               start_top_index: np.ndarray, end_top_log_probs: np.ndarray,
               end_top_index: np.ndarray, cls_logits: np.ndarray,
               n_best_size: int = 20, max_answer_length: int = 30,
               start_n_top: int = 5, end_n_top: int = 5
               ) -> tuple[collections.OrderedDict, collections.OrderedDict,
                          collections.OrderedDict]:
    """v2 head outputs -> (best_texts, nbest, null_odds).

    Args:
      start_top_log_probs, start_top_index: [F, S].
      end_top_log_probs, end_top_index: [F, S * E] (row i * E + j is the
        j-th end for the i-th start), as the original head.
      cls_logits: [F].
    Returns:
      best_texts: qas_id -> best span text, with no null threshold applied
        (`apply_null_threshold` makes predictions.json from it);
      nbest: as predict_v1 (placeholder "" with -1e6 scores, as the
        original, when no span is valid);
      null_odds: qas_id -> min over the example's windows of cls_logits
        (1e6 when it has none), the original's null_odds.json.
    """
    start_top_log_probs = np.asarray(start_top_log_probs, np.float64)
    end_top_log_probs = np.asarray(end_top_log_probs, np.float64)
    start_top_index = np.asarray(start_top_index)
    end_top_index = np.asarray(end_top_index)
    cls_logits = np.asarray(cls_logits, np.float64).reshape(-1)  # [F]
    if end_top_index.shape[-1] != start_n_top * end_n_top:
        raise ValueError(f"end_top_index has {end_top_index.shape[-1]} "
                         f"entries per feature, expected start_n_top * "
                         f"end_n_top = {start_n_top} * {end_n_top}")
    rows = _rows_by_unique_id(unique_ids)
    best_texts = collections.OrderedDict()
    all_nbest = collections.OrderedDict()
    null_odds = collections.OrderedDict()
    grouped = _features_by_example(features, len(examples))
    for example, feats in zip(examples, grouped):
        prelim = []
        score_null = 1000000.0  # As the original: "large and positive".
        for position, feature in enumerate(feats):
            row = _row(rows, feature)
            score_null = min(score_null, float(cls_logits[row]))
            offset = feature["doc_offset"]
            spans = _SpanScores(position)
            for i in range(start_n_top):
                start = int(start_top_index[row, i])
                for j in range(end_n_top):
                    end = int(end_top_index[row, i * end_n_top + j])
                    if _span_ok(feature, start, end, max_answer_length):
                        spans.add(start - offset, end - offset,
                                  float(start_top_log_probs[row, i]),
                                  float(end_top_log_probs[
                                      row, i * end_n_top + j]))
            prelim.extend(spans.averaged())
        nbest = _nbest(example, feats, prelim, n_best_size)
        if not nbest:
            nbest = [("", -1e6, -1e6)]
        entries = _nbest_json(nbest)
        # The original's "best_non_null_entry" is simply the first entry.
        best_texts[example.qas_id] = entries[0]["text"]
        all_nbest[example.qas_id] = entries
        null_odds[example.qas_id] = score_null
    return best_texts, all_nbest, null_odds


def apply_null_threshold(best_texts: Mapping[str, str],
                         null_odds: Mapping[str, float],
                         threshold: Optional[float]
                         ) -> collections.OrderedDict:
    """"" where null_odds >= threshold, as write_predictions_v2 (None: none)."""
    return collections.OrderedDict(
        (qid, text if threshold is None or null_odds[qid] < threshold
         else "") for qid, text in best_texts.items())


def to_json_text(value: Any) -> str:
    """The original's file layout: json.dumps(indent=4) plus a newline."""
    return json.dumps(value, indent=4) + "\n"


# --- Official evaluation ----------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lowercase, drop ASCII punctuation and a/an/the, collapse spaces."""
    s = "".join(c for c in s.lower() if c not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", s).split())


def _tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def exact_score(prediction: str, gold: str) -> int:
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str, v2: bool = False) -> float:
    """Token F1 after normalisation. v2: an empty side scores 1 only if
    both are empty (the v1.1 script gives 0)."""
    pred_tokens, gold_tokens = _tokens(prediction), _tokens(gold)
    if v2 and (not pred_tokens or not gold_tokens):
        return float(pred_tokens == gold_tokens)
    common = (collections.Counter(pred_tokens) &
              collections.Counter(gold_tokens))
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _questions(dataset: Iterable[Mapping]) -> Iterable[Mapping]:
    for article in dataset:
        for paragraph in article["paragraphs"]:
            yield from paragraph["qas"]


def evaluate_v1(dataset: Sequence[Mapping],
                predictions: Mapping[str, str]) -> dict:
    """The official v1.1 script: {"exact_match", "f1"} in percent.

    Max over gold answers; a question without a prediction scores 0.
    """
    exact = f1 = 0.0
    total = missing = 0
    for qa in _questions(dataset):
        total += 1
        if qa["id"] not in predictions:
            missing += 1
            continue
        golds = [a["text"] for a in qa["answers"]]
        if not golds:
            raise ValueError(
                f"question {qa['id']!r} has no gold answer: SQuAD v1.1 "
                "scoring needs one (v2.0 data needs "
                "--version_2_with_negative)")
        prediction = predictions[qa["id"]]
        exact += max(exact_score(prediction, g) for g in golds)
        f1 += max(f1_score(prediction, g) for g in golds)
    if missing:
        logging.warning("%d of %d questions have no prediction; they score 0",
                        missing, total)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}


def has_answer_by_qid(dataset: Sequence[Mapping]) -> dict[str, bool]:
    return {qa["id"]: bool(qa["answers"]) for qa in _questions(dataset)}


def raw_scores_v2(dataset: Sequence[Mapping], predictions: Mapping[str, str]
                  ) -> tuple[dict, dict]:
    """Per-question (exact, f1) of the v2 script; "" is the no-answer gold.

    Unlike the official script, a missing prediction scores 0 (it skipped
    the question, shrinking the total).
    """
    exact, f1 = {}, {}
    missing = 0
    for qa in _questions(dataset):
        qid = qa["id"]
        golds = [a["text"] for a in qa["answers"]
                 if normalize_answer(a["text"])] or [""]
        if qid not in predictions:
            missing += 1
            exact[qid], f1[qid] = 0, 0.0
            continue
        prediction = predictions[qid]
        exact[qid] = max(exact_score(prediction, g) for g in golds)
        f1[qid] = max(f1_score(prediction, g, v2=True) for g in golds)
    if missing:
        logging.warning("%d questions have no prediction; they score 0",
                        missing)
    return exact, f1


def apply_no_answer_threshold(scores: Mapping[str, float],
                              na_probs: Mapping[str, float],
                              has_answer: Mapping[str, bool],
                              na_prob_thresh: float) -> dict:
    """Questions with na_prob > thresh are scored as a no-answer guess."""
    return {qid: (float(not has_answer[qid])
                  if na_probs.get(qid, 0.0) > na_prob_thresh else s)
            for qid, s in scores.items()}


def _summary(exact: Mapping, f1: Mapping,
             qids: Optional[Sequence[str]] = None) -> dict:
    qids = list(exact) if qids is None else qids
    total = len(qids)
    return collections.OrderedDict(
        exact=100.0 * sum(exact[q] for q in qids) / total,
        f1=100.0 * sum(f1[q] for q in qids) / total, total=total)


def best_threshold(predictions: Mapping[str, str], scores: Mapping,
                   na_probs: Mapping[str, float],
                   has_answer: Mapping[str, bool]) -> tuple[float, float]:
    """The v2 script's find_best_thresh: sweep na_probs in increasing
    order; returns (best score in percent, its threshold)."""
    score = best = sum(1 for q in has_answer if not has_answer[q])
    best_thresh = 0.0
    for qid in sorted(na_probs, key=lambda q: na_probs[q]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            score += scores[qid]
        elif predictions[qid]:
            score -= 1
        if score > best:
            best, best_thresh = score, na_probs[qid]
    return 100.0 * best / len(scores), best_thresh


def evaluate_v2(dataset: Sequence[Mapping], predictions: Mapping[str, str],
                na_probs: Optional[Mapping[str, float]] = None,
                na_prob_thresh: float = NA_PROB_THRESH) -> dict:
    """The official v2.0 script's output dict (percentages).

    exact, f1, total; HasAns_* and NoAns_* when such questions exist; with
    na_probs also best_exact(_thresh) and best_f1(_thresh) and the
    na_prob_thresh rule (without na_probs nothing is forced to no-answer).
    """
    has_answer = has_answer_by_qid(dataset)
    exact_raw, f1_raw = raw_scores_v2(dataset, predictions)
    probs = na_probs if na_probs is not None else {}
    exact = apply_no_answer_threshold(exact_raw, probs, has_answer,
                                      na_prob_thresh)
    f1 = apply_no_answer_threshold(f1_raw, probs, has_answer, na_prob_thresh)
    out = _summary(exact, f1)
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [q for q, has in has_answer.items() if has == wanted]
        if qids:
            for key, value in _summary(exact, f1, qids).items():
                out[f"{prefix}_{key}"] = value
    if na_probs is not None:
        out["best_exact"], out["best_exact_thresh"] = best_threshold(
            predictions, exact_raw, na_probs, has_answer)
        out["best_f1"], out["best_f1_thresh"] = best_threshold(
            predictions, f1_raw, na_probs, has_answer)
    return out


def evaluate_v2_with_thresholds(dataset: Sequence[Mapping],
                                best_texts: Mapping[str, str],
                                null_odds: Mapping[str, float],
                                null_score_diff_threshold: float = 0.0
                                ) -> tuple[dict, collections.OrderedDict]:
    """Both v2 protocols, clearly named. Returns (metrics, predictions).

    predictions (for predictions.json) use the fixed
    null_score_diff_threshold. metrics:
      exact, f1, total, HasAns_*, NoAns_*: the official script on those
        predictions (what scoring predictions.json independently gives);
      null_score_diff_threshold: the fixed threshold;
      best_exact, best_exact_thresh, best_f1, best_f1_thresh: the official
        threshold sweep over the unthresholded answers and null_odds;
      dev_tuned_exact, dev_tuned_f1, dev_tuned_null_score_diff_threshold:
        the original run_squad_v2 protocol (squad_utils.evaluate_v2):
        threshold = best_f1_thresh tuned on this same set, predictions
        redone with it, rescored with na_prob_thresh = 1.0 on the null
        odds. An oracle on dev; the published numbers are these.
    """
    predictions = apply_null_threshold(best_texts, null_odds,
                                       null_score_diff_threshold)
    metrics = evaluate_v2(dataset, predictions)
    metrics["null_score_diff_threshold"] = null_score_diff_threshold
    # The original's first pass: no threshold, official sweep.
    swept = evaluate_v2(dataset, best_texts, null_odds)
    for key in ("best_exact", "best_exact_thresh", "best_f1",
                "best_f1_thresh"):
        metrics[key] = swept[key]
    # Its second pass: rethreshold at the tuned value and rescore.
    tuned = apply_null_threshold(best_texts, null_odds,
                                 swept["best_f1_thresh"])
    rescored = evaluate_v2(dataset, tuned, null_odds)
    metrics["dev_tuned_exact"] = rescored["exact"]
    metrics["dev_tuned_f1"] = rescored["f1"]
    metrics["dev_tuned_null_score_diff_threshold"] = swept["best_f1_thresh"]
    return metrics, predictions
