"""core.fast_evaluate: the same run in the store as `mlflow.genai.evaluate` makes, on a real sqlite store.

The same answers file is evaluated twice with the fake server as judge: through Proctor's fast path (the default on
SQLite) and through plain `mlflow.genai.evaluate` (`PROCTOR_FAST_EVALUATE=0`). What the store holds is then read
back and compared, ids and timestamps aside: per row the trace, its link to the run, inputs, outputs, metadata and
tags, and its assessments (names, values, sources, rationale and error presence, metadata keys); per run the
metrics, params, tags and dataset input.
"""

from __future__ import annotations

import csv
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from evaluation_helpers import responder

from core.evaluation import EvaluationCancelled, evaluate_file
from core.fast_evaluate import FAST_ENV, unavailable_reason

# Right, wrong, right with extra words (exact match fails, the judge agrees), and a wrong number.
ROWS = [("Question 1: what is 1 times 7?", "7", "7"), ("Question 2: what is 2 times 7?", "14", "15"),
        ("Question 3: what is 3 times 7?", "21", "It is 21."),
        ("Question 4: what is 4 times 7?", "28", "I am not sure.")]
JUDGE = "azure:/gpt-4.1-nano"
# Values that differ between any two runs: ids, times, where the run's files are.
VOLATILE_METADATA = {"mlflow.sourceRun", "mlflow.trace.sizeBytes", "mlflow.trace.sizeStats"}
VOLATILE_TAGS = {"mlflow.artifactLocation"}


@pytest.fixture
def azure(azure_env, tracking):  # noqa: ANN001, ANN201 - fixtures
    azure_env.behaviour.responder = responder
    return azure_env


def _answers(folder: Path, rows: list[tuple[str, str, str]] = ROWS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "answers.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "answer", "llm_answer", "model"])
        writer.writerows([(q, ref, ans, "azure:/gpt-4.1-mini") for q, ref, ans in rows])
    return path


def _db(tracking: str) -> Path:
    return Path(tracking.removeprefix("sqlite:///"))


def _linked(tracking: str, run_id: str) -> set[str]:
    """The trace ids linked to the run (the MLflow UI's run Traces tab), read from the store itself."""
    with sqlite3.connect(_db(tracking)) as con:
        rows = con.execute("SELECT source_id FROM entity_associations WHERE source_type = 'trace' AND "
                           "destination_type = 'run' AND destination_id = ?", (run_id,)).fetchall()
    return {r[0] for r in rows}


def _stored(run_id: str) -> dict[str, Any]:
    """What the store holds for run `run_id`, ids and timestamps aside, rows keyed by their question."""
    import mlflow
    from mlflow.tracking import MlflowClient

    run = MlflowClient().get_run(run_id)
    traces = mlflow.search_traces(locations=[run.info.experiment_id], run_id=run_id, return_type="list")
    rows = {}
    for trace in traces:
        info = trace.info
        assessments = sorted(
            (a.name, str(a.value), a.source.source_type, a.source.source_id, bool(a.rationale),
             a.error is not None, a.span_id == trace.data.spans[0].span_id,
             sorted((a.metadata or {}).keys()), (a.metadata or {}).get("mlflow.assessment.sourceRunId") == run_id)
            for a in info.assessments)
        metadata = {k: v for k, v in info.trace_metadata.items() if k not in VOLATILE_METADATA}
        assert info.trace_metadata["mlflow.sourceRun"] == run_id
        rows[trace.data.spans[0].inputs["question"]] = {
            "inputs": trace.data.spans[0].inputs, "outputs": trace.data.spans[0].outputs,
            "spans": [(s.name, s.span_type, s.parent_id) for s in trace.data.spans],
            "state": str(info.state), "previews": (info.request_preview, info.response_preview),
            "metadata": metadata, "tags": {k: v for k, v in info.tags.items() if k not in VOLATILE_TAGS},
            "assessments": assessments,
        }
    tags = {k: v for k, v in run.data.tags.items() if k != "proctor.answers_file"}
    datasets = [(d.dataset.name, d.dataset.digest, d.dataset.schema) for d in run.inputs.dataset_inputs]
    return {"traces": rows, "trace_ids": {t.info.trace_id for t in traces}, "metrics": run.data.metrics,
            "params": run.data.params, "tags": tags, "datasets": datasets, "status": run.info.status}


def _log(folder: Path) -> str:
    return (folder / ".proctor" / "mlflow.log").read_text("utf-8")


def test_fast_path_stores_what_mlflow_genai_evaluate_stores(tmp_path: Path, azure, tracking: str,  # noqa: ANN001
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fast = evaluate_file(_answers(tmp_path / "fast"), judge=JUDGE, experiment="same")
    assert "Proctor's fast path" in _log(tmp_path)
    monkeypatch.setenv(FAST_ENV, "0")
    plain = evaluate_file(_answers(tmp_path / "plain"), judge=JUDGE, experiment="same")
    assert f"mlflow.genai.evaluate ({FAST_ENV}=0)" in _log(tmp_path)

    got, want = _stored(fast.run_id), _stored(plain.run_id)
    assert len(want["traces"]) == len(ROWS)  # the comparison below compares something
    assert got["traces"] == want["traces"]
    assert _linked(tracking, fast.run_id) == got["trace_ids"] and _linked(tracking, plain.run_id) == want["trace_ids"]
    assert got["metrics"].keys() == want["metrics"].keys()
    for name, value in want["metrics"].items():
        assert got["metrics"][name] == pytest.approx(value), name
    assert got["params"] == want["params"]
    assert got["tags"] == want["tags"]
    assert got["datasets"] == want["datasets"] and len(want["datasets"]) == 1
    assert got["status"] == want["status"] == "FINISHED"
    # The per-row results Proctor gives back (results.csv, the answers file's judge columns) agree as well.
    columns = ["question", "judge_verdict", "judge_rationale", "judge_error", "exact_match", "contains_reference"]
    assert fast.results[columns].equals(plain.results[columns])
    assert set(fast.results["trace_id"]) == got["trace_ids"]
    assert fast.results["judge_verdict"].tolist() == ["correct", "incorrect", "correct", "incorrect"]
    assert fast.metrics["judge_prompt_tokens"] == plain.metrics["judge_prompt_tokens"] > 0


@pytest.mark.parametrize("concurrency", [1, 32])
def test_any_concurrency_judges_and_stores_every_row(tmp_path: Path, azure, tracking: str,  # noqa: ANN001
                                                      monkeypatch: pytest.MonkeyPatch, concurrency: int) -> None:
    azure.behaviour.latency = 0.02
    monkeypatch.setenv("PROCTOR_CONCURRENCY", str(concurrency))
    rows = [(f"Question {i}: what is {i} times 7?", str(i * 7), f"It is {i * 7}.") for i in range(1, 41)]
    summary = evaluate_file(_answers(tmp_path, rows), judge=JUDGE, experiment=f"concurrency-{concurrency}")
    assert "Proctor's fast path" in _log(tmp_path)
    assert summary.metrics["rows"] == 40 and summary.metrics["accuracy"] == 1.0
    assert sum(1 for item in azure.log if "<claim>" in item.question) == 40
    stored = _stored(summary.run_id)
    assert len(stored["traces"]) == 40 and _linked(tracking, summary.run_id) == stored["trace_ids"]
    assert all(len(row["assessments"]) == 4 for row in stored["traces"].values())
    assert set(summary.results["trace_id"]) == stored["trace_ids"]


def test_cancelled_fast_run_keeps_the_traces_of_the_rows_judged(tmp_path: Path, azure, tracking: str) -> None:  # noqa: ANN001
    azure.behaviour.latency = 0.05
    cancel = threading.Event()
    seen = []

    def progress(p) -> None:  # noqa: ANN001
        if p.phase == "judging" and p.done >= 2:
            seen.append(p.done)
            cancel.set()

    rows = [(f"Question {i}: what is {i} times 7?", str(i * 7), f"It is {i * 7}.") for i in range(1, 31)]
    with pytest.raises(EvaluationCancelled, match="KILLED"):
        evaluate_file(_answers(tmp_path, rows), judge=JUDGE, experiment="cancel-fast", on_progress=progress,
                      cancel=cancel)
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("cancel-fast").experiment_id])
    assert run.info.status == "KILLED"
    linked = _linked(tracking, run.info.run_id)
    assert seen and 2 <= len(linked) < 30  # the rows judged before the cancel are in the run, not the rest


def test_only_sqlite_stores_take_the_fast_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert unavailable_reason(f"sqlite:///{tmp_path}/mlflow.db") is None
    assert unavailable_reason("http://127.0.0.1:5000") == "not a SQLite store"
    assert unavailable_reason(tmp_path.as_uri()) == "not a SQLite store"
    monkeypatch.setenv(FAST_ENV, "0")
    assert unavailable_reason(f"sqlite:///{tmp_path}/mlflow.db") == f"{FAST_ENV}=0"
