"""Losses as pure functions, as the original computes them (float32).

Legend: B batch, P max_predictions_per_seq, V vocab_size, C labels.
"""

from __future__ import annotations

from keras import ops

# As the original get_masked_lm_output: avoids 0/0 for all-padding batches.
MLM_LOSS_EPSILON = 1e-5


def masked_lm_loss(mlm_logits, masked_lm_ids, masked_lm_weights):
    """sum(w * CE) / (sum(w) + 1e-5) over the [B, P] predictions."""
    log_probs = ops.log_softmax(ops.cast(mlm_logits, "float32"), axis=-1)
    ids = ops.cast(masked_lm_ids, "int32")
    nll = -ops.squeeze(
        ops.take_along_axis(log_probs, ids[..., None], axis=-1), -1)  # [B, P]
    weights = ops.cast(masked_lm_weights, "float32")
    return ops.sum(weights * nll) / (ops.sum(weights) + MLM_LOSS_EPSILON)


def classification_loss(logits, labels):
    """Mean cross-entropy; the SOP, GLUE and RACE loss of the original."""
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    nll = -ops.squeeze(
        ops.take_along_axis(log_probs, labels[:, None], axis=-1), -1)  # [B]
    return ops.mean(nll)


def sentence_order_loss(sop_logits, next_sentence_labels):
    """Mean CE over 2 classes; label 1 = swapped (or random document)."""
    return classification_loss(sop_logits, next_sentence_labels)


def pretraining_loss(outputs: dict, features: dict):
    """MLM + SOP, unweighted, as the original. Returns (total, mlm, sop)."""
    mlm = masked_lm_loss(outputs["mlm_logits"], features["masked_lm_ids"],
                         features["masked_lm_weights"])
    sop = sentence_order_loss(outputs["sop_logits"],
                              features["next_sentence_labels"])
    return mlm + sop, mlm, sop


def regression_loss(logits, labels):
    """STS-B: mean squared error of the squeezed [B, 1] prediction."""
    predictions = ops.reshape(ops.cast(logits, "float32"), (-1,))
    labels = ops.reshape(ops.cast(labels, "float32"), (-1,))
    return ops.mean(ops.square(predictions - labels))
