"""absl flags shared by the run_*.py runners, and their conversion to configs.

Every function takes the FlagValues to read: the runners pass their
`flags.FLAGS`, tests pass their own. Nothing here reads a global. The
original's TPU flags keep their names; `--strategy` and friends are new.
"""

from __future__ import annotations

import math
import sys

from absl import flags
from absl import logging

from albert_tf import distribute
from albert_tf import quiet
from albert_tf import training


def define_common_flags(fv: flags.FlagValues) -> None:
    """Distribution, precision, logging and the original TPU flags."""
    kw = {"flag_values": fv}
    flags.DEFINE_enum("strategy", "one_device", distribute.STRATEGIES,
                      "tf.distribute strategy. --use_tpu implies tpu.", **kw)
    flags.DEFINE_integer("num_gpus", 0, "GPUs per worker (0: CPU).", **kw)
    flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16", "float16"],
                      "Compute dtype; variables, logits and losses stay "
                      "float32. float16 uses dynamic loss scaling.", **kw)
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the training step.",
                      **kw)
    flags.DEFINE_integer("seed", 12345, "Seed for initialisation, dropout "
                         "and the input order.", **kw)
    flags.DEFINE_bool("deterministic", False,
                      "Enable TensorFlow op determinism (reproducible runs "
                      "and resumes, slower).", **kw)
    flags.DEFINE_integer("log_every_n_steps", 100,
                         "Log and write summaries every N steps.", **kw)
    flags.DEFINE_string("export_dir", None,
                        "If set, write a SavedModel here at the end.", **kw)
    flags.DEFINE_string("tflite_dir", None,
                        "If set, write TFLite files here at the end "
                        "(float32, float16, int8; ids in and raw text in; "
                        "serving/tflite.py).", **kw)
    flags.DEFINE_bool("allow_partial_init", False,
                      "Let --init_checkpoint leave variables uninitialised "
                      "(by default every encoder variable must load; only "
                      "the task head may be new).", **kw)
    flags.DEFINE_bool("restart_input_on_new_data", False,
                      "Resume a run whose training data (or batch size, "
                      "seed, padding, sequence lengths) changed: keep its "
                      "weights and optimizer, start the input over on the "
                      "new data (logged). Without it such a rerun is "
                      "refused, naming what changed.", **kw)
    flags.DEFINE_float("eval_poll_seconds", 60.0,
                       "With --do_eval and no --do_train: how often to look "
                       "for new checkpoints of a training job writing into "
                       "output_dir (as the original, which slept 60 s).",
                       **kw)
    # The original TPU flags.
    flags.DEFINE_bool("use_tpu", False, "Whether to use TPU.", **kw)
    flags.DEFINE_string("tpu_name", None,
                        "The Cloud TPU to use: its name, a grpc:// address, "
                        "or 'local' on a TPU VM.", **kw)
    flags.DEFINE_alias("tpu", "tpu_name", flag_values=fv)
    flags.DEFINE_string("tpu_zone", None, "GCE zone of the Cloud TPU (else "
                        "detected from metadata).", **kw)
    flags.DEFINE_string("gcp_project", None, "GCP project of the Cloud TPU "
                        "(else detected from metadata).", **kw)
    flags.DEFINE_string("master", None, "TensorFlow master URL (unused; "
                        "kept for compatibility).", **kw)
    flags.DEFINE_integer("num_tpu_cores", 8, "TPU cores (the TPU system "
                         "decides; kept for compatibility).", **kw)
    # Accelerator choices.
    flags.DEFINE_bool("use_one_hot_embeddings", None, "Look words up as "
                      "one_hot(ids) @ table (the original's TPU lookup) "
                      "instead of a gather; same values. Default: on under "
                      "--use_tpu / --strategy=tpu, as the original's "
                      "use_one_hot_embeddings=FLAGS.use_tpu; off elsewhere.",
                      **kw)
    flags.DEFINE_enum("attention_implementation", "original",
                      ["original", "fused"], "original: the original's op "
                      "order (matmul, scale, mask, float32 softmax). fused: "
                      "keras.ops.dot_product_attention (cuDNN's fused "
                      "kernel on Keras's JAX backend on GPUs); not measured "
                      "faster yet, so not the default.", **kw)
    flags.DEFINE_integer("gradient_accumulation_steps", 1, "Run each "
                         "optimizer step as this many micro-batches of "
                         "train_batch_size / N examples (less memory, the "
                         "same update). --train_batch_size stays the global "
                         "batch of one optimizer step.", lower_bound=1, **kw)


def setup_runtime(fv: flags.FlagValues) -> None:
    """Seeds and determinism, before any model is built."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(fv.seed)
    if fv.deterministic:
        tf.config.experimental.enable_op_determinism()


def strategy_from_flags(fv: flags.FlagValues):
    """The tf.distribute strategy. With --num_gpus and no GPU visible, the
    device lines TensorFlow printed at start-up (quiet.dropped_lines, e.g.
    "failed call to cuInit", dropped as noise for CPU-only runs) are
    logged as the error they then are."""
    import tensorflow as tf

    kind = "tpu" if fv.use_tpu else fv.strategy
    is_tpu = kind == "tpu"
    if fv.num_gpus and not tf.config.list_physical_devices("GPU"):
        logging.error("--num_gpus=%d but TensorFlow sees no GPU; at "
                      "start-up it said:\n%s", fv.num_gpus,
                      "".join(quiet.dropped_lines(quiet.NO_GPU_NOISE))
                      or "(nothing)")
    strategy = distribute.get_strategy(
        kind, num_gpus=fv.num_gpus,
        tpu_address=fv.tpu_name if is_tpu else None,
        tpu_zone=fv.tpu_zone if is_tpu else None,
        gcp_project=fv.gcp_project if is_tpu else None)
    quiet.absorb_onednn_int64_notice()
    return strategy


def on_tpu(fv: flags.FlagValues) -> bool:
    return bool(fv.use_tpu) or fv.strategy == "tpu"


def model_options(fv: flags.FlagValues) -> dict:
    """How the model computes (never its variables), for the tasks.

    Resolves the --use_one_hot_embeddings default (on under TPU) and writes
    it back into `fv`, so flags.txt records the choice.
    """
    if fv.use_one_hot_embeddings is None:
        fv.use_one_hot_embeddings = on_tpu(fv)
    return {"use_one_hot_embeddings": fv.use_one_hot_embeddings,
            "attention_implementation": fv.attention_implementation}


def run_config_from_flags(fv: flags.FlagValues, num_train_steps: int,
                          train_batch_size: int,
                          keep_checkpoint_max: int | None
                          ) -> training.RunConfig:
    from absl import app

    k = fv.gradient_accumulation_steps
    if train_batch_size % k:
        raise app.UsageError(
            f"--train_batch_size={train_batch_size} is not divisible by "
            f"--gradient_accumulation_steps={k}: each optimizer step runs "
            f"{k} micro-batches of train_batch_size / {k} examples")
    return training.RunConfig(
        output_dir=fv.output_dir, num_train_steps=num_train_steps,
        train_batch_size=train_batch_size,
        save_checkpoints_steps=fv.save_checkpoints_steps,
        keep_checkpoint_max=keep_checkpoint_max,
        iterations_per_loop=fv.iterations_per_loop,
        log_every_n_steps=fv.log_every_n_steps,
        jit_compile=fv.jit_compile,
        eval_poll_seconds=fv.eval_poll_seconds,
        gradient_accumulation_steps=k)


# Flags recorded in flags.txt only by choice, never replayed: a replay
# must not restart the input on whatever data it finds then.
NOT_RECORDED = ("restart_input_on_new_data",)


def _is_library_module(name: str) -> bool:
    """Whether flags defined in module `name` belong to an installed
    library (absl's logging and test flags, TensorFlow's TPU client...)
    rather than to the runner."""
    if name == "__main__" or name.split(".")[0] == "albert_tf":
        return False
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None) or ""
    return any(part in ("site-packages", "dist-packages")
               for part in path.replace("\\", "/").split("/"))


def flags_text(fv: flags.FlagValues) -> str:
    """What output_dir/flags.txt holds: the runner's own flags (not those
    every absl / TensorFlow import adds), so --flagfile=flags.txt replays
    the run."""
    lines = []
    for module, module_flags in fv.flags_by_module_dict().items():
        if _is_library_module(module):
            continue
        for flag in module_flags:
            if flag.name not in NOT_RECORDED and flag.value is not None:
                lines.append(flag.serialize())
    return "".join(line + "\n" for line in sorted(set(lines)) if line)


def set_defaults(fv: flags.FlagValues, values: dict) -> None:
    """Sets flags the command line did not give (e.g. the quickstart's)."""
    for name, value in values.items():
        if not fv[name].present:
            fv[name].value = value


def define_finetune_flags(fv: flags.FlagValues) -> None:
    """The model, tokenizer and checkpoint flags of the original
    run_classifier, run_squad_v1/v2 and run_race (same names and
    defaults), plus --albert_dropout_prob."""
    kw = {"flag_values": fv}
    flags.DEFINE_string("albert_config_file", None, "The config json file "
                        "corresponding to the pre-trained ALBERT model.", **kw)
    flags.DEFINE_string("vocab_file", None, "The vocabulary file (WordPiece "
                        "vocab.txt when there is no spm_model_file).", **kw)
    flags.DEFINE_string("spm_model_file", None, "The model file for "
                        "sentence piece tokenization.", **kw)
    flags.DEFINE_string("output_dir", None, "The output directory where the "
                        "model checkpoints will be written.", **kw)
    flags.DEFINE_string("init_checkpoint", None, "Initial checkpoint: TF1, "
                        "HF or albert_tf (detected), usually a pre-trained "
                        "model.", **kw)
    flags.DEFINE_string("albert_hub_module_handle", None, "Not supported: "
                        "pass the module's variables as --init_checkpoint "
                        "instead.", **kw)
    flags.DEFINE_bool("do_lower_case", True, "Whether to lower case the "
                      "input text. Should be True for uncased models.", **kw)
    flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "Optimizer "
                      "to use.", **kw)
    # New: the paper's Table 14 varies the dropout by task.
    flags.DEFINE_float("albert_dropout_prob", None, "If set, overrides both "
                       "hidden_dropout_prob and attention_probs_dropout_prob "
                       "of the config (Table 14's ALBERT DR).", **kw)
    # New: the original padded every example to max_seq_length.
    flags.DEFINE_bool("dynamic_padding", None, "Cut each batch to its "
                      "longest example, rounded up to a multiple of "
                      "--padding_bucket (same results, less compute). "
                      "Default: on, except on TPUs (--use_tpu / "
                      "--strategy=tpu), which need static shapes.", **kw)
    flags.DEFINE_integer("padding_bucket", 64, "With --dynamic_padding: "
                         "batch widths are multiples of this (fewer shapes "
                         "to trace or XLA-compile).", lower_bound=1, **kw)


def padding_from_flags(fv: flags.FlagValues) -> int:
    """pad_to_multiple for the tasks: --padding_bucket, or 0 (fixed length).

    Resolves the --dynamic_padding default (on unless on TPU) and writes
    the choice back into `fv`, so flags.txt records it.
    """
    from absl import app

    tpu = on_tpu(fv)
    if fv.dynamic_padding and tpu:
        raise app.UsageError(
            "--dynamic_padding: TPUs (--use_tpu / --strategy=tpu) need "
            "static shapes; drop --dynamic_padding (it is off by default "
            "on TPU) or pass --nodynamic_padding")
    if fv.padding_bucket < 1:
        raise app.UsageError(f"--padding_bucket={fv.padding_bucket} must "
                             f"be > 0")
    if fv.dynamic_padding is None:
        fv.dynamic_padding = not tpu
    return fv.padding_bucket if fv.dynamic_padding else 0


# Numeric flags of the runners and what their values must be; checked by
# check_values before anything is read or written, so a NaN learning rate
# or a zero batch is a usage error naming the flag, not a crash (or a
# silently broken run) later. A flag a runner does not define is skipped.
_AT_LEAST_ONE = (
    "train_batch_size", "eval_batch_size", "predict_batch_size",
    "save_checkpoints_steps", "iterations_per_loop", "log_every_n_steps",
    "max_seq_length", "max_predictions_per_seq", "max_eval_steps",
    "num_train_steps", "train_step", "n_best_size", "max_answer_length",
    "max_query_length", "doc_stride", "start_n_top", "end_n_top",
    "max_qa_length", "num_workers")
_AT_LEAST_ZERO = ("warmup_step", "num_warmup_steps", "start_warmup_step",
                  "num_gpus")
_POSITIVE = ("learning_rate", "num_train_epochs", "eval_poll_seconds",
             "poly_power")
_PROBABILITY = ("warmup_proportion",)  # [0, 1]
_DROPOUT = ("albert_dropout_prob", "classifier_dropout_prob",
            "dropout_prob")  # [0, 1)
_FINITE = ("null_score_diff_threshold", "sentence_loss_weight")
# Paths and names that, when given, must not be empty ("--output_dir=" made
# an obscure error in makedirs; "--input_file=" matched nothing).
_NON_EMPTY = ("output_dir", "data_dir", "albert_config_file", "train_file",
              "predict_file", "input_file", "eval_input_file", "task_name",
              "spm_model_file", "vocab_file", "init_checkpoint",
              "export_dir", "tflite_dir", "cached_dir")


def check_values(fv: flags.FlagValues) -> None:
    """Refuses out-of-range numeric flags (see _AT_LEAST_ONE etc.),
    naming the flag, the value and the range."""
    from absl import app

    def bad(name, rule):
        raise app.UsageError(f"--{name}={fv[name].value!r}: {rule}")

    for names, test, rule in (
            (_AT_LEAST_ONE, lambda v: v >= 1, "must be >= 1"),
            (_AT_LEAST_ZERO, lambda v: v >= 0, "must be >= 0"),
            (_POSITIVE, lambda v: math.isfinite(v) and v > 0,
             "must be a finite number > 0"),
            (_PROBABILITY, lambda v: 0 <= v <= 1, "must be in [0, 1]"),
            (_DROPOUT, lambda v: 0 <= v < 1, "must be in [0, 1)"),
            (_FINITE, math.isfinite, "must be a finite number"),
            (_NON_EMPTY, lambda v: bool(str(v).strip()),
             "is empty; give a value or leave the flag out")):
        for name in names:
            if name in fv and fv[name].value is not None and not test(
                    fv[name].value):
                bad(name, rule)


def finetune_config(fv: flags.FlagValues):
    """Checks the shared fine-tuning flags; the AlbertConfig they name."""
    from absl import app

    from albert_tf.config import AlbertConfig

    check_values(fv)

    if fv.albert_hub_module_handle:
        raise app.UsageError(
            "--albert_hub_module_handle is not supported; pass "
            "--init_checkpoint=<module>/variables/variables (the module/ "
            "prefix is understood)")
    if not (fv.spm_model_file or fv.vocab_file):
        raise app.UsageError("one of --spm_model_file or --vocab_file is "
                             "required")
    padding_from_flags(fv)  # Refuses TPU + --dynamic_padding early.
    config = AlbertConfig.from_json_file(fv.albert_config_file)
    if fv.albert_dropout_prob is not None:
        config = config.replace(
            hidden_dropout_prob=fv.albert_dropout_prob,
            attention_probs_dropout_prob=fv.albert_dropout_prob)
    return config


def run_finetune(fv: flags.FlagValues, task, albert_config, run_config,
                 strategy, **overrides) -> dict:
    """tasks.finetune.run with the fine-tuning runners' shared flags, then
    logs the best eval. overrides replace run's arguments (e.g. run_squad's
    do_eval and wait_for_checkpoints)."""
    from absl import logging

    from albert_tf.tasks import finetune

    # Flags read only where no override is given: run_squad, as the
    # original's, has no --do_eval.
    from_flags = {"do_train": "do_train", "do_eval": "do_eval",
                  "do_predict": "do_predict",
                  "init_checkpoint": "init_checkpoint",
                  "allow_partial_init": "allow_partial_init",
                  "export_dir": "export_dir",
                  "tflite_dir": "tflite_dir",
                  "restart_input": "restart_input_on_new_data"}
    arguments = {name: fv[flag].value for name, flag in from_flags.items()
                 if name not in overrides}
    arguments.update(overrides)
    arguments["flags_text"] = flags_text(fv)
    results = finetune.run(task, albert_config, run_config, strategy,
                           **arguments)
    if results:
        logging.info("Best eval: %s", " ".join(
            f"{k}={v:.4f}" for k, v in sorted(results.items())))
    return results
