"""Judge and human verdicts together: the judge's columns in the answers CSV, human verdicts as MLflow feedback.

A real sqlite MLflow store per module, the fake server as model and judge, read back with MLflow's own client.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from evaluation_helpers import responder

from core.agreement import judge_human, run_metrics
from core.csvio import read_table
from core.evaluation import evaluate_file
from core.feedback import FeedbackClient, FeedbackSender, pending_in_frame, sync_file
from core.grading import GradingSession

GRADER = "ada@example.org"
ANSWERS = (
    "question,answer,llm_answer,model,latency_s,prompt_tokens,completion_tokens,error,notes,human_verdict\n"
    "Capital of France?,Paris,It is Paris.,openai:/gpt-4.1-mini,0.5,10,3,,keep me,correct\n"
    "Capital of Italy?,Rome,I think Milan.,openai:/gpt-4.1-mini,1.5,10,3,,,\n"
    "Capital of Spain?,Madrid,,openai:/gpt-4.1-mini,,,,HTTP 429: Rate limit reached,,\n"
    "Capital of Peru?,Lima,Lima,openai:/gpt-4.1-mini,1.0,10,1,,,incorrect\n"
)


@pytest.fixture
def judged(tmp_path: Path, openai_env, tracking: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """An answers file with two human verdicts given before the evaluation, then evaluated."""
    monkeypatch.setenv("PROCTOR_GRADER", GRADER)
    openai_env.behaviour.responder = responder
    path = tmp_path / "answers.csv"
    path.write_text(ANSWERS, encoding="utf-8")
    summary = evaluate_file(path, judge="openai:/gpt-4.1-nano")
    return path, summary


def _human(trace_id: str, valid_only: bool = True) -> list:
    from mlflow.tracing.client import TracingClient

    info = TracingClient().get_trace_info(trace_id)
    return [a for a in info.assessments if a.name == "correctness" and str(a.source.source_type) == "HUMAN"
            and (a.valid is not False or not valid_only)]


def _judge(trace_id: str) -> list:
    from mlflow.tracing.client import TracingClient

    info = TracingClient().get_trace_info(trace_id)
    return [a for a in info.assessments if a.name == "correctness" and str(a.source.source_type) == "LLM_JUDGE"]


def _metrics(run_id: str) -> dict[str, float]:
    from mlflow.tracking import MlflowClient

    return MlflowClient().get_run(run_id).data.metrics


# ---------------------------------------------------------------- statistics


def test_agreement_kappa_and_intervals() -> None:
    human = ["correct"] * 6 + ["incorrect"] * 4 + ["", "correct"]
    judge = ["correct"] * 5 + ["incorrect"] + ["incorrect"] * 3 + ["correct"] + ["correct", ""]
    stats = judge_human(human, judge)
    assert (stats.graded, stats.human_correct, stats.compared) == (11, 7, 10)
    assert (stats.both_correct, stats.both_incorrect, stats.judge_only_correct, stats.human_only_correct) == \
        (5, 3, 1, 1)
    assert stats.agreement == pytest.approx(0.8)
    # p_e = 0.6 * 0.6 + 0.4 * 0.4 = 0.52; kappa = (0.8 - 0.52) / 0.48
    assert stats.kappa == pytest.approx(0.28 / 0.48)
    low, high = stats.kappa_ci
    assert -1 <= low < stats.kappa < high <= 1
    metrics = run_metrics(stats)
    assert metrics["human/graded"] == 11 and metrics["human/accuracy"] == pytest.approx(7 / 11)
    assert metrics["human/accuracy_ci_low"] < 7 / 11 < metrics["human/accuracy_ci_high"]
    assert metrics["judge_human/kappa_ci_low"] == pytest.approx(low)
    assert metrics["judge_human/both_correct"] == 5 and metrics["judge_human/human_only_correct"] == 1
    # One label only on both sides: kappa is undefined, not 0 or 1.
    assert judge_human(["correct"] * 3, ["correct"] * 3).kappa is None
    assert run_metrics(judge_human(["", ""], ["correct", "incorrect"])) == {}


# ---------------------------------------------------------------- the evaluation writes into the file


def test_evaluation_writes_the_judge_into_the_answers_file_and_sends_earlier_human_verdicts(judged) -> None:  # noqa: ANN001
    path, summary = judged
    assert summary.judged_file == path
    frame = read_table(path)
    # Every column kept, in place; the judge's at the right end.
    assert list(frame.columns)[:10] == ["question", "answer", "llm_answer", "model", "latency_s", "prompt_tokens",
                                        "completion_tokens", "error", "notes", "human_verdict"]
    assert {"judge_verdict", "judge_rationale", "judge_error", "judge", "run_id", "trace_id",
            "human_synced"} <= set(frame.columns)
    assert frame["notes"][0] == "keep me"
    assert frame["human_verdict"].tolist() == ["correct", "", "", "incorrect"]
    assert frame["judge_verdict"].tolist() == ["correct", "incorrect", "", "correct"]
    assert frame["judge_rationale"][0].startswith("The claim is supported")
    assert frame["judge_error"][2] == "not judged: no answer"
    assert set(frame["judge"]) == {"openai:/gpt-4.1-nano"} and set(frame["run_id"]) == {summary.run_id}
    traces = frame["trace_id"].tolist()
    assert all(traces[i] for i in (0, 1, 3)) and traces[2] == "" and len(set(traces)) == 4

    # The verdicts given before the evaluation are HUMAN feedback on the new run's traces, one per graded row.
    for row, value in ((0, "yes"), (3, "no")):
        human = _human(traces[row])
        assert len(human) == 1
        assert human[0].value == value and human[0].source.source_id == GRADER
        assert len(_judge(traces[row])) == 1  # the judge's own verdict is still there
    assert _human(traces[1]) == []
    assert frame["human_synced"].tolist() == ["correct", "", "", "incorrect"]
    assert summary.human_synced == 2

    metrics = _metrics(summary.run_id)
    assert metrics["human/graded"] == 2 and metrics["human/accuracy"] == pytest.approx(0.5)
    assert metrics["judge_human/compared"] == 2 and metrics["judge_human/agreement"] == pytest.approx(0.5)
    assert metrics["judge_human/both_correct"] == 1 and metrics["judge_human/judge_only_correct"] == 1
    assert "human/accuracy_ci_low" in metrics and "human/accuracy_ci_high" in metrics


def test_changed_and_cleared_verdicts_replace_the_human_one_and_update_the_metrics(judged) -> None:  # noqa: ANN001
    path, summary = judged
    with GradingSession(path) as session:
        session.set_verdict(0, "incorrect")  # changed
        session.set_verdict(1, "incorrect")  # new
        session.set_verdict(3, None)  # cleared
        assert len(pending_in_frame(session.frame)) == 3
    report = sync_file(path)
    assert (report.sent, report.failed) == (3, 0) and report.runs == [summary.run_id]
    traces = read_table(path)["trace_id"].tolist()

    human = _human(traces[0])
    assert [a.value for a in human] == ["no"]  # one valid human verdict: the new one
    everything = _human(traces[0], valid_only=False)
    assert len(everything) == 2 and human[0].overrides in {a.assessment_id for a in everything}
    assert [a.value for a in _human(traces[1])] == ["no"]
    assert _human(traces[3], valid_only=False) == []  # cleared: nothing of the grader's left
    assert all(len(_judge(t)) == 1 for t in (traces[0], traces[1], traces[3]))  # the judge's kept

    assert read_table(path)["human_synced"].tolist() == ["incorrect", "incorrect", "", ""]
    metrics = _metrics(summary.run_id)
    assert metrics["human/graded"] == 2 and metrics["human/accuracy"] == 0.0
    assert metrics["judge_human/both_incorrect"] == 1 and metrics["judge_human/judge_only_correct"] == 1
    # Nothing left to send: a second sync sends nothing and logs nothing twice.
    again = sync_file(path)
    assert (again.sent, again.already, again.failed) == (0, 0, 0)
    assert len(_human(traces[0], valid_only=False)) == 2


def test_a_verdict_sent_but_not_recorded_is_not_logged_twice(judged) -> None:  # noqa: ANN001
    path, _ = judged
    frame = read_table(path)
    with GradingSession(path) as session:
        session.set_verdict(1, "correct")
    # A crash between MLflow's answer and the file's update: MLflow holds it, the file says pending.
    client = FeedbackClient()
    (item,) = pending_in_frame(read_table(path))
    assert client.push(item) == "logged"
    report = sync_file(path)
    assert (report.sent, report.already) == (0, 1)
    assert len(_human(frame["trace_id"][1], valid_only=False)) == 1


class _RacingClient(FeedbackClient):
    """Holds each read of the trace until a second client has read it too (or 3 s passed): two pushes of one
    verdict from two senders at once (a pane replacing its sender while a push is in flight)."""

    meeting = threading.Barrier(2)

    def mine(self, trace_id: str) -> list:
        found = super().mine(trace_id)
        try:
            self.meeting.wait(timeout=3)
        except threading.BrokenBarrierError:  # the other push waited for this one to finish: no meeting
            pass
        return found


def test_two_senders_pushing_one_verdict_at_once_log_it_once(judged) -> None:  # noqa: ANN001
    path, _ = judged
    frame = read_table(path)
    with GradingSession(path) as session:
        session.set_verdict(1, "incorrect")
    (item,) = pending_in_frame(read_table(path))
    outcomes: list[str] = []
    pushes = [threading.Thread(target=lambda: outcomes.append(_RacingClient().push(item))) for _ in range(2)]
    for push in pushes:
        push.start()
    for push in pushes:
        push.join(60)
    assert sorted(outcomes) == ["already", "logged"]
    assert [a.value for a in _human(frame["trace_id"][1], valid_only=False)] == ["no"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_down_while_grading_then_back(judged, tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    path, summary = judged
    traces = read_table(path)["trace_id"].tolist()
    # MLflow unreachable: a tracking server at a port nobody listens on, no retries so the test stays short.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    sent: list[tuple[int, str]] = []
    states: list[tuple[int, str]] = []
    failed_once = threading.Event()
    done = threading.Event()

    def on_state(pending: int, error: str) -> None:
        states.append((pending, error))
        if error:
            failed_once.set()
        elif pending == 0:
            done.set()

    session = GradingSession(path)
    sender = FeedbackSender(on_sent=lambda row, verdict: sent.append((row, verdict)), on_state=on_state,
                            retry_every=0.2).start()
    try:
        session.set_verdict(1, "correct")
        # On disk at once, before and whatever MLflow does.
        assert read_table(path)["human_verdict"][1] == "correct"
        sender.submit(pending_in_frame(session.frame))
        assert failed_once.wait(60), states
        assert sender.pending == 1 and sent == []
        # Still pending on disk: a new process (after kill -9) would find it.
        assert [p.row for p in pending_in_frame(read_table(path))] == [1]

        monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)  # MLflow is back
        assert done.wait(60), states
        assert sent == [(1, "correct")]
        session.mark_synced(dict(sent))
    finally:
        sender.stop(timeout=10)
        session.close()
    assert [a.value for a in _human(traces[1], valid_only=False)] == ["yes"]
    report = sync_file(path)  # the next open: nothing pending, nothing sent twice
    assert (report.sent, report.already, report.failed) == (0, 0, 0)
    assert len(_human(traces[1], valid_only=False)) == 1


def test_sync_reports_mlflow_unreachable_and_keeps_the_verdicts_pending(judged, monkeypatch) -> None:  # noqa: ANN001
    path, _ = judged
    with GradingSession(path) as session:
        session.set_verdict(1, "correct")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    report = sync_file(path)
    assert report.failed == 1 and report.sent == 0 and report.error
    assert [p.row for p in pending_in_frame(read_table(path))] == [1]

