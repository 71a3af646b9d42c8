"""The model code on Keras's JAX backend on a GPU (no TensorFlow there).

  # Here, TensorFlow backend: weights, inputs and reference outputs.
  python bench/device_jax_check.py prepare .device
  # On the GPU machine (JAX only):
  KERAS_BACKEND=jax python bench/device_jax_check.py run .device OUT_DIR

`run` loads the same weights into AlbertPretrainer under JAX, compares the
float32 outputs with TensorFlow's (matmuls at highest precision), runs the
mixed_bfloat16 policy, and times a jitted forward + backward of ALBERT-base
(seq 512) in bfloat16. Results: OUT_DIR/device_jax_check.json.
"""

import json
import os
import sys
import time

import numpy as np

# L=3 with G=2 (L % G != 0) and two inner groups, as the parity tests.
CONFIG = dict(vocab_size=3001, embedding_size=64, hidden_size=256,
              num_hidden_layers=3, num_hidden_groups=2, num_attention_heads=4,
              intermediate_size=1024, inner_group_num=2,
              max_position_embeddings=128)
KEYS = ("sequence_output", "pooled_output", "mlm_logits", "sop_logits")


def _inputs():
    rng = np.random.default_rng(0)
    b, t, p = 4, 96, 12
    mask = np.ones((b, t), "int32")
    mask[1, 70:] = 0
    return {"input_ids": rng.integers(5, 3001, (b, t)).astype("int32") * mask,
            "input_mask": mask,
            "segment_ids": (np.arange(t) >= 40).astype("int32")[None].repeat(
                b, 0) * mask,
            "masked_lm_positions": rng.integers(1, 60, (b, p)).astype("int32")}


def prepare(directory):
    from albert_tf import AlbertConfig, AlbertPretrainer
    from albert_tf.checkpoints import tf1_names as names

    config = AlbertConfig(**CONFIG)
    model = AlbertPretrainer(config)
    rng = np.random.default_rng(1)
    arrays = {}
    for path, variable in names.variables_by_path(model).items():
        value = rng.normal(0, 0.2, variable.shape).astype("float32")
        value += path.endswith("gamma")
        variable.assign(value)
        arrays["w/" + path] = value
    inputs = _inputs()
    outputs = model(inputs)
    arrays.update({"x/" + k: v for k, v in inputs.items()})
    arrays.update({"y/" + k: np.asarray(outputs[k]) for k in KEYS})
    os.makedirs(directory, exist_ok=True)
    np.savez(os.path.join(directory, "parity.npz"), **arrays)


def run(directory, out_dir):
    import jax
    import keras

    from albert_tf import AlbertConfig, AlbertPretrainer, losses
    from albert_tf.checkpoints import tf1_names as names

    assert keras.backend.backend() == "jax"
    data = np.load(os.path.join(directory, "parity.npz"))
    inputs = {k[2:]: data[k] for k in data.files if k.startswith("x/")}
    report = {"devices": [str(d) for d in jax.devices()],
              "jax": jax.__version__, "keras": keras.__version__}
    config = AlbertConfig(**CONFIG)
    for policy in ("float32", "mixed_bfloat16"):
        model = AlbertPretrainer(config, dtype=policy)
        for path, variable in names.variables_by_path(model).items():
            variable.assign(data["w/" + path])
        with jax.default_matmul_precision("highest"):
            outputs = model(inputs)
        report[policy] = {
            k: float(np.max(np.abs(np.asarray(outputs[k], np.float32)
                                   - data["y/" + k]))) for k in KEYS}
        report[policy]["mlm_logits_dtype"] = str(outputs["mlm_logits"].dtype)

    # Throughput: ALBERT-base, bf16, forward + backward, jitted.
    base = AlbertConfig(vocab_size=30000, embedding_size=128, hidden_size=768,
                        num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072)
    model = AlbertPretrainer(base, dtype="mixed_bfloat16")
    b = int(os.environ.get("CHECK_BATCH", 32))
    t, p = int(os.environ.get("CHECK_SEQ", 512)), 20
    rng = np.random.default_rng(2)
    batch = {"input_ids": rng.integers(5, 30000, (b, t)).astype("int32"),
             "input_mask": np.ones((b, t), "int32"),
             "segment_ids": np.zeros((b, t), "int32"),
             "masked_lm_positions": rng.integers(1, t, (b, p)).astype("int32"),
             "masked_lm_ids": rng.integers(5, 30000, (b, p)).astype("int32"),
             "masked_lm_weights": np.ones((b, p), "float32"),
             "next_sentence_labels": np.zeros((b, 1), "int32")}
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def loss_fn(trainable_values, batch):
        outputs, _ = model.stateless_call(trainable_values, non_trainable,
                                          batch, training=True)
        return losses.pretraining_loss(outputs, batch)[0]

    step = jax.jit(jax.value_and_grad(loss_fn))
    loss, grads = step(trainable, batch)
    jax.block_until_ready(grads)
    start = time.perf_counter()
    for _ in range(10):
        loss, grads = step(trainable, batch)
    jax.block_until_ready(grads)
    seconds = (time.perf_counter() - start) / 10
    flops = 3 * 2 * b * t * 12 * (4 * 768 ** 2 + 2 * 768 * 3072 + 2 * t * 768)
    report["albert_base_bf16_fwd_bwd"] = {
        "batch": b, "seq": t, "seconds_per_step": seconds,
        "sequences_per_second": b / seconds,
        "encoder_tflops": flops / seconds / 1e12, "loss": float(loss)}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "device_jax_check.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    else:
        run(sys.argv[2], sys.argv[3])
