"""Feature caches that are reused only when built from the same inputs.

The original's run_classifier (and run_squad, run_race) reused any cached
TFRecord with the right file name, so an edited TSV, another data_dir,
another SentencePiece model or another do_lower_case silently trained and
predicted on old features. Here a cache entry is two files:

* `path`, the TFRecord under its usual name (e.g.
  `<cached_dir>/mnli_train.tf_record`), and
* `path + ".meta.json"`, a sidecar holding the key: a JSON dict of what the
  records were built from (source file sha256s, tokenizer fingerprint,
  lowercasing, lengths, task, split, a format version), plus the
  TFRecord's byte size.

`lookup(path, key)` is true only when both exist, the stored key equals
`key` and the size matches; otherwise it logs why the entry is rebuilt.
`write(path, key, write_fn)` drops the old sidecar first, lets write_fn
fill a temporary file, renames it into place and writes the sidecar last,
so a killed writer leaves no sidecar and the next run rebuilds.

Example:
    key = {"format": 1, "task": "mnli", "split": "train",
           "source": fileio.fingerprint(tsv), **cache.tokenizer_key(tok),
           "max_seq_length": 128}
    if not cache.lookup(path, key):
        cache.write(path, key, lambda tmp: write_records(examples, tmp))
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Optional, TypeVar

from absl import logging
import tensorflow as tf

from albert_tf import fileio

META_SUFFIX = ".meta.json"
# Version of the sidecar layout itself (callers version their features in
# their own key).
SIDECAR_VERSION = 1

T = TypeVar("T")


def meta_path(path: str) -> str:
    """The sidecar of the cache entry at `path`."""
    return path + META_SUFFIX


def _canonical(key: dict) -> dict:
    """The key as it reads back from JSON (tuples -> lists, str keys)."""
    if not isinstance(key, dict):
        raise TypeError(f"a cache key must be a dict, got {type(key)}")
    try:
        return json.loads(json.dumps(key, sort_keys=True))
    except (TypeError, ValueError) as e:
        raise TypeError(f"cache key is not JSON-serializable: {e}") from e


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def key_differences(stored: dict, key: dict, prefix: str = "") -> list[str]:
    """'field: stored -> now' for each field that differs (nested dicts
    give dotted names, e.g. 'tokenizer.spm_model_sha256')."""
    missing = object()
    out = []
    for field in sorted(set(stored) | set(key)):
        old, new = stored.get(field, missing), key.get(field, missing)
        if isinstance(old, dict) and isinstance(new, dict):
            out += key_differences(old, new, f"{prefix}{field}.")
        elif old != new:
            out.append(f"{prefix}{field}: "
                       f"{'(absent)' if old is missing else _short(old)} -> "
                       f"{'(absent)' if new is missing else _short(new)}")
    return out


def stale_reason(path: str, key: dict) -> Optional[str]:
    """None if the entry at `path` was built from `key`, else why not."""
    key = _canonical(key)
    meta = meta_path(path)
    if not tf.io.gfile.exists(path):
        return "no cached file"
    if not tf.io.gfile.exists(meta):
        return (f"no {os.path.basename(meta)} beside it (written by an "
                "older version, or its writer was interrupted)")
    try:
        sidecar = fileio.read_json(meta)
    except ValueError as e:
        return f"unreadable sidecar ({e})"
    if (not isinstance(sidecar, dict)
            or sidecar.get("sidecar_version") != SIDECAR_VERSION
            or not isinstance(sidecar.get("key"), dict)):
        return f"sidecar {meta} has an unknown layout"
    differences = key_differences(sidecar["key"], key)
    if differences:
        return "built from other inputs: " + "; ".join(differences)
    size = tf.io.gfile.stat(path).length
    if size != sidecar.get("num_bytes"):
        return (f"the file has {size} bytes but {sidecar.get('num_bytes')} "
                "were written (replaced or truncated since)")
    return None


def lookup(path: str, key: dict) -> bool:
    """True if the cache entry at `path` can be reused for `key`.

    Logs the reuse at INFO; otherwise logs why it must be rebuilt (INFO
    when there is no entry yet, WARNING when an existing one is stale).
    """
    reason = stale_reason(path, key)
    if reason is None:
        logging.info("Reusing cached %s (same inputs)", path)
        return True
    if tf.io.gfile.exists(path) or tf.io.gfile.exists(meta_path(path)):
        logging.warning("Rebuilding cached %s: %s", path, reason)
    else:
        logging.info("Building %s: %s", path, reason)
    return False


def write(path: str, key: dict, write_fn: Callable[[str], T]) -> T:
    """Builds the entry at `path` for `key`; returns write_fn's result.

    write_fn(tmp_path) writes the whole file at tmp_path (a plain,
    non-atomic write is fine). The old sidecar is removed before anything
    else, the file is renamed into place, and the sidecar is written last
    (atomically), so an interrupted write is never taken for a valid entry.
    """
    key = _canonical(key)
    directory = os.path.dirname(path)
    if directory:
        tf.io.gfile.makedirs(directory)
    meta = meta_path(path)
    if tf.io.gfile.exists(meta):
        tf.io.gfile.remove(meta)
    tmp = fileio.temp_path(path)
    try:
        result = write_fn(tmp)
        if not tf.io.gfile.exists(tmp):
            raise RuntimeError(f"cache writer for {path} wrote nothing to "
                               f"{tmp}")
        num_bytes = tf.io.gfile.stat(tmp).length
        tf.io.gfile.rename(tmp, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
    fileio.write_json_atomic(meta, {"sidecar_version": SIDECAR_VERSION,
                                    "key": key, "num_bytes": num_bytes})
    if tf.io.gfile.stat(path).length != num_bytes:
        # Another process wrote the same path meanwhile; its records and
        # our key must not be paired.
        tf.io.gfile.remove(meta)
        raise RuntimeError(
            f"{path} was replaced while it was being written: another run "
            "is writing the same cache; give each run its own cached_dir")
    return result


def tokenizer_key(tokenizer: Any) -> dict:
    """What a FullTokenizer's pieces depend on, for a cache key.

    The sha256 of the SentencePiece model (or, without one, of the
    WordPiece vocab), do_lower_case and hf_compat. File contents, not
    paths: a copied model reuses the cache, an edited one does not.
    """
    spm_model_file = getattr(tokenizer, "spm_model_file", None)
    vocab_file = getattr(tokenizer, "vocab_file", None)
    key = {"do_lower_case": bool(getattr(tokenizer, "do_lower_case", False)),
           "hf_compat": bool(getattr(tokenizer, "hf_compat", False))}
    if spm_model_file:
        key["spm_model_sha256"] = fileio.fingerprint(spm_model_file)
    elif vocab_file:
        key["vocab_sha256"] = fileio.fingerprint(vocab_file)
    else:
        raise ValueError("tokenizer has neither spm_model_file nor "
                         "vocab_file to fingerprint")
    return key
