"""Optional: the same weights in HF transformers' AlbertForPreTraining.

Runs only where torch and transformers are importable (CI has neither).
"""

import numpy as np
import pytest

import helpers
from albert_tf import AlbertPretrainer
from albert_tf import checkpoints

pytestmark = pytest.mark.interop


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
