"""Mutation testing of albert_tf's pure-Python core with mutmut.

    python3 -m pip install -r requirements-mutation.txt
    nice -n 15 python3 tools/mutation/run.py                 # every module
    nice -n 15 python3 tools/mutation/run.py squad_metrics cache

For each module named in tools/mutation/modules.json this copies albert_tf/
and tests/ into a scratch directory (--work_dir; the checkout is never
touched), writes a pyproject.toml there whose [tool.mutmut] mutates only
that module and selects only its test files, and runs `mutmut run`.
mutmut first runs those tests once to learn which test reaches which
function, then runs, for each mutant, only the tests that reach the
mutated function, each mutant in a process forked from a server that has
already imported TensorFlow and collected the tests (forkserver
isolation), so a mutant costs its tests' run time, not an import.

The per-module counts (and the survivors with their diffs) are merged into
tools/mutation/summary.json; a survivor with an entry in
tools/mutation/survivors.json (mutant name -> why it is equivalent or
harmless) carries that reason, one without it is listed as unexplained.
Results are for the code at the time of the run: line numbers and mutant
numbers change when the module changes.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MODULES = HERE / "modules.json"
SUMMARY = HERE / "summary.json"
SURVIVORS = HERE / "survivors.json"

# mutmut's exit codes (mutmut/stats.py) folded into the summary's classes.
KILLED = {1, 3}
SURVIVED = {0}
TIMEOUT = {36, -24, 24, 152, 255}
NO_TESTS = {5, 33}

PYPROJECT = """\
[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "-m 'not slow' -p no:cacheprovider -p no:xdist"
markers = [
  "slow: slow",
  "jax: jax backend",
  "interop: HF interop",
]
filterwarnings = ["ignore::DeprecationWarning"]

[tool.mutmut]
source_paths = ["albert_tf"]
only_mutate = {only_mutate}
pytest_add_cli_args_test_selection = {tests}
process_isolation = "forkserver"
mutate_only_covered_lines = false
timeout_multiplier = 10.0
timeout_constant = 20.0
"""


def _classify(code) -> str:
    if code is None:
        return "not_checked"
    if code in KILLED:
        return "killed"
    if code in SURVIVED:
        return "survived"
    if code in TIMEOUT:
        return "timeout"
    if code in NO_TESTS:
        return "no_tests"
    return "suspicious"


def _workspace(work_dir: pathlib.Path, name: str, spec: dict
               ) -> pathlib.Path:
    ws = work_dir / name
    if ws.exists():
        shutil.rmtree(ws)
    ws.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "albert_tf", ws / "albert_tf", ignore=ignore)
    shutil.copytree(ROOT / "tests", ws / "tests", ignore=ignore)
    (ws / "pyproject.toml").write_text(PYPROJECT.format(
        only_mutate=json.dumps([spec["path"]]),
        tests=json.dumps(spec["tests"])))
    return ws


def _mutmut(ws: pathlib.Path, args: list[str], timeout: float,
            log=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=ws,
                          env=env, timeout=timeout, text=True,
                          stdout=log or subprocess.PIPE,
                          stderr=subprocess.STDOUT)


def _codes(ws: pathlib.Path, spec: dict) -> dict:
    """mutant name -> mutmut exit code (None: not run) for the module."""
    meta_path = ws / "mutants" / (spec["path"] + ".meta")
    if not meta_path.exists():
        raise RuntimeError(f"{spec['path']}: mutmut wrote no results; see "
                           f"{ws / 'mutmut.log'}")
    codes = json.loads(meta_path.read_text())["exit_code_by_key"]
    patterns = spec.get("functions")
    if patterns:
        codes = {k: v for k, v in codes.items()
                 if any(fnmatch.fnmatch(k, p) for p in patterns)}
    return codes


def _diff(ws: pathlib.Path, mutant: str) -> str:
    out = _mutmut(ws, ["show", mutant], timeout=120).stdout
    lines = [line for line in out.splitlines()
             if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return "\n".join(lines)


def run_module(name: str, spec: dict, work_dir: pathlib.Path,
               max_children: int, timeout: float,
               previous: dict | None = None, sample: float = 1.0,
               seed: int = 0) -> dict:
    """previous: this module's last result; then only its survivors are
    run again (against the current tests) and its killed ones are kept.
    Only valid while the module's source is unchanged (mutant names are
    numbered per function)."""
    ws = _workspace(work_dir, name, spec)
    args = ["run", "--max-children", str(max_children)]
    patterns = spec.get("functions")
    selection = list(patterns or [])
    started = time.time()
    sampled = None
    if previous is not None:
        selection = [s["mutant"] for s in previous["survivors"]]
    elif sample < 1.0:
        # mutmut generates every mutant before it filters: a run for a
        # name that matches none leaves the full list in the .meta file.
        with open(ws / "mutmut-list.log", "w") as log:
            _mutmut(ws, args + ["__no_such_mutant__"], timeout, log=log)
        names = sorted(_codes(ws, spec))
        sampled = sorted(random.Random(f"{name}:{seed}").sample(
            names, max(1, round(sample * len(names)))))
        selection = sampled
    with open(ws / "mutmut.log", "w") as log:
        try:
            if previous is None or selection:
                _mutmut(ws, args + selection, timeout, log=log)
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
    codes = _codes(ws, spec)
    total_mutants = len(codes)
    if sampled is not None:
        codes = {k: codes[k] for k in sampled}
    counts = {c: 0 for c in ("killed", "survived", "timeout", "no_tests",
                             "suspicious", "not_checked")}
    mutants = len(codes)
    if previous is not None:
        if total_mutants != previous["mutants_in_module"]:
            raise RuntimeError(
                f"{name}: {total_mutants} mutants now, "
                f"{previous['mutants_in_module']} before: the module "
                "changed; run it in full")
        # Keep the earlier verdicts of everything but the survivors.
        mutants = previous["mutants"]
        for key in counts:
            counts[key] = previous[key]
        for survivor in previous["survivors"]:
            counts[survivor["status"]] -= 1
        codes = {k: codes[k] for k in selection}
        sampled = selection if previous["sample"] else None
        # A survivor the rerun did not reach (cut short) keeps its verdict.
        earlier = {s["mutant"]: s for s in previous["survivors"]}
    survivors = []
    for mutant, code in sorted(codes.items()):
        kind = _classify(code)
        if kind == "not_checked" and previous is not None:
            counts[earlier[mutant]["status"]] += 1
            survivors.append(dict(earlier[mutant], rerun=False))
            continue
        counts[kind] += 1
        if kind in ("survived", "no_tests", "suspicious"):
            survivors.append({"mutant": mutant, "status": kind,
                              "diff": _diff(ws, mutant)})
    checked = mutants - counts["not_checked"]
    result = {
        "path": spec["path"], "tests": spec["tests"],
        "functions": patterns, "mutants": mutants,
        "mutants_in_module": total_mutants,
        "sample": (previous["sample"] if previous is not None else
                   None if sampled is None else {"fraction": sample,
                                                 "seed": seed}),
        **counts,
        "killed_fraction": round(
            (counts["killed"] + counts["timeout"]) / checked, 4)
        if checked else None,
        "finished": finished and counts["not_checked"] == 0,
        "seconds": round(time.time() - started) + (
            previous["seconds"] if previous else 0),
        "survivors_rerun": previous is not None,
        "date": datetime.date.today().isoformat(),
        "survivors": survivors,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*",
                        help="modules.json keys (default: all)")
    parser.add_argument("--work_dir", default="/tmp/albert_tf_mutation")
    parser.add_argument("--max_children", type=int, default=1,
                        help="mutants run at once (the machine has 2 "
                        "cores shared with others: keep 1)")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds per module before it is cut short")
    parser.add_argument("--sample", type=float, default=1.0,
                        help="run this fraction of each module's mutants, "
                        "drawn with --seed (1.0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modules_file", default=str(MODULES),
                        help="the module -> tests map (modules.json)")
    parser.add_argument("--summary", default=str(SUMMARY),
                        help="the JSON summary to merge results into")
    parser.add_argument("--rerun_survivors", action="store_true",
                        help="run only the survivors in summary.json "
                        "again (after adding tests; the module's source "
                        "must be unchanged)")
    parser.add_argument("--summarize_only", action="store_true",
                        help="run nothing; rewrite the summary with the "
                        "current survivors.json reasons")
    args = parser.parse_args()
    modules = json.loads(pathlib.Path(args.modules_file).read_text())
    modules.pop("_comment", None)
    if args.summarize_only:
        path = pathlib.Path(args.summary)
        _write_summary(_read_summary(path), path)
        return
    names = args.modules or list(modules)
    unknown = sorted(set(names) - set(modules))
    if unknown:
        parser.error(f"unknown modules {unknown}; known: {list(modules)}")
    summary_path = pathlib.Path(args.summary)
    reasons = (json.loads(SURVIVORS.read_text())
               if SURVIVORS.exists() else {})
    for name in names:
        print(f"== {name}: mutating {modules[name]['path']} against "
              f"{' '.join(modules[name]['tests'])}", flush=True)
        previous = (_read_summary(summary_path)["modules"].get(name)
                    if args.rerun_survivors else None)
        result = run_module(name, modules[name],
                            pathlib.Path(args.work_dir), args.max_children,
                            args.timeout, previous, args.sample, args.seed)
        for survivor in result["survivors"]:
            survivor["reason"] = reasons.get(survivor["mutant"],
                                             "UNEXPLAINED")
        summary = _read_summary(summary_path)  # Another run may have
        summary["modules"][name] = result      # added modules meanwhile.
        print(f"   {result['mutants']} mutants: {result['killed']} killed, "
              f"{result['survived']} survived, {result['timeout']} timed "
              f"out, {result['no_tests']} without tests; killed "
              f"{result['killed_fraction']} ({result['seconds']} s)",
              flush=True)
        _write_summary(summary, summary_path)


def _read_summary(path: pathlib.Path) -> dict:
    summary = json.loads(path.read_text()) if path.exists() else {}
    summary.setdefault("modules", {})
    return summary


def _write_summary(summary: dict, path: pathlib.Path) -> None:
    modules = summary["modules"]
    reasons = (json.loads(SURVIVORS.read_text())
               if SURVIVORS.exists() else {})
    for m in modules.values():
        for survivor in m["survivors"]:
            survivor["reason"] = reasons.get(survivor["mutant"],
                                             "UNEXPLAINED")
        m["explained"] = sum(s["reason"] != "UNEXPLAINED"
                             for s in m["survivors"])
        checked = m["mutants"] - m["not_checked"]
        m["killed_or_explained_fraction"] = round(
            (m["killed"] + m["timeout"] + m["explained"]) / checked,
            4) if checked else None
    total = {k: sum(m[k] for m in modules.values())
             for k in ("mutants", "killed", "survived", "timeout",
                       "no_tests", "suspicious", "not_checked")}
    checked = total["mutants"] - total["not_checked"]
    total["killed_fraction"] = round(
        (total["killed"] + total["timeout"]) / checked, 4) if checked else None
    summary["total"] = total
    summary["tool"] = "mutmut " + _mutmut_version()
    summary["unexplained_survivors"] = sum(
        s["reason"] == "UNEXPLAINED" for m in modules.values()
        for s in m["survivors"])
    path.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")


def _mutmut_version() -> str:
    try:
        from importlib.metadata import version
        return version("mutmut")
    except Exception:  # noqa: BLE001 (only a label)
        return "?"


if __name__ == "__main__":
    main()
