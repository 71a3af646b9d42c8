"""BERT's BasicTokenizer + WordPiece, the original's fallback without SPM.

The original `FullTokenizer` uses these when no `spm_model_file` is given;
the Chinese ALBERT releases (`albert_*_zh`, 21128-token `vocab.txt`) need it.
Behaviour follows google-research/albert `tokenization.py` (itself BERT's):
clean control characters, space out CJK ideographs, whitespace split,
optionally lowercase + strip accents (NFD, drop category Mn), split
punctuation, then greedy longest-match-first WordPiece with `##` suffixes.
"""

from __future__ import annotations

import collections
import functools
import unicodedata

UNK_TOKEN = "[UNK]"
MAX_INPUT_CHARS_PER_WORD = 200

# CJK Unified Ideograph blocks that get spaces around them (BERT's list).
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def load_vocab(vocab_file: str) -> "collections.OrderedDict[str, int]":
    """vocab.txt -> {token: id}; see `parse_vocab`."""
    with open(vocab_file, "rb") as reader:
        return parse_vocab(reader.read(), vocab_file)


def parse_vocab(data: bytes, source: str
                ) -> "collections.OrderedDict[str, int]":
    """vocab.txt bytes -> {token: id}; first column of each line, first wins.

    As the original: a blank line is the token " ", and a repeated token
    keeps its first id (later ids are then never produced). `source` names
    the file in errors.
    """
    vocab: collections.OrderedDict[str, int] = collections.OrderedDict()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ValueError(f"{source}:{line}: not UTF-8 (byte "
                         f"{data[e.start]:#04x} at byte offset {e.start}); "
                         f"vocab files are UTF-8") from None
    lines = text.split("\n")  # As the original's readline: "\n" only.
    if lines and lines[-1] == "":
        lines.pop()  # After the last newline: end of file.
    for line in lines:
        token = line.strip().split()[0] if line.strip() else " "
        if token not in vocab:
            vocab[token] = len(vocab)
    return vocab


def whitespace_tokenize(text: str) -> list[str]:
    return text.split()


def _is_whitespace(char: str) -> bool:
    if char in " \t\n\r":
        return True
    return unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    if char in "\t\n\r":  # Counted as whitespace instead.
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char: str) -> bool:
    cp = ord(char)
    # All non-alphanumeric ASCII counts as punctuation (e.g. "^", "$", "`").
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


class BasicTokenizer:
    """Punctuation splitting, CJK spacing and optional lowercasing."""

    def __init__(self, do_lower_case: bool = True):
        self.do_lower_case = do_lower_case

    def tokenize(self, text: str) -> list[str]:
        text = self._clean_text(text)
        text = "".join(f" {c} " if _is_cjk(ord(c)) else c for c in text)
        split_tokens: list[str] = []
        for token in whitespace_tokenize(text):
            if self.do_lower_case:
                token = self._strip_accents(token.lower())
            split_tokens.extend(self._split_on_punctuation(token))
        return whitespace_tokenize(" ".join(split_tokens))

    @staticmethod
    def _strip_accents(text: str) -> str:
        # NFD + drop Mn: not the same as preprocess_text's NFKD + combining.
        text = unicodedata.normalize("NFD", text)
        return "".join(c for c in text if unicodedata.category(c) != "Mn")

    @staticmethod
    def _split_on_punctuation(text: str) -> list[str]:
        output: list[list[str]] = []
        start_new_word = True
        for char in text:
            if _is_punctuation(char):
                output.append([char])
                start_new_word = True
            else:
                if start_new_word:
                    output.append([])
                start_new_word = False
                output[-1].append(char)
        return ["".join(x) for x in output]

    @staticmethod
    def _clean_text(text: str) -> str:
        output = []
        for char in text:
            cp = ord(char)
            if cp == 0 or cp == 0xFFFD or _is_control(char):
                continue
            output.append(" " if _is_whitespace(char) else char)
        return "".join(output)


class WordpieceTokenizer:
    """Greedy longest-match-first WordPiece over a vocab dict."""

    def __init__(self, vocab, unk_token: str = UNK_TOKEN,
                 max_input_chars_per_word: int = MAX_INPUT_CHARS_PER_WORD):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def tokenize(self, text: str) -> list[str]:
        """"unaffable" -> ["un", "##aff", "##able"]; unknown words -> [UNK]."""
        output_tokens: list[str] = []
        for token in whitespace_tokenize(text):
            if len(token) > self.max_input_chars_per_word:
                output_tokens.append(self.unk_token)
                continue
            sub_tokens: list[str] = []
            start = 0
            while start < len(token):
                end = len(token)
                match = None
                while start < end:
                    substr = token[start:end]
                    if start > 0:
                        substr = "##" + substr
                    if substr in self.vocab:
                        match = substr
                        break
                    end -= 1
                if match is None:
                    sub_tokens = [self.unk_token]  # The whole word is unknown.
                    break
                sub_tokens.append(match)
                start = end
            output_tokens.extend(sub_tokens)
        return output_tokens


# Per-code-point tables of BasicTokenizer's steps, for the in-graph
# tokenizer (tokenization.in_graph.InGraphWordpieceTokenizer). They come
# from the predicates above and this Python's `unicodedata`, so the graph
# applies exactly the Unicode version the Python path does.

def _scalar_values() -> range:
    return range(0x110000)


@functools.lru_cache(maxsize=None)
def clean_text_map() -> dict[int, str]:
    """_clean_text per code point, plus the whitespace str.split() adds.

    NUL, U+FFFD and controls -> "" (dropped); BERT's whitespace -> " ". The
    other separators str.split() splits on (U+2028, U+2029, ...) survive
    _clean_text but end a word in whitespace_tokenize, so they map to " "
    too; controls that str.split() would split on (U+001C-U+001F, U+0085)
    are dropped first, as in _clean_text.
    """
    table = {}
    for cp in _scalar_values():
        if 0xD800 <= cp <= 0xDFFF:
            continue
        char = chr(cp)
        if cp == 0 or cp == 0xFFFD or _is_control(char):
            table[cp] = ""
        elif _is_whitespace(char) or char.isspace():
            if char != " ":
                table[cp] = " "
    return table


@functools.lru_cache(maxsize=None)
def strip_accents_map() -> dict[int, str]:
    """NFD + drop category Mn (_strip_accents) of each code point it changes.

    Per code point, NFD differs from NFD of the string only by the
    canonical reordering of adjacent combining marks; Mn marks are dropped
    anyway, so only two adjacent non-Mn marks with non-zero combining
    classes out of order (25 code points, e.g. viramas, U+1D165) could
    differ, which real text does not have.
    """
    table = {}
    for cp in _scalar_values():
        if 0xD800 <= cp <= 0xDFFF:
            continue
        char = chr(cp)
        out = BasicTokenizer._strip_accents(char)  # noqa: SLF001
        if out != char:
            table[cp] = out
    return table


@functools.lru_cache(maxsize=None)
def punctuation_code_points() -> tuple[int, ...]:
    """Every code point _split_on_punctuation makes a word of its own."""
    return tuple(cp for cp in _scalar_values()
                 if not 0xD800 <= cp <= 0xDFFF and _is_punctuation(chr(cp)))


def cjk_ranges() -> tuple[tuple[int, int], ...]:
    """The inclusive code point ranges spaced out as CJK ideographs."""
    return _CJK_RANGES
