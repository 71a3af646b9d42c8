"""create_pretraining_data as a library: text files -> sharded TFRecords.

`create_pretraining_data` keeps the original script's per-document
algorithm (`pretraining_data`) and output features, and changes how
documents flow. The original (create_pretraining_data.py `main`) read every
document into RAM, made `dupe_factor` passes over them, shuffled all
instances and wrote them (over 1 TB of RAM for 40 GB of text,
google-research/albert issue #204), on one core, with unseeded numpy draws.
Here:

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
   files, as the original `write_instance_to_example_files` did.

Differences from the original, all from bounding memory: document order is
a windowed shuffle per pass instead of one global shuffle reused by every
pass; instance order is a windowed shuffle instead of a global one; the
random document for a negative is uniform over the unit plus reservoir,
not over the whole corpus. Per-document behaviour is unchanged.

Reproducibility: every unit's RNGs are seeded from (random_seed, pass,
unit), and units, reservoirs and buffers are built in the main process in
a fixed order, so output bytes do not depend on `num_workers`.

Files: inputs and outputs go through tf.io.gfile (local, gs://, ram://).
Outputs are checked before any work and written under temporary names,
renamed at the end; on an error, Ctrl-C or SIGTERM the temporaries and the
document cache are removed.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import multiprocessing
import os
import posixpath
import random
import shutil
import signal
import tempfile
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

from absl import logging
import numpy as np
import tensorflow as tf

from albert_tf import fileio
from albert_tf.data import pretraining_data as pd
from albert_tf.tokenization import full_tokenizer

# A tokenized document: (packed tokens [N] int32, segment lengths [S] int32).
TokenizedDoc = tuple

_READ_CHUNK = 1 << 22  # 4 MiB; GFile's own readline is ~10x slower.


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


# --- Stage 1: reading and tokenizing ---------------------------------------

def _raw_lines(path: str) -> Iterator[bytes]:
    """The lines of a file (with their b"\\n"), through tf.io.gfile."""
    rest = b""
    with tf.io.gfile.GFile(path, "rb") as f:
        while True:
            chunk = f.read(_READ_CHUNK)
            if not chunk:
                break
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                yield line + b"\n"
    if rest:
        yield rest


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
        for line_number, raw in enumerate(_raw_lines(path), 1):
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
            if block_size >= options.block_bytes and not line.strip():
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
    """Tokenized documents in a flat local file: [S, N], lengths, tokens."""

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
                lengths = np.fromfile(f, np.int32, s)
                yield np.fromfile(f, np.int32, n), lengths


# --- Stage 2: instances ----------------------------------------------------

def unpack(doc: TokenizedDoc) -> pd.Document:
    """A cached document -> the algorithm's list of packed-token segments."""
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
            doc = self._docs[index] = unpack(self._packed[index])
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
    # TensorFlow; they only tokenize and run the algorithm, never TF ops.
    method = ("fork" if "fork" in multiprocessing.get_all_start_methods()
              else "spawn")
    context = multiprocessing.get_context(method)
    return context.Pool(options.num_workers, initializer=init_worker,
                        initargs=init_args)


class _Progress:
    """Rate-limited progress lines with rates and ETA."""

    def __init__(self, every_s: float):
        self.every_s = every_s
        self.start = self.last = time.time()

    def log(self, phase: str, done: float, total: float, docs: int,
            instances: int, force: bool = False) -> None:
        now = time.time()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        fraction = done / total if total else 1.0
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else 0.0
        logging.info(
            "%s: %.1f%% | %d docs (%.0f docs/s) | %d instances "
            "(%.0f instances/s) | elapsed %.0fs, ETA %.0fs", phase,
            100 * fraction, docs, docs / elapsed, instances,
            instances / elapsed, elapsed, eta)


def vocab_ids(tokenizer: full_tokenizer.FullTokenizer) -> pd.VocabIds:
    """[CLS]/[SEP]/[MASK] ids and the random-replacement vocabulary."""
    # The original draws `vocab_words[k]` from list(tokenizer.vocab.keys())
    # and converts it to an id when writing.
    words = list(tokenizer.vocab.keys())
    return pd.VocabIds(cls_id=tokenizer.special_id("[CLS]"),
                       sep_id=tokenizer.special_id("[SEP]"),
                       mask_id=tokenizer.mask_id(
                           "masked-LM pretraining data"),
                       vocab_ids=tuple(tokenizer.convert_tokens_to_ids(words)))


def summarize(stats: pd.Stats, counters: collections.Counter,
              num_docs: int, corpus_tokens: int) -> dict[str, Any]:
    """The --stats_file numbers (counts plus the derived fractions)."""
    n = max(stats.instances, 1)
    label_1 = stats.sop_swapped + stats.sop_random_document
    replaced = max(stats.replaced_mask + stats.replaced_keep
                   + stats.replaced_random, 1)
    spans = max(sum(stats.ngram_hist), 1)
    return {
        "instances": stats.instances,
        "documents": num_docs,
        "empty_documents_skipped": counters["empty_documents"],
        "lines": counters["lines"],
        "invalid_utf8_lines": counters["invalid_utf8_lines"],
        "corpus_tokens": corpus_tokens,
        "short_seq_instances": stats.short_target,
        "short_seq_fraction": stats.short_target / n,
        "sop": {"label_0": stats.sop_label_0, "label_1": label_1,
                "label_1_fraction": label_1 / n,
                "label_1_swapped": stats.sop_swapped,
                "label_1_random_document": stats.sop_random_document},
        "masked_tokens": stats.masked,
        "masked_token_fraction": stats.masked / max(stats.tokens, 1),
        "masked_per_instance": stats.masked / n,
        "ngram_histogram": {str(k): c for k, c in
                            enumerate(stats.ngram_hist) if k > 0},
        "ngram_fraction": {str(k): c / spans for k, c in
                           enumerate(stats.ngram_hist) if k > 0},
        "replacement_counts": {"mask": stats.replaced_mask,
                               "keep": stats.replaced_keep,
                               "random": stats.replaced_random},
        "replacement_shares": {"mask": stats.replaced_mask / replaced,
                               "keep": stats.replaced_keep / replaced,
                               "random": stats.replaced_random / replaced},
        "mean_tokens_per_instance": stats.tokens / n,
    }


def _dirname(path: str) -> str:
    return posixpath.dirname(path) if "://" in path else os.path.dirname(path)


def check_outputs(output_files: Sequence[str], input_files: Sequence[str],
                  stats_file: str | None) -> None:
    """Before any work: every output can be written, none is an input.

    Creates missing directories (as gs:// has none to create) and writes
    and removes each output's temporary file, so a bad second output fails
    now rather than after hours of tokenizing.
    """
    named = [("output_file", p) for p in output_files]
    if stats_file:
        named.append(("stats_file", stats_file))
    seen = set()
    inputs = {os.path.abspath(p) if "://" not in p else p
              for p in input_files}
    for flag, path in named:
        key = os.path.abspath(path) if "://" not in path else path
        if key in seen:
            raise ValueError(f"--{flag}: {path} is named twice")
        seen.add(key)
        if key in inputs:
            raise ValueError(f"--{flag}: {path} is also an input file")
        if tf.io.gfile.isdir(path):
            raise ValueError(f"--{flag}: {path} is a directory")
        directory = _dirname(path)
        try:
            if directory and not tf.io.gfile.isdir(directory):
                tf.io.gfile.makedirs(directory)
            probe = fileio.temp_path(path)
            with tf.io.gfile.GFile(probe, "wb") as f:
                f.write(b"")  # GFile opens on the first write.
            tf.io.gfile.remove(probe)
        except (tf.errors.OpError, OSError) as e:
            message = getattr(e, "message", None) or str(e)
            raise ValueError(f"--{flag}: cannot write {path} ({message})"
                             ) from None


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM -> SystemExit(143) in this process, so `finally` cleans up.

    Forked workers inherit the handler; in them it restores the default
    action (Pool.terminate ends workers with SIGTERM).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()

    def handler(signum, frame):
        del frame
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        # Ignore repeats while the temporaries are removed.
        signal.signal(signum, signal.SIG_IGN)
        logging.error("SIGTERM: stopping, removing temporary files")
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _remove_quietly(path: str) -> None:
    try:
        if tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)
    except tf.errors.OpError as e:
        logging.warning("Could not remove %s: %s", path, e.message)


def create_pretraining_data(
        input_file: str, output_file: str, *, vocab_file: str | None,
        spm_model_file: str | None, do_lower_case: bool,
        config: pd.PretrainingConfig, random_seed: int, dupe_factor: int,
        options: PipelineOptions,
        stats_file: str | None = None) -> dict[str, Any]:
    """Creates the TFRecords; returns (and optionally writes) statistics.

    input_file and output_file are comma-separated (globs for inputs), as
    the original flags; instances go round-robin to the outputs.
    """
    if dupe_factor < 1:
        raise ValueError(f"dupe_factor={dupe_factor} must be >= 1")
    files = fileio.expand_globs(input_file, "input_file")
    output_files = [p.strip() for p in output_file.split(",") if p.strip()]
    if not output_files:
        raise ValueError(f"--output_file={output_file!r} names no file")
    check_outputs(output_files, files, stats_file)
    init_args = (vocab_file, spm_model_file, do_lower_case)
    vocab = vocab_ids(full_tokenizer.FullTokenizer(
        vocab_file=vocab_file, do_lower_case=do_lower_case,
        spm_model_file=spm_model_file))
    start_time = time.time()
    logging.info("Reading %d input file(s), writing %d output file(s), "
                 "%d worker(s)", len(files), len(output_files),
                 options.num_workers)
    total_bytes = sum(tf.io.gfile.stat(f).length for f in files) or 1
    counters: collections.Counter = collections.Counter()
    stats = pd.Stats()
    in_flight = 2 * options.num_workers
    tmp_outputs = [fileio.temp_path(p) for p in output_files]
    writers: list = []
    pool = None
    # The document cache needs a local file: beside the first output (big
    # disks are where outputs go), or in the system temp dir for remote ones.
    out_dir = _dirname(output_files[0])
    if "://" in output_files[0]:
        cache_dir = tempfile.mkdtemp(prefix="albert_docs_")
    else:
        cache_dir = fileio.temp_path(
            os.path.join(out_dir or ".", "albert_docs"))
        os.makedirs(cache_dir, exist_ok=True)
    with _sigterm_raises():
        try:
            pool = make_pool(options, init_args)
            # Stage 1: tokenize into the on-disk document cache.
            progress = _Progress(options.log_every_s)
            cache = DocCache(os.path.join(cache_dir, "docs.bin"))
            blocks = enumerate(read_blocks(files, options, counters))
            for docs, empty in ordered_map(pool, tokenize_block, blocks,
                                           in_flight):
                for doc in docs:
                    cache.append(doc)
                counters["empty_documents"] += empty
                progress.log("tokenize", counters["bytes"], total_bytes,
                             cache.num_docs, 0)
            cache.close()
            if counters["invalid_utf8_lines"]:
                logging.warning("%d line(s) had invalid UTF-8, replaced by "
                                "U+FFFD", counters["invalid_utf8_lines"])
            if counters["empty_documents"]:
                logging.info("Skipped %d empty document(s)",
                             counters["empty_documents"])
            if cache.num_docs == 0:
                raise ValueError(
                    f"empty corpus: no tokens in {len(files)} input file(s) "
                    f"({', '.join(files[:3])}"
                    f"{', ...' if len(files) > 3 else ''}); "
                    f"{counters['lines']} line(s) read")
            progress.log("tokenize", 1, 1, cache.num_docs, 0, force=True)

            # Stage 2: dupe_factor passes of instances, shuffled, written.
            writers = [tf.io.TFRecordWriter(p) for p in tmp_outputs]
            total_docs = cache.num_docs * dupe_factor
            progress = _Progress(options.log_every_s)
            docs_done = 0

            def records():
                nonlocal docs_done
                for pass_index in range(dupe_factor):
                    tasks = ((docs, reservoir, config, vocab, random_seed,
                              pass_index, unit_index)
                             for unit_index, (docs, reservoir) in enumerate(
                                 units_for_pass(cache, pass_index,
                                                random_seed, options)))
                    for recs, unit_stats, num_docs in ordered_map(
                            pool, make_unit, tasks, in_flight):
                        stats.add(unit_stats)
                        docs_done += num_docs
                        progress.log("instances", docs_done, total_docs,
                                     docs_done, stats.instances)
                        yield from recs

            output_rng = random.Random(f"albert_tf:{random_seed}:output")
            written = 0
            for record in shuffled(records(), options.output_shuffle_buffer,
                                   output_rng):
                writers[written % len(writers)].write(record)  # Round-robin.
                written += 1
            for writer in writers:
                writer.close()
            for tmp, final in zip(tmp_outputs, output_files):
                tf.io.gfile.rename(tmp, final, overwrite=True)
            progress.log("instances", 1, 1, docs_done, stats.instances,
                         force=True)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
            for writer in writers:
                writer.close()  # Closing twice is harmless.
            shutil.rmtree(cache_dir, ignore_errors=True)
            for tmp in tmp_outputs:
                _remove_quietly(tmp)

    summary = summarize(stats, counters, cache.num_docs, cache.num_tokens)
    summary["output_files"] = output_files
    summary["elapsed_s"] = time.time() - start_time
    summary["settings"] = dict(
        dataclasses.asdict(config), random_seed=random_seed,
        dupe_factor=dupe_factor, do_lower_case=do_lower_case,
        spm_model_file=spm_model_file, vocab_file=vocab_file,
        **dataclasses.asdict(options))
    logging.info("Wrote %d instances to %s", stats.instances,
                 ",".join(output_files))
    if stats_file:
        fileio.write_json_atomic(stats_file, summary)
    return summary
