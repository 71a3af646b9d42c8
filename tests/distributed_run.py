"""Runs a few pretraining steps under a strategy; used by test_training.py.

  python distributed_run.py STRATEGY RECORDS OUT.json [NUM_LOGICAL_CPUS]

Writes the per-step losses and a digest of the final weights as JSON. With
multi_worker_mirrored, TF_CONFIG (set by the test) describes the cluster.
ACCUMULATION_STEPS (default 1) sets gradient_accumulation_steps.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf

strategy_name, records, out_path = sys.argv[1:4]
if len(sys.argv) > 4:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * int(sys.argv[4]))

import keras  # noqa: E402

import pretraining_fixtures as fx  # noqa: E402
from albert_tf import distribute  # noqa: E402
from albert_tf import training  # noqa: E402
from albert_tf.data import pretraining_input  # noqa: E402
from albert_tf.tasks import pretraining  # noqa: E402

keras.utils.set_random_seed(0)
tf.config.experimental.enable_op_determinism()
strategy = distribute.get_strategy(strategy_name)
config = fx.albert_config()
steps, batch = 5, 8
task = pretraining.PretrainingTask(config, pretraining.OptimizerConfig(
    learning_rate=0.01, num_train_steps=steps, num_warmup_steps=1))
run_config = training.RunConfig(
    output_dir=out_path + ".ckpt", num_train_steps=steps,
    train_batch_size=batch, save_checkpoints_steps=steps,
    iterations_per_loop=1, log_every_n_steps=1,
    checkpoint_input_pipeline=False,
    gradient_accumulation_steps=int(os.environ.get("ACCUMULATION_STEPS", 1)))
trainer = training.Trainer(task, strategy, run_config)


def dataset_fn(context):
    # Eval order (no shuffle): N replicas together read what one device does.
    return pretraining_input.pretraining_dataset(
        records, fx.SEQ, fx.PREDICTIONS,
        context.get_per_replica_batch_size(batch), is_training=False,
        input_context=context)


trainer.train(dataset_fn)
weights = {v.path: float(np.asarray(v, np.float64).sum())
           for v in trainer.model.weights}
with open(out_path, "w") as f:
    json.dump({"losses": [h["loss"] for h in trainer.history],
               "replicas": strategy.num_replicas_in_sync,
               "weights": weights}, f)
