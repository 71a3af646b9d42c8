"""SST-2 fine-tuning and evaluation at max_seq_length 512: fixed vs dynamic
padding, float32 vs bfloat16 (not CI; reads ../shared/data/glue/SST-2).

The paper's Table 14 fine-tunes GLUE at max_seq_length 512, but an SST-2
sentence is about 25 pieces: with fixed padding nearly all of every step is
spent on padding. `--dynamic_padding` cuts each batch to its longest
example, rounded up to `--padding_bucket`. This benchmark runs the library's
own fine-tuning path (tasks.classification.ClassificationTask +
training.Trainer, as run_classifier.py does) four ways:

- fixed / dynamic padding, each in float32 and in bfloat16 (`--dtype`,
  mixed_bfloat16: matmuls in bf16, variables and softmax/LayerNorm
  statistics in float32).

Each contender trains the same number of steps from the same seed and the
same initial weights (random init unless --init_checkpoint), then evaluates
the whole dev set twice (the first pass includes tracing; the second is the
steady-state time). Every (contender, round) runs alone in a fresh process;
rounds interleave with alternating order. The model is the quickstart's
(4 layers sharing one group, E=64, H=128, I=512) with an 8k SentencePiece
vocabulary trained on ../shared/data/corpus, and ALBERT v2's dropout (0 in
the encoder; 0.1 on the pooled output, whose mask does not depend on the
sequence length), so fixed and dynamic padding train the same function.

Reported (bench/results/finetune.json): steady-state training examples/s
(median over the logged intervals after the first), full dev evaluation
seconds, dev accuracy and the training loss at every logged step; ratios
dynamic/fixed and bf16/f32 from the medians over rounds; whether fixed and
dynamic end with the same dev accuracy, and the largest loss difference.

  nice -n 10 python3 bench/bench_finetune.py
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import common  # noqa: E402

ROOT = common.REPO
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")

flags.DEFINE_string("data_dir", os.path.join(SHARED, "glue"),
                    "GLUE data dir holding SST-2/{train,dev}.tsv.")
flags.DEFINE_string("corpus_dir", os.path.join(SHARED, "corpus"),
                    "Text to train the SentencePiece model on.")
flags.DEFINE_string("work_dir", "/tmp/bench_finetune",
                    "SentencePiece model, config, feature cache, runs.")
flags.DEFINE_string("init_checkpoint", None,
                    "Optional pretrained checkpoint (else random init).")
flags.DEFINE_integer("max_seq_length", 512, "Table 14's length.")
flags.DEFINE_integer("train_step", 60, "Fine-tuning steps per contender.")
flags.DEFINE_integer("train_batch_size", 32, "Table 14's SST-2 batch.")
flags.DEFINE_integer("eval_batch_size", 32, "Dev batch size.")
flags.DEFINE_float("learning_rate", 1e-3, "AdamW peak learning rate.")
flags.DEFINE_integer("log_every", 10, "Steps per timed interval.")
flags.DEFINE_integer("padding_bucket", 64, "Dynamic padding multiple.")
flags.DEFINE_integer("seed", 12345, "Initialisation and shuffle seed.")
flags.DEFINE_integer("rounds", 2, "Interleaved rounds.")
flags.DEFINE_list("contenders", ["fixed-float32", "dynamic-float32",
                                 "fixed-bfloat16", "dynamic-bfloat16"],
                  "padding-dtype pairs to run.")
flags.DEFINE_enum("mode", "driver", ["driver", "setup", "worker"],
                  "Internal: the driver starts setup and worker processes.")
flags.DEFINE_string("contender", None, "Internal: the worker's contender.")
flags.DEFINE_string("output", os.path.join(common.RESULTS, "finetune.json"),
                    "Where to write the JSON results.")
FLAGS = flags.FLAGS

VOCAB_SIZE = 8000


def _paths() -> dict:
    w = FLAGS.work_dir
    return {"spm": os.path.join(w, "spm.model"),
            "config": os.path.join(w, "albert_config.json"),
            "cache": os.path.join(w, "cache")}


def _task(padding: str, dtype: str):
    from albert_tf import optimization
    from albert_tf.config import AlbertConfig
    from albert_tf.tasks import classification

    paths = _paths()
    config = AlbertConfig.from_json_file(paths["config"])
    return classification.ClassificationTask(
        config, "sst-2", FLAGS.data_dir,
        optimization.OptimizerConfig(
            optimizer="adamw", learning_rate=FLAGS.learning_rate,
            num_train_steps=FLAGS.train_step,
            num_warmup_steps=FLAGS.train_step // 10),
        spm_model_file=paths["spm"], do_lower_case=True,
        max_seq_length=FLAGS.max_seq_length, cached_dir=paths["cache"],
        eval_batch_size=FLAGS.eval_batch_size,
        predict_batch_size=FLAGS.eval_batch_size, dtype=dtype,
        dropout_prob=0.1, seed=FLAGS.seed,
        pad_to_multiple=FLAGS.padding_bucket if padding == "dynamic" else 0)


def setup() -> None:
    """SentencePiece model, config and the feature cache, built once."""
    from albert_tf import quickstart
    from albert_tf.tokenization import train_spm

    paths = _paths()
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    if not os.path.exists(paths["spm"]):
        files = common.corpus_files(FLAGS.corpus_dir)
        if not files:
            raise FileNotFoundError(f"no *.txt in {FLAGS.corpus_dir}")
        train_spm.train_spm(files, paths["spm"][:-len(".model")],
                            vocab_size=VOCAB_SIZE, preprocess=True,
                            do_lower_case=True)
    config = quickstart.QUICKSTART_CONFIG.replace(
        vocab_size=VOCAB_SIZE, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=max(512, FLAGS.max_seq_length))
    with open(paths["config"], "w") as f:
        f.write(config.to_json_string())
    _task("fixed", "float32").prepare(True, True, False)


def worker() -> None:
    import keras
    import tensorflow as tf
    from albert_tf import training
    from albert_tf.tasks import finetune

    padding, dtype = FLAGS.contender.split("-")
    keras.utils.set_random_seed(FLAGS.seed)
    task = _task(padding, dtype)
    task.prepare(True, True, False)
    out = os.path.join(FLAGS.work_dir, "runs", FLAGS.contender)
    shutil.rmtree(out, ignore_errors=True)
    run_config = training.RunConfig(
        output_dir=out, num_train_steps=FLAGS.train_step,
        train_batch_size=FLAGS.train_batch_size,
        save_checkpoints_steps=FLAGS.train_step, keep_checkpoint_max=1,
        iterations_per_loop=FLAGS.log_every,
        log_every_n_steps=FLAGS.log_every)
    trainer = training.Trainer(task, tf.distribute.get_strategy(),
                               run_config)
    start = time.perf_counter()
    trainer.train(lambda context: task.train_dataset(
        context, FLAGS.train_batch_size),
        finetune.init_fn(FLAGS.init_checkpoint, False))
    train_s = time.perf_counter() - start
    rates = [h["examples_per_second"] for h in trainer.history]
    evals = []
    for _ in range(2):  # Cold (traces), then steady state.
        start = time.perf_counter()
        results = task.evaluate(trainer)
        evals.append(time.perf_counter() - start)
    print("RESULT " + json.dumps({
        "train_wall_s": train_s,
        # The first interval includes tracing.
        "train_examples_per_s": statistics.median(rates[1:] or rates),
        "interval_examples_per_s": rates,
        "loss": [h["loss"] for h in trainer.history],
        "eval_cold_s": evals[0], "eval_s": evals[1],
        "eval_accuracy": results["eval_accuracy"],
        "eval_loss": results.get("eval_loss"),
        "tf_threads": [tf.config.threading.get_intra_op_parallelism_threads(),
                       tf.config.threading.get_inter_op_parallelism_threads()],
    }), flush=True)


def _run(args: list[str], log: str) -> dict | None:
    cmd = [sys.executable, os.path.abspath(__file__), *args,
           *[f"--{k}={v}" for k, v in _shared_flags().items()]]
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f,
                              text=True, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}; "
                           f"see {log}")
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return None


def _shared_flags() -> dict:
    names = ("data_dir", "corpus_dir", "work_dir", "max_seq_length",
             "train_step", "train_batch_size", "eval_batch_size",
             "learning_rate", "log_every", "padding_bucket", "seed")
    values = {n: FLAGS[n].value for n in names}
    if FLAGS.init_checkpoint:
        values["init_checkpoint"] = FLAGS.init_checkpoint
    return values



def driver() -> None:
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    logs = os.path.join(FLAGS.work_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    logging.info("setup (SentencePiece model, features) in %s",
                 FLAGS.work_dir)
    _run(["--mode=setup"], os.path.join(logs, "setup.log"))
    runs: dict = {c: [] for c in FLAGS.contenders}
    for r in range(FLAGS.rounds):
        order = FLAGS.contenders if r % 2 == 0 else FLAGS.contenders[::-1]
        for c in order:
            result = _run(["--mode=worker", f"--contender={c}"],
                          os.path.join(logs, f"{c}-round{r}.log"))
            logging.info("round %d %s: %.1f train examples/s, eval %.2f s, "
                         "accuracy %.4f", r, c,
                         result["train_examples_per_s"], result["eval_s"],
                         result["eval_accuracy"])
            runs[c].append(result)
    summary = {}
    for c, results in runs.items():
        summary[c] = {
            "train_examples_per_s": common.spread(
                [x["train_examples_per_s"] for x in results]),
            "eval_s": common.spread([x["eval_s"] for x in results]),
            "eval_accuracy": [x["eval_accuracy"] for x in results],
            "loss": results[0]["loss"],
            "rounds": results}

    def ratio(a: str, b: str, key: str, inverse: bool = False):
        if a not in summary or b not in summary:
            return None
        x, y = summary[a][key]["median"], summary[b][key]["median"]
        return y / x if inverse else x / y

    ratios, checks = {}, {}
    for dtype in ("float32", "bfloat16"):
        fixed, dyn = f"fixed-{dtype}", f"dynamic-{dtype}"
        ratios[f"train_dynamic_vs_fixed_{dtype}"] = ratio(
            dyn, fixed, "train_examples_per_s")
        ratios[f"eval_dynamic_vs_fixed_{dtype}"] = ratio(
            dyn, fixed, "eval_s", inverse=True)
        if fixed in summary and dyn in summary:
            a, b = summary[fixed], summary[dyn]
            checks[dtype] = {
                "same_dev_accuracy": a["eval_accuracy"][0]
                == b["eval_accuracy"][0],
                "dev_accuracy_fixed": a["eval_accuracy"][0],
                "dev_accuracy_dynamic": b["eval_accuracy"][0],
                "max_abs_loss_difference": max(
                    abs(x - y) for x, y in zip(a["loss"], b["loss"]))}
    for padding in ("fixed", "dynamic"):
        f32, bf16 = f"{padding}-float32", f"{padding}-bfloat16"
        ratios[f"train_bf16_vs_f32_{padding}"] = ratio(
            bf16, f32, "train_examples_per_s")
        ratios[f"eval_bf16_vs_f32_{padding}"] = ratio(
            bf16, f32, "eval_s", inverse=True)
        if f32 in summary and bf16 in summary:
            checks[f"bf16_accuracy_delta_{padding}"] = (
                summary[bf16]["eval_accuracy"][0]
                - summary[f32]["eval_accuracy"][0])
    report = {
        "settings": {**_shared_flags(), "rounds": FLAGS.rounds,
                     "model": "quickstart config, vocab 8000, encoder "
                              "dropout 0 (ALBERT v2), classifier dropout "
                              "0.1",
                     "init": FLAGS.init_checkpoint or "random (seeded)"},
        "machine": {"cpu_model": common.cpu_model(),
                    "cpu_count": os.cpu_count(),
                    "tf_threads_intra_inter": runs[
                        FLAGS.contenders[0]][0]["tf_threads"],
                    "date": time.strftime("%Y-%m-%d %H:%M:%S")},
        "contenders": summary, "ratios": ratios, "checks": checks}
    path = common.write_result(os.path.abspath(FLAGS.output), report)
    for name, value in ratios.items():
        if value is not None:
            logging.info("%s: %.2fx", name, value)
    logging.info("checks: %s", json.dumps(checks))
    logging.info("wrote %s", path)


def main(argv):
    del argv
    if FLAGS.mode == "setup":
        setup()
    elif FLAGS.mode == "worker":
        worker()
    else:
        driver()


if __name__ == "__main__":
    app.run(main)
