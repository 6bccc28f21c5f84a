"""Evaluation runs read back from MLflow: list them, open one, compare two, and gate CI on a regression.

Everything here reads what `proctor evaluate` logs (see the shared contract in core/evaluation.py): params such as
`model_uri` and `judge`, tags `proctor.*`, metrics such as `accuracy` and `correctness/mean`, and the per-row table
`results/results.csv`. Runs logged by other tools are listed too; what they lack is shown as blank.

A run is named by its full id, a unique prefix of its id, or its run name (the latest run of that name wins).
Every bad reference is a one-line `InputError`.

mlflow (about 3 s) and pandas (about 1 s) are imported inside the functions that need them: importing this module
stays cheap, so the app can import it on the UI thread and call it from a worker. For the default store, a local
sqlite file, runs are listed, opened and compared without mlflow, pandas or scipy (core.sqlite_runs reads the
store read-only, core.csvio.read_rows the results CSV, core.stats computes with the standard library: tens of
milliseconds); for an `mlflow server` (http/https), core.rest_runs asks its REST API and artifact proxy the same
questions with the standard library. MLflow's client is the fallback for every other store and for what those
readers cannot answer (a results CSV neither on the local disk nor served, rows rebuilt from traces, settings such
as an MLFLOW_TRACKING_AUTH plugin, an answer that is not MLflow's).

Direction of metrics (used by `--fail-if-worse`): lower is better for latencies (`latency*`), counts of failures
(`*errors`, `*error*`), token counts (`*_tokens`) and costs (`*cost_usd`); higher is better for everything else
(`accuracy`, `<scorer>/mean`, `judge_human_agreement`, `judge_human_kappa`, ...).

How sure: every share carries its 95% Wilson interval (logged by evaluate as `<share>_ci_low`/`_ci_high`, or
computed from `rows` for the accuracy of older runs), and a comparison is paired on the questions both runs
answered (core.stats): accuracy and each per-row right/wrong scorer get the exact McNemar test and a paired interval,
latency a paired t interval. A run is called better only where that test is significant at 5%, never on a count.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from core.errors import InputError
from core.rest_runs import RestRuns, open_server
from core.safety import mask_url, one_line
from core.sqlite_runs import RawRun, SqliteRuns, StoreUnreadable, local_artifact, open_store
from core.stats import (
    PairedMeans,
    PairedShares,
    Share,
    format_p,
    interval_metric_names,
    is_interval_metric,
    is_share_metric,
    latency_sentence,
    paired_means,
    paired_shares,
    share_from_mean,
    shares_sentence,
)

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_EXPERIMENT = "proctor"
RESULTS_ARTIFACT = "results/results.csv"

# The metrics a listing shows, in this order, with short column titles.
MAIN_METRICS: dict[str, str] = {
    "accuracy": "ACCURACY",
    "correctness/mean": "CORRECT",
    "exact_match/mean": "EXACT",
    "contains_reference/mean": "CONTAINS",
    "latency_mean_s": "LAT_S",
    "judge_errors": "J_ERR",
    "answer_errors": "A_ERR",
    # After human verdicts are synced (core.feedback): the human's accuracy and the judge's kappa with the human.
    "human/graded": "H_N",
    "human/accuracy": "HUMAN",
    "judge_human/kappa": "KAPPA",
}

_HEX_ID = re.compile(r"^[0-9a-f]{32}$")
_TRUE = {"correct", "true", "yes", "1", "1.0", "pass", "right", "y"}
_FALSE = {"incorrect", "false", "no", "0", "0.0", "fail", "wrong", "n"}


def experiment_name(name: str | None = None) -> str:
    """The experiment to read: `name`, else PROCTOR_EXPERIMENT, else "proctor" (the same rule as evaluate)."""
    return (name or os.environ.get("PROCTOR_EXPERIMENT", "").strip() or DEFAULT_EXPERIMENT).strip()


def lower_is_better(metric: str) -> bool:
    """True for latencies, error counts and token counts; False (higher is better) for every other metric."""
    name = metric.lower()
    return "latency" in name or "error" in name or name.endswith("_tokens") or name.endswith("cost_usd")


@dataclass
class RunInfo:
    """One run as a listing shows it. `start_time` is local time; `rows` comes from the `rows` metric or param."""

    run_id: str
    name: str
    experiment: str
    start_time: datetime | None
    status: str
    model: str
    judge: str
    rows: int | None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.run_id[:8]

    @property
    def date(self) -> str:
        return self.start_time.strftime("%Y-%m-%d %H:%M") if self.start_time else ""

    @property
    def main_metrics(self) -> dict[str, float]:
        return {name: self.metrics[name] for name in MAIN_METRICS if name in self.metrics}

    @property
    def dataset(self) -> str:
        return self.params.get("dataset_name") or self.tags.get("proctor.dataset", "")

    def interval(self, name: str) -> tuple[float, float] | None:
        """The 95% Wilson interval of the share `name`: as logged by evaluate, else (accuracy over all rows, in
        runs logged before intervals were) from the share and `rows`; None when it cannot be known."""
        low_name, high_name = interval_metric_names(name)
        low, high = self.metrics.get(low_name), self.metrics.get(high_name)
        if low is not None and high is not None and not (math.isnan(low) or math.isnan(high)):
            return low, high
        value = self.metrics.get(name)
        if name == "accuracy" and value is not None and not math.isnan(value) and self.rows:
            found: Share = share_from_mean(value, self.rows)
            if found.low is not None and found.high is not None:
                return found.low, found.high
        return None

    @property
    def shares(self) -> dict[str, dict[str, float | None]]:
        """Every share this run logged with its interval: {name: {share, ci_low, ci_high}} (None where unknown)."""
        out: dict[str, dict[str, float | None]] = {}
        for name in _metric_order({m for m in self.metrics if is_share_metric(m)}):
            interval = self.interval(name)
            out[name] = {"share": _json_number(self.metrics[name]), "ci_low": interval[0] if interval else None,
                         "ci_high": interval[1] if interval else None}
        return out

    @property
    def cost_usd(self) -> float | None:
        """What the model's answers cost (None: unknown price, or not logged)."""
        return _json_number(self.metrics.get("cost_usd"))

    @property
    def judge_cost_usd(self) -> float | None:
        """What the judge's verdicts cost, where the judge reported its token usage (else None: unknown)."""
        return _json_number(self.metrics.get("judge_cost_usd"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the start time as ISO 8601, metrics as numbers (NaN as null), every share with its
        interval (`shares`), and the costs (null when unknown, never 0)."""
        data = asdict(self)
        data["start_time"] = self.start_time.isoformat() if self.start_time else None
        data["metrics"] = {k: _json_number(v) for k, v in self.metrics.items()}
        data["main_metrics"] = {k: _json_number(v) for k, v in self.main_metrics.items()}
        data["shares"] = self.shares
        data["cost_usd"] = self.cost_usd
        data["judge_cost_usd"] = self.judge_cost_usd
        return data


@dataclass
class RunDetail:
    """One run opened: its summary plus the per-row results (`rows` is empty when nothing was logged).

    `columns` and `rows` are the results table as strings (one dict per row, keys in column order), read without
    pandas; `results` is the same table as a DataFrame, built on first use. `results_source` says where the rows
    came from: "artifact" (results/results.csv), "traces" (the judge's assessments on MLflow traces, when the
    artifact is missing) or "" (none found).
    """

    info: RunInfo
    columns: list[str]
    rows: list[dict[str, str]]
    results_source: str = ""

    @cached_property
    def results(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns, dtype=str)

    def to_dict(self) -> dict[str, Any]:
        data = self.info.to_dict()
        data["results_source"] = self.results_source
        data["results"] = [dict(row) for row in self.rows]
        return data


def _json_number(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return None
    return value


def store_missing() -> bool:
    """True when the tracking store is a sqlite file that does not exist yet: nothing was ever logged there.

    Checked before touching MLflow, because opening a missing sqlite store creates it (a 9 s migration) just to
    report that it is empty.
    """
    from core.tracking import tracking_uri

    uri = tracking_uri()
    if not uri.startswith("sqlite:///"):
        return False
    path = uri[len("sqlite:///"):]
    return path not in ("", ":memory:") and not os.path.exists(path)


def _client():
    from core.store import check_store
    from core.tracking import configure_mlflow

    uri = configure_mlflow()
    # A dead server, a foreign or corrupt SQLite file: one line in seconds, not MLflow's retries for minutes or
    # its tables added to someone else's database.
    check_store(writable=False, quick=True)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _where() -> str:
    from core.tracking import tracking_uri

    return mask_url(tracking_uri())


def _run_info(run: Any, experiment: str) -> RunInfo:
    data, info = run.data, run.info
    return _make_info(info.run_id, info.run_name, info.start_time, info.status, dict(data.params), dict(data.tags),
                      dict(data.metrics), experiment)


def _raw_info(run: RawRun, experiment: str) -> RunInfo:
    return _make_info(run.run_id, run.name, run.start_time, run.status, run.params, run.tags, run.metrics,
                      experiment)


def _make_info(run_id: str, run_name: str | None, start_time: int | None, status: str, params: dict[str, str],
               tags: dict[str, str], raw_metrics: dict[str, float], experiment: str) -> RunInfo:
    metrics = {k: float(v) for k, v in raw_metrics.items()}
    # Runs logged before URLs were masked may hold credentials in a param (base_url): never show them.
    params = {k: mask_url(v) if "://" in v else v for k, v in params.items()}
    tags = {k: mask_url(v) if "://" in v else v for k, v in tags.items()}
    rows: int | None = None
    raw_rows = metrics.get("rows", params.get("dataset_rows"))
    try:
        rows = int(float(raw_rows)) if raw_rows not in (None, "") else None
    except (TypeError, ValueError):
        rows = None
    start = datetime.fromtimestamp(start_time / 1000) if start_time else None
    return RunInfo(
        run_id=run_id,
        name=run_name or tags.get("mlflow.runName", ""),
        experiment=experiment,
        start_time=start,
        status=status,
        model=params.get("model_uri") or tags.get("proctor.model", ""),
        judge=params.get("judge") or tags.get("proctor.judge", ""),
        rows=rows,
        metrics=metrics,
        params=params,
        tags={k: v for k, v in tags.items() if not k.startswith("mlflow.")},
    )


def _fast_store() -> SqliteRuns | RestRuns | None:
    """The mlflow-free reader of the store in force: a local sqlite file (core.sqlite_runs) or an `mlflow server`
    read over its REST API (core.rest_runs); None when MLflow's client must be used.

    A server that does not answer /health gets the store check's one-line error (core.store), as through MLflow.
    """
    from core.tracking import tracking_uri

    uri = tracking_uri()
    try:
        reader: SqliteRuns | RestRuns | None = open_store(uri)
    except StoreUnreadable:
        return None
    if reader is None:
        reader = open_server(uri)
        if reader is not None:
            from core.store import CHECK_TIMEOUT_S, check_store

            if not reader.answers(CHECK_TIMEOUT_S):
                check_store(writable=False, quick=True)  # raises, naming what is wrong (refused, no answer...)
    return reader


def _search(client: Any, experiment_ids: list[str], names: dict[str, str]) -> list[RunInfo]:
    from mlflow.entities import ViewType

    found: list[RunInfo] = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
                                  order_by=["attributes.start_time DESC"], page_token=token)
        found.extend(_run_info(run, names.get(run.info.experiment_id, "")) for run in page)
        token = page.token
        if not token:
            return found


def list_runs(experiment: str | None = None) -> list[RunInfo]:
    """The runs of one experiment (default: PROCTOR_EXPERIMENT, else "proctor"), newest first.

    An experiment named explicitly that does not exist is an `InputError`; the default one missing just means no
    evaluation has been logged yet, so the list is empty.
    """
    name = experiment_name(experiment)
    if store_missing():
        if experiment:
            raise InputError(f"no experiment named {name!r} (nothing has been logged yet in {_where()})")
        return []
    fast = _fast_store()
    if fast is not None:
        try:
            return _list_fast(fast, name, experiment)
        except StoreUnreadable:
            pass
    client = _client()
    found = client.get_experiment_by_name(name)
    if found is None:
        if experiment:
            known = sorted(e.name for e in client.search_experiments())
            hint = f" (experiments: {', '.join(known)})" if known else " (no experiments yet)"
            raise InputError(f"no experiment named {name!r}{hint}")
        return []
    return _search(client, [found.experiment_id], {found.experiment_id: found.name})


def _list_fast(fast: SqliteRuns | RestRuns, name: str, experiment: str | None) -> list[RunInfo]:
    found = fast.experiment_by_name(name)
    if found is None:
        if experiment:
            known = sorted(e.name for e in fast.active_experiments())
            hint = f" (experiments: {', '.join(known)})" if known else " (no experiments yet)"
            raise InputError(f"no experiment named {name!r}{hint}")
        return []
    return [_raw_info(run, found.name) for run in fast.runs([found.experiment_id])]


def resolve_run(ref: str, client: Any = None) -> RunInfo:
    """The run `ref` names: a full run id, a unique id prefix, or a run name (the latest run of that name).

    Searches every active experiment. Raises `InputError` when nothing matches or a prefix is ambiguous.
    """
    ref = (ref or "").strip()
    if not ref:
        raise InputError("no run given: name a run by id, id prefix or run name (`proctor runs` lists them)")
    if client is None and store_missing():
        raise InputError(f"no run matches {ref!r}: nothing has been logged yet in {_where()}")
    if client is None:
        fast = _fast_store()
        if fast is not None:
            try:
                return _resolve_fast(fast, ref)
            except StoreUnreadable:
                pass
    client = client or _client()
    if _HEX_ID.match(ref.lower()):
        from mlflow.exceptions import MlflowException

        try:
            run = client.get_run(ref.lower())
        except MlflowException:
            run = None
        if run is not None:
            experiment = client.get_experiment(run.info.experiment_id)
            return _run_info(run, experiment.name if experiment else "")
    experiments = client.search_experiments()
    runs = _search(client, [e.experiment_id for e in experiments], {e.experiment_id: e.name for e in experiments})
    return _match(ref, runs)


def _resolve_fast(fast: SqliteRuns | RestRuns, ref: str) -> RunInfo:
    """`resolve_run` on an mlflow-free reader: the same rules, the same answers, without mlflow."""
    if _HEX_ID.match(ref.lower()):
        raw = fast.run(ref.lower())
        if raw is not None:
            return _raw_info(raw, fast.experiment_name(raw.experiment_id))
    experiments = fast.active_experiments()
    names = {e.experiment_id: e.name for e in experiments}
    # A server is asked for the runs `ref` may name; a local file is read whole (milliseconds).
    found = fast.candidates(ref, list(names)) if isinstance(fast, RestRuns) else fast.runs(list(names))
    return _match(ref, [_raw_info(r, names.get(r.experiment_id, "")) for r in found])


def _match(ref: str, runs: list[RunInfo]) -> RunInfo:
    """The run `ref` names among `runs` (newest first): a unique id prefix, else the newest run of that name."""
    by_prefix = [r for r in runs if r.run_id.startswith(ref.lower())]
    if len(by_prefix) == 1:
        return by_prefix[0]
    by_name = [r for r in runs if r.name == ref]
    if by_name:
        return by_name[0]  # newest first
    if len(by_prefix) > 1:
        shown = ", ".join(r.run_id[: max(len(ref) + 4, 12)] for r in by_prefix[:4])
        raise InputError(f"run {ref!r} is ambiguous: {len(by_prefix)} run ids start with it ({shown}…)")
    raise InputError(f"no run matches {ref!r}: give a run id, a unique id prefix or a run name "
                     "(`proctor runs` lists them)")


def load_run(ref: str) -> RunDetail:
    """Open one run: its params, metrics and tags, and its per-row results.

    The rows come from the `results/results.csv` artifact; when a run has none, from the judge's assessments on
    the run's MLflow traces; otherwise the table is empty. For a local sqlite store whose results CSV is on the
    local disk, or an `mlflow server` that serves it (the common cases), neither mlflow nor pandas is imported.
    """
    if store_missing():
        resolve_run(ref)  # raises the "nothing logged yet" error
    info: RunInfo | None = None
    fast = _fast_store()
    if fast is not None:
        try:
            info = _resolve_fast(fast, ref)
            table = _fast_results(fast, info.run_id)
            if table is not None:
                return RunDetail(info, *table, "artifact")
        except StoreUnreadable:
            info = None
    client = _client()
    info = info or resolve_run(ref, client)
    results = _results_from_artifact(client, info.run_id)
    if results is not None:
        return RunDetail(info, *_frame_rows(results), "artifact")
    results = _results_from_traces(client, info.run_id)
    if results is not None:
        return RunDetail(info, *_frame_rows(results), "traces")
    return RunDetail(info, ["row", "question", "reference", "llm_answer", "judge_verdict", "judge_rationale"], [], "")


def _fast_results(fast: SqliteRuns | RestRuns, run_id: str) -> tuple[list[str], list[dict[str, str]]] | None:
    """The run's results table read without mlflow: the local file a sqlite store points at, or the copy an
    `mlflow server` serves; None when neither reader can get it (MLflow's client then tries)."""
    if isinstance(fast, RestRuns):
        with tempfile.TemporaryDirectory(prefix="proctor-run-") as tmp:
            local = os.path.join(tmp, "results.csv")
            return _read_results(local) if fast.download_artifact(run_id, RESULTS_ARTIFACT, local) else None
    raw = fast.run(run_id)
    local = local_artifact(raw.artifact_uri, RESULTS_ARTIFACT) if raw is not None else None
    return _read_results(local) if local is not None and local.is_file() else None


def _frame_rows(frame: pd.DataFrame) -> tuple[list[str], list[dict[str, str]]]:
    """A results DataFrame as `RunDetail` keeps it: its columns, and one dict of strings per row."""
    return [str(c) for c in frame.columns], frame.fillna("").astype(str).to_dict(orient="records")


def delete_run(ref: str) -> RunInfo:
    """Delete the run `ref` names (id, unique id prefix or name) the MLflow way, and return what it was.

    MLflow only marks the run deleted (lifecycle stage "deleted"): it leaves every listing, and `restore_run`
    (or `mlflow runs restore --run-id ID`) brings it back until `mlflow gc` purges the store.
    """
    if store_missing():
        resolve_run(ref)  # raises the "nothing logged yet" error
    client = _client()
    info = resolve_run(ref, client)
    client.delete_run(info.run_id)
    return info


def restore_run(run_id: str) -> None:
    """Bring back a run deleted by `delete_run` (its full id: a deleted run is in no listing to match a prefix)."""
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        client.restore_run(run_id)
    except MlflowException as error:
        raise InputError(f"run {run_id!r} cannot be restored: {error.message}") from None


def _results_from_artifact(client: Any, run_id: str) -> pd.DataFrame | None:
    from mlflow.exceptions import MlflowException

    folder, _, name = RESULTS_ARTIFACT.rpartition("/")
    try:
        listed = {f.path for f in client.list_artifacts(run_id, folder)}
    except (MlflowException, OSError):
        return None
    if RESULTS_ARTIFACT not in listed:
        return None
    with tempfile.TemporaryDirectory(prefix="proctor-run-") as tmp:
        try:
            local = client.download_artifacts(run_id, RESULTS_ARTIFACT, dst_path=tmp)
        except (MlflowException, OSError):
            return None
        return _read_results_frame(local)


def _read_results(local: str | os.PathLike[str]) -> tuple[list[str], list[dict[str, str]]] | None:
    """A local results CSV as (columns, rows), without pandas; a `row` column (1, 2, ...) added when it has none."""
    from core.csvio import read_rows

    try:
        read = read_rows(local)
    except (InputError, OSError):
        return None
    columns, rows = read.columns, read.rows
    if "row" not in columns:
        columns = ["row", *columns]
        rows = [[str(i), *row] for i, row in enumerate(rows, start=1)]
    return columns, [dict(zip(columns, row, strict=True)) for row in rows]


def _read_results_frame(local: str | os.PathLike[str]) -> pd.DataFrame | None:
    """`_read_results` as a DataFrame of strings (for the callers that work on one)."""
    import pandas as pd

    table = _read_results(local)
    return None if table is None else pd.DataFrame(table[1], columns=table[0], dtype=str)


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _first_text(value: Any, keys: tuple[str, ...]) -> str:
    if isinstance(value, dict):
        for key in keys:
            if key in value:
                return _first_text(value[key], keys)
        return str(next(iter(value.values()), "")) if len(value) == 1 else json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def _results_from_traces(client: Any, run_id: str) -> pd.DataFrame | None:
    """Rebuild a results table from the traces `mlflow.genai.evaluate` logged (one per row, with assessments)."""
    import mlflow
    import pandas as pd

    run = client.get_run(run_id)
    try:
        traces = mlflow.search_traces(locations=[run.info.experiment_id], run_id=run_id, return_type="list")
    except Exception:  # noqa: BLE001 - traces are a best-effort fallback: any failure means "no rows"
        return None
    if not traces:
        return None
    traces = sorted(traces, key=lambda t: getattr(t.info, "request_time", 0) or 0)
    rows = []
    for number, trace in enumerate(traces, start=1):
        inputs = _loads(trace.data.request)
        outputs = _loads(trace.data.response)
        row = {"row": str(number), "question": _first_text(inputs, ("question", "inputs", "query", "prompt")),
               "reference": "", "llm_answer": _first_text(outputs, ("response", "outputs", "answer")),
               "judge_verdict": "", "judge_rationale": "", "judge_error": ""}
        for assessment in trace.info.assessments or []:
            value = getattr(assessment, "value", None)
            if assessment.name in ("expected_response", "expected_facts"):
                row["reference"] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            elif assessment.name == "correctness":
                verdict = parse_verdict(value)
                row["judge_verdict"] = "" if verdict is None else ("correct" if verdict else "incorrect")
                row["judge_rationale"] = assessment.rationale or ""
                error = getattr(assessment, "error", None)
                row["judge_error"] = (getattr(error, "error_message", None) or "") if error else ""
        rows.append(row)
    return pd.DataFrame(rows, dtype=str)


def parse_verdict(value: Any) -> bool | None:
    """`correct`/`yes`/`true`/1 -> True, `incorrect`/`no`/`false`/0 -> False, anything else (empty) -> None."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


# -- comparison

@dataclass
class MetricDelta:
    """One metric in both runs. `delta` is B - A. `better` is "a" or "b" only when a paired test on the questions
    both runs answered finds the difference significant at 5% (accuracy, `<scorer>/mean`, `latency_mean_s`), else
    "": never for counts (rows, errors, tokens) or metrics without a per-question test. `a_ci`/`b_ci`: the 95%
    Wilson intervals of a share; `p_value`: the paired test's."""

    name: str
    a: float | None
    b: float | None
    delta: float | None
    better: str
    lower_is_better: bool
    a_ci: tuple[float, float] | None = None
    b_ci: tuple[float, float] | None = None
    p_value: float | None = None


@dataclass
class RowDiff:
    """One question both runs answered, with different verdicts."""

    question: str
    reference: str
    row_a: str
    row_b: str
    answer_a: str
    answer_b: str
    verdict_a: str
    verdict_b: str
    rationale_a: str
    rationale_b: str


@dataclass
class Comparison:
    """Run B against run A (A is the baseline). `basis` names the verdict column the rows were compared on.

    `paired`: accuracy on the matched questions (exact McNemar, paired interval, MDE); `paired_latency`: the
    per-question latencies; `paired_metrics`: every share with a per-row right/wrong in both runs, accuracy
    included, by metric name. None / missing where the runs have no per-row results to pair.
    """

    a: RunInfo
    b: RunInfo
    metrics: list[MetricDelta]
    a_right_b_wrong: list[RowDiff]
    b_right_a_wrong: list[RowDiff]
    matched_rows: int
    unmatched_a: int
    unmatched_b: int
    basis: str
    warnings: list[str]
    paired: PairedShares | None = None
    paired_latency: PairedMeans | None = None
    paired_metrics: dict[str, PairedShares] = field(default_factory=dict)

    def metric(self, name: str) -> MetricDelta | None:
        return next((m for m in self.metrics if m.name == name), None)

    def paired_test(self, name: str) -> PairedShares | PairedMeans | None:
        """The paired test behind metric `name`, if there is one."""
        if name == "latency_mean_s":
            return self.paired_latency
        return self.paired_metrics.get(name)

    @property
    def sentences(self) -> list[str]:
        """Plain sentences: accuracy, each other paired share that differs from it, then latency."""
        out = []
        counts = (self.paired.n, self.paired.a_only, self.paired.b_only) if self.paired is not None else None
        for name, test in self.paired_metrics.items():
            if name != "accuracy" and (test.n, test.a_only, test.b_only) == counts:
                continue  # the same questions as accuracy's: the same sentence would only repeat it
            out.append(shares_sentence(test, "" if name == "accuracy" else _metric_label(name)))
        if self.paired_latency is not None:
            out.append(latency_sentence(self.paired_latency))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.to_dict(), "b": self.b.to_dict(),
            "metrics": [{**asdict(m), "a": _json_number(m.a), "b": _json_number(m.b),
                         "delta": _json_number(m.delta), "a_ci": list(m.a_ci) if m.a_ci else None,
                         "b_ci": list(m.b_ci) if m.b_ci else None} for m in self.metrics],
            "paired": self.paired.to_dict() if self.paired is not None else None,
            "paired_latency": self.paired_latency.to_dict() if self.paired_latency is not None else None,
            "paired_metrics": {name: test.to_dict() for name, test in self.paired_metrics.items()},
            "sentences": self.sentences,
            "a_right_b_wrong": [asdict(r) for r in self.a_right_b_wrong],
            "b_right_a_wrong": [asdict(r) for r in self.b_right_a_wrong],
            "matched_rows": self.matched_rows, "unmatched_a": self.unmatched_a, "unmatched_b": self.unmatched_b,
            "basis": self.basis, "warnings": list(self.warnings),
        }


def _metric_label(name: str) -> str:
    return name[: -len("/mean")].replace("_", " ") if name.endswith("/mean") else name.replace("_", " ")


def _metric_order(names: set[str]) -> list[str]:
    first = [n for n in MAIN_METRICS if n in names]
    return first + sorted(names - set(first))


def _metric_deltas(a: RunInfo, b: RunInfo) -> list[MetricDelta]:
    """Every metric of either run with B - A; the interval bounds go beside their share, not in the list. No side
    is called better here: only a paired test may say so (`_apply_paired`)."""
    deltas = []
    for name in _metric_order({m for m in set(a.metrics) | set(b.metrics) if not is_interval_metric(m)}):
        va, vb = a.metrics.get(name), b.metrics.get(name)
        delta = vb - va if va is not None and vb is not None else None
        share_metric = is_share_metric(name)
        deltas.append(MetricDelta(name, va, vb, delta, "", lower_is_better(name),
                                  a.interval(name) if share_metric else None,
                                  b.interval(name) if share_metric else None))
    return deltas


# Per-row columns of a results table that say right/wrong for a share metric.
_SHARE_COLUMNS = {"correctness/mean": "judge_verdict", "exact_match/mean": "exact_match",
                  "contains_reference/mean": "contains_reference"}


def _accuracy_column(detail: RunDetail) -> str | None:
    """The column `accuracy` was computed from (evaluate tags it), else the best verdict column there is."""
    source = {"correctness": "judge_verdict", "exact_match": "exact_match"}.get(
        detail.info.tags.get("proctor.accuracy_from", ""))
    if source and source in detail.columns:
        return source
    return _verdict_column(detail)


def _float_cell(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _paired(detail_a: RunDetail, detail_b: RunDetail, common: list[tuple[str, int]],
            keyed_a: dict[tuple[str, int], dict[str, str]], keyed_b: dict[tuple[str, int], dict[str, str]]
            ) -> tuple[dict[str, PairedShares], PairedMeans | None]:
    """The paired tests on the matched questions: accuracy (every matched question; no verdict counts as wrong,
    as in the metric), each per-row share (questions with a result in both runs, as in its mean), and latency."""
    a, b = detail_a.info, detail_b.info
    tests: dict[str, PairedShares] = {}
    if not common:
        return tests, None
    column_a, column_b = _accuracy_column(detail_a), _accuracy_column(detail_b)
    if column_a and column_b and "accuracy" in a.metrics and "accuracy" in b.metrics:
        tests["accuracy"] = paired_shares([parse_verdict(keyed_a[k].get(column_a)) is True for k in common],
                                          [parse_verdict(keyed_b[k].get(column_b)) is True for k in common])
    names = [n for n in _metric_order(set(a.metrics) & set(b.metrics)) if n.endswith("/mean")]
    for name in names:
        column = _SHARE_COLUMNS.get(name, name[: -len("/mean")])
        if column not in detail_a.columns or column not in detail_b.columns:
            continue
        pairs = [(parse_verdict(keyed_a[k].get(column)), parse_verdict(keyed_b[k].get(column))) for k in common]
        pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
        tests[name] = paired_shares([x for x, _ in pairs], [y for _, y in pairs])
    latency = None
    if "latency_s" in detail_a.columns and "latency_s" in detail_b.columns:
        pairs_f = [(_float_cell(keyed_a[k].get("latency_s", "")), _float_cell(keyed_b[k].get("latency_s", "")))
                   for k in common if not keyed_a[k].get("answer_error") and not keyed_b[k].get("answer_error")]
        pairs_f = [(x, y) for x, y in pairs_f if x is not None and y is not None]
        if pairs_f:
            latency = paired_means([x for x, _ in pairs_f], [y for _, y in pairs_f])
    return tests, latency


def _apply_paired(deltas: list[MetricDelta], tests: dict[str, PairedShares], latency: PairedMeans | None) -> None:
    for delta in deltas:
        test: PairedShares | PairedMeans | None = latency if delta.name == "latency_mean_s" else tests.get(delta.name)
        if test is not None:
            delta.p_value = test.p_value
            delta.better = test.better


def _verdict_column(detail: RunDetail) -> str | None:
    """The column that says right or wrong: the judge's, else a human's, else contains/exact match."""
    for column in ("judge_verdict", "human_verdict", "contains_reference", "exact_match"):
        if column in detail.columns and any(parse_verdict(row.get(column)) is not None for row in detail.rows):
            return column
    return None


def _keyed_rows(detail: RunDetail) -> dict[tuple[str, int], dict[str, str]]:
    # Rows are matched on the question text; a question asked twice is matched in row order (its occurrence).
    seen: dict[str, int] = defaultdict(int)
    keyed = {}
    for record in detail.rows:
        text = " ".join(record.get("question", "").split()).casefold()
        keyed[(text, seen[text])] = record
        seen[text] += 1
    return keyed


def compare_runs(ref_a: str, ref_b: str) -> Comparison:
    """Compare run B with run A: metrics side by side (delta = B - A), and the questions whose verdicts differ.

    Rows are matched by question text (repeated questions in row order). Warnings say when the two runs were
    judged by different judges, on different datasets, or are the same run.
    """
    detail_a, detail_b = load_run(ref_a), load_run(ref_b)
    a, b = detail_a.info, detail_b.info
    warnings: list[str] = []
    if a.run_id == b.run_id:
        warnings.append("both references name the same run")
    if a.judge != b.judge:
        warnings.append(f"the runs were judged by different judges ({a.judge or 'none'} vs {b.judge or 'none'}): "
                        "their verdicts may not be comparable")
    hash_a, hash_b = a.params.get("dataset_hash", ""), b.params.get("dataset_hash", "")
    if hash_a and hash_b and hash_a != hash_b:
        warnings.append(f"the runs used different datasets (hash {hash_a[:12]} vs {hash_b[:12]})")

    column_a, column_b = _verdict_column(detail_a), _verdict_column(detail_b)
    keyed_a, keyed_b = _keyed_rows(detail_a), _keyed_rows(detail_b)
    common = [key for key in keyed_a if key in keyed_b]
    a_only: list[RowDiff] = []
    b_only: list[RowDiff] = []
    if column_a and column_b:
        if column_a != column_b:
            warnings.append(f"verdicts compared on different columns ({column_a} vs {column_b})")
        for key in common:
            ra, rb = keyed_a[key], keyed_b[key]
            va, vb = parse_verdict(ra.get(column_a)), parse_verdict(rb.get(column_b))
            if va is None or vb is None or va == vb:
                continue
            diff = RowDiff(
                question=ra.get("question", ""), reference=ra.get("reference", "") or rb.get("reference", ""),
                row_a=ra.get("row", ""), row_b=rb.get("row", ""),
                answer_a=ra.get("llm_answer", ""), answer_b=rb.get("llm_answer", ""),
                verdict_a=ra.get(column_a, ""), verdict_b=rb.get(column_b, ""),
                rationale_a=ra.get("judge_rationale", ""), rationale_b=rb.get("judge_rationale", ""),
            )
            (a_only if va else b_only).append(diff)
    elif detail_a.rows or detail_b.rows:
        warnings.append("no verdicts to compare row by row (no judge, human or match column in both runs)")
    if not detail_a.rows and not detail_b.rows:
        warnings.append("neither run has per-row results")
    unmatched_a, unmatched_b = len(keyed_a) - len(common), len(keyed_b) - len(common)
    if common and (unmatched_a or unmatched_b):
        warnings.append(f"{unmatched_a} question(s) only in A and {unmatched_b} only in B were not compared")
    basis = column_a if column_a == column_b else f"{column_a or '-'}/{column_b or '-'}"
    deltas = _metric_deltas(a, b)
    tests, latency = _paired(detail_a, detail_b, common, keyed_a, keyed_b)
    _apply_paired(deltas, tests, latency)
    return Comparison(a, b, deltas, a_only, b_only, len(common), unmatched_a, unmatched_b, basis or "", warnings,
                      tests.get("accuracy"), latency, tests)


# -- CI gate

@dataclass(frozen=True)
class FailIfWorse:
    """`--fail-if-worse METRIC:TOLERANCE`: B may be worse than A on METRIC by at most TOLERANCE (absolute)."""

    metric: str
    tolerance: float


def parse_fail_if_worse(text: str) -> FailIfWorse:
    """`"accuracy:0.02"` -> FailIfWorse("accuracy", 0.02). Metric names may hold `/` (`correctness/mean:0`)."""
    metric, sep, raw = (text or "").strip().rpartition(":")
    metric = metric.strip()
    if not sep or not metric or not raw.strip():
        raise InputError(f"--fail-if-worse wants METRIC:TOLERANCE (e.g. accuracy:0.02), not {text!r}")
    try:
        tolerance = float(raw)
    except ValueError:
        raise InputError(f"--fail-if-worse tolerance must be a number, not {raw.strip()!r}") from None
    if tolerance < 0 or math.isnan(tolerance) or math.isinf(tolerance):
        raise InputError(f"--fail-if-worse tolerance must be zero or more, not {raw.strip()!r}")
    return FailIfWorse(metric, tolerance)


def check_fail_if_worse(comparison: Comparison, rules: list[FailIfWorse], significant: bool = False) -> list[str]:
    """One message per regression (B worse than A by more than the tolerance); empty when B is good enough.

    With `significant`, a rule fails only when B is worse by more than the tolerance AND the paired test on the
    matched questions finds B worse at 5% (available for accuracy, `<scorer>/mean` and latency_mean_s).

    Raises `InputError` when a run lacks the metric, or (with `significant`) when the metric has no paired test:
    a gate that cannot check what it says must not pass silently.
    """
    failures = []
    for rule in rules:
        found = comparison.metric(rule.metric)
        if found is None or found.a is None or found.b is None:
            missing = [label for label, run, value in (("A", comparison.a, found and found.a),
                                                       ("B", comparison.b, found and found.b)) if value is None]
            known = ", ".join(_metric_order({m for m in set(comparison.a.metrics) | set(comparison.b.metrics)
                                             if not is_interval_metric(m)})) or "none"
            raise InputError(f"metric {rule.metric!r} is not logged in run {' and '.join(missing)} "
                             f"(metrics: {known})")
        test = comparison.paired_test(rule.metric) if significant else None
        if significant and (test is None or test.n == 0):
            paired = ", ".join([*comparison.paired_metrics, *(["latency_mean_s"] if comparison.paired_latency
                                                              else [])]) or "none: no per-row results to pair"
            raise InputError(f"--significant needs a paired test on {rule.metric!r}, and there is none "
                             f"(paired here: {paired})")
        worse_by = (found.b - found.a) if found.lower_is_better else (found.a - found.b)
        if worse_by <= rule.tolerance + 1e-12:
            continue
        direction = "lower" if found.lower_is_better else "higher"
        message = (f"{rule.metric} got worse by {worse_by:.4g}: {found.a:.4g} -> {found.b:.4g} "
                   f"(tolerance {rule.tolerance:g}; {direction} is better")
        if test is not None:
            worse_side = "a" if test.better == "a" else ""
            if not worse_side:
                continue  # worse by more than the tolerance, but not detectably so at 5%
            message += f"; paired test {format_p(test.p_value)}, significant at 5%"
        failures.append(message + ")")
    return failures


# -- plain text output (the CLI's tables; no dependency)

def paired_lines(comparison: Comparison) -> list[str]:
    """The paired comparison in numbers, then the plain sentences (shared by `compare` and multi-model evaluate)."""
    lines = []
    for name, test in comparison.paired_metrics.items():
        if test.n == 0:
            continue
        interval = (f"95% CI {test.ci_low * 100:+.1f} to {test.ci_high * 100:+.1f}" if test.ci_low is not None
                    and test.ci_high is not None else "no interval")
        mde = f"MDE {test.mde * 100:.1f} points" if test.mde is not None else "MDE unknown"
        lines.append(f"  {name}: n {test.n}, A only right {test.a_only}, B only right {test.b_only}, "
                     f"B - A {(test.diff or 0) * 100:+.1f} points ({interval}), McNemar {format_p(test.p_value)}, "
                     f"{mde}")
    latency = comparison.paired_latency
    if latency is not None and latency.n:
        interval = (f"95% CI {latency.ci_low:+.3f} to {latency.ci_high:+.3f} s" if latency.ci_low is not None
                    and latency.ci_high is not None else "no interval")
        mde = f"MDE {latency.mde:.3f} s" if latency.mde is not None else "MDE unknown"
        lines.append(f"  latency: n {latency.n}, B - A {(latency.diff or 0):+.3f} s ({interval}), paired t "
                     f"{format_p(latency.p_value)}, {mde}")
    if lines:
        lines.insert(0, "Paired on the questions both runs answered:")
    sentences = comparison.sentences
    if sentences:
        lines.append("")
        lines.extend(sentences)
    return lines


def text_table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    """An aligned plain-text table; columns whose index is in `right` are right-aligned (numbers)."""
    right = right or set()
    rows = [[one_line(c) for c in row] for row in rows]  # cells come from the store: one printable line each
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: list[str]) -> str:
        parts = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers)] + [line(r) for r in rows])


def format_metric(value: float | None, name: str = "") -> str:
    """A metric as a short string: counts as integers, rates with 3 decimals, blank when missing."""
    if name.endswith("cost_usd"):
        from core.prices import format_cost

        return format_cost(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if float(value).is_integer() and ("errors" in name or name in ("rows", "human/graded") or
                                      name.endswith("_tokens")):
        return str(int(value))
    return f"{value:.3f}"


def format_share(value: float | None, interval: tuple[float, float] | None) -> str:
    """A share with its 95% interval, `0.850 [0.71-0.93]`; just the value when the interval is unknown."""
    if value is None or math.isnan(value):
        return ""
    if interval is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.2f}-{interval[1]:.2f}]"


def format_delta(value: float | None, name: str = "") -> str:
    """B - A with its sign; counts as whole numbers, "0" when equal, blank when a run lacks the metric."""
    if value is None or math.isnan(value):
        return ""
    if name.endswith("cost_usd") and abs(value) > 1e-12:
        from core.prices import format_cost

        return ("+" if value > 0 else "-") + format_cost(abs(value))
    if abs(value) <= 1e-12:
        return "0"
    if float(value).is_integer() and ("errors" in name or name == "rows" or name.endswith("_tokens")):
        return f"{int(value):+d}"
    return f"{value:+.3f}"
