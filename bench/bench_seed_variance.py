"""Seed-to-seed spread of the original algorithm's output lengths.

  nice python bench/bench_seed_variance.py

Runs the reference loop (record-for-record the original script, see
bench_pretraining_data.py) on the corpus for seeds 1, 2, 3, keeping only
instance lengths. Short targets (short_seq_prob) on long documents make
instance counts heavy-tailed, so counts and length fractions vary by a few
percent between seeds; differences between albert_tf's streaming output and
the original smaller than this spread are noise, not a change of algorithm.
Results: bench/results/seed_variance.json.
"""

import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
from bench import common  # noqa: E402


def main():
    from albert_tf.data import create_pretraining as pipeline
    from albert_tf.data import pretraining_data as pd
    from albert_tf.tokenization import FullTokenizer

    files = common.corpus_files(common.DEFAULT_CORPUS)
    if not files:
        common.write_result("seed_variance.json", {"skipped": "no corpus"})
        return
    work_dir = "/tmp/albert_tf_bench"
    os.makedirs(work_dir, exist_ok=True)
    model, _ = common.vocab_30k(files, work_dir)
    pipeline.init_worker(None, model, True)
    lines = [line for f in files for line in open(f, encoding="utf-8")]
    docs = [pipeline.unpack(d)
            for d in pipeline.tokenize_block((0, lines))[0]]
    config = pd.PretrainingConfig()
    vocab = pipeline.vocab_ids(FullTokenizer(spm_model_file=model))
    result = {}
    for seed in (1, 2, 3):
        rng, np_rng = random.Random(seed), np.random.RandomState(seed)
        sampler = pd.NgramSampler(3, True)
        order = list(docs)
        rng.shuffle(order)
        lengths = []
        for _ in range(10):
            for i in range(len(order)):
                lengths += [len(inst.input_ids) for inst in
                            pd.create_instances_from_document(
                                order, i, config, vocab, sampler, rng,
                                np_rng)]
        lengths = np.array(lengths)
        result[str(seed)] = {
            "instances": len(lengths),
            "mean_tokens_per_instance": float(lengths.mean()),
            "padded_fraction": float((lengths < 512).mean()),
            "under_half_length_fraction": float((lengths < 256).mean())}
    common.write_result("seed_variance.json", result)


if __name__ == "__main__":
    main()
