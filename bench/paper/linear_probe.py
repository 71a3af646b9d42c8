"""Linear probes: is the sentiment in the pretrained features at all?

Freezes each encoder and fits an L2-regularised logistic regression on its
features of n labelled SST-2 examples (the learning curve's seed-0
subset), then scores dev. Two feature sets: the mean of the sequence
output over real tokens, and the pooled [CLS] output. If a pretrained
encoder's frozen features are no better than a random encoder's, what
fails is the representation, not the fine-tuning recipe.

  python3 bench/paper/linear_probe.py --work_dir=/tmp/albert_paper
"""

from __future__ import annotations

import csv
import json
import os
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
flags.DEFINE_list("sizes", ["1000", "all"], "Labelled examples.")
flags.DEFINE_list("l2", ["0.001", "0.01", "0.1"], "L2 strengths; the best "
                  "on dev is reported, as for every arm alike.")
flags.DEFINE_string("output", os.path.join(
    ROOT, "bench", "results", "paper", "linear_probe.json"), "JSON.")
FLAGS = flags.FLAGS

MAX_SEQ_LENGTH = 64


def _read(split: str) -> tuple[list[str], np.ndarray]:
    with open(os.path.join(FLAGS.data_dir, f"{split}.tsv"),
              encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quotechar=None))[1:]
    return [r[0] for r in rows], np.array([int(r[1]) for r in rows])


def _inputs(texts: list[str]) -> dict:
    """[CLS] text [SEP] ids as run_classifier builds them (single text)."""
    from albert_tf.data import glue
    from albert_tf.tokenization import full_tokenizer
    processor = glue.get_processor("sst-2", use_spm=True, do_lower_case=True)
    tokenizer = full_tokenizer.FullTokenizer(
        vocab_file=None, do_lower_case=True,
        spm_model_file=os.path.join(FLAGS.work_dir, "spm.model"))
    ids = np.zeros((len(texts), MAX_SEQ_LENGTH), np.int32)
    for i, text in enumerate(texts):
        pieces = tokenizer.tokenize(processor.process_text(text))
        row = [2] + tokenizer.convert_tokens_to_ids(
            pieces[:MAX_SEQ_LENGTH - 2]) + [3]
        ids[i, :len(row)] = row
    return {"input_ids": ids, "input_mask": (ids > 0).astype(np.int32),
            "segment_ids": np.zeros_like(ids)}


def _features(encoder, inputs: dict) -> dict[str, np.ndarray]:
    mean, pooled = [], []
    for i in range(0, len(inputs["input_ids"]), 256):
        batch = {k: v[i:i + 256] for k, v in inputs.items()}
        out = encoder(batch, training=False)
        mask = batch["input_mask"][..., None].astype(np.float32)  # [B, T, 1]
        seq = out["sequence_output"].numpy()  # [B, T, H]
        mean.append((seq * mask).sum(1) / mask.sum(1))
        pooled.append(out["pooled_output"].numpy())  # [B, H]
    return {"mean": np.concatenate(mean), "pooled": np.concatenate(pooled)}


def _logistic_regression(x, y, x_dev, y_dev, l2: float) -> float:
    """Dev accuracy of an L2 logistic regression on standardised x."""
    import scipy.optimize
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x = np.c_[(x - mu) / sd, np.ones(len(x))]
    x_dev = np.c_[(x_dev - mu) / sd, np.ones(len(x_dev))]

    def loss_and_grad(w):
        z = x @ w
        loss = np.mean(np.logaddexp(0, z) - y * z) + l2 * w[:-1] @ w[:-1]
        grad = x.T @ (1 / (1 + np.exp(-z)) - y) / len(y)
        grad[:-1] += 2 * l2 * w[:-1]
        return loss, grad

    w = scipy.optimize.minimize(loss_and_grad, np.zeros(x.shape[1]),
                                jac=True, method="L-BFGS-B").x
    return float(np.mean((x_dev @ w > 0) == y_dev))


def main(argv):
    del argv  # Unused.
    import keras
    import tensorflow as tf

    from albert_tf import checkpoints
    from albert_tf.config import AlbertConfig
    from albert_tf.models import AlbertClassifier

    work = FLAGS.work_dir
    config = AlbertConfig.from_json_file(
        os.path.join(work, "albert_config.json"))
    train_text, train_y = _read("train")
    dev_text, dev_y = _read("dev")
    # The learning curve's seed-0 subsets (learning_curve._subset_dir).
    order = np.random.RandomState(1000).permutation(len(train_text))
    dev_inputs = _inputs(dev_text)
    encoders = {"random": None}
    for run in ("sop", "sop_tapt", "nsp", "mlm"):
        path = tf.train.latest_checkpoint(os.path.join(work, "runs", run))
        if path:
            encoders[run] = path
    # Earlier checkpoints of the SOP run: do more steps help the features?
    for step in (1000, 2000, 4000):
        path = os.path.join(work, "runs", "sop", f"ckpt-{step}")
        if os.path.exists(path + ".index"):
            encoders[f"sop@{step}"] = path
    report = {"encoders": encoders, "l2": FLAGS.l2, "results": {}}
    for name, checkpoint in encoders.items():
        keras.utils.set_random_seed(0)
        model = AlbertClassifier(config, 2)
        model({k: v[:2] for k, v in dev_inputs.items()})
        if checkpoint:
            checkpoints.load_pretrained(model, checkpoint)
        dev_features = _features(model.encoder, dev_inputs)
        for size in FLAGS.sizes:
            n = len(order) if size == "all" else int(size)
            idx = order[:n]
            features = _features(model.encoder,
                                 _inputs([train_text[i] for i in idx]))
            for kind in ("mean", "pooled"):
                scores = {l2: _logistic_regression(
                    features[kind], train_y[idx], dev_features[kind], dev_y,
                    float(l2)) for l2 in FLAGS.l2}
                best = max(scores, key=scores.get)
                report["results"][f"{name}/{size}/{kind}"] = {
                    "dev_accuracy": scores[best], "l2": float(best),
                    "all_l2": scores}
                logging.info("%s %s %s: %.3f (l2 %s)", name, size, kind,
                             scores[best], best)
    os.makedirs(os.path.dirname(FLAGS.output), exist_ok=True)
    with open(FLAGS.output + ".tmp", "w") as f:
        json.dump(report, f, indent=1)
    os.replace(FLAGS.output + ".tmp", FLAGS.output)


if __name__ == "__main__":
    app.run(main)
