"""Convert ALBERT checkpoints between the TF1, HF and albert_tf formats.

  python -m albert_tf.convert --input=albert_base --input_format=tf1 \
      --output=albert_base_hf --output_format=hf

`--output` is a directory: tf1 writes the release layout
(`model.ckpt-best.*` + `albert_config.json`), hf writes `config.json` +
`model.safetensors`, albert_tf an object checkpoint + `albert_config.json`.
"""

from __future__ import annotations

import sys

import tensorflow as tf
from absl import app
from absl import flags

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
    flags.mark_flags_as_required(["input", "output"], flag_values=fv)


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
            allow_partial: bool = False) -> checkpoints.LoadReport:
    """Reads `input_path` into the albert_tf model and writes it as
    `output_format`; every variable must map both ways unless
    `allow_partial`."""
    if output_format not in FORMATS:
        raise ValueError(f"output_format={output_format!r}; expected one of "
                         f"{FORMATS}")
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
                     FLAGS.num_labels, FLAGS.allow_partial)
    sys.stdout.write(f"{report}\nwrote {FLAGS.output_format} to "
                     f"{FLAGS.output}\n")


if __name__ == "__main__":
    define_flags()
    app.run(main)
