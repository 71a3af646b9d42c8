"""Text normalisation and SentencePiece piece handling, as the original.

Mirrors `preprocess_text` and `encode_pieces` / `encode_ids` of
google-research/albert `tokenization.py`, plus the variants HF's
`AlbertTokenizer` uses (`hf_compat`), which differ in two places:

* HF replaces two backticks and two single quotes with `"`; the original
  does not (tokenization.preprocess_text).
* The digit-comma rule re-encodes `piece[:-1]` and, when the piece did not
  start a word but the re-encoding does, strips that leading `▁`. In the
  original that strip never happens: it compares a str character with the
  *bytes* constant `SPIECE_UNDERLINE` (dead in Python 3, and in Python 2 it
  compared one byte with three). HF's str version strips. So on inputs like
  `3.0,` the original yields an extra `▁` piece (google-research/albert
  issue #249). We match the original by default.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Sequence

# The SentencePiece word-start marker (U+2581), as a str.
SPIECE_UNDERLINE = "\u2581"

_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(text: str, what: str = "text") -> None:
    """Raises ValueError naming the position of a lone surrogate in `text`.

    A str can hold U+D800..U+DFFF (e.g. from errors="surrogateescape"), but
    UTF-8 cannot, so SentencePiece would fail with an opaque pybind11
    RuntimeError and the in-graph tokenizer could never see the same text.
    """
    if not isinstance(text, str):
        return
    match = _SURROGATE.search(text)
    if match:
        pos = match.start()
        raise ValueError(
            f"{what}: lone surrogate U+{ord(match.group()):04X} at position "
            f"{pos} (context {text[max(0, pos - 10):pos + 10]!r}); it is not "
            "valid Unicode and cannot be encoded as UTF-8. Decode input with "
            "errors='strict' or 'replace', not 'surrogateescape'.")


def preprocess_text(inputs: str, remove_space: bool = True,
                    lower: bool = False) -> str:
    """The original `preprocess_text`: spaces, accents, case. No quotes.

    Order matters and is the original's: collapse whitespace (str.split, so
    any Unicode space), then NFKD and drop every character with a non-zero
    canonical combining class, then lowercase. NFKD can create spaces
    (e.g. U+00A8 -> " " + U+0308); they are kept, as in the original.
    """
    check_text(inputs, "preprocess_text")
    outputs = inputs
    if remove_space:
        outputs = " ".join(inputs.strip().split())
    outputs = unicodedata.normalize("NFKD", outputs)
    outputs = "".join(c for c in outputs if not unicodedata.combining(c))
    if lower:
        outputs = outputs.lower()
    return outputs


def preprocess_text_hf(inputs: str, lower: bool = True,
                       keep_accents: bool = False) -> str:
    """HF `AlbertTokenizer.preprocess_text`: the original plus quote mapping."""
    check_text(inputs, "preprocess_text")
    outputs = " ".join(inputs.strip().split())
    outputs = outputs.replace("``", '"').replace("''", '"')
    if not keep_accents:
        outputs = unicodedata.normalize("NFKD", outputs)
        outputs = "".join(c for c in outputs if not unicodedata.combining(c))
    if lower:
        outputs = outputs.lower()
    return outputs


def _is_digit_comma(piece: str) -> bool:
    # As the original: longer than one character, ends in ",", and the
    # character before is a digit by str.isdigit (Unicode digits included).
    return len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()


def split_digit_comma(sp_model, pieces: Sequence[str],
                      strip_underline: bool = False) -> list[str]:
    """Applies the digit-comma rule to pieces from `sp_model.EncodeAsPieces`.

    `9,9` encodes as [`▁9,`, `9`]; the rule re-encodes `▁9` without its `▁`
    and appends `,` as its own piece, giving [`▁9`, `,`, `9`].
    `strip_underline=True` is HF's working strip; False is the original.
    """
    new_pieces: list[str] = []
    for piece in pieces:
        if not _is_digit_comma(piece):
            new_pieces.append(piece)
            continue
        cur_pieces = sp_model.EncodeAsPieces(
            piece[:-1].replace(SPIECE_UNDERLINE, ""))
        if (strip_underline and piece[0] != SPIECE_UNDERLINE and cur_pieces
                and cur_pieces[0][0] == SPIECE_UNDERLINE):
            if len(cur_pieces[0]) == 1:
                cur_pieces = cur_pieces[1:]
            else:
                cur_pieces[0] = cur_pieces[0][1:]
        cur_pieces.append(piece[-1])
        new_pieces.extend(cur_pieces)
    return new_pieces


def encode_pieces(sp_model, text: str, hf_compat: bool = False) -> list[str]:
    """The original `encode_pieces`: SentencePiece plus the digit-comma rule.

    Does not call `preprocess_text`; callers do, as in the original. Pieces
    are always str (the original could return bytes pieces in Python 2).
    """
    check_text(text, "encode_pieces")
    pieces = sp_model.EncodeAsPieces(text)
    return split_digit_comma(sp_model, pieces, strip_underline=hf_compat)


def encode_ids(sp_model, text: str, hf_compat: bool = False) -> list[int]:
    """Ids of `encode_pieces`, through `PieceToId` as in the original."""
    return [sp_model.PieceToId(piece)
            for piece in encode_pieces(sp_model, text, hf_compat=hf_compat)]


def whitespace_class() -> str:
    """Every code point Python's str.split() treats as whitespace."""
    return "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


def digit_code_points() -> list[int]:
    """Code points for which str.isdigit() is true (the rule's digit test)."""
    return [c for c in range(0x110000) if chr(c).isdigit()]


def _scalar_values() -> range:
    return range(0x110000)


@functools.lru_cache(maxsize=None)
def strip_accents_map() -> dict[int, str]:
    """What NFKD + dropping combining marks makes of each code point.

    In `preprocess_text` that step is a per-code-point map: NFKD decomposes
    every character on its own and then only reorders characters with a
    non-zero combining class, all of which are dropped. Lists only the code
    points it changes, from this Python's `unicodedata`, so the in-graph
    tokenizer applies exactly the Unicode version training used (ICU in
    TensorFlow is another, and differs on newer characters).
    """
    table = {}
    for c in _scalar_values():
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        out = "".join(x for x in unicodedata.normalize("NFKD", ch)
                      if not unicodedata.combining(x))
        if out != ch:
            table[c] = out
    return table


@functools.lru_cache(maxsize=None)
def lower_map() -> dict[int, str]:
    """str.lower of each code point it changes (U+03A3 as non-final sigma).

    str.lower is per code point except for U+03A3 (capital sigma), which
    becomes final U+03C2 by context; see `final_sigma_classes`.
    """
    return {c: chr(c).lower() for c in _scalar_values()
            if not 0xD800 <= c <= 0xDFFF and chr(c).lower() != chr(c)}


@functools.lru_cache(maxsize=None)
def final_sigma_classes() -> tuple[list[int], list[int]]:
    """(case-ignorable, cased-and-not-ignorable) code points for str.lower.

    str.lower turns U+03A3 into final sigma when, skipping case-ignorable
    characters, the previous character is cased and the next is not. Python
    does not expose the two properties, so they are read off str.lower
    itself: with X before the sigma, "AXΣ" is final iff X is ignorable or
    cased, "XΣ" iff X is cased and not ignorable.
    """
    ignorable, cased = [], []
    for c in _scalar_values():
        x = chr(c)
        after_a = ("A" + x + "\u03a3").lower()[-1] == "\u03c2"
        alone = (x + "\u03a3").lower()[-1] == "\u03c2"
        if alone:
            cased.append(c)
        elif after_a:
            ignorable.append(c)
    return ignorable, cased
