"""Checkpoint selection and ordering: albert_tf.training.

Steps whose names sort differently from their numbers (ckpt-5 < ckpt-10 by
step, ckpt-10 < ckpt-5 by name), and exact ties between scores, whose
documented winner is the earliest checkpoint (the original's
`if result[key_name] > best_perf`). Every expected value is written out.
"""

import json

import pytest
import tensorflow as tf

import helpers
from albert_tf import distribute
from albert_tf import optimization
from albert_tf import training
from albert_tf.tasks import classification


def _history(**scores_by_step):
    return {f"ckpt-{step}": {"global_step": step, "acc": acc}
            for step, acc in scores_by_step.items()}


def test_best_checkpoint_ties_keep_the_earliest_step_not_name():
    history = {"ckpt-10": {"global_step": 10, "acc": 0.7},
               "ckpt-5": {"global_step": 5, "acc": 0.7},
               "ckpt-0": {"global_step": 0, "acc": 0.2}}
    # By name ckpt-10 comes before ckpt-5; by step ckpt-5 is first.
    assert training.best_checkpoint(history, "acc") == "ckpt-5"
    history["ckpt-10"]["acc"] = 0.7000001
    assert training.best_checkpoint(history, "acc") == "ckpt-10"


def test_best_checkpoint_step_zero_wins_unless_beaten():
    history = {"ckpt-0": {"global_step": 0, "acc": 0.5},
               "ckpt-9": {"global_step": 9, "acc": 0.5},
               "ckpt-10": {"global_step": 10, "acc": 0.4}}
    assert training.best_checkpoint(history, "acc") == "ckpt-0"
    assert training.best_checkpoint({}, "acc") is None
    # A lower metric never wins (no min/max confusion).
    history["ckpt-10"]["acc"] = 0.6
    assert training.best_checkpoint(history, "acc") == "ckpt-10"


def test_checkpoint_step_parses_the_number():
    assert training.checkpoint_step("/a/ckpt-10") == 10
    assert training.checkpoint_step("/a/ckpt-5.index") == 5
    assert training.checkpoint_step("/a/ckpt-5.data-00000-of-00001") is None
    assert training.checkpoint_step("/a/best") is None


def _trainer(tmp_path, **run_config):
    config = helpers.tiny_config(vocab_size=64, max_position_embeddings=8)
    task = classification.ClassificationTask(
        config, "sst-2", "unused", optimization.OptimizerConfig(),
        spm_model_file=None, cached_dir="unused", max_seq_length=8)
    return training.Trainer(
        task, distribute.get_strategy("one_device"), training.RunConfig(
            output_dir=str(tmp_path), num_train_steps=10,
            train_batch_size=2, keep_checkpoint_max=None, **run_config))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Checkpoints at steps 5, 9 and 10 (by name: 10 < 5 < 9)."""
    path = tmp_path_factory.mktemp("ckpts")
    trainer = _trainer(path)
    for step in (9, 5, 10):  # Written out of order too.
        trainer.global_step.assign(step)
        trainer.manager.save(checkpoint_number=step)
    return path


def test_latest_checkpoint_is_the_highest_step(saved):
    trainer = _trainer(saved)
    assert sorted(trainer.checkpoints()) == [5, 9, 10]
    assert trainer.latest_checkpoint() == str(saved / "ckpt-10")


def test_evaluation_order_ties_and_files_go_by_step(saved, tmp_path):
    # A fresh output_dir with copies: evaluate_checkpoints writes there.
    for f in saved.iterdir():
        if f.name.startswith("ckpt-") or f.name == "checkpoint":
            (tmp_path / f.name).write_bytes(f.read_bytes())
    trainer = _trainer(tmp_path)
    scores = {5: 0.8, 9: 0.3, 10: 0.8}  # 10 ties 5: 5 stays the best.
    seen = []

    def evaluate():
        step = int(trainer.global_step.numpy())
        seen.append(step)
        return {"acc": scores[step]}

    last = trainer.evaluate_checkpoints(evaluate, "acc", prune=True)
    assert seen == [5, 9, 10]  # Step order, not name order.
    assert last["global_step"] == 10
    assert (tmp_path / "best_trial.txt").read_text() == "10:5:0.8"
    assert tf.train.latest_checkpoint(str(tmp_path / "best")).endswith(
        "ckpt-5")
    text = (tmp_path / "eval_results.txt").read_text()
    blocks = [line for line in text.splitlines()
              if line.startswith("checkpoint = ")]
    assert blocks == ["checkpoint = ckpt-5", "checkpoint = ckpt-9",
                      "checkpoint = ckpt-10"]
    assert text.endswith("best_checkpoint = ckpt-5\nbest_acc = 0.8\n")
    assert (tmp_path / "best" / "eval_results.txt").read_text() == (
        "acc = 0.8\nglobal_step = 5\n")
    # Pruned: ckpt-9 (neither best nor latest); ckpt-5 and ckpt-10 stay.
    left = sorted(p.name for p in tmp_path.glob("ckpt-*.index"))
    assert left == ["ckpt-10.index", "ckpt-5.index"]
    history = json.loads((tmp_path / "eval_history.json").read_text())
    assert {k: v["acc"] for k, v in history.items()} == {
        "ckpt-5": 0.8, "ckpt-9": 0.3, "ckpt-10": 0.8}
    # Nothing new: a second pass evaluates nothing and keeps the files.
    seen.clear()
    trainer.evaluate_checkpoints(evaluate, "acc", prune=True)
    assert seen == []
    assert (tmp_path / "best_trial.txt").read_text() == "10:5:0.8"


def test_a_later_strictly_better_checkpoint_replaces_best(saved, tmp_path):
    for f in saved.iterdir():
        if f.name.startswith("ckpt-") or f.name == "checkpoint":
            (tmp_path / f.name).write_bytes(f.read_bytes())
    trainer = _trainer(tmp_path)
    scores = {5: 0.5, 9: 0.6, 10: 0.55}

    def evaluate():
        return {"acc": scores[int(trainer.global_step.numpy())]}

    trainer.evaluate_checkpoints(evaluate, "acc")
    assert (tmp_path / "best_trial.txt").read_text() == "10:9:0.6"
    assert tf.train.latest_checkpoint(str(tmp_path / "best")).endswith(
        "ckpt-9")
    # Without prune every checkpoint stays.
    assert len(list(tmp_path.glob("ckpt-*.index"))) == 3


def test_best_is_copied_only_when_it_changes_and_files_are_exact(
        saved, tmp_path, monkeypatch):
    for f in saved.iterdir():
        if f.name.startswith("ckpt-") or f.name == "checkpoint":
            (tmp_path / f.name).write_bytes(f.read_bytes())
    copies = []
    real_copy = training._copy_checkpoint
    monkeypatch.setattr(training, "_copy_checkpoint",
                        lambda prefix, directory: (copies.append(
                            prefix.rsplit("/", 1)[-1]),
                            real_copy(prefix, directory)))
    trainer = _trainer(tmp_path)
    scores = {5: 0.5, 9: 0.625, 10: 0.25}

    def evaluate():
        return {"acc": scores[int(trainer.global_step.numpy())]}

    trainer.evaluate_checkpoints(evaluate, "acc")
    assert copies == ["ckpt-5", "ckpt-9"]  # Not again for ckpt-10.
    line = "=" * 50 + "\n"
    assert (tmp_path / "eval_results.txt").read_text() == (
        "checkpoint = ckpt-5\nacc = 0.5\nglobal_step = 5\n" + line
        + "checkpoint = ckpt-9\nacc = 0.625\nglobal_step = 9\n" + line
        + "checkpoint = ckpt-10\nacc = 0.25\nglobal_step = 10\n" + line
        + "best_checkpoint = ckpt-9\nbest_acc = 0.625\n")
    assert training.read_results(str(tmp_path / "best" /
                                     "eval_results.txt")) == {
        "acc": 0.625, "global_step": 9.0}


def test_read_results_parses_what_write_results_writes(tmp_path):
    path = str(tmp_path / "r.txt")
    training.write_results(path, {"b": 2, "a": 0.5, "loss": -1e-3})
    assert (tmp_path / "r.txt").read_text() == (
        "a = 0.5\nb = 2\nloss = -0.001\n")
    assert training.read_results(path) == {"a": 0.5, "b": 2.0,
                                           "loss": -0.001}
