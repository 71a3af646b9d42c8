"""Checkpoint evaluation beside a training job: a checkpoint that cannot
be read (its data file deleted, its index half written) is skipped,
naming its path, and evaluation goes on; other errors are raised."""

import logging

import pytest
import tensorflow as tf

from test_checkpoint_selection import _trainer


def _saved(tmp_path, steps):
    trainer = _trainer(tmp_path)
    for step in steps:
        trainer.global_step.assign(step)
        trainer.manager.save(checkpoint_number=step)


@pytest.mark.parametrize("damage", ["data_deleted", "index_truncated"])
def test_an_unreadable_checkpoint_is_skipped_and_named(tmp_path, caplog,
                                                       damage):
    caplog.set_level(logging.INFO, logger="absl")
    _saved(tmp_path, (5, 7, 9))
    if damage == "data_deleted":  # The manager deleting ckpt-7.
        for f in tmp_path.glob("ckpt-7.data-*"):
            f.unlink()
    else:  # ckpt-7's index read while being written.
        (tmp_path / "ckpt-7.index").write_bytes(b"\0" * 10)
    trainer = _trainer(tmp_path)
    seen = []

    def evaluate():
        seen.append(int(trainer.global_step.numpy()))
        return {"acc": 0.5}

    last = trainer.evaluate_checkpoints(evaluate, "acc")
    assert seen == [5, 9] and last == {"acc": 0.5, "global_step": 9}
    messages = [r.getMessage() for r in caplog.records if r.name == "absl"]
    skipped = [m for m in messages if m.startswith("Skipping ")]
    assert len(skipped) == 1
    assert skipped[0].startswith(f"Skipping {tmp_path / 'ckpt-7'}: ")
    assert "eval ckpt-5: acc 0.5000 global_step 5.0000" in messages
    assert "eval ckpt-9: acc 0.5000 global_step 9.0000" in messages


def test_other_read_errors_are_raised(tmp_path, monkeypatch):
    _saved(tmp_path, (5,))
    trainer = _trainer(tmp_path)

    def mismatch(path):
        raise tf.errors.InvalidArgumentError(None, None, "shape mismatch")

    monkeypatch.setattr(trainer.checkpoint, "read", mismatch)
    with pytest.raises(tf.errors.InvalidArgumentError, match="shape"):
        trainer.evaluate_checkpoints(lambda: {"acc": 0.5}, "acc")
