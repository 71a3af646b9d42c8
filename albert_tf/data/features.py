"""TFRecord feature schemas and tf.train.Example encoding.

The only place feature names are spelled. Names, dtypes and shapes are the
original's (create_pretraining_data.write_instance_to_example_files,
classifier_utils.file_based_convert_examples_to_features,
squad_utils.FeatureWriter, race_utils): L = max_seq_length, P =
max_predictions_per_seq (x2 with do_permutation). Schemas are plain
name -> FeatureSpec dicts so that writers (which run in worker processes
without TensorFlow) and readers share them; `to_tf_spec` builds the
`tf.io.FixedLenFeature` dict for parsing.

`encode_example` writes tf.train.Example wire bytes directly (packed varint
int64 lists, little-endian float lists). It is several times faster than
building protos and needs no TensorFlow; tests check that TensorFlow parses
it to the same values as a `tf.train.Example` built the usual way.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Mapping, Sequence, Union


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """dtype "int64" or "float32"; shape entries are ints or dim names."""

    dtype: str
    shape: tuple[Union[int, str], ...]


def _int(*shape) -> FeatureSpec:
    return FeatureSpec("int64", tuple(shape))


# Pretraining (create_pretraining_data.py -> run_pretraining.py).
PRETRAINING = {
    "input_ids": _int("L"),
    "input_mask": _int("L"),
    "segment_ids": _int("L"),
    "token_boundary": _int("L"),  # 1 at word starts, [CLS] and [SEP].
    "masked_lm_positions": _int("P"),
    "masked_lm_ids": _int("P"),
    "masked_lm_weights": FeatureSpec("float32", ("P",)),  # 1 real, 0 pad.
    # Legacy name kept by the original: holds the SOP label (1 = swapped or
    # random document, 0 = original order).
    "next_sentence_labels": _int(1),
}

# GLUE classifier (classifier_utils). label_ids is float for STS-B.
CLASSIFIER = {
    "input_ids": _int("L"),
    "input_mask": _int("L"),
    "segment_ids": _int("L"),
    "label_ids": _int(),
    "is_real_example": _int(),
}
CLASSIFIER_REGRESSION = dict(CLASSIFIER, label_ids=FeatureSpec("float32", ()))

# SQuAD v1/v2 (squad_utils). The last three exist only in training files;
# p_mask (1 = question/[SEP]/pad, 0 = [CLS] + context) is read by v2.
SQUAD = {
    "unique_ids": _int(),
    "input_ids": _int("L"),
    "input_mask": _int("L"),
    "segment_ids": _int("L"),
    "p_mask": _int("L"),
    "start_positions": _int(),
    "end_positions": _int(),
    "is_impossible": _int(),
}
SQUAD_TRAINING_ONLY = ("start_positions", "end_positions", "is_impossible")

# RACE (race_utils): the four choices flattened, [4 * L].
RACE = {
    "input_ids": _int("4L"),
    "input_mask": _int("4L"),
    "segment_ids": _int("4L"),
    "label_ids": _int(),
    "is_real_example": _int(),
}


def resolve_shape(spec: FeatureSpec, dims: Mapping[str, int]) -> list[int]:
    shape = []
    for d in spec.shape:
        if isinstance(d, int):
            shape.append(d)
        elif d == "4L":
            shape.append(4 * dims["L"])
        else:
            shape.append(dims[d])
    return shape


def pretraining_dims(max_seq_length: int, max_predictions_per_seq: int,
                     do_permutation: bool = False) -> dict[str, int]:
    """P doubles with do_permutation, as the original writer pads it."""
    return {"L": max_seq_length,
            "P": max_predictions_per_seq * (1 + int(do_permutation))}


def to_tf_spec(schema: Mapping[str, FeatureSpec], **dims: int) -> dict:
    """name -> tf.io.FixedLenFeature, e.g. to_tf_spec(PRETRAINING, L=512, P=20)."""
    import tensorflow as tf  # Local: writers must not need TensorFlow.
    return {name: tf.io.FixedLenFeature(resolve_shape(spec, dims),
                                        getattr(tf, spec.dtype))
            for name, spec in schema.items()}


# --- tf.train.Example wire encoding ----------------------------------------

def _varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF  # int64 two's complement, as protobuf.
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_VARINTS: list[bytes] = [_varint(v) for v in range(1 << 15)]


def _varints(values: Sequence[int]) -> bytes:
    low, high = min(values), max(values)
    if low >= 0 and high < 0x80:
        return bytes(values)  # One byte per value: the value itself.
    if low >= 0 and high < len(_VARINTS):
        return b"".join(map(_VARINTS.__getitem__, values))
    return b"".join(_varint(v) for v in values)


def _field(number: int, payload: bytes) -> bytes:
    # Length-delimited field (wire type 2).
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(dtype: str, values: Sequence) -> bytes:
    if dtype == "int64":
        inner = _field(1, _varints(values)) if len(values) else b""
        return _field(3, inner)  # Feature.int64_list
    if dtype == "float32":
        packed = struct.pack(f"<{len(values)}f", *values)
        inner = _field(1, packed) if len(values) else b""
        return _field(2, inner)  # Feature.float_list
    raise ValueError(f"unsupported feature dtype {dtype!r}")


def encode_example(schema: Mapping[str, FeatureSpec],
                   values: Mapping[str, Sequence]) -> bytes:
    """Serialized tf.train.Example with `values[name]` for each schema name."""
    entries = []
    for name, spec in schema.items():
        if name not in values:
            continue
        feature = _feature(spec.dtype, values[name])
        entry = _field(1, name.encode("utf-8")) + _field(2, feature)
        entries.append(_field(1, entry))  # Features.feature map entry.
    return _field(1, b"".join(entries))  # Example.features
