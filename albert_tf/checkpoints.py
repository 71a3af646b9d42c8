"""Load and write checkpoints: original TF1, HF safetensors and albert_tf.

Every loader returns a `LoadReport` and refuses, unless `allow_partial`, to
leave a model variable uninitialised or a checkpoint weight unused, so a
wrong config or a wrong head never loads silently. Shapes must match
exactly; the error names the variable and both shapes.

- TF1: the name-based checkpoints of google-research/albert (release
  tarballs, fine-tuned runs, TF-Hub `module/` variables), through the one
  name table in `albert_tf.tf1_names`.
- HF: a transformers directory (`config.json` + `model.safetensors` or a
  sharded index), read and written with safetensors' numpy API.
- albert_tf: a TF2 object checkpoint of `tf.train.Checkpoint(model=model)`
  (what training writes) plus `albert_config.json`.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.core.protobuf import trackable_object_graph_pb2

from albert_tf import hf_names
from albert_tf import tf1_names
from albert_tf.config import AlbertConfig

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
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_OBJECT_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


@dataclasses.dataclass
class LoadReport:
    """What a load did, by checkpoint name (TF1/HF) or object key."""

    source: str
    format: str
    loaded: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    missing_in_checkpoint: list[str] = dataclasses.field(default_factory=list)
    unused_in_checkpoint: list[str] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.format} checkpoint {self.source}:",
                 f"  loaded: {len(self.loaded)}",
                 f"  skipped (optimizer slots, global_step): "
                 f"{len(self.skipped)}"]
        for title, items in (("missing in checkpoint",
                              self.missing_in_checkpoint),
                             ("unused in checkpoint",
                              self.unused_in_checkpoint)):
            lines.append(f"  {title}: {len(items)}")
            lines += [f"    {item}" for item in items]
        return "\n".join(lines)

    def check(self, allow_partial: bool) -> None:
        if allow_partial or not (self.missing_in_checkpoint
                                 or self.unused_in_checkpoint):
            return
        raise ValueError(
            f"partial load refused (pass allow_partial=True to accept):\n"
            f"{self}")


def _assign(variable, value: np.ndarray, name: str, source: str) -> None:
    if tuple(variable.shape) != tuple(value.shape):
        raise ValueError(
            f"{source}: shape mismatch for {name!r}: checkpoint has "
            f"{tuple(value.shape)}, model variable {variable.path!r} has "
            f"{tuple(variable.shape)}")
    variable.assign(value.astype(variable.dtype))


# ----------------------------------------------------------------- TF1 ---


def resolve_tf1_checkpoint(path: str | os.PathLike) -> str:
    """A prefix, a directory with `checkpoint`, or a release directory."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "checkpoint")):
            latest = tf.train.latest_checkpoint(path)
            if latest:
                return latest
        release = os.path.join(path, RELEASE_CHECKPOINT)
        if os.path.exists(release + ".index"):
            return release
        indexes = sorted(glob.glob(os.path.join(path, "*.index")))
        if len(indexes) == 1:
            return indexes[0][:-len(".index")]
        raise FileNotFoundError(
            f"{path}: no checkpoint found (expected a `checkpoint` file, "
            f"{RELEASE_CHECKPOINT}.index, or a single *.index file; found "
            f"{[os.path.basename(i) for i in indexes]})")
    if os.path.exists(path + ".index"):
        return path
    raise FileNotFoundError(
        f"checkpoint not found: {path} (neither a directory nor a prefix "
        f"with {path}.index)")


def _is_object_checkpoint(reader) -> bool:
    return _OBJECT_GRAPH_KEY in reader.get_variable_to_shape_map()


def load_tf1_checkpoint(model: keras.Model, path: str | os.PathLike,
                        allow_partial: bool = False,
                        init_from_group0: bool = False) -> LoadReport:
    """Loads an original name-based TF1 checkpoint into `model`.

    init_from_group0: as the original `--init_from_group0`, loads the
    checkpoint's `group_0` into every group of the model (warm-starting a
    model with more groups from a one-group checkpoint).
    """
    prefix = resolve_tf1_checkpoint(path)
    reader = tf.train.load_checkpoint(prefix)
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
    used = set(report.skipped)
    for tf1_name, path_ in sorted(tf1_names.tf1_name_map(model).items()):
        source_name = tf1_name
        if init_from_group0:
            source_name = re.sub(r"/group_\d+/", "/group_0/", tf1_name)
        if source_name not in stored:
            report.missing_in_checkpoint.append(tf1_name)
            continue
        value = reader.get_tensor(stored[source_name])
        _assign(variables[path_], value, stored[source_name], prefix)
        report.loaded.append(tf1_name)
        used.add(source_name)
    report.unused_in_checkpoint = sorted(set(stored) - used)
    report.check(allow_partial)
    logging.info("%s", report)
    return report


def _write_name_based(prefix: str, tensors: dict[str, np.ndarray]) -> str:
    """Writes a V2 name-based checkpoint atomically (index renamed last)."""
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".tmp_ckpt_", dir=directory)
    tmp_prefix = os.path.join(tmp_dir, "ckpt")
    keys = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=tmp_prefix, tensor_names=keys,
                      shape_and_slices=[""] * len(keys),
                      tensors=[tf.constant(tensors[k]) for k in keys])
    data_files = sorted(glob.glob(tmp_prefix + ".data-*"))
    for data in data_files:
        os.replace(data, prefix + data[len(tmp_prefix):])
    os.replace(tmp_prefix + ".index", os.path.abspath(prefix) + ".index")
    os.rmdir(tmp_dir)
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
    directory = os.path.dirname(os.path.abspath(prefix))
    name = os.path.basename(prefix)
    tmp = os.path.join(directory, ".checkpoint.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f'model_checkpoint_path: "{name}"\n'
                f'all_model_checkpoint_paths: "{name}"\n')
    os.replace(tmp, os.path.join(directory, "checkpoint"))
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

    def __init__(self, reader):
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH_KEY))
        self.nodes = graph.nodes

    def _node_id(self, path: str) -> int | None:
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
        node_id = self._node_id(path)
        if node_id is None:
            return None
        for attribute in self.nodes[node_id].attributes:
            if attribute.name == "VARIABLE_VALUE":
                return attribute.checkpoint_key
        return None

    def variable_keys_under(self, path: str) -> set[str]:
        """Keys of every variable reachable from `path`."""
        start = self._node_id(path)
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
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        raise FileNotFoundError(
            f"{path}: no `checkpoint` state file naming an albert_tf "
            f"checkpoint")
    if os.path.exists(path + ".index"):
        return path
    raise FileNotFoundError(f"checkpoint not found: {path}")


def load_albert_tf_checkpoint(model: keras.Model, path: str | os.PathLike,
                              allow_partial: bool = False) -> LoadReport:
    """Loads `model` weights from an albert_tf (TF2 object) checkpoint.

    Only the `model/` subtree is read: optimizer slots and the step of a
    training checkpoint are reported as skipped.
    """
    prefix = resolve_albert_tf_checkpoint(path)
    reader = tf.train.load_checkpoint(prefix)
    if not _is_object_checkpoint(reader):
        raise ValueError(
            f"{prefix} is a name-based (TF1) checkpoint, not an albert_tf "
            f"object checkpoint; use input_format=tf1")
    stored = {k for k in reader.get_variable_to_shape_map()
              if k.endswith(_OBJECT_VALUE_SUFFIX)}
    graph = _ObjectGraph(reader)
    # Weights reachable from `model` (slots hang off the optimizer).
    model_keys = graph.variable_keys_under("model")
    report = LoadReport(source=prefix, format="albert_tf")
    report.skipped = sorted(stored - model_keys)
    used = set()
    for path, variable in sorted(object_paths(model).items()):
        key = graph.key(path)
        if key is None:
            report.missing_in_checkpoint.append(path)
            continue
        _assign(variable, reader.get_tensor(key), path, prefix)
        report.loaded.append(path)
        used.add(key)
    report.unused_in_checkpoint = sorted(model_keys - used)
    report.check(allow_partial)
    logging.info("%s", report)
    return report


def save_albert_tf_checkpoint(model: keras.Model,
                              directory: str | os.PathLike) -> str:
    """Writes `albert_config.json` and an object checkpoint into `directory`."""
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    model.config.to_json_file(os.path.join(directory, CONFIG_NAME))
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model), directory, max_to_keep=None,
        checkpoint_name=ALBERT_TF_PREFIX)
    return manager.save()


# ------------------------------------------------------------------ HF ---


def _read_safetensors(directory: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    index = os.path.join(directory, HF_INDEX_NAME)
    single = os.path.join(directory, HF_WEIGHTS_NAME)
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        tensors = {}
        for shard in sorted(set(weight_map.values())):
            tensors.update(load_file(os.path.join(directory, shard)))
        return tensors
    if os.path.exists(single):
        return load_file(single)
    raise FileNotFoundError(
        f"{directory}: no {HF_WEIGHTS_NAME} or {HF_INDEX_NAME} (only "
        f"safetensors are read; convert PyTorch .bin files first)")


def read_hf_config(directory: str | os.PathLike) -> AlbertConfig:
    path = os.path.join(os.fspath(directory), HF_CONFIG_NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(f"HF config not found: {path}")
    with open(path, encoding="utf-8") as f:
        return AlbertConfig.from_hf_config(json.load(f))


def load_hf_checkpoint(model: keras.Model, directory: str | os.PathLike,
                       allow_partial: bool = False) -> LoadReport:
    """Loads an HF ALBERT directory (AlbertModel, ForPreTraining, heads)."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"HF checkpoint directory not found: "
                                f"{directory}")
    hf_config = read_hf_config(directory)
    ours = model.config.to_dict()
    mismatched = [f"{k}: checkpoint {v!r}, model {ours[k]!r}"
                  for k, v in hf_config.to_dict().items()
                  if "dropout" not in k and ours[k] != v]
    if mismatched:
        raise ValueError(f"{directory}/{HF_CONFIG_NAME} does not describe "
                         f"this model: " + "; ".join(mismatched))
    tensors = hf_names.add_base_prefix(_read_safetensors(directory))
    report = LoadReport(source=directory, format="hf")
    variables = tf1_names.variables_by_path(model)
    used = set()
    for path_, (hf_name, transpose) in sorted(
            hf_names.hf_name_map(model).items()):
        if hf_name not in tensors:
            report.missing_in_checkpoint.append(hf_name)
            continue
        value = tensors[hf_name]
        _assign(variables[path_], value.T if transpose else value, hf_name,
                directory)
        report.loaded.append(hf_name)
        used.add(hf_name)
    used |= hf_names.check_tied_and_extra(model, tensors, directory)
    report.unused_in_checkpoint = sorted(set(tensors) - used)
    report.check(allow_partial)
    logging.info("%s", report)
    return report


def save_hf_checkpoint(model: keras.Model,
                       directory: str | os.PathLike) -> str:
    """Writes `config.json` and `model.safetensors` as transformers expects."""
    from safetensors.numpy import save_file

    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
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
    tmp = os.path.join(directory, f".{HF_WEIGHTS_NAME}.tmp")
    save_file(tensors, tmp, metadata={"format": "pt"})
    os.replace(tmp, os.path.join(directory, HF_WEIGHTS_NAME))
    tmp = os.path.join(directory, f".{HF_CONFIG_NAME}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, os.path.join(directory, HF_CONFIG_NAME))
    return directory


# ------------------------------------------------------------ detection ---


def detect_format(path: str | os.PathLike) -> str:
    """'hf', 'albert_tf' or 'tf1', from what is on disk."""
    path = os.fspath(path)
    if os.path.isdir(path) and os.path.exists(
            os.path.join(path, HF_CONFIG_NAME)) and (
            os.path.exists(os.path.join(path, HF_WEIGHTS_NAME))
            or os.path.exists(os.path.join(path, HF_INDEX_NAME))):
        return "hf"
    prefix = resolve_tf1_checkpoint(path)
    reader = tf.train.load_checkpoint(prefix)
    return "albert_tf" if _is_object_checkpoint(reader) else "tf1"


def load_checkpoint(model: keras.Model, path: str | os.PathLike,
                    input_format: str | None = None,
                    allow_partial: bool = False,
                    init_from_group0: bool = False) -> LoadReport:
    """Loads any supported format; what runners' --init_checkpoint uses."""
    input_format = input_format or detect_format(path)
    if init_from_group0 and input_format != "tf1":
        raise ValueError("init_from_group0 applies to TF1 checkpoints only")
    if input_format == "tf1":
        return load_tf1_checkpoint(model, path, allow_partial,
                                   init_from_group0=init_from_group0)
    if input_format == "hf":
        return load_hf_checkpoint(model, path, allow_partial)
    if input_format == "albert_tf":
        return load_albert_tf_checkpoint(model, path, allow_partial)
    raise ValueError(f"input_format={input_format!r}; expected tf1, hf or "
                     f"albert_tf")


def find_config(path: str | os.PathLike) -> AlbertConfig | None:
    """The config that travels with a checkpoint, if any."""
    path = os.fspath(path)
    directory = path if os.path.isdir(path) else os.path.dirname(path)
    candidate = os.path.join(directory, CONFIG_NAME)
    if os.path.exists(candidate):
        return AlbertConfig.from_json_file(candidate)
    if os.path.exists(os.path.join(directory, HF_CONFIG_NAME)):
        return read_hf_config(directory)
    return None
