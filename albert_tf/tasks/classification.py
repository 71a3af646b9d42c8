"""GLUE fine-tuning: the original run_classifier, through training.Trainer.

Train, evaluate every saved checkpoint on the dev set (keeping the best by
the task's key metric, pruning the others, as the original), predict the
test set with the best checkpoint into a GLUE submission file, export.
"""

from __future__ import annotations

import csv
import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from keras import ops

from albert_tf import checkpoints
from albert_tf import export
from albert_tf import metrics
from albert_tf import optimization
from albert_tf import training
from albert_tf.config import AlbertConfig
from albert_tf.data import glue
from albert_tf.models import AlbertClassifier
from albert_tf.tasks import pretraining
from albert_tf.tokenization import full_tokenizer

SUBMISSION_FILE = "submit_results.tsv"


@dataclasses.dataclass(frozen=True)
class FineTuneOptimizerConfig:
    """run_classifier's optimisation flags (AdamW, no start offset)."""

    optimizer: str = "adamw"
    learning_rate: float = 5e-5
    train_step: int = 1000
    warmup_step: int = 0


class ClassificationTask:
    """AlbertClassifier + mean cross-entropy (or STS-B's squared error)."""

    def __init__(self, config: AlbertConfig, num_labels: int,
                 is_regression: bool, optimizer: FineTuneOptimizerConfig,
                 dtype: str = "float32", dropout_prob: float = 0.1):
        self.config = config
        self.num_labels = num_labels
        self.is_regression = is_regression
        self.optimizer_config = optimizer
        self.dtype = dtype
        self.dropout_prob = dropout_prob

    def build_model(self) -> keras.Model:
        return AlbertClassifier(self.config, self.num_labels,
                                dropout_prob=self.dropout_prob,
                                dtype=pretraining.dtype_policy(self.dtype))

    def build_optimizer(self) -> keras.optimizers.Optimizer:
        c = self.optimizer_config
        optimizer = optimization.create_optimizer(
            c.learning_rate, c.train_step, c.warmup_step,
            optimizer=c.optimizer)
        if self.dtype == "float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    def _per_example_loss(self, logits, labels):
        if self.is_regression:
            # As the original: squared error of the squeezed [B, 1] output.
            predictions = ops.reshape(ops.cast(logits, "float32"), (-1,))
            return ops.square(predictions - ops.cast(labels, "float32"))
        log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        labels = ops.cast(labels, "int32")
        return -ops.squeeze(ops.take_along_axis(
            log_probs, labels[:, None], axis=-1), -1)

    def loss_terms(self, outputs, features, num_replicas: int) -> dict:
        loss = self._per_example_loss(outputs["logits"],
                                      features["label_ids"])
        count = ops.cast(ops.shape(loss)[0], "float32")
        return {"loss": (ops.sum(loss), count)}

    def metric_sums(self, outputs, features) -> dict:
        weights = ops.cast(features["is_real_example"], "float32")
        loss = self._per_example_loss(outputs["logits"],
                                      features["label_ids"])
        sums = {"eval_loss": (ops.sum(weights * loss), ops.sum(weights))}
        if not self.is_regression:
            correct = ops.cast(ops.equal(
                ops.argmax(outputs["logits"], -1),
                ops.cast(features["label_ids"], "int64")), "float32")
            sums["eval_accuracy"] = (ops.sum(weights * correct),
                                     ops.sum(weights))
        return sums


def _write_submission(path: str, examples: list, predictions: np.ndarray,
                      processor: glue.GlueProcessor) -> None:
    """GLUE's `index<TAB>prediction`, with label names (floats for STS-B)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["index", "prediction"])
        for i, (example, prediction) in enumerate(zip(examples, predictions)):
            index = example.guid if str(example.guid).isdigit() else i
            if processor.is_regression:
                value = f"{float(np.reshape(prediction, ())):.6f}"
            else:
                value = processor.label_list[int(np.argmax(prediction))]
            writer.writerow([index, value])
    os.replace(tmp, path)


def run(albert_config: AlbertConfig, run_config: training.RunConfig,
        optimizer_config: FineTuneOptimizerConfig,
        strategy: tf.distribute.Strategy, task_name: str, data_dir: str,
        spm_model_file: str | None, vocab_file: str | None = None,
        do_lower_case: bool = True, max_seq_length: int = 512,
        cached_dir: str | None = None, do_train: bool = False,
        do_eval: bool = False, do_predict: bool = False,
        eval_batch_size: int = 8, predict_batch_size: int = 8,
        init_checkpoint: str | None = None, dtype: str = "float32",
        classifier_dropout_prob: float = 0.1, export_dir: str | None = None,
        seed: int | None = None) -> dict:
    """Fine-tunes on one GLUE task; returns the best eval results."""
    if max_seq_length > albert_config.max_position_embeddings:
        raise ValueError(
            f"max_seq_length={max_seq_length} > max_position_embeddings="
            f"{albert_config.max_position_embeddings} of the config")
    processor = glue.get_processor(task_name, use_spm=bool(spm_model_file),
                                   do_lower_case=do_lower_case)
    tokenizer = full_tokenizer.FullTokenizer(
        vocab_file=vocab_file, do_lower_case=do_lower_case,
        spm_model_file=spm_model_file)
    output_dir = run_config.output_dir
    cached_dir = cached_dir or output_dir
    os.makedirs(output_dir, exist_ok=True)
    task = ClassificationTask(albert_config, processor.num_labels,
                              processor.is_regression, optimizer_config,
                              dtype, classifier_dropout_prob)
    trainer = training.Trainer(task, strategy, run_config)
    if trainer.is_chief:
        albert_config.to_json_file(os.path.join(output_dir,
                                                checkpoints.CONFIG_NAME))

    def dataset(split, batch_size):
        return glue.prepare_features(processor, data_dir, split, tokenizer,
                                     max_seq_length, cached_dir, batch_size)

    evaluate = None
    key_metric = metrics.KEY_METRIC[task_name.lower()]
    if do_eval:
        eval_file = dataset("eval", eval_batch_size)
        eval_dataset = glue.make_dataset(
            eval_file.path, max_seq_length, eval_batch_size,
            is_training=False, is_regression=processor.is_regression)

        def evaluate():
            out = trainer.predict(eval_dataset, ("logits",))
            logits = out["logits"]
            if processor.is_regression:
                logits = logits[:, 0]
            return metrics.task_metrics(task_name, logits, out["label_ids"],
                                        out["is_real_example"])

    def evaluate_new_checkpoints(_=None):
        return trainer.evaluate_checkpoints(evaluate, key_metric, prune=True)

    if do_train:
        train_file = dataset("train", None)

        def train_dataset_fn(context):
            return glue.make_dataset(
                train_file.path, max_seq_length,
                context.get_per_replica_batch_size(
                    run_config.train_batch_size), is_training=True,
                is_regression=processor.is_regression, drop_remainder=True,
                input_context=context, seed=seed)

        def init_fn(model):
            if init_checkpoint:
                report = checkpoints.load_checkpoint(model, init_checkpoint,
                                                     allow_partial=True)
                logging.info("Initialised from %s", report)

        # As the original, every saved checkpoint is evaluated; here right
        # after it is written, so only the best and the latest stay on disk.
        trainer.train(train_dataset_fn, init_fn,
                      on_save=evaluate_new_checkpoints if do_eval else None)

    results = {}
    if do_eval:
        evaluate_new_checkpoints()
        best = os.path.join(output_dir, training.BEST_DIR, "eval_results.txt")
        if os.path.exists(best):
            with open(best, encoding="utf-8") as f:
                results = {k: float(v) for k, v in (
                    line.split(" = ") for line in f.read().splitlines())}
        logging.info("Best eval: %s", results)

    if do_predict or export_dir:
        best_prefix = tf.train.latest_checkpoint(
            os.path.join(output_dir, training.BEST_DIR))
        chosen = best_prefix or trainer.latest_checkpoint()
        if chosen:
            logging.info("Predicting with %s", chosen)
            trainer.restore(chosen)
    if do_predict and trainer.is_chief:
        predict_file = dataset("predict", predict_batch_size)
        out = trainer.predict(glue.make_dataset(
            predict_file.path, max_seq_length, predict_batch_size,
            is_training=False, is_regression=processor.is_regression),
            ("logits",))
        real = out["logits"][:len(predict_file.examples)]
        _write_submission(os.path.join(output_dir, SUBMISSION_FILE),
                          predict_file.examples, real, processor)
    if export_dir and trainer.is_chief:
        export.export_model(trainer.model, export_dir, ("logits",),
                            spm_model_file, do_lower_case, max_seq_length)
    return results
