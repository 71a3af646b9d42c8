"""Small shared test helpers (tiny configs with distinct sizes per axis)."""

import numpy as np

from albert_tf import AlbertConfig
from albert_tf.checkpoints import tf1_names as names

# Distinct per axis so a mixed-up axis fails: B=2, T=7, P=3, V=29, E=6, H=8,
# N=2, I=10, L=3 with G=2 (L % G != 0) and 2 inner groups.
BATCH, SEQ, PREDICTIONS = 2, 7, 3


def tiny_config(**overrides) -> AlbertConfig:
    values = dict(vocab_size=29, embedding_size=6, hidden_size=8,
                  num_hidden_layers=3, num_hidden_groups=2,
                  num_attention_heads=2, intermediate_size=10,
                  inner_group_num=2, max_position_embeddings=11,
                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    values.update(overrides)
    return AlbertConfig(**values)


def random_inputs(config, seed=0, batch=BATCH, seq=SEQ,
                  predictions=PREDICTIONS):
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(1, config.vocab_size, (batch, seq)).astype("int32")
    input_mask = np.ones((batch, seq), "int32")
    input_mask[1, seq - 2:] = 0  # padding at the end of the second example
    input_ids[input_mask == 0] = 0
    segment_ids = np.zeros((batch, seq), "int32")
    segment_ids[:, seq // 2:] = 1
    segment_ids[input_mask == 0] = 0
    positions = np.stack([rng.choice(np.arange(1, seq - 2), predictions,
                                     replace=False) for _ in range(batch)])
    return {"input_ids": input_ids, "input_mask": input_mask,
            "segment_ids": segment_ids,
            "masked_lm_positions": positions.astype("int32")}


def randomize(model, seed=1, scale=0.3) -> dict:
    """Sets every variable to random values (LN and biases too).

    Returns the weights by original TF1 name, for the NumPy reference.
    """
    rng = np.random.default_rng(seed)
    paths = names.variables_by_path(model)
    by_tf1 = {}
    for tf1, path in sorted(names.tf1_name_map(model).items()):
        variable = paths[path]
        value = rng.normal(0.0, scale, variable.shape).astype("float32")
        if path.endswith("gamma"):
            value += 1.0
        variable.assign(value)
        by_tf1[tf1] = value
    return by_tf1


def expected_best_checkpoint(history: dict, key: str) -> str:
    """The checkpoint a run must keep as best, computed without
    training.best_checkpoint: the highest `key`; among equal values the
    lowest global_step (the original's strict `>` in step order)."""
    top = max(h[key] for h in history.values())
    return min((h["global_step"], name) for name, h in history.items()
               if h[key] == top)[1]


def assert_gradients_match(variables, grads, runner_variables, runner_grads,
                           min_compared: int) -> None:
    """Each gradient of `variables` equals the runner's for the variable of
    the same path (None where the runner's is None); at least
    `min_compared` are compared, so an empty match cannot pass."""
    import tensorflow as tf

    by_path = dict(zip([v.path for v in runner_variables], runner_grads))
    compared = 0
    for variable, grad in zip(variables, grads):
        if grad is None:
            assert by_path[variable.path] is None, variable.path
            continue
        np.testing.assert_allclose(
            tf.convert_to_tensor(grad).numpy(),
            tf.convert_to_tensor(by_path[variable.path]).numpy(),
            rtol=1e-5, atol=1e-7, err_msg=variable.path)
        compared += 1
    assert compared > min_compared, compared
