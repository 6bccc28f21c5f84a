"""core.filelock: one writer at a time, the holder's pid named, the lock gone with its process (kill -9 too)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ProctorError
from core.filelock import FileLock, FileLockedError, holder, lock_path

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import sys, time
from core.filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


def _hold_in_another_process(path: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True,
                               cwd=ROOT)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_lock_file_beside_the_file_holds_the_pid_and_goes_on_release(tmp_path: Path) -> None:
    target = tmp_path / "answers.csv"
    lock = FileLock(target)
    assert lock.lock_file == tmp_path / ".answers.csv.lock"
    with lock:
        assert lock.held
        assert lock.lock_file.read_text().strip() == str(os.getpid())
        assert holder(target) == os.getpid()
    assert not lock.held and not lock.lock_file.exists()
    assert holder(target) is None


def test_a_second_lock_in_the_same_process_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "answers.csv"
    with FileLock(target):
        second = FileLock(target)
        with pytest.raises(FileLockedError) as caught:
            second.acquire(wait=0)
        assert caught.value.pid == os.getpid() and caught.value.exit_code == 2
        assert not second.try_acquire(wait=0)
    assert second.try_acquire()
    second.release()


def test_another_process_is_named_by_pid_and_its_death_frees_the_lock(tmp_path: Path) -> None:
    target = tmp_path / "answers.csv"
    process = _hold_in_another_process(target)
    try:
        assert holder(target) == process.pid
        with pytest.raises(FileLockedError, match=f"pid {process.pid}") as caught:
            FileLock(target).acquire()
        assert isinstance(caught.value, ProctorError) and "\n" not in str(caught.value)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    # kill -9 leaves the lock file behind, with the dead pid in it: it blocks nobody.
    assert lock_path(target).exists()
    assert holder(target) is None
    with FileLock(target) as lock:
        assert lock.lock_file.read_text().strip() == str(os.getpid())


def test_a_symlink_and_its_target_share_one_lock(tmp_path: Path) -> None:
    target = tmp_path / "data" / "answers.csv"
    target.parent.mkdir()
    target.write_text("x")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert lock_path(link) == lock_path(target) == target.parent / ".answers.csv.lock"
    with FileLock(target), pytest.raises(FileLockedError):
        FileLock(link).acquire(wait=0)


def test_a_lock_released_while_another_waits_is_taken_not_lost(tmp_path: Path) -> None:
    """Release removes the lock file; a waiter that opened the old one must lock the file on disk, not the ghost."""
    target = tmp_path / "answers.csv"
    first = FileLock(target)
    first.acquire()
    waiter = FileLock(target)
    assert not waiter.try_acquire(wait=0)
    first.release()
    assert waiter.try_acquire(wait=0)
    third = FileLock(target)
    assert not third.try_acquire(wait=0), "the waiter holds the lock on the file every newcomer opens"
    waiter.release()
