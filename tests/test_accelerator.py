"""Accelerator-facing choices of the layers: how embeddings are looked up
and how their gradients are formed, the one-hot word lookup and the fused
attention option. Values must not change; the compiled graph must.

The GPU slowdown this guards (a bf16 scatter-add into the 2-row token-type
table, and into a bf16 copy of the word table) is read from the XLA HLO,
which the CPU compiles from the same graph a GPU or TPU does.
"""

import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from albert_tf import AlbertEncoder
from albert_tf import AlbertPretrainer
from albert_tf import losses
from albert_tf.checkpoints import tf1_names as names

# "%name = bf16[2,6]{1,0} scatter(" -> ("bf16", "2,6")
_SCATTER = re.compile(r"=\s*(\w+)\[([\d,]*)\][^ ]*\s+scatter\(")
_GATHER_FROM = re.compile(r"gather\((\w+)\[([\d,]*)\]")


def _pretraining_batch(config, batch=3, seq=7, predictions=2):
    inputs = helpers.random_inputs(config, batch=batch, seq=seq,
                                   predictions=predictions)
    rng = np.random.default_rng(3)
    inputs["masked_lm_ids"] = rng.integers(
        1, config.vocab_size, (batch, predictions)).astype("int32")
    inputs["masked_lm_weights"] = np.ones((batch, predictions), "float32")
    inputs["next_sentence_labels"] = np.array([[0], [1], [1]], "int32")
    return {k: tf.constant(v) for k, v in inputs.items()}


def _gradient_hlo(model, batch) -> str:
    @tf.function(jit_compile=True)
    def gradients(batch):
        with tf.GradientTape() as tape:
            loss = losses.pretraining_loss(model(batch, training=True),
                                           batch)[0]
        return tape.gradient(loss, model.trainable_variables)

    return gradients.experimental_get_compiler_ir(batch)(stage="hlo")


def _scatters(hlo: str) -> list[tuple[str, tuple[int, ...]]]:
    return [(dtype, tuple(int(d) for d in dims.split(",") if d))
            for dtype, dims in _SCATTER.findall(hlo)]


@pytest.mark.parametrize("one_hot", [False, True])
def test_embedding_gradients_are_not_bf16_or_token_type_scatters(one_hot):
    """Under mixed_bfloat16 the embedding tables' gradients are float32,
    the token-type table's is a reduction (no scatter at all) and, with
    use_one_hot_embeddings, the word table's is a matmul (no scatter)."""
    config = helpers.tiny_config(vocab_size=97)
    model = AlbertPretrainer(config, dtype="mixed_bfloat16",
                             use_one_hot_embeddings=one_hot)
    hlo = _gradient_hlo(model, _pretraining_batch(config))
    scatters = _scatters(hlo)
    assert scatters, "expected at least the MLM gather's scatter"
    e = config.embedding_size
    word, types = (config.vocab_size, e), (config.type_vocab_size, e)
    shapes = [shape for _, shape in scatters]
    assert types not in shapes, scatters
    if one_hot:
        assert word not in shapes, scatters
        assert not [g for g in _GATHER_FROM.findall(hlo)
                    if g[1] == f"{word[0]},{word[1]}"], "word table gathered"
    else:
        assert [dtype for dtype, shape in scatters if shape == word] == [
            "f32"], scatters


def test_one_hot_word_lookup_equals_gather():
    """use_one_hot_embeddings changes the op, not a single value."""
    config = helpers.tiny_config()
    inputs = helpers.random_inputs(config)
    gather = AlbertEncoder(config)
    one_hot = AlbertEncoder(config, use_one_hot_embeddings=True)
    helpers.randomize(gather)
    for path, variable in names.variables_by_path(one_hot).items():
        variable.assign(names.variables_by_path(gather)[path])
    results = []
    for encoder in (gather, one_hot):
        with tf.GradientTape() as tape:
            out = encoder(inputs)["sequence_output"]
            loss = tf.reduce_sum(out * out)
        grads = tape.gradient(loss, encoder.trainable_variables)
        results.append((out.numpy(), [tf.convert_to_tensor(g).numpy()
                                      for g in grads if g is not None]))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert len(results[0][1]) == len(results[1][1]) > 10
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_tables_are_read_in_float32_under_mixed_precision():
    """The sum of the three tables equals the float32 sum, cast once."""
    config = helpers.tiny_config()
    inputs = helpers.random_inputs(config)
    model = AlbertEncoder(config, dtype="mixed_bfloat16")
    helpers.randomize(model)
    emb = model.embeddings
    ids, segments = inputs["input_ids"], inputs["segment_ids"]
    word = np.asarray(emb.word_embeddings)[ids]
    types = np.asarray(emb.token_type_embeddings)[segments]
    position = np.asarray(emb.position_embeddings)[None, :ids.shape[1]]
    total = tf.cast(tf.constant(word + types + position), tf.bfloat16)
    expected = emb.layer_norm(total)
    got = emb(tf.constant(ids), tf.constant(segments))
    assert got.dtype == tf.bfloat16
    np.testing.assert_array_equal(np.asarray(tf.cast(got, tf.float32)),
                                  np.asarray(tf.cast(expected, tf.float32)))


@pytest.mark.parametrize("one_hot", [False, True])
def test_options_survive_get_config(one_hot):
    config = helpers.tiny_config()
    model = AlbertPretrainer(config, use_one_hot_embeddings=one_hot,
                             attention_implementation="fused")
    clone = AlbertPretrainer.from_config(model.get_config())
    assert clone.encoder.use_one_hot_embeddings is one_hot
    assert clone.encoder.embeddings.use_one_hot_embeddings is one_hot
    attention = clone.encoder.layer_groups[0].inner_groups[0].attention
    assert attention.attention_implementation == "fused"


def test_unknown_attention_implementation_is_refused():
    with pytest.raises(ValueError, match="attention_implementation='flash'"):
        AlbertEncoder(helpers.tiny_config(), attention_implementation="flash")


def test_fused_attention_matches_original_in_float32():
    """Same weights, padded batch: outputs and gradients agree to 1e-5."""
    config = helpers.tiny_config()
    inputs = helpers.random_inputs(config)
    original = AlbertEncoder(config)
    fused = AlbertEncoder(config, attention_implementation="fused")
    helpers.randomize(original)
    for path, variable in names.variables_by_path(fused).items():
        variable.assign(names.variables_by_path(original)[path])
    mask = inputs["input_mask"][..., None].astype("float32")
    results = []
    for encoder in (original, fused):
        with tf.GradientTape() as tape:
            out = encoder(inputs)["sequence_output"]
            # Padded positions are free to differ (-10000 vs -inf masks
            # give the same real rows); compare the real ones.
            loss = tf.reduce_sum(out * out * mask)
        grads = tape.gradient(loss, encoder.trainable_variables)
        results.append((out.numpy() * mask,
                        [tf.convert_to_tensor(g).numpy() for g in grads
                         if g is not None]))
    np.testing.assert_allclose(results[0][0], results[1][0], atol=1e-5)
    assert len(results[0][1]) == len(results[1][1]) > 10
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_fused_attention_with_probability_dropout_falls_back():
    """dot_product_attention has no dropout: training with
    attention_probs_dropout_prob > 0 must still drop attention weights."""
    config = helpers.tiny_config(attention_probs_dropout_prob=0.5)
    inputs = helpers.random_inputs(config)
    fused = AlbertEncoder(config, attention_implementation="fused")
    helpers.randomize(fused)
    first = fused(inputs, training=True)["sequence_output"].numpy()
    second = fused(inputs, training=True)["sequence_output"].numpy()
    assert not np.allclose(first, second)  # dropout ran
    evaluated = fused(inputs, training=False)["sequence_output"].numpy()
    np.testing.assert_allclose(
        evaluated, fused(inputs, training=False)["sequence_output"].numpy())


_JAX_SCRIPT = textwrap.dedent("""
    import re, sys
    import numpy as np
    import jax, keras
    assert keras.backend.backend() == "jax"
    from albert_tf import AlbertConfig, AlbertPretrainer, losses
    config = AlbertConfig.from_json_file(sys.argv[1])
    model = AlbertPretrainer(config, dtype="mixed_bfloat16")
    b, t, p = 3, 7, 2
    rng = np.random.default_rng(0)
    batch = {"input_ids": rng.integers(1, config.vocab_size, (b, t)).astype("int32"),
             "input_mask": np.ones((b, t), "int32"),
             "segment_ids": np.zeros((b, t), "int32"),
             "masked_lm_positions": np.ones((b, p), "int32"),
             "masked_lm_ids": np.ones((b, p), "int32"),
             "masked_lm_weights": np.ones((b, p), "float32"),
             "next_sentence_labels": np.zeros((b, 1), "int32")}
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    def loss_fn(tv, batch):
        out, _ = model.stateless_call(tv, ntv, batch, training=True)
        return losses.pretraining_loss(out, batch)[0]
    text = jax.jit(jax.grad(loss_fn)).lower(tv, batch).as_text()
    for line in text.splitlines():
        if "stablehlo.scatter" in line or "-> tensor<" in line:
            print(line)
""")


@pytest.mark.jax
def test_embedding_gradients_on_jax_are_float32(tmp_path):
    """The same check on Keras's JAX backend (the GPU benchmark's): the
    StableHLO JAX hands to XLA has no bf16 or token-type scatter."""
    pytest.importorskip("jax")
    config = helpers.tiny_config(vocab_size=97)
    config.to_json_file(tmp_path / "config.json")
    script = tmp_path / "hlo.py"
    script.write_text(_JAX_SCRIPT)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    text = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "config.json")],
        check=True, env=env, timeout=300, capture_output=True,
        text=True).stdout
    lines = text.splitlines()
    signatures = []
    for i, line in enumerate(lines):
        if "stablehlo.scatter" in line:
            # The op's type signature closes its region a few lines on.
            for follow in lines[i:i + 12]:
                match = re.search(r"-> tensor<([^>]*)>", follow)
                if match:
                    signatures.append(match.group(1))
                    break
    e, v = config.embedding_size, config.vocab_size
    assert f"{v}x{e}xf32" in signatures, signatures
    assert not [s for s in signatures if s.startswith(f"{v}x{e}x")
                and s != f"{v}x{e}xf32"], signatures
    assert not [s for s in signatures if s.startswith(
        f"{config.type_vocab_size}x{e}x")], signatures


_NO_TF_SCRIPT = textwrap.dedent("""
    import sys

    class _NoTensorFlow:
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, _NoTensorFlow())
    import numpy as np
    import keras
    assert keras.backend.backend() == "jax"
    from albert_tf import AlbertConfig, AlbertPretrainer, losses
    config = AlbertConfig(vocab_size=31, embedding_size=6, hidden_size=8,
                          num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=12, max_position_embeddings=16)
    model = AlbertPretrainer(config, dtype="mixed_bfloat16",
                             attention_implementation="fused")
    b, t = 2, 7
    batch = {"input_ids": np.ones((b, t), "int32"),
             "input_mask": np.ones((b, t), "int32"),
             "segment_ids": np.zeros((b, t), "int32"),
             "masked_lm_positions": np.ones((b, 2), "int32"),
             "masked_lm_ids": np.ones((b, 2), "int32"),
             "masked_lm_weights": np.ones((b, 2), "float32"),
             "next_sentence_labels": np.zeros((b, 1), "int32")}
    loss = losses.pretraining_loss(model(batch), batch)[0]
    assert np.isfinite(float(loss))
    assert not [m for m in sys.modules if m.split(".")[0] == "tensorflow"]
    print("OK")
""")


@pytest.mark.jax
def test_layers_run_on_jax_without_tensorflow(tmp_path):
    """The GPU benchmark machine (bench/gpu/) has JAX and no TensorFlow:
    importing albert_tf's layers, models and losses must not need it."""
    pytest.importorskip("jax")
    script = tmp_path / "no_tf.py"
    script.write_text(_NO_TF_SCRIPT)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, str(script)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "OK" in result.stdout, \
        result.stderr[-3000:]
