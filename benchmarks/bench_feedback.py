"""Human verdicts to MLflow: how long sending them takes, and that a verdict still reaches the disk at once.

An answers file of N rows is evaluated (model and judge: the fake server in a child process, sqlite store in a
temporary folder), then every row is graded through `GradingSession` while a `FeedbackSender` sends them in the
background. Prints the per-verdict save time (median and max: what the grader waits for), the time until MLflow
holds them all, then the time of `proctor grade --sync`'s path (`sync_file`) when every verdict changes.

    python benchmarks/bench_feedback.py [--n 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))  # after ROOT: tests/core must not shadow core


def serve() -> None:
    """Child-process mode: the fake server answering as the judge."""
    from evaluation_helpers import responder
    from fake_llm_server import Behaviour, FakeLLMServer

    server = FakeLLMServer(Behaviour(latency=0.0, responder=responder), api_key=None).start()
    print(f"READY {server.url}", flush=True)
    threading.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        if not line.startswith("READY "):
            raise SystemExit(f"fake server did not start: {line!r}")
        with tempfile.TemporaryDirectory(prefix="bench-feedback-") as tmp:
            os.chdir(tmp)
            os.environ.update({"OPENAI_API_KEY": "bench-key-not-secret", "OPENAI_BASE_URL": line.split(" ", 1)[1],
                               "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"})
            run(Path(tmp) / "answers.csv", args.n)
    finally:
        proc.kill()
        proc.wait()


def run(path: Path, n: int) -> None:
    from core.evaluation import evaluate_file
    from core.feedback import FeedbackSender, pending_in_frame, sync_file
    from core.grading import GradingSession

    rows = ["question,answer,llm_answer,model"]
    rows += [f"Question {i}: what is {i} times 7?,{i * 7},It is {i * 7}.,openai:/gpt-4.1-mini" for i in range(n)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    t0 = time.perf_counter()
    evaluate_file(path, judge="openai:/gpt-4.1-nano", scorers="correctness")
    print(f"evaluate {n} rows: {time.perf_counter() - t0:.1f} s (set-up, not measured below)")

    done = threading.Event()
    sent: dict[int, str] = {}

    def on_sent(row: int, verdict: str) -> None:
        sent[row] = verdict
        if len(sent) == n:
            done.set()

    session = GradingSession(path)
    sender = FeedbackSender(on_sent=on_sent, on_state=lambda pending, error: None).start()
    saves = []
    t0 = time.perf_counter()
    for row in range(n):
        t = time.perf_counter()
        session.set_verdict(row, "correct" if row % 3 else "incorrect")
        saves.append(time.perf_counter() - t)
        sender.submit([p for p in pending_in_frame(session.frame) if p.row == row])
    graded = time.perf_counter() - t0
    done.wait(600)
    in_mlflow = time.perf_counter() - t0
    session.mark_synced(sent)
    sender.stop(timeout=10)
    session.close()
    print(f"verdict save: median {statistics.median(saves) * 1000:.1f} ms, max {max(saves) * 1000:.1f} ms "
          f"({n} verdicts graded in {graded:.2f} s while sending)")
    print(f"all {n} in MLflow after {in_mlflow:.1f} s ({in_mlflow / n * 1000:.0f} ms a verdict; mlflow was already "
          "imported by the evaluation)")

    with GradingSession(path) as changing:
        for row in range(n):
            changing.set_verdict(row, "incorrect" if row % 3 else "correct")
    t0 = time.perf_counter()
    report = sync_file(path)
    took = time.perf_counter() - t0
    print(f"sync_file, {report.sent} changed verdicts (overrides) + run metrics: {took:.1f} s "
          f"({took / max(report.sent, 1) * 1000:.0f} ms a verdict)")


if __name__ == "__main__":
    main()
