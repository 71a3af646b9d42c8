"""Text normalisation and SentencePiece piece handling, as the original.

Mirrors `preprocess_text` and `encode_pieces` / `encode_ids` of
google-research/albert `tokenization.py`, plus the variants HF's
`AlbertTokenizer` uses (`hf_compat`), which differ in two places:

* HF replaces two backticks and two single quotes with `"`; the original
  does not (ORIGINAL.md section 7).
* The digit-comma rule re-encodes `piece[:-1]` and, when the piece did not
  start a word but the re-encoding does, strips that leading `▁`. In the
  original that strip never happens: it compares a str character with the
  *bytes* constant `SPIECE_UNDERLINE` (dead in Python 3, and in Python 2 it
  compared one byte with three). HF's str version strips. So on inputs like
  `3.0,` the original yields an extra `▁` piece (google-research/albert
  issue #249). We match the original by default.
"""

from __future__ import annotations

import unicodedata
from typing import Sequence

# The SentencePiece word-start marker (U+2581), as a str.
SPIECE_UNDERLINE = "\u2581"


def preprocess_text(inputs: str, remove_space: bool = True,
                    lower: bool = False) -> str:
    """The original `preprocess_text`: spaces, accents, case. No quotes.

    Order matters and is the original's: collapse whitespace (str.split, so
    any Unicode space), then NFKD and drop every character with a non-zero
    canonical combining class, then lowercase. NFKD can create spaces
    (e.g. U+00A8 -> " " + U+0308); they are kept, as in the original.
    """
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
    pieces = sp_model.EncodeAsPieces(text)
    return split_digit_comma(sp_model, pieces, strip_underline=hf_compat)


def encode_ids(sp_model, text: str, hf_compat: bool = False) -> list[int]:
    """Ids of `encode_pieces`, through `PieceToId` as in the original."""
    return [sp_model.PieceToId(piece)
            for piece in encode_pieces(sp_model, text, hf_compat=hf_compat)]


def whitespace_class() -> str:
    """Every code point Python's str.split() treats as whitespace."""
    return "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


def combining_code_points() -> list[int]:
    """Code points with a non-zero canonical combining class.

    `preprocess_text` drops exactly these (unicodedata.combining), which is
    not the same set as category Mn; the in-graph tokenizer reuses this list.
    """
    return [c for c in range(0x110000) if unicodedata.combining(chr(c))]


def digit_code_points() -> list[int]:
    """Code points for which str.isdigit() is true (the rule's digit test)."""
    return [c for c in range(0x110000) if chr(c).isdigit()]
