"""Issue 18, part 7: the same questions asked of the other inputs. Numeric
flags out of range (NaN, zero, negative) and config fields of the wrong
JSON type are refused by name before anything is written."""

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest
from absl import app
from absl import flags

import helpers
from albert_tf import runner_flags
from albert_tf.config import AlbertConfig

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _flag_values(**extra):
    fv = flags.FlagValues()
    runner_flags.define_common_flags(fv)
    runner_flags.define_finetune_flags(fv)
    flags.DEFINE_float("learning_rate", 5e-5, "", flag_values=fv)
    flags.DEFINE_integer("train_batch_size", 32, "", flag_values=fv)
    flags.DEFINE_float("warmup_proportion", 0.1, "", flag_values=fv)
    flags.DEFINE_float("null_score_diff_threshold", 0.0, "", flag_values=fv)
    fv(["runner"] + [f"--{k}={v}" for k, v in extra.items()])
    return fv


@pytest.mark.parametrize("name, value, rule", [
    ("learning_rate", "nan", "must be a finite number > 0"),
    ("learning_rate", "-1e-5", "must be a finite number > 0"),
    ("train_batch_size", "0", "must be >= 1"),
    ("warmup_proportion", "1.5", r"must be in \[0, 1\]"),
    ("albert_dropout_prob", "1.0", r"must be in \[0, 1\)"),
    ("null_score_diff_threshold", "inf", "must be a finite number"),
    ("num_gpus", "-1", "must be >= 0"),
])
def test_out_of_range_numeric_flags_are_usage_errors(name, value, rule):
    fv = _flag_values(**{name: value})
    with pytest.raises(app.UsageError, match=rf"--{name}=.*: {rule}"):
        runner_flags.check_values(fv)


def test_good_flags_pass():
    runner_flags.check_values(_flag_values())


@pytest.mark.parametrize("key, value", [
    ("hidden_dropout_prob", "0.1"), ("initializer_range", math.nan),
    ("attention_probs_dropout_prob", True), ("hidden_act", 3)])
def test_config_fields_must_have_their_json_type(tmp_path, key, value):
    path = tmp_path / "albert_config.json"
    values = helpers.tiny_config().to_dict()
    values[key] = value
    path.write_text(json.dumps(values))
    with pytest.raises(ValueError, match=rf"{path}: {key}="):
        AlbertConfig.from_json_file(str(path))


def test_a_nan_learning_rate_stops_the_runner_before_writing(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_pretraining.py"),
         f"--output_dir={out}", "--learning_rate=nan"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode != 0
    assert "--learning_rate=nan: must be a finite number > 0" in result.stderr
    assert not out.exists()  # Not even the quickstart's data.


def test_a_duplicate_glue_test_index_is_an_error_naming_both_lines(
        tmp_path):
    from albert_tf.data import glue
    from test_run_classifier import _glue_data

    _glue_data(tmp_path, "sst-2")
    path = tmp_path / "SST-2" / "test.tsv"
    lines = path.read_text().splitlines()
    lines[4] = "1\t" + lines[4].split("\t", 1)[1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"test.tsv:5: index '1' also on "
                                         r"line 3"):
        glue.get_processor("sst-2").get_test_examples(str(tmp_path))


def test_one_empty_pretraining_file_is_an_error_before_writing(tmp_path):
    from albert_tf.tasks import pretraining

    good = tmp_path / "a.tfrecord"
    good.write_bytes(b"x" * 10)
    (tmp_path / "b.tfrecord").write_bytes(b"")
    with pytest.raises(ValueError, match=(
            r"--input_file=.*\*\.tfrecord: 1 of 2 files are empty \(0 "
            r"bytes, no records\): .*b\.tfrecord")):
        pretraining.check_input_files(str(tmp_path / "*.tfrecord"))


def test_an_output_dir_that_is_a_file_is_named(tmp_path):
    from albert_tf import run_dir

    path = tmp_path / "out"
    path.write_text("a file")
    with pytest.raises(FileExistsError, match=rf"--output_dir={path} is a "
                                              r"file, not a directory"):
        with run_dir.open_run(str(path), None):
            pass
    assert path.read_text() == "a file"


@pytest.mark.parametrize("name", ["output_dir", "init_checkpoint",
                                  "spm_model_file"])
def test_an_empty_path_flag_is_a_usage_error(name):
    fv = _flag_values(**{name: ""})
    with pytest.raises(app.UsageError, match=rf"--{name}='': is empty"):
        runner_flags.check_values(fv)


def test_a_non_utf8_config_names_the_file_line_and_offset(tmp_path):
    path = tmp_path / "albert_config.json"
    path.write_bytes(b'{"vocab_size": 30,\n "hidden_act": "g\xe9lu"}')
    with pytest.raises(ValueError, match=rf"{path}:2: not UTF-8 \(byte "
                                         r"0xe9 at byte offset 36\)"):
        AlbertConfig.from_json_file(str(path))


def test_a_non_utf8_wordpiece_vocab_names_the_file_and_offset(tmp_path):
    from albert_tf.tokenization.full_tokenizer import FullTokenizer

    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[UNK]\n[CLS]\n[SEP]\ncaf\xe9\n")
    with pytest.raises(ValueError, match=rf"{path}:4: not UTF-8 \(byte "
                                         r"0xe9 at byte offset 21\)"):
        FullTokenizer(vocab_file=str(path))
