"""Reading runs straight from a local sqlite MLflow store, without importing mlflow: the fast path of core.runs.

`proctor runs`, the Runs pane, a run's detail and a comparison only read params, tags, latest metrics and the
artifact location of a few runs. Going through `MlflowClient` costs about 3 s of imports (mlflow, SQLAlchemy) and
a schema check before the first row; the same rows read with the standard library's `sqlite3` take milliseconds.

The store is opened read-only (`mode=ro`): nothing here can change it, and MLflow stays the only writer. The
tables read (`experiments`, `runs`, `params`, `tags`, `latest_metrics`) have kept these columns since MLflow 1.x;
if a store lacks one (another MLflow version, a store being created), `StoreUnreadable` is raised and callers fall
back to `MlflowClient`. Anything that is not a local sqlite file (a server, PostgreSQL, a file store) is left to
MLflow: `open_store` returns None.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

# What each read table must hold; checked once per connection, so a schema we do not know is never half-read.
_REQUIRED = {
    "experiments": {"experiment_id", "name", "lifecycle_stage"},
    "runs": {"run_uuid", "name", "experiment_id", "status", "start_time", "lifecycle_stage", "artifact_uri"},
    "params": {"run_uuid", "key", "value"},
    "tags": {"run_uuid", "key", "value"},
    "latest_metrics": {"run_uuid", "key", "value", "is_nan"},
}
# SQLite's default limit on host parameters in one statement is 999 (older builds): stay below it.
_CHUNK = 500


class StoreUnreadable(Exception):
    """The sqlite file is not an MLflow store this module knows how to read: use MlflowClient instead."""


@dataclass
class RawRun:
    """One run as stored: what `core.runs` needs to build a RunInfo, with no mlflow object involved."""

    run_id: str
    name: str
    experiment_id: str
    status: str
    start_time: int | None  # ms since the epoch, as MLflow stores it
    artifact_uri: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    lifecycle_stage: str


def sqlite_file(uri: str) -> Path | None:
    """The file behind a `sqlite:///PATH` tracking URI, or None for any other kind of store (or `:memory:`)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = unquote(uri[len("sqlite:///"):].split("?", 1)[0])
    if path in ("", ":memory:"):
        return None
    return Path(path)


def open_store(uri: str) -> SqliteRuns | None:
    """A reader over the store at `uri` when it is an existing local sqlite file, else None (use MLflow).

    Raises `StoreUnreadable` when the file exists but is not a store this module can read.
    """
    path = sqlite_file(uri)
    if path is None or not path.is_file():
        return None
    return SqliteRuns(path)


class SqliteRuns:
    """Read-only queries on one sqlite MLflow store. Each call opens and closes its own connection (thread-safe).

    Make one per task (a listing, opening a run): the schema is checked once, on its first connection.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._checked = False  # the schema is checked on the first connection of this reader, not on every one

    def _connect(self) -> sqlite3.Connection:
        # mode=ro: never create or write; a writer holding the lock is waited for (up to 20 s, as MLflow does).
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        try:
            connection = sqlite3.connect(uri, uri=True, timeout=20.0)
        except sqlite3.Error as error:
            raise StoreUnreadable(str(error)) from error
        if self._checked:
            return connection
        try:
            for table, columns in _REQUIRED.items():
                have = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
                if not columns <= have:
                    raise StoreUnreadable(f"table {table} lacks {sorted(columns - have)}")
            self._checked = True
        except sqlite3.Error as error:
            connection.close()
            raise StoreUnreadable(str(error)) from error
        except StoreUnreadable:
            connection.close()
            raise
        return connection

    def _query(self, sql: str, args: Iterable[object] = ()) -> list[tuple]:
        connection = self._connect()
        try:
            return connection.execute(sql, tuple(args)).fetchall()
        except sqlite3.Error as error:
            raise StoreUnreadable(str(error)) from error
        finally:
            connection.close()

    # -- experiments

    def experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment named `name`, deleted or not (as `MlflowClient.get_experiment_by_name`)."""
        rows = self._query("SELECT experiment_id, name, lifecycle_stage FROM experiments WHERE name = ?", [name])
        return Experiment(str(rows[0][0]), rows[0][1], rows[0][2]) if rows else None

    def active_experiments(self) -> list[Experiment]:
        """Every experiment not deleted (as `MlflowClient.search_experiments()`)."""
        rows = self._query("SELECT experiment_id, name, lifecycle_stage FROM experiments "
                           "WHERE lifecycle_stage = 'active' ORDER BY experiment_id")
        return [Experiment(str(i), n, s) for i, n, s in rows]

    def experiment_name(self, experiment_id: str) -> str:
        rows = self._query("SELECT name FROM experiments WHERE experiment_id = ?", [experiment_id])
        return rows[0][0] if rows else ""

    # -- runs

    def runs(self, experiment_ids: list[str]) -> list[RawRun]:
        """The active runs of these experiments, newest first, with their params, tags and latest metrics."""
        if not experiment_ids:
            return []
        connection = self._connect()
        try:
            marks = ",".join("?" * len(experiment_ids))
            rows = connection.execute(
                "SELECT run_uuid, name, experiment_id, status, start_time, artifact_uri FROM runs "
                f"WHERE lifecycle_stage = 'active' AND experiment_id IN ({marks}) "
                "ORDER BY start_time DESC, run_uuid", [int(i) for i in experiment_ids]).fetchall()
            return self._fill(connection, rows)
        except (sqlite3.Error, ValueError) as error:
            raise StoreUnreadable(str(error)) from error
        finally:
            connection.close()

    def run(self, run_id: str) -> RawRun | None:
        """One run by its full id, deleted or not (as `MlflowClient.get_run`), or None."""
        connection = self._connect()
        try:
            rows = connection.execute(
                "SELECT run_uuid, name, experiment_id, status, start_time, artifact_uri FROM runs "
                "WHERE run_uuid = ?", [run_id]).fetchall()
            found = self._fill(connection, rows)
        except sqlite3.Error as error:
            raise StoreUnreadable(str(error)) from error
        finally:
            connection.close()
        return found[0] if found else None

    @staticmethod
    def _fill(connection: sqlite3.Connection, rows: list[tuple]) -> list[RawRun]:
        runs = {r[0]: RawRun(run_id=r[0], name=r[1] or "", experiment_id=str(r[2]), status=r[3] or "",
                             start_time=r[4], artifact_uri=r[5] or "") for r in rows}
        ids = list(runs)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for run_id, key, value in connection.execute(
                    f"SELECT run_uuid, key, value FROM params WHERE run_uuid IN ({marks})", chunk):
                runs[run_id].params[key] = "" if value is None else str(value)
            for run_id, key, value in connection.execute(
                    f"SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ({marks})", chunk):
                runs[run_id].tags[key] = "" if value is None else str(value)
            for run_id, key, value, is_nan in connection.execute(
                    f"SELECT run_uuid, key, value, is_nan FROM latest_metrics WHERE run_uuid IN ({marks})", chunk):
                runs[run_id].metrics[key] = math.nan if is_nan else float(value)
        return list(runs.values())


def local_artifact(artifact_uri: str, relative: str) -> Path | None:
    """The local file of artifact `relative` under a run's `artifact_uri`, when that is a local folder, else None.

    MLflow's sqlite store records a plain path or a `file://` URI for runs logged to the local disk; any other
    scheme (s3, an `mlflow-artifacts:` proxy) is left to MLflow.
    """
    if not artifact_uri:
        return None
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file":
        base = Path(unquote(parsed.path))
    elif parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        base = Path(artifact_uri)
    else:
        return None
    return base / relative
