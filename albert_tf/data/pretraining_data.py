"""Pretraining instances: SOP sentence pairs and n-gram whole-word masking.

The algorithm is the original `create_pretraining_data.py`
(`create_instances_from_document`, `create_masked_lm_predictions`,
`truncate_seq_pair`, `write_instance_to_example_files`), step for step and
draw for draw, with two changes of plumbing:

* nothing reads FLAGS: options come in a `PretrainingConfig`;
* every random draw comes from the RNGs passed in. The original drew the
  n-gram length with the *global* `np.random.choice`, so its output could
  not be reproduced from `random_seed`; here `np_rng` (a RandomState) makes
  the same draw (`ngram_length` equals `np_rng.choice(ngrams, p=pvals)`).

Tokens travel as packed ints, `id << 1 | is_word_start`, so a segment is a
plain int list through chunking, swapping and truncation, and the word-start
rule (which the original evaluated on piece strings for every instance) is
computed once per piece at tokenization time.
"""

from __future__ import annotations

import bisect
import dataclasses
import random
from typing import Sequence

import numpy as np

from albert_tf.data import features

Segment = list  # list[int] of packed tokens (one input line).
Document = list  # list[Segment].

# The original's punctuation set. It lacks "'" (a `\"` where `\'` was
# meant), so a piece like "'s" is a word start; its € and £ entries were
# bytes, never equal to a str piece (both still count as starts because
# they are not a-z). Matched as is.
_SP_PUNCTUATION = frozenset('!"#$%&"()*+,-./:;?@[\\]^_`{|}~')
_SP_WORD_CHARS = _SP_PUNCTUATION | frozenset("abcdefghijklmnopqrstuvwxyz")


def is_start_piece_sp(piece: str) -> bool:
    """Original `_is_start_piece_sp`: does this SentencePiece piece start a word?

    Yes if it starts with ▁ or <, is one punctuation character, or has any
    character (lowercased) outside a-z and that punctuation set: digits
    and non-Latin pieces are always treated as whole words.
    """
    return (piece.startswith("\u2581") or piece.startswith("<")
            or piece in _SP_PUNCTUATION
            or not all(c.lower() in _SP_WORD_CHARS for c in piece))


def is_start_piece_bert(piece: str) -> bool:
    """Original `_is_start_piece_bert`: WordPiece continuations start ##."""
    return not piece.startswith("##")


def pack_token(token_id: int, is_word_start: bool) -> int:
    return token_id << 1 | int(is_word_start)


@dataclasses.dataclass(frozen=True)
class PretrainingConfig:
    """The original's data flags (same names and defaults)."""

    max_seq_length: int = 512
    short_seq_prob: float = 0.1
    masked_lm_prob: float = 0.15
    max_predictions_per_seq: int = 20
    ngram: int = 3
    do_whole_word_mask: bool = True
    favor_shorter_ngram: bool = True
    do_permutation: bool = False
    random_next_sentence: bool = False
    # Not in the original. The original pairs a one-segment chunk with a
    # random document's segment, label 1, in SOP mode too (issue #234), so
    # "SOP" data holds random-document negatives (20% of the instances in
    # bench/paper's corpus at max_seq_length 64; far fewer at 512). True drops those chunks: SOP data is then
    # pure sentence order, NSP data pure next-sentence; what a held-out
    # evaluation of either task needs.
    skip_single_segment_chunks: bool = False

    def __post_init__(self):
        if self.max_seq_length < 5:
            raise ValueError(f"max_seq_length={self.max_seq_length} must be "
                             ">= 5 ([CLS] A [SEP] B [SEP])")
        for name in ("short_seq_prob", "masked_lm_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must be in "
                                 "[0, 1]")
        if self.ngram < 1:
            raise ValueError(f"ngram={self.ngram} must be >= 1")
        if self.max_predictions_per_seq < 1:
            raise ValueError("max_predictions_per_seq="
                             f"{self.max_predictions_per_seq} must be >= 1")


@dataclasses.dataclass(frozen=True)
class VocabIds:
    """Ids the algorithm needs. `vocab_ids[k]` is the id of the original's
    `vocab_words[k]` (the random-replacement draw; specials included)."""

    cls_id: int
    sep_id: int
    mask_id: int
    vocab_ids: tuple


@dataclasses.dataclass
class TrainingInstance:
    input_ids: list  # [T] after masking, T <= max_seq_length.
    segment_ids: list  # [T]
    token_boundary: list  # [T]
    masked_lm_positions: list  # [M] sorted, M <= P.
    masked_lm_ids: list  # [M] original ids at those positions.
    is_random_next: bool  # The SOP label (1 = swapped or random document).


@dataclasses.dataclass
class Stats:
    """Counters for --stats_file; merged across workers with `add`."""

    instances: int = 0
    short_target: int = 0  # target_seq_length drawn with short_seq_prob.
    sop_label_0: int = 0
    sop_swapped: int = 0  # label 1, A and B swapped.
    sop_random_document: int = 0  # label 1, B from another document.
    tokens: int = 0  # Real tokens, [CLS]/[SEP] included.
    masked: int = 0
    replaced_mask: int = 0
    replaced_keep: int = 0
    replaced_random: int = 0
    ngram_hist: list = dataclasses.field(default_factory=list)

    def add(self, other: "Stats") -> None:
        for f in dataclasses.fields(self):
            if f.name == "ngram_hist":
                n = max(len(self.ngram_hist), len(other.ngram_hist))
                self.ngram_hist = [
                    (self.ngram_hist[i] if i < len(self.ngram_hist) else 0)
                    + (other.ngram_hist[i] if i < len(other.ngram_hist)
                       else 0) for i in range(n)]
            else:
                setattr(self, f.name,
                        getattr(self, f.name) + getattr(other, f.name))

    def count_ngram(self, n: int) -> None:
        while len(self.ngram_hist) <= n:
            self.ngram_hist.append(0)
        self.ngram_hist[n] += 1


class NgramSampler:
    """Draws the n-gram length exactly as np.random.choice(ngrams, p=pvals).

    p(n) is proportional to 1/n (reversed when not favor_shorter_ngram).
    RandomState.choice normalises p, takes its cumsum and searchsorts one
    `random_sample()`; doing that here avoids choice's per-call overhead
    while consuming and using the stream identically.
    """

    def __init__(self, ngram: int, favor_shorter_ngram: bool):
        pvals = 1.0 / np.arange(1, ngram + 1)
        pvals /= pvals.sum(keepdims=True)
        if not favor_shorter_ngram:
            pvals = pvals[::-1]
        # The original renormalises pvals[:len(cand_index_set)]; that length
        # is always `ngram` (one entry per n), so the full vector is used.
        p = pvals / pvals.sum(keepdims=True)
        cdf = p.cumsum()
        cdf /= cdf[-1]
        self.pvals = p
        self._cdf = cdf.tolist()

    def draw(self, np_rng: np.random.RandomState) -> int:
        return bisect.bisect_right(self._cdf, np_rng.random_sample()) + 1


def shuffle(rng: random.Random, x: list) -> None:
    """`rng.shuffle(x)`, the same permutation and the same draws, faster.

    CPython's Random.shuffle swaps x[i] with x[randbelow(i + 1)] for i from
    the end, where randbelow draws getrandbits(bit_length) until below the
    bound. Inlining that halves the cost of the two shuffles per instance
    (the largest cost of the algorithm); tests check equality with
    random.Random.shuffle.
    """
    getrandbits = rng.getrandbits
    for i in range(len(x) - 1, 0, -1):
        n = i + 1
        k = n.bit_length()
        j = getrandbits(k)
        while j >= n:
            j = getrandbits(k)
        x[i], x[j] = x[j], x[i]


def truncate_seq_pair(tokens_a: list, tokens_b: list, max_num_tokens: int,
                      rng: random.Random) -> None:
    """Original `truncate_seq_pair`, in linear time, in place.

    The original deletes one token per `rng.random()` draw from the front or
    back of the longer side, and `del tokens[0]` made that quadratic (a long
    one-line document took minutes). This makes the same draws in the same
    order, counts how many tokens leave each end of each side, and cuts once.
    """
    len_a, len_b = len(tokens_a), len(tokens_b)
    front_a = front_b = 0
    random_ = rng.random
    while len_a + len_b > max_num_tokens:
        front = random_() < 0.5
        if len_a > len_b:  # Ties trim B, as the original.
            len_a -= 1
            front_a += front
        else:
            len_b -= 1
            front_b += front
    # [front cut][kept][back cut]: each end once, O(len).
    del tokens_a[front_a + len_a:]
    del tokens_a[:front_a]
    del tokens_b[front_b + len_b:]
    del tokens_b[:front_b]


def create_masked_lm_predictions(
        tokens: Sequence[int], config: PretrainingConfig, vocab: VocabIds,
        sampler: NgramSampler, rng: random.Random,
        np_rng: np.random.RandomState, stats: Stats | None = None):
    """Masks n-grams of whole words; the original's candidate walk.

    Args:
      tokens: [T] packed tokens, including [CLS] and [SEP].
    Returns:
      (output_ids [T], masked_lm_positions [M], masked_lm_ids [M],
       token_boundary [T]).
    """
    specials = (vocab.cls_id, vocab.sep_id)
    ids = [t >> 1 for t in tokens]
    cand_indexes: list[list[int]] = []  # One list of positions per word.
    token_boundary = [0] * len(tokens)
    for i, tok in enumerate(tokens):
        if ids[i] in specials:
            token_boundary[i] = 1
            continue
        start = tok & 1
        # As the original: a non-start piece joins the previous word even
        # across the middle [SEP] (which itself is never a candidate).
        if config.do_whole_word_mask and cand_indexes and not start:
            cand_indexes[-1].append(i)
        else:
            cand_indexes.append([i])
            if start:
                token_boundary[i] = 1

    output_ids = list(ids)
    if config.masked_lm_prob == 0:
        return output_ids, [], [], token_boundary
    num_to_predict = min(config.max_predictions_per_seq,
                         max(1, int(round(len(tokens)
                                          * config.masked_lm_prob))))

    def span(idx: int, n: int) -> list[int]:  # cand_index_set[n - 1], flat.
        return [p for word in cand_indexes[idx:idx + n] for p in word]

    # The original shuffles a list with one n-gram list per word; shuffling
    # word indexes draws the same permutation (it depends on length only).
    order = list(range(len(cand_indexes)))
    shuffle(rng, order)
    masked: list[tuple[int, int]] = []  # (position, original id)
    covered: set[int] = set()
    for idx in order:
        if len(masked) >= num_to_predict:
            break
        n = sampler.draw(np_rng)
        index_set = span(idx, n)
        n -= 1
        # Retry shorter n-grams while the span would exceed the budget.
        while len(masked) + len(index_set) > num_to_predict:
            if n == 0:
                break
            index_set = span(idx, n)
            n -= 1
        if len(masked) + len(index_set) > num_to_predict:
            continue
        if any(p in covered for p in index_set):
            continue
        if stats is not None:
            stats.count_ngram(len(cand_indexes[idx:idx + n + 1]))
        for p in index_set:
            covered.add(p)
            # 80% [MASK], 10% keep, 10% random vocab entry, per token.
            if rng.random() < 0.8:
                output_ids[p] = vocab.mask_id
                kind = "replaced_mask"
            elif rng.random() < 0.5:
                kind = "replaced_keep"
            else:
                output_ids[p] = vocab.vocab_ids[
                    rng.randint(0, len(vocab.vocab_ids) - 1)]
                kind = "replaced_random"
            if stats is not None:
                setattr(stats, kind, getattr(stats, kind) + 1)
            masked.append((p, ids[p]))

    shuffle(rng, order)  # The original reshuffles even without permutation.
    if config.do_permutation:
        masked.extend(_permute(order, span, num_to_predict, covered,
                               output_ids, sampler, rng, np_rng))
    masked.sort(key=lambda x: x[0])
    return (output_ids, [p for p, _ in masked], [t for _, t in masked],
            token_boundary)


def _permute(order, span, num_to_predict, covered, output_ids, sampler, rng,
             np_rng) -> list[tuple[int, int]]:
    """The original's do_permutation pass: shuffle tokens among new spans."""
    select: set[int] = set()
    for idx in order:
        if len(select) >= num_to_predict:
            break
        n = sampler.draw(np_rng)
        index_set = span(idx, n)
        n -= 1
        while len(select) + len(index_set) > num_to_predict:
            if n == 0:
                break
            index_set = span(idx, n)
            n -= 1
        if len(select) + len(index_set) > num_to_predict:
            continue
        if any(p in covered or p in select for p in index_set):
            continue
        select.update(index_set)
    sources = sorted(select)
    targets = list(sources)
    shuffle(rng, targets)
    before = list(output_ids)
    for src, tgt in zip(sources, targets):
        output_ids[src] = before[tgt]
    return [(src, before[src]) for src in sources]


def create_instances_from_document(
        documents: Sequence[Document], document_index: int,
        config: PretrainingConfig, vocab: VocabIds, sampler: NgramSampler,
        rng: random.Random, np_rng: np.random.RandomState,
        stats: Stats | None = None) -> list[TrainingInstance]:
    """SOP instances from `documents[document_index]`, as the original.

    `documents` is the pool that random-document negatives are drawn from
    (all documents in the original; a bounded pool in the streaming runner).
    """
    document = documents[document_index]
    max_num_tokens = config.max_seq_length - 3  # [CLS] A [SEP] B [SEP]
    target_seq_length = max_num_tokens
    short = rng.random() < config.short_seq_prob
    if short:
        target_seq_length = rng.randint(2, max_num_tokens)

    instances = []
    current_chunk: list[Segment] = []
    current_length = 0
    i = 0
    while i < len(document):
        segment = document[i]
        current_chunk.append(segment)
        current_length += len(segment)
        if i == len(document) - 1 or current_length >= target_seq_length:
            if len(current_chunk) == 1 and config.skip_single_segment_chunks:
                current_chunk = []  # Dropped before any random draw.
            if current_chunk:
                # How many chunk segments go into A.
                a_end = 1
                if len(current_chunk) >= 2:
                    a_end = rng.randint(1, len(current_chunk) - 1)
                tokens_a = [t for seg in current_chunk[:a_end] for t in seg]
                tokens_b: list[int] = []
                random_document = False
                if len(current_chunk) == 1 or (
                        config.random_next_sentence and rng.random() < 0.5):
                    # B from another document (also in SOP mode for
                    # one-segment chunks, issue #234).
                    is_random_next = random_document = True
                    target_b_length = target_seq_length - len(tokens_a)
                    for _ in range(10):
                        random_index = rng.randint(0, len(documents) - 1)
                        if random_index != document_index:
                            break
                    other = documents[random_index]
                    random_start = rng.randint(0, len(other) - 1)
                    for j in range(random_start, len(other)):
                        tokens_b.extend(other[j])
                        if len(tokens_b) >= target_b_length:
                            break
                    # Put the unused segments back.
                    i -= len(current_chunk) - a_end
                elif not config.random_next_sentence and rng.random() < 0.5:
                    is_random_next = True  # SOP negative: swap A and B.
                    tokens_b = [t for seg in current_chunk[a_end:]
                                for t in seg]
                    tokens_a, tokens_b = tokens_b, tokens_a
                else:
                    is_random_next = False
                    tokens_b = [t for seg in current_chunk[a_end:]
                                for t in seg]
                truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
                if not tokens_a or not tokens_b:
                    raise AssertionError("empty segment after truncation")
                cls = pack_token(vocab.cls_id, True)
                sep = pack_token(vocab.sep_id, True)
                tokens = [cls, *tokens_a, sep, *tokens_b, sep]
                segment_ids = ([0] * (len(tokens_a) + 2)
                               + [1] * (len(tokens_b) + 1))
                output_ids, positions, labels, boundary = (
                    create_masked_lm_predictions(tokens, config, vocab,
                                                 sampler, rng, np_rng, stats))
                instances.append(TrainingInstance(
                    output_ids, segment_ids, boundary, positions, labels,
                    is_random_next))
                if stats is not None:
                    stats.instances += 1
                    stats.short_target += short
                    stats.tokens += len(tokens)
                    stats.masked += len(positions)
                    if not is_random_next:
                        stats.sop_label_0 += 1
                    elif random_document:
                        stats.sop_random_document += 1
                    else:
                        stats.sop_swapped += 1
            current_chunk = []
            current_length = 0
        i += 1
    return instances


def serialize_instance(instance: TrainingInstance,
                       config: PretrainingConfig) -> bytes:
    """The original writer's padded features as tf.train.Example bytes."""
    seq_len = len(instance.input_ids)
    if seq_len > config.max_seq_length:
        raise AssertionError(f"{seq_len} tokens > max_seq_length")
    pad = [0] * (config.max_seq_length - seq_len)
    num_slots = config.max_predictions_per_seq * (1 + config.do_permutation)
    num_masked = len(instance.masked_lm_positions)
    pad_p = [0] * (num_slots - num_masked)
    return features.encode_example(features.PRETRAINING, {
        "input_ids": instance.input_ids + pad,
        "input_mask": [1] * seq_len + pad,
        "segment_ids": instance.segment_ids + pad,
        "token_boundary": instance.token_boundary + pad,
        "masked_lm_positions": instance.masked_lm_positions + pad_p,
        "masked_lm_ids": instance.masked_lm_ids + pad_p,
        "masked_lm_weights": [1.0] * num_masked + [0.0] * len(pad_p),
        "next_sentence_labels": [int(instance.is_random_next)],
    })
