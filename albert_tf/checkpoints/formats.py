"""Load and write checkpoints: original TF1, HF safetensors and albert_tf.

Every load first reads and checks everything (names, shapes, dtypes, file
integrity) and only then assigns, so a refused load leaves the model as it
was. Two policies:

- `load_checkpoint` (and the per-format loaders), for conversion: unless
  `allow_partial`, every model variable must be in the checkpoint and every
  checkpoint weight must be used.
- `load_pretrained`, for `--init_checkpoint`: the whole encoder must load
  and no encoder weight of the checkpoint may go unused; only task-head
  variables may be absent (a classifier from a pretraining checkpoint) or
  unused (the pretraining heads).

Formats:
- TF1: the name-based checkpoints of google-research/albert (release
  tarballs, fine-tuned runs, TF-Hub `module/` variables), through the one
  name table in `albert_tf.checkpoints.tf1_names`.
- HF: a transformers directory (`config.json` + `model.safetensors` or a
  sharded index), read and written with safetensors' numpy API.
- albert_tf: a TF2 object checkpoint of `tf.train.Checkpoint(model=model)`
  (what training writes) plus `albert_config.json`.

All file access goes through tf.io.gfile, so gs:// and ram:// paths work.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import re
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.core.protobuf import trackable_object_graph_pb2

from albert_tf import fileio
from albert_tf.checkpoints import hf_names
from albert_tf.checkpoints import tf1_names
from albert_tf.config import AlbertConfig
from albert_tf.encoder import AlbertEncoder

CONFIG_NAME = "albert_config.json"
RELEASE_CHECKPOINT = "model.ckpt-best"
HF_CONFIG_NAME = "config.json"
HF_WEIGHTS_NAME = "model.safetensors"
HF_INDEX_NAME = "model.safetensors.index.json"
ALBERT_TF_PREFIX = "ckpt"

# Optimizer state and counters: never model weights. The original names
# slots `<var>/adam_m`, `<var>/adam_v` (AdamW and LAMB), `lamb_m`/`lamb_v`
# in export_checkpoints.
_SKIPPED_TF1 = re.compile(r"(/(adam_m|adam_v|lamb_m|lamb_v)$)|(^global_step$)")
_TF1_HUB_PREFIX = "module/"
_TF1_ENCODER_SCOPE = "bert/"
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_OBJECT_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_LISTED = 20  # Names listed per category in reports and errors.

# init_from_group0: where each format puts the group index of a block.
_TF1_GROUP = (re.compile(r"/group_\d+/"), "/group_0/")
_HF_GROUP = (re.compile(r"\.albert_layer_groups\.\d+\."),
             ".albert_layer_groups.0.")
_OBJECT_GROUP = (re.compile(r"/group_\d+/"), "/group_0/")


def _listing(items: list[str], indent: str = "    ") -> list[str]:
    lines = [f"{indent}{item}" for item in items[:_LISTED]]
    if len(items) > _LISTED:
        lines.append(f"{indent}... and {len(items) - _LISTED} more")
    return lines


@dataclasses.dataclass
class LoadReport:
    """What a load did, by checkpoint name (TF1/HF) or object path.

    `missing_encoder` / `unused_encoder` are the parts of
    `missing_in_checkpoint` / `unused_in_checkpoint` that belong to the
    encoder (TF1 `bert/`, HF `albert.`, albert_tf `encoder/`).
    `from_group0` lists model variables filled from the checkpoint's
    group 0 because their own group is not in it (init_from_group0).
    """

    source: str
    format: str
    loaded: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    missing_in_checkpoint: list[str] = dataclasses.field(default_factory=list)
    unused_in_checkpoint: list[str] = dataclasses.field(default_factory=list)
    missing_encoder: list[str] = dataclasses.field(default_factory=list)
    unused_encoder: list[str] = dataclasses.field(default_factory=list)
    from_group0: list[str] = dataclasses.field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every variable loaded and nothing was left over."""
        return not (self.skipped or self.missing_in_checkpoint
                    or self.unused_in_checkpoint)

    def __str__(self) -> str:
        lines = [f"{self.format} checkpoint {self.source}:",
                 f"  loaded: {len(self.loaded)}",
                 f"  skipped (optimizer slots, global_step): "
                 f"{len(self.skipped)}"]
        sections = [("missing in checkpoint", self.missing_in_checkpoint),
                    ("unused in checkpoint", self.unused_in_checkpoint)]
        if self.from_group0:
            sections.insert(0, ("filled from group_0 (init_from_group0)",
                                self.from_group0))
        for title, items in sections:
            lines.append(f"  {title}: {len(items)}")
            lines += _listing(items)
        return "\n".join(lines)

    def check(self, allow_partial: bool) -> None:
        """The conversion policy: everything maps both ways."""
        if allow_partial or not (self.missing_in_checkpoint
                                 or self.unused_in_checkpoint):
            return
        raise ValueError(
            f"partial load refused (pass allow_partial=True to accept):\n"
            f"{self}")

    def check_pretrained(self, allow_partial: bool) -> None:
        """The fine-tuning policy: the whole encoder, heads optional."""
        if allow_partial:
            return
        problems = []
        if not self.loaded:
            problems.append("no variable of the model is in it")
        if self.missing_encoder:
            problems.append(
                f"{len(self.missing_encoder)} encoder variables of the model "
                f"are missing in it:\n"
                + "\n".join(_listing(self.missing_encoder)))
        if self.unused_encoder:
            problems.append(
                f"{len(self.unused_encoder)} of its encoder weights have no "
                f"place in the model (a different config?):\n"
                + "\n".join(_listing(self.unused_encoder)))
        if problems:
            raise ValueError(
                f"--init_checkpoint {self.source} ({self.format}) does not "
                f"initialise this model's encoder: " + "; ".join(problems)
                + "\nOnly task-head variables may be absent. Pass "
                  "allow_partial=True (--allow_partial_init) to fine-tune "
                  "from a partial load anyway.")


def _log_report(report: LoadReport) -> None:
    # WARNING whenever anything was skipped, missing or unused, so a
    # partial initialisation never hides at INFO.
    if report.complete:
        logging.info("%s", report)
    else:
        logging.warning("%s", report)


# A load is planned (read and checked) before any variable is assigned.
_Assignment = tuple[keras.Variable, np.ndarray]


def _checked_value(variable, value: np.ndarray, name: str,
                   source: str) -> np.ndarray:
    """`value` ready for `variable`; refuses a change of shape or kind."""
    if tuple(variable.shape) != tuple(value.shape):
        raise ValueError(
            f"{source}: shape mismatch for {name!r}: checkpoint has "
            f"{tuple(value.shape)}, model variable {variable.path!r} has "
            f"{tuple(variable.shape)}")
    value_dtype = tf.as_dtype(value.dtype)
    variable_dtype = tf.as_dtype(variable.dtype)
    # float16/bfloat16/float64 -> float32 is a precision change; int -> float
    # means the file holds something else (token ids, a counter, garbage).
    if value_dtype.is_floating != variable_dtype.is_floating:
        raise ValueError(
            f"{source}: {name!r} is stored as {value_dtype.name} but model "
            f"variable {variable.path!r} is {variable_dtype.name}; refusing "
            f"to cast between integer and floating point")
    return value.astype(variable_dtype.as_numpy_dtype)


def _apply(assignments: list[_Assignment]) -> None:
    for variable, value in assignments:
        variable.assign(value)


def _encoder_variable_ids(model: keras.Model) -> set[int]:
    return {id(v) for path, v in tf1_names.variables_by_path(model).items()
            if path.startswith("encoder/")}


def _lookup(name: str, exists: Callable[[str], bool], group0: tuple | None,
            report: LoadReport) -> str | None:
    """The checkpoint name for model name `name`, falling back to group 0.

    As the original's modeling.get_assignment_map_from_checkpoint: a name
    present in the checkpoint always loads as itself; only when it is absent
    and init_from_group0 is set does a block of group g load from group 0.
    So a checkpoint with groups 0 and 1 fills group 2 of a 3-group model
    from group 0 and keeps its own group 1. (The original also falls back
    from `ffn_k`/`attention_k` to `ffn_1`/`attention_1`, scopes its
    modeling.py never creates.)
    """
    if exists(name):
        return name
    if group0 is not None:
        pattern, replacement = group0
        fallback = pattern.sub(replacement, name)
        if fallback != name and exists(fallback):
            report.from_group0.append(name)
            return fallback
    return None


def _dirname(path: str) -> str:
    if "://" in path:
        return posixpath.dirname(path)
    return os.path.dirname(os.path.abspath(path))


# ----------------------------------------------------------------- TF1 ---


def resolve_tf1_checkpoint(path: str | os.PathLike) -> str:
    """A prefix, a directory with `checkpoint`, or a release directory."""
    path = os.fspath(path)
    if tf.io.gfile.isdir(path):
        if tf.io.gfile.exists(fileio.join(path, "checkpoint")):
            latest = tf.train.latest_checkpoint(path)
            if latest:
                return latest
        release = fileio.join(path, RELEASE_CHECKPOINT)
        if tf.io.gfile.exists(release + ".index"):
            return release
        indexes = sorted(tf.io.gfile.glob(fileio.join(path, "*.index")))
        if len(indexes) == 1:
            return indexes[0][:-len(".index")]
        raise FileNotFoundError(
            f"{path}: no checkpoint found (expected a `checkpoint` file, "
            f"{RELEASE_CHECKPOINT}.index, or a single *.index file; found "
            f"{[posixpath.basename(i) for i in indexes]})")
    if tf.io.gfile.exists(path + ".index"):
        return path
    raise FileNotFoundError(
        f"checkpoint not found: {path} (neither a directory nor a prefix "
        f"with {path}.index)")


def _open_reader(prefix: str):
    """tf.train.load_checkpoint, with an error that names the index file."""
    try:
        return tf.compat.v1.train.NewCheckpointReader(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise ValueError(
            f"{prefix}.index: not a readable TensorFlow checkpoint index "
            f"(corrupt, truncated or not a checkpoint): "
            f"{getattr(e, 'message', e)}") from None


def _read_tensor(reader, prefix: str, key: str) -> np.ndarray:
    """reader.get_tensor, with an error that names the data file(s)."""
    try:
        return reader.get_tensor(key)
    except (tf.errors.OpError, IndexError, ValueError) as e:
        data = sorted(tf.io.gfile.glob(prefix + ".data-*")) or [
            prefix + ".data-?????-of-?????"]
        raise ValueError(
            f"{', '.join(data)}: cannot read {key!r} (truncated or corrupt "
            f"checkpoint data): {getattr(e, 'message', e)}") from None


def _is_object_checkpoint(reader) -> bool:
    return _OBJECT_GRAPH_KEY in reader.get_variable_to_shape_map()


def _plan_tf1(model: keras.Model, path, init_from_group0: bool
              ) -> tuple[LoadReport, list[_Assignment]]:
    prefix = resolve_tf1_checkpoint(path)
    reader = _open_reader(prefix)
    if _is_object_checkpoint(reader):
        raise ValueError(
            f"{prefix} is a TF2 object checkpoint (albert_tf format), not a "
            f"TF1 name-based checkpoint; use input_format=albert_tf")
    stored = {}
    for name in reader.get_variable_to_shape_map():
        key = name[len(_TF1_HUB_PREFIX):] if name.startswith(
            _TF1_HUB_PREFIX) else name
        stored[key] = name
    report = LoadReport(source=prefix, format="tf1")
    report.skipped = sorted(k for k in stored if _SKIPPED_TF1.search(k))
    variables = tf1_names.variables_by_path(model)
    group0 = _TF1_GROUP if init_from_group0 else None
    used = set(report.skipped)
    assignments = []
    for tf1_name, path_ in sorted(tf1_names.tf1_name_map(model).items()):
        source_name = _lookup(tf1_name, stored.__contains__, group0,
                              report)
        if source_name is None:
            report.missing_in_checkpoint.append(tf1_name)
            if tf1_name.startswith(_TF1_ENCODER_SCOPE):
                report.missing_encoder.append(tf1_name)
            continue
        value = _read_tensor(reader, prefix, stored[source_name])
        assignments.append((variables[path_], _checked_value(
            variables[path_], value, stored[source_name], prefix)))
        report.loaded.append(tf1_name)
        used.add(source_name)
    report.unused_in_checkpoint = sorted(set(stored) - used)
    report.unused_encoder = [n for n in report.unused_in_checkpoint
                             if n.startswith(_TF1_ENCODER_SCOPE)]
    return report, assignments


def load_tf1_checkpoint(model: keras.Model, path: str | os.PathLike,
                        allow_partial: bool = False,
                        init_from_group0: bool = False) -> LoadReport:
    """Loads an original name-based TF1 checkpoint into `model`.

    init_from_group0: as the original `--init_from_group0`, a model group
    that the checkpoint lacks is loaded from its `group_0` (warm-starting a
    model with more groups); groups the checkpoint has load as themselves.
    """
    report, assignments = _plan_tf1(model, path, init_from_group0)
    report.check(allow_partial)
    _apply(assignments)
    _log_report(report)
    return report


def _write_name_based(prefix: str, tensors: dict[str, np.ndarray]) -> str:
    """Writes a V2 name-based checkpoint atomically (index renamed last)."""
    directory = _dirname(prefix)
    tf.io.gfile.makedirs(directory)
    tmp_dir = fileio.join(directory, f".tmp_ckpt_{os.getpid()}")
    if tf.io.gfile.exists(tmp_dir):
        tf.io.gfile.rmtree(tmp_dir)
    tmp_prefix = fileio.join(tmp_dir, "ckpt")
    keys = sorted(tensors)
    try:
        tf.raw_ops.SaveV2(prefix=tmp_prefix, tensor_names=keys,
                          shape_and_slices=[""] * len(keys),
                          tensors=[tf.constant(tensors[k]) for k in keys])
        for data in sorted(tf.io.gfile.glob(tmp_prefix + ".data-*")):
            tf.io.gfile.rename(data, prefix + data[len(tmp_prefix):],
                               overwrite=True)
        tf.io.gfile.rename(tmp_prefix + ".index", prefix + ".index",
                           overwrite=True)
    finally:
        if tf.io.gfile.exists(tmp_dir):
            tf.io.gfile.rmtree(tmp_dir)
    return prefix


def save_tf1_checkpoint(model: keras.Model, prefix: str | os.PathLike,
                        global_step: int | None = None) -> str:
    """Writes `model` with exactly the original TF1 names and shapes.

    The original code can restore it with a plain `tf.train.Saver` or its
    `init_checkpoint` assignment map. A `checkpoint` state file is written
    beside it so the directory also works as a checkpoint directory.
    """
    prefix = os.fspath(prefix)
    variables = tf1_names.variables_by_path(model)
    tensors = {tf1: np.asarray(variables[path_])
               for tf1, path_ in tf1_names.tf1_name_map(model).items()}
    if global_step is not None:
        tensors["global_step"] = np.asarray(global_step, np.int64)
    _write_name_based(prefix, tensors)
    # The `checkpoint` state file, as tf.train.Saver writes it.
    name = posixpath.basename(prefix)
    fileio.write_atomic(fileio.join(_dirname(prefix), "checkpoint"),
                        f'model_checkpoint_path: "{name}"\n'
                        f'all_model_checkpoint_paths: "{name}"\n')
    return prefix


# ------------------------------------------------------------ albert_tf ---


def _object_paths(layer, prefix: str, out: dict, seen: set) -> None:
    """Attribute path -> variable, as tf.train.Checkpoint tracks them."""
    for attribute, value in sorted(vars(layer).items()):
        if isinstance(value, keras.Variable):
            out[prefix + attribute] = value
        elif isinstance(value, keras.layers.Layer) and id(value) not in seen:
            seen.add(id(value))
            _object_paths(value, prefix + attribute + "/", out, seen)


def object_paths(model: keras.Model, root: str = "model"
                 ) -> dict[str, keras.Variable]:
    """Object path -> variable for `tf.train.Checkpoint(model=model)`."""
    paths: dict = {}
    _object_paths(model, "", paths, {id(model)})
    return {f"{root}/{path}": variable for path, variable in paths.items()}


def object_checkpoint_keys(model: keras.Model, root: str = "model"
                           ) -> dict[str, keras.Variable]:
    """Checkpoint key -> variable when `model` is the only thing saved."""
    return {path + _OBJECT_VALUE_SUFFIX: variable
            for path, variable in object_paths(model, root).items()}


class _ObjectGraph:
    """Resolves object paths to checkpoint keys in a TF2 checkpoint.

    A variable reachable by several paths (the model and the optimizer both
    hold it) is stored once, under whichever path TensorFlow met first, so
    keys cannot be derived from the model alone: the saved object graph
    says where each path's value lives.
    """

    def __init__(self, reader, source: str):
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        try:
            graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH_KEY))
        except Exception as e:  # A protobuf DecodeError or a read error.
            raise ValueError(f"{source}: unreadable object graph in the "
                             f"checkpoint index: {e}") from None
        self.nodes = graph.nodes

    def node_id(self, path: str) -> int | None:
        node_id = 0
        for part in path.split("/"):
            for child in self.nodes[node_id].children:
                if child.local_name == part:
                    node_id = child.node_id
                    break
            else:
                return None
        return node_id

    def key(self, path: str) -> str | None:
        node_id = self.node_id(path)
        if node_id is None:
            return None
        for attribute in self.nodes[node_id].attributes:
            if attribute.name == "VARIABLE_VALUE":
                return attribute.checkpoint_key
        return None

    def variable_keys_under(self, path: str) -> set[str]:
        """Keys of every variable reachable from `path`."""
        start = self.node_id(path)
        if start is None:
            return set()
        keys, stack, seen = set(), [start], set()
        while stack:
            node_id = stack.pop()
            if node_id in seen:
                continue
            seen.add(node_id)
            node = self.nodes[node_id]
            for attribute in node.attributes:
                if attribute.name == "VARIABLE_VALUE":
                    keys.add(attribute.checkpoint_key)
            stack += [child.node_id for child in node.children]
        return keys


def resolve_albert_tf_checkpoint(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        raise FileNotFoundError(
            f"{path}: no `checkpoint` state file naming an albert_tf "
            f"checkpoint")
    if tf.io.gfile.exists(path + ".index"):
        return path
    raise FileNotFoundError(f"checkpoint not found: {path}")


def _plan_albert_tf(model: keras.Model, path, init_from_group0: bool
                    ) -> tuple[LoadReport, list[_Assignment]]:
    prefix = resolve_albert_tf_checkpoint(path)
    reader = _open_reader(prefix)
    if not _is_object_checkpoint(reader):
        raise ValueError(
            f"{prefix} is a name-based (TF1) checkpoint, not an albert_tf "
            f"object checkpoint; use input_format=tf1")
    stored = {k for k in reader.get_variable_to_shape_map()
              if k.endswith(_OBJECT_VALUE_SUFFIX)}
    graph = _ObjectGraph(reader, prefix)
    # Weights reachable from `model` (slots hang off the optimizer).
    model_keys = graph.variable_keys_under("model")
    # A bare AlbertEncoder saves its weights at `model/`, a task model its
    # encoder at `model/encoder/`; either initialises the other's encoder.
    ours = "model" if isinstance(model, AlbertEncoder) else "model/encoder"
    theirs = ("model/encoder" if graph.node_id("model/encoder") is not None
              else "model")
    encoder_ids = _encoder_variable_ids(model)
    report = LoadReport(source=prefix, format="albert_tf")
    report.skipped = sorted(stored - model_keys)
    group0 = _OBJECT_GROUP if init_from_group0 else None
    used, assignments = set(), []
    for path_, variable in sorted(object_paths(model).items()):
        is_encoder = id(variable) in encoder_ids
        if is_encoder:
            path_ = theirs + path_[len(ours):]
        source_path = _lookup(
            path_, lambda p: graph.key(p) is not None, group0, report)
        if source_path is None:
            report.missing_in_checkpoint.append(path_)
            if is_encoder:
                report.missing_encoder.append(path_)
            continue
        key = graph.key(source_path)
        assignments.append((variable, _checked_value(
            variable, _read_tensor(reader, prefix, key), source_path,
            prefix)))
        report.loaded.append(path_)
        used.add(key)
    report.unused_in_checkpoint = sorted(model_keys - used)
    encoder_keys = graph.variable_keys_under(theirs)
    report.unused_encoder = [k for k in report.unused_in_checkpoint
                             if k in encoder_keys]
    return report, assignments


def load_albert_tf_checkpoint(model: keras.Model, path: str | os.PathLike,
                              allow_partial: bool = False,
                              init_from_group0: bool = False) -> LoadReport:
    """Loads `model` weights from an albert_tf (TF2 object) checkpoint.

    Only the `model/` subtree is read: optimizer slots and the step of a
    training checkpoint are reported as skipped.
    """
    report, assignments = _plan_albert_tf(model, path, init_from_group0)
    report.check(allow_partial)
    _apply(assignments)
    _log_report(report)
    return report


def save_albert_tf_checkpoint(model: keras.Model,
                              directory: str | os.PathLike) -> str:
    """Writes `albert_config.json` and an object checkpoint into `directory`."""
    directory = os.fspath(directory)
    tf.io.gfile.makedirs(directory)
    model.config.to_json_file(fileio.join(directory, CONFIG_NAME))
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model), directory, max_to_keep=None,
        checkpoint_name=ALBERT_TF_PREFIX)
    return manager.save()


# ------------------------------------------------------------------ HF ---


def _load_safetensors(path: str) -> dict[str, np.ndarray]:
    """One safetensors file; a damaged file is an error naming it."""
    from safetensors.numpy import load

    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"safetensors file not found: {path}")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    try:
        return load(data)
    except KeyError as e:  # A dtype numpy lacks, e.g. 'BF16'.
        raise ValueError(
            f"{path}: holds {e} tensors, which safetensors' numpy reader "
            f"cannot read; save the checkpoint in float32 (or float16) "
            f"first") from None
    except Exception as e:  # safetensors raises its own SafetensorError.
        raise ValueError(f"{path}: not a readable safetensors file "
                         f"(truncated or corrupt?): {e}") from None


def _read_safetensors(directory: str) -> dict[str, np.ndarray]:
    index = fileio.join(directory, HF_INDEX_NAME)
    single = fileio.join(directory, HF_WEIGHTS_NAME)
    if tf.io.gfile.exists(index):
        index_json = fileio.read_json(index)
        if not isinstance(index_json, dict) or not isinstance(
                index_json.get("weight_map"), dict):
            raise ValueError(f"{index}: expected a JSON object with a "
                             f"'weight_map' object")
        weight_map = index_json["weight_map"]
        tensors = {}
        for shard in sorted(set(weight_map.values())):
            shard_path = fileio.join(directory, shard)
            shard_tensors = _load_safetensors(shard_path)
            expected = {k for k, v in weight_map.items() if v == shard}
            absent = sorted(expected - set(shard_tensors))
            if absent:
                raise ValueError(
                    f"{shard_path}: {len(absent)} tensors that {index} "
                    f"places in it are not there: {absent[:_LISTED]}")
            tensors.update(shard_tensors)
        return tensors
    if tf.io.gfile.exists(single):
        return _load_safetensors(single)
    raise FileNotFoundError(
        f"{directory}: no {HF_WEIGHTS_NAME} or {HF_INDEX_NAME} (only "
        f"safetensors are read; convert PyTorch .bin files first)")


def read_hf_config(directory: str | os.PathLike) -> AlbertConfig:
    path = fileio.join(os.fspath(directory), HF_CONFIG_NAME)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"HF config not found: {path}")
    values = fileio.read_json(path)
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a JSON object")
    try:
        return AlbertConfig.from_hf_config(values)
    except (ValueError, TypeError, NotImplementedError) as e:
        raise type(e)(f"{path}: {e}") from None


def _plan_hf(model: keras.Model, directory, init_from_group0: bool
             ) -> tuple[LoadReport, list[_Assignment]]:
    directory = os.fspath(directory)
    if not tf.io.gfile.isdir(directory):
        raise FileNotFoundError(f"HF checkpoint directory not found: "
                                f"{directory}")
    hf_config = read_hf_config(directory)
    ours = model.config.to_dict()
    # init_from_group0 warm-starts a model with more groups than the
    # checkpoint; every other key must agree.
    ignored = {"num_hidden_groups"} if init_from_group0 else set()
    mismatched = [f"{k}: checkpoint {v!r}, model {ours[k]!r}"
                  for k, v in hf_config.to_dict().items()
                  if "dropout" not in k and k not in ignored and ours[k] != v]
    if mismatched:
        raise ValueError(f"{fileio.join(directory, HF_CONFIG_NAME)} does not "
                         f"describe this model: " + "; ".join(mismatched))
    tensors = hf_names.add_base_prefix(_read_safetensors(directory))
    report = LoadReport(source=directory, format="hf")
    variables = tf1_names.variables_by_path(model)
    group0 = _HF_GROUP if init_from_group0 else None
    used, assignments = set(), []
    for path_, (hf_name, transpose) in sorted(
            hf_names.hf_name_map(model).items()):
        source_name = _lookup(hf_name, tensors.__contains__, group0,
                              report)
        if source_name is None:
            report.missing_in_checkpoint.append(hf_name)
            if path_.startswith("encoder/"):
                report.missing_encoder.append(hf_name)
            continue
        value = tensors[source_name]
        assignments.append((variables[path_], _checked_value(
            variables[path_], value.T if transpose else value, source_name,
            directory)))
        report.loaded.append(hf_name)
        used.add(source_name)
    used |= hf_names.check_tied_and_extra(model, tensors, directory)
    report.unused_in_checkpoint = sorted(set(tensors) - used)
    report.unused_encoder = [n for n in report.unused_in_checkpoint
                             if n.startswith(hf_names.BASE_PREFIX)]
    return report, assignments


def load_hf_checkpoint(model: keras.Model, directory: str | os.PathLike,
                       allow_partial: bool = False,
                       init_from_group0: bool = False) -> LoadReport:
    """Loads an HF ALBERT directory (AlbertModel, ForPreTraining, heads)."""
    report, assignments = _plan_hf(model, directory, init_from_group0)
    report.check(allow_partial)
    _apply(assignments)
    _log_report(report)
    return report


def save_hf_checkpoint(model: keras.Model,
                       directory: str | os.PathLike) -> str:
    """Writes `config.json` and `model.safetensors` as transformers expects."""
    from safetensors.numpy import save

    directory = os.fspath(directory)
    tf.io.gfile.makedirs(directory)
    variables = tf1_names.variables_by_path(model)
    tensors = {}
    for path_, (hf_name, transpose) in hf_names.hf_name_map(model).items():
        value = np.asarray(variables[path_])
        tensors[hf_name] = np.ascontiguousarray(value.T if transpose else value)
    tensors.update(hf_names.extra_tensors(model, tensors))
    config = model.config.to_hf_config(
        architecture=hf_names.hf_architecture(model))
    if isinstance(model, keras.Model) and hasattr(model, "num_labels"):
        config["num_labels"] = model.num_labels
    fileio.write_atomic(fileio.join(directory, HF_WEIGHTS_NAME),
                        save(tensors, metadata={"format": "pt"}))
    fileio.write_atomic(fileio.join(directory, HF_CONFIG_NAME),
                        json.dumps(config, indent=2, sort_keys=True) + "\n")
    return directory


# ------------------------------------------------------------ detection ---


def detect_format(path: str | os.PathLike) -> str:
    """'hf', 'albert_tf' or 'tf1', from what is on disk."""
    path = os.fspath(path)
    if tf.io.gfile.isdir(path) and tf.io.gfile.exists(
            fileio.join(path, HF_CONFIG_NAME)) and (
            tf.io.gfile.exists(fileio.join(path, HF_WEIGHTS_NAME))
            or tf.io.gfile.exists(fileio.join(path, HF_INDEX_NAME))):
        return "hf"
    prefix = resolve_tf1_checkpoint(path)
    reader = _open_reader(prefix)
    return "albert_tf" if _is_object_checkpoint(reader) else "tf1"


def _plan(model: keras.Model, path, input_format: str | None,
          init_from_group0: bool) -> tuple[LoadReport, list[_Assignment]]:
    input_format = input_format or detect_format(path)
    if input_format == "tf1":
        return _plan_tf1(model, path, init_from_group0)
    if input_format == "hf":
        return _plan_hf(model, path, init_from_group0)
    if input_format == "albert_tf":
        return _plan_albert_tf(model, path, init_from_group0)
    raise ValueError(f"input_format={input_format!r}; expected tf1, hf or "
                     f"albert_tf")


def load_checkpoint(model: keras.Model, path: str | os.PathLike,
                    input_format: str | None = None,
                    allow_partial: bool = False,
                    init_from_group0: bool = False) -> LoadReport:
    """Loads any supported format with the conversion policy (see top)."""
    report, assignments = _plan(model, path, input_format, init_from_group0)
    report.check(allow_partial)
    _apply(assignments)
    _log_report(report)
    return report


def load_pretrained(model: keras.Model, path: str | os.PathLike, *,
                    input_format: str | None = None,
                    allow_partial: bool = False,
                    init_from_group0: bool = False) -> LoadReport:
    """Initialises `model` from a pretrained (or fine-tuned) checkpoint.

    What `--init_checkpoint` uses. Unless `allow_partial`, raises a
    ValueError naming the checkpoint and the variables when nothing loads,
    when any encoder variable is missing, or when an encoder weight of the
    checkpoint has no place in the model; task-head variables may be
    absent or unused. The model is unchanged when it raises. The report is
    logged at WARNING whenever anything was skipped, missing or unused.
    """
    report, assignments = _plan(model, path, input_format, init_from_group0)
    report.check_pretrained(allow_partial)
    _apply(assignments)
    _log_report(report)
    return report


def find_config(path: str | os.PathLike) -> AlbertConfig | None:
    """The config that travels with a checkpoint, if any."""
    path = os.fspath(path)
    directory = path if tf.io.gfile.isdir(path) else _dirname(path)
    candidate = fileio.join(directory, CONFIG_NAME)
    if tf.io.gfile.exists(candidate):
        return AlbertConfig.from_json_file(candidate)
    if tf.io.gfile.exists(fileio.join(directory, HF_CONFIG_NAME)):
        return read_hf_config(directory)
    return None
