"""GLUE fine-tuning, with the original run_classifier.py's flags.

  python run_classifier.py --flagfile=configs/glue/mrpc.flags \
      --data_dir=glue_data --albert_config_file=albert_base/albert_config.json \
      --spm_model_file=albert_base/30k-clean.model \
      --init_checkpoint=albert_base --output_dir=runs/mrpc \
      --do_train --do_eval --do_predict
"""

import math

from absl import app
from absl import flags

from albert_tf import optimization
from albert_tf import runner_flags
from albert_tf.data import glue
from albert_tf.tasks import classification

FLAGS = flags.FLAGS

# The original's flags, names and defaults unchanged.
flags.DEFINE_string("data_dir", None, "The input data dir. Should contain "
                    "the .tsv files (or other data files) for the task.")
flags.DEFINE_string("task_name", None, "The name of the task to train: "
                    + ", ".join(glue.TASK_NAMES))
flags.DEFINE_string("cached_dir", None, "Path to cached training and dev "
                    "tfrecord file (default: output_dir).")
flags.DEFINE_integer("max_seq_length", 512, "The maximum total input "
                     "sequence length after tokenization.")
flags.DEFINE_bool("do_train", False, "Whether to run training.")
flags.DEFINE_bool("do_eval", False, "Whether to run eval on the dev set.")
flags.DEFINE_bool("do_predict", False, "Whether to run the model in "
                  "inference mode on the test set.")
flags.DEFINE_integer("train_batch_size", 32, "Total batch size for "
                     "training.")
flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
flags.DEFINE_integer("predict_batch_size", 8, "Total batch size for "
                     "predict.")
flags.DEFINE_float("learning_rate", 5e-5, "The initial learning rate for "
                   "Adam.")
flags.DEFINE_integer("train_step", 1000, "Total number of training steps.")
flags.DEFINE_alias("num_train_steps", "train_step")
flags.DEFINE_integer("warmup_step", 0, "Number of steps for linear "
                     "learning rate warmup.")
flags.DEFINE_alias("num_warmup_steps", "warmup_step")
flags.DEFINE_integer("save_checkpoints_steps", 1000, "How often to save "
                     "the model checkpoint.")
flags.DEFINE_integer("keep_checkpoint_max", 5, "Accepted for "
                     "compatibility: as the original, every checkpoint is "
                     "kept until evaluated; then only the best and the "
                     "latest stay.")
flags.DEFINE_integer("iterations_per_loop", 1000, "How many steps to make "
                     "in each host call (at most save_checkpoints_steps).")
flags.DEFINE_float("threshold_to_export", math.nan, "Accepted for "
                   "compatibility; the best checkpoint is exported.")
flags.DEFINE_float("classifier_dropout_prob", 0.1, "Dropout on the pooled "
                   "output before the classifier (Table 14's Cls DR).")
runner_flags.define_finetune_flags(FLAGS)
runner_flags.define_common_flags(FLAGS)
flags.mark_flags_as_required(["data_dir", "task_name", "output_dir",
                              "albert_config_file"])


def main(argv):
    del argv  # Unused.
    if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict
            or FLAGS.export_dir or FLAGS.tflite_dir):
        raise app.UsageError("at least one of --do_train, --do_eval, "
                             "--do_predict, --export_dir or --tflite_dir is "
                             "required")
    albert_config = runner_flags.finetune_config(FLAGS)
    runner_flags.setup_runtime(FLAGS)
    strategy = runner_flags.strategy_from_flags(FLAGS)
    run_config = runner_flags.run_config_from_flags(
        FLAGS, FLAGS.train_step, FLAGS.train_batch_size,
        keep_checkpoint_max=None)
    task = classification.ClassificationTask(
        albert_config, FLAGS.task_name, FLAGS.data_dir,
        optimization.OptimizerConfig(
            optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate,
            num_train_steps=FLAGS.train_step,
            num_warmup_steps=FLAGS.warmup_step),
        spm_model_file=FLAGS.spm_model_file, vocab_file=FLAGS.vocab_file,
        do_lower_case=FLAGS.do_lower_case,
        max_seq_length=FLAGS.max_seq_length,
        cached_dir=FLAGS.cached_dir or FLAGS.output_dir,
        eval_batch_size=FLAGS.eval_batch_size,
        predict_batch_size=FLAGS.predict_batch_size, dtype=FLAGS.dtype,
        dropout_prob=FLAGS.classifier_dropout_prob, seed=FLAGS.seed,
        pad_to_multiple=runner_flags.padding_from_flags(FLAGS),
        model_options=runner_flags.model_options(FLAGS))
    runner_flags.run_finetune(FLAGS, task, albert_config, run_config,
                              strategy)


if __name__ == "__main__":
    app.run(main)
