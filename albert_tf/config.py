"""AlbertConfig: the released `albert_config.json`, key for key.

The field names are the JSON keys of google-research/albert, so a release
config loads without translation and writes back unchanged. Defaults are the
original constructor's (the xxlarge values); `vocab_size` has none.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

# hidden_act values. "gelu" is the tanh approximation, as in the original
# modeling.gelu (HF calls the same function "gelu_new"); "gelu_exact" is erf.
ACTIVATIONS = ("gelu", "gelu_new", "gelu_exact", "relu", "tanh", "swish")

# Keys the released JSONs carry that the original modeling code never reads.
# They are accepted only at the value that means "feature not used".
LEGACY_KEYS = {
    "net_structure_type": 0,
    "gap_size": 0,
    "num_memory_blocks": 0,
    "down_scale_factor": 1,
    "layers_to_keep": [],
}

# HF transformers' names for the same functions (its "gelu" is erf).
_ACT_TO_HF = {"gelu": "gelu_new", "gelu_new": "gelu_new", "gelu_exact": "gelu",
              "relu": "relu", "tanh": "tanh", "swish": "silu"}
_HF_TO_ACT = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu",
              "gelu": "gelu_exact", "relu": "relu", "tanh": "tanh",
              "silu": "swish", "swish": "swish"}

_INT_FIELDS = (
    "embedding_size",
    "hidden_size",
    "intermediate_size",
    "max_position_embeddings",
    "num_attention_heads",
    "num_hidden_layers",
    "num_hidden_groups",
    "inner_group_num",
    "type_vocab_size",
    "vocab_size",
)


@dataclasses.dataclass(frozen=True)
class AlbertConfig:
    """Architecture of an ALBERT model (one released `albert_config.json`).

    Example:
        config = AlbertConfig.from_json_file("albert_base/albert_config.json")
        encoder = AlbertEncoder(config)
    """

    vocab_size: int
    embedding_size: int = 128
    hidden_size: int = 4096
    num_hidden_layers: int = 12
    num_hidden_groups: int = 1
    num_attention_heads: int = 64
    intermediate_size: int = 16384
    inner_group_num: int = 1
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    # Legacy keys: carried by the released files, ignored by modeling.
    net_structure_type: int = 0
    gap_size: int = 0
    num_memory_blocks: int = 0
    down_scale_factor: int = 1
    layers_to_keep: tuple = ()

    def __post_init__(self):
        # JSON gives lists; keep the dataclass hashable and comparable.
        if isinstance(self.layers_to_keep, list):
            object.__setattr__(self, "layers_to_keep", tuple(self.layers_to_keep))
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name}={value!r} must be an integer")
            if value < 1:
                raise ValueError(f"{name}={value} must be >= 1")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob",
                     "initializer_range"):
            value = getattr(self, name)
            # A JSON string ("0.1") or NaN (which passes every comparison
            # test below as False, so NaN weights) must not get through.
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value)):
                raise ValueError(f"{name}={value!r} must be a finite number")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name}={value} must be in [0, 1)")
        if self.initializer_range <= 0:
            raise ValueError(
                f"initializer_range={self.initializer_range} must be > 0")
        if not isinstance(self.hidden_act, str):
            raise ValueError(f"hidden_act={self.hidden_act!r} must be a "
                             f"string, one of {ACTIVATIONS}")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(
                f"hidden_act={self.hidden_act!r} is not one of {ACTIVATIONS}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be divisible by "
                f"num_attention_heads={self.num_attention_heads}")
        if self.num_hidden_groups > self.num_hidden_layers:
            raise ValueError(
                f"num_hidden_groups={self.num_hidden_groups} must be <= "
                f"num_hidden_layers={self.num_hidden_layers}")
        for name, unused in LEGACY_KEYS.items():
            value = getattr(self, name)
            if (list(value) if name == "layers_to_keep" else value) != unused:
                raise NotImplementedError(
                    f"{name}={value!r} is not supported: the original modeling "
                    f"code ignores this key, so only {unused!r} is meaningful")

    @property
    def attention_head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "AlbertConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise ValueError(
                    f"unknown albert_config key {key!r}; expected one of "
                    f"{sorted(known)}")
        if "vocab_size" not in values:
            raise ValueError("albert_config is missing the key 'vocab_size'")
        return cls(**values)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "AlbertConfig":
        import tensorflow as tf  # Lazy: the config itself needs no TF.

        path = os.fspath(path)
        # tf.io.gfile, so gs:// and ram:// configs load like local ones.
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"albert_config file not found: {path}")
        from albert_tf import fileio  # fileio imports TensorFlow.

        # Errors name the file and line (and the byte offset of bad UTF-8).
        values = fileio.read_json(path)
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a JSON object of config keys")
        try:
            return cls.from_dict(values)
        except (ValueError, NotImplementedError) as e:
            raise type(e)(f"{path}: {e}") from e

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["layers_to_keep"] = list(self.layers_to_keep)
        return values

    def to_json_string(self) -> str:
        # sort_keys and indent=2 as the original AlbertConfig.to_json_string.
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str | os.PathLike) -> None:
        """Writes atomically, so an existing file is never left half-written."""
        from albert_tf import fileio  # fileio imports TensorFlow.

        fileio.write_atomic(os.fspath(path), self.to_json_string())

    @classmethod
    def from_hf_config(cls, values: dict[str, Any]) -> "AlbertConfig":
        """From a transformers `config.json`, keeping HF's activation.

        HF's "gelu" is the exact erf GELU and "gelu_new" the tanh form (the
        original's "gelu"), so both are renamed to keep the numbers HF
        computes.
        """
        act = values.get("hidden_act", "gelu_new")
        if act not in _HF_TO_ACT:
            raise ValueError(f"HF hidden_act={act!r} is not supported; "
                             f"expected one of {sorted(_HF_TO_ACT)}")
        eps = values.get("layer_norm_eps", 1e-12)
        if eps != 1e-12:
            raise NotImplementedError(
                f"HF layer_norm_eps={eps}: albert_tf uses the original's "
                f"1e-12 everywhere")
        position = values.get("position_embedding_type", "absolute")
        if position != "absolute":
            raise NotImplementedError(
                f"HF position_embedding_type={position!r}: only 'absolute' "
                f"exists in the original")
        fields = ({f.name for f in dataclasses.fields(cls)} - set(LEGACY_KEYS)
                  - {"hidden_act"})
        return cls(**{k: v for k, v in values.items() if k in fields},
                   hidden_act=_HF_TO_ACT[act])

    def to_hf_config(self, architecture: str = "AlbertModel"
                     ) -> dict[str, Any]:
        """A transformers `config.json` dict computing the same function."""
        values = {k: v for k, v in self.to_dict().items()
                  if k not in LEGACY_KEYS}
        values.update(
            hidden_act=_ACT_TO_HF[self.hidden_act], layer_norm_eps=1e-12,
            position_embedding_type="absolute", model_type="albert",
            architectures=[architecture], pad_token_id=0, bos_token_id=2,
            eos_token_id=3)
        return values

    def num_parameters(self, pretraining_heads: bool = False) -> int:
        """Weights of AlbertEncoder (+ the MLM and SOP heads), unbuilt.

        Equal to count_params() of the built model (tested), so models too
        large to allocate here (BERT-xlarge, 1.27B) can still be sized.
        """
        v, e, h = self.vocab_size, self.embedding_size, self.hidden_size
        i = self.intermediate_size
        # Word, position and token-type tables, then LayerNorm.
        total = (v + self.max_position_embeddings + self.type_vocab_size) * e
        total += 2 * e
        if e != h:  # The E -> H projection exists only when they differ.
            total += e * h + h
        block = (4 * (h * h + h) + 2 * h  # q, k, v, output; LayerNorm.
                 + (h * i + i) + (i * h + h) + 2 * h)  # FFN; LayerNorm.
        total += self.num_hidden_groups * self.inner_group_num * block
        total += h * h + h  # Pooler.
        if pretraining_heads:
            # MLM transform (H -> E), its LayerNorm, output bias over the
            # tied embeddings; SOP [2, H] + bias.
            total += h * e + e + 2 * e + v + 2 * h + 2
        return total

    def replace(self, **changes: Any) -> "AlbertConfig":
        """A copy with some fields changed (e.g. dropout for fine-tuning)."""
        return dataclasses.replace(self, **changes)

    def without_dropout(self) -> "AlbertConfig":
        """As the original's `is_training=False`: both dropouts forced to 0."""
        return self.replace(hidden_dropout_prob=0.0,
                            attention_probs_dropout_prob=0.0)


def from_keras_config(values: dict[str, Any]) -> dict[str, Any]:
    """A Keras get_config() dict with its `config` entry as an AlbertConfig.

    The one from_config step shared by every layer and model built from a
    config.
    """
    values = dict(values)
    values["config"] = AlbertConfig.from_dict(values["config"])
    return values
