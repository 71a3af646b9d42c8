"""The paper-in-miniature plots, from the JSON results and TensorBoard logs.

Writes to bench/results/paper/:
  learning_curve.png      SST-2 accuracy vs labelled examples, both arms
  table5.png              held-out NSP / SOP / MLM accuracy per objective
  pretraining_curves.png  MLM and sentence accuracy vs step, per run
  pretraining_curves.json the points behind the last plot (read from the
                          runs' TensorBoard event files)

matplotlib is a benchmark-only dependency (requirements-bench.txt); the
library never imports it.

  python3 bench/paper/plots.py --work_dir=/tmp/albert_paper
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np
from absl import app
from absl import flags
from absl import logging

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "bench", "results", "paper")
flags.DEFINE_string("work_dir", "/tmp/albert_paper",
                    "pretrain_runs.py's (for the TensorBoard logs); when "
                    "absent, pretraining_curves.json is plotted as stored.")
FLAGS = flags.FLAGS

ARM_STYLE = {"pretrained": ("tab:blue", "pretrained (MLM + SOP)"),
             "random": ("tab:gray", "random init"),
             "tapt": ("tab:green", "pretrained + MLM on SST-2 train text")}
RUN_STYLE = {"mlm": ("tab:gray", "MLM only"), "nsp": ("tab:orange",
                                                       "MLM + NSP"),
             "sop": ("tab:blue", "MLM + SOP")}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def learning_curve(plt) -> None:
    with open(os.path.join(RESULTS, "learning_curve.json")) as f:
        runs = json.load(f)["runs"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, metric in zip(axes, ("dev_accuracy", "test_accuracy")):
        for arm, (color, label) in ARM_STYLE.items():
            points = {}
            for key, r in runs.items():
                parts = key.split("/")
                if parts[0] != "curve":
                    continue
                name, size = parts[1], parts[2]
                if name == arm:
                    n = 8056 if size == "all" else int(size)
                    points.setdefault(n, []).append(100 * r[metric])
            if not points:
                continue
            xs = sorted(points)
            means = [np.mean(points[x]) for x in xs]
            ax.plot(xs, means, "o-", color=color, label=label)
            ax.fill_between(xs, [min(points[x]) for x in xs],
                            [max(points[x]) for x in xs], color=color,
                            alpha=0.2)
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set_xticks([250, 500, 1000, 2000, 8056])
        ax.set_xticklabels(["250", "500", "1000", "2000", "8056\n(all)"])
        ax.set_xlabel("labelled SST-2 training examples")
        ax.set_title("dev (checkpoint chosen on it)" if metric.startswith(
            "dev") else "test (nothing chosen on it)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%), mean and min-max of 3 seeds")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "learning_curve.png"), dpi=110)


def table5(plt) -> None:
    with open(os.path.join(RESULTS, "table5.json")) as f:
        report = json.load(f)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    columns = ("nsp", "sop", "mlm")
    width = 0.27
    for ax, source in zip(axes, ("ours", "paper")):
        for i, run in enumerate(("mlm", "nsp", "sop")):
            if source == "ours":
                row = report["runs"].get(run)
                if row is None:
                    continue
                values = [100 * row["sentence_accuracy"]["nsp"],
                          100 * row["sentence_accuracy"]["sop"],
                          100 * row["masked_lm_accuracy"]]
            else:
                values = [report["paper_table5"][run][c] for c in columns]
            color, label = RUN_STYLE[run]
            xs = np.arange(len(columns)) + (i - 1) * width
            bars = ax.bar(xs, values, width, color=color, label=label)
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.axhline(50, color="k", lw=0.6, ls="--")
        ax.set_xticks(np.arange(len(columns)))
        ax.set_xticklabels(["NSP task", "SOP task", "MLM"])
        ax.set_title("this repo, held-out documents" if source == "ours"
                     else "paper Table 5 (ALBERT-base)")
        ax.set_ylim(0, 100)
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend(title="trained with", fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "table5.png"), dpi=110)


def _read_events(directory: str) -> dict[str, list]:
    import tensorflow as tf
    series: dict[str, list] = {}
    for path in sorted(glob.glob(os.path.join(directory, "events.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor)) if (
                    value.HasField("tensor")) else value.simple_value
                series.setdefault(value.tag, []).append(
                    (int(event.step), number))
    return {tag: sorted(points) for tag, points in series.items()}


def pretraining_curves(plt) -> None:
    path = os.path.join(RESULTS, "pretraining_curves.json")
    runs_dir = os.path.join(FLAGS.work_dir, "runs")
    if os.path.isdir(runs_dir):
        curves = {}
        for run in sorted(os.listdir(runs_dir)):
            curves[run] = {
                split: _read_events(os.path.join(runs_dir, run, split))
                for split in ("train", "eval")
                if os.path.isdir(os.path.join(runs_dir, run, split))}
        with open(path + ".tmp", "w") as f:
            json.dump(curves, f)
        os.replace(path + ".tmp", path)
    if not os.path.exists(path):
        logging.warning("no %s/runs and no %s; skipping", FLAGS.work_dir,
                        path)
        return
    with open(path) as f:
        curves = json.load(f)
    held = {}
    if os.path.exists(os.path.join(RESULTS, "table5.json")):
        with open(os.path.join(RESULTS, "table5.json")) as f:
            held = json.load(f).get("curves", {})
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    # The training batches' sentence accuracy is each run's own task: the
    # SOP run's on the SOP panel, the NSP run's on the NSP panel.
    panels = (("masked_lm_accuracy", "mlm", "masked-LM accuracy",
               ("mlm", "nsp", "sop")),
              ("sentence_order_accuracy", "sop", "SOP accuracy", ("sop",)),
              ("sentence_order_accuracy", "nsp", "NSP accuracy", ("nsp",)))
    for ax, (tag, key, title, train_runs) in zip(axes, panels):
        for run, (color, label) in RUN_STYLE.items():
            train = curves.get(run, {}).get("train", {}).get(tag, [])
            if train and run in train_runs:
                steps, values = np.array(train).T
                # Each logged point is one training batch: smooth over 5.
                smooth = np.convolve(values, np.ones(5) / 5, mode="valid")
                ax.plot(steps[len(steps) - len(smooth):], 100 * smooth,
                        color=color, alpha=0.35, lw=1)
            points = held.get(run, [])
            if points:
                ax.plot([p["step"] for p in points],
                        [100 * p[key] for p in points], "o-", color=color,
                        label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("pretraining step (batch 32, seq 64)")
        ax.grid(alpha=0.3)
        if key != "mlm":
            ax.axhline(50, color="k", lw=0.6, ls="--")
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend(title="trained with", fontsize=8)
    fig.suptitle("points: held-out documents, one per checkpoint; faint "
                 "lines: training batches (5-point mean) of the runs "
                 "trained on that task", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "pretraining_curves.png"), dpi=110)


def main(argv):
    del argv  # Unused.
    plt = _pyplot()
    for name, fn in (("learning_curve.json", learning_curve),
                     ("table5.json", table5),
                     (None, pretraining_curves)):
        if name and not os.path.exists(os.path.join(RESULTS, name)):
            logging.warning("no %s yet; skipping its plot", name)
            continue
        fn(plt)
        logging.info("wrote the plot for %s", fn.__name__)


if __name__ == "__main__":
    app.run(main)
