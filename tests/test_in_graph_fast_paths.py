"""The in-graph tokenizer's shortcuts give the Python path's ids.

InGraphTokenizer skips the code-point tables when a batch is ASCII without
NUL, and the digit-comma re-encoding when no piece needs it. Both are
decided per batch, so lines are fed alone (each takes its own branch), as
an ASCII-only batch and as one mixed batch.
"""

import pytest
import tensorflow as tf

from albert_tf.tokenization import FullTokenizer
from albert_tf.tokenization import InGraphTokenizer
from test_tokenization import digit_comma_spm  # noqa: F401  (fixture)

LINES = [
    "KA RI  To",            # ASCII, upper case: the fast lowering.
    "ka\x00RI to",          # NUL: left to the code-point tables.
    "2019,2019, KA1, 7,",   # ASCII with the digit-comma rule.
    "Caf\u00e9 1,000, ka",  # Non-ASCII: the code-point tables.
    "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3 ri",  # Final sigma.
    "", "  ", "ne\tMU\x0bsa\r\n",
]


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_each_branch_matches_python(
        digit_comma_spm, do_lower_case):  # noqa: F811  (the fixture)
    python = FullTokenizer(spm_model_file=digit_comma_spm,
                           do_lower_case=do_lower_case)
    in_graph = InGraphTokenizer.from_file(digit_comma_spm,
                                          do_lower_case=do_lower_case)
    expected = [python.convert_tokens_to_ids(python.tokenize(
        python.preprocess(line))) for line in LINES]
    # The rule must fire on some line, or its branch is untested.
    assert any(python.vocab[","] in ids for ids in expected)
    alone = [in_graph(tf.constant([line])).to_list()[0] for line in LINES]
    assert alone == expected
    ascii_lines = [i for i, line in enumerate(LINES)
                   if line.isascii() and "\x00" not in line]
    assert in_graph(tf.constant([LINES[i] for i in ascii_lines])
                    ).to_list() == [expected[i] for i in ascii_lines]
    assert in_graph(tf.constant(LINES)).to_list() == expected
