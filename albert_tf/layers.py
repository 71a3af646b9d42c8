"""ALBERT building blocks: embeddings and the post-LN transformer block.

Dimension legend used in shape comments:
  B = batch size, T = sequence length, V = vocab_size, E = embedding_size,
  H = hidden_size, N = num_attention_heads, D = H / N (head size),
  I = intermediate_size.

Only `keras.ops` and `keras.layers` are used inside `call()`, so the same code
runs on Keras's TensorFlow and JAX backends.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from albert_tf.config import AlbertConfig
from albert_tf.config import from_keras_config

# As the original's tf.contrib.layers.layer_norm; Keras's default is 1e-3.
LAYER_NORM_EPSILON = 1e-12
# As the original's attention mask: (1 - mask) * -10000 added to the logits.
ATTENTION_MASK_ADDER = -10000.0
# "original": the original's op order (matmul, scale, mask, float32 softmax),
# which the float32 parity tests pin. "fused": keras.ops.dot_product_attention,
# which Keras's JAX backend sends to cuDNN's fused kernel on GPUs (and plain
# ops elsewhere); attention-probability dropout then falls back to "original".
ATTENTION_IMPLEMENTATIONS = ("original", "fused")


def gelu_tanh(x):
    """The original modeling.gelu: 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))."""
    return keras.activations.gelu(x, approximate=True)


def gelu_exact(x):
    """The erf GELU (HF's "gelu"); not what the original ALBERT computes."""
    return keras.activations.gelu(x, approximate=False)


_ACTIVATIONS = {
    "gelu": gelu_tanh,
    "gelu_new": gelu_tanh,
    "gelu_exact": gelu_exact,
    "relu": keras.activations.relu,
    "tanh": keras.activations.tanh,
    "swish": keras.activations.silu,
}


def get_activation(hidden_act: str):
    """Maps a config `hidden_act` to a function (see config.ACTIVATIONS)."""
    try:
        return _ACTIVATIONS[hidden_act]
    except KeyError:
        raise ValueError(
            f"hidden_act={hidden_act!r} is not one of {sorted(_ACTIVATIONS)}"
        ) from None


def initializer(config: AlbertConfig) -> keras.initializers.Initializer:
    """The original create_initializer: normal cut at 2 stddev."""
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def _add_bias(x, bias):
    """x + bias; on TensorFlow as BiasAdd, the op its CPU graph optimizer
    (grappler's remapper) can fuse into the preceding 2-D MatMul."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # Only the TF backend has BiasAdd.
        return tf.nn.bias_add(x, bias)
    return ops.add(x, bias)


@keras.saving.register_keras_serializable(package="albert_tf")
class MatrixDense(keras.layers.Dense):
    """Dense on [..., In] as one [N, In] x [In, Out] matmul plus a bias add.

    The original's transformer works on [B*T, H] matrices
    (modeling.reshape_to_matrix). Keras's Dense uses tensordot and an Add
    instead; this form made ALBERT-base's CPU train step about 5% faster
    (2.82 -> 2.68 s in bench/bench_pretraining.py). Same variables, names
    and values (tests/test_encoder.py compares it with Dense).
    """

    def call(self, inputs, training=None):
        if self.quantization_mode or self.lora_enabled:  # Keras's own paths.
            return super().call(inputs, training=training)
        leading = ops.shape(inputs)[:-1]
        x = ops.reshape(inputs, (-1, self.kernel.shape[0]))  # [N, In]
        x = ops.matmul(x, ops.cast(self.kernel, x.dtype))  # [N, Out]
        if self.use_bias:
            x = _add_bias(x, ops.cast(self.bias, x.dtype))
        if self.activation is not None:
            x = self.activation(x)
        if len(inputs.shape) == 2:
            return x
        return ops.reshape(x, (*leading, self.units))  # [..., Out]


def dense(units: int, config: AlbertConfig, name: str, dtype, activation=None,
          use_bias: bool = True) -> keras.layers.Dense:
    return MatrixDense(
        units, activation=activation, use_bias=use_bias,
        kernel_initializer=initializer(config), name=name, dtype=dtype)


def layer_norm(name: str, dtype) -> keras.layers.LayerNormalization:
    return keras.layers.LayerNormalization(
        axis=-1, epsilon=LAYER_NORM_EPSILON, name=name, dtype=dtype)


def attention_mask_adder(input_mask):
    """[B, T] int mask -> [B, 1, 1, T] float32 additive key mask."""
    mask = ops.cast(input_mask, "float32")
    return ((1.0 - mask) * ATTENTION_MASK_ADDER)[:, None, None, :]


class ConfigLayer(keras.layers.Layer):
    """A layer built from an AlbertConfig, serialised as its JSON dict."""

    def __init__(self, config: AlbertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        return cls(**from_keras_config(config))


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertEmbeddings(ConfigLayer):
    """word + token type + position (sliced to T), then LayerNorm and dropout.

    All at width E: the E -> H projection lives in the encoder, as in the
    original (`bert/encoder/embedding_hidden_mapping_in`).

    The tables are read in float32 under every dtype policy (autocast off,
    as Keras's own Embedding) and the sum is cast to the compute dtype
    afterwards. Two reasons, both about the backward pass: a lookup from a
    bf16 copy of the table makes its gradient a bf16 scatter-add, which GPUs
    run as compare-and-swap loops; and token types (2 rows, every token of
    a batch hitting one of them) were the worst case of that. Token types
    are therefore a one-hot product, as the original always computes them
    (modeling.embedding_postprocessor: "always faster for a small
    vocabulary"), whose gradient is a reduction, not a scatter.

    use_one_hot_embeddings: look words up as one_hot(ids) @ table, the
        original's TPU choice (modeling.embedding_lookup); else a gather.
    """

    def __init__(self, config: AlbertConfig, use_one_hot_embeddings: bool = False,
                 **kwargs):
        super().__init__(config, **kwargs)
        self.use_one_hot_embeddings = bool(use_one_hot_embeddings)
        self.layer_norm = layer_norm("layer_norm", self.dtype_policy)
        self.dropout = keras.layers.Dropout(
            config.hidden_dropout_prob, dtype=self.dtype_policy, name="dropout")

    def build(self, input_shape=None):
        c = self.config
        init = initializer(c)
        # autocast=False: read in float32 inside call(), cast explicitly.
        self.word_embeddings = self.add_weight(
            shape=(c.vocab_size, c.embedding_size), initializer=init,
            name="word_embeddings", autocast=False)
        self.token_type_embeddings = self.add_weight(
            shape=(c.type_vocab_size, c.embedding_size), initializer=init,
            name="token_type_embeddings", autocast=False)
        self.position_embeddings = self.add_weight(
            shape=(c.max_position_embeddings, c.embedding_size),
            initializer=init, name="position_embeddings", autocast=False)
        self.layer_norm.build((None, None, c.embedding_size))

    def call(self, input_ids, segment_ids, training=None):
        c = self.config
        seq_length = ops.shape(input_ids)[1]
        table = ops.convert_to_tensor(self.word_embeddings)  # [V, E] float32
        if self.use_one_hot_embeddings:
            # The original's TPU lookup: one matmul, no gather or scatter.
            # Exact on CPU; where float32 matmuls round (TPU's default bf16
            # passes, TF32 on GPUs) it rounds as the original's did.
            one_hot = ops.one_hot(input_ids, c.vocab_size,
                                  dtype=table.dtype)  # [B, T, V]
            x = ops.matmul(one_hot, table)  # [B, T, E]
        else:
            x = ops.take(table, input_ids, axis=0)  # [B, T, E]
        # Same summation order as the original: word, += type, += position.
        x = x + token_type_lookup(self.token_type_embeddings, segment_ids)
        x = x + ops.convert_to_tensor(
            self.position_embeddings)[None, :seq_length, :]
        x = self.layer_norm(ops.cast(x, self.compute_dtype))
        return self.dropout(x, training=training)

    def get_config(self):
        return {**super().get_config(),
                "use_one_hot_embeddings": self.use_one_hot_embeddings}


def token_type_lookup(table, segment_ids):
    """one_hot(segment_ids) @ table, [B, T] ids -> [B, T, E] float32.

    Written as a broadcast product summed over the (2-row) type axis rather
    than a matmul: the same one-hot contraction as the original's, but exact
    on every backend (a float32 matmul may run in TF32 or bf16 passes), and
    XLA fuses it into one elementwise kernel whose gradient is a reduction.
    """
    table = ops.convert_to_tensor(table)  # [types, E]
    one_hot = ops.one_hot(segment_ids, table.shape[0],
                          dtype=table.dtype)  # [B, T, types]
    return ops.sum(one_hot[..., None] * table, axis=-2)  # [B, T, E]


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertAttention(ConfigLayer):
    """Multi-head self-attention, as the original `attention_1` scope.

    attention_implementation: one of ATTENTION_IMPLEMENTATIONS (same
    variables either way).
    """

    def __init__(self, config: AlbertConfig,
                 attention_implementation: str = "original", **kwargs):
        super().__init__(config, **kwargs)
        check_attention_implementation(attention_implementation)
        self.attention_implementation = attention_implementation
        h, dtype = config.hidden_size, self.dtype_policy
        self.query = dense(h, config, "query", dtype)
        self.key = dense(h, config, "key", dtype)
        self.value = dense(h, config, "value", dtype)
        self.output_dense = dense(h, config, "output", dtype)
        self.attention_dropout = keras.layers.Dropout(
            config.attention_probs_dropout_prob, dtype=dtype,
            name="attention_dropout")

    def build(self, input_shape=None):
        h = self.config.hidden_size
        for layer in (self.query, self.key, self.value, self.output_dense):
            layer.build((None, None, h))

    def _split_heads(self, x):
        c = self.config
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(
            x, (batch, length, c.num_attention_heads, c.attention_head_size))
        return ops.transpose(x, (0, 2, 1, 3))  # [B, N, T, D]

    def call(self, x, input_mask, training=None):
        if self.attention_implementation == "fused" and not (
                training and self.config.attention_probs_dropout_prob > 0):
            return self._fused(x, input_mask)
        q = self._split_heads(self.query(x))  # [B, N, T, D]
        k = self._split_heads(self.key(x))
        v = self._split_heads(self.value(x))
        # As the original: matmul, then scale; mask and softmax in float32.
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))  # [B, N, T, T]
        scores = ops.cast(scores, "float32")
        scores = scores * (1.0 / math.sqrt(self.config.attention_head_size))
        scores = scores + attention_mask_adder(input_mask)  # [B, N, T, T]
        probs = ops.softmax(scores, axis=-1)
        probs = ops.cast(probs, self.compute_dtype)
        probs = self.attention_dropout(probs, training=training)
        context = ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3))
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        context = ops.reshape(context, (batch, length, self.config.hidden_size))
        return self.output_dense(context)  # [B, T, H]

    def _fused(self, x, input_mask):
        """keras.ops.dot_product_attention on [B, T, N, D] (its layout)."""
        c = self.config
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        shape = (batch, length, c.num_attention_heads, c.attention_head_size)
        q = ops.reshape(self.query(x), shape)  # [B, T, N, D]
        k = ops.reshape(self.key(x), shape)
        v = ops.reshape(self.value(x), shape)
        # [B, 1, T, T], the layout keras.layers.MultiHeadAttention passes:
        # JAX's cuDNN path checks for full [T, S] mask dimensions and falls
        # back to plain XLA ops otherwise.
        mask = ops.broadcast_to(
            ops.cast(input_mask, "bool")[:, None, None, :],
            (batch, 1, length, length))
        context = ops.dot_product_attention(
            q, k, v, mask=mask, scale=1.0 / math.sqrt(c.attention_head_size))
        context = ops.reshape(context, (batch, length, c.hidden_size))
        return self.output_dense(context)  # [B, T, H]

    def get_config(self):
        return {**super().get_config(),
                "attention_implementation": self.attention_implementation}


def check_attention_implementation(value: str) -> None:
    if value not in ATTENTION_IMPLEMENTATIONS:
        raise ValueError(f"attention_implementation={value!r} is not one of "
                         f"{ATTENTION_IMPLEMENTATIONS}")


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertTransformerBlock(ConfigLayer):
    """One post-LN block, the original `attention_ffn_block`.

    x1 = LN(x + dropout(attention(x))); out = LN_1(x1 + dropout(ffn(x1))).
    """

    def __init__(self, config: AlbertConfig,
                 attention_implementation: str = "original", **kwargs):
        super().__init__(config, **kwargs)
        dtype = self.dtype_policy
        self.attention_implementation = attention_implementation
        self.attention = AlbertAttention(
            config, attention_implementation=attention_implementation,
            name="attention", dtype=dtype)
        self.attention_layer_norm = layer_norm("attention_layer_norm", dtype)
        self.ffn_intermediate = dense(
            config.intermediate_size, config, "ffn_intermediate", dtype,
            activation=get_activation(config.hidden_act))
        self.ffn_output = dense(config.hidden_size, config, "ffn_output", dtype)
        self.ffn_layer_norm = layer_norm("ffn_layer_norm", dtype)
        self.dropout = keras.layers.Dropout(
            config.hidden_dropout_prob, dtype=dtype, name="dropout")

    def build(self, input_shape=None):
        h, i = self.config.hidden_size, self.config.intermediate_size
        self.attention.build()
        self.attention_layer_norm.build((None, None, h))
        self.ffn_intermediate.build((None, None, h))
        self.ffn_output.build((None, None, i))
        self.ffn_layer_norm.build((None, None, h))

    def call(self, x, input_mask, training=None):
        attention_output = self.attention(x, input_mask, training=training)
        attention_output = self.dropout(attention_output, training=training)
        x = self.attention_layer_norm(x + attention_output)  # [B, T, H]
        ffn_output = self.ffn_output(self.ffn_intermediate(x))  # [B, T, H]
        ffn_output = self.dropout(ffn_output, training=training)
        return self.ffn_layer_norm(x + ffn_output)

    def get_config(self):
        return {**super().get_config(),
                "attention_implementation": self.attention_implementation}


@keras.saving.register_keras_serializable(package="albert_tf")
class AlbertGroup(ConfigLayer):
    """`inner_group_num` blocks with their own weights, applied in sequence.

    One group is shared by every layer routed to it (cross-layer sharing).
    """

    def __init__(self, config: AlbertConfig,
                 attention_implementation: str = "original", **kwargs):
        super().__init__(config, **kwargs)
        self.attention_implementation = attention_implementation
        self.inner_groups = [
            AlbertTransformerBlock(
                config, attention_implementation=attention_implementation,
                name=f"inner_group_{j}", dtype=self.dtype_policy)
            for j in range(config.inner_group_num)
        ]
        # tf.train.Checkpoint does not see into Keras's tracked lists: name
        # each block as an attribute too, so object checkpoints include it.
        for j, block in enumerate(self.inner_groups):
            setattr(self, f"inner_group_{j}", block)

    def build(self, input_shape=None):
        for block in self.inner_groups:
            block.build()

    def call(self, x, input_mask, training=None):
        """Returns the output of every inner block, the last one last."""
        outputs = []
        for block in self.inner_groups:
            x = block(x, input_mask, training=training)
            outputs.append(x)
        return outputs

    def get_config(self):
        return {**super().get_config(),
                "attention_implementation": self.attention_implementation}
