import os
import pathlib
import subprocess
import sys

import pytest
import tensorflow as tf

from albert_tf import quickstart
from albert_tf.data import default_corpus

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_default_corpus_is_documents_of_sentences(tmp_path):
    path = tmp_path / "corpus.txt"
    counts = default_corpus.write_corpus(str(path), max_bytes=200_000)
    assert counts["documents"] >= 10 and counts["bytes"] <= 200_000
    text = path.read_text(encoding="utf-8")
    documents = [d for d in text.split("\n\n") if d.strip()]
    assert len(documents) == counts["documents"]
    for doc in documents:
        lines = doc.strip().split("\n")
        assert len(lines) >= 2  # SOP needs two segments.
        for line in lines:
            assert len(line.split()) >= default_corpus.MIN_WORDS
            assert ">>>" not in line


def test_quickstart_config_is_a_small_albert():
    config = quickstart.QUICKSTART_CONFIG
    assert config.vocab_size == quickstart.VOCAB_SIZE
    assert config.num_hidden_groups == 1  # Cross-layer sharing.
    assert config.max_position_embeddings >= quickstart.MAX_SEQ_LENGTH


@pytest.mark.slow
def test_quickstart_command_end_to_end(tmp_path):
    out = tmp_path / "qs"
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_pretraining.py"),
         f"--output_dir={out}", "--num_train_steps=20",
         "--save_checkpoints_steps=10", "--max_eval_steps=2"],
        capture_output=True, text=True, timeout=1800,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "data" / "spm.model").exists()
    assert (out / "eval_results.txt").exists()
    # flags.txt replays the run: the built-in config and the vocabulary as
    # the run directory holds them, the held-out evaluation records.
    recorded = (out / "flags.txt").read_text().splitlines()
    assert f"--albert_config_file={out / 'albert_config.json'}" in recorded
    assert f"--spm_model_file={out / 'data' / 'spm.model'}" in recorded
    assert any(line.startswith("--eval_input_file=") and "eval-" in line
               for line in recorded)
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

    loaded = tf.saved_model.load(str(out / "export"))
    outputs = loaded.signatures["serve_text"](
        text=tf.constant(["The assert statement raises an error."]))
    assert outputs["pooled_output"].shape == (1, 128)
