"""Paper Table 2 in miniature: training cost of ALBERT vs BERT on this CPU.

The paper reports data throughput relative to BERT-large on TPU (BERT-base
4.7x, ALBERT-base 5.6x, -large 1.7x, -xlarge 0.6x, -xxlarge 0.3x). Here
every model trains with the project's own compiled train step
(training.Trainer, MLM + SOP, LAMB, clipping: bench/bench_pretraining.py
--mode=albert_tf) at seq 128 and a small batch. Each (model, round) runs
alone in a fresh process; rounds interleave with alternating order. For
each model: seconds per step (median over rounds), speedup = BERT-large's
seconds per step / the model's, peak RSS of the process (weights, gradients,
two LAMB slots, activations), and the exact parameter count.

BERT counterparts are table1_params.bert(): the same L, H, I without
sharing and with E = H. BERT-xlarge (1.27B weights) is not run: weights,
gradients and two optimizer slots alone are 20.3 GB in float32, more than
this 24 GB machine can hold beside the rest.

  nice -n 10 python3 bench/paper/table2_cost.py --rounds=3

Writes bench/results/paper/table2_cost.json and prints the table.
"""

import datetime
import os
import statistics
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from albert_tf.config import AlbertConfig  # noqa: E402
from bench import common  # noqa: E402
import table1_params  # noqa: E402

flags.DEFINE_integer("rounds", 3, "Interleaved rounds.", lower_bound=1)
flags.DEFINE_integer("steps", 2, "Timed steps per model per round.",
                     lower_bound=1)
flags.DEFINE_integer("warmup", 1, "Untimed steps first (tracing, "
                     "allocation); at least 1.", lower_bound=1)
flags.DEFINE_integer("batch_size", 2, "Sequences per step.")
flags.DEFINE_integer("seq_length", 128, "Tokens per sequence.")
flags.DEFINE_integer("predictions", 20, "Masked positions per sequence.")
flags.DEFINE_list("models", ["BERT-base", "BERT-large", "ALBERT-base",
                             "ALBERT-large", "ALBERT-xlarge",
                             "ALBERT-xxlarge"], "Which models to run.")
flags.DEFINE_string("output", os.path.join(
    common.RESULTS, "paper", "table2_cost.json"), "The JSON results.")
FLAGS = flags.FLAGS

# Paper Table 2's "Speedup" column (relative to BERT-large, on TPU).
PAPER_SPEEDUP = {"BERT-base": 4.7, "BERT-large": 1.0, "ALBERT-base": 5.6,
                 "ALBERT-large": 1.7, "ALBERT-xlarge": 0.6,
                 "ALBERT-xxlarge": 0.3}


def configs() -> dict[str, AlbertConfig]:
    out = {}
    for size in ("base", "large", "xlarge", "xxlarge"):
        albert = AlbertConfig.from_json_file(
            os.path.join(ROOT, "configs", f"albert_{size}_v2.json"))
        out[f"ALBERT-{size}"] = albert
        if size in ("base", "large"):
            out[f"BERT-{size}"] = table1_params.bert(
                albert, table1_params.BERT_HEADS[size])
    return out


def run_one(name: str, config_file: str, log_path: str) -> dict:
    """One model in a fresh process: seconds per step and peak RSS."""
    cmd = [sys.executable, os.path.join(ROOT, "bench", "bench_pretraining.py"),
           "--mode=albert_tf", f"--albert_config_file={config_file}",
           f"--steps={FLAGS.steps}", f"--warmup={FLAGS.warmup}",
           f"--batch_size={FLAGS.batch_size}",
           f"--seq_length={FLAGS.seq_length}",
           f"--predictions={FLAGS.predictions}"]
    memory = common.run_measured(cmd, log_path=log_path)
    result = common.read_result(log_path)
    return {"seconds_per_step": result["seconds"] / FLAGS.steps,
            "warmup_seconds": result["warmup_seconds"],
            "loss": result["loss"],
            "peak_rss_mb": memory["peak_rss_max_process_mb"]}


def main(argv):
    del argv  # Unused.
    all_configs = configs()
    unknown = [m for m in FLAGS.models if m not in all_configs]
    if unknown:
        raise app.UsageError(f"--models: unknown {unknown}; choose from "
                             f"{sorted(all_configs)}")
    if "BERT-large" not in FLAGS.models:
        raise app.UsageError("--models must include BERT-large (the "
                             "reference of every speedup)")
    work = tempfile.mkdtemp(prefix="table2_cost_")
    files = {}
    for name in FLAGS.models:
        files[name] = os.path.join(work, f"{name}.json")
        all_configs[name].to_json_file(files[name])
    rounds = {name: [] for name in FLAGS.models}
    for r in range(FLAGS.rounds):
        order = FLAGS.models if r % 2 == 0 else FLAGS.models[::-1]
        for name in order:
            result = run_one(name, files[name],
                             os.path.join(work, f"{name}_{r}.log"))
            rounds[name].append(result)
            logging.info("round %d %s: %.2f s/step, peak RSS %.0f MB", r,
                         name, result["seconds_per_step"],
                         result["peak_rss_mb"])
    reference = statistics.median(
        x["seconds_per_step"] for x in rounds["BERT-large"])
    rows = []
    for name in FLAGS.models:
        config = all_configs[name]
        step_s = [x["seconds_per_step"] for x in rounds[name]]
        median = common.spread(step_s)["median"]
        rows.append({
            "model": name, "L": config.num_hidden_layers,
            "H": config.hidden_size, "E": config.embedding_size,
            "parameters": config.num_parameters(),
            "seconds_per_step": common.spread(step_s),
            "sequences_per_second": FLAGS.batch_size / median,
            "speedup_vs_bert_large": reference / median,
            "paper_speedup": PAPER_SPEEDUP[name],
            "peak_rss_mb": max(x["peak_rss_mb"] for x in rounds[name]),
            "warmup_seconds": statistics.median(
                x["warmup_seconds"] for x in rounds[name])})
    report = {
        "rows": rows, "batch_size": FLAGS.batch_size,
        "seq_length": FLAGS.seq_length, "predictions": FLAGS.predictions,
        "rounds": FLAGS.rounds, "steps_per_round": FLAGS.steps,
        "warmup_steps": FLAGS.warmup, "dtype": "float32",
        "not_run": {"BERT-xlarge": "1.27B weights: weights, gradients and "
                                   "two LAMB slots are 20.3 GB in float32"},
        "machine": {"cpu": common.cpu_model(), "cpu_count": os.cpu_count(),
                    "niceness": os.nice(0),
                    "load_average_1min_end": os.getloadavg()[0]},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "command": " ".join([os.path.relpath(sys.argv[0], ROOT)]
                            + sys.argv[1:]),
    }
    path = common.write_result(os.path.abspath(FLAGS.output), report)
    lines = ["| model | L | H | E | parameters | s/step | speedup vs "
             "BERT-large | paper (TPU) | peak RSS |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['L']} | {row['H']} | {row['E']} | "
            f"{row['parameters'] / 1e6:.1f}M | "
            f"{row['seconds_per_step']['median']:.2f} | "
            f"{row['speedup_vs_bert_large']:.2f}x | "
            f"{row['paper_speedup']}x | {row['peak_rss_mb'] / 1024:.1f} GB |")
    sys.stdout.write("\n".join(lines) + f"\n\nwrote {path}\n")


if __name__ == "__main__":
    app.run(main)
