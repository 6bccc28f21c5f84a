"""Human verdicts sent to MLflow as feedback on the evaluation's traces, and the run's judge-vs-human metrics.

A row of an answers CSV that an evaluation judged carries `run_id` and `trace_id` (core.judgements). A human
verdict on such a row is logged on that trace as MLflow feedback:

- name `correctness` (the judge scorer's name, so MLflow's UI shows it beside the judge's verdict and judge
  alignment reads it), value `"yes"`/`"no"` (the judge's own value type: a boolean shows as "null" in the UI),
- source type HUMAN (left out, MLflow would record CODE), source id the grader: `PROCTOR_GRADER`, else the OS user.

A changed verdict overrides the grader's earlier one (MLflow marks it invalid and keeps it); a cleared verdict
deletes the grader's feedback on that trace. The judge's assessment is never touched.

Every push is idempotent: it first reads the trace's assessments and only writes what is missing, so a verdict sent
just before a crash (and not yet marked in the CSV) is not logged twice. That read and the write after it are one
step for the whole process (`_PUSH_LOCK`): a sender being replaced may still have a verdict in flight when its
successor reads the same row as pending, and two unguarded pushes would both see nothing and both log it.

The CSV remembers what MLflow holds in `human_synced` (the verdict last confirmed there for the row's current trace,
empty for none): a row whose `human_verdict` differs is pending. That state is on disk, so pending verdicts survive
kill -9 and are sent on the next open, the next evaluation or `proctor grade FILE --sync`.

`FeedbackSender` is the background sender the Grade pane uses: a thread with a queue, a callback per verdict sent
and per state change; while MLflow is unreachable it keeps the verdicts and tries again every few seconds.
"""

from __future__ import annotations

import getpass
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.agreement import judge_human, run_metrics
from core.grading import VERDICT_COLUMN, normalise_verdict
from core.judgements import SYNC_COLUMN

FEEDBACK_NAME = "correctness"
GRADER_VARIABLE = "PROCTOR_GRADER"
VALUES = {"correct": "yes", "incorrect": "no"}
RETRY_EVERY_S = 5.0
_PUSH_LOCK = threading.Lock()  # see the module docstring: read-then-write must not interleave


def grader_id() -> str:
    """Who is grading: `PROCTOR_GRADER`, else the OS user name."""
    from core.config import load_dotenv_once

    load_dotenv_once()
    named = os.environ.get(GRADER_VARIABLE, "").strip()
    if named:
        return named
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a bare container)
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"


@dataclass(frozen=True)
class Pending:
    """A human verdict ("" to clear) that MLflow does not hold yet, for one row's trace."""

    row: int
    run_id: str
    trace_id: str
    verdict: str


def pending_from(rows: Iterable[tuple[int, str, str, str, str]]) -> list[Pending]:
    """Rows as (row, run_id, trace_id, human_verdict, human_synced) -> the ones MLflow does not hold yet."""
    out = []
    for row, run_id, trace_id, verdict, synced in rows:
        run_id, trace_id = str(run_id).strip(), str(trace_id).strip()
        if not run_id or not trace_id:
            continue
        verdict = normalise_verdict(verdict)
        if verdict != normalise_verdict(synced):
            out.append(Pending(row, run_id, trace_id, verdict))
    return out


def pending_in_frame(frame: Any) -> list[Pending]:
    """The pending verdicts of an answers table (a DataFrame of strings)."""
    if "trace_id" not in frame.columns or "run_id" not in frame.columns:
        return []

    def col(name: str) -> list[str]:
        return frame[name].astype(str).tolist() if name in frame.columns else [""] * len(frame)

    return pending_from(zip(range(len(frame)), col("run_id"), col("trace_id"), col(VERDICT_COLUMN),
                            col(SYNC_COLUMN), strict=True))


def metrics_in_frame(frame: Any, run_id: str) -> dict[str, float]:
    """The judge-vs-human metrics of `run_id`, from the rows of `frame` that belong to it."""
    if "run_id" not in frame.columns:
        return {}
    mine = frame[frame["run_id"].astype(str).str.strip() == run_id]
    human = [normalise_verdict(v) for v in (mine[VERDICT_COLUMN] if VERDICT_COLUMN in mine.columns else [])]
    judge = [normalise_verdict(v) for v in (mine["judge_verdict"] if "judge_verdict" in mine.columns else [])]
    if len(judge) != len(human):
        judge = [""] * len(human)
    return run_metrics(judge_human(human, judge))


class MlflowUnavailable(Exception):
    """MLflow could not be reached (or refused the call): the verdicts stay pending."""


class FeedbackClient:
    """Idempotent writes of human verdicts to one tracking store."""

    def __init__(self, tracking_uri: str | None = None, grader: str | None = None) -> None:
        from core.tracking import configure_mlflow

        self.tracking_uri = tracking_uri or configure_mlflow()
        self.grader = grader or grader_id()
        if self.tracking_uri.split(":", 1)[0].lower() in ("http", "https") and tracking_uri is None:
            # A server that is down: one bounded request (3 s) says so, where MLflow's own client would retry
            # for minutes.
            from core.errors import ProctorError
            from core.store import check_store

            try:
                check_store(writable=True)
            except ProctorError as error:
                raise MlflowUnavailable(str(error)) from None
        try:
            from mlflow.tracing.client import TracingClient
            from mlflow.tracking import MlflowClient

            self._traces = TracingClient(self.tracking_uri)
            self._runs = MlflowClient(self.tracking_uri)
        except Exception as error:  # noqa: BLE001 - a store that cannot open is "unreachable" to the caller
            raise MlflowUnavailable(_first_line(error)) from None

    def _source(self) -> Any:
        from mlflow.entities import AssessmentSource, AssessmentSourceType

        return AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id=self.grader)

    def mine(self, trace_id: str) -> list[Any]:
        """This grader's HUMAN `correctness` feedback on the trace, newest first (valid or overridden)."""
        info = self._traces.get_trace_info(trace_id)
        found = []
        for assessment in info.assessments or []:
            source = getattr(assessment, "source", None)
            if assessment.name != FEEDBACK_NAME or source is None:
                continue
            if str(source.source_type).upper() == "HUMAN" and source.source_id == self.grader:
                found.append(assessment)
        return sorted(found, key=lambda a: getattr(a, "create_time_ms", 0) or 0, reverse=True)

    def push(self, item: Pending) -> str:
        """Make MLflow hold `item.verdict` as this grader's verdict on the trace. Returns what was done:
        `logged`, `overridden`, `deleted` or `already`. Raises `MlflowUnavailable`."""
        try:
            with _PUSH_LOCK:
                return self._push(item)
        except MlflowUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - any store or network failure leaves the verdict pending
            raise MlflowUnavailable(_first_line(error)) from None

    def _push(self, item: Pending) -> str:
        from mlflow.entities import Feedback

        mine = self.mine(item.trace_id)
        valid = [a for a in mine if getattr(a, "valid", True) is not False]
        if not item.verdict:
            for assessment in mine:  # newest first: deleting an override restores the one it replaced
                self._traces.delete_assessment(item.trace_id, assessment.assessment_id)
            return "deleted" if mine else "already"
        value = VALUES[item.verdict]
        if valid and valid[0].value == value:
            return "already"
        feedback = Feedback(name=FEEDBACK_NAME, value=value, source=self._source(),
                            metadata={"proctor.run_id": item.run_id},
                            overrides=valid[0].assessment_id if valid else None)
        self._traces.log_assessment(item.trace_id, feedback)
        return "overridden" if valid else "logged"

    def log_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        """Log the judge-vs-human metrics on the run (a new value of each; the latest is what MLflow shows)."""
        if not metrics:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        try:
            self._runs.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
        except Exception as error:  # noqa: BLE001
            raise MlflowUnavailable(_first_line(error)) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


# -- a whole file at once (`proctor grade FILE --sync`, after an evaluation, on open)


@dataclass
class SyncReport:
    """What one sync did. `failed` verdicts are still pending (their reason in `error`)."""

    sent: int = 0
    already: int = 0
    failed: int = 0
    runs: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def pending(self) -> int:
        return self.failed


def sync_session(session: Any, client: FeedbackClient | None = None) -> SyncReport:
    """Send every pending verdict of an open `GradingSession`, mark them in its file, log each run's metrics."""
    report = SyncReport()
    pending = pending_in_frame(session.frame)
    runs = sorted({p.run_id for p in pending})
    if not pending:
        return report
    try:
        client = client or FeedbackClient()
    except MlflowUnavailable as error:
        report.failed, report.error = len(pending), str(error)
        return report
    done: dict[int, str] = {}
    for item in pending:
        try:
            outcome = client.push(item)
        except MlflowUnavailable as error:
            report.failed, report.error = len(pending) - len(done), str(error)
            break
        done[item.row] = item.verdict
        if outcome == "already":
            report.already += 1
        else:
            report.sent += 1
    if done:
        session.mark_synced(done)
    for run_id in runs:
        try:
            client.log_metrics(run_id, metrics_in_frame(session.frame, run_id))
        except MlflowUnavailable as error:
            report.error = report.error or str(error)
    report.runs = runs
    return report


def sync_file(path: str | os.PathLike[str], client: FeedbackClient | None = None) -> SyncReport:
    """`sync_session` on the answers CSV at `path`."""
    from core.grading import GradingSession

    session = GradingSession(Path(path))  # takes the file's lock: one writer at a time
    try:
        return sync_session(session, client)
    finally:
        session.close()


# -- in the background (the Grade pane)


class FeedbackSender:
    """Sends verdicts to MLflow from a thread of its own, so that grading never waits on MLflow.

    `submit()` queues a verdict (a later one for the same row replaces it) and returns at once. For each verdict
    MLflow now holds, `on_sent(row, verdict)` is called (from the sender's thread); `on_state(pending, error)`
    reports how many wait and why ("" when MLflow answered). `metrics_for(run_id)` gives the run's metrics to log
    once its queue is empty. While MLflow is unreachable the verdicts stay queued and are tried again every
    `retry_every` seconds.
    """

    def __init__(self, on_sent: Callable[[int, str], None], on_state: Callable[[int, str], None],
                 metrics_for: Callable[[str], dict[str, float]] | None = None,
                 retry_every: float = RETRY_EVERY_S,
                 client_factory: Callable[[], FeedbackClient] | None = None) -> None:
        self._on_sent = on_sent
        self._on_state = on_state
        self._metrics_for = metrics_for
        self._retry_every = retry_every
        self._client_factory = client_factory or FeedbackClient
        self._queue: dict[int, Pending] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="proctor-feedback", daemon=True)
        self._client: FeedbackClient | None = None
        self.error = ""

    def start(self) -> FeedbackSender:
        self._thread.start()
        return self

    def submit(self, items: Sequence[Pending]) -> None:
        with self._lock:
            for item in items:
                self._queue[item.row] = item
        self._wake.set()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the verdict in flight (what is left stays pending in the CSV for the next open)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and timeout != 0:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _next(self) -> Pending | None:
        with self._lock:
            return next(iter(self._queue.values()), None)

    def _loop(self) -> None:
        touched: set[str] = set()
        while not self._stop.is_set():
            item = self._next()
            if item is None:
                self._log_metrics(touched)
                self._wake.wait()
                self._wake.clear()
                continue
            try:
                if self._client is None:
                    self._client = self._client_factory()
                self._client.push(item)
            except MlflowUnavailable as error:
                self._client = None  # the next try opens the store afresh (its URI may have changed)
                self.error = str(error)
                self._on_state(self.pending, self.error)
                self._wake.wait(self._retry_every)
                self._wake.clear()
                continue
            with self._lock:
                if self._queue.get(item.row) == item:
                    del self._queue[item.row]
            touched.add(item.run_id)
            self.error = ""
            self._on_sent(item.row, item.verdict)
            self._on_state(self.pending, "")

    def _log_metrics(self, runs: set[str]) -> None:
        if self._metrics_for is None or self._client is None:
            return
        for run_id in sorted(runs):
            try:
                self._client.log_metrics(run_id, self._metrics_for(run_id))
            except MlflowUnavailable as error:
                self.error = str(error)
                return
            runs.discard(run_id)
