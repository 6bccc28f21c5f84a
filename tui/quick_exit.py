"""Quitting the app at once, even while a thread worker is still busy (importing openai or mlflow, evaluating).

Textual runs thread workers on asyncio's default executor. When the app ends, `asyncio.run` waits for that executor
to finish every job, and the interpreter then joins its (non-daemon) threads: a warm-up still importing openai or
mlflow on a loaded machine kept the terminal blank for 20 s after Ctrl+Q (measured in tmux). `WorkerExecutor` runs
each job on a daemon thread instead, and its shutdown waits at most `GRACE_S` for jobs still running: a short job
(a verdict being saved) finishes, a long one (an import, an evaluation) is abandoned with the process. Every file
Proctor writes is written atomically (temporary file, then rename), so an abandoned write leaves the old file whole.

In the `proctor` command (`arm`), Ctrl+Q does not even wait for Textual's teardown of the screens: `leave` restores
the terminal and ends the process from the key itself (see `ProctorApp.action_quit`).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.driver import Driver

GRACE_S = 0.25


class WorkerExecutor(concurrent.futures.ThreadPoolExecutor):
    """An executor whose jobs run on daemon threads, one each, and whose shutdown never waits long.

    A ThreadPoolExecutor subclass only because asyncio accepts nothing else as its default executor; none of the
    pool machinery is used (its threads would be joined at interpreter exit).
    """

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self._running: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:  # noqa: BLE001 - handed to whoever awaits the future
                    future.set_exception(error)
                else:
                    future.set_result(result)
            finally:
                with self._lock:
                    self._running.discard(threading.current_thread())

        thread = threading.Thread(target=run, name="proctor-worker", daemon=True)
        with self._lock:
            self._running.add(thread)
        thread.start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if not wait:
            return
        deadline = time.monotonic() + GRACE_S
        with self._lock:
            running = list(self._running)
        for thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))


_executor: WorkerExecutor | None = None


def install() -> None:
    """Make the running event loop's thread workers `WorkerExecutor` jobs (call from inside the app's loop)."""
    import asyncio  # here, not at the top: every CLI command imports this module, and asyncio costs 0.1-0.6 s

    global _executor
    _executor = WorkerExecutor()
    asyncio.get_running_loop().set_default_executor(_executor)


_armed = False  # set by the console script only: `main()` called in-process (tests, a notebook) must return


def arm() -> None:
    """Allow `exit_process` to end the process: called by the `proctor` entry point, never by `main()`."""
    global _armed
    _armed = True


def armed() -> bool:
    """True in the `proctor` command's own process (see `arm`)."""
    return _armed


def finish_jobs() -> None:
    """Give the thread workers still running `GRACE_S` to finish (a verdict being saved), as the app's end would."""
    if _executor is not None:
        _executor.shutdown(wait=True)


def leave(driver: Driver | None, code: int = 0) -> None:
    """Quit now, from inside the app (armed only): restore the terminal through the app's driver, then
    `exit_process`. Textual's own exit first tears down every screen and widget, one message at a time; with a job
    running in a thread (an answer, an evaluation, an import) each of those waits for the GIL, and the terminal came
    back after 2-4 s on a loaded machine. The caller does first what that teardown did that matters (its panes give
    up their files and servers) and calls `finish_jobs`."""
    if driver is not None:
        driver.stop_application_mode()  # the terminal as it was: main screen, cursor, echo, no mouse reports
        driver.close()  # waits for the writer thread to have written all of that
    exit_process(code)


def exit_process(code: int) -> None:
    """End the process now that the app has closed: the exit handlers run, then no interpreter teardown.

    Does nothing unless `arm()` was called: in-process callers of `tui.cli.main` (a test run) would otherwise be
    ended with them, silently, with status `code`.

    Tearing down the interpreter after the app (collecting every module of textual, openai, pandas, mlflow) took
    seconds on a loaded machine, with the terminal already handed back but no prompt. Everything that must happen
    at exit is an `atexit` handler (child servers stopped, logs flushed): they run here, in order, then `os._exit`.
    """
    if not _armed:
        return
    import atexit
    import os
    import sys

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
