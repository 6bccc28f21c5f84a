"""The `proctor` command itself and `proctor ask`, run as a real subprocess against the fake server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import TEST_KEY


def run_proctor(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m tui.cli ARGS` with the test's environment (plus `env`)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, env=full_env,
                          input=stdin, timeout=timeout)


def test_version_and_help():
    assert run_proctor("--version").stdout.strip() == "proctor 0.1.0"
    result = run_proctor("--help")
    assert result.returncode == 0
    assert "ask" in result.stdout
    ask_help = run_proctor("ask", "--help")
    assert ask_help.returncode == 0 and "--temperature" in ask_help.stdout and "--system" in ask_help.stdout


def test_ask_openai_style_streams_the_answer(openai_env):
    result = run_proctor("ask", "What is MLOps?")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Answer from gpt-4.1-mini: What is MLOps?\n"
    [request] = openai_env.log
    assert (request.route, request.stream) == ("openai", True)


def test_ask_azure_style_with_options(azure_env):
    seen = {}

    def responder(body, info):
        seen.update(body)
        return "Paris"

    azure_env.behaviour.responder = responder
    result = run_proctor("ask", "Capital of France?", "--model", "azure:/gpt-4.1-mini", "--system", "One word.",
                         "--temperature", "0.3")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Paris\n"
    assert seen["messages"][0] == {"role": "system", "content": "One word."}
    assert seen["temperature"] == 0.3
    assert (azure_env.log[0].route, azure_env.log[0].model) == ("azure", "gpt-4.1-mini")


def test_ask_reads_the_question_from_stdin(openai_env):
    result = run_proctor("ask", "-", stdin="from a pipe\n")
    assert result.stdout.strip() == "Answer from gpt-4.1-mini: from a pipe"


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("ask", "q", "--model", "azure:/gpt-4.1-nano"), {}, "AZURE_OPENAI_ENDPOINT is not set"),
        (("ask", "q", "--model", "openai:/gpt-4.1-mini"), {}, "OPENAI_API_KEY is not set"),
        (("ask", "q", "--model", "gpt-4"), {}, "not a model URI"),
        (("ask", "q"), {"PROCTOR_TEMPERATURE": "hot"}, "PROCTOR_TEMPERATURE must be a number"),
        (("ask", "  "), {}, "the question is empty"),
        (("ask",), {}, "the following arguments are required"),
        (("frobnicate",), {}, "invalid choice"),
        (("--model", "nope:/x"), {}, "unknown model provider"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, env, expected):
    result = run_proctor(*args, env=env)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_refused_key_is_one_line_and_never_printed(openai_env):
    result = run_proctor("ask", "q", env={"OPENAI_API_KEY": "sk-wrong-0123456789"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "proctor: error: the server refused the key for openai:/gpt-4.1-mini (HTTP 401): check OPENAI_API_KEY"
    ]
    assert "sk-wrong" not in result.stderr + result.stdout


def test_server_failing_after_retries_exits_1(openai_env):
    openai_env.behaviour.fail_rate = 1.0
    openai_env.behaviour.fail_statuses = (500,)
    result = run_proctor("ask", "q", env={"PROCTOR_MAX_RETRIES": "2"})
    assert result.returncode == 1
    assert "did not answer: HTTP 500" in result.stderr and "Traceback" not in result.stderr
    assert openai_env.attempts[("gpt-4.1-mini", "q")] == 3


def test_config_masks_keys(openai_env):
    result = run_proctor("config")
    assert result.returncode == 0
    assert TEST_KEY not in result.stdout
    assert "OPENAI_API_KEY=****cdef" in result.stdout
    assert "# default model: openai:/gpt-4.1-mini" in result.stdout
