"""run_race.py end to end on tiny RACE data in both layouts: train, evaluate
(overall, middle, high), predict, export; the exported serve_choice agrees
with the Python predictions."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import helpers
from albert_tf.data import race
from albert_tf.tasks import race as race_task
from test_race_data import _articles
from test_race_data import write_original
from test_race_data import write_released

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = pathlib.Path(__file__).resolve().parent
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
           PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]))
SEQ, QA = 32, 8


def _data(root, layout):
    write = write_released if layout == "released" else write_original
    for split in ("train", "dev", "test"):
        write(root, _articles(), split=split)
    return str(root)


@pytest.mark.parametrize("layout", ["released", "original"])
def test_train_eval_predict_export_with_a_flagfile(layout, tiny_spm,
                                                   tmp_path):
    data_dir = _data(tmp_path / "data", layout)
    config = tmp_path / "albert_config.json"
    config.write_text(json.dumps(helpers.tiny_config(
        vocab_size=320, max_position_embeddings=SEQ).to_dict()))
    out, export_dir = tmp_path / "out", tmp_path / "export"
    flagfile = tmp_path / "run.flags"
    flagfile.write_text("\n".join([
        f"--data_dir={data_dir}", f"--albert_config_file={config}",
        f"--spm_model_file={tiny_spm['model']}", f"--output_dir={out}",
        f"--max_seq_length={SEQ}", f"--max_qa_length={QA}",
        "--train_batch_size=2", "--eval_batch_size=3",
        "--predict_batch_size=3", "--train_step=2", "--warmup_step=1",
        "--learning_rate=1e-3", "--save_checkpoints_steps=1",
        "--iterations_per_loop=1", "--log_every_n_steps=1", "--do_predict",
        f"--export_dir={export_dir}"]) + "\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_race.py"), f"--flagfile={flagfile}"],
        env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    history = json.loads((out / "eval_history.json").read_text())
    assert set(history) == {"ckpt-0", "ckpt-1", "ckpt-2"}
    for results in history.values():
        # 4 dev questions: 3 middle, 1 high; padding (to 6) is ignored.
        assert results["num_examples"] == 4
        assert results["num_examples_middle"] == 3
        assert results["num_examples_high"] == 1
        assert round(results["eval_accuracy"] * 4, 6) == round(
            results["eval_accuracy"] * 4)
        assert results["eval_accuracy"] == pytest.approx(
            (3 * results["eval_accuracy_middle"]
             + results["eval_accuracy_high"]) / 4)
        assert results["eval_loss"] > 0
    best = (out / "best_trial.txt").read_text().split(":")
    assert int(best[0]) == 2

    rows = [json.loads(line) for line in
            (out / "predictions.jsonl").read_text().splitlines()]
    assert [(r["level"], r["question_index"]) for r in rows] == [
        ("middle", 0), ("middle", 1), ("middle", 0), ("high", 0)]
    for row in rows:
        assert row["prediction"] in "ABCD"
        assert len(row["probabilities"]) == 4
        assert "ABCD"[int(np.argmax(row["probabilities"]))] == \
            row["prediction"]

    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)
    serve = tf.saved_model.load(str(export_dir)).signatures["serve_choice"]
    examples = race.RaceProcessor().get_test_examples(data_dir)
    outputs = serve(
        article=tf.constant([e.article for e in examples]),
        question=tf.constant([e.question for e in examples]),
        options=tf.constant([list(e.options) for e in examples]))
    np.testing.assert_allclose(outputs["probabilities"].numpy(),
                               [r["probabilities"] for r in rows], atol=1e-5)
    assert [p.decode() for p in outputs["prediction"].numpy()] == [
        r["prediction"] for r in rows]


def test_accuracy_by_level():
    class Example:
        def __init__(self, level):
            self.level = level

    examples = [Example("middle"), Example("high"), Example("high")]
    probabilities = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1],
                              [0.25, 0.25, 0.4, 0.1]])
    got = race_task.accuracy_by_level(examples, probabilities, [0, 1, 3])
    assert got["eval_accuracy"] == pytest.approx(2 / 3)
    assert got["eval_accuracy_middle"] == 1.0
    assert got["eval_accuracy_high"] == 0.5
    assert got["eval_loss"] == pytest.approx(
        -np.mean(np.log([0.7, 0.6, 0.1])))


def test_a_missing_level_directory_fails_before_anything_is_written(
        tiny_spm, tmp_path):
    data_dir = tmp_path / "data"
    write_released(data_dir, {"high": _articles()["high"]}, split="train")
    config = tmp_path / "albert_config.json"
    config.write_text(json.dumps(helpers.tiny_config(
        vocab_size=320, max_position_embeddings=SEQ).to_dict()))
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_race.py"), f"--data_dir={data_dir}",
         f"--albert_config_file={config}",
         f"--spm_model_file={tiny_spm['model']}", f"--output_dir={out}",
         f"--max_seq_length={SEQ}", f"--max_qa_length={QA}",
         "--do_eval=false"], env=ENV, capture_output=True, text=True,
        timeout=600)
    assert result.returncode != 0
    assert str(data_dir / "RACE" / "train" / "middle") in result.stderr
    assert not out.exists()
