"""data/cache.py: a cache entry is reused only when built from the same key."""

import json
import os
import shutil

import pytest
import tensorflow as tf

from albert_tf.data import cache
from albert_tf.tokenization import FullTokenizer

KEY = {"format": 1, "task": "rte", "split": "train", "max_seq_length": 16,
       "tokenizer": {"do_lower_case": True, "spm_model_sha256": "ab" * 32}}


def _writer(data, calls=None):
    def write_fn(tmp):
        if calls is not None:
            calls.append(tmp)
        with tf.io.gfile.GFile(tmp, "wb") as f:
            f.write(data)
        return len(data)
    return write_fn


def _read(path):
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("root", ["local", "ram://feature_cache_test"])
def test_write_then_lookup(root, tmp_path):
    directory = str(tmp_path / "c") if root == "local" else root
    path = f"{directory}/rte_train.tf_record"
    assert not cache.lookup(path, KEY)
    calls = []
    assert cache.write(path, KEY, _writer(b"records", calls)) == 7
    assert calls == [path + f".tmp{os.getpid()}"]
    assert _read(path) == b"records"
    assert not tf.io.gfile.exists(calls[0])
    sidecar = json.loads(_read(path + ".meta.json"))
    assert sidecar == {"sidecar_version": 1, "key": KEY, "num_bytes": 7}
    assert cache.lookup(path, dict(KEY))
    assert cache.stale_reason(path, KEY) is None
    if root != "local":
        tf.io.gfile.rmtree(root)


def test_any_differing_field_is_named(tmp_path):
    path = str(tmp_path / "x.tf_record")
    cache.write(path, KEY, _writer(b"r"))
    other = dict(KEY, max_seq_length=32)
    assert cache.stale_reason(path, other) == (
        "built from other inputs: max_seq_length: 16 -> 32")
    other = dict(KEY, tokenizer=dict(KEY["tokenizer"], do_lower_case=False))
    assert "tokenizer.do_lower_case: true -> false" in cache.stale_reason(
        path, other)
    added = dict(KEY, batch_size=8)
    assert "batch_size: (absent) -> 8" in cache.stale_reason(path, added)
    assert not cache.lookup(path, added)
    # Tuples and lists read back the same from JSON.
    cache.write(path, dict(KEY, lengths=(1, 2)), _writer(b"r"))
    assert cache.lookup(path, dict(KEY, lengths=[1, 2]))


def test_interrupted_write_leaves_no_valid_entry(tmp_path):
    path = str(tmp_path / "x.tf_record")
    cache.write(path, KEY, _writer(b"old"))

    def crash(tmp):
        _writer(b"half")(tmp)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.write(path, dict(KEY, max_seq_length=8), crash)
    # The old sidecar went first, so the old file is not reused for either
    # key; no temporary remains.
    assert sorted(os.listdir(tmp_path)) == ["x.tf_record"]
    assert "no x.tf_record.meta.json" in cache.stale_reason(path, KEY)
    assert not cache.lookup(path, KEY)


def test_truncated_or_replaced_file_is_rebuilt(tmp_path):
    path = str(tmp_path / "x.tf_record")
    cache.write(path, KEY, _writer(b"0123456789"))
    with open(path, "wb") as f:
        f.write(b"01234")
    assert "has 5 bytes but 10 were written" in cache.stale_reason(path, KEY)
    os.remove(path)
    assert cache.stale_reason(path, KEY) == "no cached file"
    with open(path + ".meta.json", "w") as f:
        f.write("{not json")
    with open(path, "wb") as f:
        f.write(b"x")
    assert "unreadable sidecar" in cache.stale_reason(path, KEY)


def test_concurrent_writer_is_detected(tmp_path, monkeypatch):
    path = str(tmp_path / "x.tf_record")
    real = cache.fileio.write_json_atomic

    def meanwhile(meta, value):  # Another run renames its file in.
        with open(path, "wb") as f:
            f.write(b"someone else's records")
        real(meta, value)

    monkeypatch.setattr(cache.fileio, "write_json_atomic", meanwhile)
    with pytest.raises(RuntimeError, match="replaced while it was being "
                       "written.*own cached_dir"):
        cache.write(path, KEY, _writer(b"mine"))
    assert not os.path.exists(path + ".meta.json")


def test_writer_must_write(tmp_path):
    with pytest.raises(RuntimeError, match="wrote nothing"):
        cache.write(str(tmp_path / "x"), KEY, lambda tmp: None)
    with pytest.raises(TypeError, match="not JSON-serializable"):
        cache.write(str(tmp_path / "x"), {"f": object()}, _writer(b""))


def test_tokenizer_key_follows_contents_not_paths(tiny_spm, tmp_path):
    key = cache.tokenizer_key(FullTokenizer(spm_model_file=tiny_spm["model"]))
    copy = str(tmp_path / "copy.model")
    shutil.copy(tiny_spm["model"], copy)
    assert cache.tokenizer_key(FullTokenizer(spm_model_file=copy)) == key
    assert cache.tokenizer_key(FullTokenizer(
        spm_model_file=copy, do_lower_case=False)) == dict(
            key, do_lower_case=False)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nka\n")
    wordpiece = cache.tokenizer_key(FullTokenizer(vocab_file=str(vocab)))
    assert set(wordpiece) == {"do_lower_case", "hf_compat", "vocab_sha256"}
