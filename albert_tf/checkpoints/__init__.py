"""Checkpoint formats: original TF1, HF safetensors and albert_tf's own.

`formats` reads and writes them (everything a caller needs is re-exported
here, so `albert_tf.checkpoints.load_pretrained(...)` is the public path);
`tf1_names` and `hf_names` are the variable-name tables; `convert` is the
command-line converter (`python3 -m albert_tf.convert`).
"""

from albert_tf.checkpoints.formats import ALBERT_TF_PREFIX
from albert_tf.checkpoints.formats import CONFIG_NAME
from albert_tf.checkpoints.formats import HF_CONFIG_NAME
from albert_tf.checkpoints.formats import HF_INDEX_NAME
from albert_tf.checkpoints.formats import HF_WEIGHTS_NAME
from albert_tf.checkpoints.formats import RELEASE_CHECKPOINT
from albert_tf.checkpoints.formats import LoadReport
from albert_tf.checkpoints.formats import detect_format
from albert_tf.checkpoints.formats import find_config
from albert_tf.checkpoints.formats import load_albert_tf_checkpoint
from albert_tf.checkpoints.formats import load_checkpoint
from albert_tf.checkpoints.formats import load_hf_checkpoint
from albert_tf.checkpoints.formats import load_pretrained
from albert_tf.checkpoints.formats import load_tf1_checkpoint
from albert_tf.checkpoints.formats import object_checkpoint_keys
from albert_tf.checkpoints.formats import object_paths
from albert_tf.checkpoints.formats import read_hf_config
from albert_tf.checkpoints.formats import resolve_albert_tf_checkpoint
from albert_tf.checkpoints.formats import resolve_tf1_checkpoint
from albert_tf.checkpoints.formats import save_albert_tf_checkpoint
from albert_tf.checkpoints.formats import save_hf_checkpoint
from albert_tf.checkpoints.formats import save_tf1_checkpoint
