"""Tiny pretraining TFRecords and configs shared by the training tests."""

import json

from albert_tf import fileio
from albert_tf.data import create_pretraining
from albert_tf.data import pretraining_data

import helpers

SEQ, PREDICTIONS = 16, 3


def write_records(tiny_spm, directory, num_files=2, dupe_factor=2, seed=7,
                  do_permutation=False, corpus=None):
    """Original-schema TFRecords from the tiny corpus; returns a glob.

    `directory` may be a pathlib.Path or a string such as ram://dir.
    """
    directory = str(directory)
    outputs = ",".join(fileio.join(directory, f"part-{i}.tfrecord")
                       for i in range(num_files))
    config = pretraining_data.PretrainingConfig(
        max_seq_length=SEQ, max_predictions_per_seq=PREDICTIONS,
        do_permutation=do_permutation)
    create_pretraining.create_pretraining_data(
        corpus or tiny_spm["corpus"], outputs, vocab_file=None,
        spm_model_file=tiny_spm["model"], do_lower_case=True, config=config,
        random_seed=seed, dupe_factor=dupe_factor,
        options=create_pretraining.PipelineOptions(),
        stats_file=fileio.join(directory, "stats.json"))
    return fileio.join(directory, "part-*.tfrecord")


def albert_config(**overrides):
    # The tiny SentencePiece model has about 300 pieces.
    values = dict(vocab_size=320, max_position_embeddings=SEQ)
    values.update(overrides)
    return helpers.tiny_config(**values)


def write_config(path, **overrides):
    path.write_text(json.dumps(albert_config(**overrides).to_dict()))
    return str(path)


def runner_flags(records, config_file, output_dir, **overrides):
    values = dict(input_file=records, albert_config_file=config_file,
                  output_dir=output_dir, max_seq_length=SEQ,
                  max_predictions_per_seq=PREDICTIONS, train_batch_size=4,
                  eval_batch_size=4, num_train_steps=4, num_warmup_steps=1,
                  learning_rate=0.01, save_checkpoints_steps=2,
                  iterations_per_loop=2, log_every_n_steps=1,
                  max_eval_steps=2, do_eval=True)
    values.update(overrides)
    return [f"--{k}={v}" for k, v in values.items()]
