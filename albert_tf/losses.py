"""The training losses, as the original computes them (float32).

One implementation, used by the training loop through the tasks'
`loss_terms` and by anyone calling `pretraining_loss` & co. directly. Each
loss is a `(numerator, denominator)` pair: the loop divides the numerator
summed over replicas by the denominator summed over replicas, so N replicas
compute the loss of one device at the same global batch.

Legend: B batch, P max_predictions_per_seq, V vocab_size, C labels.
"""

from __future__ import annotations

from keras import ops

# As the original run_pretraining.get_masked_lm_output: avoids 0/0 for an
# all-padding batch.
MLM_LOSS_EPSILON = 1e-5


def per_example_nll(logits, labels):
    """-log softmax(logits)[label]: [..., C] logits, [...] labels -> [...].

    As the original, -sum(log_probs * one_hot(labels)) (e.g.
    run_pretraining.get_masked_lm_output): the same value as a gather, but
    its gradient is elementwise rather than a scatter into [..., C].
    """
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    classes = log_probs.shape[-1]
    if classes is None:  # e.g. SQuAD's span logits under dynamic padding
        classes = ops.shape(log_probs)[-1]
    one_hot = ops.one_hot(ops.cast(labels, "int32"), classes,
                          dtype="float32")  # [..., C]
    return -ops.sum(log_probs * one_hot, axis=-1)


def squared_error(logits, labels):
    """STS-B: (squeezed [B, 1] prediction - label)^2, per example [B]."""
    predictions = ops.reshape(ops.cast(logits, "float32"), (-1,))
    return ops.square(predictions - ops.reshape(
        ops.cast(labels, "float32"), (-1,)))


def mean_terms(per_example):
    """(sum, count) of a [B] per-example loss: the mean over the batch."""
    return ops.sum(per_example), example_count(per_example)


def example_count(batched):
    """The denominator of a mean over the batch: B of a [B, ...] tensor."""
    return ops.cast(ops.shape(batched)[0], "float32")


def masked_lm_denominator(masked_lm_weights, num_replicas: int = 1):
    """sum(w) + 1e-5, the epsilon split over replicas so it adds up once."""
    return (ops.sum(ops.cast(masked_lm_weights, "float32"))
            + MLM_LOSS_EPSILON / num_replicas)


def masked_lm_terms(mlm_logits, masked_lm_ids, masked_lm_weights,
                    num_replicas: int = 1):
    """sum(w * nll) and sum(w) + 1e-5 over the [B, P] predictions.

    The epsilon is split over replicas so that their sum adds it once.
    """
    weights = ops.cast(masked_lm_weights, "float32")
    nll = per_example_nll(mlm_logits, masked_lm_ids)  # [B, P]
    return (ops.sum(weights * nll),
            masked_lm_denominator(masked_lm_weights, num_replicas))


def pretraining_terms(outputs: dict, features: dict,
                      num_replicas: int = 1,
                      sentence_loss_weight: float = 1.0) -> dict:
    """MLM + SOP loss terms, unweighted as the original by default."""
    terms = {"masked_lm_loss": masked_lm_terms(
        outputs["mlm_logits"], features["masked_lm_ids"],
        features["masked_lm_weights"], num_replicas)}
    sop = per_example_nll(
        outputs["sop_logits"],
        ops.reshape(features["next_sentence_labels"], (-1,)))  # [B]
    numerator, count = mean_terms(sop)
    terms["sentence_order_loss"] = (sentence_loss_weight * numerator, count)
    return terms


def pretraining_denominators(features: dict, num_replicas: int = 1) -> dict:
    """The denominators of pretraining_terms, from the features alone."""
    return {"masked_lm_loss": masked_lm_denominator(
                features["masked_lm_weights"], num_replicas),
            "sentence_order_loss": example_count(
                features["next_sentence_labels"])}


def combine(terms: dict):
    """Total loss of one replica's terms (num / den summed over names)."""
    return sum(num / den for num, den in terms.values())


def pretraining_loss(outputs: dict, features: dict):
    """MLM + SOP on one device. Returns (total, mlm, sop)."""
    terms = pretraining_terms(outputs, features)
    mlm = terms["masked_lm_loss"][0] / terms["masked_lm_loss"][1]
    sop = terms["sentence_order_loss"][0] / terms["sentence_order_loss"][1]
    return mlm + sop, mlm, sop


def masked_lm_loss(mlm_logits, masked_lm_ids, masked_lm_weights):
    """sum(w * CE) / (sum(w) + 1e-5) over the [B, P] predictions."""
    numerator, denominator = masked_lm_terms(mlm_logits, masked_lm_ids,
                                             masked_lm_weights)
    return numerator / denominator


def classification_loss(logits, labels):
    """Mean cross-entropy; the SOP, GLUE and RACE loss of the original."""
    numerator, count = mean_terms(per_example_nll(
        logits, ops.reshape(labels, (-1,))))
    return numerator / count


def regression_loss(logits, labels):
    """STS-B: mean squared error of the squeezed [B, 1] prediction."""
    numerator, count = mean_terms(squared_error(logits, labels))
    return numerator / count
