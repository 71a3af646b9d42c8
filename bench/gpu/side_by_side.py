"""GPU side by side (a GPU machine with JAX and torch; TensorFlow not needed).

Setup and variables: bench/gpu/README.md. Results: bench/results/gpu/.

ALBERT pretraining step (forward + backward, bf16) for
albert_tf's Keras layers on Keras's JAX backend, keras-hub's AlbertMaskedLM on
JAX, and HF transformers' AlbertForPreTraining on torch (sdpa and eager),
each alone in a fresh process. Usage: python side_by_side.py OUT_DIR
(child: python side_by_side.py --child NAME MODEL BATCH SEQ)."""
import json, os, subprocess, sys, time

import numpy as np

MODELS = {  # the released v2 configs (vocab 30000, embedding 128)
    "base": dict(hidden=768, layers=12, heads=12, inter=3072),
    "large": dict(hidden=1024, layers=24, heads=16, inter=4096),
    "xxlarge": dict(hidden=4096, layers=12, heads=64, inter=16384),
    "tiny": dict(hidden=64, layers=2, heads=2, inter=128),
}
P = 20  # masked positions per sequence


def flops(m, b, t):
    h, L, i = m["hidden"], m["layers"], m["inter"]
    return 3 * 2 * b * t * L * (4 * h * h + 2 * h * i + 2 * t * h)


def batch_np(b, t):
    rng = np.random.default_rng(0)
    return dict(ids=rng.integers(5, 30000, (b, t)).astype("int32"),
                pos=np.sort(rng.choice(np.arange(1, t), (b, P)), axis=1).astype("int32"),
                lab=rng.integers(5, 30000, (b, P)).astype("int32"))


def time_steps(step, sync, n=10, warm=3):
    for _ in range(warm):
        out = step()
    sync(out)
    t0 = time.perf_counter()
    for _ in range(n):
        out = step()
    sync(out)
    return (time.perf_counter() - t0) / n


def child_albert_tf(m, b, t, **options):
    """options: AlbertPretrainer's use_one_hot_embeddings / attention_implementation."""
    os.environ["KERAS_BACKEND"] = "jax"
    import jax, keras
    from albert_tf import AlbertConfig, AlbertPretrainer, losses
    cfg = AlbertConfig(vocab_size=30000, embedding_size=128, hidden_size=m["hidden"],
                       num_hidden_layers=m["layers"], num_attention_heads=m["heads"],
                       intermediate_size=m["inter"], max_position_embeddings=512)
    model = AlbertPretrainer(cfg, dtype=os.environ.get("POLICY", "mixed_bfloat16"), **options)
    d = batch_np(b, t)
    batch = {"input_ids": d["ids"], "input_mask": np.ones((b, t), "int32"),
             "segment_ids": np.zeros((b, t), "int32"), "masked_lm_positions": d["pos"],
             "masked_lm_ids": d["lab"], "masked_lm_weights": np.ones((b, P), "float32"),
             "next_sentence_labels": np.zeros((b, 1), "int32")}
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]

    def loss_fn(tv, batch):
        out, _ = model.stateless_call(tv, ntv, batch, training=True)
        return losses.pretraining_loss(out, batch)[0]
    g = jax.jit(jax.value_and_grad(loss_fn))
    s = time_steps(lambda: g(tv, batch), jax.block_until_ready)
    return s, dict(jax=jax.__version__, keras=keras.__version__, **options)


def child_albert_tf_dpa(m, b, t):
    """albert_tf with its attention replaced by keras.ops.dot_product_attention (fused where the backend has it)."""
    os.environ["KERAS_BACKEND"] = "jax"
    import keras
    from keras import ops
    from albert_tf import layers as L

    def call(self, x, input_mask, training=None):
        c = self.config
        bsz, n = ops.shape(x)[0], ops.shape(x)[1]
        split = lambda y: ops.reshape(y, (bsz, n, c.num_attention_heads, c.attention_head_size))
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))  # [B, T, N, D]
        mask = ops.cast(input_mask, "bool")[:, None, None, :]
        ctx = ops.dot_product_attention(q, k, v, mask=mask)
        return self.output_dense(ops.reshape(ctx, (bsz, n, c.hidden_size)))
    L.AlbertAttention.call = call
    s, v = child_albert_tf(m, b, t)
    v["attention"] = "keras.ops.dot_product_attention"
    return s, v


def child_albert_tf_enc(m, b, t):
    """albert_tf's encoder alone (no pretraining heads), loss = mean square of sequence_output."""
    os.environ["KERAS_BACKEND"] = "jax"
    import jax, keras
    from keras import ops
    from albert_tf import AlbertConfig, AlbertEncoder
    cfg = AlbertConfig(vocab_size=30000, embedding_size=128, hidden_size=m["hidden"],
                       num_hidden_layers=m["layers"], num_attention_heads=m["heads"],
                       intermediate_size=m["inter"], max_position_embeddings=512)
    model = AlbertEncoder(cfg, dtype=os.environ.get("POLICY", "mixed_bfloat16"))
    d = batch_np(b, t)
    x = {"input_ids": d["ids"], "input_mask": np.ones((b, t), "int32"), "segment_ids": np.zeros((b, t), "int32")}
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]

    def loss_fn(tv, x):
        out, _ = model.stateless_call(tv, ntv, x, training=True)
        return ops.mean(ops.square(ops.cast(out["sequence_output"], "float32")))
    g = jax.jit(jax.value_and_grad(loss_fn))
    s = time_steps(lambda: g(tv, x), jax.block_until_ready)
    return s, dict(jax=jax.__version__)


def child_keras_hub(m, b, t):
    os.environ["KERAS_BACKEND"] = "jax"
    import jax, keras, keras_hub
    keras.config.set_dtype_policy(os.environ.get("POLICY", "mixed_bfloat16"))
    bb = keras_hub.models.AlbertBackbone(vocabulary_size=30000, num_layers=m["layers"],
                                         num_heads=m["heads"], num_groups=1, num_inner_repetitions=1,
                                         embedding_dim=128, hidden_dim=m["hidden"],
                                         intermediate_dim=m["inter"], max_sequence_length=512)
    model = keras_hub.models.AlbertMaskedLM(backbone=bb, preprocessor=None)
    d = batch_np(b, t)
    x = {"token_ids": d["ids"], "segment_ids": np.zeros((b, t), "int32"),
         "padding_mask": np.ones((b, t), "bool"), "mask_positions": d["pos"]}
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]

    def loss_fn(tv, x, y):
        logits, _ = model.stateless_call(tv, ntv, x, training=True)
        return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
            y, keras.ops.cast(logits, "float32"), from_logits=True))
    g = jax.jit(jax.value_and_grad(loss_fn))
    s = time_steps(lambda: g(tv, x, d["lab"]), jax.block_until_ready)
    return s, dict(keras_hub=keras_hub.__version__)


def child_hf(m, b, t, attn, compile_=False):
    import torch, transformers
    from transformers import AlbertConfig, AlbertForPreTraining
    cfg = AlbertConfig(vocab_size=30000, embedding_size=128, hidden_size=m["hidden"],
                       num_hidden_layers=m["layers"], num_attention_heads=m["heads"],
                       intermediate_size=m["inter"], max_position_embeddings=512,
                       attn_implementation=attn)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model = AlbertForPreTraining(cfg).to(dev).train()
    d = batch_np(b, t)
    ids = torch.tensor(d["ids"], device=dev).long()
    labels = torch.full((b, t), -100, device=dev, dtype=torch.long)
    labels.scatter_(1, torch.tensor(d["pos"], device=dev).long(), torch.tensor(d["lab"], device=dev).long())
    sop = torch.zeros(b, dtype=torch.long, device=dev)
    fwd = torch.compile(model) if compile_ else model

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast(dev, dtype=torch.bfloat16):
            loss = fwd(input_ids=ids, labels=labels, sentence_order_label=sop).loss
        loss.backward()
        return loss
    s = time_steps(step, lambda _: torch.cuda.synchronize() if dev == "cuda" else None)
    return s, dict(torch=torch.__version__, transformers=transformers.__version__)


CHILDREN = {
    "albert_tf_jax": child_albert_tf,
    "keras_hub_jax": child_keras_hub,
    "albert_tf_jax_dpa": child_albert_tf_dpa,
    # The library's own options (no monkeypatching).
    "albert_tf_jax_fused": lambda m, b, t: child_albert_tf(m, b, t, attention_implementation="fused"),
    "albert_tf_jax_onehot": lambda m, b, t: child_albert_tf(m, b, t, use_one_hot_embeddings=True),
    "albert_tf_jax_enc": child_albert_tf_enc,
    "hf_torch_sdpa": lambda m, b, t: child_hf(m, b, t, "sdpa"),
    "hf_torch_eager": lambda m, b, t: child_hf(m, b, t, "eager"),
    "hf_torch_sdpa_compile": lambda m, b, t: child_hf(m, b, t, "sdpa", True),
}

if __name__ == "__main__":
    if sys.argv[1] == "--child":
        name, model, b, t = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        s, v = CHILDREN[name](MODELS[model], b, t)
        print("RESULT " + json.dumps(dict(name=name, model=model, batch=b, seq=t, seconds_per_step=s,
                                          seq_per_s=b / s, tflops=flops(MODELS[model], b, t) / s / 1e12, **v)))
        sys.exit(0)
    out = sys.argv[1]
    names = os.environ.get("PLAN", "albert_tf_jax,keras_hub_jax,hf_torch_sdpa_compile,albert_tf_jax_fused").split(",")
    plan = [(n, "base", 32, 512) for n in names]
    plan += [(n, "base", 128, 128) for n in os.environ.get("PLAN_T128", "albert_tf_jax,keras_hub_jax").split(",") if n]
    plan += [(n, "xxlarge", 8, 512) for n in os.environ.get("PLAN_XXL", "albert_tf_jax,hf_torch_sdpa").split(",") if n]
    if os.environ.get("PLAN_RAW"):
        plan = [(n, mm, int(bb), int(tt)) for n, mm, bb, tt in (e.split(":") for e in os.environ["PLAN_RAW"].split(","))]
    results = []
    for name, model, b, t in plan:
        t0 = time.time()
        try:
            p = subprocess.run([sys.executable, __file__, "--child", name, model, str(b), str(t)],
                               capture_output=True, text=True, timeout=int(os.environ.get("CHILD_S", 150)))
            line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
            r = json.loads(line[-1][7:]) if line else dict(name=name, model=model, error=(p.stderr or p.stdout)[-1500:])
        except subprocess.TimeoutExpired:
            r = dict(name=name, model=model, error="timeout")
        r["wall_s"] = round(time.time() - t0, 1)
        results.append(r)
        print(json.dumps(r)[:400], flush=True)
        with open(os.path.join(out, "side_by_side.json"), "w") as f:
            json.dump(results, f, indent=1)
