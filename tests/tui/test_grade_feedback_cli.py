"""`proctor grade` with evaluation runs: --sync, --run RUN, and --stats for every judge that judged a file.

A real sqlite MLflow store per module and the fake server as model and judges.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from evaluation_helpers import is_judge_request, responder

from core.csvio import read_table
from core.evaluation import evaluate_file
from core.grading import GradingSession
from tui.cli import main

ANSWERS = (
    "question,answer,llm_answer,model,latency_s,prompt_tokens,completion_tokens,error\n"
    "Capital of France?,Paris,It is Paris.,openai:/gpt-4.1-mini,0.5,10,3,\n"
    "Capital of Italy?,Rome,I think Milan.,openai:/gpt-4.1-mini,1.5,10,3,\n"
    "Capital of Peru?,Lima,Lima,openai:/gpt-4.1-mini,1.0,10,1,\n"
    "Capital of Spain?,Madrid,Madrid it is,openai:/gpt-4.1-mini,1.0,10,1,\n"
    "Capital of Germany?,Berlin,Munich,openai:/gpt-4.1-mini,1.0,10,1,\n"
    "Capital of Japan?,Tokyo,Tokyo.,openai:/gpt-4.1-mini,1.0,10,1,\n"
)
HUMAN = ["correct", "incorrect", "correct", "correct", "incorrect", "correct"]


def two_judges(body, info) -> str:  # noqa: ANN001
    """gpt-4.1-nano judges by the reference (as the human does); gpt-4.1-mini says yes to everything."""
    if is_judge_request(body) and info.model == "gpt-4.1-mini":
        return json.dumps({"result": "yes", "rationale": "Looks fine to me."})
    return responder(body, info)


@pytest.fixture
def answers(tmp_path: Path, openai_env, tracking: str) -> Path:  # noqa: ANN001
    openai_env.behaviour.responder = two_judges
    path = tmp_path / "answers.csv"
    path.write_text(ANSWERS, encoding="utf-8")
    return path


def _grade(path: Path, verdicts: list[str]) -> None:
    with GradingSession(path) as session:
        for row, verdict in enumerate(verdicts):
            session.set_verdict(row, verdict or None)


def _human_values(run_id: str) -> dict[str, list[str]]:
    """question -> the values of the valid HUMAN `correctness` feedback on the run's trace for it."""
    import mlflow
    from mlflow.tracking import MlflowClient

    run = MlflowClient().get_run(run_id)
    traces = mlflow.search_traces(locations=[run.info.experiment_id], run_id=run_id, return_type="list")
    found = {}
    for trace in traces:
        question = json.loads(trace.data.request)["question"]
        found[question] = [a.value for a in trace.info.assessments if a.name == "correctness"
                           and str(a.source.source_type) == "HUMAN" and a.valid is not False]
    return found


def test_stats_for_every_judge_that_judged_the_file(answers: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _grade(answers, HUMAN)
    nano = evaluate_file(answers, judge="openai:/gpt-4.1-nano")
    mini = evaluate_file(answers, judge="openai:/gpt-4.1-mini")
    assert set(read_table(answers)["run_id"]) == {mini.run_id}  # the file holds the latest judge's columns
    capsys.readouterr()

    assert main(["grade", str(answers), "--stats", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    judges = {j["judge"]: j for j in data["judges"]}
    assert [j["judge"] for j in data["judges"]] == ["openai:/gpt-4.1-nano", "openai:/gpt-4.1-mini"]  # best first
    assert judges["openai:/gpt-4.1-nano"]["run_id"] == nano.run_id and judges["openai:/gpt-4.1-nano"]["source"] == "run"
    assert judges["openai:/gpt-4.1-nano"]["agreement"] == 1.0 and judges["openai:/gpt-4.1-nano"]["kappa"] == 1.0
    assert judges["openai:/gpt-4.1-mini"]["source"] == "file"
    assert judges["openai:/gpt-4.1-mini"]["agreement"] == pytest.approx(4 / 6)
    assert judges["openai:/gpt-4.1-mini"]["kappa"] == pytest.approx(0.0)
    assert judges["openai:/gpt-4.1-mini"]["beyond_chance"] is False
    low, high = judges["openai:/gpt-4.1-mini"]["agreement_ci95"]
    assert low < 4 / 6 < high
    assert judges["openai:/gpt-4.1-mini"]["judge_only_correct"] == 2
    assert data["not_in_mlflow"] == 0

    assert main(["grade", str(answers), "--stats"]) == 0
    out = capsys.readouterr().out
    assert "judges vs you" in out and "openai:/gpt-4.1-nano" in out and "kappa 1.00" in out
    assert "not clearly more than chance" in out


def test_sync_sends_pending_verdicts_and_says_when_mlflow_is_down(answers: Path, tracking: str,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(answers), "--judge", "openai:/gpt-4.1-nano", "-q"]) == 0  # the CLI, this time
    assert f"judge's verdicts written into {answers}" in capsys.readouterr().out
    run_id = read_table(answers)["run_id"][0]
    assert read_table(answers)["judge_verdict"].tolist() == HUMAN
    _grade(answers, ["correct", "incorrect"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    capsys.readouterr()
    assert main(["grade", str(answers), "--sync"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("proctor: error: 2 verdict(s) not sent") and "Traceback" not in err
    assert main(["grade", str(answers), "--stats"]) == 0
    assert "not in MLflow yet: 2 verdict(s)" in capsys.readouterr().out

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    assert main(["grade", str(answers), "--sync"]) == 0
    assert "2 verdict(s) sent to MLflow" in capsys.readouterr().out
    human = _human_values(run_id)
    assert human["Capital of France?"] == ["yes"] and human["Capital of Italy?"] == ["no"]
    assert human["Capital of Peru?"] == []
    assert main(["grade", str(answers), "--sync"]) == 0
    assert "0 verdict(s) sent to MLflow" in capsys.readouterr().out


def test_grade_a_run_from_its_answers_file_or_from_its_results(answers: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    summary = evaluate_file(answers, judge="openai:/gpt-4.1-nano")
    opened: list[str] = []
    monkeypatch.setattr("tui.app.ProctorApp.run", lambda app: opened.append(app.grade_path))
    monkeypatch.setattr("tui.quick_exit.exit_process", lambda code: None)  # os._exit would end pytest itself

    assert main(["grade", "--run", summary.run_id[:8]]) == 0
    assert opened == [str(answers.resolve())]  # the run's own answers file, still here

    answers.rename(tmp_path / "moved.csv")  # elsewhere now: the rows come from the run's results
    assert main(["grade", "--run", summary.run_id]) == 0
    local = Path(opened[-1])
    assert local.name == f"gpt-4.1-mini.{summary.run_id[:8]}.graded.csv" and local.parent == tmp_path
    frame = read_table(local)
    assert frame["question"].tolist()[:2] == ["Capital of France?", "Capital of Italy?"]
    assert set(frame["run_id"]) == {summary.run_id} and all(frame["trace_id"])
    assert frame["judge_verdict"].tolist() == HUMAN
    assert "made now from the run's results" in capsys.readouterr().err

    _grade(local, ["incorrect"])
    assert main(["grade", str(local), "--sync"]) == 0
    assert _human_values(summary.run_id)["Capital of France?"] == ["no"]
    assert main(["grade", "--run", summary.run_id]) == 0  # a second time: the same local file, resumed
    assert opened[-1] == str(local) and read_table(local)["human_verdict"][0] == "incorrect"


def test_grade_run_errors_are_one_line(answers: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evaluate_file(answers, judge="openai:/gpt-4.1-nano")
    assert main(["grade", "--run", "nosuchrun"]) == 2
    assert capsys.readouterr().err.startswith("proctor: error: no run matches 'nosuchrun'")
    assert main(["grade", str(answers), "--run", "x"]) == 2
    assert main(["grade"]) == 2
