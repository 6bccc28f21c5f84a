"""Child processes Proctor starts and owns: free ports on 127.0.0.1, one launcher thread so that Linux kills the
children when Proctor dies, and stopping a child's whole process group.

- `free_port` / `port_free`: a port the kernel picks, and a bind test for a port we were asked for.
- `spawn_owned` starts a child in a session (process group) of its own, output to a log file. On Linux it arms
  PR_SET_PDEATHSIG, so the kernel signals the child when Proctor dies without running `atexit` (SIGKILL, a crash).
  That signal fires when the *thread* that forked the child exits, not the process: every child is therefore forked
  by one daemon thread that lives as long as Proctor, whichever thread (main, Textual or asyncio worker) asks.
- `stop_group` stops the child and everything it started: SIGTERM to the group, a grace period, then SIGKILL.
- `stop_group_detached` does the same without making the caller wait: SIGTERM at once, and when the group does not
  end within a moment, a small detached stopper process (no imports beyond `os`, `signal`, `time`) finishes the job,
  SIGKILL included, even after Proctor has exited. Quitting the app returns the terminal at once that way.

Callers keep their own table of what they started and stop it from `atexit`; this module holds no such state.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

LOOPBACK = "127.0.0.1"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


# ---------------------------------------------------------------- ports


def free_port(host: str = LOOPBACK) -> int:
    """A port free on `host` right now (the kernel's pick). Another process may take it before the child binds it:
    callers that must be sure retry on "address already in use"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_free(port: int, host: str = LOOPBACK) -> bool:
    """True when nothing listens on host:port (a bind test, so a server on 0.0.0.0 counts as taken too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As uvicorn does: connections of a server just stopped (TIME_WAIT) do not make the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


# ---------------------------------------------------------------- starting


def _pdeathsig_preexec(death_signal: int) -> Callable[[], None] | None:
    """A preexec_fn that asks Linux to send `death_signal` to the child when its parent thread dies; None elsewhere
    (or without libc: `atexit` is then the only safety net)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        # Resolved now, in the parent: loading a library between fork and exec could deadlock.
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    signum = int(death_signal)

    def preexec() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl: nobody would stop us
            os._exit(1)

    return preexec


class _Launcher:
    """Runs jobs (the forks) on one daemon thread that lives as long as the process.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits: a child forked by a short-lived worker
    thread would be killed as soon as that worker finished.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def _run(self) -> None:
        while True:
            future, job = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                future.set_exception(exc)

    def submit(self, job: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="proctor-child-launcher", daemon=True)
                self._thread.start()
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((future, job))
        return future


_launcher = _Launcher()


def spawn_owned(command: Sequence[str], *, log_file: IO[bytes], env: Mapping[str, str] | None = None,
                death_signal: int = signal.SIGKILL) -> subprocess.Popen[bytes]:
    """Start `command` as a child Proctor owns, from any thread; return its Popen.

    The child gets a session of its own (Ctrl-C and terminal signals are Proctor's to handle; the child is stopped
    by Proctor, never by the terminal, and `stop_group` reaches everything it starts), no stdin, and `log_file` for
    stdout and stderr. On Linux it receives `death_signal` when Proctor dies. The caller may close `log_file` once
    this returns: the child holds its own copy.
    """
    argv = list(command)
    child_env = dict(env) if env is not None else None

    def job() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=child_env,
            close_fds=True,
            start_new_session=True,
            preexec_fn=_pdeathsig_preexec(death_signal),
        )

    future = _launcher.submit(job)
    try:
        return future.result()
    except BaseException:
        # Either the fork failed (nothing to clean up) or the caller was interrupted (Ctrl-C) while the launcher
        # forked: then nobody will ever hold the child, so it is stopped as soon as it exists.
        if not future.cancel():
            future.add_done_callback(_stop_unclaimed)
        raise


def _stop_unclaimed(future: concurrent.futures.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        stop_group(future.result(), grace_s=0.0)


# ---------------------------------------------------------------- stopping


def signal_group(pgid: int, signum: int) -> None:
    """Send `signum` to process group `pgid`; a group already gone (or not ours) is ignored."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    """True while any process of group `pgid` exists (zombies included until reaped)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a group we cannot signal still exists
        return True
    return True


def _wait_gone(process: subprocess.Popen[bytes], pgid: int, timeout: float) -> bool:
    """Wait until the child is reaped and its group is empty; True if so within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None and not group_alive(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def stop_group(process: subprocess.Popen[bytes], grace_s: float, kill_wait_s: float = 5.0) -> None:
    """Stop a child started by `spawn_owned` and every process of its group: SIGTERM, then SIGKILL once `grace_s`
    has passed, then wait up to `kill_wait_s` for all of them to be gone (the child reaped). Idempotent."""
    pgid = process.pid  # start_new_session made the child the leader of its own group
    if process.poll() is not None and not group_alive(pgid):
        return
    signal_group(pgid, signal.SIGTERM)
    if _wait_gone(process, pgid, grace_s):
        return
    signal_group(pgid, signal.SIGKILL)
    # SIGKILL is delivered asynchronously: wait until the child and its own children are gone too.
    _wait_gone(process, pgid, kill_wait_s)


# The detached stopper: polls the group, SIGKILLs it once the grace period is over, and exits as soon as the group
# is empty. Runs with `python -S -E` (no site, no environment): it starts in a few milliseconds.
_STOPPER = """
import os, signal, sys, time
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
def alive():
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
deadline = time.monotonic() + grace
while alive() and time.monotonic() < deadline:
    time.sleep(0.05)
if alive():
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
"""


def stop_group_detached(process: subprocess.Popen[bytes], grace_s: float, settle_s: float = 0.2) -> None:
    """Stop a child's group like `stop_group`, but return within about `settle_s` seconds.

    SIGTERM goes to the group at once. If the group is gone within `settle_s` (the usual case for a quick child),
    that is all; otherwise a detached stopper process, in a session of its own so that the terminal's signals do
    not reach it, SIGKILLs the group after `grace_s` unless it ended first. The stopper outlives Proctor: the
    child is never left behind, even when Proctor exits right after this call.
    """
    pgid = process.pid
    if process.poll() is not None and not group_alive(pgid):
        return
    signal_group(pgid, signal.SIGTERM)
    if _wait_gone(process, pgid, settle_s):
        return
    try:
        subprocess.Popen([sys.executable, "-S", "-E", "-c", _STOPPER, str(pgid), f"{max(0.0, grace_s):g}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         close_fds=True, start_new_session=True)
    except OSError:
        stop_group(process, grace_s)  # no stopper could be started: wait here rather than leave the child behind
