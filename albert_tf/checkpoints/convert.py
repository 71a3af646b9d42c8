"""Convert ALBERT checkpoints between the TF1, HF and albert_tf formats.

  python -m albert_tf.convert --input=albert_base --input_format=tf1 \
      --output=albert_base_hf --output_format=hf

`--output` is a directory: tf1 writes the release layout
(`model.ckpt-best.*` + `albert_config.json`), hf writes `config.json` +
`model.safetensors` and, when the SentencePiece model is known, its
`spiece.model` (without it an HF directory cannot tokenize), albert_tf an
object checkpoint + `albert_config.json`. The tokenizer is
`--spm_model_file`, else found beside `--input` (`spiece.model`, the
release's `30k-clean.model`, or the `--spm_model_file` of a run's
`flags.txt`).
"""

from __future__ import annotations

import os
import sys

import tensorflow as tf
from absl import app
from absl import flags

from absl import logging

from albert_tf import checkpoints
from albert_tf import fileio
from albert_tf import models
from albert_tf.config import AlbertConfig
from albert_tf.encoder import AlbertEncoder

FORMATS = ("tf1", "hf", "albert_tf")
MODELS = ("pretrainer", "encoder", "classifier", "multiple_choice", "squad",
          "squad_v2")


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the converter's flags; called only when it runs as a program.

    Not at import, so library code (or a runner, which defines its own
    --albert_config_file) can import this module.
    """
    kw = {"flag_values": fv}
    flags.DEFINE_string("input", None,
                        "Checkpoint prefix or directory to read.", **kw)
    flags.DEFINE_enum("input_format", None, FORMATS,
                      "Format of --input; detected when unset.", **kw)
    flags.DEFINE_string("output", None, "Directory to write.", **kw)
    flags.DEFINE_enum("output_format", "albert_tf", FORMATS,
                      "Format to write.", **kw)
    flags.DEFINE_string("albert_config_file", None, "albert_config.json; "
                        "default: the one beside --input.", **kw)
    flags.DEFINE_enum("model", "pretrainer", MODELS,
                      "Which model (heads) the checkpoint holds.", **kw)
    flags.DEFINE_integer("num_labels", 2,
                         "Labels of a classifier checkpoint.", **kw)
    flags.DEFINE_bool("allow_partial", False, "Accept variables missing "
                      "from, or unused in, --input.", **kw)
    flags.DEFINE_string("spm_model_file", None, "SentencePiece model to copy "
                        "into an hf output as spiece.model; default: the one "
                        "found beside --input.", **kw)
    flags.mark_flags_as_required(["input", "output"], flag_values=fv)


HF_TOKENIZER_NAME = "spiece.model"  # What HF's AlbertTokenizer loads.
# Beside a checkpoint: HF's name, then the original releases'.
TOKENIZER_NAMES = (HF_TOKENIZER_NAME, "30k-clean.model")


def find_tokenizer(input_path: str) -> str | None:
    """The SentencePiece model that goes with a checkpoint, if known: a
    file of TOKENIZER_NAMES beside it, else the --spm_model_file recorded
    in the flags.txt of the run that wrote it."""
    directory = (input_path if tf.io.gfile.isdir(input_path)
                 else os.path.dirname(input_path) or ".")
    for name in TOKENIZER_NAMES:
        candidate = fileio.join(directory, name)
        if tf.io.gfile.exists(candidate):
            return candidate
    flags_file = fileio.join(directory, "flags.txt")
    if tf.io.gfile.exists(flags_file):
        for line in fileio.read_text(flags_file).splitlines():
            if line.startswith("--spm_model_file="):
                path = line.split("=", 1)[1].strip()
                if path and tf.io.gfile.exists(path):
                    return path
    return None


def _read_spm_model(path: str) -> bytes:
    """The bytes of a SentencePiece model, checked to load."""
    import sentencepiece as spm

    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    try:
        spm.SentencePieceProcessor().LoadFromSerializedProto(data)
    except RuntimeError as e:
        raise ValueError(f"--spm_model_file={path}: not a SentencePiece "
                         f"model ({e})") from None
    return data


def build_model(config: AlbertConfig, model: str, num_labels: int = 2):
    """The albert_tf model matching a checkpoint's heads."""
    if model == "encoder":
        return AlbertEncoder(config)
    if model == "pretrainer":
        return models.AlbertPretrainer(config)
    if model == "classifier":
        return models.AlbertClassifier(config, num_labels=num_labels)
    if model == "multiple_choice":
        return models.AlbertMultipleChoice(config)
    if model == "squad":
        return models.AlbertSpanLabeler(config)
    if model == "squad_v2":
        return models.AlbertSquadV2(config)
    raise ValueError(f"model={model!r}; expected one of {MODELS}")


def convert(input_path: str, output_dir: str, output_format: str,
            input_format: str | None = None, config: AlbertConfig | None = None,
            model: str = "pretrainer", num_labels: int = 2,
            allow_partial: bool = False,
            spm_model_file: str | None = None) -> checkpoints.LoadReport:
    """Reads `input_path` into the albert_tf model and writes it as
    `output_format`; every variable must map both ways unless
    `allow_partial`. An hf output also gets the tokenizer
    (`spm_model_file`, else find_tokenizer) as spiece.model."""
    if output_format not in FORMATS:
        raise ValueError(f"output_format={output_format!r}; expected one of "
                         f"{FORMATS}")
    tokenizer = None
    if output_format == "hf":
        # Checked before anything is written.
        spm_model_file = spm_model_file or find_tokenizer(input_path)
        if spm_model_file:
            tokenizer = _read_spm_model(spm_model_file)
    config = config or checkpoints.find_config(input_path)
    if config is None:
        raise ValueError(f"no albert_config.json or config.json beside "
                         f"{input_path}; pass --albert_config_file")
    keras_model = build_model(config, model, num_labels)
    report = checkpoints.load_checkpoint(keras_model, input_path,
                                         input_format, allow_partial)
    if output_format == "tf1":
        tf.io.gfile.makedirs(output_dir)
        config.to_json_file(fileio.join(output_dir, checkpoints.CONFIG_NAME))
        checkpoints.save_tf1_checkpoint(
            keras_model,
            fileio.join(output_dir, checkpoints.RELEASE_CHECKPOINT))
    elif output_format == "hf":
        checkpoints.save_hf_checkpoint(keras_model, output_dir)
        if tokenizer is None:
            logging.warning(
                "No SentencePiece model found beside %s: %s has no %s, so "
                "it cannot tokenize on its own; pass --spm_model_file",
                input_path, output_dir, HF_TOKENIZER_NAME)
        else:
            fileio.write_atomic(fileio.join(output_dir, HF_TOKENIZER_NAME),
                                tokenizer)
            logging.info("Copied the tokenizer %s to %s", spm_model_file,
                         fileio.join(output_dir, HF_TOKENIZER_NAME))
    else:
        checkpoints.save_albert_tf_checkpoint(keras_model, output_dir)
    return report


def main(argv):
    del argv  # Unused.
    FLAGS = flags.FLAGS
    config = (AlbertConfig.from_json_file(FLAGS.albert_config_file)
              if FLAGS.albert_config_file else None)
    report = convert(FLAGS.input, FLAGS.output, FLAGS.output_format,
                     FLAGS.input_format, config, FLAGS.model,
                     FLAGS.num_labels, FLAGS.allow_partial,
                     FLAGS.spm_model_file)
    sys.stdout.write(f"{report}\nwrote {FLAGS.output_format} to "
                     f"{FLAGS.output}\n")


if __name__ == "__main__":
    define_flags()
    app.run(main)
