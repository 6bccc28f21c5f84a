"""How quickly runs are listed and opened: `proctor runs`, a run's detail, a comparison, and the app's Runs pane.

The store is a sqlite MLflow store holding --runs evaluation runs, each logged by a real `evaluate_file` (10 answered
rows judged by the fake server at latency 0: params, tags, metrics, artifacts and one trace per row, as a user's
store holds). It is built once in --store (default /tmp/proctor-bench-runs) and reused.

Printed, each a median of --repeat fresh processes (the machine's load beside it):
- for scale, a bare `python -c pass` (the interpreter's own start-up here);
- `proctor runs` (the whole command), and, for scale, the same listing through `MlflowClient` (the way it worked
  before the sqlite fast path: import mlflow, open the store, search_runs);
- a run's detail (`proctor runs RUN`) and a comparison of two runs (`proctor compare A B`), whole commands;
- with --app (needs tmux): the app open for 5 s, then F5: the time until the Runs pane shows the newest run; then
  Enter: the time until the run's detail shows its rows; Esc, two runs marked, c: the time until the comparison
  shows its paired numbers.
- with --http: the same store behind a real `mlflow server` on 127.0.0.1 (a team's setup), and the three commands
  against it twice: through core.rest_runs (the REST API read with the standard library, as shipped) and, before
  it, through MlflowClient (the reader switched off in the child process).

The project's modules are byte-compiled first (`compileall`), as an installed copy's are: with
PYTHONDONTWRITEBYTECODE set, every run would otherwise compile them again.

    python benchmarks/bench_runs.py [--runs 50] [--repeat 5] [--app] [--http]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from _tmux import clean_env

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))  # after ROOT: tests/core must not shadow core

ROWS_PER_RUN = 10


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def serve() -> None:
    """Child-process mode: the fake server answering as the judge, at once."""
    from evaluation_helpers import responder
    from fake_llm_server import Behaviour, FakeLLMServer

    server = FakeLLMServer(Behaviour(latency=0.0, responder=responder), api_key=None).start()
    print(f"READY {server.root}", flush=True)
    threading.Event().wait()


def build_store(folder: Path, runs: int) -> None:
    """Log `runs` evaluation runs into folder/mlflow.db (kept for the next time)."""
    db = folder / "mlflow.db"
    marker = folder / f".filled-{runs}"
    if marker.exists():
        return
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        root = line.split(" ", 1)[1]
        os.environ.update({"AZURE_OPENAI_ENDPOINT": root, "AZURE_OPENAI_API_KEY": "bench-key-not-secret",
                           "MLFLOW_TRACKING_URI": f"sqlite:///{db}", "MLFLOW_DISABLE_TELEMETRY": "true",
                           "MLFLOW_MODEL_CATALOG_URI": ""})
        cwd = os.getcwd()
        os.chdir(folder)
        import pandas as pd

        from core.csvio import write_csv_atomic
        from core.evaluation import evaluate_file

        started = time.perf_counter()
        for i in range(runs):
            answers = folder / f"answers{i % 5}.csv"
            if not answers.exists():
                write_csv_atomic(pd.DataFrame([{
                    "question": f"Question {n}: what is {n} times 7?", "answer": str(n * 7),
                    "llm_answer": str(n * 7 if (n + i) % 3 else n * 6), "model": f"openai:/model-{i % 5}",
                    "latency_s": "0.100", "prompt_tokens": "10", "completion_tokens": "3", "error": ""}
                    for n in range(1, ROWS_PER_RUN + 1)]), answers)
            evaluate_file(answers, judge="azure:/gpt-4.1-nano", model=f"openai:/model-{i % 5}")
            print(f"\rfilling the store: {i + 1}/{runs} runs ({time.perf_counter() - started:.0f} s)", end="",
                  file=sys.stderr, flush=True)
        print(file=sys.stderr)
        os.chdir(cwd)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    marker.touch()


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return elapsed


def median_of(label: str, repeat: int, command: list[str], cwd: Path, env: dict[str, str]) -> float:
    times = [timed(command, cwd, env) for _ in range(repeat)]
    middle = statistics.median(times)
    print(f"{label:<46} median {middle:5.2f} s  (min {min(times):.2f}, max {max(times):.2f}; {load()})",
          flush=True)
    return middle


def _screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def _until(session: str, keys: list[str], wanted: str, limit: float = 30.0) -> float:
    """Send `keys`, then the seconds until `wanted` is on the screen."""
    started = time.perf_counter()
    for key in keys:
        subprocess.run(["tmux", "send-keys", "-t", session, key], check=True)
    while wanted not in (screen := _screen(session)):
        if time.perf_counter() - started > limit:
            raise SystemExit(f"{wanted!r} did not show within {limit:.0f} s:\n{screen}")
        time.sleep(0.01)
    return time.perf_counter() - started


def _until_gone(session: str, text: str, limit: float = 30.0) -> None:
    """Wait until `text` has left the screen (a key sent right after Escape could be read as Alt+key)."""
    started = time.perf_counter()
    while text in _screen(session):
        if time.perf_counter() - started > limit:
            raise SystemExit(f"{text!r} still on screen after {limit:.0f} s")
        time.sleep(0.05)


def _report(label: str, times: list[float]) -> None:
    print(f"{label:<46} median {statistics.median(times):5.2f} s  (min {min(times):.2f}, max {max(times):.2f}; "
          f"{load()})", flush=True)


def app_f5(cwd: Path, env: dict[str, str], newest: str, repeat: int) -> None:
    """The app open 5 s, then F5: seconds until the Runs pane shows the newest run's short id; then the newest
    run's detail (Enter) and the comparison of the two newest runs (Space, Down, Space, c), each until its content
    is on screen."""
    shown, detail, compare = [], [], []
    exported = " ".join(f"{k}={v}" for k, v in env.items() if k.startswith(("MLFLOW_", "OPENAI_", "PYTHONPATH")))
    for attempt in range(repeat):
        session = f"bench-runs-{os.getpid()}-{attempt}"
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", "-c", str(cwd),
                        f"{clean_env(exported)} {sys.executable} -m tui.cli"], check=True)
        try:
            time.sleep(5.0)
            shown.append(_until(session, ["F5"], newest))
            time.sleep(0.5)
            detail.append(_until(session, ["Enter"], "rows from results/results.csv"))
            subprocess.run(["tmux", "send-keys", "-t", session, "Escape"], check=True)
            _until_gone(session, "rows from results/results.csv")
            time.sleep(0.5)
            for key in ("Space", "Down", "Space"):
                subprocess.run(["tmux", "send-keys", "-t", session, key], check=True)
                time.sleep(0.3)
            time.sleep(0.5)
            compare.append(_until(session, ["c"], "questions matched"))
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
            time.sleep(0.5)
    _report("app open 5 s, F5 -> runs shown", shown)
    _report("  then Enter -> the run's rows shown", detail)
    _report("  then two marked, c -> the comparison shown", compare)


# `proctor ARGS` with the mlflow-free readers switched off: the MlflowClient path, as before core.rest_runs.
VIA_MLFLOW = ("import sys\nimport core.runs\ncore.runs._fast_store = lambda: None\nfrom tui.cli import main\n"
              "sys.exit(main(sys.argv[1:]))")


SETTLE_S = 60


def http_case(folder: Path, env: dict[str, str], repeat: int) -> None:
    """The three commands against a real `mlflow server` over the store: REST reader, then MlflowClient."""
    import json

    from core.children import free_port
    from core.mlflow_server import MlflowServer

    server = MlflowServer(backend_store_uri=f"sqlite:///{folder / 'mlflow.db'}", port=free_port(),
                          artifact_root=(folder / "mlruns").as_uri(), log_path=folder / "server.log")
    server.start()
    try:
        url = server.wait_until_ready()
        env = {**env, "MLFLOW_TRACKING_URI": url}
        python = sys.executable
        # The worker opens its store on its first API request: once, before anything is timed.
        listed = subprocess.run([python, "-m", "tui.cli", "runs", "--json"], cwd=folder, env=env,
                                capture_output=True, text=True, check=True).stdout
        runs = json.loads(listed)
        a, b = runs[1]["run_id"][:8], runs[0]["run_id"][:8]
        # A server just started keeps busy for about a minute (its workers' and job runner's start-up): a search of
        # 50 runs took 1.5-4 s then, 0.2-0.6 s after (load 7). A team's server runs for days: time it settled.
        print(f"\nmlflow server at {url} over the same store, {len(runs)} runs; letting it settle for {SETTLE_S} s",
              flush=True)
        time.sleep(SETTLE_S)
        for label, command in (("proctor runs", ["runs"]), ("proctor runs RUN (a run's detail)", ["runs", a]),
                               ("proctor compare A B", ["compare", a, b])):
            median_of(f"{label} [REST reader]", repeat, [python, "-m", "tui.cli", *command], folder, env)
            median_of(f"{label} [before: MlflowClient]", repeat, [python, "-c", VIA_MLFLOW, *command], folder,
                      env)
    finally:
        server.stop(grace_s=5.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--store", type=Path, default=Path("/tmp/proctor-bench-runs"))
    parser.add_argument("--app", action="store_true", help="also time the app's Runs pane (needs tmux)")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MlflowClient listing (slow under load)")
    parser.add_argument("--http", action="store_true",
                        help="only the commands against a real `mlflow server` over the store, REST reader vs "
                             "MlflowClient")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    folder = args.store.resolve()
    build_store(folder, args.runs)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "OPENAI_", "AZURE_", "MLFLOW_"))}
    env.update({"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", "MLFLOW_DISABLE_TELEMETRY": "true",
                "MLFLOW_MODEL_CATALOG_URI": "", "PYTHONPATH": str(ROOT),
                "OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    python = sys.executable
    subprocess.run([python, "-m", "compileall", "-q", str(ROOT / "core"), str(ROOT / "tui")], check=True,
                   capture_output=True, env={**env, "PYTHONDONTWRITEBYTECODE": ""})
    listed = subprocess.run([python, "-m", "tui.cli", "runs", "--json"], cwd=folder, env=env, capture_output=True,
                            text=True, check=True).stdout
    import json

    runs = json.loads(listed)
    print(f"store: {folder / 'mlflow.db'}, {len(runs)} runs in experiment 'proctor'")
    a, b = runs[1]["run_id"], runs[0]["run_id"]
    median_of("(for scale: python -c pass)", args.repeat, [python, "-c", "pass"], folder, env)
    if args.http:
        http_case(folder, env, args.repeat)
        return
    median_of("proctor runs", args.repeat, [python, "-m", "tui.cli", "runs"], folder, env)
    if not args.no_mlflow:
        median_of("  (for scale: MlflowClient.search_runs)", args.repeat, [python, "-c", (
            "from mlflow.tracking import MlflowClient\n"
            "c = MlflowClient(); e = c.get_experiment_by_name('proctor')\n"
            "print(len(c.search_runs([e.experiment_id], max_results=1000)))")], folder, env)
    median_of("proctor runs RUN (a run's detail)", args.repeat, [python, "-m", "tui.cli", "runs", a[:8]], folder,
              env)
    median_of("proctor compare A B", args.repeat, [python, "-m", "tui.cli", "compare", a[:8], b[:8]], folder, env)
    if args.app:
        if not shutil.which("tmux"):
            raise SystemExit("--app needs tmux")
        app_f5(folder, env, runs[0]["run_id"][:8], args.repeat)


if __name__ == "__main__":
    main()
