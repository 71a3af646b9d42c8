"""albert_tf.data.cache: what the key records and what the log says."""

import logging

from albert_tf.data import cache
from albert_tf.tokenization import FullTokenizer


def _entry(path, key):
    cache.write(str(path), key, lambda tmp: open(tmp, "w").write("x"))


def test_tokenizer_key_records_lowercasing_and_hf_compat(tiny_spm):
    spm = tiny_spm["model"]
    lower = cache.tokenizer_key(FullTokenizer(spm_model_file=spm,
                                              do_lower_case=True))
    cased = cache.tokenizer_key(FullTokenizer(spm_model_file=spm,
                                              do_lower_case=False))
    assert lower["do_lower_case"] is True and cased["do_lower_case"] is False
    assert lower["hf_compat"] is False
    assert lower["spm_model_sha256"] == cased["spm_model_sha256"]
    assert set(lower) == {"do_lower_case", "hf_compat", "spm_model_sha256"}


def test_long_and_nested_values_in_the_reason(tmp_path):
    path = tmp_path / "x.tf_record"
    _entry(path, {"a": "k" * 100, "b": [{"z": 1, "y": 2}]})
    reason = cache.stale_reason(str(path), {"a": "j" * 100,
                                            "b": [{"y": 2, "z": 3}]})
    # Values over 80 characters are cut to 77 + "..."; dicts inside
    # lists are written with sorted keys.
    assert f'a: "{"k" * 76}... -> "{"j" * 76}...' in reason
    assert 'b: [{"y": 2, "z": 1}] -> [{"y": 2, "z": 3}]' in reason


def test_lookup_logs_reuse_and_why_it_rebuilds(tmp_path, caplog):
    path = tmp_path / "x.tf_record"
    with caplog.at_level(logging.INFO, logger="absl"):
        assert not cache.lookup(str(path), {"v": 1})
    assert f"Building {path}: no cached file" in caplog.text
    _entry(path, {"v": 1})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="absl"):
        assert cache.lookup(str(path), {"v": 1})
    assert f"Reusing cached {path} (same inputs)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="absl"):
        assert not cache.lookup(str(path), {"v": 2})
    assert (f"Rebuilding cached {path}: built from other inputs: v: 1 -> 2"
            in caplog.text)


def test_a_key_must_be_a_json_dict(tmp_path):
    import pytest
    with pytest.raises(TypeError, match="a cache key must be a dict, got "
                       "<class 'list'>"):
        cache.lookup(str(tmp_path / "x"), ["v"])
    with pytest.raises(TypeError, match="cache key is not JSON-serializable"):
        cache.lookup(str(tmp_path / "x"), {"v": object()})
