"""Token classification (NER, POS) on CoNLL files, on tasks.finetune.run.

The original has no such task; this follows BERT-NER practice (the
first-piece convention, see data.conll) and scores entities with seqeval
(token_metrics). What is specific lives here: the label list (written to
`label_list.txt` in the output directory by training, so later eval,
predict and export runs use the same ids), the cached features, the loss
(mean cross-entropy over labelled first pieces), the metrics, the
`predictions.txt` CoNLL file and the `serve_tokens` export.

Legend: B batch, T sequence length, C labels.
"""

from __future__ import annotations

from typing import Optional, Sequence

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
from albert_tf.data import conll
from albert_tf.metrics import tokens as token_metrics
from albert_tf.models import AlbertTokenClassifier
from albert_tf.serving import tokens as export_tokens
from albert_tf.tokenization import full_tokenizer

LABEL_LIST_FILE = "label_list.txt"
PREDICTIONS_FILE = "predictions.txt"
PREDICT_RESULTS_FILE = "predict_results.txt"
CACHE_FORMAT = 1  # Bump when the feature conversion changes.
SPLITS = ("train", "eval", "predict")
# As losses.masked_lm_denominator: a batch with no labelled word (all
# sentences empty or truncated away) gives a zero loss, not 0/0.
_LOSS_EPSILON = losses.MLM_LOSS_EPSILON


def loss_terms(outputs: dict, features: dict, num_replicas: int = 1
               ) -> dict:
    """Mean cross-entropy over the labelled first pieces of the batch
    (shared by TokenClassificationTask and AlbertTextTokenClassifier)."""
    weights = ops.cast(features["label_weights"], "float32")  # [B, T]
    nll = losses.per_example_nll(outputs["logits"],
                                 features["label_ids"])  # [B, T]
    return {"loss": (ops.sum(weights * nll),
                     _denominator(features, num_replicas))}


def _denominator(features, num_replicas: int):
    # The epsilon is split over replicas so their sum adds it once.
    return (ops.sum(ops.cast(features["label_weights"], "float32"))
            + _LOSS_EPSILON / num_replicas)


def metric_sums(outputs: dict, features: dict) -> dict:
    """Token-level loss and accuracy over the labelled first pieces."""
    weights = ops.cast(features["label_weights"], "float32")  # [B, T]
    nll = losses.per_example_nll(outputs["logits"], features["label_ids"])
    correct = ops.cast(ops.equal(
        ops.argmax(outputs["logits"], -1),
        ops.cast(features["label_ids"], "int64")), "float32")
    count = ops.sum(weights)
    return {"eval_loss": (ops.sum(weights * nll), count),
            "eval_accuracy": (ops.sum(weights * correct), count)}


class TokenClassificationTask:
    """AlbertTokenClassifier on CoNLL files (a finetune.FineTuneTask).

    files maps "train" / "eval" / "predict" to CoNLL paths (those a run
    needs). label_list fixes the tags' order; without it the tags of
    `label_list_file` (an earlier training run's), else of the training
    file ("O" first, then sorted).
    """

    key_metric = token_metrics.KEY_METRIC
    task_id = "token_classification"

    def __init__(self, config: AlbertConfig, files: dict[str, str],
                 optimizer: optimization.OptimizerConfig, *,
                 spm_model_file: Optional[str],
                 vocab_file: Optional[str] = None,
                 do_lower_case: bool = True, max_seq_length: int = 128,
                 label_column: int = -1,
                 label_list: Optional[Sequence[str]] = None,
                 label_list_file: Optional[str] = None,
                 cached_dir: str, eval_batch_size: int = 8,
                 predict_batch_size: int = 8, dtype: str = "float32",
                 dropout_prob: float = 0.1, seed: Optional[int] = None,
                 pad_to_multiple: int = 0,
                 model_options: Optional[dict] = None):
        if max_seq_length > config.max_position_embeddings:
            raise ValueError(
                f"max_seq_length={max_seq_length} > max_position_embeddings="
                f"{config.max_position_embeddings} of the config")
        if label_column == 0:
            raise ValueError("label_column=0 is the word column; the tag "
                             "is in another one (default -1, the last)")
        self.config = config
        # AlbertEncoder's use_one_hot_embeddings and attention_implementation.
        self.model_options = dict(model_options or {})
        self.files = dict(files)
        self.optimizer_config = optimizer
        self.spm_model_file = spm_model_file
        self.vocab_file = vocab_file
        self.do_lower_case = do_lower_case
        self.max_seq_length = max_seq_length
        self.label_column = label_column
        self.label_list = list(label_list) if label_list else None
        self.label_list_file = label_list_file
        self.cached_dir = cached_dir
        self.batch_sizes = {"train": None, "eval": eval_batch_size,
                            "predict": predict_batch_size}
        self.dtype = dtype
        self.dropout_prob = dropout_prob
        self.seed = seed
        # > 0: dynamic padding (finetune_input.make_batches), 0: fixed.
        self.pad_to_multiple = pad_to_multiple
        self._sentences: dict[str, list[conll.Sentence]] = {}
        # Each sentence's first-piece positions, per word (None: no piece).
        self._positions: dict[str, list] = {}

    # ---------------------------------------------------- training.Task ---

    def build_model(self) -> keras.Model:
        return AlbertTokenClassifier(
            self.config, len(self.labels()), dropout_prob=self.dropout_prob,
            dtype=training.dtype_policy(self.dtype), **self.model_options)

    def build_optimizer(self) -> keras.optimizers.Optimizer:
        return optimization.build_optimizer(self.optimizer_config, self.dtype)

    def loss_terms(self, outputs, features, num_replicas: int) -> dict:
        return loss_terms(outputs, features, num_replicas)

    def loss_denominators(self, features, num_replicas: int) -> dict:
        """loss_terms' denominator (labelled first pieces), for
        accumulation: from the features alone."""
        return {"loss": _denominator(features, num_replicas)}

    def metric_sums(self, outputs, features) -> dict:
        return metric_sums(outputs, features)

    # ----------------------------------------------- finetune.FineTuneTask -

    def _splits(self, do_train, do_eval, do_predict) -> list[str]:
        return [split for split, wanted in zip(
            SPLITS, (do_train, do_eval, do_predict)) if wanted]

    def validate(self, do_train: bool, do_eval: bool,
                 do_predict: bool) -> None:
        flag = {"train": "--train_file", "eval": "--dev_file",
                "predict": "--test_file"}
        for split in self._splits(do_train, do_eval, do_predict):
            path = self.files.get(split)
            if not path:
                raise ValueError(f"the {split} set needs {flag[split]} (or "
                                 f"--data_dir with "
                                 f"{conll.SPLIT_FILES[split]})")
            if not tf.io.gfile.exists(path):
                raise FileNotFoundError(
                    f"{flag[split]}={path}: no such file for the {split} "
                    f"set")
        for path in (self.spm_model_file, self.vocab_file):
            if path and not tf.io.gfile.exists(path):
                raise FileNotFoundError(f"tokenizer file not found: {path}")
        if not (do_train or self.label_list or (
                self.label_list_file
                and tf.io.gfile.exists(self.label_list_file))):
            raise ValueError(
                "no label list: train in this output_dir first (it writes "
                f"{LABEL_LIST_FILE}), or pass --labels")

    def _read(self, split: str) -> list[conll.Sentence]:
        if split not in self._sentences:
            self._sentences[split] = conll.read_conll(
                self.files[split], self.label_column,
                require_labels=split != "predict")
            if not self._sentences[split]:
                raise ValueError(f"{self.files[split]}: no sentence in the "
                                 f"{split} file")
        return self._sentences[split]

    def labels(self) -> list[str]:
        """The label list (ids in this order); resolved once."""
        if self.label_list is None:
            path = self.label_list_file
            if path and tf.io.gfile.exists(path):
                self.label_list = [line for line in fileio.read_text(
                    path).splitlines() if line]
            elif self.files.get("train"):
                self.label_list = conll.label_list_of(self._read("train"))
            else:
                raise ValueError("no label list: pass --labels, or train "
                                 "first in this output_dir")
        return self.label_list

    def _cache_key(self, split: str) -> dict:
        return {"format": CACHE_FORMAT, "task": self.task_id,
                "split": split,
                "source": fileio.fingerprint(self.files[split]),
                "tokenizer": fileio.fingerprints(
                    [self.spm_model_file, self.vocab_file]),
                "do_lower_case": self.do_lower_case,
                "label_column": self.label_column,
                "labels": self.labels(),
                "max_seq_length": self.max_seq_length}

    def train_data_key(self) -> dict:
        return self._cache_key("train")

    def _feature_path(self, split: str) -> str:
        return fileio.join(self.cached_dir, f"ner_{split}.tf_record")

    def prepare(self, do_train: bool, do_eval: bool,
                do_predict: bool) -> None:
        labels = self.labels()
        if do_train and self.label_list_file and not tf.io.gfile.exists(
                self.label_list_file):
            fileio.write_atomic(self.label_list_file,
                                "".join(f"{x}\n" for x in labels))
        logging.info("%d labels: %s", len(labels), " ".join(labels))
        tokenizer = None
        for split in self._splits(do_train, do_eval, do_predict):
            sentences = self._read(split)
            conll.check_tags(sentences, labels, strict=split == "train")
            path, key = self._feature_path(split), self._cache_key(split)
            cached = cache.lookup(path, key)
            if cached and split == "train":
                continue  # Training needs no word positions.
            if tokenizer is None:
                tokenizer = full_tokenizer.FullTokenizer(
                    vocab_file=self.vocab_file,
                    do_lower_case=self.do_lower_case,
                    spm_model_file=self.spm_model_file)
            rows, positions = conll.convert_sentences(
                sentences, labels, tokenizer, self.max_seq_length,
                what=f"{self.files[split]} ({split})")
            self._positions[split] = positions
            if not cached:
                cache.write(path, key, lambda tmp, rows=rows:
                            conll.write_features(rows, tmp))

    def _dataset(self, split: str) -> tf.data.Dataset:
        return conll.make_dataset(
            self._feature_path(split), self.max_seq_length,
            self.batch_sizes[split], is_training=False,
            pad_to_multiple=self.pad_to_multiple)

    def train_dataset(self, context: tf.distribute.InputContext,
                      global_batch_size: int) -> tf.data.Dataset:
        return conll.make_dataset(
            self._feature_path("train"), self.max_seq_length,
            context.get_per_replica_batch_size(global_batch_size),
            is_training=True, drop_remainder=True, input_context=context,
            seed=self.seed, pad_to_multiple=self.pad_to_multiple)

    def _outputs(self, trainer: training.Trainer, split: str) -> list:
        """(logits [T_b, C], label_ids [T_b], label_weights [T_b]) per
        sentence, in file order. Batches differ in width under dynamic
        padding, and logits carry T before C, so rows are kept apart
        rather than padded together (training.Trainer.predict pads only
        the last axis)."""
        model = trainer.model
        if getattr(self, "_logits_model", None) is not model:
            @tf.function(reduce_retracing=True)
            def logits_fn(batch):
                return tf.cast(model(batch, training=False)["logits"],
                               tf.float32)  # [B, T, C]
            self._logits_fn, self._logits_model = logits_fn, model
        rows = []
        for batch in self._dataset(split):
            logits = self._logits_fn(batch).numpy()
            rows.extend(zip(logits, batch["label_ids"].numpy(),
                            batch["label_weights"].numpy()))
        return rows

    def _predict_tags(self, trainer: training.Trainer, split: str
                      ) -> tuple[list[list[str]], list]:
        """Each sentence's predicted tags, and the raw outputs."""
        rows = self._outputs(trainer, split)
        labels = self.labels()
        tags = [conll.tags_from_logits(logits, positions, labels)
                for (logits, _, _), positions in zip(
                    rows, self._positions[split])]
        return tags, rows

    def evaluate(self, trainer: training.Trainer) -> dict:
        predicted, rows = self._predict_tags(trainer, "eval")
        gold = [s.tags for s in self._sentences["eval"]]
        results = token_metrics.entity_scores(gold, predicted)
        results["eval_loss"] = weighted_nll(rows)
        return results

    def predict(self, trainer: training.Trainer, output_dir: str) -> None:
        sentences = self._sentences["predict"]
        predicted, _ = self._predict_tags(trainer, "predict")
        fileio.write_atomic(fileio.join(output_dir, PREDICTIONS_FILE),
                            conll.to_conll(sentences, predicted))
        if sentences[0].tags is not None:
            results = token_metrics.entity_scores(
                [s.tags for s in sentences], predicted)
            training.write_results(
                fileio.join(output_dir, PREDICT_RESULTS_FILE), results)
            logging.info("Test set: %s", " ".join(
                f"{k}={v:.4f}" for k, v in sorted(results.items())))

    def export(self, model: keras.Model, export_dir: str) -> None:
        export_tokens.export_token_classifier(
            model, export_dir, label_list=self.labels(),
            spm_model_file=self.spm_model_file,
            do_lower_case=self.do_lower_case,
            max_seq_length=self.max_seq_length)


def weighted_nll(rows: Sequence[tuple]) -> float:
    """Mean -log p(label) over the weighted positions of
    (logits [T, C], label_ids [T], label_weights [T]) rows."""
    total = count = 0.0
    for logits, label_ids, weights in rows:
        logits = logits.astype(np.float64)
        logits = logits - logits.max(-1, keepdims=True)
        log_z = np.log(np.exp(logits).sum(-1))  # [T]
        picked = logits[np.arange(len(label_ids)), label_ids]  # [T]
        total += float(((log_z - picked) * weights).sum())
        count += float(weights.sum())
    return total / max(count, 1e-12)
