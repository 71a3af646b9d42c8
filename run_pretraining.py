"""ALBERT pretraining (MLM + SOP), the original run_pretraining.py's flags.

  # Quickstart: no data given -> Python's docs as corpus, small model, CPU.
  python run_pretraining.py

  # The paper's recipe.
  python run_pretraining.py --flagfile=configs/pretrain_base.flags \
      --input_file='gs://bucket/pretrain/*.tfrecord' --output_dir=...
"""

import os

from absl import app
from absl import flags
from absl import logging

from albert_tf import runner_flags
from albert_tf import quickstart
from albert_tf.config import AlbertConfig
from albert_tf.tasks import pretraining

FLAGS = flags.FLAGS

# The original's flags, names and defaults unchanged.
flags.DEFINE_string("albert_config_file", None,
                    "The config json file corresponding to the pre-trained "
                    "ALBERT model (quickstart: a small built-in config).")
flags.DEFINE_string("input_file", None,
                    "Input TF example files (can be a glob or comma "
                    "separated). Unset: the quickstart builds them.")
# New: the export's raw-text signatures (serve_text, mlm, sop) need it.
flags.DEFINE_string("spm_model_file", None,
                    "SentencePiece model of the data, for the export's "
                    "text signatures (quickstart: its own).")
# New: the original evaluated on --input_file itself.
flags.DEFINE_string("eval_input_file", None,
                    "TF example files to evaluate on (glob or comma "
                    "separated). Default: --input_file, as the original; "
                    "the quickstart uses documents it holds out.")
flags.DEFINE_string("output_dir", None,
                    "The output directory where the model checkpoints will "
                    "be written (quickstart default: ./albert_quickstart).")
flags.DEFINE_string("init_checkpoint", None,
                    "Initial checkpoint: TF1, HF or albert_tf, a prefix or "
                    "a directory (the format is detected).")
flags.DEFINE_integer("max_seq_length", 512, "The maximum total input "
                     "sequence length after WordPiece tokenization.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Maximum number of "
                     "masked LM predictions per sequence.")
flags.DEFINE_bool("do_train", True, "Whether to run training.")
flags.DEFINE_bool("do_eval", False, "Whether to run eval on the dev set.")
flags.DEFINE_integer("train_batch_size", 4096, "Total batch size for "
                     "training.")
flags.DEFINE_integer("eval_batch_size", 64, "Total batch size for eval.")
flags.DEFINE_enum("optimizer", "lamb", ["adamw", "lamb"], "The optimizer "
                  "for training.")
flags.DEFINE_float("learning_rate", 0.00176, "The initial learning rate.")
flags.DEFINE_float("poly_power", 1.0, "The power of poly decay.")
flags.DEFINE_integer("num_train_steps", 125000, "Number of training steps.")
flags.DEFINE_integer("num_warmup_steps", 3125, "Number of warmup steps.")
flags.DEFINE_integer("start_warmup_step", 0, "The starting step of warmup.")
flags.DEFINE_integer("save_checkpoints_steps", 5000, "How often to save "
                     "the model checkpoint.")
flags.DEFINE_integer("keep_checkpoint_max", 5, "How many checkpoints to "
                     "keep.")
flags.DEFINE_integer("iterations_per_loop", 1000, "How many steps to make "
                     "in each estimator call.")
flags.DEFINE_integer("max_eval_steps", 100, "Maximum number of eval steps.")
flags.DEFINE_bool("init_from_group0", False, "Whether to initialize "
                  "parameters of other groups from group 0.")
flags.DEFINE_float("masked_lm_budget", 0, "Accepted for compatibility "
                     "and has no effect, as in the original: there, a value "
                     "> 0 made the input parse token_boundary, but the "
                     "model still read masked_lm_positions.")
flags.DEFINE_float("sentence_loss_weight", 1.0, "Weight of the sentence "
                   "(SOP or NSP) loss; 0 pretrains with MLM only (the "
                   "paper's Table 5 'None'). Not in the original, which "
                   "always adds the sentence loss with weight 1.",
                   lower_bound=0.0)
runner_flags.define_common_flags(FLAGS)

QUICKSTART_OUTPUT_DIR = "albert_quickstart"


def main(argv):
    del argv  # Unused.
    runner_flags.check_values(FLAGS)  # Before the quickstart writes data.
    spm_model_file = FLAGS.spm_model_file
    if FLAGS.input_file is None:
        logging.info("No --input_file: running the quickstart on Python's "
                     "own documentation.")
        if FLAGS.output_dir is None:
            FLAGS.output_dir = QUICKSTART_OUTPUT_DIR
        runner_flags.set_defaults(FLAGS, quickstart.QUICKSTART_FLAGS)
        if FLAGS.export_dir is None:
            FLAGS.export_dir = os.path.join(FLAGS.output_dir, "export")
        data = quickstart.prepare(
            os.path.join(FLAGS.output_dir, "data"), seed=FLAGS.seed,
            max_seq_length=FLAGS.max_seq_length,
            max_predictions_per_seq=FLAGS.max_predictions_per_seq)
        FLAGS.input_file = data.input_file
        if FLAGS.eval_input_file is None:
            FLAGS.eval_input_file = data.eval_input_file
        if FLAGS.spm_model_file is None:
            FLAGS.spm_model_file = data.spm_model_file  # For flags.txt.
        spm_model_file = FLAGS.spm_model_file
        albert_config = quickstart.QUICKSTART_CONFIG
        if FLAGS.albert_config_file:
            albert_config = AlbertConfig.from_json_file(
                FLAGS.albert_config_file)
        else:
            # The built-in config, as the run directory records it (written
            # with flags.txt), so that --flagfile=flags.txt replays the run.
            FLAGS.albert_config_file = os.path.join(FLAGS.output_dir,
                                                    "albert_config.json")
    else:
        if not FLAGS.albert_config_file or not FLAGS.output_dir:
            raise app.UsageError("--albert_config_file and --output_dir are "
                                 "required with --input_file")
        albert_config = AlbertConfig.from_json_file(FLAGS.albert_config_file)
    if FLAGS.masked_lm_budget:
        logging.warning("--masked_lm_budget=%g has no effect (as in the "
                        "original run_pretraining.py)", FLAGS.masked_lm_budget)
    runner_flags.setup_runtime(FLAGS)
    strategy = runner_flags.strategy_from_flags(FLAGS)
    run_config = runner_flags.run_config_from_flags(
        FLAGS, FLAGS.num_train_steps, FLAGS.train_batch_size,
        FLAGS.keep_checkpoint_max)
    optimizer_config = pretraining.OptimizerConfig(
        optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate,
        num_train_steps=FLAGS.num_train_steps,
        num_warmup_steps=FLAGS.num_warmup_steps,
        start_warmup_step=FLAGS.start_warmup_step,
        poly_power=FLAGS.poly_power)
    # Resolved (and written back into FLAGS) before flags.txt is made.
    model_options = runner_flags.model_options(FLAGS)
    results = pretraining.run(
        albert_config, run_config, optimizer_config, strategy,
        input_file=FLAGS.input_file, max_seq_length=FLAGS.max_seq_length,
        eval_input_file=FLAGS.eval_input_file,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq,
        do_train=FLAGS.do_train, do_eval=FLAGS.do_eval,
        eval_batch_size=FLAGS.eval_batch_size,
        max_eval_steps=FLAGS.max_eval_steps,
        init_checkpoint=FLAGS.init_checkpoint,
        init_from_group0=FLAGS.init_from_group0,
        allow_partial_init=FLAGS.allow_partial_init, dtype=FLAGS.dtype,
        export_dir=FLAGS.export_dir, seed=FLAGS.seed,
        spm_model_file=spm_model_file,
        restart_input=FLAGS.restart_input_on_new_data,
        flags_text=runner_flags.flags_text(FLAGS),
        sentence_loss_weight=FLAGS.sentence_loss_weight,
        model_options=model_options)
    if results:
        logging.info("Final eval: %s", " ".join(
            f"{k}={v:.4f}" for k, v in sorted(results.items())))


if __name__ == "__main__":
    app.run(main)
