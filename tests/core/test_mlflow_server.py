"""core.mlflow_server: a real `mlflow server` subprocess on 127.0.0.1 over a sqlite store holding one run."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from core.errors import InputError
from core.mlflow_server import MlflowServer, group_alive, plan_server, port_free, start_server
from tests.runs_support import NANO, log_contract_run


@pytest.mark.slow
def test_real_server_shows_the_run_and_stops_with_its_whole_process_group(clean_env: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{clean_env / 'mlflow.db'}")
    run_id = log_contract_run(clean_env, "gpt-4.1-nano", NANO)

    started = time.monotonic()
    server = start_server()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.ready_after_s is not None
        with urllib.request.urlopen(f"{server.url}/health", timeout=5) as response:
            assert response.status == 200
        request = urllib.request.Request(
            f"{server.url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=proctor")
        with urllib.request.urlopen(request, timeout=10) as response:
            experiment_id = json.load(response)["experiment"]["experiment_id"]
        body = json.dumps({"experiment_ids": [experiment_id]}).encode()
        request = urllib.request.Request(f"{server.url}/api/2.0/mlflow/runs/search", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            runs = json.load(response)["runs"]
        assert [r["info"]["run_id"] for r in runs] == [run_id]
        # The store reached the server (and its workers) through the environment, not the command line, which
        # any user of the machine can read: a database URI may carry a password.
        assert server.process.pid in group_members(server.process.pid)
        for pid in group_members(server.process.pid):
            assert "mlflow.db" not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        assert {"key": "accuracy", "value": 0.6} in [{k: m[k] for k in ("key", "value")}
                                                     for m in runs[0]["data"]["metrics"]]
        # The results table is served too: the artifacts of runs already logged stay readable.
        with urllib.request.urlopen(f"{server.url}/get-artifact?path=results/results.csv&run_id={run_id}",
                                    timeout=10) as response:
            assert "How many legs has a spider?" in response.read().decode("utf-8-sig")
        print(f"mlflow server ready after {server.ready_after_s:.1f} s (start_server returned after "
              f"{time.monotonic() - started:.1f} s)")
    finally:
        pgid = server.process.pid
        server.stop()
    assert not group_alive(pgid), "every process of the server's group (uvicorn, job runner) is gone"
    assert port_free(server.port)
    assert "mlflow" in server.log_path.read_text(errors="replace").lower()


def group_members(pgid: int) -> list[int]:
    """The live processes of a process group (Linux /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def test_plan_refuses_other_hosts_and_busy_ports(clean_env: Path) -> None:
    with pytest.raises(InputError, match="127.0.0.1 only"):
        plan_server(host="0.0.0.0")
    with pytest.raises(InputError, match="between 1 and 65535"):
        plan_server(port=70000)
    server = plan_server(port=5999)
    assert server.backend_store_uri == f"sqlite:///{clean_env / 'mlflow.db'}"
    assert server.artifact_root == (clean_env / "mlruns").as_uri()
    assert server.command()[server.command().index("--host") + 1] == "127.0.0.1"
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(InputError, match=f"port {port} is already in use"):
            MlflowServer(backend_store_uri="sqlite:///x.db", port=port).start()
    with pytest.raises(InputError, match="127.0.0.1 only"):
        MlflowServer(backend_store_uri="sqlite:///x.db", port=5999, host="192.168.1.2").start()


def test_a_tracking_server_uri_is_not_started_again(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5005")
    with pytest.raises(InputError, match="already an MLflow server: open http://127.0.0.1:5005"):
        plan_server()
