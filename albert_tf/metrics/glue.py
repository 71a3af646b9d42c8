"""GLUE evaluation metrics as pure NumPy functions of predictions and labels.

The original computed these with streaming `tf.metrics` inside the
Estimator's `metric_fn` (classifier_utils.model_fn_builder); here the eval
loop gathers predictions and calls `task_metrics` once, so the metrics are
testable without TensorFlow. Every function takes `weights` (the features'
`is_real_example`), so fake padding examples count for nothing, as the
original's `weights=is_real_example`.

Names are the original's result keys (`eval_accuracy`, `matthew_corr`,
`pearson`, `MSE`, `eval_loss`). Two additions: STS-B also reports
`spearman` and MRPC/QQP also report `f1`, the numbers GLUE publishes for
those tasks; the original's metric_fn had neither.

Legend: N examples, C labels.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

# The metric that picks the best checkpoint, as run_classifier's `key_name`.
KEY_METRIC = {
    "cola": "matthew_corr",
    "sts-b": "pearson",
    **{task: "eval_accuracy"
       for task in ("mnli", "mismnli", "mrpc", "sst-2", "qqp", "qnli", "rte",
                    "wnli", "ax")},
}
REGRESSION_TASKS = ("sts-b",)
F1_TASKS = ("mrpc", "qqp")  # Added: the original reports accuracy only.


def _weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n, np.float64)
    weights = np.asarray(weights, np.float64).reshape(-1)
    if weights.shape[0] != n:
        raise ValueError(f"weights has {weights.shape[0]} entries, "
                         f"predictions have {n}")
    return weights


def _flat(predictions, labels) -> tuple[np.ndarray, np.ndarray]:
    predictions = np.asarray(predictions).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if predictions.shape != labels.shape:
        raise ValueError(f"{predictions.shape[0]} predictions but "
                         f"{labels.shape[0]} labels")
    return predictions, labels


def _div_no_nan(numerator: float, denominator: float) -> float:
    # As tf.div_no_nan in the original's metrics: 0 when the denominator is.
    return float(numerator / denominator) if denominator != 0 else 0.0


def weighted_mean(values, weights=None) -> float:
    """sum(w * v) / sum(w), 0 if all weights are 0 (tf.metrics.mean)."""
    values = np.asarray(values, np.float64).reshape(-1)
    w = _weights(weights, values.shape[0])
    return _div_no_nan(np.sum(w * values), np.sum(w))


def accuracy(predictions, labels, weights=None) -> float:
    """Weighted fraction of predictions equal to labels ([N] class ids)."""
    predictions, labels = _flat(predictions, labels)
    return weighted_mean(predictions == labels, weights)


def _confusion(predictions, labels, weights) -> tuple[float, ...]:
    """Weighted (tp, tn, fp, fn); nonzero is positive, as tf.metrics does."""
    predictions, labels = _flat(predictions, labels)
    w = _weights(weights, predictions.shape[0])
    p, y = predictions != 0, labels != 0
    return (np.sum(w * (p & y)), np.sum(w * (~p & ~y)),
            np.sum(w * (p & ~y)), np.sum(w * (~p & y)))


def matthews_corrcoef(predictions, labels, weights=None) -> float:
    """Binary MCC with the original's formula; 0 when the denominator is 0.

    (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)), from weighted
    counts (classifier_utils metric_fn for CoLA).
    """
    tp, tn, fp, fn = _confusion(predictions, labels, weights)
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return _div_no_nan(tp * tn - fp * fn, denominator)


def f1_score(predictions, labels, weights=None) -> float:
    """Binary F1 of class 1: 2tp / (2tp + fp + fn); 0 with no positives."""
    tp, _, fp, fn = _confusion(predictions, labels, weights)
    return _div_no_nan(2 * tp, 2 * tp + fp + fn)


def pearson(predictions, labels, weights=None) -> float:
    """Weighted Pearson correlation ([N] floats).

    Weighted means and co-moments, as contrib's
    streaming_pearson_correlation; with 0/1 weights this is the plain
    Pearson r of the real examples. A constant input gives 0 instead of the
    original's NaN, so best-checkpoint comparisons stay well defined.
    """
    x, y = _flat(predictions, labels)
    x, y = x.astype(np.float64), y.astype(np.float64)
    w = _weights(weights, x.shape[0])
    total = np.sum(w)
    if total == 0:
        return 0.0
    dx = x - np.sum(w * x) / total
    dy = y - np.sum(w * y) / total
    denominator = np.sqrt(np.sum(w * dx * dx) * np.sum(w * dy * dy))
    return _div_no_nan(np.sum(w * dx * dy), denominator)


def average_ranks(values) -> np.ndarray:
    """1-based ranks; tied values share the mean of their ranks ([N])."""
    values = np.asarray(values).reshape(-1)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start index of each run of equal values in sorted order.
    changed = sorted_values[1:] != sorted_values[:-1]
    starts = np.flatnonzero(np.r_[True, changed])
    ends = np.r_[starts[1:], values.shape[0]]
    run_ranks = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(values.shape[0], np.float64)
    ranks[order] = np.repeat(run_ranks, ends - starts)
    return ranks


def spearman(predictions, labels, weights=None) -> float:
    """Spearman rho: Pearson of average ranks over examples with weight > 0.

    Added (the original had no Spearman). Ranks are taken among the
    weighted examples only, so padding never shifts a real example's rank.
    """
    x, y = _flat(predictions, labels)
    w = _weights(weights, x.shape[0])
    keep = w > 0
    return pearson(average_ranks(x[keep]), average_ranks(y[keep]), w[keep])


def mean_squared_error(predictions, labels, weights=None) -> float:
    """Weighted mean of (prediction - label)^2, as tf.metrics' MSE."""
    x, y = _flat(predictions, labels)
    return weighted_mean((x.astype(np.float64) - y) ** 2, weights)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def task_metrics(task_name: str, predictions_or_logits, labels,
                 weights=None, eval_loss: Optional[float] = None
                 ) -> dict[str, float]:
    """The task's metric dict, keyed like the original's eval results.

    Args:
      task_name: a GLUE task name (see KEY_METRIC), any case.
      predictions_or_logits: classification: logits [N, C] or class ids [N];
        STS-B: predictions [N] or [N, 1].
      labels: [N] class ids, or floats for STS-B.
      weights: [N] is_real_example; None weighs every example 1.
      eval_loss: reported as `eval_loss` if given. Otherwise it is computed
        as the original's weighted mean per-example loss (cross-entropy of
        the logits, or squared error for STS-B) when logits are given.

    Returns:
      Classification: eval_accuracy, plus matthew_corr (CoLA) or f1
      (MRPC, QQP). STS-B: pearson, spearman, MSE. And eval_loss.
    """
    task = task_name.lower()
    if task not in KEY_METRIC:
        raise ValueError(f"unknown task_name {task_name!r}; metrics exist "
                         f"for {', '.join(sorted(KEY_METRIC))}")
    outputs = np.asarray(predictions_or_logits)
    labels = np.asarray(labels).reshape(-1)
    results: dict[str, float] = {}
    if task in REGRESSION_TASKS:
        predictions = outputs.astype(np.float64).reshape(-1)  # [N, 1] -> [N]
        results["pearson"] = pearson(predictions, labels, weights)
        results["spearman"] = spearman(predictions, labels, weights)
        results["MSE"] = mean_squared_error(predictions, labels, weights)
        per_example_loss = (predictions - labels) ** 2  # As the original.
    else:
        if outputs.ndim == 2:  # [N, C] logits
            predictions = np.argmax(outputs, axis=-1)
            log_probs = _log_softmax(outputs.astype(np.float64))
            per_example_loss = -log_probs[np.arange(labels.shape[0]),
                                          labels.astype(np.int64)]
        else:  # [N] class ids: no loss can be computed.
            predictions = outputs.reshape(-1)
            per_example_loss = None
        results["eval_accuracy"] = accuracy(predictions, labels, weights)
        if task == "cola":
            results["matthew_corr"] = matthews_corrcoef(predictions, labels,
                                                        weights)
        if task in F1_TASKS:
            results["f1"] = f1_score(predictions, labels, weights)
    if eval_loss is not None:
        results["eval_loss"] = float(eval_loss)
    elif per_example_loss is not None:
        results["eval_loss"] = weighted_mean(per_example_loss, weights)
    return results
