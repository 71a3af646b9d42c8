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
import csv
import glob
import json
import os
import re
import sys

import numpy as np
from absl import app
from absl import flags
from absl import logging

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

flags.DEFINE_string("work_dir", "/tmp/albert_paper", "pretrain_runs.py's.")
flags.DEFINE_string("data_dir", os.path.join(ROOT, "..", "shared", "data",
                                             "glue", "SST-2"), "SST-2.")
flags.DEFINE_string("output", os.path.join(
    ROOT, "bench", "results", "paper", "diagnose.json"), "JSON.")
FLAGS = flags.FLAGS

WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def _sst2(split: str) -> list[str]:
    with open(os.path.join(FLAGS.data_dir, f"{split}.tsv"),
              encoding="utf-8") as f:
        return [row[0] for row in list(csv.reader(
            f, delimiter="\t", quotechar=None))[1:]]


def main(argv):
    del argv  # Unused.
    from albert_tf.data import glue
    from albert_tf.tokenization import full_tokenizer

    work = FLAGS.work_dir
    tokenizer = full_tokenizer.FullTokenizer(
        vocab_file=None, do_lower_case=True,
        spm_model_file=os.path.join(work, "spm.model"))
    corpus_words = collections.Counter()
    for path in glob.glob(os.path.join(work, "corpus", "train", "*.txt")):
        with open(path, encoding="utf-8") as f:
            corpus_words.update(WORD.findall(f.read().lower()))
    # As the fine-tuning input: the processor lowercases (preprocess_text),
    # as the original's processors do, before SentencePiece.
    processor = glue.get_processor("sst-2", use_spm=True, do_lower_case=True)
    report = {}
    for split in ("train", "dev"):
        sentences = [processor.process_text(s) for s in _sst2(split)]
        pieces = [tokenizer.tokenize(s) for s in sentences]
        ids = [tokenizer.convert_tokens_to_ids(p) for p in pieces]
        words = [WORD.findall(s.lower()) for s in sentences]
        n_words = sum(len(w) for w in words)
        unk = sum(i == 1 for seq in ids for i in seq)
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
    os.makedirs(os.path.dirname(FLAGS.output), exist_ok=True)
    with open(FLAGS.output, "w") as f:
        json.dump(report, f, indent=1)
    logging.info("%s", json.dumps(report, indent=1))


if __name__ == "__main__":
    app.run(main)
