"""The pretraining runs behind Table 5 in miniature and the learning curve.

One vocabulary and one model (the quickstart size: 4 layers sharing one
group, E=64, H=128) pretrained three ways on the same data, with the same
steps and seed:

  sop   MLM + sentence-order prediction (the default, ALBERT)
  nsp   MLM + next-sentence prediction (data built with
        --random_next_sentence, BERT's objective)
  mlm   MLM only (the SOP data with --sentence_loss_weight=0)

Every 20th document of each corpus file is held out: the vocabulary and
the training data never see it, and it gives the held-out SOP and NSP
evaluation sets (eval_sentence.py). Each step is skipped when its output
is complete, so a rerun resumes; run_pretraining itself resumes from its
last checkpoint.

  python3 bench/paper/pretrain_runs.py --work_dir=/tmp/albert_paper
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging

import common

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
flags.DEFINE_string("corpus_dir", os.path.join(ROOT, "..", "shared", "data",
                                               "corpus"), "Corpus *.txt.")
flags.DEFINE_string("work_dir", "/tmp/albert_paper", "Where runs go.")
flags.DEFINE_list("runs", ["sop", "nsp", "mlm"], "Which pretraining runs.")
flags.DEFINE_integer("num_train_steps", 8000, "Pretraining steps per run.",
                     lower_bound=1)
flags.DEFINE_integer("num_warmup_steps", 200, "LAMB warmup steps.")
flags.DEFINE_float("learning_rate", 0.005, "LAMB learning rate.")
flags.DEFINE_integer("train_batch_size", 32, "Sequences per step.")
flags.DEFINE_integer("max_seq_length", 64, "Tokens per sequence.")
flags.DEFINE_integer("max_predictions_per_seq", 10, "15% of 64, rounded.")
flags.DEFINE_integer("save_checkpoints_steps", 1000, "Kept for the "
                     "steps-vs-accuracy test of the learning curve.")
flags.DEFINE_integer("dupe_factor", 2, "Masking passes over the corpus.")
flags.DEFINE_integer("vocab_size", 8000, "SentencePiece vocabulary.")
flags.DEFINE_string("dtype", "float32", "run_pretraining --dtype (bfloat16 "
                    "is no faster at this size on CPU).")
flags.DEFINE_bool("jit_compile", True, "XLA: 1.5x the examples/s at this "
                  "size on CPU (325 vs 211 at batch 32).")
flags.DEFINE_bool("prepare_only", False, "Stop after the data.")
FLAGS = flags.FLAGS

HELD_OUT_EVERY = 20  # Document i of a file is held out when i % 20 == 7.


def _split_corpus(out_dir: str) -> None:
    """Writes train/*.txt and heldout/*.txt, split by document."""
    if os.path.exists(os.path.join(out_dir, "split.json")):
        return
    counts = {}
    for split in ("train", "heldout"):
        os.makedirs(os.path.join(out_dir, split), exist_ok=True)
    for path in sorted(glob.glob(os.path.join(FLAGS.corpus_dir, "*.txt"))):
        with open(path, encoding="utf-8") as f:
            docs = [d for d in f.read().split("\n\n") if d.strip()]
        parts = {"train": [], "heldout": []}
        for i, doc in enumerate(docs):
            held = i % HELD_OUT_EVERY == 7
            parts["heldout" if held else "train"].append(doc.strip("\n"))
        name = os.path.basename(path)
        for split, part in parts.items():
            with open(os.path.join(out_dir, split, name), "w",
                      encoding="utf-8") as f:
                f.write("\n\n".join(part) + "\n")
            counts[f"{split}/{name}"] = len(part)
    with open(os.path.join(out_dir, "split.json"), "w") as f:
        json.dump({"documents": counts, "held_out_every": HELD_OUT_EVERY},
                  f, indent=2)


def _run(args: list[str], log: str) -> None:
    """Runs one step, its output in `log`; a failure stops everything."""
    start = time.time()
    logging.info("running %s (log: %s)", " ".join(args[1:3]), log)
    with open(log, "a") as f:
        subprocess.run(args, check=True, stdout=f, stderr=subprocess.STDOUT)
    logging.info("  done in %.0f s", time.time() - start)


def _make_data(work: str, name: str, input_glob: str, nsp: bool,
               dupe_factor: int, seed: int, pure: bool = False) -> None:
    out = os.path.join(work, "data", name)
    settings = {"max_seq_length": FLAGS.max_seq_length,
                "max_predictions_per_seq": FLAGS.max_predictions_per_seq,
                "dupe_factor": dupe_factor, "random_seed": seed,
                "random_next_sentence": nsp,
                "skip_single_segment_chunks": pure}
    if os.path.exists(os.path.join(out, "stats.json")):
        with open(os.path.join(out, "stats.json")) as f:
            # Data made before the flag existed had it off.
            made = {"skip_single_segment_chunks": False,
                    **json.load(f)["settings"]}
        changed = {k: (made.get(k), v) for k, v in settings.items()
                   if made.get(k) != v}
        if changed:
            raise ValueError(f"{out} was made with other settings "
                             f"(made, wanted): {changed}; delete it or use "
                             f"another --work_dir")
        return
    os.makedirs(out, exist_ok=True)
    args = [sys.executable, os.path.join(ROOT, "create_pretraining_data.py"),
            f"--input_file={input_glob}",
            f"--output_file={out}/data-0.tfrecord,{out}/data-1.tfrecord",
            f"--spm_model_file={work}/spm.model",
            f"--max_seq_length={FLAGS.max_seq_length}",
            f"--max_predictions_per_seq={FLAGS.max_predictions_per_seq}",
            f"--dupe_factor={dupe_factor}", f"--random_seed={seed}",
            "--num_workers=2", f"--stats_file={out}/stats.json.tmp"]
    if nsp:
        args.append("--random_next_sentence")
    if pure:
        args.append("--skip_single_segment_chunks")
    _run(args, os.path.join(work, "logs", f"data_{name}.log"))
    os.replace(f"{out}/stats.json.tmp", f"{out}/stats.json")


def _pretrain(work: str, run: str) -> None:
    out = os.path.join(work, "runs", run)
    data = "nsp" if run == "nsp" else "sop"
    args = [sys.executable, os.path.join(ROOT, "run_pretraining.py"),
            f"--albert_config_file={work}/albert_config.json",
            f"--input_file={work}/data/{data}/data-*.tfrecord",
            f"--output_dir={out}",
            f"--max_seq_length={FLAGS.max_seq_length}",
            f"--max_predictions_per_seq={FLAGS.max_predictions_per_seq}",
            f"--train_batch_size={FLAGS.train_batch_size}",
            f"--num_train_steps={FLAGS.num_train_steps}",
            f"--num_warmup_steps={FLAGS.num_warmup_steps}",
            f"--learning_rate={FLAGS.learning_rate}",
            f"--save_checkpoints_steps={FLAGS.save_checkpoints_steps}",
            "--keep_checkpoint_max=100", f"--dtype={FLAGS.dtype}",
            "--do_eval", "--eval_batch_size=64", "--max_eval_steps=20",
            "--log_every_n_steps=100", "--iterations_per_loop=100",
            "--seed=12345", f"--jit_compile={FLAGS.jit_compile}"]
    if run == "mlm":
        args.append("--sentence_loss_weight=0")
    if os.path.exists(os.path.join(out, "done.json")):
        common.check_same_args(os.path.join(out, "done.json"), args[2:])
        return
    start = time.time()
    _run(args, os.path.join(work, "logs", f"pretrain_{run}.log"))
    common.write_json(os.path.join(out, "done.json"), {
        "seconds_last_invocation": time.time() - start, "args": args[2:]})


def main(argv):
    del argv  # Unused.
    work = FLAGS.work_dir
    os.makedirs(os.path.join(work, "logs"), exist_ok=True)
    _split_corpus(os.path.join(work, "corpus"))
    train_glob = os.path.join(work, "corpus", "train", "*.txt")
    held_glob = os.path.join(work, "corpus", "heldout", "*.txt")
    if not os.path.exists(os.path.join(work, "spm.model")):
        _run([sys.executable, "-m", "albert_tf.tokenization.train_spm",
              f"--input={train_glob}", f"--model_prefix={work}/spm",
              f"--vocab_size={FLAGS.vocab_size}", "--preprocess"],
             os.path.join(work, "logs", "spm.log"))
    if not os.path.exists(os.path.join(work, "albert_config.json")):
        sys.path.insert(0, ROOT)
        from albert_tf import quickstart  # pylint: disable=g-import-not-at-top
        config = quickstart.QUICKSTART_CONFIG.replace(
            vocab_size=FLAGS.vocab_size)
        with open(os.path.join(work, "albert_config.json"), "w") as f:
            f.write(config.to_json_string())
    # Training data as the original makes it: its SOP data also pairs
    # one-segment chunks with a random document (label 1), about 18% of
    # the instances here. Same seed for both; NSP draws more random
    # numbers, so their instances and masks differ beyond the negatives.
    _make_data(work, "sop", train_glob, False, FLAGS.dupe_factor, 12345)
    if "nsp" in FLAGS.runs:
        _make_data(work, "nsp", train_glob, True, FLAGS.dupe_factor, 12345)
    # Held-out sets: 5 passes over the unseen documents, without
    # one-segment chunks, so the SOP set is pure sentence order (no
    # random-document pairs) and both sets are about half label 1.
    _make_data(work, "heldout_sop", held_glob, False, 5, 54321, pure=True)
    _make_data(work, "heldout_nsp", held_glob, True, 5, 54321, pure=True)
    if FLAGS.prepare_only:
        return
    for run in FLAGS.runs:
        _pretrain(work, run)


if __name__ == "__main__":
    app.run(main)
