"""A team's store: Proctor against an `mlflow server` over HTTP on 127.0.0.1.

- The store check tells a dead server from a live one slow to answer: each worker of `mlflow server` opens its store
  on its first API request, seconds after /health answers (a stdlib server stands in for that cold worker, so the
  delay is certain, not left to the machine's load).
- A real `mlflow server` (sqlite backend, artifacts served by the server), queried at once after it is ready: the
  whole `proctor evaluate`, then `proctor runs` and the run's detail, all through the server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from evaluation_helpers import responder, write_benchmark

from core.errors import ConfigError
from core.store import CHECK_TIMEOUT_S, check_store


class _ColdWorker(BaseHTTPRequestHandler):
    """/health at once; the experiment query after `delay` seconds, as a cold `mlflow server` worker answers."""

    delay = CHECK_TIMEOUT_S + 1.0
    queries: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/health":
            body = b"OK"
        else:
            type(self).queries.append(self.path)
            time.sleep(self.delay)
            body = json.dumps({"experiment": {"experiment_id": "7", "name": "proctor",
                                              "lifecycle_stage": "active"}}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up first

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def cold_worker() -> Iterator[type[_ColdWorker]]:
    handler = type("ColdWorker", (_ColdWorker,), {"queries": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def test_a_live_server_slower_than_the_check_timeout_is_waited_for(cold_worker: type[_ColdWorker],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", cold_worker.url)
    info = check_store("proctor")
    assert info.kind == "http" and info.experiment_id == "7"
    assert cold_worker.queries == ["/api/2.0/mlflow/experiments/get-by-name?experiment_name=proctor"]


def test_a_live_server_that_never_answers_the_query_is_named_as_such(cold_worker: type[_ColdWorker],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.store.SERVER_ANSWER_TIMEOUT_S", 1)
    cold_worker.delay = 5.0
    monkeypatch.setenv("MLFLOW_TRACKING_URI", cold_worker.url)
    with pytest.raises(ConfigError) as caught:
        check_store("proctor")
    message = str(caught.value)
    assert message.startswith(f"MLFLOW_TRACKING_URI={cold_worker.url}: ")
    assert "is up (it answered /health) but did not answer an experiment query within 1 s" in message
    assert "\n" not in message


@pytest.mark.slow
def test_evaluate_runs_and_detail_through_a_real_mlflow_server(tmp_path: Path, azure_env,  # noqa: ANN001
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from core.mlflow_server import MlflowServer, free_port, group_alive
    from tui.cli import main

    azure_env.behaviour.responder = responder
    store = tmp_path / "team"
    store.mkdir()
    served = Path.cwd()  # the server keeps the artifacts it is sent in ./mlartifacts, where it starts
    # Artifacts go through the server (`mlflow-artifacts:/`, kept in ./mlartifacts where it runs), as they do for
    # a team member on another machine: the client writes no file of its own.
    server = MlflowServer(backend_store_uri=f"sqlite:///{store / 'server.db'}", port=free_port(),
                          artifact_root="mlflow-artifacts:/", log_path=store / "server.log")
    server.start()
    try:
        url = server.wait_until_ready()
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        work = tmp_path / "member"
        work.mkdir()
        monkeypatch.chdir(work)
        bench = write_benchmark(work / "bench.csv")
        # At once after /health: the worker's first API request opens its store.
        code = main(["evaluate", str(bench), "--model", "azure:/gpt-4.1-mini", "--judge", "azure:/gpt-4.1-nano",
                     "-q"])
        out, err = capsys.readouterr()
        assert code == 0, err
        run_id = out.split("run id: ")[1].split()[0]
        assert "accuracy (errors count as wrong)  100.0%" in out

        assert main(["runs", "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [r["run_id"] for r in listed] == [run_id]
        assert listed[0]["metrics"]["accuracy"] == 1.0

        from core.runs import load_run

        detail = load_run(run_id[:8])
        assert detail.results_source == "artifact" and len(detail.results) == 8
        assert set(detail.results["judge_verdict"]) == {"correct"}

        import mlflow

        experiment_id = mlflow.get_experiment_by_name("proctor").experiment_id
        traces = mlflow.search_traces(locations=[experiment_id], run_id=run_id, return_type="list")
        assert len(traces) == 8
        assert all(any(a.name == "correctness" for a in t.info.assessments) for t in traces)
        # Nothing was written beside the member's files: no local store, no local artifacts.
        assert not (work / "mlflow.db").exists() and not (work / "mlruns").exists()
        assert list((served / "mlartifacts").rglob("results.csv")), "the results table went to the server's store"
    finally:
        pgid = server.process.pid
        server.stop()
    assert not group_alive(pgid)
