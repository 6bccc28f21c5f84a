"""Start the fake OpenAI-compatible server (tests/fake_llm_server.py) in a child process, for benchmarks.

A separate process keeps the server's CPU work off the benchmark's own interpreter, as a real server would be.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def fake_server(latency: float, fail_rate: float = 0.0, extra: Sequence[str] = ()) -> Iterator[str]:
    """Yield the server's root URL (add /v1 for OpenAI clients). `extra`: more fake_llm_server.py options."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_llm_server.py"), "--latency", str(latency),
         "--fail-rate", str(fail_rate), *extra],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        if not line.startswith("READY "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield line.split(" ", 1)[1]
    finally:
        proc.terminate()
        proc.wait(timeout=5)
