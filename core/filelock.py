"""One writer at a time: an OS-level lock beside every file Proctor writes into (answers files, graded files).

Every process that writes an answers file (`proctor answer`, `proctor evaluate` on a benchmark, each Grade pane,
`proctor grade`) holds a `FileLock` on it for as long as it may write. The lock is a small file beside the target,
`.NAME.lock`, locked with `fcntl.flock`: the kernel releases it when the process dies, kill -9 included, so a lock
file left behind never blocks anyone; only a live holder does. The holder writes its pid into the lock file, so a
second writer can be told who holds it.

    lock = FileLock("answers.csv")
    lock.acquire()          # FileLockedError (exit 2, names the holder's pid) when another writer holds it
    ...                     # read, change, write: no other Proctor writer can come in between
    lock.release()          # or: with FileLock("answers.csv"): ...

`flock` locks belong to an open file, not to a process: two `FileLock`s on one path in the same process (two Grade
panes) exclude each other too. A symlink and its target share one lock (the lock sits beside the target).
On a system without `fcntl` (Windows) no lock is taken.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType

from core.errors import InputError, ProctorError, WriteError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

PROBE_GRACE_S = 0.25


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file of `path`: `.NAME.lock` beside it (beside the target when `path` is a symlink)."""
    target = Path(os.path.realpath(path))
    return target.with_name(f".{target.name}.lock")


class FileLockedError(ProctorError):
    """Another writer holds the lock on the file. `pid` is the holder's process id (None when it could not be read)."""

    exit_code = 2

    def __init__(self, path: str | os.PathLike[str], pid: int | None) -> None:
        self.path = Path(path)
        self.pid = pid
        if pid == os.getpid():
            who = "another part of this Proctor (another Grade pane, or an answer run)"
        elif pid is not None:
            who = f"another Proctor process (pid {pid})"
        else:
            who = "another Proctor process"
        self.who = who
        super().__init__(f"{self.path} is being written by {who}: wait for it to finish, or close it, and try again")


def _read_pid(fd: int) -> int | None:
    # The holder writes its pid just after locking: give it a moment rather than report "unknown".
    for _ in range(20):
        try:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        except OSError:
            return None
        if text.isdigit():
            return int(text)
        time.sleep(0.005)
    return None


class FileLock:
    """An exclusive lock on `path`, held by this object until `release()` (or the process's death)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_file = lock_path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: float = PROBE_GRACE_S) -> None:
        """Take the lock, waiting up to `wait` seconds for it; else raise `FileLockedError` naming the holder.

        Does nothing if already held. The short default wait covers another process's `holder()` probe, which
        holds the lock for a moment.
        """
        if self._fd is not None or fcntl is None:
            return
        deadline = time.monotonic() + wait
        while True:
            try:
                fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:  # a read-only folder: the file itself could not be written either
                raise WriteError(self.lock_file, error) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() < deadline:
                    os.close(fd)
                    time.sleep(0.01)
                    continue
                pid = _read_pid(fd)
                os.close(fd)
                raise FileLockedError(self.path, pid) from None
            # A holder releasing meanwhile removes the lock file: then we locked a file nobody else will see.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.lock_file))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError:
            pass  # a full disk: the lock holds all the same, only the pid shown to others is missing
        self._fd = fd

    def try_acquire(self, wait: float = PROBE_GRACE_S) -> bool:
        """Take the lock if it is free: True when this object now holds it."""
        try:
            self.acquire(wait)
        except FileLockedError:
            return False
        return True

    def release(self) -> None:
        """Give the lock up and remove the lock file. Does nothing if not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        # Removed while still locked: a process that opened it meanwhile sees it is gone (samestat) and retries.
        try:
            os.unlink(self.lock_file)
        except OSError:
            pass
        os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


def holder(path: str | os.PathLike[str]) -> int | None:
    """The pid holding the lock on `path`, or None when nobody does (0 when held but the pid is unreadable).

    It probes by taking the lock for a moment (flock has no "who holds it" query): writers wait `PROBE_GRACE_S`
    before giving up, so a probe never turns one away.
    """
    lock = FileLock(path)
    try:
        if not lock.lock_file.exists():
            return None
        lock.acquire(wait=0)
    except FileLockedError as error:
        return error.pid if error.pid is not None else 0
    except InputError:
        return None
    lock.release()
    return None
