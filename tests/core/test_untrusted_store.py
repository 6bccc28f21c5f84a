"""Secrets never reach the MLflow store (a real sqlite store): judge errors, rationales, params, the captured log.

The fake server plays a judge that repeats the request's headers (the key among them) in its error body, as a
careless proxy does; the assessments MLflow stores, the results, the run's params and `.proctor/mlflow.log` must
all be free of the key.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import TEST_KEY

from core.evaluation import evaluate_file
from core.tracking import _ScrubbingWriter, captured_output, log_path


def _answers(path: Path) -> Path:
    path.write_text("question,answer,llm_answer,model\n" + "".join(
        f"Q{i}?,{i},{i},openai:/gpt-4.1-mini\n" for i in range(3)), encoding="utf-8")
    return path


def test_judge_errors_echoing_the_key_are_scrubbed_in_mlflow(tmp_path: Path, openai_env, tracking: str) -> None:  # noqa: ANN001
    import mlflow
    from mlflow.tracking import MlflowClient

    openai_env.behaviour.echo_headers_status = 400
    summary = evaluate_file(_answers(tmp_path / "answers.csv"), judge="openai:/gpt-4.1-nano",
                            output=tmp_path / "judged.csv")
    assert summary.metrics["judge_errors"] == 3
    assert openai_env.log and all(info.status == 400 for info in openai_env.log)  # the judge was asked, and erred

    traces = mlflow.search_traces(locations=[summary.experiment_id], run_id=summary.run_id, return_type="list")
    stored = [str(a.to_dictionary()) for t in traces for a in t.info.assessments]
    assert any("headers were" in text for text in stored), "the echoed headers should reach the assessment"
    assert all(TEST_KEY not in text for text in stored)
    assert all(TEST_KEY not in e for e in summary.results["judge_error"])
    assert TEST_KEY not in (tmp_path / "judged.csv").read_text(encoding="utf-8-sig")
    run = MlflowClient().get_run(summary.run_id)
    assert TEST_KEY not in str(run.data.params) + str(run.data.tags)
    assert TEST_KEY not in log_path().read_text(encoding="utf-8")


def test_captured_output_scrubs_the_keys_in_force_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_API_KEY", "judge-key-0001-abcdef")
    with captured_output() as out:
        print("calling with judge-key-0001-abcdef")
        out.write("and again judge-key-0001-abcdef\n")
    text = log_path().read_text(encoding="utf-8")
    assert "judge-key-0001-abcdef" not in text and text.count("****") == 2


def test_scrubbing_writer_is_core_safety_scrub() -> None:
    sink = io.StringIO()
    writer = _ScrubbingWriter(sink, [TEST_KEY])
    writer.write(f"Authorization: Bearer {TEST_KEY} at http://u:p@h/\n")
    assert sink.getvalue() == "Authorization: Bearer **** at http://****@h/\n"
