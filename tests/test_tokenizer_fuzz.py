"""The in-graph tokenizer gives the Python path's ids on fuzzed text.

Training tokenizes with `preprocess_text` + `FullTokenizer.tokenize` (the
original's `encode_pieces`, digit-comma rule included); exported `serve_text`
signatures use `InGraphTokenizer`. Any string on which they disagree is a
string the served model reads differently from training, so the fuzz set is
built to hit every rule: control characters and NUL, RTL scripts and bidi
marks, emoji with ZWJ/skin-tone/flag sequences, combining marks, compatibility
forms, case mappings (final sigma, Unicode-version-sensitive letters), digits
with commas in several scripts, every kind of whitespace, random code points
from the whole range, and very long strings. Nothing is filtered out.
"""

import random

import numpy as np
import pytest
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2
import tensorflow as tf
import tensorflow_text as tf_text

from albert_tf.tokenization import FullTokenizer
from albert_tf.tokenization import InGraphTokenizer
from albert_tf.tokenization import preprocess_text

# Syllables of the tiny SentencePiece model (tests/conftest.py), so a good
# share of the text becomes real pieces rather than <unk>.
_SYLLABLES = ("ka", "ri", "to", "ne", "mu", "sa", "lo", "pe", "di", "ga",
              "bu", "zo", "fi", "ha", "ju", "ve", "wo", "xi", "ye", "qu")


def _chars(lo: int, hi: int) -> list:
    return [chr(c) for c in range(lo, hi + 1)]


_POOLS = {
    "control": _chars(0x01, 0x1F) + ["\x7f"] + _chars(0x80, 0x9F),
    "nul": ["\x00", "\x00\x00", "a\x00", "\x00b"],
    "rtl": (_chars(0x05D0, 0x05EA) + _chars(0x05B0, 0x05BD)   # Hebrew+niqqud
            + _chars(0x0621, 0x064A) + _chars(0x064B, 0x0652)  # Arabic+harakat
            + _chars(0x0660, 0x0669) + _chars(0x06F0, 0x06F9)  # Arabic digits
            + ["\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d",
               "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
               "\ufefb", "\ufdfa", "\ufb50", "\ufe8d", "\u0640",
               "שָׁלוֹם", "مَرْحَبًا", "ﷺ"]),
    "emoji": ["\U0001F600", "\U0001F44D\U0001F3FD",
              "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466",
              "\U0001F3F3\ufe0f\u200d\U0001F308", "\U0001F1FA\U0001F1F8",
              "\u2764\ufe0f", "1\ufe0f\u20e3", "#\u20e3",
              "\U0001F9D1\U0001F3FF\u200d\U0001F680", "\u200d", "\ufe0f",
              "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063"
              "\U000E0074\U000E007F"],
    "combining": (_chars(0x0300, 0x036F) + _chars(0x1AB0, 0x1ABE)
                  + _chars(0x20D0, 0x20F0) + _chars(0xFE20, 0xFE2F)
                  + ["e\u0301", "a\u0308\u0301\u0323", "\u0301a", "é", "ñ",
                     "Å", "ç", "ø", "ǅ", "ﬁ", "ﬃ", "①", "½", "²", "ＡＢＣ",
                     "ℌ", "㍿", "한국어", "ᄀ", "Ⅻ", "ｶﾞ", "\u0f73", "\u0344",
                     "\u1e9b\u0323", "\u00a8", "\u02dd", "\u1fee"]),
    "case": ["ΟΔΥΣΣΕΥΣ", "ΣΑ", "Σ", "ΑΣ.", "Α\u0301Σ", "Σ\u00adΑ", "A'Σ",
             "\U0001D6BA", "\U0001D6BAx", "İ", "ß", "ẞ", "Ǆ", "Ꭰ", "ꭰ",
             "Ა", "\u2c2f", "\ua7c0", "\ua7cb", "\U0001ccf0", "\U0001e030",
             "\U00010d50", "Ω", "K", "Å", "ŉ", "ǰ", "ΐ", "ﬀ", "Ⓐ", "ㄱ",
             "ԱԲԳ", "ÀÉÎÕÜ", "ÆŒ", "Ĳ", "Ŀ", "ſ", "ᾼ", "ῼ"],
    "digits": ["1,000", "12,", "3.0,", "٣,", "١٢٣,٤٥٦", "2019,", "000,",
               "9,9", "1,2,3,", "½,", "①,", "²,", "0,", "1,000,000,",
               "१२,", "\U0001D7CE,", "7\u0301,", "66", "666", "6666",
               "1,,", ",1,", "4,,5"],
    "space": [" ", "  ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0",
              "\u3000", "\u2003", "\u2028", "\u2029", "\u1680", "\u200b",
              "\ufeff", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u180e",
              "\u202f", "\u205f", "\u2000", "\u200a"],
    "punct": list("()\"-.,;:!?'`") + ["''", "``", "\u2013", "\u00a3",
                                      "\u20ac", "[MASK]", "[CLS]", "<unk>",
                                      "\u2581", "\u2581\u2581"],
}
_POOL_NAMES = sorted(_POOLS)


def _random_code_point(rng: random.Random) -> str:
    """Any scalar value (no surrogates), including unassigned ones."""
    while True:
        c = rng.randrange(0x110000) if rng.random() < 0.5 else \
            rng.randrange(0x3000)
        if not 0xD800 <= c <= 0xDFFF:
            return chr(c)


def _word(rng: random.Random) -> str:
    word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4)))
    return word.capitalize() if rng.random() < 0.3 else word


def _fuzz_string(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 24)):
        r = rng.random()
        if r < 0.35:
            parts.append(_word(rng))
        elif r < 0.45:
            parts.append(_random_code_point(rng))
        else:
            parts.append(rng.choice(_POOLS[rng.choice(_POOL_NAMES)]))
        if rng.random() < 0.6:
            parts.append(rng.choice((" ", " ", " ", "\t", "\u00a0", "")))
    return "".join(parts)


def fuzz_strings(seed: int, count: int) -> list:
    """`count` strings plus a few long ones (tens of thousands of chars)."""
    rng = random.Random(seed)
    strings = [_fuzz_string(rng) for _ in range(count)]
    for length in (20_000, 35_000, 60_000):
        chunks, size = [], 0
        while size < length:
            chunk = _fuzz_string(rng)
            chunks.append(chunk)
            size += len(chunk)
        strings.append(" ".join(chunks))
    # One long run without any space: a single huge "word".
    strings.append("".join(rng.choice(_SYLLABLES) for _ in range(15_000)))
    strings.append("1," * 12_000)
    return strings


def _python_ids(tokenizer: FullTokenizer, text: str) -> list:
    pieces = tokenizer.tokenize(
        preprocess_text(text, lower=tokenizer.do_lower_case))
    return tokenizer.convert_tokens_to_ids(pieces)


class _TieCheckingSentencePiece:
    """EncodeAsPieces by tf_text's SentencePiece, checked to be a tie.

    Wraps the pip processor. Where tf_text's segmentation differs, it must
    cover the same text with exactly the same float32 path score (the sum
    SentencePiece's unigram Viterbi maximises, left to right): an exact
    tie, which the two builds break differently. `ties` counts them.
    """

    def __init__(self, sp: spm.SentencePieceProcessor, model: bytes):
        self.sp = sp
        self.graph_sp = tf_text.SentencepieceTokenizer(model=model,
                                                       out_type=tf.string)
        proto = sp_pb2.ModelProto()
        proto.ParseFromString(model)
        normal = sp_pb2.ModelProto.SentencePiece.NORMAL
        user = sp_pb2.ModelProto.SentencePiece.USER_DEFINED
        self.scores = {p.piece: np.float32(p.score) for p in proto.pieces
                       if p.type == normal}
        self.user_defined = {p.piece for p in proto.pieces if p.type == user}
        min_score = min(self.scores.values())
        self.max_score = max(self.scores.values())
        self.unk_score = np.float32(min_score - np.float32(10.0))
        self.ties = 0

    def _path_score(self, pieces) -> np.float32:
        total = np.float32(0.0)
        for piece in pieces:
            if piece in self.scores:
                steps = [self.scores[piece]]
            elif piece in self.user_defined:
                steps = [np.float32(len(piece.encode("utf-8"))
                                    * self.max_score - np.float32(0.1))]
            else:  # A run of unknown characters: one node per character.
                steps = [self.unk_score] * len(piece)
            for step in steps:
                total = np.float32(total + step)
        return total

    def EncodeAsPieces(self, text):  # noqa: N802 (SentencePiece's name)
        expected = self.sp.EncodeAsPieces(text)
        got = [p.decode("utf-8") for p in
               self.graph_sp.tokenize(tf.constant([text])).to_list()[0]]
        if got != expected:
            assert "".join(got) == "".join(expected), (text, expected, got)
            assert self._path_score(got) == self._path_score(expected), (
                "not a Viterbi tie", text, expected, got)
            self.ties += 1
        return got

    def PieceToId(self, piece):  # noqa: N802
        return self.sp.PieceToId(piece)


@pytest.fixture(scope="module")
def fuzzed():
    strings = fuzz_strings(seed=9, count=2000)
    assert len(strings) >= 2000
    assert max(len(s) for s in strings) >= 50_000
    for needle in ("\x00", "\u05d0", "\u200d", "\u0301", "\u3000", "1,"):
        assert any(needle in s for s in strings), needle
    return strings


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_in_graph_normalize_is_byte_identical_to_preprocess_text(
        tiny_spm, fuzzed, do_lower_case):
    """The sharp check: the text SentencePiece sees, before any <unk>."""
    in_graph = InGraphTokenizer.from_file(tiny_spm["model"],
                                          do_lower_case=do_lower_case)
    got = in_graph.normalize(tf.constant([s.encode("utf-8")
                                          for s in fuzzed])).numpy()
    bad = [(s, preprocess_text(s, lower=do_lower_case), g.decode("utf-8"))
           for s, g in zip(fuzzed, got)
           if g != preprocess_text(s, lower=do_lower_case).encode("utf-8")]
    assert not bad, f"{len(bad)} differ, e.g. {bad[0][:3]!r}"


@pytest.fixture(scope="module")
def digit_comma_model(tiny_spm, tmp_path_factory):
    """tiny_spm plus pieces that end in a digit and ",": the rule fires."""
    proto = sp_pb2.ModelProto()
    with open(tiny_spm["model"], "rb") as f:
        proto.ParseFromString(f.read())
    for piece in ("\u25812019,", "0,", "1,", "\u25817,", "\u2581\u0663,",
                  "2,", "\u0661\u0662\u0663,"):
        new = proto.pieces.add()
        new.piece, new.score = piece, -1.0
        new.type = sp_pb2.ModelProto.SentencePiece.NORMAL
    path = tmp_path_factory.mktemp("fuzz_digit_comma") / "dc.model"
    path.write_bytes(proto.SerializeToString())
    return str(path)


@pytest.mark.parametrize("do_lower_case,model", [
    (True, "tiny"), (False, "tiny"), (True, "digit_comma")])
def test_in_graph_ids_equal_python_ids_on_fuzzed_text(
        tiny_spm, digit_comma_model, fuzzed, do_lower_case, model):
    model = tiny_spm["model"] if model == "tiny" else digit_comma_model
    tokenizer = FullTokenizer(spm_model_file=model,
                              do_lower_case=do_lower_case)
    in_graph = InGraphTokenizer.from_file(model, do_lower_case=do_lower_case)
    expected = [_python_ids(tokenizer, s) for s in fuzzed]
    got = in_graph(tf.constant([s.encode("utf-8") for s in fuzzed]))
    got = got.to_list()
    bad = [i for i, (e, g) in enumerate(zip(expected, got)) if e != g]
    # Every difference must be an exact Viterbi tie inside SentencePiece
    # (see albert_tf/tokenization/in_graph.py): the Python path with only
    # the encoder swapped for tf_text's gives the in-graph ids, and each
    # swapped segmentation scores exactly as the pip one.
    with open(model, "rb") as f:
        checker = _TieCheckingSentencePiece(tokenizer.sp_model, f.read())
    swapped = FullTokenizer(spm_model_file=model, do_lower_case=do_lower_case)
    swapped.sp_model = checker
    for i in bad:
        ties = checker.ties
        assert _python_ids(swapped, fuzzed[i]) == got[i], fuzzed[i][:200]
        assert checker.ties > ties, ("differs without a tie", fuzzed[i][:200])
    assert len(bad) <= len(fuzzed) // 200, len(bad)
    if model == digit_comma_model:  # The rule fired, in both paths.
        sp = tokenizer.sp_model
        fired = [s for s in fuzzed if any(
            len(p) > 1 and p[-1] == "," and p[-2].isdigit() for p in
            sp.EncodeAsPieces(preprocess_text(s, lower=do_lower_case)))]
        assert len(fired) > 100
        rule_ids = {sp.PieceToId(p) for p in ("\u25812019,", "0,", "1,")}
        assert not any(rule_ids & set(ids) for ids in got)
