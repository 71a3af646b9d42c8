"""SST-2 fine-tuning from the paper runs: recipe choice, learning curve,
pretraining steps and objectives (bench/paper/README.md).

Every fine-tuning run goes through the library's own path
(tasks.classification.ClassificationTask + tasks.finetune.run, what
run_classifier.py calls): AdamW, linear warmup and decay, the best
checkpoint chosen on dev. It is then scored on test (test_labels.tsv),
which nothing was chosen on. Stages, each reading the pretrain_runs.py
work dir:

  select     per arm (pretrained SOP encoder, random init, and the SOP
             encoder after task-adaptive MLM on SST-2's unlabelled train
             text when bench/paper/tapt.py has run), the learning
             rate and encoder dropout with the best dev accuracy at 1,000
             labels, seed 0
  curve      250 / 500 / 1000 / 2000 / all labels x seeds, both arms, each
             with its chosen recipe
  steps      the SOP run's earlier checkpoints (--step_checkpoints), 1,000
             labels; the last one is the curve's
  objectives the MLM-only and NSP encoders, 1,000 and all labels

The labelled subsets are nested: seed s takes the first n examples of one
permutation of train.tsv, so the two arms see the same examples. Finished
runs are kept in the output JSON and skipped on a rerun, but only while
their inputs are the same (checkpoint, vocabulary, subset files, recipe,
steps: `inputs` in each entry); anything else runs again. The curve's 1,000-label seed-0 runs repeat the
runs the recipe was chosen on, so their dev figure is optimistic; test is
not.

  python3 bench/paper/learning_curve.py --work_dir=/tmp/albert_paper
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time

import numpy as np
from absl import app
from absl import flags
from absl import logging

import common
from albert_tf import fileio

flags.DEFINE_string("work_dir", "/tmp/albert_paper", "pretrain_runs.py's.")
flags.DEFINE_string("data_dir", common.SST2_DIR, "SST-2.")
flags.DEFINE_list("stages", ["select", "curve", "steps", "objectives"],
                  "Which stages, in order.")
flags.DEFINE_list("sizes", ["250", "500", "1000", "2000", "all"],
                  "Labelled training examples.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Subset, init and order seeds.")
flags.DEFINE_list("learning_rates", ["1e-4", "3e-4", "1e-3"],
                  "AdamW peak learning rates tried by `select`.")
flags.DEFINE_list("dropouts", ["0.0", "0.1"],
                  "Encoder dropout (--albert_dropout_prob) tried by select.")
flags.DEFINE_list("curve_arms", ["pretrained", "random"],
                  "Arms on the learning curve (tapt: only after tapt.py "
                  "and `select`).")
flags.DEFINE_list("step_checkpoints", ["1000", "2000", "4000"],
                  "Earlier SOP checkpoints the steps stage fine-tunes.")
flags.DEFINE_list("objective_sizes", ["1000", "all"],
                  "Label counts for the objectives stage.")
flags.DEFINE_integer("min_steps", 250, "Fewest fine-tuning steps.")
flags.DEFINE_float("epochs", 3.0, "Epochs when that is more than min_steps.")
flags.DEFINE_integer("train_batch_size", 32, "Fine-tuning batch.")
flags.DEFINE_integer("max_seq_length", 64, "99.9% of SST-2 fits.")
flags.DEFINE_string("output", os.path.join(common.RESULTS,
                                           "learning_curve.json"), "JSON.")
FLAGS = flags.FLAGS

EVALS_PER_RUN = 5  # Dev-scored checkpoints per run (plus step 0).
SELECT_SIZE = 1000


def _subset_dir(work: str, size: str, seed: int) -> str:
    """A GLUE-layout SST-2 dir whose train.tsv has `size` examples.

    Rebuilt from --data_dir on every call (a few ms) and rewritten only
    when it differs, so a changed source never leaves a stale subset.
    """
    out = os.path.join(work, "finetune", "data", f"n{size}_s{seed}", "SST-2")
    rows = common.read_tsv(os.path.join(FLAGS.data_dir, "train.tsv"))
    header, rows = rows[0], rows[1:]
    order = np.random.RandomState(1000 + seed).permutation(len(rows))
    n = len(rows) if size == "all" else int(size)
    text = "".join("\t".join(row) + "\n"
                   for row in [header] + [rows[i] for i in order[:n]])
    os.makedirs(out, exist_ok=True)
    for name in ("dev.tsv", "test.tsv"):
        shutil.copy(os.path.join(FLAGS.data_dir, name), out)
    path = os.path.join(out, "train.tsv")
    if not os.path.exists(path) or fileio.read_text(path) != text:
        fileio.write_atomic(path, text)
    return out


def _inputs(work: str, init: str | None, size: str, seed: int, lr: float,
            dropout: float) -> dict:
    """Everything a run's result depends on; a stored result is reused
    only when this is equal (Results.get)."""
    data_dir = _subset_dir(work, size, seed)
    return {"init": common.checkpoint_fingerprint(init),
            "spm": fileio.fingerprint(os.path.join(work, "spm.model")),
            "config": fileio.fingerprint(os.path.join(
                work, "albert_config.json")),
            "data": {name: fileio.fingerprint(os.path.join(data_dir, name))
                     for name in ("train.tsv", "dev.tsv", "test.tsv")},
            "test_labels": fileio.fingerprint(os.path.join(
                FLAGS.data_dir, "test_labels.tsv")),
            "learning_rate": lr, "dropout": dropout, "seed": seed,
            "steps": _steps(size), "max_seq_length": FLAGS.max_seq_length,
            "train_batch_size": FLAGS.train_batch_size}


def _test_accuracy(output_dir: str) -> float:
    labels = [int(r[1]) for r in common.read_tsv(
        os.path.join(FLAGS.data_dir, "test_labels.tsv"))[1:]]
    probs = np.loadtxt(os.path.join(output_dir, "test_results.tsv"),
                       ndmin=2)
    if len(probs) != len(labels):
        raise ValueError(f"{output_dir}: {len(probs)} predictions for "
                         f"{len(labels)} test labels")
    return float(np.mean(np.argmax(probs, -1) == np.asarray(labels)))


def _steps(size: str) -> int:
    n = 8056 if size == "all" else int(size)
    return max(FLAGS.min_steps,
               math.ceil(FLAGS.epochs * n / FLAGS.train_batch_size))


def finetune(work: str, init: str | None, size: str, seed: int, lr: float,
             dropout: float) -> dict:
    """One run_classifier-equivalent run; returns its dev/test figures."""
    import keras
    import tensorflow as tf

    from albert_tf import optimization
    from albert_tf import training
    from albert_tf.config import AlbertConfig
    from albert_tf.tasks import classification
    from albert_tf.tasks import finetune as finetune_lib

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    data_dir = _subset_dir(work, size, seed)
    steps = _steps(size)
    output_dir = os.path.join(work, "finetune", "tmp_run")
    shutil.rmtree(output_dir, ignore_errors=True)
    config = AlbertConfig.from_json_file(
        os.path.join(work, "albert_config.json")).replace(
            hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    task = classification.ClassificationTask(
        config, "sst-2", os.path.dirname(data_dir),
        optimization.OptimizerConfig(
            optimizer="adamw", learning_rate=lr, num_train_steps=steps,
            num_warmup_steps=steps // 10),
        spm_model_file=os.path.join(work, "spm.model"),
        max_seq_length=FLAGS.max_seq_length,
        cached_dir=os.path.join(os.path.dirname(data_dir), "cache"),
        eval_batch_size=128, predict_batch_size=128, seed=seed,
        pad_to_multiple=16)
    run_config = training.RunConfig(
        output_dir=output_dir, num_train_steps=steps,
        train_batch_size=FLAGS.train_batch_size,
        save_checkpoints_steps=max(1, steps // EVALS_PER_RUN),
        keep_checkpoint_max=None, iterations_per_loop=50,
        log_every_n_steps=10 ** 6)
    start = time.time()
    finetune_lib.run(task, config, run_config, tf.distribute.get_strategy(),
                     do_train=True, do_eval=True, do_predict=True,
                     init_checkpoint=init)
    with open(os.path.join(output_dir, "eval_history.json")) as f:
        history = json.load(f)
    best = training.read_results(os.path.join(
        output_dir, training.BEST_DIR, "eval_results.txt"))
    result = {
        "dev_accuracy": best["eval_accuracy"],
        "best_step": int(best["global_step"]),
        "test_accuracy": _test_accuracy(output_dir),
        "dev_curve": sorted((int(v["global_step"]), v["eval_accuracy"])
                            for v in history.values()),
        "steps": steps, "learning_rate": lr, "dropout": dropout,
        "seconds": round(time.time() - start, 1)}
    shutil.rmtree(output_dir)
    return result


class Results:
    """The output JSON: one entry per finished run, rewritten atomically."""

    def __init__(self, path: str):
        self.path = path
        self.data = {"runs": {}}
        if os.path.exists(path):
            with open(path) as f:
                self.data = json.load(f)

    def get(self, key: str, work: str, init: str | None, size: str,
            seed: int, lr: float, dropout: float) -> dict:
        """The stored run when its inputs are today's; else a new run."""
        inputs = _inputs(work, init, size, seed, lr, dropout)
        old = self.data["runs"].get(key)
        if old is not None and old.get("inputs") != inputs:
            changed = sorted(k for k in inputs
                             if inputs[k] != (old.get("inputs") or {}).get(k))
            logging.warning("%s: stored from other inputs (%s); running it "
                            "again", key, ", ".join(changed))
            del self.data["runs"][key]
        if key not in self.data["runs"]:
            logging.info("fine-tuning %s", key)
            result = finetune(work, init, size, seed, lr, dropout)
            result["inputs"] = inputs
            self.data["runs"][key] = result
            logging.info("  %s", {k: v for k, v in result.items()
                                  if k not in ("dev_curve", "inputs")})
            self.save()
        return self.data["runs"][key]

    def save(self) -> None:
        common.write_json(self.path, self.data)


def _checkpoint(work: str, run: str, step: int | None = None) -> str:
    """The run's checkpoint at `step` (default: its last)."""
    import tensorflow as tf
    directory = os.path.join(work, "runs", run)
    if step is None:
        path = tf.train.latest_checkpoint(directory)
    else:
        path = os.path.join(directory, f"ckpt-{step}")
    if not path or not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"no checkpoint {path or directory}: run "
                                f"bench/paper/pretrain_runs.py first")
    return path


def _summary(runs: dict, prefix: str) -> dict:
    """Mean, min, max over seeds of dev and test accuracy."""
    out = {}
    for metric in ("dev_accuracy", "test_accuracy"):
        values = [v[metric] for k, v in runs.items()
                  if k.rsplit("/", 1)[0] == prefix]
        if values:
            out[metric] = {"mean": float(np.mean(values)),
                           "min": min(values), "max": max(values),
                           "n": len(values)}
    return out


def main(argv):
    del argv  # Unused.
    work = FLAGS.work_dir
    results = Results(FLAGS.output)
    seeds = [int(s) for s in FLAGS.seeds]
    arms = {"pretrained": _checkpoint(work, "sop"), "random": None}
    if os.path.exists(os.path.join(work, "runs", "sop_tapt", "done.json")):
        arms["tapt"] = _checkpoint(work, "sop_tapt")  # bench/paper/tapt.py
    recipe = results.data.setdefault("recipe", {})
    if "select" in FLAGS.stages:
        for arm, init in arms.items():
            scores = {}
            for lr in FLAGS.learning_rates:
                for dropout in FLAGS.dropouts:
                    key = f"select/{arm}/lr{lr}_do{dropout}/{SELECT_SIZE}/0"
                    scores[(lr, dropout)] = results.get(
                        key, work, init, str(SELECT_SIZE), 0, float(lr),
                        float(dropout))["dev_accuracy"]
            lr, dropout = max(scores, key=scores.get)
            recipe[arm] = {"learning_rate": float(lr),
                           "dropout": float(dropout)}
        results.save()
    if not recipe:
        raise ValueError(f"{FLAGS.output} has no chosen recipe: run the "
                         f"select stage first")

    def run_arm(stage: str, arm: str, init, size: str, seed: int,
                recipe_arm: str) -> None:
        r = recipe[recipe_arm]
        results.get(f"{stage}/{arm}/{size}/{seed}", work, init, size, seed,
                    r["learning_rate"], r["dropout"])

    if "curve" in FLAGS.stages:
        for size in FLAGS.sizes:
            for seed in seeds:
                for arm in FLAGS.curve_arms:
                    run_arm("curve", arm, arms[arm], size, seed, arm)
    if "steps" in FLAGS.stages:
        last = arms["pretrained"]
        for step in [int(x) for x in FLAGS.step_checkpoints]:
            path = os.path.join(work, "runs", "sop", f"ckpt-{step}")
            if path == last or not os.path.exists(path + ".index"):
                continue  # The last one is curve/pretrained/1000.
            for seed in seeds:
                run_arm("steps", f"sop_step{step}", path, str(SELECT_SIZE),
                        seed, "pretrained")
    if "objectives" in FLAGS.stages:
        for run in ("mlm", "nsp"):
            for size in FLAGS.objective_sizes:
                for seed in seeds:
                    run_arm("objectives", run, _checkpoint(work, run), size,
                            seed, "pretrained")
    summary = {}
    prefixes = sorted({k.rsplit("/", 1)[0] for k in results.data["runs"]})
    for prefix in prefixes:
        summary[prefix] = _summary(results.data["runs"], prefix)
    results.data["summary"] = summary
    results.data["settings"] = {
        "max_seq_length": FLAGS.max_seq_length,
        "train_batch_size": FLAGS.train_batch_size,
        "min_steps": FLAGS.min_steps, "epochs": FLAGS.epochs,
        "warmup": "10% of steps", "evals_per_run": EVALS_PER_RUN,
        "select_size": SELECT_SIZE, "pretrained": arms["pretrained"]}
    results.save()
    for prefix, s in summary.items():
        logging.info("%-40s dev %s test %s", prefix,
                     s.get("dev_accuracy", {}).get("mean"),
                     s.get("test_accuracy", {}).get("mean"))


if __name__ == "__main__":
    app.run(main)
