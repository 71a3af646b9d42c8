"""run_ner.py end to end with a flagfile on tiny CoNLL files it writes:
train, score every checkpoint by entity F1, predict as CoNLL, export; the
export's serve_tokens, loaded without albert_tf, tags the test sentences
as predictions.txt does."""

import json
import os
import pathlib
import random
import subprocess
import sys

import pytest

import helpers

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = pathlib.Path(__file__).resolve().parent
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
           PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]))
SEQ = 32
_SYLLABLES = ("ka", "ri", "to", "ne", "mu", "sa", "lo", "pe", "di")


def _sentences(seed, count):
    """Pseudo-words; a "ka..." word run is a PER entity, "lo..." LOC
    (IOB2), in 4 columns like CoNLL-2003 (word, POS, chunk, NER)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        words = ["".join(rng.choice(_SYLLABLES)
                         for _ in range(rng.randint(1, 3)))
                 for _ in range(rng.randint(2, 7))]
        tags, previous = [], None
        for word in words:
            kind = {"ka": "PER", "lo": "LOC"}.get(word[:2])
            if kind is None:
                tags.append("O")
            else:
                tags.append(("I-" if previous == kind else "B-") + kind)
            previous = kind
        out.append((words, tags))
    return out


def _write(path, sentences, docstart=True):
    lines = ["-DOCSTART- -X- -X- O", ""] if docstart else []
    for words, tags in sentences:
        lines += [f"{w} NN I-NP {t}" for w, t in zip(words, tags)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.slow  # About 65 s on 2 shared cores (two subprocesses).
def test_train_eval_predict_export_with_a_flagfile(tiny_spm, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    dev = _sentences(2, 7)
    test = _sentences(3, 6)
    _write(data / "train.txt", _sentences(1, 24))
    _write(data / "dev.txt", dev)
    _write(data / "test.txt", test, docstart=False)
    config = tmp_path / "albert_config.json"
    config.write_text(json.dumps(helpers.tiny_config(
        vocab_size=320, max_position_embeddings=SEQ).to_dict()))
    out, export_dir = tmp_path / "out", tmp_path / "export"
    flagfile = tmp_path / "run.flags"
    flagfile.write_text("\n".join([
        f"--data_dir={data}", f"--albert_config_file={config}",
        f"--spm_model_file={tiny_spm['model']}", f"--output_dir={out}",
        f"--max_seq_length={SEQ}", "--train_batch_size=4",
        "--eval_batch_size=3", "--predict_batch_size=4",
        "--num_train_epochs=0.5", "--learning_rate=1e-3",
        "--save_checkpoints_steps=2", "--iterations_per_loop=1",
        "--log_every_n_steps=1", "--do_train", "--do_eval", "--do_predict",
        "--dynamic_padding", "--padding_bucket=8",
        f"--export_dir={export_dir}"]) + "\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_ner.py"), f"--flagfile={flagfile}"],
        env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # 0.5 epochs of 24 sentences at batch 4 = 3 steps.
    assert "24 sentences -> 3 steps" in result.stderr

    # The training file has no I-LOC; the test file's one is a warning.
    assert (out / "label_list.txt").read_text().split() == [
        "O", "B-LOC", "B-PER", "I-PER"]
    assert "test.txt:18: tag 'I-LOC' of word 'losadi'" in result.stderr
    history = json.loads((out / "eval_history.json").read_text())
    assert set(history) == {"ckpt-0", "ckpt-2", "ckpt-3"}
    gold_entities = sum(t.startswith("B-") for _, tags in dev for t in tags)
    for results in history.values():
        assert results["num_gold_entities"] == gold_entities
        assert 0 <= results["eval_f1"] <= 1
        assert results["eval_loss"] > 0
    best = (out / "best_trial.txt").read_text().split(":")
    assert float(best[2]) == max(r["eval_f1"] for r in history.values())
    assert "--label_column=-1" in (out / "flags.txt").read_text()

    blocks = (out / "predictions.txt").read_text().split("\n\n")[:-1]
    predicted = []
    assert len(blocks) == len(test)
    for block, (words, tags) in zip(blocks, test):
        rows = [line.split() for line in block.splitlines()]
        assert [r[0] for r in rows] == words
        assert [r[1] for r in rows] == tags  # The gold column.
        predicted.append([r[2] for r in rows])
    results = (out / "predict_results.txt").read_text()
    assert "eval_f1 = " in results

    # The export, with tensorflow and tensorflow_text only.
    texts = [" ".join(words) for words, _ in test]
    script = (
        "import json, sys; sys.modules['albert_tf'] = None\n"
        "import tensorflow as tf, tensorflow_text\n"
        f"f = tf.saved_model.load({str(export_dir)!r}).signatures["
        "'serve_tokens']\n"
        f"out = f(text=tf.constant({texts!r}))\n"
        "print(json.dumps([[t.decode() for t in row[:n]] for row, n in "
        "zip(out['word_tags'].numpy(), out['num_words'].numpy())]))\n")
    served = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True, text=True, timeout=300)
    assert served.returncode == 0, served.stderr[-2000:]
    assert json.loads(served.stdout.strip().splitlines()[-1]) == predicted
