"""FullTokenizer: SentencePiece (or WordPiece) with the original's API.

Same constructor, methods and results as google-research/albert
`tokenization.FullTokenizer`; `tokenize` does not call `preprocess_text`
(the original's callers do). Two additions:

* `hf_compat=True` reproduces HF `AlbertTokenizer.tokenize`, which *does*
  preprocess (with its ``/'' -> " mapping), lowercases outside special
  tokens, keeps literal special tokens such as `[MASK]` whole, and applies
  the digit-comma strip that is dead code in the original.
* Special ids are checked on load, so a vocabulary that would silently give
  wrong [CLS]/[SEP]/[MASK] ids fails with a message naming the problem.
"""

from __future__ import annotations

import os
import re
from typing import Iterable, Sequence

import sentencepiece as spm

from albert_tf.tokenization import text as text_lib
from albert_tf.tokenization import wordpiece

# The ids the released SentencePiece models (30k-clean.model) have;
# pretraining pads with 0 and the heads assume these positions.
SPM_SPECIAL_IDS = {"<pad>": 0, "<unk>": 1, "[CLS]": 2, "[SEP]": 3,
                   "[MASK]": 4}
# A WordPiece vocab.txt (BERT layout) must contain these, at any id.
# [MASK] is not among them: as the original, a vocabulary without it
# tokenizes and fine-tunes; only masking needs it (`mask_id`).
WORDPIECE_SPECIAL_TOKENS = ("[UNK]", "[CLS]", "[SEP]")


def _read_bytes(path: str) -> bytes:
    if "://" in path:  # gs:// and friends, as the original's tf.gfile.
        import tensorflow as tf  # Local import: only remote paths need TF.
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    if not os.path.exists(path):
        raise FileNotFoundError(f"spm_model_file not found: {path}")
    with open(path, "rb") as f:
        return f.read()


def check_spm_special_ids(sp_model: spm.SentencePieceProcessor,
                          source: str = "spm model") -> None:
    """Raises ValueError unless <pad>,<unk>,[CLS],[SEP],[MASK] are ids 0..4."""
    size = sp_model.GetPieceSize()
    problems = []
    for piece, expected in SPM_SPECIAL_IDS.items():
        found = sp_model.IdToPiece(expected) if expected < size else None
        if found == piece:
            continue
        actual = sp_model.PieceToId(piece)
        if actual == sp_model.unk_id() and piece != "<unk>":
            where = "is missing from the model"
        else:
            where = f"is at id {actual}"
        problems.append(f"{piece!r} should be id {expected} but {where} "
                        f"(id {expected} holds {found!r})")
    if problems:
        raise ValueError(
            f"{source}: wrong special-token ids: " + "; ".join(problems)
            + ". ALBERT needs <pad>=0, <unk>=1, [CLS]=2, [SEP]=3, [MASK]=4; "
            "train with albert_tf.tokenization.train_spm (pad_id=0, unk_id=1, "
            "bos/eos off, control_symbols=[CLS],[SEP],[MASK]).")


class FullTokenizer:
    """End-to-end tokenizer: SentencePiece if `spm_model_file`, else WordPiece.

    Example:
        tokenizer = FullTokenizer(spm_model_file="30k-clean.model")
        text = preprocess_text("Héllo  World", lower=True)   # "hello world"
        ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))
    """

    def __init__(self, vocab_file: str | None = None,
                 do_lower_case: bool = True,
                 spm_model_file: str | None = None,
                 hf_compat: bool = False,
                 check_special_ids: bool = True):
        self.vocab_file = vocab_file
        self.do_lower_case = do_lower_case
        self.spm_model_file = spm_model_file
        self.hf_compat = hf_compat
        self.sp_model = None
        if spm_model_file:
            self.sp_model = spm.SentencePieceProcessor()
            try:
                self.sp_model.LoadFromSerializedProto(
                    _read_bytes(spm_model_file))
            except RuntimeError as e:
                raise ValueError(
                    f"spm_model_file {spm_model_file}: not a SentencePiece "
                    f"model ({e})") from e
            if check_special_ids:
                check_spm_special_ids(self.sp_model, spm_model_file)
            # As the original: a vocab dict for API consistency, id order.
            self.vocab = {self.sp_model.IdToPiece(i): i
                          for i in range(self.sp_model.GetPieceSize())}
        elif vocab_file:
            if hf_compat:
                raise ValueError("hf_compat needs spm_model_file (HF's "
                                 "AlbertTokenizer is SentencePiece only)")
            if not os.path.exists(vocab_file):
                raise FileNotFoundError(f"vocab_file not found: {vocab_file}")
            self.vocab = wordpiece.load_vocab(vocab_file)
            missing = [t for t in WORDPIECE_SPECIAL_TOKENS
                       if t not in self.vocab]
            if check_special_ids and missing:
                raise ValueError(f"vocab_file {vocab_file}: missing special "
                                 f"tokens {missing}")
            self.basic_tokenizer = wordpiece.BasicTokenizer(do_lower_case)
            self.wordpiece_tokenizer = wordpiece.WordpieceTokenizer(self.vocab)
        else:
            raise ValueError("FullTokenizer needs spm_model_file or vocab_file")
        self.inv_vocab = {v: k for k, v in self.vocab.items()}
        special = ("[CLS]", "[SEP]", "[MASK]", "<pad>", "<unk>")
        self._special_re = re.compile(
            "(" + "|".join(re.escape(t) for t in special) + ")")

    def tokenize(self, text: str) -> list[str]:
        """Pieces of already-preprocessed text (see module docstring)."""
        text_lib.check_text(text, "FullTokenizer.tokenize")
        if self.sp_model is None:
            return [sub for token in self.basic_tokenizer.tokenize(text)
                    for sub in self.wordpiece_tokenizer.tokenize(token)]
        if not self.hf_compat:
            return text_lib.encode_pieces(self.sp_model, text)
        # HF: literal special tokens stay whole; the rest is lowercased,
        # then preprocess_text + encode with the working digit-comma strip.
        pieces: list[str] = []
        for chunk in self._special_re.split(text):
            if chunk in SPM_SPECIAL_IDS:
                pieces.append(chunk)
                continue
            if self.do_lower_case:
                chunk = chunk.lower()
            chunk = text_lib.preprocess_text_hf(chunk,
                                                lower=self.do_lower_case)
            pieces.extend(text_lib.encode_pieces(self.sp_model, chunk,
                                                 hf_compat=True))
        return pieces

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        if self.sp_model is not None:
            return [self.sp_model.PieceToId(token) for token in tokens]
        return [self.vocab[token] for token in tokens]

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        if self.sp_model is not None:
            return [self.sp_model.IdToPiece(int(i)) for i in ids]
        return [self.inv_vocab[i] for i in ids]

    def special_id(self, token: str) -> int:
        """Id of `[CLS]`, `[SEP]`, `[MASK]`, ... in this vocabulary."""
        if token not in self.vocab:
            raise KeyError(f"{token!r} is not in the vocabulary")
        return self.vocab[token]

    def mask_id(self, purpose: str = "masking") -> int:
        """The [MASK] id, for what masks tokens (pretraining data, fill-
        mask); a vocabulary without one is an error naming its file."""
        if "[MASK]" not in self.vocab:
            raise ValueError(
                f"{self.vocab_file or self.spm_model_file}: the vocabulary "
                f"has no [MASK] token, which {purpose} needs (fine-tuning "
                f"and tokenizing do not). Add a [MASK] line to the vocab.")
        return self.vocab["[MASK]"]

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def preprocess(self, text: str) -> str:
        """What the original's callers do before `tokenize` (SPM only)."""
        if self.sp_model is None:
            return text.strip()
        return text_lib.preprocess_text(text, lower=self.do_lower_case)


def tokenize_lines(tokenizer: FullTokenizer,
                   lines: Sequence[str]) -> list[list[str]]:
    """preprocess + tokenize each line, as create_pretraining_data does."""
    return [tokenizer.tokenize(tokenizer.preprocess(line)) for line in lines]
