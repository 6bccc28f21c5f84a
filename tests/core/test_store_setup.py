"""core.store_setup: a new sqlite store is MLflow's own migrated schema, made once per machine, shown as a phase."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.evaluation import evaluate_file
from core.store_setup import ensure_store, store_needs_setup, template_path


def _schema(db: Path) -> tuple[set[tuple[str, str, tuple[str, ...]]], str]:
    # Each statement's lines sorted: MLflow's own migrations list a table's constraints in no fixed order (they
    # come from reflection), so two stores MLflow made itself differ in that order only.
    with sqlite3.connect(db) as connection:
        objects = {(t, n, tuple(sorted(line.strip().rstrip(",") for line in (s or "").splitlines())))
                   for t, n, s in connection.execute("SELECT type, name, sql FROM sqlite_master")}
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return objects, revision


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One store made by ensure_store (building the template), one by MLflow itself, for comparison."""
    import os

    root = tmp_path_factory.mktemp("setup")
    saved = os.environ.get("PROCTOR_STATE_DIR")
    os.environ["PROCTOR_STATE_DIR"] = str(root / "state")
    try:
        steps: list[tuple[int, int]] = []
        ours = root / "ours" / "mlflow.db"
        created = ensure_store(f"sqlite:///{ours}", lambda done, total: steps.append((done, total)))
        template = template_path()
    finally:
        if saved is None:
            os.environ.pop("PROCTOR_STATE_DIR", None)
        else:
            os.environ["PROCTOR_STATE_DIR"] = saved
    from mlflow.store.db.utils import _initialize_tables, create_sqlalchemy_engine

    theirs = root / "theirs" / "mlflow.db"
    theirs.parent.mkdir()
    engine = create_sqlalchemy_engine(f"sqlite:///{theirs}")
    _initialize_tables(engine)  # exactly what MLflow runs on a new store
    engine.dispose()
    return {"root": root, "ours": ours, "theirs": theirs, "steps": steps, "created": created,
            "template": template}


def test_a_new_store_has_mlflows_own_schema(made: dict[str, object]) -> None:
    assert made["created"] is True
    assert _schema(Path(str(made["ours"]))) == _schema(Path(str(made["theirs"])))


def test_the_migrations_report_progress_to_the_end(made: dict[str, object]) -> None:
    steps = made["steps"]
    assert isinstance(steps, list) and steps[0][0] == 0
    total = steps[0][1]
    assert total > 10
    assert steps[-1] == (total, total)
    assert [d for d, _ in steps] == sorted(d for d, _ in steps)


def test_mlflow_opens_and_logs_to_the_new_store(made: dict[str, object], clean_env: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{made['ours']}")
    experiment_id = client.create_experiment("check", artifact_location=(clean_env / "art").as_uri())
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "accuracy", 0.5)
    assert client.get_run(run.info.run_id).data.metrics == {"accuracy": 0.5}
    # MLflow made its Default experiment itself, for this folder: the template holds none.
    assert {e.name for e in client.search_experiments()} == {"Default", "check"}
    with sqlite3.connect(Path(str(made["template"]))) as connection:
        assert connection.execute("SELECT COUNT(*) FROM experiments").fetchone() == (0,)


def test_the_next_new_store_is_a_copy_of_the_template(made: dict[str, object], clean_env: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCTOR_STATE_DIR", str(Path(str(made["root"])) / "state"))
    steps: list[tuple[int, int]] = []
    db = clean_env / "next" / "mlflow.db"
    assert ensure_store(f"sqlite:///{db}", lambda done, total: steps.append((done, total))) is True
    assert steps == []  # no migration ran
    assert db.read_bytes() == Path(str(made["template"])).read_bytes()
    assert sorted(p.name for p in db.parent.iterdir()) == ["mlflow.db"]  # no temporary file left


def test_an_existing_store_and_other_stores_are_left_alone(clean_env: Path) -> None:
    db = clean_env / "mlflow.db"
    db.write_bytes(b"not touched")
    assert not store_needs_setup(f"sqlite:///{db}")
    assert ensure_store(f"sqlite:///{db}") is False
    assert db.read_bytes() == b"not touched"
    for uri in ("http://127.0.0.1:5000", "postgresql://u@h/db", "sqlite:///:memory:"):
        assert not store_needs_setup(uri)
        assert ensure_store(uri) is False


def test_evaluate_shows_the_set_up_as_a_phase(made: dict[str, object], clean_env: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCTOR_STATE_DIR", str(clean_env / "fresh-state"))  # no template: the migrations run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{clean_env / 'new' / 'mlflow.db'}")
    answers = clean_env / "answers.csv"
    answers.write_text("question,answer,llm_answer,model\nQ?,Paris,Paris,openai:/m\n", encoding="utf-8")
    seen = []
    summary = evaluate_file(answers, judge="none", on_progress=seen.append)
    phases = [p.phase for p in seen]
    assert "store set-up" in phases
    assert phases.index("store set-up") < phases.index("judging")
    last = [p for p in seen if p.phase == "store set-up"][-1]
    assert last.total > 10 and last.done == last.total
    assert summary.metrics["exact_match/mean"] == 1.0
    assert "store_setup_s" in summary.timings
