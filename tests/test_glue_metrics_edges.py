"""albert_tf.metrics.glue: padding weights in task_metrics, extreme logits,
single-example totals and 2-D inputs, with hand-computed expectations."""

import numpy as np
import pytest
from scipy import stats

from albert_tf.metrics import glue as gm

# Three real STS-B examples and two padding rows with wild values.
PRED = np.array([1.0, 2.0, 4.0, 100.0, -50.0])
GOLD = np.array([1.5, 2.0, 3.0, -100.0, 9.0])
REAL = np.array([1, 1, 1, 0, 0])


def test_sts_b_padding_rows_are_ignored_by_every_metric():
    got = gm.task_metrics("sts-b", PRED[:, None], GOLD, REAL)
    real = slice(0, 3)
    assert got["pearson"] == pytest.approx(
        stats.pearsonr(PRED[real], GOLD[real])[0])
    assert got["spearman"] == pytest.approx(
        stats.spearmanr(PRED[real], GOLD[real])[0])
    # (0.25 + 0 + 1) / 3
    assert got["MSE"] == pytest.approx(1.25 / 3)
    assert got["eval_loss"] == pytest.approx(1.25 / 3)


def test_mrpc_and_cola_padding_rows_are_ignored():
    # Real: predictions 1, 1, 0 against labels 1, 0, 0; padding rows are
    # all false positives if counted.
    logits = np.array([[0.0, 2.0], [0.0, 1.0], [3.0, 0.0], [0.0, 5.0],
                       [0.0, 5.0]])
    labels = np.array([1, 0, 0, 0, 0])
    got = gm.task_metrics("mrpc", logits, labels, REAL)
    assert got["eval_accuracy"] == pytest.approx(2 / 3)
    assert got["f1"] == pytest.approx(2 * 1 / (2 * 1 + 1 + 0))  # 2/3
    # CoLA: tp 1, tn 1, fp 1, fn 0: (1 - 0) / sqrt(2 * 1 * 2 * 1) = 0.5
    got = gm.task_metrics("cola", logits, labels, REAL)
    assert got["matthew_corr"] == pytest.approx(0.5)
    # Loss: mean of -log softmax at the label, real rows only.
    def nll(row, label):
        return np.log(np.exp(row).sum()) - row[label]
    expected = np.mean([nll(logits[i], labels[i]) for i in range(3)])
    assert got["eval_loss"] == pytest.approx(expected)


def test_log_softmax_survives_large_logits():
    logits = np.array([[1000.0, 0.0], [0.0, 1000.0], [-1000.0, -999.0]])
    got = gm.task_metrics("rte", logits, np.array([0, 0, 1]))
    # Row 1 costs 1000; row 3 costs log(1 + e^-1).
    assert got["eval_loss"] == pytest.approx((1000.0 + np.log1p(
        np.exp(-1.0))) / 3)
    assert got["eval_accuracy"] == pytest.approx(2 / 3)


def test_single_example_and_zero_total():
    assert gm.weighted_mean([3.0], [1.0]) == 3.0
    assert gm.weighted_mean([3.0, 5.0], [0.0, 0.0]) == 0.0
    assert gm.weighted_mean([2.0, 4.0], [1.0, 3.0]) == pytest.approx(3.5)
    # One weighted example: no variance, 0 rather than NaN.
    assert gm.pearson([1.0, 2.0], [3.0, 1.0], [1.0, 0.0]) == 0.0
    assert gm.pearson([1.0, 2.0], [3.0, 1.0], [0.0, 0.0]) == 0.0
    assert gm.pearson([1.0, 2.0, 3.0], [2.0, 4.0, 7.0]) == pytest.approx(
        stats.pearsonr([1, 2, 3], [2, 4, 7])[0])


def test_integer_inputs_are_compared_as_floats():
    # Integer predictions and labels: no integer overflow or truncation.
    got = gm.task_metrics("sts-b", np.array([[1], [2], [4]]),
                          np.array([2, 2, 3]))
    assert got["MSE"] == pytest.approx((1 + 0 + 1) / 3)
    assert gm.pearson(np.array([1, 2, 3]), np.array([1, 3, 2])) == \
        pytest.approx(0.5)
    assert gm.mean_squared_error(np.array([0, 3]), np.array([1, 1]),
                                 [1.0, 1.0]) == pytest.approx(2.5)


def test_weights_of_the_wrong_length_or_shape():
    with pytest.raises(ValueError, match="weights has 2 entries"):
        gm.weighted_mean([1.0, 2.0, 3.0], [1.0, 1.0])
    # A [N, 1] weight column is flattened like the predictions.
    assert gm.accuracy([[1], [0]], [[1], [1]], [[1.0], [1.0]]) == 0.5


def test_average_ranks_of_a_column_and_of_ties():
    np.testing.assert_array_equal(
        gm.average_ranks(np.array([[3.0], [1.0], [3.0], [2.0]])),
        [3.5, 1.0, 3.5, 2.0])
    np.testing.assert_array_equal(gm.average_ranks([5, 5, 5]), [2, 2, 2])
