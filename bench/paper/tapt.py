"""Task-adaptive pretraining: more MLM on SST-2's own (unlabelled) text.

The corpus-pretrained SOP encoder of pretrain_runs.py is pretrained
further with the masked-LM loss only on the sentences of SST-2's
train.tsv, labels dropped (Gururangan et al. 2020, "Don't Stop
Pretraining"; ULMFiT's language-model fine-tuning). Dev and test text are
never used. The learning curve then gives this encoder n labels like the
others: the semi-supervised setting, where unlabelled in-domain text is
cheap and labels are not. The snippets are grouped 8 to a pseudo-document
in file order; their order means nothing, hence no sentence loss
(--sentence_loss_weight=0).

  python3 bench/paper/tapt.py --work_dir=/tmp/albert_paper
"""

from __future__ import annotations

import csv
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
flags.DEFINE_string("work_dir", "/tmp/albert_paper", "pretrain_runs.py's.")
flags.DEFINE_string("data_dir", os.path.join(ROOT, "..", "shared", "data",
                                             "glue", "SST-2"), "SST-2.")
flags.DEFINE_integer("num_train_steps", 1500, "Extra MLM steps.")
flags.DEFINE_float("learning_rate", 0.002, "LAMB peak learning rate.")
flags.DEFINE_integer("dupe_factor", 10, "Masking passes over the text.")
FLAGS = flags.FLAGS

SNIPPETS_PER_DOCUMENT = 8


def _run(args: list[str], log: str) -> None:
    start = time.time()
    with open(log, "w") as f:
        subprocess.run(args, check=True, stdout=f, stderr=subprocess.STDOUT)
    logging.info("%s done in %.0f s", os.path.basename(args[1]),
                 time.time() - start)


def main(argv):
    del argv  # Unused.
    work = FLAGS.work_dir
    data = os.path.join(work, "data", "tapt")
    out = os.path.join(work, "runs", "sop_tapt")
    if not os.path.exists(os.path.join(data, "stats.json")):
        os.makedirs(data, exist_ok=True)
        with open(os.path.join(FLAGS.data_dir, "train.tsv"),
                  encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter="\t", quotechar=None))[1:]
        docs = [[row[0] for row in rows[i:i + SNIPPETS_PER_DOCUMENT]]
                for i in range(0, len(rows), SNIPPETS_PER_DOCUMENT)]
        with open(os.path.join(data, "sst2_train.txt"), "w",
                  encoding="utf-8") as f:
            f.write("\n\n".join("\n".join(d) for d in docs) + "\n")
        _run([sys.executable, os.path.join(ROOT, "create_pretraining_data.py"),
              f"--input_file={data}/sst2_train.txt",
              f"--output_file={data}/data-0.tfrecord",
              f"--spm_model_file={work}/spm.model", "--max_seq_length=64",
              "--max_predictions_per_seq=10",
              f"--dupe_factor={FLAGS.dupe_factor}", "--random_seed=777",
              "--num_workers=2", f"--stats_file={data}/stats.json"],
             os.path.join(work, "logs", "data_tapt.log"))
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    init = tf.train.latest_checkpoint(os.path.join(work, "runs", "sop"))
    args = [sys.executable, os.path.join(ROOT, "run_pretraining.py"),
            f"--albert_config_file={work}/albert_config.json",
            f"--input_file={data}/data-*.tfrecord", f"--output_dir={out}",
            f"--init_checkpoint={init}", "--sentence_loss_weight=0",
            "--max_seq_length=64", "--max_predictions_per_seq=10",
            "--train_batch_size=32",
            f"--num_train_steps={FLAGS.num_train_steps}",
            "--num_warmup_steps=100",
            f"--learning_rate={FLAGS.learning_rate}",
            f"--save_checkpoints_steps={FLAGS.num_train_steps}",
            "--do_eval", "--eval_batch_size=64", "--max_eval_steps=20",
            "--log_every_n_steps=100", "--iterations_per_loop=100",
            "--seed=12345", "--jit_compile"]
    if os.path.exists(os.path.join(out, "done.json")):
        common.check_same_args(os.path.join(out, "done.json"), args[2:])
        return
    start = time.time()
    _run(args, os.path.join(work, "logs", "pretrain_sop_tapt.log"))
    common.write_json(os.path.join(out, "done.json"), {
        "seconds": time.time() - start, "init": init, "args": args[2:]})


if __name__ == "__main__":
    app.run(main)
