"""SQuAD v1.1 / v2.0 fine-tuning: run_squad_v1 and run_squad_v2, on
tasks.finetune.run.

What is SQuAD-specific lives here: the cached features (data.squad), the
span losses of the original (v1: (CE_start + CE_end) / 2; v2 adds
0.5 * sigmoid-CE of the answer class), evaluation by the official scoring
of the predictions (squad_metrics) for every checkpoint, and the
prediction files (`predictions.json`, `nbest_predictions.json`, v2
`null_odds.json`).

Checkpoint selection, as the originals: by F1. For v2 the original's F1
is the one after tuning the null threshold on the set it reports
(`dev_tuned_f1`, an oracle); it is the key here too, and the F1 at the
fixed `null_score_diff_threshold` is reported beside it as `f1`.
"""

from __future__ import annotations

import dataclasses
import warnings

import keras
import tensorflow as tf
from absl import logging
from keras import ops

from albert_tf import fileio
from albert_tf import losses
from albert_tf import optimization
from albert_tf import training
from albert_tf.config import AlbertConfig
from albert_tf.data import cache
from albert_tf.data import squad
from albert_tf.metrics import squad as squad_metrics
from albert_tf.models import AlbertSpanLabeler
from albert_tf.models import AlbertSquadV2
from albert_tf.tokenization import full_tokenizer

CACHE_FORMAT = 1  # Bump when the feature conversion changes.
PREDICTIONS_FILE = "predictions.json"
NBEST_FILE = "nbest_predictions.json"
NULL_ODDS_FILE = "null_odds.json"
V1_OUTPUTS = ("start_logits", "end_logits")
V2_OUTPUTS = ("start_top_log_probs", "start_top_index", "end_top_log_probs",
              "end_top_index", "cls_logits")
# Both SQuAD heads read the sequence output only, so the pooler gets no
# gradient, and Keras warned at every step: "Gradients do not exist for
# variables ['encoder/pooler/kernel', 'encoder/pooler/bias'] when
# minimizing the loss. If using `model.compile()`, did you forget to
# provide a `loss` argument?". Expected here: the original's optimizers
# skipped None gradients the same way, and the pooler stays trainable so
# the checkpoint layout (optimizer slots included) is unchanged. Only that
# exact list is silenced (from build_model, so that it holds in the
# process that trains); any other variable without a gradient still warns.
UNUSED_POOLER_WARNING = (r"Gradients do not exist for variables "
                         r"\['encoder/pooler/kernel', 'encoder/pooler/bias'\] "
                         r"when minimizing the loss")


@dataclasses.dataclass(frozen=True)
class PredictionConfig:
    """The original's prediction flags."""

    n_best_size: int = 20
    max_answer_length: int = 30
    start_n_top: int = 5
    end_n_top: int = 5
    null_score_diff_threshold: float = 0.0


def num_train_steps(train_file: str, train_batch_size: int,
                    num_train_epochs: float) -> int:
    """As run_squad_v1/v2: examples (not features) * epochs / batch."""
    examples = squad.read_squad_examples(train_file, is_training=True)
    steps = int(len(examples) / train_batch_size * num_train_epochs)
    if steps < 1:
        raise ValueError(
            f"{train_file}: {len(examples)} examples x num_train_epochs="
            f"{num_train_epochs} / train_batch_size={train_batch_size} "
            f"gives no training step")
    return steps


def _check_v1_data(path: str, flag: str) -> None:
    """SQuAD v2.0 data (unanswerable questions) in a v1.1 run: refuse it,
    rather than train on empty spans or score questions without answers."""
    data = fileio.read_json(path)
    for article in data.get("data", []) if isinstance(data, dict) else []:
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                # `is True`: a non-boolean is read_squad_examples' error.
                if qa.get("is_impossible") is True or not qa.get("answers"):
                    raise ValueError(
                        f"--{flag}={path}: question {qa.get('id')!r} has no "
                        f"answer (SQuAD v2.0 data); pass "
                        f"--version_2_with_negative for v2.0")


def per_example_loss(outputs: dict, features: dict, v2: bool):
    """The original's span loss per example [B]: v1 (CE_start + CE_end) / 2
    (run_squad_v1 model_fn); v2 adds 0.5 * sigmoid-CE of the answer class
    (squad_utils.v2_model_fn). Shared by SquadTask and the Keras
    AlbertTextQuestionAnswerer."""
    if v2:
        # start/end_log_probs are already log-softmaxed (masked by
        # p_mask); log_softmax leaves them unchanged.
        start, end = outputs["start_log_probs"], outputs["end_log_probs"]
    else:
        start, end = outputs["start_logits"], outputs["end_logits"]
    span = 0.5 * (losses.per_example_nll(start,
                                         features["start_positions"])
                  + losses.per_example_nll(end,
                                           features["end_positions"]))
    if not v2:
        return span  # [B]
    # squad_utils.v2_model_fn: + 0.5 * sigmoid CE of the answer class.
    logits = ops.cast(outputs["cls_logits"], "float32")  # [B]
    labels = ops.cast(ops.reshape(features["is_impossible"], (-1,)),
                      "float32")
    cls = ops.maximum(logits, 0) - logits * labels + ops.log1p(
        ops.exp(-ops.abs(logits)))
    return span + 0.5 * cls


def loss_terms(outputs: dict, features: dict, v2: bool) -> dict:
    """The training.Task loss terms: per_example_loss's mean over the batch."""
    return {"loss": losses.mean_terms(per_example_loss(outputs, features, v2))}


def metric_sums(outputs: dict, features: dict, v2: bool) -> dict:
    """Training logs only: how often the start position is argmax."""
    start = outputs["start_log_probs" if v2 else "start_logits"]
    correct = ops.cast(ops.equal(
        ops.argmax(start, -1),
        ops.cast(ops.reshape(features["start_positions"], (-1,)),
                 "int64")), "float32")
    return {"start_accuracy": (ops.sum(correct), ops.cast(
        ops.shape(correct)[0], "float32"))}


class SquadTask:
    """AlbertSpanLabeler (v1) or AlbertSquadV2 (v2): a FineTuneTask."""

    def __init__(self, config: AlbertConfig,
                 optimizer: optimization.OptimizerConfig, *,
                 version_2_with_negative: bool,
                 spm_model_file: str | None, vocab_file: str | None,
                 options: squad.FeatureOptions,
                 prediction: PredictionConfig,
                 train_file: str | None, predict_file: str | None,
                 train_feature_file: str, predict_feature_file: str,
                 predict_feature_left_file: str,
                 predict_batch_size: int = 8, num_workers: int = 1,
                 dtype: str = "float32", dropout_prob: float = 0.1,
                 seed: int | None = None, pad_to_multiple: int = 0,
                 model_options: dict | None = None):
        if options.max_seq_length > config.max_position_embeddings:
            raise ValueError(
                f"max_seq_length={options.max_seq_length} > "
                f"max_position_embeddings={config.max_position_embeddings} "
                f"of the config")
        beam = max(prediction.start_n_top, prediction.end_n_top)
        # A bucket at or past max_seq_length never cuts a batch.
        if (version_2_with_negative and 0 < pad_to_multiple < beam
                and pad_to_multiple < options.max_seq_length):
            # The v2 head takes the top start_n_top / end_n_top of the
            # (cut) positions: a batch must be at least that wide.
            raise ValueError(
                f"padding_bucket={pad_to_multiple} (dynamic padding) must "
                f"be >= start_n_top / end_n_top ({beam}) for SQuAD v2")
        self.config = config
        # AlbertEncoder's use_one_hot_embeddings and attention_implementation.
        self.model_options = dict(model_options or {})
        self.optimizer_config = optimizer
        self.v2 = version_2_with_negative
        self.spm_model_file = spm_model_file
        self.vocab_file = vocab_file
        self.options = options
        self.prediction = prediction
        self.train_file = train_file
        self.predict_file = predict_file
        self.train_feature_file = train_feature_file
        self.predict_feature_file = predict_feature_file
        self.predict_feature_left_file = predict_feature_left_file
        self.predict_batch_size = predict_batch_size
        self.num_workers = num_workers
        self.dtype = dtype
        self.dropout_prob = dropout_prob
        self.seed = seed
        # > 0: dynamic padding (finetune_input.make_batches), 0: fixed.
        self.pad_to_multiple = pad_to_multiple
        self.key_metric = "dev_tuned_f1" if self.v2 else "f1"
        self.task_id = "squad_v2" if self.v2 else "squad_v1"
        self._tokenizer = None
        self._examples: list = []
        self._eval_features: list = []
        self._dataset_json: list = []

    # ---------------------------------------------------- training.Task ---

    def build_model(self) -> keras.Model:
        warnings.filterwarnings("ignore", category=UserWarning,
                                message=UNUSED_POOLER_WARNING)
        policy = training.dtype_policy(self.dtype)
        if self.v2:
            p = self.prediction
            return AlbertSquadV2(self.config, start_n_top=p.start_n_top,
                                 end_n_top=p.end_n_top,
                                 dropout_prob=self.dropout_prob, dtype=policy,
                                 **self.model_options)
        return AlbertSpanLabeler(self.config, dtype=policy,
                                 **self.model_options)

    def build_optimizer(self) -> keras.optimizers.Optimizer:
        return optimization.build_optimizer(self.optimizer_config, self.dtype)

    def loss_terms(self, outputs, features, num_replicas: int) -> dict:
        return loss_terms(outputs, features, self.v2)

    def loss_denominators(self, features, num_replicas: int) -> dict:
        """loss_terms' denominator (examples in the batch), for accumulation."""
        return {"loss": losses.example_count(features["input_ids"])}

    def metric_sums(self, outputs, features) -> dict:
        return metric_sums(outputs, features, self.v2)

    # ----------------------------------------------- finetune.FineTuneTask -

    def validate(self, do_train: bool, do_eval: bool,
                 do_predict: bool) -> None:
        needed = []
        if do_train:
            needed.append(("train_file", self.train_file))
        if do_eval or do_predict:
            needed.append(("predict_file", self.predict_file))
        for flag, path in needed:
            if not path:
                raise ValueError(f"--{flag} is required for "
                                 f"{'training' if flag == 'train_file' else 'prediction'}")
            if not tf.io.gfile.exists(path):
                raise FileNotFoundError(f"--{flag}={path}: no such file")
        for path in (self.spm_model_file, self.vocab_file):
            if path and not tf.io.gfile.exists(path):
                raise FileNotFoundError(f"tokenizer file not found: {path}")
        if not self.v2:
            for flag, path in needed:
                _check_v1_data(path, flag)

    def _tokenizer_fn(self):
        if self._tokenizer is None:
            self._tokenizer = full_tokenizer.FullTokenizer(
                vocab_file=self.vocab_file,
                do_lower_case=self.options.do_lower_case,
                spm_model_file=self.spm_model_file)
        return self._tokenizer

    def _cache_key(self, split: str, source: str) -> dict:
        return {"format": CACHE_FORMAT, "task": "squad", "split": split,
                "version_2_with_negative": self.v2,
                "sources": fileio.fingerprints([source]),
                "tokenizer": fileio.fingerprints(
                    [self.spm_model_file, self.vocab_file]),
                **dataclasses.asdict(self.options)}

    def train_data_key(self) -> dict:
        return self._cache_key("train", self.train_file)

    def eval_data_key(self) -> dict:
        return self._cache_key("predict", self.predict_file)

    def prepare(self, do_train: bool, do_eval: bool,
                do_predict: bool) -> None:
        if do_train:
            key = self._cache_key("train", self.train_file)
            if not cache.lookup(self.train_feature_file, key):
                cache.write(self.train_feature_file, key, lambda tmp:
                            squad.write_train_features(
                                self.train_file, self._tokenizer_fn(),
                                self.options, tmp, self.num_workers))
        if do_eval or do_predict:
            key = self._cache_key("predict", self.predict_file)
            self._examples = squad.read_squad_examples(self.predict_file,
                                                       is_training=False)
            self._dataset_json = fileio.read_json(self.predict_file)["data"]
            left = self.predict_feature_left_file
            usable = cache.lookup(self.predict_feature_file, key) and (
                tf.io.gfile.exists(left) and squad.eval_features_metadata(
                    left).get("metadata") == key)
            if not usable:
                cache.write(self.predict_feature_file, key, lambda tmp:
                            squad.write_features(
                                self._examples, self._tokenizer_fn(),
                                self.options, False, tmp,
                                eval_features_file=left,
                                num_workers=self.num_workers, metadata=key,
                                source=self.predict_file))
            self._eval_features = squad.read_eval_features(left,
                                                           self.options)
            logging.info("SQuAD predict: %d questions, %d features",
                         len(self._examples), len(self._eval_features))

    def train_dataset(self, context: tf.distribute.InputContext,
                      global_batch_size: int) -> tf.data.Dataset:
        return squad.make_dataset(
            self.train_feature_file, self.options.max_seq_length,
            context.get_per_replica_batch_size(global_batch_size),
            is_training=True, version_2_with_negative=self.v2,
            drop_remainder=True, input_context=context, seed=self.seed,
            pad_to_multiple=self.pad_to_multiple)

    def _predictions(self, trainer: training.Trainer):
        dataset = squad.make_dataset(
            self.predict_feature_file, self.options.max_seq_length,
            self.predict_batch_size, is_training=False,
            version_2_with_negative=self.v2,
            pad_to_multiple=self.pad_to_multiple)
        p = self.prediction
        if not self.v2:
            out = trainer.predict(dataset, V1_OUTPUTS)
            predictions, nbest = squad_metrics.predict_v1(
                self._examples, self._eval_features, out["unique_ids"],
                out["start_logits"], out["end_logits"], p.n_best_size,
                p.max_answer_length)
            # The official v1.1 keys, exact_match and f1 (percentages);
            # v2 reports the v2.0 script's `exact` instead.
            metrics = squad_metrics.evaluate_v1(self._dataset_json,
                                                predictions)
            return metrics, {PREDICTIONS_FILE: predictions,
                             NBEST_FILE: nbest}
        out = trainer.predict(dataset, V2_OUTPUTS)
        best_texts, nbest, null_odds = squad_metrics.predict_v2(
            self._examples, self._eval_features, out["unique_ids"],
            out["start_top_log_probs"], out["start_top_index"],
            out["end_top_log_probs"], out["end_top_index"],
            out["cls_logits"], p.n_best_size, p.max_answer_length,
            p.start_n_top, p.end_n_top)
        metrics, predictions = squad_metrics.evaluate_v2_with_thresholds(
            self._dataset_json, best_texts, null_odds,
            p.null_score_diff_threshold)
        return metrics, {PREDICTIONS_FILE: predictions, NBEST_FILE: nbest,
                         NULL_ODDS_FILE: null_odds}

    def evaluate(self, trainer: training.Trainer) -> dict:
        metrics, _ = self._predictions(trainer)
        return {k: float(v) for k, v in metrics.items()}

    def predict(self, trainer: training.Trainer, output_dir: str) -> None:
        metrics, files = self._predictions(trainer)
        for name, value in files.items():
            fileio.write_atomic(fileio.join(output_dir, name),
                                squad_metrics.to_json_text(value))
        logging.info("Predictions of the best checkpoint: %s", " ".join(
            f"{k}={v:.4f}" for k, v in sorted(metrics.items())
            if isinstance(v, float)))

    def export(self, model: keras.Model, export_dir: str) -> None:
        from albert_tf.serving import squad as export_squad  # Only SQuAD exports need it.

        p = self.prediction
        export_squad.export_squad(
            model, export_dir, spm_model_file=self.spm_model_file,
            do_lower_case=self.options.do_lower_case,
            max_seq_length=self.options.max_seq_length,
            doc_stride=self.options.doc_stride,
            max_query_length=self.options.max_query_length,
            max_answer_length=p.max_answer_length,
            n_best_size=p.n_best_size, version_2_with_negative=self.v2,
            start_n_top=p.start_n_top, end_n_top=p.end_n_top,
            null_score_diff_threshold=p.null_score_diff_threshold)
