"""`proctor answer`: exit codes, options, output name and messages, through tui.cli.main and a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.benchmark import ANSWER_COLUMNS
from core.csvio import read_table
from tests.conftest import TEST_KEY
from tui.cli import main


def bench(tmp_path: Path, rows: int = 5, name: str = "bench.csv") -> Path:
    path = tmp_path / name
    path.write_text("question,answer\n" + "".join(f"Q{i}?,A{i}\n" for i in range(rows)), encoding="utf-8")
    return path


def test_every_row_answered_exits_0_with_a_summary_and_the_default_name(openai_env, tmp_path, capsys):
    path = bench(tmp_path)
    assert main(["answer", str(path)]) == 0
    captured = capsys.readouterr()
    out = tmp_path / "bench.answers.openai-gpt-4.1-mini.csv"
    assert out.exists()
    assert "answered 5, failed 0, skipped 0 (of 5 rows, openai:/gpt-4.1-mini)" in captured.out
    assert "latency mean" in captured.out and "p95" in captured.out and "tokens" in captured.out
    assert f"saved {out}" in captured.out
    assert "\r" not in captured.err, "no progress bar when stderr is not a terminal"
    assert TEST_KEY not in captured.out + captured.err
    assert list(read_table(out).columns) == ["question", "answer", *ANSWER_COLUMNS]


def test_failed_rows_exit_1_and_are_marked(openai_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PROCTOR_MAX_RETRIES", "1")
    openai_env.behaviour.fail_first = 2
    openai_env.behaviour.fail_statuses = (503,)
    path = bench(tmp_path, 3)
    assert main(["answer", str(path), "-o", "out.csv"]) == 1
    captured = capsys.readouterr()
    assert "failed 3" in captured.out and "run the same command again" in captured.out
    assert set(openai_env.attempts.values()) == {2}, "each row was retried once before being marked"
    assert read_table(tmp_path / "out.csv")["error"].str.startswith("HTTP 503").all()
    assert main(["answer", str(path), "-o", "out.csv"]) == 0  # third attempts succeed


def test_limit_then_resume_then_fresh(openai_env, tmp_path, capsys):
    path = bench(tmp_path, 6)
    assert main(["answer", str(path), "-o", "out.csv", "--limit", "2"]) == 0
    assert len(read_table(tmp_path / "out.csv")) == 2 and len(openai_env.attempts) == 2
    assert main(["answer", str(path), "-o", "out.csv"]) == 0
    assert "already done 2" in capsys.readouterr().out
    assert len(openai_env.attempts) == 6 and set(openai_env.attempts.values()) == {1}
    assert main(["answer", str(path), "-o", "out.csv"]) == 0
    assert "nothing to send" in capsys.readouterr().out
    assert main(["answer", str(path), "-o", "out.csv", "--fresh"]) == 0
    assert set(openai_env.attempts.values()) == {2}


def test_quiet_prints_nothing(openai_env, tmp_path, capsys):
    path = tmp_path / "b.csv"
    # No reference column and an empty question: two warnings.
    path.write_text("prompt,topic\nQ?,x\n\n,y\n", encoding="utf-8")
    assert main(["answer", str(path), "-o", "out.csv", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert main(["answer", str(path), "-o", "out2.csv"]) == 0
    err = capsys.readouterr().err
    assert err.count("proctor: warning:") == 2 and "reference" in err and "empty question" in err


def test_forced_progress_bar(openai_env, tmp_path, capsys):
    path = bench(tmp_path, 4)
    assert main(["answer", str(path), "-o", "out.csv", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "\r[" in err and "4/4 rows" in err and "errors 0" in err and "ETA" in err


@pytest.mark.parametrize(("args", "message"), [
    (["answer", "missing.csv"], "missing.csv: no such file"),
    (["answer", "empty.csv"], "is empty"),
    (["answer", "binary.csv"], "not a text file"),
    (["answer", "noq.csv"], "no question column"),
    (["answer", "bench.csv", "-o", "bench.csv"], "never modified"),
    (["answer", "bench.csv", "--model", "nonsense"], "not a model URI"),
])
def test_bad_input_exits_2_with_one_line(openai_env, tmp_path, capsys, args, message):
    bench(tmp_path)
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)))
    (tmp_path / "noq.csv").write_text("a,b\n1,2\n")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("proctor: error: ") and message in err and err.count("\n") == 1
    assert len(openai_env.attempts) == 0


def test_missing_setting_exits_2(tmp_path, capsys):
    bench(tmp_path)
    assert main(["answer", "bench.csv", "--model", "openai:/x"]) == 2
    assert "OPENAI_API_KEY is not set" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_bad_numbers_are_usage_errors(tmp_path, capsys, value):
    bench(tmp_path)
    with pytest.raises(SystemExit) as caught:
        main(["answer", "bench.csv", "--concurrency", value])
    assert caught.value.code == 2
    assert "--concurrency" in capsys.readouterr().err


def test_refused_key_exits_2_in_a_subprocess_without_traceback(openai_env, tmp_path):
    path = bench(tmp_path, 30)
    env = {**os.environ, "OPENAI_API_KEY": "sk-wrong-0123456789"}
    result = subprocess.run([sys.executable, "-m", "tui.cli", "answer", str(path)], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("proctor: error: the server refused the key") and "Traceback" not in result.stderr
    assert "sk-wrong" not in result.stderr + result.stdout
    assert result.stderr.count("\n") == 1


def test_bad_file_in_a_subprocess_has_no_traceback(tmp_path):
    (tmp_path / "x.csv").write_bytes(b"\x00\x01\x02garbage")
    result = subprocess.run([sys.executable, "-m", "tui.cli", "answer", "x.csv"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr == "proctor: error: x.csv is not a text file (it holds binary data)\n"


def test_help_documents_the_default_name_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["answer", "--help"])
    text = capsys.readouterr().out
    assert "BENCHMARK.answers.PROVIDER-MODEL.csv" in text and "Exit status" in text
    assert "--fresh" in text and "--force" in text


def _grade_first_row(out: Path) -> None:
    from core.grading import GradingSession

    with GradingSession(out) as session:
        session.set_verdict(0, "correct", note="checked")


def test_another_models_graded_file_exits_2_naming_force_then_force_keeps_a_backup(openai_env, tmp_path, capsys):
    path = bench(tmp_path, 3)
    assert main(["answer", str(path), "-o", "out.csv", "-q"]) == 0
    _grade_first_row(tmp_path / "out.csv")
    data = (tmp_path / "out.csv").read_bytes()
    capsys.readouterr()
    assert main(["answer", str(path), "-o", "out.csv", "--model", "openai:/other", "--fresh"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("proctor: error: ") and err.count("\n") == 1 and "--force" in err
    assert (tmp_path / "out.csv").read_bytes() == data
    assert main(["answer", str(path), "-o", "out.csv", "--model", "openai:/other", "--force", "-q"]) == 0
    err = capsys.readouterr().err
    backups = list(tmp_path.glob("out.backup-*.csv"))
    assert len(backups) == 1 and "1 verdict(s) moved" in err and backups[0].name in err, "said even with -q"
    assert read_table(backups[0])["human_note"].tolist() == ["checked", "", ""]


def test_fresh_on_a_graded_file_says_where_the_verdicts_went(openai_env, tmp_path, capsys):
    path = bench(tmp_path, 2)
    assert main(["answer", str(path), "-o", "out.csv", "-q"]) == 0
    _grade_first_row(tmp_path / "out.csv")
    assert main(["answer", str(path), "-o", "out.csv", "--fresh"]) == 0
    err = capsys.readouterr().err
    assert "proctor: warning: 1 verdict(s) moved out of out.csv, with 2 earlier row(s)" in err
    assert (read_table(tmp_path / "out.csv")["human_verdict"] == "").all()
