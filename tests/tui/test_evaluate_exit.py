"""`proctor evaluate` ends without the interpreter's teardown, yet with its run, traces and verdicts in place."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from evaluation_helpers import responder

from core.csvio import read_table

# The console script's path (`tui.cli.entry`), with an exit handler of the test's own registered first.
CHILD = textwrap.dedent("""
    import atexit, sys

    flag = sys.argv[1]
    atexit.register(lambda: open(flag, "w", encoding="utf-8").write("ran"))
    sys.argv = ["proctor", *sys.argv[2:]]
    from tui.cli import entry

    entry()
""")


def test_evaluate_exits_with_its_run_and_verdicts_stored(azure_env, tracking: str, tmp_path: Path) -> None:  # noqa: ANN001
    azure_env.behaviour.responder = responder
    answers = tmp_path / "answers.csv"
    with open(answers, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "answer", "llm_answer", "model"])
        writer.writerows([(f"Question {i}: what is {i} times 7?", str(i * 7), f"It is {i * 7}.", "azure:/m")
                          for i in range(1, 13)])
    flag = tmp_path / "atexit-ran"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run([sys.executable, "-c", CHILD, str(flag), "evaluate", str(answers), "--judge",
                             "azure:/gpt-4.1-nano", "-q"], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "accuracy (errors count as wrong)  100.0%" in result.stdout  # stdout flushed before the end
    assert flag.read_text(encoding="utf-8") == "ran"
    run_id = result.stdout.split("run id: ")[1].split()[0]
    assert read_table(answers)["judge_verdict"].tolist() == ["correct"] * 12
    with sqlite3.connect(tracking.removeprefix("sqlite:///")) as con:
        (status,) = con.execute("SELECT status FROM runs WHERE run_uuid = ?", (run_id,)).fetchone()
        (linked,) = con.execute("SELECT COUNT(*) FROM entity_associations WHERE destination_id = ?",
                                (run_id,)).fetchone()
        (verdicts,) = con.execute("SELECT COUNT(*) FROM assessments a JOIN entity_associations e ON "
                                  "a.trace_id = e.source_id WHERE e.destination_id = ? AND a.name = 'correctness'",
                                  (run_id,)).fetchone()
    assert (status, linked, verdicts) == ("FINISHED", 12, 12)
