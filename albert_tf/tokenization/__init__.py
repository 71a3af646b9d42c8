"""ALBERT tokenization: the original `tokenization.py`, plus HF and in-graph.

Python path (no TensorFlow needed): `preprocess_text`, `encode_pieces`,
`encode_ids`, `FullTokenizer`. `InGraphTokenizer` (tf_text) is imported on
first use, so importing this package stays light.
"""

from albert_tf.tokenization.full_tokenizer import FullTokenizer
from albert_tf.tokenization.full_tokenizer import SPM_SPECIAL_IDS
from albert_tf.tokenization.full_tokenizer import check_spm_special_ids
from albert_tf.tokenization.text import SPIECE_UNDERLINE
from albert_tf.tokenization.text import encode_ids
from albert_tf.tokenization.text import encode_pieces
from albert_tf.tokenization.text import preprocess_text
from albert_tf.tokenization.text import preprocess_text_hf

__all__ = [
    "FullTokenizer", "InGraphTokenizer", "SPIECE_UNDERLINE", "SPM_SPECIAL_IDS",
    "check_spm_special_ids", "encode_ids", "encode_pieces", "preprocess_text",
    "preprocess_text_hf",
]


def __getattr__(name):
    if name == "InGraphTokenizer":
        from albert_tf.tokenization.in_graph import InGraphTokenizer
        return InGraphTokenizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
