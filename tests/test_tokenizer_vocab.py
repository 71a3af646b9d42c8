"""A WordPiece vocabulary without [MASK] (issue 18, part 5).

The original FullTokenizer accepts any BERT vocab.txt (its own
tokenization_test builds one without [MASK], and the Chinese ALBERT models
ship a BERT WordPiece vocabulary). [MASK] is required only where tokens
are masked, with an error naming the vocabulary file there.
"""

import pytest

from albert_tf.data import create_pretraining
from albert_tf.data import pretraining_data
from albert_tf.tokenization.full_tokenizer import FullTokenizer

VOCAB = ["[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un",
         "runn", "##ing", ","]


def _vocab(tmp_path, tokens=VOCAB):
    path = tmp_path / "vocab.txt"
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return str(path)


def test_a_vocab_without_mask_tokenizes_as_the_original(tmp_path):
    tokenizer = FullTokenizer(vocab_file=_vocab(tmp_path))
    tokens = tokenizer.tokenize("UNwant\u00e9d,running")
    assert tokens == ["un", "##want", "##ed", ",", "runn", "##ing"]
    assert tokenizer.convert_tokens_to_ids(tokens) == [7, 4, 5, 10, 8, 9]
    assert tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]"]) == [1, 2]


def test_masking_needs_mask_and_names_the_vocab(tmp_path):
    vocab = _vocab(tmp_path)
    tokenizer = FullTokenizer(vocab_file=vocab)
    with pytest.raises(ValueError, match=(
            rf"{vocab}: the vocabulary has no \[MASK\] token, which "
            r"masked-LM pretraining data needs")):
        create_pretraining.vocab_ids(tokenizer)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("want running\nun want\n\nwa ed\n", encoding="utf-8")
    out = tmp_path / "out.tfrecord"
    with pytest.raises(ValueError, match=r"no \[MASK\] token"):
        create_pretraining.create_pretraining_data(
            str(corpus), str(out), vocab_file=vocab, spm_model_file=None,
            do_lower_case=True, config=pretraining_data.PretrainingConfig(
                max_seq_length=16, max_predictions_per_seq=2),
            random_seed=1, dupe_factor=1,
            options=create_pretraining.PipelineOptions())
    assert not out.exists()
    with_mask = FullTokenizer(vocab_file=_vocab(tmp_path, VOCAB + ["[MASK]"]))
    assert create_pretraining.vocab_ids(with_mask).mask_id == 11
