"""The judge beside the grader, in the app: the Grade pane shows the judge's verdict and rationale (not in blind
mode), and the course's loop runs without the CLI: evaluate an answers file in the Evaluate pane, grade it in the
Grade pane with the judge beside you, and find the human verdict on the run's trace in MLflow.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest
from evaluation_helpers import responder
from textual.widgets import Input, Static

from core.csvio import read_table, write_csv_atomic
from tests.tui.pilot import wait_for
from tui.app import ProctorApp
from tui.panes.evaluate import EvaluatePane
from tui.panes.grade import GradePane


def judged_csv(path: Path) -> Path:
    write_csv_atomic(pd.DataFrame({
        "question": ["Capital of France?", "Capital of Italy?"],
        "answer": ["Paris", "Rome"],
        "llm_answer": ["It is Paris.", "Milan."],
        "model": ["openai:/gpt-4.1-mini"] * 2,
        "judge_verdict": ["correct", "incorrect"],
        "judge_rationale": ["Paris is named \x1b[31mexactly[0m.", "Milan is not Rome."],
        "judge_error": ["", ""],
        "judge": ["openai:/gpt-4.1-nano"] * 2,
    }, dtype=str), path)
    return path


def _text(widget: Static) -> str:
    return str(widget.render())


def test_grade_pane_shows_the_judge_and_blind_mode_hides_it(tmp_path: Path) -> None:
    path = judged_csv(tmp_path / "judged.csv")

    async def scenario() -> None:
        app = ProctorApp(pane="grade", grade_path=str(path), warm_up=False)
        async with app.run_test(size=(100, 30)) as pilot:
            pane = app.query_one(GradePane)
            await wait_for(pilot, lambda: pane.session is not None, timeout=60)
            judge = pane.query_one("#grade-judge", Static)
            assert judge.display
            shown = _text(judge)
            assert "correct" in shown and "Paris is named" in shown and "openai:/gpt-4.1-nano" in shown
            assert "\x1b" not in shown  # untrusted text: no terminal control characters
            await pilot.press("n")  # the human disagrees with the judge on row 1
            await wait_for(pilot, lambda: not pane.saving and pane.current == 1)
            assert read_table(path)["human_verdict"].tolist() == ["incorrect", ""]
            assert "Milan is not Rome." in _text(judge)
            stats = _text(pane.query_one("#grade-stats", Static))
            assert "judge agrees 0%" in stats and "1 differ" in stats
            await pilot.press("d")  # step to the disagreement
            await pilot.pause()
            assert pane.current == 0 and "≠ you" in _text(judge)

            await pilot.press("b")
            await pilot.pause()
            assert not judge.display
            assert "judge" not in _text(pane.query_one("#grade-stats", Static))
            assert "nano" not in _text(pane.query_one("#grade-verdict", Static))

    asyncio.run(scenario())


ANSWERS = (
    "question,answer,llm_answer,model,latency_s,prompt_tokens,completion_tokens,error\n"
    "Capital of France?,Paris,It is Paris.,openai:/gpt-4.1-mini,0.5,10,3,\n"
    "Capital of Italy?,Rome,I think Milan.,openai:/gpt-4.1-mini,1.5,10,3,\n"
)


def test_the_course_loop_in_the_app(tmp_path: Path, openai_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Evaluate an answers file in the Evaluate pane, grade it beside the judge, the verdict reaches MLflow."""
    openai_env.behaviour.responder = responder
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("PROCTOR_GRADER", "grader-1")
    (tmp_path / "answers.csv").write_text(ANSWERS, encoding="utf-8")

    async def scenario() -> None:
        # The answers file is open in the Grade pane (which writes it) before the evaluation: it lends it.
        app = ProctorApp(pane="grade", grade_path="answers.csv", warm_up=False)
        async with app.run_test(size=(120, 40)) as pilot:
            grade = app.query_one(GradePane)
            await wait_for(pilot, lambda: grade.session is not None, timeout=30)
            assert not grade.session.has_judge and grade.locked is None
            await pilot.press("f4")
            evaluate = app.query_one(EvaluatePane)
            evaluate.query_one("#eval-path", Input).value = "answers.csv"
            evaluate.query_one("#eval-judge", Input).value = "openai:/gpt-4.1-nano"
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: not evaluate.running, timeout=120)
            assert evaluate.answers_file is not None, _text(evaluate.query_one("#eval-progress", Static))
            assert "written into" in _text(evaluate.query_one("#eval-summary", Static))

            await pilot.press("ctrl+d")  # grade it, with the judge beside you
            await wait_for(pilot, lambda: grade.session.has_judge and grade.locked is None and not grade.saving,
                           timeout=30)
            assert app.query_one("#panes").active == "grade"
            assert "It is Paris" in _text(grade.query_one("#grade-answer", Static))
            assert "supported" in _text(grade.query_one("#grade-judge", Static))
            await pilot.press("y")
            await wait_for(pilot, lambda: read_table(tmp_path / "answers.csv")["human_synced"][0] == "correct",
                           timeout=60)

    asyncio.run(scenario())
    frame = read_table(tmp_path / "answers.csv")
    assert frame["human_verdict"].tolist() == ["correct", ""]
    from mlflow.tracing.client import TracingClient

    info = TracingClient(uri).get_trace_info(frame["trace_id"][0])
    human = [a for a in info.assessments if a.name == "correctness" and str(a.source.source_type) == "HUMAN"]
    judge = [a for a in info.assessments if a.name == "correctness" and str(a.source.source_type) == "LLM_JUDGE"]
    assert [(a.value, a.source.source_id) for a in human] == [("yes", "grader-1")]
    assert [a.value for a in judge] == ["yes"]


def test_h_on_a_run_grades_its_rows(tmp_path: Path, openai_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """`h` in the Runs pane: the run's rows open in the Grade pane (here from its results: the file moved away)."""
    from core.evaluation import evaluate_file
    from tui.panes.runs import RunsPane

    openai_env.behaviour.responder = responder
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    (tmp_path / "answers.csv").write_text(ANSWERS, encoding="utf-8")
    summary = evaluate_file(tmp_path / "answers.csv", judge="openai:/gpt-4.1-nano")
    (tmp_path / "answers.csv").rename(tmp_path / "elsewhere.csv")

    async def scenario() -> None:
        app = ProctorApp(pane="runs", warm_up=False)
        async with app.run_test(size=(120, 40)) as pilot:
            runs = app.query_one(RunsPane)
            await wait_for(pilot, lambda: runs.loaded and runs.highlighted_run_id() == summary.run_id, timeout=60)
            await pilot.press("h")
            grade = app.query_one(GradePane)
            await wait_for(pilot, lambda: grade.session is not None, timeout=60)
            assert grade.session.path.name == f"gpt-4.1-mini.{summary.run_id[:8]}.graded.csv"
            assert app.query_one("#panes").active == "grade"
            assert "supported" in _text(grade.query_one("#grade-judge", Static))
            assert set(grade.session.frame["run_id"]) == {summary.run_id}

    asyncio.run(scenario())


def test_a_replaced_sender_does_not_mark_rows(tmp_path: Path, openai_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """A sender stopped by a reload may still report a verdict it sent, with the row number of the file as it was:
    the pane does not write that into the file; only its current sender's reports are recorded."""
    from core.evaluation import evaluate_file

    openai_env.behaviour.responder = responder
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("PROCTOR_GRADER", "grader-1")
    path = tmp_path / "answers.csv"
    path.write_text(ANSWERS, encoding="utf-8")
    evaluate_file(path, judge="openai:/gpt-4.1-nano")

    async def scenario() -> None:
        app = ProctorApp(pane="grade", grade_path=str(path), warm_up=False)
        async with app.run_test(size=(120, 40)) as pilot:
            grade = app.query_one(GradePane)
            await wait_for(pilot, lambda: grade.session is not None and grade.sender is not None, timeout=30)
            grade.post_message(GradePane.FeedbackSent(1, "correct", sender=object()))
            await pilot.press("y")  # row 0, from this pane's own sender
            await wait_for(pilot, lambda: read_table(path)["human_synced"][0] == "correct", timeout=60)

    asyncio.run(scenario())
    frame = read_table(path)
    assert frame["human_verdict"].tolist() == ["correct", ""]
    assert frame["human_synced"].tolist() == ["correct", ""]
