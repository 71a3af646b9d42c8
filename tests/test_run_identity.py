"""A run's training data is part of its identity (issue 18, part 1).

A resumed run restores its input iterator, whose pipeline (files, shuffle
buffer, batch size) is that of the run that saved it: a rerun on edited
data, or with another max_seq_length, trained on the old data or crashed
in tf.data. Such a rerun is now refused before anything is written,
naming what changed, unless --restart_input_on_new_data is given.
"""

import json
import os
import re

import pytest
import tensorflow as tf

import helpers
import pretraining_fixtures as fixtures
from albert_tf import distribute
from albert_tf import optimization
from albert_tf import run_dir
from albert_tf import training
from albert_tf.data import squad
from albert_tf.tasks import classification
from albert_tf.tasks import finetune
from albert_tf.tasks import pretraining
from albert_tf.tasks import squad as squad_task
from test_run_classifier import _glue_data
from test_run_squad import _squad_json

SEQ, QUERY, STRIDE = 40, 8, 12


def _trainer(out, task=None):
    task = task or classification.ClassificationTask(
        helpers.tiny_config(vocab_size=320, max_position_embeddings=16),
        "sst-2", "unused", optimization.OptimizerConfig(),
        spm_model_file=None, cached_dir="unused", max_seq_length=8)
    return training.Trainer(task, distribute.get_strategy("one_device"),
                            training.RunConfig(output_dir=str(out),
                                               num_train_steps=3,
                                               train_batch_size=2))


def _numbers(start):
    return lambda context: tf.data.Dataset.range(start, start + 100)


def test_restart_input_pipeline_starts_the_iterator_over(tmp_path):
    trainer = _trainer(tmp_path)
    iterator = iter(_numbers(0)(None))
    next(iterator), next(iterator)
    trainer.checkpoint.iterator = iterator
    trainer.global_step.assign(2)
    trainer.manager.save(checkpoint_number=2)

    def first_after_resume():
        resumed = _trainer(tmp_path)
        new = iter(_numbers(1000)(None))
        resumed.checkpoint.iterator = new
        resumed.checkpoint.read(resumed.latest_checkpoint()
                                ).assert_existing_objects_matched()
        return int(next(new)), int(resumed.global_step.numpy())

    # The bug: a restored iterator reads on in the old data.
    assert first_after_resume() == (2, 2)
    finetune.restart_input_pipeline(_trainer(tmp_path), _numbers(1000))
    assert first_after_resume() == (1000, 2)
    assert sorted(p.name for p in tmp_path.glob("ckpt-*.index")) == [
        "ckpt-2.index"]


def _squad_task(tmp_path, tiny_spm, train_file, max_seq_length=SEQ):
    out = tmp_path / "out"
    config = helpers.tiny_config(vocab_size=320, max_position_embeddings=SEQ)
    task = squad_task.SquadTask(
        config, optimization.OptimizerConfig(num_train_steps=2),
        version_2_with_negative=False, spm_model_file=tiny_spm["model"],
        vocab_file=None, options=squad.FeatureOptions(
            max_seq_length=max_seq_length, doc_stride=STRIDE,
            max_query_length=QUERY),
        prediction=squad_task.PredictionConfig(), train_file=train_file,
        predict_file=None, train_feature_file=str(out / "train.tf_record"),
        predict_feature_file=str(out / "predict.tf_record"),
        predict_feature_left_file=str(out / "predict_left.json"))
    run_config = training.RunConfig(
        output_dir=str(out), num_train_steps=2, train_batch_size=4,
        save_checkpoints_steps=1, iterations_per_loop=1, keep_checkpoint_max=None)
    return task, config, run_config


def _snapshot(out):
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()
            and not p.name.endswith(".lock")}


def test_a_squad_rerun_on_other_data_is_refused_naming_the_change(
        tiny_spm, tmp_path):
    train = tmp_path / "train.json"
    _squad_json(train, 1, False)
    strategy = distribute.get_strategy("one_device")
    task, config, run_config = _squad_task(tmp_path, tiny_spm, str(train))
    finetune.run(task, config, run_config, strategy, do_train=True,
                 flags_text="--x=1\n")
    out = tmp_path / "out"
    assert json.loads((out / run_dir.TRAIN_DATA_NAME).read_text())[
        "features"]["max_seq_length"] == SEQ
    before = _snapshot(out)

    # The same file copied elsewhere is the same data: it resumes.
    copy = tmp_path / "elsewhere" / "train.json"
    copy.parent.mkdir()
    copy.write_bytes(train.read_bytes())
    task, config, run_config = _squad_task(tmp_path, tiny_spm, str(copy))
    finetune.run(task, config, run_config, strategy, do_train=True)
    before = _snapshot(out)

    # Every answer_start shifted by one, more steps: refused before the
    # cache is rebuilt, naming the file whose contents changed.
    data = json.loads(train.read_text())
    for paragraph in data["data"][0]["paragraphs"]:
        for qa in paragraph["qas"]:
            qa["answers"][0]["answer_start"] += 1
    train.write_text(json.dumps(data))
    task, config, run_config = _squad_task(tmp_path, tiny_spm, str(train))
    with pytest.raises(run_dir.DataMismatchError,
                       match=r"sources\.train\.json: \"[0-9a-f]+\" -> "
                             r"\"[0-9a-f]+\".*--restart_input_on_new_data"):
        finetune.run(task, config, run_config, strategy, do_train=True)
    assert _snapshot(out) == before

    # Another max_seq_length: refused too, naming old and new.
    _squad_json(train, 1, False)
    task, config, run_config = _squad_task(tmp_path, tiny_spm, str(train),
                                           max_seq_length=32)
    with pytest.raises(run_dir.DataMismatchError,
                       match="max_seq_length: 40 -> 32"):
        finetune.run(task, config, run_config, strategy, do_train=True)
    assert _snapshot(out) == before

    # Explicitly restarting the input on the new data resumes the weights.
    run_config = training.RunConfig(
        output_dir=str(out), num_train_steps=3, train_batch_size=4,
        save_checkpoints_steps=1, iterations_per_loop=1,
        keep_checkpoint_max=None)
    finetune.run(task, config, run_config, strategy, do_train=True,
                 restart_input=True)
    assert json.loads((out / run_dir.TRAIN_DATA_NAME).read_text())[
        "features"]["max_seq_length"] == 32
    assert (out / "ckpt-3.index").exists()


def test_a_glue_rerun_with_another_batch_size_or_data_is_refused(
        tiny_spm, tmp_path):
    _glue_data(tmp_path / "glue", "sst-2")
    out = tmp_path / "out"
    config = helpers.tiny_config(vocab_size=320, max_position_embeddings=16)

    def run(batch_size=2, do_train=True):
        task = classification.ClassificationTask(
            config, "sst-2", str(tmp_path / "glue"),
            optimization.OptimizerConfig(num_train_steps=1),
            spm_model_file=tiny_spm["model"], max_seq_length=16,
            cached_dir=str(out))
        finetune.run(task, config, training.RunConfig(
            output_dir=str(out), num_train_steps=1,
            train_batch_size=batch_size, iterations_per_loop=1),
            distribute.get_strategy("one_device"), do_train=do_train,
            do_eval=True, wait_for_checkpoints=False)

    run()
    history = (out / training.EVAL_HISTORY).read_text()
    with pytest.raises(run_dir.DataMismatchError,
                       match="input.train_batch_size: 2 -> 4"):
        run(batch_size=4)
    with open(tmp_path / "glue" / "SST-2" / "train.tsv", "a") as f:
        f.write("one more sentence\t1\n")
    with pytest.raises(run_dir.DataMismatchError,
                       match="features.source_sha256"):
        run()
    # Evaluations on an edited dev set would be compared with the old
    # ones: refused too, even without training.
    with open(tmp_path / "glue" / "SST-2" / "dev.tsv", "a") as f:
        f.write("one more sentence\t1\n")
    with pytest.raises(run_dir.DataMismatchError, match=(
            r"eval_history.json holds evaluations on other data.*"
            r"source_sha256")):
        run(do_train=False)
    assert (out / training.EVAL_HISTORY).read_text() == history


def test_a_pretraining_rerun_on_other_files_is_refused(tiny_spm, tmp_path):
    records = fixtures.write_records(tiny_spm, tmp_path / "data")
    config = fixtures.albert_config()
    out = tmp_path / "out"

    def run(input_file, restart=False):
        return pretraining.run(
            config, training.RunConfig(
                output_dir=str(out), num_train_steps=2, train_batch_size=4,
                save_checkpoints_steps=2, iterations_per_loop=2),
            pretraining.OptimizerConfig(num_train_steps=2,
                                        num_warmup_steps=1),
            distribute.get_strategy("one_device"), input_file=input_file,
            max_seq_length=fixtures.SEQ,
            max_predictions_per_seq=fixtures.PREDICTIONS,
            restart_input=restart)

    run(records)
    one = str(tmp_path / "data" / "part-0.tfrecord")
    with pytest.raises(run_dir.DataMismatchError, match="input_files"):
        run(one)
    run(one, restart=True)
    stored = json.loads((out / run_dir.TRAIN_DATA_NAME).read_text())
    assert stored["input_files"] == [[os.path.abspath(one),
                                      os.path.getsize(one)]]
    run(one)  # The same data again: resumes (already at the last step).


def test_pretraining_input_of_only_empty_files_is_an_error(tmp_path):
    empty = tmp_path / "empty.tfrecord"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"--input_file={empty}: every "
                                         r"file is empty"):
        pretraining.check_input_files(str(empty))


def test_a_resumed_run_refuses_another_init_checkpoint(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "ckpt-3.index").write_bytes(b"")
    (out / "flags.txt").write_text("--init_checkpoint=/models/base\n")
    with run_dir.open_run(str(out), None) as run:
        run.check_init_checkpoint("/models/base")  # The same: resumes.
        for other, shown in (("/models/large", "/models/large"),
                             (None, "(none)")):
            with pytest.raises(run_dir.ConfigMismatchError, match=(
                    rf"started from --init_checkpoint=/models/base .*this "
                    rf"rerun gives {re.escape(shown)}, which it would "
                    r"ignore")):
                run.check_init_checkpoint(other)
    (out / "ckpt-3.index").unlink()
    with run_dir.open_run(str(out), None) as run:
        run.check_init_checkpoint("/models/large")  # Nothing to resume.


def test_another_tokenizer_is_refused_even_to_predict_or_restart(
        tiny_spm, tmp_path):
    import shutil

    _glue_data(tmp_path / "glue", "sst-2")
    out = tmp_path / "out"
    config = helpers.tiny_config(vocab_size=320, max_position_embeddings=16)
    other_spm = tmp_path / "other.model"
    shutil.copy(tiny_spm["model"], other_spm)

    def run(do_train=True, do_lower_case=True, spm=tiny_spm["model"],
            **kwargs):
        task = classification.ClassificationTask(
            config, "sst-2", str(tmp_path / "glue"),
            optimization.OptimizerConfig(num_train_steps=1),
            spm_model_file=str(spm), max_seq_length=16,
            cached_dir=str(out), do_lower_case=do_lower_case)
        finetune.run(task, config, training.RunConfig(
            output_dir=str(out), num_train_steps=1, train_batch_size=2,
            iterations_per_loop=1), distribute.get_strategy("one_device"),
            do_train=do_train, do_predict=not do_train, **kwargs)

    run()
    run(do_train=False, spm=other_spm)  # A copy: the same contents.
    for kwargs in ({"do_train": False}, {"restart_input": True}):
        with pytest.raises(run_dir.ConfigMismatchError, match=(
                r"trained with another tokenizer .*do_lower_case: true -> "
                r"false")):
            run(do_lower_case=False, **kwargs)
