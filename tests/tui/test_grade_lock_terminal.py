"""One writer at a time, as a person meets it: real processes, and the app in a real terminal (tmux).

- `proctor answer` resuming a file while the app grades it: the app opens it read-only under a banner naming the
  answering process, offers to take over once that process is done, and then saves verdicts.
- `proctor grade FILE` while another process writes FILE: exit 2, one line naming the holder's pid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core.csvio import read_table
from tests.conftest import TEST_KEY
from tests.fake_llm_server import Behaviour, FakeLLMServer

ROOT = Path(__file__).resolve().parents[2]


def _env(server: FakeLLMServer, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "OPENAI_", "AZURE_", "MLFLOW_"))}
    env.update(OPENAI_API_KEY=TEST_KEY, OPENAI_BASE_URL=server.url, OPENAI_MODEL="gpt-4.1-mini",
               PROCTOR_BACKOFF_BASE="0.01", PROCTOR_STATE_DIR=str(state), MLFLOW_DISABLE_TELEMETRY="true",
               MLFLOW_MODEL_CATALOG_URI="", PYTHONPATH=str(ROOT))
    return env


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _answer(bench: Path, out: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tui.cli", "answer", str(bench), "-o", str(out), "-q"],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class _Gate:
    """A responder that holds every answer to `question` until opened: keeps `proctor answer` running."""

    def __init__(self, question: str) -> None:
        self.question = question
        self.open = threading.Event()

    def __call__(self, body: dict, info) -> str:  # noqa: ANN001 - the fake server's RequestInfo
        if info.question == self.question:
            self.open.wait(120)
        return f"Answer to {info.question}"


def test_grade_while_another_process_writes_the_file_exits_2_naming_its_pid(tmp_path: Path) -> None:
    bench = tmp_path / "bench.csv"
    bench.write_text("question,answer\nQ0?,a\nQ1?,b\n", encoding="utf-8")
    out = tmp_path / "answers.csv"
    gate = _Gate("Q1?")
    with FakeLLMServer(Behaviour(responder=gate), api_key=TEST_KEY) as server:
        env = _env(server, tmp_path / "state")
        answering = _answer(bench, out, env)
        try:
            _wait_for(lambda: any(q == "Q1?" for _, q in server.attempts), "the answer run to ask Q1?")
            graded = subprocess.run([sys.executable, "-m", "tui.cli", "grade", str(out)], env=env, cwd=ROOT,
                                    capture_output=True, text=True, timeout=60)
            assert graded.returncode == 2
            assert graded.stderr.count("\n") == 1 and graded.stderr.startswith("proctor: error: ")
            assert f"pid {answering.pid}" in graded.stderr and "Traceback" not in graded.stderr
            # The statistics only read: they work beside the writer.
            stats = subprocess.run([sys.executable, "-m", "tui.cli", "grade", str(out), "--stats"], env=env,
                                   cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert stats.returncode == 0, stats.stderr
        finally:
            gate.open.set()
            _, stderr = answering.communicate(timeout=60)
    assert answering.returncode == 0, stderr


def _until(action: Callable[[], None], condition: Callable[[], bool], what: str, tries: int = 10,
           wait: float = 4.0) -> None:
    """Press keys until the screen shows what they lead to. On a loaded machine a terminal may deliver an escape
    sequence (F3, Down) in pieces, which reads as Escape and letters: pressing again is what a person would do."""
    for _ in range(tries):
        action()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_app_in_a_terminal_shows_read_only_then_takes_over(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    bench = tmp_path / "data" / "bench.csv"
    bench.write_text("question,answer\nQ0?,a\nQ1?,b\nQ2?,c\n", encoding="utf-8")
    out = tmp_path / "answers.csv"
    gate = _Gate("Q3?")
    socket = f"proctor-test-{os.getpid()}"
    tmux = ["tmux", "-L", socket]

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", "grade"], capture_output=True, text=True).stdout

    def keys(*names: str) -> Callable[[], None]:
        return lambda: subprocess.run([*tmux, "send-keys", "-t", "grade", *names], check=True)

    with FakeLLMServer(Behaviour(responder=gate), api_key=TEST_KEY) as server:
        env = _env(server, tmp_path / "state")
        first = _answer(bench, out, env)
        assert first.wait(timeout=60) == 0, first.stderr.read()
        # The benchmark grows by one question: `proctor answer` resumes the file, and waits on Q3? meanwhile.
        bench.write_text("question,answer\nQ0?,a\nQ1?,b\nQ2?,c\nQ3?,d\n", encoding="utf-8")
        answering = _answer(bench, out, env)
        try:
            _wait_for(lambda: any(q == "Q3?" for _, q in server.attempts), "the answer run to ask Q3?")
            subprocess.run([*tmux, "new-session", "-d", "-s", "grade", "-x", "100", "-y", "30", "-c", str(tmp_path),
                            f"{sys.executable} -m tui.cli"], env=env, check=True)
            _wait_for(lambda: "Chat" in screen(), "the app's first frame")
            _until(keys("F3"), lambda: "Enter opens" in screen(), "the Grade pane's file picker")

            def open_answers() -> None:  # clear the path field, type the file's name, Enter
                keys("C-u")()
                keys("-l", "answers.csv")()
                keys("Enter")()

            _until(open_answers, lambda: "READ-ONLY" in screen(), "the read-only banner")
            assert f"pid {answering.pid}" in screen()
            keys("y")()
            _wait_for(lambda: "nothing was saved" in screen(), "the pane to say the verdict was not saved")
            assert "human_verdict" not in out.read_text(encoding="utf-8-sig")

            gate.open.set()  # the answer run finishes and lets go of the file
            _, stderr = answering.communicate(timeout=60)
            assert answering.returncode == 0, stderr
            _wait_for(lambda: "let go" in screen(), "the offer to take over")
            _until(keys("w"), lambda: "READ-ONLY" not in screen(), "the banner to go")
            keys("y")()
            _wait_for(lambda: "human_verdict" in out.read_text(encoding="utf-8-sig")
                      and read_table(out)["human_verdict"].tolist()[0] == "correct", "the verdict on disk")
            frame = read_table(out)
            assert frame["question"].tolist() == ["Q0?", "Q1?", "Q2?", "Q3?"]
            assert (frame["llm_answer"] != "").all(), "the answer run's work is all there too"
        finally:
            gate.open.set()
            if answering.poll() is None:
                answering.kill()
                answering.wait()
            subprocess.run([*tmux, "kill-server"], capture_output=True)
