"""Judging answers already given, on a SQLite MLflow store, without `mlflow.genai.evaluate`'s per-row writes.

Why: evaluate on 100 answered rows spends nearly all its time in the store, not the judge. Each row is a trace
export (`log_spans`, then `start_trace`), one `log_assessment` per scorer and expectation, and a read-back
(`get_trace`), each its own SQLite transaction, from up to MLFLOW_GENAI_EVAL_MAX_WORKERS threads queueing for
SQLite's single write lock (py-spy: about 60% of the workers' time inside SQLAlchemy executes and commits, most of
it waiting on the lock). The judge's own latency is a small part.

What this does instead, for the same rows and the same scorer objects (core.evaluation calls `evaluate_rows`):

1. Each row is scored in Proctor's own pool (`workers` rows at once) by MLflow's own scoring function (the
   harness's `_compute_eval_scores`), so values, rationales, errors, sources and metadata are evaluate's.
2. Its trace is built in memory as evaluate's `create_minimal_trace` makes it: one `root_span` (CHAIN) holding the
   row's inputs and outputs, the same trace metadata (source run, user, source, inputs/outputs, size) and tags
   (trace name, eval request id), and the row's Feedback and Expectation assessments attached to the root span
   with the run id in their metadata, scrubbed of secrets before anything is stored.
3. One writer thread stores traces as rows finish, in batches (`BATCH_ROWS`, or `BATCH_WAIT_S` after the first),
   through the store's own methods: per trace `start_trace` (trace, metadata, tags and its assessments), per batch
   one `log_spans` and one `link_traces_to_run`, all in ONE transaction per batch (`_one_transaction`). Only this
   thread writes, so nothing queues for the lock, and a cancelled run keeps the traces of the rows already judged.
4. The run gets what evaluate gives it: the `mlflow.runType` and scorer-lineage tags, the dataset input, and the
   `<scorer>/mean` metrics from MLflow's own aggregation.

Only SQLite stores take this path (`unavailable_reason`); an HTTP tracking server and file stores keep
`mlflow.genai.evaluate`. The MLflow internals used (3.17) are all looked up at once by `_internals()`: when one is
missing (a later MLflow renamed it) `unavailable_reason` says so and the caller falls back on evaluate. The one
reach into the store itself, sharing a session across its calls, falls back on a transaction per call when the
store has no `ManagedSessionMaker`.
`PROCTOR_FAST_EVALUATE=0` forces that fallback. tests/core/test_fast_evaluate.py compares what both paths store.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import functools
import json
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

FAST_ENV = "PROCTOR_FAST_EVALUATE"
BATCH_ROWS = 25
BATCH_WAIT_S = 0.25
ROOT_SPAN_NAME = "root_span"  # as create_minimal_trace names it

__all__ = ["FAST_ENV", "FastOutcome", "evaluate_rows", "unavailable_reason"]


@dataclass
class FastOutcome:
    """What `evaluate_rows` did: evaluate's metrics, the trace ids fully stored, the judge's token usage where it
    reported it, and the store failure that stopped the writes (empty when none)."""

    metrics: dict[str, float]
    stored: set[str]
    failure: str = ""
    usage: tuple[int, int] | None = None
    results: list[Any] = field(default_factory=list)


@functools.lru_cache(maxsize=1)
def _internals() -> SimpleNamespace:
    """Every MLflow name this module needs beyond the public API, imported at once (ImportError/AttributeError
    when this MLflow lacks one)."""
    from mlflow.genai.evaluation import context, harness
    from mlflow.genai.evaluation.entities import EvalItem
    from mlflow.genai.evaluation.lineage import log_lineage_tags
    from mlflow.genai.evaluation.rate_limiter import NoOpRateLimiter, eval_retry_context
    from mlflow.genai.evaluation.utils import _convert_to_eval_set
    from mlflow.genai.scorers.aggregation import compute_aggregated_metrics
    from mlflow.tracing.client import TracingClient
    from mlflow.tracing.constant import (
        MAX_CHARS_IN_TRACE_INFO_METADATA,
        TRACE_SCHEMA_VERSION,
        TRACE_SCHEMA_VERSION_KEY,
        TRUNCATION_SUFFIX,
        AssessmentMetadataKey,
        SpanAttributeKey,
        TraceMetadataKey,
        TraceTagKey,
    )
    from mlflow.tracing.utils import add_size_stats_to_trace_metadata, dump_span_attribute_value
    from mlflow.tracing.utils.default_log_level import default_log_level_for_span_type
    from mlflow.tracing.utils.environment import resolve_env_metadata
    from mlflow.tracing.utils.truncation import set_request_response_preview

    names = SimpleNamespace(
        context=context, compute_eval_scores=harness._compute_eval_scores,
        new_expectations=harness._get_new_expectations, EvalItem=EvalItem, log_lineage_tags=log_lineage_tags,
        NoOpRateLimiter=NoOpRateLimiter, eval_retry_context=eval_retry_context, convert=_convert_to_eval_set,
        aggregate=compute_aggregated_metrics, TracingClient=TracingClient,
        max_metadata=MAX_CHARS_IN_TRACE_INFO_METADATA, schema_version=TRACE_SCHEMA_VERSION,
        schema_version_key=TRACE_SCHEMA_VERSION_KEY, truncation=TRUNCATION_SUFFIX,
        AssessmentMetadataKey=AssessmentMetadataKey, SpanAttributeKey=SpanAttributeKey,
        TraceMetadataKey=TraceMetadataKey, TraceTagKey=TraceTagKey, size_stats=add_size_stats_to_trace_metadata,
        dump=dump_span_attribute_value, log_level=default_log_level_for_span_type, env_metadata=resolve_env_metadata,
        previews=set_request_response_preview,
    )
    for attribute in ("LOG_LEVEL", "REQUEST_ID", "SPAN_TYPE", "INPUTS", "OUTPUTS"):
        getattr(SpanAttributeKey, attribute)
    for attribute in ("SOURCE_RUN_ID", "JUDGE_INPUT_TOKENS", "JUDGE_OUTPUT_TOKENS"):
        getattr(AssessmentMetadataKey, attribute)
    for attribute in ("from_dataset_row",):
        getattr(EvalItem, attribute)
    return names


def unavailable_reason(tracking_uri: str) -> str | None:
    """None when the fast path can judge for the store at `tracking_uri`; else why not (evaluate is used)."""
    if os.environ.get(FAST_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return f"{FAST_ENV}=0"
    if not tracking_uri.strip().lower().startswith("sqlite:"):
        return "not a SQLite store"
    try:
        _internals()
    except (ImportError, AttributeError) as error:  # a later MLflow moved something: its own evaluate still works
        return f"this MLflow lacks what the fast path uses ({error})"
    return None


# ---------------------------------------------------------------- one row


def _truncated(m: SimpleNamespace, value: str | None) -> str:
    if not value:
        return ""
    if len(value) > m.max_metadata:
        return value[:m.max_metadata - len(m.truncation)] + m.truncation
    return value


def _minimal_trace(m: SimpleNamespace, item: Any, run_id: str, experiment_id: str) -> Any:
    """The trace evaluate's `create_minimal_trace` would export for `item`, built in memory (nothing stored).

    The span is given in the format spans are stored in (`Span.from_dict`, which must keep reading every stored
    trace): trace and span ids base64, attribute values JSON.
    """
    from mlflow.entities import Span, SpanType, Trace, TraceData, TraceInfo, TraceLocation, TraceState

    keys = m.SpanAttributeKey
    otel_trace_id, span_id = random.getrandbits(128), random.getrandbits(64) or 1
    trace_id = f"tr-{otel_trace_id:032x}"
    start = time.time_ns()
    inputs, outputs = m.dump(item.inputs), m.dump(item.outputs)
    span = Span.from_dict({
        "trace_id": base64.b64encode(otel_trace_id.to_bytes(16, "big")).decode(),
        "span_id": base64.b64encode(span_id.to_bytes(8, "big")).decode(),
        "parent_span_id": None,
        "name": ROOT_SPAN_NAME,
        "start_time_unix_nano": start,
        "end_time_unix_nano": start + 1_000,
        "events": [],
        "status": {"code": "STATUS_CODE_OK", "message": ""},
        "attributes": {
            keys.REQUEST_ID: json.dumps(trace_id),
            keys.SPAN_TYPE: json.dumps(SpanType.CHAIN),
            keys.INPUTS: inputs,
            keys.OUTPUTS: outputs,
            keys.LOG_LEVEL: json.dumps(int(m.log_level(SpanType.CHAIN))),
        },
        "links": [],
    })
    metadata = {
        **m.env_metadata(),
        m.schema_version_key: str(m.schema_version),
        m.TraceMetadataKey.SOURCE_RUN: run_id,
        m.TraceMetadataKey.INPUTS: _truncated(m, inputs),
        m.TraceMetadataKey.OUTPUTS: _truncated(m, outputs),
    }
    info = TraceInfo(
        trace_id=trace_id, trace_location=TraceLocation.from_experiment_id(experiment_id),
        request_time=start // 1_000_000, execution_duration=0, state=TraceState.OK, trace_metadata=metadata,
        tags={m.TraceTagKey.EVAL_REQUEST_ID: item.request_id, m.TraceTagKey.TRACE_NAME: ROOT_SPAN_NAME},
    )
    trace = Trace(info=info, data=TraceData(spans=[span]))
    m.previews(info, trace.data)
    m.size_stats(trace)  # before the assessments are attached: evaluate exports the trace before scoring it
    return trace


def _score(m: SimpleNamespace, item: Any, scorers: list[Any], run_id: str, experiment_id: str, max_retries: int,
           scrub: Callable[[Any], None]) -> tuple[Any, Any]:
    """Score one row as the harness's `_run_score` does; its assessments attached to its in-memory trace."""
    item.trace = _minimal_trace(m, item, run_id, experiment_id)
    with m.eval_retry_context():
        result = m.compute_eval_scores(eval_item=item, scorers=scorers, rate_limiter=m.NoOpRateLimiter(),
                                       max_retries=max_retries)
    result.assessments.extend(m.new_expectations(item))
    root_span_id = item.trace.data.spans[0].span_id
    for assessment in result.assessments:
        # As the harness's _log_assessments stamps them before logging.
        assessment.trace_id = item.trace.info.trace_id
        assessment.metadata = {**(assessment.metadata or {}), m.AssessmentMetadataKey.SOURCE_RUN_ID: run_id}
        assessment.span_id = root_span_id
        scrub(assessment)
    item.trace.info.assessments = list(result.assessments)
    return item, result


# ---------------------------------------------------------------- the writer


@contextlib.contextmanager
def _one_transaction(store: Any) -> Iterator[Any]:
    """Every call this thread makes on `store` inside the block shares one session: one commit for a batch.

    The SQLAlchemy store opens a session (and commits) per call, and `start_trace` also reads the experiment
    afresh each time: for 100 traces that is 100 commits and 100 reads, about half of its CPU time. Inside the block
    this thread gets one session and the experiment read once; any other thread gets the store as it is. The store's
    own methods still do all the writing. An error anywhere rolls the whole batch back.
    """
    maker = store.__dict__.get("ManagedSessionMaker")
    if maker is None:  # a store built otherwise: one transaction per call, as MLflow does
        yield None
        return
    owner = threading.get_ident()
    own_get_experiment = "get_experiment" in store.__dict__
    get_experiment = store.get_experiment
    experiments: dict[str, Any] = {}
    with maker(read_only=False) as session:

        @contextlib.contextmanager
        def shared(read_only: bool = True) -> Iterator[Any]:
            if threading.get_ident() != owner:
                with maker(read_only=read_only) as other:
                    yield other
            else:
                yield session

        def cached_experiment(experiment_id: str) -> Any:
            if threading.get_ident() != owner:
                return get_experiment(experiment_id)
            if experiment_id not in experiments:
                experiments[experiment_id] = get_experiment(experiment_id)
            return experiments[experiment_id]

        store.ManagedSessionMaker = shared
        store.get_experiment = cached_experiment
        try:
            yield session
        finally:
            store.ManagedSessionMaker = maker
            if own_get_experiment:
                store.get_experiment = get_experiment
            else:
                del store.get_experiment


class _Writer(threading.Thread):
    """The only thread that writes traces: batches of finished rows, one transaction per batch."""

    def __init__(self, m: SimpleNamespace, experiment_id: str, run_id: str,
                 retry: Callable[[Callable[[], Any]], Any], describe: Callable[[BaseException], str]) -> None:
        super().__init__(name="ProctorTraceWriter", daemon=True)
        self._store = m.TracingClient().store
        self._experiment_id = experiment_id
        self._run_id = run_id
        self._retry = retry
        self._describe = describe
        self._queue: queue.Queue[Any] = queue.Queue()
        self.stored: set[str] = set()
        self.failure = ""

    def put(self, trace: Any) -> None:
        self._queue.put(trace)

    def close(self) -> None:
        """Store what is queued, then end."""
        self._queue.put(None)
        self.join()

    def run(self) -> None:
        pending: list[Any] = []
        deadline = 0.0
        while True:
            try:
                trace = self._queue.get(timeout=max(0.0, deadline - time.monotonic()) if pending else None)
            except queue.Empty:
                trace = ...
            if trace is None:
                self._write(pending)
                return
            if trace is not ...:
                if not pending:
                    deadline = time.monotonic() + BATCH_WAIT_S
                pending.append(trace)
            if pending and (len(pending) >= BATCH_ROWS or time.monotonic() >= deadline):
                self._write(pending)
                pending = []

    def _write_batch(self, traces: list[Any]) -> None:
        from sqlalchemy import text

        ids = [trace.info.trace_id for trace in traces]
        with _one_transaction(self._store) as session:
            for trace in traces:
                self._store.start_trace(trace.info)
            self._store.log_spans(self._experiment_id, [span for trace in traces for span in trace.data.spans])
            self._store.link_traces_to_run(ids, run_id=self._run_id)
            if session is not None:
                # start_trace rolls its session back when a trace already exists: in a shared session that would
                # drop the batch's earlier traces unseen. Count them before the commit.
                marks = ", ".join(f":t{i}" for i in range(len(ids)))
                found = session.execute(text(f"SELECT COUNT(*) FROM trace_info WHERE request_id IN ({marks})"),
                                        {f"t{i}": trace_id for i, trace_id in enumerate(ids)}).scalar()
                if found != len(ids):
                    raise RuntimeError(f"{found} of {len(ids)} traces in the batch reached the store")
        self.stored.update(ids)

    def _write(self, traces: list[Any]) -> None:
        if not traces or self.failure:
            return
        try:
            self._retry(lambda: self._write_batch(traces))
        except Exception as error:  # noqa: BLE001 - the store failed: every verdict is kept by the caller
            self.failure = self._describe(error)


# ---------------------------------------------------------------- the run


def _usage(m: SimpleNamespace, results: list[Any]) -> tuple[int, int] | None:
    """The judge's prompt and completion tokens over the rows, where it reported them (its verdicts' metadata)."""
    from core.prices import summed_usage

    keys = (m.AssessmentMetadataKey.JUDGE_INPUT_TOKENS, m.AssessmentMetadataKey.JUDGE_OUTPUT_TOKENS)
    return summed_usage((a.metadata for r in results for a in r.assessments), keys)


def _set_up_run(m: SimpleNamespace, frame: Any, scorers: list[Any], run_id: str,
                retry: Callable[[Callable[[], Any]], Any]) -> None:
    """What evaluate logs on the run before it scores: the dataset input, the run type and the lineage tags."""
    import mlflow
    from mlflow.entities import DatasetInput
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_TYPE, MLFLOW_RUN_TYPE_GENAI_EVALUATE

    client = MlflowClient()
    dataset = mlflow.data.from_pandas(df=frame, name="dataset")
    retry(lambda: client.log_inputs(run_id=run_id, datasets=[DatasetInput(dataset=dataset._to_mlflow_entity())]))
    if client.get_run(run_id).data.tags.get(MLFLOW_RUN_TYPE) is None:
        retry(lambda: client.set_tag(run_id, MLFLOW_RUN_TYPE, MLFLOW_RUN_TYPE_GENAI_EVALUATE))
    m.log_lineage_tags(run_id, scorers, None)  # never raises


def evaluate_rows(data: list[dict[str, Any]], scorers: list[Any], *, run_id: str, experiment_id: str, workers: int,
                  on_row: Callable[[Any, Any, int, int], None], scrub: Callable[[Any], None],
                  retry: Callable[[Callable[[], Any]], Any], describe: Callable[[BaseException], str]) -> FastOutcome:
    """Score `data` (evaluate's rows: `inputs`, `outputs`, `expectations`) with `scorers` into run `run_id`.

    `workers` rows are scored at once. `on_row(eval_item, eval_result, done, total)` is called in this thread as
    each row finishes (it may raise to stop: rows not started are dropped, and the traces of the rows finished are
    stored before the exception goes on). `scrub(assessment)` cleans an assessment of secrets before it is stored;
    `retry(action)` runs a store write, retrying while the store is locked; `describe(error)` says in one line why
    the store failed. A store failure does not stop the judging: it is reported in the outcome, with the traces that
    were stored.
    """
    import mlflow
    from mlflow.environment_variables import MLFLOW_GENAI_EVAL_MAX_RETRIES
    from mlflow.exceptions import MlflowException

    m = _internals()
    frame = m.convert(data)
    outcome = FastOutcome(metrics={}, stored=set())
    try:
        _set_up_run(m, frame, scorers, run_id, retry)
    except (MlflowException, OSError) as error:
        outcome.failure = describe(error)
    items = [m.EvalItem.from_dataset_row(row) for row in frame.to_dict(orient="records")]
    m.context.eval_context(lambda: None)()  # evaluate's context (the expectations' source is its user)
    m.context.get_context().set_mlflow_run_id(run_id)
    max_retries = MLFLOW_GENAI_EVAL_MAX_RETRIES.get()

    writer = _Writer(m, experiment_id, run_id, retry, describe)
    writer.start()
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ProctorJudge")
    try:
        futures = [pool.submit(contextvars.copy_context().run, _score, m, item, scorers, run_id, experiment_id,
                               max_retries, scrub) for item in items]
        for done, future in enumerate(as_completed(futures), start=1):
            item, result = future.result()
            writer.put(item.trace)
            outcome.results.append(result)
            on_row(item, result, done, len(items))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        writer.close()
        outcome.stored = set(writer.stored)
        outcome.failure = outcome.failure or writer.failure
    outcome.metrics = {k: float(v) for k, v in m.aggregate(outcome.results, scorers=scorers).items()}
    outcome.usage = _usage(m, outcome.results)
    if outcome.metrics and not outcome.failure:
        try:
            retry(lambda: mlflow.log_metrics(outcome.metrics, run_id=run_id))
        except (MlflowException, OSError) as error:
            outcome.failure = describe(error)
    return outcome
