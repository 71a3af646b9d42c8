"""create_pretraining_data as a function: text files -> sharded TFRecords.

`run` wires the stages of `pretraining_pipeline` together, logs progress
(docs/s, instances/s, ETA), writes every output atomically (temporary name,
then os.replace) and returns the statistics it also writes to `stats_file`.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import random
import shutil
import tempfile
import time
from typing import Any

from absl import logging

from albert_tf.data import pretraining_data as pd
from albert_tf.data import pretraining_pipeline as pipeline
from albert_tf.tokenization import full_tokenizer


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
                       mask_id=tokenizer.special_id("[MASK]"),
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


def write_json_atomic(path: str, value: Any) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def run(input_file: str, output_file: str, *, vocab_file: str | None,
        spm_model_file: str | None, do_lower_case: bool,
        config: pd.PretrainingConfig, random_seed: int, dupe_factor: int,
        options: pipeline.PipelineOptions,
        stats_file: str | None = None) -> dict[str, Any]:
    """Creates the TFRecords; returns (and optionally writes) statistics."""
    if dupe_factor < 1:
        raise ValueError(f"dupe_factor={dupe_factor} must be >= 1")
    files = pipeline.expand_input_files(input_file)
    output_files = [p.strip() for p in output_file.split(",") if p.strip()]
    if not output_files:
        raise ValueError(f"--output_file={output_file!r} names no file")
    init_args = (vocab_file, spm_model_file, do_lower_case)
    vocab = vocab_ids(full_tokenizer.FullTokenizer(
        vocab_file=vocab_file, do_lower_case=do_lower_case,
        spm_model_file=spm_model_file))
    start_time = time.time()
    logging.info("Reading %d input file(s), writing %d output file(s), "
                 "%d worker(s)", len(files), len(output_files),
                 options.num_workers)
    total_bytes = sum(os.path.getsize(f) for f in files) or 1
    tmp_dir = tempfile.mkdtemp(
        prefix="albert_docs_",
        dir=os.path.dirname(os.path.abspath(output_files[0])))
    counters: collections.Counter = collections.Counter()
    stats = pd.Stats()
    in_flight = 2 * options.num_workers
    pool = pipeline.make_pool(options, init_args)
    tmp_outputs = [f"{p}.tmp{os.getpid()}" for p in output_files]
    try:
        # Stage 1: tokenize into the on-disk document cache.
        progress = _Progress(options.log_every_s)
        cache = pipeline.DocCache(os.path.join(tmp_dir, "docs.bin"))
        blocks = enumerate(pipeline.read_blocks(files, options, counters))
        for docs, empty in pipeline.ordered_map(
                pool, pipeline.tokenize_block, blocks, in_flight):
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
                f"({', '.join(files[:3])}{', ...' if len(files) > 3 else ''})"
                f"; {counters['lines']} line(s) read")
        progress.log("tokenize", 1, 1, cache.num_docs, 0, force=True)

        # Stage 2: dupe_factor passes of instances, shuffled and written.
        import tensorflow as tf  # Writers only; workers never need TF.
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
                             pipeline.units_for_pass(cache, pass_index,
                                                     random_seed, options)))
                for (recs, unit_stats, num_docs) in pipeline.ordered_map(
                        pool, pipeline.make_unit, tasks, in_flight):
                    stats.add(unit_stats)
                    docs_done += num_docs
                    progress.log("instances", docs_done, total_docs,
                                 docs_done, stats.instances)
                    yield from recs

        output_rng = random.Random(f"albert_tf:{random_seed}:output")
        written = 0
        for record in pipeline.shuffled(
                records(), options.output_shuffle_buffer, output_rng):
            writers[written % len(writers)].write(record)  # Round-robin.
            written += 1
        for writer in writers:
            writer.close()
        for tmp, final in zip(tmp_outputs, output_files):
            os.replace(tmp, final)
        progress.log("instances", 1, 1, docs_done, stats.instances,
                     force=True)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        shutil.rmtree(tmp_dir, ignore_errors=True)
        for tmp in tmp_outputs:
            if os.path.exists(tmp):
                os.remove(tmp)

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
        write_json_atomic(stats_file, summary)
    return summary
