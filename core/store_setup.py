"""Creating a new local sqlite MLflow store quickly, with progress, before MLflow opens it.

MLflow creates a missing sqlite store by running every one of its schema migrations (alembic, about a hundred
steps): about 9 s on 2 cores, silent, in every new folder. `ensure_store` does it instead, so that it shows as a
phase with progress and is paid once per machine rather than once per folder:

1. A *template* (an empty store migrated to the installed MLflow's schema, nothing else in it) is kept in
   `$PROCTOR_STATE_DIR` (`~/.cache/proctor`), one per MLflow version. A new store is a copy of it: milliseconds.
2. Without a template, the migrations are MLflow's own (`mlflow.store.db.utils._initialize_tables`, the function
   MLflow itself runs on a new store), run on a temporary file with SQLite's journal and fsyncs off (nothing is at
   risk in a file nobody uses yet), with one progress step per migration. The result becomes the template.
3. The store appears under its name in one atomic step (a hard link, which never replaces a store another process
   made meanwhile): a set-up interrupted half-way leaves no half-migrated store behind.

The copy is byte for byte what MLflow's migrations produce; MLflow then opens it as any store it made itself (it
checks the schema revision, and creates its `Default` experiment with the folder's own artifact location, which is
why the template holds no experiment). Any other kind of store (a server, PostgreSQL) is left to MLflow.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from core.sqlite_runs import sqlite_file

ProgressFn = Callable[[int, int], None]

TEMPLATE_PREFIX = "mlflow-store-template-"


def store_needs_setup(uri: str) -> bool:
    """True when `uri` is a local sqlite store that does not exist yet (MLflow would migrate it on first use)."""
    path = sqlite_file(uri)
    return path is not None and not path.exists()


def _mlflow_version() -> str:
    from importlib.metadata import version

    return version("mlflow")


def template_path() -> Path:
    """Where the template for the installed MLflow is kept."""
    from core.local_model import state_dir

    return state_dir() / f"{TEMPLATE_PREFIX}{_mlflow_version()}.db"


def ensure_store(uri: str, on_progress: ProgressFn | None = None) -> bool:
    """Create the sqlite store at `uri` if it is missing; True when it was created here, False when left alone.

    `on_progress(done, total)` is called as the migrations run (only when no template exists yet).
    """
    path = sqlite_file(uri)
    if path is None or path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    template = template_path()
    if not _valid_template(template):
        _build_template(template, on_progress)
    _publish_copy(template, path)
    return True


def _valid_template(template: Path) -> bool:
    if not template.is_file():
        return False
    try:
        connection = sqlite3.connect(f"file:{template}?mode=ro", uri=True)
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            ok = connection.execute("PRAGMA quick_check").fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return False
    return bool(row and row[0]) and ok is not None and ok[0] == "ok"


def _publish_copy(source: Path, target: Path) -> None:
    """Copy `source` to `target` atomically, never over a store that appeared meanwhile."""
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".creating", dir=target.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        shutil.copyfile(source, temp)
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
        try:
            os.link(temp, target)  # fails if the store exists: another process made it first, and it wins
        except FileExistsError:
            pass
        except OSError:
            # A file system without hard links: a rename, checked just before (a tiny window, the same as MLflow's).
            if not target.exists():
                os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


class _MigrationCounter(logging.Handler):
    """Counts alembic's "Running upgrade A -> B" records: one per migration step."""

    def __init__(self, total: int, on_progress: ProgressFn) -> None:
        super().__init__(level=logging.INFO)
        self.done = 0
        self.total = total
        self.on_progress = on_progress

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Running upgrade"):
            self.done += 1
            self.on_progress(min(self.done, self.total), self.total)


def _migration_count() -> int:
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    return sum(1 for _ in ScriptDirectory.from_config(_get_alembic_config("")).walk_revisions())


def _build_template(template: Path, on_progress: ProgressFn | None) -> None:
    """Run MLflow's own migrations on a fresh file (fast pragmas), then keep it as the template."""
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables
    from sqlalchemy import event
    from sqlalchemy.pool import NullPool

    template.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=".template.", suffix=".creating", dir=template.parent)
    os.close(handle)
    temp = Path(temp_name)
    temp.unlink()  # sqlite creates it
    engine = sqlalchemy.create_engine(f"sqlite:///{temp}", poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _fast(connection: sqlite3.Connection, _record: object) -> None:
        # Nobody else uses this file until it is complete and renamed: a crash only loses the temporary file.
        connection.execute("PRAGMA journal_mode=MEMORY")
        connection.execute("PRAGMA synchronous=OFF")

    logger = logging.getLogger("alembic.runtime.migration")
    counter = None
    saved_level = logger.level
    if on_progress is not None:
        counter = _MigrationCounter(_migration_count(), on_progress)
        logger.addHandler(counter)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        on_progress(0, counter.total)
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()
        if counter is not None:
            logger.removeHandler(counter)
            logger.setLevel(saved_level)
    try:
        with sqlite3.connect(temp) as connection:
            connection.execute("PRAGMA journal_mode=DELETE")  # a plain sqlite file, as MLflow leaves it
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temp, template)
    finally:
        temp.unlink(missing_ok=True)
