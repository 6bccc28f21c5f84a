"""Throughput of core's async engine: N questions at a fixed server latency and a given concurrency.

Prints the achieved time, the ideal time (N x latency / concurrency) and their ratio, median of --repeat runs.
The target: 200 questions, 100 ms, concurrency 16 -> ratio at most 1.25.

    python benchmarks/bench_engine.py [--n 200] [--latency 0.1] [--concurrency 16] [--repeat 3]

`--storm RUNS`: the rate-limit storm of issue 10 (15% 429 with Retry-After, 10% 500, 5% HTML 200s) for RUNS runs,
with the default retry budget: how many runs answered every row, and the wall time against the fault-free time
(target: N of N in every run, at most 1.5x).

    python benchmarks/bench_engine.py --storm 20 --n 100 [--retry-after 0.2]

`--dead-endpoint`: how long `proctor answer` takes to give up on N rows sent to a closed port (target: < 15 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _server import fake_server  # noqa: E402

from core.config import Settings, resolve_model  # noqa: E402
from core.llm import CallOptions, Engine, warm_up  # noqa: E402


def timed_run(spec, options: CallOptions, n: int, label: str) -> tuple[float, int, int, Engine]:  # noqa: ANN001
    engine = Engine(spec, options)
    started, cpu = time.perf_counter(), time.process_time()
    answers = engine.answer_all([(i, f"question {label}-{i}") for i in range(n)])
    wall = time.perf_counter() - started
    engine.cpu_s = time.process_time() - cpu  # this process's CPU (the fake server runs in another)
    return wall, sum(a.ok for a in answers), sum(a.attempts for a in answers), engine


def throughput(args: argparse.Namespace) -> None:
    with fake_server(args.latency, args.fail_rate) as root:
        spec = resolve_model("openai:/bench", Settings(openai_api_key="bench", openai_base_url=f"{root}/v1"))
        walls = []
        for run in range(args.repeat):
            options = CallOptions(concurrency=args.concurrency, max_retries=8, backoff_base=0.05)
            wall, answered, attempts, engine = timed_run(spec, options, args.n, str(run))
            walls.append(wall)
            print(f"run {run + 1}: {wall:.3f} s, {answered} answered, {args.n - answered} failed, {attempts} requests, "
                  f"CPU {engine.cpu_s:.3f} s ({1000 * engine.cpu_s / max(attempts, 1):.1f} ms a request); "
                  f"load {os.getloadavg()[0]:.2f}")
    ideal = args.n * args.latency / args.concurrency
    median = statistics.median(walls)
    print(f"questions={args.n} latency={args.latency}s concurrency={args.concurrency} cpus={os.cpu_count()}")
    print(f"achieved (median of {args.repeat}): {median:.3f} s")
    print(f"ideal (N x latency / concurrency): {ideal:.3f} s")
    print(f"ratio: {median / ideal:.2f}x")


def storm(args: argparse.Namespace) -> None:
    # The default retry budget (Settings' defaults), except the backoff base, which is scaled to the latency here.
    defaults = Settings()
    options = CallOptions(concurrency=args.concurrency, max_retries=defaults.max_retries,
                          rate_limit_wait=defaults.rate_limit_wait, backoff_base=args.backoff_base)
    with fake_server(args.latency) as root:
        spec = resolve_model("openai:/bench", Settings(openai_api_key="bench", openai_base_url=f"{root}/v1"))
        clean = [timed_run(spec, options, args.n, f"clean{run}")[0] for run in range(args.repeat)]
    baseline = statistics.median(clean)
    print(f"fault-free: median {baseline:.3f} s of {args.repeat} runs ({', '.join(f'{w:.2f}' for w in clean)})")
    walls, complete = [], 0
    extra = ["--storm", str(args.seed), "--retry-after", str(args.retry_after)]
    with fake_server(args.latency, extra=extra) as root:
        spec = resolve_model("openai:/bench", Settings(openai_api_key="bench", openai_base_url=f"{root}/v1"))
        for run in range(args.storm):
            wall, answered, attempts, engine = timed_run(spec, options, args.n, f"storm{run}")
            walls.append(wall)
            complete += answered == args.n
            lowest = engine.limit.lowest if engine.limit else float("nan")
            print(f"storm run {run + 1:2}: {answered}/{args.n} answered, {attempts} requests, {wall:.3f} s "
                  f"({wall / baseline:.2f}x), concurrency fell to {lowest:.0f}")
    print(f"questions={args.n} latency={args.latency}s concurrency={args.concurrency} retry-after={args.retry_after}s "
          f"backoff={args.backoff_base}s max_retries={options.max_retries} cpus={os.cpu_count()} "
          f"load={os.getloadavg()[0]:.1f}")
    print(f"every row answered in {complete}/{args.storm} runs")
    print(f"storm wall: median {statistics.median(walls):.3f} s = {statistics.median(walls) / baseline:.2f}x "
          f"the fault-free time, worst {max(walls) / baseline:.2f}x")


def dead_endpoint(args: argparse.Namespace) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        bench = Path(folder) / "bench.csv"
        bench.write_text("question,answer\n" + "".join(f"Q{i}?,A{i}\n" for i in range(args.n)), encoding="utf-8")
        env = {**os.environ, "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
               "PYTHONPATH": str(ROOT)}
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "tui.cli", "answer", str(bench), "--model", "openai:/m"],
                                capture_output=True, text=True, env=env, cwd=folder, timeout=300)
        wall = time.perf_counter() - started
    print(f"proctor answer, {args.n} rows, closed port: exit {result.returncode} after {wall:.2f} s "
          f"(process start-up and imports included; load {os.getloadavg()[0]:.1f})")
    print(result.stderr.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--storm", type=int, metavar="RUNS", help="run the rate-limit storm RUNS times")
    parser.add_argument("--seed", type=int, default=0, help="the storm's seed")
    parser.add_argument("--retry-after", type=float, default=0.2, help="Retry-After of the storm's 429s")
    parser.add_argument("--backoff-base", type=float, default=0.05)
    parser.add_argument("--dead-endpoint", action="store_true", help="time `proctor answer` on a closed port")
    args = parser.parse_args()

    warm_up()  # the openai import (about 2 s) is start-up, paid once per process, not throughput
    if args.dead_endpoint:
        dead_endpoint(args)
    elif args.storm:
        storm(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
