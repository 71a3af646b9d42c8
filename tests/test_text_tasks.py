"""AlbertTextClassifier: compile / fit / evaluate / predict on strings.

The fit path must compute what the runners compute: on the same batch, the
loss and gradients equal training.Trainer's with the runner's task
(classification.ClassificationTask), and one optimizer step gives the same
weights.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from albert_tf import distribute
from albert_tf import optimization
from albert_tf import training
from albert_tf.checkpoints import tf1_names as names
from albert_tf.preprocessing import Preprocessor
from albert_tf.tasks import classification
from albert_tf.text_tasks import AlbertTextClassifier

SEQ = 12
TEXTS = ["a good film", "a bad film, 1,000 times", "great", "awful thing",
         "fine acting", "dull plot and worse dialogue"]
LABELS = np.array([1, 0, 1, 0, 1, 0], "int32")


def _config():
    return helpers.tiny_config(vocab_size=320, max_position_embeddings=SEQ)


def _classifier(tiny_spm, num_labels=2, **kwargs):
    keras.utils.set_random_seed(0)
    return AlbertTextClassifier(
        _config(), num_labels, dropout_prob=0.0,
        preprocessor=Preprocessor(tiny_spm["model"], sequence_length=SEQ),
        **kwargs)


def _trainer(tiny_spm, tmp_path, model, num_labels=2, steps=1):
    """The runner's task and loop, holding `model`'s current weights."""
    task = classification.ClassificationTask(
        _config(), "sst-2" if num_labels == 2 else "sts-b", str(tmp_path),
        optimization.OptimizerConfig(learning_rate=1e-3,
                                     num_train_steps=1000),
        spm_model_file=tiny_spm["model"], max_seq_length=SEQ,
        cached_dir=str(tmp_path), dropout_prob=0.0)
    trainer = training.Trainer(task, distribute.get_strategy("one_device"),
                               training.RunConfig(
                                   output_dir=str(tmp_path / "run"),
                                   num_train_steps=steps,
                                   train_batch_size=len(TEXTS),
                                   save_checkpoints_steps=steps))
    source = names.variables_by_path(model.ids_model)
    for path, variable in names.variables_by_path(trainer.model).items():
        variable.assign(source[path])
    return trainer


def _features(model, labels):
    features = dict(model.preprocessor(tf.constant(TEXTS)))
    features["label_ids"] = tf.constant(labels)
    features["is_real_example"] = tf.ones([len(TEXTS)], tf.int32)
    return features


@pytest.mark.parametrize("num_labels", [2, 1])
def test_fit_loss_and_gradients_equal_the_runner_path(tiny_spm, tmp_path,
                                                      num_labels):
    model = _classifier(tiny_spm, num_labels)
    model.compile()
    labels = LABELS if num_labels == 2 else (
        LABELS.astype("float32") * 2.5 + 0.5)
    features = _features(model, labels)
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        predictions = model(features, training=True)
        loss = model.compute_loss(x=features, y=features["label_ids"],
                                  y_pred=predictions, training=True)
    grads = tape.gradient(loss, variables)

    trainer = _trainer(tiny_spm, tmp_path, model, num_labels)
    runner_grads, runner_loss, _, _ = trainer._gradients(features)
    np.testing.assert_allclose(float(loss), float(runner_loss), rtol=1e-6)
    helpers.assert_gradients_match(variables, grads,
                                   trainer.model.trainable_variables,
                                   runner_grads, min_compared=20)


def test_one_fit_step_updates_as_one_runner_step(tiny_spm, tmp_path):
    """Same optimizer, clipping at global norm 1.0 in both: the same
    weights after one step on the same batch."""
    model = _classifier(tiny_spm)
    model.compile(optimizer=optimization.AdamWeightDecayOptimizer(
        learning_rate=1e-3, global_clipnorm=1.0))
    features = _features(model, LABELS)
    trainer = _trainer(tiny_spm, tmp_path, model)
    model.fit(TEXTS, LABELS, batch_size=len(TEXTS), shuffle=False,
              verbose=0)
    trainer.train(lambda _: tf.data.Dataset.from_tensors(features).repeat())
    got = names.variables_by_path(model.ids_model)
    moved = 0
    for path, variable in names.variables_by_path(trainer.model).items():
        np.testing.assert_allclose(np.asarray(got[path]), np.asarray(
            variable), rtol=1e-5, atol=1e-6, err_msg=path)
        moved += not np.allclose(np.asarray(variable), np.asarray(
            _classifier(tiny_spm).ids_model.get_layer("classifier")
            .output_weights)) if path.endswith("output_weights") else 0
    assert moved == 1  # The step did change the weights.


def test_predict_evaluate_pairs_and_datasets(tiny_spm):
    model = _classifier(tiny_spm, num_labels=3)
    model.compile()
    logits = model.predict(TEXTS, batch_size=4, verbose=0)
    want = model(model.preprocessor(tf.constant(TEXTS)))
    np.testing.assert_allclose(logits, want.numpy(), rtol=1e-5, atol=1e-6)
    pair_logits = model.predict((TEXTS, TEXTS[::-1]), verbose=0)
    assert pair_logits.shape == (len(TEXTS), 3)
    assert not np.allclose(pair_logits, logits)  # segment b took part
    labels = np.array([0, 1, 2, 0, 1, 2])
    dataset = tf.data.Dataset.from_tensor_slices((TEXTS, labels)).batch(3)
    history = model.fit(dataset, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    results = model.evaluate(TEXTS, labels, verbose=0, return_dict=True)
    assert set(results) == {"loss", "accuracy"}
    only_text = tf.data.Dataset.from_tensor_slices(TEXTS).batch(4)
    assert model.predict(only_text, verbose=0).shape == (len(TEXTS), 3)
    with pytest.raises(ValueError, match="list of pairs"):
        model.predict([("a", "b"), ("c", "d")], verbose=0)


def test_save_and_load_on_strings(tiny_spm, tmp_path):
    model = _classifier(tiny_spm)
    model.compile()
    model.fit(TEXTS, LABELS, batch_size=3, verbose=0)
    path = str(tmp_path / "classifier.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(TEXTS, verbose=0),
                               model.predict(TEXTS, verbose=0), atol=1e-6)
    # The optimizer, loss and metrics come back: training continues.
    assert isinstance(loaded.optimizer,
                      optimization.AdamWeightDecayOptimizer)
    assert loaded.optimizer.global_clipnorm == 1.0
    loaded.fit(TEXTS, LABELS, batch_size=3, verbose=0)


def test_fit_under_a_distribution_strategy(tiny_spm):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    plain = _classifier(tiny_spm)
    plain.compile()
    with strategy.scope():
        mirrored = _classifier(tiny_spm)
        mirrored.compile()
    for model in (plain, mirrored):
        model.fit(TEXTS, LABELS, batch_size=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(mirrored.predict(TEXTS, verbose=0),
                               plain.predict(TEXTS, verbose=0), atol=1e-5)


ARTICLES = ["Tom went to the market on Monday. He bought apples, 1,000 of "
            "them, and walked home slowly.", "The river was cold."]
QUESTIONS = ["Tom went to the market on _ .", "What was cold?"]
OPTIONS = [["Monday", "Sunday", "Friday", "noon"],
           ["the sea", "the river", "the tea", "nothing"]]


def test_multiple_choice_features_equal_the_race_conversion(tiny_spm):
    from albert_tf.data import race
    from albert_tf.preprocessing import MultipleChoicePreprocessor
    from albert_tf.tokenization import full_tokenizer
    from albert_tf.tokenization import text

    seq, qa = 24, 10
    preprocessor = MultipleChoicePreprocessor(
        tiny_spm["model"], sequence_length=seq, max_qa_length=qa)
    got = preprocessor((tf.constant(ARTICLES), tf.constant(QUESTIONS),
                        tf.constant(OPTIONS)))
    tokenizer = full_tokenizer.FullTokenizer(spm_model_file=tiny_spm["model"])
    process = lambda t: text.preprocess_text(t, lower=True)  # noqa: E731
    for i, (article, question, options) in enumerate(
            zip(ARTICLES, QUESTIONS, OPTIONS)):
        example = race.RaceExample(
            example_id="x", question_index=0, level="middle",
            context=process(article),
            endings=tuple(race.build_qa_text(process(question), process(o))
                          for o in options), label=0, article=article,
            question=question, options=tuple(options))
        want = race.convert_single_example(example, seq, qa, tokenizer)
        for key in ("input_ids", "input_mask", "segment_ids"):
            np.testing.assert_array_equal(
                got[key][i].numpy().reshape(-1), want[key], err_msg=key)


def test_multiple_choice_fits_predicts_and_saves(tiny_spm, tmp_path):
    from albert_tf.preprocessing import MultipleChoicePreprocessor
    from albert_tf.text_tasks import AlbertTextMultipleChoice

    keras.utils.set_random_seed(0)
    model = AlbertTextMultipleChoice(
        _config(), MultipleChoicePreprocessor(
            tiny_spm["model"], sequence_length=SEQ, max_qa_length=5))
    model.compile()
    x = (ARTICLES, QUESTIONS, OPTIONS)
    model.fit(x, [0, 1], batch_size=2, verbose=0)
    logits = model.predict(x, verbose=0)
    assert logits.shape == (2, 4)
    path = str(tmp_path / "race.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), logits,
                               atol=1e-6)


def test_a_dataset_of_unknown_batch_size_under_a_strategy_needs_batch_size(
        tiny_spm):
    """Its batches are re-split over replicas: a guessed global batch
    would silently train on another batch size."""
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        model = _classifier(tiny_spm)
    dataset = tf.data.Dataset.from_tensor_slices((TEXTS, LABELS)).batch(4)
    assert dataset.element_spec[0].shape[0] is None
    with pytest.raises(ValueError, match="pass batch_size="):
        model.to_dataset(dataset)
    distributed = model.to_dataset(dataset, batch_size=4)
    assert distributed is not None
