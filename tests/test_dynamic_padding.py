"""--dynamic_padding: batches cut to their longest example give the same
batches, losses, metrics and predictions as fixed-length ones (GLUE,
SQuAD v1/v2, RACE), and the flag is off / refused on TPU."""

import collections
import json
import logging
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import app
from absl import flags

import helpers
from albert_tf import distribute
from albert_tf import optimization
from albert_tf import runner_flags
from albert_tf import training
from albert_tf.data import finetune_input
from albert_tf.data import race
from albert_tf.data import squad
from albert_tf.tasks import classification
from albert_tf.tasks import finetune
from albert_tf.tasks import race as race_task
from albert_tf.tasks import squad as squad_task
from test_race_data import _articles
from test_race_data import write_released
from test_run_classifier import _glue_data
from test_run_squad import _squad_json

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = pathlib.Path(__file__).resolve().parent
SEQ, BUCKET = 48, 8  # The fixture's sentences: 6 to 40 tokens.


# --- make_batches -----------------------------------------------------------

def _write_records(path, lengths, seq, choices=1):
    """Examples whose real length (per choice) is `lengths[i]`, ids > 0."""
    rng = np.random.default_rng(5)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i, length in enumerate(lengths):
            ids, mask, seg = [], [], []
            for c in range(choices):
                n = max(1, length - c)  # Choices of different lengths.
                ids += list(rng.integers(1, 50, n)) + [0] * (seq - n)
                mask += [1] * n + [0] * (seq - n)
                seg += [0] * (n // 2) + [1] * (n - n // 2) + [0] * (seq - n)
            feature = {
                "input_ids": ids, "input_mask": mask, "segment_ids": seg,
                "label_ids": [i % 2], "is_real_example": [1]}
            example = tf.train.Example(features=tf.train.Features(feature={
                k: tf.train.Feature(int64_list=tf.train.Int64List(value=v))
                for k, v in feature.items()}))
            writer.write(example.SerializeToString())
    return str(path)


def _spec(width):
    return {"input_ids": tf.io.FixedLenFeature([width], tf.int64),
            "input_mask": tf.io.FixedLenFeature([width], tf.int64),
            "segment_ids": tf.io.FixedLenFeature([width], tf.int64),
            "label_ids": tf.io.FixedLenFeature([], tf.int64),
            "is_real_example": tf.io.FixedLenFeature([], tf.int64)}


NAMES = ("input_ids", "input_mask", "segment_ids")


def _check_cut(fixed, cut, static, multiple):
    longest = int(fixed["input_mask"].reshape(
        fixed["input_mask"].shape[0], -1, static).sum(-1).max())
    width = cut["input_ids"].shape[-1]
    assert width == static or width % multiple == 0
    assert longest <= width <= static
    assert width == min(static, -(-max(longest, 1) // multiple) * multiple)
    for name in NAMES:
        np.testing.assert_array_equal(cut[name], fixed[name][..., :width])
        assert not fixed[name][..., width:].any()  # Only padding dropped.
    for name in ("label_ids", "is_real_example"):
        np.testing.assert_array_equal(cut[name], fixed[name])
    return width


def test_make_batches_cuts_to_the_longest_example(tmp_path):
    static, multiple = 13, 4
    lengths = [3, 2, 5, 13, 7, 1, 4, 9, 2, 6, 3]
    path = _write_records(tmp_path / "f.tfrecord", lengths, static)
    make = lambda m, **kw: finetune_input.make_batches(
        path, _spec(static), 3, pad_to_multiple=m, sequence_features=NAMES,
        **kw)
    widths = []
    for fixed, cut in zip(make(0, is_training=False),
                          make(multiple, is_training=False)):
        fixed = {k: v.numpy() for k, v in fixed.items()}
        widths.append(_check_cut(fixed, {k: v.numpy() for k, v in
                                         cut.items()}, static, multiple))
    assert widths == [8, 13, 12, 8]  # A width capped at 13, others cut.
    # Training: the same examples in the same order (cut after shuffling).
    fixed_train = make(0, is_training=True, seed=3, drop_remainder=True)
    cut_train = make(multiple, is_training=True, seed=3, drop_remainder=True)
    for fixed, cut in zip(fixed_train.take(6), cut_train.take(6)):
        _check_cut({k: v.numpy() for k, v in fixed.items()},
                   {k: v.numpy() for k, v in cut.items()}, static, multiple)
    assert cut_train.element_spec["input_ids"].shape.as_list() == [3, None]


def test_make_batches_refuses_unknown_sequence_features(tmp_path):
    path = _write_records(tmp_path / "f.tfrecord", [2], 5)
    with pytest.raises(ValueError, match="p_mask"):
        finetune_input.make_batches(path, _spec(5), 2, False,
                                    pad_to_multiple=2,
                                    sequence_features=("p_mask",))
    with pytest.raises(ValueError, match="pad_to_multiple=-1"):
        finetune_input.make_batches(path, _spec(5), 2, False,
                                    pad_to_multiple=-1)


def test_race_batches_are_cut_on_the_last_axis(tmp_path):
    static, multiple = 11, 3
    lengths = [2, 4, 3, 10, 5, 2, 8]
    path = tmp_path / "race.tfrecord"
    _write_records(path, lengths, static, choices=race.NUM_CHOICES)
    fixed_batches = race.make_dataset(str(path), static, 2, False)
    cut_batches = race.make_dataset(str(path), static, 2, False,
                                    pad_to_multiple=multiple)
    widths = []
    for fixed, cut in zip(fixed_batches, cut_batches):
        fixed = {k: v.numpy() for k, v in fixed.items()}
        cut = {k: v.numpy() for k, v in cut.items()}
        assert cut["input_ids"].shape[:2] == (fixed["input_ids"].shape[0],
                                              race.NUM_CHOICES)
        widths.append(_check_cut(fixed, cut, static, multiple))
    assert widths == [6, 11, 6, 9]  # 12 capped at 11.


def test_pad_to_common_width():
    ints = [np.ones((2, 3), np.int32), np.ones((1, 5), np.int32)]
    floats = [np.zeros((1, 4), np.float32), np.zeros((2, 2), np.float32)]
    out = training.pad_to_common_width(ints)
    assert [a.shape for a in out] == [(2, 5), (1, 5)]
    assert not out[0][:, 3:].any() and out[0][:, :3].all()
    out = training.pad_to_common_width(floats)
    assert [a.shape for a in out] == [(1, 4), (2, 4)]
    assert (out[1][:, 2:] == np.finfo(np.float32).min).all()
    same = [np.zeros((2, 3)), np.zeros((1, 3))]
    assert all(a is b for a, b in zip(training.pad_to_common_width(same),
                                      same))


# --- GLUE: training, eval and predict through finetune.run -------------------

def _classifier(tmp_path, pad_to_multiple, name):
    config = helpers.tiny_config(vocab_size=320, max_position_embeddings=SEQ)
    return config, classification.ClassificationTask(
        config, "sst-2", str(tmp_path / "glue"), optimization.OptimizerConfig(
            learning_rate=1e-2, num_train_steps=5, num_warmup_steps=1),
        spm_model_file=str(pathlib.Path(_classifier.spm)),
        max_seq_length=SEQ, cached_dir=str(tmp_path / name),
        eval_batch_size=3, predict_batch_size=3, seed=7,
        pad_to_multiple=pad_to_multiple)


@pytest.fixture
def glue_dir(tiny_spm, tmp_path):
    _classifier.spm = tiny_spm["model"]
    _glue_data(tmp_path / "glue", "sst-2")
    return tmp_path


def _finetune_run(tmp_path, pad_to_multiple, name, monkeypatch):
    trainers = []

    class Recording(training.Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    monkeypatch.setattr(training, "Trainer", Recording)
    keras.utils.set_random_seed(11)
    config, task = _classifier(tmp_path, pad_to_multiple, name)
    out = tmp_path / name
    run_config = training.RunConfig(
        output_dir=str(out), num_train_steps=5, train_batch_size=4,
        save_checkpoints_steps=5, iterations_per_loop=5,
        log_every_n_steps=1, keep_checkpoint_max=None)
    finetune.run(task, config, run_config,
                 distribute.get_strategy("one_device"), do_train=True,
                 do_eval=True, do_predict=True)
    return trainers[0], out


def test_classifier_matches_the_fixed_length_run(glue_dir, monkeypatch):
    fixed, fixed_out = _finetune_run(glue_dir, 0, "fixed", monkeypatch)
    cut, cut_out = _finetune_run(glue_dir, BUCKET, "cut", monkeypatch)
    assert fixed.batch_widths == {SEQ: 5}
    assert sum(cut.batch_widths.values()) == 5
    assert min(cut.batch_widths) < SEQ  # The test exercises a cut.
    assert all(w % BUCKET == 0 for w in cut.batch_widths)
    # The loss curve (dropout 0 in the encoder; the head's acts on [B, H]).
    np.testing.assert_allclose([h["loss"] for h in cut.history],
                               [h["loss"] for h in fixed.history],
                               rtol=1e-4)
    history = [json.loads((out / "eval_history.json").read_text())
               for out in (fixed_out, cut_out)]
    assert set(history[0]) == set(history[1]) == {"ckpt-0", "ckpt-5"}
    for name in history[0]:
        for key, value in history[0][name].items():
            assert history[1][name][key] == pytest.approx(value, abs=1e-5)
    np.testing.assert_allclose(
        np.loadtxt(cut_out / "test_results.tsv", delimiter="\t"),
        np.loadtxt(fixed_out / "test_results.tsv", delimiter="\t"),
        atol=1e-5)
    assert ((cut_out / "submit_results.tsv").read_text()
            == (fixed_out / "submit_results.tsv").read_text())


def test_jit_compile_logs_the_number_of_widths(glue_dir, caplog):
    keras.utils.set_random_seed(11)
    _, task = _classifier(glue_dir, BUCKET, "jit")
    task.prepare(True, False, False)
    trainer = training.Trainer(
        task, distribute.get_strategy("one_device"), training.RunConfig(
            output_dir=str(glue_dir / "jit"), num_train_steps=4,
            train_batch_size=4, iterations_per_loop=2,
            log_every_n_steps=2, jit_compile=True))
    with caplog.at_level(logging.INFO, logger="absl"):
        trainer.train(lambda context: task.train_dataset(context, 4))
    widths = dict(sorted(trainer.batch_widths.items()))
    # Independently of the trainer's counter and of the cutting: the same
    # seeded batches at full length, each batch's longest example rounded
    # up to BUCKET (at most SEQ).
    expected = collections.Counter()
    task.pad_to_multiple = 0
    for batch in task.train_dataset(tf.distribute.InputContext(),
                                    4).take(4):
        assert batch["input_mask"].shape[-1] == SEQ
        longest = int(np.max(np.sum(batch["input_mask"], -1)))
        expected[min(-(-longest // BUCKET) * BUCKET, SEQ)] += 1
    task.pad_to_multiple = BUCKET
    assert widths == dict(sorted(expected.items()))
    assert len(widths) >= 2  # Two shapes, so the count means something.
    assert (f"XLA compiled the train step for {len(widths)} shapes: "
            f"{widths}") in caplog.text
    assert f"batches cut to multiples of {BUCKET} up to {SEQ}" in caplog.text


MIRRORED_SCRIPT = textwrap.dedent("""
    import sys
    import tensorflow as tf
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    import helpers
    from albert_tf import distribute, optimization, training
    from albert_tf.tasks import classification

    root, spm, seq, bucket = sys.argv[1:3] + [int(x) for x in sys.argv[3:]]
    losses = {}
    for multiple in (0, bucket):
        keras.utils.set_random_seed(11)
        task = classification.ClassificationTask(
            helpers.tiny_config(vocab_size=320, max_position_embeddings=seq),
            "sst-2", root + "/glue", optimization.OptimizerConfig(
                learning_rate=1e-2, num_train_steps=4, num_warmup_steps=1),
            spm_model_file=spm, max_seq_length=seq,
            cached_dir=f"{root}/m{multiple}", seed=7,
            pad_to_multiple=multiple)
        task.prepare(True, False, False)
        trainer = training.Trainer(
            task, distribute.get_strategy("mirrored"), training.RunConfig(
                output_dir=f"{root}/m{multiple}", num_train_steps=4,
                train_batch_size=4, iterations_per_loop=2,
                log_every_n_steps=1))
        assert trainer.num_replicas == 2
        trainer.train(lambda context: task.train_dataset(context, 4))
        assert sum(trainer.batch_widths.values()) == 4, trainer.batch_widths
        losses[multiple] = [h["loss"] for h in trainer.history]
        print(multiple, dict(trainer.batch_widths), losses[multiple])
    assert min(trainer.batch_widths) < seq  # Some batches were cut.
    np.testing.assert_allclose(losses[bucket], losses[0], rtol=1e-4)
    print("OK")
""")


def test_mirrored_two_replicas_match_the_fixed_length_run(glue_dir):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]))
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(glue_dir),
         _classifier.spm, str(SEQ), str(BUCKET)], env=env, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout


# --- SQuAD and RACE: the same weights, fixed vs dynamic ----------------------

def _same_weights_both_ways(task, run):
    """run(trainer) with pad_to_multiple 0 and then the task's own, on one
    model (random weights, spread out so rankings are not ties)."""
    multiple = task.pad_to_multiple
    keras.utils.set_random_seed(3)
    trainer = training.Trainer(
        task, distribute.get_strategy("one_device"), training.RunConfig(
            output_dir="unused", num_train_steps=1, train_batch_size=2))
    task.pad_to_multiple = 0
    fixed = run(trainer)
    helpers.randomize(trainer.model, seed=4, scale=0.5)
    fixed = run(trainer)
    task.pad_to_multiple = multiple
    return fixed, run(trainer)


@pytest.mark.parametrize("v2", [False, True])
def test_squad_predictions_do_not_depend_on_padding(v2, tiny_spm, tmp_path):
    seq = 64  # Each question's last window is short.
    options = squad.FeatureOptions(max_seq_length=seq, doc_stride=32,
                                   max_query_length=8, do_lower_case=True)
    task = squad_task.SquadTask(
        helpers.tiny_config(vocab_size=320, max_position_embeddings=seq),
        optimization.OptimizerConfig(), version_2_with_negative=v2,
        spm_model_file=tiny_spm["model"], vocab_file=None, options=options,
        prediction=squad_task.PredictionConfig(n_best_size=5,
                                               start_n_top=3, end_n_top=2),
        train_file=None,
        predict_file=_squad_json(tmp_path / "dev.json", 2, v2),
        train_feature_file=str(tmp_path / "train.tf_record"),
        predict_feature_file=str(tmp_path / "predict.tf_record"),
        predict_feature_left_file=str(tmp_path / "left.json"),
        predict_batch_size=2, pad_to_multiple=8)
    task.prepare(False, True, True)
    widths = {b["input_ids"].shape[-1] for b in squad.make_dataset(
        task.predict_feature_file, seq, 2, False, v2, pad_to_multiple=8)}
    assert min(widths) < seq  # Some batches are cut.
    fixed, cut = _same_weights_both_ways(task, task._predictions)
    (fixed_metrics, fixed_files), (cut_metrics, cut_files) = fixed, cut
    assert cut_metrics == pytest.approx(fixed_metrics, abs=1e-6)
    assert cut_files["predictions.json"] == fixed_files["predictions.json"]
    for qid, entries in fixed_files["nbest_predictions.json"].items():
        others = cut_files["nbest_predictions.json"][qid]
        assert [e["text"] for e in others] == [e["text"] for e in entries]
        np.testing.assert_allclose([e["probability"] for e in others],
                                   [e["probability"] for e in entries],
                                   atol=1e-5)
    if v2:
        odds = fixed_files["null_odds.json"]
        np.testing.assert_allclose(
            [cut_files["null_odds.json"][k] for k in odds],
            list(odds.values()), atol=1e-5)


def test_squad_v2_refuses_a_bucket_narrower_than_the_beam(tmp_path):
    options = squad.FeatureOptions(max_seq_length=40, doc_stride=12,
                                   max_query_length=8, do_lower_case=True)
    with pytest.raises(ValueError, match="padding_bucket=2"):
        squad_task.SquadTask(
            helpers.tiny_config(max_position_embeddings=40),
            optimization.OptimizerConfig(), version_2_with_negative=True,
            spm_model_file=None, vocab_file=None, options=options,
            prediction=squad_task.PredictionConfig(start_n_top=3),
            train_file=None, predict_file=None, train_feature_file="t",
            predict_feature_file="p", predict_feature_left_file="l",
            pad_to_multiple=2)


def test_race_metrics_and_predictions_do_not_depend_on_padding(
        tiny_spm, tmp_path):
    seq = 32  # "Short one." fits in 16; the other articles fill 32.
    for split in ("dev", "test"):
        write_released(tmp_path / "data", _articles(), split=split)
    task = race_task.RaceTask(
        helpers.tiny_config(vocab_size=320, max_position_embeddings=seq),
        str(tmp_path / "data"), optimization.OptimizerConfig(),
        spm_model_file=tiny_spm["model"], max_seq_length=seq,
        max_qa_length=8, feature_files={
            s: str(tmp_path / f"{s}.tf_record")
            for s in ("train", "eval", "predict")},
        eval_batch_size=1, predict_batch_size=1, pad_to_multiple=8)
    task.prepare(False, True, True)
    widths = {b["input_ids"].shape[-1] for b in race.make_dataset(
        task.feature_files["eval"], seq, 1, False, pad_to_multiple=8)}
    assert min(widths) < seq

    def run(trainer):
        out = tmp_path / f"out{task.pad_to_multiple}"
        out.mkdir(exist_ok=True)
        task.predict(trainer, str(out))
        lines = (out / race_task.PREDICTIONS_FILE).read_text().splitlines()
        return task.evaluate(trainer), [json.loads(x) for x in lines]

    (fixed_metrics, fixed_rows), (cut_metrics, cut_rows) = (
        _same_weights_both_ways(task, run))
    assert cut_metrics == pytest.approx(fixed_metrics, abs=1e-5)
    assert [r["prediction"] for r in cut_rows] == [
        r["prediction"] for r in fixed_rows]
    np.testing.assert_allclose([r["probabilities"] for r in cut_rows],
                               [r["probabilities"] for r in fixed_rows],
                               atol=1e-5)


# --- Flags ------------------------------------------------------------------

def _flags(*args):
    fv = flags.FlagValues()
    runner_flags.define_finetune_flags(fv)
    runner_flags.define_common_flags(fv)
    fv(["prog", *args])
    return fv


def test_dynamic_padding_flag_defaults_and_tpu_refusal():
    fv = _flags()
    assert runner_flags.padding_from_flags(fv) == 64
    assert "--dynamic_padding\n" in runner_flags.flags_text(fv)
    assert runner_flags.padding_from_flags(_flags("--padding_bucket=8")) == 8
    assert runner_flags.padding_from_flags(_flags("--nodynamic_padding")) == 0
    for tpu in ("--use_tpu", "--strategy=tpu"):
        fv = _flags(tpu)
        assert runner_flags.padding_from_flags(fv) == 0  # Static shapes.
        assert "--nodynamic_padding\n" in runner_flags.flags_text(fv)
        with pytest.raises(app.UsageError, match="--dynamic_padding"):
            runner_flags.padding_from_flags(_flags(tpu, "--dynamic_padding"))
    with pytest.raises(flags.IllegalFlagValueError, match="padding_bucket"):
        _flags("--padding_bucket=0")
