"""Lock ownership in albert_tf.run_dir: a reused pid, and a lock that
another run has taken over."""

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from albert_tf import run_dir


def _lock_path(directory, role="train"):
    return os.path.join(directory, f"{role}.lock")


def _write_lock(directory, **fields):
    info = {"host": socket.gethostname(), "pid": os.getpid(),
            "start_time": run_dir._process_start_time(os.getpid()),
            "started": time.time(), "heartbeat": time.time(),
            "command": "other_run.py"}
    info.update(fields)
    with open(_lock_path(directory), "w") as f:
        json.dump(info, f)
    return info


def _read(directory):
    with open(_lock_path(directory)) as f:
        return json.load(f)


def test_own_start_time_is_read_from_proc():
    # Field 22 of /proc/<pid>/stat: the same number twice, a different one
    # for another process (the parent started earlier).
    mine = run_dir._process_start_time(os.getpid())
    assert mine is not None and mine.isdigit()
    assert run_dir._process_start_time(os.getpid()) == mine
    child = subprocess.Popen([sys.executable, "-c",
                              "import time; time.sleep(30)"])
    try:
        time.sleep(0.05)
        theirs = run_dir._process_start_time(child.pid)
        assert theirs is not None and int(theirs) >= int(mine)
        with open(f"/proc/{child.pid}/stat") as f:
            assert f.read().split()[21] == theirs
    finally:
        child.kill()
        child.wait()
    assert run_dir._process_start_time(child.pid) is None  # Gone.


def test_a_live_pid_with_another_start_time_is_a_reused_pid(tmp_path):
    out = str(tmp_path)
    real = run_dir._process_start_time(os.getpid())
    # Same host, a live pid, its real start time: a live run, busy.
    _write_lock(out, pid=os.getppid(),
                start_time=run_dir._process_start_time(os.getppid()))
    with pytest.raises(run_dir.RunDirBusyError, match=f"pid {os.getppid()}"):
        run_dir.RunLock(out, "train").acquire()
    # Without a start time (not recorded) a live pid still counts as live.
    _write_lock(out, pid=os.getppid(), start_time=None)
    with pytest.raises(run_dir.RunDirBusyError):
        run_dir.RunLock(out, "train").acquire()
    # The pid is alive but started at another time: the run that wrote
    # the lock is gone and its pid was reused. Stale: taken over.
    _write_lock(out, pid=os.getppid(), start_time=str(int(real) + 12345))
    lock = run_dir.RunLock(out, "train")
    lock.acquire()
    try:
        assert _read(out)["pid"] == os.getpid()
        assert _read(out)["start_time"] == real
    finally:
        lock.release()
    assert not os.path.exists(_lock_path(out))


def test_a_dead_pid_is_stale_and_pid_checks_are_exact():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not run_dir._pid_alive(child.pid, None)
    start = run_dir._process_start_time(os.getpid())
    assert run_dir._pid_alive(os.getpid(), start)
    assert run_dir._pid_alive(os.getpid(), None)
    assert not run_dir._pid_alive(os.getpid(), str(int(start) + 1))


def test_release_leaves_a_lock_another_run_has_taken_over(tmp_path):
    out = str(tmp_path)
    lock = run_dir.RunLock(out, "train")
    lock.acquire()
    # Meanwhile our lock was judged stale and another run took it over.
    other = _write_lock(out, pid=os.getppid(), command="the other run")
    lock.release()
    assert _read(out) == other  # Still the other run's lock.
    # Same pid on another host is another run too.
    lock = run_dir.RunLock(str(tmp_path / "b"), "train")
    os.makedirs(tmp_path / "b")
    lock.acquire()
    other = _write_lock(str(tmp_path / "b"), host="another-host")
    lock.release()
    assert _read(str(tmp_path / "b")) == other


def test_release_removes_only_its_own_lock(tmp_path):
    out = str(tmp_path)
    lock = run_dir.RunLock(out, "train")
    lock.acquire()
    assert _read(out)["pid"] == os.getpid()
    lock.release()
    assert not os.path.exists(_lock_path(out))
    # Releasing twice, or a lock never acquired, touches nothing.
    other = _write_lock(out, pid=os.getppid())
    lock.release()
    run_dir.RunLock(out, "train").release()
    assert _read(out) == other


def test_heartbeat_refreshes_only_its_own_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(run_dir, "HEARTBEAT_S", 0.05)
    out = str(tmp_path)
    lock = run_dir.RunLock(out, "train")
    lock.acquire()
    try:
        first = _read(out)["heartbeat"]
        time.sleep(0.3)
        assert _read(out)["heartbeat"] > first  # Refreshed.
    finally:
        lock.release()


def test_heartbeat_does_not_take_back_a_lock_taken_over(tmp_path,
                                                        monkeypatch):
    monkeypatch.setattr(run_dir, "HEARTBEAT_S", 0.05)
    out = str(tmp_path)
    lock = run_dir.RunLock(out, "train")
    lock.acquire()
    try:
        other = _write_lock(out, pid=os.getppid(), command="the other run")
        time.sleep(0.3)
        assert _read(out) == other
    finally:
        lock.release()


def test_lock_file_names_the_holder(tmp_path):
    out = str(tmp_path)
    lock = run_dir.RunLock(out, "eval")
    lock.acquire()
    try:
        with open(_lock_path(out, "eval")) as f:
            info = json.load(f)
        assert set(info) == {f.name for f in dataclasses.fields(
            run_dir._LockInfo)}
        assert (info["host"], info["pid"]) == (socket.gethostname(),
                                               os.getpid())
        assert info["start_time"] == run_dir._process_start_time(
            os.getpid())
    finally:
        lock.release()
    assert not os.path.exists(_lock_path(out, "eval"))


def test_an_unreadable_lock_is_stale(tmp_path, caplog):
    out = str(tmp_path)
    with open(_lock_path(out), "w") as f:
        f.write('{"host": "half-writ')
    holder = run_dir._read_lock(_lock_path(out))
    assert (holder.host, holder.pid, holder.command) == ("?", -1, "?")
    assert holder.is_stale()
    lock = run_dir.RunLock(out, "train")
    lock.acquire()  # Taken over, not blocked forever.
    try:
        assert _read(out)["pid"] == os.getpid()
    finally:
        lock.release()


def test_start_time_of_a_process_whose_name_has_a_parenthesis(tmp_path):
    # /proc/<pid>/stat is "pid (comm) state ...": the command name may
    # itself contain ") ", so the fields start after the last ")".
    exe = tmp_path / "a) b c"
    os.symlink(sys.executable, exe)
    child = subprocess.Popen([str(exe), "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.2)
        with open(f"/proc/{child.pid}/stat") as f:
            stat = f.read()
        assert "(a) b c)" in stat
        expected = stat[stat.rindex(")") + 2:].split()[19]
        assert run_dir._process_start_time(child.pid) == expected
    finally:
        child.kill()
        child.wait()
