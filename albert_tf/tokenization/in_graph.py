"""In-graph ALBERT tokenizer: tf.strings normalisation + tf_text SentencePiece.

Reproduces `preprocess_text` + `encode_ids` (module `text`) with TensorFlow
ops only, so it runs inside `tf.data` pipelines and exported SavedModels:

  1. collapse whitespace: runs of any character Python's str.split() splits
     on become one space, then leading/trailing spaces go;
  2. (hf_compat only) `` and '' -> ";
  3. NFKD (tf_text.normalize_utf8), then delete every code point with a
     non-zero combining class (the exact set unicodedata.combining uses);
  4. lowercase (tf.strings.lower, UTF-8);
  5. SentencePiece pieces, then the digit-comma rule on ragged tensors.

Known, measured sources of disagreement with the Python path (see
bench/bench_tokenizer_parity.py): ICU and Python can differ in Unicode
version for NFKD, and tf.strings.lower uses simple per-code-point case
mapping where str.lower() uses full mapping (e.g. U+0130, final sigma),
and tf_text bundles its own SentencePiece build, which breaks exact Viterbi
ties differently (e.g. "666" as 66+6 vs 6+66: same pieces, other order).
On the 164,692 corpus lines the ids agree on 99.997% (5 lines, all ties).
"""

from __future__ import annotations

import functools

import tensorflow as tf
import tensorflow_text as tf_text

from albert_tf.tokenization import full_tokenizer
from albert_tf.tokenization import text as text_lib

_UNDERLINE = text_lib.SPIECE_UNDERLINE


def _re2_class(code_points) -> str:
    """A RE2 character class `[...]` matching exactly `code_points`."""
    ranges = []
    for cp in sorted(code_points):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    parts = [f"\\x{{{lo:x}}}" if lo == hi else f"\\x{{{lo:x}}}-\\x{{{hi:x}}}"
             for lo, hi in ranges]
    return "[" + "".join(parts) + "]"


@functools.lru_cache(maxsize=None)
def _patterns() -> tuple[str, str, str]:
    whitespace = _re2_class(ord(c) for c in text_lib.whitespace_class())
    combining = _re2_class(text_lib.combining_code_points())
    digits = _re2_class(text_lib.digit_code_points())
    return whitespace, combining, digits


class InGraphTokenizer(tf.Module):
    """String tensor [B] -> ragged int32 ids [B, (T)], as the Python path.

    Example:
        tok = InGraphTokenizer(model_bytes, do_lower_case=True)
        ids = tok(tf.constant(["Héllo, 1,000, world"]))    # RaggedTensor
        ds = tf.data.Dataset.from_tensor_slices(texts).batch(8).map(tok)
    """

    def __init__(self, spm_model: bytes, do_lower_case: bool = True,
                 hf_compat: bool = False, check_special_ids: bool = True,
                 name: str | None = None):
        super().__init__(name=name)
        if check_special_ids:
            import sentencepiece as spm
            sp = spm.SentencePieceProcessor()
            sp.LoadFromSerializedProto(spm_model)
            full_tokenizer.check_spm_special_ids(sp, "spm_model")
        self.do_lower_case = do_lower_case
        self.hf_compat = hf_compat
        self._whitespace, self._combining, self._digits = _patterns()
        self._sp = tf_text.SentencepieceTokenizer(model=spm_model,
                                                  out_type=tf.string)

    @classmethod
    def from_file(cls, spm_model_file: str, **kwargs) -> "InGraphTokenizer":
        with tf.io.gfile.GFile(spm_model_file, "rb") as f:
            return cls(f.read(), **kwargs)

    def normalize(self, text: tf.Tensor) -> tf.Tensor:
        """preprocess_text in TF ops: [B] string -> [B] string."""
        text = tf.strings.regex_replace(text, self._whitespace + "+", " ")
        text = tf.strings.regex_replace(text, "^ | $", "")
        if self.hf_compat:
            text = tf.strings.regex_replace(text, "``", '"')
            text = tf.strings.regex_replace(text, "''", '"')
        text = tf_text.normalize_utf8(text, "NFKD")
        text = tf.strings.regex_replace(text, self._combining, "")
        if self.do_lower_case:
            text = tf.strings.lower(text, encoding="utf-8")
        return text

    def _split_digit_comma(self, pieces: tf.RaggedTensor) -> tf.RaggedTensor:
        """The digit-comma rule on [B, (P)] pieces -> [B, (P')] pieces."""
        flat = pieces.flat_values  # [N]
        is_rule = tf.strings.regex_full_match(flat, f"(?s).*{self._digits},")
        # piece[:-1] without any `▁`; "" (-> no pieces) where the rule is off.
        prefix = tf.strings.regex_replace(
            tf.strings.regex_replace(flat, ",$", ""), _UNDERLINE, "")
        sub = self._sp.tokenize(tf.where(is_rule, prefix, ""))  # [N, (k)]
        if self.hf_compat:
            # HF strips a `▁` the re-encoding adds to a mid-word piece.
            strip_row = is_rule & ~tf.strings.regex_full_match(
                flat, f"(?s){_UNDERLINE}.*")
            first, rest = sub[:, :1], sub[:, 1:]
            strip = tf.repeat(strip_row, first.row_lengths())
            first_vals = tf.where(
                strip, tf.strings.regex_replace(first.flat_values,
                                                f"^{_UNDERLINE}", ""),
                first.flat_values)
            sub = tf.concat([first.with_flat_values(first_vals), rest], 1)
            sub = tf.ragged.boolean_mask(sub, tf.strings.length(sub) > 0)
        tail = tf.RaggedTensor.from_tensor(
            tf.where(is_rule, ",", flat)[:, None])  # [N, 1]
        merged = tf.concat([sub, tail], axis=1)  # [N, (k + 1)]
        return pieces.with_flat_values(merged).merge_dims(1, 2)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize_pieces(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Raw text [B] -> pieces [B, (T)] (strings)."""
        pieces = self._sp.tokenize(self.normalize(text))
        return self._split_digit_comma(pieces)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Raw text [B] -> ids [B, (T)] int32."""
        pieces = self.tokenize_pieces(text)
        return tf.ragged.map_flat_values(self._sp.string_to_id, pieces)
