"""What core.safety costs: printable, scrub and the CLI's SafeWriter on answer-sized text. Prints figures.

Run: `python benchmarks/bench_safety.py`. The figures are per call, on this machine, at its current load.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.safety import SafeWriter, printable, scrub, scrubber  # noqa: E402

ANSWER = ("The capital of France is Paris. " * 30).strip()  # ~1 KB, a typical answer
HOSTILE = ANSWER + "\x1b]0;title\x07\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[2J\x9b2J"
SECRETS = ["sk-live-0123456789abcdef0123456789abcdef", "azure-key-0123456789abcdef", "judge-key-abcdef012345"]


def per_call_us(fn, arg, n: int = 20000) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn(arg)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    os.environ.setdefault("OPENAI_API_KEY", SECRETS[0])
    bound = scrubber(SECRETS)
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"printable, 1 KB clean answer:       {per_call_us(printable, ANSWER):7.1f} µs")
    print(f"printable, 1 KB hostile answer:     {per_call_us(printable, HOSTILE):7.1f} µs")
    print(f"scrub (bound scrubber), 1 KB:       {per_call_us(bound, ANSWER):7.1f} µs")
    print(f"scrub (secrets read from the env):  {per_call_us(lambda t: scrub(t), ANSWER, 2000):7.1f} µs")
    writer = SafeWriter(io.StringIO(), SECRETS)
    print(f"SafeWriter.write, 1 KB:             {per_call_us(writer.write, HOSTILE):7.1f} µs")


if __name__ == "__main__":
    main()
