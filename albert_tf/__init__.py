"""albert_tf: ALBERT in TensorFlow 2 / Keras 3, faithful to google-research/albert."""

from albert_tf.config import AlbertConfig
from albert_tf.encoder import AlbertEncoder

__all__ = ["AlbertConfig", "AlbertEncoder"]
