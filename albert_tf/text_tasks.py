"""Task models that compile, fit, evaluate and predict on raw strings.

Each wraps an ids-in task model (models.py) behind a Preprocessor. The
preprocessor runs in the input pipeline, mapped over batches of strings, so
the compiled (and XLA-compilable) train step sees only ids, as in keras-hub.
`compile()` defaults to the task's loss and metrics and the original's
fine-tuning optimizer: AdamW (optimization.AdamWeightDecayOptimizer), global
norm clipping at 1.0. The update is then the runners' (tests compare it
with training.Trainer on the same batch).

Example:
    preprocessor = albert_tf.Preprocessor("30k-clean.model",
                                          sequence_length=128)
    classifier = albert_tf.AlbertTextClassifier(config, num_labels=2,
                                                preprocessor=preprocessor)
    classifier.compile()
    classifier.fit(["a great film", "dull"], [1, 0], batch_size=32, epochs=3)
    classifier.predict(["what a delight"])  # [1, 2] logits
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from albert_tf import losses
from albert_tf import optimization
from albert_tf import training as training_lib
from albert_tf.config import AlbertConfig
from albert_tf.data import conll
from albert_tf.data import create_pretraining
from albert_tf.data import pretraining_data
from albert_tf.data import pretraining_input
from albert_tf.data import squad
from albert_tf.metrics import squad as squad_metrics
from albert_tf.models import AlbertClassifier
from albert_tf.models import AlbertMultipleChoice
from albert_tf.models import AlbertPretrainer
from albert_tf.models import AlbertSpanLabeler
from albert_tf.models import AlbertSquadV2
from albert_tf.models import AlbertTokenClassifier
from albert_tf.preprocessing import MultipleChoicePreprocessor
from albert_tf.preprocessing import Preprocessor
from albert_tf.serving import export
from albert_tf.serving import tokens as tokens_serving
from albert_tf.tasks import pretraining as pretraining_task
from albert_tf.tasks import squad as squad_task
from albert_tf.tasks import token_classification as token_task
from albert_tf.tokenization import full_tokenizer

# run_classifier's --learning_rate default (the paper's Table 14 uses 1e-5
# to 5e-5 by task; configs/glue/*.flags have each task's).
FINETUNE_LEARNING_RATE = 5e-5
DEFAULT_BATCH_SIZE = 32


def finetune_optimizer(learning_rate: float = FINETUNE_LEARNING_RATE
                       ) -> keras.optimizers.Optimizer:
    """The original's fine-tuning AdamW, clipping at global norm 1.0."""
    return optimization.AdamWeightDecayOptimizer(
        learning_rate=learning_rate,
        global_clipnorm=optimization.GRADIENT_CLIP_NORM)


def _is_text(spec) -> bool:
    """Whether a dataset element (spec) is strings or a pair of strings."""
    if isinstance(spec, (tuple, list)):
        return bool(spec) and all(_is_text(s) for s in spec)
    return isinstance(spec, tf.TensorSpec) and spec.dtype == tf.string


class TextTask(keras.Model):
    """An ids-in task model (`ids_model`) behind a Preprocessor.

    `call` takes the ids features and returns `output_key` of the task
    model's outputs; fit / evaluate / predict also take strings (arrays,
    lists, a (text_a, text_b) pair of them, or a batched tf.data.Dataset of
    strings or (strings, labels)) and preprocess them first.
    """

    output_key = "logits"

    def __init__(self, ids_model: keras.Model,
                 preprocessor: Preprocessor | None = None, **kwargs):
        super().__init__(**kwargs)
        self.ids_model = ids_model
        self.preprocessor = preprocessor
        self.built = True  # The task model builds itself (models.py).

    def call(self, inputs, training=None):
        return self.ids_model(inputs, training=training)[self.output_key]

    # ------------------------------------------------------------ inputs --

    def _map_text(self, *element):
        """One batch element: strings -> features, labels unchanged."""
        if len(element) == 1 or _is_text(tuple(element)):
            x = element[0] if len(element) == 1 else tuple(element)
            return self.preprocessor(x)
        return (self.preprocessor(element[0]), *element[1:])

    def to_dataset(self, x, y=None, sample_weight=None,
                   batch_size: int | None = None, shuffle: bool = False,
                   seed: int | None = None):
        """Strings (or features) and labels -> batched, preprocessed data.

        Under a tf.distribute strategy, each replica's pipeline is built by
        strategy.distribute_datasets_from_function: the strategy's own
        rewrite of a finished dataset (experimental_distribute_dataset)
        would lose the tokenizer's SentencePiece resource.
        """
        user_dataset = isinstance(x, tf.data.Dataset)
        if user_dataset:
            if y is not None:
                raise ValueError("y must be None when x is a tf.data.Dataset "
                                 "(the dataset yields the labels)")
            spec = x.element_spec
            static = tf.nest.flatten(spec)[0].shape
            # Only needed to split the batches over replicas (below).
            global_batch = batch_size or (static[0] if static.rank else None)
        else:
            if isinstance(x, list) and x and isinstance(x[0], (tuple, list)):
                raise ValueError("a text pair is a tuple (texts_a, texts_b) "
                                 "of two lists, not a list of pairs")
            parts = (x,) if y is None else (
                (x, y) if sample_weight is None else (x, y, sample_weight))
            global_batch = batch_size or DEFAULT_BATCH_SIZE

        def pipeline(context: tf.distribute.InputContext | None = None):
            if user_dataset:
                dataset = x if context is None else x.unbatch()
            else:
                dataset = tf.data.Dataset.from_tensor_slices(parts)
            if context is not None and context.num_input_pipelines > 1:
                dataset = dataset.shard(context.num_input_pipelines,
                                        context.input_pipeline_id)
            if shuffle and not user_dataset:
                dataset = dataset.shuffle(dataset.cardinality(), seed=seed,
                                          reshuffle_each_iteration=True)
            if context is not None:
                dataset = dataset.batch(
                    context.get_per_replica_batch_size(global_batch))
            elif not user_dataset:
                dataset = dataset.batch(global_batch)
            spec = dataset.element_spec
            first = spec[0] if (isinstance(spec, tuple)
                                and not _is_text(spec)) else spec
            if _is_text(first):
                if self.preprocessor is None:
                    raise ValueError(
                        f"{self.name} has no preprocessor: pass features "
                        f"(input_ids, ...), not strings")
                dataset = dataset.map(self._map_text,
                                      num_parallel_calls=tf.data.AUTOTUNE)
            return dataset.prefetch(tf.data.AUTOTUNE)

        strategy = self.distribute_strategy
        if type(strategy).__name__ == "_DefaultDistributionStrategy":
            return pipeline()
        if global_batch is None:
            raise ValueError(
                "under a tf.distribute strategy the dataset's batches are "
                "split over the replicas, and this dataset's batch size is "
                "not static: pass batch_size= (the global batch size)")
        return strategy.distribute_datasets_from_function(pipeline)

    def fit(self, x=None, y=None, batch_size=None, epochs=1,
            validation_data=None, shuffle=True, sample_weight=None,
            **kwargs):
        dataset = self.to_dataset(x, y, sample_weight, batch_size, shuffle)
        if validation_data is not None:
            if isinstance(validation_data, tf.data.Dataset):
                validation_data = self.to_dataset(validation_data)
            else:
                validation_data = self.to_dataset(*validation_data,
                                                  batch_size=batch_size)
        # Shuffled above (arrays) or by the caller (datasets), as Keras's.
        return super().fit(dataset, epochs=epochs, shuffle=False,
                           validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None,
                 **kwargs):
        return super().evaluate(
            self.to_dataset(x, y, sample_weight, batch_size), **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        return super().predict(self.to_dataset(x, batch_size=batch_size),
                               **kwargs)

    preprocessor_class = Preprocessor

    @classmethod
    def from_preset(cls, source, *, sequence_length: int | None = None,
                    do_lower_case: bool | None = None,
                    cache_dir: str | None = None,
                    preprocessor_options: dict | None = None, **kwargs):
        """The task model on a pretrained encoder, its tokenizer in front.

        source: whatever albert_tf.load takes (a preset such as
        "albert_base_v2", an archive URL, a release / TF-Hub / HF / run /
        export directory). Every encoder weight must load; the head starts
        fresh. The Preprocessor is load's (sequence_length and
        do_lower_case default to an export's own, else 128 and True).
        kwargs go to the model (e.g. num_labels).
        """
        from albert_tf import checkpoints
        from albert_tf import loading

        directory, found = loading.open_source(source, cache_dir)
        preprocessor = loading.preprocessor_for(
            directory, found, sequence_length=sequence_length,
            do_lower_case=do_lower_case,
            preprocessor_class=cls.preprocessor_class, default_length=128,
            **(preprocessor_options or {}))
        if preprocessor is None:
            raise ValueError(f"{directory}: no tokenizer to build the "
                             f"Preprocessor from (see the log)")
        model = cls(found.config, preprocessor=preprocessor, **kwargs)
        checkpoints.load_pretrained(model.ids_model, found.checkpoint)
        return model

    # ------------------------------------------------------------ saving --

    def build_from_config(self, config):
        """Nothing to do: the task model is built at construction."""

    def compile_from_config(self, config):
        """Recompiles a loaded model with its saved optimizer, loss and
        metrics (Keras asks subclasses that override compile for this)."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def _default_optimizer(self) -> keras.optimizers.Optimizer:
        """compile()'s "auto" optimizer."""
        return finetune_optimizer()

    def _default_loss_and_metrics(self) -> tuple:
        """The task's loss and metrics for compile()'s "auto"."""
        return (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])

    def compile(self, optimizer="auto", loss="auto", metrics="auto",
                **kwargs):
        """"auto": the original's fine-tuning AdamW (finetune_optimizer)
        and the task's loss and metrics; anything else is Keras's."""
        default_loss, default_metrics = self._default_loss_and_metrics()
        super().compile(
            optimizer=self._default_optimizer() if optimizer == "auto"
            else optimizer,
            loss=default_loss if loss == "auto" else loss,
            metrics=default_metrics if metrics == "auto" else metrics,
            **kwargs)

    def _extra_config(self) -> dict:
        return {}

    def get_config(self):
        return {"name": self.name,
                "dtype": keras.dtype_policies.serialize(self.dtype_policy),
                "preprocessor": keras.saving.serialize_keras_object(
                    self.preprocessor),
                "config": self.config.to_dict(),
                "dropout_prob": self.dropout_prob,
                "model_options": self.model_options,
                **self._extra_config()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["preprocessor"] = keras.saving.deserialize_keras_object(
            config.get("preprocessor"))
        config["config"] = AlbertConfig.from_dict(config["config"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertTextClassifier(TextTask):
    """Classification (num_labels > 1) or regression (num_labels == 1) on
    strings, one text or a pair: AlbertClassifier behind a Preprocessor.

    Its predictions are logits [B, C] (regression: [B, 1]).
    """

    def __init__(self, config: AlbertConfig, num_labels: int,
                 preprocessor: Preprocessor | None = None,
                 dropout_prob: float = 0.1,
                 name: str = "albert_text_classifier",
                 model_options: dict | None = None, **kwargs):
        super().__init__(None, preprocessor, name=name, **kwargs)
        self.config = config
        self.num_labels = num_labels
        self.dropout_prob = dropout_prob
        self.model_options = dict(model_options or {})
        self.ids_model = AlbertClassifier(
            config, num_labels, dropout_prob=dropout_prob,
            dtype=self.dtype_policy, **self.model_options)

    def _default_loss_and_metrics(self):
        """Cross-entropy and accuracy; regression: mean squared error."""
        if self.num_labels == 1:
            return keras.losses.MeanSquaredError(), []
        return super()._default_loss_and_metrics()

    def _extra_config(self):
        return {"num_labels": self.num_labels}


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertTextMultipleChoice(TextTask):
    """RACE-style multiple choice on strings: (article, question, options
    [B, 4]) in, logits [B, 4] out (AlbertMultipleChoice behind a
    MultipleChoicePreprocessor)."""

    preprocessor_class = MultipleChoicePreprocessor

    def __init__(self, config: AlbertConfig,
                 preprocessor: MultipleChoicePreprocessor | None = None,
                 num_choices: int = 4, dropout_prob: float = 0.1,
                 name: str = "albert_text_multiple_choice",
                 model_options: dict | None = None, **kwargs):
        super().__init__(None, preprocessor, name=name, **kwargs)
        self.config = config
        self.num_choices = num_choices
        self.dropout_prob = dropout_prob
        self.model_options = dict(model_options or {})
        self.ids_model = AlbertMultipleChoice(
            config, num_choices, dropout_prob=dropout_prob,
            dtype=self.dtype_policy, **self.model_options)

    # compile(): cross-entropy over the choices and accuracy, as
    # run_race.create_model (the base class's defaults).

    def _extra_config(self):
        return {"num_choices": self.num_choices}


# --------------------------------------------------------------------------
# Tasks whose features the runners' Python conversion makes: SQuAD windows
# (data.squad), CoNLL first pieces (data.conll), pretraining instances
# (data.create_pretraining). Their labels are features too, so x is the
# whole feature dict (y stays None) and the loss is the runner task's
# loss_terms(outputs, features), reduced over replicas as training.Trainer
# reduces it.

# run_pretraining's --learning_rate default (LAMB, the paper's recipe).
PRETRAIN_LEARNING_RATE = pretraining_task.OptimizerConfig.learning_rate


def pretraining_optimizer(learning_rate: float = PRETRAIN_LEARNING_RATE,
                          num_train_steps: int | None = None,
                          num_warmup_steps: int = 0
                          ) -> keras.optimizers.Optimizer:
    """The original's pretraining LAMB, clipping at global norm 1.0.

    With num_train_steps, its warmup + linear decay schedule
    (optimization.create_optimizer's); else a constant learning rate.
    """
    if num_train_steps:
        learning_rate = optimization.WarmupPolynomialDecay(
            init_lr=learning_rate, num_train_steps=num_train_steps,
            num_warmup_steps=num_warmup_steps)
    return optimization.LAMBOptimizer(
        learning_rate=learning_rate,
        global_clipnorm=optimization.GRADIENT_CLIP_NORM)


class _SumRatios(keras.metrics.Metric):
    """A runner task's metric_sums ({name: (sum, count)}) as sum / count
    over the epoch: exact over batches, as training.Trainer logs them."""

    def __init__(self, names: dict[str, str], name: str = "task_metrics",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.names = dict(names)  # runner's name -> logged name
        self.totals = {k: self.add_variable((), "zeros", name=f"{v}_sum")
                       for k, v in self.names.items()}
        self.counts = {k: self.add_variable((), "zeros", name=f"{v}_count")
                       for k, v in self.names.items()}

    def update_state(self, sums: dict):
        for key in self.names:
            total, count = sums[key]
            self.totals[key].assign_add(ops.cast(total, "float32"))
            self.counts[key].assign_add(ops.cast(count, "float32"))

    def result(self):
        return {logged: ops.divide_no_nan(self.totals[key], self.counts[key])
                for key, logged in self.names.items()}

    def reset_state(self):
        for variable in self.variables:
            variable.assign(ops.zeros_like(variable))


_SPM_DIR: list = []  # One TemporaryDirectory per process, made on demand.


def _tokenizer_files(preprocessor: Preprocessor | None
                     ) -> tuple[str | None, str | None]:
    """(spm_model_file, vocab_file): the preprocessor's vocabulary written
    to a local file, which the runners' Python conversion reads."""
    spm_model = getattr(preprocessor, "spm_model", None)
    vocab = getattr(preprocessor, "vocab", None)
    if spm_model is None and vocab is None:
        raise ValueError("these task models convert text with the runners' "
                         "Python feature code: pass a Preprocessor built "
                         "from a SentencePiece model (or vocab.txt)")
    if not _SPM_DIR:
        _SPM_DIR.append(tempfile.TemporaryDirectory(prefix="albert_tf_vocab_"))
    data = spm_model if spm_model is not None else vocab
    path = os.path.join(_SPM_DIR[0].name, hashlib.sha256(data).hexdigest()
                        + (".model" if spm_model is not None else ".txt"))
    if not os.path.exists(path):
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
    return (path, None) if spm_model is not None else (None, path)


_TOKENIZERS: dict = {}


def _full_tokenizer(preprocessor: Preprocessor
                    ) -> full_tokenizer.FullTokenizer:
    """FullTokenizer on the preprocessor's vocabulary (cached)."""
    spm_file, vocab_file = _tokenizer_files(preprocessor)
    key = (spm_file, vocab_file, preprocessor.do_lower_case)
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = full_tokenizer.FullTokenizer(
            vocab_file=vocab_file, do_lower_case=preprocessor.do_lower_case,
            spm_model_file=spm_file)
    return _TOKENIZERS[key]


def _strings(values, name: str) -> list[str]:
    """str / bytes / list / array / tensor of strings -> list of str."""
    if isinstance(values, (tf.Tensor, np.ndarray)):
        values = np.asarray(values).reshape(-1).tolist()
    elif isinstance(values, (str, bytes)):
        values = [values]
    out = []
    for i, value in enumerate(values):
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if not isinstance(value, str):
            raise TypeError(f"{name}[{i}]: expected a string, got "
                            f"{type(value).__name__}")
        out.append(value)
    return out


def _is_features(x) -> bool:
    return isinstance(x, (dict, tf.data.Dataset))


class _FeatureTask(TextTask):
    """A TextTask whose strings become features in Python (the runners'
    conversion code), labels included: x is the feature dict, y is None,
    and compile()'s "auto" loss is the runner task's, so that fit takes
    the update training.Trainer takes on the same batch."""

    output_keys: tuple = ()
    # The runner task's metric_sums keys -> the names Keras logs.
    metric_names: dict = {}

    def call(self, inputs, training=None):
        outputs = self.ids_model(inputs, training=training)
        return {k: outputs[k] for k in self.output_keys if k in outputs}

    # ------------------------------------------------------------ inputs --

    def features(self, x, y=None) -> dict:
        """Text (and labels) -> the runner's features, numpy [N, ...]."""
        raise NotImplementedError

    def to_dataset(self, x, y=None, sample_weight=None,
                   batch_size: int | None = None, shuffle: bool = False,
                   seed: int | None = None):
        """Text and labels (or features) -> batched features."""
        if sample_weight is not None:
            raise ValueError(f"{self.name}: sample_weight is not supported "
                             f"(the loss weighs examples as the runner's)")
        if _is_features(x):
            if y is not None:
                raise ValueError("features carry their labels: y must be "
                                 "None when x is a feature dict or dataset")
        else:
            x = self.features(x, y)
        return super().to_dataset(x, None, None, batch_size, shuffle, seed)

    def _check_length(self) -> int:
        if self.preprocessor is None:
            raise ValueError(f"{self.name} has no preprocessor: pass "
                             f"features, not text")
        length = self.preprocessor.sequence_length
        if length > self.config.max_position_embeddings:
            raise ValueError(
                f"the preprocessor's sequence_length={length} > "
                f"max_position_embeddings="
                f"{self.config.max_position_embeddings} of the config")
        return length

    # --------------------------------------------------------- training --

    def loss_terms(self, outputs: dict, features: dict,
                   num_replicas: int) -> dict:
        """The runner task's {name: (numerator, denominator)}."""
        raise NotImplementedError

    def metric_sums(self, outputs: dict, features: dict) -> dict:
        raise NotImplementedError

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        """training.Trainer._loss: each term's numerator over its
        denominator summed over replicas, so the replicas' gradients add
        up to the global batch's (Keras sums them)."""
        del y, sample_weight, training
        replicas = self.distribute_strategy.num_replicas_in_sync
        share = training_lib.replica_loss_shares(
            self.loss_terms(y_pred, x, replicas), replicas)
        return tf.add_n(list(share.values()))

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if self._task_metrics is not None:
            self._task_metrics.update_state(self.metric_sums(y_pred, x))
        return super().compute_metrics(x, y, y_pred, sample_weight)

    @property
    def metrics(self):
        metrics = super().metrics
        task_metrics = getattr(self, "_task_metrics", None)
        if task_metrics is not None and self.compiled:
            metrics = metrics + [task_metrics]
        return metrics

    def compile(self, optimizer="auto", loss="auto", metrics="auto",
                **kwargs):
        """optimizer: "auto" (the runner's) or any Keras optimizer. loss
        must be "auto": the runner task's loss, which reads the label
        features. metrics: "auto" (the runner task's logged metrics) or
        None."""
        if loss != "auto":
            raise ValueError(
                f"{type(self).__name__}: loss must be 'auto' (the runner "
                f"task's loss, computed from the label features), got "
                f"{loss!r}")
        if metrics not in ("auto", None):
            raise ValueError(
                f"{type(self).__name__}: metrics must be 'auto' (the runner "
                f"task's {sorted(self.metric_names.values())}) or None, got "
                f"{metrics!r}")
        keras.Model.compile(
            self, optimizer=self._default_optimizer() if optimizer == "auto"
            else optimizer, loss=None, metrics=None, **kwargs)
        task_metrics = None
        if metrics == "auto":
            with self.distribute_strategy.scope():
                task_metrics = _SumRatios(self.metric_names)
        # Untracked: `metrics` lists it, and it holds no model state.
        object.__setattr__(self, "_task_metrics", task_metrics)
        # What compile_from_config replays after keras.saving.load_model.
        self._compile_config.config.update(loss="auto", metrics=metrics)

    _task_metrics = None


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertTextQuestionAnswerer(_FeatureTask):
    """SQuAD v1.1 (AlbertSpanLabeler) or, with version_2_with_negative,
    v2.0 (AlbertSquadV2, the original's XLNet-style head with start_n_top
    / end_n_top) on strings.

    fit / evaluate take ((questions, contexts), answers): each answer is
    the SQuAD JSON's {"text": ..., "answer_start": character offset} (or a
    (text, answer_start) pair), and for v2 None for an unanswerable
    question. The features are the runner's (data.squad, after
    squad_utils.convert_examples_to_features: max_query_length, doc_stride
    windows of the preprocessor's sequence_length, the answer-span
    improvement; a window without the answer points at [CLS]), and so is
    the loss (tasks.squad.loss_terms). An answer whose answer_start does
    not point at its text is skipped with a warning, as by the runner.

    predict((questions, contexts)) returns one answer string per question
    ("" for v2 when the null score wins), by the runner's Python
    post-processing (metrics.squad.predict_v1 / predict_v2, after
    squad_utils.write_predictions; exact, and it also gives the v2 null
    odds), not the exported serve_qa graph, which re-implements it
    in-graph. Feature dicts or datasets in give the raw head outputs.
    """

    metric_names = {"start_accuracy": "start_accuracy"}

    def __init__(self, config: AlbertConfig,
                 preprocessor: Preprocessor | None = None,
                 version_2_with_negative: bool = False,
                 doc_stride: int = 128, max_query_length: int = 64,
                 n_best_size: int = 20, max_answer_length: int = 30,
                 start_n_top: int = 5, end_n_top: int = 5,
                 null_score_diff_threshold: float = 0.0,
                 dropout_prob: float = 0.1,
                 name: str = "albert_text_question_answerer",
                 model_options: dict | None = None, **kwargs):
        super().__init__(None, preprocessor, name=name, **kwargs)
        self.config = config
        self.version_2_with_negative = bool(version_2_with_negative)
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length
        self.prediction = squad_task.PredictionConfig(
            n_best_size=n_best_size, max_answer_length=max_answer_length,
            start_n_top=start_n_top, end_n_top=end_n_top,
            null_score_diff_threshold=null_score_diff_threshold)
        self.dropout_prob = dropout_prob
        self.model_options = dict(model_options or {})
        if self.version_2_with_negative:
            self.output_keys = ("start_log_probs", "end_log_probs",
                                *squad_task.V2_OUTPUTS)
            self.ids_model = AlbertSquadV2(
                config, start_n_top=start_n_top, end_n_top=end_n_top,
                dropout_prob=dropout_prob, dtype=self.dtype_policy,
                **self.model_options)
        else:
            self.output_keys = squad_task.V1_OUTPUTS
            self.ids_model = AlbertSpanLabeler(
                config, dtype=self.dtype_policy, **self.model_options)
        # As SquadTask.build_model: only the pooler gets no gradient.
        warnings.filterwarnings("ignore", category=UserWarning,
                                message=squad_task.UNUSED_POOLER_WARNING)

    def call(self, inputs, training=None):
        outputs = super().call(inputs, training=training)
        if "unique_ids" in inputs:  # Rows -> features, for predict.
            outputs["unique_ids"] = inputs["unique_ids"]
        return outputs

    def _options(self) -> squad.FeatureOptions:
        return squad.FeatureOptions(
            max_seq_length=self._check_length(), doc_stride=self.doc_stride,
            max_query_length=self.max_query_length,
            do_lower_case=self.preprocessor.do_lower_case)

    def examples(self, x, y=None) -> list:
        """(questions, contexts) and answers -> data.squad.SquadExample,
        checked as read_squad_examples checks a JSON file's."""
        if not (isinstance(x, (tuple, list)) and len(x) == 2) or any(
                isinstance(part, (str, bytes)) for part in x):
            raise ValueError("x: expected (questions, contexts), two lists "
                             "of strings")
        questions, contexts = (_strings(x[0], "questions"),
                               _strings(x[1], "contexts"))
        if len(questions) != len(contexts):
            raise ValueError(f"{len(questions)} questions but "
                             f"{len(contexts)} contexts")
        if y is not None and len(y) != len(questions):
            raise ValueError(f"{len(questions)} questions but {len(y)} "
                             f"answers")
        examples = []
        for i, (question, context) in enumerate(zip(questions, contexts)):
            qa = {"id": str(i), "question": question, "answers": []}
            if y is not None:
                answer = y[i]
                if answer is None:
                    if not self.version_2_with_negative:
                        raise ValueError(
                            f"answers[{i}] is None: SQuAD v1.1 needs an "
                            f"answer per question (version_2_with_negative"
                            f"=True for unanswerable questions)")
                    qa["is_impossible"] = True
                else:
                    if isinstance(answer, (tuple, list)) and len(answer) == 2:
                        answer = {"text": answer[0],
                                  "answer_start": answer[1]}
                    if isinstance(answer, dict) and isinstance(
                            answer.get("answer_start"), np.integer):
                        answer = {**answer, "answer_start": int(
                            answer["answer_start"])}
                    qa["answers"] = [answer]
            examples.append(squad.example_from_qa(
                qa, context, y is not None, f"answers[{i}]"))
        return examples

    def _convert(self, examples: list, is_training: bool) -> list:
        stats = squad.ConversionStats()
        features = list(squad.convert_examples_to_features(
            examples, _full_tokenizer(self.preprocessor), self._options(),
            is_training, stats=stats))
        if not features:
            raise ValueError(squad.no_features_message(
                "the questions", stats, is_training))
        return features

    def features(self, x, y=None) -> dict:
        """The runner's training features (y given) or predict features."""
        features = self._convert(self.examples(x, y), y is not None)
        return squad.feature_arrays(features, self._options().max_seq_length,
                                    y is not None,
                                    self.version_2_with_negative)

    def loss_terms(self, outputs, features, num_replicas):
        return squad_task.loss_terms(outputs, features,
                                     self.version_2_with_negative)

    def metric_sums(self, outputs, features):
        return squad_task.metric_sums(outputs, features,
                                      self.version_2_with_negative)

    def predict(self, x, batch_size=None, **kwargs):
        """(questions, contexts) -> list of answer strings."""
        if _is_features(x):
            return super().predict(x, batch_size=batch_size, **kwargs)
        examples = self.examples(x)
        features = self._convert(examples, is_training=False)
        arrays = squad.feature_arrays(
            features, self._options().max_seq_length, False,
            self.version_2_with_negative)
        out = super().predict(arrays, batch_size=batch_size, **kwargs)
        records = [feature.eval_record() for feature in features]
        p = self.prediction
        if not self.version_2_with_negative:
            predictions, _ = squad_metrics.predict_v1(
                examples, records, out["unique_ids"], out["start_logits"],
                out["end_logits"], p.n_best_size, p.max_answer_length)
            return list(predictions.values())
        best_texts, _, null_odds = squad_metrics.predict_v2(
            examples, records, out["unique_ids"], out["start_top_log_probs"],
            out["start_top_index"], out["end_top_log_probs"],
            out["end_top_index"], out["cls_logits"], p.n_best_size,
            p.max_answer_length, p.start_n_top, p.end_n_top)
        return list(squad_metrics.apply_null_threshold(
            best_texts, null_odds, p.null_score_diff_threshold).values())

    def _extra_config(self):
        p = self.prediction
        return {"version_2_with_negative": self.version_2_with_negative,
                "doc_stride": self.doc_stride,
                "max_query_length": self.max_query_length,
                "n_best_size": p.n_best_size,
                "max_answer_length": p.max_answer_length,
                "start_n_top": p.start_n_top, "end_n_top": p.end_n_top,
                "null_score_diff_threshold": p.null_score_diff_threshold}


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertTextTokenClassifier(_FeatureTask):
    """Token classification (NER, POS) on words: AlbertTokenClassifier.

    Convention (BERT-NER's, the runner's): each word is tokenized on its
    own and only its FIRST piece is labelled and scored; its other pieces,
    [CLS], [SEP] and padding are ignored by the loss, and a word's tag is
    the argmax at its first piece. A word with no piece, or cut by
    sequence_length, is not trained on and is predicted "O".

    fit / evaluate take (sentences, tags): lists of word lists and of tag
    lists (tags from label_list). Features and loss are the CoNLL
    runner's (data.conll.convert_sentences,
    tasks.token_classification.loss_terms).

    predict on word lists returns one tag list per sentence (the runner's
    conll.tags_from_logits); on raw strings it returns, per text, the
    `serve_tokens` export's result (serving.tokens, the same graph):
    {"words", "tags", "entities": [{"type", "text", "start", "end",
    "score"}]}, with character offsets into the text.
    """

    output_keys = ("logits",)
    metric_names = {"eval_accuracy": "accuracy"}

    def __init__(self, config: AlbertConfig, label_list: Sequence[str],
                 preprocessor: Preprocessor | None = None,
                 dropout_prob: float = 0.1, split_punctuation: bool = True,
                 name: str = "albert_text_token_classifier",
                 model_options: dict | None = None, **kwargs):
        super().__init__(None, preprocessor, name=name, **kwargs)
        label_list = list(label_list)
        if len(set(label_list)) != len(label_list) or not label_list:
            raise ValueError(f"label_list must be distinct tags, got "
                             f"{label_list}")
        self.config = config
        self.label_list = label_list
        self.dropout_prob = dropout_prob
        self.split_punctuation = bool(split_punctuation)
        self.model_options = dict(model_options or {})
        self.ids_model = AlbertTokenClassifier(
            config, len(label_list), dropout_prob=dropout_prob,
            dtype=self.dtype_policy, **self.model_options)
        # The head reads the sequence output: the pooler gets no gradient.
        warnings.filterwarnings("ignore", category=UserWarning,
                                message=squad_task.UNUSED_POOLER_WARNING)

    def _sentences(self, x, y=None) -> list:
        if isinstance(x, str) or not isinstance(x, (list, tuple)) or any(
                isinstance(s, (str, bytes)) for s in x):
            raise ValueError("x: expected sentences, each a list of words "
                             "(predict also takes raw strings)")
        if y is not None and len(y) != len(x):
            raise ValueError(f"{len(x)} sentences but {len(y)} tag lists")
        sentences = []
        for i, words in enumerate(x):
            words = tuple(_strings(list(words), f"x[{i}]"))
            tags = None
            if y is not None:
                tags = tuple(_strings(list(y[i]), f"y[{i}]"))
                if len(tags) != len(words):
                    raise ValueError(f"sentence {i}: {len(words)} words "
                                     f"but {len(tags)} tags")
            sentences.append(conll.Sentence(words, tags, f"y[{i}] word:0"))
        if y is not None:
            conll.check_tags(sentences, self.label_list, strict=True)
        return sentences

    def _convert(self, sentences: list) -> tuple[dict, list]:
        rows, positions = conll.convert_sentences(
            sentences, self.label_list, _full_tokenizer(self.preprocessor),
            self._check_length(), what=self.name)
        arrays = {name: np.asarray([row[name] for row in rows], np.int32)
                  for name in conll.TOKEN_CLASSIFICATION}  # [N, T] each
        return arrays, positions

    def features(self, x, y=None) -> dict:
        return self._convert(self._sentences(x, y))[0]

    def loss_terms(self, outputs, features, num_replicas):
        return token_task.loss_terms(outputs, features, num_replicas)

    def metric_sums(self, outputs, features):
        return token_task.metric_sums(outputs, features)

    def predict(self, x, batch_size=None, **kwargs):
        """Word lists -> tag lists; raw strings -> words, tags, entities."""
        if _is_features(x):
            return super().predict(x, batch_size=batch_size, **kwargs)
        if isinstance(x, (str, bytes, tf.Tensor, np.ndarray)) or (
                isinstance(x, (list, tuple)) and x
                and all(isinstance(s, (str, bytes)) for s in x)):
            return self._tag_text(_strings(x, "x"),
                                  batch_size or DEFAULT_BATCH_SIZE)
        arrays, positions = self._convert(self._sentences(x))
        logits = super().predict(arrays, batch_size=batch_size,
                                 **kwargs)["logits"]  # [N, T, C]
        return [conll.tags_from_logits(row, where, self.label_list)
                for row, where in zip(logits, positions)]

    def _tag_text(self, texts: list[str], batch_size: int) -> list[dict]:
        module = tokens_serving._TokenModule(
            self.ids_model, self.preprocessor.tokenizer, self.label_list,
            self._check_length(), self.split_punctuation)
        results = []
        for begin in range(0, len(texts), batch_size):
            out = {k: v.numpy() for k, v in module.serve_tokens(
                tf.constant(texts[begin:begin + batch_size])).items()}
            for i in range(len(out["num_words"])):
                words = int(out["num_words"][i])
                entities = int(out["num_entities"][i])
                results.append({
                    "words": [w.decode() for w in out["words"][i, :words]],
                    "tags": [t.decode()
                             for t in out["word_tags"][i, :words]],
                    "entities": [{
                        "type": out["entity_type"][i, e].decode(),
                        "text": out["entity_text"][i, e].decode(),
                        "start": int(out["entity_start"][i, e]),
                        "end": int(out["entity_end"][i, e]),
                        "score": float(out["entity_score"][i, e])}
                        for e in range(entities)]})
        return results

    def _extra_config(self):
        return {"label_list": self.label_list,
                "split_punctuation": self.split_punctuation}


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertTextPretrainer(_FeatureTask):
    """MLM + SOP pretraining on raw documents: AlbertPretrainer.

    fit takes documents: a list whose items are a document (a list of
    sentences, or a string with one sentence per line), or one string in
    create_pretraining_data's input format (a sentence per line, blank
    lines between documents). They go through the runner's pipeline
    (data.create_pretraining.create_pretraining_data: SOP pairs, n-gram
    whole-word masking, seeded by random_seed, dupe_factor passes) and
    its reader (data.pretraining_input); the loss is the runner's
    (losses.pretraining_terms). The same documents and seed give the same
    instances; epochs replay them, dupe_factor draws new masks.
    pretraining_options: data.pretraining_data.PretrainingConfig fields
    (max_predictions_per_seq, masked_lm_prob, ngram, ...); max_seq_length
    is the preprocessor's sequence_length.

    predict on texts with literal "[MASK]" tokens is fill-mask, the
    `mlm` signature of serving.export (the same graph): per text, per
    [MASK], the top_k {"piece", "id", "probability"}. compile()'s "auto"
    optimizer is the original's LAMB (pretraining_optimizer).
    """

    output_keys = ("mlm_logits", "sop_logits")
    metric_names = {"masked_lm_accuracy": "masked_lm_accuracy",
                    "sentence_order_accuracy": "sentence_order_accuracy"}

    def __init__(self, config: AlbertConfig,
                 preprocessor: Preprocessor | None = None,
                 pretraining_options: dict | None = None,
                 dupe_factor: int = 1, random_seed: int = 12345,
                 top_k: int = 5, name: str = "albert_text_pretrainer",
                 model_options: dict | None = None, **kwargs):
        kwargs.pop("dropout_prob", None)  # The config's dropout applies.
        super().__init__(None, preprocessor, name=name, **kwargs)
        self.config = config
        self.pretraining_options = dict(pretraining_options or {})
        if "max_seq_length" in self.pretraining_options:
            raise ValueError("pretraining_options: max_seq_length is the "
                             "preprocessor's sequence_length")
        pretraining_data.PretrainingConfig(**self.pretraining_options)
        if dupe_factor < 1:
            raise ValueError(f"dupe_factor={dupe_factor} must be >= 1")
        if not 1 <= top_k <= config.vocab_size:
            raise ValueError(f"top_k={top_k} must be in [1, vocab_size]")
        self.dupe_factor = dupe_factor
        self.random_seed = random_seed
        self.top_k = top_k
        self.dropout_prob = None
        self.model_options = dict(model_options or {})
        self.ids_model = AlbertPretrainer(config, dtype=self.dtype_policy,
                                          **self.model_options)

    def _default_optimizer(self):
        return pretraining_optimizer()

    def _data_config(self) -> pretraining_data.PretrainingConfig:
        return pretraining_data.PretrainingConfig(
            max_seq_length=self._check_length(), **self.pretraining_options)

    def features(self, x, y=None) -> dict:
        """Documents -> the runner's instances, numpy [N, ...]."""
        if y is not None:
            raise ValueError("pretraining takes documents only: y must be "
                             "None (the labels are made from the text)")
        if isinstance(x, (str, bytes)):
            text = _strings(x, "x")[0]
        elif isinstance(x, (list, tuple)):
            docs = []
            for i, doc in enumerate(x):
                lines = (_strings(doc, f"x[{i}]")[0].splitlines()
                         if isinstance(doc, (str, bytes))
                         else _strings(list(doc), f"x[{i}]"))
                docs.append("".join(f"{line.strip()}\n" for line in lines
                                    if line.strip()))
            text = "\n".join(docs)
        else:
            raise ValueError("x: expected documents (a list of sentence "
                             "lists or strings) or one string")
        if not text.strip():
            raise ValueError("x: no text to make pretraining instances of")
        config = self._data_config()
        spm_file, vocab_file = _tokenizer_files(self.preprocessor)
        with tempfile.TemporaryDirectory(prefix="albert_tf_pretrain_") as tmp:
            source = os.path.join(tmp, "documents.txt")
            records = os.path.join(tmp, "instances.tfrecord")
            with open(source, "w", encoding="utf-8") as f:
                f.write(text)
            summary = create_pretraining.create_pretraining_data(
                source, records, vocab_file=vocab_file,
                spm_model_file=spm_file,
                do_lower_case=self.preprocessor.do_lower_case, config=config,
                random_seed=self.random_seed, dupe_factor=self.dupe_factor,
                options=create_pretraining.PipelineOptions(
                    num_workers=1, log_every_s=600.0))
            count = summary["instances"]
            if not count:
                raise ValueError("the documents gave no pretraining "
                                 "instance (each needs a sentence pair)")
            batch = next(iter(pretraining_input.pretraining_dataset(
                records, config.max_seq_length,
                config.max_predictions_per_seq, count, is_training=False,
                vocab_size=self.config.vocab_size)))
        return {name: value.numpy() for name, value in batch.items()}

    def loss_terms(self, outputs, features, num_replicas):
        return losses.pretraining_terms(outputs, features, num_replicas)

    def metric_sums(self, outputs, features):
        return pretraining_task.metric_sums(outputs, features)

    def predict(self, x, batch_size=None, **kwargs):
        """Fill-mask on texts with literal [MASK] tokens (see the class)."""
        if _is_features(x):
            return super().predict(x, batch_size=batch_size, **kwargs)
        texts = _strings(x, "x")
        spm_file, _ = _tokenizer_files(self.preprocessor)
        if spm_file is None:
            raise ValueError("fill-mask needs a SentencePiece preprocessor "
                             "(its [MASK] id is the SentencePiece one)")
        module = export._PretrainerModule(
            self.ids_model, self.preprocessor.tokenizer,
            self._check_length(),
            export._load_spm(spm_file, self.config.vocab_size), self.top_k)
        batch_size = batch_size or DEFAULT_BATCH_SIZE
        results = []
        for begin in range(0, len(texts), batch_size):
            try:
                out = {k: v.numpy() for k, v in module.mlm(
                    tf.constant(texts[begin:begin + batch_size])).items()}
            except tf.errors.InvalidArgumentError as e:
                raise ValueError(e.message) from None
            for i in range(len(out["mask_positions"])):
                masks = int((out["mask_positions"][i] >= 0).sum())
                results.append([[{
                    "piece": out["top_k_pieces"][i, m, k].decode(),
                    "id": int(out["top_k_ids"][i, m, k]),
                    "probability": float(out["top_k_probabilities"][i, m, k])}
                    for k in range(self.top_k)] for m in range(masks)])
        return results

    def get_config(self):
        config = super().get_config()
        config.pop("dropout_prob")
        return config

    def _extra_config(self):
        return {"pretraining_options": self.pretraining_options,
                "dupe_factor": self.dupe_factor,
                "random_seed": self.random_seed, "top_k": self.top_k}
