"""Preprocessor with a WordPiece vocab.txt: the in-graph ids equal the
original's FullTokenizer without SentencePiece (BasicTokenizer + WordPiece)
plus convert_single_example, on held-out text and Unicode edge cases."""

import collections
import itertools
import random

import keras
import numpy as np
import pytest
import tensorflow as tf

from albert_tf.data import default_corpus
from albert_tf.data import glue
from albert_tf.preprocessing import MultipleChoicePreprocessor
from albert_tf.preprocessing import Preprocessor
from albert_tf.tokenization import full_tokenizer
from albert_tf.tokenization import in_graph
from albert_tf.tokenization import wordpiece

SEQ = 20

# Each line exercises a BasicTokenizer rule the tables must reproduce.
EDGE_LINES = [
    "Crème brûlée, naïve café!",            # NFD + drop Mn when lowering.
    "ΟΔΟΣ ΣΑΣ. ΑΣ'Σ Σ",                     # Final sigma, by context.
    "ﬁne Straße İstanbul ǅ",                # Not NFKC case folding.
    "中国人民 hello世界",                      # CJK ideographs spaced out.
    # Dropped (NUL, U+FFFD, controls) vs word-ending (U+2028) characters.
    "a\x00b c\ufffdd e\x1cf g\u2028h i\u200bj k\x85l",
    "tabs\tand\nnew\rlines\u3000wide",      # Whitespace of every kind.
    "x" * 201 + " " + "y" * 200,             # [UNK] past 200 characters.
    "déjà-vu's (test) [UNK] [CLS] ^$`~",     # Punctuation incl. ASCII.
    "\u0301a\u0316\u0301 \U0001F600 emoji",  # Marks, astral plane.
    "   ",
]


@pytest.fixture(scope="module")
def corpus_lines():
    docs = list(itertools.islice(default_corpus.documents(), 80))
    seen = [s for doc in docs[:30] for s in doc]
    held_out = [s for doc in docs[50:] for s in doc][:100]
    assert len(held_out) >= 60
    return seen, held_out


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory, corpus_lines):
    """A BERT-layout vocab.txt from the seen lines: whole words, single
    characters and ## continuations, so held-out words split into pieces
    and some are [UNK]."""
    seen, _ = corpus_lines
    basic = wordpiece.BasicTokenizer(do_lower_case=True)
    counts = collections.Counter(w for line in seen
                                 for w in basic.tokenize(line))
    words = [w for w, _ in counts.most_common(250)]
    chars = sorted({c for w in words for c in w})
    tokens = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
              + [c for c in chars if c not in words]
              + ["##" + c for c in chars]
              + ["##ing", "##ed", "##s", "σ", "ς", "中", "国", "a"])
    path = tmp_path_factory.mktemp("wordpiece") / "vocab.txt"
    path.write_text("\n".join(dict.fromkeys(tokens)) + "\n",
                    encoding="utf-8")
    return str(path)


def _fuzz_lines(n: int, seed: int) -> list[str]:
    pool = [chr(c) for c in itertools.chain(
        range(0x20, 0x250), range(0x370, 0x400),
        (0x4E2D, 0x56FD, 0x3000, 0x2028, 0x85, 0x1C, 0xAD, 0x200D, 0x301,
         0x316, 0x1D165, 0x1715, 0x3A3, 0x130, 0xFB01))]
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 30)))
            for _ in range(n)]


def _expected(tokenizer, text_a, text_b=None, seq=SEQ):
    # Without SentencePiece the processors only convert_to_unicode.
    example = glue.InputExample("x", text_a, text_b, "0")
    features = glue.convert_single_example(example, ["0"], seq, tokenizer)
    return [features[k] for k in ("input_ids", "input_mask", "segment_ids")]


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_ids_equal_full_tokenizer_on_held_out_and_edge_text(
        vocab_file, corpus_lines, do_lower_case):
    _, held_out = corpus_lines
    lines = held_out + EDGE_LINES + _fuzz_lines(300, seed=3)
    tokenizer = full_tokenizer.FullTokenizer(vocab_file=vocab_file,
                                             do_lower_case=do_lower_case)
    graph = in_graph.InGraphWordpieceTokenizer.from_file(
        vocab_file, do_lower_case=do_lower_case)
    got = graph(tf.constant(lines)).to_list()
    pieces = 0
    for line, ids in zip(lines, got):
        want = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(line))
        assert ids == want, repr(line)
        pieces += len(want)
    unk, cont = tokenizer.vocab["[UNK]"], tokenizer.vocab["##s"]
    flat = [i for ids in got for i in ids]
    # The comparison covered unknown words and ## continuations.
    assert flat.count(unk) > 10 and cont in flat and pieces > 1000
    edge = tokenizer.tokenize(EDGE_LINES[4])
    assert "[UNK]" not in edge and len(edge) == 12, edge


def test_features_and_pairs_equal_convert_single_example(vocab_file,
                                                         corpus_lines):
    _, held_out = corpus_lines
    tokenizer = full_tokenizer.FullTokenizer(vocab_file=vocab_file)
    preprocessor = Preprocessor(vocab_file=vocab_file, sequence_length=SEQ)
    single = preprocessor(tf.constant(held_out[:30] + EDGE_LINES))
    for i, line in enumerate(held_out[:30] + EDGE_LINES):
        for key, value in zip(("input_ids", "input_mask", "segment_ids"),
                              _expected(tokenizer, line)):
            np.testing.assert_array_equal(single[key][i].numpy(), value,
                                          err_msg=f"{key} of {line!r}")
    a, b = held_out[30:60], held_out[60:90]
    pairs = preprocessor((tf.constant(a), tf.constant(b)))
    truncated = 0
    for i, (text_a, text_b) in enumerate(zip(a, b)):
        want = _expected(tokenizer, text_a, text_b)
        truncated += sum(len(tokenizer.tokenize(t))
                         for t in (text_a, text_b)) > SEQ - 3
        for key, value in zip(("input_ids", "input_mask", "segment_ids"),
                              want):
            np.testing.assert_array_equal(pairs[key][i].numpy(), value)
    assert truncated > 5  # _truncate_seq_pair was exercised.


def test_keras_saving_carries_the_vocab(vocab_file, tmp_path):
    source = tmp_path / "vocab.txt"
    source.write_bytes(open(vocab_file, "rb").read())
    preprocessor = Preprocessor(vocab_file=str(source), do_lower_case=False,
                                sequence_length=SEQ)
    text = keras.Input(shape=(), dtype="string")
    model = keras.Model(text, preprocessor(text))
    path = str(tmp_path / "pre.keras")
    model.save(path)
    source.unlink()
    loaded = keras.saving.load_model(path)
    inputs = tf.constant(["Hello THERE, world", "中国"])
    want = preprocessor(inputs)
    got = loaded(inputs)
    assert not loaded.layers[-1].do_lower_case
    for key in want:
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())


def test_multiple_choice_with_a_vocab(vocab_file):
    """RACE without SentencePiece: process_text leaves text unchanged, the
    blank is filled, and the rows equal race.pack_choice's Python path."""
    from albert_tf.data import race

    tokenizer = full_tokenizer.FullTokenizer(vocab_file=vocab_file)
    pre = MultipleChoicePreprocessor(vocab_file=vocab_file,
                                     sequence_length=SEQ, max_qa_length=8)
    article = "The cat sat on the mat while the dog slept."
    question = "The cat sat on the _ ."
    options = ["mat", "dog", "roof", "floor"]
    got = pre((tf.constant([article]), tf.constant([question]),
               tf.constant([options])))
    context = tokenizer.tokenize(article)
    for j, option in enumerate(options):
        qa = tokenizer.tokenize(race.build_qa_text(question, option))
        tokens, segments = race.pack_choice(context, qa, SEQ, 8)
        ids = tokenizer.convert_tokens_to_ids(tokens)
        np.testing.assert_array_equal(
            got["input_ids"][0, j].numpy(), ids + [0] * (SEQ - len(ids)))
        np.testing.assert_array_equal(
            got["segment_ids"][0, j].numpy(),
            segments + [0] * (SEQ - len(segments)))


def test_bad_vocab_inputs_are_named(vocab_file, tiny_spm, tmp_path):
    with pytest.raises(ValueError, match="not both"):
        Preprocessor(tiny_spm["model"], vocab_file=vocab_file)
    with pytest.raises(FileNotFoundError, match="vocab_file not found"):
        Preprocessor(vocab_file=str(tmp_path / "none.txt"))
    no_sep = tmp_path / "no_sep.txt"
    no_sep.write_text("[UNK]\n[CLS]\nhello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no_sep.txt.*\[SEP\]"):
        Preprocessor(vocab_file=str(no_sep))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"[UNK]\n[CLS]\n[SEP]\ncaf\xe9\n")
    with pytest.raises(ValueError, match="latin1.txt:4: not UTF-8"):
        Preprocessor(vocab_file=str(latin1))


def test_classifier_export_with_a_vocab_serves_text(vocab_file, tmp_path):
    """--vocab_file runs export serve_text with the WordPiece tokenizer:
    its logits equal the model's on the Preprocessor's features, and
    albert_tf.load rebuilds the same preprocessor from the export."""
    import helpers
    from albert_tf import AlbertClassifier
    from albert_tf import loading
    from albert_tf.serving import export

    vocab_size = len(wordpiece.load_vocab(vocab_file))
    model = AlbertClassifier(helpers.tiny_config(
        vocab_size=vocab_size, max_position_embeddings=SEQ), num_labels=2)
    helpers.randomize(model)
    directory = export.export_classifier(
        model, str(tmp_path / "export"), label_list=["neg", "pos"],
        is_regression=False, spm_model_file=None, vocab_file=vocab_file,
        do_lower_case=True, max_seq_length=SEQ)
    texts = ["Crème brûlée, naïve café!", "中国人民 hello世界"]
    features = Preprocessor(vocab_file=vocab_file, sequence_length=SEQ)(
        tf.constant(texts))
    served = tf.saved_model.load(directory).signatures["serve_text"](
        text=tf.constant(texts))
    np.testing.assert_allclose(served["logits"].numpy(),
                               np.asarray(model(features)["logits"]),
                               atol=1e-5)
    loaded, preprocessor = loading.load(directory, task="classification")
    np.testing.assert_array_equal(
        preprocessor(tf.constant(texts))["input_ids"].numpy(),
        features["input_ids"].numpy())
    with pytest.raises(ValueError, match="beyond the model's vocab_size"):
        export.export_classifier(
            AlbertClassifier(helpers.tiny_config(vocab_size=10,
                                                 max_position_embeddings=SEQ),
                             num_labels=2),
            str(tmp_path / "small"), label_list=None, is_regression=False,
            spm_model_file=None, vocab_file=vocab_file, do_lower_case=True,
            max_seq_length=SEQ)


@pytest.mark.parametrize("kind", ["spm", "vocab"])
def test_keras_export_savedmodel_carries_the_tokenizer(kind, vocab_file,
                                                       tiny_spm, tmp_path):
    """Model.export (a SavedModel) of strings -> Preprocessor keeps the
    tokenizer inside: the reloaded `serve` gives the same features after
    the vocabulary file is gone."""
    import shutil

    source = tmp_path / ("v.txt" if kind == "vocab" else "m.model")
    shutil.copy(vocab_file if kind == "vocab" else tiny_spm["model"], source)
    preprocessor = (Preprocessor(vocab_file=str(source), sequence_length=SEQ)
                    if kind == "vocab" else
                    Preprocessor(str(source), sequence_length=SEQ))
    text = keras.Input(shape=(), dtype="string")
    model = keras.Model(text, preprocessor(text))
    path = str(tmp_path / "saved")
    model.export(path, format="tf_saved_model", verbose=False)
    source.unlink()
    inputs = tf.constant(["Hello World, crème brûlée 1,000", "中国 ok"])
    got = tf.saved_model.load(path).serve(inputs)
    want = preprocessor(inputs)
    assert int(want["input_mask"].numpy().sum()) > 8
    for key in want:
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())
