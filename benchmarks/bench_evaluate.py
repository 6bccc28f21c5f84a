"""Wall time of `evaluate_file` on a benchmark: the model answers (core's engine), then the judge (MLflow).

Both model and judge are the fake server, in a child process, at a fixed latency; the store is a fresh sqlite file
in a temporary folder. Prints the wall time and the time of each phase (reading, answering, MLflow import and
set-up, evaluate itself, logging). Run twice in one process (`--repeat 2`) to see the cost of a second evaluation
once mlflow is imported and the store migrated.

    python benchmarks/bench_evaluate.py [--n 20] [--latency 0.2] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))  # after ROOT: tests/core must not shadow core


def serve(latency: float) -> None:
    """Child-process mode: the fake server answering as model and as judge."""
    from evaluation_helpers import responder
    from fake_llm_server import Behaviour, FakeLLMServer

    server = FakeLLMServer(Behaviour(latency=latency, responder=responder), api_key=None).start()
    print(f"READY {server.root}", flush=True)
    threading.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.latency)
        return

    proc = subprocess.Popen([sys.executable, __file__, "--serve", "--latency", str(args.latency)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        if not line.startswith("READY "):
            raise SystemExit(f"fake server did not start: {line!r}")
        root = line.split(" ", 1)[1]
        with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as tmp:
            os.chdir(tmp)
            os.environ.update({
                "AZURE_OPENAI_ENDPOINT": root, "AZURE_OPENAI_API_KEY": "bench-key-not-secret",
                "AZURE_OPENAI_DEPLOYMENT": "gpt-4.1-nano", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
            })
            from evaluation_helpers import write_benchmark

            from core.evaluation import evaluate_file

            rows = [(f"Question {i}: what is {i} times 7?", str(i * 7)) for i in range(1, args.n + 1)]
            for attempt in range(1, args.repeat + 1):
                bench = write_benchmark(Path(tmp) / f"bench{attempt}.csv", rows)
                started = time.perf_counter()
                summary = evaluate_file(bench, model="azure:/gpt-4.1-mini", judge="azure:/gpt-4.1-nano")
                wall = time.perf_counter() - started
                phases = "  ".join(f"{k}={v:.2f}" for k, v in summary.timings.items())
                print(f"run {attempt}: {args.n} rows at {args.latency:g} s: wall {wall:.2f} s  "
                      f"accuracy {summary.metrics['accuracy']:.2f}  judge_errors {summary.metrics['judge_errors']:g}")
                print(f"  phases (s): {phases}")
    finally:
        proc.terminate()
        proc.wait(timeout=5)


if __name__ == "__main__":
    main()
