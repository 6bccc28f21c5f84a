"""Start MLflow's own web UI (`mlflow server`) on 127.0.0.1 over the store Proctor logs to, and stop it reliably.

- The backend store is `core.tracking.tracking_uri()`, so the UI shows exactly the runs `proctor runs` lists.
  It is handed over in the environment (`MLFLOW_BACKEND_STORE_URI`, which `mlflow server` reads for
  `--backend-store-uri` and passes on to its workers the same way), never on the command line: a database URI can
  carry a password, and any user of the machine can read a process's command line (`ps`), not its environment.
  Artifacts: runs already logged keep their own artifact location (for a sqlite store in the current folder,
  MLflow's client default `./mlruns`); `--default-artifact-root` is set to that same `./mlruns`, so experiments
  created through the UI land beside them, not in a second `./mlartifacts` tree.
- It binds 127.0.0.1 only: MLflow's UI has no authentication. Other hosts are refused.
- `mlflow server` starts uvicorn workers and a job runner (huey consumers): it is started in a process group of its
  own and stopped by signalling the whole group (SIGTERM, then SIGKILL). It is also stopped at interpreter exit
  (atexit) and, on Linux, when Proctor dies without running atexit (prctl PR_SET_PDEATHSIG, SIGTERM so that the
  server stops its workers and job runner itself). `core.children` starts and stops it; `start()` works from any
  thread.
- One uvicorn worker: a single user on a laptop; the default four cost start-up time and memory (ready in about
  11 s instead of 20 s on 2 cores, measured; the facts sheet saw 28 s).
- Output goes to `.proctor/mlflow-server.log` in the current folder, never to the terminal or the app's screen.

This module never imports mlflow: the server is a subprocess (`python -m mlflow server`).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from core.children import free_port, port_free, spawn_owned, stop_group, stop_group_detached
from core.children import group_alive as group_alive  # re-exported: callers check a stopped server's group
from core.errors import InputError, ProctorError
from core.safety import mask_url

DEFAULT_PORT = 5000
# Ready in about 11 s on a quiet 2-core machine, but seen taking over 120 s with other jobs running: giving up
# then would throw away a server about to answer.
READY_TIMEOUT_S = 300.0
LOOPBACK = ("127.0.0.1", "localhost")
LOG_NAME = "mlflow-server.log"

_started: list[MlflowServer] = []
_started_lock = threading.Lock()


class ServerError(ProctorError):
    """The MLflow server did not start (or did not become ready in time). The message points at its log."""

    exit_code = 1


def is_remote(uri: str) -> bool:
    """True when the tracking URI is already an MLflow server (http or https): there is nothing to start."""
    return uri.lower().startswith(("http://", "https://"))


def default_artifact_root() -> str:
    """Where new experiments' artifacts go: `./mlruns` (absolute), MLflow's client default for a sqlite store."""
    return (Path.cwd() / "mlruns").resolve().as_uri()


@dataclass
class MlflowServer:
    """One `mlflow server` subprocess. `start()` launches it (quick); `wait_until_ready()` polls /health."""

    backend_store_uri: str
    port: int
    host: str = "127.0.0.1"
    artifact_root: str = field(default_factory=default_artifact_root)
    log_path: Path = field(default_factory=lambda: Path.cwd() / ".proctor" / LOG_NAME)
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    ready_after_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        """The server's command line; the store is not on it (see `environment`)."""
        return [sys.executable, "-m", "mlflow", "server", "--host", self.host, "--port", str(self.port),
                "--default-artifact-root", self.artifact_root, "--workers", "1"]

    def environment(self) -> dict[str, str]:
        """Proctor's environment, with the backend store where `mlflow server` reads it."""
        env = dict(os.environ)
        env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        env.pop("MLFLOW_TRACKING_URI", None)  # the server's store is the one below, not a client setting
        env["MLFLOW_BACKEND_STORE_URI"] = self.backend_store_uri
        return env

    def start(self) -> MlflowServer:
        """Launch the server in its own process group, from any thread; return at once (see `wait_until_ready`)."""
        if self.host not in LOOPBACK:
            raise InputError(f"the MLflow UI binds to 127.0.0.1 only (it has no login), not {self.host!r}")
        if not port_free(self.port, "127.0.0.1"):
            raise InputError(f"port {self.port} is already in use: choose another with --port")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = spawn_owned(self.command(), log_file=log, env=self.environment(),
                                       death_signal=signal.SIGTERM)
        self.started_at = time.monotonic()
        with _started_lock:
            _started.append(self)
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def wait_until_ready(self, timeout: float = READY_TIMEOUT_S, cancelled: threading.Event | None = None) -> str:
        """Poll /health until the server answers; return its URL. Raises `ServerError` if it exits or times out."""
        if self.process is None:
            raise ServerError("the MLflow server was not started")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cancelled is not None and cancelled.is_set():
                self.stop()
                raise ServerError("the MLflow server start was cancelled")
            code = self.process.poll()
            if code is not None:
                raise ServerError(f"the MLflow server exited with status {code} before it was ready "
                                  f"(see {self.log_path})")
            if self.healthy():
                self.ready_after_s = time.monotonic() - self.started_at
                return self.url
            time.sleep(0.25)
        self.stop()
        raise ServerError(f"the MLflow server was not ready after {timeout:.0f} s (see {self.log_path})")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace_s: float = 10.0, detach: bool = False) -> None:
        """Stop the server and every process of its group: SIGTERM, then SIGKILL after `grace_s`. Idempotent.

        `detach=True` returns at once (quitting the app must not wait 5-9 s for uvicorn and the job runner): a
        detached stopper finishes the job, SIGKILL included, even after Proctor has exited.
        """
        process = self.process
        if process is None:
            return
        if detach:
            stop_group_detached(process, grace_s)
        else:
            stop_group(process, grace_s)
        with _started_lock:
            if self in _started:
                _started.remove(self)


def plan_server(port: int | None = None, host: str = "127.0.0.1") -> MlflowServer:
    """The server to start over `tracking_uri()`'s store, not yet started.

    `port=None` takes 5000 (MLflow's default) when free, else any free port; an explicit port must be free.
    Raises `InputError` for a non-loopback host, a bad port, or a tracking URI that is already a server.
    """
    from core.tracking import configure_mlflow

    uri = configure_mlflow()
    if is_remote(uri):
        raise InputError(f"MLFLOW_TRACKING_URI is already an MLflow server: open {mask_url(uri)}")
    if host not in LOOPBACK:
        raise InputError(f"the MLflow UI binds to 127.0.0.1 only (it has no login), not {host!r}")
    if port is None:
        port = DEFAULT_PORT if port_free(DEFAULT_PORT) else free_port()
    elif not 1 <= port <= 65535:
        raise InputError(f"--port must be between 1 and 65535, not {port}")
    return MlflowServer(backend_store_uri=uri, port=port, host="127.0.0.1" if host == "localhost" else host)


def start_server(port: int | None = None, timeout: float = READY_TIMEOUT_S) -> MlflowServer:
    """Plan, start and wait for a server; returns it ready (`.url`). Stops it again if it fails to get ready."""
    server = plan_server(port).start()
    server.wait_until_ready(timeout)
    return server


def stop_all(detach: bool = True) -> None:
    """Stop every server this process started (registered with atexit; the app also calls it when it quits).

    Detached by default: Proctor exits at once and a stopper process makes sure the servers end (see `stop`).
    """
    with _started_lock:
        servers = list(_started)
    for server in servers:
        server.stop(grace_s=5.0, detach=detach)


atexit.register(stop_all)
