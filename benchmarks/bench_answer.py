"""`proctor answer` end to end, as a user runs it: a real subprocess against the fake server (issue 14's "Answer").

Default: N rows (200) at a fixed latency (0.1 s) with `PROCTOR_CONCURRENCY` (16), --repeat runs. Each run prints
- the whole command: from starting the process to its exit (interpreter, imports, reading, answering, saving);
- time to the first request: until the fake server received the first question;
- after the first request: the rest, and its ratio to the ideal N x latency / concurrency;
- the command's CPU time (user + system), which the machine's load inflates far less than wall time;
- the machine's load (1-minute load average), since on a shared 2-core machine every figure moves with it;
then the medians. The goals: whole command at most 3.0 s (median); after the first request at most 1.15x the
ideal. The fake server runs in this process (in threads): its CPU is not the command's, as a real server's is not.

--in-process adds `answer_benchmark` called in this process (no interpreter start, SDK already imported).
--rows 3000 --memory: one `proctor answer` subprocess on that many rows; its wall time and peak memory (ru_maxrss
of the child, from wait4).

    python benchmarks/bench_answer.py [--rows 200] [--latency 0.1] [--concurrency 16] [--repeat 5]
    python benchmarks/bench_answer.py --rows 3000 --memory
"""

from __future__ import annotations

import argparse
import compileall
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_llm_server import Behaviour, FakeLLMServer  # noqa: E402

WHOLE_GOAL_S = 3.0
AFTER_FIRST_GOAL = 1.15


def write_benchmark(path: Path, rows: int, tag: str) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "answer", "topic"])
        for i in range(rows):
            writer.writerow([f"Question {tag}-{i}: what is {i} plus {i}?", str(2 * i), "arithmetic"])
    return path


def load() -> float:
    return os.getloadavg()[0]


def run_cli(server: FakeLLMServer, path: Path, out: Path, concurrency: int) -> dict[str, float]:
    """One `proctor answer` subprocess: wall, first-request and after-first times, exit status, peak RSS (kB)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "OPENAI_", "AZURE_"))}
    env.update(OPENAI_API_KEY="bench", OPENAI_BASE_URL=server.url, PROCTOR_CONCURRENCY=str(concurrency),
               PROCTOR_MAX_RETRIES="8", PROCTOR_BACKOFF_BASE="0.05", PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "tui.cli", "answer", str(path), "-o", str(out), "--model", "openai:/bench",
               "--quiet"]
    server.reset()
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, cwd=path.parent)
    _, status, usage = os.wait4(proc.pid, 0)
    ended = time.monotonic()
    first = min((info.received for info in server.log), default=ended)
    last_answer = max((info.received for info in server.log), default=ended) + server.behaviour.latency
    return {"wall": ended - started, "first": first - started, "after": ended - first, "tail": ended - last_answer,
            "code": os.waitstatus_to_exitcode(status), "rss_kb": usage.ru_maxrss, "load": load(),
            "cpu": usage.ru_utime + usage.ru_stime,
            "requests": len(server.log)}


def in_process(server: FakeLLMServer, work: Path, args: argparse.Namespace, ideal: float) -> None:
    from core.benchmark import answer_benchmark
    from core.config import Settings

    settings = Settings(openai_api_key="bench", openai_base_url=server.url, max_retries=8, backoff_base=0.05)
    answering = []
    for run in range(args.repeat):
        path = write_benchmark(work / f"inproc{run}.csv", args.rows, f"i{run}")
        summary = answer_benchmark(path, work / f"inproc{run}.out.csv", model="openai:/bench",
                                   concurrency=args.concurrency, settings=settings)
        answering.append(summary.elapsed_s)
        print(f"in-process run {run + 1}: start-up {summary.setup_s:.3f} s, answering {summary.elapsed_s:.3f} s "
              f"({summary.elapsed_s / ideal:.2f}x); {summary.answered} answered, {summary.failed} failed; "
              f"load {load():.2f}")
    print(f"in-process answering, median of {args.repeat}: {statistics.median(answering):.3f} s "
          f"= {statistics.median(answering) / ideal:.2f}x the ideal")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--memory", action="store_true", help="only one subprocess run, with its peak memory")
    parser.add_argument("--in-process", action="store_true", help="also time answer_benchmark in this process")
    args = parser.parse_args()
    ideal = args.rows * args.latency / args.concurrency
    # An installed Proctor has its bytecode: compile the sources now, as pip would have (PYTHONDONTWRITEBYTECODE
    # would otherwise make every run compile them again).
    for package in ("core", "tui"):
        compileall.compile_dir(ROOT / package, quiet=1)

    with FakeLLMServer(Behaviour(latency=args.latency), api_key=None) as server, \
            tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        print(f"rows={args.rows} latency={args.latency}s PROCTOR_CONCURRENCY={args.concurrency} "
              f"cpus={os.cpu_count()} ideal (N x latency / concurrency) {ideal:.3f} s; load {load():.2f}")
        if args.memory:
            path = write_benchmark(work / "bench.csv", args.rows, "mem")
            run = run_cli(server, path, work / "out.csv", args.concurrency)
            print(f"proctor answer: {run['wall']:.2f} s, exit {run['code']}, peak memory (ru_maxrss) "
                  f"{run['rss_kb'] / 1024:.0f} MB; load {run['load']:.2f}")
            return
        runs = []
        for i in range(args.repeat):
            path = write_benchmark(work / f"cli{i}.csv", args.rows, f"c{i}")
            run = run_cli(server, path, work / f"cli{i}.out.csv", args.concurrency)
            runs.append(run)
            print(f"run {i + 1}: whole {run['wall']:.3f} s = first request at {run['first']:.3f} s + after it "
                  f"{run['after']:.3f} s ({run['after'] / ideal:.2f}x ideal), of which {run['tail']:.3f} s after the "
                  f"last answer left the server; CPU {run['cpu']:.2f} s; exit "
                  f"{run['code']}, {run['requests']} requests; load {run['load']:.2f}")
        whole, first, after, cpu = (statistics.median(run[k] for run in runs)
                                    for k in ("wall", "first", "after", "cpu"))
        loads = [run["load"] for run in runs]
        print(f"proctor answer, median of {args.repeat} (load {min(loads):.2f}-{max(loads):.2f}):")
        verdict = "yes" if whole <= WHOLE_GOAL_S else "NO"
        print(f"  whole command        {whole:.3f} s   (goal <= {WHOLE_GOAL_S} s: {verdict})")
        print(f"  to the first request {first:.3f} s")
        print(f"  after it             {after:.3f} s = {after / ideal:.2f}x the ideal {ideal:.3f} s "
              f"(goal <= {AFTER_FIRST_GOAL}x: {'yes' if after / ideal <= AFTER_FIRST_GOAL else 'NO'})")
        print(f"  CPU of the command   {cpu:.2f} s (user + system: what load cannot inflate much)")
        imports = []
        for _ in range(args.repeat):
            started = time.monotonic()
            subprocess.run([sys.executable, "-c", "import openai"], check=True)
            imports.append(time.monotonic() - started)
        print(f"  floor: python -c 'import openai' median {statistics.median(imports):.3f} s (the first request "
              f"needs the SDK; load {load():.2f})")
        if args.in_process:
            in_process(server, work, args, ideal)


if __name__ == "__main__":
    main()
