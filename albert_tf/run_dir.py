"""One run per output_dir: a lock, and a config that cannot silently change.

Two runs writing into one directory overwrite each other's checkpoints and
both exit 0; a rerun with another model config breaks the directory. So a
runner first validates everything it was given, then opens the directory:

    with run_dir.open_run(output_dir, config, role="train") as run:
        ...  # prepare the data
        run.write_files(flags_text)
        ...  # train / evaluate / predict

`open_run` takes `<output_dir>/<role>.lock` (a second run of the same role
stops at once, naming the process that holds it), refuses a config that
differs from the `albert_config.json` already there (naming the keys) and
removes temporary files that killed writers left; `write_files` writes
`flags.txt` and `albert_config.json` once the data is ready.

The training data is part of a run's identity too: a resumed run restores
its input iterator, which still points into the data (and the batch size,
seed and padding) of the run that saved it. `RunDir.check_train_data`
compares the identity of the data given now (a feature cache key, or the
pretraining files and their sizes) with `train_data.json` from the run
already there, and refuses a difference, naming it, unless the caller
passes `restart_input` (--restart_input_on_new_data): then the model and
optimizer resume and the input starts over on the new data.

Stale locks: a lock names its host, pid and the pid's start time. On the
same host a lock whose process is gone (or was reused) is stale; from
another host a lock is stale when its heartbeat (refreshed every
HEARTBEAT_S seconds by a daemon thread) is older than STALE_AFTER_S. A
killed run therefore never blocks its own resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import sys
import threading
import time
from typing import Iterator

import tensorflow as tf
from absl import logging

from albert_tf import fileio
from albert_tf.config import AlbertConfig
from albert_tf.data import cache

CONFIG_NAME = "albert_config.json"
TRAIN_DATA_NAME = "train_data.json"  # The training data's identity.
EVAL_DATA_NAME = "eval_data.json"  # What eval_history.json was scored on.
EVAL_HISTORY_NAME = "eval_history.json"  # training.EVAL_HISTORY.
RESTART_INPUT_FLAG = "--restart_input_on_new_data"
FLAGS_NAME = "flags.txt"
TASK_NAME = "task.txt"  # Which runner and task own the directory.
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0


class RunDirBusyError(RuntimeError):
    """Another live run holds this output directory."""


class ConfigMismatchError(ValueError):
    """The output directory holds a run of another model config or task."""


class DataMismatchError(ConfigMismatchError):
    """The output directory holds a run that trained on other data."""


def check_task(directory: str, task: str | None) -> None:
    """Refuses a directory that holds a run of another task (a SQuAD run
    would otherwise resume from a classifier's checkpoints)."""
    path = fileio.join(directory, TASK_NAME)
    if task is None or not tf.io.gfile.exists(path):
        return
    old = fileio.read_text(path).strip()
    if old != task:
        raise ConfigMismatchError(
            f"{directory} holds a {old!r} run ({path}), not {task!r}. Use "
            f"another output_dir.")


def _process_start_time(pid: int) -> str | None:
    """Start time of `pid` (clock ticks since boot), to detect pid reuse."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            # Field 22; the command name (field 2) may contain spaces.
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int, start_time: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # Exists, owned by another user.
    if start_time is not None:
        current = _process_start_time(pid)
        if current is not None and current != start_time:
            return False  # The pid was reused by another process.
    return True


@dataclasses.dataclass
class _LockInfo:
    host: str
    pid: int
    start_time: str | None
    started: float
    heartbeat: float
    command: str

    @classmethod
    def mine(cls) -> "_LockInfo":
        now = time.time()
        return cls(socket.gethostname(), os.getpid(),
                   _process_start_time(os.getpid()), now, now,
                   " ".join(sys.argv)[:500])

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S",
                                time.localtime(self.started))
        return (f"pid {self.pid} on {self.host}, started {started}: "
                f"{self.command}")

    def is_stale(self) -> bool:
        if self.host == socket.gethostname():
            return not _pid_alive(self.pid, self.start_time)
        return time.time() - self.heartbeat > STALE_AFTER_S


def _read_lock(path: str) -> _LockInfo | None:
    try:
        values = json.loads(fileio.read_text(path))
        return _LockInfo(**values)
    except tf.errors.NotFoundError:
        return None
    except (ValueError, TypeError):
        # Half-written or foreign: treat as stale rather than block forever.
        logging.warning("Unreadable lock file %s: treating it as stale",
                        path)
        return _LockInfo("?", -1, None, 0.0, 0.0, "?")


def _create_exclusive(path: str, text: str) -> bool:
    """Creates `path` only if it does not exist. True if this call did."""
    if "://" not in path:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return True
    # Object stores have no exclusive create: write, then read back to see
    # who won (a narrow race remains; documented in the module docstring).
    if tf.io.gfile.exists(path):
        return False
    fileio.write_atomic(path, text)
    return fileio.read_text(path) == text


class RunLock:
    """`<directory>/<role>.lock`, held for the life of a run."""

    def __init__(self, directory: str, role: str):
        self.path = fileio.join(directory, f"{role}.lock")
        self._info: _LockInfo | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        info = _LockInfo.mine()
        text = json.dumps(dataclasses.asdict(info))
        for _ in range(3):
            if _create_exclusive(self.path, text):
                self._info = info
                self._start_heartbeat()
                return
            holder = _read_lock(self.path)
            if holder is None:
                continue  # Released meanwhile: try again.
            if not holder.is_stale():
                raise RunDirBusyError(
                    f"{os.path.dirname(self.path) or '.'} is in use by "
                    f"another run ({holder.describe()}); lock file "
                    f"{self.path}. Wait for it, or use another output_dir.")
            logging.warning("Removing the stale lock %s of a run that is "
                            "gone (%s)", self.path, holder.describe())
            with contextlib.suppress(tf.errors.NotFoundError):
                tf.io.gfile.remove(self.path)
        raise RunDirBusyError(f"could not take the lock {self.path}")

    def _start_heartbeat(self) -> None:
        def beat():
            while not self._stop.wait(HEARTBEAT_S):
                holder = _read_lock(self.path)
                if holder is None or not self._holds(holder):
                    # Taken over (ours was judged stale) or removed: never
                    # write it back over another run's lock.
                    logging.warning("Lost the lock %s (now: %s); the "
                                    "heartbeat stops", self.path,
                                    holder.describe() if holder else "none")
                    return
                self._info.heartbeat = time.time()
                try:
                    fileio.write_atomic(
                        self.path, json.dumps(dataclasses.asdict(self._info)))
                except (OSError, tf.errors.OpError) as e:
                    logging.warning("Lock heartbeat failed: %s", e)

        self._thread = threading.Thread(target=beat, daemon=True,
                                        name="run-lock-heartbeat")
        self._thread.start()

    def _holds(self, holder: "_LockInfo") -> bool:
        """Whether `holder` (the lock file now) is this run's own lock."""
        return self._info is not None and (
            holder.host, holder.pid, holder.start_time, holder.started) == (
            self._info.host, self._info.pid, self._info.start_time,
            self._info.started)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        holder = _read_lock(self.path)
        if holder is not None and self._holds(holder):
            with contextlib.suppress(tf.errors.NotFoundError):
                tf.io.gfile.remove(self.path)


def config_differences(old: dict, new: dict) -> list[str]:
    """Human-readable `key: old -> new` lines for the keys that differ."""
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}"
            for k in keys if old.get(k) != new.get(k)]


def check_config(directory: str, config: AlbertConfig) -> None:
    """Refuses to continue a run of another model config."""
    path = fileio.join(directory, CONFIG_NAME)
    if not tf.io.gfile.exists(path):
        return
    old = AlbertConfig.from_json_file(path).to_dict()
    differences = config_differences(old, config.to_dict())
    if differences:
        raise ConfigMismatchError(
            f"{directory} holds a run with another model config "
            f"({path}); differing keys: " + "; ".join(differences)
            + ". Use a new output_dir, or the same config to resume.")


def train_data_differences(directory: str, identity: dict,
                           name: str = TRAIN_DATA_NAME) -> list[str]:
    """'field: old -> new' for each way `identity` differs from the
    training data recorded in `directory` (none if nothing is recorded);
    `name`: EVAL_DATA_NAME for the evaluation data."""
    path = fileio.join(directory, name)
    if not tf.io.gfile.exists(path):
        return []
    stored = fileio.read_json(path)
    if not isinstance(stored, dict):
        raise ValueError(f"{path}: expected a JSON object, got "
                         f"{type(stored).__name__}; delete it only if you "
                         f"know the run's data")
    return cache.key_differences(stored, json.loads(json.dumps(
        identity, sort_keys=True)))


class RunDir:
    """An output directory held by this run (see open_run)."""

    def __init__(self, output_dir: str, config: AlbertConfig | None,
                 is_chief: bool, task: str | None = None):
        self.output_dir = output_dir
        self.config = config
        self.is_chief = is_chief
        self.task = task
        self.train_data: dict | None = None

    def check_train_data(self, identity: dict,
                         restart_input: bool = False) -> bool:
        """Refuses to resume on other training data; remembers `identity`
        for write_files. Returns True when the input must start over (the
        data differs and restart_input was given)."""
        self.train_data = identity
        path = fileio.join(self.output_dir, TRAIN_DATA_NAME)
        if (not tf.io.gfile.exists(path) and tf.io.gfile.exists(
                fileio.join(self.output_dir, "checkpoint"))):
            logging.warning(
                "%s has checkpoints but no %s (written by an older "
                "version): its training data cannot be compared; resuming "
                "as if it were the data given now", self.output_dir,
                TRAIN_DATA_NAME)
        differences = train_data_differences(self.output_dir, identity)
        if not differences:
            return False
        if not restart_input:
            raise DataMismatchError(
                f"{self.output_dir} holds a run that trained on other data "
                f"({path}); what changed (old -> new): "
                + "; ".join(differences) + ". Its checkpoints would resume "
                "reading the old data. Use a new --output_dir, restore the "
                f"old data, or pass {RESTART_INPUT_FLAG} to keep the "
                "weights and start the input over on the new data.")
        logging.warning(
            "%s: the training data changed (%s); %s: resuming the weights "
            "and optimizer, and starting the input over on the new data",
            self.output_dir, "; ".join(differences), RESTART_INPUT_FLAG)
        return True

    def check_init_checkpoint(self, init_checkpoint: str | None) -> None:
        """Refuses a resumed run given another --init_checkpoint than the
        one it started from: it resumes from its own checkpoints, so the
        new one would be silently ignored (as the original's Estimator
        did). The old one is read from flags.txt."""
        if not tf.io.gfile.glob(fileio.join(self.output_dir, "ckpt-*.index")):
            return  # Nothing to resume: init_checkpoint will be used.
        flags_file = fileio.join(self.output_dir, FLAGS_NAME)
        if not tf.io.gfile.exists(flags_file):
            return
        old = None
        for line in fileio.read_text(flags_file).splitlines():
            if line.startswith("--init_checkpoint="):
                old = line.split("=", 1)[1].strip() or None
        if (old or None) != (init_checkpoint or None):
            raise ConfigMismatchError(
                f"{self.output_dir} holds a run started from "
                f"--init_checkpoint={old or '(none)'} ({flags_file}); this "
                f"rerun gives {init_checkpoint or '(none)'}, which it would "
                f"ignore, resuming from its own checkpoints. Use a new "
                f"--output_dir to start from it, or give the same value "
                f"to resume.")

    def check_eval_data(self, identity: dict) -> None:
        """Refuses to add evaluations on other data to eval_history.json
        (the best checkpoint would be picked across two dev sets), naming
        what changed; records `identity` (eval_data.json) otherwise."""
        history = fileio.join(self.output_dir, EVAL_HISTORY_NAME)
        differences = train_data_differences(self.output_dir, identity,
                                             EVAL_DATA_NAME)
        if differences and tf.io.gfile.exists(history):
            raise DataMismatchError(
                f"{history} holds evaluations on other data "
                f"({fileio.join(self.output_dir, EVAL_DATA_NAME)}); what "
                f"changed (old -> new): " + "; ".join(differences)
                + ". New checkpoints scored on it would be compared with "
                "old ones scored on the old data. Use a new --output_dir "
                "(with --init_checkpoint=<this run>/best to start from its "
                "best weights), or restore the old evaluation data.")
        if self.is_chief:
            fileio.write_json_atomic(
                fileio.join(self.output_dir, EVAL_DATA_NAME), identity)

    def write_files(self, flags_text: str | None) -> None:
        """albert_config.json and flags.txt, once the inputs are known good.

        Call after the data is prepared, so a rerun that fails on its
        inputs leaves the files of the run already there untouched.
        """
        if not self.is_chief:
            return
        if self.task is not None:
            fileio.write_atomic(fileio.join(self.output_dir, TASK_NAME),
                                self.task + "\n")
        if self.config is not None:
            fileio.write_atomic(fileio.join(self.output_dir, CONFIG_NAME),
                                self.config.to_json_string())
        if self.train_data is not None:
            fileio.write_json_atomic(
                fileio.join(self.output_dir, TRAIN_DATA_NAME),
                self.train_data)
        if flags_text is not None:
            fileio.write_atomic(fileio.join(self.output_dir, FLAGS_NAME),
                                flags_text)
            logging.info("Flags written to %s",
                         fileio.join(self.output_dir, FLAGS_NAME))


@contextlib.contextmanager
def open_run(output_dir: str, config: AlbertConfig | None,
             role: str = "train", is_chief: bool = True,
             task: str | None = None) -> Iterator[RunDir]:
    """Locks `output_dir` for `role` and checks the config against it.

    Call it only after the inputs that can be checked cheaply have been:
    nothing is written into `output_dir` before the lock is held and the
    config agrees, and albert_config.json / flags.txt only when the caller
    says so (RunDir.write_files). Roles: "train" (one trainer), "eval"
    (one evaluator beside it), "predict". Non-chief workers
    (MultiWorkerMirrored) neither lock nor write.
    """
    run = RunDir(output_dir, config, is_chief, task)
    if not is_chief:
        yield run
        return
    if tf.io.gfile.exists(output_dir) and not tf.io.gfile.isdir(output_dir):
        raise FileExistsError(f"--output_dir={output_dir} is a file, not a "
                              f"directory; name a directory")
    tf.io.gfile.makedirs(output_dir)
    lock = RunLock(output_dir, role)
    lock.acquire()
    try:
        check_task(output_dir, task)
        if config is not None:
            check_config(output_dir, config)
        if role == "train":
            # Only a trainer owns the checkpoint temporaries.
            for path in fileio.remove_stale_temps(output_dir):
                logging.warning("Removed %s left by a killed run", path)
        yield run
    finally:
        lock.release()
