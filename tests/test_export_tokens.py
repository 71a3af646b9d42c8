"""serve_tokens: words, tags and entities with character offsets, checked
by hand on sentences with multi-byte characters, odd spaces and
truncation. The head is set so that every tagged word gets one chosen
tag, which makes the entities known in advance."""

import numpy as np
import pytest
import tensorflow as tf

import helpers
from albert_tf import AlbertTokenClassifier
from albert_tf.serving import tokens as export_tokens
from albert_tf.tokenization import in_graph

LABELS = ["O", "B-PER", "I-PER"]
# Code points:  0-1 spaces, 2-5 "Café", 6-7 spaces, 8-12 "naïve",
# 13 ",", 14 space, 15-16 "ka", 17 ".".  (é and ï are 2 bytes each.)
TEXT_A = "  Café  naïve, ka."
TEXT_B = "ne\u3000sa"  # U+3000 is whitespace to str.split().


@pytest.fixture(scope="module")
def model():
    config = helpers.tiny_config(vocab_size=320, max_position_embeddings=64)
    return AlbertTokenClassifier(config, num_labels=len(LABELS))


def _serve(model, tiny_spm, tag, max_seq_length=64, split=True):
    """serve_tokens with the head forced to `tag` on every position."""
    bias = np.full(len(LABELS), -10.0, np.float32)
    bias[LABELS.index(tag)] = 10.0
    model.classifier.output_weights.assign(
        np.zeros(model.classifier.output_weights.shape, np.float32))
    model.classifier.output_bias.assign(bias)
    module = export_tokens._TokenModule(
        model, in_graph.InGraphTokenizer.from_file(tiny_spm["model"]),
        LABELS, max_seq_length, split_punctuation=split)
    out = module.serve_tokens(tf.constant([TEXT_A, TEXT_B]))
    return {k: v.numpy() for k, v in out.items()}


def _strings(row):
    return [x.decode() for x in row]


def test_words_and_one_entity_per_word(model, tiny_spm):
    out = _serve(model, tiny_spm, "B-PER")
    assert _strings(out["words"][0]) == ["Café", "naïve", ",", "ka", "."]
    assert out["word_start"][0].tolist() == [2, 8, 13, 15, 17]
    assert out["word_end"][0].tolist() == [6, 13, 14, 17, 18]
    assert _strings(out["words"][1]) == ["ne", "sa", "", "", ""]
    assert out["word_start"][1].tolist() == [0, 3, -1, -1, -1]
    assert out["word_end"][1].tolist() == [2, 5, -1, -1, -1]
    assert out["num_words"].tolist() == [5, 2]
    assert _strings(out["word_tags"][0]) == ["B-PER"] * 5
    assert _strings(out["word_tags"][1]) == ["B-PER"] * 2 + [""] * 3
    assert out["num_entities"].tolist() == [5, 2]
    assert _strings(out["entity_text"][0]) == ["Café", "naïve", ",", "ka",
                                               "."]
    assert _strings(out["entity_type"][1]) == ["PER", "PER", "", "", ""]
    assert out["entity_start"][1].tolist() == [0, 3, -1, -1, -1]
    assert out["entity_end"][1].tolist() == [2, 5, -1, -1, -1]
    np.testing.assert_array_less(0.99, out["entity_score"][0])
    for text, starts, ends, texts in zip(
            (TEXT_A, TEXT_B), out["entity_start"], out["entity_end"],
            out["entity_text"]):
        for s, e, t in zip(starts, ends, texts):
            if s >= 0:  # Python slicing gives the entity's text.
                assert text[s:e] == t.decode()


def test_a_multi_word_entity_keeps_the_input_spacing(model, tiny_spm):
    out = _serve(model, tiny_spm, "I-PER")  # IOB1: one entity per text.
    assert out["num_entities"].tolist() == [1, 1]
    assert out["entity_start"][:, 0].tolist() == [2, 0]
    assert out["entity_end"][:, 0].tolist() == [18, 5]
    assert _strings(out["entity_text"][:, 0]) == ["Café  naïve, ka.",
                                                  "ne\u3000sa"]
    words = _serve(model, tiny_spm, "I-PER", split=False)
    assert _strings(words["words"][0]) == ["Café", "naïve,", "ka."]


def test_words_past_max_seq_length_are_untagged(model, tiny_spm):
    # "Café" alone fills the 4 pieces max_seq_length=6 leaves (▁ c af e).
    out = _serve(model, tiny_spm, "I-PER", max_seq_length=6)
    assert out["word_tagged"][0].tolist() == [True, False, False, False,
                                              False]
    assert _strings(out["word_tags"][0]) == ["I-PER"] + ["O"] * 4
    assert out["word_probability"][0, 1:].tolist() == [0.0] * 4
    assert out["word_tagged"][1, :2].tolist() == [True, True]
    assert _strings(out["entity_text"][:, 0]) == ["Café", "ne\u3000sa"]
    assert out["entity_end"][:, 0].tolist() == [6, 5]


def test_export_refuses_a_wrong_label_list(model, tiny_spm, tmp_path):
    with pytest.raises(ValueError, match="label_list has 2 tags but the "
                       "model has num_labels=3"):
        export_tokens.export_token_classifier(
            model, str(tmp_path / "x"), label_list=["O", "B-PER"],
            spm_model_file=tiny_spm["model"], do_lower_case=True)
