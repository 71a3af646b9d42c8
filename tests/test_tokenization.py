"""albert_tf.tokenization against the original tokenization.py's behaviour."""

import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf

from albert_tf.tokenization import FullTokenizer
from albert_tf.tokenization import InGraphTokenizer
from albert_tf.tokenization import SPM_SPECIAL_IDS
from albert_tf.tokenization import encode_pieces
from albert_tf.tokenization import preprocess_text
from albert_tf.tokenization import preprocess_text_hf
from albert_tf.tokenization import text as text_lib

TRICKY = [
    "Héllo  Wörld, naïve café!",
    "It costs 1,000, or 1,000,000, since 2019, ok",
    "3.0, and 000, end",
    "你好世界 and 😀 emoji",
    "``quoted'' text",
    "",
    "   \t  ",
    "ﬁne ① ¨x",
]


class FakeSentencePiece:
    """EncodeAsPieces from a fixed table; isolates the digit-comma rule."""

    def __init__(self, table):
        self.table = table

    def EncodeAsPieces(self, text):  # noqa: N802 (SentencePiece's name)
        return list(self.table[text])


def test_preprocess_collapses_whitespace_strips_accents_keeps_quotes():
    assert preprocess_text("  a\t\n b \u3000c\u00a0 ") == "a b c"
    assert preprocess_text("Héllo Ñandú", lower=True) == "hello nandu"
    assert preprocess_text("Héllo") == "Hello"  # lower is off by default.
    # No quote normalisation in the original (HF adds it).
    assert preprocess_text("``a'' b", lower=True) == "``a'' b"
    assert preprocess_text_hf("``A'' b") == '"a" b'
    # NFKD compatibility forms.
    assert preprocess_text("ﬁ ①") == "fi 1"
    # Spaces are collapsed *before* NFKD, which turns U+00A8 into
    # " " + U+0308: the created space stays, as in the original.
    assert preprocess_text("x \u00a8") == "x  "
    assert preprocess_text("") == ""
    assert preprocess_text(" \t ") == ""
    assert preprocess_text("你好 😀") == "你好 😀"


def test_digit_comma_rule_original_keeps_the_underline_hf_strips_it():
    sp = FakeSentencePiece({
        "x 3.0,": ["▁x", "▁3", ".", "0,"],
        "0": ["▁0"],
        "1,000,": ["▁1,000,"],
        "1,000": ["▁1", ",", "000"],
        "a, 9,": ["▁a", ",", "▁9,"],
        "9": ["▁9"],
        "٣,": ["▁٣,"],
        "٣": ["▁٣"],
    })
    # Mid-word "0,": the re-encoding adds "▁"; the original's strip is dead.
    assert encode_pieces(sp, "x 3.0,") == ["▁x", "▁3", ".", "▁0", ","]
    assert encode_pieces(sp, "x 3.0,", hf_compat=True) == [
        "▁x", "▁3", ".", "0", ","]
    assert encode_pieces(sp, "1,000,") == ["▁1", ",", "000", ","]
    # A lone "," and "a," are not digit-comma pieces.
    assert encode_pieces(sp, "a, 9,") == ["▁a", ",", "▁9", ","]
    # str.isdigit: Unicode digits count.
    assert encode_pieces(sp, "٣,") == ["▁٣", ","]


def test_full_tokenizer_spm_vocab_ids_and_tricky_text(tiny_spm):
    tokenizer = FullTokenizer(spm_model_file=tiny_spm["model"])
    sp = tokenizer.sp_model
    assert len(tokenizer.vocab) == sp.GetPieceSize()
    for piece, expected in SPM_SPECIAL_IDS.items():
        assert tokenizer.vocab[piece] == expected
    for line in TRICKY:
        text = preprocess_text(line, lower=True)
        pieces = tokenizer.tokenize(text)
        expected = text_lib.split_digit_comma(sp, sp.EncodeAsPieces(text))
        assert pieces == expected
        assert not any(text_lib._is_digit_comma(p) for p in pieces)
        ids = tokenizer.convert_tokens_to_ids(pieces)
        assert ids == [sp.PieceToId(p) for p in pieces]
        assert tokenizer.convert_ids_to_tokens(ids) == [
            sp.IdToPiece(i) for i in ids]
    assert tokenizer.tokenize(preprocess_text("   ")) == []
    # The tiny model never saw CJK or emoji: they map to <unk>.
    ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize("你好 😀"))
    assert 1 in ids


def test_spm_model_without_albert_special_ids_is_rejected(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("\n".join(["ka ri to ne mu sa"] * 50))
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(tmp_path / "plain"),
        vocab_size=20, hard_vocab_limit=False, minloglevel=2)
    with pytest.raises(ValueError, match=r"'\[CLS\]' should be id 2.*missing"):
        FullTokenizer(spm_model_file=str(tmp_path / "plain.model"))
    with pytest.raises(FileNotFoundError, match="nope.model"):
        FullTokenizer(spm_model_file=str(tmp_path / "nope.model"))


def test_train_spm_gives_the_original_special_and_user_symbols(tiny_spm):
    sp = spm.SentencePieceProcessor()
    sp.Load(tiny_spm["model"])
    assert [sp.IdToPiece(i) for i in range(13)] == [
        "<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]",
        "(", ")", '"', "-", ".", "\u2013", "\u00a3", "\u20ac"]
    assert sp.bos_id() == -1 and sp.eos_id() == -1
    with open(tiny_spm["vocab"], encoding="utf-8") as f:
        assert f.readline().split("\t")[0] == "<pad>"


def test_wordpiece_fallback_without_spm(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff",
             "##able", "hello", ",", "你", "好", "runn", "##ing"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = FullTokenizer(vocab_file=str(path), do_lower_case=True)
    tokens = tokenizer.tokenize("UNaffable, Héllo\x00 你好 running!")
    assert tokens == ["un", "##aff", "##able", ",", "hello", "你", "好",
                      "runn", "##ing", "[UNK]"]
    assert tokenizer.convert_tokens_to_ids(tokens) == [
        5, 6, 7, 9, 8, 10, 11, 12, 13, 1]
    assert tokenizer.convert_ids_to_tokens([2, 3]) == ["[CLS]", "[SEP]"]
    cased = FullTokenizer(vocab_file=str(path), do_lower_case=False)
    assert cased.tokenize("Hello") == ["[UNK]"]
    path.write_text("[PAD]\n[UNK]\n[CLS]\nhello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\[SEP\].*\[MASK\]"):
        FullTokenizer(vocab_file=str(path))


def test_hf_compat_maps_quotes_keeps_special_tokens(tiny_spm):
    hf = FullTokenizer(spm_model_file=tiny_spm["model"], hf_compat=True)
    original = FullTokenizer(spm_model_file=tiny_spm["model"])
    text = "``Ka'' [MASK] ri"
    hf_pieces = hf.tokenize(text)
    assert "[MASK]" in hf_pieces
    assert hf_pieces.count('"') == 2
    assert "`" not in "".join(hf_pieces)
    # The original keeps the backticks (they are not in the tiny vocab).
    orig_pieces = original.tokenize(preprocess_text(text, lower=True))
    assert '"' not in orig_pieces and "[MASK]" not in orig_pieces


@pytest.fixture(scope="module")
def in_graph(tiny_spm):
    return InGraphTokenizer.from_file(tiny_spm["model"], do_lower_case=True)


def _python_ids(tokenizer, lines):
    return [tokenizer.convert_tokens_to_ids(
        tokenizer.tokenize(preprocess_text(line, lower=True)))
        for line in lines]


def test_in_graph_tokenizer_matches_python(tiny_spm, in_graph):
    tokenizer = FullTokenizer(spm_model_file=tiny_spm["model"])
    with open(tiny_spm["corpus"], encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f][:200]
    lines += TRICKY + ["Ǆemo 2019, 1,000, x", "a\u2003b\u2028c", "ÀÉÎ"]
    got = in_graph(tf.constant(lines)).to_list()
    assert got == _python_ids(tokenizer, lines)


def test_in_graph_tokenizer_in_tf_data_and_saved_model(tiny_spm, in_graph,
                                                       tmp_path):
    tokenizer = FullTokenizer(spm_model_file=tiny_spm["model"])
    lines = ["Café 1,000, ka", "ri to", "  ", "ne mu sa lo"]
    expected = _python_ids(tokenizer, lines)
    ds = tf.data.Dataset.from_tensor_slices(lines).batch(3).map(in_graph)
    got = [row for batch in ds for row in batch.to_list()]
    assert got == expected
    tf.saved_model.save(in_graph, str(tmp_path / "tok"))
    loaded = tf.saved_model.load(str(tmp_path / "tok"))
    assert loaded(tf.constant(lines)).to_list() == expected
    assert isinstance(np.asarray(loaded(tf.constant(["x"])).flat_values)[0],
                      np.int32)
