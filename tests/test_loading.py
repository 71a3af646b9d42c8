"""albert_tf.load on every layout, offline: the tests write tiny release,
TF-Hub, HF and albert_tf-run directories (and an archive behind a file://
URL standing in for a download) and check the loaded model computes what
the saved one did."""

import json
import os
import shutil
import tarfile

import numpy as np
import pytest
import tensorflow as tf

import albert_tf
import helpers
from albert_tf import AlbertPretrainer
from albert_tf import checkpoints
from albert_tf import loading

SEQ = 9


def _config():
    return helpers.tiny_config(vocab_size=320, max_position_embeddings=SEQ)


@pytest.fixture(scope="module")
def saved(tiny_spm):
    """A pretrainer with random weights and its outputs on real inputs."""
    model = AlbertPretrainer(_config())
    helpers.randomize(model)
    inputs = helpers.random_inputs(_config(), seq=SEQ)
    outputs = model(inputs)
    return model, inputs, {k: np.asarray(outputs[k])
                           for k in ("sequence_output", "mlm_logits")}


def _release(saved, tiny_spm, directory):
    model = saved[0]
    directory.mkdir(parents=True)
    checkpoints.save_tf1_checkpoint(model, str(directory / "model.ckpt-best"))
    model.config.to_json_file(str(directory / "albert_config.json"))
    shutil.copy(tiny_spm["model"], directory / "30k-clean.model")
    return directory


def _check(model, preprocessor, saved, task=None):
    _, inputs, outputs = saved
    got = model(inputs)
    np.testing.assert_allclose(np.asarray(got["sequence_output"]),
                               outputs["sequence_output"], atol=1e-5)
    if task == "pretraining":
        np.testing.assert_allclose(np.asarray(got["mlm_logits"]),
                                   outputs["mlm_logits"], atol=1e-4)
    assert preprocessor is not None
    features = preprocessor(tf.constant(["a loaded model"]))
    assert features["input_ids"].shape == (1, preprocessor.sequence_length)


def test_release_directory(saved, tiny_spm, tmp_path):
    directory = _release(saved, tiny_spm, tmp_path / "albert_tiny")
    model, preprocessor = loading.load(str(directory), sequence_length=SEQ)
    assert type(model).__name__ == "AlbertEncoder"
    _check(model, preprocessor, saved)
    pretrainer, _ = loading.load(directory, task="pretraining",
                                 sequence_length=SEQ)
    _check(pretrainer, preprocessor, saved, "pretraining")
    # A head the checkpoint lacks starts fresh; the encoder loads.
    classifier, _ = loading.load(directory, task="classification",
                                 num_labels=3, sequence_length=SEQ)
    assert classifier(saved[1])["logits"].shape == (helpers.BATCH, 3)
    _check(classifier.encoder, preprocessor, saved)


def test_archive_behind_a_url_and_a_preset(saved, tiny_spm, tmp_path,
                                           monkeypatch):
    directory = _release(saved, tiny_spm, tmp_path / "src" / "albert_tiny")
    archive = tmp_path / "albert_tiny_v2.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(directory, arcname="albert_tiny")
    url = archive.as_uri()  # file:// stands in for the download
    model, preprocessor = loading.load(url, sequence_length=SEQ,
                                       cache_dir=str(tmp_path / "cache"))
    _check(model, preprocessor, saved)
    published = {k: v for k, v in _config().to_dict().items()
                 if k in ("hidden_size", "num_hidden_layers", "vocab_size")}
    monkeypatch.setitem(loading.PRESETS, "albert_tiny_v2", loading.Preset(
        url, "30k-clean.model", published))
    model, _ = loading.load("albert_tiny_v2", sequence_length=SEQ,
                            cache_dir=str(tmp_path / "cache2"))
    _check(model, preprocessor, saved)
    monkeypatch.setitem(loading.PRESETS, "albert_tiny_v2", loading.Preset(
        url, "30k-clean.model", {**published, "hidden_size": 768}))
    with pytest.raises(ValueError, match="hidden_size"):
        loading.load("albert_tiny_v2", cache_dir=str(tmp_path / "cache3"))


def test_tf_hub_module_layout(saved, tiny_spm, tmp_path):
    """export_to_tfhub.py's layout: variables/ and assets/."""
    directory = tmp_path / "hub"
    (directory / "assets").mkdir(parents=True)
    checkpoints.save_tf1_checkpoint(saved[0],
                                    str(directory / "variables" / "variables"))
    saved[0].config.to_json_file(str(directory / "assets" /
                                     "albert_config.json"))
    shutil.copy(tiny_spm["model"], directory / "assets" / "30k-clean.model")
    model, preprocessor = loading.load(directory, task="pretraining",
                                       sequence_length=SEQ)
    _check(model, preprocessor, saved, "pretraining")


def test_hf_directory(saved, tiny_spm, tmp_path):
    directory = tmp_path / "hf"
    checkpoints.save_hf_checkpoint(saved[0], str(directory))
    shutil.copy(tiny_spm["model"], directory / "spiece.model")
    model, preprocessor = loading.load(directory, task="pretraining",
                                       sequence_length=SEQ)
    _check(model, preprocessor, saved, "pretraining")


def test_albert_tf_run_directory(saved, tiny_spm, tmp_path):
    directory = tmp_path / "run"
    checkpoints.save_albert_tf_checkpoint(saved[0], str(directory))
    (directory / "flags.txt").write_text(
        f"--spm_model_file={tiny_spm['model']}\n--max_seq_length={SEQ}\n")
    model, preprocessor = loading.load(directory, sequence_length=SEQ)
    _check(model, preprocessor, saved)


def test_unknown_sources_and_tasks_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"Looked for.*config\.json"
                       r".*variables/variables\.index.*notes\.txt"):
        loading.load(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="albert_base_v2"):
        loading.load("albert_nonexistent_v9")
    with pytest.raises(ValueError, match="task='ner'"):
        loading.load(tmp_path / "empty", task="ner")
    (tmp_path / "config_only").mkdir()
    (tmp_path / "config_only" / "albert_config.json").write_text(
        json.dumps(_config().to_dict()))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        loading.load(tmp_path / "config_only")


def test_presets_name_every_released_model():
    names = set(loading.PRESETS)
    for size in ("base", "large", "xlarge", "xxlarge"):
        assert {f"albert_{size}_v1", f"albert_{size}_v2",
                f"albert_{size}_zh"} <= names
    base = loading.PRESETS["albert_base_v2"]
    assert base.url.endswith("/albert_models/albert_base_v2.tar.gz")
    assert base.config["hidden_size"] == 768
    assert base.config["hidden_dropout_prob"] == 0.0
    assert loading.PRESETS["albert_base_v1"].config[
        "attention_probs_dropout_prob"] == 0.1
    assert loading.PRESETS["albert_xxlarge_v1"].config[
        "hidden_dropout_prob"] == 0.0
    # Unconfirmed (16 per HF, 32 per Model Garden): not asserted, so a
    # genuine archive is never refused over it.
    assert "num_attention_heads" not in loading.PRESETS[
        "albert_xlarge_v2"].config
    assert loading.PRESETS["albert_xlarge_v2"].config["hidden_size"] == 2048
    assert loading.PRESETS["albert_base_zh"].tokenizer == "vocab_chinese.txt"
    assert os.path.basename(loading.PRESETS["albert_xxlarge_zh"].url) == \
        "albert_xxlarge_zh.tar.gz"


def test_text_classifier_from_a_release_directory(saved, tiny_spm,
                                                  tmp_path):
    """The README's path: a pretrained encoder, fine-tuned on strings."""
    from albert_tf.text_tasks import AlbertTextClassifier

    directory = _release(saved, tiny_spm, tmp_path / "albert_tiny")
    classifier = AlbertTextClassifier.from_preset(
        str(directory), num_labels=2, sequence_length=SEQ)
    _check(classifier.ids_model.encoder, classifier.preprocessor, saved)
    classifier.compile()
    classifier.fit(["good", "bad", "fine", "awful"], [1, 0, 1, 0],
                   batch_size=2, verbose=0)
    assert classifier.predict(["good"], verbose=0).shape == (1, 2)


def test_albert_tf_export_directory(tiny_spm, tmp_path):
    """A classifier export loads back as the classifier it was: weights,
    head size, tokenizer, casing and sequence length from its assets."""
    from albert_tf import AlbertClassifier
    from albert_tf.serving import export

    model = AlbertClassifier(_config(), num_labels=3)
    helpers.randomize(model)
    directory = export.export_classifier(
        model, str(tmp_path / "export"), label_list=["a", "b", "c"],
        is_regression=False, spm_model_file=tiny_spm["model"],
        do_lower_case=False, max_seq_length=SEQ - 1)
    loaded, preprocessor = loading.load(directory, task="classification")
    assert loaded.num_labels == 3  # From albert_tf_export.json.
    assert preprocessor.sequence_length == SEQ - 1
    assert preprocessor.do_lower_case is False
    features = preprocessor(tf.constant(["Upper CASE text", "x"]))
    np.testing.assert_allclose(np.asarray(loaded(features)["logits"]),
                               np.asarray(model(features)["logits"]),
                               atol=1e-6)
    # The export's own serve_text agrees with the loaded pair.
    served = tf.saved_model.load(directory).signatures["serve_text"](
        text=tf.constant(["Upper CASE text", "x"]))
    np.testing.assert_allclose(served["logits"].numpy(),
                               np.asarray(model(features)["logits"]),
                               atol=1e-5)
    encoder, _ = loading.load(directory)
    np.testing.assert_allclose(
        np.asarray(encoder(features)["pooled_output"]),
        np.asarray(model.encoder(features)["pooled_output"]), atol=1e-6)
    with pytest.raises(ValueError, match="exported with do_lower_case=False"):
        loading.load(directory, do_lower_case=True)
    # from_preset builds its Preprocessor the same way.
    text_model = albert_tf.AlbertTextClassifier.from_preset(directory,
                                                            num_labels=3)
    assert text_model.preprocessor.do_lower_case is False
    assert text_model.preprocessor.sequence_length == SEQ - 1
    with pytest.raises(ValueError, match="exported with do_lower_case=False"):
        albert_tf.AlbertTextClassifier.from_preset(
            directory, num_labels=3, do_lower_case=True)


def test_wordpiece_vocab_gives_a_preprocessor(saved, tiny_spm, tmp_path):
    """A release directory with vocab.txt (the Chinese models' layout) and
    no SentencePiece model gets the in-graph WordPiece Preprocessor."""
    from albert_tf.tokenization import full_tokenizer

    directory = _release(saved, tiny_spm, tmp_path / "albert_zh")
    (directory / "30k-clean.model").unlink()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "中", "国",
             "hello", "##s"]
    (directory / "vocab_chinese.txt").write_text("\n".join(vocab) + "\n",
                                                 encoding="utf-8")
    model, preprocessor = loading.load(directory, sequence_length=SEQ)
    _check(model, preprocessor, saved)
    text = "中国 Hellos 人"
    tokenizer = full_tokenizer.FullTokenizer(
        vocab_file=str(directory / "vocab_chinese.txt"))
    want = tokenizer.convert_tokens_to_ids(
        ["[CLS]"] + tokenizer.tokenize(text) + ["[SEP]"])
    assert want == [2, 5, 6, 7, 8, 1, 3]
    got = preprocessor(tf.constant([text]))["input_ids"][0].numpy()
    assert got.tolist() == want + [0] * (SEQ - len(want))


def test_hf_head_directory_sets_the_head_size(tiny_spm, tmp_path):
    """An HF AlbertForSequenceClassification directory (config.json with
    num_labels, or transformers' id2label) loads as a classifier of that
    many labels; another explicit num_labels is refused by name."""
    from albert_tf import AlbertClassifier

    model = AlbertClassifier(_config(), num_labels=5)
    helpers.randomize(model)
    directory = tmp_path / "hf_classifier"
    checkpoints.save_hf_checkpoint(model, str(directory))
    shutil.copy(tiny_spm["model"], directory / "spiece.model")
    config = json.loads((directory / "config.json").read_text())
    assert config["architectures"] == ["AlbertForSequenceClassification"]
    loaded, preprocessor = loading.load(directory, task="classification",
                                        sequence_length=SEQ)
    assert loaded.num_labels == 5
    features = preprocessor(tf.constant(["a loaded head"]))
    np.testing.assert_allclose(np.asarray(loaded(features)["logits"]),
                               np.asarray(model(features)["logits"]),
                               atol=1e-6)
    # transformers writes id2label rather than num_labels.
    config.pop("num_labels")
    config["id2label"] = {str(i): f"L{i}" for i in range(5)}
    (directory / "config.json").write_text(json.dumps(config))
    assert loading.load(directory, task="classification",
                        sequence_length=SEQ)[0].num_labels == 5
    with pytest.raises(ValueError, match=r"classifier\.bias.*\(5,\).*\(2,\)"):
        loading.load(directory, task="classification", num_labels=2)


def test_multiple_choice_export_loads_with_its_preprocessor(tiny_spm,
                                                          tmp_path):
    """task="multiple_choice" gets a MultipleChoicePreprocessor with the
    export's max_qa_length; the loaded pair equals the export's
    serve_choice."""
    from albert_tf import AlbertMultipleChoice
    from albert_tf.preprocessing import MultipleChoicePreprocessor
    from albert_tf.serving import export

    model = AlbertMultipleChoice(_config())
    helpers.randomize(model)
    directory = export.export_multiple_choice(
        model, str(tmp_path / "race"), spm_model_file=tiny_spm["model"],
        do_lower_case=True, max_seq_length=SEQ, max_qa_length=4)
    loaded, preprocessor = loading.load(directory, task="multiple_choice")
    assert isinstance(preprocessor, MultipleChoicePreprocessor)
    assert (preprocessor.max_qa_length, preprocessor.sequence_length) == (
        4, SEQ)
    inputs = (tf.constant(["The cat sat on the mat."]),
              tf.constant(["Where did it sit? _"]),
              tf.constant([["mat", "roof", "dog", "car"]]))
    served = tf.saved_model.load(directory).signatures["serve_choice"](
        article=inputs[0], question=inputs[1], options=inputs[2])
    np.testing.assert_allclose(
        np.asarray(loaded(preprocessor(inputs))["logits"]),
        served["logits"].numpy(), atol=1e-5)
