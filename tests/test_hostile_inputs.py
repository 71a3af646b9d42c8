"""Bad inputs stop with an error naming the file, line or field (issue 18,
parts 2 and 3): nothing to train on, duplicate ids, fields of the wrong
JSON type, non-finite labels and metrics, non-UTF-8 files."""

import json
import math

import pytest

import helpers
from albert_tf import distribute
from albert_tf import fileio
from albert_tf import optimization
from albert_tf import training
from albert_tf.data import glue
from albert_tf.data import race
from albert_tf.data import squad
from albert_tf.tasks import classification
from albert_tf.tasks import finetune
from test_race_data import _articles
from test_race_data import write_original
from test_race_data import write_released
from test_run_classifier import _glue_data
from test_run_identity import _squad_task
from test_run_squad import _squad_json


def _edit(path, change):
    data = json.loads(path.read_text())
    for paragraph in data["data"][0]["paragraphs"]:
        for qa in paragraph["qas"]:
            change(qa)
    path.write_text(json.dumps(data))


# --- 2. Nothing to train on -------------------------------------------------

def test_squad_training_data_without_usable_answers_fails_before_writing(
        tiny_spm, tmp_path):
    train = tmp_path / "train.json"
    _squad_json(train, 1, False)

    def shift(qa):
        qa["answers"][0]["answer_start"] += 1

    _edit(train, shift)
    task, config, run_config = _squad_task(tmp_path, tiny_spm, str(train))
    with pytest.raises(ValueError, match=(
            rf"{train}: no features from its 18 questions \(18 skipped; "
            r"most common reason, 18 questions: answer_start does not "
            r"point at the answer text")):
        finetune.run(task, config, run_config,
                     distribute.get_strategy("one_device"), do_train=True,
                     flags_text="--x=1\n")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == []


def test_a_squad_predict_file_without_questions_is_an_error(tiny_spm,
                                                            tmp_path):
    from albert_tf.tokenization import full_tokenizer

    tokenizer = full_tokenizer.FullTokenizer(
        spm_model_file=tiny_spm["model"])
    feature_file = tmp_path / "predict.tf_record"
    with pytest.raises(ValueError, match="dev.json: no questions in the "
                                         "file; nothing to predict"):
        squad.write_features([], tokenizer, squad.FeatureOptions(
            max_seq_length=40, max_query_length=8), False,
            str(feature_file), eval_features_file=str(tmp_path / "left"),
            source="dev.json")
    assert list(tmp_path.iterdir()) == []


# --- 3. Every field checked -------------------------------------------------

def test_duplicate_squad_ids_are_an_error_naming_both(tmp_path):
    path = tmp_path / "dev.json"
    _squad_json(path, 2, False)
    data = json.loads(path.read_text())
    data["data"][0]["paragraphs"][4]["qas"][1]["id"] = "q2"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=(
            r"question id 'q2' appears twice, at data\[0\]\.paragraphs\[0\]"
            r"\.qas\[2\] and at data\[0\]\.paragraphs\[4\]\.qas\[1\]")):
        squad.read_squad_examples(str(path), is_training=False)


@pytest.mark.parametrize("field, value, message", [
    ("is_impossible", "false", r"question 'q0': 'is_impossible' should be "
                               r"bool, got str"),
    ("is_impossible", 0, r"'is_impossible' should be bool, got int"),
    ("answer_start", "5", r"question 'q0': answers\[0\]: 'answer_start' "
                          r"should be int, got str"),
    ("answer_start", True, r"'answer_start' should be int, got bool"),
    ("text", 5, r"question 'q0': answers\[0\]: 'text' should be str"),
    ("id", 7, r"qas\[0\]: 'id' should be str, got int"),
])
def test_squad_fields_must_have_their_json_type(tmp_path, field, value,
                                                message):
    path = tmp_path / "train.json"
    _squad_json(path, 1, True)
    data = json.loads(path.read_text())
    qa = data["data"][0]["paragraphs"][0]["qas"][0]
    if field in ("answer_start", "text"):
        qa["answers"][0][field] = value
    else:
        qa[field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"{path}: .*{message}"):
        squad.read_squad_examples(str(path), is_training=True)


def test_a_non_utf8_json_names_the_file_line_and_offset(tmp_path):
    path = tmp_path / "dev.json"
    path.write_bytes(b'{"data": [\n{"title": "caf\xe9"}]}')
    with pytest.raises(ValueError, match=(
            rf"{path}:2: not UTF-8 \(byte 0xe9 at byte offset 25\)")):
        squad.read_squad_examples(str(path), is_training=False)


@pytest.mark.parametrize("score", ["nan", "inf", "-Infinity"])
def test_a_non_finite_sts_b_score_is_an_error_with_file_and_line(
        tmp_path, score):
    _glue_data(tmp_path, "sts-b")
    path = tmp_path / "STS-B" / "dev.tsv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit("\t", 1)[0] + "\t" + score
    path.write_text("\n".join(lines) + "\n")
    processor = glue.get_processor("sts-b")
    with pytest.raises(ValueError, match=rf"dev.tsv:4: STS-B score "
                                         rf"'{score}' is not finite"):
        processor.get_dev_examples(str(tmp_path))


def test_a_nan_metric_fails_the_run_and_is_never_recorded(tiny_spm,
                                                          tmp_path):
    _glue_data(tmp_path / "glue", "sts-b")
    out = tmp_path / "out"
    config = helpers.tiny_config(vocab_size=320, max_position_embeddings=16)
    task = classification.ClassificationTask(
        config, "sts-b", str(tmp_path / "glue"),
        optimization.OptimizerConfig(num_train_steps=1),
        spm_model_file=tiny_spm["model"], max_seq_length=16,
        cached_dir=str(out))
    real = task.evaluate
    task.evaluate = lambda trainer: {**real(trainer), "pearson": math.nan}
    with pytest.raises(FloatingPointError, match=(
            r"step-0 checkpoint .* non-finite metrics \(pearson=nan\)")):
        finetune.run(task, config, training.RunConfig(
            output_dir=str(out), num_train_steps=1, train_batch_size=2,
            iterations_per_loop=1), distribute.get_strategy("one_device"),
            do_train=True, do_eval=True)
    assert not (out / training.EVAL_HISTORY).exists()
    assert not (out / training.BEST_DIR).exists()
    assert not (out / "eval_results.txt").exists()


@pytest.mark.parametrize("write", [write_released, write_original])
def test_duplicate_race_article_ids_are_an_error_naming_both(tmp_path,
                                                             write):
    articles = _articles()
    articles["high"][0]["id"] = "middle2.txt"
    write(tmp_path, articles, split="dev")
    processor = race.RaceProcessor()
    with pytest.raises(ValueError, match=(
            r"high.*: article id 'middle2.txt' also appears at .*middle")):
        processor.get_examples(str(tmp_path), race.DEV)


def test_a_race_article_id_must_be_a_string(tmp_path):
    articles = _articles()
    articles["middle"][0]["id"] = 3
    write_released(tmp_path, articles, split="dev")
    with pytest.raises(ValueError, match=r"1\.txt: 'id' must be a "
                                         r"non-empty string, got 3"):
        race.RaceProcessor().get_examples(str(tmp_path), race.DEV)


def test_fileio_read_text_names_bad_bytes(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"ok\nok\n\xff")
    with pytest.raises(ValueError, match=rf"{path}:3: not UTF-8 \(byte "
                                         r"0xff at byte offset 6\)"):
        fileio.read_text(str(path))
