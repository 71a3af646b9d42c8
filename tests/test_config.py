import json
import pathlib

import pytest

from albert_tf import AlbertConfig

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "configs"
RELEASES = ["base", "large", "xlarge", "xxlarge"]


@pytest.mark.parametrize("size", RELEASES)
def test_release_json_round_trips_losslessly(size, tmp_path):
    path = CONFIGS / f"albert_{size}_v2.json"
    raw = json.loads(path.read_text())
    config = AlbertConfig.from_json_file(path)
    # Every key of the file is kept with its value.
    for key, value in raw.items():
        assert config.to_dict()[key] == value, key
    assert AlbertConfig.from_dict(config.to_dict()) == config
    out = tmp_path / "albert_config.json"
    config.to_json_file(out)
    assert AlbertConfig.from_json_file(out) == config
    assert json.loads(config.to_json_string()) == config.to_dict()


def test_release_values_match_the_original():
    expected = {  # size: (L, H, heads, I)
        "base": (12, 768, 12, 3072), "large": (24, 1024, 16, 4096),
        # xlarge: 16 heads of size 128 (the released albert_config.json),
        # not H/64 = 32.
        "xlarge": (24, 2048, 16, 8192), "xxlarge": (12, 4096, 64, 16384)}
    for size, (layers, hidden, heads, inter) in expected.items():
        c = AlbertConfig.from_json_file(CONFIGS / f"albert_{size}_v2.json")
        assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads,
                c.intermediate_size) == (layers, hidden, heads, inter)
        assert (c.vocab_size, c.embedding_size, c.max_position_embeddings,
                c.type_vocab_size) == (30000, 128, 512, 2)
        assert c.hidden_act == "gelu"
        assert c.hidden_dropout_prob == c.attention_probs_dropout_prob == 0


def test_defaults_are_the_original_constructor_defaults():
    c = AlbertConfig(vocab_size=30000)
    assert (c.embedding_size, c.hidden_size, c.num_hidden_layers,
            c.num_hidden_groups, c.num_attention_heads, c.intermediate_size,
            c.inner_group_num, c.down_scale_factor, c.hidden_act,
            c.hidden_dropout_prob, c.attention_probs_dropout_prob,
            c.max_position_embeddings, c.type_vocab_size,
            c.initializer_range) == (128, 4096, 12, 1, 64, 16384, 1, 1,
                                     "gelu", 0, 0, 512, 2, 0.02)


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match="hidden_sizee"):
        AlbertConfig.from_dict({"vocab_size": 10, "hidden_sizee": 8})


def test_missing_vocab_size():
    with pytest.raises(ValueError, match="vocab_size"):
        AlbertConfig.from_dict({"hidden_size": 8})


@pytest.mark.parametrize("key,value", [
    ("net_structure_type", 1), ("gap_size", 1), ("num_memory_blocks", 2),
    ("down_scale_factor", 2), ("layers_to_keep", [0, 1])])
def test_legacy_keys_only_at_their_unused_value(key, value):
    with pytest.raises(NotImplementedError, match=key):
        AlbertConfig.from_dict({"vocab_size": 10, key: value})


@pytest.mark.parametrize("values,message", [
    (dict(hidden_size=10, num_attention_heads=3), "hidden_size=10.*=3"),
    (dict(num_hidden_layers=2, num_hidden_groups=3),
     "num_hidden_groups=3.*num_hidden_layers=2"),
    (dict(hidden_act="gelu_fast"), "gelu_fast"),
    (dict(hidden_dropout_prob=1.5), "hidden_dropout_prob=1.5"),
    (dict(inner_group_num=0), "inner_group_num=0"),
    (dict(hidden_size=8.0), "hidden_size=8.0"),
])
def test_invalid_combinations_echo_values(values, message):
    base = dict(vocab_size=10, hidden_size=8, num_attention_heads=2,
                intermediate_size=4)
    with pytest.raises(ValueError, match=message):
        AlbertConfig.from_dict({**base, **values})


def test_json_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        AlbertConfig.from_json_file(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"vocab_size": 10, "colour": 1}')
    with pytest.raises(ValueError, match="bad.json.*colour"):
        AlbertConfig.from_json_file(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValueError, match="broken.json.*not valid JSON"):
        AlbertConfig.from_json_file(broken)


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "gelu_exact", "relu",
                                 "tanh", "swish"])
def test_accepted_activations(act):
    assert AlbertConfig(vocab_size=5, hidden_act=act).hidden_act == act
