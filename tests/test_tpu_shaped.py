"""The TPU path on CPU: static shapes, drop_remainder, one-hot embeddings,
bf16 and XLA, through the runners' own code with the default strategy in
the TPU strategy's place (tests/tpu_shaped_run.py). The XLA step must
compile for one shape only, and the losses must be the normal path's."""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np

import helpers
import pretraining_fixtures as fx
import test_run_classifier

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = pathlib.Path(__file__).resolve().parent
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
           PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]))
TPU = ["--use_tpu", "--tpu=local", "--jit_compile", "--dtype=bfloat16"]
_STEP = re.compile(r"step (\d+)/\d+ loss ([-\d.]+)")


def _run(runner, args, tpu):
    command = [sys.executable]
    if tpu:
        command += [str(TESTS / "tpu_shaped_run.py"), str(ROOT / runner),
                    *TPU]
    else:
        command += [str(ROOT / runner), "--dtype=bfloat16"]
    result = subprocess.run(command + args, env=ENV, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    losses = {int(s): float(v) for s, v in _STEP.findall(result.stderr)}
    assert losses, result.stderr[-2000:]
    return result.stderr, losses


def _check(out, stderr, tpu_losses, normal_losses, seq, padding=True):
    # One static shape: the XLA step compiled once, at max_seq_length.
    shapes = re.findall(r"XLA compiled the train step for (\d+) shapes: "
                        r"\{(\d+): \d+\}", stderr)
    assert shapes == [("1", str(seq))], stderr[-2000:]
    flags_text = (out / "flags.txt").read_text()
    assert "--use_one_hot_embeddings" in flags_text.split("\n")
    if padding:  # Fine-tuning only: pretraining records are fixed-length.
        assert "--nodynamic_padding" in flags_text.split("\n")
    assert sorted(tpu_losses) == sorted(normal_losses)
    steps = sorted(normal_losses)
    # bf16 compute both ways; XLA fuses differently, padding is masked.
    np.testing.assert_allclose([tpu_losses[s] for s in steps],
                               [normal_losses[s] for s in steps],
                               rtol=2e-2)


def test_pretraining_on_the_tpu_path(tiny_spm, tmp_path):
    records = fx.write_records(tiny_spm, tmp_path / "records")
    config = fx.write_config(tmp_path / "albert_config.json")

    def args(out):
        return fx.runner_flags(records, config, out, do_eval=False,
                               num_train_steps=4, save_checkpoints_steps=4)

    stderr, tpu = _run("run_pretraining.py", args(tmp_path / "tpu"), True)
    _, normal = _run("run_pretraining.py", args(tmp_path / "normal"), False)
    _check(tmp_path / "tpu", stderr, tpu, normal, fx.SEQ, padding=False)


def test_classifier_on_the_tpu_path(tiny_spm, tmp_path):
    test_run_classifier._glue_data(tmp_path / "glue", "sst-2")
    config = tmp_path / "albert_config.json"
    seq = test_run_classifier.SEQ
    config.write_text(json.dumps(helpers.tiny_config(
        vocab_size=320, max_position_embeddings=seq).to_dict()))

    def args(out):
        return ["--task_name=sst-2", f"--data_dir={tmp_path / 'glue'}",
                f"--albert_config_file={config}",
                f"--spm_model_file={tiny_spm['model']}", f"--output_dir={out}",
                f"--max_seq_length={seq}", "--train_batch_size=4",
                "--train_step=4", "--save_checkpoints_steps=4",
                "--log_every_n_steps=1", "--learning_rate=1e-3",
                "--do_train"]

    stderr, tpu = _run("run_classifier.py", args(tmp_path / "tpu"), True)
    _, normal = _run("run_classifier.py", args(tmp_path / "normal"), False)
    _check(tmp_path / "tpu", stderr, tpu, normal, seq)
