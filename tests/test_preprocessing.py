"""Preprocessor: the in-graph features equal the Python tokenizer plus the
original feature code, and the layer round-trips through Keras saving."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from albert_tf.data import default_corpus
from albert_tf.data import glue
from albert_tf.preprocessing import Preprocessor
from albert_tf.tokenization import full_tokenizer
from albert_tf.tokenization import text

SEQ = 24


@pytest.fixture(scope="module")
def held_out_lines():
    """Real English the tiny model never saw: sentences of Python's own
    documentation (the quickstart corpus), plus a few non-ASCII lines."""
    lines = [s for doc in itertools.islice(default_corpus.documents(), 40)
             for s in doc][:120]
    assert len(lines) >= 60
    return lines + ["Crème brûlée, 1,000,000 naïve Σίσυφος!", "  ",
                    "tabs\tand\nnewlines", "ÄÖÜ ẞ ǅ"]


def _expected(tokenizer, text_a, text_b=None, seq=SEQ):
    # As the original: the processors apply preprocess_text (whitespace,
    # accents, lowercase) when they make examples, before
    # convert_single_example tokenizes them.
    process = lambda t: None if t is None else text.preprocess_text(  # noqa
        t, lower=True)
    example = glue.InputExample("x", process(text_a), process(text_b), "0")
    features = glue.convert_single_example(example, ["0"], seq, tokenizer)
    return [features[k] for k in ("input_ids", "input_mask", "segment_ids")]


def test_single_texts_equal_full_tokenizer_and_convert_single_example(
        tiny_spm, held_out_lines):
    tokenizer = full_tokenizer.FullTokenizer(spm_model_file=tiny_spm["model"])
    preprocessor = Preprocessor(tiny_spm["model"], sequence_length=SEQ)
    got = preprocessor(tf.constant(held_out_lines))
    for i, line in enumerate(held_out_lines):
        want = _expected(tokenizer, line)
        for key, value in zip(("input_ids", "input_mask", "segment_ids"),
                              want):
            np.testing.assert_array_equal(got[key][i].numpy(), value,
                                          err_msg=f"{key} of {line!r}")


def test_pairs_equal_the_original_truncation(tiny_spm, held_out_lines):
    tokenizer = full_tokenizer.FullTokenizer(spm_model_file=tiny_spm["model"])
    preprocessor = Preprocessor(tiny_spm["model"], sequence_length=SEQ)
    a, b = held_out_lines[:40], held_out_lines[40:80]
    got = preprocessor((tf.constant(a), tf.constant(b)))
    truncated = 0
    for i, (text_a, text_b) in enumerate(zip(a, b)):
        want = _expected(tokenizer, text_a, text_b)
        lengths = [len(tokenizer.tokenize(text.preprocess_text(t, lower=True)))
                   for t in (text_a, text_b)]
        truncated += sum(lengths) > SEQ - 3
        np.testing.assert_array_equal(got["input_ids"][i].numpy(), want[0])
        np.testing.assert_array_equal(got["input_mask"][i].numpy(), want[1])
        np.testing.assert_array_equal(got["segment_ids"][i].numpy(), want[2])
    assert truncated > 5  # The pair truncation rule was exercised.


def test_accepts_lists_columns_and_a_dict(tiny_spm):
    preprocessor = Preprocessor(tiny_spm["model"], sequence_length=SEQ)
    text = ["one line", "two lines here"]
    reference = preprocessor(tf.constant(text))["input_ids"].numpy()
    column = preprocessor(tf.constant([[t] for t in text]))
    np.testing.assert_array_equal(column["input_ids"].numpy(), reference)
    pair = preprocessor({"text_a": tf.constant(text),
                         "text_b": tf.constant(text)})
    assert pair["segment_ids"].numpy().sum() > 0
    assert reference.shape == (2, SEQ)


def test_bad_inputs_are_named(tiny_spm, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.model"):
        Preprocessor(str(tmp_path / "nowhere.model"))
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.model"):
        Preprocessor(str(junk))
    preprocessor = Preprocessor(tiny_spm["model"], sequence_length=SEQ)
    with pytest.raises(TypeError, match="expected strings"):
        preprocessor(tf.constant([1, 2]))
    with pytest.raises(ValueError, match="sequence_length=2"):
        Preprocessor(tiny_spm["model"], sequence_length=2)


def test_keras_saving_carries_the_sentencepiece_model(tiny_spm, tmp_path):
    """The model file is an asset of the .keras file: the loaded layer
    works after the original file is gone."""
    source = tmp_path / "spm.model"
    source.write_bytes(open(tiny_spm["model"], "rb").read())
    preprocessor = Preprocessor(str(source), do_lower_case=True,
                                sequence_length=SEQ)
    text = tf.keras.Input(shape=(), dtype="string")
    model = keras.Model(text, preprocessor(text))
    path = str(tmp_path / "pre.keras")
    model.save(path)
    source.unlink()
    loaded = keras.saving.load_model(path)
    inputs = tf.constant(["Hello there, 1,000 worlds", "x"])
    want = preprocessor(inputs)
    got = loaded(inputs)
    for key in want:
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())


def test_tokenizers_survive_reseeding(tiny_spm):
    """keras.utils.set_random_seed clears TF's eager kernel cache; a
    SentencePiece resource owned by a cached kernel would be deleted with
    it, breaking every tokenizer made before the reseed."""
    from albert_tf.tokenization import in_graph

    first = in_graph.InGraphTokenizer.from_file(tiny_spm["model"])
    before = first(tf.constant(["a sentence, 1,000"])).to_list()
    keras.utils.set_random_seed(0)
    second = Preprocessor(tiny_spm["model"], sequence_length=SEQ)
    keras.utils.set_random_seed(1)
    assert first(tf.constant(["a sentence, 1,000"])).to_list() == before
    assert second(tf.constant(["x"]))["input_ids"].shape == (1, SEQ)
