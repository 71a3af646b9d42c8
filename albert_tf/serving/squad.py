"""SQuAD SavedModel: raw question and context in, answer span out.

`export_squad` writes a SavedModel whose `serve_qa` signature runs the whole
prediction path of run_squad in the graph (tensorflow-text only, so
`tf.saved_model.load(path).signatures["serve_qa"]` needs no albert_tf):

1. question: preprocess_text + encode_ids (export.py's in-graph tokenizer),
   cut to max_query_length, as `squad_utils.convert_examples_to_features`;
2. context: the same preprocessing done character by character, so each
   character of the preprocessed text knows the raw character it came
   from; SentencePiece with byte offsets; the digit-comma rule with
   offsets. Each piece maps to the raw character of its first byte (start)
   and of its last byte (end). The original instead aligns the pieces to
   the raw text by a longest common subsequence (`_lcs_match`,
   `_convert_index`); both give the same text once the span is stripped,
   which is what the original returns (see the notes in `_ContextPieces`);
3. windows of max_seq_length - len(query) - 3 pieces every doc_stride,
   `[CLS] query [SEP] window [SEP]` padded to max_seq_length, p_mask, and
   the max-context flags of `_check_is_max_context`;
4. the model on every window, then the original's span choice:
   v1 (`accumulate_predictions_v1` / `write_predictions_v1`): the top
   n_best_size start and end logits of each window, dropping spans that
   start outside the window's context or where it is not max-context, end
   past the context, end before the start or are longer than
   max_answer_length; ranked by start + end logit, the best over windows;
   v2 (`accumulate_predictions_v2` / `write_predictions_v2`): the same on
   the start_n_top x end_n_top beam, ranked by the sum of log-probs;
   null_score = min over windows of cls_logits, and as the original the
   question has an answer when null_score < null_score_diff_threshold;
5. the span as `context[start:end + 1].strip()`, in code points.

Legend: B questions, K windows per question (the most any question has),
W windows in all, L max_seq_length, N raw characters, P context pieces,
n n_best_size.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from albert_tf.models import AlbertSpanLabeler
from albert_tf.models import AlbertSquadV2
from albert_tf.serving import checks as serving_checks
from albert_tf.serving import export
from albert_tf.tokenization import in_graph
from albert_tf.tokenization import text as text_lib

_TEXT = serving_checks.unchecked_spec(tf.string)  # [B], checked in-graph.
_IDS = serving_checks.unchecked_spec(tf.int32)  # [B, T], checked in-graph.
_UNDERLINE = text_lib.SPIECE_UNDERLINE


def _cumsum_in_rows(values: tf.Tensor, row_splits: tf.Tensor
                    ) -> tuple[tf.Tensor, tf.Tensor]:
    """Flat int64 values of a ragged [B, (N)] -> (sum of the values before
    each one in its row, the row's total at each one), both [M]."""
    cumsum = tf.concat([[0], tf.cumsum(values)], axis=0)  # [M + 1]
    rows = tf.ragged.row_splits_to_segment_ids(row_splits)
    row_start = tf.gather(cumsum, row_splits[:-1])  # [B]
    row_total = tf.gather(cumsum, row_splits[1:]) - row_start
    before = cumsum[:-1] - tf.gather(row_start, rows)
    return before, tf.gather(row_total, rows)


class _ContextPieces(tf.Module):
    """Raw contexts [B] -> pieces with the raw characters they came from.

    preprocess_text (whitespace runs -> one space, stripped; NFKD; drop
    combining marks; lowercase) acts on each character on its own except
    for whitespace (and final sigma, which keeps its byte length), so the
    tokenizer's `normalize` is also run on each character alone to learn
    how many bytes of the normalized text each raw character makes. The
    text SentencePiece sees is `normalize` of the whole context, exactly
    what the Python path and the question side use. A piece's start is the
    raw character of its first surface byte (SentencePiece offsets point at
    the space before a word, as the original's "▁" does in its aligned
    text); its end the raw character of its last byte. A piece with no
    surface (the first "▁", or one the digit-comma re-encoding adds) ends
    one character before the next one, as `_convert_index` puts an
    unaligned end; a lone "▁" whose surface is several spaces (e.g. "\n¨",
    as NFKD makes U+00A8 a space) maps to the first raw character there
    that preprocess_text alone makes " " (U+00A8 here, not "\n"), where
    the original's LCS, preferring the earlier character on ties, aligns
    it. Elsewhere the two differ by whitespace, which `.strip()` of the
    span (done by both) removes, or inside a character preprocess_text
    expands (e.g. "ﬁ"), which `_convert_index` resolves to that same
    character.

    Known differences: the original's LCS is banded and breaks ties toward
    earlier characters, so beside runs of whitespace next to characters
    preprocess_text expands (" ½" -> " 1⁄2") it can put a piece a few
    characters off, and it can drift on a context with many of them; the
    Python path inherits that, this map does not. On the test fixture
    (about 10% odd words and 10% odd gaps) 0.06% of the spans of up to 8
    pieces get another text; the served answers agreed on 150 of 150
    questions for v1 and for v2.
    """

    def __init__(self, tokenizer: in_graph.InGraphTokenizer,
                 spm_model: bytes):
        super().__init__()
        self.tokenizer = tokenizer
        # The Python path's classes: str.split whitespace, str.isdigit.
        whitespace = text_lib.whitespace_class()
        self.whitespace = tf.constant(sorted(ord(c) for c in whitespace),
                                      tf.int32)
        self.digits = tf.constant(text_lib.digit_code_points(), tf.int32)
        # Whitespace that preprocess_text(c, remove_space=False) makes " ".
        self.space_like = tf.constant(sorted(
            ord(c) for c in whitespace
            if text_lib.preprocess_text(c, remove_space=False) == " "),
            tf.int32)
        self.sp = tf_text.SentencepieceTokenizer(model=spm_model,
                                                 out_type=tf.string)

    def normalize(self, context: tf.Tensor):
        """-> (is_whitespace [B, (N)]; text [B]; per byte of the texts,
        byte_to_char (its raw character's index in the row) and alignable
        (see below); byte_splits [B + 1])."""
        chars = tf.strings.unicode_split(context, "UTF-8", errors="strict")
        code_points = tf.strings.unicode_decode(chars.flat_values, "UTF-8")
        flat = chars.flat_values  # [M]
        splits = chars.row_splits
        is_ws = _is_in(self.whitespace, code_points.flat_values)  # [M]
        non_ws = tf.cast(~is_ws, tf.int64)
        before, total = _cumsum_in_rows(non_ws, splits)
        after = total - before - non_ws
        position, _ = _cumsum_in_rows(tf.ones_like(non_ws), splits)
        previous_ws = tf.concat([[False], is_ws[:-1]], axis=0)[:tf.size(is_ws)]
        previous_ws &= position > 0
        # " ".join(text.strip().split()): the first of a run, between words.
        keep_space = is_ws & ~previous_ws & (before > 0) & (after > 0)
        out = tf.where(is_ws, tf.where(keep_space, " ", ""),
                       self.tokenizer.normalize(flat))  # [M]
        num_bytes = tf.cast(tf.strings.length(out), tf.int64)  # [M]
        byte_to_char = tf.repeat(position, num_bytes)
        row_bytes = tf.math.unsorted_segment_sum(
            num_bytes, tf.ragged.row_splits_to_segment_ids(splits),
            tf.size(splits) - 1)  # [B]
        byte_splits = tf.concat([[0], tf.cumsum(row_bytes)], axis=0)
        # Per byte of a run of normalized spaces: the first raw character
        # in the run that alone normalizes to " ", else -1.
        space_like = tf.where(is_ws, _is_in(self.space_like,
                                            code_points.flat_values),
                              out == " ")  # [M]
        is_space = tf.strings.bytes_split(out).flat_values == " "  # [bytes]
        row_start = tf.scatter_nd(
            byte_splits[:-1, None], tf.ones_like(byte_splits[:-1], tf.int32),
            byte_splits[-1:] + 1)[:-1] > 0  # [bytes]
        run = tf.cumsum(tf.cast(~is_space | row_start, tf.int64)) - 1
        big = tf.int64.max
        first = tf.math.unsorted_segment_min(
            tf.where(is_space & tf.repeat(space_like, num_bytes),
                     byte_to_char, big), run,
            tf.maximum(tf.reduce_max(run) + 1, 0))
        alignable = tf.gather(first, tf.maximum(run, 0))
        alignable = tf.where(is_space & (alignable != big), alignable, -1)
        text = self.tokenizer.normalize(context)  # [B]
        check = tf.debugging.assert_equal(
            tf.cast(tf.strings.length(text), tf.int64), row_bytes,
            message="serve_qa: per-character normalisation of a context "
                    "disagrees with the tokenizer's; cannot map pieces back")
        with tf.control_dependencies([check]):
            text = tf.identity(text)
        return (chars.with_flat_values(is_ws), text, byte_to_char,
                alignable, byte_splits)

    def _split_digit_comma(self, pieces, begins, ends):
        """The original's digit-comma rule (text_lib.split_digit_comma,
        strip_underline=False) on [B, (P)] pieces and byte offsets."""
        flat = pieces.flat_values  # [P_all]
        flat_begin, flat_end = begins.flat_values, ends.flat_values
        # As text_lib._is_digit_comma: ends in "," after a str.isdigit digit.
        code_points = tf.strings.unicode_decode(flat, "UTF-8")
        last_two = code_points[:, -2:].to_tensor(-1, shape=[None, 2])
        is_rule = ((tf.strings.length(flat, unit="UTF8_CHAR") > 1) &
                   (last_two[:, 1] == ord(",")) &
                   _is_in(self.digits, last_two[:, 0]))
        prefix = tf.strings.regex_replace(
            tf.strings.regex_replace(flat, ",$", ""), _UNDERLINE, "")
        prefix = tf.where(is_rule, prefix, "")
        sub, sub_begin, sub_end = self.sp.tokenize_with_offsets(prefix)
        # The prefix is the surface just before the final comma.
        base = flat_end - 1 - tf.cast(tf.strings.length(prefix), tf.int64)
        base = tf.maximum(base, flat_begin)
        limit = flat_end[:, None] - 1  # The comma.
        sub_begin = tf.minimum(sub_begin + base[:, None], limit)
        sub_end = tf.minimum(sub_end + base[:, None], limit)
        tail = tf.where(is_rule, ",", flat)[:, None]
        tail_begin = tf.where(is_rule, flat_end - 1, flat_begin)[:, None]
        tail_end = flat_end[:, None]

        def merge(head, last):  # [P_all, (k)] + [P_all, 1] -> [B, (P')]
            merged = tf.concat([head, tf.RaggedTensor.from_tensor(last)], 1)
            return pieces.with_flat_values(merged).merge_dims(1, 2)

        return (merge(sub, tail), merge(sub_begin, tail_begin),
                merge(sub_end, tail_end))

    def __call__(self, context: tf.Tensor):
        """-> ids, tok_start_to_orig, tok_end_to_orig (int32 [B, (P)]),
        is_whitespace (bool [B, (N)])."""
        is_ws, text, byte_to_char, alignable, byte_splits = self.normalize(
            context)
        pieces, begins, ends = self.sp.tokenize_with_offsets(text)
        pieces, begins, ends = self._split_digit_comma(
            pieces, tf.cast(begins, tf.int64), tf.cast(ends, tf.int64))
        ids = tf.ragged.map_flat_values(self.sp.string_to_id, pieces)
        rows = pieces.value_rowids()
        row_start = tf.gather(byte_splits, rows)
        row_last = tf.gather(byte_splits, rows + 1) - 1
        begin, end = begins.flat_values, ends.flat_values
        first = tf.gather(byte_to_char,
                          tf.clip_by_value(row_start + begin, row_start,
                                           row_last))
        last = tf.gather(byte_to_char,
                         tf.clip_by_value(row_start + end - 1, row_start,
                                          row_last))
        # A lone "▁" is one space in the original's aligned text, which the
        # LCS pairs with the first raw character of its surface that
        # preprocess_text makes " " on its own (not "\n"), if any.
        lone = (pieces.flat_values == _UNDERLINE) & (end > begin)
        space = tf.gather(alignable, tf.clip_by_value(
            row_start + begin, row_start, row_last))
        first = tf.where(lone & (space >= 0), space, first)
        last = tf.where(lone, first, last)
        last = tf.where(end > begin, last, tf.maximum(first - 1, 0))
        as_rows = lambda v: pieces.with_flat_values(tf.cast(v, tf.int32))
        return tf.cast(ids, tf.int32), as_rows(first), as_rows(last), is_ws


def _is_in(sorted_values: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """x [N] int32 -> bool [N]: x is one of `sorted_values` [K], K > 0."""
    index = tf.minimum(tf.searchsorted(sorted_values, x),
                       tf.size(sorted_values) - 1)
    return tf.gather(sorted_values, index) == x


def _first_argmax(values: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(max, index of its first occurrence) over the last axis.

    The original keeps the first of equal scores (Python's stable sort);
    tf.argmax does not promise which one it returns.
    """
    best = tf.reduce_max(values, axis=-1)
    size = tf.shape(values)[-1]
    index = tf.reduce_min(tf.where(
        values == best[..., None], tf.range(size), size), axis=-1)
    return best, tf.minimum(index, size - 1)


class _SquadModule(tf.Module):
    """The model and the in-graph tokenizers; signatures are its methods."""

    def __init__(self, model: keras.Model, tokenizer, pieces: _ContextPieces,
                 *, version_2_with_negative: bool, max_seq_length: int,
                 doc_stride: int, max_query_length: int,
                 max_answer_length: int, n_best_size: int,
                 null_score_diff_threshold: float):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.pieces = pieces
        self.v2 = version_2_with_negative
        self.max_seq_length = max_seq_length
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length
        self.max_answer_length = max_answer_length
        self.n_best_size = min(n_best_size, max_seq_length)
        self.null_score_diff_threshold = float(null_score_diff_threshold)

    # -- the model on ids -------------------------------------------------

    def serve(self, input_ids, input_mask, segment_ids, p_mask=None,
              signature="serving_default"):
        checked = serving_checks.checked_ids(
            signature, input_ids, input_mask, segment_ids, self.model.config,
            extra=[] if p_mask is None else [("p_mask", p_mask)])
        input_ids, input_mask, segment_ids = checked[:3]
        if p_mask is not None:
            p_mask = checked[3]
        features = {"input_ids": input_ids, "input_mask": input_mask,
                    "segment_ids": segment_ids}
        if not self.v2:
            outputs = self.model(features, training=False)
            return {k: tf.cast(outputs[k], tf.float32)
                    for k in ("start_logits", "end_logits")}
        outputs = self.model({**features, "p_mask": p_mask}, training=False)
        return {"start_top_log_probs": tf.cast(
                    outputs["start_top_log_probs"], tf.float32),
                "start_top_index": tf.cast(outputs["start_top_index"],
                                           tf.int32),
                "end_top_log_probs": tf.cast(outputs["end_top_log_probs"],
                                             tf.float32),
                "end_top_index": tf.cast(outputs["end_top_index"], tf.int32),
                "cls_logits": tf.cast(outputs["cls_logits"], tf.float32)}

    # -- windows ------------------------------------------------------------

    def windows(self, query_ids: tf.RaggedTensor, doc_ids: tf.RaggedTensor):
        """The original's doc spans of every question on a [B, K] grid.

        Returns a dict: valid [B, K]; start, length [B, K] (in context
        pieces); doc_offset [B]; input_ids, input_mask, segment_ids,
        p_mask int32 [B, K, L]; is_max_context bool [B, K, L] (true only
        at context positions, as `token_is_max_context`).
        """
        length = self.max_seq_length
        query_len = tf.cast(query_ids.row_lengths(), tf.int32)  # [B]
        doc_len = tf.cast(doc_ids.row_lengths(), tf.int32)  # [B]
        max_tokens = length - query_len - 3  # [B], >= 1 (checked at export)
        stride = tf.minimum(max_tokens, self.doc_stride)
        # Spans start at 0, stride, 2 * stride, ... until one reaches the end.
        num = 1 + (tf.maximum(doc_len - max_tokens, 0) + stride - 1) // stride
        k = tf.range(tf.reduce_max(num))[None, :]  # [1, K]
        valid = k < num[:, None]  # [B, K]
        start = k * stride[:, None]  # [B, K]
        span_len = tf.clip_by_value(doc_len[:, None] - start, 0,
                                    max_tokens[:, None])  # [B, K]
        doc_offset = query_len + 2  # [B]

        t = tf.range(length)[None, None, :]  # [1, 1, L]
        offset3 = doc_offset[:, None, None]
        len3 = span_len[:, :, None]
        in_query = (t >= 1) & (t < offset3 - 1)
        in_doc = (t >= offset3) & (t < offset3 + len3) & valid[:, :, None]
        is_sep = (t == offset3 - 1) | (t == offset3 + len3)

        def take(ids, positions):  # [B, (X)] at [B, K, L] positions
            dense = tf.pad(ids.to_tensor(0), [[0, 0], [0, 1]])  # [B, X + 1]
            positions = tf.clip_by_value(positions, 0, tf.shape(dense)[1] - 1)
            flat = tf.reshape(positions, [tf.shape(positions)[0], -1])
            return tf.reshape(tf.gather(dense, flat, batch_dims=1),
                              tf.shape(positions))

        shape = tf.shape(in_doc)
        query_tok = take(query_ids, tf.broadcast_to(t - 1, shape))
        doc_pos = start[:, :, None] + t - offset3  # [B, K, L]
        doc_tok = take(doc_ids, doc_pos)
        input_ids = tf.where(
            t == 0, export.CLS_ID, tf.where(
                in_query, query_tok, tf.where(
                    in_doc, doc_tok, tf.where(is_sep, export.SEP_ID, 0))))
        real = t <= offset3 + len3  # [B, K, L]
        segment = (t >= offset3) & real
        p_mask = ~((t == 0) | in_doc)

        # _check_is_max_context: score against every span j of the question.
        start_j = start[:, None, None, :]  # [B, 1, 1, K]
        end_j = start_j + span_len[:, None, None, :] - 1
        pos = doc_pos[..., None]  # [B, K, L, 1]
        contains = ((pos >= start_j) & (pos <= end_j) &
                    valid[:, None, None, :])
        score = (tf.cast(tf.minimum(pos - start_j, end_j - pos), tf.float64) +
                 0.01 * tf.cast(span_len[:, None, None, :], tf.float64))
        score = tf.where(contains, score, -float("inf"))  # [B, K, L, K]
        _, best = _first_argmax(score)
        is_max = in_doc & (best == k[:, :, None])

        as_int = lambda x: tf.cast(x, tf.int32)
        return {"valid": valid, "start": start, "length": span_len,
                "doc_offset": doc_offset, "input_ids": as_int(input_ids),
                "input_mask": as_int(real), "segment_ids": as_int(segment),
                "p_mask": as_int(p_mask), "is_max_context": is_max}

    # -- span choice --------------------------------------------------------

    def _filter(self, starts, ends, offset, span_len, is_max):
        """The original's filters on candidate (start, end) input positions
        [W, ...]; offset, span_len [W]; is_max [W, L]."""
        rank = len(starts.shape)
        expand = lambda x: tf.reshape(x, [-1] + [1] * (rank - 1))
        flat_starts = tf.reshape(starts, [tf.shape(starts)[0], -1])
        start_ok = tf.reshape(tf.gather(is_max, flat_starts, batch_dims=1),
                              tf.shape(starts))
        return (start_ok & (ends - expand(offset) < expand(span_len)) &
                (ends >= starts) &
                (ends - starts + 1 <= self.max_answer_length))

    def best_spans(self, outputs: dict, offset, span_len, is_max):
        """Per window: (score f64, start, end input positions) [W] of the
        best valid span, score -inf where none; plus cls_logits for v2."""
        neg_inf = tf.constant(-float("inf"), tf.float64)
        if not self.v2:
            # Rank real tokens only, as squad_metrics.predict_v1 (the
            # original's _get_best_indexes also ranks padding, which then
            # crowds real spans out of the n-best).
            width = tf.shape(outputs["start_logits"])[1]
            real = (tf.range(width)[None, :]
                    < tf.cast(offset + span_len + 1, tf.int32)[:, None])
            rank = lambda x: tf.where(real, tf.cast(x, tf.float64), neg_inf)
            start_values, start_index = tf.math.top_k(
                rank(outputs["start_logits"]), self.n_best_size)  # [W, n]
            end_values, end_index = tf.math.top_k(
                rank(outputs["end_logits"]), self.n_best_size)
            starts = tf.broadcast_to(start_index[:, :, None],
                                     [tf.shape(start_index)[0],
                                      self.n_best_size, self.n_best_size])
            ends = tf.broadcast_to(end_index[:, None, :], tf.shape(starts))
            scores = start_values[:, :, None] + end_values[:, None, :]
        else:
            k1, k2 = self.model.start_n_top, self.model.end_n_top
            start_index = outputs["start_top_index"]  # [W, K1]
            ends = tf.reshape(outputs["end_top_index"], [-1, k1, k2])
            starts = tf.broadcast_to(start_index[:, :, None], tf.shape(ends))
            scores = (
                tf.cast(outputs["start_top_log_probs"], tf.float64)[:, :, None]
                + tf.reshape(tf.cast(outputs["end_top_log_probs"],
                                     tf.float64), [-1, k1, k2]))
        ok = self._filter(starts, ends, offset, span_len, is_max)
        num = tf.shape(starts)[0]
        scores = tf.reshape(tf.where(ok, scores, neg_inf), [num, -1])
        best, index = _first_argmax(scores)  # Start-major, as the original.
        pick = lambda x: tf.gather(tf.reshape(x, [num, -1]), index[:, None],
                                   batch_dims=1)[:, 0]
        return best, pick(starts), pick(ends)

    # -- serve_qa -----------------------------------------------------------

    def serve_qa(self, question, context):
        question, context = serving_checks.checked(
            "serve_qa", [("question", question, ("B",)),
                         ("context", context, ("B",))])
        query_ids = self.tokenizer(question)[:, :self.max_query_length]
        doc_ids, tok_start, tok_end, is_ws = self.pieces(context)
        grid = self.windows(query_ids, doc_ids)
        where = tf.where(grid["valid"])  # [W, 2] (question, window)
        take = lambda name: tf.gather_nd(grid[name], where)
        rows = where[:, 0]
        outputs = self.serve(take("input_ids"), take("input_mask"),
                             take("segment_ids"),
                             take("p_mask") if self.v2 else None,
                             signature="serve_qa")
        offset = tf.gather(grid["doc_offset"], rows)  # [W]
        score, start, end = self.best_spans(
            outputs, offset, take("length"), take("is_max_context"))

        shape = tf.shape(grid["valid"], out_type=tf.int64)  # [B, K]
        to_grid = lambda x: tf.scatter_nd(where, x, shape)
        neg_inf = tf.constant(-float("inf"), tf.float64)
        window_score = tf.where(grid["valid"], to_grid(score), neg_inf)
        best_score, best_window = _first_argmax(window_score)  # [B]
        has_span = best_score > neg_inf
        pick = lambda x: tf.gather(x, best_window[:, None], batch_dims=1)[:, 0]
        window_start = pick(grid["start"])
        first_tok = window_start + pick(to_grid(start)) - grid["doc_offset"]
        last_tok = window_start + pick(to_grid(end)) - grid["doc_offset"]
        def take_tok(x, i):  # x [B, (P)] at i [B]; clipped where no span.
            dense = tf.pad(x.to_tensor(0), [[0, 0], [0, 1]])  # [B, P + 1]
            i = tf.clip_by_value(i, 0, tf.shape(dense)[1] - 1)
            return tf.gather(dense, i[:, None], batch_dims=1)[:, 0]

        first_char = take_tok(tok_start, first_tok)  # [B]
        last_char = take_tok(tok_end, last_tok)  # [B], inclusive

        # context[first_char:last_char + 1].strip(), as code point offsets.
        chars = tf.cast(tf.range(tf.shape(is_ws.to_tensor(True))[1]),
                        tf.int32)[None, :]  # [1, N]
        inside = ((chars >= first_char[:, None]) &
                  (chars <= last_char[:, None]) & ~is_ws.to_tensor(True))
        big = tf.int32.max
        strip_start = tf.reduce_min(tf.where(inside, chars, big), axis=1)
        strip_end = tf.reduce_max(tf.where(inside, chars, -1), axis=1) + 1
        non_blank = strip_end > 0
        start_char = tf.where(non_blank, strip_start, first_char)
        end_char = tf.where(non_blank, strip_end, first_char)

        result = {"score": tf.cast(best_score, tf.float32)}
        answered = has_span
        if self.v2:
            cls = tf.where(grid["valid"], to_grid(outputs["cls_logits"]),
                           float("inf"))
            null_score = tf.reduce_min(cls, axis=1)  # [B]
            has_answer = has_span & (tf.cast(null_score, tf.float64) <
                                     self.null_score_diff_threshold)
            result.update(null_score=null_score, has_answer=has_answer)
            answered = has_answer
        start_char = tf.where(answered, start_char, -1)
        end_char = tf.where(answered, end_char, -1)
        result["start_char"] = start_char
        result["end_char"] = end_char
        result["answer"] = tf.where(answered, tf.strings.substr(
            context, tf.maximum(start_char, 0), end_char - start_char,
            unit="UTF8_CHAR"), "")
        return result

    def signatures(self) -> dict:
        ids = [_IDS, _IDS, _IDS] + ([_IDS] if self.v2 else [])
        if self.v2:
            def serve(input_ids, input_mask, segment_ids, p_mask):
                return self.serve(input_ids, input_mask, segment_ids, p_mask)
        else:
            def serve(input_ids, input_mask, segment_ids):
                return self.serve(input_ids, input_mask, segment_ids)
        return {"serving_default": tf.function(serve, input_signature=ids),
                "serve_qa": tf.function(self.serve_qa,
                                        input_signature=[_TEXT, _TEXT])}


def _squad_module(model: keras.Model, *, spm_model_file: str,
                  do_lower_case: bool, max_seq_length: int, doc_stride: int,
                  max_query_length: int, max_answer_length: int,
                  n_best_size: int, version_2_with_negative: bool,
                  start_n_top: int, end_n_top: int,
                  null_score_diff_threshold: float) -> _SquadModule:
    """Checks the settings and builds the signatures' module."""
    if version_2_with_negative != isinstance(model, AlbertSquadV2):
        raise ValueError(
            f"version_2_with_negative={version_2_with_negative} but the "
            f"model is a {type(model).__name__} (v1 needs "
            f"AlbertSpanLabeler, v2 AlbertSquadV2)")
    if not isinstance(model, (AlbertSpanLabeler, AlbertSquadV2)):
        raise ValueError(f"export_squad needs an AlbertSpanLabeler or "
                         f"AlbertSquadV2, got {type(model).__name__}")
    if not spm_model_file:
        raise ValueError("export_squad needs spm_model_file: serve_qa "
                         "tokenizes raw text in the graph")
    export._check_max_seq_length(model, max_seq_length)
    if max_seq_length <= max_query_length + 3:
        raise ValueError(
            f"The max_seq_length ({max_seq_length}) must be greater than "
            f"max_query_length ({max_query_length}) + 3")
    for name, value in (("doc_stride", doc_stride),
                        ("max_query_length", max_query_length),
                        ("max_answer_length", max_answer_length),
                        ("n_best_size", n_best_size)):
        if value < 1:
            raise ValueError(f"{name}={value} must be >= 1")
    if version_2_with_negative and (start_n_top, end_n_top) != (
            model.start_n_top, model.end_n_top):
        raise ValueError(
            f"start_n_top={start_n_top}, end_n_top={end_n_top} differ from "
            f"the model's beam ({model.start_n_top}, {model.end_n_top})")
    tokenizer, _ = export._tokenizer(spm_model_file, do_lower_case,
                                     model.config.vocab_size)
    with tf.io.gfile.GFile(spm_model_file, "rb") as f:
        pieces = _ContextPieces(tokenizer, f.read())
    module = _SquadModule(
        model, tokenizer, pieces,
        version_2_with_negative=version_2_with_negative,
        max_seq_length=max_seq_length, doc_stride=doc_stride,
        max_query_length=max_query_length,
        max_answer_length=max_answer_length, n_best_size=n_best_size,
        null_score_diff_threshold=null_score_diff_threshold)
    return module


def export_squad(model: keras.Model, export_dir: str, *,
                 spm_model_file: str, do_lower_case: bool,
                 max_seq_length: int = 384, doc_stride: int = 128,
                 max_query_length: int = 64, max_answer_length: int = 30,
                 n_best_size: int = 20, version_2_with_negative: bool = False,
                 start_n_top: int = 5, end_n_top: int = 5,
                 null_score_diff_threshold: float = 0.0) -> str:
    """Writes a SQuAD SavedModel (AlbertSpanLabeler or AlbertSquadV2).

    `serve_qa`: question [B], context [B] (UTF-8 strings) ->
      answer      string [B], `context[start_char:end_char]`;
      start_char  int32 [B], Unicode code point offset into the context as
                  given (not bytes), of the answer's first character;
      end_char    int32 [B], code point offset just past its last one
                  (exclusive), so `context[start_char:end_char] == answer`
                  in Python;
      score       float32 [B], the span's start + end logit (v1) or log
                  probability (v2), -inf when no span passes the filters;
      v2 only: null_score float32 [B] (min over windows of cls_logits) and
      has_answer bool [B] (null_score < null_score_diff_threshold, the
      original's rule). When there is no answer (v2 null, or no valid span;
      the original's v1 writes the nonce text "empty" there) answer is ""
      and start_char = end_char = -1.
    `serving_default`: the model on ids (input_ids, input_mask,
      segment_ids, and p_mask for v2, int32 [B, L]) -> the head's outputs.

    Loading needs `import tensorflow_text` (the SentencePiece ops).
    """
    module = _squad_module(
        model, spm_model_file=spm_model_file, do_lower_case=do_lower_case,
        max_seq_length=max_seq_length, doc_stride=doc_stride,
        max_query_length=max_query_length,
        max_answer_length=max_answer_length, n_best_size=n_best_size,
        version_2_with_negative=version_2_with_negative,
        start_n_top=start_n_top, end_n_top=end_n_top,
        null_score_diff_threshold=null_score_diff_threshold)
    return export._save(
        module, export_dir, module.signatures(),
        spm_model_file=spm_model_file, do_lower_case=do_lower_case,
        max_seq_length=max_seq_length, doc_stride=doc_stride,
        max_query_length=max_query_length,
        version_2_with_negative=version_2_with_negative)
