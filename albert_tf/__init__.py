"""albert_tf: ALBERT in TensorFlow 2 / Keras 3, faithful to google-research/albert."""

import os as _os
import sys as _sys

from albert_tf import quiet as _quiet

if "tensorflow" not in _sys.modules:
    # TensorFlow's C++ INFO lines (e.g. one "TFRecordDataset `buffer_size`
    # is unspecified" per dataset) say nothing to a user; its warnings and
    # errors stay. An explicit TF_CPP_MIN_LOG_LEVEL wins.
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

# TensorFlow's start-up lines (printed twice, before absl logging exists)
# and, on a machine without a GPU, the error-level cuInit line of its GPU
# probe (which absl's app.run would otherwise trigger) are dropped; any
# other line still reaches stderr. Listing physical devices does not
# initialise the runtime, so strategies can still be configured after.
# Only where TensorFlow is installed: the layers, models and losses also
# run on Keras's JAX backend on machines without it (bench/gpu/).
import importlib.util as _util

try:
    _HAS_TENSORFLOW = _util.find_spec("tensorflow") is not None
except (ImportError, ValueError):
    _HAS_TENSORFLOW = False
if _HAS_TENSORFLOW:
    with _quiet.filtered_stderr(_quiet.STARTUP_NOISE + _quiet.NO_GPU_NOISE):
        import tensorflow as _tf
        _tf.config.list_physical_devices("GPU")

from albert_tf.config import AlbertConfig
from albert_tf.encoder import AlbertEncoder
from albert_tf.models import AlbertClassifier
from albert_tf.models import AlbertMultipleChoice
from albert_tf.models import AlbertPretrainer
from albert_tf.models import AlbertSpanLabeler
from albert_tf.models import AlbertSquadV2
from albert_tf.models import AlbertTokenClassifier

__all__ = [
    "AlbertConfig",
    "AlbertEncoder",
    "AlbertPretrainer",
    "AlbertClassifier",
    "AlbertMultipleChoice",
    "AlbertSpanLabeler",
    "AlbertSquadV2",
    "AlbertTokenClassifier",
    "AlbertTextClassifier",
    "AlbertTextMultipleChoice",
    "AlbertTextQuestionAnswerer",
    "AlbertTextTokenClassifier",
    "AlbertTextPretrainer",
    "Preprocessor",
    "MultipleChoicePreprocessor",
    "load",
]

# TensorFlow-only (tf.data, tensorflow-text): imported on first use, so
# `import albert_tf` stays TensorFlow-free for the JAX backend.
_LAZY = {"Preprocessor": "albert_tf.preprocessing",
         "AlbertTextClassifier": "albert_tf.text_tasks",
         "AlbertTextMultipleChoice": "albert_tf.text_tasks",
         "AlbertTextQuestionAnswerer": "albert_tf.text_tasks",
         "AlbertTextTokenClassifier": "albert_tf.text_tasks",
         "AlbertTextPretrainer": "albert_tf.text_tasks",
         "MultipleChoicePreprocessor": "albert_tf.preprocessing",
         "load": "albert_tf.loading"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'albert_tf' has no attribute {name!r}")
