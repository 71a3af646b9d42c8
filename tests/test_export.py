"""Every SavedModel signature is called and compared with the Keras model.

References are built in Python, independently of albert_tf.serving.export: the
Python FullTokenizer, then the original's packing written out here
(`classifier_utils.convert_single_example` and `_truncate_seq_pair`), run
through the model's own call.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

from albert_tf import AlbertConfig
from albert_tf.models import AlbertClassifier
from albert_tf.models import AlbertPretrainer
from albert_tf.serving import export
from albert_tf.tokenization.full_tokenizer import FullTokenizer

MAX_SEQ_LENGTH = 13
LABELS = ["neg", "neu", "pos"]
TOP_K = 4
CLS, SEP, MASK = 2, 3, 4

SHORT = ["kari tone mu.", "Sa lo pe, 1,000 café!"]
PAIR_A = ["kari tone mu.", "sa lo pe di ga bu zo fi ha ju ve wo xi ye."]
PAIR_B = ["zo fi ha ju ve wo xi ye qu ka ri to ne.", "mu sa."]


def _config(vocab_size):
    # Distinct sizes per axis: E=6, H=8, I=10, N=2, L=3 in 2 groups.
    return AlbertConfig(vocab_size=vocab_size, embedding_size=6,
                        hidden_size=8, num_hidden_layers=3,
                        num_hidden_groups=2, num_attention_heads=2,
                        intermediate_size=10, inner_group_num=2,
                        max_position_embeddings=17, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)


def _randomize(model, seed):
    """Large random weights, so outputs (and top-k orders) differ clearly."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = rng.normal(0.0, 0.5, variable.shape).astype("float32")
        if variable.path.endswith("gamma"):
            value += 1.0
        variable.assign(value)


@pytest.fixture(scope="module")
def tokenizer(tiny_spm):
    return FullTokenizer(spm_model_file=tiny_spm["model"], do_lower_case=True)


def _ids(tokenizer, text):
    return tokenizer.convert_tokens_to_ids(
        tokenizer.tokenize(tokenizer.preprocess(text)))


def _pack_reference(ids_a, ids_b=None, max_seq_length=MAX_SEQ_LENGTH):
    """classifier_utils.convert_single_example, padded to max_seq_length."""
    ids_a, ids_b = list(ids_a), list(ids_b or [])
    if ids_b:
        while len(ids_a) + len(ids_b) > max_seq_length - 3:
            if len(ids_a) > len(ids_b):
                ids_a.pop()
            else:
                ids_b.pop()
    else:
        ids_a = ids_a[:max_seq_length - 2]
    ids = [CLS] + ids_a + [SEP]
    segments = [0] * len(ids)
    if ids_b:
        ids += ids_b + [SEP]
        segments += [1] * (len(ids_b) + 1)
    pad = [0] * (max_seq_length - len(ids))
    return ids + pad, [1] * len(ids) + pad, segments + pad


def _features(rows):
    input_ids, input_mask, segment_ids = (np.array(x, np.int32)
                                          for x in zip(*rows))
    return {"input_ids": input_ids, "input_mask": input_mask,
            "segment_ids": segment_ids}


def _unpad(tensor, mask):
    """[B, T] packed ids from a signature -> python lists of real ids."""
    return [[int(x) for x in row[m == 1]]
            for row, m in zip(np.asarray(tensor), np.asarray(mask))]


# ---------------------------------------------------------------- packing


@pytest.mark.parametrize("budget", [0, 1, 5, 6, 7, 10])
def test_truncated_pair_lengths_match_the_original_loop(budget):
    lengths = [(a, b) for a in range(9) for b in range(9)]
    len_a = tf.constant([a for a, _ in lengths], tf.int32)
    len_b = tf.constant([b for _, b in lengths], tf.int32)
    new_a, new_b = export.truncated_pair_lengths(len_a, len_b, budget)
    for (a, b), got_a, got_b in zip(lengths, new_a.numpy(), new_b.numpy()):
        tokens_a, tokens_b = list(range(a)), list(range(b))
        while len(tokens_a) + len(tokens_b) > budget:
            (tokens_a if len(tokens_a) > len(tokens_b) else tokens_b).pop()
        assert (got_a, got_b) == (len(tokens_a), len(tokens_b)), (a, b)


def test_pack_rows_with_empty_b_are_single_texts():
    a = tf.ragged.constant([[10, 11, 12], list(range(20, 40))], tf.int32)
    b = tf.ragged.constant([[], [50]], tf.int32)
    ids, mask, segments = export.pack(a, b, MAX_SEQ_LENGTH)
    got = _unpad(ids, mask)
    assert got[0] == _pack_reference([10, 11, 12])[0][:5]
    want, want_mask, want_segments = _pack_reference(range(20, 40), [50])
    assert got[1] == want[:sum(want_mask)]
    np.testing.assert_array_equal(segments.numpy()[1], want_segments)


# ------------------------------------------------------------- classifier


@pytest.fixture(scope="module")
def classifier(tiny_spm, tokenizer, tmp_path_factory):
    model = AlbertClassifier(_config(tokenizer.vocab_size),
                             num_labels=len(LABELS))
    _randomize(model, seed=3)
    export_dir = str(tmp_path_factory.mktemp("export") / "classifier")
    export.export_classifier(
        model, export_dir, label_list=LABELS, is_regression=False,
        spm_model_file=tiny_spm["model"], do_lower_case=True,
        max_seq_length=MAX_SEQ_LENGTH)
    return model, tf.saved_model.load(export_dir), export_dir


def _classify(model, rows):
    logits = model(_features(rows), training=False)["logits"].numpy()
    probabilities = tf.nn.softmax(logits).numpy()
    return logits, probabilities, probabilities.argmax(-1)


def test_classifier_signatures(classifier):
    _, loaded, _ = classifier
    assert set(loaded.signatures) == {
        "serving_default", "serve_examples", "serve_text", "serve_text_pair"}


def test_classifier_serving_default(classifier, tokenizer):
    model, loaded, _ = classifier
    rows = [_pack_reference(_ids(tokenizer, t)) for t in SHORT]
    logits, probabilities, predictions = _classify(model, rows)
    out = loaded.signatures["serving_default"](**_features(rows))
    np.testing.assert_allclose(out["logits"], logits, atol=1e-5)
    np.testing.assert_allclose(out["probabilities"], probabilities,
                               atol=1e-5)
    np.testing.assert_array_equal(out["predictions"], predictions)


def test_classifier_serve_examples_is_the_original_interface(classifier,
                                                             tokenizer):
    model, loaded, _ = classifier
    rows = [_pack_reference(_ids(tokenizer, a), _ids(tokenizer, b))
            for a, b in zip(PAIR_A, PAIR_B)]
    serialized = []
    for row in rows:
        feature = {name: tf.train.Feature(int64_list=tf.train.Int64List(
            value=values)) for name, values in zip(
                ("input_ids", "input_mask", "segment_ids"), row)}
        # run_classifier's records also carry these; serving ignores them.
        feature["label_ids"] = tf.train.Feature(
            int64_list=tf.train.Int64List(value=[1]))
        serialized.append(tf.train.Example(features=tf.train.Features(
            feature=feature)).SerializeToString())
    _, probabilities, predictions = _classify(model, rows)
    out = loaded.signatures["serve_examples"](input=tf.constant(serialized))
    np.testing.assert_allclose(out["probabilities"], probabilities,
                               atol=1e-5)
    assert out["predictions"].dtype == tf.int32
    np.testing.assert_array_equal(out["predictions"], predictions)


def test_classifier_serve_text(classifier, tokenizer):
    model, loaded, _ = classifier
    rows = [_pack_reference(_ids(tokenizer, t)) for t in SHORT]
    _, probabilities, predictions = _classify(model, rows)
    out = loaded.signatures["serve_text"](text=tf.constant(SHORT))
    np.testing.assert_allclose(out["probabilities"], probabilities,
                               atol=1e-5)
    assert [s.decode() for s in out["label"].numpy()] == [
        LABELS[i] for i in predictions]


def test_classifier_serve_text_pair_truncates_as_the_original(
        classifier, tokenizer):
    model, loaded, _ = classifier
    ids_a = [_ids(tokenizer, t) for t in PAIR_A]
    ids_b = [_ids(tokenizer, t) for t in PAIR_B]
    # Both pairs are too long, one on each side: the truncation is tested.
    assert all(len(a) + len(b) > MAX_SEQ_LENGTH - 3
               for a, b in zip(ids_a, ids_b))
    assert len(ids_a[0]) < len(ids_b[0]) and len(ids_a[1]) > len(ids_b[1])
    rows = [_pack_reference(a, b) for a, b in zip(ids_a, ids_b)]
    _, probabilities, predictions = _classify(model, rows)
    out = loaded.signatures["serve_text_pair"](
        text_a=tf.constant(PAIR_A), text_b=tf.constant(PAIR_B))
    np.testing.assert_allclose(out["probabilities"], probabilities,
                               atol=1e-5)
    assert [s.decode() for s in out["label"].numpy()] == [
        LABELS[i] for i in predictions]
    # The packed ids themselves, through the module's packing.
    ids, mask, segments = export.pack(
        tf.ragged.constant(ids_a, tf.int32),
        tf.ragged.constant(ids_b, tf.int32), MAX_SEQ_LENGTH)
    for got, got_segments, (want, want_mask, want_segments) in zip(
            _unpad(ids, mask), segments.numpy(), rows):
        assert got == want[:sum(want_mask)]
        np.testing.assert_array_equal(got_segments, want_segments)


def test_export_replaces_a_saved_model_but_not_other_directories(
        classifier, tmp_path):
    model, _, _ = classifier
    kwargs = dict(label_list=LABELS, is_regression=False, spm_model_file=None,
                  do_lower_case=True, max_seq_length=MAX_SEQ_LENGTH)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a SavedModel"):
        export.export_classifier(model, str(precious), **kwargs)
    assert (precious / "notes.txt").read_text() == "keep me"
    # An earlier SavedModel is replaced; no temporary directory is left.
    target = tmp_path / "model"
    export.export_classifier(model, str(target), **kwargs)
    (target / "stale").write_text("from the first export")
    export.export_classifier(model, str(target), **kwargs)
    assert (target / "saved_model.pb").exists()
    assert not (target / "stale").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model",
                                                          "precious"]


def test_export_to_a_url_file_system(classifier, tokenizer):
    """ram:// renames only a directory's entry: files must move one by one."""
    model, _, _ = classifier
    export_dir = "ram://export_test/classifier"
    for _ in range(2):  # the second replaces the first
        export.export_classifier(
            model, export_dir, label_list=LABELS, is_regression=False,
            spm_model_file=None, do_lower_case=True,
            max_seq_length=MAX_SEQ_LENGTH)
    assert tf.io.gfile.listdir("ram://export_test") == ["classifier"]
    rows = [_pack_reference(_ids(tokenizer, t)) for t in SHORT]
    out = tf.saved_model.load(export_dir).signatures["serving_default"](
        **_features(rows))
    np.testing.assert_allclose(out["logits"], _classify(model, rows)[0],
                               atol=1e-5)


def test_export_checks_its_arguments(classifier, tiny_spm, tmp_path):
    model, _, _ = classifier
    tiny_spm_model = tiny_spm["model"]
    kwargs = dict(is_regression=False, spm_model_file=None,
                  do_lower_case=True, max_seq_length=MAX_SEQ_LENGTH)
    with pytest.raises(ValueError, match="label_list has 2"):
        export.export_classifier(model, str(tmp_path / "a"),
                                 label_list=["x", "y"], **kwargs)
    with pytest.raises(ValueError, match="max_position_embeddings=17"):
        export.export_classifier(model, str(tmp_path / "b"),
                                 label_list=LABELS,
                                 **{**kwargs, "max_seq_length": 18})
    small = AlbertClassifier(_config(50), num_labels=len(LABELS))
    with pytest.raises(ValueError, match="vocab_size is 50"):
        export.export_classifier(small, str(tmp_path / "c"),
                                 label_list=LABELS,
                                 **{**kwargs, "spm_model_file": tiny_spm_model})
    assert not list(tmp_path.iterdir())


def test_regression_outputs(tiny_spm, tokenizer):
    """STS-B: the same signature functions, traced but not saved (fast)."""
    model = AlbertClassifier(_config(tokenizer.vocab_size), num_labels=1)
    _randomize(model, seed=4)
    tok, _ = export._tokenizer(tiny_spm["model"], True,
                               model.config.vocab_size)
    module = export._ClassifierModule(model, tok, MAX_SEQ_LENGTH, None,
                                      is_regression=True)
    rows = [_pack_reference(_ids(tokenizer, a), _ids(tokenizer, b))
            for a, b in zip(PAIR_A, PAIR_B)]
    logits = model(_features(rows), training=False)["logits"].numpy()
    out = module.signatures()["serve_text_pair"](
        tf.constant(PAIR_A), tf.constant(PAIR_B))
    np.testing.assert_allclose(out["score"], logits[:, 0], atol=1e-5)
    # As the original: probabilities are the raw [B, 1] scores.
    np.testing.assert_allclose(out["probabilities"], logits, atol=1e-5)
    assert "label" not in out


# ------------------------------------------------------------- pretrainer


@pytest.fixture(scope="module")
def pretrainer(tiny_spm, tokenizer, tmp_path_factory):
    model = AlbertPretrainer(_config(tokenizer.vocab_size))
    _randomize(model, seed=5)
    export_dir = str(tmp_path_factory.mktemp("export") / "pretrainer")
    export.export_pretrainer(
        model, export_dir, spm_model_file=tiny_spm["model"],
        do_lower_case=True, max_seq_length=MAX_SEQ_LENGTH, top_k=TOP_K)
    return model, tf.saved_model.load(export_dir)


def _encode(model, rows):
    out = model.encoder(_features(rows), training=False)
    return out["sequence_output"].numpy(), out["pooled_output"].numpy()


def test_pretrainer_signatures(pretrainer):
    _, loaded = pretrainer
    assert set(loaded.signatures) == {
        "serving_default", "serve_text", "serve_text_pair", "mlm", "sop"}


def test_pretrainer_encoder_signatures(pretrainer, tokenizer):
    model, loaded = pretrainer
    rows = [_pack_reference(_ids(tokenizer, t)) for t in SHORT]
    sequence, pooled = _encode(model, rows)
    out = loaded.signatures["serving_default"](**_features(rows))
    np.testing.assert_allclose(out["sequence_output"], sequence, atol=1e-5)
    np.testing.assert_allclose(out["pooled_output"], pooled, atol=1e-5)
    out = loaded.signatures["serve_text"](text=tf.constant(SHORT))
    length = out["pooled_output"].shape[0]
    np.testing.assert_allclose(out["pooled_output"], pooled[:length],
                               atol=1e-5)
    mask = np.array(rows[0][1], bool)
    np.testing.assert_allclose(out["sequence_output"][0][mask[:out[
        "sequence_output"].shape[1]]], sequence[0][mask], atol=1e-5)
    rows = [_pack_reference(_ids(tokenizer, a), _ids(tokenizer, b))
            for a, b in zip(PAIR_A, PAIR_B)]
    _, pooled = _encode(model, rows)
    out = loaded.signatures["serve_text_pair"](
        text_a=tf.constant(PAIR_A), text_b=tf.constant(PAIR_B))
    np.testing.assert_allclose(out["pooled_output"], pooled, atol=1e-5)


def test_pretrainer_sop(pretrainer, tokenizer):
    model, loaded = pretrainer
    rows = [_pack_reference(_ids(tokenizer, a), _ids(tokenizer, b))
            for a, b in zip(PAIR_A, PAIR_B)]
    positions = np.zeros((len(rows), 1), np.int32)
    logits = model({**_features(rows), "masked_lm_positions": positions},
                   training=False)["sop_logits"].numpy()
    out = loaded.signatures["sop"](text_a=tf.constant(PAIR_A),
                                   text_b=tf.constant(PAIR_B))
    np.testing.assert_allclose(out["probabilities"],
                               tf.nn.softmax(logits).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["sop_log_probs"],
                               tf.nn.log_softmax(logits).numpy(), atol=1e-5)


def test_pretrainer_mlm_top_k(pretrainer, tokenizer):
    model, loaded = pretrainer
    texts = ["kari [MASK] mu [MASK].", "[MASK] lo pe"]
    # Python reference: tokenize the parts, one [MASK] id between them.
    rows, positions = [], []
    for text in texts:
        ids = []
        for i, part in enumerate(text.split("[MASK]")):
            ids += ([MASK] if i else []) + _ids(tokenizer, part)
        row = _pack_reference(ids)
        rows.append(row)
        positions.append([i for i, x in enumerate(row[0]) if x == MASK])
    assert [len(p) for p in positions] == [2, 1]
    dense = np.array([p + [0] * (2 - len(p)) for p in positions], np.int32)
    logits = model({**_features(rows), "masked_lm_positions": dense},
                   training=False)["mlm_logits"].numpy()  # [B, M, V]
    probabilities = tf.nn.softmax(logits).numpy()

    out = loaded.signatures["mlm"](text=tf.constant(texts))
    assert _unpad(out["input_ids"], np.array(out["input_ids"]) != 0) == [
        [x for x in row[0] if x] for row in rows]
    np.testing.assert_array_equal(out["mask_positions"],
                                  [positions[0], positions[1] + [-1]])
    for b, row_positions in enumerate(positions):
        for m in range(len(row_positions)):
            want = np.argsort(-logits[b, m], kind="stable")[:TOP_K]
            np.testing.assert_array_equal(out["top_k_ids"][b, m], want)
            assert [p.decode() for p in out["top_k_pieces"][b, m].numpy()] \
                == tokenizer.convert_ids_to_tokens(want)
            np.testing.assert_allclose(out["top_k_probabilities"][b, m],
                                       probabilities[b, m, want], atol=1e-5)
    # The second text has one mask: its second slot is padding.
    np.testing.assert_array_equal(out["top_k_ids"][1, 1], [-1] * TOP_K)
    assert set(out["top_k_pieces"][1, 1].numpy()) == {b""}
    # Texts without a mask: no slots, no error.
    out = loaded.signatures["mlm"](text=tf.constant(["kari tone", ""]))
    assert out["top_k_ids"].shape == (2, 0, TOP_K)


def test_pretrainer_mlm_refuses_a_truncated_mask(pretrainer):
    _, loaded = pretrainer
    text = " ".join(["kari"] * (MAX_SEQ_LENGTH + 3)) + " [MASK]"
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="beyond max_seq_length"):
        loaded.signatures["mlm"](text=tf.constant([text]))
