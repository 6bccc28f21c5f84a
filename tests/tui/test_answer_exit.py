"""`proctor answer` ends without the interpreter's teardown, yet with its work on disk and its exit handlers run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from core.answers_file import journal_path
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


def test_answer_exits_with_every_answer_saved_and_exit_handlers_run(openai_env, tmp_path):
    (tmp_path / "bench.csv").write_text("question,answer\n" + "".join(f"Q{i}?,A{i}\n" for i in range(30)),
                                        encoding="utf-8")
    flag = tmp_path / "atexit-ran"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run([sys.executable, "-c", CHILD, str(flag), "answer", "bench.csv", "--concurrency", "8"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "answered 30, failed 0" in result.stdout and "saved " in result.stdout  # stdout flushed before the end
    assert flag.read_text(encoding="utf-8") == "ran"
    out = tmp_path / "bench.answers.openai-gpt-4.1-mini.csv"
    frame = read_table(out)
    assert frame["llm_answer"].tolist() == [f"Answer from gpt-4.1-mini: Q{i}?" for i in range(30)]
    assert not journal_path(out).exists()
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file of a save left behind"


def test_a_failing_answer_run_keeps_its_exit_status(openai_env, tmp_path):
    (tmp_path / "bench.csv").write_text("question,answer\nQ0?,A0\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OPENAI_API_KEY": "sk-wrong-123"}
    result = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "flag"), "answer", "bench.csv"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("proctor: error: the server refused the key")
    assert (tmp_path / "flag").exists()
