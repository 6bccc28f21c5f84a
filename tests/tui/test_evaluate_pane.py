"""The Evaluate pane with Pilot: fill the form, start, watch it finish against the fake server, open the run."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from evaluation_helpers import is_judge_request, responder, write_benchmark
from textual.widgets import Button, Checkbox, Input, Static

from tui.app import ProctorApp
from tui.panes.evaluate import EvaluatePane
from tui.widgets.check_list import CheckList


async def _wait_for(predicate, timeout: float = 240.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the pane")
        await asyncio.sleep(0.1)


def test_evaluate_pane_runs_and_opens_the_run(tmp_path: Path, azure_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    # The judge gives four verdicts, then holds the rest until the test has seen the live view mid-way: on a fast
    # machine eight quick verdicts could all be in before the pane was looked at.
    judged, gate = [], threading.Event()

    def halfway(body, info):  # noqa: ANN001, ANN202
        if is_judge_request(body):
            judged.append(info.question)
            if len(judged) > 4:
                gate.wait(timeout=120)
        return responder(body, info)

    azure_env.behaviour.responder = halfway
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    write_benchmark(tmp_path / "bench.csv")
    opened: list[str] = []
    graded: list[str] = []

    async def scenario() -> None:
        app = ProctorApp(pane="evaluate", warm_up=False)
        async with app.run_test(size=(120, 50)) as pilot:
            monkeypatch.setattr(app, "show_run", lambda run_id: opened.append(run_id))
            monkeypatch.setattr(app, "open_in_grade", lambda path: graded.append(path))
            pane = app.query_one(EvaluatePane)
            await pilot.pause()
            assert app.focused is pane.query_one("#eval-path", Input)  # focus_default on the pane's first field
            await pilot.press(*"bench.csv")
            pane.query_one("#eval-model", Input).value = "azure:/gpt-4.1-mini"
            pane.query_one("#eval-judge", Input).value = "azure:/gpt-4.1-nano"
            scorers = pane.query_one("#eval-scorers", CheckList)
            assert set(scorers.selected) == {"correctness", "exact_match", "contains_reference"}
            scorers.deselect("exact_match")
            await pilot.press("ctrl+r")
            # The live view replaces the form at once, on the first screen.
            assert pane.query_one("#eval-live").display and not pane.query_one("#eval-form").display
            running: list[str] = []

            def mid_way() -> bool:
                running.append(str(pane.query_one("#eval-progress", Static).render()))
                return "running accuracy" in running[-1] or not pane.running

            try:
                await _wait_for(mid_way)
            finally:
                gate.set()
            # While the judge worked, the live view showed the running accuracy of the rows judged so far.
            assert "running accuracy" in running[-1] and pane.running, running[-5:]
            await _wait_for(lambda: not pane.running)
            await pilot.pause()
            summary = str(pane.query_one("#eval-summary", Static).render())
            phase = str(pane.query_one("#eval-phase", Static).render())
            keys = str(pane.query_one("#eval-keys", Static).render())
            assert "finished" in phase, phase
            assert "100.0%" in summary and pane.run_id and pane.run_id in summary
            assert "exact_match/mean" not in summary  # deselected
            assert "Evaluation completed" not in summary
            assert "Ctrl+G" in keys and "Ctrl+D" in keys
            await pilot.press("ctrl+g")
            await pilot.pause()
            assert opened == [pane.run_id]
            # Ctrl+D grades the answers file the evaluation made, in the Grade pane.
            await pilot.press("ctrl+d")
            assert graded == [pane.answers_file] and pane.answers_file.endswith(".csv")
            # Escape goes back to the form, with what was typed still there.
            await pilot.press("escape")
            assert pane.query_one("#eval-form").display and not pane.query_one("#eval-live").display
            assert pane.query_one("#eval-path", Input).value == "bench.csv"

    asyncio.run(scenario())


def test_evaluate_pane_reports_bad_input_and_stays_usable(tmp_path: Path, azure_env) -> None:  # noqa: ANN001
    async def scenario() -> None:
        app = ProctorApp(pane="evaluate", warm_up=False)
        async with app.run_test(size=(120, 50)) as pilot:
            pane = app.query_one(EvaluatePane)
            pane.query_one("#eval-path", Input).value = "missing.csv"
            await pilot.press("ctrl+r")
            await _wait_for(lambda: not pane.running, 30)
            await pilot.pause()
            phase = str(pane.query_one("#eval-phase", Static).render())
            assert "failed" in phase and "no such file" in phase
            assert "failed" in str(pane.query_one("#eval-status", Static).render())
            assert pane.query_one("#eval-start", Button).disabled is False
            await pilot.press("ctrl+g")  # nothing to open: a warning, not a crash
            await pilot.press("escape")
            assert pane.query_one("#eval-form").display

    asyncio.run(scenario())


def test_evaluate_form_tab_completes_paths_and_offers_fresh(tmp_path: Path, azure_env,  # noqa: ANN001
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    calls: list[dict] = []

    async def scenario() -> None:
        app = ProctorApp(pane="evaluate", warm_up=False)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(EvaluatePane)
            # A file made after the app opened is still offered: suggestions are read afresh on each key.
            write_benchmark(tmp_path / "later-bench.csv")
            field = pane.query_one("#eval-path", Input)
            await pilot.press(*"lat")
            await _wait_for(lambda: field._suggestion == "later-bench.csv", 10)
            await pilot.press("tab")
            assert field.value == "later-bench.csv" and app.focused is field
            await pilot.press("tab")  # nothing left to complete: Tab moves on, as in any form
            assert app.focused is not field
            # Boxes read without colour.
            scorers = pane.query_one("#eval-scorers", CheckList)
            lines = [scorers.render_line(y).text for y in range(scorers.option_count)]
            assert any(line.startswith("[x] ") for line in lines) and any(line.startswith("[ ] ") for line in lines)
            # The default judge is shown: Azure is configured, so azure:/gpt-4.1-nano judges.
            assert "azure:/gpt-4.1-nano (the default)" in str(pane.query_one("#eval-judge-note", Static).render())
            # Fresh reaches core.
            monkeypatch.setattr(pane, "evaluate", lambda *args: calls.append({"fresh": args[-1]}))
            pane.query_one("#eval-fresh", Checkbox).value = True
            await pilot.press("ctrl+r")
            assert calls == [{"fresh": True}]

    asyncio.run(scenario())


def test_evaluate_pane_compares_comma_separated_models(tmp_path: Path, azure_env,  # noqa: ANN001
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from evaluation_helpers import QUESTIONS

    azure_env.behaviour.responder = responder
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    write_benchmark(tmp_path / "bench.csv", QUESTIONS[:4])

    async def scenario() -> None:
        app = ProctorApp(pane="evaluate", warm_up=False)
        async with app.run_test(size=(120, 50)) as pilot:
            monkeypatch.setattr(app, "show_run", lambda run_id: None)
            pane = app.query_one(EvaluatePane)
            await pilot.pause()
            pane.query_one("#eval-path", Input).value = "bench.csv"
            pane.query_one("#eval-model", Input).value = "azure:/gpt-4.1-nano, azure:/gpt-4.1-mini"
            pane.query_one("#eval-judge", Input).value = "azure:/gpt-4.1-nano"
            await pilot.press("ctrl+r")
            await _wait_for(lambda: not pane.running)
            await pilot.pause()
            summary = str(pane.query_one("#eval-summary", Static).render())
            assert "finished 2 models" in str(pane.query_one("#eval-phase", Static).render())
            assert "azure:/gpt-4.1-nano  accuracy 50.0% (95% CI 15.0-85.0%)" in summary
            assert "azure:/gpt-4.1-mini  accuracy 100.0% (95% CI 51.0-100.0%)" in summary
            # 2 questions only mini got right, none the other way: p = 0.5 on 4 questions, no "better".
            assert "accuracy: n 4, A only right 0, B only right 2" in summary
            assert "B is ahead by 50.0 points" in summary and "not a detectable difference at n = 4" in summary
            assert pane.run_id is not None

    asyncio.run(scenario())
