"""Prints the README's tables from bench/results/paper/*.json (Markdown).

So the figures in bench/paper/README.md are read off the JSON, never typed:

  python3 bench/paper/tables.py
"""

from __future__ import annotations

import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "bench", "results", "paper")


def _load(name: str) -> dict | None:
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _spread(s: dict) -> str:
    return (f"{_pct(s['mean'])} ({_pct(s['min'])}-{_pct(s['max'])}, "
            f"n={s['n']})")


def probes() -> None:
    report = _load("pretrain_probes.json")
    if not report:
        return
    print("\n### Pretraining probes (1,000 steps; held-out)\n")
    print("| probe | optimizer | lr | parameters | held-out MLM acc | "
          "train examples/s |")
    print("|---|---|---|---|---|---|")
    for name, r in report.items():
        print(f"| {name} | {r['optimizer']} | {r['learning_rate']} | "
              f"{r['parameters']:,} | {_pct(r['heldout_masked_lm_accuracy'])}"
              f" | {r['train_examples_per_second']:.0f} |")


def select() -> None:
    report = _load("learning_curve.json")
    if not report:
        return
    print("\n### Recipe choice (1,000 labels, seed 0; dev / test %)\n")
    arms = sorted({k.split("/")[1] for k in report["runs"]
                   if k.startswith("select/")})
    recipes = sorted({k.split("/")[2] for k in report["runs"]
                      if k.startswith("select/")})
    print("| recipe | " + " | ".join(arms) + " |")
    print("|---" * (len(arms) + 1) + "|")
    for recipe in recipes:
        cells = []
        for arm in arms:
            r = report["runs"].get(f"select/{arm}/{recipe}/1000/0")
            cells.append(f"{_pct(r['dev_accuracy'])} / "
                         f"{_pct(r['test_accuracy'])}" if r else "-")
        print(f"| {recipe} | " + " | ".join(cells) + " |")
    print("\nChosen:", json.dumps(report.get("recipe", {})))


def curve() -> None:
    report = _load("learning_curve.json")
    if not report:
        return
    summary = report.get("summary", {})
    print("\n### Learning curve (mean (min-max) over seeds, %)\n")
    print("| labels | arm | dev | test |")
    print("|---|---|---|---|")
    for size in ("250", "500", "1000", "2000", "all"):
        for arm in ("pretrained", "random", "tapt"):
            s = summary.get(f"curve/{arm}/{size}")
            if s:
                print(f"| {size} | {arm} | {_spread(s['dev_accuracy'])} | "
                      f"{_spread(s['test_accuracy'])} |")
    for prefix, s in sorted(summary.items()):
        if prefix.startswith(("objectives/", "steps/")):
            print(f"| {prefix} | | {_spread(s['dev_accuracy'])} | "
                  f"{_spread(s['test_accuracy'])} |")


def linear() -> None:
    report = _load("linear_probe.json")
    if not report:
        return
    print("\n### Linear probes on frozen encoders (dev %, best L2)\n")
    print("| encoder | labels | mean-pooled | [CLS] pooled |")
    print("|---|---|---|---|")
    keys = sorted({k.rsplit("/", 1)[0] for k in report["results"]})
    for key in keys:
        name, size = key.split("/")
        mean = report["results"][f"{key}/mean"]["dev_accuracy"]
        pooled = report["results"][f"{key}/pooled"]["dev_accuracy"]
        print(f"| {name} | {size} | {_pct(mean)} | {_pct(pooled)} |")


def table5() -> None:
    report = _load("table5.json")
    if not report:
        return
    paper = report["paper_table5"]
    print("\n### Table 5 in miniature (held-out %; paper in brackets)\n")
    print("| trained with | MLM acc | NSP acc | SOP acc |")
    print("|---|---|---|---|")
    names = {"mlm": "MLM only (None)", "nsp": "MLM + NSP",
             "sop": "MLM + SOP"}
    for run in ("mlm", "nsp", "sop"):
        row = report["runs"].get(run)
        if not row:
            continue
        acc = row["sentence_accuracy"]
        print(f"| {names[run]} | {_pct(row['masked_lm_accuracy'])} "
              f"[{paper[run]['mlm']}] | {_pct(acc['nsp'])} "
              f"[{paper[run]['nsp']}] | {_pct(acc['sop'])} "
              f"[{paper[run]['sop']}] |")
    for name, d in report.get("data", {}).items():
        print(f"\n{name}: {d['instances']} instances, label 1 "
              f"{_pct(d['label_1_fraction'])}% (random-document "
              f"{d['label_1_random_document']}, swapped "
              f"{d['label_1_swapped']})", end="")
    print()


if __name__ == "__main__":
    for fn in (probes, select, curve, linear, table5):
        fn()
