"""How long Ctrl+Q takes to give the terminal back, measured in a real terminal (tmux). Issue 14: under 1 s in
every case.

Cases: the app idle (open 5 s); a modal open (Ctrl+B's answer dialog); a benchmark being answered (Ctrl+B, Ctrl+S,
a fake model at 0.5 s a question, quit once rows are coming in); an evaluation running (Evaluate pane, the judge at
0.5 s a row, quit while it judges); `proctor grade` sending verdicts to MLflow (keys y pressed, quit at once); the
app with MLflow's UI running (Runs pane, `m`, wait until its URL shows). The time is from sending Ctrl+Q until the
app's process has exited (its tmux window is gone). Each figure is printed with the machine's load. At the end it
checks that no `mlflow server` of this run is left a few seconds later (the detached stopper's job).

The model and the judge are tests/fake_llm_server.py in a child process; the store is a sqlite file in a temporary
folder, created (and a first run logged, so that `grade` has traces to send verdicts to) before any case is timed.

    python benchmarks/bench_quit.py [--repeat 3] [--cases idle,modal,answer,evaluate,grade,ui] [--store FOLDER]
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

from _tmux import clean_env

ROOT = Path(__file__).resolve().parent.parent
LATENCY_S = 0.5  # the fake model's and judge's: long enough that a job is still running when Ctrl+Q arrives
CASES = ("idle", "modal", "answer", "evaluate", "grade", "ui")


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


def keys(session: str, *sent: str, pause: float = 0.3) -> None:
    for key in sent:
        subprocess.run(["tmux", "send-keys", "-t", session, key], check=True)
        time.sleep(pause)


def type_text(session: str, text: str) -> None:
    subprocess.run(["tmux", "send-keys", "-t", session, "-l", text], check=True)
    time.sleep(0.3)


def serve() -> None:
    """Child-process mode: the fake server, answering as the model and as the judge, at LATENCY_S."""
    import threading

    sys.path.insert(0, str(ROOT))
    sys.path.append(str(ROOT / "tests"))  # after ROOT: tests/core must not shadow core
    from evaluation_helpers import responder
    from fake_llm_server import Behaviour, FakeLLMServer

    server = FakeLLMServer(Behaviour(latency=LATENCY_S, responder=responder), api_key=None).start()
    print(f"READY {server.url}", flush=True)
    threading.Event().wait()


def prepare(folder: Path, env: str) -> None:
    """A benchmark, and an answers file evaluated once (the store created, traces to send verdicts to)."""
    questions = [(f"Question {i}: what is {i} times 7?", str(i * 7)) for i in range(1, 201)]
    (folder / "benchmark.csv").write_text(
        "question,answer\n" + "".join(f"{q},{a}\n" for q, a in questions), encoding="utf-8")
    rows = "".join(f"{q},{a},It is {a}.,openai:/gpt-4.1-mini\n" for q, a in questions[:12])
    (folder / "graded.csv").write_text("question,answer,llm_answer,model\n" + rows, encoding="utf-8")
    started = time.perf_counter()
    subprocess.run(f"{clean_env(env)} {sys.executable} -m tui.cli evaluate graded.csv --judge openai:/gpt-4.1-nano "
                   "--quiet", shell=True, cwd=folder, check=True)
    print(f"(set-up: store created, 12 rows evaluated in {time.perf_counter() - started:.0f} s)", flush=True)
    many = "".join(f"{q},{a},It is {a}.,openai:/gpt-4.1-mini\n" for q, a in questions)
    (folder / "answers.csv").write_text("question,answer,llm_answer,model\n" + many, encoding="utf-8")


BARE = ("from textual.app import App\nfrom textual.widgets import Label\n"
        "class A(App):\n    BINDINGS = [('ctrl+q', 'quit')]\n"
        "    def compose(self):\n        yield Label('Ask the model')\nA().run()")


def quit_seconds(cwd: Path, env: str, case: str, attempt: int) -> float:
    session = f"bench-quit-{os.getpid()}-{attempt}-{case}"
    # remain-on-exit off (the default): the session disappears when the app's process exits.
    command = f"{clean_env(env)} {sys.executable} -m tui.cli"
    if case == "bare":
        command = f"{sys.executable} -c {shlex.quote(BARE)}"
    elif case == "grade":
        # Fresh verdicts each attempt: the file as evaluated, without the human columns of the attempt before.
        shutil.copyfile(cwd / "graded.csv", cwd / f"grade-{attempt}.csv")
        command = f"{clean_env(env)} {sys.executable} -m tui.cli grade grade-{attempt}.csv"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", "-c", str(cwd), command],
                   check=True)
    try:
        wait_for(session, "Question 1" if case == "grade" else "Ask the model", 120)
        time.sleep(5.0)
        if case == "ui":
            keys(session, "F5", pause=1.0)
            keys(session, "m")
            wait_for(session, "MLflow UI: http", 600)
        elif case == "modal":
            keys(session, "C-b")
            wait_for(session, "Answer a benchmark", 60)
        elif case == "answer":
            keys(session, "C-b")
            wait_for(session, "Answer a benchmark", 60)
            keys(session, "C-s")  # benchmark.csv (the dialog's default), the default model, fresh: no answers yet
            wait_for(session, "/200 rows", 120)
            time.sleep(1.0)
        elif case == "evaluate":
            shutil.copyfile(cwd / "answers.csv", cwd / f"answers-{attempt}.csv")  # judged afresh each attempt
            keys(session, "F4")
            wait_for(session, "Fill in the form", 120)  # keys sent before the pane has them would go elsewhere
            keys(session, "C-u")
            type_text(session, f"answers-{attempt}.csv")  # the judge: PROCTOR_JUDGE, the form's default
            wait_for(session, f"CSV    answers-{attempt}.csv", 60)
            keys(session, "C-r")
            wait_for(session, "judged", 300)
            time.sleep(1.0)
        elif case == "grade":
            keys(session, *"yyyyyy", pause=0.05)  # verdicts, each sent to MLflow in the background
        started = time.perf_counter()
        subprocess.run(["tmux", "send-keys", "-t", session, "C-q"], check=True)
        while alive(session):
            if time.perf_counter() - started > 60:
                raise SystemExit("the app did not exit within 60 s")
            time.sleep(0.01)
        took = time.perf_counter() - started
        # The next attempt answers from the start again: the file and the journal that quitting mid-way leaves
        # (kept for resuming; without removing it the next attempt resumed and finished before it was timed).
        for left in [*cwd.glob("benchmark.answers.*"), *cwd.glob(".benchmark.answers.*")]:
            left.unlink()
        return took
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def servers_left(folder: Path) -> list[str]:
    found = subprocess.run(["pgrep", "-af", f"mlflow server .*{folder}"], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if "pgrep" not in line]


LABELS = {
    "bare": "a bare Textual app", "idle": "app idle", "modal": "answer dialog open (modal)",
    "answer": "while answering a benchmark", "evaluate": "while an evaluation judges",
    "grade": "grade, verdicts being sent", "ui": "with the MLflow UI running",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, of {', '.join(CASES)} (the UI takes minutes to start on a loaded "
                        "machine)")
    parser.add_argument("--store", type=Path, default=Path("/tmp/proctor-bench-runs"),
                        help="a folder holding mlflow.db (bench_runs.py makes one; else a new store)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    cases = [case for case in args.cases.split(",") if case]
    if unknown := set(cases) - set(CASES):
        raise SystemExit(f"unknown case(s): {', '.join(sorted(unknown))}")
    if not shutil.which("tmux"):
        raise SystemExit("tmux is needed: apt-get install tmux")
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline().strip() if server.stdout else ""
        if not line.startswith("READY "):
            raise SystemExit(f"fake server did not start: {line!r}")
        url = line.split(" ", 1)[1]
        with tempfile.TemporaryDirectory(prefix="bench-quit-") as tmp:
            folder = Path(tmp)
            source = args.store / "mlflow.db"
            if source.exists():
                shutil.copyfile(source, folder / "mlflow.db")
            env = (f"PYTHONPATH={ROOT} OPENAI_API_KEY=bench OPENAI_BASE_URL={url} OPENAI_MODEL=gpt-4.1-mini "
                   "PROCTOR_JUDGE=openai:/gpt-4.1-nano "
                   f"MLFLOW_DISABLE_TELEMETRY=true MLFLOW_TRACKING_URI=sqlite:///{folder / 'mlflow.db'}")
            prepare(folder, env)
            for case in ["bare", *cases]:
                times = []
                for attempt in range(args.repeat):
                    times.append(quit_seconds(folder, env, case, attempt))
                    print(f"  {LABELS[case]}: {times[-1]:.2f} s ({load()})", flush=True)
                print(f"{'Ctrl+Q, ' + LABELS[case]:<44} median {statistics.median(times):.2f} s "
                      f"(max {max(times):.2f}; {load()})", flush=True)
            time.sleep(8)
            left = servers_left(folder)
            print(f"mlflow servers left 8 s after the last quit: {len(left)}")
            for line in left:
                print("  ", line)
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
