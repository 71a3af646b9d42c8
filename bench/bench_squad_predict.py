"""SQuAD prediction throughput at max_seq_length 384 (not CI).

Two contenders, the same fine-tuned model (a run_squad output_dir, by
default bench/squad_example.py's pretrained run) and the same questions (a
fixed prefix of the Quoref dev set):

- `runner`: what run_squad.py --do_predict does for each checkpoint,
  tasks.squad.SquadTask.evaluate: Trainer.predict over the cached features
  (feature conversion is done once per run and cached, so it is not
  timed), then squad_metrics.predict_v1 (n-best, span choice) and
  evaluate_v1. Reported as features/s and questions/s, with the model and
  postprocessing parts split.
- `serve_qa`: the SavedModel of export_squad on raw questions + contexts
  (tokenization, windows, span choice all in the graph), called with
  `--serve_batch_size` questions per call. Reported as questions/s and
  features/s (the windows the Python path makes for the same questions;
  serve_qa makes the same windows).

Each measurement runs in its own fresh process; rounds interleave the
contenders. Within a process one untimed pass warms up (tracing), then one
timed pass. Medians and min/max over rounds are written to
bench/results/squad_predict.json with the CPU model and thread settings.

  nice -n 10 python3 bench/bench_squad_predict.py \
      --run_dir=/tmp/albert_examples/squad/pretrained
"""

import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import common  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string("run_dir", "/tmp/albert_examples/squad/pretrained",
                    "A run_squad.py output_dir (v1) with best/.")
flags.DEFINE_string("pretrained_dir", "/tmp/albert_examples/pretrain",
                    "Holds albert_config.json and data/spm.model.")
flags.DEFINE_string("predict_file", os.path.join(
    ROOT, "..", "shared", "data", "squad", "quoref_v1.1", "dev.json"),
    "SQuAD v1.1 json; its first --num_questions questions are used.")
flags.DEFINE_integer("num_questions", 200, "Questions predicted per pass.")
flags.DEFINE_string("work_dir", "/tmp/albert_examples/squad_predict",
                    "Subset, feature cache and the export.")
flags.DEFINE_integer("max_seq_length", 384, "Tokens per window.")
flags.DEFINE_integer("doc_stride", 128, "Window stride.")
flags.DEFINE_integer("max_query_length", 64, "Question tokens kept.")
flags.DEFINE_integer("predict_batch_size", 32, "Runner: features/batch.")
flags.DEFINE_integer("serve_batch_size", 16, "serve_qa: questions/call.")
flags.DEFINE_integer("rounds", 3, "Interleaved rounds.")
flags.DEFINE_enum("mode", "driver", ["driver", "setup", "runner",
                                     "serve_qa"], "Internal: what this "
                  "process does.")
flags.DEFINE_string("output", os.path.join(ROOT, "bench", "results",
                                           "squad_predict.json"),
                    "Where to write the JSON report.")
FLAGS = flags.FLAGS


def _paths() -> dict:
    w = FLAGS.work_dir
    return {"subset": os.path.join(w, "subset.json"),
            "features": os.path.join(w, "predict.tf_record"),
            "left": os.path.join(w, "predict_left.json"),
            "export": os.path.join(w, "export"),
            "runner_predictions": os.path.join(w, "runner_predictions.json"),
            "serve_predictions": os.path.join(w, "serve_predictions.json")}


def _task():
    """The SquadTask run_squad.py builds for --do_predict at these flags."""
    from albert_tf import optimization
    from albert_tf.config import AlbertConfig
    from albert_tf.data import squad
    from albert_tf.tasks import squad as squad_task

    config = AlbertConfig.from_json_file(
        os.path.join(FLAGS.pretrained_dir, "albert_config.json"))
    p = _paths()
    task = squad_task.SquadTask(
        config, optimization.OptimizerConfig(num_train_steps=1,
                                             num_warmup_steps=0),
        version_2_with_negative=False,
        spm_model_file=os.path.join(FLAGS.pretrained_dir, "data",
                                    "spm.model"),
        vocab_file=None, options=squad.FeatureOptions(
            max_seq_length=FLAGS.max_seq_length,
            doc_stride=FLAGS.doc_stride,
            max_query_length=FLAGS.max_query_length),
        prediction=squad_task.PredictionConfig(), train_file=None,
        predict_file=p["subset"], train_feature_file="",
        predict_feature_file=p["features"],
        predict_feature_left_file=p["left"],
        predict_batch_size=FLAGS.predict_batch_size)
    return config, task


def _trainer(config, task):
    import tensorflow as tf
    from albert_tf import distribute
    from albert_tf import training

    trainer = training.Trainer(task, distribute.get_strategy("one_device"),
                               training.RunConfig(
                                   output_dir=FLAGS.work_dir,
                                   num_train_steps=1, train_batch_size=1))
    checkpoint = tf.train.latest_checkpoint(os.path.join(FLAGS.run_dir,
                                                         "best"))
    if checkpoint is None:
        raise FileNotFoundError(f"--run_dir={FLAGS.run_dir}: no checkpoint "
                                f"in best/ (run bench/squad_example.py)")
    trainer.restore(checkpoint)
    return trainer, checkpoint


def _threads() -> dict:
    import tensorflow as tf
    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            "note": "0 = TensorFlow's default (all cores the process sees)",
            "affinity_cpus": len(os.sched_getaffinity(0))}


def setup() -> dict:
    """Subset json, cached features and the serve_qa export (untimed)."""
    p = _paths()
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    with open(FLAGS.predict_file) as f:
        dataset = json.load(f)
    kept, n = [], 0
    for article in dataset["data"]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            qas = paragraph["qas"][:max(FLAGS.num_questions - n, 0)]
            n += len(qas)
            if qas:
                paragraphs.append({**paragraph, "qas": qas})
        if paragraphs:
            kept.append({**article, "paragraphs": paragraphs})
    if n < FLAGS.num_questions:
        raise ValueError(f"{FLAGS.predict_file} has {n} questions, "
                         f"--num_questions={FLAGS.num_questions}")
    tmp = p["subset"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"version": "1.1", "data": kept}, f)
    os.replace(tmp, p["subset"])
    config, task = _task()
    task.prepare(False, True, False)
    trainer, checkpoint = _trainer(config, task)
    if not os.path.exists(os.path.join(p["export"], "saved_model.pb")):
        task.export(trainer.model, p["export"])
    return {"questions": n, "features": len(task._eval_features),
            "checkpoint": checkpoint}


def run_runner() -> dict:
    """One fresh process: SquadTask.evaluate (warm-up, then timed)."""
    start = time.perf_counter()
    config, task = _task()
    task.prepare(False, True, False)  # A cache hit: features exist.
    trainer, _ = _trainer(config, task)
    setup_s = time.perf_counter() - start
    model_s = []
    predict = trainer.predict

    def timed_predict(*args, **kwargs):
        t = time.perf_counter()
        out = predict(*args, **kwargs)
        model_s.append(time.perf_counter() - t)
        return out

    trainer.predict = timed_predict  # Only to split model / postprocess.
    t = time.perf_counter()
    task.evaluate(trainer)  # Warm-up: traces the predict step.
    warmup_s = time.perf_counter() - t
    t = time.perf_counter()
    metrics = task.evaluate(trainer)
    total_s = time.perf_counter() - t
    # The predictions, for the agreement check with serve_qa.
    _, files = task._predictions(trainer)
    with open(_paths()["runner_predictions"], "w") as f:
        json.dump(files["predictions.json"], f)
    return {"seconds": total_s, "model_seconds": model_s[1],
            "postprocess_seconds": total_s - model_s[1],
            "warmup_seconds": warmup_s, "setup_seconds": setup_s,
            "features": len(task._eval_features),
            "questions": len(task._examples), "f1": metrics["f1"],
            "exact_match": metrics["exact_match"], "threads": _threads()}


def run_serve() -> dict:
    """One fresh process: serve_qa over the subset (warm-up, then timed)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

    p = _paths()
    with open(p["subset"]) as f:
        dataset = json.load(f)["data"]
    ids, questions, contexts = [], [], []
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                ids.append(qa["id"])
                questions.append(qa["question"])
                contexts.append(paragraph["context"])
    start = time.perf_counter()
    serve = tf.saved_model.load(p["export"]).signatures["serve_qa"]
    setup_s = time.perf_counter() - start
    b = FLAGS.serve_batch_size
    batches = [(tf.constant(questions[i:i + b]), tf.constant(contexts[i:i + b]))
               for i in range(0, len(ids), b)]

    def one_pass():
        answers = []
        for q, c in batches:
            out = serve(question=q, context=c)
            answers.extend(a.decode("utf-8") for a in out["answer"].numpy())
        return answers

    t = time.perf_counter()
    one_pass()
    warmup_s = time.perf_counter() - t
    t = time.perf_counter()
    answers = one_pass()
    total_s = time.perf_counter() - t
    predictions = dict(zip(ids, answers))
    with open(p["serve_predictions"], "w") as f:
        json.dump(predictions, f)
    from albert_tf.metrics import squad as squad_metrics
    metrics = squad_metrics.evaluate_v1(dataset, predictions)
    return {"seconds": total_s, "warmup_seconds": warmup_s,
            "setup_seconds": setup_s, "questions": len(ids),
            "f1": metrics["f1"], "exact_match": metrics["exact_match"],
            "threads": _threads()}


def _child(mode: str) -> dict:
    args = [sys.executable, os.path.abspath(__file__), f"--mode={mode}"] + [
        f"--{name}={FLAGS[name].value}" for name in (
            "run_dir", "pretrained_dir", "predict_file", "num_questions",
            "work_dir", "max_seq_length", "doc_stride", "max_query_length",
            "predict_batch_size", "serve_batch_size")]
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])



def driver() -> None:
    import tensorflow as tf

    t = time.time()
    info = _child("setup")
    info["setup_wall_seconds"] = time.time() - t
    rounds = {"runner": [], "serve_qa": []}
    for r in range(FLAGS.rounds):
        order = ("runner", "serve_qa") if r % 2 == 0 else ("serve_qa",
                                                           "runner")
        for name in order:
            result = _child(name)
            logging.info("round %d %s: %.2f s", r, name, result["seconds"])
            rounds[name].append(result)
    features, questions = info["features"], info["questions"]
    contenders = {}
    for name, results in rounds.items():
        seconds = [x["seconds"] for x in results]
        contenders[name] = {
            "features_per_second": common.spread(
                [features / s for s in seconds]),
            "questions_per_second": common.spread(
                [questions / s for s in seconds]),
            "seconds": common.spread(seconds),
            "warmup_seconds": common.spread(
                [x["warmup_seconds"] for x in results]),
            "load_seconds": common.spread(
                [x["setup_seconds"] for x in results]),
            "exact_match": results[0]["exact_match"],
            "f1": results[0]["f1"], "threads": results[0]["threads"]}
        if name == "runner":
            contenders[name]["model_seconds"] = common.spread(
                [x["model_seconds"] for x in results])
            contenders[name]["postprocess_seconds"] = common.spread(
                [x["postprocess_seconds"] for x in results])
    p = _paths()
    with open(p["runner_predictions"]) as f:
        runner_answers = json.load(f)
    with open(p["serve_predictions"]) as f:
        serve_answers = json.load(f)
    same = sum(runner_answers[k] == serve_answers[k] for k in runner_answers)
    report = {
        "input": {"predict_file": FLAGS.predict_file, **info},
        "settings": {k: FLAGS[k].value for k in (
            "max_seq_length", "doc_stride", "max_query_length",
            "predict_batch_size", "serve_batch_size", "rounds",
            "run_dir")},
        "contenders": contenders,
        "ratio_serve_qa_vs_runner_features_per_second": (
            contenders["serve_qa"]["features_per_second"]["median"]
            / contenders["runner"]["features_per_second"]["median"]),
        "answers_identical": {"same": same, "of": len(runner_answers)},
        "machine": {"cpu": common.cpu_model(), "cpu_count": os.cpu_count(),
                    "affinity_cpus": len(os.sched_getaffinity(0)),
                    "tensorflow": tf.__version__,
                    "load_average_at_end": os.getloadavg()},
        "method": "each measurement a fresh process; one untimed warm-up "
                  "pass then one timed pass over the same questions; "
                  "rounds interleave the contenders (order alternates); "
                  "feature conversion (cached by run_squad) and model "
                  "loading are not in `seconds`",
        "command": " ".join([os.path.relpath(sys.argv[0], ROOT)]
                            + sys.argv[1:]),
    }
    os.makedirs(os.path.dirname(FLAGS.output), exist_ok=True)
    tmp = FLAGS.output + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, FLAGS.output)
    logging.info("%s", json.dumps(report, indent=2))


def main(argv):
    del argv  # Unused.
    if FLAGS.mode == "driver":
        driver()
        return
    result = {"setup": setup, "runner": run_runner,
              "serve_qa": run_serve}[FLAGS.mode]()
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
