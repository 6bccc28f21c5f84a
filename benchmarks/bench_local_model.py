"""Figures for the embedded model local:/smollm2: start-up time, tokens per second, server memory.

- first use: wall time of `ensure_server()` in a fresh process (imports, model load, readiness poll), --starts times;
- tokens/s: completion_tokens / latency for each of a few questions asked one at a time, then the same questions
  four at once (aggregate tokens/s: the server queues them, so this shows the cost of concurrency);
- time to first streamed token;
- the server's resident memory (VmRSS) after start and after answering;
- `proctor ask` end to end in a new process (nothing configured, so the local model), time to its first byte.

    python benchmarks/bench_local_model.py [--starts 3] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "What is the capital of France?",
    "Explain what a CPU does in two sentences.",
    "Give three tips for writing clear emails.",
    "What is photosynthesis?",
]

START_SNIPPET = (
    "import time; t = time.perf_counter(); from core import local_model; local_model.ensure_server(); "
    "print(time.perf_counter() - t, local_model.server_status()['startup_s'])"
)


def _child_env(state_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "OPENAI_", "AZURE_"))}
    env["PROCTOR_STATE_DIR"] = state_dir
    env["PYTHONPATH"] = str(ROOT)
    return env


def first_use(starts: int, state_dir: str) -> None:
    walls, servers = [], []
    for _ in range(starts):
        out = subprocess.run([sys.executable, "-c", START_SNIPPET], env=_child_env(state_dir), check=True,
                             capture_output=True, text=True).stdout.split()
        walls.append(float(out[0]))
        servers.append(float(out[1]))
    print(f"first use, ensure_server() wall: median {statistics.median(walls):.2f} s "
          f"(runs: {', '.join(f'{w:.2f}' for w in walls)}); of which server start to ready: "
          f"median {statistics.median(servers):.2f} s")


def proctor_ask(state_dir: str) -> None:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli", "ask", "What is the capital of France?"],
                            env=_child_env(state_dir), cwd=state_dir, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    select.select([proc.stdout], [], [], 120)
    first_byte = time.perf_counter() - started
    proc.communicate(timeout=120)
    total = time.perf_counter() - started
    print(f"`proctor ask` in a new process: first answer byte after {first_byte:.2f} s, done after {total:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3, help="fresh processes timed for the first-use figure")
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    from core import local_model
    from core.config import Settings
    from core.llm import engine_for, stream_chat

    state_dir = tempfile.mkdtemp(prefix="proctor-bench-")
    os.environ["PROCTOR_STATE_DIR"] = state_dir
    print(f"threads: {local_model.threads()}, n_ctx: {local_model.N_CTX}, cpus: {os.cpu_count()}")
    first_use(args.starts, state_dir)

    started = time.perf_counter()
    local_model.ensure_server()
    status = local_model.server_status()
    assert status is not None
    print(f"in this process: ensure_server() {time.perf_counter() - started:.2f} s; "
          f"server RSS after start {status['rss_mb']:.0f} MB")

    settings = Settings()  # nothing configured: the local model, temperature 0
    sequential = engine_for("local:/smollm2", settings, max_tokens=args.max_tokens, concurrency=1)
    answers = sequential.answer_all(list(enumerate(QUESTIONS)))
    rates = []
    for a in sorted(answers, key=lambda a: a.key):
        rate = (a.completion_tokens or 0) / a.latency_s if a.latency_s else 0.0
        rates.append(rate)
        print(f"  q{a.key}: {a.completion_tokens} tokens in {a.latency_s:.2f} s = {rate:.1f} tok/s "
              f"({a.finish_reason})")
    print(f"tokens/s one at a time: median {statistics.median(rates):.1f}")

    concurrent = engine_for("local:/smollm2", settings, max_tokens=args.max_tokens, concurrency=4)
    started = time.perf_counter()
    answers = concurrent.answer_all(list(enumerate(QUESTIONS)))
    wall = time.perf_counter() - started
    tokens = sum(a.completion_tokens or 0 for a in answers)
    print(f"four at once: {tokens} tokens in {wall:.2f} s = {tokens / wall:.1f} tok/s aggregate, "
          f"all ok: {all(a.ok for a in answers)}")

    firsts = []
    for q in QUESTIONS:
        stream = stream_chat(q, "local:/smollm2", settings=settings, max_tokens=16)
        for _ in stream:
            pass
        if stream.first_token_s is not None:
            firsts.append(stream.first_token_s)
    print(f"first streamed token: median {statistics.median(firsts):.2f} s")

    status = local_model.server_status()
    assert status is not None
    print(f"server RSS after answering: {status['rss_mb']:.0f} MB (pid {status['pid']})")
    local_model.stop_server()

    proctor_ask(state_dir)


if __name__ == "__main__":
    main()
