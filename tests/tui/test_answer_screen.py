"""The "answer a benchmark" screen, driven with Textual's Pilot against the fake server."""

from __future__ import annotations

import threading
from pathlib import Path

from textual.app import App
from textual.widgets import Button, Input, OptionList, ProgressBar, Static

from core.csvio import read_table
from tests.fake_llm_server import default_answer
from tests.tui.pilot import wait_for
from tui.app import ProctorApp
from tui.widgets.answer_screen import AnswerScreen, csv_suggestions


def text_of(screen: AnswerScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def write_bench(folder: Path, rows: int, name: str = "benchmark.csv") -> Path:
    path = folder / name
    path.write_text("question,answer\n" + "".join(f"Q{i}?,A{i}\n" for i in range(rows)), encoding="utf-8")
    return path


class Host(App[None]):
    """A bare app that opens the screen and keeps what it returns."""

    def __init__(self) -> None:
        super().__init__()
        self.result: object = "not dismissed"
        self.opened: list[str] = []

    def on_mount(self) -> None:
        self.push_screen(AnswerScreen(), self._done)

    def _done(self, value: str | None) -> None:
        self.result = value

    def open_in_grade(self, path: str) -> None:
        self.opened.append(path)


def test_csv_suggestions_put_the_benchmark_first(tmp_path):
    for name in ("zeta.csv", "benchmark.answers.m.csv", "alpha.CSV", "benchmark.csv", "notes.txt", ".hidden.csv"):
        (tmp_path / name).write_text("question\nQ?\n")
    assert csv_suggestions(tmp_path) == ["benchmark.csv", "alpha.CSV", "zeta.csv", "benchmark.answers.m.csv"]


async def test_answers_with_live_progress_then_opens_in_grade(openai_env, tmp_path):
    # The server answers 12 questions, then holds the rest until the test has seen the screen mid-way: on a loaded
    # machine a run of 24 quick answers can end before the screen is looked at.
    answered, gate = [], threading.Event()

    def halfway(body, info):  # noqa: ANN001, ANN202
        answered.append(info.question)
        if len(answered) > 12:
            gate.wait(timeout=120)
        return default_answer(body, info)

    openai_env.behaviour.responder = halfway
    write_bench(tmp_path, 24)
    write_bench(tmp_path, 2, "other.csv")
    app = Host()
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, AnswerScreen)
        assert screen.query_one("#answer-path", Input).value == "benchmark.csv"
        assert screen.query_one("#answer-model", Input).value == "openai:/gpt-4.1-mini"
        assert screen.query_one("#answer-files", OptionList).option_count == 2
        assert not screen.query_one("#answer-open", Button).display
        seen: list[tuple[str, float | None]] = []

        def finished() -> bool:
            seen.append((text_of(screen, "#answer-status"), screen.query_one("#answer-progress", ProgressBar).total))
            return screen.out_path is not None

        await pilot.press("ctrl+s")

        def mid_way() -> bool:
            finished()
            text, total = seen[-1]
            return "/24 rows" in text and total == 24 and not text.startswith(("0/", "24/"))

        try:
            await wait_for(pilot, mid_way)
        finally:
            gate.set()
        await wait_for(pilot, finished)
        status = text_of(screen, "#answer-status")
        assert "Done: 24 answered, 0 failed" in status and "benchmark.answers.openai-gpt-4.1-mini.csv" in status
        bar = screen.query_one("#answer-progress", ProgressBar)
        assert (bar.total, bar.progress) == (24, 24)
        assert screen.query_one("#answer-open", Button).display
        frame = read_table(tmp_path / "benchmark.answers.openai-gpt-4.1-mini.csv")
        assert (frame["llm_answer"] != "").all() and len(frame) == 24
        await pilot.pause()  # let the button that just appeared be laid out before clicking it
        await pilot.click("#answer-open")
        await pilot.pause()
        assert app.result == str(tmp_path / "benchmark.answers.openai-gpt-4.1-mini.csv")
        assert app.opened == [app.result]


async def test_cancel_keeps_what_was_answered_and_start_again_resumes(openai_env, tmp_path):
    openai_env.behaviour.latency = 0.1
    write_bench(tmp_path, 200)
    app = Host()
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        screen.query_one("#answer-model", Input).value = "openai:/gpt-4.1-mini"
        await pilot.click("#answer-start")
        await wait_for(pilot, lambda: sum(openai_env.attempts.values()) >= 10)
        assert screen.running and screen.query_one("#answer-stop", Button).display
        await pilot.press("escape")  # cancels, does not close
        await wait_for(pilot, lambda: not screen.running)
        assert app.screen is screen
        summary = screen.summary
        assert summary.cancelled and 0 < summary.answered < 200
        assert "Cancelled" in text_of(screen, "#answer-status")
        out = tmp_path / "benchmark.answers.openai-gpt-4.1-mini.csv"
        kept = int((read_table(out)["llm_answer"] != "").sum())
        assert kept == summary.answered
        asked = sum(openai_env.attempts.values())
        assert asked < 200, "cancel stopped the sending"

        openai_env.behaviour.latency = 0.0
        await pilot.click("#answer-start")  # "Start again"
        await wait_for(pilot, lambda: not screen.running and screen.summary is not summary)
        assert screen.summary.already_done == kept and screen.summary.answered == 200 - kept
        assert len(openai_env.attempts) == 200
        await pilot.press("escape")  # now it closes
        await pilot.pause()
        assert app.result == str(out)


async def test_bad_inputs_are_shown_not_raised(openai_env, tmp_path):
    (tmp_path / "noq.csv").write_text("a,b\n1,2\n")
    app = Host()
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        assert screen.query_one("#answer-path", Input).value == ""  # no benchmark.csv here
        await pilot.press("ctrl+s")
        assert "Name a benchmark CSV" in text_of(screen, "#answer-error")
        screen.query_one("#answer-path", Input).value = "missing.csv"
        await pilot.press("ctrl+s")
        assert "missing.csv: no such file" in text_of(screen, "#answer-error")
        screen.query_one("#answer-path", Input).value = "noq.csv"
        screen.query_one("#answer-model", Input).value = "azure:/x"
        await pilot.press("ctrl+s")
        assert "AZURE_OPENAI_ENDPOINT is not set" in text_of(screen, "#answer-error")
        assert not screen.running
        screen.query_one("#answer-model", Input).value = "openai:/gpt-4.1-mini"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not screen.running)
        assert "no question column" in text_of(screen, "#answer-error")
        assert screen.out_path is None
        await pilot.press("escape")
        await pilot.pause()
        assert app.result is None
    assert len(openai_env.attempts) == 0


async def test_from_the_app_ctrl_b_answers_and_opens_the_grade_pane(openai_env, tmp_path):
    write_bench(tmp_path, 3)
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+b")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AnswerScreen)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.out_path is not None)
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert not isinstance(app.screen, AnswerScreen)
        assert app.query_one("#panes").active == "grade"
        grade = app.query_one("#grade-pane")
        await wait_for(pilot, lambda: getattr(grade, "session", None) is not None)
        assert Path(str(grade.session.path)).name == "benchmark.answers.openai-gpt-4.1-mini.csv"


async def test_a_file_that_is_not_answers_is_replaced_only_when_asked_and_backed_up(openai_env, tmp_path):
    write_bench(tmp_path, 3)
    out = tmp_path / "benchmark.answers.openai-gpt-4.1-mini.csv"
    out.write_text("name,score\nalice,3\n", encoding="utf-8")  # not an answers file: the CLI wants --force
    app = Host()
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "--force" in text_of(screen, "#answer-error"))
        assert out.read_text(encoding="utf-8") == "name,score\nalice,3\n"  # refused: untouched
        assert str(screen.query_one("#answer-start", Button).label) == "Replace (backup first)"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.out_path is not None)
        assert len(read_table(out)) == 3
        backups = list(tmp_path.glob("benchmark.answers.openai-gpt-4.1-mini.backup-*.csv"))
        assert len(backups) == 1 and "alice" in backups[0].read_text(encoding="utf-8")
