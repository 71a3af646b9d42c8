"""RACE fine-tuning, with the original run_race.py's flags.

  python3 run_race.py --flagfile=configs/race/race.flags \
      --data_dir=race_data --albert_config_file=albert_base/albert_config.json \
      --spm_model_file=albert_base/30k-clean.model \
      --init_checkpoint=albert_base --output_dir=runs/race

`<data_dir>/RACE/{train,dev,test}/{middle,high}/` holds either the released
dataset's one-JSON-article-per-file `*.txt` or the original code's `all.txt`.
"""

from absl import app
from absl import flags

from albert_tf import fileio
from albert_tf import optimization
from albert_tf import runner_flags
from albert_tf.tasks import race

FLAGS = flags.FLAGS

# The original's flags, names and defaults unchanged.
flags.DEFINE_string("data_dir", None, "The input data dir: "
                    "<data_dir>/RACE/{train,dev,test}/{middle,high}/.")
flags.DEFINE_string("task_name", "race", "The name of the task to train.")
flags.DEFINE_string("train_file", None, "Cached training features "
                    "(TFRecord; default <output_dir>/race_train.tf_record).")
flags.DEFINE_string("eval_file", None, "Cached dev features (TFRecord; "
                    "default <output_dir>/race_eval.tf_record).")
flags.DEFINE_string("predict_file", None, "Cached test features (TFRecord; "
                    "default <output_dir>/race_predict.tf_record).")
flags.DEFINE_float("dropout_prob", 0.1, "Dropout on the pooled output "
                   "before the choice scorer.")
flags.DEFINE_integer("max_seq_length", 512, "The maximum total input "
                     "sequence length after tokenization.")
flags.DEFINE_integer("max_qa_length", 128, "The maximum length of the "
                     "question + option side; its last pieces are kept.")
flags.DEFINE_integer("num_keep_checkpoint", 5, "Accepted for "
                     "compatibility (unused, as in the original).")
flags.DEFINE_bool("high_only", False, "Whether to only run the model on "
                  "the high school set.")
flags.DEFINE_bool("middle_only", False, "Whether to only run the model on "
                  "the middle school set.")
flags.DEFINE_bool("do_train", True, "Whether to run training.")
flags.DEFINE_bool("do_eval", True, "Whether to run eval on the dev set.")
flags.DEFINE_bool("do_predict", False, "Whether to run the model in "
                  "inference mode on the test set.")
flags.DEFINE_integer("train_batch_size", 32, "Total batch size for "
                     "training.")
flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
flags.DEFINE_integer("predict_batch_size", 8, "Total batch size for "
                     "predict.")
flags.DEFINE_float("learning_rate", 1e-5, "The initial learning rate for "
                   "Adam.")
flags.DEFINE_integer("train_step", 12000, "Total number of training "
                     "steps.")
flags.DEFINE_integer("warmup_step", 1000, "Number of steps for linear "
                     "learning rate warmup.")
flags.DEFINE_integer("save_checkpoints_steps", 100, "How often to save the "
                     "model checkpoint.")
flags.DEFINE_integer("iterations_per_loop", 1000, "How many steps to make "
                     "in each host call (at most save_checkpoints_steps).")
runner_flags.define_finetune_flags(FLAGS)
runner_flags.define_common_flags(FLAGS)
flags.mark_flags_as_required(["data_dir", "output_dir",
                              "albert_config_file"])


def main(argv):
    del argv  # Unused.
    if FLAGS.task_name.lower() != "race":
        raise app.UsageError(f"--task_name={FLAGS.task_name!r}: only 'race'")
    albert_config = runner_flags.finetune_config(FLAGS)
    runner_flags.setup_runtime(FLAGS)
    strategy = runner_flags.strategy_from_flags(FLAGS)
    run_config = runner_flags.run_config_from_flags(
        FLAGS, FLAGS.train_step, FLAGS.train_batch_size,
        keep_checkpoint_max=None)
    feature_files = {
        split: getattr(FLAGS, f"{split}_file") or fileio.join(
            FLAGS.output_dir, f"race_{split}.tf_record")
        for split in ("train", "eval", "predict")}
    task = race.RaceTask(
        albert_config, FLAGS.data_dir, optimization.OptimizerConfig(
            optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate,
            num_train_steps=FLAGS.train_step,
            num_warmup_steps=FLAGS.warmup_step),
        spm_model_file=FLAGS.spm_model_file, vocab_file=FLAGS.vocab_file,
        do_lower_case=FLAGS.do_lower_case,
        max_seq_length=FLAGS.max_seq_length,
        max_qa_length=FLAGS.max_qa_length, high_only=FLAGS.high_only,
        middle_only=FLAGS.middle_only, feature_files=feature_files,
        eval_batch_size=FLAGS.eval_batch_size,
        predict_batch_size=FLAGS.predict_batch_size, dtype=FLAGS.dtype,
        dropout_prob=FLAGS.dropout_prob, seed=FLAGS.seed,
        pad_to_multiple=runner_flags.padding_from_flags(FLAGS),
        model_options=runner_flags.model_options(FLAGS))
    runner_flags.run_finetune(FLAGS, task, albert_config, run_config,
                              strategy)


if __name__ == "__main__":
    app.run(main)
