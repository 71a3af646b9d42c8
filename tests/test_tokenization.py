"""albert_tf.tokenization against the original tokenization.py's behaviour."""

import numpy as np
import pytest
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2
import tensorflow as tf

from albert_tf.tokenization import FullTokenizer
from albert_tf.tokenization import InGraphTokenizer
from albert_tf.tokenization import SPM_SPECIAL_IDS
from albert_tf.tokenization import encode_ids
from albert_tf.tokenization import encode_pieces
from albert_tf.tokenization import preprocess_text
from albert_tf.tokenization import preprocess_text_hf

# Raw lines and what the original's preprocess_text(lower=True) makes of
# them, worked out by hand from its rules: collapse whitespace (str.split),
# NFKD, drop combining marks, lowercase. No quote mapping.
TRICKY = {
    "Héllo  Wörld, naïve café!": "hello world, naive cafe!",
    "It costs 1,000, or 1,000,000, since 2019, ok":
        "it costs 1,000, or 1,000,000, since 2019, ok",
    "3.0, and 000, end": "3.0, and 000, end",
    "你好世界 and 😀 emoji": "你好世界 and 😀 emoji",
    "``quoted'' text": "``quoted'' text",
    "": "",
    "   \t  ": "",
    # ﬁ -> fi, ① -> 1, ¨ -> " " + U+0308 (the created space stays).
    "ﬁne ① ¨x": "fine 1  x",
    # Ǆ -> D Z U+030C; the caron goes.
    "Ǆemo 2019, 1,000, x": "dzemo 2019, 1,000, x",
    "a\u2003b\u2028c": "a b c",
    "ÀÉÎ": "aei",
    # NUL is kept; the last capital sigma is final (ς), the others σ.
    "KA\x00RI  ΟΔΥΣΣΕΥΣ\x00é": "ka\x00ri οδυσσευς\x00e",
}


def original_encode_pieces(sp, text):
    """The original tokenization.encode_pieces, written out on raw spm.

    A piece longer than one character that ends in "," after a digit
    (str.isdigit) is re-encoded without "▁" and "," is appended. The
    original's strip of a leading "▁" compares str with bytes, so it never
    fires in Python 3 and is left out here.
    """
    pieces = []
    for piece in sp.EncodeAsPieces(text):
        if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
            pieces.extend(sp.EncodeAsPieces(piece[:-1].replace("\u2581", "")))
            pieces.append(",")
        else:
            pieces.append(piece)
    return pieces


def raw_sp(model_path):
    sp = spm.SentencePieceProcessor()
    sp.Load(model_path)
    return sp


@pytest.fixture(scope="module")
def digit_comma_spm(tiny_spm, tmp_path_factory):
    """tiny_spm plus pieces ending in digit + ",", so the rule fires.

    The tiny model learns no such piece (the released 30k one has many).
    """
    proto = sp_pb2.ModelProto()
    with open(tiny_spm["model"], "rb") as f:
        proto.ParseFromString(f.read())
    for piece in ("\u25812019,", "0,", "\u25817,", "\u2581\u0663,",
                  "\u2581ka1,"):
        new = proto.pieces.add()
        new.piece, new.score = piece, -1.0
        new.type = sp_pb2.ModelProto.SentencePiece.NORMAL
    path = tmp_path_factory.mktemp("digit_comma") / "dc.model"
    path.write_bytes(proto.SerializeToString())
    return str(path)


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
    for raw, expected in TRICKY.items():
        assert preprocess_text(raw, lower=True) == expected, raw


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


def test_full_tokenizer_spm_vocab_ids_and_tricky_text(digit_comma_spm):
    tokenizer = FullTokenizer(spm_model_file=digit_comma_spm)
    sp = raw_sp(digit_comma_spm)
    assert len(tokenizer.vocab) == sp.GetPieceSize()
    for piece, expected in SPM_SPECIAL_IDS.items():
        assert tokenizer.vocab[piece] == expected
    rule_fired = False
    for text in TRICKY.values():
        pieces = tokenizer.tokenize(text)
        expected = original_encode_pieces(sp, text)
        rule_fired |= expected != sp.EncodeAsPieces(text)
        assert pieces == expected, text
        ids = tokenizer.convert_tokens_to_ids(pieces)
        assert ids == [sp.PieceToId(p) for p in expected]
        assert encode_ids(tokenizer.sp_model, text) == ids
        assert tokenizer.convert_ids_to_tokens(ids) == [
            sp.IdToPiece(i) for i in ids]
    assert rule_fired  # The digit-comma rule changed at least one line.
    # Mid-word "0," is re-encoded as "▁0": the original keeps that "▁".
    assert sp.EncodeAsPieces("ka 3.0, 7, ka1,") == [
        "\u2581ka", "\u2581", "3", ".", "0,", "\u25817,", "\u2581ka1,"]
    assert tokenizer.tokenize("ka 3.0, 7, ka1,") == [
        "\u2581ka", "\u2581", "3", ".", "\u2581", "0", ",", "\u2581", "7",
        ",", "\u2581ka", "1", ","]
    assert tokenizer.tokenize("") == []
    # The tiny model never saw CJK or emoji: they map to <unk>.
    ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize("你好 😀"))
    assert 1 in ids


def test_lone_surrogate_is_a_value_error_naming_its_position(tiny_spm,
                                                             tmp_path):
    tokenizer = FullTokenizer(spm_model_file=tiny_spm["model"])
    hf = FullTokenizer(spm_model_file=tiny_spm["model"], hf_compat=True)
    text = "ka\ud800ri"
    for call in (lambda: tokenizer.tokenize(text),
                 lambda: hf.tokenize(text),
                 lambda: encode_pieces(tokenizer.sp_model, text),
                 lambda: encode_ids(tokenizer.sp_model, text),
                 lambda: preprocess_text(text, lower=True),
                 lambda: preprocess_text_hf(text)):
        with pytest.raises(ValueError,
                           match=r"lone surrogate U\+D800 at position 2"):
            call()
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nka\n",
                     encoding="utf-8")
    wordpiece = FullTokenizer(vocab_file=str(vocab))
    with pytest.raises(ValueError, match=r"U\+DC80 at position 0"):
        wordpiece.tokenize("\udc80ka")  # as errors="surrogateescape" makes


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
    with pytest.raises(ValueError, match=r"missing special tokens "
                                         r"\['\[SEP\]'\]"):
        FullTokenizer(vocab_file=str(path))


def test_hf_compat_maps_quotes_keeps_special_tokens(tiny_spm):
    hf = FullTokenizer(spm_model_file=tiny_spm["model"], hf_compat=True)
    original = FullTokenizer(spm_model_file=tiny_spm["model"])
    text = "``Ka'' [MASK] ri"
    hf_pieces = hf.tokenize(text)
    assert "[MASK]" in hf_pieces
    assert hf_pieces.count('"') == 2
    assert "`" not in "".join(hf_pieces)
    # The original keeps the backticks (they are not in the tiny vocab);
    # preprocess_text(text, lower=True) is "``ka'' [mask] ri".
    orig_pieces = original.tokenize("``ka'' [mask] ri")
    assert '"' not in orig_pieces and "[MASK]" not in orig_pieces


@pytest.fixture(scope="module")
def in_graph(tiny_spm):
    return InGraphTokenizer.from_file(tiny_spm["model"], do_lower_case=True)


def _expected_ids(sp, normalized_lines):
    return [[sp.PieceToId(p) for p in original_encode_pieces(sp, line)]
            for line in normalized_lines]


def test_in_graph_normalize_keeps_text_after_nul(in_graph):
    # tf.strings.lower dropped everything after the first NUL.
    got = in_graph.normalize(tf.constant(["KA\x00RI  ΟΔΥΣΣΕΥΣ\x00é",
                                          "\x00", "Σ ΑΣ ΑΣΑ \u2c2f"]))
    assert got.numpy().tolist() == [
        "ka\x00ri οδυσσευς\x00e".encode(), b"\x00",
        # U+2C2F (Unicode 14) lowercases to U+2C5F, as Python's str.lower.
        "σ ας ασα \u2c5f".encode()]


def test_in_graph_tokenizer_matches_python(tiny_spm, in_graph):
    tokenizer = FullTokenizer(spm_model_file=tiny_spm["model"])
    with open(tiny_spm["corpus"], encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f][:200]
    # Corpus lines: the in-graph tokenizer against the Python path.
    got = in_graph(tf.constant(lines)).to_list()
    assert got == [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(
        tokenizer.preprocess(line))) for line in lines]
    # Tricky lines: against hand-normalized text and raw SentencePiece.
    sp = raw_sp(tiny_spm["model"])
    got = in_graph(tf.constant(list(TRICKY))).to_list()
    assert got == _expected_ids(sp, TRICKY.values())


def test_in_graph_digit_comma_rule_matches_the_original(digit_comma_spm):
    in_graph = InGraphTokenizer.from_file(digit_comma_spm)
    sp = raw_sp(digit_comma_spm)
    lines = list(TRICKY) + ["ka 3.0, 7, KA1, \u0663, 2019,2019,"]
    expected = _expected_ids(sp, list(TRICKY.values())
                             + ["ka 3.0, 7, ka1, \u0663, 2019,2019,"])
    assert any(sp.PieceToId(",") in ids for ids in expected)
    assert in_graph(tf.constant(lines)).to_list() == expected


def test_in_graph_tokenizer_in_tf_data_and_saved_model(tiny_spm, in_graph,
                                                       tmp_path):
    lines = ["Café 1,000, ka", "ri to", "  ", "ne mu sa lo"]
    expected = _expected_ids(raw_sp(tiny_spm["model"]),
                             ["cafe 1,000, ka", "ri to", "", "ne mu sa lo"])
    assert [",", "\u2581ka"] == original_encode_pieces(
        raw_sp(tiny_spm["model"]), "cafe 1,000, ka")[-2:]
    ds = tf.data.Dataset.from_tensor_slices(lines).batch(3).map(in_graph)
    got = [row for batch in ds for row in batch.to_list()]
    assert got == expected
    tf.saved_model.save(in_graph, str(tmp_path / "tok"))
    loaded = tf.saved_model.load(str(tmp_path / "tok"))
    assert loaded(tf.constant(lines)).to_list() == expected
    # Text after a NUL survives in the SavedModel too.
    assert loaded(tf.constant(["KA\x00RI TO"])).to_list() == _expected_ids(
        raw_sp(tiny_spm["model"]), ["ka\x00ri to"])
    assert isinstance(np.asarray(loaded(tf.constant(["x"])).flat_values)[0],
                      np.int32)
