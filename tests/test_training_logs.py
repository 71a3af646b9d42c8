"""What the training loop logs is named for what it measures."""

import numpy as np
import tensorflow as tf
from keras import ops

import helpers
from albert_tf import distribute
from albert_tf import losses
from albert_tf import optimization
from albert_tf import training
from albert_tf.models import AlbertClassifier


class _Task:
    """A classifier task whose metric, like the fine-tuning tasks', is
    named for evaluation (`eval_accuracy`)."""

    def build_model(self):
        return AlbertClassifier(helpers.tiny_config(), num_labels=2)

    def build_optimizer(self):
        return optimization.build_optimizer(
            optimization.OptimizerConfig(num_train_steps=2), "float32")

    def loss_terms(self, outputs, features, num_replicas):
        return {"loss": losses.mean_terms(losses.per_example_nll(
            outputs["logits"], features["label_ids"]))}

    def metric_sums(self, outputs, features):
        correct = ops.cast(ops.equal(ops.argmax(outputs["logits"], -1),
                                     ops.cast(features["label_ids"],
                                              "int64")), "float32")
        return {"eval_accuracy": (ops.sum(correct), ops.cast(
            ops.shape(correct)[0], "float32"))}


def test_training_batch_metrics_are_not_logged_as_eval(tmp_path):
    trainer = training.Trainer(
        _Task(), distribute.get_strategy("one_device"), training.RunConfig(
            output_dir=str(tmp_path), num_train_steps=2, train_batch_size=2,
            log_every_n_steps=1, save_checkpoints_steps=2))
    config = helpers.tiny_config()
    inputs = helpers.random_inputs(config)
    data = {k: inputs[k] for k in ("input_ids", "input_mask", "segment_ids")}
    data["label_ids"] = np.array([0, 1], "int32")
    trainer.train(lambda _: tf.data.Dataset.from_tensors(data).repeat())
    assert len(trainer.history) == 2
    for logs in trainer.history:
        assert "train_batch_accuracy" in logs
        assert not [key for key in logs if key.startswith("eval_")], logs
