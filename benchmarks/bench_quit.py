"""How long Ctrl+Q takes to give the terminal back, measured in a real terminal (tmux).

Cases: the app idle (open 5 s); the app with MLflow's UI running (Runs pane, `m`, wait until its URL shows). The
time is from sending Ctrl+Q until the app's process has exited (its tmux window is gone). After the UI case it also
checks that no `mlflow server` of this run is left a few seconds later (the detached stopper's job).

    python benchmarks/bench_quit.py [--repeat 3] [--store FOLDER]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def alive(session: str) -> bool:
    return subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0


def wait_for(session: str, text: str, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while text not in screen(session):
        if time.monotonic() > deadline:
            raise SystemExit(f"{text!r} did not show within {limit_s:.0f} s:\n{screen(session)}")
        time.sleep(0.05)


BARE = ("from textual.app import App\nfrom textual.widgets import Label\n"
        "class A(App):\n    BINDINGS = [('ctrl+q', 'quit')]\n"
        "    def compose(self):\n        yield Label('Ask the model')\nA().run()")


def quit_seconds(cwd: Path, env: str, with_ui: bool, attempt: int, bare: bool = False) -> float:
    session = f"bench-quit-{os.getpid()}-{attempt}-{int(with_ui)}-{int(bare)}"
    # remain-on-exit off (the default): the session disappears when the app's process exits.
    command = f"{sys.executable} -c {shlex.quote(BARE)}" if bare else f"env {env} {sys.executable} -m tui.cli"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", "-c", str(cwd), command],
                   check=True)
    try:
        wait_for(session, "Ask the model", 120)
        time.sleep(5.0)
        if with_ui:
            subprocess.run(["tmux", "send-keys", "-t", session, "F5"], check=True)
            time.sleep(1.0)
            subprocess.run(["tmux", "send-keys", "-t", session, "m"], check=True)
            wait_for(session, "MLflow UI: http", 600)
        started = time.perf_counter()
        subprocess.run(["tmux", "send-keys", "-t", session, "C-q"], check=True)
        while alive(session):
            if time.perf_counter() - started > 60:
                raise SystemExit("the app did not exit within 60 s")
            time.sleep(0.01)
        return time.perf_counter() - started
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def servers_left(folder: Path) -> list[str]:
    found = subprocess.run(["pgrep", "-af", f"mlflow server .*{folder}"], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if "pgrep" not in line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-ui", action="store_true", help="only the idle case (the UI takes minutes to start "
                        "on a loaded machine)")
    parser.add_argument("--store", type=Path, default=Path("/tmp/proctor-bench-runs"),
                        help="a folder holding mlflow.db (bench_runs.py makes one)")
    args = parser.parse_args()
    if not shutil.which("tmux"):
        raise SystemExit("tmux is needed: apt-get install tmux")
    with tempfile.TemporaryDirectory(prefix="bench-quit-") as tmp:
        folder = Path(tmp)
        source = args.store / "mlflow.db"
        if source.exists():
            shutil.copyfile(source, folder / "mlflow.db")
        env = (f"PYTHONPATH={ROOT} OPENAI_API_KEY=bench OPENAI_BASE_URL=http://127.0.0.1:9/v1 "
               f"MLFLOW_DISABLE_TELEMETRY=true MLFLOW_TRACKING_URI=sqlite:///{folder / 'mlflow.db'}")
        bare = [quit_seconds(folder, env, False, attempt, bare=True) for attempt in range(args.repeat)]
        print(f"{'Ctrl+Q, a bare Textual app':<36} median {statistics.median(bare):.2f} s (max {max(bare):.2f}; "
              f"{load()})", flush=True)
        for with_ui in (False,) if args.skip_ui else (False, True):
            times = []
            for attempt in range(args.repeat):
                times.append(quit_seconds(folder, env, with_ui, attempt))
                print(f"  {'with the MLflow UI' if with_ui else 'idle'}: {times[-1]:.2f} s ({load()})", flush=True)
            label = "Ctrl+Q with the MLflow UI running" if with_ui else "Ctrl+Q, app idle"
            print(f"{label:<36} median {statistics.median(times):.2f} s (max {max(times):.2f}; {load()})", flush=True)
        time.sleep(8)
        left = servers_left(folder)
        print(f"mlflow servers left 8 s after the last quit: {len(left)}")
        for line in left:
            print("  ", line)


if __name__ == "__main__":
    main()
