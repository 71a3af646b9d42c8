"""GLUE fine-tuning: the original run_classifier, on tasks.finetune.run.

What is GLUE-specific lives here: the processor and cached features, the
classifier loss (mean cross-entropy, or STS-B's squared error), the
metrics with the original key names, and the prediction files
(`submit_results.tsv` with label names, `test_results.tsv` with the
per-class probabilities as the original wrote them).
"""

from __future__ import annotations

import csv
import io

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from albert_tf import fileio
from albert_tf import losses
from albert_tf import optimization
from albert_tf import training
from albert_tf.config import AlbertConfig
from albert_tf.data import glue
from albert_tf.metrics import glue as glue_metrics
from albert_tf.models import AlbertClassifier
from albert_tf.serving import export
from albert_tf.tokenization import full_tokenizer

SUBMISSION_FILE = "submit_results.tsv"
TEST_RESULTS_FILE = "test_results.tsv"


class ClassificationTask:
    """AlbertClassifier on one GLUE task (a finetune.FineTuneTask)."""

    def __init__(self, config: AlbertConfig, task_name: str, data_dir: str,
                 optimizer: optimization.OptimizerConfig, *,
                 spm_model_file: str | None, vocab_file: str | None = None,
                 do_lower_case: bool = True, max_seq_length: int = 512,
                 cached_dir: str, eval_batch_size: int = 8,
                 predict_batch_size: int = 8, dtype: str = "float32",
                 dropout_prob: float = 0.1, seed: int | None = None,
                 pad_to_multiple: int = 0,
                 model_options: dict | None = None):
        if max_seq_length > config.max_position_embeddings:
            raise ValueError(
                f"max_seq_length={max_seq_length} > max_position_embeddings="
                f"{config.max_position_embeddings} of the config")
        self.config = config
        # AlbertEncoder's use_one_hot_embeddings and attention_implementation.
        self.model_options = dict(model_options or {})
        self.task_name = task_name
        self.data_dir = data_dir
        self.optimizer_config = optimizer
        self.processor = glue.get_processor(
            task_name, use_spm=bool(spm_model_file),
            do_lower_case=do_lower_case)
        self.spm_model_file = spm_model_file
        self.vocab_file = vocab_file
        self.do_lower_case = do_lower_case
        self.max_seq_length = max_seq_length
        self.cached_dir = cached_dir
        self.eval_batch_size = eval_batch_size
        self.predict_batch_size = predict_batch_size
        self.dtype = dtype
        self.dropout_prob = dropout_prob
        self.seed = seed
        # > 0: dynamic padding (finetune_input.make_batches), 0: fixed.
        self.pad_to_multiple = pad_to_multiple
        self.key_metric = glue_metrics.KEY_METRIC[task_name.lower()]
        self.task_id = f"glue/{task_name.lower()}"
        self._files: dict[str, glue.FeatureFile] = {}

    # ---------------------------------------------------- training.Task ---

    def build_model(self) -> keras.Model:
        return AlbertClassifier(self.config, self.processor.num_labels,
                                dropout_prob=self.dropout_prob,
                                dtype=training.dtype_policy(self.dtype),
                                **self.model_options)

    def build_optimizer(self) -> keras.optimizers.Optimizer:
        return optimization.build_optimizer(self.optimizer_config, self.dtype)

    def _per_example_loss(self, logits, labels):
        if self.processor.is_regression:
            return losses.squared_error(logits, labels)
        return losses.per_example_nll(logits, labels)

    def loss_terms(self, outputs, features, num_replicas: int) -> dict:
        return {"loss": losses.mean_terms(self._per_example_loss(
            outputs["logits"], features["label_ids"]))}

    def loss_denominators(self, features, num_replicas: int) -> dict:
        """loss_terms' denominator (examples in the batch), for accumulation."""
        return {"loss": losses.example_count(features["input_ids"])}

    def metric_sums(self, outputs, features) -> dict:
        weights = ops.cast(features["is_real_example"], "float32")
        loss = self._per_example_loss(outputs["logits"],
                                      features["label_ids"])
        sums = {"eval_loss": (ops.sum(weights * loss), ops.sum(weights))}
        if not self.processor.is_regression:
            correct = ops.cast(ops.equal(
                ops.argmax(outputs["logits"], -1),
                ops.cast(features["label_ids"], "int64")), "float32")
            sums["eval_accuracy"] = (ops.sum(weights * correct),
                                     ops.sum(weights))
        return sums

    # ----------------------------------------------- finetune.FineTuneTask -

    def _splits(self, do_train, do_eval, do_predict) -> list[str]:
        return [split for split, wanted in (
            ("train", do_train), ("eval", do_eval), ("predict", do_predict))
            if wanted]

    def validate(self, do_train: bool, do_eval: bool,
                 do_predict: bool) -> None:
        for split in self._splits(do_train, do_eval, do_predict):
            path = self.processor.file_path(self.data_dir,
                                            glue.CACHE_SPLITS[split])
            if not tf.io.gfile.exists(path):
                raise FileNotFoundError(
                    f"--data_dir={self.data_dir}: no {path} for the "
                    f"{self.task_name} {split} set")
        for path in (self.spm_model_file, self.vocab_file):
            if path and not tf.io.gfile.exists(path):
                raise FileNotFoundError(f"tokenizer file not found: {path}")

    def _tokenizer(self) -> full_tokenizer.FullTokenizer:
        return full_tokenizer.FullTokenizer(
            vocab_file=self.vocab_file, do_lower_case=self.do_lower_case,
            spm_model_file=self.spm_model_file)

    def _data_key(self, split: str) -> dict:
        # The cache key less its record count, which needs the examples
        # read (the TSV's sha256 determines it).
        key = glue.cache_key(
            self.processor, self.processor.file_path(
                self.data_dir, glue.CACHE_SPLITS[split]), split,
            self._tokenizer(), self.max_seq_length, num_records=0)
        del key["num_records"]
        return key

    def train_data_key(self) -> dict:
        return self._data_key("train")

    def eval_data_key(self) -> dict:
        return self._data_key("eval")

    def prepare(self, do_train: bool, do_eval: bool,
                do_predict: bool) -> None:
        tokenizer = self._tokenizer()
        batch_sizes = {"train": None, "eval": self.eval_batch_size,
                       "predict": self.predict_batch_size}
        for split in self._splits(do_train, do_eval, do_predict):
            self._files[split] = glue.prepare_features(
                self.processor, self.data_dir, split, tokenizer,
                self.max_seq_length, self.cached_dir, batch_sizes[split])

    def _dataset(self, split: str, batch_size: int) -> tf.data.Dataset:
        return glue.make_dataset(
            self._files[split].path, self.max_seq_length, batch_size,
            is_training=False, is_regression=self.processor.is_regression,
            pad_to_multiple=self.pad_to_multiple)

    def train_dataset(self, context: tf.distribute.InputContext,
                      global_batch_size: int) -> tf.data.Dataset:
        return glue.make_dataset(
            self._files["train"].path, self.max_seq_length,
            context.get_per_replica_batch_size(global_batch_size),
            is_training=True, is_regression=self.processor.is_regression,
            drop_remainder=True, input_context=context, seed=self.seed,
            pad_to_multiple=self.pad_to_multiple)

    def _logits(self, trainer: training.Trainer, split: str,
                batch_size: int) -> dict:
        out = trainer.predict(self._dataset(split, batch_size), ("logits",))
        if self.processor.is_regression:
            out["logits"] = out["logits"][:, 0]
        return out

    def evaluate(self, trainer: training.Trainer) -> dict:
        out = self._logits(trainer, "eval", self.eval_batch_size)
        return glue_metrics.task_metrics(
            self.task_name, out["logits"], out["label_ids"],
            out["is_real_example"])

    def predict(self, trainer: training.Trainer, output_dir: str) -> None:
        feature_file = self._files["predict"]
        out = self._logits(trainer, "predict", self.predict_batch_size)
        real = out["logits"][:len(feature_file.examples)]
        fileio.write_atomic(
            fileio.join(output_dir, SUBMISSION_FILE),
            submission_tsv(feature_file.examples, real, self.processor))
        # As the original: the class probabilities, or STS-B's score.
        scores = real.astype(np.float32)
        if not self.processor.is_regression:
            scores = tf.nn.softmax(scores).numpy()
        glue.write_test_results(fileio.join(output_dir, TEST_RESULTS_FILE),
                                scores)

    def export(self, model: keras.Model, export_dir: str) -> None:
        export.export_classifier(
            model, export_dir,
            label_list=(None if self.processor.is_regression
                        else [str(x) for x in self.processor.label_list]),
            is_regression=self.processor.is_regression,
            spm_model_file=self.spm_model_file,
            do_lower_case=self.do_lower_case,
            max_seq_length=self.max_seq_length, vocab_file=self.vocab_file)

    def export_tflite(self, model: keras.Model, tflite_dir: str) -> None:
        from albert_tf.serving import tflite  # Only TFLite exports need it.

        tflite.export_tflite(
            model, tflite_dir, spm_model_file=self.spm_model_file,
            do_lower_case=self.do_lower_case,
            max_seq_length=self.max_seq_length,
            label_list=(None if self.processor.is_regression
                        else [str(x) for x in self.processor.label_list]))


def submission_tsv(examples: list, predictions: np.ndarray,
                   processor: glue.GlueProcessor) -> str:
    """GLUE's `index<TAB>prediction`, with label names (floats for STS-B)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(["index", "prediction"])
    for i, (example, prediction) in enumerate(zip(examples, predictions)):
        index = example.guid if str(example.guid).isdigit() else i
        if processor.is_regression:
            value = f"{float(np.reshape(prediction, ())):.6f}"
        else:
            value = processor.label_list[int(np.argmax(prediction))]
        writer.writerow([index, value])
    return buffer.getvalue()
