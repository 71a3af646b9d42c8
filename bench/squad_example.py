"""SQuAD v1.1 example on real data: does pretraining help? (not CI)

Fine-tunes run_squad.py on ../shared/data/squad/quoref_v1.1 (Quoref,
Wikipedia passages with coreference questions, SQuAD v1.1 layout) twice
with the same flags: from a small pretrained model (bench/
examples_pretrain.sh) and from random init. Reports the official dev EM/F1
of both, and of a lexical baseline computed here:

- `lexical_sentence`: the context sentence sharing the most (non-stopword,
  lowercased) words with the question, ties to the earliest;
- `lexical_span`: inside that sentence, the run of capitalised words that
  is not in the question and lies nearest to a shared word (Quoref answers
  are mostly names), else the whole sentence;
- `frequent_name` (a prior, not overlap): the capitalised word of the
  context, not in the question, that occurs most often (ties: first seen).

Both are scored with albert_tf.metrics.squad.evaluate_v1, as run_squad is.
The best checkpoint is picked on the same dev set (as run_squad does); the
last checkpoint's scores are reported beside it.

  nice -n 10 python3 bench/squad_example.py \
      --pretrained_dir=/tmp/albert_examples/pretrain
"""

import collections
import json
import os
import re
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import common  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from albert_tf.metrics import squad as squad_metrics  # noqa: E402

flags.DEFINE_string("pretrained_dir", "/tmp/albert_examples/pretrain",
                    "Output dir of a run_pretraining.py run, with "
                    "albert_config.json, data/spm.model and best/.")
flags.DEFINE_string("data_dir", os.path.join(
    ROOT, "..", "shared", "data", "squad", "quoref_v1.1"),
    "Holds train.json and dev.json (SQuAD v1.1 layout).")
flags.DEFINE_string("work_dir", "/tmp/albert_examples/squad", "Outputs.")
flags.DEFINE_integer("train_steps", 600, "Fine-tuning steps.")
flags.DEFINE_integer("train_batch_size", 32, "Batch size.")
flags.DEFINE_float("learning_rate", 3e-4, "AdamW learning rate.")
flags.DEFINE_integer("max_seq_length", 256, "Tokens per window.")
flags.DEFINE_integer("doc_stride", 128, "Window stride.")
flags.DEFINE_integer("max_query_length", 64, "Question tokens kept.")
flags.DEFINE_integer("num_evals", 2, "Checkpoints evaluated after step 0 "
                     "(every train_steps / num_evals steps).")
flags.DEFINE_list("runs", ["pretrained", "random"], "Which fine-tunings.")
flags.DEFINE_string("output", os.path.join(ROOT, "bench", "results",
                                           "squad_example.json"),
                    "Where to write the JSON report.")
FLAGS = flags.FLAGS

STOPWORDS = frozenset("""
a an the of to in on at by for from with and or but as is are was were be
been being has have had do does did that this these those it its he she
him her his hers they them their theirs who whom whose what which when
where why how i you we us our your my me not no name full first last
""".split())
_WORD = re.compile(r"\w+")
# A sentence ends at . ! ? (optionally followed by a closing quote or
# bracket) before whitespace.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_CAPITALISED_RUN = re.compile(r"[A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*)*")


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def sentences(context: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the context's sentences."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(context):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(context)))
    return [(s, e) for s, e in spans if context[s:e].strip()]


def best_sentence(question: str, context: str) -> tuple[int, int]:
    """The sentence with the most question words (ties: the earliest)."""
    query = set(_words(question))
    best, best_score = None, -1
    for start, end in sentences(context):
        score = len(query & set(_words(context[start:end])))
        if score > best_score:
            best, best_score = (start, end), score
    return best


def best_span(question: str, sentence: str) -> str:
    """The capitalised run not in the question nearest a shared word."""
    query = set(_words(question))
    query_all = set(_WORD.findall(question.lower()))
    anchors = [m.start() for m in _WORD.finditer(sentence)
               if m.group().lower() in query]
    best, best_distance = None, None
    for match in _CAPITALISED_RUN.finditer(sentence):
        text = match.group().rstrip(".")
        words = _WORD.findall(text.lower())
        # Skip runs that only repeat the question or are a capitalised
        # stopword ("The", "He").
        if not words or all(w in query_all or w in STOPWORDS for w in words):
            continue
        distance = min((abs(match.start() - a) for a in anchors), default=0)
        if best_distance is None or distance < best_distance:
            best, best_distance = text, distance
    return best if best is not None else sentence.strip()


def frequent_name(question: str, context: str) -> str:
    """The most frequent capitalised context word not in the question."""
    query_all = set(_WORD.findall(question.lower()))
    counts = collections.Counter()
    for match in _CAPITALISED_RUN.finditer(context):
        for word in match.group().split():
            word = word.strip(".,'")
            if word and word.lower() not in query_all | STOPWORDS:
                counts[word] += 1
    return counts.most_common(1)[0][0] if counts else ""


def lexical_baselines(dataset: list) -> dict:
    """{name: {exact_match, f1, ...}} of the two lexical baselines."""
    sentence_predictions, span_predictions, name_predictions = {}, {}, {}
    contains = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                start, end = best_sentence(qa["question"], context)
                sentence = context[start:end]
                sentence_predictions[qa["id"]] = sentence.strip()
                span_predictions[qa["id"]] = best_span(qa["question"],
                                                       sentence)
                name_predictions[qa["id"]] = frequent_name(qa["question"],
                                                           context)
                total += 1
                contains += any(
                    start <= a["answer_start"] and
                    a["answer_start"] + len(a["text"]) <= end
                    for a in qa["answers"])
    sentence_scores = squad_metrics.evaluate_v1(dataset, sentence_predictions)
    sentence_scores["fraction_with_gold_answer_inside"] = contains / total
    return {"lexical_sentence": sentence_scores,
            "lexical_span": squad_metrics.evaluate_v1(dataset,
                                                      span_predictions),
            "frequent_name": squad_metrics.evaluate_v1(dataset,
                                                       name_predictions)}


def _finetune(name: str, init_checkpoint: str | None, num_train: int
              ) -> dict:
    out = os.path.join(FLAGS.work_dir, name)
    pretrained = FLAGS.pretrained_dir
    # run_squad counts steps from examples * epochs / batch (as the
    # original); the + 0.5 keeps int() from rounding one step away.
    epochs = (FLAGS.train_steps + 0.5) * FLAGS.train_batch_size / num_train
    every = max(FLAGS.train_steps // max(FLAGS.num_evals, 1), 1)
    args = [sys.executable, os.path.join(ROOT, "run_squad.py"),
            f"--train_file={FLAGS.data_dir}/train.json",
            f"--predict_file={FLAGS.data_dir}/dev.json",
            f"--albert_config_file={pretrained}/albert_config.json",
            f"--spm_model_file={pretrained}/data/spm.model",
            f"--output_dir={out}",
            # One feature cache for both runs (same tokenizer, settings).
            f"--train_feature_file={FLAGS.work_dir}/cache/train.tf_record",
            f"--predict_feature_file={FLAGS.work_dir}/cache/dev.tf_record",
            f"--predict_feature_left_file={FLAGS.work_dir}/cache/"
            "dev_left.json",
            f"--max_seq_length={FLAGS.max_seq_length}",
            f"--doc_stride={FLAGS.doc_stride}",
            f"--max_query_length={FLAGS.max_query_length}",
            f"--train_batch_size={FLAGS.train_batch_size}",
            "--predict_batch_size=32", f"--num_train_epochs={epochs!r}",
            "--warmup_proportion=0.1",
            f"--learning_rate={FLAGS.learning_rate}",
            f"--save_checkpoints_steps={every}",
            f"--iterations_per_loop={min(every, 50)}",
            "--log_every_n_steps=50", "--do_train", "--do_predict",
            "--seed=1"]
    if init_checkpoint:
        args.append(f"--init_checkpoint={init_checkpoint}")
    logging.info("Running %s", " ".join(args))
    start = time.time()
    subprocess.run(args, check=True)
    seconds = time.time() - start
    with open(os.path.join(out, "eval_history.json")) as f:
        history = json.load(f)
    by_step = sorted(history.values(), key=lambda r: r["global_step"])
    with open(os.path.join(out, "best", "eval_results.txt")) as f:
        best = dict(line.split(" = ") for line in f.read().splitlines())
    return {"best": {"exact_match": float(best["exact_match"]),
                     "f1": float(best["f1"]),
                     "global_step": int(float(best["global_step"]))},
            "last": {k: by_step[-1][k] for k in
                     ("exact_match", "f1", "global_step")},
            "by_step": [{k: r[k] for k in ("global_step", "exact_match",
                                           "f1")} for r in by_step],
            "wall_seconds": seconds,
            "command": " ".join(args)}


def main(argv):
    del argv  # Unused.
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    with open(os.path.join(FLAGS.data_dir, "dev.json")) as f:
        dev = json.load(f)["data"]
    with open(os.path.join(FLAGS.data_dir, "train.json")) as f:
        train = json.load(f)["data"]
    num_train = sum(len(p["qas"]) for a in train for p in a["paragraphs"])
    num_dev = sum(len(p["qas"]) for a in dev for p in a["paragraphs"])
    start = time.time()
    report = {"data": {"train_file": f"{FLAGS.data_dir}/train.json",
                       "dev_file": f"{FLAGS.data_dir}/dev.json",
                       "train_questions": num_train,
                       "dev_questions": num_dev},
              "baselines": lexical_baselines(dev)}
    report["baselines"]["wall_seconds"] = time.time() - start
    inits = {"pretrained": os.path.join(FLAGS.pretrained_dir, "best"),
             "random": None}
    for name in FLAGS.runs:
        report[f"from_{name}"] = _finetune(name, inits[name], num_train)
    report["pretraining"] = common.pretraining_summary(FLAGS.pretrained_dir)
    report["settings"] = {
        **{k: FLAGS[k].value for k in (
            "pretrained_dir", "train_steps", "train_batch_size",
            "learning_rate", "max_seq_length", "doc_stride",
            "max_query_length", "num_evals")},
        "optimizer": "adamw", "warmup_proportion": 0.1, "seed": 1,
        "train_subset": "all train questions; train_steps * batch / "
                        "questions passes over the questions (each "
                        "question has one or more windows)"}
    report["machine"] = {"cpu": common.cpu_model(), "cpu_count": os.cpu_count()}
    report["command"] = " ".join([os.path.relpath(sys.argv[0], ROOT)]
                                 + sys.argv[1:])
    os.makedirs(os.path.dirname(FLAGS.output), exist_ok=True)
    tmp = FLAGS.output + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, FLAGS.output)
    logging.info("%s", json.dumps(report, indent=2))


if __name__ == "__main__":
    app.run(main)
