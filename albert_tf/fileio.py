"""File helpers shared by every runner and data module.

Everything goes through tf.io.gfile, so local paths, gs:// and TensorFlow's
in-process ram:// file system behave the same (the original used tf.gfile
throughout). Writes are atomic: a reader sees the old file or the new one,
never half of one, and a killed writer leaves at most a `*.tmp<PID>` file
that `remove_stale_temps` cleans up.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from typing import Any, Callable, Iterable, Sequence

import tensorflow as tf

_CHUNK = 1 << 22  # 4 MiB


def join(*parts: str) -> str:
    """os.path.join for local paths, '/' for URL-style ones (gs://, ram://)."""
    if "://" in parts[0]:
        return posixpath.join(*parts)
    return os.path.join(*parts)


def expand_globs(patterns: str | Sequence[str], flag: str = "input_file"
                 ) -> list[str]:
    """A comma-separated list of globs (or a list of them) -> files.

    Each pattern's matches are sorted; patterns keep their order. A pattern
    that matches nothing is an error naming it and the flag it came from:
    a mistyped glob must not silently train on fewer files.
    """
    if isinstance(patterns, str):
        patterns = patterns.split(",")
    files: list[str] = []
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern:
            continue
        matches = sorted(tf.io.gfile.glob(pattern))
        matches = [m for m in matches if not tf.io.gfile.isdir(m)]
        if not matches:
            raise FileNotFoundError(
                f"--{flag}: pattern {pattern!r} matches no file")
        files.extend(matches)
    if not files:
        raise FileNotFoundError(f"--{flag}={patterns!r} names no file")
    return files


def temp_path(path: str) -> str:
    """Where an atomic write of `path` stages its data."""
    return f"{path}.tmp{os.getpid()}"


def write_atomic(path: str, data: str | bytes) -> None:
    """Writes `data` to `path` via a temporary file and a rename."""
    tmp = temp_path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        with tf.io.gfile.GFile(tmp, mode) as f:
            f.write(data)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)


def write_json_atomic(path: str, value: Any) -> None:
    write_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def decode_utf8(data: bytes, path: str) -> str:
    """`data` (the bytes of `path`) as text; bytes that are not UTF-8 are
    an error naming the file, the line and the byte offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ValueError(
            f"{path}:{line}: not UTF-8 (byte {data[e.start]:#04x} at byte "
            f"offset {e.start}); the file must be UTF-8") from None


def read_text(path: str) -> str:
    """A UTF-8 text file, as GFile's text mode reads it; bytes that are not
    UTF-8 name the file, line and offset (GFile raised a bare
    UnicodeDecodeError)."""
    with tf.io.gfile.GFile(path, "rb") as f:
        return decode_utf8(f.read(), path)


def read_json(path: str) -> Any:
    """Parses a JSON file; a parse error names the file and line."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}:{e.colno}: not valid JSON "
                         f"({e.msg})") from None


def fingerprint(path: str) -> str:
    """sha256 of a file's bytes: what a cache was built from."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def fingerprints(paths: Iterable[str | None]) -> dict[str, str | None]:
    """{path: sha256} for each path given (None entries are skipped)."""
    return {p: fingerprint(p) for p in paths if p}


def move_dir(src: str, dst: str) -> None:
    """Renames a directory: atomic on local disks, file by file on URLs.

    Some file systems rename only the directory entry (ram:// loses the
    files), and object stores have no directories, so URL-style paths move
    each file.
    """
    if "://" not in src:
        tf.io.gfile.rename(src, dst)
        return
    for root, _, files in tf.io.gfile.walk(src):
        relative = root[len(src):].strip("/")
        target = join(dst, relative) if relative else dst
        tf.io.gfile.makedirs(target)
        for name in files:
            source = join(root, name)
            # Prefix-keyed listings (ram://) also return the siblings that
            # merely share the name (best -> best_trial.txt as "_trial.txt").
            if tf.io.gfile.exists(source):
                tf.io.gfile.rename(source, join(target, name))
    # No rmtree: on a prefix-keyed file system it would also delete those
    # siblings. What is left of src is at most an empty directory marker.
    if tf.io.gfile.exists(src) and not any(
            tf.io.gfile.exists(join(src, name))
            for name in tf.io.gfile.listdir(src)):
        try:
            tf.io.gfile.remove(src)
        except tf.errors.OpError:
            pass  # A directory marker some file systems do not remove.


_TEMP = re.compile(r"\.tmp(\d+)$")


def replace_dir(directory: str, write: Callable[[str], None],
                check: Callable[[str], None] | None = None) -> str:
    """Fills a temporary sibling with `write(tmp)`, then renames it into
    place; returns the absolute `directory`. `check(directory)` runs first
    and raises if what is there may not be replaced.

    A reader never sees a half-written directory, and a failed write
    leaves the old one. The sibling is hidden and not prefixed by
    `directory`: prefix-keyed file systems (ram://, object stores) would
    count it as its contents.
    """
    directory = os.fspath(directory)
    if "://" not in directory:
        directory = os.path.abspath(directory)
    directory = directory.rstrip("/")
    if check is not None:
        check(directory)
    parent, name = os.path.split(directory)
    tmp = temp_path(join(parent, f".{name}"))
    old = join(parent, f".{name}.old{os.getpid()}")
    tf.io.gfile.makedirs(parent)
    try:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.rmtree(tmp)
        write(tmp)
        if tf.io.gfile.exists(directory):
            move_dir(directory, old)
        move_dir(tmp, directory)
        if tf.io.gfile.exists(old):
            tf.io.gfile.rmtree(old)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.rmtree(tmp)
    return directory


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return pid != 0


def remove_stale_temps(directory: str) -> list[str]:
    """Deletes `*.tmp<PID>` files and `*_temp` checkpoint dirs left by
    killed writers in `directory` (not recursive). Returns what it removed.

    Only call this while holding the directory's run lock: a live writer's
    temporary file looks the same.
    """
    removed = []
    if not tf.io.gfile.isdir(directory):
        return removed
    for name in tf.io.gfile.listdir(directory):
        name = name.rstrip("/")
        path = join(directory, name)
        match = _TEMP.search(name)
        if match and _pid_alive(int(match.group(1))):
            continue  # A live writer's file (e.g. an evaluator beside us).
        if match or name.endswith("_temp") or (
                name.endswith((".tmp", ".old")) and name.startswith(".")
                and tf.io.gfile.isdir(path)):
            if tf.io.gfile.isdir(path):
                tf.io.gfile.rmtree(path)
            else:
                tf.io.gfile.remove(path)
            removed.append(path)
    return removed
