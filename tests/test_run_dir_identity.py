"""albert_tf.run_dir's run identity in-process: train_data.json,
eval_data.json, --init_checkpoint, the files a run writes, open_run's
edges and the lock's retry loop and staleness boundary.

The runner tests (test_run_identity.py) reach the same code through whole
fine-tuning runs; these call it directly, with expected messages and file
contents written out by hand, so a wrong comparison or a dropped check
fails here in milliseconds.
"""

import json
import logging
import os
import time
import types

import pytest

from albert_tf import run_dir
from helpers import tiny_config


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == "absl" and r.levelno == logging.WARNING]


def _write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


IDENTITY = {"features": {"max_seq_length": 40, "doc_stride": 12},
            "batch_size": 4}


# ---------------------------------------------------------------- differences

def test_differences_name_each_changed_field_old_to_new(tmp_path):
    out = str(tmp_path)
    assert run_dir.train_data_differences(out, IDENTITY) == []  # No file.
    _write(tmp_path / "train_data.json", json.dumps(IDENTITY))
    assert run_dir.train_data_differences(out, IDENTITY) == []
    changed = {"features": {"max_seq_length": 64, "doc_stride": 12},
               "batch_size": 8, "seed": 3}
    assert run_dir.train_data_differences(out, changed) == [
        "batch_size: 4 -> 8",
        "features.max_seq_length: 40 -> 64",
        "seed: (absent) -> 3"]
    # eval_data.json is another file: absent, so nothing differs.
    assert run_dir.train_data_differences(
        out, changed, run_dir.EVAL_DATA_NAME) == []


def test_differences_compare_the_json_form_of_the_identity(tmp_path):
    # The identity is compared as JSON would store it: a tuple given now
    # equals the list read back from train_data.json.
    _write(tmp_path / "train_data.json",
           json.dumps({"files": ["a", "b"], "sizes": [1, 2]}))
    assert run_dir.train_data_differences(
        str(tmp_path), {"files": ("a", "b"), "sizes": (1, 2)}) == []
    assert run_dir.train_data_differences(
        str(tmp_path), {"files": ("a", "c"), "sizes": (1, 2)}) == [
        'files: ["a", "b"] -> ["a", "c"]']


def test_a_train_data_file_that_is_not_an_object_is_refused(tmp_path):
    _write(tmp_path / "train_data.json", "[1, 2]")
    path = os.path.join(str(tmp_path), "train_data.json")
    with pytest.raises(ValueError) as e:
        run_dir.train_data_differences(str(tmp_path), IDENTITY)
    assert str(e.value) == (
        f"{path}: expected a JSON object, got list; delete it only if you "
        "know the run's data")


# ----------------------------------------------------------- check_train_data

def test_check_train_data_same_data_resumes_and_is_remembered(tmp_path):
    out = str(tmp_path)
    run = run_dir.RunDir(out, None, is_chief=True)
    assert run.check_train_data(IDENTITY) is False  # Nothing recorded.
    assert run.train_data == IDENTITY
    run.write_files(None)
    assert _read_json(tmp_path / "train_data.json") == IDENTITY
    run = run_dir.RunDir(out, None, is_chief=True)
    assert run.check_train_data(dict(IDENTITY)) is False
    assert run.check_train_data(dict(IDENTITY), restart_input=True) is False


def test_check_train_data_refuses_other_data_naming_file_and_change(
        tmp_path):
    out = str(tmp_path)
    _write(tmp_path / "train_data.json", json.dumps(IDENTITY))
    other = dict(IDENTITY, batch_size=8, seed=3)
    run = run_dir.RunDir(out, None, is_chief=True)
    with pytest.raises(run_dir.DataMismatchError) as e:
        run.check_train_data(other)
    assert str(e.value) == (
        f"{out} holds a run that trained on other data "
        f"({os.path.join(out, 'train_data.json')}); what changed "
        "(old -> new): batch_size: 4 -> 8; seed: (absent) -> 3. Its "
        "checkpoints would resume "
        "reading the old data. Use a new --output_dir, restore the old "
        "data, or pass --restart_input_on_new_data to keep the weights and "
        "start the input over on the new data.")
    # A data mismatch is a kind of config mismatch (runners catch both).
    assert isinstance(e.value, run_dir.ConfigMismatchError)
    assert _read_json(tmp_path / "train_data.json") == IDENTITY


def test_check_train_data_restart_input_starts_over_and_says_so(
        tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="absl")
    out = str(tmp_path)
    _write(tmp_path / "train_data.json", json.dumps(IDENTITY))
    other = dict(IDENTITY, batch_size=8, seed=3)
    run = run_dir.RunDir(out, None, is_chief=True)
    assert run.check_train_data(other, restart_input=True) is True
    assert _warnings(caplog) == [
        f"{out}: the training data changed (batch_size: 4 -> 8; seed: "
        "(absent) -> 3); "
        "--restart_input_on_new_data: resuming the weights and optimizer, "
        "and starting the input over on the new data"]
    # The new identity is what write_files records.
    run.write_files(None)
    assert _read_json(tmp_path / "train_data.json") == other


def test_checkpoints_without_train_data_are_resumed_with_a_warning(
        tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="absl")
    out = str(tmp_path)
    run = run_dir.RunDir(out, None, is_chief=True)
    assert run.check_train_data(IDENTITY) is False  # Empty: no warning.
    assert _warnings(caplog) == []
    _write(tmp_path / "checkpoint", 'model_checkpoint_path: "ckpt-5"\n')
    assert run.check_train_data(IDENTITY) is False
    assert _warnings(caplog) == [
        f"{out} has checkpoints but no train_data.json (written by an "
        "older version): its training data cannot be compared; resuming "
        "as if it were the data given now"]
    caplog.clear()
    _write(tmp_path / "train_data.json", json.dumps(IDENTITY))
    assert run.check_train_data(IDENTITY) is False  # Recorded: no warning.
    assert _warnings(caplog) == []


# ------------------------------------------------------------ check_eval_data

def test_check_eval_data_records_and_refuses_only_with_a_history(tmp_path):
    out = str(tmp_path)
    eval_data = tmp_path / "eval_data.json"
    run = run_dir.RunDir(out, None, is_chief=True)
    run.check_eval_data(IDENTITY)
    assert _read_json(eval_data) == IDENTITY
    # Other data before any evaluation was recorded: the record follows.
    other = dict(IDENTITY, batch_size=8, seed=3)
    run.check_eval_data(other)
    assert _read_json(eval_data) == other
    # Once eval_history.json exists, other data is refused, unchanged.
    _write(tmp_path / "eval_history.json", "[]")
    run.check_eval_data(other)  # The same data: fine.
    with pytest.raises(run_dir.DataMismatchError) as e:
        run.check_eval_data(IDENTITY)
    assert str(e.value) == (
        f"{os.path.join(out, 'eval_history.json')} holds evaluations on "
        f"other data ({os.path.join(out, 'eval_data.json')}); what changed "
        "(old -> new): batch_size: 8 -> 4; seed: 3 -> (absent). New "
        "checkpoints scored on it "
        "would be compared with old ones scored on the old data. Use a new "
        "--output_dir (with --init_checkpoint=<this run>/best to start from "
        "its best weights), or restore the old evaluation data.")
    assert _read_json(eval_data) == other
    # The training data's record is not the evaluation data's.
    assert not os.path.exists(tmp_path / "train_data.json")


def test_check_eval_data_of_a_non_chief_writes_nothing(tmp_path):
    run = run_dir.RunDir(str(tmp_path), None, is_chief=False)
    run.check_eval_data(IDENTITY)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------- check_init_checkpoint

def test_init_checkpoint_is_checked_only_when_resuming(tmp_path):
    out = str(tmp_path)
    run = run_dir.RunDir(out, None, is_chief=True)
    _write(tmp_path / "flags.txt", "--init_checkpoint=/a/model\n--x=1\n")
    run.check_init_checkpoint("/b/model")  # No ckpt-*.index: fresh start.
    _write(tmp_path / "ckpt-5.index", "")
    with pytest.raises(run_dir.ConfigMismatchError) as e:
        run.check_init_checkpoint("/b/model")
    assert str(e.value) == (
        f"{out} holds a run started from --init_checkpoint=/a/model "
        f"({os.path.join(out, 'flags.txt')}); this rerun gives /b/model, "
        "which it would ignore, resuming from its own checkpoints. Use a "
        "new --output_dir to start from it, or give the same value to "
        "resume.")
    run.check_init_checkpoint("/a/model")
    with pytest.raises(run_dir.ConfigMismatchError,
                       match="this rerun gives \\(none\\)"):
        run.check_init_checkpoint(None)
    # No flags.txt (an older run): nothing to compare.
    os.remove(tmp_path / "flags.txt")
    run.check_init_checkpoint("/b/model")


def test_an_empty_or_absent_init_checkpoint_is_none(tmp_path):
    out = str(tmp_path)
    run = run_dir.RunDir(out, None, is_chief=True)
    _write(tmp_path / "ckpt-10.index", "")
    _write(tmp_path / "flags.txt", "--init_checkpoint=\n--x=1\n")
    run.check_init_checkpoint(None)
    run.check_init_checkpoint("")
    with pytest.raises(run_dir.ConfigMismatchError,
                       match="started from --init_checkpoint=\\(none\\)"):
        run.check_init_checkpoint("/a")
    _write(tmp_path / "flags.txt", "--x=1\n")  # Never given.
    run.check_init_checkpoint(None)
    with pytest.raises(run_dir.ConfigMismatchError):
        run.check_init_checkpoint("/a")
    # The last occurrence counts, as with absl flags; "=" in the value.
    _write(tmp_path / "flags.txt",
           "--init_checkpoint=/old\n--init_checkpoint=gs://b/m=1\n")
    run.check_init_checkpoint("gs://b/m=1")
    with pytest.raises(run_dir.ConfigMismatchError):
        run.check_init_checkpoint("/old")


# ----------------------------------------------------------------- write_files

def test_write_files_writes_each_file_given(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="absl")
    out = str(tmp_path)
    run = run_dir.RunDir(out, tiny_config(), is_chief=True, task="squad_v1")
    run.train_data = {"b": 2, "a": 1}
    run.write_files("--x=1\n")
    assert sorted(os.listdir(out)) == [
        "albert_config.json", "flags.txt", "task.txt", "train_data.json"]
    assert (tmp_path / "task.txt").read_text() == "squad_v1\n"
    assert (tmp_path / "flags.txt").read_text() == "--x=1\n"
    assert (tmp_path / "train_data.json").read_text() == (
        '{\n  "a": 1,\n  "b": 2\n}\n')
    assert (_read_json(tmp_path / "albert_config.json")
            == tiny_config().to_dict())
    assert [r.getMessage() for r in caplog.records if r.name == "absl"] == [
        f"Flags written to {os.path.join(out, 'flags.txt')}"]


def test_write_files_skips_what_is_not_given_and_non_chiefs(tmp_path):
    run = run_dir.RunDir(str(tmp_path), None, is_chief=True)
    run.write_files(None)
    assert os.listdir(tmp_path) == []
    run = run_dir.RunDir(str(tmp_path), tiny_config(), is_chief=False,
                         task="t")
    run.train_data = IDENTITY
    run.write_files("--x=1\n")
    assert os.listdir(tmp_path) == []


# -------------------------------------------------------------- config / task

def test_config_differences_name_absent_keys():
    assert run_dir.config_differences({"a": 1, "b": 2}, {"a": 1, "c": 3}) == [
        "b: 2 -> '<absent>'", "c: '<absent>' -> 3"]
    assert run_dir.config_differences({"a": 1}, {"a": 1}) == []


def test_check_config_and_task_without_files_accept(tmp_path):
    run_dir.check_config(str(tmp_path), tiny_config())
    run_dir.check_task(str(tmp_path), "glue/sst-2")
    _write(tmp_path / "task.txt", "glue/sst-2\n")
    run_dir.check_task(str(tmp_path), "glue/sst-2")  # Newline stripped.
    run_dir.check_task(str(tmp_path), None)  # No task: not checked.
    with pytest.raises(run_dir.ConfigMismatchError) as e:
        run_dir.check_task(str(tmp_path), "race")
    assert str(e.value) == (
        f"{tmp_path} holds a 'glue/sst-2' run "
        f"({os.path.join(str(tmp_path), 'task.txt')}), not 'race'. Use "
        "another output_dir.")


def test_check_config_message_names_file_and_keys(tmp_path):
    out = str(tmp_path)
    _write(tmp_path / "albert_config.json", tiny_config().to_json_string())
    run_dir.check_config(out, tiny_config())
    with pytest.raises(run_dir.ConfigMismatchError) as e:
        run_dir.check_config(out, tiny_config(intermediate_size=20,
                                              vocab_size=31))
    # tiny_config: intermediate_size 10, vocab_size 29.
    assert str(e.value) == (
        f"{out} holds a run with another model config "
        f"({os.path.join(out, 'albert_config.json')}); differing keys: "
        "intermediate_size: 10 -> 20; vocab_size: 29 -> 31. Use a new "
        "output_dir, or the same config to resume.")


# -------------------------------------------------------------------- open_run

def test_open_run_of_a_non_chief_neither_locks_nor_creates(tmp_path):
    out = str(tmp_path / "run")
    with run_dir.open_run(out, tiny_config(), "train", is_chief=False) as r:
        assert (r.output_dir, r.is_chief) == (out, False)
        assert not os.path.exists(out)


def test_open_run_refuses_a_file_as_output_dir(tmp_path):
    path = tmp_path / "file"
    _write(path, "x")
    with pytest.raises(FileExistsError) as e:
        with run_dir.open_run(str(path), None):
            pass
    assert str(e.value) == (f"--output_dir={path} is a file, not a "
                            "directory; name a directory")


def test_open_run_holds_the_role_lock_and_keeps_its_fields(tmp_path):
    out = str(tmp_path / "a" / "b")  # Created, parents included.
    with run_dir.open_run(out, None, "predict", task="squad_v2") as run:
        assert (run.output_dir, run.config, run.is_chief, run.task) == (
            out, None, True, "squad_v2")
        assert sorted(os.listdir(out)) == ["predict.lock"]
        lock = _read_json(os.path.join(out, "predict.lock"))
        assert lock["pid"] == os.getpid()
    assert os.listdir(out) == []


def test_only_a_trainer_removes_temporaries(tmp_path):
    out = tmp_path
    leftover = out / "eval_results.txt.tmp999999999"
    _write(leftover, "x")
    for role in ("eval", "predict"):
        with run_dir.open_run(str(out), None, role):
            pass
        assert leftover.exists()
    with run_dir.open_run(str(out), None, "train"):
        pass
    assert not leftover.exists()


def test_the_lock_is_released_when_a_check_fails(tmp_path):
    _write(tmp_path / "task.txt", "race\n")
    with pytest.raises(run_dir.ConfigMismatchError):
        with run_dir.open_run(str(tmp_path), None, "train", task="ner"):
            pass
    assert not os.path.exists(tmp_path / "train.lock")


# ----------------------------------------------------------------------- locks

def test_acquire_tries_three_times_then_gives_up(tmp_path, monkeypatch):
    attempts = []

    def never(path, text):
        attempts.append(path)
        return False

    monkeypatch.setattr(run_dir, "_create_exclusive", never)
    monkeypatch.setattr(run_dir, "_read_lock", lambda path: None)
    path = os.path.join(str(tmp_path), "train.lock")
    with pytest.raises(run_dir.RunDirBusyError) as e:
        run_dir.RunLock(str(tmp_path), "train").acquire()
    assert str(e.value) == f"could not take the lock {path}"
    assert attempts == [path] * 3


def test_a_lock_released_meanwhile_is_taken_on_the_next_try(tmp_path,
                                                            monkeypatch):
    real = run_dir._create_exclusive
    calls = []

    def first_fails(path, text):
        calls.append(path)
        return False if len(calls) == 1 else real(path, text)

    monkeypatch.setattr(run_dir, "_create_exclusive", first_fails)
    lock = run_dir.RunLock(str(tmp_path), "train")
    lock.acquire()  # No lock file to read: released meanwhile, try again.
    try:
        assert len(calls) == 2
        assert _read_json(tmp_path / "train.lock")["pid"] == os.getpid()
    finally:
        lock.release()


def test_busy_message_names_the_directory_holder_and_lock(tmp_path):
    started = 1_700_000_000.0
    info = {"host": "elsewhere", "pid": 42, "start_time": "7",
            "started": started, "heartbeat": time.time(),
            "command": "run_squad.py --x=1"}
    _write(tmp_path / "eval.lock", json.dumps(info))
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
    with pytest.raises(run_dir.RunDirBusyError) as e:
        run_dir.RunLock(str(tmp_path), "eval").acquire()
    assert str(e.value) == (
        f"{tmp_path} is in use by another run (pid 42 on elsewhere, started "
        f"{when}: run_squad.py --x=1); lock file "
        f"{os.path.join(str(tmp_path), 'eval.lock')}. Wait for it, or use "
        "another output_dir.")


def test_another_hosts_lock_is_stale_only_past_the_limit(monkeypatch):
    now = 10_000.0
    monkeypatch.setattr(run_dir, "time", types.SimpleNamespace(
        time=lambda: now))
    lock = run_dir._LockInfo("elsewhere", 1, None, 0.0, 0.0, "x")
    lock.heartbeat = now - run_dir.STALE_AFTER_S  # Exactly at the limit.
    assert not lock.is_stale()
    lock.heartbeat = now - run_dir.STALE_AFTER_S - 0.5
    assert lock.is_stale()
    lock.heartbeat = now + 5.0  # A clock ahead of ours: live.
    assert not lock.is_stale()


def test_a_lock_with_unknown_fields_is_stale(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="absl")
    path = os.path.join(str(tmp_path), "train.lock")
    _write(path, json.dumps({"host": "h", "pid": 3}))  # Fields missing.
    holder = run_dir._read_lock(path)
    assert (holder.host, holder.pid, holder.start_time, holder.started,
            holder.heartbeat, holder.command) == ("?", -1, None, 0.0, 0.0,
                                                  "?")
    assert _warnings(caplog) == [
        f"Unreadable lock file {path}: treating it as stale"]
    assert run_dir._read_lock(os.path.join(str(tmp_path), "none")) is None


def test_exclusive_create_on_an_object_store_path():
    path = "ram://run_dir_identity_test/x.lock"
    assert run_dir._create_exclusive(path, "first") is True
    assert run_dir._create_exclusive(path, "second") is False
    from albert_tf import fileio
    assert fileio.read_text(path) == "first"


def test_exclusive_create_on_a_local_path(tmp_path):
    path = str(tmp_path / "x.lock")
    assert run_dir._create_exclusive(path, "first") is True
    assert run_dir._create_exclusive(path, "second") is False
    assert (tmp_path / "x.lock").read_text() == "first"


def test_the_heartbeat_says_why_it_stops(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="absl")
    monkeypatch.setattr(run_dir, "HEARTBEAT_S", 0.05)
    path = os.path.join(str(tmp_path), "train.lock")
    # Removed under it: "none".
    lock = run_dir.RunLock(str(tmp_path), "train")
    lock.acquire()
    os.remove(path)
    time.sleep(0.4)
    lock.release()
    assert _warnings(caplog) == [
        f"Lost the lock {path} (now: none); the heartbeat stops"]
    assert not os.path.exists(path)  # Not written back.
    caplog.clear()
    # Taken over: the new holder is named.
    lock = run_dir.RunLock(str(tmp_path), "train")
    lock.acquire()
    started = 1_700_000_000.0
    _write(path, json.dumps({"host": "elsewhere", "pid": 42,
                             "start_time": None, "started": started,
                             "heartbeat": started, "command": "other"}))
    time.sleep(0.4)
    lock.release()
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
    assert _warnings(caplog) == [
        f"Lost the lock {path} (now: pid 42 on elsewhere, started {when}: "
        "other); the heartbeat stops"]


def test_a_failed_heartbeat_write_is_logged_and_the_beat_goes_on(
        tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="absl")
    monkeypatch.setattr(run_dir, "HEARTBEAT_S", 0.05)
    attempts = []

    def failing_write(path, text):
        attempts.append(path)
        raise OSError("disk full")

    lock = run_dir.RunLock(str(tmp_path), "train")
    lock.acquire()
    monkeypatch.setattr(run_dir.fileio, "write_atomic", failing_write)
    assert lock._thread.name == "run-lock-heartbeat"
    time.sleep(0.4)
    assert lock._thread.is_alive()  # Still beating after failures.
    lock.release()
    assert len(attempts) >= 2
    warnings = _warnings(caplog)
    assert warnings[0] == "Lock heartbeat failed: disk full"
    assert set(warnings) == {"Lock heartbeat failed: disk full"}
    assert not os.path.exists(tmp_path / "train.lock")  # Still released.


def test_a_new_lock_records_its_start_and_a_cut_command(tmp_path,
                                                         monkeypatch):
    monkeypatch.setattr(run_dir.sys, "argv", ["run_squad.py", "x" * 600])
    before = time.time()
    lock = run_dir.RunLock(str(tmp_path), "train")
    lock.acquire()
    try:
        info = _read_json(tmp_path / "train.lock")
    finally:
        lock.release()
    after = time.time()
    # The command line, cut at 500 characters: "run_squad.py " is 13.
    assert info["command"] == "run_squad.py " + "x" * 487
    assert before <= info["started"] == info["heartbeat"] <= after
