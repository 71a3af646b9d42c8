"""In-graph ALBERT tokenizer: TF string ops + tf_text SentencePiece.

Reproduces `preprocess_text` + `encode_ids` (module `text`) with TensorFlow
ops only, so it runs inside `tf.data` pipelines and exported SavedModels:

  1. collapse whitespace: runs of any character Python's str.split() splits
     on become one space, then leading/trailing spaces go (RE2);
  2. (hf_compat only) `` and '' -> ";
  3. NFKD then drop every non-zero combining class, as one per-code-point
     table (`text.strip_accents_map`);
  4. lowercase: final sigma by the context rule of str.lower, then a
     per-code-point table (`text.lower_map`);
  5. SentencePiece pieces, then the digit-comma rule on ragged tensors.

Steps 3 and 4 work on code points (tf.strings.unicode_decode) with tables
built from this Python's `unicodedata` and str.lower, not with ICU ops:
tf.strings.lower stops at the first NUL (it drops the rest of the string),
and TensorFlow's and tf_text's ICU builds are other Unicode versions than
Python's (e.g. U+2C2F, U+A7C0 lowercase and U+1CCF0 NFKD differ). So the
text that reaches SentencePiece is byte-identical to training's, NULs,
controls and all. Invalid UTF-8 (never produced from a Python str) is read
with U+FFFD replacements.

One known difference remains, in SentencePiece itself: tf_text bundles its
own build (0.1.96), which breaks *exact* Viterbi ties (segmentations with
the same float32 score, e.g. "ve"+"veve" vs "veve"+"ve") differently from
the pip library training uses. No score change can separate such paths,
since they use the same pieces; tests/test_tokenizer_fuzz.py checks that
every difference is such a tie. They are rare (about 1 in 1,000 fuzzed
strings with a 300-piece model; 5 of 164,692 corpus lines with 30k).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
# The resource class and op behind tf_text.SentencepieceTokenizer (pinned
# tensorflow-text 2.21.1), for _SharedSentencepieceModel.
from tensorflow_text.python.ops import sentencepiece_tokenizer

from albert_tf.tokenization import full_tokenizer
from albert_tf.tokenization import text as text_lib
from albert_tf.tokenization import wordpiece

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
def _patterns() -> tuple[str, str]:
    whitespace = _re2_class(ord(c) for c in text_lib.whitespace_class())
    digits = _re2_class(text_lib.digit_code_points())
    return whitespace, digits


def _code_point_table(mapping: dict[int, str]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted keys [K], replacement starts [K + 1] and code points [V]."""
    keys = sorted(mapping)
    rows = [[ord(ch) for ch in mapping[k]] for k in keys]
    starts = np.cumsum([0] + [len(row) for row in rows])
    values = np.array([c for row in rows for c in row], np.int32)
    return np.array(keys, np.int32), starts.astype(np.int64), values


def _is_in(sorted_values: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """x [N] int32 -> bool [N]: x is in `sorted_values` [K] (K > 0)."""
    idx = tf.searchsorted(sorted_values, x)
    idx = tf.minimum(idx, tf.size(sorted_values) - 1)
    return tf.gather(sorted_values, idx) == x


def _segment_ids(splits: tf.Tensor) -> tf.Tensor:
    """Row of each value from row splits [R + 1] -> [splits[-1]] int64.

    Binary search: tf.repeat and RaggedTensor.value_rowids cost rows x the
    longest row, far too much for one 60,000-character string in a batch.
    """
    return tf.searchsorted(splits[1:], tf.range(splits[-1], dtype=tf.int64),
                           side="right")


def _map_code_points(cps: tf.RaggedTensor, keys: tf.Tensor,
                     starts: tf.Tensor, values: tf.Tensor) -> tf.RaggedTensor:
    """Replaces each code point found in `keys` by its replacement.

    cps [B, (N)] -> [B, (N')]; other code points stay as they are. The
    replacement of keys[k] is values[starts[k]:starts[k + 1]] (maybe empty).
    """
    flat = cps.flat_values  # [N]
    idx = tf.minimum(tf.searchsorted(keys, flat), tf.size(keys) - 1)  # [N]
    hit = tf.gather(keys, idx) == flat  # [N]
    first = tf.gather(starts, idx)  # [N]
    lengths = tf.where(hit, tf.gather(starts, idx + 1) - first, 1)  # [N]
    out_splits = tf.concat([[0], tf.cumsum(lengths)], 0)  # [N + 1]
    # Output slot j comes from code point source[j], at offset `within`.
    source = _segment_ids(out_splits)  # [N']
    within = (tf.range(out_splits[-1], dtype=tf.int64)
              - tf.gather(out_splits, source))  # [N']
    from_table = tf.gather(
        values, tf.minimum(tf.gather(first, source) + within,
                           tf.maximum(tf.size(values, out_type=tf.int64) - 1,
                                      0)))
    out = tf.where(tf.gather(hit, source), from_table,
                   tf.gather(flat, source))  # [N']
    mapped = tf.RaggedTensor.from_row_splits(out, out_splits,
                                             validate=False)  # [N, (m)]
    return cps.with_flat_values(mapped).merge_dims(1, 2)


def _final_sigma(cps: tf.RaggedTensor, ignorable: tf.Tensor,
                 cased: tf.Tensor) -> tf.RaggedTensor:
    """U+03A3 -> U+03C2 where str.lower makes it final sigma. [B, (N)].

    Final: skipping case-ignorable code points, the previous one in the
    string is cased and the next one is not cased (or there is none).
    """
    flat = cps.flat_values  # [N]
    rows = _segment_ids(cps.row_splits)  # [N]
    not_ignorable = ~_is_in(ignorable, flat)  # [N]
    is_cased = _is_in(cased, flat)  # [N]
    positions = tf.where(not_ignorable)[:, 0]  # [M]
    count = tf.size(positions, out_type=tf.int64)
    # A sentinel after the end, in no row, so empty gathers stay in range.
    positions = tf.concat([positions, tf.size(flat, out_type=tf.int64)[None]],
                          0)  # [M + 1]
    rows_ext = tf.concat([rows, tf.constant([-1], rows.dtype)], 0)
    cased_ext = tf.concat([is_cased, [False]], 0)
    before = tf.cumsum(tf.cast(not_ignorable, tf.int64), exclusive=True)
    prev = tf.gather(positions, tf.maximum(before - 1, 0))
    prev_cased = ((before > 0) & (tf.gather(rows_ext, prev) == rows)
                  & tf.gather(cased_ext, prev))
    # For a non-ignorable code point, positions[before + 1] is the next one.
    nxt = tf.gather(positions, tf.minimum(before + 1, count))
    next_cased = ((tf.gather(rows_ext, nxt) == rows)
                  & tf.gather(cased_ext, nxt))
    final = (flat == 0x3A3) & prev_cased & ~next_cased
    return cps.with_flat_values(tf.where(final, 0x3C2, flat))


class _SharedSentencepieceModel(
        sentencepiece_tokenizer._SentencepieceModelResource):  # noqa: SLF001
    """tf_text's SentencePiece resource, owned by the resource manager.

    tf_text creates it without a shared_name, so it belongs to the op's
    kernel, and eager mode caches that kernel: tf.random.set_seed (so
    keras.utils.set_random_seed) clears the cache and deletes the resource
    of every tokenizer made before it ("Resource ... SentencepieceOp does
    not exist" at the next call). A shared_name from the model's bytes
    keeps it alive, and tokenizers of one model share it.
    """

    def __init__(self, model: bytes):
        self._shared_name = "albert_tf_spm_" + hashlib.sha256(
            model).hexdigest()[:24]
        super().__init__(model, None)

    def _create_resource(self):
        with tf.name_scope("SentenceTokenizerInitializer"):
            return sentencepiece_tokenizer.gen_sentencepiece_tokenizer \
                .sentencepiece_op(model=self._model,
                                  shared_name=self._shared_name)


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
        self._whitespace, self._digits = _patterns()
        self._accents = _code_point_table(text_lib.strip_accents_map())
        if do_lower_case:
            self._lower = _code_point_table(text_lib.lower_map())
            self._ignorable, self._cased = (
                np.array(v, np.int32) for v in text_lib.final_sigma_classes())
        self._sp = tf_text.SentencepieceTokenizer(model=spm_model,
                                                  out_type=tf.string)
        self._sp._model_resource = _SharedSentencepieceModel(spm_model)

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
        # A batch of ASCII skips steps 3-4's code-point tables: NFKD leaves
        # ASCII as it is, and str.lower on it is tf.strings.lower's byte-wise
        # ASCII lowering. NUL stays on the table path (see above). About
        # half the cost of normalize on short English text.
        ascii_only = tf.reduce_all(
            tf.strings.regex_full_match(text, "[\\x01-\\x7f]*"))
        return tf.cond(ascii_only, lambda: self._normalize_ascii(text),
                       lambda: self._normalize_code_points(text))

    def _normalize_ascii(self, text: tf.Tensor) -> tf.Tensor:
        return tf.strings.lower(text) if self.do_lower_case else text

    def _normalize_code_points(self, text: tf.Tensor) -> tf.Tensor:
        """Steps 3-4 on any text: [B] string -> [B] string."""
        cps = tf.strings.unicode_decode(
            text, "UTF-8", errors="replace")  # [B, (N)] int32
        cps = _map_code_points(cps, *self._accents)
        if self.do_lower_case:
            cps = _final_sigma(cps, self._ignorable, self._cased)
            cps = _map_code_points(cps, *self._lower)
        return tf.strings.unicode_encode(cps, "UTF-8")

    def _split_digit_comma(self, pieces: tf.RaggedTensor) -> tf.RaggedTensor:
        """The digit-comma rule on [B, (P)] pieces -> [B, (P')] pieces."""
        flat = pieces.flat_values  # [N]
        is_rule = tf.strings.regex_full_match(flat, f"(?s).*{self._digits},")
        # Most batches have no such piece: skip the second SentencePiece
        # pass and the ragged merge.
        return tf.cond(tf.reduce_any(is_rule),
                       lambda: self._split_rule_pieces(pieces, is_rule),
                       lambda: pieces)

    def _split_rule_pieces(self, pieces: tf.RaggedTensor,
                           is_rule: tf.Tensor) -> tf.RaggedTensor:
        flat = pieces.flat_values  # [N]
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


def _space_around(cps: tf.RaggedTensor, mask: tf.Tensor) -> tf.RaggedTensor:
    """Puts a space before and after each code point where `mask` [N].

    cps [B, (N)] -> [B, (N')]: BasicTokenizer's CJK spacing, and its
    punctuation split once words are joined by spaces again.
    """
    flat = cps.flat_values  # [N]
    space = tf.fill(tf.shape(flat), tf.constant(0x20, flat.dtype))
    triple = tf.stack([space, flat, space], axis=1)  # [N, 3]
    keep = tf.stack([mask, tf.ones_like(mask), mask], axis=1)  # [N, 3]
    spaced = tf.ragged.boolean_mask(triple, keep)  # [N, (1 or 3)]
    return cps.with_flat_values(spaced).merge_dims(1, 2)


class InGraphWordpieceTokenizer(tf.Module):
    """String tensor [B] -> ragged int32 ids [B, (T)], as FullTokenizer with
    a vocab.txt (BasicTokenizer + WordpieceTokenizer, tokenization.py).

    BasicTokenizer's steps are per-code-point tables from the same Python
    predicates (tokenization.wordpiece), on tf.strings.unicode_decode code
    points, not tf_text's BertTokenizer: that one case-folds with NFKC
    (e.g. "ﬁ" -> "fi", "ß" -> "ss") where the original lowercases and
    NFD-strips, and its ICU is another Unicode version. The greedy
    longest-match-first WordPiece itself is tf_text's WordpieceTokenizer
    (the same algorithm); a word over 200 characters is "[UNK]" as in the
    original (counted in characters, not tf_text's bytes).

    Invalid UTF-8 (never produced from a Python str) is read as U+FFFD,
    which _clean_text drops; the original's convert_to_unicode drops it
    with errors="ignore", so the result is the same.
    """

    def __init__(self, vocab: list[str] | dict[str, int],
                 do_lower_case: bool = True, name: str | None = None):
        super().__init__(name=name)
        if not isinstance(vocab, dict):
            vocab = {token: i for i, token in reversed(list(enumerate(vocab)))}
        missing = [t for t in full_tokenizer.WORDPIECE_SPECIAL_TOKENS
                   if t not in vocab]
        if missing:
            raise ValueError(f"vocab: missing special tokens {missing}")
        self.do_lower_case = do_lower_case
        self.vocab_size = max(vocab.values()) + 1
        self._clean = _code_point_table(wordpiece.clean_text_map())
        self._cjk = tf.constant(np.array(wordpiece.cjk_ranges(), np.int32))
        self._punctuation = np.array(wordpiece.punctuation_code_points(),
                                     np.int32)
        if do_lower_case:
            self._lower = _code_point_table(text_lib.lower_map())
            self._ignorable, self._cased = (
                np.array(v, np.int32) for v in text_lib.final_sigma_classes())
            self._accents = _code_point_table(wordpiece.strip_accents_map())
        tokens = list(vocab)
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(tokens), tf.constant([vocab[t] for t in tokens],
                                                 tf.int64)),
            default_value=-1)
        self._unk = wordpiece.UNK_TOKEN
        # A word of at most 200 characters has at most 800 UTF-8 bytes.
        self._wordpiece = tf_text.WordpieceTokenizer(
            self._table, suffix_indicator="##",
            max_bytes_per_word=4 * wordpiece.MAX_INPUT_CHARS_PER_WORD,
            token_out_type=tf.int64, unknown_token=self._unk)

    @classmethod
    def from_file(cls, vocab_file: str, **kwargs
                  ) -> "InGraphWordpieceTokenizer":
        return cls(wordpiece.load_vocab(vocab_file), **kwargs)

    def normalize(self, text: tf.Tensor) -> tf.Tensor:
        """The original's process_text without SentencePiece: unchanged.

        (Its callers, e.g. race_utils, preprocess only when using SPM; the
        BasicTokenizer steps happen in `words`.)
        """
        return text

    def _is_cjk(self, flat: tf.Tensor) -> tf.Tensor:
        ranges = self._cjk  # [R, 2]
        inside = ((flat[:, None] >= ranges[None, :, 0])
                  & (flat[:, None] <= ranges[None, :, 1]))  # [N, R]
        return tf.reduce_any(inside, axis=1)  # [N]

    def words(self, text: tf.Tensor) -> tf.RaggedTensor:
        """BasicTokenizer.tokenize: raw text [B] -> words [B, (W)]."""
        cps = tf.strings.unicode_decode(
            text, "UTF-8", errors="replace")  # [B, (N)] int32
        cps = _map_code_points(cps, *self._clean)
        cps = _space_around(cps, self._is_cjk(cps.flat_values))
        if self.do_lower_case:
            # Lowercasing the joined words equals lowering each word: the
            # spaces between them are neither cased nor case-ignorable.
            cps = _final_sigma(cps, self._ignorable, self._cased)
            cps = _map_code_points(cps, *self._lower)
            cps = _map_code_points(cps, *self._accents)
        cps = _space_around(cps, _is_in(self._punctuation, cps.flat_values))
        joined = tf.strings.unicode_encode(cps, "UTF-8")  # [B]
        return tf.strings.split(joined)  # Only " " is left to split on.

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Raw text [B] -> ids [B, (T)] int32."""
        words = self.words(text)  # [B, (W)]
        too_long = tf.strings.length(
            words.flat_values,
            unit="UTF8_CHAR") > wordpiece.MAX_INPUT_CHARS_PER_WORD
        # "[UNK]" cannot come from text (brackets are punctuation), and
        # WordPiece maps it to itself.
        words = words.with_flat_values(
            tf.where(too_long, self._unk, words.flat_values))
        ids = self._wordpiece.tokenize(words)  # [B, (W), (P)] int64
        return tf.cast(ids.merge_dims(1, 2), tf.int32)
