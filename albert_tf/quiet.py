"""Quiets TensorFlow's known start-up noise without hiding real errors.

On a CPU-only machine `import tensorflow` prints its start-up lines twice
(two libraries each log "oneDNN custom operations are on", "Could not find
cuda drivers", ...) before absl logging is initialised, so
TF_CPP_MIN_LOG_LEVEL cannot silence them; the first op then logs an
error-level "failed call to cuInit" although no GPU was asked for.

`filtered_stderr(patterns)` redirects the process's file descriptor 2 into
a temporary file for the duration of a block, then writes back every line
that matches none of `patterns`: anything unexpected (a real error, a
warning we do not know) still reaches stderr, in order, as soon as the
block ends. Set ALBERT_TF_VERBOSE_STARTUP=1 to keep every line.

`saved_model_logs()` drops tf.saved_model.save's per-signature INFO lines
("Function `serve` contains input name(s) 3904, resource with unsupported
characters which will be renamed to unknown, ..." about its internal
captured-variable inputs, sharding and fingerprint timings); warnings and
errors pass.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from typing import Iterator, Sequence

# What `import tensorflow` prints on a machine without a GPU.
STARTUP_NOISE = (
    r"All log messages before absl::InitializeLog\(\) is called are "
    r"written to STDERR",
    r"oneDNN custom operations are on",
    r"cudart_stub\.cc.*Could not find cuda drivers",
    r"cpu_feature_guard\.cc.*This TensorFlow binary is optimized",
    r"^To enable the following instructions: .* rebuild TensorFlow",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
    r"TF-TRT Warning: Could not find TensorRT",
)
# What TensorFlow prints when it finds no usable GPU: noise on a CPU-only
# machine; runner_flags.strategy_from_flags logs it again as an error when
# --num_gpus asks for a GPU that is not there.
NO_GPU_NOISE = (
    r"cuda_platform\.cc.*failed call to cuInit",
    r"cuda_executor\.cc.*could not open file to read NUMA node",
)
# Logged at error level, once per process, by the first graph with an
# int64 op oneDNN could take (e.g. a transpose), on AVX-512 machines too;
# such ops run on Eigen, as they should. absorb_onednn_int64_notice()
# sets it off where it is dropped.
ONEDNN_NOISE = (
    r"oneDNN supports DT_INT64 only on platforms with AVX-512",
)


_DROPPED: list[str] = []  # Every line filtered out, in order.


def dropped_lines(patterns: Sequence[str] = ()) -> list[str]:
    """The lines filtered out so far (those matching `patterns`, if given),
    for an error that makes them relevant again (e.g. --num_gpus without
    a GPU: the cuInit failure)."""
    if not patterns:
        return list(_DROPPED)
    wanted = re.compile("|".join(f"(?:{p})" for p in patterns))
    return [line for line in _DROPPED if wanted.search(line)]


def _enabled() -> bool:
    return os.environ.get("ALBERT_TF_VERBOSE_STARTUP", "") in ("", "0")


@contextlib.contextmanager
def filtered_stderr(patterns: Sequence[str]) -> Iterator[None]:
    """Drops the stderr lines (of C++ and Python alike) written inside the
    block that match one of `patterns` (regexes); keeps all others."""
    if not _enabled():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield  # No usable fd 2 (e.g. an embedded interpreter).
        return
    capture = tempfile.TemporaryFile(mode="w+b")
    os.dup2(capture.fileno(), 2)
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)
        os.close(saved)
        capture.seek(0)
        noise = re.compile("|".join(f"(?:{p})" for p in patterns))
        kept = []
        for line in capture.read().splitlines(keepends=True):
            if noise.search(line.decode("utf-8", "replace")):
                _DROPPED.append(line.decode("utf-8", "replace"))
            else:
                kept.append(line)
        capture.close()
        if kept:
            os.write(2, b"".join(kept))


# tf.saved_model.save's INFO records that say nothing to a user.
SAVED_MODEL_NOISE = (
    r"^Function `.*` contains input name\(s\) .* will be renamed",
    r"^Sharding callback duration",
    r"^Writing fingerprint to",
    r"^Assets written to",
)


class _DropInfo(logging.Filter):
    """Drops INFO (and lower) records whose message matches a pattern."""

    def __init__(self, patterns: Sequence[str]):
        super().__init__()
        self._noise = re.compile("|".join(f"(?:{p})" for p in patterns))

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        return not self._noise.search(message)


@contextlib.contextmanager
def saved_model_logs() -> Iterator[None]:
    """Within the block, tf.saved_model.save's noise (SAVED_MODEL_NOISE) is
    not logged, by absl's logger or TensorFlow's."""
    drop = _DropInfo(SAVED_MODEL_NOISE)
    loggers = [logging.getLogger("absl"), logging.getLogger("tensorflow")]
    for logger in loggers:
        logger.addFilter(drop)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop)


def absorb_onednn_int64_notice() -> None:
    """Runs a tiny int64 graph with its once-per-process oneDNN notice
    (ONEDNN_NOISE) dropped, so training, evaluation or an export do not
    print it later. Call after the runtime is set up (a strategy exists):
    it executes an op."""
    import tensorflow as tf

    @tf.function
    def transpose(x):
        return tf.transpose(tf.stack([x, x]))

    with filtered_stderr(ONEDNN_NOISE):
        transpose(tf.constant([0, 1], tf.int64))
