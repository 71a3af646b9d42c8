"""SQuAD feature conversion: examples/s with 1 and 2 workers, peak RSS.

Converts ../shared/data/squad/quoref_v1.1 (train: shuffled, training
features; dev: predict features + JSON bookkeeping) with the 30k vocab of
train_spm on the shared corpus (bench/common.vocab_30k), each run in a
fresh process sampled for memory. With a google-research/albert mirror it
also runs the original `squad_utils.convert_examples_to_features` on the
first --parity_examples dev and train examples and counts the features
that differ. Writes bench/results/squad_features.json.

  nice python3 bench/bench_squad_features.py
"""

from __future__ import annotations

import ast
import os
import random
import subprocess
import sys
import time
import types

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
from bench import common  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("squad_dir", os.path.join(
    os.path.dirname(common.DEFAULT_CORPUS), "squad", "quoref_v1.1"),
    "Directory with train.json and dev.json (SQuAD v1.1 layout).")
flags.DEFINE_string("corpus_dir", common.DEFAULT_CORPUS, "Text corpus.")
flags.DEFINE_string("work_dir", "/tmp/albert_tf_bench", "Scratch space.")
flags.DEFINE_string("original_repo", common.DEFAULT_ORIGINAL,
                    "google-research/albert checkout or bare mirror.")
flags.DEFINE_integer("parity_examples", 300, "Examples per split compared "
                     "with the original (0: skip).")
flags.DEFINE_enum("mode", "bench", ["bench", "convert"], "Internal.")
flags.DEFINE_string("spm_model_file", None, "Internal (convert mode).")
flags.DEFINE_integer("num_workers", 1, "Internal (convert mode).")
flags.DEFINE_string("split", "train", "Internal (convert mode).")


def convert_once() -> None:
    """One conversion in this process (run by the bench in a child)."""
    from albert_tf.data import squad
    from albert_tf.tokenization import FullTokenizer
    tokenizer = FullTokenizer(spm_model_file=FLAGS.spm_model_file)
    options = squad.FeatureOptions()  # 384 / 128 / 64, lowercase.
    out = os.path.join(FLAGS.work_dir, f"squad_{FLAGS.split}_"
                       f"{FLAGS.num_workers}")
    path = os.path.join(FLAGS.squad_dir, f"{FLAGS.split}.json")
    training = FLAGS.split == "train"
    start = time.time()
    examples = squad.read_squad_examples(path, is_training=training)
    if training:
        examples = squad.shuffle_training_examples(examples)
    stats = squad.write_features(
        examples, tokenizer, options, training, out + ".tfrecord",
        None if training else out + ".json", num_workers=FLAGS.num_workers)
    print(f"RESULT {len(examples)} {stats.num_features} "
          f"{time.time() - start:.3f}", flush=True)


def original_module(work_dir: str):
    """squad_utils' data functions from the original, run under stubs."""
    root = common.original_package(FLAGS.original_repo, work_dir)
    if root is None:
        return None
    source = subprocess.run(
        ["git", "-C", FLAGS.original_repo, "show", "HEAD:squad_utils.py"],
        check=True, capture_output=True, text=True).stdout
    wanted = {"SquadExample", "InputFeatures", "read_squad_examples",
              "_convert_index", "convert_examples_to_features",
              "_check_is_max_context"}
    tree = ast.parse(source)
    tree.body = [n for n in tree.body if getattr(n, "name", "") in wanted]
    exec(common.ORIGINAL_PRELUDE)
    sys.path.insert(0, root)
    import numpy as np
    import six
    from albert import tokenization  # The original, from root.

    class _Quiet:
        @staticmethod
        def info(*args, **kwargs):
            del args, kwargs

    class _Gfile:
        Open = staticmethod(open)

    namespace = {"collections": __import__("collections"),
                 "json": __import__("json"), "np": np,
                 "six": six, "tokenization": tokenization,
                 "tf": types.SimpleNamespace(logging=_Quiet, gfile=_Gfile)}
    exec(compile(tree, "squad_utils (original)", "exec"), namespace)
    return types.SimpleNamespace(**namespace)


def parity(spm_model_file: str) -> dict:
    """Features of albert_tf vs the original on the first N examples."""
    original = original_module(FLAGS.work_dir)
    if original is None or FLAGS.parity_examples <= 0:
        return {"skipped": "no original checkout"}
    from albert_tf.data import squad
    from albert_tf.tokenization import FullTokenizer
    tokenizer = FullTokenizer(spm_model_file=spm_model_file)
    out = {}
    for split, training in (("dev", False), ("train", True)):
        path = os.path.join(FLAGS.squad_dir, f"{split}.json")
        theirs_ex = original.read_squad_examples(path, training)
        ours_ex = squad.read_squad_examples(path, training)
        if training:
            random.Random(12345).shuffle(theirs_ex)
            ours_ex = squad.shuffle_training_examples(ours_ex)
        n = FLAGS.parity_examples
        theirs = []
        original.convert_examples_to_features(
            theirs_ex[:n], tokenizer, 384, 128, 64, training, theirs.append,
            True)
        ours = list(squad.convert_examples_to_features(
            ours_ex[:n], tokenizer, squad.FeatureOptions(), training))
        differ = 0
        for a, b in zip(theirs, ours):
            same = (a.unique_id == b.unique_id and a.input_ids == b.input_ids
                    and a.input_mask == b.input_mask
                    and a.segment_ids == b.segment_ids
                    and a.p_mask == b.p_mask
                    and a.tok_start_to_orig_index == b.tok_start_to_orig_index
                    and a.tok_end_to_orig_index == b.tok_end_to_orig_index
                    and a.token_is_max_context == {
                        b.doc_offset + i: v
                        for i, v in enumerate(b.token_is_max_context)})
            if training:
                same = same and (a.start_position, a.end_position,
                                 bool(a.is_impossible)) == (
                    b.start_position, b.end_position, b.is_impossible)
            differ += not same
        out[split] = {"examples": n, "features_original": len(theirs),
                      "features_albert_tf": len(ours),
                      "features_differing": differ + abs(len(theirs) -
                                                         len(ours))}
    return out


def main(argv):
    del argv  # Unused.
    if FLAGS.mode == "convert":
        convert_once()
        return
    if not os.path.exists(os.path.join(FLAGS.squad_dir, "train.json")):
        print(f"skipped: {FLAGS.squad_dir} not found")
        return
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    model, _ = common.vocab_30k(common.corpus_files(FLAGS.corpus_dir),
                                FLAGS.work_dir)
    runs = {}
    for split in ("train", "dev"):
        for workers in (1, 2):
            log = os.path.join(FLAGS.work_dir,
                               f"squad_{split}_{workers}.log")
            measured = common.run_measured(
                [common.python(), os.path.abspath(__file__),
                 "--mode=convert", f"--split={split}",
                 f"--num_workers={workers}", f"--spm_model_file={model}",
                 f"--squad_dir={FLAGS.squad_dir}",
                 f"--work_dir={FLAGS.work_dir}"], log_path=log)
            with open(log) as f:
                line = [x for x in f if x.startswith("RESULT")][-1]
            num_examples, num_features, seconds = line.split()[1:]
            measured.update(
                examples=int(num_examples), features=int(num_features),
                convert_s=float(seconds),
                examples_per_s=int(num_examples) / float(seconds))
            runs[f"{split}_workers{workers}"] = measured
        same = [open(os.path.join(FLAGS.work_dir,
                                  f"squad_{split}_{w}.tfrecord"),
                     "rb").read() for w in (1, 2)]
        runs[f"{split}_workers_identical"] = same[0] == same[1]
    result = {"data": FLAGS.squad_dir, "spm_model": model,
              "settings": {"max_seq_length": 384, "doc_stride": 128,
                           "max_query_length": 64, "do_lower_case": True},
              "cpu_count": os.cpu_count(), "runs": runs,
              "parity_with_original": parity(model),
              "note": "convert_s covers reading, shuffling (train), "
                      "conversion and writing; wall_s adds interpreter and "
                      "TensorFlow start-up. Peak memory is the sampled "
                      "process tree."}
    print(common.write_result("squad_features.json", result))


if __name__ == "__main__":
    app.run(main)
