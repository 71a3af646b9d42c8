"""Benchmark create_pretraining_data on the real corpus (not a test).

  nice python bench/bench_pretraining_data.py

Runs, each as its own process with its process tree's memory sampled every
0.2 s (bench/common.run_measured), max_seq_length 512, dupe_factor 10, a
30k unigram vocab trained by albert_tf.tokenization.train_spm:

  workers1 / workers2   create_pretraining_data.py --num_workers=1 / 2
  reference             a plain single-process loop over the same library
                        functions, whole corpus in RAM (as the original)
  workers1_dupe20       RSS must not grow with dupe_factor
  original              google-research/albert's own script, unmodified,
                        under tf.compat.v1 with np.random.seed(random_seed)
                        (skipped without --original_repo)

instances/s = instances / wall time of the whole process (start-up, reading
and tokenizing included). Output statistics are recomputed from the
TFRecords of each run by one function, so ours and the original's compare
like for like. Results: bench/results/pretraining_data.json.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import random
import sys

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
from bench import common  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("corpus_dir", common.DEFAULT_CORPUS, "Text corpus.")
flags.DEFINE_string("work_dir", "/tmp/albert_tf_bench", "Scratch space.")
flags.DEFINE_string("original_repo", common.DEFAULT_ORIGINAL,
                    "google-research/albert checkout or bare mirror.")
flags.DEFINE_integer("dupe_factor", 10, "dupe_factor of every run.")
flags.DEFINE_integer("max_seq_length", 512, "max_seq_length of every run.")
flags.DEFINE_enum("mode", "bench", ["bench", "reference"], "Internal.")
flags.DEFINE_string("spm_model_file", None, "Internal (reference mode).")
flags.DEFINE_string("output_file", None, "Internal (reference mode).")
flags.DEFINE_bool("run_original", True, "Also time the original script.")
flags.DEFINE_bool("reuse_original", False,
                  "Reuse work_dir/original_result.json and its output from "
                  "an earlier run (the original takes many minutes).")

SEED = 12345


def reference_loop(files, spm_model_file, output_file, dupe_factor,
                   max_seq_length):
    """The original's structure, single process, on albert_tf functions."""
    import numpy as np
    import tensorflow as tf
    from albert_tf.data import create_pretraining as pipeline
    from albert_tf.data import pretraining_data as pd
    from albert_tf.tokenization import FullTokenizer

    pipeline.init_worker(None, spm_model_file, True)
    lines = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            lines.extend(f)
    docs = [pipeline.unpack(d)
            for d in pipeline.tokenize_block((0, lines))[0]]
    config = pd.PretrainingConfig(max_seq_length=max_seq_length)
    vocab = pipeline.vocab_ids(
        FullTokenizer(spm_model_file=spm_model_file))
    rng, np_rng = random.Random(SEED), np.random.RandomState(SEED)
    sampler = pd.NgramSampler(config.ngram, config.favor_shorter_ngram)
    rng.shuffle(docs)
    records = []
    for _ in range(dupe_factor):
        for i in range(len(docs)):
            for inst in pd.create_instances_from_document(
                    docs, i, config, vocab, sampler, rng, np_rng):
                records.append(pd.serialize_instance(inst, config))
    rng.shuffle(records)
    with tf.io.TFRecordWriter(output_file) as writer:
        for record in records:
            writer.write(record)
    logging.info("reference: %d instances", len(records))


def _batches(paths, max_seq_length, max_predictions=20):
    """Parsed numpy batches of every record (tf.io, vectorised)."""
    import tensorflow as tf
    from albert_tf.data import features
    spec = features.to_tf_spec(features.PRETRAINING, L=max_seq_length,
                               P=max_predictions)
    ds = tf.data.TFRecordDataset(paths).batch(1024).map(
        lambda x: tf.io.parse_example(x, spec))
    return ds.as_numpy_iterator()


def tfrecord_stats(paths, max_seq_length, mask_id=4):
    """Output statistics from TFRecords alone (same for every producer)."""
    import numpy as np
    c = collections.Counter()
    spans = collections.Counter()
    for b in _batches(paths, max_seq_length):
        lengths = b["input_mask"].sum(1)
        weights = b["masked_lm_weights"] > 0
        at_pos = np.take_along_axis(b["input_ids"],
                                    b["masked_lm_positions"], 1)
        labels = b["masked_lm_ids"]
        c["instances"] += len(lengths)
        c["label_1"] += int(b["next_sentence_labels"].sum())
        c["tokens"] += int(lengths.sum())
        c["masked"] += int(weights.sum())
        c["padded"] += int((lengths < max_seq_length).sum())
        c["under_half"] += int((lengths < max_seq_length // 2).sum())
        c["mask"] += int((weights & (at_pos == mask_id)).sum())
        c["keep"] += int((weights & (at_pos != mask_id)
                          & (at_pos == labels)).sum())
        c["random"] += int((weights & (at_pos != mask_id)
                            & (at_pos != labels)).sum())
        # Runs of consecutive fully masked words (adjacent spans merge,
        # which biases every producer the same way). Padding positions are
        # one-token words that are never masked, so runs stop at row ends.
        rows, width = b["input_ids"].shape
        valid = np.arange(width)[None, :] < lengths[:, None]
        boundary = np.where(valid, b["token_boundary"], 1)
        boundary[:, 0] = 1
        word = np.cumsum(boundary.ravel()) - 1
        masked = np.zeros((rows, width))
        r_idx = np.repeat(np.arange(rows), weights.shape[1])[weights.ravel()]
        masked[r_idx, b["masked_lm_positions"][weights]] = 1
        full = (np.bincount(word, masked.ravel()) == np.bincount(word))
        edges = np.diff(np.concatenate([[0], full.astype(int), [0]]))
        for run in np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1):
            spans[min(int(run), 4)] += 1
    k = max(c["instances"], 1)
    r = max(c["mask"] + c["keep"] + c["random"], 1)
    s = max(sum(spans.values()), 1)
    return {
        "instances": c["instances"],
        "sop_label_1_fraction": c["label_1"] / k,
        "masked_token_fraction": c["masked"] / max(c["tokens"], 1),
        "masked_per_instance": c["masked"] / k,
        "replacement_shares": {x: c[x] / r for x in ("mask", "keep",
                                                     "random")},
        "masked_word_run_fraction": {str(x): spans[x] / s
                                     for x in sorted(spans)},
        "mean_tokens_per_instance": c["tokens"] / k,
        "padded_fraction": c["padded"] / k,
        "under_half_length_fraction": c["under_half"] / k,
    }


def same_records(path_a, path_b, max_seq_length):
    """Record-by-record feature equality (bytes may differ in field order)."""
    import numpy as np
    equal = total = 0
    first_difference = None
    for a, b in zip(_batches([path_a], max_seq_length),
                    _batches([path_b], max_seq_length)):
        same = np.ones(len(a["input_ids"]), bool)
        for k in a:
            same &= (a[k] == b[k]).reshape(len(same), -1).all(1)
        if first_difference is None and not same.all():
            first_difference = total + int(np.argmin(same))
        equal += int(same.sum())
        total += len(same)
    return {"records": total, "equal": equal,
            "first_difference": first_difference}


def main(argv):
    del argv  # Unused.
    files = common.corpus_files(FLAGS.corpus_dir)
    if FLAGS.mode == "reference":
        reference_loop(files, FLAGS.spm_model_file, FLAGS.output_file,
                       FLAGS.dupe_factor, FLAGS.max_seq_length)
        return
    if not files:
        logging.warning("No corpus at %s: skipping", FLAGS.corpus_dir)
        common.write_result("pretraining_data.json",
                            {"skipped": f"no corpus at {FLAGS.corpus_dir}"})
        return
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    model, vocab = common.vocab_30k(files, FLAGS.work_dir)
    py = common.python()
    msl, dupe = FLAGS.max_seq_length, FLAGS.dupe_factor

    def ours(name, workers, dupe_factor):
        out = os.path.join(FLAGS.work_dir, name)
        os.makedirs(out, exist_ok=True)
        outputs = ",".join(os.path.join(out, f"part-{i}.tfrecord")
                           for i in range(2))
        cmd = [py, "create_pretraining_data.py",
               f"--input_file={','.join(files)}", f"--output_file={outputs}",
               f"--spm_model_file={model}", f"--vocab_file={vocab}",
               f"--max_seq_length={msl}", f"--dupe_factor={dupe_factor}",
               f"--num_workers={workers}",
               f"--stats_file={os.path.join(out, 'stats.json')}"]
        return cmd, outputs.split(",")

    runs = {}
    plan = [("workers1", *ours("workers1", 1, dupe)),
            ("workers2", *ours("workers2", 2, dupe)),
            ("workers1_dupe20", *ours("workers1_dupe20", 1, 2 * dupe))]
    ref_out = os.path.join(FLAGS.work_dir, "reference.tfrecord")
    plan.append(("reference", [
        py, os.path.abspath(__file__), "--mode=reference",
        f"--corpus_dir={FLAGS.corpus_dir}", f"--spm_model_file={model}",
        f"--output_file={ref_out}", f"--dupe_factor={dupe}",
        f"--max_seq_length={msl}"], [ref_out]))
    original = (common.original_package(FLAGS.original_repo, FLAGS.work_dir)
                if FLAGS.run_original else None)
    if original:
        orig_out = os.path.join(FLAGS.work_dir, "original.tfrecord")
        script = os.path.join(original, "albert", "create_pretraining_data.py")
        argv_list = [script, f"--input_file={','.join(files)}",
                     f"--output_file={orig_out}", f"--vocab_file={vocab}",
                     f"--spm_model_file={model}", f"--max_seq_length={msl}",
                     f"--dupe_factor={dupe}", f"--random_seed={SEED}"]
        code = (common.ORIGINAL_PRELUDE +
                f"sys.path.insert(0, {original!r}); import numpy, runpy; "
                f"numpy.random.seed({SEED}); sys.argv = {argv_list!r}; "
                f"runpy.run_path({script!r}, run_name='__main__')")
        plan.append(("original", [py, "-c", code], [orig_out]))
    cached = os.path.join(FLAGS.work_dir, "original_result.json")
    for name, cmd, outputs in plan:
        if name == "original" and FLAGS.reuse_original and os.path.exists(
                cached):
            with open(cached) as f:
                runs[name] = json.load(f)
            continue
        logging.info("Running %s", name)
        result = common.run_measured(
            cmd, log_path=os.path.join(FLAGS.work_dir, f"{name}.log"))
        stats = tfrecord_stats(outputs, msl)
        result["instances"] = stats["instances"]
        result["instances_per_s"] = stats["instances"] / result["wall_s"]
        if name in ("workers1", "reference", "original"):
            result["output_stats"] = stats
        runs[name] = result
        if name == "original":
            with open(cached, "w") as f:
                json.dump(result, f)
        logging.info("%s: %s", name, {k: v for k, v in result.items()
                                      if k != "output_stats"})
    base = runs.get("original", runs["reference"])
    if "original" in runs:
        # Same seeds, np.random.seed(seed) for the original's global numpy
        # draws: the reference loop should reproduce it record for record.
        runs["reference"]["same_records_as_original"] = same_records(
            ref_out, orig_out, msl)
    summary = {
        "corpus_files": files, "spm_model": model,
        "max_seq_length": msl, "dupe_factor": dupe,
        "runs": runs,
        "speedup_workers2_vs_original": (
            runs["workers2"]["instances_per_s"] / base["instances_per_s"]
            if "original" in runs else None),
        "speedup_workers2_vs_reference": (
            runs["workers2"]["instances_per_s"]
            / runs["reference"]["instances_per_s"]),
        # RSS of the single process is the stable measure here: PSS also
        # moves with other processes mapping the same TF libraries.
        "rss_growth_dupe20_vs_dupe10_mb": (
            runs["workers1_dupe20"]["peak_rss_max_process_mb"]
            - runs["workers1"]["peak_rss_max_process_mb"]),
        "pss_growth_dupe20_vs_dupe10_mb": (
            runs["workers1_dupe20"]["peak_pss_sum_mb"]
            - runs["workers1"]["peak_pss_sum_mb"]),
        "cpu_count": os.cpu_count(),
        "note": "instances/s include process start-up (~6 s importing "
                "TensorFlow/Keras via albert_tf) and tokenization.",
    }
    path = common.write_result("pretraining_data.json", summary)
    logging.info("Wrote %s", path)
    for f in glob.glob(os.path.join(FLAGS.work_dir, "*", "part-*")):
        os.remove(f)


if __name__ == "__main__":
    app.run(main)
