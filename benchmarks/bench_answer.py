"""Answering a benchmark end to end: `answer_benchmark` (the code path of `proctor answer`) against the fake server.

Default mode: N rows at a fixed latency and concurrency, --repeat runs in this process, then the same through a real
`proctor answer` subprocess. It prints, per run, the wall time, the fixed start-up (reading, resuming, importing the
SDK, before the first question is sent) and the answering time, then the medians and the ratio to the ideal
(N x latency / concurrency). The issue's target: 200 rows, 100 ms, concurrency 16 -> wall <= 1.25 x ideal + start-up.

--rows 3000 mode: one `proctor answer` subprocess on that many rows; prints its wall time and peak memory (ru_maxrss
of the child, from wait4).

    python benchmarks/bench_answer.py [--rows 200] [--latency 0.1] [--concurrency 16] [--repeat 3]
    python benchmarks/bench_answer.py --rows 3000 --memory
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import fake_server  # noqa: E402

from core.benchmark import answer_benchmark  # noqa: E402
from core.config import Settings  # noqa: E402


def write_benchmark(path: Path, rows: int, tag: str) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "answer", "topic"])
        for i in range(rows):
            writer.writerow([f"Question {tag}-{i}: what is {i} plus {i}?", str(2 * i), "arithmetic"])
    return path


def run_cli(root: str, path: Path, out: Path, concurrency: int) -> tuple[float, int, int]:
    """(wall seconds, exit status, peak RSS in kB) of one `proctor answer` subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "OPENAI_", "AZURE_"))}
    env.update(OPENAI_API_KEY="bench", OPENAI_BASE_URL=f"{root}/v1", PROCTOR_MAX_RETRIES="8",
               PROCTOR_BACKOFF_BASE="0.05")
    command = [sys.executable, "-m", "tui.cli", "answer", str(path), "-o", str(out), "--model", "openai:/bench",
               "--concurrency", str(concurrency), "--quiet"]
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, proc.returncode, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="only the subprocess run, with its peak memory")
    args = parser.parse_args()
    ideal = args.rows * args.latency / args.concurrency

    with fake_server(args.latency) as root, tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        print(f"rows={args.rows} latency={args.latency}s concurrency={args.concurrency} cpus={os.cpu_count()}")
        if args.memory:
            path = write_benchmark(work / "bench.csv", args.rows, "mem")
            wall, code, rss_kb = run_cli(root, path, work / "out.csv", args.concurrency)
            print(f"proctor answer: {wall:.2f} s, exit {code}, peak memory (ru_maxrss) {rss_kb / 1024:.0f} MB")
            print(f"ideal (N x latency / concurrency): {ideal:.2f} s")
            return

        settings = Settings(openai_api_key="bench", openai_base_url=f"{root}/v1", max_retries=8, backoff_base=0.05)
        walls, setups, answering = [], [], []
        for run in range(args.repeat):
            path = write_benchmark(work / f"bench{run}.csv", args.rows, f"r{run}")
            started = time.perf_counter()
            summary = answer_benchmark(path, work / f"out{run}.csv", model="openai:/bench",
                                       concurrency=args.concurrency, settings=settings)
            wall = time.perf_counter() - started
            walls.append(wall)
            setups.append(summary.setup_s)
            answering.append(summary.elapsed_s)
            print(f"run {run + 1}: wall {wall:.3f} s = start-up {summary.setup_s:.3f} s + answering "
                  f"{summary.elapsed_s:.3f} s; {summary.answered} answered, {summary.failed} failed")
        wall, setup, answer = (statistics.median(v) for v in (walls, setups, answering))
        print(f"in-process, median of {args.repeat}: wall {wall:.3f} s, start-up {setup:.3f} s, "
              f"answering {answer:.3f} s")
        print(f"ideal (N x latency / concurrency): {ideal:.3f} s")
        print(f"ratio answering / ideal: {answer / ideal:.2f}x   (target <= 1.25x)")
        print(f"check: wall {wall:.3f} s <= 1.25 x ideal + start-up = {1.25 * ideal + setup:.3f} s: "
              f"{'yes' if wall <= 1.25 * ideal + setup else 'NO'}")

        # The same through the real command, start-up (interpreter, imports) measured on a one-row file.
        one = write_benchmark(work / "one.csv", 1, "one")
        cli_walls, cli_starts = [], []
        for run in range(args.repeat):
            start_wall, _, _ = run_cli(root, one, work / f"one{run}.csv", args.concurrency)
            path = write_benchmark(work / f"cli{run}.csv", args.rows, f"c{run}")
            cli_wall, code, _ = run_cli(root, path, work / f"cliout{run}.csv", args.concurrency)
            cli_walls.append(cli_wall)
            cli_starts.append(start_wall - args.latency)
            print(f"proctor answer run {run + 1}: {cli_wall:.3f} s (exit {code}); one-row run {start_wall:.3f} s")
        cli_wall, cli_start = statistics.median(cli_walls), statistics.median(cli_starts)
        print(f"proctor answer, median of {args.repeat}: {cli_wall:.3f} s; fixed start-up (one-row run minus one "
              f"latency) {cli_start:.3f} s; (wall - start-up) / ideal = {(cli_wall - cli_start) / ideal:.2f}x")


if __name__ == "__main__":
    main()
