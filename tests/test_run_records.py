"""What a new user sees (issue 18, part 6): flags.txt records only the
runner's own flags, TensorFlow's start-up and export noise is dropped
while other lines still reach stderr."""

import logging as py_logging
import os
import pathlib
import subprocess
import sys

from absl import flags
from absl import logging

from albert_tf import quiet
from albert_tf import runner_flags

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_flags_txt_records_only_the_runners_own_flags():
    import absl.testing.absltest  # noqa: F401  (a library's flags module)

    fv = flags.FlagValues()
    runner_flags.define_common_flags(fv)
    flags.DEFINE_string("input_file", "a.tfrecord", "The runner's.",
                        flag_values=fv)
    flags.DEFINE_string("test_tmpdir", "/tmp/x", "absl's test flag.",
                        flag_values=fv, module_name="absl.testing.absltest")
    fv(["run_pretraining.py", "--restart_input_on_new_data"])
    text = runner_flags.flags_text(fv)
    assert "--input_file=a.tfrecord\n" in text
    assert "--seed=12345\n" in text
    assert "test_tmpdir" not in text
    # Chosen for one rerun, never replayed from flags.txt.
    assert "restart_input_on_new_data" not in text
    # It replays: parsing it gives the same values.
    replay = flags.FlagValues()
    runner_flags.define_common_flags(replay)
    flags.DEFINE_string("input_file", None, "", flag_values=replay)
    replay(["x"] + text.split())
    assert replay.input_file == "a.tfrecord" and replay.seed == 12345


def test_filtered_stderr_drops_only_the_known_lines(capfd):
    with quiet.filtered_stderr([r"cudart_stub\.cc"]):
        os.write(2, b"I0000 cudart_stub.cc:31] Could not find cuda\n")
        os.write(2, b"E0000 something.cc:1] a real error\n")
        sys.stderr.write("a Python warning\n")
    # (Under capfd, sys.stderr bypasses fd 2, so only the lines count.)
    err = capfd.readouterr().err
    assert sorted(err.splitlines()) == ["E0000 something.cc:1] a real error",
                                        "a Python warning"]
    assert any("cudart_stub" in line for line in quiet.dropped_lines(
        [r"cudart_stub"]))


def test_importing_albert_tf_prints_no_start_up_noise():
    result = subprocess.run(
        [sys.executable, "-c", "import albert_tf, os, sys; "
         "print(os.environ['TF_CPP_MIN_LOG_LEVEL']); "
         "sys.stderr.write('still here\\n')"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={k: v for k, v in os.environ.items()
             if k not in ("TF_CPP_MIN_LOG_LEVEL",
                          "ALBERT_TF_VERBOSE_STARTUP")})
    assert result.returncode == 0, result.stderr
    for noise in ("oneDNN custom operations", "absl::InitializeLog",
                  "cudart_stub", "failed call to cuInit"):
        assert noise not in result.stderr
    assert result.stderr.endswith("still here\n")
    # C++ INFO lines off by default (warnings and errors stay).
    assert result.stdout == "1\n"


def test_saved_model_logs_drops_the_rename_lines_only(caplog):
    logger = py_logging.getLogger("absl")
    with caplog.at_level(py_logging.INFO, logger="absl"):
        with quiet.saved_model_logs():
            logging.info("Function `%s` contains input name(s) %s with "
                         "unsupported characters which will be renamed to "
                         "%s in the SavedModel.", "serve", "3904, resource",
                         "unknown, x")
            logging.info("Exported SavedModel to /x")
            logging.warning("Function `serve` contains input name(s) x "
                            "will be renamed")  # A warning always passes.
    messages = [r.getMessage() for r in caplog.records if r.name == "absl"]
    assert messages == ["Exported SavedModel to /x",
                        "Function `serve` contains input name(s) x will be "
                        "renamed"]
    assert not logger.filters


def test_squad_training_does_not_warn_about_the_unused_pooler():
    import warnings

    import numpy as np
    import tensorflow as tf

    import helpers
    from albert_tf import optimization
    from albert_tf.data import squad
    from albert_tf.tasks import squad as squad_task

    config = helpers.tiny_config(vocab_size=50, max_position_embeddings=16)
    task = squad_task.SquadTask(
        config, optimization.OptimizerConfig(),
        version_2_with_negative=False, spm_model_file=None, vocab_file=None,
        options=squad.FeatureOptions(max_seq_length=16, max_query_length=4,
                                     doc_stride=4),
        prediction=squad_task.PredictionConfig(), train_file=None,
        predict_file=None, train_feature_file="-", predict_feature_file="-",
        predict_feature_left_file="-")
    model = task.build_model()
    optimizer = task.build_optimizer()
    batch = {"input_ids": np.ones((2, 16), np.int32),
             "input_mask": np.ones((2, 16), np.int32),
             "segment_ids": np.zeros((2, 16), np.int32),
             "start_positions": np.ones((2,), np.int32),
             "end_positions": np.ones((2,), np.int32)}
    with tf.GradientTape() as tape:
        num, den = task.loss_terms(model(batch, training=True), batch,
                                   1)["loss"]
        loss = num / den
    variables = model.trainable_variables
    gradients = tape.gradient(loss, variables)
    missing = [v.path for v, g in zip(variables, gradients) if g is None]
    assert missing == ["encoder/pooler/kernel", "encoder/pooler/bias"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", append=True)
        optimizer.apply_gradients(zip(gradients, variables))
        # Another variable without a gradient still warns.
        gradients[0] = None
        optimizer.apply_gradients(zip(gradients, variables))
    messages = [str(w.message) for w in caught
                if "Gradients do not exist" in str(w.message)]
    assert len(messages) == 1 and variables[0].path in messages[0]
    # The pooler stays trainable: the checkpoint layout is unchanged.
    assert "encoder/pooler/kernel" in [v.path for v in variables]


def test_hf_conversion_copies_the_tokenizer(tiny_spm, tmp_path):
    import helpers
    from albert_tf import checkpoints
    from albert_tf.checkpoints import convert
    from albert_tf.models import AlbertPretrainer

    config = helpers.tiny_config(vocab_size=320)
    source = tmp_path / "release"
    checkpoints.save_albert_tf_checkpoint(AlbertPretrainer(config),
                                          str(source))
    spm_bytes = pathlib.Path(tiny_spm["model"]).read_bytes()
    # A release directory: its 30k-clean.model is found and copied.
    (source / "30k-clean.model").write_bytes(spm_bytes)
    convert.convert(str(source), str(tmp_path / "hf"), "hf")
    assert (tmp_path / "hf" / "spiece.model").read_bytes() == spm_bytes
    # A run directory: the --spm_model_file its flags.txt recorded.
    (source / "30k-clean.model").unlink()
    (source / "flags.txt").write_text(
        f"--output_dir={source}\n--spm_model_file={tiny_spm['model']}\n")
    convert.convert(str(source), str(tmp_path / "hf2"), "hf")
    assert (tmp_path / "hf2" / "spiece.model").read_bytes() == spm_bytes
    # A file that is not a SentencePiece model: refused before writing.
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    import pytest
    with pytest.raises(ValueError, match=rf"--spm_model_file={bad}: not a "
                                         r"SentencePiece model"):
        convert.convert(str(source), str(tmp_path / "hf3"), "hf",
                        spm_model_file=str(bad))
    assert not (tmp_path / "hf3").exists()


def test_the_quickstart_evaluates_on_documents_it_holds_out(tmp_path):
    from albert_tf import quickstart

    corpus = tmp_path / "corpus.txt"
    documents = [f"document {i} line one.\ndocument {i} line two."
                 for i in range(45)]
    corpus.write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    train, held_out = tmp_path / "train.txt", tmp_path / "eval.txt"
    assert quickstart.split_corpus(str(corpus), str(train),
                                   str(held_out)) == (41, 4)
    train_docs = train.read_text().strip().split("\n\n")
    eval_docs = held_out.read_text().strip().split("\n\n")
    assert eval_docs == [documents[i] for i in (9, 19, 29, 39)]
    assert not set(train_docs) & set(eval_docs)
    assert sorted(train_docs + eval_docs) == sorted(documents)


def test_pretraining_evaluates_on_eval_input_file(tiny_spm, tmp_path):
    import pytest

    import pretraining_fixtures as fixtures
    from albert_tf import distribute
    from albert_tf import training
    from albert_tf.tasks import pretraining

    records = fixtures.write_records(tiny_spm, tmp_path / "data")
    empty = tmp_path / "empty.tfrecord"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"--eval_input_file={empty}: "
                                         r"every file is empty"):
        pretraining.run(
            fixtures.albert_config(), training.RunConfig(
                output_dir=str(tmp_path / "out"), num_train_steps=1,
                train_batch_size=4),
            pretraining.OptimizerConfig(num_train_steps=1,
                                        num_warmup_steps=0),
            distribute.get_strategy("one_device"), input_file=records,
            max_seq_length=fixtures.SEQ,
            max_predictions_per_seq=fixtures.PREDICTIONS, do_eval=True,
            eval_input_file=str(empty))
    assert not (tmp_path / "out").exists()
