"""SavedModel exports with raw-text signatures, for serving and on-device.

`export` (classifier, pretrainer, multiple choice and the shared text
packing), `squad` (`serve_qa`), `tokens` (`serve_tokens`), `checks`
(the signatures' input validation) and `tflite` (on-device files).
"""

from albert_tf.serving.export import export_classifier
from albert_tf.serving.export import export_multiple_choice
from albert_tf.serving.export import export_pretrainer
from albert_tf.serving.squad import export_squad
from albert_tf.serving.tflite import export_tflite
from albert_tf.serving.tokens import export_token_classifier
