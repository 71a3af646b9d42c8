"""SQuAD v1.1 and v2.0 fine-tuning, with the flags of the original
run_squad_v1.py and run_squad_v2.py (a flagfile for either runs as is).

  python3 run_squad.py --flagfile=configs/squad/v1.flags \
      --train_file=train-v1.1.json --predict_file=dev-v1.1.json \
      --albert_config_file=albert_base/albert_config.json \
      --spm_model_file=albert_base/30k-clean.model \
      --init_checkpoint=albert_base --output_dir=runs/squad_v1

`--version_2_with_negative` selects the v2 head and scoring. Every saved
checkpoint is scored on --predict_file; the best by F1 is kept, and the
prediction files come from it.
"""

from absl import app
from absl import flags

from albert_tf import fileio
from albert_tf import optimization
from albert_tf import runner_flags
from albert_tf.data import squad
from albert_tf.tasks import squad as squad_task

FLAGS = flags.FLAGS

# The original's flags (run_squad_v1.py and run_squad_v2.py), names and
# defaults unchanged.
flags.DEFINE_string("train_file", None, "SQuAD json for training. E.g., "
                    "train-v1.1.json")
flags.DEFINE_string("predict_file", None, "SQuAD json for predictions. "
                    "E.g., dev-v1.1.json or test-v1.1.json")
flags.DEFINE_string("train_feature_file", None, "Cached training features "
                    "(TFRecord; default <output_dir>/train.tf_record).")
flags.DEFINE_string("predict_feature_file", None, "Cached predict features "
                    "(TFRecord; default <output_dir>/predict.tf_record).")
flags.DEFINE_string("predict_feature_left_file", None, "The predict "
                    "features' bookkeeping, as JSON, never a pickle "
                    "(default <output_dir>/predict_left.json).")
flags.DEFINE_integer("max_seq_length", 384, "The maximum total input "
                     "sequence length after tokenization.")
flags.DEFINE_integer("doc_stride", 128, "When splitting up a long document "
                     "into chunks, how much stride to take between chunks.")
flags.DEFINE_integer("max_query_length", 64, "The maximum number of tokens "
                     "for the question.")
flags.DEFINE_bool("do_train", False, "Whether to run training.")
flags.DEFINE_bool("do_predict", False, "Whether to run eval on the dev set "
                  "(every checkpoint) and write the best one's predictions.")
flags.DEFINE_integer("train_batch_size", 32, "Total batch size for "
                     "training.")
flags.DEFINE_integer("predict_batch_size", 8, "Total batch size for "
                     "predictions.")
flags.DEFINE_float("learning_rate", 5e-5, "The initial learning rate for "
                   "Adam.")
flags.DEFINE_float("num_train_epochs", 3.0, "Total number of training "
                   "epochs to perform.")
flags.DEFINE_float("warmup_proportion", 0.1, "Proportion of training to "
                   "perform linear learning rate warmup for.")
flags.DEFINE_integer("save_checkpoints_steps", 1000, "How often to save "
                     "the model checkpoint.")
flags.DEFINE_integer("iterations_per_loop", 1000, "How many steps to make "
                     "in each host call (at most save_checkpoints_steps).")
flags.DEFINE_integer("n_best_size", 20, "The total number of n-best "
                     "predictions to generate in nbest_predictions.json.")
flags.DEFINE_integer("max_answer_length", 30, "The maximum length of an "
                     "answer that can be generated.")
flags.DEFINE_bool("use_einsum", True, "Accepted for compatibility: the "
                  "original chose tf.einsum or matmul for TFLite; Keras "
                  "layers decide here.")
# run_squad_v2.py's.
flags.DEFINE_integer("start_n_top", 5, "Beam size for the start position "
                     "(v2).")
flags.DEFINE_integer("end_n_top", 5, "Beam size for the end position (v2).")
flags.DEFINE_float("dropout_prob", 0.1, "Dropout of the answer-class head "
                   "(v2).")
# New.
flags.DEFINE_bool("version_2_with_negative", False, "SQuAD v2.0: questions "
                  "may have no answer; the XLNet-style head of "
                  "run_squad_v2.py and the v2.0 scoring.")
flags.DEFINE_float("null_score_diff_threshold", 0.0, "v2: answer \"\" when "
                   "the null score is >= this. The original tuned it on the "
                   "predict set itself; both results are reported "
                   "(f1 here, dev_tuned_f1 as the original).")
flags.DEFINE_integer("num_workers", 1, "Processes converting examples to "
                     "features (same output for any number).")
runner_flags.define_finetune_flags(FLAGS)
runner_flags.define_common_flags(FLAGS)
flags.mark_flags_as_required(["output_dir", "albert_config_file"])


def main(argv):
    del argv  # Unused.
    if not (FLAGS.do_train or FLAGS.do_predict or FLAGS.export_dir):
        raise app.UsageError("at least one of --do_train, --do_predict or "
                             "--export_dir is required")
    if FLAGS.do_train and not FLAGS.train_file:
        raise app.UsageError("--do_train needs --train_file")
    if FLAGS.do_predict and not FLAGS.predict_file:
        raise app.UsageError("--do_predict needs --predict_file")
    options = squad.FeatureOptions(
        max_seq_length=FLAGS.max_seq_length, doc_stride=FLAGS.doc_stride,
        max_query_length=FLAGS.max_query_length,
        do_lower_case=FLAGS.do_lower_case)
    albert_config = runner_flags.finetune_config(FLAGS)
    # Steps from epochs, as the original. It read --train_file even to
    # predict (v2); here a predict-only run needs no train_file.
    num_train_steps = 1
    if FLAGS.train_file:
        num_train_steps = squad_task.num_train_steps(
            FLAGS.train_file, FLAGS.train_batch_size, FLAGS.num_train_epochs)
    runner_flags.setup_runtime(FLAGS)
    strategy = runner_flags.strategy_from_flags(FLAGS)
    run_config = runner_flags.run_config_from_flags(
        FLAGS, num_train_steps, FLAGS.train_batch_size,
        keep_checkpoint_max=None)
    out = FLAGS.output_dir
    task = squad_task.SquadTask(
        albert_config, optimization.OptimizerConfig(
            optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate,
            num_train_steps=num_train_steps,
            num_warmup_steps=int(num_train_steps * FLAGS.warmup_proportion)),
        version_2_with_negative=FLAGS.version_2_with_negative,
        spm_model_file=FLAGS.spm_model_file, vocab_file=FLAGS.vocab_file,
        options=options, prediction=squad_task.PredictionConfig(
            n_best_size=FLAGS.n_best_size,
            max_answer_length=FLAGS.max_answer_length,
            start_n_top=FLAGS.start_n_top, end_n_top=FLAGS.end_n_top,
            null_score_diff_threshold=FLAGS.null_score_diff_threshold),
        train_file=FLAGS.train_file, predict_file=FLAGS.predict_file,
        train_feature_file=FLAGS.train_feature_file or fileio.join(
            out, "train.tf_record"),
        predict_feature_file=FLAGS.predict_feature_file or fileio.join(
            out, "predict.tf_record"),
        predict_feature_left_file=FLAGS.predict_feature_left_file
        or fileio.join(out, "predict_left.json"),
        predict_batch_size=FLAGS.predict_batch_size,
        num_workers=FLAGS.num_workers, dtype=FLAGS.dtype,
        dropout_prob=FLAGS.dropout_prob, seed=FLAGS.seed,
        pad_to_multiple=runner_flags.padding_from_flags(FLAGS),
        model_options=runner_flags.model_options(FLAGS))
    # SQuAD evaluates what it predicts; without a train_file there is no
    # last step to wait for.
    runner_flags.run_finetune(FLAGS, task, albert_config, run_config,
                              strategy, do_eval=FLAGS.do_predict,
                              wait_for_checkpoints=bool(FLAGS.train_file))


if __name__ == "__main__":
    app.run(main)
