"""configs/pretrain_*.flags parse with run_pretraining's own flags and
carry the paper's recipe (ALBERT §4.1: LAMB, lr 0.00176, batch 4096, 125k
steps, 3125 warmup, sequences of 512 with 20 predictions)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from albert_tf import AlbertConfig

ROOT = pathlib.Path(__file__).resolve().parent.parent
SIZES = ("base", "large", "xlarge", "xxlarge")
# Hidden sizes of the released v2 configs (the paper's Table 1).
HIDDEN = {"base": 768, "large": 1024, "xlarge": 2048, "xxlarge": 4096}

_PARSE = """
import json, sys
from absl import flags
import run_pretraining  # Defines the runner's flags on flags.FLAGS.
out = {}
values = flags.FLAGS
for path in sys.argv[1:]:
    values.unparse_flags()  # Back to the defaults before each file.
    values(["run_pretraining.py", "--flagfile=" + path])
    out[path] = {name: values[name].value for name in (
        "albert_config_file", "optimizer", "learning_rate", "poly_power",
        "train_batch_size", "num_train_steps", "num_warmup_steps",
        "start_warmup_step", "max_seq_length", "max_predictions_per_seq",
        "do_train", "do_eval", "sentence_loss_weight")}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def parsed():
    files = [f"configs/pretrain_{size}.flags" for size in SIZES]
    result = subprocess.run(
        [sys.executable, "-c", _PARSE, *files], cwd=ROOT, capture_output=True,
        text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                 PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr[-3000:]
    return {pathlib.Path(k).stem.split("_")[1]: v
            for k, v in json.loads(result.stdout).items()}


@pytest.mark.parametrize("size", SIZES)
def test_pretraining_flagfiles_carry_the_paper_recipe(parsed, size):
    values = parsed[size]
    assert values["optimizer"] == "lamb"
    assert values["learning_rate"] == 0.00176
    assert values["poly_power"] == 1.0
    assert values["train_batch_size"] == 4096
    assert values["num_train_steps"] == 125000
    assert values["num_warmup_steps"] == 3125
    assert values["start_warmup_step"] == 0
    assert values["max_seq_length"] == 512
    assert values["max_predictions_per_seq"] == 20
    assert values["do_train"] is True
    assert values["sentence_loss_weight"] == 1.0  # MLM + SOP, as the paper.
    config = AlbertConfig.from_json_file(ROOT / values["albert_config_file"])
    assert config.hidden_size == HIDDEN[size]
    assert config.embedding_size == 128
    assert config.num_hidden_groups == 1
