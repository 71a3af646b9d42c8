"""Every serving signature checks its inputs' shapes, batch agreement and
id values first, and names the input, the expected shape and the shape
received (issue 18, part 4). Before, `serve_qa` with 2 questions and 1
context died in a GatherV2 and `serve_choice` with 3 options in a
StringJoin, although the signature declared [None, 4]."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

import helpers
from albert_tf.models import AlbertClassifier
from albert_tf.models import AlbertMultipleChoice
from albert_tf.models import AlbertPretrainer
from albert_tf.models import AlbertSpanLabeler
from albert_tf.models import AlbertSquadV2
from albert_tf.serving import export
from albert_tf.serving import squad as export_squad

SEQ = 24
Error = tf.errors.InvalidArgumentError


@pytest.fixture(scope="module")
def signatures(tiny_spm, tmp_path_factory):
    """{name of the export: its loaded signatures}."""
    config = helpers.tiny_config(vocab_size=320, max_position_embeddings=SEQ)
    root = tmp_path_factory.mktemp("exports")
    spm_model = tiny_spm["model"]
    export.export_classifier(
        AlbertClassifier(config, 2), str(root / "classifier"),
        label_list=["a", "b"], is_regression=False, spm_model_file=spm_model,
        do_lower_case=True, max_seq_length=SEQ)
    export.export_pretrainer(
        AlbertPretrainer(config), str(root / "pretrainer"),
        spm_model_file=spm_model, do_lower_case=True, max_seq_length=SEQ)
    export.export_multiple_choice(
        AlbertMultipleChoice(config, 4), str(root / "race"),
        spm_model_file=spm_model, do_lower_case=True, max_seq_length=SEQ,
        max_qa_length=8)
    for name, model, v2 in (("squad_v1", AlbertSpanLabeler(config), False),
                            ("squad_v2", AlbertSquadV2(
                                config, start_n_top=2, end_n_top=2), True)):
        export_squad.export_squad(
            model, str(root / name), spm_model_file=spm_model,
            do_lower_case=True, max_seq_length=SEQ, doc_stride=8,
            max_query_length=6, max_answer_length=5, n_best_size=3,
            version_2_with_negative=v2, start_n_top=2, end_n_top=2)
    return {name: tf.saved_model.load(str(root / name)).signatures
            for name in ("classifier", "pretrainer", "race", "squad_v1",
                         "squad_v2")}


def _texts(n):
    return tf.constant(["kari tone mu sa."] * n)


@pytest.mark.parametrize("export_name", ["squad_v1", "squad_v2"])
def test_serve_qa_refuses_questions_and_contexts_of_other_counts(
        signatures, export_name):
    serve_qa = signatures[export_name]["serve_qa"]
    with pytest.raises(Error, match=(
            r"serve_qa: inputs question and context must agree in the "
            r"batch size \(B\); got shapes \[2\] and \[1\]")):
        serve_qa(question=_texts(2), context=_texts(1))
    with pytest.raises(Error, match=r"serve_qa: input context must have "
                                    r"shape \[B\] .*got shape \[1 1\]"):
        serve_qa(question=_texts(1), context=tf.constant([["kari"]]))
    out = serve_qa(question=_texts(2), context=_texts(2))
    assert out["answer"].shape == (2,)


@pytest.mark.parametrize("num_options", [2, 3, 5])
def test_serve_choice_takes_exactly_four_options(signatures, num_options):
    """The RACE head scores a fixed number of choices (the model's
    num_choices, 4), so serve_choice takes exactly that many."""
    serve_choice = signatures["race"]["serve_choice"]
    options = tf.constant([[f"option {i}" for i in range(num_options)]] * 2)
    with pytest.raises(Error, match=(
            rf"serve_choice: input options must have shape \[B, 4\] "
            rf".*got shape \[2 {num_options}\]")):
        serve_choice(article=_texts(2), question=_texts(2), options=options)


def test_serve_choice_refuses_articles_and_questions_of_other_counts(
        signatures):
    serve_choice = signatures["race"]["serve_choice"]
    options = tf.constant([["a", "b", "c", "d"]] * 2)
    with pytest.raises(Error, match=(
            r"inputs article and question must agree in the batch size "
            r"\(B\); got shapes \[2\] and \[1\]")):
        serve_choice(article=_texts(2), question=_texts(1), options=options)
    out = serve_choice(article=_texts(2), question=_texts(2),
                       options=options)
    assert out["probabilities"].shape == (2, 4)


def _ids(batch, length, value=5):
    ids = np.full((batch, length), value, np.int32)
    return {"input_ids": ids, "input_mask": np.ones_like(ids),
            "segment_ids": np.zeros_like(ids)}


@pytest.mark.parametrize("export_name", ["classifier", "pretrainer",
                                         "squad_v1"])
def test_serving_default_checks_shapes_and_id_values(signatures,
                                                     export_name):
    serve = signatures[export_name]["serving_default"]
    good = _ids(2, 6)
    with pytest.raises(Error, match=(
            r"serving_default: inputs input_ids and input_mask must "
            r"agree in the sequence length \(T\); got shapes \[2 6\] "
            r"and \[2 5\]")):
        serve(**{**good, "input_mask": good["input_mask"][:, :5]})
    with pytest.raises(Error, match=r"segment_ids must agree in the "
                                    r"batch size"):
        serve(**{**good, "segment_ids": good["segment_ids"][:1]})
    with pytest.raises(Error, match=(
            r"input input_ids: token ids must be in \[0, vocab_size=320\)"
            r"; got \[320 320\] at index \[\[0 3\]")):
        serve(**{**good, "input_ids": np.where(
            np.arange(6) == 3, 320, 5).astype(np.int32)[None].repeat(2, 0)})
    with pytest.raises(Error, match=r"input_mask: the mask must be 0 or "
                                    r"1; got \[2 2"):
        serve(**{**good, "input_mask": good["input_mask"] * 2})
    with pytest.raises(Error, match=r"sequence length 25 > "
                                    r"max_position_embeddings=24"):
        serve(**_ids(1, 25))
    serve(**good)


def test_the_race_ids_signature_checks_the_choice_axis(signatures):
    serve = signatures["race"]["serving_default"]
    ids = {k: v[:, None].repeat(3, 1) for k, v in _ids(2, 6).items()}
    with pytest.raises(Error, match=r"input input_ids must have shape "
                                    r"\[B, 4, T\].*got shape \[2 3 6\]"):
        serve(**ids)


def test_squad_v2_ids_signature_checks_p_mask(signatures):
    serve = signatures["squad_v2"]["serving_default"]
    good = _ids(2, 6)
    with pytest.raises(Error, match=r"input_ids and p_mask must agree "
                                    r"in the sequence length"):
        serve(**good, p_mask=np.zeros((2, 4), np.int32))


@pytest.mark.parametrize("export_name, name, inputs", [
    ("classifier", "serve_text", {"text": [["a", "b"]]}),
    ("classifier", "serve_text_pair", {"text_a": ["a", "b"],
                                       "text_b": ["c"]}),
    ("pretrainer", "sop", {"text_a": ["a"], "text_b": ["c", "d"]}),
    ("pretrainer", "mlm", {"text": "a [MASK]"}),
    ("classifier", "serve_examples", {"input": [[b"x"]]}),
])
def test_text_signatures_check_rank_and_batch(signatures, export_name, name,
                                              inputs):
    signature = signatures[export_name][name]
    with pytest.raises(Error, match=rf"{name}: input"):
        signature(**{k: tf.constant(v) for k, v in inputs.items()})
