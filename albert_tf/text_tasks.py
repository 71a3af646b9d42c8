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

import keras
import tensorflow as tf

from albert_tf import optimization
from albert_tf.config import AlbertConfig
from albert_tf.models import AlbertClassifier
from albert_tf.models import AlbertMultipleChoice
from albert_tf.preprocessing import MultipleChoicePreprocessor
from albert_tf.preprocessing import Preprocessor

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
    def from_preset(cls, source, *, sequence_length: int = 128,
                    do_lower_case: bool = True, cache_dir: str | None = None,
                    preprocessor_options: dict | None = None, **kwargs):
        """The task model on a pretrained encoder, its tokenizer in front.

        source: whatever albert_tf.load takes (a preset such as
        "albert_base_v2", an archive URL, a release / TF-Hub / HF / run
        directory). Every encoder weight must load; the head starts fresh.
        kwargs go to the model (e.g. num_labels).
        """
        from albert_tf import checkpoints
        from albert_tf import loading

        directory = loading.resolve(source, cache_dir)
        found = loading.inspect(directory)
        if not found.spm_model_file:
            raise ValueError(f"{directory}: no SentencePiece model "
                             f"({' or '.join(loading._SPM_NAMES)}) to build "
                             f"the Preprocessor from")
        preprocessor = cls.preprocessor_class(
            found.spm_model_file, do_lower_case=do_lower_case,
            sequence_length=sequence_length, **(preprocessor_options or {}))
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
            optimizer=finetune_optimizer() if optimizer == "auto"
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
