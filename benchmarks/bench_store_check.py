"""Seconds until `proctor evaluate` and `proctor runs` give up on an unreachable MLFLOW_TRACKING_URI.

Two dead servers on 127.0.0.1: a closed port (connection refused) and a socket that accepts connections and never
answers a byte. Each command runs in a new process, as a user would start it (Python start-up and imports
included); the model endpoint is a closed port too, so a model call would show as a different error. Prints the
wall time of each (median of `--repeat`), the exit status, and the machine's load average (the figures move with
it: importing pandas alone took 1-6 s on a loaded 2-core machine).

    python benchmarks/bench_store_check.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # the kernel accepts; nothing ever answers
    servers = {"refused": _closed_port(), "never answers": silent.getsockname()[1]}
    with tempfile.TemporaryDirectory(prefix="proctor-bench-store-") as tmp:
        bench = Path(tmp) / "bench.csv"
        bench.write_text("question,answer\nWhat is 2+2?,4\n", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OPENAI_", "AZURE_", "PROCTOR_"))}
        env.update(PYTHONPATH=str(ROOT), MLFLOW_DISABLE_TELEMETRY="true", MLFLOW_MODEL_CATALOG_URI="",
                   OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=f"http://127.0.0.1:{_closed_port()}/v1")
        print(f"load average before: {os.getloadavg()[0]:.1f} (cpus: {os.cpu_count()})")
        for label, port in servers.items():
            env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{port}"
            for command in (["evaluate", str(bench), "--judge", "none", "-q"], ["runs"]):
                times, codes = [], set()
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    done = subprocess.run([sys.executable, "-m", "tui.cli", *command], env=env, cwd=tmp,
                                          capture_output=True, text=True, timeout=600)
                    times.append(time.perf_counter() - t0)
                    codes.add(done.returncode)
                print(f"{command[0]:9} server {label:14} median {statistics.median(times):5.2f} s "
                      f"(max {max(times):5.2f} s)  exit {sorted(codes)}  {done.stderr.strip()[:90]}")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    silent.close()


if __name__ == "__main__":
    main()
