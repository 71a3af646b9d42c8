"""albert_tf: ALBERT in TensorFlow 2 / Keras 3, faithful to google-research/albert."""

from albert_tf.config import AlbertConfig
from albert_tf.encoder import AlbertEncoder
from albert_tf.models import AlbertClassifier
from albert_tf.models import AlbertMultipleChoice
from albert_tf.models import AlbertPretrainer
from albert_tf.models import AlbertSpanLabeler
from albert_tf.models import AlbertSquadV2

__all__ = [
    "AlbertConfig",
    "AlbertEncoder",
    "AlbertPretrainer",
    "AlbertClassifier",
    "AlbertMultipleChoice",
    "AlbertSpanLabeler",
    "AlbertSquadV2",
]
