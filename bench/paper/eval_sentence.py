"""Table 5 in miniature: each pretraining objective on held-out NSP and SOP.

Scores the last checkpoint of each pretrain_runs.py run (mlm, nsp, sop)
on the held-out documents (every 20th document of each corpus file, which
neither the vocabulary nor any run trained on), built twice by
create_pretraining_data: with NSP negatives (`--random_next_sentence`) and
with SOP negatives. Each is read through the library's own pretraining
input and eval metrics (tasks.pretraining.PretrainingTask.metric_sums via
training.Trainer.evaluate), one pass over each set.

The sentence head's label 1 means "not the original order" for SOP and
"random second segment" for NSP, so one head is scored on both, as the
paper's Table 5 does. The MLM-only run's sentence head never trained
(--sentence_loss_weight=0): its scores are those of the untrained head.

  python3 bench/paper/eval_sentence.py --work_dir=/tmp/albert_paper
"""

from __future__ import annotations

import json
import os
import tempfile

from absl import app
from absl import flags
from absl import logging

import common  # pylint: disable=g-import-not-at-top

flags.DEFINE_string("work_dir", "/tmp/albert_paper", "pretrain_runs.py's.")
flags.DEFINE_list("runs", ["mlm", "nsp", "sop"], "Runs to score.")
flags.DEFINE_integer("eval_batch_size", 64, "Sequences per batch.")
flags.DEFINE_integer("curve_sequences", 2048, "Held-out sequences per set "
                     "for each checkpoint's point on the pretraining "
                     "curves; 0 skips the curves.")
flags.DEFINE_string("output", os.path.join(common.RESULTS, "table5.json"),
                    "JSON.")
FLAGS = flags.FLAGS

# Paper, Table 5 (ALBERT-base, intrinsic tasks): accuracy on NSP and SOP.
PAPER = {"mlm": {"nsp": 52.4, "sop": 53.3, "mlm": 54.9},
         "nsp": {"nsp": 90.5, "sop": 52.0, "mlm": 54.5},
         "sop": {"nsp": 78.9, "sop": 86.5, "mlm": 54.0}}


def _count_records(pattern: str) -> int:
    import tensorflow as tf
    return sum(1 for f in tf.io.gfile.glob(pattern)
               for _ in tf.compat.v1.io.tf_record_iterator(f))


def score(run_dir: str, pattern: str, checkpoint: str | None = None,
          max_sequences: int | None = None,
          eval_batch_size: int = 64) -> dict:
    """A run's checkpoint (default: last) on TFRecords; exact ratios."""
    import keras
    import tensorflow as tf

    from albert_tf import training
    from albert_tf.config import AlbertConfig
    from albert_tf.data import pretraining_input
    from albert_tf.tasks import pretraining

    with open(os.path.join(run_dir, "flags.txt")) as f:
        flag_lines = dict(line.strip().lstrip("-").split("=", 1)
                          for line in f if "=" in line)
    seq = int(flag_lines["max_seq_length"])
    preds = int(flag_lines["max_predictions_per_seq"])
    config = AlbertConfig.from_json_file(
        os.path.join(run_dir, "albert_config.json"))
    checkpoint = checkpoint or tf.train.latest_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"{run_dir}: no checkpoint; run "
                                f"bench/paper/pretrain_runs.py first")
    num_steps = _count_records(pattern) // eval_batch_size
    if max_sequences:
        num_steps = min(num_steps, max_sequences // eval_batch_size)
    keras.backend.clear_session()
    task = pretraining.PretrainingTask(config,
                                       pretraining.OptimizerConfig())
    with tempfile.TemporaryDirectory() as tmp:
        trainer = training.Trainer(
            task, tf.distribute.get_strategy(),
            training.RunConfig(output_dir=tmp, num_train_steps=1,
                               train_batch_size=eval_batch_size))
        # The model only: an MLM-only run's optimizer has no slots for
        # the frozen pooler and head, so its variable list differs.
        tf.train.Checkpoint(model=trainer.model).read(
            checkpoint).expect_partial()

        def dataset_fn(context):
            return pretraining_input.pretraining_dataset(
                pattern, seq, preds, eval_batch_size,
                is_training=False, input_context=context,
                vocab_size=config.vocab_size)

        results = trainer.evaluate(dataset_fn, num_steps)
    results["checkpoint"] = checkpoint
    results["sequences"] = num_steps * eval_batch_size
    return results


def _run_dir(run: str) -> str:
    return os.path.join(FLAGS.work_dir, "runs", run)


def _heldout(task: str) -> str:
    return os.path.join(FLAGS.work_dir, "data", f"heldout_{task}",
                        "data-*.tfrecord")


def _curve(run: str) -> list[dict]:
    """Every kept checkpoint of `run` on the first curve_sequences of each
    held-out set: the pretraining curves on unseen documents."""
    import tensorflow as tf
    state = tf.train.get_checkpoint_state(
        os.path.join(FLAGS.work_dir, "runs", run))
    points = []
    for path in state.all_model_checkpoint_paths:
        point = {"step": int(path.rsplit("-", 1)[1])}
        for task in ("nsp", "sop"):
            r = score(_run_dir(run), _heldout(task), path,
                      FLAGS.curve_sequences, FLAGS.eval_batch_size)
            point[task] = r["sentence_order_accuracy"]
            if task == "sop":
                point["mlm"] = r["masked_lm_accuracy"]
        logging.info("%s %s", run, point)
        points.append(point)
    return points


def main(argv):
    del argv  # Unused.
    report = {"runs": {}, "curves": {}, "paper_table5": PAPER,
              "curve_sequences": FLAGS.curve_sequences, "data": {}}
    # Label balance (always answering the majority label scores
    # max(f, 1 - f)) and, for the training data, how many label-1 pairs
    # are random-document pairs rather than swapped ones.
    for name in ("heldout_nsp", "heldout_sop", "sop", "nsp"):
        with open(os.path.join(FLAGS.work_dir, "data", name,
                               "stats.json")) as f:
            stats = json.load(f)
        report["data"][name] = {"instances": stats["instances"],
                                **stats["sop"]}
    for run in FLAGS.runs:
        row = {}
        for task in ("nsp", "sop"):
            r = score(_run_dir(run), _heldout(task),
                      eval_batch_size=FLAGS.eval_batch_size)
            row[task] = r
            logging.info("%s on held-out %s: %s", run, task, r)
        row["sentence_accuracy"] = {
            t: row[t]["sentence_order_accuracy"] for t in ("nsp", "sop")}
        row["masked_lm_accuracy"] = row["sop"]["masked_lm_accuracy"]
        report["runs"][run] = row
        if FLAGS.curve_sequences:
            report["curves"][run] = _curve(run)
    common.write_json(FLAGS.output, report)
    for run, row in report["runs"].items():
        logging.info("%-4s NSP %.3f  SOP %.3f  MLM %.3f", run,
                     row["sentence_accuracy"]["nsp"],
                     row["sentence_accuracy"]["sop"],
                     row["masked_lm_accuracy"])


if __name__ == "__main__":
    app.run(main)
