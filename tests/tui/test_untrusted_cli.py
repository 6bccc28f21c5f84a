"""Terminal safety and secrets in the CLI, run as a real subprocess against the fake server (issue 10).

Model text with escape sequences never reaches stdout (unless `ask --raw`); a server that echoes the request's
headers in its error never gets the key printed; URLs with credentials are masked in `config` and `runs --json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY
from tests.hostile import HOSTILE, OSC_CLIPBOARD, OSC_TITLE, assert_harmless
from tests.tui.test_cli import run_proctor


def test_ask_shows_escape_sequences_harmlessly(openai_env):
    openai_env.behaviour.responder = lambda body, info: HOSTILE
    result = run_proctor("ask", "capital of France?")
    assert result.returncode == 0, result.stderr
    assert_harmless(result.stdout)
    assert "␛]0;pwned title" in result.stdout and "␛]52;c;ZWNobyBwd25lZA==" in result.stdout
    assert "Paris" in result.stdout and "[bold red]loud[/]" in result.stdout  # the rest of the text is kept


def test_ask_raw_prints_the_bytes_as_received(openai_env):
    openai_env.behaviour.responder = lambda body, info: HOSTILE
    result = run_proctor("ask", "--raw", "capital of France?")
    assert result.returncode == 0, result.stderr
    assert result.stdout == HOSTILE + "\n"
    assert OSC_TITLE in result.stdout and OSC_CLIPBOARD in result.stdout


@pytest.mark.parametrize("style", ["openai", "azure"])
def test_an_error_echoing_the_request_headers_never_prints_the_key(style, request):
    server = request.getfixturevalue(f"{style}_env")
    server.behaviour.echo_headers_status = 400
    result = run_proctor("ask", "hello")
    assert result.returncode != 0
    assert "headers were" in result.stderr  # the server did repeat the headers...
    assert TEST_KEY not in result.stderr + result.stdout  # ...but not the key
    assert "****" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_answer_error_echoing_the_key_is_scrubbed_in_the_answers_csv(openai_env, tmp_path: Path):
    openai_env.behaviour.echo_headers_status = 400
    bench = tmp_path / "bench.csv"
    bench.write_text("question,answer\nq1,a1\nq2,a2\n", encoding="utf-8")
    result = run_proctor("answer", str(bench), "--output", str(tmp_path / "out.csv"))
    saved = (tmp_path / "out.csv").read_text(encoding="utf-8-sig")
    assert "headers were" in saved
    assert TEST_KEY not in saved and TEST_KEY not in result.stdout + result.stderr


def test_config_masks_credentials_in_urls(openai_env, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://alice:pa55word-x@127.0.0.1:{openai_env.port}/v1?api-key=qkey-123456")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://bob:hunter2-y@r.openai.azure.com/?sig=sig-abcdef")
    monkeypatch.setenv("PROCTOR_MODEL", "openai:/gpt-4.1-mini")
    result = run_proctor("config")
    assert result.returncode == 0, result.stderr
    for secret in ("pa55word-x", "qkey-123456", "hunter2-y", "sig-abcdef", "alice", "bob", TEST_KEY):
        assert secret not in result.stdout
    assert f"OPENAI_BASE_URL=http://****@127.0.0.1:{openai_env.port}/v1?api-key=****" in result.stdout
    assert "AZURE_OPENAI_ENDPOINT=https://****@r.openai.azure.com/?sig=****" in result.stdout


def test_runs_json_masks_credentials_logged_by_an_older_version(tracking: str, tmp_path: Path):
    from mlflow.tracking import MlflowClient

    # The client only: mlflow.set_tracking_uri would change MLFLOW_TRACKING_URI for the rest of the process.
    client = MlflowClient(tracking_uri=tracking)
    found = client.get_experiment_by_name("proctor")
    experiment_id = found.experiment_id if found else client.create_experiment(
        "proctor", artifact_location=(tmp_path / "mlruns").as_uri())
    run = client.create_run(experiment_id, run_name=f"old{OSC_TITLE}",
                            tags={"proctor.kind": "evaluation", "proctor.model": "openai:/m"})
    for key, value in {"model_uri": "openai:/m", "judge": "none",
                       "base_url": "http://alice:pa55word-x@10.0.0.1/v1?api-key=qkey-123456"}.items():
        client.log_param(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    result = run_proctor("runs", "--json")
    assert result.returncode == 0, result.stderr
    assert "pa55word-x" not in result.stdout and "qkey-123456" not in result.stdout
    listed = [r for r in json.loads(result.stdout) if r["run_id"] == run.info.run_id]
    assert len(listed) == 1, result.stdout[:3000]
    listed = listed[0]
    assert listed["params"]["base_url"] == "http://****@10.0.0.1/v1?api-key=****"
    table = run_proctor("runs")
    assert table.returncode == 0, table.stderr
    assert_harmless(table.stdout)
    assert "old␛]0;pwned title" in table.stdout


def test_mlflow_ui_never_prints_tracking_credentials(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://user:tr4ck-pass@mlflow.example/?token=tok-123456")
    result = run_proctor("mlflow-ui")
    assert result.returncode == 0, result.stderr
    assert "tr4ck-pass" not in result.stdout and "tok-123456" not in result.stdout
    assert "https://****@mlflow.example/?token=****" in result.stdout
