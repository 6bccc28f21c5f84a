"""`proctor answer` sends its first question before importing what it does not need (pandas, mlflow, textual...).

Checked in a real subprocess: an audit hook records the modules loaded at the moment the process first connects to
the fake server, i.e. when the first request leaves. What is asserted is which modules, never how long anything took.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from core.csvio import read_table
from tests.conftest import TEST_KEY

NOT_NEEDED = ("pandas", "numpy", "mlflow", "scipy", "textual", "sklearn", "pyarrow", "sqlalchemy")

# Runs `proctor answer ARGS...`; at the first socket connection to PORT, writes the loaded modules' names to FILE.
CHILD = textwrap.dedent("""
    import json, sys

    port, record, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    seen = []

    def hook(event, args):
        if event == "socket.connect" and not seen:
            address = args[1]
            if isinstance(address, tuple) and len(address) >= 2 and address[1] == port:
                seen.append(sorted(sys.modules))  # first, so that the open() below does not come back here
                with open(record, "w", encoding="utf-8") as handle:
                    json.dump(seen[0], handle)

    sys.addaudithook(hook)
    from tui.cli import main

    sys.exit(main(argv))
""")


def run_answer(openai_env, tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    record = tmp_path / "modules.json"
    record.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run([sys.executable, "-c", CHILD, str(openai_env.port), str(record), "answer", "bench.csv",
                             "--quiet", *extra], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert record.exists(), "the command never connected to the server"
    return result, json.loads(record.read_text(encoding="utf-8"))


def loaded(modules: list[str], package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in modules)


def test_first_request_leaves_before_pandas_mlflow_or_textual_are_imported(openai_env, tmp_path):
    (tmp_path / "bench.csv").write_text("question,answer\n" + "".join(f"Q{i}?,A{i}\n" for i in range(20)),
                                        encoding="utf-8")
    _, modules = run_answer(openai_env, tmp_path)
    assert loaded(modules, "openai"), "the hook fired at the first request, which the openai client sends"
    assert [package for package in NOT_NEEDED if loaded(modules, package)] == []
    out = tmp_path / "bench.answers.openai-gpt-4.1-mini.csv"
    assert read_table(out)["llm_answer"].str.startswith("Answer from").all()
    assert len(openai_env.questions()) == 20
    assert TEST_KEY not in out.read_text(encoding="utf-8")


def test_resuming_an_answers_file_also_sends_before_pandas(openai_env, tmp_path):
    # The second run reads the earlier answers file (and its verdict columns) before asking the rows still to ask.
    (tmp_path / "bench.csv").write_text("question,answer\nQ0?,A0\nQ1?,A1\n", encoding="utf-8")
    run_answer(openai_env, tmp_path)
    out = tmp_path / "bench.answers.openai-gpt-4.1-mini.csv"
    text = out.read_bytes().decode("utf-8-sig")
    assert "error\r\n" in text
    out.write_bytes(text.replace("error\r\n", "error,human_verdict\r\n", 1).encode("utf-8-sig"))
    with open(tmp_path / "bench.csv", "a", encoding="utf-8") as handle:
        handle.write("Q2?,A2\n")
    openai_env.reset()
    _, modules = run_answer(openai_env, tmp_path)
    assert [package for package in NOT_NEEDED if loaded(modules, package)] == []
    assert openai_env.questions() == ["Q2?"]  # the two answered rows were not sent again
    frame = read_table(out)
    assert frame["question"].tolist() == ["Q0?", "Q1?", "Q2?"]
    assert list(frame.columns)[-1] == "human_verdict"
