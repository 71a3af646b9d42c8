"""Checkpoint I/O. TF1 checkpoints here are written by independent code (a
tf.compat.v1 graph and Saver using the original variable names), not by
albert_tf, and outputs are checked against the NumPy reference."""

import json
import logging
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import helpers
import numpy_reference as ref
from albert_tf import AlbertClassifier
from albert_tf import AlbertConfig
from albert_tf import AlbertEncoder
from albert_tf import AlbertMultipleChoice
from albert_tf import AlbertPretrainer
from albert_tf import AlbertSpanLabeler
from albert_tf import AlbertSquadV2
from albert_tf import checkpoints
from albert_tf.checkpoints import tf1_names


def write_tf1_with_saver(prefix, tensors):
    """Writes a checkpoint the way TF1 code does: variables in a graph."""
    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.get_variable(
            name, initializer=tf.constant(value)) for name, value in
            tensors.items()]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(prefix), write_meta_graph=False)
    return str(prefix)


def original_weights(model, seed=1):
    """Random weights by original name for `model`'s config and heads."""
    rng = np.random.default_rng(seed)
    shapes = {tf1: tuple(tf1_names.variables_by_path(model)[path].shape)
              for tf1, path in tf1_names.tf1_name_map(model).items()}
    return {name: (rng.normal(0, 0.3, shape) + name.endswith("gamma"))
            .astype("float32") for name, shape in sorted(shapes.items())}


def test_original_pretraining_checkpoint_with_slots(tmp_path):
    config = helpers.tiny_config()  # G=2 with L=3, 2 inner groups
    model = AlbertPretrainer(config)
    weights = original_weights(model)
    tensors = dict(weights)
    for name in list(weights)[:5]:
        tensors[name + "/adam_m"] = np.zeros_like(weights[name])
        tensors[name + "/adam_v"] = np.zeros_like(weights[name])
    tensors["global_step"] = np.array(125000, np.int64)
    write_tf1_with_saver(tmp_path / "model.ckpt-125000", tensors)
    report = checkpoints.load_tf1_checkpoint(model, tmp_path)
    assert len(report.loaded) == len(model.weights) == len(weights)
    assert len(report.skipped) == 11 and "global_step" in report.skipped
    assert not report.missing_in_checkpoint
    assert not report.unused_in_checkpoint

    inputs = helpers.random_inputs(config)
    out = model(inputs)
    seq, pooled, _ = ref.encoder(weights, config.to_dict(),
                                 inputs["input_ids"], inputs["input_mask"],
                                 inputs["segment_ids"])
    mlm, sop = ref.pretraining_heads(weights, seq, pooled,
                                     inputs["masked_lm_positions"])
    np.testing.assert_allclose(out["sequence_output"], seq, atol=1e-5)
    np.testing.assert_allclose(out["pooled_output"], pooled, atol=1e-5)
    np.testing.assert_allclose(out["mlm_logits"], mlm, atol=1e-5)
    np.testing.assert_allclose(out["sop_logits"], sop, atol=1e-5)


def test_release_directory_and_hub_module_prefix(tmp_path):
    config = helpers.tiny_config()
    model = AlbertPretrainer(config)
    weights = original_weights(model)
    release = tmp_path / "albert_tiny"
    release.mkdir()
    config.to_json_file(release / "albert_config.json")
    (release / "30k-clean.model").write_bytes(b"")
    write_tf1_with_saver(release / "model.ckpt-best", weights)
    assert checkpoints.detect_format(release) == "tf1"
    assert checkpoints.find_config(release) == config
    checkpoints.load_tf1_checkpoint(model, release)
    np.testing.assert_array_equal(
        model.encoder.embeddings.word_embeddings,
        weights["bert/embeddings/word_embeddings"])

    hub = AlbertPretrainer(config)
    write_tf1_with_saver(tmp_path / "hub" / "variables",
                         {"module/" + k: v for k, v in weights.items()})
    report = checkpoints.load_tf1_checkpoint(hub, tmp_path / "hub/variables")
    assert len(report.loaded) == len(weights)
    np.testing.assert_array_equal(
        hub.sentence_order_head.output_weights,
        weights["cls/seq_relationship/output_weights"])


@pytest.mark.parametrize("model_class,kwargs,head_names", [
    (AlbertClassifier, {"num_labels": 3}, ["output_weights", "output_bias"]),
    (AlbertMultipleChoice, {}, ["output_weights", "output_bias"]),
    (AlbertSpanLabeler, {}, ["cls/squad/output_weights",
                             "cls/squad/output_bias"]),
    (AlbertSquadV2, {}, ["start_logits/dense/kernel",
                         "end_logits/dense_0/kernel",
                         "end_logits/LayerNorm/gamma",
                         "end_logits/dense_1/bias",
                         "answer_class/dense_0/kernel",
                         "answer_class/dense_1/kernel"]),
])
def test_fine_tuned_heads_load_from_original_names(tmp_path, model_class,
                                                   kwargs, head_names):
    model = model_class(helpers.tiny_config(), **kwargs)
    weights = original_weights(model, seed=4)
    assert set(head_names) <= set(weights)
    write_tf1_with_saver(tmp_path / "model.ckpt-1000", weights)
    report = checkpoints.load_tf1_checkpoint(model, tmp_path)
    assert len(report.loaded) == len(model.weights)
    paths = tf1_names.variables_by_path(model)
    for tf1, path in tf1_names.tf1_name_map(model).items():
        np.testing.assert_array_equal(paths[path], weights[tf1], err_msg=tf1)


def test_partial_loads(tmp_path):
    config = helpers.tiny_config()
    weights = original_weights(AlbertPretrainer(config))
    write_tf1_with_saver(tmp_path / "model.ckpt-1", weights)
    encoder = AlbertEncoder(config)
    with pytest.raises(ValueError, match="cls/seq_relationship/output_weights"):
        checkpoints.load_tf1_checkpoint(encoder, tmp_path)
    report = checkpoints.load_tf1_checkpoint(encoder, tmp_path,
                                             allow_partial=True)
    assert len(report.unused_in_checkpoint) == 7
    assert all(n.startswith("cls/") for n in report.unused_in_checkpoint)
    classifier = AlbertClassifier(config, num_labels=2)
    with pytest.raises(ValueError, match="missing in checkpoint: 2"):
        checkpoints.load_tf1_checkpoint(classifier, tmp_path)
    report = checkpoints.load_tf1_checkpoint(classifier, tmp_path,
                                             allow_partial=True)
    assert report.missing_in_checkpoint == ["output_bias", "output_weights"]
    np.testing.assert_array_equal(
        classifier.encoder.pooler.kernel, weights["bert/pooler/dense/kernel"])


def test_init_from_group0(tmp_path):
    one_group = AlbertEncoder(helpers.tiny_config(num_hidden_groups=1,
                                                  inner_group_num=1))
    weights = original_weights(one_group)
    write_tf1_with_saver(tmp_path / "model.ckpt-1", weights)
    model = AlbertEncoder(helpers.tiny_config(num_hidden_groups=3,
                                              inner_group_num=1))
    checkpoints.load_tf1_checkpoint(model, tmp_path, init_from_group0=True)
    name = ("bert/encoder/transformer/group_0/inner_group_0/"
            "attention_1/self/query/kernel")
    for group in model.layer_groups:
        np.testing.assert_array_equal(
            group.inner_groups[0].attention.query.kernel, weights[name])


def test_errors_name_the_problem(tmp_path):
    model = AlbertPretrainer(helpers.tiny_config())
    with pytest.raises(FileNotFoundError, match="nowhere"):
        checkpoints.load_tf1_checkpoint(model, tmp_path / "nowhere")
    weights = original_weights(model)
    weights["bert/pooler/dense/kernel"] = np.zeros((8, 9), "float32")
    write_tf1_with_saver(tmp_path / "bad" / "model.ckpt-1", weights)
    with pytest.raises(ValueError, match=r"bert/pooler/dense/kernel.*\(8, 9\)"
                       r".*encoder/pooler/kernel.*\(8, 8\)"):
        checkpoints.load_tf1_checkpoint(model, tmp_path / "bad")
    object_dir = tmp_path / "object"
    checkpoints.save_albert_tf_checkpoint(model, object_dir)
    with pytest.raises(ValueError, match="TF2 object checkpoint"):
        checkpoints.load_tf1_checkpoint(model, object_dir)
    with pytest.raises(ValueError, match="name-based"):
        checkpoints.load_albert_tf_checkpoint(model, tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        (tmp_path / "hf").mkdir()
        (tmp_path / "hf" / "config.json").write_text(
            json.dumps(model.config.to_hf_config()))
        checkpoints.load_hf_checkpoint(model, tmp_path / "hf")


@pytest.mark.parametrize("output_format", ["tf1", "hf", "albert_tf"])
def test_round_trips_give_identical_outputs(tmp_path, output_format):
    config = helpers.tiny_config()
    model = AlbertPretrainer(config)
    helpers.randomize(model)
    out_dir = tmp_path / output_format
    if output_format == "tf1":
        checkpoints.save_tf1_checkpoint(model, out_dir / "model.ckpt-best")
    elif output_format == "hf":
        checkpoints.save_hf_checkpoint(model, out_dir)
    else:
        checkpoints.save_albert_tf_checkpoint(model, out_dir)
    assert checkpoints.detect_format(out_dir) == output_format
    restored = AlbertPretrainer(config)
    report = checkpoints.load_checkpoint(restored, out_dir)
    assert len(report.loaded) == len(model.weights)
    inputs = helpers.random_inputs(config)
    expected, got = model(inputs), restored(inputs)
    for key in ("sequence_output", "pooled_output", "mlm_logits",
                "sop_logits"):
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_tf1_written_by_us_reads_with_plain_tf1_restore(tmp_path):
    model = AlbertPretrainer(helpers.tiny_config())
    helpers.randomize(model)
    prefix = checkpoints.save_tf1_checkpoint(model, tmp_path / "model.ckpt-5",
                                             global_step=5)
    reader = tf.train.load_checkpoint(prefix)
    stored = reader.get_variable_to_shape_map()
    table = tf1_names.tf1_name_map(model)
    assert set(stored) == set(table) | {"global_step"}
    paths = tf1_names.variables_by_path(model)
    for tf1, path in table.items():
        assert tuple(stored[tf1]) == tuple(paths[path].shape)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-5")


def test_object_checkpoint_keys_match_tensorflow(tmp_path):
    model = AlbertSquadV2(helpers.tiny_config())
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "c"))
    stored = {k for k, _ in tf.train.list_variables(prefix)
              if k.endswith("VARIABLE_VALUE")}
    assert stored == set(checkpoints.object_checkpoint_keys(model))


def test_hf_config_mapping_keeps_the_activation():
    config = helpers.tiny_config()
    hf = config.to_hf_config("AlbertForPreTraining")
    assert hf["hidden_act"] == "gelu_new"  # HF's tanh GELU
    assert AlbertConfig.from_hf_config(hf) == config
    exact = dict(hf, hidden_act="gelu")  # HF's "gelu" is erf
    assert AlbertConfig.from_hf_config(exact).hidden_act == "gelu_exact"
    assert config.replace(hidden_act="gelu_exact").to_hf_config()[
        "hidden_act"] == "gelu"
    with pytest.raises(NotImplementedError, match="layer_norm_eps=1e-05"):
        AlbertConfig.from_hf_config(dict(hf, layer_norm_eps=1e-5))


def test_hf_sharded_bare_model_and_tied_decoder(tmp_path):
    from safetensors.numpy import load_file
    from safetensors.numpy import save_file

    config = helpers.tiny_config()
    model = AlbertPretrainer(config)
    helpers.randomize(model)
    full = tmp_path / "full"
    checkpoints.save_hf_checkpoint(model, full)
    tensors = load_file(full / "model.safetensors")
    np.testing.assert_array_equal(
        tensors["predictions.decoder.weight"],
        tensors["albert.embeddings.word_embeddings.weight"])
    np.testing.assert_array_equal(tensors["predictions.decoder.bias"],
                                  tensors["predictions.bias"])
    hf_config = json.loads((full / "config.json").read_text())
    assert hf_config["architectures"] == ["AlbertForPreTraining"]

    # A bare AlbertModel without the `albert.` prefix, in two shards.
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    encoder_tensors = {k[len("albert."):]: v for k, v in tensors.items()
                       if k.startswith("albert.")}
    keys = sorted(encoder_tensors)
    weight_map = {}
    for i, part in enumerate((keys[:10], keys[10:])):
        shard = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({k: encoder_tensors[k] for k in part}, sharded / shard)
        weight_map.update({k: shard for k in part})
    (sharded / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": weight_map}))
    (sharded / "config.json").write_text(json.dumps(hf_config))
    encoder = AlbertEncoder(config)
    report = checkpoints.load_hf_checkpoint(encoder, sharded)
    assert len(report.loaded) == len(encoder.weights)
    np.testing.assert_array_equal(encoder.pooler.kernel,
                                  model.encoder.pooler.kernel)

    untied = dict(tensors)
    untied["predictions.decoder.weight"] = untied[
        "predictions.decoder.weight"] + 1
    bad = tmp_path / "untied"
    bad.mkdir()
    save_file(untied, bad / "model.safetensors")
    (bad / "config.json").write_text(json.dumps(hf_config))
    with pytest.raises(ValueError, match="untied"):
        checkpoints.load_hf_checkpoint(AlbertPretrainer(config), bad)


def test_hf_config_must_describe_the_model(tmp_path):
    model = AlbertPretrainer(helpers.tiny_config())
    checkpoints.save_hf_checkpoint(model, tmp_path)
    other = AlbertPretrainer(helpers.tiny_config(hidden_act="gelu_exact"))
    with pytest.raises(ValueError, match="hidden_act"):
        checkpoints.load_hf_checkpoint(other, tmp_path)


def test_hf_without_projection_when_embedding_equals_hidden(tmp_path):
    config = helpers.tiny_config(embedding_size=8)
    model = AlbertClassifier(config, num_labels=2)
    helpers.randomize(model)
    checkpoints.save_hf_checkpoint(model, tmp_path)
    restored = AlbertClassifier(config, num_labels=2)
    checkpoints.load_hf_checkpoint(restored, tmp_path)
    inputs = helpers.random_inputs(config)
    np.testing.assert_array_equal(restored(inputs)["logits"],
                                  model(inputs)["logits"])


def test_squad_v2_has_no_hf_equivalent(tmp_path):
    with pytest.raises(NotImplementedError, match="SQuAD v2"):
        checkpoints.save_hf_checkpoint(
            AlbertSquadV2(helpers.tiny_config()), tmp_path)


def test_convert_cli(tmp_path):
    config = helpers.tiny_config()
    model = AlbertPretrainer(config)
    weights = original_weights(model)
    source = tmp_path / "release"
    source.mkdir()
    config.to_json_file(source / "albert_config.json")
    write_tf1_with_saver(source / "model.ckpt-best", weights)
    result = subprocess.run(
        [sys.executable, "-m", "albert_tf.convert", f"--input={source}",
         f"--output={tmp_path / 'hf'}", "--output_format=hf"],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "loaded: 80" in result.stdout
    restored = AlbertPretrainer(config)
    checkpoints.load_hf_checkpoint(restored, tmp_path / "hf")
    np.testing.assert_array_equal(
        restored.masked_lm_head.output_bias,
        weights["cls/predictions/output_bias"])


# --------------------------------------------- load_pretrained (fine-tuning)


def _encoder_kernel(model):
    return np.asarray(model.encoder.layer_groups[0].inner_groups[0]
                      .attention.query.kernel).copy()


def _absl_records(caplog, level):
    return [r for r in caplog.records
            if r.name == "absl" and r.levelno == level]


def test_pretrained_head_may_be_absent_and_is_reported_at_warning(
        tmp_path, caplog):
    config = helpers.tiny_config()
    weights = original_weights(AlbertPretrainer(config))
    write_tf1_with_saver(tmp_path / "model.ckpt-1", weights)
    classifier = AlbertClassifier(config, num_labels=2)
    caplog.set_level(logging.INFO)
    report = checkpoints.load_pretrained(classifier, tmp_path)
    assert report.missing_in_checkpoint == ["output_bias", "output_weights"]
    assert not report.missing_encoder and not report.unused_encoder
    np.testing.assert_array_equal(
        classifier.encoder.pooler.kernel, weights["bert/pooler/dense/kernel"])
    warnings = "\n".join(r.getMessage()
                         for r in _absl_records(caplog, logging.WARNING))
    assert "missing in checkpoint: 2" in warnings
    assert "output_weights" in warnings
    assert "cls/seq_relationship/output_weights" in warnings  # unused

    # A complete load is logged at INFO, with no warning.
    caplog.clear()
    fine_tuned = tmp_path / "fine_tuned"
    checkpoints.save_tf1_checkpoint(classifier, fine_tuned / "model.ckpt-9")
    checkpoints.load_pretrained(AlbertClassifier(config, num_labels=2),
                                fine_tuned)
    assert not _absl_records(caplog, logging.WARNING)
    assert any("loaded: 75" in r.getMessage()
               for r in _absl_records(caplog, logging.INFO))


def test_pretrained_refuses_a_missing_encoder_variable(tmp_path):
    config = helpers.tiny_config()
    weights = original_weights(AlbertPretrainer(config))
    gone = ("bert/encoder/transformer/group_1/inner_group_0/"
            "ffn_1/intermediate/dense/bias")
    del weights[gone]
    del weights["bert/embeddings/LayerNorm/beta"]
    write_tf1_with_saver(tmp_path / "model.ckpt-1", weights)
    classifier = AlbertClassifier(config, num_labels=2)
    before = _encoder_kernel(classifier)
    with pytest.raises(ValueError) as error:
        checkpoints.load_pretrained(classifier, tmp_path)
    message = str(error.value)
    assert str(tmp_path / "model.ckpt-1") in message
    assert "2 encoder variables" in message
    assert gone in message and "bert/embeddings/LayerNorm/beta" in message
    assert "output_weights" not in message  # the head may be absent
    # Refused before assigning anything.
    np.testing.assert_array_equal(_encoder_kernel(classifier), before)

    report = checkpoints.load_pretrained(classifier, tmp_path,
                                         allow_partial=True)
    assert report.missing_encoder == sorted(
        [gone, "bert/embeddings/LayerNorm/beta"])
    assert not np.array_equal(_encoder_kernel(classifier), before)


def test_pretrained_refuses_when_nothing_matches(tmp_path):
    write_tf1_with_saver(tmp_path / "model.ckpt-1", {
        "some/other/model/kernel": np.ones((3, 3), "float32")})
    classifier = AlbertClassifier(helpers.tiny_config(), num_labels=2)
    with pytest.raises(ValueError, match=r"no variable of the model.*"
                       r"\d+ encoder variables"):
        checkpoints.load_pretrained(classifier, tmp_path)
    report = checkpoints.load_pretrained(classifier, tmp_path,
                                         allow_partial=True)
    assert report.loaded == []
    assert report.unused_in_checkpoint == ["some/other/model/kernel"]


def test_pretrained_refuses_unused_encoder_weights(tmp_path):
    # A 3-group checkpoint into a 2-group model would silently drop group 2.
    three = AlbertEncoder(helpers.tiny_config(num_hidden_groups=3,
                                              inner_group_num=1))
    write_tf1_with_saver(tmp_path / "model.ckpt-1", original_weights(three))
    two = AlbertClassifier(helpers.tiny_config(num_hidden_groups=2,
                                               inner_group_num=1),
                           num_labels=2)
    with pytest.raises(ValueError, match=r"16 of its encoder weights have "
                       r"no place in the model(.|\n)*group_2/"):
        checkpoints.load_pretrained(two, tmp_path)


def test_pretrained_from_hf(tmp_path):
    config = helpers.tiny_config()
    pretrainer = AlbertPretrainer(config)
    helpers.randomize(pretrainer)
    checkpoints.save_hf_checkpoint(pretrainer, tmp_path / "hf")
    classifier = AlbertClassifier(config, num_labels=2)
    report = checkpoints.load_pretrained(classifier, tmp_path / "hf")
    assert report.format == "hf"
    assert report.missing_in_checkpoint == ["classifier.bias",
                                            "classifier.weight"]
    np.testing.assert_array_equal(classifier.encoder.pooler.kernel,
                                  pretrainer.encoder.pooler.kernel)

    from safetensors.numpy import load_file
    from safetensors.numpy import save_file
    tensors = load_file(tmp_path / "hf" / "model.safetensors")
    gone = "albert.encoder.albert_layer_groups.1.albert_layers.0.ffn.weight"
    del tensors[gone]
    save_file(tensors, tmp_path / "hf" / "model.safetensors")
    with pytest.raises(ValueError, match=f"hf.*1 encoder variables(.|\n)*"
                       f"{re.escape(gone)}"):
        checkpoints.load_pretrained(AlbertClassifier(config, num_labels=2),
                                    tmp_path / "hf")


def test_pretrained_from_albert_tf_encoder_and_task_checkpoints(tmp_path):
    config = helpers.tiny_config()
    pretrainer = AlbertPretrainer(config)
    helpers.randomize(pretrainer)
    checkpoints.save_albert_tf_checkpoint(pretrainer, tmp_path / "task")
    classifier = AlbertClassifier(config, num_labels=2)
    report = checkpoints.load_pretrained(classifier, tmp_path / "task")
    assert report.format == "albert_tf"
    assert len(report.missing_in_checkpoint) == 2
    assert not report.missing_encoder
    np.testing.assert_array_equal(_encoder_kernel(classifier),
                                  _encoder_kernel(pretrainer))

    # A bare encoder's checkpoint (weights at `model/`) initialises a task
    # model's encoder (`model/encoder/`), and the other way round.
    encoder = AlbertEncoder(config)
    checkpoints.load_pretrained(encoder, tmp_path / "task")
    np.testing.assert_array_equal(encoder.pooler.kernel,
                                  pretrainer.encoder.pooler.kernel)
    checkpoints.save_albert_tf_checkpoint(encoder, tmp_path / "bare")
    other = AlbertClassifier(config, num_labels=2)
    report = checkpoints.load_pretrained(other, tmp_path / "bare")
    assert len(report.loaded) == len(encoder.weights)
    np.testing.assert_array_equal(other.encoder.pooler.kernel,
                                  pretrainer.encoder.pooler.kernel)

    # One group in the checkpoint, two in the model: refused, unless
    # init_from_group0 fills group 1 from group 0.
    one_group = AlbertPretrainer(config.replace(num_hidden_groups=1))
    checkpoints.save_albert_tf_checkpoint(one_group, tmp_path / "one")
    with pytest.raises(ValueError, match="encoder/group_1/inner_group_0"):
        checkpoints.load_pretrained(AlbertClassifier(config, num_labels=2),
                                    tmp_path / "one")
    report = checkpoints.load_pretrained(
        AlbertClassifier(config, num_labels=2), tmp_path / "one",
        init_from_group0=True)
    assert len(report.from_group0) == 32 and not report.missing_encoder


@pytest.mark.parametrize("input_format", ["tf1", "hf"])
def test_init_from_group0_fills_only_groups_the_checkpoint_lacks(
        tmp_path, input_format):
    two = AlbertEncoder(helpers.tiny_config(num_hidden_groups=2,
                                            inner_group_num=1))
    helpers.randomize(two)
    if input_format == "tf1":
        checkpoints.save_tf1_checkpoint(two, tmp_path / "model.ckpt-1")
    else:
        checkpoints.save_hf_checkpoint(two, tmp_path)
    model = AlbertPretrainer(helpers.tiny_config(num_hidden_groups=3,
                                                 inner_group_num=1))
    report = checkpoints.load_pretrained(model, tmp_path,
                                         init_from_group0=True)
    groups = [g.inner_groups[0].ffn_intermediate.kernel
              for g in model.encoder.layer_groups]
    theirs = [g.inner_groups[0].ffn_intermediate.kernel
              for g in two.layer_groups]
    np.testing.assert_array_equal(groups[0], theirs[0])
    np.testing.assert_array_equal(groups[1], theirs[1])  # its own group 1
    np.testing.assert_array_equal(groups[2], theirs[0])  # filled from 0
    assert len(report.from_group0) == 16
    assert all(("group_2" in n) or ("groups.2." in n)
               for n in report.from_group0)
    assert not report.unused_encoder
    # Without the flag the missing group is refused (HF: by its config).
    with pytest.raises(ValueError,
                       match="16 encoder variables|num_hidden_groups"):
        checkpoints.load_pretrained(model, tmp_path)


# -------------------------------------------------- damaged checkpoint files


def test_garbage_index_names_the_file(tmp_path):
    (tmp_path / "model.ckpt-1.index").write_bytes(
        np.random.default_rng(0).bytes(500))
    model = AlbertEncoder(helpers.tiny_config())
    with pytest.raises(ValueError, match=re.escape(
            str(tmp_path / "model.ckpt-1.index"))):
        checkpoints.load_pretrained(model, tmp_path)
    with pytest.raises(ValueError, match="model.ckpt-1.index"):
        checkpoints.detect_format(tmp_path)


def test_truncated_tf1_data_names_the_file(tmp_path):
    model = AlbertPretrainer(helpers.tiny_config())
    helpers.randomize(model)
    checkpoints.save_tf1_checkpoint(model, tmp_path / "model.ckpt-1")
    data = tmp_path / "model.ckpt-1.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:300])
    target = AlbertPretrainer(helpers.tiny_config())
    before = _encoder_kernel(target)
    with pytest.raises(ValueError, match=re.escape(str(data))):
        checkpoints.load_checkpoint(target, tmp_path)
    np.testing.assert_array_equal(_encoder_kernel(target), before)


def test_truncated_safetensors_names_the_file(tmp_path):
    model = AlbertPretrainer(helpers.tiny_config())
    checkpoints.save_hf_checkpoint(model, tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match=re.escape(str(weights))
                       + ".*safetensors"):
        checkpoints.load_pretrained(AlbertPretrainer(helpers.tiny_config()),
                                    tmp_path)


def test_integer_tensor_for_a_float_weight_is_refused(tmp_path):
    from safetensors.numpy import load_file
    from safetensors.numpy import save_file

    config = helpers.tiny_config()
    checkpoints.save_hf_checkpoint(AlbertPretrainer(config), tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    name = "albert.embeddings.token_type_embeddings.weight"
    tensors[name] = np.ones(tensors[name].shape, np.int32)
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=re.escape(name)
                       + ".*int32.*float32"):
        checkpoints.load_pretrained(AlbertPretrainer(config), tmp_path)

    # The same for TF1; float16 (a precision change) is accepted.
    weights = original_weights(AlbertPretrainer(config))
    weights["bert/pooler/dense/bias"] = np.arange(8, dtype=np.int64)
    write_tf1_with_saver(tmp_path / "tf1" / "model.ckpt-1", weights)
    with pytest.raises(ValueError, match="bert/pooler/dense/bias.*int64"):
        checkpoints.load_checkpoint(AlbertPretrainer(config), tmp_path / "tf1")
    weights["bert/pooler/dense/bias"] = np.ones(8, np.float16)
    write_tf1_with_saver(tmp_path / "fp16" / "model.ckpt-1", weights)
    model = AlbertPretrainer(config)
    checkpoints.load_checkpoint(model, tmp_path / "fp16")
    assert model.encoder.pooler.bias.dtype == "float32"


@pytest.mark.parametrize("output_format", ["tf1", "hf", "albert_tf"])
def test_cloud_style_paths(output_format):
    """ram:// is TensorFlow's in-process file system; gs:// takes the same
    tf.io.gfile paths."""
    config = helpers.tiny_config()
    model = AlbertPretrainer(config)
    helpers.randomize(model)
    directory = f"ram://checkpoints_{output_format}"
    if output_format == "tf1":
        checkpoints.save_tf1_checkpoint(model, directory + "/model.ckpt-3")
    elif output_format == "hf":
        checkpoints.save_hf_checkpoint(model, directory)
    else:
        checkpoints.save_albert_tf_checkpoint(model, directory)
    assert checkpoints.detect_format(directory) == output_format
    restored = AlbertPretrainer(config)
    report = checkpoints.load_pretrained(restored, directory)
    assert len(report.loaded) == len(model.weights)
    np.testing.assert_array_equal(_encoder_kernel(restored),
                                  _encoder_kernel(model))


def test_convert_imports_beside_a_runner(tmp_path):
    """albert_tf.convert defines no flags at import, so it imports next to
    run_classifier (which has its own --albert_config_file)."""
    config = helpers.tiny_config()
    model = AlbertPretrainer(config)
    helpers.randomize(model)
    checkpoints.save_albert_tf_checkpoint(model, tmp_path / "src")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = (
        "import sys\n"
        f"sys.path.insert(0, {repo!r})\n"
        "import run_classifier\n"
        "from albert_tf.checkpoints import convert\n"
        f"report = convert.convert({str(tmp_path / 'src')!r}, "
        f"{str(tmp_path / 'tf1')!r}, 'tf1')\n"
        "print('converted', len(report.loaded))\n")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True,
        timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "converted 80" in result.stdout
    restored = AlbertPretrainer(config)
    checkpoints.load_tf1_checkpoint(restored, tmp_path / "tf1")
    np.testing.assert_array_equal(_encoder_kernel(restored),
                                  _encoder_kernel(model))


def test_bf16_safetensors_get_a_clear_error(tmp_path):
    # A bfloat16 tensor written by hand: 8-byte header length, JSON, data.
    header = json.dumps({"x": {"dtype": "BF16", "shape": [2],
                               "data_offsets": [0, 4]}}).encode()
    model = AlbertPretrainer(helpers.tiny_config())
    checkpoints.save_hf_checkpoint(model, tmp_path)
    path = tmp_path / "model.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*BF16"):
        checkpoints.load_pretrained(model, tmp_path)
