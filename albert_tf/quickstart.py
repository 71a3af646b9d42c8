"""The quickstart: the whole pretraining job on the built-in corpus, on CPU.

`prepare(data_dir)` writes the default corpus (Python's own documentation),
holds out every HELD_OUT_EVERY-th document for evaluation, trains a small
SentencePiece vocabulary on the rest with the original spm_train flags,
and writes pretraining TFRecords with the original algorithm: training
records from the training documents, evaluation records from the held-out
ones. The runner then pretrains QUICKSTART_CONFIG with QUICKSTART_FLAGS,
which take a few minutes on 2 cores. The recipe is the original's (LAMB,
warmup + linear decay, MLM + SOP); only the sizes are small.

Unlike the original's run_pretraining.py, which evaluated on its
--input_file (the training records), the quickstart evaluates on
documents it never trained on (--eval_input_file).
"""

from __future__ import annotations

import dataclasses
import os

from absl import logging

from albert_tf import fileio
from albert_tf.config import AlbertConfig
from albert_tf.data import default_corpus
from albert_tf.data import create_pretraining
from albert_tf.data import pretraining_data
from albert_tf.tokenization import train_spm

VOCAB_SIZE = 4000
MAX_SEQ_LENGTH = 64
MAX_PREDICTIONS_PER_SEQ = 10
DUPE_FACTOR = 3
HELD_OUT_EVERY = 10  # Every 10th document (10%) is evaluation data.

# A small ALBERT: 4 layers sharing one group, E=64, H=128.
QUICKSTART_CONFIG = AlbertConfig(
    vocab_size=VOCAB_SIZE, embedding_size=64, hidden_size=128,
    num_hidden_layers=4, num_hidden_groups=1, num_attention_heads=4,
    intermediate_size=512, inner_group_num=1, max_position_embeddings=512)

# Runner flags the quickstart sets unless given on the command line.
QUICKSTART_FLAGS = {
    "max_seq_length": MAX_SEQ_LENGTH,
    "max_predictions_per_seq": MAX_PREDICTIONS_PER_SEQ,
    "do_train": True,
    "do_eval": True,
    "train_batch_size": 32,
    "eval_batch_size": 32,
    "learning_rate": 0.005,
    "num_train_steps": 600,
    "num_warmup_steps": 60,
    "save_checkpoints_steps": 150,
    "iterations_per_loop": 25,
    "log_every_n_steps": 25,
    "max_eval_steps": 20,
}


@dataclasses.dataclass(frozen=True)
class QuickstartData:
    input_file: str  # Training records.
    spm_model_file: str
    corpus_file: str  # The whole corpus.
    eval_input_file: str  # Records of the held-out documents.


def split_corpus(corpus: str, train_file: str, eval_file: str,
                 every: int = HELD_OUT_EVERY) -> tuple[int, int]:
    """Writes the documents of `corpus` (blank-line separated) to
    train_file, every `every`-th one to eval_file instead (atomically).
    Returns the number of (train, eval) documents."""
    with open(corpus, encoding="utf-8") as f:
        documents = [d.strip("\n") for d in f.read().split("\n\n")
                     if d.strip()]
    held_out = [d for i, d in enumerate(documents) if i % every == every - 1]
    train = [d for i, d in enumerate(documents) if i % every != every - 1]
    if not held_out or not train:
        raise ValueError(f"{corpus}: {len(documents)} documents are too few "
                         f"to hold out one in {every} for evaluation")
    for path, docs in ((train_file, train), (eval_file, held_out)):
        fileio.write_atomic(path, "\n\n".join(docs) + "\n")
    return len(train), len(held_out)


def prepare(data_dir: str, num_workers: int = 1, seed: int = 12345,
            max_seq_length: int = MAX_SEQ_LENGTH,
            max_predictions_per_seq: int = MAX_PREDICTIONS_PER_SEQ
            ) -> QuickstartData:
    """Corpus, vocabulary and TFRecords in data_dir (reused when present)."""
    os.makedirs(data_dir, exist_ok=True)
    corpus = os.path.join(data_dir, "corpus.txt")
    if not os.path.exists(corpus):
        counts = default_corpus.write_corpus(corpus)
        logging.info("Default corpus: %d documents, %d sentences, %d bytes "
                     "from Python's documentation -> %s", counts["documents"],
                     counts["sentences"], counts["bytes"], corpus)
    train_corpus = os.path.join(data_dir, "corpus-train.txt")
    eval_corpus = os.path.join(data_dir, "corpus-eval.txt")
    if not (os.path.exists(train_corpus) and os.path.exists(eval_corpus)):
        num_train, num_eval = split_corpus(corpus, train_corpus, eval_corpus)
        logging.info("Held out %d of %d documents for evaluation: %s",
                     num_eval, num_train + num_eval, eval_corpus)
    prefix = os.path.join(data_dir, "spm")
    if not os.path.exists(prefix + ".model"):
        train_spm.train_spm([train_corpus], prefix, vocab_size=VOCAB_SIZE,
                            preprocess=True, do_lower_case=True, seed=seed)
    config = pretraining_data.PretrainingConfig(
        max_seq_length=max_seq_length,
        max_predictions_per_seq=max_predictions_per_seq)
    name = f"{max_seq_length}-{max_predictions_per_seq}"
    records = [os.path.join(data_dir, f"train-{name}-{i}.tfrecord")
               for i in range(2)]
    eval_records = os.path.join(data_dir, f"eval-{name}.tfrecord")
    for source, outputs, stats, dupe_factor in (
            (train_corpus, records, "stats.json", DUPE_FACTOR),
            (eval_corpus, [eval_records], "stats-eval.json", 1)):
        if all(os.path.exists(r) for r in outputs):
            continue
        create_pretraining.create_pretraining_data(
            source, ",".join(outputs), vocab_file=None,
            spm_model_file=prefix + ".model", do_lower_case=True,
            config=config, random_seed=seed, dupe_factor=dupe_factor,
            options=create_pretraining.PipelineOptions(
                num_workers=num_workers),
            stats_file=os.path.join(data_dir, stats))
    return QuickstartData(input_file=",".join(records),
                          spm_model_file=prefix + ".model",
                          corpus_file=corpus, eval_input_file=eval_records)
