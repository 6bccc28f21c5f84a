"""core.rest_runs, the mlflow-free reader of an `mlflow server`: it must answer exactly what MlflowClient answers.

One real `mlflow server` on 127.0.0.1 for the module (sqlite backend), its runs logged the way evaluate logs them.
Every listing, resolution, opened run and comparison is computed twice on it, once through the REST reader (with
MlflowClient made unusable, so a silent fallback cannot pass) and once with the reader switched off, and the two
must be equal. A stdlib server standing in for MLflow checks what is sent (credentials) and what is refused.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import core.runs
from core.errors import ConfigError, InputError
from core.rest_runs import RestRuns, authorization, open_server
from core.runs import compare_runs, list_runs, load_run, resolve_run
from core.sqlite_runs import StoreUnreadable
from tests.hostile import HOSTILE, assert_harmless
from tests.runs_support import (
    assert_opens_like_mlflow_client,
    assert_same_infos,
    log_reader_runs,
    no_mlflow_client,
    store_at,
    via_mlflow_client,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    from core.children import free_port
    from core.mlflow_server import MlflowServer

    folder = tmp_path_factory.mktemp("served")
    served = MlflowServer(backend_store_uri=f"sqlite:///{folder / 'server.db'}", port=free_port(),
                          artifact_root=(folder / "artifacts").as_uri(), log_path=folder / "server.log")
    served.start()
    try:
        url = served.wait_until_ready()
        with store_at(None, url):
            ids: dict[str, object] = {"url": url, "folder": folder, **log_reader_runs(folder)}
            from mlflow.tracking import MlflowClient

            client = MlflowClient()
            # A run whose text would act on a terminal, with credentials an older version logged, in its own
            # experiment.
            hostile = client.create_run(client.create_experiment("hostile"), run_name=f"old{HOSTILE}",
                                        tags={"proctor.kind": "evaluation", "proctor.model": "openai:/m"})
            client.log_param(hostile.info.run_id, "base_url",
                             "http://alice:pa55word-x@10.0.0.1/v1?api-key=qkey-123456")
            client.set_terminated(hostile.info.run_id)
            yield ids
    finally:
        served.stop(grace_s=5.0)


@pytest.fixture
def on_server(clean_env: Path, server: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(server["url"]))
    monkeypatch.setenv("HOME", str(clean_env))  # no ~/.netrc or ~/.mlflow/credentials of the developer's
    return server


@pytest.mark.slow
def test_a_server_uri_is_read_over_rest(on_server: dict[str, object]) -> None:
    assert isinstance(core.runs._fast_store(), RestRuns)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", [None, "other"])
def test_listing_equals_mlflow_client(on_server: dict[str, object], experiment: str | None,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    no_mlflow_client(monkeypatch)
    fast = list_runs(experiment)
    via_mlflow_client(monkeypatch)
    slow = list_runs(experiment)
    assert_same_infos(fast, slow)
    assert on_server["deleted"] not in {r.run_id for r in fast}
    if experiment is None:
        assert [r.run_id for r in fast] == [on_server["again"], on_server["mini"], on_server["nano"]]
        assert repr(fast[1].metrics["odd"]) == "nan"


@pytest.mark.slow
def test_unknown_experiment_is_the_same_error(on_server: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    no_mlflow_client(monkeypatch)
    with pytest.raises(InputError) as fast:
        list_runs("nope")
    via_mlflow_client(monkeypatch)
    with pytest.raises(InputError) as slow:
        list_runs("nope")
    assert str(fast.value) == str(slow.value)
    assert "other" in str(fast.value)


@pytest.mark.slow
@pytest.mark.parametrize("ref", ["nano", "mini", "prefix", "name", "deleted-id"])
def test_resolving_equals_mlflow_client(on_server: dict[str, object], ref: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    text = {"nano": str(on_server["nano"]), "mini": str(on_server["mini"]), "prefix": str(on_server["mini"])[:12],
            "name": "gpt-4.1-nano", "deleted-id": str(on_server["deleted"])}[ref]
    no_mlflow_client(monkeypatch)
    fast = resolve_run(text)
    via_mlflow_client(monkeypatch)
    slow = resolve_run(text)
    assert_same_infos([fast], [slow])
    if ref == "name":
        assert fast.run_id == on_server["again"]


@pytest.mark.slow
@pytest.mark.parametrize("ref", ["no-such-run", "it's \"quoted\"", "0" * 12, "%"])
def test_no_match_is_the_same_error(on_server: dict[str, object], ref: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The server is asked only for the runs a reference may name (filtered searches); a name a filter cannot quote
    # is matched against every run. Either way the answer is MLflow's client's.
    no_mlflow_client(monkeypatch)
    with pytest.raises(InputError) as fast:
        resolve_run(ref)
    via_mlflow_client(monkeypatch)
    with pytest.raises(InputError) as slow:
        resolve_run(ref)
    assert str(fast.value) == str(slow.value)


@pytest.mark.slow
def test_opening_a_run_reads_its_results_through_the_server(on_server: dict[str, object],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert_opens_like_mlflow_client(str(on_server["mini"]), monkeypatch)


@pytest.mark.slow
def test_comparing_equals_mlflow_client(on_server: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    no_mlflow_client(monkeypatch)
    fast = compare_runs(str(on_server["nano"]), str(on_server["mini"])[:10]).to_dict()
    assert fast["matched_rows"] == 5 and fast["paired"]["n"] == 5
    via_mlflow_client(monkeypatch)
    slow = compare_runs(str(on_server["nano"]), str(on_server["mini"])[:10]).to_dict()
    assert fast == slow


@pytest.mark.slow
def test_text_from_the_server_is_shown_harmless(on_server: dict[str, object], monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from tui.cli import main

    no_mlflow_client(monkeypatch)
    assert main(["runs", "-e", "hostile"]) == 0
    table = capsys.readouterr().out
    assert "old" in table and "loud" in table
    assert_harmless(table)
    assert main(["runs", "-e", "hostile", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["params"]["base_url"] == "http://****@10.0.0.1/v1?api-key=****"


@pytest.mark.slow
def test_runs_are_read_page_by_page(on_server: dict[str, object]) -> None:
    asked: list[dict] = []

    class Counting(RestRuns):
        def _call(self, path: str, body: dict | None = None) -> dict | None:
            if path == "/runs/search":
                asked.append(dict(body or {}))
            return super()._call(path, body)

    whole = open_server(str(on_server["url"]))
    assert whole is not None
    paged = Counting(whole.base, whole.headers, whole.tls, page_size=1)
    experiment = paged.experiment_by_name("proctor")
    assert experiment is not None
    ids = [r.run_id for r in paged.runs([experiment.experiment_id])]
    assert ids == [on_server["again"], on_server["mini"], on_server["nano"]]
    assert ids == [r.run_id for r in whole.runs([experiment.experiment_id])]
    assert len(asked) >= 3 and all(b["max_results"] == 1 for b in asked)
    assert "page_token" not in asked[0] and all(b.get("page_token") for b in asked[1:])
    assert {e.name for e in paged.active_experiments()} >= {"proctor", "other"}


@pytest.mark.slow
def test_when_the_reader_cannot_read_mlflow_client_answers(on_server: dict[str, object],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy in front of the server that answers runs/search with its own 404 page, and serves no artifacts.
    def not_mlflow(self: RestRuns, path: str, body: dict | None = None) -> dict | None:
        raise StoreUnreadable(f"{path}: HTTP 404")

    expected = list_runs()
    call = RestRuns._call
    monkeypatch.setattr(RestRuns, "_call", not_mlflow)
    assert_same_infos(list_runs(), expected)
    assert resolve_run("gpt-4.1-mini").run_id == on_server["mini"]
    monkeypatch.setattr(RestRuns, "_call", call)
    monkeypatch.setattr(RestRuns, "download_artifact", lambda *args: False)
    detail = load_run(str(on_server["nano"]))
    assert detail.results_source == "artifact" and len(detail.rows) == 5  # downloaded by MLflow's client
    assert load_run(str(on_server["other"])).results_source == ""


@pytest.mark.slow
def test_proctor_runs_on_a_server_never_imports_mlflow(on_server: dict[str, object], clean_env: Path) -> None:
    script = ("import sys\nfrom tui.cli import main\n"
              "assert main(['runs']) == 0\n"
              f"assert main(['runs', {str(on_server['nano'])[:8]!r}]) == 0\n"
              f"assert main(['compare', {str(on_server['nano'])!r}, {str(on_server['mini'])!r}]) == 0\n"
              "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'pandas', 'scipy', 'numpy', "
              "'requests'})\n"
              "print(' '.join(heavy) or 'NONE')")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                            cwd=clean_env)
    assert result.returncode == 0, result.stderr
    assert "gpt-4.1-mini" in result.stdout and "rows from results/results.csv" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "NONE"


# -- what is sent, what is refused: a stdlib server standing in for MLflow


class _Recorder(BaseHTTPRequestHandler):
    """Answers like MLflow: /health, one experiment, one run; records each request's path and headers."""

    seen: list[tuple[str, dict[str, str]]] = []
    redirect = False

    def _answer(self, code: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for name, value in {"Content-Length": str(len(body)), **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        type(self).seen.append((self.path, dict(self.headers)))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if type(self).redirect and "/runs/" in self.path:
            self._answer(302, b"", {"Location": "http://127.0.0.1:9/elsewhere"})
        elif self.path == "/health":
            self._answer(200, b"OK")
        elif "/experiments/get-by-name" in self.path:
            self._answer(200, json.dumps({"experiment": {"experiment_id": "1", "name": "proctor",
                                                         "lifecycle_stage": "active"}}).encode())
        elif "/runs/search" in self.path:
            run = {"info": {"run_id": "a" * 32, "run_name": "r", "experiment_id": "1", "status": "FINISHED",
                            "start_time": 1700000000000, "artifact_uri": "mlflow-artifacts:/1/a/artifacts",
                            "lifecycle_stage": "active"},
                   "data": {"metrics": [{"key": "accuracy", "value": "NaN"}], "params": [{"key": "p", "value": ""}],
                            "tags": []}}
            self._answer(200, json.dumps({"runs": [run]}).encode())
        elif self.path.startswith("/get-artifact"):  # a proxy's login page, at 200
            self._answer(200, b"<html>please log in</html>", {"Content-Type": "text/html; charset=utf-8"})
        else:
            self._answer(404, b"<html>not here</html>")

    do_GET = do_POST = _handle  # noqa: N815 - http.server's names

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Recorder]]:
    monkeypatch.setenv("HOME", str(clean_env))
    handler = type("Recorder", (_Recorder,), {"seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    handler.port = httpd.server_address[1]
    try:
        yield handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _sent(recorder: type[_Recorder], uri: str) -> str | None:
    recorder.seen.clear()
    reader = open_server(uri)
    assert reader is not None
    runs = reader.runs(["1"])
    assert [r.run_id for r in runs] == ["a" * 32] and repr(runs[0].metrics["accuracy"]) == "nan"
    assert runs[0].params == {"p": ""}
    (path, headers), = recorder.seen
    assert path == "/api/2.0/mlflow/runs/search"
    return {k.lower(): v for k, v in headers.items()}.get("authorization")


def test_credentials_are_sent_as_mlflow_sends_them(recorder: type[_Recorder],
                                                   monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    url = f"http://127.0.0.1:{recorder.port}"
    assert _sent(recorder, url) is None
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-SECRET")
    assert _sent(recorder, url) == "Bearer tok-SECRET"
    # User and password win over the token, as in MLflow's rest_utils.
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ann")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw-SECRET")
    assert _sent(recorder, url) == "Basic " + base64.b64encode(b"ann:pw-SECRET").decode()
    # Credentials in the URI win over both (`requests` takes them from the URL); the request URL does not carry them.
    assert _sent(recorder, f"http://bob:p%40ss@127.0.0.1:{recorder.port}") == (
        "Basic " + base64.b64encode(b"bob:p@ss").decode())
    # ~/.mlflow/credentials, which MLflow reads when the environment has no user or password.
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name)
    (clean_env / ".mlflow").mkdir()
    (clean_env / ".mlflow" / "credentials").write_text(
        "[mlflow]\nmlflow_tracking_username = cat\nmlflow_tracking_password = file-SECRET\n", encoding="utf-8")
    assert _sent(recorder, url) == "Basic " + base64.b64encode(b"cat:file-SECRET").decode()
    assert authorization("http://h:5000") == "Basic " + base64.b64encode(b"cat:file-SECRET").decode()


@pytest.mark.parametrize("how", ["token", "uri"])
def test_a_proctor_listing_goes_through_the_stand_in(recorder: type[_Recorder], how: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The store check before it sends the same credentials (a server behind basic auth answers it too).
    if how == "token":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{recorder.port}")
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-SECRET")
        expected = "Bearer tok-SECRET"
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://ann:pw-SECRET@127.0.0.1:{recorder.port}")
        expected = "Basic " + base64.b64encode(b"ann:pw-SECRET").decode()
    no_mlflow_client(monkeypatch)
    runs = list_runs()
    assert [r.run_id for r in runs] == ["a" * 32]
    paths = [path.split("?")[0] for path, _ in recorder.seen]
    assert "/health" in paths and paths[-1] == "/api/2.0/mlflow/runs/search"
    assert all(headers.get("Authorization") == expected for _, headers in recorder.seen)


def test_answers_that_are_not_mlflow_s_are_unreadable(recorder: type[_Recorder]) -> None:
    reader = open_server(f"http://u:pw-SECRET@127.0.0.1:{recorder.port}")
    assert reader is not None
    with pytest.raises(StoreUnreadable) as caught:
        reader.run("b" * 32)  # runs/get: a 404 that is not MLflow's RESOURCE_DOES_NOT_EXIST
    assert "SECRET" not in str(caught.value)
    recorder.redirect = True
    recorder.seen.clear()
    with pytest.raises(StoreUnreadable):
        reader.runs(["1"])  # a redirect is not followed: the credentials stay with this host
    assert len(recorder.seen) == 1
    assert reader.download_artifact("a" * 32, "results/results.csv", Path("results.csv")) is False
    assert not Path("results.csv").exists()


def test_settings_it_does_not_reproduce_are_left_to_mlflow(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(clean_env))
    url = "https://mlflow.example.test"
    assert open_server(url) is not None
    assert open_server("sqlite:///x.db") is None and open_server("databricks") is None
    assert open_server("file:///tmp/mlruns") is None and open_server("http://") is None
    for name, value in (("MLFLOW_TRACKING_AUTH", "my_plugin"), ("MLFLOW_TRACKING_AWS_SIGV4", "true"),
                        ("MLFLOW_WORKSPACE", "team-a")):
        with monkeypatch.context() as patched:
            patched.setenv(name, value)
            assert open_server(url) is None, name
    with monkeypatch.context() as patched:
        patched.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
        patched.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", "/etc/ssl/ca.pem")
        assert open_server(url) is None  # MLflow refuses the pair itself, with its own message
    (clean_env / ".mlflow").mkdir()
    (clean_env / ".mlflow" / "credentials").write_text("not = an ini file\n[", encoding="utf-8")
    assert authorization(url) is None  # a malformed credentials file is no crash (MLflow's client would say why)
    (clean_env / ".netrc").write_text("machine mlflow.example.test login a password b\n", encoding="utf-8")
    assert open_server(url) is None  # `requests` would send these under MLflow


@pytest.mark.parametrize("command", [["runs", "abc12345"], ["compare", "abc12345", "def67890"]])
def test_an_unreachable_server_is_still_one_line_exit_2(command: list[str], capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from core.children import free_port
    from tui.cli import main

    port = free_port()  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://u:pw-SECRET@127.0.0.1:{port}")
    code = main(command)
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith(f"proctor: error: MLFLOW_TRACKING_URI=http://****@127.0.0.1:{port}: ")
    assert "refused" in err and "SECRET" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_dead_server_is_reported_by_the_reader_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.children import free_port

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    no_mlflow_client(monkeypatch)
    with pytest.raises(ConfigError, match="cannot be reached"):
        list_runs()


@pytest.fixture
def tls_recorder(recorder: type[_Recorder], tmp_path: Path) -> Iterator[dict[str, object]]:
    """The stand-in over https with a self-signed certificate for 127.0.0.1, asking for a client certificate."""
    import shutil
    import ssl

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make certificates")
    pems = {}
    for name in ("server", "client"):
        key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        pems[name] = (cert, key)
    client_pem = tmp_path / "client.pem"  # one file with the certificate and its key, as `requests` takes it
    client_pem.write_text(pems["client"][0].read_text() + pems["client"][1].read_text())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*pems["server"])
    context.load_verify_locations(pems["client"][0])
    context.verify_mode = ssl.CERT_REQUIRED
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), recorder)
    httpd.daemon_threads = True
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"https://127.0.0.1:{httpd.server_address[1]}", "ca": pems["server"][0], "client": client_pem}
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_tls_settings_are_mlflow_s(tls_recorder: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tls_recorder["url"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_TRACKING_CLIENT_CERT_PATH", str(tls_recorder["client"]))
    reader = open_server(url)
    assert reader is not None
    with pytest.raises(StoreUnreadable):
        reader.runs(["1"])  # a certificate nobody vouches for
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(tls_recorder["ca"]))
    no_mlflow_client(monkeypatch)
    assert [r.run_id for r in list_runs()] == ["a" * 32]  # the store check and the reader both verify with it
    monkeypatch.delenv("MLFLOW_TRACKING_SERVER_CERT_PATH")
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    assert [r.run_id for r in list_runs()] == ["a" * 32]
    monkeypatch.delenv("MLFLOW_TRACKING_CLIENT_CERT_PATH")
    with pytest.raises(ConfigError, match="cannot be reached"):
        list_runs()  # the server wants a client certificate: the connection fails, named in one line
