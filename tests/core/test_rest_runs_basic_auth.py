"""The run readers against MLflow's own login: a real `mlflow server --app-name basic-auth` on 127.0.0.1.

test_rest_runs.py checks which credentials the REST reader sends on a stand-in server; here the real auth app must
accept them. The runs are logged through MLflow's client with the admin's credentials; Proctor then reads them with
the user and password in the environment or in the URI (MlflowClient made unusable, so a silent fallback cannot
pass) and must see what MlflowClient sees. Wrong or missing credentials are one line and exit 2, without the
password.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.children import free_port
from core.mlflow_server import MlflowServer
from core.runs import list_runs
from core.store import temporary_environ
from tests.runs_support import (
    assert_opens_like_mlflow_client,
    assert_same_infos,
    log_reader_runs,
    no_mlflow_client,
    store_at,
    via_mlflow_client,
)

ADMIN, PASSWORD = "admin", "pw-Adm1n-SECRET"


@dataclass
class _BasicAuthServer(MlflowServer):
    """`mlflow server --app-name basic-auth`: MLflow's login in front of the tracking server."""

    auth_config: Path | None = None

    def command(self) -> list[str]:
        return [*super().command(), "--app-name", "basic-auth"]

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "MLFLOW_AUTH_CONFIG_PATH": str(self.auth_config),
                "MLFLOW_FLASK_SERVER_SECRET_KEY": "tests-only"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    folder = tmp_path_factory.mktemp("basic-auth")
    config = folder / "auth.ini"
    # The auth app's own users database in the test's folder; the admin is created on its first start.
    config.write_text("[mlflow]\ndefault_permission = READ\n"
                      f"database_uri = sqlite:///{folder / 'auth.db'}\n"
                      f"admin_username = {ADMIN}\nadmin_password = {PASSWORD}\n"
                      "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
                      encoding="utf-8")
    served = _BasicAuthServer(backend_store_uri=f"sqlite:///{folder / 'server.db'}", port=free_port(),
                              artifact_root=(folder / "artifacts").as_uri(), log_path=folder / "server.log",
                              auth_config=config)
    served.start()
    try:
        url = served.wait_until_ready()
        with temporary_environ({"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": PASSWORD}), \
                store_at(None, url):
            ids: dict[str, object] = {"url": url, **log_reader_runs(served.log_path.parent)}
        yield ids
    finally:
        served.stop(grace_s=5.0)


@pytest.fixture
def logged_in(clean_env: Path, server: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("HOME", str(clean_env))  # no ~/.netrc or ~/.mlflow/credentials of the developer's
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(server["url"]))
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    return server


@pytest.mark.slow
def test_a_listing_with_user_and_password_equals_mlflow_client(logged_in: dict[str, object],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    no_mlflow_client(monkeypatch)
    fast = list_runs()
    assert {r.run_id for r in fast} >= {logged_in["nano"], logged_in["mini"], logged_in["again"]}
    via_mlflow_client(monkeypatch)
    assert_same_infos(fast, list_runs())


@pytest.mark.slow
def test_opening_a_run_fetches_its_results_through_the_login(logged_in: dict[str, object],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert_opens_like_mlflow_client(str(logged_in["mini"]), monkeypatch)


@pytest.mark.slow
def test_credentials_in_the_uri_are_accepted(logged_in: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(logged_in["url"]).replace("http://", f"http://{ADMIN}:{PASSWORD}@"))
    no_mlflow_client(monkeypatch)
    assert logged_in["nano"] in {r.run_id for r in list_runs()}


@pytest.mark.slow
@pytest.mark.parametrize("password", ["wrong-Pw-SECRET", None])
def test_a_refused_login_is_one_line_exit_2(logged_in: dict[str, object], password: str | None,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from tui.cli import main

    if password is None:
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    code = main(["runs"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith(f"proctor: error: MLFLOW_TRACKING_URI={logged_in['url']}: ")
    assert "HTTP 401" in err and "MLFLOW_TRACKING_PASSWORD" in err
    assert "SECRET" not in err
    assert len(err.strip().splitlines()) == 1
