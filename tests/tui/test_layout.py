"""Every pane as a person first meets it at 80x24 (a default SSH terminal), and the smallest size we support,
60x20: snapshots of the main states, and checks that what matters is on screen and whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widget import Widget
from textual.widgets import Button, Input

from tests.tui.pilot import wait_for
from tui.app import ProctorApp
from tui.panes.evaluate import EvaluatePane
from tui.widgets.answer_screen import AnswerScreen


def _on_screen(app: ProctorApp, widget) -> bool:  # noqa: ANN001
    region = widget.region
    return region.width > 0 and app.screen.region.contains_region(region)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openai_env) -> Path:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    (tmp_path / "benchmark.csv").write_text("question,answer\nWhat is 2+2?,4\n", encoding="utf-8")
    return tmp_path


async def _steady(pilot) -> None:  # noqa: ANN001
    """A blinking cursor would make the picture depend on when it is taken: hold it still (shown)."""
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def _focused(widget_id: str):  # noqa: ANN202
    """A run_before that waits until `widget_id` has the keyboard (its cursor is part of the picture)."""

    async def run_before(pilot) -> None:  # noqa: ANN001
        await wait_for(pilot, lambda: pilot.app.focused is not None and pilot.app.focused.id == widget_id)
        await pilot.app.workers.wait_for_complete()
        await _steady(pilot)

    return run_before


def test_chat_empty_80x24(snap_compare, here: Path) -> None:
    assert snap_compare(ProctorApp(warm_up=False), terminal_size=(80, 24), run_before=_focused("chat-input"))


def test_grade_picker_80x24(snap_compare, here: Path) -> None:
    assert snap_compare(ProctorApp(pane="grade", warm_up=False), terminal_size=(80, 24),
                        run_before=_focused("csv-picker-input"))


def test_evaluate_form_80x24(snap_compare, here: Path) -> None:
    assert snap_compare(ProctorApp(pane="evaluate", warm_up=False), terminal_size=(80, 24),
                        run_before=_focused("eval-path"))


def test_evaluate_error_80x24(snap_compare, here: Path) -> None:
    async def run_before(pilot) -> None:  # noqa: ANN001
        pane = pilot.app.query_one(EvaluatePane)
        pane.query_one("#eval-path").value = "missing.csv"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not pane.running and pane.query_one("#eval-live").display
                       and "failed" in str(pane.query_one("#eval-phase").render()))
        await _steady(pilot)

    assert snap_compare(ProctorApp(pane="evaluate", warm_up=False), terminal_size=(80, 24), run_before=run_before)


def test_answer_dialog_60x20(snap_compare, here: Path) -> None:
    async def run_before(pilot) -> None:  # noqa: ANN001
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, AnswerScreen)
                       and pilot.app.focused is not None and pilot.app.focused.id == "answer-path")
        await _steady(pilot)

    assert snap_compare(ProctorApp(warm_up=False), terminal_size=(60, 20), run_before=run_before)


async def test_at_60x20_the_answer_dialog_keeps_its_buttons_and_the_form_its_start(here: Path) -> None:
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, AnswerScreen))
        await pilot.pause()
        for button in ("#answer-start", "#answer-close"):
            assert _on_screen(app, app.screen.query_one(button, Button)), button
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AnswerScreen))
        await pilot.press("f4")
        await pilot.pause()
        # The Evaluate form's fields are on the first screen; Ctrl+R (in the footer) starts.
        pane = app.query_one(EvaluatePane)
        for field in ("#eval-path", "#eval-model", "#eval-judge"):
            assert _on_screen(app, pane.query_one(field)), field


async def test_footers_never_cut_a_key_in_half(here: Path) -> None:
    from textual.widgets._footer import FooterKey

    app = ProctorApp(warm_up=False)
    for size in ((80, 24), (60, 20)):
        async with app.run_test(size=size) as pilot:
            for pane in ("f2", "f3", "f4", "f5"):
                await pilot.press(pane)
                footer = app.screen.query_one("FittingFooter")

                def shown_keys(footer: Widget = footer) -> list[FooterKey]:
                    return [key for key in footer.query(FooterKey) if key.display]

                # The footer recomposes after the pane takes the keyboard: on a loaded machine that is later.
                await wait_for(pilot, lambda: bool(shown_keys()))
                shown = shown_keys()
                for key in shown:
                    assert key.region.right <= footer.region.right, f"{pane} at {size}: {key.description} cut"
        app = ProctorApp(warm_up=False)


async def test_the_compare_screen_fits_80_columns(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.runs
    from core.runs import Comparison, MetricDelta, RunInfo
    from tui.screens.compare import CompareScreen

    def run(run_id: str, model: str) -> RunInfo:
        return RunInfo(run_id=run_id, name=model, experiment="proctor", start_time=None, status="FINISHED",
                       model=f"azure:/{model}", judge="azure:/gpt-4.1-nano", rows=48)

    metrics = [MetricDelta(name="correctness/mean", a=0.875, b=0.9375, delta=0.0625, better="b",
                           lower_is_better=False, p_value=0.031, a_ci=(0.753, 0.941), b_ci=(0.832, 0.979))]
    comparison = Comparison(a=run("a" * 32, "gpt-4.1-nano"), b=run("b" * 32, "gpt-4.1-mini"), metrics=metrics,
                            a_right_b_wrong=[], b_right_a_wrong=[], matched_rows=48, unmatched_a=0, unmatched_b=0,
                            basis="correctness", warnings=[])
    monkeypatch.setattr(core.runs, "compare_runs", lambda a, b: comparison)
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(CompareScreen("a" * 32, "b" * 32))
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.comparison is not None)
        await pilot.pause()
        table = app.screen.query_one("#compare-metrics")
        assert table.virtual_size.width <= app.screen.size.width, "the metrics table is wider than the screen"
        assert str(table.get_row_at(0)[-1]).endswith(" B")


def test_path_suggestions_offer_csvs_and_folders_but_never_control_characters(tmp_path: Path) -> None:
    from tui.widgets.path_input import csv_candidates

    (tmp_path / "bench.csv").write_text("q\n")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "b.csv").write_text("q\n")
    (tmp_path / "evil\x1b]0;pwned\x07.csv").write_text("q\n")
    assert csv_candidates("", tmp_path) == ["bench.csv", "runs/"]
    assert csv_candidates("b", tmp_path) == ["bench.csv"]
    assert csv_candidates("runs/", tmp_path) == ["runs/b.csv"]
    assert csv_candidates("e", tmp_path) == []


def _evaluate_pane_posting(message_for):  # noqa: ANN001, ANN202
    """A run_before that puts the Evaluate pane in a state by posting it the message its worker would send."""

    async def run_before(pilot) -> None:  # noqa: ANN001
        pane = pilot.app.query_one(EvaluatePane)
        await wait_for(pilot, lambda: pilot.app.focused is not None)
        message = message_for(pane)
        pane._status("Evaluating benchmark.csv")
        pane._show_live(True)
        pane._started_at = None  # elapsed time reads 0 s: the picture must not depend on the clock
        pane._set_running(True)
        pane.post_message(message)
        await pilot.pause()
        await _steady(pilot)

    return run_before


def test_evaluate_running_80x24(snap_compare, here: Path) -> None:
    import threading

    def progress(pane: EvaluatePane):  # noqa: ANN202
        pane._cancel = threading.Event()  # a run in flight
        return EvaluatePane.ProgressReported("judging", 12, 48, 1, 6.0, "judging 12/48", correct=10, scored=11)

    assert snap_compare(ProctorApp(pane="evaluate", warm_up=False), terminal_size=(80, 24),
                        run_before=_evaluate_pane_posting(progress))


def test_evaluate_done_80x24(snap_compare, here: Path) -> None:
    import pandas as pd

    from core.evaluation import EvaluationSummary

    summary = EvaluationSummary(
        run_id="0123456789abcdef0123456789abcdef", experiment_id="1", experiment="proctor", run_name="gpt-4.1-mini",
        tracking_uri="sqlite:///mlflow.db", model="azure:/gpt-4.1-mini", judge="azure:/gpt-4.1-nano",
        scorers=["correctness", "exact_match"],
        metrics={"rows": 48, "accuracy": 0.9375, "accuracy_ci_low": 0.832, "accuracy_ci_high": 0.979,
                 "correctness/mean": 0.9375, "exact_match/mean": 0.5, "judge_errors": 0, "answer_errors": 0,
                 "latency_mean_s": 0.8, "latency_p95_s": 1.4, "prompt_tokens": 960, "completion_tokens": 480},
        results=pd.DataFrame({"row": [], "judge_error": []}), answers_file=here / "benchmark.answers.csv",
        timings={"total_s": 21.5})

    def finished(pane: EvaluatePane):  # noqa: ANN202
        pane._cancel = None
        return EvaluatePane.EvaluationFinished(summary)

    assert snap_compare(ProctorApp(pane="evaluate", warm_up=False), terminal_size=(80, 24),
                        run_before=_evaluate_pane_posting(finished))
