"""Gradient accumulation: K micro-batches give the update of one batch.

The runs differ only in gradient_accumulation_steps; the data, the seed and
the global batch are the same, so every loss and every variable (model and
optimizer slots) must agree to float32 rounding.
"""

import numpy as np
import pytest
import tensorflow as tf

import helpers
from albert_tf import distribute
from albert_tf import optimization
from albert_tf import training
from albert_tf.tasks import pretraining

BATCH, SEQ, PREDICTIONS, STEPS = 8, 7, 3, 3
LR = 1e-3


def _examples(config, count, seed=0):
    """count pretraining examples whose MLM weights differ per example, so
    micro-batches have different loss denominators."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, config.vocab_size, (count, SEQ)).astype("int32")
    mask = np.ones((count, SEQ), "int32")
    for i in range(count):
        mask[i, SEQ - i % 3:] = 0
    weights = (rng.random((count, PREDICTIONS)) < 0.6).astype("float32")
    weights[::5] = 0.0  # some examples predict nothing at all
    return {
        "input_ids": ids * mask, "input_mask": mask,
        "segment_ids": (np.arange(SEQ) >= SEQ // 2).astype("int32")[None]
        .repeat(count, 0) * mask,
        "masked_lm_positions": rng.integers(
            1, SEQ - 2, (count, PREDICTIONS)).astype("int32"),
        "masked_lm_ids": rng.integers(
            1, config.vocab_size, (count, PREDICTIONS)).astype("int32"),
        "masked_lm_weights": weights,
        "next_sentence_labels": rng.integers(0, 2, (count, 1)).astype(
            "int32"),
    }


def _train(tmp_path, k, optimizer, jit_compile=False, dtype="float32"):
    config = helpers.tiny_config(vocab_size=31, initializer_range=0.5)
    task = pretraining.PretrainingTask(
        config, pretraining.OptimizerConfig(
            optimizer=optimizer, learning_rate=LR, num_train_steps=STEPS,
            num_warmup_steps=2), dtype=dtype)
    run_config = training.RunConfig(
        output_dir=str(tmp_path / f"{optimizer}_k{k}_{jit_compile}"),
        num_train_steps=STEPS, train_batch_size=BATCH,
        save_checkpoints_steps=STEPS, iterations_per_loop=2,
        log_every_n_steps=1, jit_compile=jit_compile,
        gradient_accumulation_steps=k)
    tf.keras.utils.set_random_seed(0)
    trainer = training.Trainer(task, distribute.get_strategy("one_device"),
                               run_config)
    data = _examples(config, BATCH * STEPS)

    def dataset_fn(context):
        return tf.data.Dataset.from_tensor_slices(data).batch(
            BATCH, drop_remainder=True)

    trainer.train(dataset_fn)
    return trainer, task, data


def _first_gradient_norm(trainer, task, data):
    batch = {k: v[:BATCH] for k, v in data.items()}
    model = trainer.model
    with tf.GradientTape() as tape:
        terms = task.loss_terms(model(batch, training=True), batch, 1)
        loss = sum(num / den for num, den in terms.values())
    grads = [g for g in tape.gradient(loss, model.trainable_variables)
             if g is not None]
    return float(tf.linalg.global_norm(grads))


@pytest.mark.parametrize("optimizer", ["lamb", "adamw"])
def test_four_micro_batches_update_as_one_batch(tmp_path, optimizer):
    one, task, data = _train(tmp_path, 1, optimizer)
    four, _, _ = _train(tmp_path, 4, optimizer)
    # The schedule counts optimizer steps, not micro-batches.
    assert int(four.optimizer.iterations) == STEPS
    assert int(four.global_step.numpy()) == STEPS
    losses = [[h["loss"] for h in t.history] for t in (one, four)]
    assert len(losses[0]) == STEPS
    np.testing.assert_allclose(losses[1], losses[0], rtol=0, atol=1e-6)
    for key in ("masked_lm_loss", "sentence_order_loss",
                "masked_lm_accuracy", "sentence_order_accuracy"):
        np.testing.assert_allclose([h[key] for h in four.history],
                                   [h[key] for h in one.history],
                                   atol=1e-6, err_msg=key)
    variables = {v.path: v for v in one.model.variables}
    assert len(variables) > 30
    for v in four.model.variables:
        np.testing.assert_allclose(np.asarray(v), np.asarray(
            variables[v.path]), rtol=0, atol=1e-6, err_msg=v.path)
    slots = {v.path: v for v in one.optimizer.variables}
    for v in four.optimizer.variables:
        np.testing.assert_allclose(np.asarray(v), np.asarray(
            slots[v.path]), rtol=1e-5, atol=1e-6, err_msg=v.path)


def test_clipping_sees_the_whole_batch(tmp_path):
    """The data above has a gradient norm over the clip norm, so a loop
    that clipped (or normalised) each micro-batch on its own would fail
    the equality test: this checks the premise, at the starting weights
    _train uses."""
    config = helpers.tiny_config(vocab_size=31, initializer_range=0.5)
    task = pretraining.PretrainingTask(config, pretraining.OptimizerConfig(
        learning_rate=LR, num_train_steps=STEPS, num_warmup_steps=2))
    tf.keras.utils.set_random_seed(0)
    start = training.Trainer(task, distribute.get_strategy("one_device"),
                             training.RunConfig(
                                 output_dir=str(tmp_path), num_train_steps=1,
                                 train_batch_size=BATCH))
    data = _examples(config, BATCH * STEPS)
    assert _first_gradient_norm(start, task, data) > (
        2 * optimization.GRADIENT_CLIP_NORM)


def test_accumulation_under_xla_matches(tmp_path):
    one, _, _ = _train(tmp_path, 1, "lamb")
    xla, _, _ = _train(tmp_path, 2, "lamb", jit_compile=True)
    np.testing.assert_allclose([h["loss"] for h in xla.history],
                               [h["loss"] for h in one.history], atol=1e-5)
    variables = {v.path: v for v in one.model.variables}
    for v in xla.model.variables:
        np.testing.assert_allclose(np.asarray(v), np.asarray(
            variables[v.path]), atol=1e-5, err_msg=v.path)


@pytest.mark.slow
def test_accumulation_with_loss_scaling_follows_one_batch(tmp_path):
    """float16's LossScaleOptimizer: scaled micro-batch gradients, clipped
    at the scaled norm, skip the same overflowing steps and give the same
    losses as one batch (to float16 compute precision)."""
    one, _, _ = _train(tmp_path, 1, "adamw", dtype="float16")
    two, _, _ = _train(tmp_path, 2, "adamw", dtype="float16")
    assert int(two.optimizer.iterations) == int(one.optimizer.iterations)
    np.testing.assert_allclose([h["loss"] for h in two.history],
                               [h["loss"] for h in one.history], atol=2e-3)
    assert all(np.isfinite(h["loss"]) for h in two.history)


def test_batch_not_divisible_by_accumulation_steps_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not divisible by "
                       "gradient_accumulation_steps=3"):
        training.RunConfig(output_dir=str(tmp_path), num_train_steps=1,
                           train_batch_size=8, gradient_accumulation_steps=3)
    with pytest.raises(ValueError, match="gradient_accumulation_steps=0"):
        training.RunConfig(output_dir=str(tmp_path), num_train_steps=1,
                           train_batch_size=8, gradient_accumulation_steps=0)


@pytest.mark.slow
def test_run_classifier_with_accumulation_equals_one_batch(tiny_spm,
                                                          tmp_path):
    """Through the runner's flags: two runs that differ only in
    --gradient_accumulation_steps end with the same weights. Dropout is
    off: its masks are drawn per micro-batch, so with dropout the runs
    would differ by dropout noise, as two seeds do."""
    import json
    import subprocess
    import sys

    import test_run_classifier as rc

    rc._glue_data(tmp_path / "glue", "sst-2")
    config = tmp_path / "albert_config.json"
    config.write_text(json.dumps(helpers.tiny_config(
        vocab_size=320, max_position_embeddings=rc.SEQ).to_dict()))
    weights = []
    for k in (1, 2):
        out = tmp_path / f"k{k}"
        result = subprocess.run([
            sys.executable, str(rc.ROOT / "run_classifier.py"),
            "--task_name=sst-2", f"--data_dir={tmp_path / 'glue'}",
            f"--albert_config_file={config}",
            f"--spm_model_file={tiny_spm['model']}", f"--output_dir={out}",
            f"--max_seq_length={rc.SEQ}", "--train_batch_size=4",
            "--train_step=3", "--save_checkpoints_steps=3",
            "--learning_rate=1e-3", "--classifier_dropout_prob=0",
            "--do_train", f"--gradient_accumulation_steps={k}"],
            env=rc.ENV, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert ("sums 2 micro-batches of 2 examples" in result.stderr) == (
            k == 2)
        reader = tf.train.load_checkpoint(str(out / "ckpt-3"))
        weights.append({name: reader.get_tensor(name) for name in
                        reader.get_variable_to_shape_map()
                        if name.startswith(("model/", "optimizer/"))
                        and name.endswith("VARIABLE_VALUE")})
    assert set(weights[0]) == set(weights[1]) and len(weights[0]) > 50
    for name, value in weights[0].items():
        np.testing.assert_allclose(weights[1][name], value, rtol=1e-5,
                                   atol=1e-6, err_msg=name)
