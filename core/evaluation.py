"""Evaluating a model on a benchmark with MLflow's judges and scorers, logged to MLflow as one run.

The flow (`evaluate_file`):

1. Read the CSV. A benchmark (questions and reference answers) is answered first by core's own async engine
   (`core.benchmark.answer_benchmark`, which writes `STEM.answers.PROVIDER-MODEL.csv` beside it and resumes an
   earlier one);
   an answers CSV (from `proctor answer`, it has `llm_answer`) is judged as it is, with no new model call.
   Asking the model through a `predict_fn` inside evaluate is slow and can stall on sqlite (see the facts file), so
   evaluate only ever gets `outputs`.
2. Rows become evaluate's data: `inputs={"question"}`, `outputs=<answer>`, `expectations={"expected_response"}`.
   Rows whose answer failed are not sent (they count as failures in `accuracy`).
3. Scorers (core.scorers): `Correctness` with the judge, plus code scorers that need no judge (`exact_match`,
   normalised; `contains_reference`), others on request. Without a judge only the code scorers run. On a SQLite
   store they run through core.fast_evaluate (the same scorers and MLflow entities, stored by one writer thread in
   a transaction per batch of rows, not evaluate's several per row); elsewhere through `mlflow.genai.evaluate`.
4. One MLflow run (experiment `proctor` by default, named after the model) gets params, tags, evaluate's metrics
   (`<scorer>/mean`, errors left out) and ours (`accuracy` counting judge errors as failures, error counts, latency,
   tokens, judge-human agreement), the input CSV and a per-row results CSV as artifacts.

The judge and its credentials come from core.judges (`resolve_judge`); its variables are set for the duration of the
evaluate call only. No key is ever logged: every text written (rationales, errors, answers, the captured MLflow
output) is scrubbed of the secrets in force.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError, InputError, ProctorError
from core.judges import JudgeSetup, prefer_json_object, resolve_judge, same_model
from core.prices import load_prices
from core.safety import mask_url, scrubber, secrets_in_force
from core.scorers import (
    code_scorers,
    contains_reference_score,
    exact_match_score,
    judge_scorer,
    needs_judge,
    parse_scorers,
)
from core.store import temporary_environ

if TYPE_CHECKING:
    import pandas as pd

    from core.config import Settings

DEFAULT_EXPERIMENT = "proctor"
DEFAULT_JUDGE_TIMEOUT_S = 30.0
DEFAULT_EVAL_WORKERS = 8
RESULTS_ARTIFACT_DIR = "results"
RESULTS_ARTIFACT_NAME = "results.csv"
INPUTS_ARTIFACT_DIR = "inputs"
JUDGE_OUTPUT_COLUMNS = ["judge_verdict", "judge_rationale", "judge_error", "exact_match", "contains_reference"]
RESULTS_COLUMNS = ["row", "question", "reference", "llm_answer", "model", "judge_verdict", "judge_rationale",
                   "judge_error", "exact_match", "contains_reference", "latency_s", "answer_error", "trace_id"]
NO_JUDGE_WARNING = ("no judge configured: only the code scorers ran (Correctness needs a judge: pass --judge, "
                    "set PROCTOR_JUDGE, or configure Azure for the default azure:/gpt-4.1-nano)")

__all__ = [
    "DEFAULT_EVAL_WORKERS",
    "DEFAULT_EXPERIMENT",
    "DEFAULT_JUDGE_TIMEOUT_S",
    "INPUTS_ARTIFACT_DIR",
    "JUDGE_OUTPUT_COLUMNS",
    "NO_JUDGE_WARNING",
    "RESULTS_ARTIFACT_DIR",
    "RESULTS_ARTIFACT_NAME",
    "RESULTS_COLUMNS",
    "EvaluationCancelled",
    "EvaluationProgress",
    "EvaluationSummary",
    "NoAnswers",
    "evaluate_file",
    "table_input_frame",
]


# ---------------------------------------------------------------- progress and summary


@dataclass
class EvaluationProgress:
    """Where an evaluation stands. `phase`: reading, checking (the MLflow store), answering, store set-up (a new
    sqlite store: `done`/`total` count MLflow's schema migrations), judging, logging, done."""

    phase: str
    done: int = 0
    total: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    message: str = ""
    correct: int = 0  # while judging: rows the judge has called correct so far, of `scored` with a verdict
    scored: int = 0


@dataclass
class EvaluationSummary:
    """What an evaluation did and where it is logged. `results` is the per-row results frame (as logged)."""

    run_id: str
    experiment_id: str
    experiment: str
    run_name: str
    tracking_uri: str
    model: str
    judge: str | None
    scorers: list[str]
    metrics: dict[str, float]
    results: pd.DataFrame
    output: Path | None = None
    answers_file: Path | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    log_file: Path | None = None
    cancelled: bool = False
    judged_file: Path | None = None  # the answers CSV the judge's columns were written into
    human_synced: int = 0  # human verdicts of that file now on the run's traces

    @property
    def results_path(self) -> Path | None:
        """The `-o` file, when one was written."""
        return self.output


class EvaluationCancelled(ProctorError):
    """The evaluation was cancelled; the run (if one was started) is marked KILLED."""

    exit_code = 130


class NoAnswers(ProctorError):
    """No row has an answer to judge: nothing is logged (a run of zeros would pass for a real result)."""

    exit_code = 1


class _Cancelled(Exception):
    pass


# ---------------------------------------------------------------- helpers


def _sha16(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _float(text: object) -> float | None:
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]



@contextlib.contextmanager
def _progress_hook(on_row: Callable[[int, int], None]) -> Iterator[None]:
    """Count rows as evaluate finishes them, by standing in for the tqdm bar its harness creates.

    evaluate offers no per-row callback; its harness updates a module-level `tqdm` bar once per row. If a future
    MLflow drops that name, progress falls back to phases only. The bar may raise `_Cancelled` to stop evaluate
    between rows (its thread pools are shut down with cancel_futures in the harness's `finally`).
    """
    try:
        from mlflow.genai.evaluation import harness
    except ImportError:  # pragma: no cover
        yield
        return
    if not hasattr(harness, "tqdm"):  # pragma: no cover
        yield
        return

    class Bar:
        def __init__(self, *args: Any, total: int = 0, **kwargs: Any) -> None:
            self.n = 0
            self.total = total
            self.bar_format = ""

        def update(self, n: int = 1) -> None:
            self.n += n
            on_row(self.n, self.total)

        def refresh(self) -> None:
            pass

        def close(self) -> None:
            pass

    original = harness.tqdm
    harness.tqdm = Bar
    try:
        yield
    finally:
        harness.tqdm = original


class _KeptVerdicts:
    """Every row's scorer results as the judge gave them, kept in memory whatever the store manages to write.

    evaluate builds its result table from what the store gives back: a row whose trace or assessment could not be
    written (a SQLite store locked by another writer) drops out of it, though the judge answered. Keyed by the
    row's question and answer (evaluate's `inputs` and `outputs`), as evaluate may score rows in any order.
    """

    def __init__(self) -> None:
        self.active = False
        self._rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._tallies: dict[str, tuple[int, int]] = {}  # per scorer: (correct, scored), counted as rows come in
        self._lock = threading.Lock()

    def add(self, eval_item: Any, result: Any) -> None:
        from mlflow.entities import Feedback

        row: dict[str, Any] = {}
        for assessment in getattr(result, "assessments", None) or []:
            if not isinstance(assessment, Feedback):
                continue  # the expectations evaluate logs beside the verdicts
            row[f"{assessment.name}/value"] = assessment.value
            if assessment.rationale is not None:
                row[f"{assessment.name}/rationale"] = assessment.rationale
            if assessment.error is not None and assessment.error.error_message:
                row[f"{assessment.name}/error_message"] = assessment.error.error_message
        trace = getattr(eval_item, "trace", None)
        row["trace_id"] = trace.info.trace_id if trace is not None else ""
        key = (str((eval_item.inputs or {}).get("question", "")), str(eval_item.outputs))
        verdicts = {k.removesuffix("/value"): _verdict(v) for k, v in row.items() if k.endswith("/value")}
        with self._lock:
            self._rows.setdefault(key, []).append(row)
            for name, verdict in verdicts.items():
                if verdict:
                    correct, scored = self._tallies.get(name, (0, 0))
                    self._tallies[name] = (correct + (verdict == "correct"), scored + 1)

    def tally(self, name: str) -> tuple[int, int]:
        """(correct, scored): how many rows scorer `name` has called correct so far, of those it gave a verdict,
        for the running accuracy a live view shows while the judge works (counted in `add`: asked after every
        row, a recount of all rows would grow with the square of a large benchmark)."""
        with self._lock:
            return self._tallies.get(name, (0, 0))

    def take(self, question: str, answer: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._rows.get((question, answer))
            return found.pop(0) if found else None

    @contextlib.contextmanager
    def hooked(self) -> Iterator[None]:
        """Stand in for the harness's per-row `_run_score` for the duration (callers hold MLFLOW_LOCK)."""
        try:
            from mlflow.genai.evaluation import harness
        except ImportError:  # pragma: no cover
            yield
            return
        original = getattr(harness, "_run_score", None)
        if original is None:  # pragma: no cover - a later MLflow: fall back on result_df alone
            yield
            return

        def run_score(eval_item: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(eval_item, *args, **kwargs)
            self.add(eval_item, result)
            return result

        harness._run_score = run_score
        self.active = True
        try:
            yield
        finally:
            harness._run_score = original


def _mean_metrics(by_row: dict[int, dict[str, Any]], names: list[str]) -> dict[str, float]:
    """`<scorer>/mean` as evaluate computes it (rows whose scorer failed left out), from the kept verdicts."""
    metrics: dict[str, float] = {}
    for name in names:
        values = []
        for res in by_row.values():
            value = res.get(f"{name}/value")
            verdict = _verdict(value)
            if verdict:
                values.append(1.0 if verdict == "correct" else 0.0)
            elif _float(value) is not None:
                values.append(float(value))
        if values:
            metrics[f"{name}/mean"] = sum(values) / len(values)
    return metrics


def _verdict(value: object) -> str:
    text = str(value).strip().lower() if value is not None else ""
    if text in ("yes", "true", "1", "1.0"):
        return "correct"
    if text in ("no", "false", "0", "0.0"):
        return "incorrect"
    return ""


def _bool_cell(value: bool | None) -> str:
    return "" if value is None else ("1" if value else "0")


def _describe_judge_error(message: str, timeout: float) -> str:
    line = " ".join(str(message).split())
    if "timed out after" in line and "Scorer" in line:
        return (f"judge gave no verdict within {timeout:g} s (it kept failing, e.g. HTTP 429, or did not answer); "
                "see --judge-timeout")
    return line[:300]


# ---------------------------------------------------------------- the input


@dataclass
class _Table:
    frame: pd.DataFrame  # the answers table (input columns + answer columns)
    question_col: str
    reference_col: str | None
    answers_file: Path | None
    model: str
    warnings: list[str]
    answered_now: bool


def _model_from_answers(frame: pd.DataFrame) -> str | None:
    if "model" not in frame.columns:
        return None
    values = [v for v in dict.fromkeys(frame["model"].astype(str).str.strip()) if v]
    if len(values) > 1:
        return None
    return values[0] if values else None


# ---------------------------------------------------------------- the evaluation


def evaluate_file(
    path: str | os.PathLike[str],
    *,
    model: str | None = None,
    judge: str | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    scorers: str | list[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    judge_timeout: float | None = None,
    on_progress: Callable[[EvaluationProgress], None] | None = None,
    cancel: threading.Event | None = None,
    settings: Settings | None = None,
    fresh: bool = False,
    tags: dict[str, str] | None = None,
    answered: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> EvaluationSummary:
    """Evaluate the benchmark or answers CSV at `path`; log one MLflow run; return what it did.

    `model`: for a benchmark, the model that answers (default: the configured one); for an answers file, the label
    of the model that answered (default: its `model` column). `judge`: an MLflow model URI, `none` for code scorers
    only (default: PROCTOR_JUDGE, else azure:/gpt-4.1-nano when Azure is configured). `scorers`: names or a comma
    list (see `available_scorers`). `output`: where to write the per-row results CSV (`-o`). `judge_timeout`: the
    seconds one judge verdict may take, retries included (default 30). `cancel` stops between rows. `fresh`: for a
    benchmark, ask every question again instead of reusing an earlier answers file by the same model (the earlier
    answers and their verdicts go to a backup). `force`: answer even into a file holding another benchmark's rows or
    verdicts on another model's answers (see `core.benchmark.answer_benchmark`). `tags`: more
    tags for the run (a multi-model evaluation's `proctor.comparison`). `answered`: for a benchmark, the answers file
    this model already wrote for it (core.multi_eval answers with several models at once): judged as this run's
    answers, with no model call.

    Raises `InputError` / `ConfigError` for bad input or settings (before any run is created), and
    `EvaluationCancelled` when cancelled.
    """
    from core.config import load_settings
    from core.store import StoreError, check_store
    from core.tracking import MLFLOW_LOCK, configure_mlflow, log_path

    started = time.perf_counter()
    timings: dict[str, float] = {}
    cancel = cancel or threading.Event()
    path = Path(path)

    def report(phase: str, done: int = 0, total: int = 0, errors: int = 0, message: str = "", correct: int = 0,
               scored: int = 0) -> None:
        if on_progress is not None:
            on_progress(EvaluationProgress(phase, done, total, errors, time.perf_counter() - started, message,
                                           correct, scored))

    report("reading", message=f"reading {path.name}")
    tracking = configure_mlflow()
    settings = settings or load_settings()
    names = parse_scorers(scorers)
    load_prices()  # a bad PROCTOR_PRICES file is an error now, not after the model and the judge have run
    timeout = DEFAULT_JUDGE_TIMEOUT_S if judge_timeout is None else float(judge_timeout)
    if not timeout > 0:
        raise InputError(f"the judge timeout must be a positive number of seconds, not {judge_timeout}")
    experiment_name = (experiment or os.environ.get("PROCTOR_EXPERIMENT", "").strip() or DEFAULT_EXPERIMENT).strip()
    out_path = Path(output) if output else None
    if out_path is not None:
        if out_path.is_dir():
            raise InputError(f"{out_path} is a folder: give -o a file name")
        if out_path.exists() and path.exists() and out_path.resolve() == path.resolve():
            raise InputError(f"the output {out_path} is the input file: the input is never modified; choose "
                             "another -o")
    # A dead tracking server fails here in seconds: reading the input imports pandas (1-6 s on a loaded machine).
    store = check_store(experiment_name, secrets=list(settings.secrets()), quick=True)

    table = _read_input(path, model, settings)
    warnings = list(table.warnings)
    judge_setup = resolve_judge(judge, settings) if any(needs_judge(n) for n in names) else None
    if judge_setup is not None:
        warnings.extend(judge_setup.warnings)
    if any(needs_judge(n) for n in names) and judge_setup is None:
        warnings.append(NO_JUDGE_WARNING)
        names = [n for n in names if not needs_judge(n)]
        if not names:
            names = ["exact_match", "contains_reference"]
    if table.reference_col is None and any(n in ("correctness", "equivalence", "exact_match", "contains_reference")
                                           for n in names):
        warnings.append(f"{path.name} has no reference answer column: correctness, equivalence and the code "
                        "scorers have nothing to compare with")
    if judge_setup is not None and same_model(judge_setup.uri, table.model):
        warnings.append(f"the judge {judge_setup.uri} is the model under test: it grades its own answers "
                        "(self-preference bias); prefer a different judge")
    timings["read_s"] = time.perf_counter() - started

    # 0. the store, before any model is asked: an unreachable server, a foreign or corrupt SQLite file, a read-only
    # folder or a deleted experiment would otherwise fail only after the answers were paid for.
    if store.kind != "http":  # an HTTP store was checked in full above
        report("checking", message="checking the MLflow store")
        t0 = time.perf_counter()
        check_store(experiment_name, secrets=list(settings.secrets()))
        timings["store_check_s"] = time.perf_counter() - t0

    # 1. answers: ours when the input is a benchmark (core's async engine, not evaluate's predict_fn)
    frame = table.frame
    if table.answered_now:
        t0 = time.perf_counter()
        if answered is not None:
            from core.benchmark import load_benchmark

            frame, answers_file, answer_warnings = load_benchmark(answered).frame, Path(answered), []
        else:
            frame, answers_file, answer_warnings = _answer(path, table, settings, cancel, report, fresh, force)
        table.answers_file = answers_file
        warnings.extend(answer_warnings)
        timings["answer_s"] = time.perf_counter() - t0
    if cancel.is_set():
        raise EvaluationCancelled("the evaluation was cancelled while the model was answering "
                                  f"(answers so far are in {table.answers_file})")

    judge_keys = [v for k, v in judge_setup.env.items() if "KEY" in k] if judge_setup is not None else []
    secrets = secrets_in_force([*settings.secrets(), *judge_keys])
    scrub = scrubber(secrets)
    rows = _rows(frame, table)
    if rows and all(r.answer_error for r in rows):
        raise NoAnswers(_no_answers_message(rows, table, scrub))
    mlflow_env = {}
    if judge_setup is not None:
        mlflow_env.update(judge_setup.env)
    # evaluate's knobs, set for the call only unless the user set them: bounded workers (sqlite stalls with many),
    # no extra 429 retries around a judge call that already retries inside the scorer timeout, and a per-request
    # HTTP timeout no longer than the verdict's own.
    defaults = {
        "MLFLOW_GENAI_EVAL_MAX_WORKERS": str(min(DEFAULT_EVAL_WORKERS, max(1, settings.concurrency))),
        "MLFLOW_GENAI_EVAL_MAX_RETRIES": "0",
        "MLFLOW_GATEWAY_ROUTE_TIMEOUT_SECONDS": str(max(1, math.ceil(timeout))),
    }
    mlflow_env.update({k: v for k, v in defaults.items() if k not in os.environ})

    _set_up_store(tracking, report, secrets, timings)
    with MLFLOW_LOCK:
        try:
            summary = _run_evaluation(
                path=path, table=table, rows=rows, names=names, judge_setup=judge_setup, timeout=timeout,
                experiment_name=experiment_name, run_name=run_name, tracking=tracking, mlflow_env=mlflow_env,
                scrub=scrub, secrets=secrets, settings=settings, cancel=cancel, report=report, log_file=log_path(),
                timings=timings, warnings=warnings, started=started, extra_tags=dict(tags or {}), reuse=not fresh,
            )
        except StoreError as error:
            _verdicts_into_answers(error, table, rows, judge_setup)
            raise _keep_verdicts(error, frame, out_path, scrub) from None
    if table.answers_file is not None:
        _judgements_into_file(summary, table, rows)
    if out_path is not None:
        t0 = time.perf_counter()
        _write_output(frame, summary.results, out_path, scrub)
        summary.output = out_path
        timings["output_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - started
    report("done", len(rows), len(rows), int(summary.metrics.get("judge_errors", 0)), message="done")
    return summary


def _set_up_store(tracking: str, report: Callable[..., None], secrets: list[str], timings: dict[str, float]) -> None:
    """A new sqlite store is created as its own phase, with progress (core.store_setup), not inside evaluate."""
    from core.store_setup import ensure_store, store_needs_setup
    from core.tracking import captured_output, log_path

    if not store_needs_setup(tracking):
        return
    t0 = time.perf_counter()
    message = "setting up the MLflow store"
    report("store set-up", 0, 0, message=message)
    with captured_output(log_path(), secrets=secrets):
        try:
            ensure_store(tracking, lambda done, total: report("store set-up", done, total, message=message))
        except Exception as error:  # noqa: BLE001 - disk full, read-only folder, a failed migration: one line
            from core.store import _where, describe_store_error

            raise ConfigError(f"{_where(tracking)}: the store could not be created "
                              f"({describe_store_error(error, tracking)})") from None
    timings["store_setup_s"] = time.perf_counter() - t0


def _judgements_into_file(summary: EvaluationSummary, table: _Table, rows: list[_Row]) -> None:
    """The judge's columns into the answers file judged; then the human verdicts it holds onto the new traces."""
    from core.feedback import sync_file
    from core.judgements import record_judgements

    path = table.answers_file
    warning = record_judgements(path, summary.results, [r.question for r in rows], table.question_col,
                                summary.run_id, summary.judge or "")
    if warning:
        summary.warnings.append(warning)
        return
    summary.judged_file = path
    if any(r.human for r in rows):
        try:
            report = sync_file(path)
        except ProctorError as error:  # the file is open in another writer: its next open sends them
            summary.warnings.append(f"the human verdicts of {path.name} were not sent to MLflow yet: {error}")
            return
        summary.human_synced = report.sent + report.already
        if report.failed:
            summary.warnings.append(f"{report.failed} human verdict(s) of {path.name} not yet logged to MLflow "
                                    f"({report.error}): `proctor grade {path.name} --sync` sends them")


def _read_input(path: Path, model: str | None, settings: Settings) -> _Table:
    from core.benchmark import ANSWER_COLUMNS, is_answers_file, load_benchmark
    from core.config import resolve_model
    from core.csvio import QUESTION_ALIASES, REFERENCE_ALIASES, find_column

    bench = load_benchmark(path)
    frame = bench.frame
    if is_answers_file(frame):
        # The question and reference are among the input's own columns, never the answer columns.
        own = [str(c) for c in frame.columns if c not in ANSWER_COLUMNS and c not in JUDGE_OUTPUT_COLUMNS]
        question_col = find_column(own, QUESTION_ALIASES) or bench.question_col
        reference_col = find_column(own, REFERENCE_ALIASES)
        for column in ANSWER_COLUMNS:
            if column not in frame.columns:
                frame[column] = ""
        label = model or _model_from_answers(frame)
        warnings = [w for w in bench.warnings if "no reference" not in w]
        if label is None:
            label = "unknown"
            warnings.append(f"{path.name} holds answers from several models or none named: pass --model to "
                            "label the run")
        elif model:
            from core.config import split_model_uri

            split_model_uri(model)  # a bad URI is an error even when no call is made
        return _Table(frame, question_col, reference_col, path, label, warnings, answered_now=False)
    spec = resolve_model(model, settings)
    return _Table(frame, bench.question_col, bench.reference_col, None, spec.uri,
                  [w for w in bench.warnings if "no reference" not in w], answered_now=True)


def _verdicts_into_answers(error: Any, table: _Table, rows: list[_Row], judge_setup: JudgeSetup | None) -> None:
    """The store failed mid-run: the verdicts obtained go into the answers file all the same (as after a run that
    finished), so that the same command run again judges only the rows still missing one."""
    from core.judgements import record_judgements

    results = getattr(error, "results", None)
    if table.answers_file is None or results is None or judge_setup is None or not len(results):
        return
    warning = record_judgements(table.answers_file, results, [r.question for r in rows], table.question_col,
                                error.run_id, judge_setup.uri)
    if not warning:
        error.kept_in = table.answers_file


def _keep_verdicts(error: Any, frame: pd.DataFrame, out: Path | None, scrub: Callable[[object], str]) -> Any:
    """The store failed mid-run: write the verdicts obtained to `-o` (when given) and say where they are."""
    results = getattr(error, "results", None)
    judged = int((results["judge_verdict"] != "").sum()) if results is not None and "judge_verdict" in \
        results.columns else 0
    if not judged:
        return error
    where = []
    if out is not None:
        try:
            _write_output(frame, results, out, scrub)
            where.append(str(out))
        except (OSError, ProctorError) as write_error:
            where.append(f"not {out} ({write_error})")
    if getattr(error, "kept_in", None) is not None:
        where.insert(0, f"{error.kept_in} (run the same command again to judge only the rest)")
    if error.run_id:
        where.append(f"run {error.run_id}'s results.csv, if the store took it")
    error.args = (f"{error}; {judged} verdict(s) obtained are kept: {'; '.join(where) or 'nowhere'}",)
    return error


def _no_answers_message(rows: list[_Row], table: _Table, scrub: Callable[[object], str]) -> str:
    errors = [r.answer_error for r in rows]
    common = max(set(errors), key=errors.count)
    where = f" (each row's error is in {table.answers_file})" if table.answers_file else ""
    return (f"no answer came back from {table.model}: all {len(rows)} row(s) failed, e.g. "
            f"{' '.join(scrub(common).split())[:200]!r}{where}; nothing was judged and no MLflow run was logged")


def _answer(path: Path, table: _Table, settings: Settings, cancel: threading.Event,
            report: Callable[..., None], fresh: bool = False,
            force: bool = False) -> tuple[pd.DataFrame, Path, list[str]]:
    from core.benchmark import answer_benchmark, load_benchmark

    def progress(p: Any) -> None:
        report("answering", p.done, p.total, p.failed, message=f"answering {p.done}/{p.total}")

    report("answering", 0, len(table.frame), message="answering")
    summary = answer_benchmark(path, model=table.model, on_progress=progress, cancel=cancel, settings=settings,
                               benchmark=load_benchmark(path), fresh=fresh, force=force)
    warnings = [w for w in summary.warnings if "no reference" not in w]
    if summary.already_done:
        warnings.append(f"{summary.already_done} answer(s) reused from {summary.out.name} (an earlier run by the "
                        "same model): pass --fresh to ask again")
    answered = load_benchmark(summary.out).frame
    return answered, summary.out, warnings


@dataclass
class _Row:
    index: int
    question: str
    reference: str
    answer: str
    model: str
    latency: float | None
    prompt_tokens: float | None
    completion_tokens: float | None
    answer_error: str
    human: str
    # The judge's verdict already in the file (issue 11's columns), reused by a re-run with the same judge.
    earlier_judge: str = ""
    earlier_verdict: str = ""
    earlier_rationale: str = ""
    earlier_trace: str = ""


def _rows(frame: pd.DataFrame, table: _Table) -> list[_Row]:
    from core.grading import normalise_verdict

    def col(name: str | None) -> list[str]:
        if name is None or name not in frame.columns:
            return [""] * len(frame)
        return frame[name].astype(str).tolist()

    questions, refs, answers = col(table.question_col), col(table.reference_col), col("llm_answer")
    models, latencies, pt, ct, errors, human = (col("model"), col("latency_s"), col("prompt_tokens"),
                                                col("completion_tokens"), col("error"), col("human_verdict"))
    judges, verdicts, rationales, traces = col("judge"), col("judge_verdict"), col("judge_rationale"), col("trace_id")
    rows = []
    for i in range(len(frame)):
        error = errors[i].strip()
        if not error and not answers[i].strip():
            error = "no answer"
        rows.append(_Row(i, questions[i], refs[i], answers[i], models[i] or table.model, _float(latencies[i]),
                         _float(pt[i]), _float(ct[i]), error, normalise_verdict(human[i]), judges[i].strip(),
                         verdicts[i].strip().lower(), rationales[i], traces[i].strip()))
    return rows


def _reusable(rows: list[_Row], judge_setup: JudgeSetup | None, judged_names: list[str]) -> dict[int, dict[str, Any]]:
    """Rows whose correctness verdict by this same judge is already in the file: results, keyed by row index.

    A re-run after a failure (the store locked, the run cancelled, a judge timing out on some rows) then sends the
    judge only the rows still missing a verdict. Only the correctness verdict is kept in the file, so a run with
    other judge scorers judges every row.
    """
    if judge_setup is None or judged_names != ["correctness"]:
        return {}
    reused = {}
    for r in rows:
        if r.answer_error or r.earlier_judge != judge_setup.uri or r.earlier_verdict not in ("correct", "incorrect"):
            continue
        reused[r.index] = {
            "correctness/value": "yes" if r.earlier_verdict == "correct" else "no",
            "correctness/rationale": r.earlier_rationale, "trace_id": r.earlier_trace,
            "exact_match/value": exact_match_score(r.answer, r.reference),
            "contains_reference/value": contains_reference_score(r.answer, r.reference),
        }
    return reused


def _run_evaluation(*, path: Path, table: _Table, rows: list[_Row], names: list[str], judge_setup: JudgeSetup | None,
                    timeout: float, experiment_name: str, run_name: str | None, tracking: str,
                    mlflow_env: dict[str, str], scrub: Callable[[object], str], secrets: list[str],
                    settings: Settings, cancel: threading.Event, report: Callable[..., None], log_file: Path,
                    timings: dict[str, float], warnings: list[str], started: float,
                    extra_tags: dict[str, str] | None = None, reuse: bool = True) -> EvaluationSummary:
    import pandas as pd

    from core import __version__, fast_evaluate
    from core.config import split_model_uri
    from core.tracking import (
        active_experiment,
        captured_output,
        follow_tracking_uri,
        scrub_assessment,
        scrubbed_assessments,
    )

    sendable = [r for r in rows if not r.answer_error]
    judged_names = [n for n in names if needs_judge(n)]
    reused = _reusable(sendable, judge_setup, judged_names) if reuse else {}
    to_judge = [r for r in sendable if r.index not in reused]
    if reused:
        source = (table.answers_file or path).name
        warnings.append(f"{len(reused)} verdict(s) by {judge_setup.uri} reused from {source} (an earlier run): "
                        f"{len(to_judge)} row(s) sent to the judge; pass --fresh to judge every row again")
    report("judging", 0, len(to_judge), message="starting MLflow")
    t0 = time.perf_counter()
    with captured_output(log_file, secrets=secrets), contextlib.ExitStack() as scope:
        import mlflow

        timings["mlflow_import_s"] = time.perf_counter() - t0
        follow_tracking_uri()
        try:
            exp = scope.enter_context(active_experiment(experiment_name))
        except Exception as error:  # noqa: BLE001 - a bad store / URI is a settings problem
            raise ConfigError(f"MLflow could not open experiment {experiment_name!r} at {mask_url(tracking)}: "
                              f"{scrub(str(error).splitlines()[0] if str(error) else type(error).__name__)}"
                              ) from None
        timings["mlflow_setup_s"] = time.perf_counter() - t0

        model_uri = table.model
        try:
            provider, model_name = split_model_uri(model_uri)
        except ProctorError:
            provider, model_name = "", model_uri
        params = _params(model_uri, provider, model_name, settings, table, judge_setup, names, path, rows, timeout)
        name = run_name or model_name or model_uri
        tags = {"proctor.kind": "evaluation", "proctor.model": model_uri,
                "proctor.judge": judge_setup.uri if judge_setup else "none", "proctor.dataset": path.name,
                "proctor.version": __version__, "proctor.input": "answers" if not table.answered_now else "benchmark",
                "proctor.accuracy_from": "correctness" if "correctness" in names else "exact_match",
                **(extra_tags or {})}
        if table.answers_file is not None:
            # `proctor grade --run` finds the run's answers file again through this tag.
            tags["proctor.answers_file"] = str(table.answers_file.resolve())
        from mlflow.exceptions import MlflowException

        from core.store import StoreError, describe_store_error, retry_locked, shown_uri

        try:
            run = retry_locked(lambda: mlflow.start_run(run_name=name, tags={k: scrub(v) for k, v in tags.items()}))
        except (MlflowException, OSError) as error:
            raise StoreError(f"MLflow could not start a run in {shown_uri(tracking)} "
                             f"({describe_store_error(error, tracking)})") from None
        status = "FAILED"
        failure = ""
        results: pd.DataFrame | None = None
        try:
            retry_locked(lambda: mlflow.log_params({k: scrub(v)[:6000] for k, v in params.items()}))
            results_by_row: dict[int, dict[str, Any]] = {}
            eval_metrics: dict[str, float] = {}
            store_failure = ""
            unstored = 0
            fast_usage: tuple[int, int] | None = None
            fast_judged = False
            if to_judge and names:
                data = []
                for r in to_judge:
                    item: dict[str, Any] = {"inputs": {"question": r.question}, "outputs": r.answer}
                    if r.reference.strip():
                        item["expectations"] = {"expected_response": r.reference}
                    data.append(item)
                scorer_objs = []
                code = code_scorers()
                for n in names:
                    scorer_objs.append(code[n] if n in code else judge_scorer(
                        n, judge_setup.mlflow_uri, timeout, local=judge_setup.uri.startswith("local:")))
                judged = {"rows": 0}

                primary = "correctness" if "correctness" in names else names[0]

                def on_row(done: int, total: int) -> None:
                    judged["rows"] = done
                    correct, scored = kept.tally(primary)
                    report("judging", done, total, message=f"judging {done}/{total}", correct=correct, scored=scored)
                    if cancel.is_set():
                        raise _Cancelled()

                prefer_json_object(judge_setup)
                t1 = time.perf_counter()
                kept = _KeptVerdicts()
                result = None
                fast_unavailable = fast_evaluate.unavailable_reason(tracking)
                # Into .proctor/mlflow.log (stderr is captured here): which path judged, and why.
                print(f"proctor: judging {len(data)} row(s) with "
                      + ("Proctor's fast path" if fast_unavailable is None else
                         f"mlflow.genai.evaluate ({fast_unavailable})"), file=sys.stderr)
                if fast_unavailable is None:
                    # A SQLite store: the same scorers, the same entities, written by one thread in a few
                    # transactions (core.fast_evaluate) instead of evaluate's six per row.
                    def on_fast_row(item: Any, row_result: Any, done: int, total: int) -> None:
                        kept.add(item, row_result)
                        on_row(done, total)

                    kept.active = True
                    with temporary_environ(mlflow_env):
                        outcome = fast_evaluate.evaluate_rows(
                            data, scorer_objs, run_id=run.info.run_id, experiment_id=exp.experiment_id,
                            workers=max(1, settings.concurrency), on_row=on_fast_row,
                            scrub=lambda assessment: scrub_assessment(assessment, scrub), retry=retry_locked,
                            describe=lambda error: describe_store_error(error, tracking))
                    store_failure = outcome.failure
                    fast_usage = outcome.usage
                    fast_judged = True
                    eval_metrics = dict(outcome.metrics)
                    stored: set[str] | None = outcome.stored
                else:
                    try:
                        with temporary_environ(mlflow_env), _progress_hook(on_row), kept.hooked(), \
                                scrubbed_assessments(scrub):
                            result = mlflow.genai.evaluate(data=data, scorers=scorer_objs)
                    except (MlflowException, OSError) as error:
                        if not kept.active:
                            raise
                        # The store failed under evaluate (held by another writer past every wait, say): the
                        # verdicts the judge gave are kept all the same, logged below, and the run is marked FAILED.
                        store_failure = describe_store_error(error, tracking)
                    if result is not None:
                        eval_metrics = {k: float(v) for k, v in (result.metrics or {}).items()
                                        if v is not None and math.isfinite(float(v))}
                    stored = _stored_trace_ids(result)
                timings["evaluate_s"] = time.perf_counter() - t1
                if kept.active:
                    for r in to_judge:
                        res = kept.take(r.question, r.answer)
                        if res is not None:
                            if stored is not None and res.get("trace_id") not in stored:
                                res["trace_id"] = ""  # its trace never reached the store
                                unstored += 1
                            results_by_row[r.index] = res
                    if stored is None:
                        unstored = -1  # some traces are missing, which ones MLflow did not say
                    if store_failure:
                        eval_metrics = _mean_metrics(results_by_row, names)
                else:  # pragma: no cover - an MLflow without the harness hook: evaluate's own table
                    frame = result.result_df
                    if frame is None or len(frame) != len(to_judge):
                        raise StoreError(f"MLflow returned {0 if frame is None else len(frame)} results for "
                                         f"{len(to_judge)} rows (see {log_file})")
                    for r, (_, res) in zip(to_judge, frame.iterrows(), strict=True):
                        results_by_row[r.index] = res.to_dict()
            if reused:
                # evaluate's means covered the rows it was sent: the run's means cover every row.
                results_by_row.update(reused)
                eval_metrics = _mean_metrics(results_by_row, names)
            report("logging", len(sendable), len(sendable), message="logging to MLflow")
            t2 = time.perf_counter()
            result_rows = _results_frame(rows, results_by_row, names, judged_names, scrub, timeout)
            results = pd.DataFrame(result_rows, columns=list(result_rows[0]) if result_rows else RESULTS_COLUMNS)
            metrics = _metrics(rows, result_rows, eval_metrics, names)
            if store_failure:
                metrics.update({k: v for k, v in eval_metrics.items() if k not in metrics})
            metrics.update(_interval_metrics(rows, result_rows, {**eval_metrics, **metrics}, names))
            if fast_judged or not judge_setup or not results_by_row:
                usage = fast_usage  # the fast path read it from the verdicts it made (None: none reported it)
            else:
                usage = _judge_usage(exp.experiment_id, run.info.run_id)
            metrics.update(_cost_metrics(rows, model_uri, judge_setup, usage))
            judged_rows = sum(1 for r in sendable if r.index in results_by_row)
            if unstored and not store_failure:
                count = "some" if unstored < 0 else str(unstored)
                warnings.append(f"{count} row(s) could not be stored on their MLflow traces (the store refused the "
                                f"writes: held by another writer, or full; see {log_file}): every row's verdict is "
                                "in the run's results.csv and metrics all the same")
            retry_locked(lambda: mlflow.log_metrics(metrics))
            with tempfile.TemporaryDirectory(prefix="proctor-eval-") as tmp:
                from core.csvio import write_csv_atomic

                inputs_copy = Path(tmp) / path.name
                write_csv_atomic(table_input_frame(path).map(scrub), inputs_copy)
                retry_locked(lambda: mlflow.log_artifact(str(inputs_copy), INPUTS_ARTIFACT_DIR))
                results_copy = Path(tmp) / RESULTS_ARTIFACT_NAME
                write_csv_atomic(results, results_copy)
                retry_locked(lambda: mlflow.log_artifact(str(results_copy), RESULTS_ARTIFACT_DIR))
            timings["log_s"] = time.perf_counter() - t2
            if store_failure:
                failure = (f"the MLflow store failed while judging ({store_failure}): {judged_rows} of "
                           f"{len(sendable)} row(s) judged, their verdicts kept in the run's results.csv")
                raise StoreError(failure)
            status = "FINISHED"
        except _Cancelled:
            status = "KILLED"
            failure = "cancelled"
            raise EvaluationCancelled(f"the evaluation was cancelled while judging (run {run.info.run_id} is "
                                      "marked KILLED)") from None
        except StoreError as error:
            failure = failure or str(error)
            error.results = results
            error.run_id = run.info.run_id
            raise
        except ProctorError as error:
            failure = str(error)
            raise
        except (MlflowException, OSError) as error:
            failure = f"the MLflow store failed: {describe_store_error(error, tracking)}"
            raise StoreError(f"{failure} while logging run {run.info.run_id}", results=results,
                             run_id=run.info.run_id) from None
        finally:
            ended = _end_run(mlflow, run.info.run_id, status, scrub(failure))
            in_flight = sys.exc_info()[1]
            if isinstance(in_flight, ProctorError) and status == "FAILED":
                in_flight.args = (f"{in_flight}; " + (f"the run is marked {status}" if ended else
                                  "the run could not be marked FAILED: the store still shows it RUNNING"),)
            # Traces are exported by a background thread: finish while MLflow's output is still captured, so that
            # nothing of it reaches the terminal (or the app's screen) later.
            try:
                mlflow.flush_trace_async_logging()
            except Exception:  # noqa: BLE001 - a trace that failed to export must not fail the evaluation
                pass
    all_metrics = {**eval_metrics, **metrics}
    return EvaluationSummary(
        run_id=run.info.run_id, experiment_id=exp.experiment_id, experiment=experiment_name, run_name=name,
        tracking_uri=tracking, model=model_uri, judge=judge_setup.uri if judge_setup else None, scorers=names,
        metrics=all_metrics, results=results, answers_file=table.answers_file, warnings=warnings,
        timings=timings, log_file=log_file,
    )


def _stored_trace_ids(result: Any) -> set[str] | None:
    """The trace ids evaluate read back from the store (its result table): the rows whose trace was written.

    None when evaluate could not build that table (it gives up on the whole table when one trace is missing).
    """
    frame = getattr(result, "result_df", None)
    if frame is None or "trace_id" not in getattr(frame, "columns", ()):
        return set() if result is None else None
    return {str(t) for t in frame["trace_id"].tolist()}


def _end_run(mlflow: Any, run_id: str, status: str, failure: str) -> bool:
    """End the run with `status`; a failed run says why (tag `proctor.failure`, and the run's note, the MLflow
    UI's description). Returns False when the store could not be told (it then still shows the run RUNNING).

    The store may be what failed: each write is retried while it is locked, and the run leaves MLflow's active-run
    stack whatever happens, so that the next evaluation in this process does not nest inside it.
    """
    from mlflow.tracking import MlflowClient

    from core.store import retry_locked

    client = MlflowClient()
    if failure:
        with contextlib.suppress(Exception):  # the reason is also in the error the user sees
            retry_locked(lambda: client.set_tag(run_id, "proctor.failure", failure[:5000]))
            retry_locked(lambda: client.set_tag(run_id, "mlflow.note.content",
                                                f"Proctor: {status}: {failure}"[:5000]))
    try:
        mlflow.end_run(status=status)  # pops the run from the active-run stack, then writes the status
        return True
    except Exception:  # noqa: BLE001 - the run is off the stack already: write the status again, while it is locked
        try:
            retry_locked(lambda: client.set_terminated(run_id, status))
            return True
        except Exception:  # noqa: BLE001
            return False


def table_input_frame(path: Path) -> pd.DataFrame:
    """The input CSV as read (every cell text), for the `inputs/` artifact."""
    from core.csvio import read_table

    return read_table(path)


def _params(model_uri: str, provider: str, model_name: str, settings: Settings, table: _Table,
            judge_setup: JudgeSetup | None, names: list[str], path: Path, rows: list[_Row],
            timeout: float) -> dict[str, str]:
    params: dict[str, str] = {"model_uri": model_uri, "provider": provider, "model_name": model_name}
    if table.answered_now:
        from core.config import resolve_model

        params.update(resolve_model(model_uri, settings).public_params())
    elif provider == "azure":
        params["deployment"] = model_name
        params["api_version"] = ""  # unknown: the answers were made elsewhere
    params.update({
        "temperature": "" if settings.temperature is None else f"{settings.temperature:g}",
        "system_prompt": settings.system_prompt or "",
        "judge": judge_setup.uri if judge_setup else "none",
        "scorers": ",".join(names),
        "dataset_name": path.name,
        "dataset_rows": str(len(rows)),
        "dataset_hash": _sha16(path),
        "judge_timeout_s": f"{timeout:g}",
    })
    if not table.answered_now:
        # The answers came from a file: the settings in force now did not make them.
        params["answers_from"] = "file"
    return params


def _results_frame(rows: list[_Row], by_row: dict[int, dict[str, Any]], names: list[str], judged_names: list[str],
                   scrub: Callable[[object], str], timeout: float) -> list[dict[str, str]]:
    has_human = any(r.human for r in rows)
    extra_judges = [n for n in judged_names if n != "correctness"]
    out = []
    for r in rows:
        res = by_row.get(r.index, {})
        verdict = rationale = judge_error = ""
        if "correctness" in names:
            if r.answer_error:
                judge_error = "not judged: no answer"
            elif not r.reference.strip():
                judge_error = "not judged: no reference answer"
            else:
                verdict = _verdict(res.get("correctness/value"))
                rationale = scrub(res.get("correctness/rationale"))
                error = scrub(res.get("correctness/error_message"))
                if not verdict:
                    judge_error = _describe_judge_error(error, timeout) if error else (
                        f"unexpected judge verdict {scrub(res.get('correctness/value'))!r}")
        em = exact_match_score(r.answer, r.reference) if not r.answer_error else None
        cr = contains_reference_score(r.answer, r.reference) if not r.answer_error else None
        row = {
            "row": str(r.index + 1), "question": scrub(r.question), "reference": scrub(r.reference),
            "llm_answer": scrub(r.answer), "model": scrub(r.model), "judge_verdict": verdict,
            "judge_rationale": " ".join(rationale.split()), "judge_error": judge_error,
            "exact_match": _bool_cell(em), "contains_reference": _bool_cell(cr),
            "latency_s": "" if r.latency is None else f"{r.latency:.3f}", "answer_error": scrub(r.answer_error),
            "trace_id": str(res.get("trace_id") or ""),
        }
        for n in extra_judges:
            row[n] = scrub(res.get(f"{n}/value"))
            error = scrub(res.get(f"{n}/error_message"))
            row[f"{n}_error"] = _describe_judge_error(error, timeout) if error else ""
        if has_human:
            row["human_verdict"] = r.human
        out.append(row)
    return out


def _metrics(rows: list[_Row], results: list[dict[str, str]], eval_metrics: dict[str, float],
             names: list[str]) -> dict[str, float]:
    from core.stats import agreement, cohens_kappa

    n = len(rows)
    metrics: dict[str, float] = {"rows": float(n)}
    answer_errors = sum(1 for r in rows if r.answer_error)
    metrics["answer_errors"] = float(answer_errors)
    if "correctness" in names:
        # Judge errors and failed answers count as failures: evaluate's correctness/mean leaves them out.
        correct = sum(1 for r in results if r["judge_verdict"] == "correct")
        metrics["judge_errors"] = float(sum(1 for r, row in zip(rows, results, strict=True)
                                            if not r.answer_error and not row["judge_verdict"]))
        metrics["accuracy"] = correct / n if n else 0.0
    else:
        metrics["judge_errors"] = 0.0
        metrics["accuracy"] = (sum(1 for r in results if r["exact_match"] == "1") / n) if n else 0.0
    latencies = [r.latency for r in rows if r.latency is not None and not r.answer_error]
    if latencies:
        metrics["latency_mean_s"] = statistics.fmean(latencies)
        metrics["latency_p95_s"] = _p95(latencies) or 0.0
    metrics["prompt_tokens"] = float(sum(r.prompt_tokens or 0 for r in rows))
    metrics["completion_tokens"] = float(sum(r.completion_tokens or 0 for r in rows))
    human = [r.human for r in rows if r.human]
    if human:
        metrics["human_accuracy"] = sum(1 for v in human if v == "correct") / len(human)
        pairs = [(r.human, res["judge_verdict"]) for r, res in zip(rows, results, strict=True)
                 if r.human and res["judge_verdict"]]
        if pairs:
            a, b = [p[0] for p in pairs], [p[1] for p in pairs]
            metrics["judge_human_agreement"] = agreement(a, b) or 0.0
            kappa = cohens_kappa(a, b)
            if kappa is not None:
                metrics["judge_human_kappa"] = kappa
    return metrics


def _write_output(frame: pd.DataFrame, results: pd.DataFrame, out: Path, scrub: Callable[[object], str]) -> None:
    """The `-o` file: the answers table's columns, then the judge's columns (replacing any earlier ones)."""
    from core.csvio import write_csv_atomic

    table = frame.copy()
    for column in JUDGE_OUTPUT_COLUMNS:
        if column in table.columns:
            table = table.drop(columns=[column])
    for column in JUDGE_OUTPUT_COLUMNS:
        table[column] = results[column].tolist() if column in results.columns else [""] * len(table)
    write_csv_atomic(table.map(scrub), out)


def _interval_metrics(rows: list[_Row], results: list[dict[str, str]], metrics: dict[str, float],
                      names: list[str]) -> dict[str, float]:
    """The 95% Wilson interval of every share this run logs, as `<share>_ci_low/_ci_high` (`<scorer>/ci_low`...).

    Each interval is over the rows its share counts: accuracy over every row; a scorer's mean over the rows with a
    result, as MLflow's mean leaves the others out; human accuracy over the graded rows.
    """
    from core.runs import parse_verdict
    from core.stats import interval_metric_names, share

    counts: dict[str, tuple[int, int]] = {}
    n = len(rows)
    if "accuracy" in metrics and n:
        counts["accuracy"] = (round(metrics["accuracy"] * n), n)
    columns = {"correctness": "judge_verdict"}
    for name in names:
        column = columns.get(name, name)
        values = [parse_verdict(r.get(column)) for r in results if column in r]
        values = [v for v in values if v is not None]
        if values and f"{name}/mean" in metrics:
            counts[f"{name}/mean"] = (sum(values), len(values))
    human = [r.human for r in rows if r.human]
    if human and "human_accuracy" in metrics:
        counts["human_accuracy"] = (sum(1 for v in human if v == "correct"), len(human))
    out: dict[str, float] = {}
    for name, (k, total) in counts.items():
        found = share(k, total)
        if found.low is not None and found.high is not None:
            low_name, high_name = interval_metric_names(name)
            out[low_name], out[high_name] = found.low, found.high
    return out


def _cost_metrics(rows: list[_Row], model_uri: str, judge_setup: JudgeSetup | None,
                  usage: tuple[int, int] | None) -> dict[str, float]:
    """`cost_usd` for the model's answers (tokens x core.prices' table) and `judge_cost_usd` where the judge
    reported its usage; a cost whose price or tokens are unknown is not logged at all (shown as unknown, never 0)."""
    from core.prices import cost_usd, load_prices

    prices = load_prices()
    out: dict[str, float] = {}
    counted = [r for r in rows if r.prompt_tokens is not None and r.completion_tokens is not None]
    if counted:
        cost = cost_usd(model_uri, sum(r.prompt_tokens or 0 for r in counted),
                        sum(r.completion_tokens or 0 for r in counted), prices)
        if cost is not None:
            out["cost_usd"] = cost
    if judge_setup is not None:
        if usage is not None:
            out["judge_prompt_tokens"], out["judge_completion_tokens"] = float(usage[0]), float(usage[1])
            cost = cost_usd(judge_setup.uri, usage[0], usage[1], prices)
            if cost is not None:
                out["judge_cost_usd"] = cost
    return out


def _judge_usage(experiment_id: str, run_id: str) -> tuple[int, int] | None:
    """The judge's prompt and completion tokens summed over the run, where MLflow reports them; else None.

    MLflow's judge adapter puts the usage the judge's server returned into each verdict's metadata
    (`mlflow.assessment.judgeInputTokens` / `judgeOutputTokens`) on the row's trace; evaluate's result table does
    not carry it, so the run's traces are read back (about 0.1 s).
    """
    import mlflow

    try:
        from mlflow.tracing.constant import AssessmentMetadataKey

        keys = (AssessmentMetadataKey.JUDGE_INPUT_TOKENS, AssessmentMetadataKey.JUDGE_OUTPUT_TOKENS)
        mlflow.flush_trace_async_logging()
        traces = mlflow.search_traces(locations=[experiment_id], run_id=run_id, return_type="list")
    except Exception:  # noqa: BLE001 - usage is a nicety: an MLflow without it means "unknown", not a failure
        return None
    from core.prices import summed_usage

    return summed_usage((getattr(a, "metadata", None) for t in traces for a in t.info.assessments or []), keys)
