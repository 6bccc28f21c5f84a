"""End to end: the course's comparison (two model URIs, one judge) run by core.evaluation against the fake server,
then read back by `proctor runs` and `proctor compare` from the same sqlite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.evaluation_helpers import QUESTIONS, responder, write_benchmark
from tui.cli import main


@pytest.mark.slow
def test_course_comparison_shows_in_runs_and_compare(azure_env, clean_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from core.evaluation import evaluate_file

    azure_env.behaviour.responder = responder  # the fake server is both the models and the judge
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{clean_env / 'mlflow.db'}")
    bench = write_benchmark(clean_env / "course.csv")
    judge = "azure:/gpt-4.1-nano"
    nano = evaluate_file(bench, model="azure:/gpt-4.1-nano", judge=judge)
    mini = evaluate_file(bench, model="azure:/gpt-4.1-mini", judge=judge)

    assert main(["runs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in listed] == [mini.run_id, nano.run_id]
    assert [r["judge"] for r in listed] == [judge, judge]
    assert [r["rows"] for r in listed] == [len(QUESTIONS)] * 2

    assert main(["compare", "gpt-4.1-nano", "gpt-4.1-mini"]) == 0
    out = capsys.readouterr().out
    assert "warning" not in out
    # The fake nano answers only the even-numbered questions right; mini answers all of them right.
    odd = [q for i, (q, _) in enumerate(QUESTIONS, start=1) if i % 2]
    assert f"B right, A wrong ({len(odd)})" in out and "A right, B wrong (0)" in out
    assert all(q in out for q in odd)
    assert "The claim is not supported by the output." in out  # the judge's rationale for A

    assert main(["compare", "gpt-4.1-mini", "gpt-4.1-nano", "--fail-if-worse", "accuracy:0.1"]) == 1
    assert "regression: accuracy got worse by 0.5: 1 -> 0.5" in capsys.readouterr().out
