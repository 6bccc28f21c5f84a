"""Grading speed on a 3,000-row answers CSV: from a verdict key to the next row shown, the verdict on disk.

Two figures, median and p95 over --n verdicts:
- core: `GradingSession.set_verdict` alone (change the row, write the file atomically with fsync);
- app: in the real app (headless, under run_test), from the `y` key event entering the app until the pane shows
  the next row and the screen has been refreshed: key dispatch, the save worker (the write above), the message
  back to the pane, the statistics, re-rendering and painting.
The issue's target: under 50 ms per verdict.

    python benchmarks/bench_grade.py [--rows 3000] [--n 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from core.csvio import write_csv_atomic  # noqa: E402
from core.grading import GradingSession  # noqa: E402


def answers_file(path: Path, rows: int) -> Path:
    """A realistic answers CSV: ~700 bytes a row, multi-line answers with commas and quotes, a judge column."""
    answer = "The answer, in short: it depends on \"context\".\n" * 12
    frame = pd.DataFrame({
        "question": [f"Question {i}: explain, with an example, how item {i} works?" for i in range(rows)],
        "answer": [f"Reference answer {i}, with a comma" for i in range(rows)],
        "llm_answer": [f"{i}. {answer}" for i in range(rows)],
        "model": ["azure:/gpt-4.1-nano"] * rows,
        "latency_s": ["1.234"] * rows,
        "prompt_tokens": ["31"] * rows,
        "completion_tokens": ["250"] * rows,
        "error": [""] * rows,
        "judge_verdict": ["correct", "incorrect", "correct"] * (rows // 3) + ["correct"] * (rows % 3),
    }, dtype=str)
    write_csv_atomic(frame, path)
    return path


def summary(label: str, seconds: list[float]) -> str:
    ms = sorted(1000 * s for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    median = statistics.median(ms)
    return f"{label:<5} median {median:6.1f} ms   p95 {p95:6.1f} ms   max {ms[-1]:6.1f} ms   (n={len(ms)})"


def bench_core(path: Path, n: int) -> list[float]:
    session = GradingSession(path)
    times = []
    for row in range(n):
        start = time.perf_counter()
        session.set_verdict(row, "correct" if row % 2 else "incorrect")
        times.append(time.perf_counter() - start)
    return times


async def bench_app(path: Path, n: int) -> list[float]:
    from textual import events

    from tui.app import ProctorApp
    from tui.panes.grade import GradePane

    painted = asyncio.Event()
    handler = GradePane.on_grade_pane_change_saved

    def saved_then_painted(pane: GradePane, message: GradePane.ChangeSaved) -> None:
        handler(pane, message)  # shows the next row
        pane.call_after_refresh(painted.set)  # runs once the screen holding it has been painted

    # Instrument the pane instead of polling it: a polling loop would compete with the app for the GIL.
    GradePane.on_grade_pane_change_saved = saved_then_painted
    app = ProctorApp(pane="grade", grade_path=str(path), warm_up=False)
    times = []
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            pane = app.query_one(GradePane)
            while pane.session is None:
                await pilot.pause(0.05)
            await pilot.pause()
            for _ in range(n):
                expected = pane.current + 1
                painted.clear()
                # The key goes in as the terminal driver delivers it (Pilot.press adds idle waits of its own,
                # ~70 ms even for a key that does nothing, which would swamp what we measure).
                key = events.Key("y", "y")
                key.set_sender(app)
                start = time.perf_counter()
                app._driver.send_message(key)
                await painted.wait()
                times.append(time.perf_counter() - start)
                assert pane.current == expected, "the pane did not move to the next row"
                await pilot.pause()
    finally:
        GradePane.on_grade_pane_change_saved = handler
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = answers_file(Path(folder) / "answers.csv", args.rows)
        size = path.stat().st_size
        start = time.perf_counter()
        GradingSession(path)
        print(f"{args.rows} rows, {size / 1e6:.1f} MB; opening: {1000 * (time.perf_counter() - start):.0f} ms")
        print(summary("core", bench_core(path, args.n)))
        path = answers_file(Path(folder) / "answers2.csv", args.rows)
        print(summary("app", asyncio.run(bench_app(path, args.n))))


if __name__ == "__main__":
    main()
