"""TFLite exports (serving/tflite.py) run through the TFLite interpreter.

References are independent of the export: the Keras model's own call on
ids from the Python FullTokenizer, packed as the original's
`classifier_utils.convert_single_example` (test_export's reference).
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from albert_tf import AlbertConfig
from albert_tf.models import AlbertClassifier
from albert_tf.serving import tflite
from albert_tf.tasks import finetune
from albert_tf.tokenization.full_tokenizer import FullTokenizer
from conftest import make_sentences
from test_export import _pack_reference
from test_export import _randomize

MAX_SEQ_LENGTH = 13
LABELS = ["neg", "pos"]

# Held out from the SentencePiece model's training text (make_sentences
# seed 0): other seeds, plus accents, upper case, quotes, whitespace runs
# and lines longer than max_seq_length.
HELD_OUT = make_sentences(11, 6) + [
    "Kári TONE mù, Sà LÓ pè!",
    "ÀÉÎÕÜ çà ñ ø å",
    "``kari'' \"tone\" 'mu' «sa» “lo”",
    "  kari\t\ttone \n mu  ",
    "1,000 kari 2,5 tone",
    " ".join(make_sentences(12, 8)),  # Far past max_seq_length.
]
PAIRS = [(HELD_OUT[0], HELD_OUT[1]), (HELD_OUT[-1], HELD_OUT[6]),
         (HELD_OUT[7], HELD_OUT[-1]), ("Kári", "")]


def _config(vocab_size, **kw):
    values = dict(vocab_size=vocab_size, embedding_size=8, hidden_size=16,
                  num_hidden_layers=3, num_hidden_groups=2,
                  num_attention_heads=2, intermediate_size=28,
                  max_position_embeddings=32, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0)
    values.update(kw)
    return AlbertConfig(**values)


@pytest.fixture(scope="module")
def tokenizer(tiny_spm):
    return FullTokenizer(spm_model_file=tiny_spm["model"], do_lower_case=True)


@pytest.fixture(scope="module")
def classifier(tiny_spm):
    model = AlbertClassifier(_config(300), num_labels=2, dropout_prob=0.0)
    model({k: np.zeros([1, 4], np.int32)
           for k in ("input_ids", "input_mask", "segment_ids")})
    _randomize(model, seed=3)
    return model


@pytest.fixture(scope="module")
def exported(classifier, tiny_spm, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("tflite") / "export")
    manifest = tflite.export_tflite(
        classifier, out, spm_model_file=tiny_spm["model"],
        max_seq_length=MAX_SEQ_LENGTH, label_list=LABELS,
        quantization=["float32"])
    return out, manifest


def _runner(out, name, signature=None):
    return tflite.interpreter(os.path.join(out, name)).get_signature_runner(
        signature)


def _ids(tokenizer, text):
    return tokenizer.convert_tokens_to_ids(
        tokenizer.tokenize(tokenizer.preprocess(text)))


def _packed(tokenizer, a, b=None):
    """Reference features [1, T] (unpadded) for text a (and b)."""
    ids, mask, segments = _pack_reference(
        _ids(tokenizer, a), None if b is None else _ids(tokenizer, b),
        MAX_SEQ_LENGTH)
    n = sum(mask)
    return {"input_ids": np.array([ids[:n]], np.int32),
            "input_mask": np.array([mask[:n]], np.int32),
            "segment_ids": np.array([segments[:n]], np.int32)}


def test_manifest_lists_files(exported):
    out, manifest = exported
    names = sorted(e["file"] for e in manifest["files"])
    assert names == ["classifier_ids.float32.tflite",
                     "classifier_text.float32.tflite",
                     "encoder_ids.float32.tflite",
                     "encoder_text.float32.tflite"]
    assert sorted(os.listdir(out)) == sorted(names + [tflite.MANIFEST])
    assert manifest["labels"] == LABELS
    assert manifest["max_seq_length"] == MAX_SEQ_LENGTH


def test_ids_logits_equal_keras(exported, classifier, tokenizer):
    out, _ = exported
    runner = _runner(out, "classifier_ids.float32.tflite")
    for a, b in [(HELD_OUT[0], None), (HELD_OUT[-1], None), PAIRS[1]]:
        features = _packed(tokenizer, a, b)
        expected = classifier(features, training=False)["logits"].numpy()
        got = runner(**features)
        np.testing.assert_allclose(got["logits"], expected, atol=1e-5)
        assert got["predictions"][0] == np.argmax(expected)
        np.testing.assert_allclose(got["probabilities"],
                                   tf.nn.softmax(expected), atol=1e-6)


def test_text_path_gives_the_python_tokenizer_ids(exported, classifier,
                                                  tokenizer):
    """The encoder's sequence_output [1, T, H] on raw text equals the Keras
    encoder's on FullTokenizer's packed ids: the same T and, with large
    random weights, the same ids."""
    out, _ = exported
    text = _runner(out, "encoder_text.float32.tflite", "serve_text")
    pair = _runner(out, "encoder_text.float32.tflite", "serve_text_pair")
    cases = [(t, None) for t in HELD_OUT] + PAIRS
    for a, b in cases:
        features = _packed(tokenizer, a, b)
        expected = classifier.encoder(features, training=False)
        if b is None:
            got = text(text=np.array([a]))
        else:
            got = pair(text_a=np.array([a]), text_b=np.array([b]))
        assert got["sequence_output"].shape == expected[
            "sequence_output"].shape, (a, b)
        np.testing.assert_allclose(got["sequence_output"],
                                   expected["sequence_output"], atol=1e-5,
                                   err_msg=repr((a, b)))
        np.testing.assert_allclose(got["pooled_output"],
                                   expected["pooled_output"], atol=1e-5)


def test_text_classifier_matches_ids_classifier(exported, tokenizer):
    out, _ = exported
    text = _runner(out, "classifier_text.float32.tflite", "serve_text")
    ids = _runner(out, "classifier_ids.float32.tflite")
    for a in HELD_OUT[:3]:
        np.testing.assert_allclose(text(text=np.array([a]))["logits"],
                                   ids(**_packed(tokenizer, a))["logits"],
                                   atol=1e-6)


def test_digit_comma_table_is_the_python_rule(tiny_spm):
    import sentencepiece as spm

    from albert_tf.tokenization import text as text_lib

    sp = spm.SentencePieceProcessor(model_file=tiny_spm["model"])
    table = tflite._digit_comma_table(sp, 310)  # noqa: SLF001
    for i in range(sp.GetPieceSize()):
        piece = sp.IdToPiece(i)
        want = [sp.PieceToId(p)
                for p in text_lib.split_digit_comma(sp, [piece])]
        if table is None or sp.IsControl(i) or sp.IsUnknown(i):
            assert table is None or list(table[i][table[i] >= 0]) == [i]
            continue
        assert list(table[i][table[i] >= 0]) == want, piece


def test_shared_weights_are_stored_once(tmp_path):
    """6 layers in 1 group: the float32 file holds one copy of the weights
    (its constant buffers add up to at most the parameter bytes) and is
    within 10% of one copy's size (6 copies would be about 5 times it).

    Wider than the other tests' config: each layer application adds about
    18 KB of op metadata to the file whatever the width (measured), which
    would dwarf 16-wide weights; at H=256 the shared layer is 3 MB.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    config = _config(300, embedding_size=64, hidden_size=256,
                     intermediate_size=1024, num_hidden_layers=6,
                     num_hidden_groups=1, num_attention_heads=4)
    model = AlbertClassifier(config, num_labels=2)
    features = {k: np.ones([1, 5], np.int32)
                for k in ("input_ids", "input_mask", "segment_ids")}
    model(features)
    param_bytes = 4 * sum(int(np.prod(w.shape)) for w in model.weights)
    out = str(tmp_path / "t")
    manifest = tflite.export_tflite(model, out, max_seq_length=16,
                                    quantization=["float32", "int8"])
    sizes = {e["file"]: e["bytes"] for e in manifest["files"]}
    f32 = sizes["classifier_ids.float32.tflite"]
    assert f32 <= 1.1 * param_bytes, (f32, param_bytes)
    with open(os.path.join(out, "classifier_ids.float32.tflite"), "rb") as f:
        flatbuffer = schema.ModelT.InitFromObj(
            schema.Model.GetRootAsModel(f.read(), 0))
    constant_bytes = sum(len(b.data) for b in flatbuffer.buffers
                         if b.data is not None)
    assert 0.9 * param_bytes <= constant_bytes <= param_bytes
    # int8 dynamic range: the matrices in one byte per weight; it runs.
    assert sizes["classifier_ids.int8.tflite"] < f32 / 3, sizes
    expected = model(features, training=False)["logits"].numpy()
    got = _runner(out, "classifier_ids.int8.tflite")(**features)["logits"]
    np.testing.assert_allclose(got, expected, atol=0.05)


@pytest.mark.slow
def test_float16_and_int8_load_and_run(classifier, tiny_spm, tokenizer,
                                       tmp_path):
    manifest = tflite.export_tflite(
        classifier, str(tmp_path / "q"), spm_model_file=None,
        max_seq_length=MAX_SEQ_LENGTH, quantization=["float16", "int8"])
    assert sorted(e["file"] for e in manifest["files"]) == [
        f"{k}_ids.{f}.tflite" for k in ("classifier", "encoder")
        for f in ("float16", "int8")]
    features = _packed(tokenizer, HELD_OUT[0])
    expected = classifier(features, training=False)["logits"].numpy()
    for form in ("float16", "int8"):
        got = _runner(str(tmp_path / "q"),
                      f"classifier_ids.{form}.tflite")(**features)
        assert got["logits"].shape == (1, 2)
        assert np.all(np.isfinite(got["logits"]))
        # Same ballpark as float32 (weights of scale 0.5, logits of ~10).
        np.testing.assert_allclose(got["logits"], expected, rtol=0.5,
                                   atol=2.0)


def test_bad_inputs_are_refused(exported, classifier, tiny_spm, tmp_path):
    out, _ = exported
    ids = _runner(out, "classifier_ids.float32.tflite")
    good = {k: np.ones([1, 4], np.int32)
            for k in ("input_ids", "input_mask", "segment_ids")}
    with pytest.raises(ValueError):  # dtype
        ids(**{**good, "input_ids": good["input_ids"].astype(np.float32)})
    with pytest.raises(ValueError):  # a missing input
        ids(input_ids=good["input_ids"], input_mask=good["input_mask"])
    # Batch 1 only: two texts are refused, not read as one.
    text = _runner(out, "classifier_text.float32.tflite", "serve_text")
    with pytest.raises(RuntimeError, match="num_input_elements"):
        text(text=np.array(["a", "b"]))
    with pytest.raises(RuntimeError, match="num_input_elements"):
        _runner(out, "classifier_ids.float32.tflite")(
            **{k: np.ones([2, 4], np.int32) for k in good})
    with pytest.raises(RuntimeError, match="gather index out of bounds"):
        _runner(out, "classifier_ids.float32.tflite")(
            **{**good, "input_ids": np.full([1, 4], 300, np.int32)})
    with pytest.raises(RuntimeError):  # T > max_position_embeddings
        _runner(out, "classifier_ids.float32.tflite")(
            **{k: np.ones([1, 40], np.int32) for k in good})
    export = tflite.export_tflite
    target = str(tmp_path / "x")
    with pytest.raises(ValueError, match="quantization"):
        export(classifier, target, quantization=["int4"])
    with pytest.raises(ValueError, match="max_seq_length"):
        export(classifier, target, max_seq_length=100)
    with pytest.raises(ValueError, match="label_list"):
        export(classifier, target, label_list=["a", "b", "c"],
               max_seq_length=MAX_SEQ_LENGTH)
    with pytest.raises(ValueError, match="no ALBERT encoder"):
        export(object(), target)
    assert not os.path.exists(target)


def test_writes_are_atomic_and_refuse_foreign_dirs(classifier, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a TFLite export"):
        tflite.export_tflite(classifier, str(foreign),
                             quantization=["float32"],
                             max_seq_length=MAX_SEQ_LENGTH)
    assert os.listdir(foreign) == ["notes.txt"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        tflite.export_tflite(classifier, str(a_file),
                             quantization=["float32"],
                             max_seq_length=MAX_SEQ_LENGTH)
    # An earlier export is replaced whole; nothing is left beside it.
    out = tmp_path / "out"
    out.mkdir()
    (out / tflite.MANIFEST).write_text("{}")
    (out / "stale.tflite").write_bytes(b"old")
    tflite.export_tflite(classifier, str(out), quantization=["float32"],
                         max_seq_length=MAX_SEQ_LENGTH)
    assert sorted(os.listdir(out)) == sorted(
        ["classifier_ids.float32.tflite", "encoder_ids.float32.tflite",
         tflite.MANIFEST])
    assert sorted(os.listdir(tmp_path)) == ["file", "foreign", "out"]


def test_tflite_dir_is_refused_for_tasks_without_it():
    class Task:
        pass

    with pytest.raises(ValueError, match="no TFLite export"):
        finetune.run(Task(), None, None, None, tflite_dir="/tmp/x")


@pytest.mark.slow
def test_text_classifier_task_exports_with_its_preprocessor(tiny_spm,
                                                             tmp_path):
    """AlbertTextClassifier: the Preprocessor's SentencePiece model, case
    and sequence length are the export's."""
    from albert_tf.preprocessing import Preprocessor
    from albert_tf.text_tasks import AlbertTextClassifier

    task = AlbertTextClassifier(
        _config(300), num_labels=2, dropout_prob=0.0,
        preprocessor=Preprocessor(tiny_spm["model"], sequence_length=11))
    manifest = tflite.export_tflite(task, str(tmp_path / "t"),
                                    quantization=["float32"])
    assert manifest["max_seq_length"] == 11
    text = _runner(str(tmp_path / "t"), "classifier_text.float32.tflite",
                   "serve_text")
    long_text = " ".join(make_sentences(5, 4))
    assert text(text=np.array([long_text]))["logits"].shape == (1, 2)
    got = _runner(str(tmp_path / "t"), "encoder_text.float32.tflite",
                  "serve_text")(text=np.array([long_text]))
    assert got["sequence_output"].shape == (1, 11, 16)


@pytest.mark.slow
def test_run_classifier_writes_tflite_dir(tiny_spm, tmp_path):
    """--tflite_dir alone on a trained run: the best checkpoint's files."""
    import json
    import subprocess
    import sys

    import helpers
    from test_run_classifier import ENV
    from test_run_classifier import ROOT
    from test_run_classifier import SEQ
    from test_run_classifier import _glue_data

    _glue_data(tmp_path / "glue", "sst-2")
    config = tmp_path / "albert_config.json"
    config.write_text(json.dumps(helpers.tiny_config(
        vocab_size=320, max_position_embeddings=SEQ).to_dict()))
    common = ["--task_name=sst-2", f"--data_dir={tmp_path / 'glue'}",
              f"--albert_config_file={config}",
              f"--spm_model_file={tiny_spm['model']}",
              f"--output_dir={tmp_path / 'out'}", f"--max_seq_length={SEQ}",
              "--train_batch_size=4", "--eval_batch_size=3"]
    for args in (["--do_train", "--train_step=2",
                  "--save_checkpoints_steps=2", "--iterations_per_loop=2"],
                 [f"--tflite_dir={tmp_path / 'tflite'}"]):
        result = subprocess.run(
            [sys.executable, str(ROOT / "run_classifier.py"), *common,
             *args], env=ENV, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "tflite" / tflite.MANIFEST
                           ).read_text())
    assert manifest["labels"] == ["0", "1"]
    assert manifest["max_seq_length"] == SEQ
    assert len(manifest["files"]) == 12  # 2 kinds x ids/text x 3 forms
    runner = _runner(str(tmp_path / "tflite"),
                     "classifier_text.int8.tflite", "serve_text")
    assert runner(text=np.array(["kari tone"]))["logits"].shape == (1, 2)
