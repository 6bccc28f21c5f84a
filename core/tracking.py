"""Where MLflow keeps runs, and how Proctor calls MLflow without it reaching the internet or the screen.

- `tracking_uri()`: `MLFLOW_TRACKING_URI` when set, else MLflow's own default (`sqlite:///<cwd>/mlflow.db`, or
  `./mlruns` when that folder already holds file-store experiments), so that `mlflow server` (or `mlflow ui`)
  started in the same folder shows the same runs. Cheap: it does not import mlflow.
- `configure_mlflow()`: call before importing or using mlflow. It loads `.env`, and turns off MLflow's network
  features that stall offline (telemetry; the model catalog download, about 8 s per process) unless the user set
  those variables themselves.
- `captured_output(log)`: MLflow prints a banner to stdout and INFO logs to stderr; inside this context both go
  to a log file instead of the terminal or the app's screen.
- `scrubbed_assessments(scrub)`: judge rationales and errors scrubbed of keys before MLflow stores them.
- `MLFLOW_LOCK`: `mlflow.genai.evaluate` is not thread-safe; hold this lock around it (and around anything that
  switches the active experiment or run).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from core.safety import scrubber, secrets_in_force

OFFLINE_DEFAULTS: dict[str, str] = {
    # Telemetry would try to reach the network from a background thread.
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # An empty catalog URI stops the judge from downloading the model catalog (about 8 s lost offline).
    "MLFLOW_MODEL_CATALOG_URI": "",
}

LOG_DIR_NAME = ".proctor"
LOG_FILE_NAME = "mlflow.log"

MLFLOW_LOCK = threading.RLock()


def tracking_uri() -> str:
    """The tracking URI MLflow will use: `MLFLOW_TRACKING_URI`, else MLflow's default for the current folder."""
    from core.config import load_dotenv_once

    load_dotenv_once()
    uri = (os.environ.get("MLFLOW_TRACKING_URI") or "").strip()
    if uri:
        return uri
    # Same rule as mlflow.tracking._tracking_service.utils._get_default_tracking_uri, without importing mlflow:
    # an existing ./mlruns file store stays the default, else sqlite mlflow.db in the current folder.
    mlruns = Path.cwd() / "mlruns"
    if mlruns.is_dir():
        for entry in mlruns.iterdir():
            if entry.is_dir() and entry.name.isdigit() and (entry / "meta.yaml").exists():
                return mlruns.resolve().as_uri()
    return f"sqlite:///{(Path.cwd() / 'mlflow.db').resolve()}"


def configure_mlflow() -> str:
    """Set MLflow's offline-safe defaults (only for variables the user left unset); return the tracking URI.

    Safe to call many times. Does not import mlflow.
    """
    from core.config import load_dotenv_once

    load_dotenv_once()
    for name, value in OFFLINE_DEFAULTS.items():
        if name not in os.environ:
            os.environ[name] = value
    return tracking_uri()


def log_path() -> Path:
    """The file MLflow's captured output goes to: `.proctor/mlflow.log` in the current folder."""
    return Path.cwd() / LOG_DIR_NAME / LOG_FILE_NAME


def _mlflow_loggers() -> list[logging.Logger]:
    return [logging.getLogger(name) for name in ("mlflow", "alembic", "databricks", "urllib3", "httpx")]


class _ScrubbingWriter(io.TextIOBase):
    """A text stream that writes to `handle` with every secret replaced by `****` (core.safety.scrub)."""

    def __init__(self, handle: TextIO, secrets: list[str]) -> None:
        super().__init__()
        self._handle = handle
        self._scrub = scrubber(secrets)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._handle.write(self._scrub(text))
        return len(text)

    def flush(self) -> None:
        self._handle.flush()

    def isatty(self) -> bool:
        return False  # so that MLflow and tqdm write no colour codes or cursor moves into the log


def _set_stream(handler: logging.StreamHandler, stream: TextIO) -> None:
    try:
        handler.setStream(stream)
    except (ValueError, OSError):
        # The old stream is already closed (a capture that ended elsewhere): nothing to flush, just replace it.
        handler.stream = stream


def _all_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger for logger in list(logging.Logger.manager.loggerDict.values()) if isinstance(logger, logging.Logger)
    ]
    return [handler for logger in loggers for handler in logger.handlers]


def _open_log(target: Path) -> TextIO:
    """`target` opened for appending; where it cannot be written (a read-only folder, a full disk), the state
    folder's `mlflow.log`, else nowhere: a log that cannot be written must not stop an evaluation."""
    from core.local_model import state_dir

    for candidate in (target, state_dir() / LOG_FILE_NAME):
        try:
            candidate.parent.mkdir(parents=True, exist_ok=True)
            return open(candidate, "a", encoding="utf-8", errors="replace")  # noqa: SIM115 - the caller closes it
        except OSError:
            continue
    return open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115


@contextlib.contextmanager
def captured_output(path: str | os.PathLike[str] | None = None, secrets: list[str] | None = None) -> Iterator[TextIO]:
    """Send stdout, stderr and MLflow's log records to `path` (default `log_path()`) for the duration.

    `secrets` (default: `core.safety.secrets_in_force()`) are replaced by `****` in what is written.

    MLflow's own log stream writes to whatever `sys.stderr` is at the time of the call, so redirecting stderr
    catches it; handlers that hold a stream of their own are swapped for one that writes to the file. This
    swaps process-wide streams: the app's screen is safe because Textual draws on `sys.__stderr__`.
    """
    with _open_log(Path(path) if path else log_path()) as raw:
        handle: TextIO = _ScrubbingWriter(raw, secrets_in_force() if secrets is None else secrets)  # type: ignore[assignment]
        swapped: list[tuple[logging.StreamHandler, TextIO]] = []
        for logger in _mlflow_loggers():
            for handler in logger.handlers:
                # MLflow shares one handler between several loggers: swap it once, or its original stream is lost.
                if any(handler is done for done, _ in swapped):
                    continue
                if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                    swapped.append((handler, handler.stream))
                    _set_stream(handler, handle)
        try:
            with contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
                yield handle
        finally:
            for handler, stream in reversed(swapped):
                _set_stream(handler, stream)
            # A handler created while we were capturing (MLflow configures its loggers on first import) took our
            # file as its stream: hand it the real stderr before the file closes.
            for handler in _all_handlers():
                if isinstance(handler, logging.StreamHandler) and handler.stream in (handle, raw):
                    _set_stream(handler, sys.stderr)
            handle.flush()


@contextlib.contextmanager
def active_experiment(name: str) -> Iterator[Any]:
    """`mlflow.set_experiment(name)` for the duration, then the previous active experiment back.

    MLflow keeps the active experiment in process-wide state (a module global and MLFLOW_EXPERIMENT_ID): left
    behind, it would send the traces of later, unrelated MLflow calls in the same process (the app, a test) to
    this experiment, or to a store that no longer holds it.
    """
    import mlflow
    from mlflow.tracking import fluent

    saved_id = fluent._active_experiment_id
    saved_env = os.environ.get("MLFLOW_EXPERIMENT_ID")
    try:
        yield mlflow.set_experiment(name)
    finally:
        fluent._active_experiment_id = saved_id
        if saved_env is None:
            os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        else:
            os.environ["MLFLOW_EXPERIMENT_ID"] = saved_env


_traced_uri: str | None = None


def follow_tracking_uri() -> str:
    """Make MLflow's trace exporter write to `tracking_uri()`, and return it.

    MLflow builds its trace exporter once per process, bound to the store in force at the first trace: if
    MLFLOW_TRACKING_URI changes later in the same process, traces would still go to the old store. Resetting the
    tracer when the URI changed makes the next trace bind to the new one.
    """
    global _traced_uri
    uri = tracking_uri()
    if _traced_uri is not None and uri != _traced_uri:
        import mlflow.tracing

        mlflow.tracing.reset()
    _traced_uri = uri
    return uri


def scrub_assessment(assessment: Any, scrub: Callable[[object], str]) -> None:
    """`assessment`'s rationale and error (message, stack trace) scrubbed in place."""
    if getattr(assessment, "rationale", None):
        assessment.rationale = scrub(assessment.rationale)
    error = getattr(assessment, "error", None)
    if error is None:  # an Expectation, or a feedback without error
        feedback = getattr(assessment, "feedback", None)
        error = getattr(feedback, "error", None)
    if error is not None:
        for name in ("error_message", "stack_trace"):
            if getattr(error, name, None):
                setattr(error, name, scrub(getattr(error, name)))


@contextlib.contextmanager
def scrubbed_assessments(scrub: Callable[[object], str]) -> Iterator[None]:
    """While active, every assessment `mlflow.genai.evaluate` logs has its rationale and error scrubbed.

    A judge's error (and its stack trace) is the judge server's words: one that repeats the request's headers would
    store the key in every failed row's assessment. MLflow builds and logs those assessments itself, in
    `harness._log_assessments`; this wraps that one function for the duration (hold MLFLOW_LOCK around it).
    """
    try:
        from mlflow.genai.evaluation import harness
    except ImportError:  # pragma: no cover - a later MLflow may log assessments elsewhere
        yield
        return
    original = getattr(harness, "_log_assessments", None)
    if original is None:  # pragma: no cover - see above
        yield
        return

    def log_scrubbed(*args: Any, **kwargs: Any) -> Any:
        assessments = kwargs.get("assessments", args[2] if len(args) > 2 else ())
        for assessment in assessments or ():
            scrub_assessment(assessment, scrub)
        return original(*args, **kwargs)

    harness._log_assessments = log_scrubbed
    try:
        yield
    finally:
        harness._log_assessments = original
