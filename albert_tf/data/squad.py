"""SQuAD v1.1/v2.0: JSON reader, the original's feature conversion, caches.

Facts from google-research/albert `squad_utils.py` (`read_squad_examples`,
`convert_examples_to_features`, `_lcs_match`, `_convert_index`,
`_check_is_max_context`, `FeatureWriter`) and `run_squad_v1.py` /
`run_squad_v2.py`. The features are the original's number for number:

* question: `preprocess_text` then `encode_ids`, cut to max_query_length;
* context: `preprocess_text` then `encode_pieces`; the pieces (with `▁` read
  as a space) are aligned to the raw context characters by the original's
  banded longest-common-subsequence (band |n - m| + 5, doubled once when
  under 80% of the characters match; a paragraph that still fails is
  skipped, "MISMATCH DETECTED"), and unaligned positions go through the
  `_convert_index` rules;
* windows of `max_seq_length - len(query) - 3` tokens every `doc_stride`,
  `[CLS] query [SEP] window [SEP]`, p_mask, the max-context rule,
  unique ids from 1000000000 in order;
* training: answer outside the window -> positions 0 ([CLS]) and
  is_impossible = 1; v2 impossible questions likewise.

Differences, all loud:

* A training answer whose `answer_start` does not point at its text (or
  is empty) is skipped with a warning naming the question, and counted;
  the original used the offsets blindly. Skipping happens at conversion,
  after the original's `random.Random(12345)` shuffle of *all* examples,
  so the other examples keep the original's order.
* The eval bookkeeping the original pickles into predict_feature_left_file
  is JSON here (`write_features(..., eval_features_file=...)`,
  `read_eval_features`): a cache handed to a user is never unpickled.
* Conversion streams: features are written as they are made, by
  `num_workers` processes whose results are reassembled in order, so the
  output bytes do not depend on num_workers. The LCS runs in a tight
  banded loop (the original called `preprocess_text` per cell) and a
  paragraph's alignment is reused by its consecutive questions.

Legend: L = max_seq_length.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import multiprocessing
import random
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

from absl import logging
import numpy as np
import sentencepiece as spm
import tensorflow as tf

from albert_tf import fileio
from albert_tf.data import features as features_lib
from albert_tf.data import finetune_input
from albert_tf.data.create_pretraining import ordered_map
from albert_tf.tokenization import text as text_lib

CLS, SEP = "[CLS]", "[SEP]"
FIRST_UNIQUE_ID = 1000000000  # As the original's convert_examples_to_features.
TRAIN_SHUFFLE_SEED = 12345  # run_squad_v*.py: random.Random(12345).shuffle.
EVAL_FEATURES_FORMAT = "albert_tf.squad_eval_features"
EVAL_FEATURES_VERSION = 1
_CHUNK_EXAMPLES = 32  # Examples per worker task.
_LOG_FIRST = 3  # Features logged in full, as the original's first 20.


@dataclasses.dataclass(frozen=True)
class SquadExample:
    """One question. start_position is a character offset into the context.

    Training: orig_answer_text/start_position are the single gold answer
    (v2 impossible: "" and -1). Eval: they are None and `answers` holds
    every gold answer text (empty for v2 impossible questions).
    """

    qas_id: str
    question_text: str
    paragraph_text: str
    orig_answer_text: Optional[str] = None
    start_position: Optional[int] = None
    is_impossible: bool = False
    answers: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class FeatureOptions:
    """The original's conversion flags (run_squad_v1/v2 defaults)."""

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    do_lower_case: bool = True

    def __post_init__(self):
        if self.max_seq_length <= self.max_query_length + 3:
            raise ValueError(
                f"The max_seq_length ({self.max_seq_length}) must be greater "
                f"than max_query_length ({self.max_query_length}) + 3")
        if self.doc_stride < 1:
            raise ValueError(f"doc_stride={self.doc_stride} must be >= 1")
        if self.max_query_length < 1:
            raise ValueError(
                f"max_query_length={self.max_query_length} must be >= 1")


@dataclasses.dataclass(slots=True)
class SquadFeature:
    """One window of one example (the original's InputFeatures).

    tokens, tok_*_to_orig_index and token_is_max_context cover the real
    tokens / the window's context tokens only (no padding); context token
    i sits at input position doc_offset + i. tokens is filled for eval only.
    """

    unique_id: int
    example_index: int
    doc_span_index: int
    doc_offset: int
    tokens: list
    tok_start_to_orig_index: list
    tok_end_to_orig_index: list
    token_is_max_context: list
    input_ids: list  # [L]
    input_mask: list  # [L]
    segment_ids: list  # [L]
    p_mask: list  # [L] 1 = query / [SEP] / pad, 0 = [CLS] + context.
    paragraph_len: int
    start_position: Optional[int] = None
    end_position: Optional[int] = None
    is_impossible: bool = False

    def eval_record(self) -> dict:
        """The JSON bookkeeping squad_metrics needs for this feature."""
        return {"unique_id": self.unique_id,
                "example_index": self.example_index,
                "doc_span_index": self.doc_span_index,
                "doc_offset": self.doc_offset,
                "paragraph_len": self.paragraph_len,
                "tokens": self.tokens,
                "tok_start_to_orig_index": self.tok_start_to_orig_index,
                "tok_end_to_orig_index": self.tok_end_to_orig_index,
                "token_is_max_context": [int(v) for v in
                                         self.token_is_max_context]}


@dataclasses.dataclass
class ConversionStats:
    """Counts logged at the end of a conversion (and returned)."""

    num_examples: int = 0
    num_features: int = 0
    num_positive: int = 0  # Windows containing the answer (training).
    num_negative: int = 0  # Windows without it, or v2 impossible.
    num_skipped_alignment: int = 0  # The original's "MISMATCH DETECTED".
    num_skipped_answer: int = 0  # answer_start does not match its text.


# --- Reading ----------------------------------------------------------------

def _field(obj: Any, key: str, kind: type, path: str, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f"{path}: {where}: missing key {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) != (
            kind is bool):
        raise ValueError(f"{path}: {where}: {key!r} should be "
                         f"{kind.__name__}, got {type(value).__name__}")
    return value


def read_squad_examples(input_file: str,
                        is_training: bool) -> list[SquadExample]:
    """A SQuAD v1.1 or v2.0 JSON file -> examples, in file order.

    As the original: training needs exactly one answer per answerable
    question; v2's `is_impossible` questions get text "" and start -1.
    Every field must have its JSON type (a string "false" is not a
    boolean), and ids must be unique: predictions are keyed by id, so a
    duplicate would silently overwrite another question's answer. Errors
    name the file, the question id and the field.
    """
    data = fileio.read_json(input_file)
    entries = _field(data, "data", list, input_file, "top level")
    examples = []
    seen: dict[str, str] = {}  # id -> where it first appeared.
    for a, entry in enumerate(entries):
        paragraphs = _field(entry, "paragraphs", list, input_file,
                            f"data[{a}]")
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(paragraph, "context", str, input_file, where)
            for q, qa in enumerate(_field(paragraph, "qas", list,
                                          input_file, where)):
                example = _read_qa(qa, context, is_training, input_file,
                                   f"{where}.qas[{q}]")
                here = f"{where}.qas[{q}]"
                if example.qas_id in seen:
                    raise ValueError(
                        f"{input_file}: question id {example.qas_id!r} "
                        f"appears twice, at {seen[example.qas_id]} and at "
                        f"{here}; ids must be unique (predictions are "
                        f"keyed by id)")
                seen[example.qas_id] = here
                examples.append(example)
    return examples


def _read_qa(qa: Any, context: str, is_training: bool, path: str,
             where: str) -> SquadExample:
    qas_id = _field(qa, "id", str, path, where)
    where = f"question {qas_id!r}"
    question = _field(qa, "question", str, path, where)
    is_impossible = False
    if isinstance(qa, dict) and "is_impossible" in qa:
        is_impossible = _field(qa, "is_impossible", bool, path, where)
    answers = _field(qa, "answers", list, path, where)
    texts = tuple(_field(ans, "text", str, path, f"{where}: answers[{i}]")
                  for i, ans in enumerate(answers))
    if not is_training:
        return SquadExample(qas_id, question, context,
                            is_impossible=is_impossible, answers=texts)
    if len(answers) != 1 and not is_impossible:
        raise ValueError(
            f"{path}: {where}: For training, each question should have "
            f"exactly 1 answer (it has {len(answers)}).")
    if is_impossible:
        return SquadExample(qas_id, question, context, "", -1, True)
    start = _field(answers[0], "answer_start", int, path,
                   f"{where}: answers[0]")
    return SquadExample(qas_id, question, context, texts[0], start, False,
                        texts)


def example_from_qa(qa: Mapping, context: str, is_training: bool,
                    where: str) -> SquadExample:
    """One question in the JSON layout ({"id", "question", "answers",
    "is_impossible"}) on `context`, checked as read_squad_examples checks
    a file's: for callers holding the data in memory (the Keras task)."""
    return _read_qa(qa, context, is_training, "input", where)


def shuffle_training_examples(examples: Sequence[SquadExample],
                              seed: int = TRAIN_SHUFFLE_SEED
                              ) -> list[SquadExample]:
    """The original's pre-shuffle (run_squad_v*.py), on a copy."""
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    return shuffled


# --- Alignment (squad_utils._lcs_match / _convert_index) --------------------

def _lcs_backpointers(orig_chars: Sequence[str], tok_text: str,
                      max_dist: int) -> tuple[float, bytearray]:
    """The original's banded LCS table: (f[n-1, m-1], g).

    Row i covers j in [i - max_dist, i + max_dist) (k = j - i + max_dist);
    g[i * W + k] is 0 (from above), 1 (from the left), 2 (match) or 3
    (unset: the original's `(i, j) not in g`). The update order and strict
    comparisons are the original's, so ties break the same way.
    """
    n, m, width = len(orig_chars), len(tok_text), 2 * max_dist
    g = bytearray(b"\x03") * (n * width)
    prev = [0] * (width + 1)  # Row i-1; index width is always 0.
    for i in range(n):
        char = orig_chars[i]
        low = i - max_dist
        cur = [0] * (width + 1)
        base = i * width
        left = 0
        for k in range(max(0, -low), min(width, m - low)):
            j = low + k
            if i > 0:
                value, move = prev[k + 1], 0
            else:
                value, move = 0, 3
            if j > 0 and left > value:
                value, move = left, 1
            if char == tok_text[j]:
                diagonal = prev[k] if (i > 0 and j > 0) else 0
                if diagonal + 1 > value:
                    value, move = diagonal + 1, 2
            cur[k] = left = value
            g[base + k] = move
        prev = cur
    last_k = (m - 1) - (n - 1) + max_dist
    return (prev[last_k] if 0 <= last_k < width else 0), g


def lcs_alignment(paragraph_text: str, tok_text: str, do_lower_case: bool
                  ) -> Optional[tuple[list, list]]:
    """(orig_to_chartok, chartok_to_orig) index lists, or None on mismatch.

    Each raw character is compared after `preprocess_text` on its own (no
    space removal), so characters that it rewrites to something else, or
    to several characters, or drops, stay unaligned (None).
    """
    n, m = len(paragraph_text), len(tok_text)
    if n == 0 or m == 0:
        return None
    orig_chars = [text_lib.preprocess_text(c, lower=do_lower_case,
                                           remove_space=False)
                  for c in paragraph_text]
    max_dist = abs(n - m) + 5
    for _ in range(2):
        score, g = _lcs_backpointers(orig_chars, tok_text, max_dist)
        if score > 0.8 * n:
            break
        max_dist *= 2
    else:
        max_dist //= 2  # The table in hand is the last one computed.
    width = 2 * max_dist
    orig_to_chartok: list = [None] * n
    chartok_to_orig: list = [None] * m
    i, j = n - 1, m - 1
    while i >= 0 and j >= 0:
        k = j - i + max_dist
        move = g[i * width + k] if 0 <= k < width else 3
        if move == 3:
            break
        if move == 2:
            orig_to_chartok[i] = j
            chartok_to_orig[j] = i
            i, j = i - 1, j - 1
        elif move == 1:
            j -= 1
        else:
            i -= 1
    if all(v is None for v in orig_to_chartok) or score < 0.8 * n:
        return None
    return orig_to_chartok, chartok_to_orig


def convert_index(index: Sequence[Optional[int]], pos: int,
                  m: Optional[int] = None, is_start: bool = True) -> int:
    """squad_utils._convert_index: an unaligned position -> a neighbour's.

    A start takes the position just after the aligned one before it, an
    end the one just before the aligned one after it (clamped to [0, m-1]
    at the edges when m is given), as the original.
    """
    if index[pos] is not None:
        return index[pos]
    n = len(index)
    rear = pos
    while rear < n - 1 and index[rear] is None:
        rear += 1
    front = pos
    while front > 0 and index[front] is None:
        front -= 1
    if index[front] is None and index[rear] is None:
        raise ValueError(f"no aligned position around {pos}")
    if index[front] is None:
        if index[rear] >= 1:
            return 0 if is_start else index[rear] - 1
        return index[rear]
    if index[rear] is None:
        if m is not None and index[front] < m - 1:
            return index[front] + 1 if is_start else m - 1
        return index[front]
    if index[rear] > index[front] + 1:
        return index[front] + 1 if is_start else index[rear] - 1
    return index[rear] if is_start else index[front]


@dataclasses.dataclass(frozen=True)
class _Paragraph:
    """A context's pieces and their alignment to the raw characters."""

    doc_ids: list
    doc_pieces: list
    tok_start_to_orig_index: list
    tok_end_to_orig_index: list
    orig_to_chartok_index: list
    chartok_to_tok_index: list


def align_paragraph(sp_model: spm.SentencePieceProcessor,
                    paragraph_text: str,
                    do_lower_case: bool) -> Optional[_Paragraph]:
    """Pieces of a context and their character spans, or None (mismatch)."""
    pieces = text_lib.encode_pieces(
        sp_model, text_lib.preprocess_text(paragraph_text,
                                           lower=do_lower_case))
    chartok_to_tok_index: list = []
    tok_start_to_chartok: list = []
    tok_end_to_chartok: list = []
    char_count = 0
    for i, piece in enumerate(pieces):
        length = len(piece)  # "▁" -> " " keeps the length.
        chartok_to_tok_index.extend([i] * length)
        tok_start_to_chartok.append(char_count)
        char_count += length
        tok_end_to_chartok.append(char_count - 1)
    tok_text = "".join(pieces).replace(text_lib.SPIECE_UNDERLINE, " ")
    alignment = lcs_alignment(paragraph_text, tok_text, do_lower_case)
    if alignment is None:
        return None
    orig_to_chartok, chartok_to_orig = alignment
    n = len(paragraph_text)
    starts = [convert_index(chartok_to_orig, p, n, is_start=True)
              for p in tok_start_to_chartok]
    ends = [convert_index(chartok_to_orig, p, n, is_start=False)
            for p in tok_end_to_chartok]
    return _Paragraph([sp_model.PieceToId(p) for p in pieces], pieces,
                      starts, ends, orig_to_chartok, chartok_to_tok_index)


# --- Windows and features ---------------------------------------------------

def doc_spans(num_tokens: int, max_tokens_for_doc: int,
              doc_stride: int) -> list[tuple[int, int]]:
    """(start, length) windows, as the original's sliding window."""
    spans = []
    start = 0
    while start < num_tokens:
        length = min(num_tokens - start, max_tokens_for_doc)
        spans.append((start, length))
        if start + length == num_tokens:
            break
        start += min(length, doc_stride)
    return spans


def is_max_context(spans: Sequence[tuple[int, int]], span_index: int,
                   position: int) -> bool:
    """squad_utils._check_is_max_context: the window where the token has
    the most context on its shorter side (+ 0.01 * window length); the
    first such window wins ties."""
    best_score, best_index = None, None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, index
    return span_index == best_index


def _answer_matches(example: SquadExample) -> bool:
    text, start = example.orig_answer_text, example.start_position
    return (bool(text) and 0 <= start and
            example.paragraph_text[start:start + len(text)] == text)


def example_features(example: SquadExample, example_index: int,
                     sp_model: spm.SentencePieceProcessor,
                     options: FeatureOptions, is_training: bool,
                     paragraph: Optional[_Paragraph] = None
                     ) -> tuple[str, list[SquadFeature]]:
    """One example -> ("ok" | "alignment" | "answer", features).

    unique_id is left at 0: the caller numbers features in order.
    `paragraph` is align_paragraph's result for this context, if known.
    """
    if is_training and not example.is_impossible and not _answer_matches(
            example):
        return "answer", []
    lower = options.do_lower_case
    query_ids = text_lib.encode_ids(
        sp_model, text_lib.preprocess_text(example.question_text,
                                           lower=lower))
    query_ids = query_ids[:options.max_query_length]
    if paragraph is None:
        paragraph = align_paragraph(sp_model, example.paragraph_text, lower)
    if paragraph is None:
        return "alignment", []

    tok_start = tok_end = None
    if is_training and example.is_impossible:
        tok_start = tok_end = 0
    elif is_training:
        start = example.start_position
        end = start + len(example.orig_answer_text) - 1
        orig_to_chartok = paragraph.orig_to_chartok_index
        tok_start = paragraph.chartok_to_tok_index[
            convert_index(orig_to_chartok, start, is_start=True)]
        tok_end = paragraph.chartok_to_tok_index[
            convert_index(orig_to_chartok, end, is_start=False)]
        if tok_start > tok_end:  # The original asserts here.
            return "answer", []

    cls_id, sep_id = sp_model.PieceToId(CLS), sp_model.PieceToId(SEP)
    max_tokens_for_doc = options.max_seq_length - len(query_ids) - 3
    spans = doc_spans(len(paragraph.doc_ids), max_tokens_for_doc,
                      options.doc_stride)
    doc_offset = len(query_ids) + 2
    length_l = options.max_seq_length
    features = []
    for span_index, (span_start, span_length) in enumerate(spans):
        span_end = span_start + span_length  # Exclusive.
        input_ids = ([cls_id] + query_ids + [sep_id] +
                     paragraph.doc_ids[span_start:span_end] + [sep_id])
        num_real = len(input_ids)
        num_pad = length_l - num_real
        input_ids += [0] * num_pad
        input_mask = [1] * num_real + [0] * num_pad
        segment_ids = ([0] * doc_offset + [1] * (span_length + 1) +
                       [0] * num_pad)
        p_mask = ([0] + [1] * (doc_offset - 1) + [0] * span_length +
                  [1] * (num_pad + 1))
        feature = SquadFeature(
            unique_id=0, example_index=example_index,
            doc_span_index=span_index, doc_offset=doc_offset, tokens=[],
            tok_start_to_orig_index=paragraph.tok_start_to_orig_index[
                span_start:span_end],
            tok_end_to_orig_index=paragraph.tok_end_to_orig_index[
                span_start:span_end],
            token_is_max_context=[is_max_context(spans, span_index, p)
                                  for p in range(span_start, span_end)],
            input_ids=input_ids, input_mask=input_mask,
            segment_ids=segment_ids, p_mask=p_mask, paragraph_len=num_real,
            is_impossible=example.is_impossible)
        if is_training:
            if (not example.is_impossible and tok_start >= span_start and
                    tok_end < span_end):
                feature.start_position = tok_start - span_start + doc_offset
                feature.end_position = tok_end - span_start + doc_offset
            else:
                # Answer outside this window (or none): point at [CLS].
                feature.start_position = feature.end_position = 0
                feature.is_impossible = True
        else:
            feature.tokens = [sp_model.IdToPiece(t)
                              for t in input_ids[:num_real]]
        features.append(feature)
    return "ok", features


# --- Parallel conversion ----------------------------------------------------

_WORKER: dict = {}


def _init_worker(model_proto: bytes, options: FeatureOptions,
                 is_training: bool) -> None:
    sp_model = spm.SentencePieceProcessor()
    sp_model.LoadFromSerializedProto(model_proto)
    _WORKER.update(sp_model=sp_model, options=options,
                   is_training=is_training, last=(None, None))


def _convert_chunk(args: tuple[int, list[SquadExample]]) -> list:
    """(first example index, examples) -> [(status, features)] in order.

    Consecutive questions on one context reuse its alignment.
    """
    first_index, examples = args
    sp_model, options = _WORKER["sp_model"], _WORKER["options"]
    out = []
    for offset, example in enumerate(examples):
        last_text, paragraph = _WORKER["last"]
        if example.paragraph_text != last_text:
            paragraph = align_paragraph(sp_model, example.paragraph_text,
                                        options.do_lower_case)
            _WORKER["last"] = (example.paragraph_text, paragraph)
        if paragraph is None:
            out.append(("alignment", []))
            continue
        out.append(example_features(example, first_index + offset, sp_model,
                                    options, _WORKER["is_training"],
                                    paragraph))
    return out


def _chunks(examples: Iterable[SquadExample]) -> Iterator[tuple[int, list]]:
    chunk: list = []
    first = 0
    for index, example in enumerate(examples):
        if not chunk:
            first = index
        chunk.append(example)
        if len(chunk) == _CHUNK_EXAMPLES:
            yield first, chunk
            chunk = []
    if chunk:
        yield first, chunk


def _sp_model(tokenizer) -> spm.SentencePieceProcessor:
    sp_model = getattr(tokenizer, "sp_model", tokenizer)
    if not isinstance(sp_model, spm.SentencePieceProcessor):
        raise ValueError(
            "SQuAD conversion needs a SentencePiece model (--spm_model_file), "
            "as the original squad_utils; got a tokenizer without sp_model")
    return sp_model


def convert_examples_to_features(
        examples: Iterable[SquadExample], tokenizer, options: FeatureOptions,
        is_training: bool, num_workers: int = 1,
        stats: Optional[ConversionStats] = None) -> Iterator[SquadFeature]:
    """Streams features with unique ids from 1000000000, in example order.

    `tokenizer` is a FullTokenizer built from an spm model (or the
    SentencePieceProcessor itself). With num_workers > 1 examples are
    converted by a process pool in chunks; at most a few chunks are in
    flight, and the output is identical to num_workers = 1. Skipped
    examples are counted in `stats` and logged.
    """
    if num_workers < 1:
        raise ValueError(f"num_workers={num_workers} must be >= 1")
    sp_model = _sp_model(tokenizer)
    stats = stats if stats is not None else ConversionStats()
    init_args = (sp_model.serialized_model_proto(), options, is_training)
    pool = None
    if num_workers == 1:
        _WORKER.update(sp_model=sp_model, options=options,
                       is_training=is_training, last=(None, None))
    else:
        method = ("fork" if "fork" in multiprocessing.get_all_start_methods()
                  else "spawn")
        pool = multiprocessing.get_context(method).Pool(
            num_workers, initializer=_init_worker, initargs=init_args)
    unique_id = FIRST_UNIQUE_ID
    submitted: collections.deque = collections.deque()

    def remember(items):  # Chunks in submission (= result) order.
        for item in items:
            submitted.append(item[1])
            yield item

    try:
        for chunk_result in ordered_map(pool, _convert_chunk,
                                        remember(_chunks(examples)),
                                        max_in_flight=4 * num_workers):
            chunk = submitted.popleft()
            for example, (status, feats) in zip(chunk, chunk_result):
                stats.num_examples += 1
                if status != "ok":
                    _log_skip(status, example, stats)
                    continue
                for feature in feats:
                    feature.unique_id = unique_id
                    unique_id += 1
                    stats.num_features += 1
                    if is_training and feature.is_impossible:
                        stats.num_negative += 1
                    else:
                        stats.num_positive += 1
                    if stats.num_features <= _LOG_FIRST:
                        _log_feature(feature, example, sp_model)
                    yield feature
            if stats.num_examples % 10000 < len(chunk):
                logging.info("Converted %d examples: %s", stats.num_examples,
                             stats)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    logging.info("SQuAD features: %s", stats)
    if stats.num_skipped_answer or stats.num_skipped_alignment:
        logging.warning(
            "Skipped %d of %d examples: %d whose answer_start does not "
            "match the answer text, %d whose context could not be aligned "
            "to its pieces (the original's MISMATCH DETECTED)",
            stats.num_skipped_answer + stats.num_skipped_alignment,
            stats.num_examples, stats.num_skipped_answer,
            stats.num_skipped_alignment)


def _log_skip(status: str, example: SquadExample,
              stats: ConversionStats) -> None:
    if status == "answer":
        stats.num_skipped_answer += 1
        logging.warning(
            "Skipping training question %r: answer_start %r does not point "
            "at its answer text %r (or the text is empty)", example.qas_id,
            example.start_position, example.orig_answer_text)
    else:
        stats.num_skipped_alignment += 1
        logging.warning(
            "Skipping question %r: MISMATCH DETECTED (its context could not "
            "be aligned to its SentencePiece pieces)", example.qas_id)


def _log_feature(feature: SquadFeature, example: SquadExample,
                 sp_model: spm.SentencePieceProcessor) -> None:
    length = feature.paragraph_len
    pieces = [sp_model.IdToPiece(t) for t in feature.input_ids[:length]]
    logging.info("unique_id %d, question %r, window %d: %s",
                 feature.unique_id, example.qas_id, feature.doc_span_index,
                 " ".join(pieces))
    if feature.start_position is not None and not feature.is_impossible:
        answer = sp_model.DecodePieces(
            pieces[feature.start_position:feature.end_position + 1])
        logging.info("  positions %d-%d: %r", feature.start_position,
                     feature.end_position, answer)


# --- Files ------------------------------------------------------------------

def _tfrecord_values(feature: SquadFeature, is_training: bool) -> dict:
    values = {"unique_ids": [feature.unique_id],
              "input_ids": feature.input_ids,
              "input_mask": feature.input_mask,
              "segment_ids": feature.segment_ids,
              "p_mask": feature.p_mask}
    if is_training:
        values["start_positions"] = [feature.start_position]
        values["end_positions"] = [feature.end_position]
        values["is_impossible"] = [int(feature.is_impossible)]
    return values


def write_features(examples: Iterable[SquadExample], tokenizer,
                   options: FeatureOptions, is_training: bool,
                   feature_file: str,
                   eval_features_file: Optional[str] = None,
                   num_workers: int = 1,
                   metadata: Optional[Mapping[str, Any]] = None,
                   source: Optional[str] = None) -> ConversionStats:
    """Converts examples and writes the original's TFRecord schema.

    feature_file gets features.SQUAD (unique_ids, input_ids, input_mask,
    segment_ids, p_mask; plus start_positions, end_positions,
    is_impossible when training), as the original FeatureWriter.
    eval_features_file (predict_feature_left_file) gets the JSON
    bookkeeping read by `read_eval_features`; `metadata` (e.g. source
    fingerprints) is stored in its header. Both files are written to
    temporary names and renamed, so a killed run leaves no partial cache.
    No feature at all is an error naming `source` (the JSON file), how
    many examples were skipped and why, and nothing is renamed into place.
    """
    stats = ConversionStats()
    tmp = fileio.temp_path(feature_file)
    tmp_eval = fileio.temp_path(eval_features_file or feature_file + ".e")
    try:
        eval_out = None
        if eval_features_file:
            eval_out = tf.io.gfile.GFile(tmp_eval, "w")
            header = {"format": EVAL_FEATURES_FORMAT,
                      "version": EVAL_FEATURES_VERSION,
                      "settings": dataclasses.asdict(options),
                      "metadata": dict(metadata or {})}
            eval_out.write(json.dumps(header)[:-1] + ', "features": [\n')
        with tf.io.TFRecordWriter(tmp) as writer:
            for feature in convert_examples_to_features(
                    examples, tokenizer, options, is_training, num_workers,
                    stats):
                writer.write(features_lib.encode_example(
                    features_lib.SQUAD, _tfrecord_values(feature,
                                                         is_training)))
                if eval_out is not None:
                    eval_out.write(("" if stats.num_features == 1 else ",\n")
                                   + json.dumps(feature.eval_record()))
        if not stats.num_features:
            raise ValueError(no_features_message(source or feature_file,
                                                 stats, is_training))
        if eval_out is not None:
            eval_out.write('\n], "num_examples": %d, "num_features": %d}\n'
                           % (stats.num_examples, stats.num_features))
            eval_out.close()
            eval_out = None
            tf.io.gfile.rename(tmp_eval, eval_features_file, overwrite=True)
        tf.io.gfile.rename(tmp, feature_file, overwrite=True)
    finally:
        if eval_out is not None:
            eval_out.close()
        for path in (tmp, tmp_eval):
            if tf.io.gfile.exists(path):
                tf.io.gfile.remove(path)
    logging.info("Wrote %d features of %d examples to %s%s",
                 stats.num_features, stats.num_examples, feature_file,
                 f" and {eval_features_file}" if eval_features_file else "")
    return stats


def no_features_message(source: str, stats: ConversionStats,
                        is_training: bool) -> str:
    """Why a file gave no feature: its count of examples, how many were
    skipped, and the most common reason."""
    use = "train on" if is_training else "predict"
    if not stats.num_examples:
        return f"{source}: no questions in the file; nothing to {use}"
    reasons = sorted([
        (stats.num_skipped_answer, "answer_start does not point at the "
         "answer text (or the text is empty)"),
        (stats.num_skipped_alignment, "the context could not be aligned to "
         "its SentencePiece pieces (the original's MISMATCH DETECTED)")],
        reverse=True)
    count, reason = reasons[0]
    skipped = stats.num_skipped_answer + stats.num_skipped_alignment
    return (f"{source}: no features from its {stats.num_examples} questions "
            f"({skipped} skipped; most common reason, {count} questions: "
            f"{reason}); nothing to {use}. The skipped questions are named "
            f"in the warnings above.")


def read_eval_features(path: str,
                       options: Optional[FeatureOptions] = None
                       ) -> list[dict]:
    """The eval bookkeeping written by write_features, checked.

    Raises ValueError naming the file if it is not such a file, is
    incomplete, or was made with other settings than `options`.
    """
    value = fileio.read_json(path)
    if not isinstance(value, dict) or value.get(
            "format") != EVAL_FEATURES_FORMAT:
        raise ValueError(f"{path}: not an albert_tf SQuAD eval-features file "
                         f"(expected format {EVAL_FEATURES_FORMAT!r}; the "
                         "original's pickles are not read)")
    if value.get("version") != EVAL_FEATURES_VERSION:
        raise ValueError(f"{path}: version {value.get('version')!r}, "
                         f"expected {EVAL_FEATURES_VERSION}")
    feats = value.get("features")
    if not isinstance(feats, list) or value.get("num_features") != len(
            feats):
        raise ValueError(f"{path}: incomplete (num_features "
                         f"{value.get('num_features')!r}, read "
                         f"{len(feats) if isinstance(feats, list) else 0})")
    if options is not None:
        expected = dataclasses.asdict(options)
        diffs = {k: (value["settings"].get(k), v) for k, v in expected.items()
                 if value["settings"].get(k) != v}
        if diffs:
            raise ValueError(
                f"{path} was written with other settings: " + ", ".join(
                    f"{k}={old!r} (now {new!r})"
                    for k, (old, new) in sorted(diffs.items())))
    return feats


def eval_features_metadata(path: str) -> dict:
    """The header of an eval-features file (settings, metadata, counts)."""
    value = fileio.read_json(path)
    return {k: v for k, v in value.items() if k != "features"}


def write_train_features(train_file: str, tokenizer, options: FeatureOptions,
                         train_feature_file: str, num_workers: int = 1
                         ) -> tuple[int, ConversionStats]:
    """read + the original's shuffle + write. Returns (number of examples
    read, which the original divides by the batch size for its step count,
    and the conversion stats)."""
    examples = read_squad_examples(train_file, is_training=True)
    stats = write_features(shuffle_training_examples(examples), tokenizer,
                           options, True, train_feature_file,
                           num_workers=num_workers, source=train_file)
    return len(examples), stats


def feature_spec(max_seq_length: int, is_training: bool,
                 version_2_with_negative: bool) -> dict:
    """tf.io parse spec of the original input_fn_builder (p_mask: v2 only)."""
    schema = collections.OrderedDict(features_lib.SQUAD)
    if not version_2_with_negative:
        del schema["p_mask"]
    if not is_training:
        for name in features_lib.SQUAD_TRAINING_ONLY:
            del schema[name]
    return features_lib.to_tf_spec(schema, L=max_seq_length)


def feature_arrays(features: Sequence[SquadFeature], max_seq_length: int,
                   is_training: bool, version_2_with_negative: bool
                   ) -> dict:
    """Features -> int32 arrays [N, ...]: what make_dataset yields from the
    TFRecords write_features makes of them, held in memory instead."""
    spec = feature_spec(max_seq_length, is_training, version_2_with_negative)
    rows = [_tfrecord_values(feature, is_training) for feature in features]
    return {name: np.asarray([row[name] for row in rows], np.int32).reshape(
                [len(rows), *spec[name].shape]) for name in spec}


# The [B, L] features that dynamic padding cuts (p_mask: v2 only).
SEQUENCE_FEATURES = ("input_ids", "input_mask", "segment_ids", "p_mask")


def make_dataset(path: str, max_seq_length: int, batch_size: int,
                 is_training: bool, version_2_with_negative: bool,
                 drop_remainder: bool = False,
                 input_context: Optional[tf.distribute.InputContext] = None,
                 seed: Optional[int] = None,
                 pad_to_multiple: int = 0) -> tf.data.Dataset:
    """Cached features -> batches, as the original input_fn_builder.

    Yields int32 dicts: unique_ids [B]; input_ids, input_mask,
    segment_ids [B, L]; p_mask [B, L] (v2); start_positions,
    end_positions, is_impossible [B] (training). Training repeats and
    shuffles with buffer 100; keep predict unsharded so its order is the
    features' order. pad_to_multiple > 0: dynamic padding
    (finetune_input.make_batches), L varies by batch.
    """
    spec = feature_spec(max_seq_length, is_training,
                        version_2_with_negative)
    return finetune_input.make_batches(
        path, spec, batch_size, is_training, drop_remainder, input_context,
        seed, pad_to_multiple=pad_to_multiple,
        sequence_features=[n for n in SEQUENCE_FEATURES if n in spec])
