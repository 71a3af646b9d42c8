"""Pretraining end to end: the runner, failure handling, resume, strategies."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

import helpers
import pretraining_fixtures as fx
from albert_tf import distribute
from albert_tf import runner_flags
from albert_tf import training
from albert_tf.tasks import pretraining

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = pathlib.Path(__file__).resolve().parent
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
           PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]))


@pytest.fixture(scope="module")
def records(tiny_spm, tmp_path_factory):
    return fx.write_records(tiny_spm, tmp_path_factory.mktemp("records"))


@pytest.fixture(scope="module")
def one_file_records(tiny_spm, tmp_path_factory):
    return fx.write_records(tiny_spm, tmp_path_factory.mktemp("one"),
                            num_files=1)


def _runner(args, **kwargs):
    return subprocess.run(
        [sys.executable, str(ROOT / "run_pretraining.py"), *args],
        env=ENV, capture_output=True, text=True, timeout=600, **kwargs)


def test_runner_end_to_end_with_flagfile(records, tmp_path):
    config_file = fx.write_config(tmp_path / "albert_config.json")
    out = tmp_path / "out"
    flagfile = tmp_path / "run.flags"
    flagfile.write_text("\n".join(fx.runner_flags(
        records, config_file, out, export_dir=tmp_path / "export")) + "\n")
    result = _runner([f"--flagfile={flagfile}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--num_train_steps=4" in (out / "flags.txt").read_text()
    assert json.loads((out / "albert_config.json").read_text()) == \
        fx.albert_config().to_dict()
    assert tf.train.latest_checkpoint(str(out)).endswith("ckpt-4")
    history = json.loads((out / "eval_history.json").read_text())
    assert set(history) == {"ckpt-2", "ckpt-4"}
    results = history["ckpt-4"]
    assert set(results) == {"global_step", "masked_lm_accuracy",
                            "masked_lm_loss", "sentence_order_accuracy",
                            "sentence_order_loss"}
    assert results["global_step"] == 4
    assert 0 <= results["masked_lm_accuracy"] <= 1
    assert results["masked_lm_loss"] > 0
    best = helpers.expected_best_checkpoint(history, "masked_lm_accuracy")
    assert tf.train.latest_checkpoint(str(out / "best")).endswith(best)
    assert training.read_results(str(out / "best" / "eval_results.txt")) == \
        history[best]
    # Every checkpoint's results, in step order, with the best marked.
    text = (out / "eval_results.txt").read_text()
    assert text.index("checkpoint = ckpt-2") < text.index(
        "checkpoint = ckpt-4")
    assert f"best_checkpoint = {best}\n" in text
    assert list((out / "train").glob("events.out.tfevents.*"))
    exported = tf.saved_model.load(str(tmp_path / "export"))
    serve = exported.signatures["serving_default"]
    ids = tf.constant([[2, 10, 11, 3, 0], [2, 12, 3, 0, 0]], tf.int32)
    outputs = serve(input_ids=ids, input_mask=tf.cast(ids > 0, tf.int32),
                    segment_ids=tf.zeros_like(ids))
    assert outputs["pooled_output"].shape == (2, 8)
    assert outputs["sequence_output"].shape == (2, 5, 8)


def _library_run(records, tmp_path, **overrides):
    values = dict(learning_rate=0.01, num_train_steps=4, num_warmup_steps=1)
    optimizer_values = {k: overrides.pop(k) for k in list(overrides)
                        if k in ("learning_rate", "optimizer")}
    values.update(optimizer_values)
    run_config = training.RunConfig(
        output_dir=str(tmp_path / "out"), num_train_steps=4,
        train_batch_size=4, iterations_per_loop=2, log_every_n_steps=2,
        save_checkpoints_steps=overrides.pop("save_checkpoints_steps", 2))
    return pretraining.run(
        overrides.pop("config", fx.albert_config()), run_config,
        pretraining.OptimizerConfig(**values),
        distribute.get_strategy("one_device"), records, fx.SEQ,
        fx.PREDICTIONS, seed=1, **overrides)


def test_nan_loss_stops_with_a_clear_message_and_no_checkpoint(records,
                                                               tmp_path):
    # An absurd learning rate: the weights blow up within a few steps.
    with pytest.raises(FloatingPointError, match="non-finite"):
        _library_run(records, tmp_path, learning_rate=1e38,
                     optimizer="adamw", save_checkpoints_steps=1)
    saved = sorted((tmp_path / "out").glob("ckpt-*.index"))
    assert "ckpt-4.index" not in [p.name for p in saved]
    for path in saved:
        for value in _read_weights(str(path)[:-len(".index")]).values():
            assert np.isfinite(value).all(), path


def test_non_finite_weights_are_never_saved(records, tmp_path):
    # lr overflows float32: the very first update makes the weights NaN.
    with pytest.raises(FloatingPointError, match="non-finite weights"):
        _library_run(records, tmp_path, learning_rate=1e39,
                     optimizer="adamw", save_checkpoints_steps=1)
    assert not list((tmp_path / "out").glob("ckpt-*"))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_mixed_precision_training(records, tmp_path, dtype):
    _library_run(records, tmp_path, dtype=dtype)
    weights = _read_weights(tf.train.latest_checkpoint(str(tmp_path / "out")))
    assert all(np.isfinite(v).all() for v in weights.values())
    # Variables stay float32 under the mixed policies.
    assert all(v.dtype == np.float32 for k, v in weights.items()
               if k.startswith("model/"))


def test_max_seq_length_beyond_position_embeddings(records, tmp_path):
    with pytest.raises(ValueError, match="max_seq_length=16 > "
                       "max_position_embeddings=8"):
        _library_run(records, tmp_path,
                     config=fx.albert_config(max_position_embeddings=8))


def test_vocab_size_smaller_than_the_data(records, tmp_path):
    with pytest.raises(ValueError, match="vocab_size=50"):
        _library_run(records, tmp_path, config=fx.albert_config(vocab_size=50))


def _read_weights(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k.startswith(("model/", "optimizer/"))
            and k.endswith("VARIABLE_VALUE")}


def test_resume_after_sigkill_matches_an_uninterrupted_run(records,
                                                           tmp_path):
    config_file = fx.write_config(tmp_path / "albert_config.json")

    def args(out):
        return fx.runner_flags(
            records, config_file, out, num_train_steps=12,
            save_checkpoints_steps=3, iterations_per_loop=1,
            log_every_n_steps=1, do_eval=False) + [
                "--deterministic", "--gradient_accumulation_steps=2"]

    # The uninterrupted run goes beside the killed one: they share nothing
    # but the records, and the test takes half the wall time.
    straight = tmp_path / "straight"
    straight_run = subprocess.Popen(
        [sys.executable, str(ROOT / "run_pretraining.py"), *args(straight)],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    try:
        killed = tmp_path / "killed"
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "run_pretraining.py"), *args(killed)],
            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while not (killed / "ckpt-3.index").exists():
            assert process.poll() is None and time.time() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert not (killed / "ckpt-12.index").exists(), "finished before kill"
        result = _runner(args(killed))
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Resumed from" in result.stderr
    except BaseException:
        straight_run.kill()  # Do not leave it running past a failure.
        raise
    _finish(straight_run)

    expected = _read_weights(str(straight / "ckpt-12"))
    got = _read_weights(str(killed / "ckpt-12"))
    assert set(got) == set(expected) and len(expected) > 50
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-6,
                                   err_msg=key)


def _distributed(strategy, records, out, env=None, cpus=None):
    command = [sys.executable, str(TESTS / "distributed_run.py"), strategy,
               records, str(out)] + ([str(cpus)] if cpus else [])
    return subprocess.Popen(command, env=env or ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(process):
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_mirrored_and_two_local_workers_follow_one_device(one_file_records,
                                                          tmp_path):
    """The same 5 steps on one device, 2 mirrored CPUs and 2 local workers
    (these accumulate 2 micro-batches per step).

    All four processes start at once (the two workers must; the others
    share nothing with them). One test, so pytest-xdist cannot split it
    over two test processes and start the four runs twice.
    """
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    processes = {
        "single": _distributed("one_device", one_file_records,
                               tmp_path / "single.json"),
        "mirrored": _distributed("mirrored", one_file_records,
                                 tmp_path / "mirrored.json", cpus=2)}
    for index in range(2):
        tf_config = {"cluster": {"worker": workers},
                     "task": {"type": "worker", "index": index}}
        processes[f"worker{index}"] = _distributed(
            "multi_worker_mirrored", one_file_records,
            tmp_path / f"worker{index}.json",
            env=dict(ENV, TF_CONFIG=json.dumps(tf_config),
                     ACCUMULATION_STEPS="2"))
    for process in processes.values():
        _finish(process)
    runs = {name: json.loads((tmp_path / f"{name}.json").read_text())
            for name in processes}

    # Mirrored on 2 CPUs follows the single device's loss.
    one, mirrored = runs["single"], runs["mirrored"]
    assert (one["replicas"], mirrored["replicas"]) == (1, 2)
    assert len(one["losses"]) == 5
    np.testing.assert_allclose(mirrored["losses"], one["losses"], atol=1e-5)

    # Two workers agree with each other exactly...
    a, b = runs["worker0"], runs["worker1"]
    assert a["replicas"] == b["replicas"] == 2
    assert a["weights"] == b["weights"]
    assert a["losses"] == b["losses"] and len(a["losses"]) == 5
    # ...and compute what one device does at the same global batch, with
    # two micro-batches each (gradient accumulation across workers): the
    # same losses and the same final weights.
    np.testing.assert_allclose(a["losses"], one["losses"], atol=1e-5)
    assert set(a["weights"]) == set(one["weights"])
    for name, value in one["weights"].items():
        np.testing.assert_allclose(a["weights"][name], value, rtol=1e-4,
                                   atol=1e-4, err_msg=name)


def test_tpu_flags_choose_the_tpu_strategy(monkeypatch):
    values = flags.FlagValues()
    runner_flags.define_common_flags(values)
    values(["prog", "--use_tpu", "--tpu=local", "--tpu_zone=us-central2-b",
            "--gcp_project=my-project"])
    calls = []
    monkeypatch.setattr(distribute, "_tpu_strategy",
                        lambda *args: calls.append(args) or "tpu!")
    assert runner_flags.strategy_from_flags(values) == "tpu!"
    # The original's --tpu_zone and --gcp_project reach the resolver.
    assert calls == [("local", "us-central2-b", "my-project")]


def test_training_checkpoint_initialises_a_classifier(records, tmp_path):
    """Variables shared with the optimizer are stored under its path; the
    loader follows the saved object graph to find them."""
    from albert_tf import AlbertClassifier
    from albert_tf import AlbertPretrainer
    from albert_tf import checkpoints

    config = fx.albert_config(hidden_dropout_prob=0.1)
    _library_run(records, tmp_path, config=config)
    out = str(tmp_path / "out")
    classifier = AlbertClassifier(config, num_labels=2)
    report = checkpoints.load_checkpoint(classifier, out, allow_partial=True)
    assert report.format == "albert_tf"
    assert len(report.loaded) == len(classifier.encoder.weights)
    assert len(report.missing_in_checkpoint) == 2  # The new classifier.
    assert len(report.unused_in_checkpoint) == 7  # The pretraining heads.
    assert report.skipped  # Optimizer slots and the step.
    reference = AlbertPretrainer(config)
    tf.train.Checkpoint(model=reference).read(
        tf.train.latest_checkpoint(out)).expect_partial()
    np.testing.assert_array_equal(
        classifier.encoder.embeddings.word_embeddings,
        reference.encoder.embeddings.word_embeddings)
    np.testing.assert_array_equal(classifier.encoder.pooler.kernel,
                                  reference.encoder.pooler.kernel)


def test_pretraining_on_cloud_style_paths(tiny_spm, tmp_path):
    """Inputs, checkpoints, eval files, best/ and the export all go through
    tf.io.gfile: TensorFlow's in-process ram:// file system stands in for
    gs://."""
    root = "ram://cloud_pretraining"
    records = fx.write_records(tiny_spm, root + "/data", num_files=1)
    out = root + "/out"
    run_config = training.RunConfig(
        output_dir=out, num_train_steps=2, train_batch_size=4,
        iterations_per_loop=1, log_every_n_steps=1,
        save_checkpoints_steps=1)
    results = pretraining.run(
        fx.albert_config(), run_config, pretraining.OptimizerConfig(
            learning_rate=0.01, num_train_steps=2, num_warmup_steps=1),
        distribute.get_strategy("one_device"), records, fx.SEQ,
        fx.PREDICTIONS, do_eval=True, max_eval_steps=1, seed=1,
        export_dir=root + "/export", flags_text="--x=1\n")
    assert results["global_step"] == 2
    for name in ("ckpt-2.index", "eval_results.txt", "eval_history.json",
                 "best_trial.txt", "flags.txt", "albert_config.json",
                 "best/checkpoint"):
        assert tf.io.gfile.exists(f"{out}/{name}"), name
    assert not tf.io.gfile.exists(f"{out}/train.lock")
    assert tf.io.gfile.exists(root + "/export/saved_model.pb")
