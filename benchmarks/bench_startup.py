"""Time to the app's first frame in a real terminal (tmux), median of --repeat runs, beside a bare Textual app.

Starts `proctor` (this checkout's code) in a detached tmux session (80x24) and polls the screen every 5 ms until the
Chat pane's input is drawn. Needs tmux (`apt-get install tmux`). Prints the machine's load average with each figure:
on a shared machine the figures mean little without it. The target (issue 14): at most 0.5 s on a quiet machine.

    python benchmarks/bench_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _tmux import clean_env

MARKER = "Ask the model"
ROOT = Path(__file__).resolve().parent.parent


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def first_frame_seconds(command: str, cwd: str) -> float:
    session = f"proctor-bench-{os.getpid()}"
    started = time.perf_counter()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", "-c", cwd, command],
                   check=True)
    try:
        while True:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                    text=True).stdout
            if MARKER in screen:
                return time.perf_counter() - started
            if time.perf_counter() - started > 30:
                raise RuntimeError(f"no first frame after 30 s; screen:\n{screen}")
            time.sleep(0.005)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def import_seconds(module: str) -> float:
    """Wall time of a fresh `python -c "import MODULE"`: the floor any program using it starts from."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not shutil.which("tmux"):
        sys.exit("tmux is needed: apt-get install tmux")
    proctor = str(Path(sys.executable).with_name("proctor"))
    with tempfile.TemporaryDirectory() as cwd:
        # A configured OpenAI-compatible model, so the app opens on a remote model (the local one is not started
        # until the first question anyway).
        # PYTHONPATH: this checkout's code, whichever checkout the venv's `proctor` was installed from.
        env = (f"PYTHONPATH={ROOT} OPENAI_API_KEY=bench OPENAI_BASE_URL=http://127.0.0.1:9/v1 "
               "MLFLOW_DISABLE_TELEMETRY=true")
        print(f"before: {load()}", flush=True)
        baseline = [first_frame_seconds(
            f"{sys.executable} -c 'from textual.app import App; from textual.widgets import Label\n"
            f"class A(App):\n    def compose(self): yield Label(\"{MARKER}\")\nA().run()'", cwd)
            for _ in range(args.repeat)]
        print(f"bare Textual app (one label): median {statistics.median(baseline):.2f} s "
              f"(min {min(baseline):.2f}, max {max(baseline):.2f}; {load()})", flush=True)
        times = [first_frame_seconds(f"{clean_env(env)} {proctor}", cwd) for _ in range(args.repeat)]
    print(f"proctor first frame: median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}, {args.repeat} runs; {load()})")
    print(f"ratio to a bare Textual app: {statistics.median(times) / statistics.median(baseline):.2f}x")
    imports = [import_seconds("textual.app") for _ in range(args.repeat)]
    print(f"floor: python -c 'import textual.app' median {statistics.median(imports):.2f} s ({load()})")
    print("target: at most 0.5 s on a quiet machine")


if __name__ == "__main__":
    main()
