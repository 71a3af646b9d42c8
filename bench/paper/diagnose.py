"""Cheap checks behind "why did pretraining not help SST-2?".

Measures what needs no training: how well the corpus vocabulary covers
SST-2 (unknown pieces, pieces per word, SST-2 words never seen in the
pretraining text), how long SST-2 examples are against max_seq_length,
and the masking the pretraining data actually got (from
create_pretraining_data's stats). Writes bench/results/paper/diagnose.json.

  python3 bench/paper/diagnose.py --work_dir=/tmp/albert_paper
"""

from __future__ import annotations

import collections
import glob
import json
import os
import re

import numpy as np
from absl import app
from absl import flags
from absl import logging

import common

flags.DEFINE_string("work_dir", "/tmp/albert_paper", "pretrain_runs.py's.")
flags.DEFINE_string("data_dir", common.SST2_DIR, "SST-2.")
flags.DEFINE_string("output", os.path.join(common.RESULTS, "diagnose.json"),
                    "JSON.")
FLAGS = flags.FLAGS

WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def main(argv):
    del argv  # Unused.
    work = FLAGS.work_dir
    # As the fine-tuning input: the processor lowercases (preprocess_text),
    # as the original's processors do, before SentencePiece.
    tokenizer, processor = common.tokenizer_and_processor(
        os.path.join(work, "spm.model"))
    unk_id = tokenizer.sp_model.unk_id()
    corpus_words = collections.Counter()
    for path in glob.glob(os.path.join(work, "corpus", "train", "*.txt")):
        with open(path, encoding="utf-8") as f:
            corpus_words.update(WORD.findall(f.read().lower()))
    report = {}
    for split in ("train", "dev"):
        sentences = [processor.process_text(s)
                     for s in common.read_sst2(FLAGS.data_dir, split)[0]]
        pieces = [tokenizer.tokenize(s) for s in sentences]
        ids = [tokenizer.convert_tokens_to_ids(p) for p in pieces]
        words = [WORD.findall(s.lower()) for s in sentences]
        n_words = sum(len(w) for w in words)
        unk = sum(i == unk_id for seq in ids for i in seq)
        lengths = np.array([len(p) + 2 for p in pieces])  # [CLS] ... [SEP]
        tokens = [w for ws in words for w in ws]
        unseen = [w for w in tokens if corpus_words[w] == 0]
        rare = [w for w in tokens if 0 < corpus_words[w] < 5]
        report[f"sst2_{split}"] = {
            "examples": len(sentences),
            "pieces_per_word": sum(len(p) for p in pieces) / n_words,
            "unk_piece_fraction": unk / sum(len(s) for s in ids),
            "word_tokens_unseen_in_corpus": len(unseen) / len(tokens),
            "word_tokens_seen_under_5_times": len(rare) / len(tokens),
            "most_common_unseen": collections.Counter(unseen).most_common(
                15),
            "length_mean": float(lengths.mean()),
            "length_p50_p95_p99": [float(np.percentile(lengths, q))
                                   for q in (50, 95, 99)],
            "fraction_over_64": float(np.mean(lengths > 64)),
        }
    # The same numbers for the held-out corpus documents, as a yardstick
    # of in-domain coverage.
    held = []
    for path in glob.glob(os.path.join(work, "corpus", "heldout", "*.txt")):
        with open(path, encoding="utf-8") as f:
            held.extend(WORD.findall(f.read().lower()))
    report["heldout_corpus_word_tokens_unseen"] = (
        sum(corpus_words[w] == 0 for w in held) / len(held))
    report["corpus_word_tokens"] = sum(corpus_words.values())
    for name in ("sop", "nsp"):
        with open(os.path.join(work, "data", name, "stats.json")) as f:
            stats = json.load(f)
        report[f"pretraining_data_{name}"] = {
            k: stats[k] for k in (
                "instances", "corpus_tokens", "mean_tokens_per_instance",
                "masked_per_instance", "masked_token_fraction",
                "short_seq_fraction")}
    common.write_json(FLAGS.output, report)
    logging.info("%s", json.dumps(report, indent=1))


if __name__ == "__main__":
    app.run(main)
