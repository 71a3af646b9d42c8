"""albert_tf.tokenization.text on hand-worked strings, with a stand-in
SentencePiece model whose pieces are written out here."""

import pytest

from albert_tf.tokenization import text

U = "\u2581"  # SentencePiece's word-start mark


class FakeSp:
    """EncodeAsPieces: one piece per space-separated word, each with a
    leading U; "lone" words come back as a bare U piece plus the word."""

    def EncodeAsPieces(self, s):  # noqa: N802 (SentencePiece's name)
        out = []
        for word in s.split():
            if word.startswith("lone"):
                out += [U, word[4:]]
            else:
                out.append(U + word)
        return out

    def PieceToId(self, piece):  # noqa: N802
        return len(piece)


@pytest.mark.parametrize("piece, expected", [
    ("9,", True), (U + "19,", True), ("\u0663,", True),  # Arabic-Indic 3
    (",", False), ("a,", False), ("9", False), ("9,x", False), ("", False),
])
def test_digit_comma_rule(piece, expected):
    assert text._is_digit_comma(piece) is expected


def test_split_digit_comma_original_and_hf():
    sp = FakeSp()
    # The original: the digits re-encoded (with their U), "," alone.
    assert text.split_digit_comma(sp, [U + "9,", "9", "ab"]) == [
        U + "9", ",", "9", "ab"]
    # Mid-word "9," (no leading U): the original keeps the new U; HF's
    # strip drops it.
    assert text.split_digit_comma(sp, ["9,"]) == [U + "9", ","]
    assert text.split_digit_comma(sp, ["9,"], strip_underline=True) == [
        "9", ","]
    # A piece that starts with U keeps it under HF too.
    assert text.split_digit_comma(sp, [U + "9,"], strip_underline=True) == [
        U + "9", ","]
    # A bare U piece first: HF drops that piece entirely.
    assert text.split_digit_comma(sp, ["lone9,"], strip_underline=True) == [
        "9", ","]
    assert text.split_digit_comma(sp, ["lone9,"]) == [U, "9", ","]


def test_encode_pieces_and_ids():
    sp = FakeSp()
    assert text.encode_pieces(sp, "a 1,") == [U + "a", U + "1", ","]
    assert text.encode_ids(sp, "a 1,") == [2, 2, 1]
    assert text.encode_pieces(sp, "x 1,", hf_compat=True) == [
        U + "x", U + "1", ","]


def test_preprocess_text_order_and_options():
    assert text.preprocess_text("  Ca\u0301fe\u00a0 \n Bar ") == "Cafe Bar"
    assert text.preprocess_text("Café  X", lower=True) == "cafe x"
    assert text.preprocess_text(" a  b ", remove_space=False) == " a  b "
    # NFKD makes U+00A8 a space + combining diaeresis: the space stays.
    assert text.preprocess_text("x\u00a8y") == "x y"
    # Quotes are HF's addition only.
    assert text.preprocess_text("``q''") == "``q''"
    assert text.preprocess_text_hf("``Q''  É") == '"q" e'
    assert text.preprocess_text_hf("É", lower=False) == "E"
    assert text.preprocess_text_hf("É", keep_accents=True) == "é"


def test_check_text_names_the_surrogate():
    with pytest.raises(ValueError, match=r"title: lone surrogate U\+D800 at "
                       r"position 3 \(context 'abc\\ud800d'\)"):
        text.check_text("abc\ud800d", "title")
    text.check_text(b"bytes are not checked")
    text.check_text("fine")
    with pytest.raises(ValueError, match="preprocess_text: lone surrogate"):
        text.preprocess_text("\udc80")
