"""Shared pytest fixtures.

Tokenization / pretraining-data fixtures: a tiny SentencePiece model trained
in well under a second on generated text (no network, no ../shared).
"""

import random

import pytest

# Syllables make pseudo-words with shared prefixes and suffixes, so the
# unigram model learns multi-piece words (whole-word masking needs them).
_SYLLABLES = ("ka", "ri", "to", "ne", "mu", "sa", "lo", "pe", "di", "ga",
              "bu", "zo", "fi", "ha", "ju", "ve", "wo", "xi", "ye", "qu")
# Mixed in so the model covers digits, commas, accents and the special
# symbols the tokenizer tests use.
_EXTRAS = ("1,000", "1,000,000", "2019,", "3.0", "000", "café", "naïve",
           "(", ")", '"', "-", ".", "\u2013", "\u00a3", "\u20ac", "'s")


def make_sentences(seed: int, count: int, vocab_words: int = 400) -> list:
    rng = random.Random(seed)
    words = ["".join(rng.choice(_SYLLABLES)
                     for _ in range(rng.randint(1, 4)))
             for _ in range(vocab_words)]
    sentences = []
    for _ in range(count):
        n = rng.randint(3, 14)
        tokens = [rng.choice(words) for _ in range(n)]
        if rng.random() < 0.3:
            tokens.insert(rng.randrange(n), rng.choice(_EXTRAS))
        sentence = " ".join(tokens)
        if rng.random() < 0.2:
            sentence = sentence.capitalize()
        sentences.append(sentence + ".")
    return sentences


def write_corpus(path, seed: int, num_docs: int, min_lines: int = 1,
                 max_lines: int = 12) -> str:
    """One sentence per line, a blank line between documents."""
    rng = random.Random(seed)
    sentences = make_sentences(seed, num_docs * max_lines)
    docs = []
    for d in range(num_docs):
        n = rng.randint(min_lines, max_lines)
        docs.append("\n".join(sentences[d * max_lines:d * max_lines + n]))
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def tiny_spm(tmp_path_factory):
    """{"model": path, "vocab": path, "corpus": path} of a ~300-piece model."""
    from albert_tf.tokenization import train_spm

    root = tmp_path_factory.mktemp("tiny_spm")
    train_text = root / "train.txt"
    train_text.write_text("\n".join(make_sentences(0, 4000)) + "\n",
                          encoding="utf-8")
    model, vocab = train_spm.train_spm(
        [str(train_text)], str(root / "tiny"), vocab_size=300,
        preprocess=True, do_lower_case=True, hard_vocab_limit=False,
        num_threads=1)
    corpus = write_corpus(root / "corpus.txt", seed=1, num_docs=40)
    return {"model": model, "vocab": vocab, "corpus": corpus}
