"""Pretraining: MLM + SOP with the original recipe, through training.Trainer.

`run(...)` is what run_pretraining.py calls: train, evaluate every checkpoint
(keeping the best by masked_lm_accuracy), export the encoder.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import tensorflow as tf
from keras import ops

from albert_tf import fileio
from albert_tf import losses
from albert_tf import optimization
from albert_tf import run_dir
from albert_tf import training
from albert_tf.config import AlbertConfig
from albert_tf.data import pretraining_input
from albert_tf.models import AlbertPretrainer
from albert_tf.serving import export
from albert_tf.tasks import finetune

KEY_METRIC = "masked_lm_accuracy"


@dataclasses.dataclass(frozen=True)
class OptimizerConfig(optimization.OptimizerConfig):
    """run_pretraining's defaults: LAMB, as the paper's recipe."""

    optimizer: str = "lamb"
    learning_rate: float = 0.00176
    num_train_steps: int = 125000
    num_warmup_steps: int = 3125


class PretrainingTask:
    """AlbertPretrainer + the original MLM/SOP losses and eval metrics."""

    def __init__(self, config: AlbertConfig,
                 optimizer: optimization.OptimizerConfig,
                 dtype: str = "float32", sentence_loss_weight: float = 1.0,
                 model_options: dict | None = None):
        self.config = config
        # AlbertEncoder's use_one_hot_embeddings and attention_implementation.
        self.model_options = dict(model_options or {})
        self.optimizer_config = optimizer
        self.dtype = dtype
        self.sentence_loss_weight = sentence_loss_weight

    def build_model(self) -> keras.Model:
        model = AlbertPretrainer(self.config,
                                 dtype=training.dtype_policy(self.dtype),
                                 **self.model_options)
        if self.sentence_loss_weight == 0.0:
            # MLM only: nothing trains the pooler or the sentence head.
            # In the original's graph a variable outside the loss gets a
            # None gradient, which its optimizers skip. Here the weighted
            # term keeps them in the graph with zero gradients, and LAMB's
            # weight decay (trust ratio 1 / weight_decay_rate) would then
            # shrink them by (1 - lr) per step to ~0. Frozen, they stay at
            # their initialisation, as the original would leave them, and
            # are still saved, so checkpoints keep every name.
            model.encoder.pooler.trainable = False
            model.sentence_order_head.trainable = False
        return model

    def build_optimizer(self) -> keras.optimizers.Optimizer:
        return optimization.build_optimizer(self.optimizer_config, self.dtype)

    def loss_terms(self, outputs, features, num_replicas: int) -> dict:
        """MLM: sum(w * nll) / (sum(w) + 1e-5); SOP: mean nll."""
        return losses.pretraining_terms(outputs, features, num_replicas,
                                        self.sentence_loss_weight)

    def loss_denominators(self, features, num_replicas: int) -> dict:
        """loss_terms' denominators from the features, for accumulation."""
        return losses.pretraining_denominators(features, num_replicas)

    def metric_sums(self, outputs, features) -> dict:
        return metric_sums(outputs, features)


def metric_sums(outputs: dict, features: dict) -> dict:
    """The original eval metrics as exact (sum, count) pairs."""
    weights = ops.cast(features["masked_lm_weights"], "float32")
    ids = features["masked_lm_ids"]
    mlm_nll = losses.per_example_nll(outputs["mlm_logits"], ids)
    mlm_correct = ops.cast(ops.equal(
        ops.argmax(outputs["mlm_logits"], -1), ops.cast(ids, "int64")),
        "float32")
    labels = ops.reshape(features["next_sentence_labels"], (-1,))
    sop_nll = losses.per_example_nll(outputs["sop_logits"], labels)
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


def check_input_files(input_file: str, flag: str = "input_file"
                      ) -> list[tuple[str, int]]:
    """(path, bytes) of each file `input_file` names, checked.

    A pattern that matches nothing, or an empty file, is an error naming
    the flag and the file, before anything is written: with nothing to
    train or evaluate on a run ended in an OutOfRangeError, and the input
    pipeline refuses an empty file anyway (pretraining_input.check_files),
    but only once the run has started.
    """
    files = [(path, tf.io.gfile.stat(path).length)
             for path in fileio.expand_globs(input_file, flag)]
    empty = [path for path, size in files if size == 0]
    if empty:
        what = ("every file is empty" if len(empty) == len(files)
                else f"{len(empty)} of {len(files)} files are empty")
        raise ValueError(f"--{flag}={input_file}: {what} (0 bytes, no "
                         f"records): " + ", ".join(empty))
    return files


def _resolved(path: str) -> str:
    """An absolute path (URLs as given): a relative path names the same
    files from another working directory only by accident."""
    return path if "://" in path else os.path.abspath(path)


def train_identity(input_file: str, max_seq_length: int,
                   max_predictions_per_seq: int, train_batch_size: int,
                   seed: int | None) -> dict:
    """The pretraining data's identity (run_dir.RunDir.check_train_data):
    the resolved --input_file list with sizes, and what a restored input
    iterator keeps from the run that saved it."""
    return {"input_files": [[_resolved(path), size] for path, size in
                            check_input_files(input_file)],
            "max_seq_length": max_seq_length,
            "max_predictions_per_seq": max_predictions_per_seq,
            "input": {"train_batch_size": train_batch_size, "seed": seed}}


def run(albert_config: AlbertConfig, run_config: training.RunConfig,
        optimizer_config: optimization.OptimizerConfig,
        strategy: tf.distribute.Strategy, input_file: str,
        max_seq_length: int, max_predictions_per_seq: int,
        do_train: bool = True, do_eval: bool = False, eval_batch_size: int = 64,
        max_eval_steps: int = 100, init_checkpoint: str | None = None,
        init_from_group0: bool = False, allow_partial_init: bool = False,
        dtype: str = "float32", export_dir: str | None = None,
        seed: int | None = None, spm_model_file: str | None = None,
        do_lower_case: bool = True, flags_text: str | None = None,
        sentence_loss_weight: float = 1.0, restart_input: bool = False,
        eval_input_file: str | None = None,
        model_options: dict | None = None) -> dict:
    """Pretrains and/or evaluates; returns the last eval results.

    Inputs are checked before output_dir is touched; output_dir is locked
    for the run (run_dir.open_run). With do_eval and not do_train, it
    evaluates a training job's checkpoints as they appear, until the last
    step, as the original's eval loop. eval_input_file (default:
    input_file, as the original) is what evaluation reads. A training
    rerun on other files (train_identity) is refused unless restart_input.
    """
    if max_seq_length > albert_config.max_position_embeddings:
        raise ValueError(
            f"max_seq_length={max_seq_length} > max_position_embeddings="
            f"{albert_config.max_position_embeddings} of the config")
    if not (do_train or do_eval or export_dir):
        raise ValueError("nothing to do: set do_train, do_eval or export_dir")
    if do_eval and eval_batch_size % strategy.num_replicas_in_sync:
        raise ValueError(f"eval_batch_size={eval_batch_size} is not "
                         f"divisible by the {strategy.num_replicas_in_sync} "
                         f"replicas")
    # Fails before writing.
    identity = train_identity(input_file, max_seq_length,
                              max_predictions_per_seq,
                              run_config.train_batch_size, seed)
    eval_input_file = eval_input_file or input_file
    eval_identity = None
    if do_eval:
        eval_identity = {
            "input_files": [[_resolved(path), size] for path, size in
                            check_input_files(eval_input_file,
                                              "eval_input_file")],
            "max_seq_length": max_seq_length,
            "max_predictions_per_seq": max_predictions_per_seq,
            # Which batches an evaluation reads.
            "eval_batch_size": eval_batch_size,
            "max_eval_steps": max_eval_steps}
    finetune.check_init_checkpoint(init_checkpoint)
    output_dir = run_config.output_dir
    role = "train" if do_train else "eval" if do_eval else "predict"
    task = PretrainingTask(albert_config, optimizer_config, dtype,
                           sentence_loss_weight, model_options)
    with run_dir.open_run(output_dir, albert_config, role,
                          training.is_chief(strategy), "pretraining") as run:
        if do_train:
            run.check_init_checkpoint(init_checkpoint)
        restart = do_train and run.check_train_data(identity, restart_input)
        if eval_identity is not None:
            run.check_eval_data(eval_identity)
        trainer = training.Trainer(task, strategy, run_config)
        initialise = finetune.init_fn(init_checkpoint, allow_partial_init,
                                      init_from_group0)
        if do_train and trainer.latest_checkpoint() is None:
            # Load before claiming the directory (see finetune.run).
            initialise(trainer.model)
            initialise = None

        def dataset_fn(is_training, global_batch):
            def make(context):
                return pretraining_input.pretraining_dataset(
                    input_file if is_training else eval_input_file,
                    max_seq_length, max_predictions_per_seq,
                    context.get_per_replica_batch_size(global_batch),
                    is_training=is_training, input_context=context,
                    seed=seed, vocab_size=albert_config.vocab_size)
            return make

        if restart:
            finetune.restart_input_pipeline(
                trainer, dataset_fn(True, run_config.train_batch_size))
        if do_train:
            run.write_files(flags_text)

        results = {}
        if do_train:
            try:
                trainer.train(
                    dataset_fn(True, run_config.train_batch_size),
                    initialise)
            except tf.errors.DataLossError as e:
                corrupt = pretraining_input.find_corrupt_file(input_file)
                raise ValueError(
                    f"corrupt TFRecord in {corrupt or input_file}: "
                    f"{e.message}") from e
        if do_eval:
            eval_dataset_fn = dataset_fn(False, eval_batch_size)

            def evaluate():
                return finetune.check_finite(
                    trainer.evaluate(eval_dataset_fn, max_eval_steps),
                    trainer)

            if do_train:
                results = trainer.evaluate_checkpoints(evaluate, KEY_METRIC)
            else:
                results = trainer.evaluate_until(evaluate, KEY_METRIC)
        if export_dir and trainer.is_chief:
            finetune.restore_latest(trainer, output_dir)
            export.export_pretrainer(
                trainer.model, export_dir, spm_model_file=spm_model_file,
                do_lower_case=do_lower_case, max_seq_length=max_seq_length)
    return results
