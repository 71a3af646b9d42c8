"""RACE fine-tuning: the original run_race, on tasks.finetune.run.

What is RACE-specific lives here: the processor and cached features
(data.race), the multiple-choice loss (mean cross-entropy over the four
choices), accuracy overall and per level (the paper reports middle, high
and both), `predictions.jsonl`, and the `serve_choice` export.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from keras import ops

from albert_tf import fileio
from albert_tf import losses
from albert_tf import optimization
from albert_tf import training
from albert_tf.config import AlbertConfig
from albert_tf.data import cache
from albert_tf.data import race
from albert_tf.models import AlbertMultipleChoice
from albert_tf.serving import export
from albert_tf.tokenization import full_tokenizer

KEY_METRIC = "eval_accuracy"
PREDICTIONS_FILE = "predictions.jsonl"
# The original's split names -> the data directory names.
SPLITS = {"train": race.TRAIN, "eval": race.DEV, "predict": race.TEST}
CACHE_FORMAT = 1  # Bump when the feature conversion changes.


class RaceTask:
    """AlbertMultipleChoice on RACE (a finetune.FineTuneTask)."""

    key_metric = KEY_METRIC
    task_id = "race"

    def __init__(self, config: AlbertConfig, data_dir: str,
                 optimizer: optimization.OptimizerConfig, *,
                 spm_model_file: str | None, vocab_file: str | None = None,
                 do_lower_case: bool = True, max_seq_length: int = 512,
                 max_qa_length: int = 128, high_only: bool = False,
                 middle_only: bool = False, feature_files: dict[str, str],
                 eval_batch_size: int = 8, predict_batch_size: int = 8,
                 dtype: str = "float32", dropout_prob: float = 0.1,
                 seed: int | None = None, pad_to_multiple: int = 0,
                 model_options: dict | None = None):
        if max_seq_length > config.max_position_embeddings:
            raise ValueError(
                f"max_seq_length={max_seq_length} > max_position_embeddings="
                f"{config.max_position_embeddings} of the config")
        race.check_lengths(max_seq_length, max_qa_length)
        self.config = config
        # AlbertEncoder's use_one_hot_embeddings and attention_implementation.
        self.model_options = dict(model_options or {})
        self.data_dir = data_dir
        self.optimizer_config = optimizer
        self.processor = race.RaceProcessor(
            use_spm=bool(spm_model_file), do_lower_case=do_lower_case,
            high_only=high_only, middle_only=middle_only)
        self.spm_model_file = spm_model_file
        self.vocab_file = vocab_file
        self.do_lower_case = do_lower_case
        self.max_seq_length = max_seq_length
        self.max_qa_length = max_qa_length
        self.feature_files = feature_files
        self.batch_sizes = {"train": None, "eval": eval_batch_size,
                            "predict": predict_batch_size}
        self.dtype = dtype
        self.dropout_prob = dropout_prob
        self.seed = seed
        # > 0: dynamic padding (finetune_input.make_batches), 0: fixed.
        self.pad_to_multiple = pad_to_multiple
        self._examples: dict[str, list] = {}

    # ---------------------------------------------------- training.Task ---

    def build_model(self) -> keras.Model:
        return AlbertMultipleChoice(self.config, race.NUM_CHOICES,
                                    dropout_prob=self.dropout_prob,
                                    dtype=training.dtype_policy(self.dtype),
                                    **self.model_options)

    def build_optimizer(self) -> keras.optimizers.Optimizer:
        return optimization.build_optimizer(self.optimizer_config, self.dtype)

    def loss_terms(self, outputs, features, num_replicas: int) -> dict:
        # As run_race.create_model: mean cross-entropy over the [B, 4].
        return {"loss": losses.mean_terms(losses.per_example_nll(
            outputs["logits"], features["label_ids"]))}

    def loss_denominators(self, features, num_replicas: int) -> dict:
        """loss_terms' denominator (examples in the batch), for accumulation."""
        return {"loss": losses.example_count(features["input_ids"])}

    def metric_sums(self, outputs, features) -> dict:
        weights = ops.cast(features["is_real_example"], "float32")
        nll = losses.per_example_nll(outputs["logits"],
                                     features["label_ids"])
        correct = ops.cast(ops.equal(
            ops.argmax(outputs["logits"], -1),
            ops.cast(features["label_ids"], "int64")), "float32")
        return {"eval_loss": (ops.sum(weights * nll), ops.sum(weights)),
                "eval_accuracy": (ops.sum(weights * correct),
                                  ops.sum(weights))}

    # ----------------------------------------------- finetune.FineTuneTask -

    def _splits(self, do_train, do_eval, do_predict) -> list[str]:
        return [split for split, wanted in (
            ("train", do_train), ("eval", do_eval), ("predict", do_predict))
            if wanted]

    def validate(self, do_train: bool, do_eval: bool,
                 do_predict: bool) -> None:
        for split in self._splits(do_train, do_eval, do_predict):
            for level in self.processor.levels:
                directory = self.processor.level_dir(
                    self.data_dir, SPLITS[split], level)
                if not tf.io.gfile.isdir(directory):
                    raise FileNotFoundError(
                        f"--data_dir={self.data_dir}: no directory "
                        f"{directory} for the RACE {split} set (use "
                        f"--high_only / --middle_only for one level)")
        for path in (self.spm_model_file, self.vocab_file):
            if path and not tf.io.gfile.exists(path):
                raise FileNotFoundError(f"tokenizer file not found: {path}")

    def _cache_key(self, split: str, sources: list[str]) -> dict:
        return {"format": CACHE_FORMAT, "task": "race", "split": split,
                "sources": fileio.fingerprints(sources),
                "tokenizer": fileio.fingerprints(
                    [self.spm_model_file, self.vocab_file]),
                "do_lower_case": self.do_lower_case,
                "levels": list(self.processor.levels),
                "max_seq_length": self.max_seq_length,
                "max_qa_length": self.max_qa_length,
                "padded_to": self.batch_sizes[split]}

    def train_data_key(self) -> dict:
        return self._cache_key("train", sorted(self.processor.source_files(
            self.data_dir, SPLITS["train"])))

    def eval_data_key(self) -> dict:
        return self._cache_key("eval", sorted(self.processor.source_files(
            self.data_dir, SPLITS["eval"])))

    def prepare(self, do_train: bool, do_eval: bool,
                do_predict: bool) -> None:
        tokenizer = None
        for split in self._splits(do_train, do_eval, do_predict):
            examples = self.processor.get_examples(self.data_dir,
                                                   SPLITS[split])
            self._examples[split] = examples
            to_write = list(examples)
            if self.batch_sizes[split]:
                to_write = race.pad_examples(examples,
                                             self.batch_sizes[split])
            sources = sorted(self.processor.source_files(
                self.data_dir, SPLITS[split]))
            path = self.feature_files[split]
            key = self._cache_key(split, sources)
            if cache.lookup(path, key):
                continue
            if tokenizer is None:
                tokenizer = full_tokenizer.FullTokenizer(
                    vocab_file=self.vocab_file,
                    do_lower_case=self.do_lower_case,
                    spm_model_file=self.spm_model_file)
            cache.write(path, key, lambda tmp, rows=to_write:
                        race.write_features(rows, self.max_seq_length,
                                            self.max_qa_length, tokenizer,
                                            tmp))
            logging.info("RACE %s: %d questions + %d padding -> %s", split,
                         len(examples), len(to_write) - len(examples), path)

    def _dataset(self, split: str) -> tf.data.Dataset:
        return race.make_dataset(self.feature_files[split],
                                 self.max_seq_length,
                                 self.batch_sizes[split], is_training=False,
                                 pad_to_multiple=self.pad_to_multiple)

    def train_dataset(self, context: tf.distribute.InputContext,
                      global_batch_size: int) -> tf.data.Dataset:
        return race.make_dataset(
            self.feature_files["train"], self.max_seq_length,
            context.get_per_replica_batch_size(global_batch_size),
            is_training=True, drop_remainder=True, input_context=context,
            seed=self.seed, pad_to_multiple=self.pad_to_multiple)

    def _probabilities(self, trainer: training.Trainer,
                       split: str) -> tuple[np.ndarray, dict]:
        """Softmax over the choices of the real examples [N, 4], and the
        raw outputs."""
        out = trainer.predict(self._dataset(split), ("logits",))
        n = len(self._examples[split])
        logits = out["logits"][:n].astype(np.float64)
        logits -= logits.max(-1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(-1, keepdims=True)
        return probabilities, out

    def evaluate(self, trainer: training.Trainer) -> dict:
        examples = self._examples["eval"]
        probabilities, out = self._probabilities(trainer, "eval")
        return accuracy_by_level(examples, probabilities,
                                 out["label_ids"][:len(examples)])

    def predict(self, trainer: training.Trainer, output_dir: str) -> None:
        examples = self._examples["predict"]
        probabilities, _ = self._probabilities(trainer, "predict")
        lines = []
        for example, p in zip(examples, probabilities):
            lines.append(json.dumps({
                "id": example.example_id,
                "question_index": example.question_index,
                "level": example.level,
                "prediction": race.LABELS[int(p.argmax())],
                "probabilities": [float(x) for x in p]}))
        fileio.write_atomic(fileio.join(output_dir, PREDICTIONS_FILE),
                            "".join(line + "\n" for line in lines))

    def export(self, model: keras.Model, export_dir: str) -> None:
        export.export_multiple_choice(
            model, export_dir, spm_model_file=self.spm_model_file,
            do_lower_case=self.do_lower_case,
            max_seq_length=self.max_seq_length,
            max_qa_length=self.max_qa_length, vocab_file=self.vocab_file)

    def export_tflite(self, model: keras.Model, tflite_dir: str) -> None:
        from albert_tf.serving import tflite  # Only TFLite exports need it.

        tflite.export_tflite(
            model, tflite_dir, spm_model_file=self.spm_model_file,
            do_lower_case=self.do_lower_case,
            max_seq_length=self.max_seq_length)


def accuracy_by_level(examples: list, probabilities: np.ndarray,
                      label_ids: np.ndarray) -> dict:
    """eval_accuracy overall and per level, and eval_loss (mean NLL).

    The paper (Table 10) reports RACE accuracy for middle, high and both.
    A level with no examples gets no key.
    """
    label_ids = np.asarray(label_ids).reshape(-1).astype(np.int64)
    correct = probabilities.argmax(-1) == label_ids
    nll = -np.log(np.maximum(
        probabilities[np.arange(len(label_ids)), label_ids], 1e-30))
    results = {"eval_accuracy": float(correct.mean()),
               "eval_loss": float(nll.mean()),
               "num_examples": float(len(examples))}
    levels = np.array([e.level for e in examples])
    for level in race.LEVELS:
        mask = levels == level
        if mask.any():
            results[f"eval_accuracy_{level}"] = float(correct[mask].mean())
            results[f"num_examples_{level}"] = float(mask.sum())
    return results
