"""core.store: the tracking store checked before anything costly, against real sockets and real SQLite files.

Unreachable servers are real: a closed port, and a socket that accepts connections and never answers. SQLite files
are real files: one of another application, random bytes, a damaged MLflow-like database; each is checked to be
left byte-identical. Locks are real: another connection holds `BEGIN EXCLUSIVE`.
"""

from __future__ import annotations

import hashlib
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.store import check_store, describe_store_error, is_locked, retry_locked, sqlite_path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers a byte."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sqlite_path() -> None:
    assert sqlite_path("sqlite:////tmp/a/mlflow.db") == Path("/tmp/a/mlflow.db")
    assert sqlite_path("sqlite:///mlflow.db?timeout=5") == Path("mlflow.db")
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("http://127.0.0.1:5000") is None


def test_closed_port_fails_at_once_naming_the_variable_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:s3cret-pw@127.0.0.1:{port}")
    with pytest.raises(ConfigError) as caught:
        check_store("proctor")
    message = str(caught.value)
    assert f"MLFLOW_TRACKING_URI=http://****@127.0.0.1:{port}" in message
    assert "connection refused" in message and "s3cret-pw" not in message and "\n" not in message


def test_a_server_that_never_answers_is_given_up(monkeypatch: pytest.MonkeyPatch, silent_server: int) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{silent_server}")
    with pytest.raises(ConfigError, match=r"MLFLOW_TRACKING_URI=http://127\.0\.0\.1:\d+: .*no answer within 3 s"):
        check_store("proctor")


@pytest.mark.parametrize(("uri", "message"), [
    ("http://127.0.0.1:abc", "is not a valid URL"),
    ("http://", "is not a valid URL"),
    ("nosuchscheme://x", "the tracking store cannot be used"),
])
def test_bad_tracking_uris_are_one_line(monkeypatch: pytest.MonkeyPatch, uri: str, message: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(ConfigError, match=message) as caught:
        check_store("proctor")
    assert "\n" not in str(caught.value)


def test_a_foreign_sqlite_file_is_refused_and_left_byte_identical(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    shop = tmp_path / "shop.db"
    con = sqlite3.connect(shop)
    con.executescript("CREATE TABLE customers(id INTEGER, name TEXT); INSERT INTO customers VALUES (1, 'Ada');")
    con.commit()
    con.close()
    before = _digest(shop)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{shop}")
    for writable in (True, False):
        with pytest.raises(ConfigError, match="is a SQLite database but not an MLflow store .*customers"):
            check_store("proctor", writable=writable)
    assert _digest(shop) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.db"]  # no journal, no lock file left behind


def test_random_bytes_and_a_damaged_database_are_refused_untouched(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(bytes(range(256)) * 16)
    damaged = tmp_path / "damaged.db"
    con = sqlite3.connect(damaged)
    con.executescript("CREATE TABLE experiments(x); CREATE TABLE alembic_version(x); CREATE TABLE runs(x);")
    con.executemany("INSERT INTO runs VALUES (?)", [("y" * 500,) for _ in range(400)])
    con.commit()
    con.close()
    data = bytearray(damaged.read_bytes())
    data[4096:4096 + 3000] = b"\xff" * 3000  # page 2 overwritten from its header: a torn write, a bad disk
    damaged.write_bytes(bytes(data))
    for path, message in ((junk, "is not a SQLite database"), (damaged, "is corrupt")):
        before = _digest(path)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path}")
        with pytest.raises(ConfigError, match=message):
            check_store("proctor")
        assert _digest(path) == before


def test_a_missing_store_is_not_created_by_a_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'new.db'}")
    info = check_store("proctor", writable=False)
    assert info.kind == "sqlite" and not (tmp_path / "new.db").exists()


def test_an_empty_file_becomes_a_store_and_a_deleted_experiment_is_named(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "empty.db"
    store.write_bytes(b"")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    info = check_store("proctor")
    assert info.experiment_id is None  # fine: MLflow made its tables, the experiment will be created
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    gone = client.create_experiment("gone")
    client.delete_experiment(gone)
    with pytest.raises(ConfigError, match=rf"experiment 'gone' was deleted .*--experiment-id {gone}"):
        check_store("gone")
    assert check_store("proctor").kind == "sqlite"


def _hold_lock(path: Path, seconds: float, held: threading.Event, released: threading.Event | None = None) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    held.set()
    time.sleep(seconds)
    con.execute("COMMIT")
    con.close()
    if released is not None:
        released.set()


def test_retry_locked_waits_for_another_writer(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    sqlite3.connect(path).executescript("CREATE TABLE t(x);")
    held = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(path, 1.5, held))
    holder.start()
    held.wait(10)
    waits: list[float] = []

    def write() -> int:
        con = sqlite3.connect(path, timeout=0.05)
        try:
            con.execute("INSERT INTO t VALUES (1)")
            con.commit()
            return con.execute("SELECT count(*) FROM t").fetchone()[0]
        finally:
            con.close()

    assert retry_locked(write, wait_s=60, on_wait=waits.append) == 1
    holder.join()
    assert waits, "the lock was never met: the test proved nothing"


def test_retry_locked_gives_up_after_its_budget_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    sqlite3.connect(path).executescript("CREATE TABLE t(x);")
    held = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(path, 3, held))
    holder.start()
    held.wait(10)
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            retry_locked(lambda: sqlite3.connect(path, timeout=0.05).execute("INSERT INTO t VALUES (1)"), wait_s=0.2)
        assert is_locked(caught.value)
        assert describe_store_error(caught.value, "sqlite:///x") == (
            "the store is locked by another writer (SQLite: database is locked)")
    finally:
        holder.join()


def test_other_errors_are_not_retried() -> None:
    calls = []

    def fail() -> None:
        calls.append(1)
        raise ValueError("no such table: experiments")

    with pytest.raises(ValueError):
        retry_locked(fail, wait_s=30)
    assert calls == [1]


def test_the_check_waits_for_a_store_held_past_sqlites_own_wait(tracking: str, mlflow_store: Path) -> None:
    """MLflow's SQLite sessions wait 20 s for a lock, then fail: the check tries again until the writer is done."""
    from core.store_setup import ensure_store

    ensure_store(tracking)  # a store that exists: the check itself never creates one (that is evaluate's phase)
    check_store("proctor")
    held, released = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(mlflow_store / "mlflow.db", 24, held, released))
    holder.start()
    try:
        assert held.wait(30)
        info = check_store("proctor")
        assert released.is_set()  # it waited for the writer (past SQLite's 20 s) instead of failing
    finally:
        holder.join()
    assert info.kind == "sqlite"
