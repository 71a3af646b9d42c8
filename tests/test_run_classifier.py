"""run_classifier end to end on tiny GLUE-format data, and checkpoint
selection."""

import csv
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import conftest
import helpers
from albert_tf import distribute
from albert_tf import training
from albert_tf.tasks import classification

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = pathlib.Path(__file__).resolve().parent
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
           PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]))
SEQ = 16


def _write_tsv(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter="\t", quotechar=None,
                   lineterminator="\n").writerows(rows)


def _glue_data(root, task):
    """GLUE layouts: SST-2 (sentence, label) and STS-B (10 columns)."""
    sentences = conftest.make_sentences(3, 60)
    if task == "sst-2":
        directory = root / "SST-2"
        directory.mkdir(parents=True)
        for split, n in (("train", 24), ("dev", 10)):
            _write_tsv(directory / f"{split}.tsv", [["sentence", "label"]] + [
                [s, str(i % 2)] for i, s in enumerate(sentences[:n])])
        _write_tsv(directory / "test.tsv", [["index", "sentence"]] + [
            [str(i), s] for i, s in enumerate(sentences[30:37])])
    else:
        directory = root / "STS-B"
        directory.mkdir(parents=True)
        header = ["index", "genre", "filename", "year", "old_index",
                  "source1", "source2", "sentence1", "sentence2", "score"]
        for split, n in (("train", 24), ("dev", 10)):
            _write_tsv(directory / f"{split}.tsv", [header] + [
                [str(i), "main", "f", "2012", str(i), "s", "s", a, b,
                 f"{(i * 7) % 6:.1f}"] for i, (a, b) in enumerate(
                    zip(sentences[:n], sentences[1:n + 1]))])
        _write_tsv(directory / "test.tsv", [header[:-1]] + [
            [str(i), "main", "f", "2012", str(i), "s", "s", a, b]
            for i, (a, b) in enumerate(zip(sentences[30:37],
                                           sentences[31:38]))])


@pytest.mark.parametrize("task", ["sst-2", "sts-b"])
def test_train_eval_predict_with_a_flagfile(task, tiny_spm, tmp_path):
    _glue_data(tmp_path / "glue", task)
    config = tmp_path / "albert_config.json"
    config.write_text(json.dumps(helpers.tiny_config(
        vocab_size=320, max_position_embeddings=SEQ).to_dict()))
    out = tmp_path / "out"
    flagfile = tmp_path / "run.flags"
    flagfile.write_text("\n".join([
        f"--task_name={task}", f"--data_dir={tmp_path / 'glue'}",
        f"--albert_config_file={config}",
        f"--spm_model_file={tiny_spm['model']}", f"--output_dir={out}",
        f"--max_seq_length={SEQ}", "--train_batch_size=4",
        "--eval_batch_size=3", "--predict_batch_size=3",
        "--train_step=4", "--warmup_step=1", "--learning_rate=1e-3",
        "--save_checkpoints_steps=2", "--iterations_per_loop=2",
        "--log_every_n_steps=2", "--albert_dropout_prob=0.1",
        "--do_train", "--do_eval", "--do_predict"]) + "\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_classifier.py"),
         f"--flagfile={flagfile}"], env=ENV, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    results = dict(line.split(" = ") for line in
                   (out / "eval_results.txt").read_text().splitlines())
    key = "pearson" if task == "sts-b" else "eval_accuracy"
    assert key in results and "eval_loss" in results
    assert -1 <= float(results[key]) <= 1
    step, best_step, best_value = (out / "best_trial.txt").read_text().split(
        ":")
    assert int(step) == 4 and int(best_step) in (2, 4)
    history = json.loads((out / "eval_history.json").read_text())
    assert float(best_value) == max(h[key] for h in history.values())
    assert tf.train.latest_checkpoint(str(out / "best")).endswith(
        f"ckpt-{best_step}")
    # The 10 dev examples are padded to 12 (batch 3 does not divide 10)
    # and the padding is ignored: accuracy is a multiple of 1/10.
    if task == "sst-2":
        assert round(float(results[key]) * 10, 6) == round(
            float(results[key]) * 10)

    rows = (out / "submit_results.tsv").read_text().splitlines()
    assert rows[0] == "index\tprediction"
    assert [r.split("\t")[0] for r in rows[1:]] == [str(i) for i in range(7)]
    for row in rows[1:]:
        value = row.split("\t")[1]
        if task == "sst-2":
            assert value in ("0", "1")
        else:
            float(value)
    assert "--albert_dropout_prob=0.1" in (out / "flags.txt").read_text()


def test_best_checkpoint_selection_and_pruning(tiny_spm, tmp_path):
    config = helpers.tiny_config(vocab_size=320, max_position_embeddings=SEQ)
    task = classification.ClassificationTask(
        config, 2, False, classification.FineTuneOptimizerConfig())
    trainer = training.Trainer(
        task, distribute.get_strategy("one_device"), training.RunConfig(
            output_dir=str(tmp_path), num_train_steps=3, train_batch_size=2,
            keep_checkpoint_max=None))
    scores = {1: 0.5, 2: 0.9, 3: 0.7}
    for step in (1, 2, 3):
        trainer.global_step.assign(step)
        trainer.manager.save(checkpoint_number=step)

    def evaluate():
        return {"eval_accuracy": scores[int(trainer.global_step.numpy())]}

    trainer.evaluate_checkpoints(evaluate, "eval_accuracy", prune=True)
    assert (tmp_path / "best_trial.txt").read_text() == "3:2:0.9"
    assert tf.train.latest_checkpoint(str(tmp_path / "best")).endswith(
        "ckpt-2")
    # The best and the latest stay; the others are pruned.
    left = sorted(p.name for p in tmp_path.glob("ckpt-*.index"))
    assert left == ["ckpt-2.index", "ckpt-3.index"]
    np.testing.assert_equal(json.loads(
        (tmp_path / "eval_history.json").read_text())["ckpt-1"][
            "eval_accuracy"], 0.5)
