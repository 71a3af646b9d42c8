"""Token classification (NER, POS) on CoNLL-format files.

  python3 run_ner.py --data_dir=conll2003 \
      --albert_config_file=albert_base/albert_config.json \
      --spm_model_file=albert_base/30k-clean.model \
      --init_checkpoint=albert_base --output_dir=runs/ner \
      --do_train --do_eval --do_predict --num_train_epochs=3

`--data_dir` holds train.txt, dev.txt and test.txt (or name each file with
--train_file / --dev_file / --test_file); the tag is in --label_column
(default the last). Every checkpoint is scored on dev by entity F1
(seqeval); the best writes predictions.txt (`word [gold] predicted`
CoNLL lines) and, with --export_dir, a SavedModel whose `serve_tokens`
signature tags raw text. The original ALBERT has no such runner; the
flags are those of run_classifier.py.
"""

import math

from absl import app
from absl import flags
from absl import logging

from albert_tf import fileio
from albert_tf import optimization
from albert_tf import runner_flags
from albert_tf.data import conll
from albert_tf.tasks import token_classification

FLAGS = flags.FLAGS

flags.DEFINE_string("data_dir", None, "Directory with train.txt, dev.txt "
                    "and test.txt (CoNLL format).")
flags.DEFINE_string("train_file", None, "Training CoNLL file (default "
                    "<data_dir>/train.txt).")
flags.DEFINE_string("dev_file", None, "Dev CoNLL file for --do_eval "
                    "(default <data_dir>/dev.txt).")
flags.DEFINE_string("test_file", None, "CoNLL file for --do_predict "
                    "(default <data_dir>/test.txt); may have no tag column.")
flags.DEFINE_integer("label_column", -1, "Which whitespace-separated "
                     "column holds the tag (0 is the word; negative counts "
                     "from the end: CoNLL-2003's NER tag is 3 or -1, its "
                     "POS tag 1).")
flags.DEFINE_list("labels", None, "The tags, in label-id order (default: "
                  "those of <output_dir>/label_list.txt from an earlier "
                  "training run, else of the training file, O first).")
flags.DEFINE_string("cached_dir", None, "Where the cached feature "
                    "TFRecords go (default: output_dir).")
flags.DEFINE_integer("max_seq_length", 128, "Pieces per sentence, [CLS] "
                     "and [SEP] included; longer sentences are truncated "
                     "(their last words predicted O; counted in the log).")
flags.DEFINE_bool("do_train", False, "Whether to run training.")
flags.DEFINE_bool("do_eval", False, "Whether to run eval on the dev set.")
flags.DEFINE_bool("do_predict", False, "Whether to tag the test set.")
flags.DEFINE_integer("train_batch_size", 32, "Total batch size for "
                     "training.")
flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
flags.DEFINE_integer("predict_batch_size", 8, "Total batch size for "
                     "predict.")
flags.DEFINE_float("learning_rate", 5e-5, "The initial learning rate for "
                   "Adam.")
flags.DEFINE_integer("train_step", 1000, "Total number of training steps "
                     "(see --num_train_epochs).")
flags.DEFINE_alias("num_train_steps", "train_step")
flags.DEFINE_integer("warmup_step", 0, "Number of steps for linear "
                     "learning rate warmup.")
flags.DEFINE_alias("num_warmup_steps", "warmup_step")
flags.DEFINE_float("num_train_epochs", None, "If set, replaces "
                   "--train_step by ceil(epochs * training sentences / "
                   "train_batch_size).")
flags.DEFINE_integer("save_checkpoints_steps", 1000, "How often to save "
                     "the model checkpoint.")
flags.DEFINE_integer("iterations_per_loop", 1000, "How many steps to make "
                     "in each host call (at most save_checkpoints_steps).")
flags.DEFINE_float("classifier_dropout_prob", 0.1, "Dropout on the "
                   "sequence output before the tag classifier.")
runner_flags.define_finetune_flags(FLAGS)
runner_flags.define_common_flags(FLAGS)
flags.mark_flags_as_required(["output_dir", "albert_config_file"])


def split_files() -> dict:
    """split -> CoNLL path, from --*_file or --data_dir."""
    explicit = {"train": FLAGS.train_file, "eval": FLAGS.dev_file,
                "predict": FLAGS.test_file}
    files = {}
    for split, path in explicit.items():
        if not path and FLAGS.data_dir:
            path = fileio.join(FLAGS.data_dir, conll.SPLIT_FILES[split])
        if path:
            files[split] = path
    return files


def main(argv):
    del argv  # Unused.
    if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict
            or FLAGS.export_dir):
        raise app.UsageError("at least one of --do_train, --do_eval, "
                             "--do_predict or --export_dir is required")
    if FLAGS.label_column == 0:
        raise app.UsageError("--label_column=0 is the word column; the tag "
                             "is in another one (default -1, the last)")
    albert_config = runner_flags.finetune_config(FLAGS)
    files = split_files()
    train_step = FLAGS.train_step
    if FLAGS.num_train_epochs is not None and FLAGS.do_train:
        if "train" not in files:
            raise app.UsageError("--num_train_epochs needs --train_file or "
                                 "--data_dir")
        count = len(conll.read_conll(files["train"], FLAGS.label_column))
        train_step = max(1, math.ceil(
            FLAGS.num_train_epochs * count / FLAGS.train_batch_size))
        logging.info("--num_train_epochs=%g: %d sentences -> %d steps",
                     FLAGS.num_train_epochs, count, train_step)
        FLAGS.train_step = train_step  # Recorded in flags.txt.
    runner_flags.setup_runtime(FLAGS)
    strategy = runner_flags.strategy_from_flags(FLAGS)
    run_config = runner_flags.run_config_from_flags(
        FLAGS, train_step, FLAGS.train_batch_size, keep_checkpoint_max=None)
    task = token_classification.TokenClassificationTask(
        albert_config, files, optimization.OptimizerConfig(
            optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate,
            num_train_steps=train_step,
            num_warmup_steps=FLAGS.warmup_step),
        spm_model_file=FLAGS.spm_model_file, vocab_file=FLAGS.vocab_file,
        do_lower_case=FLAGS.do_lower_case,
        max_seq_length=FLAGS.max_seq_length,
        label_column=FLAGS.label_column, label_list=FLAGS.labels,
        label_list_file=fileio.join(FLAGS.output_dir,
                                    token_classification.LABEL_LIST_FILE),
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
