"""Short pretraining probes: learning rate, optimizer, width at 1,000 steps.

Each probe is a 1,000-step run_pretraining run (warmup 100, linear decay
to 0) on the SOP training data of pretrain_runs.py, scored on the first
4,096 sequences of the held-out SOP set (eval_sentence.score). It asks
whether the main runs' recipe (LAMB 0.005, the quickstart width) leaves
masked-LM accuracy on the table, which would explain a pretrained encoder
that does not help SST-2. Finished probes are skipped on a rerun.

  python3 bench/paper/pretrain_probes.py --work_dir=/tmp/albert_paper
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import common  # pylint: disable=g-import-not-at-top
import eval_sentence  # pylint: disable=g-import-not-at-top

# --work_dir comes with eval_sentence's flags.
flags.DEFINE_string("probes_output", os.path.join(
    ROOT, "bench", "results", "paper", "pretrain_probes.json"), "JSON.")
FLAGS = flags.FLAGS

# name: (config overrides, learning rate, optimizer)
PROBES = {
    "quickstart_lr0.005": ({}, 0.005, "lamb"),
    "quickstart_lr0.001": ({}, 0.001, "lamb"),
    "quickstart_lr0.02": ({}, 0.02, "lamb"),
    "wide_lr0.005": ({"embedding_size": 128, "hidden_size": 256,
                      "intermediate_size": 1024}, 0.005, "lamb"),
    "quickstart_adamw_lr0.001": ({}, 0.001, "adamw"),
}
STEPS = 1000
EVAL_SEQUENCES = 4096


def _probe(work: str, name: str, overrides: dict, lr: float,
           optimizer: str) -> dict:
    from albert_tf.config import AlbertConfig
    out = os.path.join(work, "probes", name)
    config_path = os.path.join(work, "probes", f"{name}.json")
    config = AlbertConfig.from_json_file(
        os.path.join(work, "albert_config.json")).replace(**overrides)
    os.makedirs(os.path.dirname(config_path), exist_ok=True)
    with open(config_path, "w") as f:
        f.write(config.to_json_string())
    start = time.time()
    if not os.path.exists(os.path.join(out, f"ckpt-{STEPS}.index")):
        args = [sys.executable, os.path.join(ROOT, "run_pretraining.py"),
                f"--albert_config_file={config_path}",
                f"--input_file={work}/data/sop/data-*.tfrecord",
                f"--output_dir={out}", "--max_seq_length=64",
                "--max_predictions_per_seq=10", "--train_batch_size=32",
                f"--num_train_steps={STEPS}", "--num_warmup_steps=100",
                f"--learning_rate={lr}", f"--save_checkpoints_steps={STEPS}",
                "--log_every_n_steps=500", "--iterations_per_loop=100",
                "--jit_compile", f"--optimizer={optimizer}"]
        with open(os.path.join(work, "logs", f"probe_{name}.log"), "w") as f:
            subprocess.run(args, check=True, stdout=f,
                           stderr=subprocess.STDOUT)
    seconds = time.time() - start
    # Training speed: the examples/s of the last logged step.
    with open(os.path.join(work, "logs", f"probe_{name}.log")) as f:
        speed = [line for line in f if f"step {STEPS}/{STEPS}" in line]
    examples_per_second = float(re.search(r"([\d.]+) examples/s",
                                          speed[-1]).group(1))
    r = eval_sentence.score(
        out, os.path.join(work, "data", "heldout_sop", "data-*.tfrecord"),
        max_sequences=EVAL_SEQUENCES)
    return {"parameters": config.num_parameters(), "learning_rate": lr,
            "optimizer": optimizer,
            "overrides": overrides, "steps": STEPS,
            "heldout_masked_lm_accuracy": r["masked_lm_accuracy"],
            "heldout_masked_lm_loss": r["masked_lm_loss"],
            "heldout_sop_accuracy": r["sentence_order_accuracy"],
            "train_examples_per_second": examples_per_second,
            "seconds_this_invocation": round(seconds, 1)}


def _inputs(work: str, name: str) -> dict:
    """What a probe's result depends on; a stored one is reused only when
    this is equal, else its directory is cleared and it runs again."""
    from albert_tf import fileio
    overrides, lr, optimizer = PROBES[name]
    return {"probe": [overrides, lr, optimizer, STEPS, EVAL_SEQUENCES],
            **{f: fileio.fingerprint(os.path.join(work, f)) for f in (
                "spm.model", "albert_config.json", "data/sop/stats.json",
                "data/heldout_sop/stats.json")}}


def main(argv):
    del argv  # Unused.
    work = FLAGS.work_dir
    report = {}
    if os.path.exists(FLAGS.probes_output):
        with open(FLAGS.probes_output) as f:
            report = json.load(f)
    for name, (overrides, lr, optimizer) in PROBES.items():
        inputs = _inputs(work, name)
        if name in report and report[name].get("inputs") != inputs:
            logging.warning("%s: stored from other inputs; running it "
                            "again", name)
            del report[name]
            shutil.rmtree(os.path.join(work, "probes", name),
                          ignore_errors=True)
        if name not in report:
            report[name] = dict(_probe(work, name, overrides, lr, optimizer),
                                inputs=inputs)
            logging.info("%s: %s", name, report[name])
            common.write_json(FLAGS.probes_output, report)


if __name__ == "__main__":
    app.run(main)
