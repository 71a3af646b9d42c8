"""albert_tf against HF transformers' AlbertForPreTraining.

The fixture test runs everywhere: tests/fixtures/hf_tiny holds a checkpoint
made by transformers itself and HF's outputs on fixed inputs (written by
tests/fixtures/make_hf_tiny.py), so CI checks HF loading without torch.
The live comparison runs only where torch and transformers are importable.
"""

import os

import numpy as np
import pytest

import helpers
from albert_tf import AlbertPretrainer
from albert_tf import checkpoints

HF_TINY = os.path.join(os.path.dirname(__file__), "fixtures", "hf_tiny")


def test_checkpoint_made_by_transformers_gives_hf_outputs():
    expected = np.load(os.path.join(HF_TINY, "outputs.npz"))
    config = checkpoints.read_hf_config(HF_TINY)
    # The fixture's distinct sizes, and HF's "gelu" read as the erf GELU.
    assert (config.vocab_size, config.embedding_size, config.hidden_size,
            config.num_hidden_layers, config.num_hidden_groups,
            config.intermediate_size) == (29, 6, 8, 3, 1, 10)
    assert config.hidden_act == "gelu_exact"
    model = AlbertPretrainer(config)
    assert checkpoints.detect_format(HF_TINY) == "hf"
    report = checkpoints.load_checkpoint(model, HF_TINY)
    assert len(report.loaded) == len(model.weights)
    assert not report.missing_in_checkpoint
    assert not report.unused_in_checkpoint

    batch, seq = expected["input_ids"].shape  # [B, T]
    positions = np.tile(np.arange(seq, dtype=np.int32), (batch, 1))
    out = model({"input_ids": expected["input_ids"],
                 "input_mask": expected["attention_mask"],
                 "segment_ids": expected["token_type_ids"],
                 "masked_lm_positions": positions})
    np.testing.assert_allclose(out["sequence_output"],
                               expected["sequence_output"], atol=1e-5)
    np.testing.assert_allclose(out["pooled_output"],
                               expected["pooled_output"], atol=1e-5)
    # HF scores every position: [B, T, V]; ours the masked ones, here all.
    np.testing.assert_allclose(out["mlm_logits"],
                               expected["prediction_logits"], atol=1e-5)
    np.testing.assert_allclose(out["sop_logits"], expected["sop_logits"],
                               atol=1e-5)


@pytest.mark.interop
def test_same_outputs_as_hf_albert_for_pretraining(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = helpers.tiny_config()  # L=3, G=2: L % G != 0, 2 inner groups
    model = AlbertPretrainer(config)
    helpers.randomize(model)
    checkpoints.save_hf_checkpoint(model, tmp_path)
    theirs = transformers.AlbertForPreTraining.from_pretrained(
        str(tmp_path)).eval()
    inputs = helpers.random_inputs(config)
    out = model(inputs)
    with torch.no_grad():
        ref = theirs(
            input_ids=torch.tensor(inputs["input_ids"], dtype=torch.long),
            attention_mask=torch.tensor(inputs["input_mask"]),
            token_type_ids=torch.tensor(inputs["segment_ids"],
                                        dtype=torch.long),
            output_hidden_states=True)
    positions = inputs["masked_lm_positions"]
    hf_mlm = np.take_along_axis(ref.prediction_logits.numpy(),
                                positions[:, :, None], axis=1)
    # HF's group routing int(i / (L / G)) equals the original's here.
    np.testing.assert_allclose(out["sequence_output"],
                               ref.hidden_states[-1].numpy(), atol=1e-5)
    np.testing.assert_allclose(out["mlm_logits"], hf_mlm, atol=1e-5)
    np.testing.assert_allclose(out["sop_logits"], ref.sop_logits.numpy(),
                               atol=1e-5)
