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
from albert_tf import optimization
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

    key = "pearson" if task == "sts-b" else "eval_accuracy"
    history = json.loads((out / "eval_history.json").read_text())
    # The step-0 checkpoint (the initial weights) is a candidate too, as
    # the original's Estimator saved and evaluated it.
    assert set(history) == {"ckpt-0", "ckpt-2", "ckpt-4"}
    results = training.read_results(str(out / "best" / "eval_results.txt"))
    assert key in results and "eval_loss" in results
    assert -1 <= results[key] <= 1
    step, best_step, best_value = (out / "best_trial.txt").read_text().split(
        ":")
    best = helpers.expected_best_checkpoint(history, key)
    assert int(step) == 4 and int(best_step) == history[best]["global_step"]
    assert float(best_value) == max(h[key] for h in history.values())
    assert tf.train.latest_checkpoint(str(out / "best")).endswith(best)
    assert results == history[best]
    # Pruned: only the best and the latest checkpoint stay.
    assert {p.name for p in out.glob("ckpt-*.index")} == {
        f"{best}.index", "ckpt-4.index"}
    text = (out / "eval_results.txt").read_text()
    assert [line for line in text.splitlines()
            if line.startswith("checkpoint = ")] == [
                "checkpoint = ckpt-0", "checkpoint = ckpt-2",
                "checkpoint = ckpt-4"]
    assert f"best_checkpoint = {best}\n" in text
    # The 10 dev examples are padded to 12 (batch 3 does not divide 10)
    # and the padding is ignored: accuracy is a multiple of 1/10.
    if task == "sst-2":
        assert round(results[key] * 10, 6) == round(results[key] * 10)

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
    if task == "sst-2":
        # The original's test_results.tsv: one row of class probabilities
        # per test example.
        probabilities = np.loadtxt(out / "test_results.tsv", delimiter="\t")
        assert probabilities.shape == (7, 2)
        np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
        assert [str(int(p.argmax())) for p in probabilities] == [
            r.split("\t")[1] for r in rows[1:]]


def _trainer(tmp_path, num_train_steps=3, **run_config):
    config = helpers.tiny_config(vocab_size=320, max_position_embeddings=SEQ)
    task = classification.ClassificationTask(
        config, "sst-2", "unused", optimization.OptimizerConfig(),
        spm_model_file=None, cached_dir="unused", max_seq_length=8)
    return training.Trainer(
        task, distribute.get_strategy("one_device"), training.RunConfig(
            output_dir=str(tmp_path), num_train_steps=num_train_steps,
            train_batch_size=2, keep_checkpoint_max=None, **run_config))


def test_best_checkpoint_selection_and_pruning(tmp_path):
    trainer = _trainer(tmp_path, num_train_steps=4)
    # ckpt-4 ties ckpt-2: the earlier one stays the best (strict >).
    scores = {1: 0.5, 2: 0.9, 3: 0.7, 4: 0.9}
    for step in (1, 2, 3, 4):
        trainer.global_step.assign(step)
        trainer.manager.save(checkpoint_number=step)

    def evaluate():
        return {"eval_accuracy": scores[int(trainer.global_step.numpy())]}

    trainer.evaluate_checkpoints(evaluate, "eval_accuracy", prune=True)
    assert (tmp_path / "best_trial.txt").read_text() == "4:2:0.9"
    assert tf.train.latest_checkpoint(str(tmp_path / "best")).endswith(
        "ckpt-2")
    # The best and the latest stay; the others are pruned.
    left = sorted(p.name for p in tmp_path.glob("ckpt-*.index"))
    assert left == ["ckpt-2.index", "ckpt-4.index"]
    np.testing.assert_equal(json.loads(
        (tmp_path / "eval_history.json").read_text())["ckpt-1"][
            "eval_accuracy"], 0.5)
    assert (tmp_path / "eval_results.txt").read_text().endswith(
        "best_checkpoint = ckpt-2\nbest_eval_accuracy = 0.9\n")


def test_an_evaluator_waits_for_the_training_jobs_checkpoints(tmp_path):
    """--do_train=false --do_eval: evaluate checkpoints as they appear,
    until the last step (the original's separate eval job)."""
    writer = _trainer(tmp_path)
    evaluator = _trainer(tmp_path, eval_poll_seconds=0.2)
    seen = []

    def evaluate():
        seen.append(int(evaluator.global_step.numpy()))
        if len(seen) == 1:  # The training job writes on meanwhile.
            for step in (2, 3):
                writer.global_step.assign(step)
                writer.manager.save(checkpoint_number=step)
        return {"eval_accuracy": 0.1 * seen[-1]}

    writer.global_step.assign(1)
    writer.manager.save(checkpoint_number=1)
    results = evaluator.evaluate_until(evaluate, "eval_accuracy")
    assert seen == [1, 2, 3]
    assert results["global_step"] == 3


def _run_classifier(args):
    return subprocess.run(
        [sys.executable, str(ROOT / "run_classifier.py"), *args], env=ENV,
        capture_output=True, text=True, timeout=600)


def test_runs_cannot_share_or_damage_an_output_dir(tiny_spm, tmp_path):
    _glue_data(tmp_path / "glue", "sst-2")
    config = tmp_path / "albert_config.json"
    config.write_text(json.dumps(helpers.tiny_config(
        vocab_size=320, max_position_embeddings=SEQ).to_dict()))
    out = tmp_path / "out"
    args = [f"--task_name=sst-2", f"--data_dir={tmp_path / 'glue'}",
            f"--albert_config_file={config}",
            f"--spm_model_file={tiny_spm['model']}", f"--output_dir={out}",
            f"--max_seq_length={SEQ}", "--train_batch_size=2",
            "--train_step=1", "--save_checkpoints_steps=1",
            "--iterations_per_loop=1", "--do_train"]
    # 1. A live run holds the directory: the second stops at once.
    from albert_tf import run_dir
    lock = run_dir.RunLock(str(out), "train")
    out.mkdir()
    lock.acquire()
    try:
        result = _run_classifier(args)
    finally:
        lock.release()
    assert result.returncode != 0
    assert f"pid {os.getpid()}" in result.stderr
    assert not (out / "flags.txt").exists()
    # 2. A good run.
    result = _run_classifier(args)
    assert result.returncode == 0, result.stderr[-3000:]
    flags_before = (out / "flags.txt").read_text()
    config_before = (out / "albert_config.json").read_text()
    # 3. A rerun with a mistyped data_dir fails and leaves the run as it was.
    result = _run_classifier(args + [f"--data_dir={tmp_path / 'nope'}"])
    assert result.returncode != 0 and "nope" in result.stderr
    # 4. A rerun with another model config is refused, naming the key.
    result = _run_classifier(args + ["--albert_dropout_prob=0.3"])
    assert result.returncode != 0
    assert "hidden_dropout_prob: 0.0 -> 0.3" in result.stderr
    assert (out / "flags.txt").read_text() == flags_before
    assert (out / "albert_config.json").read_text() == config_before
    # 5. A checkpoint that initialises nothing is refused, not ignored.
    other = tmp_path / "other" / "ckpt"
    tf.train.Checkpoint(unrelated=tf.Variable([1.0, 2.0])).write(str(other))
    result = _run_classifier(
        args + [f"--output_dir={tmp_path / 'out2'}",
                f"--init_checkpoint={other}"])
    assert result.returncode != 0
    assert str(other) in result.stderr
    assert not list((tmp_path / "out2").glob("ckpt-*"))
    # Nothing claims the directory, so a corrected rerun is not blocked.
    assert not (tmp_path / "out2" / "albert_config.json").exists()


def test_predictions_from_untrained_step_0_weights_are_flagged(tmp_path):
    from albert_tf.tasks import finetune

    chosen = str(tmp_path / "best" / "ckpt-0")
    assert finetune.check_trained(chosen, str(tmp_path), None)
    assert not finetune.check_trained(str(tmp_path / "ckpt-4"),
                                      str(tmp_path), None)
    # From a pretrained checkpoint, step 0 is a real model.
    (tmp_path / "flags.txt").write_text("--init_checkpoint=/models/base\n")
    assert not finetune.check_trained(chosen, str(tmp_path), None)
