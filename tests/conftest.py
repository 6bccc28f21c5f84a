"""Shared fixtures: a clean environment for every test, and the fake OpenAI/Azure server.

Every test runs in its own temporary folder with no Proctor, OpenAI, Azure or MLflow variables from the
developer's shell, and with MLflow's network features (telemetry, model catalog) turned off: no test reaches the
internet.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Appended, not prepended: tests/core would otherwise shadow the real `core` package.
sys.path.append(str(Path(__file__).parent))

from tests.fake_llm_server import Behaviour, FakeLLMServer  # noqa: E402

TEST_KEY = "sk-test-SECRET-0123456789abcdef"

_PREFIXES = ("PROCTOR_", "OPENAI_", "AZURE_", "MLFLOW_")


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.setenv("MLFLOW_MODEL_CATALOG_URI", "")
    monkeypatch.setenv("PROCTOR_BACKOFF_BASE", "0.01")
    monkeypatch.setenv("PROCTOR_STATE_DIR", str(tmp_path / ".proctor-state"))
    monkeypatch.chdir(tmp_path)
    import core.config

    monkeypatch.setattr(core.config, "_dotenv_loaded", False)
    return tmp_path


@pytest.fixture
def fake_server() -> FakeLLMServer:
    with FakeLLMServer(Behaviour(), api_key=TEST_KEY) as server:
        yield server


@pytest.fixture
def openai_env(fake_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> FakeLLMServer:
    """The fake server configured as an OpenAI-compatible endpoint; default model openai:/gpt-4.1-mini."""
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.url)
    monkeypatch.setenv("OPENAI_MODEL", "gpt-4.1-mini")
    return fake_server


@pytest.fixture
def azure_env(fake_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> FakeLLMServer:
    """The fake server configured as an Azure OpenAI resource; default model azure:/gpt-4.1-nano."""
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", fake_server.root)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-02-15-preview")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "gpt-4.1-nano")
    return fake_server


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for one sqlite MLflow store per test module (its first migration takes about 9 s)."""
    return tmp_path_factory.mktemp("mlflow-store")


@pytest.fixture
def tracking(mlflow_store: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """MLFLOW_TRACKING_URI pointed at the module's store, for this test."""
    uri = f"sqlite:///{mlflow_store}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri
