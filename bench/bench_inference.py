"""End-to-end CPU inference: albert_tf vs HF transformers vs keras-hub.

  nice python bench/bench_inference.py                 # 3 rounds, ~4 min
  nice python bench/bench_inference.py --rounds=1 --num_sentences=64 \\
      --latency_sentences=10                           # smoke run

One small ALBERT sequence classifier (4 layers, H=256, random seeded
weights, a 30k SentencePiece vocabulary trained on ../shared/data/corpus)
served four ways, raw strings in, labels out, tokenization included:

  albert_tf_saved_model  export.export_classifier's `serve_text` signature
                         (in-graph tokenization and packing), loaded with
                         tf.saved_model.load.
  albert_tf_python       FullTokenizer + glue.convert_single_example (the
                         run_classifier features) + the Keras model in a
                         tf.function on int32 [B, T] ids.
  hf_torch               transformers AlbertForSequenceClassification with
                         its fast tokenizer from the same spiece.model, torch
                         CPU under inference_mode, in a separate virtualenv
                         (--hf_python). Weights written by
                         albert_tf.convert (save_hf_checkpoint).
  keras_hub              keras-hub AlbertTextClassifier + its
                         AlbertTextClassifierPreprocessor (same spiece.model)
                         with the albert_tf weights copied in, in a
                         tf.function.

Same work for all: max_seq_length 128 truncation, each batch padded to its
longest row (the SavedModel's packing; the Python features and keras-hub's
packer pad to 128 and are cut back to the batch's longest row, a slice,
so no contender runs the encoder on more padding than another). keras-hub
has no lowercasing for an uncased vocabulary, so its contender lowercases
in-graph (tf.strings.lower) first. No contender uses XLA.

Method: every contender runs alone in a fresh process per measure and per
round, does one untimed pass of that measure's workload, then the timed
one: throughput at --batch_size over the dev sentences with --num_threads
intra-op (and inter-op) threads; batch-1 latency (median, p95) over
--latency_sentences single sentences, once per --latency_threads count
(default 1 and all cores: TensorFlow is fastest at batch 1 with one
thread, torch with two). Every contender runs every thread count, and
each is compared at its best as well as at equal counts. Rounds are
interleaved with the order reversed every other round; the summary gives
medians and min-max over rounds.

Checks (recorded in the JSON): every contender's logits on the same
albert_tf ids equal albert_tf's (atol --parity_atol), and end to end on the
first sentences; each tokenizer's ids are compared with albert_tf's Python
tokenizer on every sentence (agreement rate).

Artefacts (SentencePiece model, checkpoint, SavedModel, HF directory) are
built once under --work_dir, in directories keyed by a hash of everything
they are made from. Results: bench/results/inference.json.

The worker mode (`--worker spec.json`) imports only the standard library
before it knows its contender, so the same file runs under the HF
virtualenv, which has no TensorFlow or absl.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
from bench import common  # noqa: E402  (standard library only)

CONTENDERS = ("albert_tf_saved_model", "albert_tf_python", "hf_torch",
              "keras_hub")
ALBERT_TF = ("albert_tf_saved_model", "albert_tf_python")
LABELS = ["0", "1"]  # SST-2.
# 4 layers, one shared group, E=128, H=256: small enough for a 2-core CPU.
MODEL_CONFIG = dict(
    vocab_size=30000, embedding_size=128, hidden_size=256,
    num_hidden_layers=4, num_hidden_groups=1, num_attention_heads=4,
    intermediate_size=1024, inner_group_num=1, max_position_embeddings=512,
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
DEFAULT_GLUE = os.path.join(os.path.dirname(common.REPO), "shared", "data",
                            "glue")


# --------------------------------------------------------------------------
# Pure helpers (no third-party imports).


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated q-th percentile (q in [0, 100]), as numpy's."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def round_orders(contenders: list[str], rounds: int) -> list[list[str]]:
    """Contender order per round: as given, then reversed, alternating."""
    return [list(contenders) if r % 2 == 0 else list(reversed(contenders))
            for r in range(rounds)]


def batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def agreement(reference: list[list[int]], other: list[list[int]]) -> dict:
    """Share of sentences whose id lists are identical, and token totals.

    The totals show how far "the same work" holds when tokenizers differ.
    """
    if len(reference) != len(other):
        raise ValueError(f"agreement: {len(reference)} vs {len(other)} rows")
    same = sum(a == b for a, b in zip(reference, other))
    first = [i for i, (a, b) in enumerate(zip(reference, other)) if a != b]
    return {"sentences": len(reference), "identical": same,
            "rate": same / max(len(reference), 1),
            "tokens_reference": sum(len(a) for a in reference),
            "tokens": sum(len(b) for b in other),
            "first_mismatches": first[:5]}


def max_abs_diff(a: list[list[float]], b: list[list[float]]) -> float:
    return max(abs(x - y) for row_a, row_b in zip(a, b)
               for x, y in zip(row_a, row_b))


def key_of(value) -> str:
    """Short stable hash of a JSON-able value (artefact directory keys)."""
    return hashlib.sha1(json.dumps(value, sort_keys=True).encode()
                        ).hexdigest()[:12]


def read_sentences(path: str) -> list[str]:
    """The `sentence` column of a GLUE SST-2 tsv (header checked)."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:1] != ["sentence"]:
            raise ValueError(f"{path}: expected a `sentence` header column, "
                             f"got {header}")
        return [line.rstrip("\n").split("\t")[0] for line in f
                if line.strip()]


def timed_throughput(predict, sentences: list[str], batch_size: int
                     ) -> dict:
    """One untimed pass over all batches, then the timed one.

    predict: list of raw strings -> list of label strings.
    """
    groups = batches(sentences, batch_size)
    for group in groups:  # Warm-up, untimed.
        predict(group)
    labels = []
    start = time.perf_counter()
    for group in groups:
        labels.extend(predict(group))
    elapsed = time.perf_counter() - start
    if len(labels) != len(sentences):
        raise RuntimeError(f"predict returned {len(labels)} labels for "
                           f"{len(sentences)} sentences")
    return {"throughput_sentences_per_s": len(sentences) / elapsed,
            "throughput_elapsed_s": elapsed, "labels": labels}


def timed_latency(predict, singles: list[str]) -> dict:
    """One untimed pass over the single sentences, then each one timed."""
    for text in singles:  # Warm-up, untimed.
        predict([text])
    latencies = []
    for text in singles:
        start = time.perf_counter()
        predict([text])
        latencies.append(time.perf_counter() - start)
    return {"latency_median_ms": 1e3 * statistics.median(latencies),
            "latency_p95_ms": 1e3 * percentile(latencies, 95)}


# --------------------------------------------------------------------------
# Workers: one contender per process.


def _set_tf_threads(threads: int) -> dict:
    import tensorflow as tf
    threading = tf.config.threading
    threading.set_intra_op_parallelism_threads(threads)
    threading.set_inter_op_parallelism_threads(threads)
    return {"tf_intra_op": threading.get_intra_op_parallelism_threads(),
            "tf_inter_op": threading.get_inter_op_parallelism_threads()}


def _albert_tf_model(spec: dict):
    """The albert_tf classifier with the benchmark's checkpoint loaded."""
    from albert_tf import checkpoints
    from albert_tf import models
    from albert_tf.config import AlbertConfig

    config = AlbertConfig.from_dict(spec["config"])
    model = models.AlbertClassifier(config, num_labels=len(LABELS))
    checkpoints.load_checkpoint(model, spec["albert_tf_dir"], "albert_tf")
    return model


def _tf_versions() -> dict:
    import keras
    import tensorflow as tf
    import tensorflow_text
    return {"tensorflow": tf.__version__, "keras": keras.__version__,
            "tensorflow_text": tensorflow_text.__version__}


def _worker_saved_model(spec: dict):
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

    info = {"threads": _set_tf_threads(spec["threads"]),
            "versions": _tf_versions(),
            "path": "tf.saved_model.load(export).signatures['serve_text']"
                    "(text=tf.constant(batch))['label']"}
    loaded = tf.saved_model.load(spec["saved_model_dir"])
    serve_text = loaded.signatures["serve_text"]

    def predict(texts):
        out = serve_text(text=tf.constant(texts))
        return [label.decode() for label in out["label"].numpy()]

    def parity(check_texts, ref):
        from albert_tf.tokenization import in_graph
        tokenizer = in_graph.InGraphTokenizer.from_file(spec["spm_model"])
        from albert_tf.serving import export
        keep = spec["max_seq_length"] - 2
        ids = [[export.CLS_ID, *row[:keep], export.SEP_ID] for row in
               tokenizer(tf.constant(spec["sentences"])).to_list()]
        e2e = serve_text(text=tf.constant(check_texts))["logits"].numpy()
        on_ref = loaded.signatures["serving_default"](
            **{k: tf.constant(np.array(v, np.int32)) for k, v in ref.items()}
        )["logits"].numpy()
        return ids, e2e.tolist(), on_ref.tolist()

    return predict, parity, info


def _worker_python(spec: dict):
    import numpy as np
    import tensorflow as tf

    info = {"threads": _set_tf_threads(spec["threads"]),
            "versions": _tf_versions(),
            "path": "FullTokenizer + glue.convert_single_example + "
                    "tf.function(model) on int32 [B, T] (cut to the "
                    "batch's longest row); faster than "
                    "model.predict_on_batch (3.2 vs 3.5 ms at batch 1 "
                    "in one process)"}
    from albert_tf.data import glue
    from albert_tf.tokenization.full_tokenizer import FullTokenizer

    tokenizer = FullTokenizer(spm_model_file=spec["spm_model"],
                              do_lower_case=True)
    model = _albert_tf_model(spec)
    ids_spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[ids_spec] * 3)
    def serve(input_ids, input_mask, segment_ids):
        logits = model({"input_ids": input_ids, "input_mask": input_mask,
                        "segment_ids": segment_ids},
                       training=False)["logits"]  # [B, C]
        return logits, tf.argmax(logits, axis=-1, output_type=tf.int32)

    def features(texts):
        rows = [glue.convert_single_example(
            glue.InputExample(guid=str(i), text_a=tokenizer.preprocess(t),
                              label=LABELS[0]),
            LABELS, spec["max_seq_length"], tokenizer) for i, t in
            enumerate(texts)]
        arrays = {k: np.array([r[k] for r in rows], np.int32)
                  for k in ("input_ids", "input_mask", "segment_ids")}
        width = int(arrays["input_mask"].sum(axis=1).max())
        return {k: v[:, :width] for k, v in arrays.items()}  # [B, T]

    def predict(texts):
        f = features(texts)
        _, pred = serve(f["input_ids"], f["input_mask"], f["segment_ids"])
        return [LABELS[i] for i in pred.numpy()]

    def parity(check_texts, ref):
        ids = []
        for t in spec["sentences"]:
            f = features([t])
            ids.append(f["input_ids"][0].tolist())
        f = features(check_texts)
        e2e = serve(f["input_ids"], f["input_mask"], f["segment_ids"])[0]
        on_ref = serve(*(np.array(ref[k], np.int32) for k in
                         ("input_ids", "input_mask", "segment_ids")))[0]
        return ids, e2e.numpy().tolist(), on_ref.numpy().tolist()

    return predict, parity, info


def _worker_hf(spec: dict):
    import torch
    import tokenizers
    import transformers
    from transformers import AlbertForSequenceClassification
    from transformers import AlbertTokenizerFast

    torch.set_num_threads(spec["threads"])
    torch.set_num_interop_threads(spec["threads"])
    tokenizer = AlbertTokenizerFast.from_pretrained(spec["hf_dir"])
    model = AlbertForSequenceClassification.from_pretrained(spec["hf_dir"])
    model.eval()
    info = {"threads": {"torch_intra_op": torch.get_num_threads(),
                        "torch_inter_op": torch.get_num_interop_threads(),
                        "TOKENIZERS_PARALLELISM": os.environ.get(
                            "TOKENIZERS_PARALLELISM", "unset")},
            "versions": {"torch": torch.__version__,
                         "transformers": transformers.__version__,
                         "tokenizers": tokenizers.__version__},
            "attn_implementation": getattr(model.config,
                                           "_attn_implementation", None),
            "tokenizer_class": type(tokenizer).__name__,
            "tokenizer_is_fast": bool(tokenizer.is_fast),
            "path": "AlbertTokenizerFast(batch, padding=True, truncation, "
                    "max_length) + model(**enc).logits.argmax under "
                    "torch.inference_mode"}
    max_len = spec["max_seq_length"]

    def encode(texts):
        return tokenizer(texts, padding=True, truncation=True,
                         max_length=max_len, return_tensors="pt",
                         return_token_type_ids=True)

    def predict(texts):
        with torch.inference_mode():
            logits = model(**encode(texts)).logits  # [B, C]
            return [LABELS[i] for i in logits.argmax(-1).tolist()]

    def parity(check_texts, ref):
        ids = [tokenizer(t, truncation=True, max_length=max_len)["input_ids"]
               for t in spec["sentences"]]
        with torch.inference_mode():
            e2e = model(**encode(check_texts)).logits
            on_ref = model(
                input_ids=torch.tensor(ref["input_ids"]),
                attention_mask=torch.tensor(ref["input_mask"]),
                token_type_ids=torch.tensor(ref["segment_ids"])).logits
        return ids, e2e.tolist(), on_ref.tolist()

    return predict, parity, info


def copy_to_keras_hub(ours, theirs_classifier) -> None:
    """albert_tf AlbertClassifier weights -> keras-hub AlbertTextClassifier.

    The mapping of tests/test_keras_hub_parity.py: dense kernels [H, H]
    become keras-hub's EinsumDense [H, N, D] / [N, D, H]; the classifier's
    output_weights [C, H] (original layout) transpose into a Dense [H, C].
    """
    import numpy as np

    encoder = ours.encoder
    c = encoder.config
    n, d = c.num_attention_heads, c.attention_head_size
    backbone = theirs_classifier.backbone
    emb = encoder.embeddings
    pairs = [
        (backbone.token_embedding.embeddings, emb.word_embeddings),
        (backbone.position_embedding.position_embeddings,
         emb.position_embeddings),
        (backbone.segment_embedding.embeddings, emb.token_type_embeddings),
        (backbone.embeddings_layer_norm.gamma, emb.layer_norm.gamma),
        (backbone.embeddings_layer_norm.beta, emb.layer_norm.beta),
        (backbone.embeddings_projection.kernel,
         encoder.embedding_hidden_mapping_in.kernel),
        (backbone.embeddings_projection.bias,
         encoder.embedding_hidden_mapping_in.bias),
        (backbone.pooled_dense.kernel, encoder.pooler.kernel),
        (backbone.pooled_dense.bias, encoder.pooler.bias),
    ]
    for g, group in enumerate(encoder.layer_groups):
        for j, block in enumerate(group.inner_groups):
            layer = backbone.get_layer(f"group_{g}_inner_layer_{j}")
            mha = layer._self_attention_layer
            att = block.attention
            for src, dst in ((att.query, mha.query_dense),
                             (att.key, mha.key_dense),
                             (att.value, mha.value_dense)):
                pairs.append((dst.kernel, np.reshape(
                    src.kernel, (c.hidden_size, n, d))))
                pairs.append((dst.bias, np.reshape(src.bias, (n, d))))
            pairs.append((mha.output_dense.kernel, np.reshape(
                att.output_dense.kernel, (n, d, c.hidden_size))))
            pairs.append((mha.output_dense.bias, att.output_dense.bias))
            for src, dst in ((block.attention_layer_norm,
                              layer._self_attention_layer_norm),
                             (block.ffn_layer_norm,
                              layer._feedforward_layer_norm)):
                pairs += [(dst.gamma, src.gamma), (dst.beta, src.beta)]
            for src, dst in ((block.ffn_intermediate,
                              layer._feedforward_intermediate_dense),
                             (block.ffn_output,
                              layer._feedforward_output_dense)):
                pairs += [(dst.kernel, src.kernel), (dst.bias, src.bias)]
    head = ours.classifier
    pairs.append((theirs_classifier.output_dense.kernel,
                  np.transpose(np.asarray(head.output_weights))))
    pairs.append((theirs_classifier.output_dense.bias, head.output_bias))
    for dst, src in pairs:
        value = np.asarray(src)
        if tuple(dst.shape) != value.shape:
            raise ValueError(f"keras-hub {dst.path}: shape {dst.shape}, "
                             f"albert_tf value {value.shape}")
        dst.assign(value)
    if theirs_classifier.count_params() != ours.count_params():
        raise ValueError(f"keras-hub has {theirs_classifier.count_params()} "
                         f"parameters, albert_tf {ours.count_params()}")


def _worker_keras_hub(spec: dict):
    import keras_hub
    import numpy as np
    import tensorflow as tf

    info = {"threads": _set_tf_threads(spec["threads"]),
            "versions": {**_tf_versions(),
                         "keras_hub": keras_hub.__version__},
            "path": "tf.function: tf.strings.lower + "
                    "AlbertTextClassifierPreprocessor (cut to the batch's "
                    "longest row) + AlbertTextClassifier, no XLA"}
    ours = _albert_tf_model(spec)
    c = ours.config
    backbone = keras_hub.models.AlbertBackbone(
        vocabulary_size=c.vocab_size, num_layers=c.num_hidden_layers,
        num_heads=c.num_attention_heads, embedding_dim=c.embedding_size,
        hidden_dim=c.hidden_size, intermediate_dim=c.intermediate_size,
        num_groups=c.num_hidden_groups,
        num_inner_repetitions=c.inner_group_num,
        max_sequence_length=c.max_position_embeddings,
        num_segments=c.type_vocab_size, dropout=0.0)
    classifier = keras_hub.models.AlbertTextClassifier(
        backbone, num_classes=len(LABELS), preprocessor=None, dropout=0.0)
    copy_to_keras_hub(ours, classifier)
    del ours
    tokenizer = keras_hub.models.AlbertTokenizer(proto=spec["spm_model"])
    preprocessor = keras_hub.models.AlbertTextClassifierPreprocessor(
        tokenizer, sequence_length=spec["max_seq_length"])

    def inputs(text):
        x = preprocessor(tf.strings.lower(text, encoding="utf-8"))
        width = tf.reduce_max(tf.reduce_sum(
            tf.cast(x["padding_mask"], tf.int32), axis=1))
        return {k: v[:, :width] for k, v in x.items()}  # [B, T]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(text):
        logits = classifier(inputs(text), training=False)  # [B, C]
        return logits, tf.argmax(logits, axis=-1, output_type=tf.int32)

    def predict(texts):
        _, pred = serve(tf.constant(texts))
        return [LABELS[i] for i in pred.numpy()]

    def parity(check_texts, ref):
        ids = []
        for t in spec["sentences"]:
            x = inputs(tf.constant([t]))
            ids.append(x["token_ids"][0].numpy().tolist())
        e2e = serve(tf.constant(check_texts))[0].numpy()
        on_ref = classifier({
            "token_ids": np.array(ref["input_ids"], np.int32),
            "padding_mask": np.array(ref["input_mask"], np.int32),
            "segment_ids": np.array(ref["segment_ids"], np.int32)},
            training=False)
        return ids, e2e.tolist(), np.asarray(on_ref).tolist()

    return predict, parity, info


WORKERS = {"albert_tf_saved_model": _worker_saved_model,
           "albert_tf_python": _worker_python,
           "hf_torch": _worker_hf,
           "keras_hub": _worker_keras_hub}


def worker_main(spec_path: str) -> None:
    """Runs one contender (spec: JSON written by the driver)."""
    with open(spec_path) as f:
        spec = json.load(f)
    start = time.perf_counter()
    predict, parity, info = WORKERS[spec["contender"]](spec)
    info["setup_s"] = time.perf_counter() - start
    sentences = spec["sentences"]
    result = {"contender": spec["contender"], "mode": spec["mode"], **info}
    if spec["mode"] == "throughput":
        result.update(timed_throughput(predict, sentences,
                                       spec["batch_size"]))
    else:
        result.update(timed_latency(
            predict, sentences[:spec["latency_sentences"]]))
    if spec["parity"]:
        ids, e2e, on_ref = parity(spec["check_texts"], spec["ref"])
        result.update(ids=ids, check_logits=e2e, ref_logits=on_ref)
    tmp = spec["out"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, spec["out"])


# --------------------------------------------------------------------------
# Driver: artefacts, rounds, summary.


def _define_flags() -> None:
    from absl import flags
    flags.DEFINE_string("work_dir", "/tmp/bench_inference",
                        "Artefacts and per-round outputs (built once).")
    flags.DEFINE_string("corpus_dir", common.DEFAULT_CORPUS,
                        "Text corpus for the SentencePiece model.")
    flags.DEFINE_string("glue_dir", DEFAULT_GLUE,
                        "GLUE data; SST-2/dev.tsv is read.")
    flags.DEFINE_string("hf_python", "/tmp/hfvenv/bin/python",
                        "Python of the virtualenv with torch, transformers.")
    flags.DEFINE_list("contenders", list(CONTENDERS), "Which to run.")
    flags.DEFINE_integer("rounds", 3, "Interleaved rounds.")
    flags.DEFINE_integer("num_sentences", 0,
                         "Dev sentences for throughput; 0 = all.")
    flags.DEFINE_integer("latency_sentences", 200,
                         "Single sentences for batch-1 latency.")
    flags.DEFINE_integer("batch_size", 32, "Throughput batch size.")
    flags.DEFINE_integer("max_seq_length", 128, "As run_classifier.")
    flags.DEFINE_integer("num_threads", os.cpu_count() or 1,
                         "Intra-op and inter-op threads for every contender "
                         "in the throughput processes.")
    flags.DEFINE_list("latency_threads", sorted({1, os.cpu_count() or 1}),
                      "Thread counts for the batch-1 latency processes; "
                      "every contender runs each, and its best is compared.")
    flags.DEFINE_integer("seed", 12345, "Model weights.")
    flags.DEFINE_integer("vocab_size", 30000, "SentencePiece vocabulary.")
    flags.DEFINE_integer("parity_sentences", 16,
                         "Sentences for the logits checks.")
    flags.DEFINE_float("parity_atol", 1e-4, "Logits tolerance.")
    flags.DEFINE_string("output", "inference.json",
                        "Result file name under bench/results.")


def _spm_model(work_dir: str, corpus_dir: str, vocab_size: int) -> str:
    from albert_tf.tokenization import train_spm

    files = common.corpus_files(corpus_dir)
    if not files:
        raise FileNotFoundError(f"--corpus_dir {corpus_dir}: no .txt files")
    key = key_of({"files": [(os.path.basename(f), os.path.getsize(f))
                            for f in files],
                  "vocab_size": vocab_size, "do_lower_case": True})
    prefix = os.path.join(work_dir, f"spm{vocab_size}_{key}")
    if not os.path.exists(prefix + ".model"):
        train_spm.train_spm(files, prefix, vocab_size=vocab_size,
                            preprocess=True, do_lower_case=True)
    return prefix + ".model"


def _randomize(model, seed: int) -> None:
    """Every weight random (biases and LayerNorm too) so parity means more.

    Scale 0.02 as initializer_range; gamma around 1.
    """
    import numpy as np
    from albert_tf.checkpoints import tf1_names

    rng = np.random.default_rng(seed)
    for path, variable in sorted(tf1_names.variables_by_path(model).items()):
        value = rng.normal(0.0, 0.02, variable.shape).astype("float32")
        if path.endswith("gamma"):
            value += 1.0
        variable.assign(value)


_EXPORTED_CODE = ("export.py", "models.py", "encoder.py", "layers.py",
                  "heads.py", "tokenization/in_graph.py",
                  "tokenization/text.py")


def build_artefacts(work_dir: str, spm_model: str, config: dict, seed: int,
                    max_seq_length: int, hf_python: str | None) -> dict:
    """Checkpoint, SavedModel and HF directory, keyed by what makes them."""
    import numpy as np
    from absl import logging

    with open(spm_model, "rb") as f:
        spm_hash = hashlib.sha1(f.read()).hexdigest()
    # The SavedModel bakes in the export and tokenizer code: hash it too.
    code = hashlib.sha1()
    for name in _EXPORTED_CODE:
        with open(os.path.join(common.REPO, "albert_tf", name), "rb") as f:
            code.update(f.read())
    key = key_of({"config": config, "seed": seed, "labels": LABELS,
                  "spm": spm_hash, "max_seq_length": max_seq_length,
                  "code": code.hexdigest(), "version": 1})
    root = os.path.join(work_dir, f"model_{key}")
    paths = {"root": root,
             "albert_tf_dir": os.path.join(root, "albert_tf"),
             "saved_model_dir": os.path.join(root, "saved_model"),
             "hf_dir": os.path.join(root, "hf")}
    done = os.path.join(root, "complete.json")
    hf_done = os.path.join(paths["hf_dir"], "tokenizer.json")
    if os.path.exists(done) and (hf_python is None
                                 or os.path.exists(hf_done)):
        logging.info("Reusing artefacts in %s", root)
        return paths
    if os.path.exists(root) and not os.path.exists(done):
        shutil.rmtree(root)  # A build that died half-way.
    if not os.path.exists(done):
        from albert_tf import checkpoints
        from albert_tf import models
        from albert_tf.checkpoints import convert
        from albert_tf.config import AlbertConfig
        from albert_tf.serving import export

        model = models.AlbertClassifier(AlbertConfig.from_dict(config),
                                        num_labels=len(LABELS))
        ones = np.ones([1, 2], np.int32)
        model({"input_ids": ones, "input_mask": ones,
               "segment_ids": 0 * ones})
        _randomize(model, seed)
        checkpoints.save_albert_tf_checkpoint(model, paths["albert_tf_dir"])
        export.export_classifier(
            model, paths["saved_model_dir"], label_list=LABELS,
            is_regression=False, spm_model_file=spm_model,
            do_lower_case=True, max_seq_length=max_seq_length)
        # The converter reads the albert_tf checkpoint back from disk.
        convert.convert(paths["albert_tf_dir"], paths["hf_dir"], "hf",
                        input_format="albert_tf", model="classifier",
                        num_labels=len(LABELS))
        shutil.copy(spm_model, os.path.join(paths["hf_dir"], "spiece.model"))
        with open(done, "w") as f:
            json.dump({"key": key, "config": config, "seed": seed,
                       "spm_sha1": spm_hash}, f)
    if hf_python is not None and not os.path.exists(hf_done):
        # The fast tokenizer converted from spiece.model, saved so the
        # worker loads tokenizer.json offline.
        code = ("import sys; from transformers import AlbertTokenizerFast; "
                "t = AlbertTokenizerFast.from_pretrained(sys.argv[1], "
                "do_lower_case=True, keep_accents=False); "
                "assert t.is_fast; t.save_pretrained(sys.argv[1])")
        subprocess.run([hf_python, "-c", code, paths["hf_dir"]], check=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return paths


def _reference_ids(spm_model: str, texts: list[str],
                   max_seq_length: int) -> dict:
    """albert_tf Python features of texts, cut to the longest row."""
    import numpy as np
    from albert_tf.data import glue
    from albert_tf.tokenization.full_tokenizer import FullTokenizer

    tokenizer = FullTokenizer(spm_model_file=spm_model, do_lower_case=True)
    rows = [glue.convert_single_example(
        glue.InputExample(str(i), tokenizer.preprocess(t), label=LABELS[0]),
        LABELS, max_seq_length, tokenizer) for i, t in enumerate(texts)]
    width = max(sum(r["input_mask"]) for r in rows)
    return {k: np.array([r[k][:width] for r in rows]).tolist()
            for k in ("input_ids", "input_mask", "segment_ids")}


def _summarize(per_round: dict, contenders: list[str],
               latency_threads: list[int]) -> dict:
    """Spreads over rounds; each contender's batch-1 latency is taken at
    its best thread count (by median over rounds), which is copied into
    each round's `latency_median_ms` / `latency_p95_ms`."""
    summary = {}
    for name in contenders:
        runs = per_round[name]
        summary[name] = {"throughput_sentences_per_s": common.spread(
            [r["throughput_sentences_per_s"] for r in runs])}
        for t in latency_threads:
            for m in ("latency_median_ms", "latency_p95_ms"):
                summary[name][f"{m}@{t}"] = common.spread(
                    [r[f"{m}@{t}"] for r in runs])
        best = min(latency_threads, key=lambda t: summary[name][
            f"latency_median_ms@{t}"]["median"])
        summary[name]["latency_best_threads"] = best
        for r in runs:
            r["latency_median_ms"] = r[f"latency_median_ms@{best}"]
            r["latency_p95_ms"] = r[f"latency_p95_ms@{best}"]
        for m in ("latency_median_ms", "latency_p95_ms"):
            summary[name][m] = summary[name][f"{m}@{best}"]
        summary[name]["wall_s"] = common.spread([r["wall_s"] for r in runs])
        summary[name]["peak_rss_mb"] = common.spread(
            [r["peak_rss_max_process_mb"] for r in runs])
    return summary


def _ratios(per_round: dict, summary: dict, contenders: list[str],
           latency_threads: list[int]) -> dict:
    """Ratios of medians, and the same ratio within each round."""
    def ratio(a, b, metric):
        med = (summary[a][metric]["median"] / summary[b][metric]["median"])
        rounds = [x[metric] / y[metric] for x, y in
                  zip(per_round[a], per_round[b])]
        return {"of_medians": med, "per_round": rounds}

    out = {}
    ours = [c for c in ALBERT_TF if c in contenders]
    if not ours:
        return out
    thr = "throughput_sentences_per_s"
    lat = "latency_median_ms"
    best_thr = max(ours, key=lambda c: summary[c][thr]["median"])
    best_lat = min(ours, key=lambda c: summary[c][lat]["median"])
    out["albert_tf_best_throughput_path"] = best_thr
    out["albert_tf_best_latency_path"] = best_lat
    if "hf_torch" in contenders:
        out["throughput_albert_tf_over_hf"] = ratio(best_thr, "hf_torch", thr)
        out["latency_albert_tf_over_hf"] = ratio(best_lat, "hf_torch", lat)
        for t in latency_threads:  # Both at the same thread count.
            out[f"latency_albert_tf_over_hf@{t}threads"] = ratio(
                best_lat, "hf_torch", f"latency_median_ms@{t}")
    if "keras_hub" in contenders:
        out["throughput_albert_tf_over_keras_hub"] = ratio(
            best_thr, "keras_hub", thr)
        out["latency_albert_tf_over_keras_hub"] = ratio(
            best_lat, "keras_hub", lat)
    if len(ours) == 2:
        out["throughput_saved_model_over_python"] = ratio(
            "albert_tf_saved_model", "albert_tf_python", thr)
        out["latency_saved_model_over_python"] = ratio(
            "albert_tf_saved_model", "albert_tf_python", lat)
        for t in latency_threads:
            out[f"latency_saved_model_over_python@{t}threads"] = ratio(
                "albert_tf_saved_model", "albert_tf_python",
                f"latency_median_ms@{t}")
    goals = {}
    if "throughput_albert_tf_over_hf" in out:
        goals["throughput_ge_1.25x_hf"] = (
            out["throughput_albert_tf_over_hf"]["of_medians"] >= 1.25)
        goals["batch1_latency_le_hf"] = (
            out["latency_albert_tf_over_hf"]["of_medians"] <= 1.0)
    if "throughput_albert_tf_over_keras_hub" in out:
        goals["throughput_ge_keras_hub"] = (
            out["throughput_albert_tf_over_keras_hub"]["of_medians"] >= 1.0)
    if "throughput_saved_model_over_python" in out:
        goals["saved_model_within_10pct_of_python"] = (
            out["throughput_saved_model_over_python"]["of_medians"] >= 0.9
            and out["latency_saved_model_over_python"]["of_medians"] <= 1.1)
    out["goals"] = goals
    return out


def _parity(first: dict, contenders: list[str], atol: float,
            sentences: list[str]) -> dict:
    """Tokenizer agreement and logits agreement against albert_tf_python."""
    ref_name = "albert_tf_python"
    if ref_name not in first:
        return {"skipped": "albert_tf_python not run"}
    ref = first[ref_name]
    out = {"reference": ref_name, "atol": atol}
    for name in contenders:
        if name == ref_name:
            continue
        got = first[name]
        on_ref = max_abs_diff(ref["ref_logits"], got["ref_logits"])
        e2e = max_abs_diff(ref["check_logits"], got["check_logits"])
        labels = agreement([[x] for x in ref["labels"]],
                           [[x] for x in got["labels"]])
        ids = agreement(ref["ids"], got["ids"])
        ids["examples"] = [{"sentence": sentences[i],
                            "reference": ref["ids"][i], name: got["ids"][i]}
                           for i in ids["first_mismatches"][:3]]
        out[name] = {
            "token_ids": ids,
            "logits_on_same_ids_max_abs_diff": on_ref,
            "logits_on_same_ids_ok": on_ref <= atol,
            "logits_end_to_end_max_abs_diff": e2e,
            "label_agreement_rate": labels["rate"],
        }
    return out


def _table(summary: dict, contenders: list[str],
           latency_threads: list[int]) -> str:
    lines = [f"{'contender':24s} {'sent/s (b32)':>22s} " + " ".join(
        f"{f'b1 median ms @{t}thr':>22s} {'p95':>6s}"
        for t in latency_threads)]
    for name in contenders:
        s = summary[name]
        t = s["throughput_sentences_per_s"]
        row = (f"{name:24s} {t['median']:8.1f} "
               f"[{t['min']:6.1f}-{t['max']:6.1f}]")
        for n in latency_threads:
            m = s[f"latency_median_ms@{n}"]
            row += (f" {m['median']:8.2f} [{m['min']:5.2f}-{m['max']:5.2f}]"
                    f" {s[f'latency_p95_ms@{n}']['median']:6.2f}")
        lines.append(row)
    return "\n".join(lines)


def main(argv) -> None:
    del argv  # Unused.
    from absl import flags
    from absl import logging

    FLAGS = flags.FLAGS
    contenders = list(FLAGS.contenders)
    unknown = set(contenders) - set(CONTENDERS)
    if unknown:
        raise ValueError(f"--contenders: unknown {sorted(unknown)}; "
                         f"expected some of {CONTENDERS}")
    hf = "hf_torch" in contenders
    if hf and not os.path.exists(FLAGS.hf_python):
        raise FileNotFoundError(
            f"--hf_python {FLAGS.hf_python} not found; create it with "
            f"python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install "
            f"torch==2.13.0 transformers safetensors numpy sentencepiece "
            f"protobuf tokenizers")
    dev = os.path.join(FLAGS.glue_dir, "SST-2", "dev.tsv")
    sentences = read_sentences(dev)
    if FLAGS.num_sentences:
        sentences = sentences[:FLAGS.num_sentences]
    if FLAGS.latency_sentences > len(sentences):
        raise ValueError(f"--latency_sentences={FLAGS.latency_sentences} > "
                         f"{len(sentences)} sentences")
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    config = dict(MODEL_CONFIG, vocab_size=FLAGS.vocab_size)
    spm_model = _spm_model(FLAGS.work_dir, FLAGS.corpus_dir, FLAGS.vocab_size)
    paths = build_artefacts(FLAGS.work_dir, spm_model, config, FLAGS.seed,
                            FLAGS.max_seq_length,
                            FLAGS.hf_python if hf else None)
    check_texts = sentences[:FLAGS.parity_sentences]
    ref = _reference_ids(spm_model, check_texts, FLAGS.max_seq_length)
    run_dir = os.path.join(FLAGS.work_dir, "runs")
    os.makedirs(run_dir, exist_ok=True)

    load_before = os.getloadavg()
    per_round = {c: [] for c in contenders}
    first = {}
    latency_threads = sorted({int(t) for t in FLAGS.latency_threads})
    jobs = [(name, mode, threads) for name in contenders for mode, threads in
            [("throughput", FLAGS.num_threads)]
            + [("latency", t) for t in latency_threads]]
    orders = round_orders(jobs, FLAGS.rounds)
    for r, order in enumerate(orders):
        merged = {c: {} for c in contenders}
        for name, mode, threads in order:
            tag = f"{name}_{mode}{threads}_r{r}"
            spec = {"contender": name, "mode": mode, "spm_model": spm_model,
                    "config": config, **paths,
                    "sentences": sentences,
                    "latency_sentences": FLAGS.latency_sentences,
                    "batch_size": FLAGS.batch_size,
                    "max_seq_length": FLAGS.max_seq_length,
                    "threads": threads,
                    "parity": r == 0 and mode == "throughput",
                    "check_texts": check_texts, "ref": ref,
                    "out": os.path.join(run_dir, f"{tag}.json")}
            spec_path = os.path.join(run_dir, f"{tag}.spec.json")
            with open(spec_path, "w") as f:
                json.dump(spec, f)
            python = FLAGS.hf_python if name == "hf_torch" else sys.executable
            cmd = [python, os.path.abspath(__file__), "--worker", spec_path]
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                   "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
            if os.path.exists(spec["out"]):
                os.remove(spec["out"])
            mem = common.run_measured(
                cmd, env=env, log_path=os.path.join(run_dir, f"{tag}.log"))
            with open(spec["out"]) as f:
                result = json.load(f)
            if mode == "throughput":
                logging.info("round %d %-22s %8.1f sent/s (%d threads) "
                             "[%.0f s]", r, name,
                             result["throughput_sentences_per_s"], threads,
                             mem["wall_s"])
                result.update(mem)
                merged[name].update(result)
                if r == 0:
                    first[name] = result
            else:
                logging.info("round %d %-22s b1 %.2f ms (p95 %.2f) (%d "
                             "threads) [%.0f s]", r, name,
                             result["latency_median_ms"],
                             result["latency_p95_ms"], threads, mem["wall_s"])
                merged[name][f"latency_median_ms@{threads}"] = (
                    result["latency_median_ms"])
                merged[name][f"latency_p95_ms@{threads}"] = (
                    result["latency_p95_ms"])
                merged[name].setdefault("latency_threads_seen", {})[
                    str(threads)] = result["threads"]
        for name in contenders:
            per_round[name].append(merged[name])
    load_after = os.getloadavg()

    summary = _summarize(per_round, contenders, latency_threads)
    ratios = _ratios(per_round, summary, contenders, latency_threads)
    parity = _parity(first, contenders, FLAGS.parity_atol, sentences)
    table = _table(summary, contenders, latency_threads)
    logging.info("\n%s", table)
    for k, v in ratios.items():
        if isinstance(v, dict) and "of_medians" in v:
            logging.info("%-40s %.3f  (rounds %s)", k, v["of_medians"],
                         ", ".join(f"{x:.3f}" for x in v["per_round"]))
    logging.info("goals: %s", ratios.get("goals"))
    for name, p in parity.items():
        if isinstance(p, dict):
            logging.info("parity %s: %s", name, {
                k: (v["rate"] if isinstance(v, dict) else v)
                for k, v in p.items()})

    drop = ("labels", "ids", "check_logits", "ref_logits")
    per_round_slim = {c: [{k: v for k, v in r.items() if k not in drop}
                          for r in runs] for c, runs in per_round.items()}
    first_info = {c: {k: v for k, v in first[c].items()
                      if k in ("threads", "versions", "path", "setup_s",
                               "attn_implementation", "tokenizer_class",
                               "tokenizer_is_fast")}
                  for c in contenders}
    result = {
        "command": " ".join(["python", "bench/bench_inference.py"]
                            + sys.argv[1:]),
        "cpu_model": common.cpu_model(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_before": load_before, "loadavg_after": load_after,
        "note": ("2-core shared machine: other sessions may have been "
                 "loading the CPU during this run (see loadavg)."),
        "model": {"config": config, "num_labels": len(LABELS),
                  "weights": f"random, numpy seed {FLAGS.seed}",
                  "spm_model": spm_model, "artefacts": paths["root"]},
        "data": {"file": dev, "throughput_sentences": len(sentences),
                 "latency_sentences": FLAGS.latency_sentences,
                 "batch_size": FLAGS.batch_size,
                 "max_seq_length": FLAGS.max_seq_length,
                 "padding": "each batch to its longest row"},
        "method": {"rounds": FLAGS.rounds, "orders": orders,
                   "num_threads": FLAGS.num_threads,
                   "latency_threads": latency_threads,
                   "process": "fresh process per contender, per measure "
                              "(throughput; latency at each thread count) "
                              "and per round; one untimed pass of the "
                              "workload first"},
        "contenders": first_info,
        "summary": summary, "ratios": ratios, "parity": parity,
        "per_round": per_round_slim,
    }
    path = common.write_result(FLAGS.output, result)
    logging.info("Wrote %s", path)
    bad = [n for n, p in parity.items() if isinstance(p, dict)
           and p.get("logits_on_same_ids_ok") is False]
    if bad:
        raise SystemExit(f"logits differ beyond atol={FLAGS.parity_atol} on "
                         f"the same ids for {bad}: the comparison is of "
                         f"different models (see {path})")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2])
    else:
        from absl import app
        _define_flags()
        app.run(main)
