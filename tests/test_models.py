import numpy as np
import pytest

import helpers
import numpy_reference as ref
from albert_tf import AlbertClassifier
from albert_tf import AlbertMultipleChoice
from albert_tf import AlbertPretrainer
from albert_tf import AlbertSpanLabeler
from albert_tf import AlbertSquadV2
from albert_tf import losses


def _encoder_reference(weights, config, inputs):
    return ref.encoder(weights, config.to_dict(), inputs["input_ids"],
                       inputs["input_mask"], inputs["segment_ids"])


def test_pretrainer_matches_the_original_heads_and_losses():
    config = helpers.tiny_config()
    model = AlbertPretrainer(config)
    weights = helpers.randomize(model)
    inputs = helpers.random_inputs(config)
    out = model(inputs)
    seq, pooled, _ = _encoder_reference(weights, config, inputs)
    mlm, sop = ref.pretraining_heads(weights, seq, pooled,
                                     inputs["masked_lm_positions"])
    assert tuple(out["mlm_logits"].shape) == (2, 3, 29)
    assert tuple(out["sop_logits"].shape) == (2, 2)
    np.testing.assert_allclose(out["mlm_logits"], mlm, atol=1e-5)
    np.testing.assert_allclose(out["sop_logits"], sop, atol=1e-5)

    rng = np.random.default_rng(3)
    features = {
        "masked_lm_ids": rng.integers(0, 29, (2, 3)).astype("int32"),
        "masked_lm_weights": np.array([[1, 1, 1], [1, 1, 0]], "float32"),
        "next_sentence_labels": np.array([[0], [1]], "int32"),
    }
    total, mlm_loss, sop_loss = losses.pretraining_loss(out, features)
    ref_mlm, ref_sop = ref.pretraining_losses(
        mlm, sop, features["masked_lm_ids"], features["masked_lm_weights"],
        features["next_sentence_labels"][:, 0])
    np.testing.assert_allclose(mlm_loss, ref_mlm, rtol=1e-5)
    np.testing.assert_allclose(sop_loss, ref_sop, rtol=1e-5)
    np.testing.assert_allclose(total, ref_mlm + ref_sop, rtol=1e-5)


def test_mlm_decoder_is_tied_to_word_embeddings():
    model = AlbertPretrainer(helpers.tiny_config())
    # No decoder matrix of its own: only the [V] output bias.
    head = {v.path: tuple(v.shape) for v in model.masked_lm_head.weights}
    assert head == {"masked_lm/transform/kernel": (8, 6),
                    "masked_lm/transform/bias": (6,),
                    "masked_lm/layer_norm/gamma": (6,),
                    "masked_lm/layer_norm/beta": (6,),
                    "masked_lm/output_bias": (29,)}
    inputs = helpers.random_inputs(model.config)
    before = np.asarray(model(inputs)["mlm_logits"])
    table = model.encoder.embeddings.word_embeddings
    table.assign(np.asarray(table) * 2.0)
    assert not np.allclose(before, model(inputs)["mlm_logits"])


def test_mlm_loss_ignores_padding_predictions_and_has_the_epsilon():
    logits = np.log(np.array([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]],
                             "float32"))
    ids = np.array([[0, 2]])
    loss = losses.masked_lm_loss(logits, ids, np.array([[1.0, 0.0]]))
    np.testing.assert_allclose(loss, -np.log(0.5) / (1 + 1e-5), rtol=1e-6)
    # All-padding batches give 0, not NaN.
    assert float(losses.masked_lm_loss(logits, ids, np.zeros((1, 2)))) == 0.0


def test_classifier_head():
    config = helpers.tiny_config()
    model = AlbertClassifier(config, num_labels=3)
    weights = helpers.randomize(model)
    assert tuple(model.classifier.output_weights.shape) == (3, 8)
    inputs = helpers.random_inputs(config)
    out = model(inputs, training=False)
    _, pooled, _ = _encoder_reference(weights, config, inputs)
    expected = pooled @ weights["output_weights"].T + weights["output_bias"]
    np.testing.assert_allclose(out["logits"], expected, atol=1e-5)
    # Classifier dropout 0.1 on the pooled output, only in training.
    assert model.classifier.dropout.rate == 0.1
    regression = AlbertClassifier(config, num_labels=1)
    assert tuple(regression(inputs)["logits"].shape) == (2, 1)
    labels = np.array([0.5, 2.0], "float32")
    pred = np.asarray(regression(inputs)["logits"])[:, 0]
    np.testing.assert_allclose(losses.regression_loss(
        regression(inputs)["logits"], labels),
        np.mean((pred - labels) ** 2), rtol=1e-6)


def test_multiple_choice_scores_each_choice():
    config = helpers.tiny_config()
    model = AlbertMultipleChoice(config, num_choices=4)
    weights = helpers.randomize(model)
    assert tuple(model.classifier.output_weights.shape) == (1, 8)
    rng = np.random.default_rng(5)
    ids = rng.integers(1, 29, (2, 4, 5)).astype("int32")
    mask = np.ones_like(ids)
    segments = np.zeros_like(ids)
    out = model({"input_ids": ids, "input_mask": mask,
                 "segment_ids": segments})
    assert tuple(out["logits"].shape) == (2, 4)
    _, pooled, _ = ref.encoder(weights, config.to_dict(), ids.reshape(8, 5),
                               mask.reshape(8, 5), segments.reshape(8, 5))
    expected = (pooled @ weights["output_weights"].T
                + weights["output_bias"]).reshape(2, 4)
    np.testing.assert_allclose(out["logits"], expected, atol=1e-5)
    # The original's flattened [B, C * T] features give the same logits.
    flat = model({"input_ids": ids.reshape(2, 20),
                  "input_mask": mask.reshape(2, 20),
                  "segment_ids": segments.reshape(2, 20)})
    np.testing.assert_allclose(flat["logits"], out["logits"], atol=1e-6)


def test_squad_v1_head():
    config = helpers.tiny_config()
    model = AlbertSpanLabeler(config)
    weights = helpers.randomize(model)
    assert tuple(model.squad_head.output_weights.shape) == (2, 8)
    inputs = helpers.random_inputs(config)
    out = model(inputs)
    seq, _, _ = _encoder_reference(weights, config, inputs)
    logits = seq @ weights["cls/squad/output_weights"].T + weights[
        "cls/squad/output_bias"]
    np.testing.assert_allclose(out["start_logits"], logits[..., 0], atol=1e-5)
    np.testing.assert_allclose(out["end_logits"], logits[..., 1], atol=1e-5)


def _squad_v2_reference(w, seq, p_mask, start_positions=None, k1=3, k2=2):
    """The original create_v2_model, transcribed in NumPy."""
    def dense(name, x, act=None, bias=True):
        y = x @ w[name + "/kernel"] + (w[name + "/bias"] if bias else 0)
        return np.tanh(y) if act == "tanh" else y

    def end_logits(features):
        h = dense("end_logits/dense_0", features, "tanh")
        h = ref.layer_norm(h, w["end_logits/LayerNorm/gamma"],
                           w["end_logits/LayerNorm/beta"])
        return dense("end_logits/dense_1", h)[..., 0]

    start = dense("start_logits/dense", seq)[..., 0]
    start_masked = start * (1 - p_mask) - 1e30 * p_mask
    start_lp = ref.log_softmax(start_masked)
    out = {}
    b, t, _ = seq.shape
    if start_positions is not None:
        start_h = seq[np.arange(b), start_positions][:, None].repeat(t, 1)
        end = end_logits(np.concatenate([seq, start_h], -1))
        out["start_log_probs"] = start_lp
        out["end_log_probs"] = ref.log_softmax(end * (1 - p_mask)
                                               - 1e30 * p_mask)
    else:
        top = np.argsort(-start_lp, -1, kind="stable")[:, :k1]
        out["start_top_index"] = top
        out["start_top_log_probs"] = np.take_along_axis(start_lp, top, -1)
        end_lp = np.zeros((b, k1, t))
        for i in range(b):
            for k in range(k1):
                feats = np.concatenate(
                    [seq[i], seq[i, top[i, k]][None].repeat(t, 0)], -1)
                e = end_logits(feats)
                end_lp[i, k] = ref.log_softmax(e * (1 - p_mask[i])
                                               - 1e30 * p_mask[i])
        end_top = np.argsort(-end_lp, -1, kind="stable")[..., :k2]
        out["end_top_index"] = end_top.reshape(b, -1)
        out["end_top_log_probs"] = np.take_along_axis(
            end_lp, end_top, -1).reshape(b, -1)
    start_p = np.exp(start_lp)
    answer = np.concatenate([np.einsum("bth,bt->bh", seq, start_p),
                             seq[:, 0]], -1)
    answer = dense("answer_class/dense_0", answer, "tanh")
    out["cls_logits"] = dense("answer_class/dense_1", answer,
                              bias=False)[..., 0]
    return out


@pytest.mark.parametrize("training", [True, False])
def test_squad_v2_head_matches_the_original(training):
    config = helpers.tiny_config()
    model = AlbertSquadV2(config, start_n_top=3, end_n_top=2)
    weights = helpers.randomize(model)
    assert tuple(weights["end_logits/dense_0/kernel"].shape) == (16, 8)
    assert tuple(weights["answer_class/dense_1/kernel"].shape) == (8, 1)
    inputs = helpers.random_inputs(config)
    p_mask = np.zeros((2, 7), "float32")
    p_mask[:, 1:3] = 1  # the question
    p_mask[1, 5:] = 1  # padding
    inputs["p_mask"] = p_mask
    start_positions = np.array([4, 3], "int32") if training else None
    if training:
        inputs["start_positions"] = start_positions
    out = model(inputs, training=False)
    seq, _, _ = _encoder_reference(weights, config, inputs)
    expected = _squad_v2_reference(weights, seq, p_mask, start_positions)
    assert set(expected) <= set(out)
    for key, value in expected.items():
        if key.endswith("index"):
            np.testing.assert_array_equal(out[key], value, err_msg=key)
        else:
            np.testing.assert_allclose(out[key], value, atol=1e-4,
                                       err_msg=key)
