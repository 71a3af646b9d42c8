"""What the bench/paper scripts share: paths, SST-2 reading, inputs, and
the checks that keep a rerun from reusing results of other inputs."""

from __future__ import annotations

import csv
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from albert_tf import fileio  # pylint: disable=g-import-not-at-top

SST2_DIR = os.path.join(ROOT, "..", "shared", "data", "glue", "SST-2")
RESULTS = os.path.join(ROOT, "bench", "results", "paper")


def read_tsv(path: str) -> list[list[str]]:
    """Rows of a GLUE TSV, header included (quoting off, as GLUE)."""
    with open(path, encoding="utf-8") as f:
        return list(csv.reader(f, delimiter="\t", quotechar=None))


def read_sst2(data_dir: str, split: str) -> tuple[list[str], np.ndarray]:
    """(sentences, labels) of train.tsv / dev.tsv."""
    rows = read_tsv(os.path.join(data_dir, f"{split}.tsv"))[1:]
    return [r[0] for r in rows], np.array([int(r[1]) for r in rows])


def write_json(path: str, value) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fileio.write_atomic(path, json.dumps(value, indent=1))


def checkpoint_fingerprint(path: str | None) -> str | None:
    """sha256 of a checkpoint's .index (it holds every tensor's crc32c)."""
    return fileio.fingerprint(path + ".index") if path else None


def check_same_args(path: str, args: list[str]) -> None:
    """Refuses to reuse `path`'s finished step made with other arguments."""
    with open(path) as f:
        old = json.load(f).get("args")
    if old != args:
        changed = sorted(set(old or []) ^ set(args))
        raise ValueError(f"{path}: finished with other arguments (differing: "
                         f"{changed}); delete its directory or use another "
                         f"--work_dir")


def tokenizer_and_processor(spm_model_file: str):
    """The fine-tuning path's text handling: the SST-2 processor
    (preprocess_text, lowercasing) and the SentencePiece tokenizer."""
    from albert_tf.data import glue
    from albert_tf.tokenization import full_tokenizer
    processor = glue.get_processor("sst-2", use_spm=True, do_lower_case=True)
    tokenizer = full_tokenizer.FullTokenizer(
        vocab_file=None, do_lower_case=True, spm_model_file=spm_model_file)
    return tokenizer, processor


def sst2_inputs(texts: list[str], spm_model_file: str,
                max_seq_length: int) -> dict[str, np.ndarray]:
    """Encoder inputs [N, T] built as run_classifier builds them
    (glue.convert_single_example)."""
    from albert_tf.data import glue
    tokenizer, processor = tokenizer_and_processor(spm_model_file)
    features = [glue.convert_single_example(
        glue.InputExample(guid=str(i), text_a=processor.process_text(t),
                          label="0"),
        processor.label_list, max_seq_length, tokenizer)
        for i, t in enumerate(texts)]
    return {k: np.array([f[k] for f in features], np.int32)
            for k in ("input_ids", "input_mask", "segment_ids")}
