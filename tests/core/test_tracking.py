"""core.tracking: MLflow's output captured to a file, secrets scrubbed, and the real streams given back."""

from __future__ import annotations

import logging
from pathlib import Path

from core.tracking import _mlflow_loggers, captured_output, configure_mlflow, tracking_uri


def test_default_tracking_uri_is_sqlite_in_the_current_folder(clean_env: Path, monkeypatch):
    assert tracking_uri() == f"sqlite:///{clean_env / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri() == "http://127.0.0.1:5000"


def test_capture_twice_in_a_row_restores_mlflow_handlers(tmp_path: Path, capsys):
    import mlflow  # noqa: F401 - configures MLflow's own log handler

    configure_mlflow()
    handlers = {id(h): (h, h.stream) for logger in _mlflow_loggers() for h in logger.handlers
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)}
    assert handlers
    for n in (1, 2):  # the second capture once failed on a handler left pointing at the first, closed file
        with captured_output(tmp_path / f"run{n}.log", secrets=["sk-SECRET-abc"]):
            print(f"banner {n} sk-SECRET-abc")
            logging.getLogger("mlflow").warning("log record %s", n)
        text = (tmp_path / f"run{n}.log").read_text()
        assert f"banner {n} ****" in text and f"log record {n}" in text
        assert "sk-SECRET" not in text
    for handler, stream in handlers.values():
        assert handler.stream is stream
    print("after")
    assert capsys.readouterr().out == "after\n"
