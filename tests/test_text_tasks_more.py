"""The string-in task models beyond classification: SQuAD v1/v2, token
classification and MLM + SOP pretraining (albert_tf.text_tasks).

For each, the features made from strings equal the runner's (its files
written and converted by the runner task itself), the fit path's loss and
gradients equal training.Trainer's with the runner's task on the same
batch, predict returns a hand-checkable answer from planted weights, and
`.keras` files round-trip.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from albert_tf import distribute
from albert_tf import optimization
from albert_tf import training
from albert_tf.checkpoints import tf1_names as names
from albert_tf.data import squad
from albert_tf.preprocessing import Preprocessor
from albert_tf.tokenization import full_tokenizer
from albert_tf.tokenization import text as text_lib
from albert_tf.text_tasks import AlbertTextPretrainer
from albert_tf.text_tasks import AlbertTextQuestionAnswerer
from albert_tf.text_tasks import AlbertTextTokenClassifier


def _config(seq):
    # Distinct sizes per axis, so a transposed weight cannot pass.
    return helpers.tiny_config(
        vocab_size=320, embedding_size=8, hidden_size=16,
        num_hidden_layers=2, num_hidden_groups=1, num_attention_heads=2,
        intermediate_size=28, inner_group_num=1,
        max_position_embeddings=seq)


def _preprocessor(tiny_spm, seq):
    return Preprocessor(tiny_spm["model"], sequence_length=seq)


def _run_config(tmp_path, batch):
    return training.RunConfig(output_dir=str(tmp_path / "run"),
                              num_train_steps=1, train_batch_size=batch,
                              save_checkpoints_steps=1)


def _trainer(task, model, tmp_path, batch):
    """The runner's loop on `task`, holding `model`'s current weights."""
    trainer = training.Trainer(task, distribute.get_strategy("one_device"),
                               _run_config(tmp_path, batch))
    source = names.variables_by_path(model.ids_model)
    for path, variable in names.variables_by_path(trainer.model).items():
        variable.assign(source[path])
    return trainer


def _assert_same_step(model, trainer, features):
    """Loss and every gradient of the fit path equal the runner's."""
    features = {k: tf.constant(v) for k, v in features.items()}
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        predictions = model(features, training=True)
        loss = model.compute_loss(x=features, y_pred=predictions)
    grads = tape.gradient(loss, variables)
    runner_grads, runner_loss, _, _ = trainer._gradients(features)
    np.testing.assert_allclose(float(loss), float(runner_loss), rtol=1e-6)
    helpers.assert_gradients_match(variables, grads,
                                   trainer.model.trainable_variables,
                                   runner_grads, min_compared=10)
    return float(loss)


def _round_trip(model, tmp_path, x, name):
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    return loaded


# --------------------------------------------------------------------------
# SQuAD.

QA_SEQ = 32
# Pseudo-words of the tiny SentencePiece model's training text, so pieces
# are words; the context is longer than one window (doc_stride 8).
CONTEXTS = ["kari tone musa lope digabu zofiha juve woxi yeque hakari "
            "tosa nemu ripe gabu lodi",
            "sapeka mune ritoga zoju fiha buve woxi. kari tone musa lope."]
QUESTIONS = ["which digabu tone", "mune ritoga what"]
ANSWERS = [{"text": "zofiha", "answer_start": CONTEXTS[0].index("zofiha")},
           ("ritoga", CONTEXTS[1].index("ritoga"))]


def _answerer(tiny_spm, v2, **kwargs):
    keras.utils.set_random_seed(0)
    return AlbertTextQuestionAnswerer(
        _config(QA_SEQ), _preprocessor(tiny_spm, QA_SEQ),
        version_2_with_negative=v2, doc_stride=8, max_query_length=6,
        start_n_top=3, end_n_top=2, dropout_prob=0.0, **kwargs)


def _squad_json(path, answers):
    qas = [{"id": f"q{i}", "question": q,
            "answers": [] if a is None else [
                a if isinstance(a, dict) else
                {"text": a[0], "answer_start": a[1]}],
            **({"is_impossible": True} if a is None else {})}
           for i, (q, a) in enumerate(zip(QUESTIONS, answers))]
    data = {"data": [{"paragraphs": [{"context": c, "qas": [qa]}
                                     for c, qa in zip(CONTEXTS, qas)]}]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def _squad_task(tiny_spm, tmp_path, v2, train_file):
    from albert_tf.tasks import squad as squad_task

    return squad_task.SquadTask(
        _config(QA_SEQ), optimization.OptimizerConfig(),
        version_2_with_negative=v2, spm_model_file=tiny_spm["model"],
        vocab_file=None, options=squad.FeatureOptions(
            max_seq_length=QA_SEQ, doc_stride=8, max_query_length=6),
        prediction=squad_task.PredictionConfig(start_n_top=3, end_n_top=2),
        train_file=train_file, predict_file=None,
        train_feature_file=str(tmp_path / "train.tf_record"),
        predict_feature_file=str(tmp_path / "predict.tf_record"),
        predict_feature_left_file=str(tmp_path / "left.json"),
        dropout_prob=0.0)


def _rows(features):
    """Features as a sorted list of rows (the runner pre-shuffles)."""
    keys = sorted(k for k in features if k != "unique_ids")
    count = len(features["input_ids"])
    return sorted(tuple(tuple(np.asarray(features[k][i]).reshape(-1))
                        for k in keys) for i in range(count))


@pytest.mark.parametrize("v2", [False, True])
def test_squad_features_loss_and_gradients_equal_the_runner(
        tiny_spm, tmp_path, v2):
    answers = [ANSWERS[0], None] if v2 else ANSWERS
    model = _answerer(tiny_spm, v2)
    model.compile()
    features = model.features((QUESTIONS, CONTEXTS), answers)
    assert len(features["input_ids"]) > len(QUESTIONS)  # several windows

    task = _squad_task(tiny_spm, tmp_path, v2,
                       _squad_json(tmp_path / "train.json", answers))
    task.prepare(True, False, False)
    spec = squad.feature_spec(QA_SEQ, True, v2)
    runner = tf.io.parse_example(
        list(tf.data.TFRecordDataset(task.train_feature_file)), spec)
    assert _rows(features) == _rows({k: v.numpy()
                                     for k, v in runner.items()})
    assert set(features) == set(spec)

    trainer = _trainer(task, model, tmp_path, len(features["input_ids"]))
    _assert_same_step(model, trainer, features)


class _PlantedSpans(keras.Model):
    """Span logits pointing at the pieces `start_id` .. `end_id`, and a
    fixed null score (v2): what predict's post-processing must decode."""

    def __init__(self, start_id, end_id, null_score=0.0, v2=False,
                 start_n_top=3, end_n_top=2):
        super().__init__()
        self.start_id, self.end_id = start_id, end_id
        self.null_score, self.v2 = null_score, v2
        self.k1, self.k2 = start_n_top, end_n_top

    def call(self, inputs, training=None):
        ids = inputs["input_ids"]  # [B, T]
        start = tf.where(ids == self.start_id, 10.0, 0.0)
        end = tf.where(ids == self.end_id, 10.0, 0.0)
        if not self.v2:
            return {"start_logits": start, "end_logits": end}
        p_mask = tf.cast(inputs["p_mask"], tf.float32)
        start = tf.nn.log_softmax(start - 1e30 * p_mask)
        end = tf.nn.log_softmax(end - 1e30 * p_mask)
        start_top, start_index = tf.math.top_k(start, self.k1)  # [B, K1]
        end_top, end_index = tf.math.top_k(end, self.k2)  # [B, K2]
        return {"start_top_log_probs": start_top,
                "start_top_index": start_index,
                "end_top_log_probs": tf.tile(end_top, [1, self.k1]),
                "end_top_index": tf.tile(end_index, [1, self.k1]),
                "cls_logits": tf.fill([tf.shape(ids)[0]], self.null_score)}


def _piece_ids(tiny_spm, word):
    tokenizer = full_tokenizer.FullTokenizer(spm_model_file=tiny_spm["model"])
    pieces = tokenizer.tokenize(text_lib.preprocess_text(word, lower=True))
    ids = tokenizer.convert_tokens_to_ids(pieces)
    return ids[0], ids[-1]


@pytest.mark.parametrize("v2", [False, True])
def test_squad_predict_decodes_planted_spans(tiny_spm, v2):
    start_id, end_id = _piece_ids(tiny_spm, "zofiha")

    def predict(null_score):
        model = _answerer(tiny_spm, v2)
        model.ids_model = _PlantedSpans(start_id, end_id, null_score, v2)
        return model.predict((QUESTIONS[:1], CONTEXTS[:1]), verbose=0)

    assert predict(-5.0) == ["zofiha"]
    if v2:  # The null score wins: no answer.
        assert predict(5.0) == [""]


@pytest.mark.parametrize("v2", [False, True])
def test_squad_fit_evaluate_predict_and_save(tiny_spm, tmp_path, v2):
    model = _answerer(tiny_spm, v2)
    model.compile()
    answers = [ANSWERS[0], None] if v2 else ANSWERS
    x = (QUESTIONS, CONTEXTS)
    history = model.fit(x, answers, batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert "start_accuracy" in history.history
    results = model.evaluate(x, answers, verbose=0, return_dict=True)
    assert set(results) == {"loss", "start_accuracy"}
    predictions = model.predict(x, verbose=0)
    assert len(predictions) == 2
    assert all(isinstance(p, str) for p in predictions)
    assert all(p == "" or p in c for p, c in zip(predictions, CONTEXTS))

    loaded = _round_trip(model, tmp_path, x, f"squad_v{2 if v2 else 1}")
    assert loaded.predict(x, verbose=0) == predictions
    raw, loaded_raw = (m.predict(m.features(x), verbose=0)
                       for m in (model, loaded))
    for key in raw:
        np.testing.assert_allclose(loaded_raw[key], raw[key], atol=1e-6)
    assert isinstance(loaded.optimizer,
                      optimization.AdamWeightDecayOptimizer)
    loaded.fit(x, answers, batch_size=4, verbose=0)


def test_squad_errors(tiny_spm):
    v1 = _answerer(tiny_spm, False)
    with pytest.raises(ValueError, match="needs an answer per question"):
        v1.features((QUESTIONS, CONTEXTS), [ANSWERS[0], None])
    with pytest.raises(ValueError, match="2 questions but 1 contexts"):
        v1.features((QUESTIONS, CONTEXTS[:1]))
    with pytest.raises(ValueError, match="questions, contexts"):
        v1.predict(QUESTIONS)
    with pytest.raises(ValueError, match="missing key 'answer_start'"):
        v1.features((QUESTIONS, CONTEXTS), [{"text": "x"}, ANSWERS[1]])
    with pytest.raises(ValueError, match="loss must be 'auto'"):
        v1.compile(loss="mse")
    with pytest.raises(ValueError, match="sample_weight"):
        v1.to_dataset((QUESTIONS, CONTEXTS), ANSWERS,
                      sample_weight=[1.0, 1.0])
    # An answer_start that does not point at the text: skipped, as the
    # runner skips it; none left is an error naming why.
    with pytest.raises(ValueError, match="answer_start does not point"):
        v1.features((QUESTIONS[:1], CONTEXTS[:1]), [("zofiha", 0)])


# --------------------------------------------------------------------------
# Token classification.

TOK_SEQ = 16
LABELS = ["O", "B-LOC", "B-PER", "I-PER"]
SENTENCES = [["Kari", "tone", "musa", "in", "Digabu"],
             ["zofiha", "juve", "1,000", "woxi"],
             ["Ha", "Kari", "sapeka", "mune", "ritoga", "zoju", "fiha",
              "buve", "woxi", "kari", "tone"]]  # truncated at 16 pieces
TAGS = [["B-PER", "I-PER", "O", "O", "B-LOC"], ["O", "O", "O", "B-LOC"],
        ["O", "B-PER", "O", "O", "O", "O", "O", "O", "O", "O", "O"]]


def _tagger(tiny_spm, **kwargs):
    keras.utils.set_random_seed(0)
    return AlbertTextTokenClassifier(
        _config(TOK_SEQ), LABELS, _preprocessor(tiny_spm, TOK_SEQ),
        dropout_prob=0.0, **kwargs)


def test_token_features_loss_and_gradients_equal_the_runner(tiny_spm,
                                                           tmp_path):
    from albert_tf.data import conll
    from albert_tf.tasks import token_classification

    model = _tagger(tiny_spm)
    model.compile()
    features = model.features(SENTENCES, TAGS)
    # The runner's features of the same sentences, read from CoNLL files.
    conll_file = tmp_path / "train.txt"
    conll_file.write_text("\n\n".join(
        "\n".join(f"{w} {t}" for w, t in zip(words, tags))
        for words, tags in zip(SENTENCES, TAGS)) + "\n", encoding="utf-8")
    task = token_classification.TokenClassificationTask(
        _config(TOK_SEQ), {"train": str(conll_file)},
        optimization.OptimizerConfig(), spm_model_file=tiny_spm["model"],
        max_seq_length=TOK_SEQ, label_list=LABELS,
        cached_dir=str(tmp_path / "cache"), dropout_prob=0.0)
    task.prepare(True, False, False)
    runner = next(iter(conll.make_dataset(
        task._feature_path("train"), TOK_SEQ, len(SENTENCES),
        is_training=False)))
    for key, value in runner.items():
        np.testing.assert_array_equal(features[key], value.numpy(),
                                      err_msg=key)
    assert features["label_weights"][2].sum() < len(SENTENCES[2])

    trainer = _trainer(task, model, tmp_path, len(SENTENCES))
    _assert_same_step(model, trainer, features)


def test_token_fit_predict_words_and_text_and_save(tiny_spm, tmp_path):
    model = _tagger(tiny_spm)
    model.compile()
    history = model.fit(SENTENCES, TAGS, batch_size=2, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    assert set(model.evaluate(SENTENCES, TAGS, verbose=0,
                              return_dict=True)) == {"loss", "accuracy"}
    tags = model.predict(SENTENCES, verbose=0)
    assert [len(t) for t in tags] == [len(s) for s in SENTENCES]
    assert all(t in LABELS for row in tags for t in row)
    assert tags[2][-1] == "O"  # cut by sequence_length: "O"

    # Planted: every word's first piece says B-LOC.
    head = model.ids_model.classifier
    head.output_weights.assign(tf.zeros_like(head.output_weights))
    head.output_bias.assign([0.0, 10.0, 0.0, 0.0])
    text = ["Kari went to Digabu.", "zofiha"]
    got = model.predict(text, verbose=0)
    assert got[0]["words"] == ["Kari", "went", "to", "Digabu", "."]
    assert got[0]["tags"] == ["B-LOC"] * 5
    assert [(e["type"], e["text"], e["start"], e["end"])
            for e in got[0]["entities"]] == [
        ("LOC", "Kari", 0, 4), ("LOC", "went", 5, 9), ("LOC", "to", 10, 12),
        ("LOC", "Digabu", 13, 19), ("LOC", ".", 19, 20)]
    assert got[1]["entities"][0]["text"] == "zofiha"
    assert model.predict(SENTENCES[:1], verbose=0) == [["B-LOC"] * 5]

    loaded = _round_trip(model, tmp_path, SENTENCES, "tagger")
    assert loaded.label_list == LABELS
    assert loaded.predict(text, verbose=0) == got
    np.testing.assert_allclose(
        loaded.predict(loaded.features(SENTENCES), verbose=0)["logits"],
        model.predict(model.features(SENTENCES), verbose=0)["logits"],
        atol=1e-6)


def test_token_errors(tiny_spm):
    model = _tagger(tiny_spm)
    with pytest.raises(ValueError, match="not among the training labels"):
        model.features(SENTENCES[:1], [["B-PER", "I-PER", "O", "O", "B-X"]])
    with pytest.raises(ValueError, match="5 words but 4 tags"):
        model.features(SENTENCES[:1], [TAGS[0][:4]])
    with pytest.raises(ValueError, match="each a list of words"):
        model.features(["Kari tone"], [["O"]])
    with pytest.raises(ValueError, match="distinct tags"):
        AlbertTextTokenClassifier(_config(TOK_SEQ), ["O", "O"])


# --------------------------------------------------------------------------
# Pretraining.

PRE_SEQ = 24


def _documents(tiny_spm):
    text = open(tiny_spm["corpus"], encoding="utf-8").read()
    docs = [d.splitlines() for d in text.split("\n\n") if d.strip()]
    return [d for d in docs if len(d) >= 2][:6]


def _pretrainer(tiny_spm, **kwargs):
    keras.utils.set_random_seed(0)
    return AlbertTextPretrainer(
        _config(PRE_SEQ), _preprocessor(tiny_spm, PRE_SEQ),
        pretraining_options={"max_predictions_per_seq": 4}, random_seed=7,
        top_k=3, **kwargs)


def test_pretraining_features_loss_and_gradients_equal_the_runner(
        tiny_spm, tmp_path):
    from albert_tf.data import create_pretraining
    from albert_tf.data import pretraining_data
    from albert_tf.data import pretraining_input
    from albert_tf.tasks import pretraining

    docs = _documents(tiny_spm)
    model = _pretrainer(tiny_spm)
    model.compile()
    features = model.features(docs)
    # The runner's pipeline on the same documents, written as its input.
    source = tmp_path / "docs.txt"
    source.write_text("\n\n".join("\n".join(d) for d in docs) + "\n",
                      encoding="utf-8")
    summary = create_pretraining.create_pretraining_data(
        str(source), str(tmp_path / "data.tfrecord"), vocab_file=None,
        spm_model_file=tiny_spm["model"], do_lower_case=True,
        config=pretraining_data.PretrainingConfig(
            max_seq_length=PRE_SEQ, max_predictions_per_seq=4),
        random_seed=7, dupe_factor=1,
        options=create_pretraining.PipelineOptions())
    runner = next(iter(pretraining_input.pretraining_dataset(
        str(tmp_path / "data.tfrecord"), PRE_SEQ, 4, summary["instances"],
        is_training=False)))
    assert set(features) == set(runner)
    for key, value in runner.items():
        np.testing.assert_array_equal(features[key], value.numpy(),
                                      err_msg=key)
    # One string in the original's input format: the same instances.
    again = model.features(source.read_text(encoding="utf-8"))
    np.testing.assert_array_equal(again["input_ids"], features["input_ids"])

    task = pretraining.PretrainingTask(_config(PRE_SEQ),
                                       pretraining.OptimizerConfig())
    trainer = _trainer(task, model, tmp_path, len(features["input_ids"]))
    _assert_same_step(model, trainer, features)


def test_pretraining_fit_fill_mask_and_save(tiny_spm, tmp_path):
    model = _pretrainer(tiny_spm)
    model.compile()
    assert isinstance(model.optimizer, optimization.LAMBOptimizer)
    np.testing.assert_allclose(float(model.optimizer.learning_rate),
                               0.00176)
    history = model.fit(_documents(tiny_spm), batch_size=4, verbose=0)
    assert set(history.history) == {
        "loss", "masked_lm_accuracy", "sentence_order_accuracy"}

    # Planted: the MLM output bias makes piece 100 the best everywhere.
    bias = model.ids_model.masked_lm_head.output_bias
    bias.assign(tf.one_hot(100, 320) * 50.0)
    tokenizer = full_tokenizer.FullTokenizer(spm_model_file=tiny_spm["model"])
    texts = ["kari [MASK] musa [MASK].", "no mask here", "[MASK]"]
    got = model.predict(texts, verbose=0)
    assert [len(masks) for masks in got] == [2, 0, 1]
    for masks in (got[0], got[2]):
        for top in masks:
            assert len(top) == 3
            assert top[0]["id"] == 100
            assert top[0]["piece"] == tokenizer.convert_ids_to_tokens(
                [100])[0]
            assert top[0]["probability"] > 0.99
            assert top[0]["probability"] >= top[1]["probability"]

    loaded = _round_trip(model, tmp_path, texts, "pretrainer")
    again = loaded.predict(texts, verbose=0)
    for a, b in zip(again, got):
        assert [[t["id"] for t in top] for top in a] == [
            [t["id"] for t in top] for top in b]
    assert isinstance(loaded.optimizer, optimization.LAMBOptimizer)


def test_pretraining_errors(tiny_spm):
    model = _pretrainer(tiny_spm)
    with pytest.raises(ValueError, match="y must be"):
        model.features(_documents(tiny_spm), [1, 0])
    with pytest.raises(ValueError, match="no text"):
        model.features([[" "], []])
    with pytest.raises(ValueError, match="max_seq_length is the"):
        AlbertTextPretrainer(_config(PRE_SEQ),
                             pretraining_options={"max_seq_length": 8})
    with pytest.raises(ValueError, match="beyond max_seq_length"):
        model.predict(["kari " * 40 + "[MASK]"], verbose=0)


@pytest.mark.slow
def test_squad_fit_under_a_distribution_strategy(tiny_spm):
    x = (QUESTIONS, CONTEXTS)
    plain = _answerer(tiny_spm, False)
    plain.compile()
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        mirrored = _answerer(tiny_spm, False)
        mirrored.compile()
    for model in (plain, mirrored):
        model.fit(x, ANSWERS, batch_size=4, shuffle=False, verbose=0)
    a, b = (m.predict(m.features(x), verbose=0) for m in (plain, mirrored))
    np.testing.assert_allclose(b["start_logits"], a["start_logits"],
                               atol=1e-5)


def test_from_a_release_directory(tiny_spm, tmp_path):
    """Each task on a pretrained encoder (a release layout): every encoder
    weight (and the MLM / SOP heads for the pretrainer) loads."""
    import shutil

    from albert_tf import checkpoints
    from albert_tf.models import AlbertPretrainer

    seq = QA_SEQ
    pretrained = AlbertPretrainer(_config(seq))
    helpers.randomize(pretrained)
    directory = tmp_path / "albert_tiny"
    directory.mkdir()
    checkpoints.save_tf1_checkpoint(pretrained,
                                    str(directory / "model.ckpt-best"))
    pretrained.config.to_json_file(str(directory / "albert_config.json"))
    shutil.copy(tiny_spm["model"], directory / "30k-clean.model")
    want = names.variables_by_path(pretrained)
    for cls, kwargs in ((AlbertTextQuestionAnswerer,
                         {"version_2_with_negative": True,
                          "max_query_length": 6}),
                        (AlbertTextTokenClassifier, {"label_list": LABELS}),
                        (AlbertTextPretrainer, {})):
        model = cls.from_preset(str(directory), sequence_length=seq,
                                **kwargs)
        got = names.variables_by_path(model.ids_model)
        shared = [p for p in got if p in want and (
            p.startswith("encoder/") or cls is AlbertTextPretrainer)]
        assert len(shared) > 10, cls.__name__
        for path in shared:
            np.testing.assert_array_equal(np.asarray(got[path]),
                                          np.asarray(want[path]),
                                          err_msg=path)
        assert model.preprocessor.sequence_length == seq
