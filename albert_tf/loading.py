"""albert_tf.load: any ALBERT (a preset, an archive URL or a directory) in
one call, as a built Keras model plus its Preprocessor.

Directory layouts understood, tried in this order:
- HF: `config.json` + `model.safetensors` (or its index), `spiece.model`;
- TF-Hub module in the original's export layout (export_to_tfhub.py):
  `variables/variables.*`, `assets/albert_config.json`,
  `assets/30k-clean.model`;
- release archive (the original's tarballs): `albert_config.json`,
  `model.ckpt-best.*` (or any one TF1 checkpoint), `30k-clean.model`;
- albert_tf run directory: `albert_config.json`, `ckpt-N.*` (the latest is
  used), the tokenizer named by `flags.txt`'s --spm_model_file (or
  --vocab_file);
- albert_tf SavedModel export (albert_tf.serving): `saved_model.pb`,
  `variables/`, `assets/albert_config.json`, `assets/spiece.model` (or
  `assets/vocab.txt`) and
  `assets/albert_tf_export.json` (do_lower_case, max_seq_length, labels),
  which set the Preprocessor and the head's size.
Paths may be local or on a tf.io.gfile file system (gs://). http(s):// and
file:// URLs of .tar.gz / .zip archives are downloaded and unpacked with
keras.utils.get_file, into Keras's cache.
"""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import tensorflow as tf
from absl import logging

from albert_tf import checkpoints
from albert_tf import fileio
from albert_tf import models
from albert_tf import run_dir
from albert_tf.config import AlbertConfig
from albert_tf.encoder import AlbertEncoder
from albert_tf.preprocessing import MultipleChoicePreprocessor
from albert_tf.preprocessing import Preprocessor
from albert_tf.serving import export

_ARCHIVES = "https://storage.googleapis.com/albert_models/"
# The original's tokenizer file names, in the order they are looked for.
_SPM_NAMES = ("30k-clean.model", "spiece.model")
_VOCAB_NAMES = ("vocab_chinese.txt", "vocab.txt")


@dataclasses.dataclass(frozen=True)
class Preset:
    """A released model: where its archive is and what it holds.

    `config` holds the published architecture values (the archive's own
    albert_config.json is what is loaded, and must agree); `sha256` is
    None where no checksum is published (none is, for these archives).
    """

    url: str
    tokenizer: str  # The file in the archive: SentencePiece or WordPiece.
    config: dict | None = None
    sha256: str | None = None


def _sizes(hidden, layers, heads, intermediate, dropout) -> dict:
    """The published values; heads=None leaves the head count unchecked."""
    sizes = dict(vocab_size=30000, embedding_size=128, hidden_size=hidden,
                 num_hidden_layers=layers, intermediate_size=intermediate,
                 hidden_dropout_prob=dropout,
                 attention_probs_dropout_prob=dropout)
    if heads is not None:
        sizes["num_attention_heads"] = heads
    return sizes


# The released models (the original README). v1 has dropout 0.1 except
# xxlarge; v2 has none. The Chinese models use a 21128-token WordPiece
# vocabulary; their architecture is read from the archive.
PRESETS: dict[str, Preset] = {
    **{f"albert_{size}_{version}": Preset(
        f"{_ARCHIVES}albert_{size}_{version}.tar.gz", "30k-clean.model",
        _sizes(*dims, dropout=0.1 if version == "v1" and size != "xxlarge"
               else 0.0))
       for size, dims in (("base", (768, 12, 12, 3072)),
                          ("large", (1024, 24, 16, 4096)),
                          # xlarge's head count is not published reliably
                          # (HF's config says 16, Model Garden's README 32):
                          # the archive's own config decides.
                          ("xlarge", (2048, 24, None, 8192)),
                          ("xxlarge", (4096, 12, 64, 16384)))
       for version in ("v1", "v2")},
    **{f"albert_{size}_zh": Preset(
        f"{_ARCHIVES}albert_{size}_zh.tar.gz", "vocab_chinese.txt")
       for size in ("base", "large", "xlarge", "xxlarge")},
}

# task -> the model class; None is the bare encoder.
TASKS = {
    None: AlbertEncoder,
    "pretraining": models.AlbertPretrainer,
    "classification": models.AlbertClassifier,
    "multiple_choice": models.AlbertMultipleChoice,
    "squad": models.AlbertSpanLabeler,
    "squad_v2": models.AlbertSquadV2,
    "token_classification": models.AlbertTokenClassifier,
}


@dataclasses.dataclass
class Found:
    """What a directory holds: its layout, checkpoint, config, tokenizer."""

    layout: str
    checkpoint: str
    config: AlbertConfig
    spm_model_file: str | None
    vocab_file: str | None
    export_info: dict | None = None  # albert_tf_export.json of an export.


def load(source: str | os.PathLike, task: str | None = None, *,
         sequence_length: int | None = None,
         do_lower_case: bool | None = None,
         dtype: str | None = None, cache_dir: str | None = None,
         **task_kwargs) -> tuple[keras.Model, Preprocessor | None]:
    """Builds the model for `task` from `source` and loads its weights.

    Args:
        source: a PRESETS name, an archive URL or a directory (see top).
        task: one of TASKS (None: the encoder). Every encoder weight must
            load; a task head the checkpoint lacks starts fresh, as with
            --init_checkpoint.
        sequence_length, do_lower_case: the Preprocessor's (default: an
            export's own, else 512 and True). One that contradicts the
            export's do_lower_case is an error: its ids would differ.
        dtype: a Keras dtype policy, e.g. "mixed_bfloat16".
        cache_dir: where downloads go (default: Keras's, ~/.keras).
        task_kwargs: the model's own arguments (num_labels, num_choices...).

    Returns (model, preprocessor); the preprocessor is None when the source
    has no tokenizer (neither a SentencePiece model nor a vocab.txt). For
    multiple_choice it is a MultipleChoicePreprocessor (article, question,
    options in).

    Example:
        encoder, preprocessor = albert_tf.load("albert_base_v2")
        outputs = encoder(preprocessor(tf.constant(["Hello world"])))
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not one of "
                         f"{sorted(t for t in TASKS if t)} (or None)")
    directory, found = open_source(source, cache_dir)
    info = found.export_info or {}
    cls = TASKS[task]
    kwargs = dict(task_kwargs)
    # The export's (or HF head's) size, unless the caller sets it.
    for name in ("num_labels", "num_choices"):
        if name in info and info.get("model") == cls.__name__:
            kwargs.setdefault(name, info[name])
    if dtype is not None:
        kwargs["dtype"] = dtype
    model = cls(found.config, **kwargs)
    report = checkpoints.load_pretrained(model, found.checkpoint)
    logging.info("Loaded %s (%s layout) into %s: %s", directory,
                 found.layout, type(model).__name__, report)
    options = {}
    if task == "multiple_choice":
        # (article, question, options) in, as RACE's export builds them.
        options = {"preprocessor_class": MultipleChoicePreprocessor}
        if "max_qa_length" in info:
            options["max_qa_length"] = info["max_qa_length"]
    preprocessor = preprocessor_for(directory, found,
                                    sequence_length=sequence_length,
                                    do_lower_case=do_lower_case, **options)
    return model, preprocessor


def open_source(source: str | os.PathLike, cache_dir: str | None = None
                ) -> tuple[str, Found]:
    """(directory, what it holds) of a preset, URL or directory; a preset's
    archive must have the published architecture."""
    directory = resolve(source, cache_dir)
    found = inspect(directory)
    preset = PRESETS.get(os.fspath(source))
    if preset is not None and preset.config is not None:
        _check_preset(os.fspath(source), preset, found)
    return directory, found


def preprocessor_for(directory: str, found: Found, *,
                     sequence_length: int | None = None,
                     do_lower_case: bool | None = None,
                     preprocessor_class: type = Preprocessor,
                     default_length: int = 512,
                     **options) -> Preprocessor | None:
    """The source's tokenizer as a Preprocessor (None, logged, without one).

    sequence_length and do_lower_case default to an export's own, else
    default_length and True; a do_lower_case that contradicts the
    export's is an error, since its ids would differ.
    """
    info = found.export_info or {}
    if (do_lower_case is not None and "do_lower_case" in info
            and do_lower_case != info["do_lower_case"]):
        raise ValueError(
            f"do_lower_case={do_lower_case}, but {directory} was exported "
            f"with do_lower_case={info['do_lower_case']}; its tokenizer "
            f"would give other ids. Leave do_lower_case unset.")
    if do_lower_case is None:
        do_lower_case = info.get("do_lower_case", True)
    if sequence_length is None:
        sequence_length = info.get("max_seq_length", default_length)
    kwargs = dict(do_lower_case=do_lower_case,
                  sequence_length=sequence_length, **options)
    if found.spm_model_file:
        return preprocessor_class(found.spm_model_file, **kwargs)
    if found.vocab_file:
        return preprocessor_class(vocab_file=found.vocab_file, **kwargs)
    if _exists(directory, "tokenizer.json"):
        # transformers 5 saves ALBERT's tokenizer as tokenizer.json only.
        logging.warning(
            "%s has tokenizer.json but no SentencePiece model (%s): no "
            "Preprocessor. Copy the model's .model file there as "
            "spiece.model (transformers 4 wrote it; 5 writes only "
            "tokenizer.json).", directory, " or ".join(_SPM_NAMES))
    else:
        logging.warning("%s has no tokenizer (%s, %s): no Preprocessor",
                        directory, ", ".join(_SPM_NAMES),
                        ", ".join(_VOCAB_NAMES))
    return None


def resolve(source: str | os.PathLike, cache_dir: str | None = None) -> str:
    """A local or gfile directory for a preset name, URL or path."""
    source = os.fspath(source)
    if source in PRESETS:
        preset = PRESETS[source]
        return _download(preset.url, preset.sha256, cache_dir)
    if source.startswith(("http://", "https://", "file://")):
        return _download(source, None, cache_dir)
    if tf.io.gfile.isdir(source):
        return source
    presets = ", ".join(sorted(PRESETS))
    raise FileNotFoundError(
        f"{source}: not a directory, an http(s):// or file:// archive URL, "
        f"or a preset name (one of: {presets})")


def _check_preset(name: str, preset: Preset, found: Found) -> None:
    """The archive's config must be the preset's published architecture."""
    loaded = found.config.to_dict()
    differ = {key: (value, loaded.get(key))
              for key, value in preset.config.items()
              if loaded.get(key) != value}
    if differ:
        raise ValueError(
            f"preset {name}: the archive's {checkpoints.CONFIG_NAME} differs "
            f"from the published architecture (key: (published, archive)): "
            f"{differ}")


def _download(url: str, sha256: str | None, cache_dir: str | None) -> str:
    """Downloads and unpacks an archive; the directory it holds."""
    name = url.rstrip("/").rsplit("/", 1)[-1]
    path = keras.utils.get_file(
        fname=name, origin=url, file_hash=sha256, hash_algorithm="sha256",
        extract=True, cache_dir=cache_dir,
        cache_subdir=os.path.join("albert_tf", "archives"))
    # Keras 3 returns the extraction directory; the original tarballs hold
    # one top-level folder (e.g. albert_base/).
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{url}: the download did not unpack into a "
                                f"directory ({path})")
    entries = [e for e in os.listdir(path) if not e.startswith(".")]
    if len(entries) == 1 and os.path.isdir(os.path.join(path, entries[0])):
        return os.path.join(path, entries[0])
    return path


def _exists(directory: str, *names: str) -> str | None:
    for name in names:
        path = fileio.join(directory, name)
        if tf.io.gfile.exists(path):
            return path
    return None


def inspect(directory: str) -> Found:
    """The layout of `directory`; an error lists everything looked for."""
    hf_config = _exists(directory, checkpoints.HF_CONFIG_NAME)
    hf_weights = _exists(directory, checkpoints.HF_WEIGHTS_NAME,
                         checkpoints.HF_INDEX_NAME)
    if hf_config and hf_weights:
        return Found("hf", directory, checkpoints.read_hf_config(directory),
                     _exists(directory, *_SPM_NAMES),
                     _exists(directory, *_VOCAB_NAMES),
                     _hf_head(hf_config))
    assets = fileio.join(directory, "assets")
    hub_variables = _exists(directory, "variables/variables.index")
    export_info = _exists(assets, export.EXPORT_INFO_NAME)
    if export_info and hub_variables:
        config = _exists(assets, checkpoints.CONFIG_NAME)
        if not config:
            raise FileNotFoundError(f"{directory}: an albert_tf export "
                                    f"without assets/{checkpoints.CONFIG_NAME}")
        return Found("albert_tf_export", hub_variables[:-len(".index")],
                     AlbertConfig.from_json_file(config),
                     _exists(assets, export.EXPORT_SPM_NAME),
                     _exists(assets, export.EXPORT_VOCAB_NAME),
                     json.loads(fileio.read_text(export_info)))
    hub_config = _exists(assets, checkpoints.CONFIG_NAME) or _exists(
        directory, checkpoints.CONFIG_NAME)
    if hub_variables and hub_config:
        return Found("tf_hub", hub_variables[:-len(".index")],
                     AlbertConfig.from_json_file(hub_config),
                     _exists(assets, *_SPM_NAMES) or _exists(
                         directory, *_SPM_NAMES),
                     _exists(assets, *_VOCAB_NAMES))
    config = _exists(directory, checkpoints.CONFIG_NAME)
    if config:
        try:
            prefix = checkpoints.resolve_tf1_checkpoint(directory)
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f"{directory} has {checkpoints.CONFIG_NAME} but no "
                f"checkpoint: {e}") from None
        layout = ("albert_tf_run" if _exists(directory, run_dir.FLAGS_NAME)
                  else "release")
        spm_model = _exists(directory, *_SPM_NAMES) or _run_tokenizer(
            directory)
        vocab = _exists(directory, *_VOCAB_NAMES) or _run_tokenizer(
            directory, "vocab_file")
        return Found(layout, prefix, AlbertConfig.from_json_file(config),
                     spm_model, vocab)
    raise FileNotFoundError(
        f"{directory}: no ALBERT model found. Looked for: an HF directory "
        f"({checkpoints.HF_CONFIG_NAME} with {checkpoints.HF_WEIGHTS_NAME} "
        f"or {checkpoints.HF_INDEX_NAME}); a TF-Hub module "
        f"(variables/variables.index with assets/{checkpoints.CONFIG_NAME}); "
        f"an albert_tf export (variables/variables.index with "
        f"assets/{export.EXPORT_INFO_NAME}); "
        f"a release or albert_tf run directory ({checkpoints.CONFIG_NAME} "
        f"with a checkpoint: {checkpoints.RELEASE_CHECKPOINT}.*, ckpt-N.* "
        f"or one *.index). Found: {sorted(tf.io.gfile.listdir(directory))}")


# transformers' architectures whose config.json num_labels sizes our head.
_HF_HEADS = {"AlbertForSequenceClassification": "AlbertClassifier",
             "AlbertForTokenClassification": "AlbertTokenClassifier"}


def _hf_head(config_file: str) -> dict | None:
    """{"model", "num_labels"} of an HF head's config.json, else None."""
    values = fileio.read_json(config_file)
    for architecture in values.get("architectures") or ():
        if architecture in _HF_HEADS:
            labels = values.get("id2label")
            num_labels = len(labels) if labels else values.get("num_labels")
            if num_labels:
                return {"model": _HF_HEADS[architecture],
                        "num_labels": int(num_labels)}
    return None


def _run_tokenizer(directory: str, flag: str = "spm_model_file"
                   ) -> str | None:
    """The --spm_model_file (or --vocab_file) a run recorded in flags.txt."""
    flags_file = _exists(directory, run_dir.FLAGS_NAME)
    if not flags_file:
        return None
    for line in fileio.read_text(flags_file).splitlines():
        if line.startswith(f"--{flag}="):
            path = line.split("=", 1)[1]
            if path and tf.io.gfile.exists(path):
                return path
            if path:
                logging.warning("%s names --%s=%s, which does not exist: no "
                                "Preprocessor", flags_file, flag, path)
    return None
