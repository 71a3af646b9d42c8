"""In-graph checks of a serving signature's inputs, run before the model.

A loaded SavedModel signature enforces its inputs' dtypes but not their
shapes: `serve_choice` declared options [None, 4] and took [B, 3], then
failed deep inside with `Input shapes do not match: [4] vs. [3]
[[{{node StringJoin}}]]`; `serve_qa` with 2 questions and 1 context died
in a GatherV2. On a GPU an out-of-range token id is not even an error (the
lookup returns zeros). So every signature first checks, in the graph:

* each input's rank and fixed dimensions (`checked`);
* that every input has the same batch size B, and that inputs sharing a
  named axis (e.g. T of input_ids / input_mask / segment_ids) agree;
* for id inputs, their values (`checked_ids`): token ids in
  [0, vocab_size), mask in {0, 1}, segment ids in [0, type_vocab_size),
  and T <= max_position_embeddings.

The signatures declare their inputs without a static shape
(`unchecked_spec`) so that these checks are not folded away; their
docstrings and the README give the shapes. A failed check raises InvalidArgumentError whose message names the
signature, the input, the expected shape and the shape received, e.g.
`serve_choice: input options must have shape [B, 4] (B: the batch size,
the same for every input); got shape [2 3]`.

Example:
    def serve_choice(self, article, question, options):
        article, question, options = serving_checks.checked(
            "serve_choice", [("article", article, ("B",)),
                             ("question", question, ("B",)),
                             ("options", options, ("B", 4))])
"""

from __future__ import annotations

from typing import Sequence, Union

import tensorflow as tf

Dim = Union[str, int, None]  # A named axis shared by inputs, fixed, or any.
_AXIS_NAMES = {"B": "the batch size, the same for every input",
               "T": "the sequence length, the same for every input",
               "C": "the number of choices"}


def _describe(spec: Sequence[Dim]) -> str:
    dims = ", ".join("?" if d is None else str(d) for d in spec)
    named = [f"{d}: {_AXIS_NAMES.get(d, 'shared by the inputs')}"
             for d in dict.fromkeys(d for d in spec if isinstance(d, str))]
    return f"[{dims}]" + (f" ({'; '.join(named)})" if named else "")


def _padded_shape(x: tf.Tensor, rank: int) -> tf.Tensor:
    """tf.shape(x) cut or zero-padded to `rank` entries (so a wrong rank
    does not break the dimension checks before their message)."""
    shape = tf.shape(x, out_type=tf.int64)
    return tf.concat([shape, tf.zeros([rank], tf.int64)], 0)[:rank]


def checked(signature: str,
            inputs: Sequence[tuple[str, tf.Tensor, Sequence[Dim]]]
            ) -> list[tf.Tensor]:
    """The inputs, after assertions on their ranks, fixed dimensions and
    shared axes (see the module docstring); same order as given."""
    assertions = []
    first_seen: dict[str, tuple[str, tf.Tensor, int]] = {}
    for name, x, spec in inputs:
        rank = len(spec)
        shape = tf.shape(x, out_type=tf.int64)
        padded = _padded_shape(x, rank)
        ok = tf.equal(tf.size(shape), rank)
        for i, dim in enumerate(spec):
            if isinstance(dim, int):
                ok = tf.logical_and(ok, tf.equal(padded[i], dim))
        assertions.append(_assert(
            ok, f"{signature}: input {name} must have shape "
            f"{_describe(spec)}; got shape {{}}", [shape]))
        for i, dim in enumerate(spec):
            if not isinstance(dim, str):
                continue
            if dim not in first_seen:
                first_seen[dim] = (name, shape, i)
                continue
            other, other_shape, j = first_seen[dim]
            what = _AXIS_NAMES.get(dim, f"axis {dim}").split(",")[0]
            assertions.append(_assert(
                tf.equal(padded[i], _padded_shape_at(other_shape, j)),
                f"{signature}: inputs {other} and {name} must agree in "
                f"{what} ({dim}); got shapes {{}} and {{}}",
                [other_shape, shape]))
    with tf.control_dependencies(assertions):
        # The checked shape, for the ops traced after this (the signature
        # declares unknown shapes; see unchecked_spec).
        return [tf.ensure_shape(tf.identity(x), [
            d if isinstance(d, int) else None for d in spec])
            for _, x, spec in inputs]


def unchecked_spec(dtype: tf.DType) -> tf.TensorSpec:
    """A signature input of any shape: the shape is checked in the graph.

    A loaded signature called with a shape other than the declared one
    falls back to its flat form, which feeds the tensor anyway; and with a
    declared shape, Grappler folds the checks of that shape to "true"
    (it takes the declared rank and dimensions as known). Declaring no
    shape keeps `checked`'s assertions real; it restores the shape after
    them.
    """
    return tf.TensorSpec(None, dtype)


def _assert(ok: tf.Tensor, template: str, values: list) -> tf.Operation:
    """An assertion whose message is `template` with `values` formatted
    in (tf.strings.format, `{}` placeholders): one readable line."""
    message = tf.strings.format(template, values, summarize=8)
    return tf.debugging.Assert(ok, [message])


def _padded_shape_at(shape: tf.Tensor, index: int) -> tf.Tensor:
    padded = tf.concat([shape, tf.zeros([index + 1], tf.int64)], 0)
    return padded[index]


def checked_ids(signature: str, input_ids: tf.Tensor, input_mask: tf.Tensor,
                segment_ids: tf.Tensor, config, *,
                leading: Sequence[Dim] = ("B",),
                extra: Sequence[tuple[str, tf.Tensor]] = ()
                ) -> list[tf.Tensor]:
    """input_ids, input_mask, segment_ids (and `extra` inputs of the same
    shape, e.g. p_mask) after the shape checks and the value checks that
    keep a bad id from being looked up: ids in [0, vocab_size), mask in
    {0, 1}, segments in [0, type_vocab_size), T <= max_position_embeddings.
    `leading` is the axes before T, e.g. ("B", 4) for multiple choice."""
    spec = (*leading, "T")
    tensors = checked(signature, [("input_ids", input_ids, spec),
                                  ("input_mask", input_mask, spec),
                                  ("segment_ids", segment_ids, spec)]
                      + [(name, x, spec) for name, x in extra])
    input_ids, input_mask, segment_ids = tensors[:3]
    length = tf.shape(input_ids, out_type=tf.int64)[-1]
    limits = [
        ("input_ids", input_ids, 0, config.vocab_size,
         f"token ids must be in [0, vocab_size={config.vocab_size})"),
        ("input_mask", input_mask, 0, 2, "the mask must be 0 or 1"),
        ("segment_ids", segment_ids, 0, config.type_vocab_size,
         f"segment ids must be in [0, type_vocab_size="
         f"{config.type_vocab_size})"),
    ]
    assertions = [_assert(
        tf.less_equal(length, config.max_position_embeddings),
        f"{signature}: input input_ids has sequence length {{}} > "
        f"max_position_embeddings={config.max_position_embeddings}",
        [length])]
    for name, x, low, high, rule in limits:
        x = tf.cast(x, tf.int64)
        bad = tf.logical_or(x < low, x >= high)
        assertions.append(_assert(
            tf.logical_not(tf.reduce_any(bad)),
            f"{signature}: input {name}: {rule}; got {{}} at index {{}}",
            [tf.boolean_mask(x, bad)[:5], tf.where(bad)[:5]]))
    with tf.control_dependencies(assertions):
        return [tf.identity(x) for x in tensors]
