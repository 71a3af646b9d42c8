"""One run per output_dir: locks, stale locks, config checks, leftovers."""

import json
import os
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from albert_tf import fileio
from albert_tf import run_dir
from helpers import tiny_config


def _lock_file(directory, role="train"):
    return os.path.join(directory, f"{role}.lock")


def test_second_run_of_the_same_role_stops_naming_the_first(tmp_path):
    out = str(tmp_path)
    with run_dir.open_run(out, tiny_config(), "train"):
        with pytest.raises(run_dir.RunDirBusyError,
                           match=rf"pid {os.getpid()} on .*train.lock"):
            with run_dir.open_run(out, tiny_config(), "train"):
                pass
        # An evaluator beside the trainer is allowed.
        with run_dir.open_run(out, tiny_config(), "eval"):
            pass
    assert not os.path.exists(_lock_file(out))  # Released.
    with run_dir.open_run(out, tiny_config(), "train"):
        pass


def test_a_lock_held_by_another_live_process_blocks(tmp_path):
    out = str(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from albert_tf import run_dir\n"
         f"lock = run_dir.RunLock({out!r}, 'train'); lock.acquire()\n"
         "print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(run_dir.RunDirBusyError,
                           match=f"pid {holder.pid}"):
            run_dir.RunLock(out, "train").acquire()
    finally:
        holder.kill()
        holder.wait()
    # Killed without releasing: the lock is stale and is taken over.
    assert os.path.exists(_lock_file(out))
    lock = run_dir.RunLock(out, "train")
    lock.acquire()
    assert json.loads(open(_lock_file(out)).read())["pid"] == os.getpid()
    lock.release()


def test_a_lock_from_another_host_is_stale_only_without_heartbeat(tmp_path):
    out = str(tmp_path)
    info = {"host": "some-other-host", "pid": 1, "start_time": None,
            "started": time.time(), "heartbeat": time.time(),
            "command": "run_pretraining.py"}
    with open(_lock_file(out), "w") as f:
        json.dump(info, f)
    with pytest.raises(run_dir.RunDirBusyError, match="some-other-host"):
        run_dir.RunLock(out, "train").acquire()
    info["heartbeat"] = time.time() - run_dir.STALE_AFTER_S - 1
    with open(_lock_file(out), "w") as f:
        json.dump(info, f)
    lock = run_dir.RunLock(out, "train")
    lock.acquire()
    lock.release()


def test_a_different_config_is_refused_naming_the_keys(tmp_path):
    out = str(tmp_path)
    with run_dir.open_run(out, tiny_config(), "train") as run:
        run.write_files("--foo=1\n")
    before = (tmp_path / "albert_config.json").read_text()
    with pytest.raises(run_dir.ConfigMismatchError,
                       match=r"hidden_size: 8 -> 12.*num_attention_heads"):
        with run_dir.open_run(out, tiny_config(hidden_size=12,
                                               num_attention_heads=3),
                              "train"):
            pass
    # Nothing of the existing run was touched, and the lock is released.
    assert (tmp_path / "albert_config.json").read_text() == before
    assert (tmp_path / "flags.txt").read_text() == "--foo=1\n"
    assert not os.path.exists(_lock_file(out))


def test_files_are_written_only_when_asked(tmp_path):
    out = str(tmp_path / "run")
    with run_dir.open_run(out, tiny_config(), "train") as run:
        assert not os.path.exists(os.path.join(out, "albert_config.json"))
        assert not os.path.exists(os.path.join(out, "flags.txt"))
        run.write_files("--x=2\n")
    assert (tmp_path / "run" / "flags.txt").read_text() == "--x=2\n"


def test_leftovers_of_killed_writers_are_removed_on_resume(tmp_path):
    out = tmp_path
    (out / "ckpt-7_temp").mkdir()
    (out / "ckpt-7_temp" / "part-00000").write_text("x")
    (out / "eval_results.txt.tmp999999999").write_text("x")
    (out / ".best.tmp").mkdir()
    live = out / f"flags.txt.tmp{os.getpid()}"  # A live writer's file.
    live.write_text("x")
    (out / "ckpt-5.index").write_text("kept")
    with run_dir.open_run(str(out), tiny_config(), "train"):
        pass
    assert sorted(p.name for p in out.iterdir()) == [
        "ckpt-5.index", live.name]


def test_cloud_style_paths():
    out = "ram://run_dir_test/out"
    with run_dir.open_run(out, tiny_config(), "train") as run:
        with pytest.raises(run_dir.RunDirBusyError):
            run_dir.RunLock(out, "train").acquire()
        run.write_files("--y=3\n")
    assert fileio.read_text(out + "/flags.txt") == "--y=3\n"
    assert not tf.io.gfile.exists(out + "/train.lock")


def test_another_task_cannot_take_over_the_directory(tmp_path):
    out = str(tmp_path)
    with run_dir.open_run(out, tiny_config(), "train",
                          task="glue/sst-2") as run:
        run.write_files("--x=1\n")
    with pytest.raises(run_dir.ConfigMismatchError,
                       match="holds a 'glue/sst-2' run.*not 'squad_v1'"):
        with run_dir.open_run(out, tiny_config(), "train", task="squad_v1"):
            pass
    with run_dir.open_run(out, tiny_config(), "train", task="glue/sst-2"):
        pass
