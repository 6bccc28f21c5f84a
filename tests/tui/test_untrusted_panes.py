"""Terminal safety in the app (issue 10): hostile model text, CSV cells and stored runs, driven with Pilot.

Each test renders the whole screen as the terminal would receive it (Textual's full update, escape sequences
included) and checks that nothing from `tests.hostile.HOSTILE` could act: no OSC (title, clipboard), no clear,
no BEL, no C1; ESC shows as a visible `␛`, and markup in the text shows as typed instead of styling it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer

from core.csvio import write_csv_atomic
from tests.conftest import TEST_KEY
from tests.hostile import HOSTILE, assert_harmless, visible
from tests.runs_support import QUESTIONS, Row, log_contract_run, store_at
from tests.tui.pilot import wait_for
from tui.app import ProctorApp
from tui.panes.chat import ChatPane
from tui.panes.grade import GradePane
from tui.panes.runs import RunsPane
from tui.screens.compare import CompareScreen
from tui.screens.run_detail import RunDetailScreen
from tui.widgets.chat_message import ChatMessage

TUI = Path(__file__).resolve().parents[2] / "tui"


def screen_output(app: App) -> str:
    """The screen as the terminal would receive it: every cell, with Textual's own escape sequences."""
    return app.screen._compositor.render_full_update().render_segments(app.console)


async def check_screen(pilot, *expected: str, timeout: float = 30.0) -> str:
    """Wait until every `expected` text is on the screen (a pane switch or a reload may still be painting), then
    check that the whole screen is harmless. Returns the visible text."""
    app = pilot.app
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        output = screen_output(app)
        seen = visible(output)
        missing = [text for text in expected if text not in seen]
        if not missing or loop.time() > deadline:
            break
        await pilot.pause(0.05)
    assert_harmless(output)
    assert not missing, f"{missing!r} not on the screen:\n{seen}"
    return seen


async def test_chat_pane_streams_a_hostile_answer_harmlessly(openai_env):
    openai_env.behaviour.responder = lambda body, info: HOSTILE
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(120, 30)) as pilot:
        pane = app.query_one(ChatPane)
        await pilot.press(*"hi", "enter")
        await wait_for(pilot, lambda: pane._stream is None and len(pane.conversation) == 2, timeout=90)
        await pilot.pause()
        reply = [m for m in pane.query(ChatMessage) if m.role == "assistant"][-1]
        assert "\x1b" not in reply.text and "␛]0;pwned title" in reply.text
        await check_screen(pilot, "Paris␛]0;pwned", "[bold red]loud[/]")


async def test_chat_pane_error_echoing_the_key_shows_no_key(openai_env):
    openai_env.behaviour.echo_headers_status = 400
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(120, 30)) as pilot:
        pane = app.query_one(ChatPane)
        await pilot.press(*"hi", "enter")
        await wait_for(pilot, lambda: pane._stream is None and "failed" in str(pane.query_one("#chat-status").render()),
                       timeout=90)
        await pilot.pause()
        seen = await check_screen(pilot, "HTTP 400", "headers")  # the error, as the server said it...
        assert TEST_KEY not in seen  # ...without the key


def hostile_answers(path: Path) -> Path:
    write_csv_atomic(pd.DataFrame({
        "question": [f"Q one {HOSTILE}", "Q two"],
        "answer": [f"ref {HOSTILE}", "ref two"],
        "llm_answer": [f"answer {HOSTILE}", ""],
        "model": ["openai:/m", "openai:/m"],
        "error": ["", f"HTTP 500: {HOSTILE}"],
        "human_note": [f"note {HOSTILE}", ""],
        "judge_verdict": ["correct", "incorrect"],
        "judge_rationale": [f"why {HOSTILE}", ""],
    }, dtype=str), path)
    return path


async def test_grade_pane_shows_hostile_cells_harmlessly(clean_env: Path):
    path = hostile_answers(clean_env / "answers.csv")
    app = ProctorApp(pane="grade", grade_path=str(path), warm_up=False)
    async with app.run_test(size=(140, 40)) as pilot:
        pane = app.query_one(GradePane)
        await wait_for(pilot, lambda: pane.session is not None and pane.current is not None, timeout=60)
        await pilot.pause()
        await check_screen(pilot, "Q one Paris␛]0;pwned", "answer Paris␛]0;pwned", "[bold red]loud[/]")
        await pilot.press("t")  # the table view
        await pilot.pause()
        assert pane.table_mode
        await check_screen(pilot, "Q one Paris␛]0;pwned")
        await pilot.press("t", "j")  # the second row: no answer, a hostile error
        await pilot.pause()
        await check_screen(pilot, "(no answer) HTTP 500: Paris␛]0;pwned")


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("hostile-store")
    questions = [(f"{q} {HOSTILE}", ref) for q, ref in QUESTIONS]
    with store_at(folder) as uri:
        a = log_contract_run(folder, "model-a", [Row("correct", f"Paris {HOSTILE}", f"yes {HOSTILE}")] +
                             [Row("correct", ref) for _, ref in QUESTIONS[1:]], questions=questions)
        b = log_contract_run(folder, "model-b", [Row("incorrect", f"Lyon {HOSTILE}", f"no {HOSTILE}")] +
                             [Row("correct", ref) for _, ref in QUESTIONS[1:]], questions=questions)
    return {"uri": uri, "a": a, "b": b}


class RunsHost(App[None]):
    CSS_PATH = [TUI / "proctor.tcss", TUI / "panes" / "runs.tcss", TUI / "screens" / "compare.tcss",
                TUI / "screens" / "run_detail.tcss"]

    def compose(self) -> ComposeResult:
        yield RunsPane()
        yield Footer()


async def settle(pilot) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def test_run_detail_and_compare_show_stored_text_harmlessly(clean_env: Path, hostile_store: dict[str, str],
                                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", hostile_store["uri"])
    app = RunsHost()
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        assert app.query_one("#runs-table", DataTable).row_count == 2
        await check_screen(pilot, "model-a", "model-b")
        app.query_one(RunsPane).open_run(hostile_store["a"])
        await settle(pilot)
        assert isinstance(app.screen, RunDetailScreen)
        await check_screen(pilot, "Paris Paris␛]0;pwned", "yes Paris␛]0;pwned", "[bold red]loud[/]")
        await pilot.press("escape")
        pane = app.query_one(RunsPane)
        pane.marked = [hostile_store["a"], hostile_store["b"]]  # as Space on each would
        pane.action_compare()
        await settle(pilot)
        assert isinstance(app.screen, CompareScreen)
        await check_screen(pilot, "␛]52;c;ZWNobyBwd25lZA==", "[bold red]loud[/]")
