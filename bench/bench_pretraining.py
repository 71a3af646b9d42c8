"""Pretraining throughput on CPU: albert_tf vs keras-hub vs HF, one run.

ALBERT-base (configs/albert_base_v2.json), seq 128, batch 8, 20 masked
positions, one full training step (forward, backward, update):

- albert_tf: the library's own train step (training.Trainer), MLM + SOP,
  LAMB, global-norm clipping, without and with jit_compile;
- keras-hub AlbertMaskedLM (TF backend), MLM only, AdamW;
- HF transformers AlbertForPreTraining (PyTorch CPU) with torch AdamW,
  in the separate virtualenv given by --hf_python (skipped if unset).

Rounds interleave the contenders; each round times `--steps` steps after
warm-up, and the report uses the median round. The machine's fp32 matmul
peak (a 2048^2 matmul in TensorFlow) is measured in the same run, and the
model FLOP/s is 3x the forward matmul FLOPs (ALBERT-base: about 524 MFLOP
per token). Results go to bench/results/pretraining_throughput.json.

  python bench/bench_pretraining.py --hf_python=/path/to/venv/bin/python
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time

import numpy as np
import tensorflow as tf
from absl import app
from absl import flags
from absl import logging

from albert_tf import training
from albert_tf.config import AlbertConfig
from albert_tf.tasks import pretraining

flags.DEFINE_integer("rounds", 5, "Interleaved rounds.")
flags.DEFINE_integer("steps", 5, "Timed steps per contender per round.")
flags.DEFINE_integer("batch_size", 8, "Sequences per step.")
flags.DEFINE_integer("seq_length", 128, "Tokens per sequence.")
flags.DEFINE_integer("predictions", 20, "Masked positions per sequence.")
flags.DEFINE_string("hf_python", None, "Python of a venv with torch and "
                    "transformers; HF is skipped when unset.")
flags.DEFINE_string("output", os.path.join(os.path.dirname(__file__),
                                           "results",
                                           "pretraining_throughput.json"),
                    "Where to write the JSON results.")
FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def model_flops_per_token(c: AlbertConfig, t: int, p: int) -> float:
    """fwd + bwd FLOPs per token: 3x forward, matmuls only."""
    layer = (4 * c.hidden_size ** 2 + 2 * c.hidden_size * c.intermediate_size
             + 2 * t * c.hidden_size)
    per_token = c.num_hidden_layers * layer * c.inner_group_num
    per_token += c.embedding_size * c.hidden_size
    mlm = p * (c.hidden_size * c.embedding_size
               + c.embedding_size * c.vocab_size) / t
    return 3 * 2 * (per_token + mlm)


def features(c: AlbertConfig, b: int, t: int, p: int) -> dict:
    rng = np.random.default_rng(0)
    return {
        "input_ids": rng.integers(5, c.vocab_size, (b, t)).astype("int32"),
        "input_mask": np.ones((b, t), "int32"),
        "segment_ids": (np.arange(t) >= t // 2).astype("int32")[None].repeat(
            b, 0),
        "masked_lm_positions": np.sort(rng.choice(
            np.arange(1, t), (b, p)), -1).astype("int32"),
        "masked_lm_ids": rng.integers(5, c.vocab_size, (b, p)).astype("int32"),
        "masked_lm_weights": np.ones((b, p), "float32"),
        "next_sentence_labels": rng.integers(0, 2, (b, 1)).astype("int32"),
    }


def albert_tf_step(c, feats, jit):
    task = pretraining.PretrainingTask(c, pretraining.OptimizerConfig(
        learning_rate=1e-4, num_train_steps=10 ** 6, num_warmup_steps=10))
    run_config = training.RunConfig(
        output_dir="/tmp/albert_tf_bench", num_train_steps=10 ** 6,
        train_batch_size=FLAGS.batch_size, jit_compile=jit)
    trainer = training.Trainer(
        task, tf.distribute.OneDeviceStrategy("/cpu:0"), run_config)
    fn = trainer._build_train_fn()  # The loop's own compiled steps.
    iterator = iter(tf.data.Dataset.from_tensors(feats).repeat())
    return lambda n: fn(iterator, tf.constant(n))


def keras_hub_step(c, feats):
    import keras
    import keras_hub

    backbone = keras_hub.models.AlbertBackbone(
        vocabulary_size=c.vocab_size, num_layers=c.num_hidden_layers,
        num_heads=c.num_attention_heads, embedding_dim=c.embedding_size,
        hidden_dim=c.hidden_size, intermediate_dim=c.intermediate_size,
        max_sequence_length=c.max_position_embeddings)
    model = keras_hub.models.AlbertMaskedLM(backbone, preprocessor=None)
    optimizer = keras.optimizers.AdamW(1e-4)
    optimizer.build(model.trainable_variables)
    inputs = {"token_ids": feats["input_ids"],
              "segment_ids": feats["segment_ids"],
              "padding_mask": feats["input_mask"],
              "mask_positions": feats["masked_lm_positions"]}
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def steps(n):
        for _ in tf.range(n):
            with tf.GradientTape() as tape:
                logits = model(inputs, training=True)
                loss = loss_fn(feats["masked_lm_ids"], logits)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return lambda n: steps(tf.constant(n))


_HF_WORKER = textwrap.dedent("""
    import json, sys, time
    import numpy as np, torch, transformers
    torch.set_num_threads(int(sys.argv[2]))
    cfg = json.load(open(sys.argv[1]))
    config = transformers.AlbertConfig(**{k: v for k, v in cfg.items()
        if k in ("vocab_size", "embedding_size", "hidden_size",
                 "num_hidden_layers", "num_hidden_groups",
                 "num_attention_heads", "intermediate_size",
                 "inner_group_num", "max_position_embeddings",
                 "type_vocab_size")}, hidden_act="gelu_new",
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        classifier_dropout_prob=0.0)
    model = transformers.AlbertForPreTraining(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    b, t, p = (int(x) for x in sys.argv[3:6])
    rng = np.random.default_rng(0)
    ids = torch.tensor(rng.integers(5, config.vocab_size, (b, t)))
    labels = torch.full((b, t), -100)
    for i in range(b):
        pos = rng.choice(np.arange(1, t), p, replace=False)
        labels[i, pos] = ids[i, pos]
    sop = torch.tensor(rng.integers(0, 2, b))
    def step():
        opt.zero_grad()
        out = model(input_ids=ids, labels=labels, sentence_order_label=sop)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    step()
    print("ready", flush=True)
    for line in sys.stdin:
        n = int(line)
        start = time.perf_counter()
        for _ in range(n):
            step()
        print(time.perf_counter() - start, flush=True)
""")


def hf_step(c):
    config_path = "/tmp/albert_tf_bench_hf_config.json"
    with open(config_path, "w") as f:
        json.dump(c.to_dict(), f)
    process = subprocess.Popen(
        [FLAGS.hf_python, "-c", _HF_WORKER, config_path,
         str(os.cpu_count()), str(FLAGS.batch_size), str(FLAGS.seq_length),
         str(FLAGS.predictions)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"

    def run(n):
        process.stdin.write(f"{n}\n")
        process.stdin.flush()
        return float(process.stdout.readline())

    return run, process


def matmul_peak_gflops(size=2048, repeats=10) -> float:
    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul().numpy()
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def timed(fn, n):
    start = time.perf_counter()
    result = fn(n)
    if isinstance(result, float):
        return result  # The HF worker times itself.
    np.asarray(result if not isinstance(result, tuple) else result[1])
    return time.perf_counter() - start


def main(argv):
    del argv  # Unused.
    c = AlbertConfig.from_json_file(os.path.join(
        ROOT, "configs", "albert_base_v2.json"))
    b, t, p = FLAGS.batch_size, FLAGS.seq_length, FLAGS.predictions
    feats = features(c, b, t, p)
    contenders = {"albert_tf": albert_tf_step(c, feats, jit=False),
                  "albert_tf_jit": albert_tf_step(c, feats, jit=True),
                  "keras_hub": keras_hub_step(c, feats)}
    hf_process = None
    if FLAGS.hf_python:
        contenders["hf_transformers"], hf_process = hf_step(c)
    for name, fn in contenders.items():
        timed(fn, 2)  # Warm-up: tracing, compilation, first allocations.
        logging.info("warmed up %s", name)
    seconds = {name: [] for name in contenders}
    peaks = []
    for round_index in range(FLAGS.rounds):
        peaks.append(matmul_peak_gflops())
        for name, fn in contenders.items():
            seconds[name].append(timed(fn, FLAGS.steps) / FLAGS.steps)
        logging.info("round %d: %s", round_index, {
            k: f"{b / v[-1]:.2f} seq/s" for k, v in seconds.items()})
    if hf_process is not None:
        hf_process.stdin.close()
        hf_process.wait()

    flops_per_step = model_flops_per_token(c, t, p) * b * t
    peak = statistics.median(peaks)
    results = {"config": "albert_base_v2", "batch_size": b, "seq_length": t,
               "predictions": p, "rounds": FLAGS.rounds,
               "steps_per_round": FLAGS.steps,
               "model_mflop_per_token": model_flops_per_token(c, t, p) / 1e6,
               "matmul_peak_gflops": peak, "cpu_count": os.cpu_count(),
               "machine": platform.processor() or platform.machine(),
               "contenders": {}}
    for name, values in seconds.items():
        step = statistics.median(values)
        results["contenders"][name] = {
            "seconds_per_step": step, "sequences_per_second": b / step,
            "model_gflops": flops_per_step / step / 1e9,
            "fraction_of_matmul_peak": flops_per_step / step / 1e9 / peak}
    ours = results["contenders"]["albert_tf"]["sequences_per_second"]
    best = max(results["contenders"][k]["sequences_per_second"]
               for k in ("albert_tf", "albert_tf_jit"))
    results["ratios"] = {
        f"albert_tf_best_vs_{k}": best / v["sequences_per_second"]
        for k, v in results["contenders"].items()
        if not k.startswith("albert_tf")}
    results["ratios"]["albert_tf_jit_vs_albert_tf"] = (
        results["contenders"]["albert_tf_jit"]["sequences_per_second"] / ours)
    os.makedirs(os.path.dirname(FLAGS.output), exist_ok=True)
    with open(FLAGS.output, "w") as f:
        json.dump(results, f, indent=2)
    logging.info("%s", json.dumps(results, indent=2))


if __name__ == "__main__":
    app.run(main)
