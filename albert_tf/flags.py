"""Flags shared by the runners, and the helpers that turn them into configs.

Only the runners (top-level run_*.py) call these; library code never reads
FLAGS. The TPU flags keep the original names; `--strategy` and friends are
new.
"""

from __future__ import annotations

import os

from absl import flags
from absl import logging

from albert_tf import distribute
from albert_tf import training

FLAGS = flags.FLAGS


def define_common_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Distribution, precision, logging and the original TPU flags."""
    fv = {"flag_values": flag_values}
    flags.DEFINE_enum("strategy", "one_device", distribute.STRATEGIES,
                      "tf.distribute strategy. --use_tpu implies tpu.", **fv)
    flags.DEFINE_integer("num_gpus", 0, "GPUs per worker (0: CPU).", **fv)
    flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16", "float16"],
                      "Compute dtype; variables, logits and losses stay "
                      "float32. float16 uses dynamic loss scaling.", **fv)
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the training step.",
                      **fv)
    flags.DEFINE_integer("seed", 12345, "Seed for initialisation, dropout "
                         "and the input order.", **fv)
    flags.DEFINE_bool("deterministic", False,
                      "Enable TensorFlow op determinism (reproducible runs "
                      "and resumes, slower).", **fv)
    flags.DEFINE_integer("log_every_n_steps", 100,
                         "Log and write summaries every N steps.", **fv)
    flags.DEFINE_string("export_dir", None,
                        "If set, write a SavedModel here at the end.", **fv)
    # The original TPU flags.
    flags.DEFINE_bool("use_tpu", False, "Whether to use TPU.", **fv)
    flags.DEFINE_string("tpu_name", None,
                        "The Cloud TPU to use: its name, a grpc:// address, "
                        "or 'local' on a TPU VM.", **fv)
    flags.DEFINE_alias("tpu", "tpu_name", **fv)
    flags.DEFINE_string("tpu_zone", None, "GCE zone of the Cloud TPU.", **fv)
    flags.DEFINE_string("gcp_project", None, "GCP project of the Cloud TPU.",
                        **fv)
    flags.DEFINE_string("master", None, "TensorFlow master URL (unused; "
                        "kept for compatibility).", **fv)
    flags.DEFINE_integer("num_tpu_cores", 8, "TPU cores (the TPU system "
                         "decides; kept for compatibility).", **fv)


def setup_runtime() -> None:
    """Seeds and determinism, before any model is built."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(FLAGS.seed)
    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()


def strategy_from_flags(flag_values: flags.FlagValues = FLAGS):
    kind = "tpu" if flag_values.use_tpu else flag_values.strategy
    return distribute.get_strategy(
        kind, num_gpus=flag_values.num_gpus,
        tpu_address=flag_values.tpu_name if kind == "tpu" else None)


def run_config_from_flags(num_train_steps: int, train_batch_size: int,
                          keep_checkpoint_max: int) -> training.RunConfig:
    return training.RunConfig(
        output_dir=FLAGS.output_dir, num_train_steps=num_train_steps,
        train_batch_size=train_batch_size,
        save_checkpoints_steps=FLAGS.save_checkpoints_steps,
        keep_checkpoint_max=keep_checkpoint_max,
        iterations_per_loop=FLAGS.iterations_per_loop,
        log_every_n_steps=FLAGS.log_every_n_steps,
        jit_compile=FLAGS.jit_compile)


def write_flags(output_dir: str) -> None:
    """output_dir/flags.txt: rerun with --flagfile=output_dir/flags.txt."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "flags.txt")
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(FLAGS.flags_into_string())
    os.replace(tmp, path)
    logging.info("Flags written to %s", path)


def set_defaults(values: dict) -> None:
    """Sets flags the command line did not give (e.g. the quickstart's)."""
    for name, value in values.items():
        if not FLAGS[name].present:
            FLAGS[name].value = value
