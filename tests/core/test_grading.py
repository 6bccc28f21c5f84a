"""core.grading: the statistics against published values, saving, undo, sampling, change detection, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from core.csvio import read_table, write_csv_atomic
from core.errors import InputError
from core.grading import (
    FileChangedError,
    FileLockedError,
    GradingSession,
    ReadOnlyError,
    SampleMismatchError,
    format_stats,
    population_estimate,
)
from core.stats import agreement, cohens_kappa, wilson_interval

ANSWER_COLUMNS = ["llm_answer", "model", "latency_s", "prompt_tokens", "completion_tokens", "error"]


def answers_csv(path: Path, rows: int = 10, judge: list[str] | None = None, extra: dict | None = None) -> Path:
    data = {
        "Question": [f"What is {i} + {i}?" for i in range(rows)],
        "Expected answer": [str(2 * i) for i in range(rows)],
        "llm_answer": [f"It is {2 * i}." for i in range(rows)],
        "model": ["openai:/gpt-4.1-mini"] * rows,
        "latency_s": ["0.5"] * rows,
        "prompt_tokens": ["12"] * rows,
        "completion_tokens": ["4"] * rows,
        "error": [""] * rows,
    }
    if judge is not None:
        data["judge_verdict"] = judge
    data.update(extra or {})
    write_csv_atomic(pd.DataFrame(data, dtype=str), path)
    return path


# -- Wilson interval ------------------------------------------------------------------------------------------

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics in Medicine 17:857,
# Table I, method 3 (Wilson score, no continuity correction), and the brief's own examples.
@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (0, 10, 0.0, 0.2775),
    (5, 10, 0.2366, 0.7634),
])
def test_wilson_matches_published_values(k: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_matches_scipy_independently() -> None:
    stats = pytest.importorskip("scipy.stats")
    for k, n in [(0, 1), (1, 1), (3, 7), (29, 30), (500, 1000), (1, 3000)]:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_wilson_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 10)[0] == 0.0
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_population_estimate_with_finite_population_correction() -> None:
    # Grading every row leaves nothing to estimate: the interval closes on the share.
    every = population_estimate(30, 40, 40)
    assert (every.low, every.high) == pytest.approx((0.75, 0.75))
    # A small sample of a huge file is (nearly) the plain Wilson interval; of a small file, narrower.
    assert (population_estimate(15, 30, 10**9).low, population_estimate(15, 30, 10**9).high) == \
        pytest.approx(wilson_interval(15, 30), abs=1e-6)
    small = population_estimate(15, 30, 60)
    plain = wilson_interval(15, 30)
    assert plain[0] < small.low < 0.5 < small.high < plain[1]
    assert population_estimate(0, 0, 100).share is None


# -- Cohen's kappa --------------------------------------------------------------------------------------------

def _pairs(yes_yes: int, yes_no: int, no_yes: int, no_no: int) -> tuple[list[str], list[str]]:
    a = ["y"] * (yes_yes + yes_no) + ["n"] * (no_yes + no_no)
    b = ["y"] * yes_yes + ["n"] * yes_no + ["y"] * no_yes + ["n"] * no_no
    return a, b


@pytest.mark.parametrize(("table", "kappa", "observed"), [
    # The worked examples of Cohen's kappa (Wikipedia, "Cohen's kappa", Examples): 50 proposals read by A and B.
    ((20, 5, 10, 15), 0.4, 0.7),
    ((45, 15, 25, 15), 0.1304, 0.6),
    ((25, 35, 5, 35), 0.2593, 0.6),
])
def test_kappa_matches_textbook_examples(table: tuple[int, int, int, int], kappa: float, observed: float) -> None:
    a, b = _pairs(*table)
    assert cohens_kappa(a, b) == pytest.approx(kappa, abs=5e-5)
    assert agreement(a, b) == pytest.approx(observed)


def test_kappa_matches_sklearn_independently() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    a = ["correct", "incorrect", "correct", "correct", "incorrect", "correct", "incorrect", "incorrect"]
    b = ["correct", "correct", "correct", "incorrect", "incorrect", "correct", "incorrect", "correct"]
    assert cohens_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b))


def test_kappa_undefined_cases() -> None:
    assert cohens_kappa([], []) is None
    assert cohens_kappa(["correct"] * 4, ["correct"] * 4) is None  # chance agreement is 1
    assert cohens_kappa(["correct", "incorrect"], ["incorrect", "correct"]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        agreement(["a"], [])


# -- saving ---------------------------------------------------------------------------------------------------

def test_opening_adds_columns_and_keeps_everything_else(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", 4, extra={"notes by me": ["=SUM(A1)", "x", "", "-3"]})
    before = read_table(path)
    session = GradingSession(path)
    session.set_verdict(2, "correct")
    after = read_table(path)
    assert list(after.columns) == list(before.columns) + ["human_verdict", "human_note"]
    pd.testing.assert_frame_equal(after[list(before.columns)], before)
    assert after["human_verdict"].tolist() == ["", "", "correct", ""]
    assert b"'=SUM(A1)" in path.read_bytes()  # still neutralised on disk


def test_written_bytes_are_those_of_write_csv_atomic(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", 6, extra={"weird": ['a "quoted", cell', "line\nbreak", "@x", "+1.5",
                                                               "", "é"]})
    session = GradingSession(path)
    session.set_verdict(0, "incorrect", note="=not a formula, just a note")
    session.set_verdict(5, "correct")
    reference = tmp_path / "reference.csv"
    write_csv_atomic(session.frame, reference)
    assert path.read_bytes() == reference.read_bytes()


def test_set_verdict_note_and_undo(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", 5)
    session = GradingSession(path)
    session.set_verdict(0, "correct")
    session.set_verdict(1, "incorrect", note="off by one")
    session.set_note(0, "clear")
    assert read_table(path)["human_note"].tolist()[:2] == ["clear", "off by one"]
    assert session.undo() == 0
    assert read_table(path)["human_note"].tolist()[0] == ""
    assert read_table(path)["human_verdict"].tolist()[0] == "correct"
    assert session.undo() == 1
    assert session.undo() == 0
    assert session.undo() is None
    assert read_table(path)["human_verdict"].tolist() == [""] * 5
    with pytest.raises(ValueError):
        session.set_verdict(0, "maybe")
    with pytest.raises(IndexError):
        session.set_verdict(5, "correct")


def test_spreadsheet_spelling_of_verdicts_is_understood_and_unknown_text_kept(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", 3, extra={"human_verdict": ["Correct ", "dunno", ""]})
    session = GradingSession(path)
    assert [session.verdict(r) for r in range(3)] == ["correct", "", ""]
    session.set_note(1, "asked a colleague")
    assert read_table(path)["human_verdict"].tolist() == ["Correct ", "dunno", ""]
    assert session.next_ungraded() == 1


def test_a_file_saved_by_a_spreadsheet_still_opens(tmp_path: Path) -> None:
    # Semicolons, cp1252, no BOM, verdict columns present: as LibreOffice saves it for a French locale.
    path = tmp_path / "a.csv"
    text = "question;answer;llm_answer;model;human_verdict;human_note\r\nCafé ?;oui;Oui;m;correct;é\r\nX;y;z;m;;\r\n"
    path.write_bytes(text.encode("cp1252"))
    session = GradingSession(path)
    assert session.question(0) == "Café ?" and session.verdict(0) == "correct"
    session.set_verdict(1, "incorrect")
    assert read_table(path)["human_note"].tolist() == ["é", ""]


def test_bad_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        GradingSession(tmp_path / "missing.csv")
    (tmp_path / "q.csv").write_text("question,answer\nx,y\n")
    with pytest.raises(InputError, match="llm_answer"):
        GradingSession(tmp_path / "q.csv")
    (tmp_path / "noq.csv").write_text("foo,llm_answer\nx,y\n")
    with pytest.raises(InputError, match="question"):
        GradingSession(tmp_path / "noq.csv")


# -- sampling -------------------------------------------------------------------------------------------------

def test_sample_is_reproducible_saved_and_resumed(tmp_path: Path) -> None:
    a = answers_csv(tmp_path / "a.csv", 50)
    b = answers_csv(tmp_path / "b.csv", 50)
    first = GradingSession(a, sample=10, seed=1)
    second = GradingSession(b, sample=10, seed=1)
    assert first.order == second.order and len(set(first.order)) == 10
    other = GradingSession(answers_csv(tmp_path / "c.csv", 50), sample=10, seed=2)
    assert other.order != first.order
    places = read_table(a)["human_sample"].tolist()
    assert sorted(int(p) for p in places if p) == list(range(1, 11))
    assert [first.order.index(r) + 1 for r in range(50) if places[r]] == [int(p) for p in places if p]
    resumed = GradingSession(a, read_only=True)  # `first` still holds the file
    assert resumed.order == first.order
    first.close()
    assert GradingSession(a, sample=10, seed=1).order == first.order
    assert first.next_ungraded() == first.order[0]


def test_a_different_sample_is_refused_not_reshuffled(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", 50)
    GradingSession(path, sample=10, seed=1)
    before = path.read_bytes()
    with pytest.raises(SampleMismatchError, match="already holds a sample of 10"):
        GradingSession(path, sample=10, seed=2)
    with pytest.raises(SampleMismatchError):
        GradingSession(path, sample=20, seed=1)
    assert path.read_bytes() == before


def test_sample_bigger_than_the_file(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", 5)
    with pytest.raises(InputError, match="more than the 5 rows"):
        GradingSession(path, sample=6)
    with pytest.raises(InputError, match="positive"):
        GradingSession(path, sample=0)


def test_sample_stats_estimate_the_whole_file(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", 100)
    session = GradingSession(path, sample=20, seed=3)
    for i, row in enumerate(session.order[:10]):
        session.set_verdict(row, "correct" if i < 7 else "incorrect")
    outside = next(r for r in range(100) if r not in session.order)
    session.set_verdict(outside, "incorrect")  # outside the sample: not counted in its statistics
    stats = session.stats()
    assert (stats.scope, stats.graded, stats.correct, stats.sample_size) == (20, 10, 7, 20)
    assert (stats.interval.low, stats.interval.high) == pytest.approx(wilson_interval(7, 10))
    assert stats.whole_file.share == pytest.approx(0.7)
    assert stats.whole_file.low > stats.interval.low  # the finite population correction narrows it
    data = json.loads(json.dumps(stats.as_dict()))
    assert data["whole_file"]["rows"] == 100 and data["whole_file"]["correct_rows"] == 70.0


# -- judge agreement ------------------------------------------------------------------------------------------

def test_agreement_with_the_judge_and_disagreements(tmp_path: Path) -> None:
    judge = ["correct", "correct", "incorrect", "incorrect", "", "correct"]
    path = answers_csv(tmp_path / "a.csv", 6, judge=judge)
    session = GradingSession(path)
    for row, verdict in enumerate(["correct", "incorrect", "incorrect", "correct", "correct"]):
        session.set_verdict(row, verdict)
    stats = session.stats()
    # Rows 0-3 have both verdicts (row 4: the judge failed; row 5: not graded).
    assert stats.judge_compared == 4
    assert stats.judge_agreement == pytest.approx(0.5)
    assert stats.judge_kappa == pytest.approx(0.0)
    assert stats.disagreements == [1, 3]
    assert stats.as_dict()["judge"]["disagreements"] == [2, 4]
    assert "Cohen's kappa 0.000" in format_stats(stats, "a.csv")
    assert GradingSession(answers_csv(tmp_path / "b.csv", 2)).stats().as_dict()["judge"] is None


# -- change detection -----------------------------------------------------------------------------------------

def test_a_file_changed_on_disk_is_not_overwritten(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", 5)
    session = GradingSession(path)
    session.set_verdict(0, "correct")
    edited = read_table(path)
    edited.loc[3, "human_note"] = "written in a spreadsheet"
    write_csv_atomic(edited, path)
    on_disk = path.read_bytes()
    assert session.changed_on_disk()
    with pytest.raises(FileChangedError, match="changed on disk"):
        session.set_verdict(1, "incorrect")
    assert path.read_bytes() == on_disk
    assert session.verdict(1) == ""  # the refused change is not kept in memory either
    session.reload()
    assert session.note(3) == "written in a spreadsheet" and session.verdict(0) == "correct"
    session.set_verdict(1, "incorrect")
    assert read_table(path)["human_note"][3] == "written in a spreadsheet"
    assert read_table(path)["human_verdict"].tolist()[:2] == ["correct", "incorrect"]


def test_the_same_bytes_rewritten_are_not_a_change(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", 3)
    session = GradingSession(path)
    session.set_verdict(0, "correct")
    data = path.read_bytes()
    time.sleep(0.01)
    path.write_bytes(data)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert not session.changed_on_disk()
    session.set_verdict(1, "correct")


# -- kill -9 --------------------------------------------------------------------------------------------------

GRADER = """
import sys
from core.grading import GradingSession
session = GradingSession(sys.argv[1])
row = 0
while True:
    session.set_verdict(row % session.rows, "correct" if row % 3 else "incorrect", note=f"pass {row // session.rows}")
    print(row, flush=True)  # only once set_verdict has returned: the verdict is on disk
    row += 1
"""


def test_kill_9_loses_no_saved_verdict(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", 400)
    process = subprocess.Popen([sys.executable, "-c", GRADER, str(path)], stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[2])
    reported = []
    try:
        for line in process.stdout:
            reported.append(int(line))
            if len(reported) >= 150:
                break
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert len(reported) >= 150, "the grader stopped before grading"
    table = read_table(path)  # still a whole, readable file
    assert len(table) == 400
    for row in reported:
        assert table["human_verdict"][row] == ("correct" if row % 3 else "incorrect")


# -- one writer at a time ---------------------------------------------------------------------------------------


def test_a_second_writer_is_refused_read_only_is_allowed_and_take_over_reloads(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", 4)
    first = GradingSession(path)
    with pytest.raises(FileLockedError) as caught:
        GradingSession(path)
    assert caught.value.exit_code == 2
    viewer = GradingSession(path, read_only=True)
    with pytest.raises(ReadOnlyError):
        viewer.set_verdict(0, "correct")
    assert viewer.verdict(0) == "", "a refused write leaves the row as it was"
    with pytest.raises(FileLockedError):
        viewer.take_over()
    first.set_verdict(1, "incorrect")
    first.close()
    with pytest.raises(ReadOnlyError):
        first.set_verdict(2, "correct")
    viewer.take_over()
    assert viewer.verdict(1) == "incorrect", "taking over reads what the writer before saved"
    viewer.set_verdict(0, "correct")
    viewer.close()
    assert read_table(path)["human_verdict"].tolist() == ["correct", "incorrect", "", ""]


def test_stats_and_viewing_need_no_lock(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", 4)
    with GradingSession(path) as writer:
        writer.set_verdict(0, "correct")
        assert GradingSession(path, read_only=True).stats().graded == 1


RACER = """
import sys, time
from core.grading import FileLockedError, GradingSession
path, start, parity = sys.argv[1], sys.argv[2], int(sys.argv[3])
import os
while not os.path.exists(start):
    time.sleep(0.001)
refused = 0
for row in range(parity, 40, 2):
    while True:
        try:
            with GradingSession(path) as session:
                session.set_verdict(row, "correct" if parity else "incorrect", note=f"by {os.getpid()}")
            break
        except FileLockedError as error:
            assert error.pid != os.getpid()
            if not refused:
                print(f"refused by {error.pid}", file=sys.stderr, flush=True)
            refused += 1
    print(row, flush=True)  # reported saved: set_verdict returned, under the lock
print(f"{refused} refusals", file=sys.stderr)
"""


def test_two_processes_racing_verdicts_on_one_file_lose_none(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", 40)
    start = tmp_path / "go"
    root = Path(__file__).resolve().parents[2]
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(path), str(start), str(parity)], cwd=root,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for parity in (0, 1)]
    # While a session holds the file, the other processes cannot write it at all (not merely "not at once").
    holding = GradingSession(path)
    start.touch()
    for racer in racers:
        assert racer.stderr.readline().strip() == f"refused by {os.getpid()}"
    holding.set_verdict(0, "correct", note="held first")
    holding.close()
    outputs = []
    for racer in racers:
        stdout, stderr = racer.communicate(timeout=120)
        assert racer.returncode == 0, stderr
        outputs.append((stdout, stderr))
    reported = sorted(int(line) for stdout, _ in outputs for line in stdout.split())
    assert reported == list(range(40)), "every verdict was reported saved once"
    table = read_table(path)
    assert table["human_verdict"].tolist() == ["correct" if row % 2 else "incorrect" for row in range(40)]
    pids = {str(racer.pid) for racer in racers}
    assert {note.split()[-1] for note in table["human_note"]} == pids
    print("refusals:", [stderr.strip() for _, stderr in outputs])
