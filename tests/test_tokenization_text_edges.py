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
    with pytest.raises(ValueError, match="^preprocess_text: lone surrogate "
                       "U\\+DC80 at position 1"):
        text.preprocess_text_hf("a\udc80")
    with pytest.raises(ValueError, match="^encode_pieces: lone surrogate"):
        text.encode_pieces(FakeSp(), "\ud800")


# --- The per-code-point tables of the in-graph tokenizer ---------------------

def test_whitespace_class_is_str_split_whitespace():
    ws = text.whitespace_class()
    for c in (" ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1f", "\x85",
              "\xa0", "\u2028", "\u3000"):
        assert c in ws, hex(ord(c))
    for c in ("a", "\u200b", "\ufeff", "_"):  # Zero-width: not split on.
        assert c not in ws, hex(ord(c))
    assert ws[0] == "\t" and ws[-1] == "\u3000"  # In code point order.


def test_digit_code_points_are_str_isdigit():
    digits = text.digit_code_points()
    assert digits[:10] == list(range(0x30, 0x3A))
    # ², ¹, Arabic-Indic 3, fullwidth 1.
    for c in (0xB2, 0xB9, 0x663, 0xFF11):
        assert c in digits, hex(c)
    for c in (0xBD, 0x61, 0x2F, 0x3A):  # ½ is numeric, not a digit.
        assert c not in digits, hex(c)


def test_strip_accents_map_entries():
    table = text.strip_accents_map()
    assert table[0xE9] == "e"          # é
    assert table[0xC5] == "A"          # Å
    assert table[0x301] == ""          # A combining acute alone: dropped.
    assert table[0xA8] == " "          # ¨: NFKD space + combining mark.
    assert table[0xFB01] == "fi"       # The ligature: two characters.
    assert table[0xBD] == "1\u20442"   # ½
    for c in (0x61, 0x20, 0x4E00, 0xD7FF, 0xE000):
        assert c not in table, hex(c)
    assert all(not 0xD800 <= c <= 0xDFFF for c in table)


def test_lower_map_entries():
    table = text.lower_map()
    assert table[0x41] == "a"
    assert table[0x130] == "i\u0307"   # İ lowercases to two characters.
    assert table[0x3A3] == "\u03c3"    # Σ as a non-final sigma.
    assert table[0xC9] == "\xe9"       # É
    for c in (0x61, 0x31, 0xDF, 0x3C3):
        assert c not in table, hex(c)


def test_final_sigma_classes():
    ignorable, cased = text.final_sigma_classes()
    for c in (0x41, 0x61, 0x3A3, 0xE9):  # Letters with case.
        assert c in cased and c not in ignorable, hex(c)
    for c in (0x27, 0x301, 0xAD):  # Apostrophe, combining acute, soft hyphen.
        assert c in ignorable and c not in cased, hex(c)
    # Neither: a space, a digit, a CJK ideograph.
    for c in (0x20, 0x31, 0x4E00):
        assert c not in ignorable and c not in cased, hex(c)
