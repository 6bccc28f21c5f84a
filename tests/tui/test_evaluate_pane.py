"""The Evaluate pane with Pilot: fill the form, start, watch it finish against the fake server, open the run."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from evaluation_helpers import responder, write_benchmark
from textual.widgets import Button, Input, SelectionList, Static

from tui.app import ProctorApp
from tui.panes.evaluate import EvaluatePane


async def _wait_for(predicate, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the pane")
        await asyncio.sleep(0.1)


def test_evaluate_pane_runs_and_opens_the_run(tmp_path: Path, azure_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    azure_env.behaviour.responder = responder
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    write_benchmark(tmp_path / "bench.csv")
    opened: list[str] = []

    async def scenario() -> None:
        app = ProctorApp(pane="evaluate", warm_up=False)
        async with app.run_test(size=(120, 50)) as pilot:
            monkeypatch.setattr(app, "show_run", lambda run_id: opened.append(run_id))
            pane = app.query_one(EvaluatePane)
            await pilot.pause()
            assert app.focused is pane.query_one("#eval-path", Input)  # focus_default on the pane's first field
            await pilot.press(*"bench.csv")
            pane.query_one("#eval-model", Input).value = "azure:/gpt-4.1-mini"
            pane.query_one("#eval-judge", Input).value = "azure:/gpt-4.1-nano"
            scorers = pane.query_one("#eval-scorers", SelectionList)
            assert set(scorers.selected) == {"correctness", "exact_match", "contains_reference"}
            scorers.deselect("exact_match")
            await pilot.press("ctrl+r")
            await _wait_for(lambda: not pane.running)
            await pilot.pause()
            summary = str(pane.query_one("#eval-summary", Static).render())
            progress = str(pane.query_one("#eval-progress", Static).render())
            assert "finished" in progress, progress
            assert "100.0%" in summary and pane.run_id and pane.run_id in summary
            assert "exact_match/mean" not in summary  # deselected
            assert "Evaluation completed" not in summary
            assert pane.query_one("#eval-open", Button).disabled is False
            assert pane.query_one("#eval-cancel", Button).disabled is True
            await pilot.press("ctrl+g")
            await pilot.pause()
            assert opened == [pane.run_id]

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
            progress = str(pane.query_one("#eval-progress", Static).render())
            assert "failed" in progress and "no such file" in progress
            assert pane.query_one("#eval-start", Button).disabled is False
            assert pane.query_one("#eval-open", Button).disabled is True

    asyncio.run(scenario())
