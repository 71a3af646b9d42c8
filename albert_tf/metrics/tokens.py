"""Token classification metrics: entity-level scores from seqeval.

Entity precision, recall and F1 are seqeval's defaults (`mode=None`),
which reproduce the CoNLL shared tasks' conlleval script: a predicted
entity counts only if its type and both boundaries match a gold one, and
I- tags after O or another type open an entity (IOB1 and IOB2 both
score). The checkpoint is chosen by `eval_f1`, micro-averaged over
entity types. `eval_accuracy` is the fraction of words whose tag is
right (the usual POS metric), over every word, truncated ones included.

Also here: `chunk_tables`, seqeval's chunk rules as lookup tables, which
the serving signature (export_tokens) uses to decode entities in-graph.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from seqeval import metrics as seqeval_metrics
from seqeval.metrics import sequence_labeling

KEY_METRIC = "eval_f1"

# seqeval's tag prefixes (sequence_labeling.start_of_chunk /
# end_of_chunk); any other first character behaves as OTHER does there.
PREFIXES = ("O", "B", "I", "E", "S", ".", "other")
PREFIX_CODE = {prefix: code for code, prefix in enumerate(PREFIXES)}


def entity_scores(gold: Sequence[Sequence[str]],
                  predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """eval_precision / eval_recall / eval_f1 (entities, seqeval) and
    eval_accuracy (words), plus the gold and predicted entity counts."""
    gold = [list(tags) for tags in gold]
    predicted = [list(tags) for tags in predicted]
    if len(gold) != len(predicted) or any(
            len(g) != len(p) for g, p in zip(gold, predicted)):
        raise ValueError("gold and predicted tags differ in shape: "
                         f"{len(gold)} vs {len(predicted)} sentences")
    words = sum(len(g) for g in gold)
    correct = sum(a == b for g, p in zip(gold, predicted)
                  for a, b in zip(g, p))
    return {
        "eval_precision": float(seqeval_metrics.precision_score(
            gold, predicted, zero_division=0)),
        "eval_recall": float(seqeval_metrics.recall_score(
            gold, predicted, zero_division=0)),
        "eval_f1": float(seqeval_metrics.f1_score(
            gold, predicted, zero_division=0)),
        "eval_accuracy": correct / max(words, 1),
        "num_gold_entities": float(sum(
            len(entities(g)) for g in gold)),
        "num_predicted_entities": float(sum(
            len(entities(p)) for p in predicted)),
    }


def per_type_f1(gold: Sequence[Sequence[str]],
                predicted: Sequence[Sequence[str]]) -> dict[str, dict]:
    """{type: {precision, recall, f1-score, support}} (seqeval's report)."""
    report = seqeval_metrics.classification_report(
        [list(t) for t in gold], [list(t) for t in predicted],
        output_dict=True, zero_division=0)
    return {name: {k: float(v) for k, v in values.items()}
            for name, values in report.items()}


def entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word) of each entity, seqeval's decoding."""
    return [tuple(e) for e in sequence_labeling.get_entities(list(tags))]


def split_tag(tag: str) -> tuple[str, str]:
    """(prefix, type) as seqeval reads a tag (`suffix=False`): the first
    character and what follows its first '-' ('_' when nothing does)."""
    prefix = tag[0] if tag else ""
    kind = tag[1:].split("-", maxsplit=1)[-1] or "_"
    return (prefix if prefix in PREFIX_CODE else "other"), kind


def chunk_tables(label_list: Sequence[str]
                 ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per label id: prefix code [C] and type id [C] (int32), and the
    type names, for in-graph decoding with seqeval's rules. Type 0 is
    "_", the type of "O" (and of the "O" seqeval appends at the end)."""
    kinds: list[str] = ["_"]
    prefixes, type_ids = [], []
    for tag in label_list:
        prefix, kind = split_tag(tag)
        if kind not in kinds:
            kinds.append(kind)
        prefixes.append(PREFIX_CODE[prefix])
        type_ids.append(kinds.index(kind))
    return (np.array(prefixes, np.int32), np.array(type_ids, np.int32),
            kinds)
