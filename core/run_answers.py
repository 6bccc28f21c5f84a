"""The rows of one evaluation run as an answers CSV to grade (`proctor grade --run RUN`, the Runs pane's `h`).

The run's own answers file is used when it is here: the path evaluate recorded (tag `proctor.answers_file`) still
holds this run's rows (its `run_id` column names the run). Otherwise the rows come from the run's results artifact
(`results/results.csv`, or the judge's assessments on its traces for a run without one) into a new local CSV named
after the run, `NAME.RUNID8.graded.csv` in the current folder; a second call reopens that file, so grading resumes.

Either way each row carries `run_id` and `trace_id`, so the human's verdicts flow to that run (core.feedback).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from core.runs import RunInfo

ANSWERS_TAG = "proctor.answers_file"
KEEP_FROM_RESULTS = ("question", "reference", "llm_answer", "model", "judge_verdict", "judge_rationale",
                     "judge_error", "exact_match", "contains_reference", "latency_s", "answer_error")


def _holds_run(path: Path, run_id: str) -> bool:
    from core.csvio import read_table

    try:
        frame = read_table(path)
    except InputError:
        return False
    return "run_id" in frame.columns and (frame["run_id"].astype(str).str.strip() == run_id).any()


def local_name(info: RunInfo) -> str:
    """`gpt-4.1-nano.6c4ed52a.graded.csv`: the run's name made safe for a file name, and its short id."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", info.name or "run").strip("-.") or "run"
    return f"{name[:60]}.{info.short_id}.graded.csv"


def answers_for_run(ref: str, folder: Path | None = None) -> tuple[Path, str]:
    """The CSV to grade run `ref` in, and how it was found: `answers` (the run's answers file), `resumed` (a local
    copy made earlier) or `created` (made now from the run's results). Raises `InputError`."""
    from core.runs import _client, _results_from_artifact, _results_from_traces, resolve_run

    client = _client()
    info = resolve_run(ref, client)
    recorded = info.tags.get(ANSWERS_TAG, "")
    if recorded and Path(recorded).is_file() and _holds_run(Path(recorded), info.run_id):
        return Path(recorded), "answers"
    local = (folder or Path.cwd()) / local_name(info)
    if local.is_file() and _holds_run(local, info.run_id):
        return local, "resumed"
    results = _results_from_artifact(client, info.run_id)
    if results is None:
        results = _results_from_traces(client, info.run_id)
    if results is None or not len(results):
        raise InputError(f"run {info.short_id} ({info.name}) has no per-row results to grade")
    frame = _to_answers(results, info, client)
    from core.csvio import write_csv_atomic

    write_csv_atomic(frame, local)
    return local, "created"


def _to_answers(results: pd.DataFrame, info: RunInfo, client: Any) -> pd.DataFrame:
    import pandas as pd

    n = len(results)
    frame = pd.DataFrame({name: results[name].astype(str).tolist() for name in KEEP_FROM_RESULTS
                          if name in results.columns})
    if "llm_answer" not in frame.columns:
        frame["llm_answer"] = [""] * n
    if "question" not in frame.columns:
        raise InputError(f"run {info.short_id} has no question column in its results")
    trace_ids = results["trace_id"].astype(str).tolist() if "trace_id" in results.columns else []
    if not any(t.strip() for t in trace_ids):
        trace_ids = _trace_ids_by_question(client, info, frame["question"].tolist())
    frame["judge"] = [info.judge if info.judge != "none" else ""] * n
    frame["run_id"] = [info.run_id] * n
    frame["trace_id"] = trace_ids
    human = results["human_verdict"].astype(str).tolist() if "human_verdict" in results.columns else [""] * n
    frame["human_verdict"] = human
    frame["human_note"] = [""] * n
    frame["human_synced"] = [""] * n  # what MLflow holds is checked when the verdicts are sent
    return frame


def _trace_ids_by_question(client: Any, info: RunInfo, questions: list[str]) -> list[str]:
    """For a run whose results predate the `trace_id` column: its traces matched to the rows by question text."""
    import mlflow

    from core.runs import _first_text, _loads

    try:
        run = client.get_run(info.run_id)
        traces = mlflow.search_traces(locations=[run.info.experiment_id], run_id=info.run_id, return_type="list")
    except Exception:  # noqa: BLE001 - no traces: the rows can still be graded, just not sent to MLflow
        return [""] * len(questions)
    by_question: dict[str, list[str]] = {}
    for trace in sorted(traces, key=lambda t: getattr(t.info, "request_time", 0) or 0):
        text = _first_text(_loads(trace.data.request), ("question", "inputs", "query", "prompt"))
        by_question.setdefault(" ".join(text.split()), []).append(trace.info.trace_id)
    out = []
    for question in questions:
        ids = by_question.get(" ".join(str(question).split()), [])
        out.append(ids.pop(0) if ids else "")
    return out
