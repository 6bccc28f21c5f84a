"""A failing model endpoint as the CLI user meets it: named faults, exit statuses, timeouts that hold, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import TEST_KEY
from tests.fake_llm_server import FakeLLMServer, closed_port
from tui.cli import main


def proctor(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`python -m tui.cli ARGS` as a child process, with the test's environment (plus `env`)."""
    return subprocess.Popen([sys.executable, "-m", "tui.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=90)  # a guard against a hang, not a speed test
    return process.returncode, out, err


def bench(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / "bench.csv"
    path.write_text("question,answer\n" + "".join(f"Q{i}?,A{i}\n" for i in range(rows)), encoding="utf-8")
    return path


def wait_for_requests(server: FakeLLMServer, count: int = 1) -> None:
    deadline = time.monotonic() + 60
    while len(server.log) < count:
        assert time.monotonic() < deadline, "the command never sent a request"
        time.sleep(0.05)


def test_a_dead_endpoint_stops_a_48_row_answer_run_with_exit_2(tmp_path, monkeypatch, capsys):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    assert main(["answer", str(bench(tmp_path, 48)), "--model", "openai:/m"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (f"proctor: error: cannot reach {url} for openai:/m: connection refused (is the "
                                    "server running, and on that port?): check OPENAI_BASE_URL")


def test_a_port_that_is_not_a_number_is_one_line_and_exit_2(monkeypatch):
    code, out, err = finish(proctor("ask", "q", env={"OPENAI_API_KEY": "k",
                                                     "OPENAI_BASE_URL": "http://127.0.0.1:abc"}))
    assert code == 2
    assert err.splitlines() == ["proctor: error: OPENAI_BASE_URL is not a usable URL (Port could not be cast to "
                                "integer value as 'abc'): write e.g. https://host:443/"]
    code, _, err = finish(proctor("ask", "q", env={"AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_DEPLOYMENT": "d",
                                                   "AZURE_OPENAI_ENDPOINT": "https://x.example:abc/"}))
    assert code == 2 and len(err.splitlines()) == 1 and "AZURE_OPENAI_ENDPOINT is not a usable URL" in err


def test_ask_on_a_refused_port_names_the_url_and_exits_2():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    code, out, err = finish(proctor("ask", "q", env={"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": url}))
    assert code == 2 and out == ""
    assert err.splitlines() == [f"proctor: error: cannot reach {url} for openai:/gpt-4.1-nano: connection refused "
                                "(is the server running, and on that port?): check OPENAI_BASE_URL"]


def test_ask_given_only_garbled_200s_exits_1_not_0_with_an_empty_answer(openai_env):
    openai_env.behaviour.non_json_rate = 1.0
    code, out, err = finish(proctor("ask", "q", env={"PROCTOR_MAX_RETRIES": "1"}))
    assert code == 1 and out == ""
    assert err.splitlines() == ["proctor: error: openai:/gpt-4.1-mini did not answer: the reply was not a chat "
                                "completion stream"]
    assert openai_env.attempts[("gpt-4.1-mini", "q")] == 2


def test_ask_against_a_trickling_server_gives_up_after_the_timeout_and_retries(openai_env):
    openai_env.behaviour.trickle_s = 0.5  # the case: a byte every 0.5 s kept `ask` alive past 60 s
    code, out, err = finish(proctor("ask", "q", env={"PROCTOR_TIMEOUT": "2", "PROCTOR_MAX_RETRIES": "1"}))
    assert code == 1
    assert err.splitlines() == ["proctor: error: openai:/gpt-4.1-mini did not answer: timeout: no answer within 2 s "
                                "(PROCTOR_TIMEOUT)"]
    assert openai_env.attempts[("gpt-4.1-mini", "q")] == 2


def test_sighup_stops_ask_with_129(openai_env):
    openai_env.behaviour.trickle_s = 0.2
    process = proctor("ask", "q")
    wait_for_requests(openai_env)
    process.send_signal(signal.SIGHUP)
    code, _, err = finish(process)
    assert code == 129 and "Traceback" not in err


def test_sighup_stops_answer_with_129_and_keeps_what_was_answered(openai_env, tmp_path):
    openai_env.behaviour.latency = 0.3
    path = bench(tmp_path, 40)
    process = proctor("answer", str(path), "--concurrency", "2", env={"OPENAI_API_KEY": TEST_KEY})
    wait_for_requests(openai_env, 4)
    process.send_signal(signal.SIGHUP)
    code, _, err = finish(process)
    assert code == 129, err
    assert "interrupted: kept" in err and "Traceback" not in err
    assert (tmp_path / "bench.answers.openai-gpt-4.1-mini.csv").exists()


def test_ask_given_an_empty_answer_exits_1(openai_env):
    openai_env.behaviour.responder = lambda body, info: ""
    code, out, err = finish(proctor("ask", "q"))
    assert code == 1
    assert err.splitlines() == ["proctor: error: openai:/gpt-4.1-mini gave an empty answer (finish reason: stop)"]
