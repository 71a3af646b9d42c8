"""Every input of a feature cache's key rebuilds it when it changes.

RACE (albert_tf.tasks.race, data.race), SQuAD (albert_tf.tasks.squad,
data.squad, with its predict_left.json bookkeeping) and GLUE
(albert_tf.data.glue) caches through albert_tf.data.cache: change one
input at a time against a cache built from the base inputs, and the
entry must be rebuilt; change nothing and it must be reused.
"""

import dataclasses
import json
import os
import shutil

import pytest

import helpers
from albert_tf import optimization
from albert_tf.data import cache
from albert_tf.data import glue
from albert_tf.data import race
from albert_tf.data import squad
from albert_tf.tasks import race as race_task
from albert_tf.tasks import squad as squad_task
from albert_tf.tokenization import FullTokenizer
from test_glue import other_spm  # noqa: F401  (fixture)
from test_race_data import _articles
from test_race_data import write_released
from test_run_squad import _squad_json


@pytest.fixture
def writes(monkeypatch):
    """Paths cache.write (re)builds, in order."""
    paths = []
    real = cache.write

    def spy(path, key, write_fn):
        paths.append(os.path.basename(path))
        return real(path, key, write_fn)

    monkeypatch.setattr(cache, "write", spy)
    return paths


# --- RACE --------------------------------------------------------------------

RACE_BASE = dict(max_seq_length=32, max_qa_length=8, eval_batch_size=2,
                 do_lower_case=True)


def _race(data_dir, features_dir, spm, **changes):
    kwargs = {**RACE_BASE, **changes}
    return race_task.RaceTask(
        helpers.tiny_config(vocab_size=320, max_position_embeddings=32),
        data_dir, optimization.OptimizerConfig(), spm_model_file=spm,
        feature_files={s: os.path.join(features_dir, f"{s}.tf_record")
                       for s in ("train", "eval", "predict")}, **kwargs)


def _edit_article(data_dir):
    path = os.path.join(data_dir, "RACE", "dev", "high", "1.txt")
    with open(path, encoding="utf-8") as f:
        article = json.load(f)
    article["article"] = "Another text entirely. " + article["article"]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(article, f)


@pytest.mark.parametrize("field", [
    "sources", "tokenizer", "do_lower_case", "levels", "max_seq_length",
    "max_qa_length", "padded_to"])
def test_race_cache_rebuilds_for_each_key_field(field, tiny_spm, other_spm,
                                                tmp_path, writes):
    data_dir = write_released(tmp_path / "data", _articles(), split="dev")
    features = str(tmp_path / "features")
    task = _race(data_dir, features, tiny_spm["model"])
    task.prepare(False, True, False)
    assert writes == ["eval.tf_record"]
    _race(data_dir, features, tiny_spm["model"]).prepare(False, True, False)
    assert writes == ["eval.tf_record"]  # Same inputs: reused.
    spm, changes = tiny_spm["model"], {}
    if field == "sources":
        _edit_article(data_dir)
    elif field == "tokenizer":
        spm = other_spm
    elif field == "do_lower_case":
        changes["do_lower_case"] = False
    elif field == "levels":
        changes["middle_only"] = True
    elif field == "max_seq_length":
        changes["max_seq_length"] = 24
    elif field == "max_qa_length":
        changes["max_qa_length"] = 6
    elif field == "padded_to":
        changes["eval_batch_size"] = 3
    task = _race(data_dir, features, spm, **changes)
    task.prepare(False, True, False)
    assert writes == ["eval.tf_record"] * 2, field
    stored = json.load(open(cache.meta_path(task.feature_files["eval"])))
    assert stored["key"] == json.loads(json.dumps(task._cache_key(
        "eval", sorted(task.processor.source_files(data_dir, race.DEV)))))
    if field == "max_qa_length":
        assert stored["key"]["max_qa_length"] == 6


def test_race_eval_and_predict_caches_are_separate(tiny_spm, tmp_path,
                                                   writes):
    for split in ("dev", "test"):
        write_released(tmp_path / "data", _articles(), split=split)
    features = str(tmp_path / "features")
    _race(str(tmp_path / "data"), features, tiny_spm["model"],
          predict_batch_size=2).prepare(False, True, True)
    assert writes == ["eval.tf_record", "predict.tf_record"]
    _race(str(tmp_path / "data"), features, tiny_spm["model"],
          predict_batch_size=2).prepare(False, True, True)
    assert len(writes) == 2


# --- SQuAD -------------------------------------------------------------------

SQUAD_OPTIONS = squad.FeatureOptions(max_seq_length=48, doc_stride=16,
                                     max_query_length=8, do_lower_case=True)


def _squad(tmp_path, predict_file, spm, *, v2=False, options=SQUAD_OPTIONS,
           left="predict_left.json", train_file=None):
    return squad_task.SquadTask(
        helpers.tiny_config(vocab_size=320, max_position_embeddings=64),
        optimization.OptimizerConfig(), version_2_with_negative=v2,
        spm_model_file=spm, vocab_file=None, options=options,
        prediction=squad_task.PredictionConfig(), train_file=train_file,
        predict_file=predict_file,
        train_feature_file=str(tmp_path / "train.tf_record"),
        predict_feature_file=str(tmp_path / "predict.tf_record"),
        predict_feature_left_file=str(tmp_path / left),
        predict_batch_size=2)


def _left_metadata(path):
    return squad.eval_features_metadata(str(path)).get("metadata")


@pytest.mark.parametrize("field", [
    "sources", "tokenizer", "version_2_with_negative", "max_seq_length",
    "doc_stride", "max_query_length", "do_lower_case"])
def test_squad_cache_rebuilds_for_each_key_field(field, tiny_spm, other_spm,
                                                 tmp_path, writes):
    dev = _squad_json(tmp_path / "dev.json", 1, False)
    train = _squad_json(tmp_path / "train.json", 2, False)
    spm = tiny_spm["model"]
    _squad(tmp_path, dev, spm, train_file=train).prepare(True, True, False)
    assert writes == ["train.tf_record", "predict.tf_record"]
    _squad(tmp_path, dev, spm, train_file=train).prepare(True, True, False)
    assert len(writes) == 2  # Same inputs: both reused.
    v2, options = False, SQUAD_OPTIONS
    if field == "sources":
        _squad_json(tmp_path / "dev.json", 3, False)
        _squad_json(tmp_path / "train.json", 4, False)
    elif field == "tokenizer":
        spm = other_spm
    elif field == "version_2_with_negative":
        v2 = True
    else:
        value = {"max_seq_length": 40, "doc_stride": 12,
                 "max_query_length": 6, "do_lower_case": False}[field]
        options = dataclasses.replace(SQUAD_OPTIONS, **{field: value})
    task = _squad(tmp_path, dev, spm, v2=v2, options=options,
                  train_file=train)
    task.prepare(True, True, False)
    assert writes[2:] == ["train.tf_record", "predict.tf_record"], field
    key = task._cache_key("predict", dev)
    assert _left_metadata(tmp_path / "predict_left.json") == json.loads(
        json.dumps(key))
    # The bookkeeping that predictions use is the rebuilt one.
    assert {f["example_index"] for f in task._eval_features} == set(
        range(len(task._examples)))
    if field == "max_seq_length":
        assert max(f["doc_offset"] + len(f["tok_start_to_orig_index"]) + 1
                   for f in task._eval_features) <= 40


def test_squad_predict_left_from_another_predict_file_is_rebuilt(
        tiny_spm, tmp_path, writes):
    """predict_left.json must belong to the cached predict features: one
    written for another predict file (or missing) rebuilds both."""
    spm = tiny_spm["model"]
    dev_a = _squad_json(tmp_path / "a.json", 1, False)
    dev_b = _squad_json(tmp_path / "b.json", 5, False)
    # Run B writes its own features and bookkeeping elsewhere.
    other = tmp_path / "other"
    other.mkdir()
    _squad(other, dev_b, spm).prepare(False, True, False)
    _squad(tmp_path, dev_a, spm).prepare(False, True, False)
    assert writes == ["predict.tf_record", "predict.tf_record"]
    left = tmp_path / "predict_left.json"
    shutil.copy(other / "predict_left.json", left)  # B's bookkeeping.
    task = _squad(tmp_path, dev_a, spm)
    task.prepare(False, True, False)
    assert len(writes) == 3  # Rebuilt, although predict.tf_record matches.
    assert _left_metadata(left) == json.loads(json.dumps(
        task._cache_key("predict", dev_a)))
    assert [e.qas_id for e in task._examples] == [
        f"q{i}" for i in range(len(task._examples))]
    # The features describe A's contexts: every window maps into them.
    for f in task._eval_features:
        text = task._examples[f["example_index"]].paragraph_text
        assert max(f["tok_end_to_orig_index"]) < len(text)
    # Missing bookkeeping: rebuilt too.
    os.remove(left)
    _squad(tmp_path, dev_a, spm).prepare(False, True, False)
    assert len(writes) == 4 and left.exists()
    # All in place: reused.
    _squad(tmp_path, dev_a, spm).prepare(False, True, False)
    assert len(writes) == 4


# --- GLUE: the key fields test_glue does not vary ------------------------------

def test_glue_cache_key_covers_task_split_and_spm_use(tiny_spm, tmp_path):
    source = tmp_path / "train.tsv"
    source.write_text("a\tb\n")
    tokenizer = FullTokenizer(spm_model_file=tiny_spm["model"],
                              do_lower_case=True)

    def key(task="rte", split="train", lower=True, length=16, records=4):
        processor = glue.get_processor(task, do_lower_case=lower)
        return glue.cache_key(processor, str(source), split, tokenizer,
                              length, records)

    base = key()
    assert key() == base
    for changed in (key(task="mnli"), key(split="eval"),
                    key(lower=False), key(length=12), key(records=5)):
        assert changed != base
    assert base["use_spm"] is True and base["num_records"] == 4
    assert base["tokenizer"] == cache.tokenizer_key(tokenizer)
