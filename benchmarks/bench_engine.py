"""Throughput of core's async engine: N questions at a fixed server latency and a given concurrency.

Prints the achieved time, the ideal time (N x latency / concurrency) and their ratio, median of --repeat runs.
The issue's target: 200 questions, 100 ms, concurrency 16 -> ratio at most 1.25.

    python benchmarks/bench_engine.py [--n 200] [--latency 0.1] [--concurrency 16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import fake_server  # noqa: E402

from core.config import Settings, resolve_model  # noqa: E402
from core.llm import CallOptions, Engine, warm_up  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    args = parser.parse_args()

    warm_up()  # the openai import (about 2 s) is start-up, paid once per process, not throughput
    with fake_server(args.latency, args.fail_rate) as root:
        settings = Settings(openai_api_key="bench", openai_base_url=f"{root}/v1")
        spec = resolve_model("openai:/bench", settings)
        ideal = args.n * args.latency / args.concurrency
        walls = []
        for run in range(args.repeat):
            engine = Engine(spec, CallOptions(concurrency=args.concurrency, max_retries=8, backoff_base=0.05))
            started = time.perf_counter()
            answers = engine.answer_all([(i, f"question {run}-{i}") for i in range(args.n)])
            wall = time.perf_counter() - started
            walls.append(wall)
            failed = sum(not a.ok for a in answers)
            attempts = sum(a.attempts for a in answers)
            print(f"run {run + 1}: {wall:.3f} s, {len(answers) - failed} answered, {failed} failed, "
                  f"{attempts} requests")
    median = statistics.median(walls)
    print(f"questions={args.n} latency={args.latency}s concurrency={args.concurrency} cpus={os.cpu_count()}")
    print(f"achieved (median of {args.repeat}): {median:.3f} s")
    print(f"ideal (N x latency / concurrency): {ideal:.3f} s")
    print(f"ratio: {median / ideal:.2f}x")


if __name__ == "__main__":
    main()
