"""GLUE metrics against scipy (or textbook formulas written here)."""

import numpy as np
import pytest

from scipy import stats

from albert_tf.data import glue
from albert_tf.metrics import glue as metrics

N = 37  # Distinct from the padding count below.
PAD = 5


def _binary(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, N)
    predictions = np.where(rng.random(N) < 0.7, labels, 1 - labels)
    return predictions, labels


def _padded(predictions, labels, garbage):
    """Appends PAD fake rows with weight 0 and garbage values."""
    weights = np.r_[np.ones(len(labels)), np.zeros(PAD)]
    return (np.r_[predictions, garbage[:PAD]], np.r_[labels, garbage[PAD:]],
            weights)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accuracy_mcc_f1_match_textbook_and_scipy(seed):
    predictions, labels = _binary(seed)
    # MCC of two binary variables is their Pearson correlation.
    want_mcc = stats.pearsonr(predictions, labels)[0]
    tp = np.sum((predictions == 1) & (labels == 1))
    precision = tp / np.sum(predictions == 1)
    recall = tp / np.sum(labels == 1)
    want_f1 = 2 * precision * recall / (precision + recall)
    want_accuracy = np.mean(predictions == labels)
    padded = _padded(predictions, labels, np.array([1, 0, 1, 1, 0] * 2))
    for args in [(predictions, labels), padded]:
        assert metrics.accuracy(*args) == pytest.approx(want_accuracy)
        assert metrics.matthews_corrcoef(*args) == pytest.approx(want_mcc)
        assert metrics.f1_score(*args) == pytest.approx(want_f1)


def test_mcc_and_f1_degenerate_cases_are_zero():
    # All predictions one class: (tp+fp)(tn+fn) has a zero factor.
    assert metrics.matthews_corrcoef([1, 1, 1], [0, 1, 1]) == 0.0
    assert metrics.f1_score([0, 0], [0, 0]) == 0.0
    assert metrics.accuracy([1, 0], [1, 1], weights=[0, 0]) == 0.0
    assert metrics.matthews_corrcoef([1, 0], [1, 0]) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_pearson_spearman_mse_match_scipy(seed):
    rng = np.random.default_rng(seed)
    labels = np.round(rng.uniform(0, 5, N), 1)
    # Rounded so both sides have ties (Spearman uses average ranks).
    predictions = np.round(labels + rng.normal(0, 1.0, N), 0)
    assert len(np.unique(predictions)) < N
    want = (stats.pearsonr(predictions, labels)[0],
            stats.spearmanr(predictions, labels)[0],
            np.mean((predictions - labels) ** 2))
    padded = _padded(predictions, labels, rng.uniform(-50, 50, 2 * PAD))
    for args in [(predictions, labels), padded]:
        assert metrics.pearson(*args) == pytest.approx(want[0])
        assert metrics.spearman(*args) == pytest.approx(want[1])
        assert metrics.mean_squared_error(*args) == pytest.approx(want[2])


def test_average_ranks_ties():
    np.testing.assert_allclose(metrics.average_ranks([10, 20, 10, 5, 20, 20]),
                               [2.5, 5.0, 2.5, 1.0, 5.0, 5.0])
    np.testing.assert_allclose(metrics.average_ranks([3.0, 1.0, 2.0]),
                               stats.rankdata([3.0, 1.0, 2.0]))


def test_pearson_of_constant_is_zero_not_nan():
    assert metrics.pearson([1.0, 1.0, 1.0], [0.0, 1.0, 2.0]) == 0.0
    assert metrics.spearman([1.0, 1.0, 1.0], [0.0, 1.0, 2.0]) == 0.0


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="3 predictions but 2 labels"):
        metrics.accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="weights has 1 entries"):
        metrics.accuracy([0, 1], [0, 1], weights=[1])


def test_task_metrics_keys_and_loss_from_logits():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(N, 2))
    labels = rng.integers(0, 2, N)
    weights = np.r_[np.ones(N - PAD), np.zeros(PAD)]
    log_probs = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
    nll = -log_probs[np.arange(N), labels]
    want_loss = np.sum(nll * weights) / np.sum(weights)
    predictions = logits.argmax(-1)

    cola = metrics.task_metrics("CoLA", logits, labels, weights)
    assert set(cola) == {"eval_accuracy", "matthew_corr", "eval_loss"}
    assert cola["eval_loss"] == pytest.approx(want_loss)
    assert cola["matthew_corr"] == pytest.approx(metrics.matthews_corrcoef(
        predictions[:N - PAD], labels[:N - PAD]))
    assert set(metrics.task_metrics("mrpc", logits, labels)) == {
        "eval_accuracy", "f1", "eval_loss"}
    # Class ids instead of logits: no loss unless given.
    rte = metrics.task_metrics("rte", predictions, labels, weights)
    assert set(rte) == {"eval_accuracy"}
    assert rte["eval_accuracy"] == pytest.approx(
        np.mean(predictions[:N - PAD] == labels[:N - PAD]))
    assert metrics.task_metrics("rte", predictions, labels,
                                eval_loss=0.25)["eval_loss"] == 0.25


def test_task_metrics_sts_b():
    rng = np.random.default_rng(5)
    labels = rng.uniform(0, 5, N)
    predictions = (labels + rng.normal(0, 1, N))[:, None]  # [N, 1]
    result = metrics.task_metrics("sts-b", predictions, labels)
    assert set(result) == {"pearson", "spearman", "MSE", "eval_loss"}
    assert result["pearson"] == pytest.approx(
        stats.pearsonr(predictions[:, 0], labels)[0])
    assert result["eval_loss"] == pytest.approx(result["MSE"])


def test_key_metric_covers_every_task_and_matches_the_original():
    assert set(metrics.KEY_METRIC) == set(glue.TASK_NAMES)
    assert metrics.KEY_METRIC["cola"] == "matthew_corr"
    assert metrics.KEY_METRIC["sts-b"] == "pearson"
    assert metrics.KEY_METRIC["mnli"] == "eval_accuracy"
    with pytest.raises(ValueError, match="cola, mismnli"):
        metrics.task_metrics("squad", [0], [0])
