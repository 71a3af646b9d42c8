"""run_squad.py end to end (v1.1 and v2.0) on tiny SQuAD files: train,
evaluate every checkpoint, predict with the best, write the original's
files; bad input fails before anything is written."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

import helpers
from albert_tf.metrics import squad as squad_metrics
from conftest import make_sentences

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = pathlib.Path(__file__).resolve().parent
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
           PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]))
SEQ, QUERY, STRIDE = 40, 8, 12


def _squad_json(path, seed, v2):
    """Paragraphs of generated text; each question's answer is a word of
    its context (v2: every third question is impossible)."""
    sentences = make_sentences(seed, 40)
    paragraphs, n = [], 0
    for p in range(6):
        context = " ".join(sentences[p * 5:p * 5 + 5])
        words = context.split()
        qas = []
        for q in range(3):
            word = words[(7 * q + p) % len(words)]
            start = context.index(word)
            impossible = v2 and q == 2
            qas.append({
                "id": f"q{n}", "question": " ".join(words[q:q + 4]) + "?",
                "answers": [] if impossible else [
                    {"text": word, "answer_start": start}],
                "is_impossible": impossible})
            n += 1
        paragraphs.append({"context": context, "qas": qas})
    path.write_text(json.dumps({"version": "2.0" if v2 else "1.1",
                                "data": [{"title": "t",
                                          "paragraphs": paragraphs}]}))
    return str(path)


def _config(tmp_path):
    config = tmp_path / "albert_config.json"
    config.write_text(json.dumps(helpers.tiny_config(
        vocab_size=320, max_position_embeddings=SEQ).to_dict()))
    return config


def _flags(tmp_path, tiny_spm, v2, out):
    return [
        f"--train_file={_squad_json(tmp_path / 'train.json', 1, v2)}",
        f"--predict_file={_squad_json(tmp_path / 'dev.json', 2, v2)}",
        f"--albert_config_file={_config(tmp_path)}",
        f"--spm_model_file={tiny_spm['model']}", f"--output_dir={out}",
        f"--max_seq_length={SEQ}", f"--max_query_length={QUERY}",
        f"--doc_stride={STRIDE}", "--train_batch_size=4",
        "--predict_batch_size=5", "--num_train_epochs=0.5",
        "--learning_rate=1e-3", "--save_checkpoints_steps=1",
        "--iterations_per_loop=1", "--log_every_n_steps=1",
        "--do_train", "--do_predict", "--start_n_top=3", "--end_n_top=2",
        f"--version_2_with_negative={str(v2).lower()}"]


def _run(args):
    return subprocess.run([sys.executable, str(ROOT / "run_squad.py"),
                           *args], env=ENV, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("v2", [False, True])
def test_train_and_predict_with_a_flagfile(v2, tiny_spm, tmp_path):
    out = tmp_path / "out"
    flagfile = tmp_path / "run.flags"
    export_dir = tmp_path / "export"
    flagfile.write_text("\n".join(_flags(tmp_path, tiny_spm, v2, out)
                                  + [f"--export_dir={export_dir}"]))
    result = _run([f"--flagfile={flagfile}"])
    assert result.returncode == 0, result.stderr[-3000:]

    # 18 questions x 0.5 epochs / batch 4 = 2 steps, as the original counts.
    history = json.loads((out / "eval_history.json").read_text())
    assert set(history) == {"ckpt-0", "ckpt-1", "ckpt-2"}
    key = "dev_tuned_f1" if v2 else "f1"
    for results in history.values():
        assert 0 <= results[key] <= 100
        # One exact-match key, the official script's for the version.
        exact = "exact" if v2 else "exact_match"
        assert 0 <= results[exact] <= 100
        assert ("exact_match" if v2 else "exact") not in results
    dev = json.loads((tmp_path / "dev.json").read_text())["data"]
    predictions = json.loads((out / "predictions.json").read_text())
    assert set(predictions) == {f"q{i}" for i in range(18)}
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    assert set(nbest) == set(predictions)
    best = json.loads((out / "best_trial.txt").read_text().split(":")[1])
    best_results = history[f"ckpt-{best}"]
    # The reported scores are what an independent scoring of
    # predictions.json gives (the best checkpoint made them).
    if v2:
        null_odds = json.loads((out / "null_odds.json").read_text())
        assert set(null_odds) == set(predictions)
        rescored = squad_metrics.evaluate_v2(dev, predictions)
        assert rescored["f1"] == pytest.approx(best_results["f1"])
        assert best_results["null_score_diff_threshold"] == 0.0
        assert "dev_tuned_null_score_diff_threshold" in best_results
        assert best_results["NoAns_total"] == 6
    else:
        rescored = squad_metrics.evaluate_v1(dev, predictions)
        assert rescored["f1"] == pytest.approx(best_results["f1"])
        assert rescored["exact_match"] == pytest.approx(
            best_results["exact_match"])
    # The raw-text export (from the best checkpoint) gives the answers of
    # predictions.json ("empty" is v1's placeholder for no valid span).
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)
    serve = tf.saved_model.load(str(export_dir)).signatures["serve_qa"]
    questions = [(q["id"], q["question"], p["context"]) for article in dev
                 for p in article["paragraphs"] for q in p["qas"]]
    answers = serve(question=tf.constant([q for _, q, _ in questions]),
                    context=tf.constant([c for _, _, c in questions]))
    got = [a.decode() for a in answers["answer"].numpy()]
    expected = [predictions[i] if predictions[i] != "empty" else ""
                for i, _, _ in questions]
    assert got == expected
    # The cached features are reused by a rerun with the same inputs.
    assert (out / "predict.tf_record.meta.json").exists()
    assert json.loads((out / "predict_left.json").read_text())[
        "num_features"] >= 18


def test_predict_needs_a_predict_file(tiny_spm, tmp_path):
    out = tmp_path / "out"
    args = [a for a in _flags(tmp_path, tiny_spm, False, out)
            if not a.startswith("--predict_file")]
    result = _run(args)
    assert result.returncode != 0
    assert "--do_predict needs --predict_file" in result.stderr
    assert not out.exists()


def test_max_seq_length_must_exceed_the_query(tiny_spm, tmp_path):
    out = tmp_path / "out"
    result = _run(_flags(tmp_path, tiny_spm, False, out)
                  + ["--max_seq_length=11"])
    assert result.returncode != 0
    assert "max_seq_length (11) must be greater than max_query_length (8)" \
        in result.stderr
    assert not out.exists()


def test_v2_data_in_a_v1_run_is_refused(tiny_spm, tmp_path):
    out = tmp_path / "out"
    args = _flags(tmp_path, tiny_spm, False, out)
    v2_train = _squad_json(tmp_path / "train2.json", 1, True)
    result = _run([a for a in args if not a.startswith("--train_file")]
                  + [f"--train_file={v2_train}"])
    assert result.returncode != 0
    assert "--version_2_with_negative" in result.stderr
    assert "train2.json" in result.stderr
    assert not (out / "albert_config.json").exists()
