"""Shared benchmark plumbing: corpus, 30k vocab, the original code, memory.

Benchmarks are not tests: they need ../shared/data/corpus (and, for the
comparisons with the original, a checkout of google-research/albert) and
skip with a message when those are absent.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "bench", "results")
DEFAULT_CORPUS = os.path.join(os.path.dirname(REPO), "shared", "data",
                              "corpus")
# A bare git mirror or a checkout of google-research/albert (optional).
DEFAULT_ORIGINAL = "/work/.mirror/google-research+albert/repo"


def corpus_files(corpus_dir: str) -> list[str]:
    if not os.path.isdir(corpus_dir):
        return []
    return sorted(os.path.join(corpus_dir, f) for f in os.listdir(corpus_dir)
                  if f.endswith(".txt"))


def vocab_30k(files: list[str], work_dir: str) -> tuple[str, str]:
    """The 30k unigram vocab of train_spm on the corpus (cached)."""
    prefix = os.path.join(work_dir, "spm30k")
    if not os.path.exists(prefix + ".model"):
        from albert_tf.tokenization import train_spm
        train_spm.train_spm(files, prefix, vocab_size=30000, preprocess=True,
                            do_lower_case=True)
    return prefix + ".model", prefix + ".vocab"


def original_package(original: str, work_dir: str) -> str | None:
    """Copies the original's tokenization + data scripts into work_dir/albert.

    They are run unmodified under tf.compat.v1 (see ORIGINAL_PRELUDE) purely
    as a reference; nothing from them enters albert_tf.
    """
    if not os.path.exists(original):
        return None
    root = os.path.join(work_dir, "original")
    os.makedirs(os.path.join(root, "albert"), exist_ok=True)
    for name in ("tokenization.py", "create_pretraining_data.py"):
        dest = os.path.join(root, "albert", name)
        if os.path.isdir(os.path.join(original, ".git")) or os.path.exists(
                os.path.join(original, name)):
            with open(os.path.join(original, name), "rb") as f:
                data = f.read()
        else:  # Bare mirror.
            data = subprocess.run(["git", "-C", original, "show",
                                   f"HEAD:{name}"], check=True,
                                  capture_output=True).stdout
        with open(dest, "wb") as f:
            f.write(data)
    open(os.path.join(root, "albert", "__init__.py"), "w").close()
    return root


# tokenization.py imports tensorflow_hub only for from_hub_module.
ORIGINAL_PRELUDE = (
    "import sys, types; "
    "sys.modules['tensorflow_hub'] = types.ModuleType('tensorflow_hub'); ")


def _tree(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        p = stack.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return pids


def _memory_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def run_measured(cmd: list[str], env: dict | None = None,
                 log_path: str | None = None) -> dict:
    """Runs cmd; samples RSS/PSS of its process tree every 0.2 s.

    Returns wall time, peak summed RSS (counts pages shared by forked
    workers once per process, an overestimate), peak summed PSS (shared
    pages split between processes: the fair total) and the peak RSS of
    any single process.
    """
    out = open(log_path, "w") if log_path else subprocess.DEVNULL
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                            env=env, cwd=REPO)
    peak = {"rss_sum_kb": 0, "pss_sum_kb": 0, "rss_max_process_kb": 0}

    def sample():
        while proc.poll() is None:
            mems = [_memory_kb(p) for p in _tree(proc.pid)]
            peak["rss_sum_kb"] = max(peak["rss_sum_kb"],
                                     sum(m[0] for m in mems))
            peak["pss_sum_kb"] = max(peak["pss_sum_kb"],
                                     sum(m[1] for m in mems))
            peak["rss_max_process_kb"] = max(
                [peak["rss_max_process_kb"]] + [m[0] for m in mems])
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    rc = proc.wait()
    thread.join()
    wall = time.time() - start
    if rc != 0:
        raise RuntimeError(f"{cmd[:3]}... exited {rc}; see {log_path}")
    return {"wall_s": wall,
            "peak_rss_sum_mb": peak["rss_sum_kb"] / 1024,
            "peak_pss_sum_mb": peak["pss_sum_kb"] / 1024,
            "peak_rss_max_process_mb": peak["rss_max_process_kb"] / 1024}


# A child process prints its result as one line: RESULT_MARK + JSON.
RESULT_MARK = "BENCH_RESULT "


def read_result(log_path: str) -> dict:
    """The last RESULT_MARK line a child wrote to its log, as a dict."""
    with open(log_path) as f:
        lines = [line for line in f if line.startswith(RESULT_MARK)]
    if not lines:
        raise RuntimeError(f"no {RESULT_MARK!r} line in {log_path}")
    return json.loads(lines[-1][len(RESULT_MARK):])


def spread(values: list[float]) -> dict:
    """A figure over rounds: its median (what ratios use), min-max, all."""
    return {"median": statistics.median(values), "min": min(values),
            "max": max(values), "rounds": list(values)}


def write_result(name: str, value: dict) -> str:
    """Writes JSON atomically; a relative name goes under bench/results."""
    path = os.path.join(RESULTS, name)  # An absolute name stays as it is.
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path


def python() -> str:
    return sys.executable


def cpu_model() -> str:
    """The CPU's model name, for benchmark JSON."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pretraining_summary(pretrained_dir: str) -> dict:
    """The pretrained model's final eval and the flags it was trained with."""
    summary = {"dir": pretrained_dir}
    path = os.path.join(pretrained_dir, "best", "eval_results.txt")
    if os.path.exists(path):
        with open(path) as f:
            summary["eval"] = {k: float(v) for k, v in (
                line.split(" = ") for line in f.read().splitlines())}
    path = os.path.join(pretrained_dir, "flags.txt")
    if os.path.exists(path):
        keep = ("max_seq_length", "max_predictions_per_seq",
                "train_batch_size", "num_train_steps", "learning_rate",
                "optimizer")
        with open(path) as f:
            summary["flags"] = dict(
                line.strip().lstrip("-").split("=", 1) for line in f
                if line.strip().lstrip("-").split("=", 1)[0] in keep)
    return summary
