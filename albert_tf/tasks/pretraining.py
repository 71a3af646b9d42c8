"""Pretraining: MLM + SOP with the original recipe, through training.Trainer.

`run(...)` is what run_pretraining.py calls: train, evaluate every checkpoint
(keeping the best by masked_lm_accuracy), export the encoder.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import tensorflow as tf
from absl import logging
from keras import ops

from albert_tf import checkpoints
from albert_tf import export
from albert_tf import losses
from albert_tf import optimization
from albert_tf import training
from albert_tf.config import AlbertConfig
from albert_tf.data import pretraining_input
from albert_tf.models import AlbertPretrainer

KEY_METRIC = "masked_lm_accuracy"
DTYPE_POLICIES = {"float32": None, "bfloat16": "mixed_bfloat16",
                  "float16": "mixed_float16"}


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """The original create_optimizer arguments (run_pretraining defaults)."""

    optimizer: str = "lamb"
    learning_rate: float = 0.00176
    num_train_steps: int = 125000
    num_warmup_steps: int = 3125
    start_warmup_step: int = 0
    poly_power: float = 1.0


def build_optimizer(config: OptimizerConfig,
                    dtype: str = "float32") -> keras.optimizers.Optimizer:
    optimizer = optimization.create_optimizer(
        config.learning_rate, config.num_train_steps, config.num_warmup_steps,
        start_warmup_step=config.start_warmup_step,
        poly_power=config.poly_power, optimizer=config.optimizer)
    if dtype == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def dtype_policy(dtype: str) -> str | None:
    if dtype not in DTYPE_POLICIES:
        raise ValueError(f"dtype={dtype!r}; expected one of "
                         f"{sorted(DTYPE_POLICIES)}")
    return DTYPE_POLICIES[dtype]


class PretrainingTask:
    """AlbertPretrainer + the original MLM/SOP losses and eval metrics."""

    def __init__(self, config: AlbertConfig, optimizer: OptimizerConfig,
                 dtype: str = "float32"):
        self.config = config
        self.optimizer_config = optimizer
        self.dtype = dtype

    def build_model(self) -> keras.Model:
        return AlbertPretrainer(self.config, dtype=dtype_policy(self.dtype))

    def build_optimizer(self) -> keras.optimizers.Optimizer:
        return build_optimizer(self.optimizer_config, self.dtype)

    def loss_terms(self, outputs, features, num_replicas: int) -> dict:
        """MLM: sum(w * nll) / (sum(w) + 1e-5); SOP: mean nll."""
        weights = ops.cast(features["masked_lm_weights"], "float32")
        mlm_nll = _nll(outputs["mlm_logits"], features["masked_lm_ids"])
        sop_nll = _nll(outputs["sop_logits"],
                       ops.reshape(features["next_sentence_labels"], (-1,)))
        # The epsilon is split over replicas so their sum adds it once.
        mlm_den = ops.sum(weights) + losses.MLM_LOSS_EPSILON / num_replicas
        sop_den = ops.cast(ops.shape(sop_nll)[0], "float32")
        return {"masked_lm_loss": (ops.sum(weights * mlm_nll), mlm_den),
                "sentence_order_loss": (ops.sum(sop_nll), sop_den)}

    def metric_sums(self, outputs, features) -> dict:
        """The original eval metrics as exact (sum, count) pairs."""
        weights = ops.cast(features["masked_lm_weights"], "float32")
        ids = features["masked_lm_ids"]
        mlm_nll = _nll(outputs["mlm_logits"], ids)
        mlm_correct = ops.cast(ops.equal(
            ops.argmax(outputs["mlm_logits"], -1), ops.cast(ids, "int64")),
            "float32")
        labels = ops.reshape(features["next_sentence_labels"], (-1,))
        sop_nll = _nll(outputs["sop_logits"], labels)
        sop_correct = ops.cast(ops.equal(
            ops.argmax(outputs["sop_logits"], -1), ops.cast(labels, "int64")),
            "float32")
        count = ops.cast(ops.shape(labels)[0], "float32")
        return {
            "masked_lm_accuracy": (ops.sum(weights * mlm_correct),
                                   ops.sum(weights)),
            "masked_lm_loss": (ops.sum(weights * mlm_nll), ops.sum(weights)),
            "sentence_order_accuracy": (ops.sum(sop_correct), count),
            "sentence_order_loss": (ops.sum(sop_nll), count),
        }


def _nll(logits, labels):
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    labels = ops.cast(labels, "int32")
    return -ops.squeeze(ops.take_along_axis(log_probs, labels[..., None],
                                            axis=-1), -1)


def run(albert_config: AlbertConfig, run_config: training.RunConfig,
        optimizer_config: OptimizerConfig, strategy: tf.distribute.Strategy,
        input_file: str, max_seq_length: int, max_predictions_per_seq: int,
        do_train: bool = True, do_eval: bool = False, eval_batch_size: int = 64,
        max_eval_steps: int = 100, init_checkpoint: str | None = None,
        init_from_group0: bool = False, dtype: str = "float32",
        export_dir: str | None = None, seed: int | None = None,
        spm_model_file: str | None = None, do_lower_case: bool = True) -> dict:
    """Pretrains and/or evaluates; returns the last eval results."""
    if max_seq_length > albert_config.max_position_embeddings:
        raise ValueError(
            f"max_seq_length={max_seq_length} > max_position_embeddings="
            f"{albert_config.max_position_embeddings} of the config")
    os.makedirs(run_config.output_dir, exist_ok=True)
    task = PretrainingTask(albert_config, optimizer_config, dtype)
    trainer = training.Trainer(task, strategy, run_config)
    if trainer.is_chief:
        albert_config.to_json_file(os.path.join(run_config.output_dir,
                                                checkpoints.CONFIG_NAME))

    def dataset_fn(is_training, global_batch):
        def make(context):
            return pretraining_input.pretraining_dataset(
                input_file, max_seq_length, max_predictions_per_seq,
                context.get_per_replica_batch_size(global_batch),
                is_training=is_training, input_context=context, seed=seed,
                vocab_size=albert_config.vocab_size)
        return make

    def init_fn(model):
        if init_checkpoint:
            report = checkpoints.load_checkpoint(
                model, init_checkpoint, allow_partial=True,
                init_from_group0=init_from_group0)
            logging.info("Initialised from %s", report)

    results = {}
    if do_train:
        try:
            trainer.train(dataset_fn(True, run_config.train_batch_size),
                          init_fn)
        except tf.errors.DataLossError as e:
            corrupt = pretraining_input.find_corrupt_file(input_file)
            raise ValueError(f"corrupt TFRecord in {corrupt or input_file}: "
                             f"{e.message}") from e
    else:
        trainer.restore_or_initialize(init_fn)
    if do_eval:
        if eval_batch_size % strategy.num_replicas_in_sync:
            raise ValueError(f"eval_batch_size={eval_batch_size} is not "
                             f"divisible by the replicas")
        eval_dataset_fn = dataset_fn(False, eval_batch_size)
        results = trainer.evaluate_checkpoints(
            lambda: trainer.evaluate(eval_dataset_fn, max_eval_steps),
            KEY_METRIC)
    if export_dir and trainer.is_chief:
        latest = trainer.latest_checkpoint()
        if latest:
            trainer.restore(latest)
        export.export_encoder(trainer.model.encoder, export_dir,
                              spm_model_file, do_lower_case, max_seq_length)
    return results
