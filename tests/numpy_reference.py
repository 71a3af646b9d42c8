"""A NumPy transcription of the original ALBERT forward pass, for parity tests.

It reads weights by their original TF1 names and shares no code with
albert_tf, so a wrong name table, op order or constant shows up as a
numerical mismatch. Computed in float64.
"""

import math

import numpy as np


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi)
                                    * (x + 0.044715 * x ** 3)))


def layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _w(weights, name):
    return np.asarray(weights[name], np.float64)


def block(weights, prefix, x, mask, num_heads):
    b, t, h = x.shape
    d = h // num_heads

    def dense(name, inp):
        return inp @ _w(weights, prefix + name + "/kernel") + _w(
            weights, prefix + name + "/bias")

    def heads(y):
        return y.reshape(b, t, num_heads, d).transpose(0, 2, 1, 3)

    q = heads(dense("attention_1/self/query", x))
    k = heads(dense("attention_1/self/key", x))
    v = heads(dense("attention_1/self/value", x))
    logits = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)
    logits = logits + (1.0 - mask[:, None, None, :]) * -10000.0
    context = (softmax(logits) @ v).transpose(0, 2, 1, 3).reshape(b, t, h)
    attn = dense("attention_1/output/dense", context)
    x = layer_norm(x + attn, _w(weights, prefix + "LayerNorm/gamma"),
                   _w(weights, prefix + "LayerNorm/beta"))
    inter = gelu_tanh(dense("ffn_1/intermediate/dense", x))
    ffn = dense("ffn_1/intermediate/output/dense", inter)
    return layer_norm(x + ffn, _w(weights, prefix + "LayerNorm_1/gamma"),
                      _w(weights, prefix + "LayerNorm_1/beta"))


def encoder(weights, config, input_ids, input_mask, segment_ids):
    """Returns (sequence_output, pooled_output, all block outputs)."""
    t = input_ids.shape[1]
    x = _w(weights, "bert/embeddings/word_embeddings")[input_ids]
    x = x + _w(weights, "bert/embeddings/token_type_embeddings")[segment_ids]
    x = x + _w(weights, "bert/embeddings/position_embeddings")[:t][None]
    x = layer_norm(x, _w(weights, "bert/embeddings/LayerNorm/gamma"),
                   _w(weights, "bert/embeddings/LayerNorm/beta"))
    if config["embedding_size"] != config["hidden_size"]:
        x = x @ _w(weights, "bert/encoder/embedding_hidden_mapping_in/kernel")
        x = x + _w(weights, "bert/encoder/embedding_hidden_mapping_in/bias")
    mask = input_mask.astype(np.float64)
    layers, groups = config["num_hidden_layers"], config["num_hidden_groups"]
    outputs = []
    for layer in range(layers):
        group = int(layer / layers * groups)
        for inner in range(config["inner_group_num"]):
            prefix = (f"bert/encoder/transformer/group_{group}/"
                      f"inner_group_{inner}/")
            x = block(weights, prefix, x, mask, config["num_attention_heads"])
            outputs.append(x)
    pooled = np.tanh(x[:, 0] @ _w(weights, "bert/pooler/dense/kernel")
                     + _w(weights, "bert/pooler/dense/bias"))
    return x, pooled, outputs


def pretraining_heads(weights, sequence_output, pooled_output, positions):
    """Returns (mlm_logits [B, P, V], sop_logits [B, 2])."""
    gathered = np.take_along_axis(sequence_output, positions[:, :, None],
                                  axis=1)
    x = gelu_tanh(gathered @ _w(weights, "cls/predictions/transform/dense/kernel")
                  + _w(weights, "cls/predictions/transform/dense/bias"))
    x = layer_norm(x, _w(weights, "cls/predictions/transform/LayerNorm/gamma"),
                   _w(weights, "cls/predictions/transform/LayerNorm/beta"))
    mlm = x @ _w(weights, "bert/embeddings/word_embeddings").T + _w(
        weights, "cls/predictions/output_bias")
    sop = pooled_output @ _w(weights, "cls/seq_relationship/output_weights").T
    sop = sop + _w(weights, "cls/seq_relationship/output_bias")
    return mlm, sop


def pretraining_losses(mlm_logits, sop_logits, masked_lm_ids,
                       masked_lm_weights, labels):
    """The original's MLM loss (with the 1e-5 term) and mean SOP CE."""
    lp = log_softmax(mlm_logits)
    nll = -np.take_along_axis(lp, masked_lm_ids[..., None], -1)[..., 0]
    mlm = (masked_lm_weights * nll).sum() / (masked_lm_weights.sum() + 1e-5)
    sop = -np.take_along_axis(log_softmax(sop_logits), labels[:, None],
                              -1).mean()
    return mlm, sop
