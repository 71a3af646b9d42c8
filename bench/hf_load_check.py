"""albert_tf.load on HF directories written by transformers itself.

Two processes, two environments (transformers is never albert_tf's
dependency):

  /tmp/hfenv/bin/python bench/hf_load_check.py make --dir=/tmp/hfcheck \
      --spm_model_file=tiny.model     # torch + transformers venv
  python3 bench/hf_load_check.py compare --dir=/tmp/hfcheck \
      --output=bench/results/hf_load_check.json   # albert_tf

`make` saves random-weight AlbertModel, AlbertForPreTraining and
AlbertForSequenceClassification directories (save_pretrained, plus the
SentencePiece model as spiece.model in the first: transformers 5 writes
only tokenizer.json) and their outputs on fixed inputs; `compare` loads
each with albert_tf.load and writes the largest differences as JSON.
"""

import argparse
import json
import os
import shutil

import numpy as np

KINDS = {"model": None, "pretraining": "pretraining",
         "classifier": "classification"}


def make(directory: str, spm_model_file: str) -> None:
    import torch
    import transformers as tr

    torch.manual_seed(0)
    ids = np.random.RandomState(0).randint(5, 300, size=(2, 11))
    ids[:, 0], ids[:, -1] = 2, 3
    mask = np.ones_like(ids)
    mask[1, 8:] = 0
    segments = np.zeros_like(ids)
    segments[:, 6:] = 1
    os.makedirs(directory, exist_ok=True)
    np.savez(os.path.join(directory, "inputs.npz"), ids=ids, mask=mask,
             segments=segments)
    classes = {"model": tr.AlbertModel, "pretraining": tr.AlbertForPreTraining,
               "classifier": tr.AlbertForSequenceClassification}
    for name, cls in classes.items():
        config = tr.AlbertConfig(
            vocab_size=320, embedding_size=8, hidden_size=16,
            num_hidden_layers=3, num_attention_heads=2, intermediate_size=28,
            max_position_embeddings=40, hidden_act="gelu_new",
            num_labels=3 if name == "classifier" else 2,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            classifier_dropout_prob=0.0)
        model = cls(config).eval()
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.2)
        out_dir = os.path.join(directory, name)
        model.save_pretrained(out_dir)
        if name == "model":
            shutil.copy(spm_model_file, os.path.join(out_dir, "spiece.model"))
        with torch.no_grad():
            out = model(input_ids=torch.tensor(ids),
                        attention_mask=torch.tensor(mask),
                        token_type_ids=torch.tensor(segments))
        arrays = {"model": lambda: dict(sequence=out.last_hidden_state,
                                        pooled=out.pooler_output),
                  "pretraining": lambda: dict(mlm=out.prediction_logits,
                                              sop=out.sop_logits),
                  "classifier": lambda: dict(logits=out.logits)}[name]()
        np.savez(os.path.join(directory, f"{name}_out.npz"),
                 **{k: v.numpy() for k, v in arrays.items()},
                 version=np.array(tr.__version__))


def compare(directory: str, output: str) -> None:
    import tensorflow as tf

    import albert_tf

    inputs = np.load(os.path.join(directory, "inputs.npz"))
    features = {"input_ids": tf.constant(inputs["ids"], tf.int32),
                "input_mask": tf.constant(inputs["mask"], tf.int32),
                "segment_ids": tf.constant(inputs["segments"], tf.int32)}
    valid = inputs["mask"][..., None]  # Padded rows differ by design.
    result = {"command": "python3 bench/hf_load_check.py compare "
                         f"--dir={directory} --output={output}"}
    for name, task in KINDS.items():
        want = np.load(os.path.join(directory, f"{name}_out.npz"))
        result["transformers"] = str(want["version"])
        model, preprocessor = albert_tf.load(os.path.join(directory, name),
                                             task=task)
        if name == "model":
            got = model(features)
            diffs = {"sequence_output": float(np.abs(
                         (got["sequence_output"].numpy() - want["sequence"])
                         * valid).max()),
                     "pooled_output": float(np.abs(
                         got["pooled_output"].numpy() - want["pooled"]).max())}
        elif name == "pretraining":
            positions = np.array([[1, 2, 3], [4, 5, 6]], np.int32)
            got = model({**features, "masked_lm_positions": positions})
            mlm = np.take_along_axis(want["mlm"], positions[..., None], 1)
            diffs = {"mlm_logits": float(np.abs(
                         np.reshape(got["mlm_logits"], mlm.shape) - mlm).max()),
                     "sop_logits": float(np.abs(
                         got["sop_logits"].numpy() - want["sop"]).max())}
        else:
            got = model(features)
            diffs = {"logits": float(np.abs(
                got["logits"].numpy() - want["logits"]).max())}
        result[name] = {"task": task, "max_abs_diff": diffs,
                        "preprocessor": preprocessor is not None}
    with open(output, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))  # noqa: T201 (a benchmark's report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("make", "compare"))
    parser.add_argument("--dir", default="/tmp/hfcheck")
    parser.add_argument("--spm_model_file")
    parser.add_argument("--output", default="hf_load_check.json")
    args = parser.parse_args()
    if args.step == "make":
        make(args.dir, args.spm_model_file)
    else:
        compare(args.dir, args.output)


if __name__ == "__main__":
    main()
