"""Token classification: the CoNLL reader, first-piece features, the model
and its loss, seqeval metrics, and in-graph entity decoding."""

import logging as std_logging
import random

import keras
import numpy as np
import pytest
import tensorflow as tf
from seqeval.metrics.sequence_labeling import get_entities

import helpers
from albert_tf import AlbertTokenClassifier
from albert_tf.checkpoints import hf_names
from albert_tf.checkpoints import tf1_names
from albert_tf.data import conll
from albert_tf.metrics import tokens as token_metrics
from albert_tf.serving import tokens as export_tokens
from albert_tf.tasks import token_classification
from albert_tf.tokenization import full_tokenizer


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str)
                     else text)
    return str(path)


# ---------------------------------------------------------------- reader --

CONLL_2003 = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O
\t
Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
"""


def test_reader_reads_conll_2003_columns(tmp_path):
    path = _write(tmp_path / "train.txt", CONLL_2003)
    sentences = conll.read_conll(path)
    assert [s.words for s in sentences] == [
        ("EU", "rejects", "German", "call", "."), ("Peter", "Blackburn"),
        ("BRUSSELS",)]
    assert [s.tags for s in sentences] == [
        ("B-ORG", "O", "B-MISC", "O", "O"), ("B-PER", "I-PER"),
        ("B-LOC",)]
    # A tab-only line ends a sentence; each sentence knows its first line.
    assert [s.where for s in sentences] == [
        f"{path}:3", f"{path}:9", f"{path}:14"]
    pos = conll.read_conll(path, label_column=1)
    assert pos[0].tags == ("NNP", "VBZ", "JJ", "NN", ".")
    assert conll.label_list_of(sentences) == [
        "O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER"]


def test_reader_errors_name_file_and_line(tmp_path):
    missing = _write(tmp_path / "a.txt", "EU B-ORG\nrejects\n")
    with pytest.raises(ValueError, match=r"a\.txt:2: expected a word and a "
                       r"tag in column -1.*got 1 column"):
        conll.read_conll(missing)
    narrow = _write(tmp_path / "b.txt", "EU NNP B-ORG\n\nx NNP\n")
    with pytest.raises(ValueError, match=r"b\.txt:3: .*column 2.*got 2 "
                       r"columns"):
        conll.read_conll(narrow, label_column=2)
    mixed = _write(tmp_path / "c.txt", "EU B-ORG\nrejects\n")
    with pytest.raises(ValueError, match=r"c\.txt:2: word 'rejects' has no "
                       r"tag"):
        conll.read_conll(mixed, require_labels=False)
    bad_bytes = _write(tmp_path / "d.txt", b"EU B-ORG\n\nd\xe9j\xe0 O\n")
    with pytest.raises(ValueError, match=r"d\.txt:3: not UTF-8"):
        conll.read_conll(bad_bytes)
    with pytest.raises(ValueError, match="word column"):
        conll.read_conll(missing, label_column=0)
    # A dev tag training never saw names its line.
    dev = conll.read_conll(_write(tmp_path / "dev.txt",
                                  "\nEU B-ORG\nParis B-LOC\n"))
    with pytest.raises(ValueError, match=r"dev\.txt:3: tag 'B-LOC' of word "
                       r"'Paris' is not among the training labels"):
        conll.check_tags(dev, ["O", "B-ORG"])
    assert conll.check_tags(dev, ["O", "B-ORG"], strict=False) == 1


def test_untagged_test_file(tmp_path):
    path = _write(tmp_path / "test.txt", "EU\nrejects\n\nPeter\n")
    sentences = conll.read_conll(path, require_labels=False)
    assert [(s.words, s.tags) for s in sentences] == [
        (("EU", "rejects"), None), (("Peter",), None)]
    assert conll.to_conll(sentences, [["B-ORG", "O"], ["B-PER"]]) == (
        "EU B-ORG\nrejects O\n\nPeter B-PER\n\n")


# -------------------------------------------------------------- features --

@pytest.fixture(scope="module")
def tokenizer(tiny_spm):
    return full_tokenizer.FullTokenizer(spm_model_file=tiny_spm["model"])


def test_first_piece_of_each_word_carries_its_label(tokenizer):
    words = ["Karito", "ne", "\u0301", "sa", "kari"]
    # The fixture model's pieces (checked first, so a tokenizer change
    # shows here and not as a puzzling label mismatch below).
    assert [conll.word_pieces(w, tokenizer) for w in words] == [
        ["\u2581ka", "ri", "to"], ["\u2581ne"], [], ["\u2581sa"],
        ["\u2581ka", "ri"]]
    stats = conll.ConversionStats()
    values, positions = conll.convert_sentence(
        words, [1, 0, 2, 3, 4], tokenizer, max_seq_length=8, stats=stats)
    # [CLS] ka ri to | ne | (no piece) | sa | ka (ri cut: 6 pieces max) [SEP]
    pieces = ["[CLS]", "\u2581ka", "ri", "to", "\u2581ne", "\u2581sa",
              "\u2581ka", "[SEP]"]
    assert values["input_ids"] == tokenizer.convert_tokens_to_ids(pieces)
    assert positions == [1, 4, None, 5, 6]
    assert values["label_ids"] == [0, 1, 0, 0, 0, 3, 4, 0]
    assert values["label_weights"] == [0, 1, 0, 0, 1, 1, 1, 0]
    assert values["input_mask"] == [1] * 8
    assert values["segment_ids"] == [0] * 8
    assert (stats.empty_words, stats.truncated_words) == (1, 0)


def test_long_sentences_are_truncated_and_counted(tokenizer, caplog):
    words = ["ne"] * 7
    values, positions = conll.convert_sentence(
        words, [1] * 7, tokenizer, max_seq_length=6)
    assert positions == [1, 2, 3, 4, None, None, None]
    assert values["label_weights"] == [0, 1, 1, 1, 1, 0]
    assert values["input_ids"][-1] == tokenizer.vocab["[SEP]"]
    sentences = [conll.Sentence(tuple(words), ("O",) * 7, "f:1"),
                 conll.Sentence(("ne",), ("O",), "f:9")]
    caplog.set_level(std_logging.INFO)
    conll.convert_sentences(sentences, ["O"], tokenizer, 6, what="t.txt")
    assert ("t.txt: 1 sentences longer than max_seq_length - 2 pieces were "
            "truncated; their last 3 words") in caplog.text
    assert conll.tags_from_logits(np.eye(6, 2)[[0, 1, 1, 1, 1, 0]],
                                  positions, ["O", "B-X"]) == [
        "B-X", "B-X", "B-X", "B-X", "O", "O", "O"]


# ------------------------------------------------------- model and loss --

def test_model_logits_config_and_names():
    config = helpers.tiny_config()
    model = AlbertTokenClassifier(config, num_labels=5, dropout_prob=0.2)
    inputs = helpers.random_inputs(config)
    logits = model(inputs)["logits"]
    assert logits.shape == (helpers.BATCH, helpers.SEQ, 5)
    assert logits.dtype == "float32"
    weights = {v.path: v for v in model.classifier.weights}
    assert weights["classifier/output_weights"].shape == (5, 8)  # [C, H]
    # The logits are the sequence output times output_weights^T.
    sequence = model.encoder(inputs)["sequence_output"]
    expected = (np.asarray(sequence) @ np.asarray(
        weights["classifier/output_weights"]).T
        + np.asarray(weights["classifier/output_bias"]))
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    tf1_names.check_coverage(model)
    # HF's AlbertForTokenClassification: `classifier.weight` [C, H].
    hf = hf_names.hf_name_map(model)
    assert set(hf) == set(tf1_names.variables_by_path(model))
    assert hf["classifier/output_weights"] == ("classifier.weight", False)
    assert hf_names.hf_architecture(model) == "AlbertForTokenClassification"
    clone = AlbertTokenClassifier.from_config(model.get_config())
    assert (clone.num_labels, clone.dropout_prob) == (5, 0.2)
    mixed = AlbertTokenClassifier(config, 5, dtype="mixed_bfloat16")
    assert mixed(inputs)["logits"].dtype == "float32"


def _task(config, num_labels):
    task = token_classification.TokenClassificationTask(
        config, {}, None, spm_model_file=None, vocab_file="unused",
        label_list=[f"L{i}" for i in range(num_labels)], cached_dir="/tmp",
        max_seq_length=config.max_position_embeddings)
    return task


def test_loss_is_the_mean_over_labelled_first_pieces():
    config = helpers.tiny_config()
    task = _task(config, 3)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 7, 3)).astype("float32")
    labels = rng.integers(0, 3, (2, 7)).astype("int32")
    weights = np.zeros((2, 7), "int32")
    weights[0, [1, 4]] = 1
    weights[1, [2]] = 1
    features = {"label_ids": labels, "label_weights": weights}
    num, den = task.loss_terms({"logits": logits}, features, 1)["loss"]
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = [log_p[0, 1, labels[0, 1]], log_p[0, 4, labels[0, 4]],
              log_p[1, 2, labels[1, 2]]]
    assert float(num) / float(den) == pytest.approx(-np.mean(picked),
                                                    rel=1e-5)
    assert float(den) == pytest.approx(3.0, abs=1e-4)
    assert float(task.loss_denominators(features, 2)["loss"]) == (
        pytest.approx(3.0, abs=1e-4))
    # Unlabelled positions do not matter, whatever their label id.
    changed = dict(features, label_ids=np.where(weights, labels, 2))
    assert float(task.loss_terms({"logits": logits}, changed, 1)["loss"][0]
                 ) == pytest.approx(float(num))


# ---------------------------------------------------------------- metrics --

def test_entity_scores_against_hand_counts():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O"],
            ["B-ORG", "O", "B-PER"],
            ["I-MISC", "I-MISC", "O"]]  # IOB1: I- after O opens one.
    pred = [["B-PER", "I-PER", "O", "B-ORG", "O"],  # PER right, LOC->ORG
            ["B-ORG", "I-ORG", "B-PER"],  # ORG too long: wrong boundary
            ["B-MISC", "I-MISC", "O"]]  # same span and type: right
    # gold entities: PER LOC | ORG PER | MISC = 5; predicted: PER ORG |
    # ORG PER | MISC = 5; right: PER, PER, MISC = 3.
    scores = token_metrics.entity_scores(gold, pred)
    assert scores["num_gold_entities"] == 5
    assert scores["num_predicted_entities"] == 5
    assert scores["eval_precision"] == pytest.approx(3 / 5)
    assert scores["eval_recall"] == pytest.approx(3 / 5)
    assert scores["eval_f1"] == pytest.approx(3 / 5)
    # Words: 11, wrong: LOC->ORG, O->I-ORG, I-MISC->B-MISC = 3.
    assert scores["eval_accuracy"] == pytest.approx(8 / 11)
    fewer = token_metrics.entity_scores(gold, [["O"] * 5, ["O"] * 3,
                                               ["B-MISC", "I-MISC", "O"]])
    assert fewer["eval_precision"] == 1.0
    assert fewer["eval_recall"] == pytest.approx(1 / 5)
    assert fewer["eval_f1"] == pytest.approx(2 * 0.2 / 1.2)
    with pytest.raises(ValueError, match="differ in shape"):
        token_metrics.entity_scores(gold, pred[:2])


@pytest.mark.filterwarnings("ignore:.*seems not to be NE tag")
def test_in_graph_decoding_matches_seqeval():
    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC",
              "E-LOC", "S-LOC", ".", "NN", "I-.", "B-_"]
    prefixes, kinds, _ = token_metrics.chunk_tables(labels)
    rng = random.Random(0)
    rows = [[rng.randrange(len(labels)) for _ in range(rng.randint(0, 9))]
            for _ in range(400)]
    rows += [[1, 2, 2], [2, 2], [3, 2], [4, 3], [0, 6, 2], [9, 2, 9]]
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), np.int32)  # Padding: "O".
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
    first, last = export_tokens.decode_chunks(
        tf.constant(prefixes[ids]), tf.constant(kinds[ids]))
    for i, row in enumerate(rows):
        expected = [(s, e) for _, s, e in
                    get_entities([labels[j] for j in row])]
        got = list(zip(first[i].numpy().tolist(), last[i].numpy().tolist()))
        assert got == expected, [labels[j] for j in row]
