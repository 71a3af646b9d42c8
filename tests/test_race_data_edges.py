"""albert_tf.data.race length boundaries, written out by hand."""

import pytest

from albert_tf.data import race


def test_length_checks_allow_exactly_the_limits():
    race.check_lengths(40, 37)  # [CLS] + 2 [SEP] + 37 = 40: allowed.
    race.check_lengths(40, 1)
    with pytest.raises(ValueError, match="max_qa_length=38 must be <= "
                       r"max_seq_length - 3 = 37 \(\[CLS\] and two \[SEP\]"):
        race.check_lengths(40, 38)


def test_pack_choice_keeps_the_qa_end_and_the_context_start():
    context = [f"c{i}" for i in range(10)]
    qa = [f"q{i}" for i in range(5)]
    tokens, segments = race.pack_choice(context, qa, max_seq_length=10,
                                        max_qa_length=3)
    # QA keeps its last 3 pieces; the context its first 10 - 3 - 3 = 4.
    assert tokens == [race.CLS, "c0", "c1", "c2", "c3", race.SEP,
                      "q2", "q3", "q4", race.SEP]
    assert segments == [0] * 6 + [1] * 4
    # Everything fits: nothing is cut.
    tokens, segments = race.pack_choice(["a"], ["b", "c"], 10, 3)
    assert tokens == [race.CLS, "a", race.SEP, "b", "c", race.SEP]
    assert segments == [0, 0, 0, 1, 1, 1]
    # A QA side exactly max_qa_length long is kept whole.
    tokens, _ = race.pack_choice(context, qa[:3], 8, 3)
    assert tokens == [race.CLS, "c0", "c1", race.SEP, "q0", "q1", "q2",
                      race.SEP]
