"""Pretraining throughput on CPU: albert_tf vs keras-hub vs HF (not CI).

Every measurement runs alone in a FRESH process: the parent imports neither
TensorFlow nor torch, it only starts children and collects their JSON. For
each of `--rounds` rounds it first measures the machine's fp32 matmul peak
(a 2048^2 matmul in TensorFlow, its own process), then runs each contender
once, alternating the order every round. A child builds its model, warms up
untimed (`--warmup` steps: tracing, XLA compilation, first allocations),
times `--steps` full training steps (forward, backward, update) on the same
batch, prints one JSON line and exits. Reported: every round's seconds per
step, the median, min and max; ratios are of medians (and, as a check, of
each contender's fastest round).

The machine may be shared: before each child the driver waits (at most
--max_wait_s) until other processes keep at most --max_other_load cores
busy, and it records how many cores they kept busy while each child ran
(machine busy time from /proc/stat minus the child's own CPU time), and
each child's CPU seconds per step. Under such load torch's OpenMP threads
suffer far more than TF's thread pool (HF slowed 2-8x where TF slowed
~2x in a loaded run), which inflates the ratios vs HF: trust a run whose
`other_processes_cores_busy` stay near 0.

Contenders (ALBERT-base, configs/albert_base_v2.json; seq 128, batch 8,
20 masked positions; float32; the same thread budget, `--threads`, as
intra- and inter-op threads of TF and torch):

- `albert_tf`: the library's own compiled train step
  (training.Trainer._build_train_fn, the steps loop run_pretraining.py
  runs), MLM + SOP, LAMB, global-norm clipping at 1.0;
- `albert_tf_jit`: the same with RunConfig.jit_compile=True (XLA);
- `albert_tf_bf16` (not run by default, not in the ratios against the
  float32 peers): the same step under --dtype=bfloat16 (mixed_bfloat16:
  bf16 matmuls, float32 variables), to show what bf16 buys on this CPU;
- `keras_hub`: keras-hub AlbertMaskedLM (TF backend), global-norm
  clipping at 1.0, AdamW;
- `hf_transformers`: HF transformers AlbertForPreTraining (PyTorch CPU),
  MLM + SOP, torch AdamW, clip_grad_norm_ 1.0, eager, in the separate
  virtualenv given by --hf_python (skipped if unset). Create it with
  `python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install
  torch==2.13.0 transformers safetensors numpy`.

Differences in work that remain (the contenders as their users run them):
- HF computes MLM logits at all T=128 positions (labels -100 elsewhere),
  the others only at the P=20 masked ones: HF's decoder does 6.4x the MLM
  head FLOPs, about 4% more forward FLOPs in total at ALBERT-base.
- keras-hub has no SOP head (MLM loss only) and uses AdamW; HF also uses
  AdamW; albert_tf uses LAMB (per-layer trust ratios: a little more
  optimizer work than AdamW).
- albert_tf also computes its eval metric sums (accuracy, loss) each step,
  as its training loop does; albert_tf's batch comes from a tf.data
  iterator (the loop's input path), the others' from constant tensors.
- torch runs eagerly; the TF contenders run as tf.function graphs.

The model FLOP/s is 3x the forward matmul FLOPs (ALBERT-base: about 528
MFLOP per token; the same count for every contender, so HF's extra MLM
work is not credited). Results go to bench/results/pretraining_throughput
.json with the CPU model, thread counts and library versions.

On the shared 2-core machine the reported run was started under nice
(other sessions may load the CPU; the load average is recorded):

  nice -n 10 python3 bench/bench_pretraining.py --hf_python=/tmp/hfvenv/bin/python \
      --rounds=3 --steps=3
"""

import datetime
import json
import os
import resource
import statistics
import sys
import tempfile
import textwrap
import time

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import common  # noqa: E402

ROOT = common.REPO
TF_CONTENDERS = ("albert_tf", "albert_tf_jit", "albert_tf_bf16", "keras_hub")

flags.DEFINE_integer("rounds", 5, "Interleaved rounds.", lower_bound=1)
flags.DEFINE_integer("steps", 5, "Timed steps per contender per round.",
                     lower_bound=1)
# The train loop runs at least one step per call (and XLA compiles there).
flags.DEFINE_integer("warmup", 2, "Untimed steps before the timed ones.",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", 8, "Sequences per step.")
flags.DEFINE_integer("seq_length", 128, "Tokens per sequence.")
flags.DEFINE_integer("predictions", 20, "Masked positions per sequence.")
flags.DEFINE_integer("threads", 0, "Intra- and inter-op threads of every "
                     "contender; 0: the CPUs this process may run on.")
flags.DEFINE_float("max_other_load", 0.5, "Before each child, wait while "
                   "other processes keep more than this many cores busy "
                   "(sampled over 2 s), up to --max_wait_s.")
flags.DEFINE_integer("max_wait_s", 120, "Longest wait for a quiet machine "
                     "before each child; then it runs anyway (recorded).")
flags.DEFINE_string("albert_config_file", os.path.join(
    ROOT, "configs", "albert_base_v2.json"), "The model config.")
flags.DEFINE_string("hf_python", None, "Python of a venv with torch and "
                    "transformers; HF is skipped when unset.")
flags.DEFINE_list("contenders", ["albert_tf", "albert_tf_jit", "keras_hub",
                                 "hf_transformers"],
                  "Which contenders to run.")
flags.DEFINE_enum("mode", "driver", ["driver", "peak"] + list(TF_CONTENDERS),
                  "Internal: what this process does.")
flags.DEFINE_string("output", os.path.join(common.RESULTS,
                                           "pretraining_throughput.json"),
                    "Where to write the JSON results.")
FLAGS = flags.FLAGS

def threads() -> int:
    return FLAGS.threads or len(os.sched_getaffinity(0))


def model_flops_per_token(c: dict, t: int, p: int) -> float:
    """fwd + bwd FLOPs per token: 3x forward, matmuls only."""
    h, e = c["hidden_size"], c["embedding_size"]
    layer = 4 * h ** 2 + 2 * h * c["intermediate_size"] + 2 * t * h
    per_token = c["num_hidden_layers"] * layer * c["inner_group_num"]
    per_token += e * h
    mlm = p * (h * e + e * c["vocab_size"]) / t
    return 3 * 2 * (per_token + mlm)


# ------------------------------------------------------------ children ---


def _tf_setup():
    import tensorflow as tf
    n = threads()
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)
    return tf


def _tf_info() -> dict:
    import keras
    import tensorflow as tf
    info = {"threads": {
        "tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS")},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__}}
    try:
        import keras_hub
        info["versions"]["keras_hub"] = keras_hub.__version__
    except ImportError:
        pass
    return info


def features(c, b: int, t: int, p: int) -> dict:
    """One fixed batch (numpy), as the HF worker builds it (same seed)."""
    import numpy as np
    rng = np.random.default_rng(0)
    ids = rng.integers(5, c.vocab_size, (b, t)).astype("int32")
    positions = np.sort(np.stack([rng.choice(np.arange(1, t), p,
                                             replace=False)
                                  for _ in range(b)]), -1).astype("int32")
    return {
        "input_ids": ids,
        "input_mask": np.ones((b, t), "int32"),
        "segment_ids": (np.arange(t) >= t // 2).astype("int32")[None].repeat(
            b, 0),
        "masked_lm_positions": positions,
        "masked_lm_ids": np.take_along_axis(ids, positions, 1),
        "masked_lm_weights": np.ones((b, p), "float32"),
        "next_sentence_labels": rng.integers(0, 2, (b, 1)).astype("int32"),
    }


def albert_tf_steps(c, feats, jit: bool, dtype: str = "float32"):
    """n -> loss after n steps of the library's own train loop function."""
    tf = _tf_setup()
    from albert_tf import training
    from albert_tf.tasks import pretraining

    task = pretraining.PretrainingTask(c, pretraining.OptimizerConfig(
        learning_rate=1e-4, num_train_steps=10 ** 6, num_warmup_steps=10),
        dtype=dtype)
    run_config = training.RunConfig(
        output_dir=tempfile.mkdtemp(prefix="albert_tf_bench_"),
        num_train_steps=10 ** 6, train_batch_size=FLAGS.batch_size,
        jit_compile=jit)
    trainer = training.Trainer(
        task, tf.distribute.OneDeviceStrategy("/cpu:0"), run_config)
    fn = trainer._build_train_fn()  # What Trainer.train runs per host call.
    iterator = iter(tf.data.Dataset.from_tensors(feats).repeat())
    return lambda n: float(fn(iterator, tf.constant(n, tf.int32))[1])


def keras_hub_steps(c, feats):
    """n -> loss after n steps of AlbertMaskedLM, clipped, AdamW."""
    tf = _tf_setup()
    import keras
    import keras_hub

    backbone = keras_hub.models.AlbertBackbone(
        vocabulary_size=c.vocab_size, num_layers=c.num_hidden_layers,
        num_heads=c.num_attention_heads, embedding_dim=c.embedding_size,
        hidden_dim=c.hidden_size, intermediate_dim=c.intermediate_size,
        num_groups=c.num_hidden_groups,
        num_inner_repetitions=c.inner_group_num,
        dropout=c.hidden_dropout_prob,
        max_sequence_length=c.max_position_embeddings,
        num_segments=c.type_vocab_size)
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
        loss = tf.constant(0.0)
        for _ in tf.range(n):
            with tf.GradientTape() as tape:
                logits = model(inputs, training=True)
                loss = loss_fn(feats["masked_lm_ids"], logits,
                               sample_weight=feats["masked_lm_weights"])
            grads = tape.gradient(loss, model.trainable_variables)
            grads, _ = tf.clip_by_global_norm(grads, 1.0)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return lambda n: float(steps(tf.constant(n)))


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> dict:
    tf = _tf_setup()
    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul().numpy()
        times.append(time.perf_counter() - start)
    return {"gflops": 2 * size ** 3 / statistics.median(times) / 1e9,
            **_tf_info()}


def run_contender(name: str) -> dict:
    """Build, warm up untimed, time FLAGS.steps steps: one fresh process."""
    from albert_tf.config import AlbertConfig

    c = AlbertConfig.from_json_file(FLAGS.albert_config_file)
    feats = features(c, FLAGS.batch_size, FLAGS.seq_length,
                     FLAGS.predictions)
    start = time.perf_counter()
    if name == "keras_hub":
        run = keras_hub_steps(c, feats)
    else:
        run = albert_tf_steps(c, feats, jit=name == "albert_tf_jit",
                              dtype=("bfloat16" if name == "albert_tf_bf16"
                                     else "float32"))
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    run(FLAGS.warmup)
    warmup_s = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    loss = run(FLAGS.steps)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu,
            "build_seconds": build_s,
            "warmup_seconds": warmup_s, "loss": loss, **_tf_info()}


_HF_WORKER = textwrap.dedent("""
    import json, os, sys, time
    import numpy as np, torch, transformers
    cfg, n_threads, b, t, p, warmup, steps = json.loads(sys.argv[1])
    torch.set_num_threads(n_threads)
    torch.set_num_interop_threads(n_threads)
    torch.manual_seed(0)
    start = time.perf_counter()
    config = transformers.AlbertConfig(**{k: v for k, v in cfg.items()
        if k in ("vocab_size", "embedding_size", "hidden_size",
                 "num_hidden_layers", "num_hidden_groups",
                 "num_attention_heads", "intermediate_size",
                 "inner_group_num", "max_position_embeddings",
                 "type_vocab_size", "initializer_range")},
        hidden_act="gelu_new",  # The tanh GELU, as albert_tf's "gelu".
        hidden_dropout_prob=cfg["hidden_dropout_prob"],
        attention_probs_dropout_prob=cfg["attention_probs_dropout_prob"],
        classifier_dropout_prob=0.0)
    model = transformers.AlbertForPreTraining(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    # The batch of the TF children: same seed, same draws.
    rng = np.random.default_rng(0)
    ids = rng.integers(5, config.vocab_size, (b, t))
    positions = np.sort(np.stack([rng.choice(np.arange(1, t), p,
                                             replace=False)
                                  for _ in range(b)]), -1)
    sop = torch.tensor(rng.integers(0, 2, (b, 1))[:, 0])
    labels = torch.full((b, t), -100)
    for i in range(b):
        labels[i, positions[i]] = torch.tensor(ids[i, positions[i]])
    ids = torch.tensor(ids)
    token_types = torch.tensor((np.arange(t) >= t // 2)[None].repeat(b, 0)
                               .astype("int64"))
    mask = torch.ones((b, t), dtype=torch.int64)
    def step():
        opt.zero_grad()
        out = model(input_ids=ids, attention_mask=mask,
                    token_type_ids=token_types, labels=labels,
                    sentence_order_label=sop)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return out.loss
    build = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    warm = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        loss = step()
    seconds = time.perf_counter() - start
    print("BENCH_RESULT " + json.dumps({
        "seconds": seconds, "cpu_seconds": time.process_time() - cpu,
        "build_seconds": build, "warmup_seconds": warm,
        "loss": float(loss),
        "threads": {"torch_intra_op": torch.get_num_threads(),
                    "torch_inter_op": torch.get_num_interop_threads(),
                    "affinity_cpus": len(os.sched_getaffinity(0))},
        "versions": {"torch": torch.__version__,
                     "transformers": transformers.__version__}}), flush=True)
""")


# -------------------------------------------------------------- driver ---


def _busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wait_for_quiet() -> tuple[float, float]:
    """Waits until others keep < --max_other_load cores busy (capped).

    Returns (the last sampled load of other processes, seconds waited).
    """
    start = time.time()
    while True:
        busy = _busy_cpu_seconds()
        time.sleep(2.0)
        load = (_busy_cpu_seconds() - busy) / 2.0
        if (load <= FLAGS.max_other_load
                or time.time() - start >= FLAGS.max_wait_s):
            return load, time.time() - start
        time.sleep(8.0)


def _child(cmd: list[str], log_path: str) -> dict:
    """Runs one fresh process; its JSON result line plus peak memory.

    Also records how busy other processes kept the CPUs meanwhile (machine
    busy time minus this child's own CPU time, in cores).
    """
    load_before, waited = _wait_for_quiet()
    busy, own = _busy_cpu_seconds(), _children_cpu_seconds()
    memory = common.run_measured(cmd, log_path=log_path)
    other_cores = ((_busy_cpu_seconds() - busy)
                   - (_children_cpu_seconds() - own)) / memory["wall_s"]
    result = common.read_result(log_path)
    result["peak_rss_mb"] = memory["peak_rss_max_process_mb"]
    result["other_processes"] = {"cores_busy_before": load_before,
                                 "cores_busy_during": other_cores,
                                 "waited_s": waited}
    return result


def _command(name: str, config: dict) -> list[str]:
    if name == "hf_transformers":
        return [FLAGS.hf_python, "-c", _HF_WORKER, json.dumps(
            [config, threads(), FLAGS.batch_size, FLAGS.seq_length,
             FLAGS.predictions, FLAGS.warmup, FLAGS.steps])]
    return [sys.executable, os.path.abspath(__file__), f"--mode={name}"] + [
        f"--{flag}={FLAGS[flag].value}" for flag in (
            "steps", "warmup", "batch_size", "seq_length", "predictions",
            "threads", "albert_config_file")]



def _ratios(seq_s: dict) -> dict:
    """albert_tf's better variant vs the others, and jit vs not."""
    ratios = {}
    ours = [k for k in ("albert_tf", "albert_tf_jit") if k in seq_s]
    if ours:
        best = max(ours, key=seq_s.get)
        ratios["albert_tf_best"] = best
        for other in ("hf_transformers", "keras_hub"):
            if other in seq_s:
                ratios[f"albert_tf_best_vs_{other}"] = (
                    seq_s[best] / seq_s[other])
    if "albert_tf_bf16" in seq_s and "albert_tf" in seq_s:
        ratios["albert_tf_bf16_vs_albert_tf"] = (seq_s["albert_tf_bf16"]
                                                 / seq_s["albert_tf"])
    if len(ours) == 2:
        ratios["albert_tf_jit_vs_albert_tf"] = (seq_s["albert_tf_jit"]
                                                / seq_s["albert_tf"])
    return ratios


def driver() -> None:
    with open(FLAGS.albert_config_file) as f:
        config = json.load(f)
    b, t, p = FLAGS.batch_size, FLAGS.seq_length, FLAGS.predictions
    names = [n for n in FLAGS.contenders
             if n != "hf_transformers" or FLAGS.hf_python]
    for name in names:
        if name not in TF_CONTENDERS + ("hf_transformers",):
            raise ValueError(f"--contenders: unknown {name!r}")
    logs = tempfile.mkdtemp(prefix="bench_pretraining_")
    rounds = {name: [] for name in names}
    peaks = []
    load = [os.getloadavg()[0]]
    for r in range(FLAGS.rounds):
        peaks.append(_child(_command("peak", config),
                            os.path.join(logs, f"peak_{r}.log")))
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            result = _child(_command(name, config),
                            os.path.join(logs, f"{name}_{r}.log"))
            rounds[name].append(result)
            logging.info("round %d %s: %.3f s/step, %.2f seq/s (warm-up "
                         "%.1f s)", r, name, result["seconds"] / FLAGS.steps,
                         b * FLAGS.steps / result["seconds"],
                         result["warmup_seconds"])
        load.append(os.getloadavg()[0])

    flops_per_step = model_flops_per_token(config, t, p) * b * t
    peak = statistics.median(x["gflops"] for x in peaks)
    contenders, versions, thread_info = {}, {}, {}
    for name, results in rounds.items():
        step_s = [x["seconds"] / FLAGS.steps for x in results]
        median = statistics.median(step_s)
        contenders[name] = {
            "seconds_per_step": common.spread(step_s),
            "sequences_per_second": common.spread([b / s for s in step_s]),
            # CPU time (all threads) per step: less sensitive to other
            # processes on the machine than wall time, but it counts
            # spin-waiting threads too.
            "cpu_seconds_per_step": common.spread(
                [x["cpu_seconds"] / FLAGS.steps for x in results]),
            "model_gflops": flops_per_step / median / 1e9,
            "fraction_of_matmul_peak": flops_per_step / median / 1e9 / peak,
            "warmup_seconds": common.spread(
                [x["warmup_seconds"] for x in results]),
            "peak_rss_mb": max(x["peak_rss_mb"] for x in results),
            "final_loss": results[-1]["loss"],
            "other_processes_cores_busy": [
                round(x["other_processes"]["cores_busy_during"], 2)
                for x in results],
            "threads": results[0]["threads"]}
        versions.update(results[0]["versions"])
        thread_info[name] = results[0]["threads"]
    ratios = _ratios({k: v["sequences_per_second"]["median"]
                      for k, v in contenders.items()})
    # The least disturbed round of each: a check on the medians when other
    # processes load the machine.
    ratios_of_fastest_rounds = _ratios(
        {k: v["sequences_per_second"]["max"] for k, v in contenders.items()})
    report = {
        "config": os.path.relpath(FLAGS.albert_config_file, ROOT),
        "batch_size": b, "seq_length": t, "predictions": p,
        "dtype": "float32 (albert_tf_bf16: mixed_bfloat16)",
        "rounds": FLAGS.rounds,
        "steps_per_round": FLAGS.steps, "warmup_steps": FLAGS.warmup,
        "model_mflop_per_token": model_flops_per_token(config, t, p) / 1e6,
        "matmul_peak_gflops": common.spread([x["gflops"] for x in peaks]),
        "contenders": contenders, "ratios": ratios,
        "ratios_of_fastest_rounds": ratios_of_fastest_rounds,
        "machine": {"cpu": common.cpu_model(), "cpu_count": os.cpu_count(),
                    "affinity_cpus": len(os.sched_getaffinity(0)),
                    "threads_per_contender": threads(),
                    "threads_used": thread_info,
                    "peak_threads": peaks[0]["threads"],
                    "niceness": os.nice(0),
                    "load_average_1min": common.spread(load)},
        "versions": versions,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "method": "each measurement a fresh process (the driver imports "
                  "neither TF nor torch); untimed warm-up steps, then "
                  "--steps timed steps on one fixed batch; rounds "
                  "interleave the contenders, the order alternating; "
                  "ratios are of medians",
        "command": " ".join([os.path.relpath(sys.argv[0], ROOT)]
                            + sys.argv[1:]),
    }
    path = common.write_result(os.path.abspath(FLAGS.output), report)
    logging.info("%s\nwrote %s", json.dumps(report, indent=2), path)


def main(argv):
    del argv  # Unused.
    if FLAGS.mode == "driver":
        driver()
        return
    if FLAGS.mode == "peak":
        result = matmul_peak_gflops()
    else:
        result = run_contender(FLAGS.mode)
    print(common.RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    app.run(main)
