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

import os

import numpy as np
from absl import app
from absl import flags
from absl import logging

import common

flags.DEFINE_string("work_dir", "/tmp/albert_paper", "pretrain_runs.py's.")
flags.DEFINE_string("data_dir", common.SST2_DIR, "SST-2.")
flags.DEFINE_list("sizes", ["1000", "all"], "Labelled examples.")
flags.DEFINE_list("l2", ["0.001", "0.01", "0.1"], "L2 strengths; the best "
                  "on dev is reported, as for every arm alike.")
flags.DEFINE_string("output", os.path.join(common.RESULTS,
                                           "linear_probe.json"), "JSON.")
FLAGS = flags.FLAGS

MAX_SEQ_LENGTH = 64


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
    train_text, train_y = common.read_sst2(FLAGS.data_dir, "train")
    dev_text, dev_y = common.read_sst2(FLAGS.data_dir, "dev")
    spm_model = os.path.join(work, "spm.model")
    # The learning curve's seed-0 subsets (learning_curve._subset_dir).
    order = np.random.RandomState(1000).permutation(len(train_text))
    dev_inputs = common.sst2_inputs(dev_text, spm_model, MAX_SEQ_LENGTH)
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
            features = _features(model.encoder, common.sst2_inputs(
                [train_text[i] for i in idx], spm_model, MAX_SEQ_LENGTH))
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
    common.write_json(FLAGS.output, report)


if __name__ == "__main__":
    app.run(main)
