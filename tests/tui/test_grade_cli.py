"""`proctor grade`: --stats and --json, sampling from the command line, one-line errors, opening the app."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.csvio import read_table, write_csv_atomic
from tui.cli import main


def answers_csv(path: Path, rows: int = 20, judge: bool = False) -> Path:
    data = {"question": [f"Q{i}?" for i in range(rows)], "answer": [str(i) for i in range(rows)],
            "llm_answer": [f"A{i}" for i in range(rows)], "model": ["openai:/m"] * rows}
    if judge:
        data["judge_verdict"] = ["correct"] * rows
    write_csv_atomic(pd.DataFrame(data, dtype=str), path)
    return path


def test_stats_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = answers_csv(tmp_path / "a.csv", judge=True)
    frame = read_table(path)
    frame["human_verdict"] = ["correct"] * 5 + ["incorrect"] * 5 + [""] * 10
    write_csv_atomic(frame, path)
    assert main(["grade", str(path), "--stats"]) == 0
    out = capsys.readouterr().out
    assert "graded      10 of 20" in out and "50.0%" in out and "23.7%–76.3%" in out
    assert "agreement 50.0% on 10 rows" in out
    assert main(["grade", str(path), "--stats", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["graded"] == 10 and data["share_correct"] == 0.5
    assert data["ci95"] == pytest.approx([0.2366, 0.7634], abs=1e-4)
    assert data["judge"]["compared"] == 10 and data["judge"]["disagreements"] == [6, 7, 8, 9, 10]


def test_sample_from_the_command_line_opens_the_app_on_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = answers_csv(tmp_path / "a.csv")
    opened = {}

    def fake_run(app) -> None:
        opened.update(pane=app.initial_pane, path=app.grade_path, blind=app.grade_blind)

    monkeypatch.setattr("tui.app.ProctorApp.run", fake_run)
    monkeypatch.setattr("tui.quick_exit.exit_process", lambda code: None)  # os._exit would end pytest itself
    assert main(["grade", str(path), "--sample", "5", "--seed", "1", "--blind"]) == 0
    assert opened == {"pane": "grade", "path": str(path), "blind": True}
    assert sum(1 for cell in read_table(path)["human_sample"] if cell) == 5
    assert main(["grade", str(path), "--sample", "5", "--seed", "1"]) == 0  # resuming the same sample


@pytest.mark.parametrize(("argv", "message"), [
    (["grade", "missing.csv"], "missing.csv: no such file"),
    (["grade", "q.csv"], "no llm_answer column"),
    (["grade", "a.csv", "--json"], "--json goes with --stats"),
    (["grade", "a.csv", "--seed", "3"], "--seed goes with --sample"),
    (["grade", "a.csv", "--stats", "--sample", "3"], "--stats reads the file as it is"),
    (["grade", "a.csv", "--sample", "50"], "more than the 20 rows"),
])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                     message: str) -> None:
    answers_csv(tmp_path / "a.csv")
    (tmp_path / "q.csv").write_text("question,answer\nx,y\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("proctor: error: ") and message in err and err.count("\n") == 1


def test_a_different_sample_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = answers_csv(tmp_path / "a.csv")
    monkeypatch.setattr("tui.app.ProctorApp.run", lambda app: None)
    monkeypatch.setattr("tui.quick_exit.exit_process", lambda code: None)  # os._exit would end pytest itself
    assert main(["grade", str(path), "--sample", "5", "--seed", "1"]) == 0
    assert main(["grade", str(path), "--sample", "5", "--seed", "2"]) == 2
    assert "already holds a sample of 5 rows" in capsys.readouterr().err
