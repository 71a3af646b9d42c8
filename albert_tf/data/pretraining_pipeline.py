"""Streaming, parallel, reproducible driver for pretraining-data creation.

The original read every document into RAM, made `dupe_factor` passes over
them, shuffled all instances and wrote them (over 1 TB of RAM for 40 GB of
text, google-research/albert issue #204), on one core, with unseeded numpy
draws. This driver keeps its per-document algorithm (`pretraining_data`)
and output format, and changes how documents flow:

1. Tokenize: input lines stream in blocks cut at blank lines; workers
   tokenize blocks; tokenized documents go to a temporary on-disk cache
   (ids + word-start bits, int32), so RAM does not grow with the corpus.
2. For each of `dupe_factor` passes: documents stream from the cache
   through a bounded shuffle buffer (`shuffle_buffer_docs`) and are grouped
   into work units of about `unit_tokens` tokens. A unit's random-document
   negatives are drawn from the unit's documents plus a bounded reservoir
   sample (`reservoir_docs`) of the documents seen earlier in the pass.
3. Serialized instances pass through a bounded output shuffle buffer
   (`output_shuffle_buffer`) and are written round-robin to the output
   files, as the original did.

Differences from the original, all from bounding memory: document order is
a windowed shuffle per pass instead of one global shuffle reused by every
pass; instance order is a windowed shuffle instead of a global one; the
random document for a negative is uniform over the unit plus reservoir,
not over the whole corpus. Per-document behaviour is unchanged.

Reproducibility: every unit's RNGs are seeded from (random_seed, pass,
unit), and units, reservoirs and buffers are built in the main process in
a fixed order, so output bytes do not depend on `num_workers`.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import multiprocessing
import random
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from albert_tf.data import pretraining_data as pd
from albert_tf.tokenization import full_tokenizer

# A tokenized document: (packed tokens [N] int32, segment lengths [S] int32).
TokenizedDoc = tuple


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """How documents flow; none of these change per-document behaviour."""

    num_workers: int = 1
    shuffle_buffer_docs: int = 10_000
    reservoir_docs: int = 256
    unit_tokens: int = 200_000
    output_shuffle_buffer: int = 10_000
    block_bytes: int = 1 << 20  # Raw text per tokenization task.
    invalid_utf8: str = "error"  # Or "replace": U+FFFD, counted, warned.
    log_every_s: float = 10.0

    def __post_init__(self):
        if self.num_workers < 1:
            raise ValueError(f"num_workers={self.num_workers} must be >= 1")
        if self.invalid_utf8 not in ("error", "replace"):
            raise ValueError(f"invalid_utf8={self.invalid_utf8!r} must be "
                             "'error' or 'replace'")
        for name in ("shuffle_buffer_docs", "unit_tokens",
                     "output_shuffle_buffer", "block_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")


def expand_input_files(input_file: str) -> list[str]:
    """Comma list of globs -> files; each pattern sorted, none may be empty."""
    files: list[str] = []
    for pattern in input_file.split(","):
        pattern = pattern.strip()
        if not pattern:
            continue
        if "://" in pattern:
            import tensorflow as tf  # Remote file systems, as tf.gfile.
            matches = sorted(tf.io.gfile.glob(pattern))
        else:
            matches = sorted(glob.glob(pattern))
        if not matches:
            raise FileNotFoundError(
                f"--input_file pattern {pattern!r} matches no file")
        files.extend(matches)
    if not files:
        raise FileNotFoundError(f"--input_file={input_file!r} names no file")
    return files


# --- Stage 1: reading and tokenizing ---------------------------------------

def read_blocks(files: Sequence[str], options: PipelineOptions,
                counters: collections.Counter) -> Iterator[list[str]]:
    """Decoded lines in blocks; a new block starts only at a blank line.

    Lines flow across file boundaries, so (as in the original) a file that
    does not end with a blank line continues its last document into the
    next file.
    """
    block: list[str] = []
    block_size = 0
    for path in files:
        with open(path, "rb") as f:
            for line_number, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    if options.invalid_utf8 == "error":
                        raise ValueError(
                            f"{path}:{line_number}: invalid UTF-8 at byte "
                            f"{e.start} of the line ({e.reason}); fix the "
                            "file or pass --invalid_utf8=replace") from None
                    line = raw.decode("utf-8", errors="replace")
                    counters["invalid_utf8_lines"] += 1
                counters["lines"] += 1
                counters["bytes"] += len(raw)
                if (block_size >= options.block_bytes and not line.strip()):
                    yield block
                    block, block_size = [], 0
                block.append(line)
                block_size += len(raw)
    if block:
        yield block


_WORKER: dict = {}


def init_worker(vocab_file: str | None, spm_model_file: str | None,
                do_lower_case: bool) -> None:
    """Per-process tokenizer (in each worker, or in-process for 1 worker)."""
    tokenizer = full_tokenizer.FullTokenizer(
        vocab_file=vocab_file, do_lower_case=do_lower_case,
        spm_model_file=spm_model_file)
    is_start = (pd.is_start_piece_sp if spm_model_file
                else pd.is_start_piece_bert)
    _WORKER.update(tokenizer=tokenizer, is_start=is_start, start_cache={})


def tokenize_block(args: tuple[int, list[str]]):
    """(block index, lines) -> (docs, empty docs). See `read_blocks`."""
    block_index, lines = args
    tokenizer = _WORKER["tokenizer"]
    is_start, cache = _WORKER["is_start"], _WORKER["start_cache"]
    docs: list[list[list[int]]] = [[]]
    for line in lines:
        text = tokenizer.preprocess(line)
        if not text:  # Blank after preprocessing: a document boundary.
            docs.append([])
            continue
        pieces = tokenizer.tokenize(text)
        if not pieces:
            continue
        ids = tokenizer.convert_tokens_to_ids(pieces)
        segment = []
        for piece, token_id in zip(pieces, ids):
            start = cache.get(piece)
            if start is None:
                start = cache[piece] = is_start(piece)
            segment.append(token_id << 1 | start)
        docs[-1].append(segment)
    if block_index > 0:
        # Later blocks start at a blank line, so docs[0] is the (finished)
        # previous block's last document, not a document of its own.
        docs = docs[1:]
    out = [(np.asarray([t for seg in d for t in seg], np.int32),
            np.asarray([len(seg) for seg in d], np.int32)) for d in docs if d]
    return out, sum(1 for d in docs if not d)


class DocCache:
    """Tokenized documents in a flat binary file: [S, N], lengths, tokens."""

    def __init__(self, path: str):
        self.path = path
        self.num_docs = 0
        self.num_tokens = 0
        self._f = open(path, "wb")

    def append(self, doc: TokenizedDoc) -> None:
        tokens, lengths = doc
        np.asarray([len(lengths), len(tokens)], np.int32).tofile(self._f)
        lengths.tofile(self._f)
        tokens.tofile(self._f)
        self.num_docs += 1
        self.num_tokens += len(tokens)

    def close(self) -> None:
        self._f.close()

    def __iter__(self) -> Iterator[TokenizedDoc]:
        with open(self.path, "rb") as f:
            for _ in range(self.num_docs):
                s, n = np.fromfile(f, np.int32, 2)
                yield _read_doc(f, s, n)


def _read_doc(f, num_segments: int, num_tokens: int) -> TokenizedDoc:
    lengths = np.fromfile(f, np.int32, num_segments)
    tokens = np.fromfile(f, np.int32, num_tokens)
    return tokens, lengths


# --- Stage 2: instances ----------------------------------------------------

def _unpack(doc: TokenizedDoc) -> pd.Document:
    tokens, lengths = doc
    return [seg.tolist() for seg in np.split(tokens, np.cumsum(lengths)[:-1])]


class _LazyDocs:
    """A sequence of documents unpacked on first access.

    Most reservoir documents are never drawn as random documents, so
    unpacking them all for every unit would cost more than the unit itself.
    """

    def __init__(self, packed: list):
        self._packed = packed
        self._docs: dict = {}

    def __len__(self) -> int:
        return len(self._packed)

    def __getitem__(self, index: int) -> pd.Document:
        doc = self._docs.get(index)
        if doc is None:
            doc = self._docs[index] = _unpack(self._packed[index])
        return doc


def unit_rngs(random_seed: int, pass_index: int, unit_index: int):
    """The (random.Random, RandomState) pair for one work unit."""
    key = f"albert_tf:{random_seed}:{pass_index}:{unit_index}"
    seeds = np.random.SeedSequence(
        [random_seed, pass_index, unit_index]).generate_state(4)
    return random.Random(key), np.random.RandomState(seeds)


def make_unit(args) -> tuple[list[bytes], pd.Stats, int]:
    """One work unit: instances of `docs`, negatives from docs + reservoir."""
    (docs, reservoir, config, vocab, random_seed, pass_index,
     unit_index) = args
    rng, np_rng = unit_rngs(random_seed, pass_index, unit_index)
    sampler = pd.NgramSampler(config.ngram, config.favor_shorter_ngram)
    pool = _LazyDocs(list(docs) + list(reservoir))
    stats = pd.Stats()
    records = []
    for index in range(len(docs)):
        for instance in pd.create_instances_from_document(
                pool, index, config, vocab, sampler, rng, np_rng, stats):
            records.append(pd.serialize_instance(instance, config))
    return records, stats, len(docs)


def shuffled(items: Iterable, buffer_size: int,
             rng: random.Random) -> Iterator:
    """Windowed shuffle: a random element of a buffer of `buffer_size`."""
    buffer: list = []
    for item in items:
        buffer.append(item)
        if len(buffer) >= buffer_size:
            j = rng.randrange(len(buffer))
            buffer[j], buffer[-1] = buffer[-1], buffer[j]
            yield buffer.pop()
    rng.shuffle(buffer)
    yield from buffer


def units_for_pass(cache: DocCache, pass_index: int, random_seed: int,
                   options: PipelineOptions) -> Iterator[tuple[list, list]]:
    """(unit docs, reservoir snapshot) for one pass, in a fixed order."""
    key = f"albert_tf:{random_seed}:{pass_index}"
    docs = shuffled(cache, options.shuffle_buffer_docs,
                    random.Random(key + ":shuffle"))
    reservoir: list = []
    reservoir_rng = random.Random(key + ":reservoir")
    seen = 0
    unit: list = []
    unit_tokens = 0

    def flush():
        nonlocal seen
        snapshot = list(reservoir)
        for doc in unit:  # Algorithm R over the pass's documents.
            if len(reservoir) < options.reservoir_docs:
                reservoir.append(doc)
            elif options.reservoir_docs:
                j = reservoir_rng.randint(0, seen)
                if j < options.reservoir_docs:
                    reservoir[j] = doc
            seen += 1
        return snapshot

    for doc in docs:
        unit.append(doc)
        unit_tokens += len(doc[0])
        if unit_tokens >= options.unit_tokens:
            yield unit, flush()
            unit, unit_tokens = [], 0
    if unit:
        yield unit, flush()


# --- Execution --------------------------------------------------------------

def ordered_map(pool, fn: Callable, items: Iterable,
                max_in_flight: int) -> Iterator:
    """fn over items, results in order, at most `max_in_flight` pending.

    Pool.imap would read the whole input ahead; this keeps memory bounded.
    With pool=None it runs inline.
    """
    if pool is None:
        for item in items:
            yield fn(item)
        return
    pending: collections.deque = collections.deque()
    for item in items:
        pending.append(pool.apply_async(fn, (item,)))
        if len(pending) >= max_in_flight:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def make_pool(options: PipelineOptions, init_args: tuple):
    if options.num_workers == 1:
        init_worker(*init_args)
        return None
    # fork: workers inherit the imported modules instead of re-importing
    # TensorFlow (the main process has run no TF op yet, so this is safe).
    method = ("fork" if "fork" in multiprocessing.get_all_start_methods()
              else "spawn")
    context = multiprocessing.get_context(method)
    return context.Pool(options.num_workers, initializer=init_worker,
                        initargs=init_args)
