"""The losses and metrics the training loop uses, against NumPy.

Training calls `task.loss_terms` and `task.metric_sums` (through
training.Trainer); these tests call exactly those, on random outputs, and
compare with the NumPy transcription of the original (numpy_reference),
including the replica split of the MLM epsilon.
"""

import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
from albert_tf import losses
from albert_tf import optimization
from albert_tf import training
from albert_tf.tasks import classification
from albert_tf.tasks import pretraining
from helpers import tiny_config

B, P, V = 5, 3, 29


def _pretraining_batch(seed):
    rng = np.random.default_rng(seed)
    outputs = {"mlm_logits": rng.normal(size=(B, P, V)).astype(np.float32),
               "sop_logits": rng.normal(size=(B, 2)).astype(np.float32)}
    features = {
        "masked_lm_ids": rng.integers(0, V, (B, P)).astype(np.int32),
        "masked_lm_weights": (rng.random((B, P)) < 0.7).astype(np.float32),
        "next_sentence_labels": rng.integers(0, 2, (B, 1)).astype(np.int32)}
    return outputs, features


def _combined(terms):
    return {k: float(n) / float(d) for k, (n, d) in terms.items()}


@pytest.mark.parametrize("seed", [0, 1])
def test_pretraining_loss_terms_equal_the_original_losses(seed):
    outputs, features = _pretraining_batch(seed)
    task = pretraining.PretrainingTask(tiny_config(),
                                       pretraining.OptimizerConfig())
    got = _combined(task.loss_terms(outputs, features, num_replicas=1))
    mlm, sop = ref.pretraining_losses(
        outputs["mlm_logits"].astype(np.float64),
        outputs["sop_logits"].astype(np.float64),
        features["masked_lm_ids"], features["masked_lm_weights"],
        features["next_sentence_labels"][:, 0])
    np.testing.assert_allclose(got["masked_lm_loss"], mlm, rtol=1e-5)
    np.testing.assert_allclose(got["sentence_order_loss"], sop, rtol=1e-5)
    # The library's one-device function is the same computation.
    total, lib_mlm, lib_sop = losses.pretraining_loss(outputs, features)
    np.testing.assert_allclose([float(lib_mlm), float(lib_sop)], [mlm, sop],
                               rtol=1e-5)
    np.testing.assert_allclose(float(total), mlm + sop, rtol=1e-5)


def test_replica_terms_sum_to_the_global_loss():
    """Two replicas' (numerator, denominator) sums = one device's loss."""
    outputs, features = _pretraining_batch(2)
    task = pretraining.PretrainingTask(tiny_config(),
                                       pretraining.OptimizerConfig())
    whole = _combined(task.loss_terms(outputs, features, 1))
    halves = [task.loss_terms({k: v[s] for k, v in outputs.items()},
                              {k: v[s] for k, v in features.items()}, 2)
              for s in (slice(0, 2), slice(2, B))]
    for name in whole:
        num = sum(float(h[name][0]) for h in halves)
        den = sum(float(h[name][1]) for h in halves)
        np.testing.assert_allclose(num / den, whole[name], rtol=1e-6)


def test_pretraining_metric_sums_against_numpy():
    outputs, features = _pretraining_batch(3)
    task = pretraining.PretrainingTask(tiny_config(),
                                       pretraining.OptimizerConfig())
    got = _combined(task.metric_sums(outputs, features))
    w = features["masked_lm_weights"]
    correct = outputs["mlm_logits"].argmax(-1) == features["masked_lm_ids"]
    np.testing.assert_allclose(got["masked_lm_accuracy"],
                               (w * correct).sum() / w.sum(), rtol=1e-6)
    labels = features["next_sentence_labels"][:, 0]
    np.testing.assert_allclose(
        got["sentence_order_accuracy"],
        (outputs["sop_logits"].argmax(-1) == labels).mean(), rtol=1e-6)
    nll = -np.take_along_axis(ref.log_softmax(
        outputs["mlm_logits"].astype(np.float64)),
        features["masked_lm_ids"][..., None], -1)[..., 0]
    np.testing.assert_allclose(got["masked_lm_loss"],
                               (w * nll).sum() / w.sum(), rtol=1e-5)


def test_sentence_loss_weight_scales_only_the_sentence_term():
    outputs, features = _pretraining_batch(4)
    config = tiny_config()
    full = _combined(pretraining.PretrainingTask(
        config, pretraining.OptimizerConfig()).loss_terms(
            outputs, features, 1))
    off = _combined(pretraining.PretrainingTask(
        config, pretraining.OptimizerConfig(),
        sentence_loss_weight=0.0).loss_terms(outputs, features, 1))
    assert off["sentence_order_loss"] == 0.0
    assert off["masked_lm_loss"] == pytest.approx(full["masked_lm_loss"])


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_mlm_only_leaves_pooler_and_sentence_head_untouched(weight):
    # With weight 0 their gradients are zero, but LAMB's weight decay
    # would still shrink them towards 0 every step unless they are frozen.
    task = pretraining.PretrainingTask(
        tiny_config(), pretraining.OptimizerConfig(
            learning_rate=0.1, num_train_steps=10, num_warmup_steps=0),
        sentence_loss_weight=weight)
    model = task.build_model()
    optimizer = task.build_optimizer()
    _, features = _pretraining_batch(3)
    rng = np.random.default_rng(3)
    T = 7
    inputs = {"input_ids": rng.integers(0, V, (B, T)).astype(np.int32),
              "input_mask": np.ones((B, T), np.int32),
              "segment_ids": (np.arange(T) >= 4).astype(np.int32)[None]
              .repeat(B, 0),
              "masked_lm_positions": rng.integers(1, T, (B, P)).astype(
                  np.int32)}
    frozen = [v for v in model.weights if "pooler" in v.path
              or "sentence_order" in v.path]
    assert frozen
    before = [v.numpy().copy() for v in frozen]
    encoder_before = model.encoder.embeddings.word_embeddings.numpy().copy()
    with tf.GradientTape() as tape:
        out = model(inputs, training=True)
        loss = sum(n / d for n, d in task.loss_terms(
            out, features, 1).values())
    variables = model.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    changed = [not np.array_equal(b, v.numpy())
               for b, v in zip(before, frozen)]
    assert all(changed) == (weight != 0.0) and any(changed) == (weight != 0.0)
    assert not np.array_equal(
        encoder_before, model.encoder.embeddings.word_embeddings.numpy())


def _classification_task(task_name):
    return classification.ClassificationTask(
        tiny_config(), task_name, "unused", optimization.OptimizerConfig(),
        spm_model_file=None, cached_dir="unused", max_seq_length=8)


def test_classification_loss_and_metrics_against_numpy():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(B, 2)).astype(np.float32)
    labels = rng.integers(0, 2, B).astype(np.int32)
    real = np.array([1, 1, 1, 0, 1], np.int32)
    task = _classification_task("sst-2")
    got = _combined(task.loss_terms({"logits": logits},
                                    {"label_ids": labels}, 1))
    nll = -np.take_along_axis(ref.log_softmax(logits.astype(np.float64)),
                              labels[:, None], -1)[:, 0]
    # Training: the mean over the whole batch, as the original.
    np.testing.assert_allclose(got["loss"], nll.mean(), rtol=1e-5)
    sums = _combined(task.metric_sums(
        {"logits": logits}, {"label_ids": labels, "is_real_example": real}))
    # Evaluation: padding examples (is_real_example 0) do not count.
    np.testing.assert_allclose(sums["eval_loss"],
                               (real * nll).sum() / real.sum(), rtol=1e-5)
    np.testing.assert_allclose(
        sums["eval_accuracy"],
        (real * (logits.argmax(-1) == labels)).sum() / real.sum())


def test_regression_loss_is_the_squared_error_of_the_squeezed_output():
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(B, 1)).astype(np.float32)
    labels = rng.normal(size=B).astype(np.float32)
    task = _classification_task("sts-b")
    got = _combined(task.loss_terms({"logits": logits},
                                    {"label_ids": labels}, 1))
    np.testing.assert_allclose(got["loss"],
                               ((logits[:, 0] - labels) ** 2).mean(),
                               rtol=1e-5)
    assert "eval_accuracy" not in task.metric_sums(
        {"logits": logits},
        {"label_ids": labels, "is_real_example": np.ones(B, np.int32)})


def test_ties_keep_the_earliest_checkpoint():
    history = {"ckpt-0": {"global_step": 0, "acc": 0.5},
               "ckpt-20": {"global_step": 20, "acc": 0.7},
               "ckpt-10": {"global_step": 10, "acc": 0.7},
               "ckpt-30": {"global_step": 30, "acc": 0.6}}
    assert training.best_checkpoint(history, "acc") == "ckpt-10"


def test_dtype_policies():
    assert training.dtype_policy("float32") is None
    assert training.dtype_policy("bfloat16") == "mixed_bfloat16"
    with pytest.raises(ValueError, match="dtype='int8'"):
        training.dtype_policy("int8")


def test_per_example_nll_with_an_unknown_class_count():
    """SQuAD's span logits [B, T] under dynamic padding: T is unknown
    while the step is traced."""
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(3, 7)).astype("float32")
    labels = np.array([0, 6, 3], "int32")
    traced = tf.function(losses.per_example_nll, input_signature=[
        tf.TensorSpec([None, None], tf.float32),
        tf.TensorSpec([None], tf.int32)])
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(traced(logits, labels).numpy(),
                               -log_probs[np.arange(3), labels], rtol=1e-6)
