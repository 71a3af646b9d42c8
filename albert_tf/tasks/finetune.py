"""What every fine-tuning runner does, around a task-specific head.

run_classifier, run_squad and run_race all: validate their inputs, take
the output directory (run_dir), prepare cached features, initialise from
`--init_checkpoint` (every encoder variable must load), train, evaluate
every saved checkpoint (the step-0 one included, as the original's
Estimator saved it) keeping the best by the task's key metric and pruning
the others, predict and export with the best checkpoint. `run` is that
sequence; a task supplies only what differs (the FineTuneTask protocol).
"""

from __future__ import annotations

import math
import os
from typing import Protocol

import keras
import tensorflow as tf
from absl import logging

from albert_tf import checkpoints
from albert_tf import fileio
from albert_tf import run_dir
from albert_tf import training
from albert_tf.config import AlbertConfig
from albert_tf.data import cache

def init_fn(init_checkpoint: str | None, allow_partial: bool = False,
            init_from_group0: bool = False):
    """model -> None that loads `init_checkpoint` (any format) strictly.

    Every encoder variable must load unless allow_partial; only the task
    head may be absent (checkpoints.load_pretrained raises otherwise).
    """
    def load(model):
        if init_checkpoint:
            report = checkpoints.load_pretrained(
                model, init_checkpoint, allow_partial=allow_partial,
                init_from_group0=init_from_group0)
            logging.info("Initialised from %s: %s", init_checkpoint, report)
    return load


def check_init_checkpoint(init_checkpoint: str | None) -> None:
    """Fails before anything is written if the checkpoint is not there."""
    if init_checkpoint:
        checkpoints.detect_format(init_checkpoint)


class FineTuneTask(Protocol):
    """What `run` needs from a task, beyond training.Task."""

    key_metric: str  # Chooses the best checkpoint (higher is better).
    task_id: str  # Which task owns an output_dir, e.g. "glue/sst-2".

    def validate(self, do_train: bool, do_eval: bool,
                 do_predict: bool) -> None:
        """Checks inputs; raises before anything is written."""

    def prepare(self, do_train: bool, do_eval: bool,
                do_predict: bool) -> None:
        """Builds (or reuses) cached features; runs under the lock."""

    def train_data_key(self) -> dict:
        """What the training features are built from (their cache key):
        part of the run's identity (run_dir.RunDir.check_train_data)."""

    def eval_data_key(self) -> dict:
        """What the evaluation features are built from (optional): a rerun
        evaluating on other data is refused (RunDir.check_eval_data)."""

    def train_dataset(self, context: tf.distribute.InputContext,
                      global_batch_size: int) -> tf.data.Dataset: ...

    def evaluate(self, trainer: training.Trainer) -> dict:
        """Metrics of the weights now in trainer.model."""

    def predict(self, trainer: training.Trainer, output_dir: str) -> None:
        """Writes the task's prediction files from trainer.model."""

    def export(self, model: keras.Model, export_dir: str) -> None: ...


def run(task: FineTuneTask, albert_config: AlbertConfig,
        run_config: training.RunConfig, strategy: tf.distribute.Strategy, *,
        do_train: bool = False, do_eval: bool = False,
        do_predict: bool = False, init_checkpoint: str | None = None,
        allow_partial_init: bool = False, export_dir: str | None = None,
        tflite_dir: str | None = None, flags_text: str | None = None,
        wait_for_checkpoints: bool = True,
        restart_input: bool = False) -> dict:
    """Fine-tunes / evaluates / predicts / exports; returns the best eval.

    With do_eval but not do_train, evaluates the checkpoints of a training
    job writing into the same output_dir as they appear, until its last
    step (the original's separate eval job); without wait_for_checkpoints,
    only the checkpoints already there. A training rerun on other data
    (or another batch size, seed or padding) is refused unless
    restart_input (run_dir.RunDir.check_train_data).
    """
    if not (do_train or do_eval or do_predict or export_dir or tflite_dir):
        raise ValueError("nothing to do: set do_train, do_eval, do_predict, "
                         "export_dir or tflite_dir")
    if tflite_dir and not hasattr(task, "export_tflite"):
        raise ValueError(f"tflite_dir: {type(task).__name__} has no TFLite "
                         f"export (classification and RACE do)")
    output_dir = run_config.output_dir
    task.validate(do_train, do_eval, do_predict)
    check_init_checkpoint(init_checkpoint)
    role = "train" if do_train else "eval" if do_eval else "predict"
    is_chief = training.is_chief(strategy)
    with run_dir.open_run(output_dir, albert_config, role, is_chief,
                          task.task_id) as run:
        restart = False
        # Even --restart_input_on_new_data keeps the vocabulary.
        check_tokenizer(run, task)
        if do_train:
            run.check_init_checkpoint(init_checkpoint)
            # Before prepare, which may rebuild the cached features.
            restart = run.check_train_data(
                train_identity(task, run_config), restart_input)
        task.prepare(do_train, do_eval, do_predict)
        eval_key = getattr(task, "eval_data_key", None)
        if do_eval and eval_key is not None:
            run.check_eval_data(content_key(eval_key()))
        trainer = training.Trainer(task, strategy, run_config)
        initialise = init_fn(init_checkpoint, allow_partial_init)
        if do_train and trainer.latest_checkpoint() is None:
            # Load before claiming the directory: a checkpoint that does not
            # fit leaves no config behind to block the corrected rerun.
            initialise(trainer.model)
            initialise = None
        if restart:
            restart_input_pipeline(trainer, lambda context: task.train_dataset(
                context, run_config.train_batch_size))
        if do_train:
            run.write_files(flags_text)

        def evaluate():
            return check_finite(task.evaluate(trainer), trainer)

        def evaluate_new(_=None):
            return trainer.evaluate_checkpoints(evaluate, task.key_metric,
                                                prune=True)

        if do_train:
            trainer.train(
                lambda context: task.train_dataset(
                    context, run_config.train_batch_size),
                initialise, on_save=evaluate_new if do_eval else None,
                save_initial_checkpoint=True)
        results = {}
        if do_eval:
            if do_train or not wait_for_checkpoints:
                evaluate_new()
            else:
                trainer.evaluate_until(evaluate, task.key_metric,
                                       prune=True)
            best = fileio.join(output_dir, training.BEST_DIR,
                               "eval_results.txt")
            if tf.io.gfile.exists(best):
                results = training.read_results(best)
            logging.info("Best eval: %s", results)
        if (do_predict or export_dir or tflite_dir) and is_chief:
            chosen = restore_best(trainer, output_dir)
            check_trained(chosen, output_dir, init_checkpoint)
            if do_predict:
                task.predict(trainer, output_dir)
            if export_dir:
                task.export(trainer.model, export_dir)
            if tflite_dir:
                task.export_tflite(trainer.model, tflite_dir)
    return results


def check_finite(results: dict, trainer: training.Trainer) -> dict:
    """Evaluation results, refused when a metric is NaN or infinite.

    A NaN compares false with everything, so it could be kept (or written)
    as the best result: the run stops before the evaluation is recorded,
    naming the metric and the step.
    """
    bad = {k: v for k, v in results.items()
           if isinstance(v, (int, float)) and not math.isfinite(v)}
    if bad:
        raise FloatingPointError(
            f"evaluation of the step-{int(trainer.global_step.numpy())} "
            f"checkpoint in {trainer.config.output_dir} gave non-finite "
            f"metrics ({', '.join(f'{k}={v}' for k, v in sorted(bad.items()))}"
            f"); not recorded. Check the evaluation data's labels and the "
            f"model's outputs.")
    return results


def _is_sha256(value) -> bool:
    return (isinstance(value, str) and len(value) == 64
            and all(c in "0123456789abcdef" for c in value))


def content_key(key: dict) -> dict:
    """A feature cache key with its {path: sha256} maps keyed by the path
    relative to the files' common directory (the file name for one
    file): the same data copied elsewhere is the same run identity, while
    the cache (keyed on full paths) is simply rebuilt."""
    out = {}
    for field, value in key.items():
        if (isinstance(value, dict) and value
                and all(_is_sha256(v) for v in value.values())):
            paths = list(value)
            root = (os.path.dirname(paths[0]) if len(paths) == 1
                    else os.path.commonpath(paths))
            value = {os.path.relpath(p, root) if root else p: v
                     for p, v in value.items()}
        elif isinstance(value, dict):
            value = content_key(value)
        out[field] = value
    return out


def tokenizer_identity(task: FineTuneTask) -> dict:
    """sha256 of the task's SentencePiece model / vocab and its lowercasing
    (file contents, not paths)."""
    options = getattr(task, "options", None)
    lower = getattr(task, "do_lower_case",
                    getattr(options, "do_lower_case", None))
    identity = {"do_lower_case": lower}
    for name in ("spm_model_file", "vocab_file"):
        path = getattr(task, name, None)
        identity[name + "_sha256"] = fileio.fingerprint(path) if path else None
    return identity


def check_tokenizer(run: run_dir.RunDir, task: FineTuneTask) -> None:
    """Refuses evaluating, predicting or exporting a run's checkpoints with
    another tokenizer than the one recorded in its train_data.json: ids
    from another vocabulary would be read as this model's, silently.
    Training runs too: --restart_input_on_new_data restarts the data, not
    the vocabulary."""
    path = fileio.join(run.output_dir, run_dir.TRAIN_DATA_NAME)
    if not tf.io.gfile.exists(path):
        return
    stored = fileio.read_json(path)
    if not isinstance(stored, dict) or "tokenizer" not in stored:
        return
    differences = cache.key_differences(stored["tokenizer"],
                                        tokenizer_identity(task))
    if differences:
        raise run_dir.ConfigMismatchError(
            f"{run.output_dir} was trained with another tokenizer ({path}): "
            + "; ".join(differences) + ". Give the --spm_model_file / "
            "--vocab_file / --do_lower_case it was trained with, or use a "
            "new --output_dir.")


def train_identity(task: FineTuneTask,
                   run_config: training.RunConfig) -> dict:
    """The training data's identity: the features' cache key and what a
    restored input iterator keeps from the run that saved it (batch size,
    shuffle seed, padding), since restoring it ignores the new values."""
    return {"features": content_key(task.train_data_key()),
            "tokenizer": tokenizer_identity(task),
            "input": {"train_batch_size": run_config.train_batch_size,
                      "seed": getattr(task, "seed", None),
                      "pad_to_multiple": getattr(task, "pad_to_multiple",
                                                 0)}}


def restart_input_pipeline(trainer: training.Trainer, dataset_fn) -> None:
    """Re-saves the latest checkpoint with a fresh input iterator.

    A checkpointed tf.data iterator restores its whole pipeline (files,
    shuffle buffer, batch size) from the run that saved it. For
    --restart_input_on_new_data the weights, optimizer and step are read
    without it, and the latest checkpoint is written again with an
    iterator at the start of `dataset_fn`'s data, which train() resumes.
    """
    latest = trainer.latest_checkpoint()
    if latest is None:
        return
    if (trainer.num_replicas != 1
            or not trainer.config.checkpoint_input_pipeline):
        return  # The input is not checkpointed: it starts over anyway.
    tf.train.Checkpoint(model=trainer.model, optimizer=trainer.optimizer,
                        global_step=trainer.global_step
                        ).read(latest).expect_partial()
    trainer.checkpoint.iterator = iter(
        dataset_fn(tf.distribute.InputContext()))
    path = trainer.manager.save(
        checkpoint_number=int(trainer.global_step.numpy()))
    logging.warning("Restarted the input on the new data: %s now resumes "
                    "at step %d from the first batch", path,
                    int(trainer.global_step.numpy()))


def restore_best(trainer: training.Trainer, output_dir: str) -> str:
    """Loads best/ (else the latest checkpoint); never random weights."""
    chosen = tf.train.latest_checkpoint(
        fileio.join(output_dir, training.BEST_DIR))
    return restore_latest(trainer, output_dir, chosen)


def check_trained(chosen: str, output_dir: str,
                  init_checkpoint: str | None) -> bool:
    """Warns when predictions or exports come from the step-0 weights.

    The step-0 checkpoint is a candidate, as in the original, and wins when
    no later one scores strictly better. From a pretrained
    --init_checkpoint that is a real model; from random initialisation it
    is untrained, which must not pass silently. Returns whether the
    weights are untrained random ones.
    """
    if training.checkpoint_step(chosen) != 0:
        return False
    flags_path = fileio.join(output_dir, run_dir.FLAGS_NAME)
    initialised = bool(init_checkpoint) or (
        tf.io.gfile.exists(flags_path) and any(
            line.startswith("--init_checkpoint=")
            and line.strip() != "--init_checkpoint="
            for line in fileio.read_text(flags_path).splitlines()))
    if initialised:
        logging.warning("Predicting / exporting with %s: the initial "
                        "weights (from --init_checkpoint) scored best; "
                        "fine-tuning did not improve on them.", chosen)
        return False
    logging.warning(
        "UNTRAINED: predicting / exporting with %s, the step-0 weights of "
        "a run without --init_checkpoint (random initialisation), because "
        "no later checkpoint scored strictly better on dev. These "
        "predictions are those of an untrained model; train longer, check "
        "the data, or initialise from a pretrained checkpoint.", chosen)
    return True


def restore_latest(trainer: training.Trainer, output_dir: str,
                   chosen: str | None = None) -> str:
    """Loads `chosen`, else the latest checkpoint; never random weights."""
    if chosen is None:
        chosen = trainer.latest_checkpoint()
    if chosen is None:
        raise FileNotFoundError(
            f"no checkpoint in {output_dir} to predict or export with: "
            f"train first (--do_train) or point --output_dir at a trained "
            f"run")
    logging.info("Predicting / exporting with %s", chosen)
    trainer.restore(chosen)
    return chosen
