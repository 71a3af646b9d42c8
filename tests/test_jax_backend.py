"""The encoder's layers use only keras.ops, so they run on Keras's JAX backend.

KERAS_BACKEND is read at import time, so the JAX side runs in a subprocess
that loads the weights and inputs this test saves.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import helpers
from albert_tf import AlbertPretrainer
from albert_tf.checkpoints import tf1_names as names

pytestmark = pytest.mark.jax

_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    from albert_tf import AlbertConfig, AlbertPretrainer
    from albert_tf.checkpoints import tf1_names as names
    data = np.load(sys.argv[1], allow_pickle=True)
    config = AlbertConfig.from_json_file(sys.argv[2])
    model = AlbertPretrainer(config)
    paths = names.variables_by_path(model)
    for path, variable in paths.items():
        variable.assign(data["w/" + path])
    inputs = {k: data["x/" + k] for k in ("input_ids", "input_mask",
              "segment_ids", "masked_lm_positions")}
    out = model(inputs)
    np.savez(sys.argv[3], **{k: np.asarray(out[k]) for k in
             ("sequence_output", "pooled_output", "mlm_logits", "sop_logits")})
""")


def test_encoder_on_jax_backend_matches_tensorflow(tmp_path):
    pytest.importorskip("jax")
    config = helpers.tiny_config()
    model = AlbertPretrainer(config)
    helpers.randomize(model)
    inputs = helpers.random_inputs(config)
    expected = model(inputs)
    arrays = {"w/" + p: np.asarray(v)
              for p, v in names.variables_by_path(model).items()}
    arrays.update({"x/" + k: v for k, v in inputs.items()})
    np.savez(tmp_path / "in.npz", **arrays)
    config.to_json_file(tmp_path / "config.json")
    script = tmp_path / "run_jax.py"
    script.write_text(_SCRIPT)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, str(script), str(tmp_path / "in.npz"),
                    str(tmp_path / "config.json"), str(tmp_path / "out.npz")],
                   check=True, env=env, timeout=300)
    got = np.load(tmp_path / "out.npz")
    for key in ("sequence_output", "pooled_output", "mlm_logits",
                "sop_logits"):
        np.testing.assert_allclose(got[key], expected[key], atol=1e-5,
                                   err_msg=key)
