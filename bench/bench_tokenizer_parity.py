"""In-graph vs Python tokenizer agreement on the real corpus (not a test).

  nice python bench/bench_tokenizer_parity.py

For every non-blank corpus line, compares the ids of
  python:   FullTokenizer.tokenize(preprocess_text(line, lower=True))
  in_graph: InGraphTokenizer(line)          (goal: >= 99.9% of lines equal)
  original: google-research/albert tokenization.py, unmodified, under
            tf.compat.v1 (when --original_repo exists; goal: 100%)
with the 30k vocab of bench_pretraining_data.py (trained if missing).
Results, with up to 20 mismatching lines: bench/results/tokenizer_parity.json.
"""

from __future__ import annotations

import os
import sys
import time
import types

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
from bench import common  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("corpus_dir", common.DEFAULT_CORPUS, "Text corpus.")
flags.DEFINE_string("work_dir", "/tmp/albert_tf_bench", "Scratch space.")
flags.DEFINE_string("original_repo", common.DEFAULT_ORIGINAL,
                    "google-research/albert checkout or bare mirror.")
flags.DEFINE_integer("batch_size", 2048, "Lines per in-graph call.")


def _compare(name, reference, candidate, lines):
    mismatches = [i for i, (a, b) in enumerate(zip(reference, candidate))
                  if a != b]
    return {
        "lines": len(lines),
        "mismatched_lines": len(mismatches),
        "agreement": 1 - len(mismatches) / max(len(lines), 1),
        "examples": [{"line": lines[i], "python": reference[i],
                      name: candidate[i]} for i in mismatches[:20]],
    }


def main(argv):
    del argv  # Unused.
    files = common.corpus_files(FLAGS.corpus_dir)
    if not files:
        logging.warning("No corpus at %s: skipping", FLAGS.corpus_dir)
        common.write_result("tokenizer_parity.json",
                            {"skipped": f"no corpus at {FLAGS.corpus_dir}"})
        return
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    model, _ = common.vocab_30k(files, FLAGS.work_dir)
    lines = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            lines.extend(line.rstrip("\n") for line in f if line.strip())

    import tensorflow as tf
    from albert_tf.tokenization import FullTokenizer
    from albert_tf.tokenization import InGraphTokenizer
    from albert_tf.tokenization import preprocess_text

    tokenizer = FullTokenizer(spm_model_file=model)
    start = time.time()
    python_ids = [tokenizer.convert_tokens_to_ids(
        tokenizer.tokenize(preprocess_text(line, lower=True)))
        for line in lines]
    python_s = time.time() - start

    in_graph = InGraphTokenizer.from_file(model, do_lower_case=True)
    start = time.time()
    graph_ids = []
    for i in range(0, len(lines), FLAGS.batch_size):
        graph_ids.extend(
            in_graph(tf.constant(lines[i:i + FLAGS.batch_size])).to_list())
    graph_s = time.time() - start
    result = {"spm_model": model, "corpus_files": files,
              "python_lines_per_s": len(lines) / python_s,
              "in_graph_lines_per_s": len(lines) / graph_s,
              "in_graph": _compare("in_graph", python_ids, graph_ids, lines)}

    root = common.original_package(FLAGS.original_repo, FLAGS.work_dir)
    if root:
        sys.modules.setdefault("tensorflow_hub",
                               types.ModuleType("tensorflow_hub"))
        sys.path.insert(0, root)
        from albert import tokenization as original  # noqa: E402
        orig_tok = original.FullTokenizer(None, True, model)
        orig_ids = [[orig_tok.sp_model.PieceToId(original.printable_text(p))
                     for p in orig_tok.tokenize(
                         original.preprocess_text(line, lower=True))]
                    for line in lines]
        result["original"] = _compare("original", python_ids, orig_ids,
                                      lines)
    path = common.write_result("tokenizer_parity.json", result)
    logging.info("in-graph agreement %.5f (%d mismatches of %d); %s",
                 result["in_graph"]["agreement"],
                 result["in_graph"]["mismatched_lines"], len(lines),
                 f"original agreement {result['original']['agreement']:.5f}"
                 if "original" in result else "original not run")
    logging.info("Wrote %s", path)


if __name__ == "__main__":
    app.run(main)
