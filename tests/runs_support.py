"""Evaluation runs logged the way `proctor evaluate` logs them (the shared contract), with the MLflow client only.

The runs/compare tests build their store with these helpers, so that they do not depend on the evaluate code:
params, `proctor.*` tags, metrics and a `results/results.csv` artifact, exactly as the contract lists them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

import core.runs

QUESTIONS = [
    ("What is the capital of France?", "Paris"),
    ("How many legs has a spider?", "8"),
    ("Who wrote Hamlet?", "William Shakespeare"),
    ("What is 7 x 6?", "42"),
    ("Which planet is largest?", "Jupiter"),
]
DATASET_HASH = hashlib.sha256("\n".join(q for q, _ in QUESTIONS).encode()).hexdigest()


@dataclass
class Row:
    verdict: str  # correct | incorrect | "" (judge failed)
    answer: str
    rationale: str = ""


@contextmanager
def store_at(folder: Path | None, uri: str | None = None) -> Iterator[str]:
    """Point MLFLOW_TRACKING_URI at a sqlite store in `folder` (or at `uri`, a server) for the block (yields the
    URI), then put it back."""
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    uri = uri or f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from core.tracking import follow_tracking_uri

    follow_tracking_uri()
    try:
        yield uri
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved


def log_contract_run(folder: Path, model_name: str, rows: list[Row], judge: str = "openai:/gpt-4.1-mini",
                     experiment: str = "proctor", dataset_hash: str = DATASET_HASH, with_results: bool = True,
                     extra_metrics: dict[str, float] | None = None,
                     questions: list[tuple[str, str]] | None = None) -> str:
    """Log one evaluation run per the contract (run name = model name); return its run id."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from core.csvio import write_csv_atomic

    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    # An explicit artifact location keeps artifacts in the test's folder, whatever the current directory is.
    experiment_id = found.experiment_id if found else client.create_experiment(
        experiment, artifact_location=(folder / "mlruns" / experiment).as_uri())
    model_uri = f"openai:/{model_name}"
    frame = pd.DataFrame([{
        "row": str(i), "question": q, "reference": ref, "llm_answer": r.answer, "model": model_uri,
        "judge_verdict": r.verdict, "judge_rationale": r.rationale or f"The answer {r.answer!r} vs {ref!r}.",
        "judge_error": "" if r.verdict else "judge timed out", "exact_match": str(r.answer == ref),
        "contains_reference": str(ref.lower() in r.answer.lower()), "latency_s": "0.100", "answer_error": "",
    } for i, ((q, ref), r) in enumerate(zip(questions or QUESTIONS, rows, strict=True), start=1)])
    correct = sum(r.verdict == "correct" for r in rows)
    judged = [r for r in rows if r.verdict]
    metrics = {
        "accuracy": correct / len(rows),
        "correctness/mean": correct / len(judged) if judged else 0.0,
        "exact_match/mean": float((frame["exact_match"] == "True").mean()),
        "contains_reference/mean": float((frame["contains_reference"] == "True").mean()),
        "judge_errors": float(len(rows) - len(judged)), "answer_errors": 0.0, "rows": float(len(rows)),
        "latency_mean_s": 0.1, "latency_p95_s": 0.12, "prompt_tokens": 100.0, "completion_tokens": 40.0,
        **(extra_metrics or {}),
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=model_name) as run:
        mlflow.log_params({
            "model_uri": model_uri, "provider": "openai", "model_name": model_name, "temperature": "0.0",
            "system_prompt": "", "judge": judge, "scorers": "correctness,exact_match,contains_reference",
            "dataset_name": "course.csv", "dataset_rows": str(len(rows)), "dataset_hash": dataset_hash,
            "judge_timeout_s": "60",
        })
        mlflow.set_tags({"proctor.kind": "evaluation", "proctor.model": model_uri, "proctor.judge": judge,
                         "proctor.dataset": "course.csv", "proctor.version": "0.1.0"})
        mlflow.log_metrics(metrics)
        if with_results:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "results.csv"
                write_csv_atomic(frame, path)
                mlflow.log_artifact(str(path), artifact_path="results")
                inputs = Path(tmp) / "course.csv"
                write_csv_atomic(pd.DataFrame(questions or QUESTIONS, columns=["question", "answer"]), inputs)
                mlflow.log_artifact(str(inputs), artifact_path="inputs")
        run_id = run.info.run_id
    time.sleep(0.01)  # distinct start times, so "latest of that name" is well defined
    return run_id


# Two models on the same five questions, one judge: A is right on Q2 where B is wrong, B is right on Q4 and Q5.
NANO = [Row("correct", "Paris"), Row("correct", "8"), Row("correct", "William Shakespeare"),
        Row("incorrect", "48"), Row("", "Jupiter")]
MINI = [Row("correct", "Paris"), Row("incorrect", "6", "A spider has eight legs, not six."),
        Row("correct", "Shakespeare"), Row("correct", "42"), Row("correct", "Jupiter")]


def log_reader_runs(folder: Path) -> dict[str, str]:
    """The runs the run readers' tests read (core.sqlite_runs, core.rest_runs), logged into the current store:
    `nano` and `mini` (the two models), `again` (nano's name a second time: the latest wins), `other` (another
    experiment, no results file) and `deleted` (a deleted run)."""
    from mlflow.tracking import MlflowClient

    ids = {"nano": log_contract_run(folder, "gpt-4.1-nano", NANO),
           "mini": log_contract_run(folder, "gpt-4.1-mini", MINI, extra_metrics={"odd": float("nan")}),
           "again": log_contract_run(folder, "gpt-4.1-nano", MINI),
           "other": log_contract_run(folder, "other-model", [Row("correct", "x")] * 5, experiment="other",
                                     with_results=False),
           "deleted": log_contract_run(folder, "deleted-model", NANO)}
    MlflowClient().delete_run(ids["deleted"])
    return ids


def assert_same_infos(a: list, b: list) -> None:
    """Two listings of `core.runs.RunInfo` say the same (NaN metrics compared by their text: NaN != NaN)."""
    assert [r.run_id for r in a] == [r.run_id for r in b]
    for x, y in zip(a, b, strict=True):
        assert {k: repr(v) for k, v in x.metrics.items()} == {k: repr(v) for k, v in y.metrics.items()}
        assert (x.name, x.experiment, x.start_time, x.status, x.model, x.judge, x.rows, x.params, x.tags) == (
            y.name, y.experiment, y.start_time, y.status, y.model, y.judge, y.rows, y.params, y.tags)


_MLFLOW_CLIENT = core.runs._client


def no_mlflow_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """MlflowClient made unusable: what follows must be answered by Proctor's own reader, not a silent fallback."""
    def refuse() -> None:
        raise AssertionError("MlflowClient was used")

    monkeypatch.setattr(core.runs, "_client", refuse)


def via_mlflow_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proctor's own readers switched off: what follows is MlflowClient's answer."""
    monkeypatch.setattr(core.runs, "_client", _MLFLOW_CLIENT)
    monkeypatch.setattr(core.runs, "_fast_store", lambda: None)


def assert_opens_like_mlflow_client(run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening the run on a server: Proctor's REST reader alone fetches its 5 result rows through the artifact
    proxy, and says what MlflowClient says of it."""
    from core.runs import load_run

    no_mlflow_client(monkeypatch)
    fast = load_run(run_id)
    assert fast.results_source == "artifact" and len(fast.rows) == 5
    via_mlflow_client(monkeypatch)
    slow = load_run(run_id)
    assert_same_infos([fast.info], [slow.info])
    assert (fast.columns, fast.rows, fast.results_source) == (slow.columns, slow.rows, slow.results_source)
