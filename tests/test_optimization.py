"""Optimizers, schedule and clipping against the original's update rule.

The reference below is a NumPy transcription of google-research/albert
optimization.py (AdamWeightDecayOptimizer) and lamb_optimizer.py
(LAMBOptimizer), with the constants of their create_optimizer written out
here rather than imported, so a wrong library constant fails.
"""

import contextlib
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from albert_tf import AlbertConfig
from albert_tf import AlbertEncoder
from albert_tf.optimization import AdamWeightDecayOptimizer
from albert_tf.optimization import LAMBOptimizer
from albert_tf.optimization import WarmupPolynomialDecay
from albert_tf.optimization import clip_by_global_norm
from albert_tf.optimization import create_optimizer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Paths as our encoder names them; sizes mutually distinct.
KERNEL = "encoder/group_0/inner_group_0/attention/query/kernel"  # [3, 4]
BIAS = "encoder/group_0/inner_group_0/ffn_output/bias"  # [5]
GAMMA = "encoder/embeddings/layer_norm/gamma"  # [2]
BETA = "encoder/group_0/inner_group_0/attention_layer_norm/beta"  # [6]
EMBEDDINGS = "encoder/embeddings/word_embeddings"  # [7, 3], sparse gradient
ZERO_KERNEL = "encoder/pooler/kernel"  # [2, 9], starts at 0: ||w|| = 0
IDLE_KERNEL = "encoder/idle/kernel"  # [8], 0 and gradient 0: ||u|| = 0 too
# The original's "LayerNorm|layer_norm|bias" exclusions, spelled out.
DECAYED = {KERNEL, EMBEDDINGS, ZERO_KERNEL, IDLE_KERNEL}
NOT_DECAYED = {BIAS, GAMMA, BETA}
SHAPES = {KERNEL: (3, 4), BIAS: (5,), GAMMA: (2,), BETA: (6,),
          EMBEDDINGS: (7, 3), ZERO_KERNEL: (2, 9), IDLE_KERNEL: (8,)}
# Gradient scale per variable; BIAS's is small enough that epsilon = 1e-6
# (not 1e-7) and its place outside the sqrt matter at the test tolerance.
GRAD_SCALE = {KERNEL: 1.0, BIAS: 1e-5, GAMMA: 0.5, BETA: 2.0,
              EMBEDDINGS: 0.3, ZERO_KERNEL: 0.7, IDLE_KERNEL: 0.0}
EMBEDDING_ROWS = [[1, 4, 1], [0, 6, 2], [4, 4, 5], [3, 1, 0]]  # per step
NUM_STEPS = 4


def reference_step(w, m, v, g, lr, decay, adapt):
    """One original update of one variable; adapt=None means AdamW."""
    m = 0.9 * m + (1.0 - 0.9) * g
    v = 0.999 * v + (1.0 - 0.999) * g * g
    u = m / (np.sqrt(v) + 1e-6)  # No bias correction; epsilon outside.
    if decay:
        u = u + 0.01 * w  # Added to the update, before the trust ratio.
    ratio = 1.0
    if adapt:
        w_norm, u_norm = np.linalg.norm(w), np.linalg.norm(u)
        ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
    return w - ratio * lr * u, m, v


def reference_lr(step, init_lr, num_train_steps, num_warmup_steps):
    if step < num_warmup_steps:
        return init_lr * step / num_warmup_steps
    return init_lr * (1.0 - min(step, num_train_steps) / num_train_steps)


def make_variable(path, value):
    """A keras.Variable whose `path` is `path` (its `name` is the leaf)."""
    *scopes, name = path.split("/")
    with contextlib.ExitStack() as stack:
        for scope in scopes:
            stack.enter_context(keras.name_scope(scope))
        return keras.Variable(value, name=name)


def initial_values():
    rng = np.random.default_rng(7)
    values = {p: rng.normal(size=s).astype("float32")
              for p, s in SHAPES.items()}
    values[GAMMA] = np.ones(SHAPES[GAMMA], "float32")
    values[ZERO_KERNEL] = np.zeros(SHAPES[ZERO_KERNEL], "float32")
    values[IDLE_KERNEL] = np.zeros(SHAPES[IDLE_KERNEL], "float32")
    return values


def dense_gradients():
    """[step][path] float64 gradients; EMBEDDINGS rows come from lookups."""
    rng = np.random.default_rng(11)
    steps = []
    for step in range(NUM_STEPS):
        grads = {p: GRAD_SCALE[p] * rng.normal(size=s)
                 for p, s in SHAPES.items()}
        rows = rng.normal(size=(3, 3)) * GRAD_SCALE[EMBEDDINGS]
        grads[EMBEDDINGS] = np.zeros(SHAPES[EMBEDDINGS])
        np.add.at(grads[EMBEDDINGS], EMBEDDING_ROWS[step], rows)
        grads["rows"] = rows
        steps.append(grads)
    return steps


def run_optimizer(optimizer_name):
    init_lr, num_train_steps, num_warmup_steps = 0.1, 10, 2
    optimizer = create_optimizer(init_lr, num_train_steps, num_warmup_steps,
                                 optimizer=optimizer_name)
    values = initial_values()
    variables = {p: make_variable(p, values[p]) for p in SHAPES}
    optimizer.build(list(variables.values()))

    @tf.function
    def apply(grads):
        optimizer.apply_gradients(
            [(grads[p], variables[p]) for p in SHAPES])

    all_grads = dense_gradients()
    for step, step_grads in enumerate(all_grads):
        grads = {p: tf.constant(step_grads[p], tf.float32) for p in SHAPES}
        # As an embedding lookup gives: the gathered rows only.
        grads[EMBEDDINGS] = tf.IndexedSlices(
            tf.constant(step_grads["rows"], tf.float32),
            tf.constant(EMBEDDING_ROWS[step]),
            tf.constant(SHAPES[EMBEDDINGS], tf.int64))
        apply(grads)
    actual = {p: v.numpy() for p, v in variables.items()}

    expected = {p: values[p].astype("float64") for p in SHAPES}
    moments = {p: (np.zeros(SHAPES[p]), np.zeros(SHAPES[p])) for p in SHAPES}
    for step, step_grads in enumerate(all_grads):
        lr = reference_lr(step, init_lr, num_train_steps, num_warmup_steps)
        for p in SHAPES:
            adapt = optimizer_name == "lamb" and p in DECAYED
            expected[p], m, v = reference_step(
                expected[p], *moments[p], step_grads[p], lr,
                decay=p in DECAYED, adapt=adapt)
            moments[p] = (m, v)
    return optimizer, actual, expected


@pytest.mark.parametrize("optimizer_name", ["lamb", "adamw"])
def test_steps_match_numpy_transcription_of_original(optimizer_name):
    optimizer, actual, expected = run_optimizer(optimizer_name)
    assert int(optimizer.iterations) == NUM_STEPS
    for path in SHAPES:
        np.testing.assert_allclose(actual[path], expected[path], rtol=2e-5,
                                   atol=1e-7, err_msg=path)
    # The branches the fixture exists for were taken.
    assert np.all(actual[IDLE_KERNEL] == 0.0)  # ratio 1.0, not 0/0 = NaN
    assert np.any(actual[ZERO_KERNEL] != 0.0)  # ratio 1.0 from ||w|| = 0
    assert isinstance(optimizer, {"lamb": LAMBOptimizer,
                                  "adamw": AdamWeightDecayOptimizer}
                      [optimizer_name])


def test_lamb_zero_update_norm_gives_ratio_one():
    """||w|| > 0, ||u|| = 0 (no decay, zero gradient): w stays, not NaN."""
    optimizer = LAMBOptimizer(learning_rate=0.1, weight_decay_rate=0.0)
    kernel = make_variable(KERNEL, np.ones(SHAPES[KERNEL], "float32"))
    optimizer.apply_gradients([(tf.zeros(SHAPES[KERNEL]), kernel)])
    np.testing.assert_array_equal(kernel.numpy(), 1.0)


def test_decay_and_adaptation_sets_match_on_full_path():
    optimizer = create_optimizer(0.1, 10, 2, optimizer="lamb")
    decayed = {p for p in SHAPES if optimizer.do_use_weight_decay(p)}
    adapted = {p for p in SHAPES if optimizer.do_layer_adaptation(p)}
    assert decayed == DECAYED
    assert adapted == DECAYED
    # The leaf names alone would miss the LayerNorm exclusion.
    assert optimizer.do_use_weight_decay("gamma")
    # TF1 names of the original are excluded the same way.
    assert not optimizer.do_use_weight_decay(
        "bert/encoder/transformer/group_0/inner_group_0/LayerNorm/gamma")


def test_encoder_exclusions_are_layer_norms_and_biases():
    """Renaming a LayerNorm to something without "layer_norm" fails here."""
    config = AlbertConfig(
        vocab_size=13, embedding_size=4, hidden_size=6, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=5, max_position_embeddings=8)
    encoder = AlbertEncoder(config)
    paths = {v.path for v in encoder.trainable_variables}
    # LayerNormalization weights are gamma/beta; Dense biases are bias.
    expected_excluded = {p for p in paths
                         if p.rsplit("/", 1)[1] in ("gamma", "beta", "bias")}
    # gamma + beta of 3 LayerNorms; biases of E->H, q, k, v, o, 2 FFN, pooler.
    assert len(expected_excluded) == 3 * 2 + 8
    for name in ("lamb", "adamw"):
        optimizer = create_optimizer(1e-3, 10, 1, optimizer=name)
        excluded = {p for p in paths if not optimizer.do_use_weight_decay(p)}
        assert excluded == expected_excluded
    assert not any(optimizer.do_use_weight_decay(p) for p in paths
                   if "layer_norm" in p)


def test_keras_decay_and_clipping_are_not_used():
    for cls in (AdamWeightDecayOptimizer, LAMBOptimizer):
        optimizer = cls(learning_rate=0.1)
        assert optimizer.weight_decay is None
        assert optimizer.clipnorm is None
        assert optimizer.global_clipnorm is None
        assert optimizer.clipvalue is None
        for kwarg in ("weight_decay", "clipnorm"):
            with pytest.raises(TypeError):
                cls(learning_rate=0.1, **{kwarg: 1.0})


@pytest.mark.parametrize("cls", [AdamWeightDecayOptimizer, LAMBOptimizer])
def test_global_clipnorm_equals_clipping_in_the_train_step(cls):
    """Keras's fit clips through global_clipnorm; the runners clip the
    gradients themselves. Both must give the same update."""
    rng = np.random.default_rng(4)
    values = [rng.normal(size=(3, 2)).astype("float32"),
              rng.normal(size=(2,)).astype("float32")]
    grads = [tf.constant(rng.normal(size=v.shape).astype("float32") * 3)
             for v in values]
    assert float(tf.linalg.global_norm(grads)) > 2.0  # clipping matters
    results = []
    for clip_in_optimizer in (True, False):
        variables = [tf.Variable(v) for v in values]
        kwargs = {"global_clipnorm": 1.0} if clip_in_optimizer else {}
        optimizer = cls(learning_rate=0.1, **kwargs)
        given = grads if clip_in_optimizer else clip_by_global_norm(grads)[0]
        optimizer.apply_gradients(zip(given, variables))
        results.append([v.numpy() for v in variables])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    unclipped = [tf.Variable(v) for v in values]
    cls(learning_rate=0.1).apply_gradients(zip(grads, unclipped))
    assert not np.allclose(unclipped[0].numpy(), results[0][0])


def test_lamb_empty_layer_adaptation_list_falls_back_like_original():
    optimizer = LAMBOptimizer(exclude_from_layer_adaptation=[])
    assert not optimizer.do_layer_adaptation(BIAS)
    optimizer = LAMBOptimizer(exclude_from_layer_adaptation=["gamma"])
    assert optimizer.do_layer_adaptation(BIAS)
    assert not optimizer.do_layer_adaptation(GAMMA)


def test_weight_decay_rate_zero_disables_decay():
    optimizer = create_optimizer(0.1, 10, 2, optimizer="adamw",
                                 weight_decay_rate=0.0)
    assert not any(optimizer.do_use_weight_decay(p) for p in SHAPES)


def test_unknown_optimizer_raises():
    with pytest.raises(ValueError, match="'sgd'"):
        create_optimizer(0.1, 10, 2, optimizer="sgd")


def test_optimizer_config_round_trip():
    optimizer = create_optimizer(0.01, 30, 3, start_warmup_step=2,
                                 poly_power=0.5, optimizer="lamb")
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(clone, LAMBOptimizer)
    assert clone.get_config() == optimizer.get_config()
    assert float(clone.learning_rate) == float(optimizer.learning_rate) == 0.0


# init_lr 0.5, T = 40, W = 8, poly_power 1 unless given.
@pytest.mark.parametrize("step, kwargs, expected", [
    (0, {}, 0.0),                        # warmup starts from 0
    (4, {}, 0.5 * 4 / 8),                # mid-warmup
    (7, {}, 0.5 * 7 / 8),                # last warmup step
    (8, {}, 0.5 * (1 - 8 / 40)),         # decay counted from step 0: a drop
    (24, {}, 0.5 * (1 - 24 / 40)),       # mid-decay
    (24, {"poly_power": 2.0}, 0.5 * (1 - 24 / 40) ** 2),
    (40, {}, 0.0),                       # T
    (55, {}, 0.0),                       # beyond T: no cycle, not negative
    (0, {"num_warmup_steps": 0}, 0.5),   # no warmup at all
    (5, {"start_warmup_step": 5}, 0.0),
    (9, {"start_warmup_step": 5}, 0.5 * 4 / 8),
    (13, {"start_warmup_step": 5}, 0.5 * (1 - 13 / 40)),
    # Documented deviation: the original gives 0.5 * (3 - 5) / 8 < 0 here.
    (3, {"start_warmup_step": 5}, 0.0),
])
def test_schedule(step, kwargs, expected):
    kwargs = {"num_warmup_steps": 8, **kwargs}
    schedule = WarmupPolynomialDecay(init_lr=0.5, num_train_steps=40, **kwargs)
    assert float(schedule(tf.constant(step, tf.int64))) == pytest.approx(
        expected, rel=1e-6, abs=1e-9)


def test_schedule_is_serialisable_and_validates():
    schedule = WarmupPolynomialDecay(0.5, 40, 8, start_warmup_step=3,
                                     poly_power=2.0)
    clone = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule))
    assert clone.get_config() == schedule.get_config()
    with pytest.raises(ValueError, match="num_train_steps=0"):
        WarmupPolynomialDecay(0.5, 0)


def test_clip_by_global_norm():
    grads = [tf.constant([3.0, 0.0]), None, tf.constant([[4.0]])]
    clipped, norm = clip_by_global_norm(grads)
    assert float(norm) == pytest.approx(5.0)
    assert clipped[1] is None
    np.testing.assert_allclose(clipped[0], [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped[2], [[0.8]], rtol=1e-6)
    small, _ = clip_by_global_norm([tf.constant([0.3, 0.4])])
    np.testing.assert_array_equal(small[0], np.float32([0.3, 0.4]))


MIRRORED_SCRIPT = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from albert_tf.distribute import get_strategy
    from albert_tf.optimization import clip_by_global_norm, create_optimizer

    GLOBAL_BATCH = 6
    rng = np.random.default_rng(3)
    x = rng.normal(size=(GLOBAL_BATCH, 5)).astype("float32")
    y = rng.normal(size=(GLOBAL_BATCH, 2)).astype("float32")
    init = [rng.normal(size=(5, 2)).astype("float32"),
            rng.normal(size=(2,)).astype("float32")]

    def train(strategy, name):
        with strategy.scope():
            model = keras.Sequential([keras.Input((5,)),
                                      keras.layers.Dense(2, name="dense")])
            model.set_weights(init)
            optimizer = create_optimizer(0.05, 10, 1, optimizer=name)
            optimizer.build(model.trainable_variables)
        n = strategy.num_replicas_in_sync
        def shard(ctx):
            size = GLOBAL_BATCH // n
            start = ctx.replica_id_in_sync_group * size
            return x[start:start + size], y[start:start + size]
        inputs = strategy.experimental_distribute_values_from_function(shard)

        @tf.function
        def step(inputs):
            def replica_step(batch):
                features, labels = batch
                with tf.GradientTape() as tape:
                    error = model(features) - labels
                    loss = tf.reduce_sum(error ** 2) / GLOBAL_BATCH
                grads = tape.gradient(loss, model.trainable_variables)
                # Large clip norm: inactive, so one device and two agree.
                grads, _ = clip_by_global_norm(grads, 1e6)
                optimizer.apply_gradients(
                    zip(grads, model.trainable_variables))
            strategy.run(replica_step, args=(inputs,))

        for _ in range(4):
            step(inputs)
        return n, [w.numpy() for w in model.weights], optimizer

    for name in ("lamb", "adamw"):
        n, mirrored, optimizer = train(get_strategy("mirrored"), name)
        assert n == 2, n
        assert int(optimizer.iterations.numpy()) == 4
        assert optimizer.do_use_weight_decay("dense/kernel")
        _, single, _ = train(tf.distribute.get_strategy(), name)
        assert not np.allclose(mirrored[0], init[0])
        for a, b in zip(mirrored, single):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    print("MIRRORED_OK")
""")


def test_optimizers_under_mirrored_strategy_on_two_cpus():
    """Own process: logical devices must be set before TF initialises."""
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "CUDA_VISIBLE_DEVICES": "",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert "MIRRORED_OK" in result.stdout
