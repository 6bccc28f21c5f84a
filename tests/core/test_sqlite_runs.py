"""core.sqlite_runs, the mlflow-free reader behind `proctor runs`: it must answer exactly what MlflowClient answers.

Every listing, resolution and opened run is computed twice on the same real store, once through the sqlite reader
and once with it switched off (MlflowClient), and the two must be equal. The reader must never write to the store.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from core.errors import InputError
from core.runs import list_runs, load_run, resolve_run
from core.sqlite_runs import StoreUnreadable, local_artifact, open_store, sqlite_file
from tests.runs_support import assert_same_infos, log_reader_runs, store_at, via_mlflow_client


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("store")
    with store_at(folder) as uri:
        return {"uri": uri, "folder": folder, **log_reader_runs(folder)}


@pytest.fixture(autouse=True)
def _use_store(clean_env: Path, store: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(store["uri"]))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_default_store_is_read_without_mlflow(store: dict[str, object]) -> None:
    reader = open_store(str(store["uri"]))
    assert reader is not None
    assert reader.experiment_by_name("proctor") is not None
    assert {e.name for e in reader.active_experiments()} >= {"proctor", "other"}


@pytest.mark.parametrize("experiment", [None, "other"])
def test_listing_equals_mlflow_client(store: dict[str, object], experiment: str | None,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fast = list_runs(experiment)
    via_mlflow_client(monkeypatch)
    slow = list_runs(experiment)
    assert_same_infos(fast, slow)
    assert store["deleted"] not in {r.run_id for r in fast}
    if experiment is None:
        assert [r.run_id for r in fast] == [store["again"], store["mini"], store["nano"]]


def test_unknown_experiment_is_the_same_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError) as fast:
        list_runs("nope")
    via_mlflow_client(monkeypatch)
    with pytest.raises(InputError) as slow:
        list_runs("nope")
    assert str(fast.value) == str(slow.value)
    assert "other" in str(fast.value)


@pytest.mark.parametrize("ref", ["nano", "mini", "prefix", "name", "deleted-id"])
def test_resolving_equals_mlflow_client(store: dict[str, object], ref: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = {"nano": str(store["nano"]), "mini": str(store["mini"]), "prefix": str(store["mini"])[:12],
            "name": "gpt-4.1-nano", "deleted-id": str(store["deleted"])}[ref]
    fast = resolve_run(text)
    via_mlflow_client(monkeypatch)
    slow = resolve_run(text)
    assert_same_infos([fast], [slow])
    if ref == "name":
        assert fast.run_id == store["again"]


def test_opening_a_run_equals_mlflow_client(store: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    fast = load_run(str(store["mini"]))
    assert fast.results_source == "artifact"
    assert len(fast.results) == 5
    via_mlflow_client(monkeypatch)
    slow = load_run(str(store["mini"]))
    assert_same_infos([fast.info], [slow.info])
    assert (fast.columns, fast.rows, fast.results_source) == (slow.columns, slow.rows, slow.results_source)
    assert fast.results.equals(slow.results)
    assert fast.to_dict()["results"] == slow.to_dict()["results"]


def test_comparing_equals_mlflow_client(store: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    # The comparison read without mlflow or pandas, and through MlflowClient, must be the same to the last digit.
    from core.runs import compare_runs

    fast = compare_runs(str(store["nano"]), str(store["mini"])[:10]).to_dict()
    assert fast["matched_rows"] == 5 and fast["paired"]["n"] == 5
    via_mlflow_client(monkeypatch)
    slow = compare_runs(str(store["nano"]), str(store["mini"])[:10]).to_dict()
    assert fast == slow


def test_a_run_without_local_results_still_opens_through_mlflow(store: dict[str, object]) -> None:
    detail = load_run(str(store["other"]))
    assert detail.info.name == "other-model"
    assert detail.results_source == ""


def test_the_reader_never_writes(store: dict[str, object]) -> None:
    db = Path(str(store["folder"])) / "mlflow.db"
    before = _digest(db)
    list_runs()
    load_run(str(store["nano"]))
    resolve_run("gpt-4.1-mini")
    assert _digest(db) == before


def test_a_sqlite_file_that_is_not_an_mlflow_store_is_left_to_mlflow(tmp_path: Path) -> None:
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE runs (id INTEGER)")
    reader = open_store(f"sqlite:///{foreign}")
    assert reader is not None
    with pytest.raises(StoreUnreadable):
        reader.active_experiments()


def test_only_existing_local_sqlite_files_are_read_directly(tmp_path: Path) -> None:
    assert open_store("http://127.0.0.1:5000") is None
    assert open_store("postgresql://u@h/db") is None
    assert open_store("sqlite:///:memory:") is None
    assert open_store(f"sqlite:///{tmp_path}/missing.db") is None
    assert sqlite_file(f"sqlite:///{tmp_path}/a%20b.db") == tmp_path / "a b.db"


def test_local_artifacts_only_for_local_locations(tmp_path: Path) -> None:
    assert local_artifact(tmp_path.as_uri() + "/artifacts", "results/results.csv") == (
        tmp_path / "artifacts" / "results" / "results.csv")
    assert local_artifact(str(tmp_path / "artifacts"), "x.csv") == tmp_path / "artifacts" / "x.csv"
    assert local_artifact("s3://bucket/1/abc/artifacts", "x.csv") is None
    assert local_artifact("mlflow-artifacts:/1/abc/artifacts", "x.csv") is None
    assert local_artifact("", "x.csv") is None


def test_proctor_runs_on_a_local_store_never_imports_mlflow(store: dict[str, object]) -> None:
    # The point of the reader: listing, opening and comparing runs in the default store costs no import of mlflow,
    # pandas or scipy (seconds each); the statistics come from the standard library.
    import os
    import subprocess
    import sys

    script = ("import sys\nfrom tui.cli import main\n"
              "assert main(['runs']) == 0\n"
              f"assert main(['runs', {str(store['nano'])[:8]!r}]) == 0\n"
              f"assert main(['compare', {str(store['nano'])!r}, {str(store['mini'])!r}]) == 0\n"
              f"assert main(['compare', '--json', {str(store['nano'])!r}, {str(store['mini'])!r}]) == 0\n"
              "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'pandas', 'scipy', 'numpy'})\n"
              "print(' '.join(heavy) or 'NONE')")
    env = {**os.environ, "MLFLOW_TRACKING_URI": str(store["uri"]),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                            cwd=str(store["folder"]))
    assert result.returncode == 0, result.stderr
    assert "gpt-4.1-mini" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "NONE"
