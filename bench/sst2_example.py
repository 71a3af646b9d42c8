"""SST-2 example: does pretraining help? (real data; not part of CI)

1. Uses the quickstart's pretrained model (./albert_quickstart by default;
   run `python run_pretraining.py` first), its SentencePiece model and
   config.
2. Fine-tunes run_classifier.py on ../shared/data/glue/SST-2 twice with the
   same flags: from the pretrained best checkpoint, and from random init.
3. Reports dev accuracy of both and of the majority class, as JSON in
   bench/results/sst2_example.json.

  python bench/sst2_example.py --pretrained_dir=albert_quickstart
"""

import collections
import csv
import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
flags.DEFINE_string("pretrained_dir", "albert_quickstart",
                    "Output dir of a run_pretraining.py run.")
flags.DEFINE_string("data_dir", os.path.join(ROOT, "..", "shared", "data",
                                             "glue"), "GLUE data dir.")
flags.DEFINE_string("work_dir", "/tmp/albert_sst2_example", "Outputs.")
flags.DEFINE_integer("train_step", 1000, "Fine-tuning steps.")
flags.DEFINE_float("learning_rate", 1e-3, "AdamW learning rate.")
flags.DEFINE_integer("max_seq_length", 64, "Tokens per example.")
flags.DEFINE_integer("train_batch_size", 32, "Batch size.")
flags.DEFINE_string("output", os.path.join(ROOT, "bench", "results",
                                           "sst2_example.json"),
                    "Where to write the JSON report.")
FLAGS = flags.FLAGS


def _dev_majority(path: str) -> float:
    with open(path, encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quotechar=None))[1:]
    counts = collections.Counter(row[-1] for row in rows)
    return max(counts.values()) / sum(counts.values())


def _finetune(name: str, init_checkpoint: str | None) -> dict:
    out = os.path.join(FLAGS.work_dir, name)
    pretrained = FLAGS.pretrained_dir
    args = [sys.executable, os.path.join(ROOT, "run_classifier.py"),
            "--task_name=sst-2", f"--data_dir={FLAGS.data_dir}",
            f"--albert_config_file={pretrained}/albert_config.json",
            f"--spm_model_file={pretrained}/data/spm.model",
            f"--output_dir={out}", f"--cached_dir={FLAGS.work_dir}/cache",
            f"--max_seq_length={FLAGS.max_seq_length}",
            f"--train_batch_size={FLAGS.train_batch_size}",
            "--eval_batch_size=64", f"--train_step={FLAGS.train_step}",
            f"--warmup_step={FLAGS.train_step // 10}",
            f"--learning_rate={FLAGS.learning_rate}",
            f"--save_checkpoints_steps={FLAGS.train_step // 4}",
            "--iterations_per_loop=50", "--log_every_n_steps=100",
            "--do_train", "--do_eval", "--seed=1"]
    if init_checkpoint:
        args.append(f"--init_checkpoint={init_checkpoint}")
    start = time.time()
    subprocess.run(args, check=True)
    with open(os.path.join(out, "best", "eval_results.txt")) as f:
        results = dict(line.split(" = ") for line in f.read().splitlines())
    return {"eval_accuracy": float(results["eval_accuracy"]),
            "best_step": int(float(results["global_step"])),
            "seconds": time.time() - start}


def main(argv):
    del argv  # Unused.
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    report = {
        "pretrained_dir": FLAGS.pretrained_dir,
        "majority_class_dev_accuracy": _dev_majority(
            os.path.join(FLAGS.data_dir, "SST-2", "dev.tsv")),
        "from_pretrained": _finetune(
            "pretrained", os.path.join(FLAGS.pretrained_dir, "best")),
        "from_random_init": _finetune("random", None),
        "flags": {k: FLAGS[k].value for k in (
            "train_step", "learning_rate", "max_seq_length",
            "train_batch_size")},
    }
    os.makedirs(os.path.dirname(FLAGS.output), exist_ok=True)
    with open(FLAGS.output, "w") as f:
        json.dump(report, f, indent=2)
    logging.info("%s", json.dumps(report, indent=2))


if __name__ == "__main__":
    app.run(main)
