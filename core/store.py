"""The MLflow tracking store checked before anything is paid for, and its writes retried while it is locked.

- `check_store(experiment)`: called by `evaluate` before any model is asked, and by `runs` before listing. It fails
  fast, with one line naming `MLFLOW_TRACKING_URI` (credentials masked), when the store cannot serve:
  - a server that refuses connections, is not found, or accepts and never answers: MLflow's own HTTP client would
    retry for about 250 s (`MLFLOW_HTTP_REQUEST_MAX_RETRIES` 7, backoff factor 2, `MLFLOW_HTTP_REQUEST_TIMEOUT`
    120 s), and importing mlflow alone takes 3-11 s on a loaded machine, so an HTTP store is asked with stdlib
    requests: `/health` bounded by `CHECK_TIMEOUT_S`, then (the server being alive) the experiment, bounded by
    `SERVER_ANSWER_TIMEOUT_S` since a server worker's first API request opens its store; other stores go through
    MLflow's client with its HTTP retries turned off for the check (`bounded_http`);
  - a SQLite file that is not an MLflow store (MLflow would add its tables to it): it is opened read-only and left
    byte-identical; an empty or missing file is fine (MLflow creates its tables there);
  - a SQLite file that is corrupt, or not SQLite at all;
  - a store folder Proctor cannot write to (read-only, full disk), when the caller writes;
  - a deleted experiment (MLflow refuses to log to it).
- `retry_locked(action)`: a SQLite store held by another writer answers "database is locked"; the action is tried
  again, with backoff, for at most `store_wait_s()` seconds (`PROCTOR_STORE_WAIT`, default 120).
- `describe_store_error(error)`: one line for an MLflow failure, without the traceback.

mlflow is imported only by the checks that need it (about 3 s), never at import time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from core.errors import ConfigError, ProctorError

T = TypeVar("T")

# Seconds one HTTP request of the check may wait for an answer (MLflow reads it as an int).
CHECK_TIMEOUT_S = 3
# Seconds a server that answered /health may take over the experiment query: each worker of `mlflow server` opens
# its store on its first API request, seconds later than /health answers (6-7 s measured at load 14 on 2 cores,
# over SQLite and PostgreSQL alike), so a live server must not be given up after CHECK_TIMEOUT_S.
SERVER_ANSWER_TIMEOUT_S = 60
DEFAULT_STORE_WAIT_S = 120.0
SQLITE_MAGIC = b"SQLite format 3\x00"
# Tables every MLflow SQL store has, whatever its schema version.
MLFLOW_TABLES = frozenset({"experiments", "runs", "alembic_version"})
# A quick_check reads every page: skip it on very large stores, where it would cost seconds.
QUICK_CHECK_MAX_BYTES = 256 * 1024 * 1024
_LOCKED = re.compile(r"database (table )?is locked|database is busy|SQLITE_BUSY", re.I)


class StoreError(ProctorError):
    """The tracking store failed while a run was being logged (locked too long, disk full...).

    `results`: what was obtained before it failed (an evaluation's per-row verdicts), for the caller to keep.
    """

    exit_code = 1

    def __init__(self, message: str, *, results: Any = None, run_id: str = "") -> None:
        super().__init__(message)
        self.results = results
        self.run_id = run_id


@dataclass
class StoreInfo:
    """What the check found. `experiment_id` is None when the experiment does not exist yet (it will be made)."""

    uri: str
    shown: str
    kind: str  # "sqlite", "http", "file" or "other"
    experiment_id: str | None = None


def shown_uri(uri: str) -> str:
    """`uri` fit to show: credentials masked (core.safety.mask_url)."""
    from core.safety import mask_url

    return mask_url(uri)


def _where(uri: str) -> str:
    """How a message names the store: the variable when the user set it, else MLflow's default file."""
    shown = shown_uri(uri)
    if (os.environ.get("MLFLOW_TRACKING_URI") or "").strip():
        return f"MLFLOW_TRACKING_URI={shown}"
    return f"the MLflow store {shown} (MLflow's default; set MLFLOW_TRACKING_URI for another)"


def sqlite_path(uri: str) -> Path | None:
    """The file of a `sqlite:///...` tracking URI (relative to the current folder when relative), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    if path in ("", ":memory:"):
        return None
    return Path(path)


def store_wait_s() -> float:
    """`PROCTOR_STORE_WAIT`: seconds a locked SQLite store is waited for, in all (default 120)."""
    raw = (os.environ.get("PROCTOR_STORE_WAIT") or "").strip()
    if not raw:
        return DEFAULT_STORE_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"PROCTOR_STORE_WAIT must be a number of seconds, not {raw!r}") from None
    if not value >= 0:
        raise ConfigError(f"PROCTOR_STORE_WAIT must be zero or more seconds, not {raw!r}")
    return value


# ---------------------------------------------------------------- errors


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_locked(error: BaseException) -> bool:
    """True when `error` (or what caused it) is SQLite saying another connection holds the database."""
    return any(_LOCKED.search(str(e)) for e in _chain(error))


def _is_disk_full(error: BaseException) -> bool:
    return any(isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
               or re.search(r"disk is full|No space left|Disk quota", str(e), re.I) for e in _chain(error))


def _is_read_only(error: BaseException) -> bool:
    return any(isinstance(e, OSError) and e.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
               or re.search(r"readonly database|read-only file system|unable to open database file|"
                            r"Permission denied", str(e), re.I) for e in _chain(error))


def describe_store_error(error: BaseException, uri: str | None = None) -> str:
    """One line saying what went wrong with the store, without the traceback (URLs in it masked)."""
    if uri is None:
        from core.tracking import tracking_uri

        uri = tracking_uri()
    if is_locked(error):
        return "the store is locked by another writer (SQLite: database is locked)"
    if _is_disk_full(error):
        return "the disk is full"
    if _is_read_only(error):
        return "it cannot be written (read-only file or folder, or no permission)"
    text = ""
    for e in _chain(error):
        text = " ".join(str(e).split())
        if text:
            break
    lowered = text.lower()
    if "connection refused" in lowered or "failed to establish a new connection" in lowered:
        return "connection refused (is the server running?)"
    if "name or service not known" in lowered or "failed to resolve" in lowered or "nodename nor servname" in \
            lowered or "temporary failure in name resolution" in lowered:
        return "host not found"
    if "timed out" in lowered or "timeout" in lowered:
        return f"no answer within {CHECK_TIMEOUT_S} s"
    if "malformed" in lowered or "not a database" in lowered:
        return "the SQLite file is corrupt"
    code = re.search(r"error code (\d{3})", text)
    if code:
        return f"the server answered HTTP {code.group(1)}: it does not look like an MLflow tracking server"
    text = text.replace(uri, shown_uri(uri))
    return (text or type(error).__name__)[:240]


# ---------------------------------------------------------------- the check


def _nearest_folder(path: Path) -> Path:
    folder = path.resolve().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _probe_writable(folder: Path, where: str, what: str = "") -> None:
    """Create and remove a small file in `folder`: SQLite needs the folder too (its journal lives beside it)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".proctor-probe-", dir=folder)
        try:
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            reason = "the disk is full"
        elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            reason = "the folder is read-only"
        else:
            reason = error.strerror or str(error)
        raise ConfigError(f"{where}: cannot write in {folder}{what} ({reason}): free space there, or set "
                          "MLFLOW_TRACKING_URI to a store in a writable folder") from None


def _check_sqlite(path: Path, uri: str, writable: bool) -> None:
    where = _where(uri)
    if path.is_dir():
        raise ConfigError(f"{where}: {path} is a folder, not a SQLite file")
    if path.exists():
        try:
            size = path.stat().st_size
            with open(path, "rb") as handle:
                head = handle.read(len(SQLITE_MAGIC))
        except OSError as error:
            raise ConfigError(f"{where}: cannot read {path} ({error.strerror or error})") from None
        if size:
            if head != SQLITE_MAGIC:
                raise ConfigError(f"{where}: {path} is not a SQLite database (corrupt, or another kind of file); "
                                  "it was left untouched: point MLFLOW_TRACKING_URI at an MLflow store")
            _inspect_sqlite(path, where, quick_check=size <= QUICK_CHECK_MAX_BYTES)
        if writable and not os.access(path, os.W_OK):
            raise ConfigError(f"{where}: {path} is read-only: make it writable, or set MLFLOW_TRACKING_URI to "
                              "another store")
    if writable:
        _probe_writable(_nearest_folder(path), where)


def _inspect_sqlite(path: Path, where: str, quick_check: bool) -> None:
    """Read the file's table names (read-only: nothing is written); refuse a corrupt or foreign database."""
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error as error:
        raise ConfigError(f"{where}: cannot open {path} ({error})") from None
    try:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if quick_check:
            verdict = con.execute("PRAGMA quick_check(1)").fetchone()
            if not verdict or verdict[0] != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed ({verdict[0] if verdict else ''})")
    except sqlite3.OperationalError as error:
        if is_locked(error):
            return  # another writer holds it right now: MLflow waits for it (and we retry)
        raise ConfigError(f"{where}: {path} cannot be read ({error}); it was left untouched") from None
    except sqlite3.DatabaseError as error:
        raise ConfigError(f"{where}: {path} is corrupt ({error}); it was left untouched: restore it from a "
                          "backup, or point MLFLOW_TRACKING_URI at another store") from None
    finally:
        con.close()
    if tables and not MLFLOW_TABLES <= tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise ConfigError(f"{where}: {path} is a SQLite database but not an MLflow store (its tables: {shown}); "
                          "Proctor will not add MLflow's tables to it: point MLFLOW_TRACKING_URI at another file")


def _auth_headers(uri: str) -> dict[str, str]:
    """The credentials MLflow itself would send (core.rest_runs.authorization: user info in the URI, else
    MLFLOW_TRACKING_USERNAME and _PASSWORD, else MLFLOW_TRACKING_TOKEN)."""
    from core.rest_runs import authorization

    found = authorization(uri)
    return {"Authorization": found} if found else {}


def _check_http(uri: str, experiment: str | None) -> str | None:
    """Ask the server for the experiment with bounded requests (stdlib only: importing mlflow takes seconds).

    First `/health`, within CHECK_TIMEOUT_S: a dead server (refused, unknown, or accepting and never answering)
    is told apart in seconds, where MLflow's own client would retry for about 250 s. Then, the server being alive,
    the experiment query within SERVER_ANSWER_TIMEOUT_S: a worker's first API request opens its store, seconds
    after /health answers. Returns the experiment's lifecycle stage ("active", "deleted") and id as "stage:id", or
    None when it does not exist or was not asked for.
    """
    import json
    import ssl
    import urllib.error
    import urllib.request
    from urllib.parse import quote

    where = _where(uri)
    try:
        parts = urlsplit(uri)
        _ = parts.port
    except ValueError as error:
        raise ConfigError(f"{where} is not a valid URL ({error})") from None
    if not parts.hostname:
        raise ConfigError(f"{where} is not a valid URL (no host)")
    # User info in the URL is sent as MLflow's client sends it (Basic auth), never in a request URL.
    netloc = parts.netloc.rpartition("@")[2]
    base = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
    headers = {"Accept": "application/json", **_auth_headers(uri)}
    context = None
    if parts.scheme == "https":
        from core.rest_runs import ssl_context, tls_settings

        try:  # MLflow's TLS settings (MLFLOW_TRACKING_INSECURE_TLS, _SERVER_CERT_PATH, _CLIENT_CERT_PATH)
            context = ssl_context(tls_settings())
        except OSError as error:
            raise ConfigError(f"{where}: the TLS settings cannot be used ({error.strerror or error})") from None
    unreachable = ("the MLflow tracking server cannot be reached ({}): start it, or point MLFLOW_TRACKING_URI at a "
                   "running one")

    def failed(error: BaseException, timeout: int) -> ConfigError:
        reason = getattr(error, "reason", error)
        if isinstance(reason, socket.gaierror):
            text = "host not found"
        elif isinstance(reason, ConnectionRefusedError):
            text = "connection refused"
        elif isinstance(reason, TimeoutError) or "timed out" in str(reason):
            if timeout != CHECK_TIMEOUT_S:
                return ConfigError(f"{where}: the MLflow tracking server is up (it answered /health) but did not "
                                   f"answer an experiment query within {timeout} s: it is overloaded, or its "
                                   "database is not answering")
            text = f"no answer within {timeout} s"
        elif isinstance(reason, ssl.SSLError):
            text = f"TLS error: {reason}"
        else:
            text = getattr(reason, "strerror", None) or str(reason)
        return ConfigError(f"{where}: {unreachable.format(text)}")

    try:
        # Any HTTP answer, even an error (a proxy without /health, a login page), shows the server is alive.
        with urllib.request.urlopen(urllib.request.Request(f"{base}/health", headers=headers),  # noqa: S310
                                    timeout=CHECK_TIMEOUT_S, context=context) as response:
            response.read(1 << 10)
    except urllib.error.HTTPError:
        pass
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise failed(error, CHECK_TIMEOUT_S) from None
    url = f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name={quote(experiment or 'Default')}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),  # noqa: S310
                                    timeout=SERVER_ANSWER_TIMEOUT_S, context=context) as response:
            body = response.read(1 << 20)
    except urllib.error.HTTPError as error:
        body = error.read(1 << 16) if error.fp else b""
        code = error.code
        if code in (401, 403):
            raise ConfigError(f"{where}: the tracking server refused Proctor (HTTP {code}): check "
                              "MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
                              ) from None
        if code == 404 and b"RESOURCE_DOES_NOT_EXIST" in body:
            return None  # a real MLflow server: the experiment is not there yet
        raise ConfigError(f"{where}: the server answered HTTP {code}: it does not look like an MLflow tracking "
                          "server") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise failed(error, SERVER_ANSWER_TIMEOUT_S) from None
    try:
        found = json.loads(body or b"{}").get("experiment") or {}
    except (ValueError, AttributeError):
        raise ConfigError(f"{where}: the server's answer is not JSON: it does not look like an MLflow tracking "
                          "server") from None
    if not experiment or not found:
        return None
    return f"{found.get('lifecycle_stage', 'active')}:{found.get('experiment_id', '')}"


@contextlib.contextmanager
def bounded_http(timeout: int = CHECK_TIMEOUT_S) -> Iterator[None]:
    """MLflow's HTTP requests without retries and with a short timeout, for the duration (hold MLFLOW_LOCK)."""
    values = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(timeout))}
    with temporary_environ(values):
        yield


@contextlib.contextmanager
def temporary_environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration, then put back what was there (process-wide: MLflow reads its
    settings from the environment, so callers hold MLFLOW_LOCK)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _refuse_deleted(experiment: str | None, stage: str, experiment_id: str, shown: str) -> None:
    if stage == "deleted":
        raise ConfigError(f"experiment {experiment!r} was deleted in {shown}: restore it (`mlflow experiments "
                          f"restore --experiment-id {experiment_id}`), or choose another with --experiment or "
                          "PROCTOR_EXPERIMENT")


def _check_sqlite_experiment(uri: str, experiment: str | None, info: StoreInfo) -> bool:
    """The experiment check on an MLflow SQLite file read directly (core.sqlite_runs: read-only, no mlflow import,
    milliseconds instead of seconds); False when that reader cannot answer and MLflow's client must."""
    from core.sqlite_runs import StoreUnreadable, open_store

    try:
        reader = open_store(uri)
        if reader is None:
            return False
        found = reader.experiment_by_name(experiment) if experiment else None
    except StoreUnreadable:
        return False
    if found is not None:
        _refuse_deleted(experiment, found.lifecycle_stage, found.experiment_id, info.shown)
        info.experiment_id = found.experiment_id
    return True


def check_store(experiment: str | None = None, *, writable: bool = True,
                secrets: list[str] | None = None, quick: bool = False) -> StoreInfo:
    """Check that the tracking store in force can serve, before anything costly; return what was found.

    `experiment`: also check that this experiment is not deleted. `writable`: the caller will log to the store
    (a missing SQLite file is then fine: MLflow creates it; its folder must be writable). A read-only caller
    (`runs`) on a missing SQLite file gets back without MLflow being touched. Raises `ConfigError` (exit 2) with
    one line naming the store. `quick`: only what needs no mlflow import (an HTTP store is checked in full; a
    SQLite file's header and tables, its folder), for a first check before slow work such as reading the input.
    """
    from core.tracking import MLFLOW_LOCK, captured_output, configure_mlflow

    uri = configure_mlflow()
    info = StoreInfo(uri=uri, shown=shown_uri(uri), kind="other")
    path = sqlite_path(uri)
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if path is not None:
        info.kind = "sqlite"
        _check_sqlite(path, uri, writable)
        if not path.exists():
            # Nothing to ask MLflow yet: the folder is writable, and opening the store through MLflow here would
            # create it with a silent 9 s migration (evaluate creates it later as its own phase, core.store_setup).
            if writable and not quick:
                _check_artifact_folder(None, _where(uri))  # a new experiment's files go to ./mlruns
            return info
        if not writable and _check_sqlite_experiment(uri, experiment, info):
            return info  # a reader (`runs`) needs no more; a writer also gets MLflow's own schema check below
    elif scheme in ("http", "https"):
        info.kind = "http"
        stage = _check_http(uri, experiment)
        if stage is not None:
            _refuse_deleted(experiment, stage.partition(":")[0], stage.partition(":")[2], info.shown)
            info.experiment_id = stage.partition(":")[2] or None
        return info
    elif scheme == "file" or not scheme:
        info.kind = "file"
    if quick:
        return info
    where = _where(uri)
    with MLFLOW_LOCK, captured_output(secrets=secrets), bounded_http():
        try:
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=uri)
            if experiment:
                found = retry_locked(lambda: client.get_experiment_by_name(experiment))
            else:
                retry_locked(lambda: client.search_experiments(max_results=1))
                found = None
        except Exception as error:  # noqa: BLE001 - whatever MLflow raises, the store cannot serve
            raise ConfigError(f"{where}: the tracking store cannot be used ({describe_store_error(error, uri)})"
                              ) from None
    if found is not None:
        _refuse_deleted(experiment, found.lifecycle_stage, found.experiment_id, info.shown)
        info.experiment_id = found.experiment_id
    if writable and info.kind == "sqlite":
        _check_artifact_folder(found, where)
    return info


def _check_artifact_folder(experiment: object | None, where: str) -> None:
    """A SQLite store keeps runs' files (artifacts) elsewhere: the experiment's folder, or ./mlruns for a new one."""
    from urllib.parse import unquote

    location = str(getattr(experiment, "artifact_location", "") or "")
    if location.startswith("file://"):
        folder = Path(unquote(urlsplit(location).path))
    elif location and "://" in location:
        return  # a remote artifact store (s3://, ...): only MLflow can tell
    else:
        # MLflow's default artifact root for a SQL store: ./mlruns in the folder it is started from.
        folder = Path(location) if location else Path.cwd() / "mlruns"
    _probe_writable(_nearest_folder(folder / "x"), where, f", where MLflow keeps the runs' files ({folder})")


def retry_locked(action: Callable[[], T], *, wait_s: float | None = None,
                 on_wait: Callable[[float], None] | None = None) -> T:
    """`action()`, tried again while the SQLite store is locked by another writer, for `wait_s` seconds in all.

    Each attempt already waits up to 20 s inside SQLite (MLflow's busy timeout); between attempts we back off from
    0.5 s to 5 s. `on_wait(seconds_waited)` is told before each new attempt. Other errors are raised at once.
    """
    budget = store_wait_s() if wait_s is None else wait_s
    started = time.monotonic()
    delay = 0.5
    while True:
        try:
            return action()
        except Exception as error:
            waited = time.monotonic() - started
            if not is_locked(error) or waited >= budget:
                raise
        if on_wait is not None:
            on_wait(waited)
        time.sleep(min(delay, max(0.0, budget - waited)))
        delay = min(delay * 2, 5.0)
