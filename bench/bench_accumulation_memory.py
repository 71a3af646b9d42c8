"""Peak memory of one optimizer step with and without gradient accumulation.

ALBERT-base (configs/albert_base_v2.json) pretraining through the library's
own Trainer, float32 on CPU, the same global batch for every K; each K runs
alone in a fresh process, which reports its peak RSS (ru_maxrss) and the
step's loss. Activations scale with the micro-batch (global batch / K), so
the peak must fall with K while the loss stays the same.

  python3 bench/bench_accumulation_memory.py \
      --output=accumulation_memory.json  (under bench/results/)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
flags.DEFINE_list("accumulation_steps", ["1", "2", "8"], "K values.")
flags.DEFINE_integer("batch_size", 32, "Global batch of one step.")
flags.DEFINE_integer("seq_length", 128, "Sequence length.")
flags.DEFINE_integer("steps", 2, "Optimizer steps per child.")
flags.DEFINE_string("config", os.path.join(ROOT, "configs",
                                           "albert_base_v2.json"),
                    "albert_config.json of the model.")
flags.DEFINE_string("output", None, "Where to write the JSON.")
flags.DEFINE_string("child", None, "Internal: run one K and print JSON.")
FLAGS = flags.FLAGS
PREDICTIONS = 20


def _child(k: int) -> dict:
    import tempfile

    import numpy as np
    import tensorflow as tf

    from albert_tf import distribute
    from albert_tf import training
    from albert_tf.config import AlbertConfig
    from albert_tf.tasks import pretraining

    config = AlbertConfig.from_json_file(FLAGS.config)
    b, t, p = FLAGS.batch_size, FLAGS.seq_length, PREDICTIONS
    rng = np.random.default_rng(0)
    data = {
        "input_ids": rng.integers(5, config.vocab_size, (b, t)).astype(
            "int32"),
        "input_mask": np.ones((b, t), "int32"),
        "segment_ids": (np.arange(t) >= t // 2).astype("int32")[None]
        .repeat(b, 0),
        "masked_lm_positions": np.sort(rng.choice(
            np.arange(1, t), (b, p)), axis=1).astype("int32"),
        "masked_lm_ids": rng.integers(5, config.vocab_size, (b, p)).astype(
            "int32"),
        "masked_lm_weights": np.ones((b, p), "float32"),
        "next_sentence_labels": rng.integers(0, 2, (b, 1)).astype("int32"),
    }
    task = pretraining.PretrainingTask(config, pretraining.OptimizerConfig(
        learning_rate=1e-3, num_train_steps=FLAGS.steps,
        num_warmup_steps=0))
    tf.keras.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory() as out:
        trainer = training.Trainer(
            task, distribute.get_strategy("one_device"), training.RunConfig(
                output_dir=out, num_train_steps=FLAGS.steps,
                train_batch_size=b, save_checkpoints_steps=10**6,
                iterations_per_loop=1, log_every_n_steps=1,
                gradient_accumulation_steps=k))
        start = time.perf_counter()
        trainer.train(lambda _: tf.data.Dataset.from_tensors(data).repeat())
        seconds = time.perf_counter() - start
    return {"gradient_accumulation_steps": k,
            "micro_batch": b // k,
            "peak_rss_mb": resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 1024,
            "losses": [h["loss"] for h in trainer.history],
            "seconds_incl_tracing": seconds}


def main(argv):
    del argv
    if FLAGS.child is not None:
        print("RESULT " + json.dumps(_child(int(FLAGS.child))), flush=True)
        return
    results = []
    for k in [int(v) for v in FLAGS.accumulation_steps]:
        if FLAGS.batch_size % k:
            raise app.UsageError(f"--batch_size={FLAGS.batch_size} is not "
                                 f"divisible by K={k}")
        command = [sys.executable, os.path.abspath(__file__), f"--child={k}",
                   f"--batch_size={FLAGS.batch_size}",
                   f"--seq_length={FLAGS.seq_length}",
                   f"--steps={FLAGS.steps}", f"--config={FLAGS.config}"]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONPATH=ROOT + os.pathsep + os.environ.get(
                       "PYTHONPATH", ""))
        done = subprocess.run(command, env=env, capture_output=True,
                              text=True, check=False)
        lines = [l for l in done.stdout.splitlines()
                 if l.startswith("RESULT ")]
        if done.returncode or not lines:
            raise RuntimeError(f"K={k} failed:\n{done.stderr[-3000:]}")
        result = json.loads(lines[-1][len("RESULT "):])
        logging.info("K=%d: peak RSS %.0f MB, losses %s", k,
                     result["peak_rss_mb"], result["losses"])
        results.append(result)
    summary = {
        "command": "bench/bench_accumulation_memory.py " + " ".join(
            sys.argv[1:]),
        "config": os.path.relpath(FLAGS.config, ROOT),
        "global_batch": FLAGS.batch_size, "seq_length": FLAGS.seq_length,
        "dtype": "float32", "results": results,
        "peak_rss_ratio_to_k1": {
            str(r["gradient_accumulation_steps"]):
                r["peak_rss_mb"] / results[0]["peak_rss_mb"]
            for r in results},
    }
    if FLAGS.output:
        common.write_result(FLAGS.output, summary)
    logging.info("%s", json.dumps(summary["peak_rss_ratio_to_k1"]))


if __name__ == "__main__":
    app.run(main)
