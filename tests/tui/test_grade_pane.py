"""The Grade pane, driven by Pilot as a person would: grade, undo, annotate, sample, blind, table, quit.

Every assertion about a verdict reads the CSV back from disk: what counts is what is saved.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.csvio import read_table, write_csv_atomic
from core.grading import GradingSession
from tui.app import ProctorApp
from tui.panes.grade import GradePane
from tui.widgets.grade_screens import GradeHelpScreen, NoteScreen, OpenCsvScreen


def answers_csv(path: Path, rows: int = 6, judge: bool = True, long_answer: bool = False) -> Path:
    data = {
        "question": [f"What is the capital of country number {i}?" for i in range(rows)],
        "answer": [f"City {i}" for i in range(rows)],
        "llm_answer": [f"The capital is City {i}." for i in range(rows)],
        "model": ["openai:/gpt-4.1-mini"] * rows,
        "latency_s": ["0.8"] * rows,
        "prompt_tokens": ["20"] * rows,
        "completion_tokens": ["7"] * rows,
        "error": [""] * rows,
    }
    if long_answer:
        data["llm_answer"][0] = "\n".join(f"Paragraph {n}: the answer goes on and on." for n in range(60))
    if judge:
        data["judge_verdict"] = ["correct", "incorrect"] * (rows // 2) + ["correct"] * (rows % 2)
        data["judge_rationale"] = ["because"] * rows
        data["judge_error"] = [""] * rows
        data["run_id"] = ["run-42"] * rows
    write_csv_atomic(pd.DataFrame(data, dtype=str), path)
    return path


def verdicts(path: Path) -> list[str]:
    return read_table(path)["human_verdict"].tolist()


async def settle(pilot) -> None:
    """Wait until the pane's workers are done and their messages handled."""
    pane = pilot.app.query_one(GradePane)
    for _ in range(50):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not pane.saving and not pane._queued:
            return
    raise AssertionError("the Grade pane kept saving")


async def press(pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
    await settle(pilot)


def grade_app(path: Path | None, **kwargs) -> ProctorApp:
    return ProctorApp(pane="grade", grade_path=str(path) if path else None, warm_up=False, **kwargs)


def status(app: ProctorApp) -> str:
    return str(app.query_one("#grade-position").render()) + " | " + str(app.query_one("#grade-stats").render())


async def test_grade_skip_undo_and_the_next_row(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv")
    app = grade_app(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        pane = app.query_one(GradePane)
        assert pane.current == 0 and app.focused is pane
        await press(pilot, "y")
        assert verdicts(path)[0] == "correct" and pane.current == 1
        await press(pilot, "n")
        assert verdicts(path)[:2] == ["correct", "incorrect"] and pane.current == 2
        await press(pilot, "s")
        assert verdicts(path)[2] == "" and pane.current == 3
        await press(pilot, "y", "y")
        assert verdicts(path) == ["correct", "incorrect", "", "correct", "correct", ""]
        await press(pilot, "u")
        assert verdicts(path)[4] == "" and pane.current == 4
        await press(pilot, "g")
        assert pane.current == 5
        await press(pilot, "g")
        assert pane.current == 2  # wraps round to the skipped row
        await press(pilot, "k", "up", "j", "down")
        assert pane.current == 2
        assert "graded 3/6" in status(app)


async def test_fast_keys_are_saved_in_order(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv")
    app = grade_app(path)
    async with app.run_test() as pilot:
        await settle(pilot)
        for key in "ynyny":
            await pilot.press(key)  # no waiting between keys: they queue behind the save in flight
        await settle(pilot)
        assert verdicts(path) == ["correct", "incorrect", "correct", "incorrect", "correct", ""]


async def test_note_is_saved_and_undone(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv")
    app = grade_app(path)
    async with app.run_test() as pilot:
        await settle(pilot)
        await press(pilot, "e")
        assert isinstance(app.screen, NoteScreen)
        await pilot.press(*"too vague")
        await press(pilot, "enter")
        assert read_table(path)["human_note"][0] == "too vague"
        assert "too vague" in str(app.query_one("#grade-verdict").render())
        await press(pilot, "e", "escape")  # cancelled: nothing changes
        assert read_table(path)["human_note"][0] == "too vague"
        await press(pilot, "u")
        assert read_table(path)["human_note"][0] == ""


async def test_sample_is_graded_in_sample_order(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", rows=40)
    order = GradingSession(path, sample=5, seed=1).order  # as `proctor grade --sample 5 --seed 1` does
    app = grade_app(path)
    async with app.run_test() as pilot:
        await settle(pilot)
        pane = app.query_one(GradePane)
        assert pane.current == order[0]
        assert "sample 1 of 5" in status(app)
        await press(pilot, "y", "n", "y")
        assert pane.current == order[3]
        saved = verdicts(path)
        assert [saved[r] for r in order] == ["correct", "incorrect", "correct", "", ""]
        assert sum(1 for v in saved if v) == 3
        assert "graded 3/5" in status(app) and "whole file" in status(app)


async def test_blind_mode_hides_model_run_and_judge(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv")
    app = grade_app(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        shown = str(app.query_one("#grade-verdict").render())
        assert "openai:/gpt-4.1-mini" in shown and "run-42" in shown
        judge = app.query_one("#grade-judge")
        assert judge.display and "correct" in str(judge.render()) and "because" in str(judge.render())
        await press(pilot, "b")
        shown = str(app.query_one("#grade-verdict").render())
        assert "gpt-4.1-mini" not in shown and "run-42" not in shown and not judge.display
        assert "BLIND" in status(app) and "judge" not in status(app)
        await press(pilot, "t")
        table = app.query_one("#grade-table")
        assert [str(c.label) for c in table.columns.values()] == ["Row", "You", "Question", "Reference", "Answer",
                                                                 "Note"]


async def test_blind_from_the_command_line(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv")
    app = grade_app(path, grade_blind=True)
    async with app.run_test() as pilot:
        await settle(pilot)
        assert "gpt-4.1-mini" not in str(app.query_one("#grade-verdict").render())


async def test_table_view_shows_every_row_and_opens_one(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv")
    app = grade_app(path)
    async with app.run_test() as pilot:
        await settle(pilot)
        await press(pilot, "y", "t")
        pane = app.query_one(GradePane)
        table = app.query_one("#grade-table")
        assert table.display and table.row_count == 6 and app.focused is table
        assert "correct" in str(table.get_row("0")[1])
        await press(pilot, "n")  # grading works from the table too
        assert verdicts(path)[1] == "incorrect" and "incorrect" in str(table.get_row("1")[1])
        await press(pilot, "down", "down")
        assert pane.current == 4
        await press(pilot, "enter")
        assert not table.display and pane.current == 4 and app.focused is pane


async def test_disagreements_step_only_through_rows_where_person_and_judge_differ(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv")  # judge: correct, incorrect, correct, incorrect, ...
    app = grade_app(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "y", "y", "n", "n", "y", "y")  # disagrees on rows 2, 3, 6 (1-based)
        assert "judge agrees 50%" in status(app) and "3 differ" in status(app)
        await press(pilot, "d")
        pane = app.query_one(GradePane)
        assert pane.disagreement_mode and pane.current == 1
        assert "disagreement 1 of 3" in status(app)
        await press(pilot, "j")
        assert pane.current == 2
        await press(pilot, "y")  # now agrees with the judge: leaves the list, next disagreement shows
        assert pane.current == 5 and "disagreement 2 of 2" in status(app)


async def test_disagreements_need_judge_verdicts(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv", judge=False)
    app = grade_app(path)
    async with app.run_test() as pilot:
        await settle(pilot)
        await press(pilot, "d")
        assert not app.query_one(GradePane).disagreement_mode


async def test_help_screen_lists_the_keys(tmp_path: Path) -> None:
    app = grade_app(answers_csv(tmp_path / "a.csv"))
    async with app.run_test() as pilot:
        await settle(pilot)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, GradeHelpScreen)
        await press(pilot, "escape")
        assert not isinstance(app.screen, GradeHelpScreen)


async def test_q_closes_the_file_and_ctrl_q_quits(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv")
    app = grade_app(path)
    async with app.run_test() as pilot:
        await settle(pilot)
        pane = app.query_one(GradePane)
        await pilot.press("y")
        await press(pilot, "q")
        # The pending verdict was saved first; the file is closed and the picker is back, focused on its path field.
        assert pane.session is None and app.is_running
        assert app.query_one("#grade-open").display and not app.query_one("#grade-view").display
        assert app.focused is app.query_one("#csv-picker-input")
        assert verdicts(path)[0] == "correct"
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0


async def test_the_header_always_names_the_row_on_screen(tmp_path: Path) -> None:
    app = grade_app(answers_csv(tmp_path / "a.csv"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pane = app.query_one(GradePane)

        def header_row() -> str:
            return str(app.query_one("#grade-position").render()).split("row ")[1].split(" of")[0]

        def shown_question() -> str:
            return str(app.query_one("#grade-question").render())

        for keys in (["y", "y", "y"], ["s"], ["j"], ["k"], ["k"], ["g"]):
            await press(pilot, *keys)
            assert header_row() == str(pane.current + 1)
            assert f"number {pane.current}?" in shown_question()
        await press(pilot, "e")
        assert f"row {pane.current + 1}" in str(app.screen.query_one("Label").render())
        await press(pilot, "escape")


async def test_blind_mode_hides_the_model_in_the_file_name(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "bench.answers.openai-gpt-4.1-mini.csv")
    app = grade_app(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "gpt-4.1-mini" in str(app.query_one("#grade-position").render())
        await press(pilot, "b")
        screen_text = " ".join(str(w.render()) for w in app.query("Static") if w.display)
        assert "gpt-4.1-mini" not in screen_text and "BLIND" in screen_text


async def test_without_a_file_the_pane_offers_the_csvs_here(tmp_path: Path) -> None:
    answers_csv(tmp_path / "answers.csv")
    (tmp_path / "broken.csv").write_text("question,answer\nx,y\n")
    app = grade_app(None)
    async with app.run_test() as pilot:
        await settle(pilot)
        pane = app.query_one(GradePane)
        await press(pilot, "y")  # no file: the key is typed into the path field, no verdict, no crash
        assert app.query_one("#csv-picker-input").value == "y"
        app.query_one("#csv-picker-input").value = ""
        options = app.query_one("#csv-picker-options")
        assert {options.get_option_at_index(i).id for i in range(options.option_count)} == \
            {"answers.csv", "broken.csv"}
        # Each file says what it holds, once a worker has read it.
        prompts = {options.get_option_at_index(i).id: str(options.get_option_at_index(i).prompt)
                   for i in range(options.option_count)}
        assert "6 rows · 0 graded · judged" in prompts["answers.csv"]
        assert "benchmark · 1 question" in prompts["broken.csv"]
        # Focus starts in the path field, and what is typed is what opens (not the list's highlighted entry).
        assert app.focused is app.query_one("#csv-picker-input")
        await pilot.press(*"broken.csv")
        await press(pilot, "enter")
        assert pane.session is None
        assert "llm_answer" in str(app.query_one("#csv-picker-error").render())
        app.query_one("#csv-picker-input").value = ""
        await pilot.press(*"answers.csv")
        await press(pilot, "enter")
        assert pane.session is not None and app.focused is pane
        await press(pilot, "o")
        assert isinstance(app.screen, OpenCsvScreen)
        await press(pilot, "escape")


async def test_open_in_grade_from_another_pane(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv")
    app = ProctorApp(warm_up=False)
    async with app.run_test() as pilot:
        await pilot.pause()  # let the app settle on its Chat pane first, as a person would
        app.open_in_grade(str(path))
        await settle(pilot)
        assert app.query_one("#panes").active == "grade" and app.query_one(GradePane).session is not None
        await press(pilot, "y")
        assert verdicts(path)[0] == "correct"


async def test_a_file_changed_on_disk_is_not_overwritten_and_reload_keeps_the_verdict(tmp_path: Path) -> None:
    path = answers_csv(tmp_path / "a.csv")
    app = grade_app(path)
    async with app.run_test() as pilot:
        await settle(pilot)
        await press(pilot, "y")
        edited = read_table(path)
        edited.loc[4, "human_note"] = "from the spreadsheet"
        write_csv_atomic(edited, path)
        on_disk = path.read_bytes()
        await press(pilot, "n")  # refused: the file changed
        pane = app.query_one(GradePane)
        assert path.read_bytes() == on_disk and pane.blocked is not None and pane.current == 1
        assert app.query_one("#grade-banner").display
        assert "changed on disk" in str(app.query_one("#grade-banner").render())
        await press(pilot, "y")  # still refused until reloaded
        assert path.read_bytes() == on_disk
        await press(pilot, "r")
        table = read_table(path)
        assert table["human_verdict"].tolist()[:2] == ["correct", "incorrect"]
        assert table["human_note"][4] == "from the spreadsheet"
        assert not app.query_one("#grade-banner").display and pane.current == 2


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_snapshot(snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]) -> None:
    path = answers_csv(tmp_path / "answers.csv", long_answer=True)
    with GradingSession(path) as session:
        session.set_verdict(1, "correct", note="spot on")
        session.set_verdict(2, "incorrect")

    async def run_before(pilot) -> None:
        await settle(pilot)

    assert snap_compare(grade_app(path), terminal_size=size, run_before=run_before)


# -- one writer at a time ----------------------------------------------------------------------------------------

HOLDER = """
import sys, time
from core.filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
sys.stdin.readline()  # hold until told to let go
"""


def _hold(path: Path):
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    assert process.stdout.readline().strip() == "held"
    return process


async def test_a_file_another_process_writes_opens_read_only_then_can_be_taken_over(tmp_path: Path) -> None:
    from tests.tui.pilot import wait_for

    path = answers_csv(tmp_path / "a.csv")
    holder = _hold(path)
    try:
        app = grade_app(path)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            pane = app.query_one(GradePane)
            banner = app.query_one("#grade-banner")
            assert banner.display and "READ-ONLY" in str(banner.render())
            assert f"pid {holder.pid}" in str(banner.render())
            before = path.read_bytes()
            await press(pilot, "y", "e")
            assert path.read_bytes() == before, "nothing written while another process holds the file"
            assert pane.current == 0 and pane.session.verdict(0) == ""
            await press(pilot, "w")
            assert pane.locked is not None, "no take-over while the other writer still holds it"
            holder.communicate("go\n", timeout=10)  # the other writer lets go
            await wait_for(pilot, lambda: pane.lock_free, timeout=20)
            assert "w" in str(banner.render()) and "let go" in str(banner.render())
            await press(pilot, "w")
            assert pane.locked is None and not banner.display
            await press(pilot, "y")
            assert verdicts(path)[0] == "correct"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert not (tmp_path / ".a.csv.lock").exists(), "the pane let go of the file when the app closed"
