"""tui.quick_exit: the app's process ends when the app does, whatever its thread workers are still doing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tui import quick_exit
from tui.quick_exit import WorkerExecutor

ROOT = Path(__file__).resolve().parents[2]


def test_jobs_return_their_result_or_their_exception() -> None:
    executor = WorkerExecutor()
    assert executor.submit(lambda a, b: a + b, 2, b=3).result(timeout=60) == 5
    with pytest.raises(ZeroDivisionError):
        executor.submit(lambda: 1 / 0).result(timeout=60)


def test_shutdown_does_not_wait_for_a_job_that_never_ends() -> None:
    executor = WorkerExecutor()
    release = threading.Event()
    started = threading.Event()

    def stuck() -> str:
        started.set()
        release.wait()
        return "released"

    future = executor.submit(stuck)
    assert started.wait(60)
    executor.shutdown(wait=True)  # would block for ever if it joined the job
    assert not future.done()
    release.set()
    assert future.result(timeout=60) == "released"


def test_an_app_whose_worker_is_stuck_still_exits_and_runs_its_exit_handlers(tmp_path: Path) -> None:
    # Before tui.quick_exit, asyncio.run waited for every thread worker: this process would never end.
    marker = tmp_path / "atexit-ran"
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(f"""
        import atexit, sys, threading
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from textual import work
        from textual.app import App
        from tui import quick_exit

        atexit.register(lambda: Path({str(marker)!r}).write_text("yes"))
        never = threading.Event()

        class StuckApp(App):
            def on_load(self):
                quick_exit.install()

            def on_mount(self):
                self.stuck()
                self.set_timer(0.2, self.exit)

            @work(thread=True)
            def stuck(self):
                never.wait()  # an import or an evaluation that is not done when the user quits

        StuckApp().run(headless=True)
        quick_exit.arm()
        quick_exit.exit_process(0)
    """))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "yes"


def test_exit_process_returns_unless_the_console_script_armed_it(monkeypatch) -> None:  # noqa: ANN001
    # main() called in-process (this test run, a notebook) must never be ended by the app's quick exit.
    monkeypatch.setattr(quick_exit, "_armed", False)
    quick_exit.exit_process(0)  # returns: were it to end the process, pytest would stop here with status 0
    assert quick_exit._armed is False


def test_ctrl_q_in_the_proctor_command_releases_the_open_file_and_exits_at_once(tmp_path: Path,
                                                                                 openai_env) -> None:
    # The console script's quick quit: no Textual teardown, so what the panes' unmount did must still happen.
    from core.filelock import lock_path
    from tests.tui.test_grade_pane import answers_csv

    path = answers_csv(tmp_path / "a.csv")
    marker = tmp_path / "atexit-ran"
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(f"""
        import atexit, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from core.filelock import lock_path
        from tui import quick_exit
        from tui.app import ProctorApp

        atexit.register(lambda: Path({str(marker)!r}).write_text("yes"))
        quick_exit.arm()  # as the `proctor` entry point does

        async def pilot(pilot):
            app = pilot.app
            while app.mounted_pane("grade") is None or app.mounted_pane("grade").session is None:
                await pilot.pause(0.05)
            assert lock_path({str(path)!r}).exists(), "the pane holds the file"
            await pilot.press("ctrl+q")

        ProctorApp(pane="grade", grade_path={str(path)!r}, warm_up=False).run(headless=True, auto_pilot=pilot)
        print("Textual's exit ran: the quick quit did not happen")
        sys.exit(3)
    """))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert marker.read_text() == "yes", "the exit handlers ran (child servers are stopped there)"
    assert not lock_path(path).exists(), "the Grade pane gave the file up"
