"""The Runs pane with Pilot, against a real sqlite MLflow store: list, sort, open a run, mark two and compare, chart.

The snapshot uses fixed runs (monkeypatched `core.runs.list_runs`): real run ids and dates change at every test
run, and a snapshot must not.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Input, Static

from tests.runs_support import MINI, NANO, log_contract_run, store_at
from tui.panes.runs import CHART_METRICS, RunsPane, fit_columns, short_date
from tui.screens.compare import CompareScreen
from tui.screens.run_detail import RunDetailScreen
from tui.widgets.fitting_footer import FittingFooter
from tui.widgets.metric_chart import MetricChart, axis, bar, chart_lines

TUI = Path(__file__).resolve().parents[2] / "tui"


class RunsHost(App[None]):
    """The Runs pane alone, styled as in the app: other panes' changes cannot move these tests."""

    CSS_PATH = [TUI / "proctor.tcss", TUI / "panes" / "runs.tcss", TUI / "screens" / "compare.tcss",
                TUI / "screens" / "run_detail.tcss"]

    def compose(self) -> ComposeResult:
        yield RunsPane()
        yield FittingFooter()

    def on_mount(self) -> None:
        self.query_one(RunsPane).focus_default()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("store")
    with store_at(folder) as uri:
        nano = log_contract_run(folder, "gpt-4.1-nano", NANO)
        mini = log_contract_run(folder, "gpt-4.1-mini", MINI)
    return {"uri": uri, "nano": nano, "mini": mini}


@pytest.fixture
def with_store(clean_env: Path, store: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    return store


async def settle(pilot) -> None:
    """Let every worker finish and its messages land."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def text_of(widget: Static) -> str:
    return str(widget.render())


def table_ids(table: DataTable) -> list[str]:
    return [str(row.key.value) for row in table.ordered_rows]


def cell(table: DataTable, row: str, column: str) -> str:
    return str(table.get_cell(row, column))


def header_x(table: DataTable, key: str) -> int:
    """The x offset of the middle of column `key`'s header, for a click."""
    x = 0
    for column in table.ordered_columns:
        if column.key.value == key:
            return x + column.get_render_width(table) // 2
        x += column.get_render_width(table)
    raise AssertionError(f"no column {key}")


def header_labels(table: DataTable) -> list[str]:
    return [column.label.plain for column in table.ordered_columns]


async def test_table_lists_runs_and_sorts(with_store: dict[str, str]) -> None:
    app = RunsHost()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(RunsPane)
        await settle(pilot)
        table = app.query_one("#runs-table", DataTable)
        assert table.display and table.has_focus
        assert table_ids(table) == [with_store["mini"], with_store["nano"]], "newest first"
        assert "2 runs" in text_of(app.query_one("#runs-status", Static))
        nano = with_store["nano"]
        # Accuracy in percent with its 95% Wilson interval (3 of 5: 23.1-88.2); no price for this model: unknown.
        assert [cell(table, nano, key) for key in ("name", "rows", "accuracy", "errors", "judge", "status")] == \
            ["gpt-4.1-nano", "5", "60 [23-88]", "0/1", "gpt-4.1-mini", "done"]
        assert cell(table, nano, "cost_usd") == "unknown"
        info = text_of(app.query_one("#runs-info", Static))
        assert info.startswith("accuracy 80.0% (95% CI 37.6-96.4)") and "cost unknown" in info  # the highlighted run
        assert "Date ▼" in header_labels(table), "the sort column and its direction show in the header"
        await pilot.press("s")  # date -> accuracy, best first
        assert pane.sort_key == ("accuracy", True) and "Acc% [CI] ▼" in header_labels(table)
        assert table_ids(table) == [with_store["mini"], with_store["nano"]]
        await pilot.press("S")  # the same column, reversed
        assert pane.sort_key == ("accuracy", False) and "Acc% [CI] ▲" in header_labels(table)
        assert table_ids(table) == [with_store["nano"], with_store["mini"]]
        assert "sorted by accuracy ▲" in text_of(app.query_one("#runs-status", Static))
        await pilot.press("s", "s", "s", "s", "s")  # name, errors, latency, cost, then back to date
        assert pane.sort_key == ("start", True)
        # A click on a column header sorts by it; a second click flips the direction.
        await pilot.click("#runs-table", offset=(header_x(table, "name"), 0))
        assert pane.sort_key == ("name", False) and "Name ▲" in header_labels(table)
        first = table_ids(table)
        await pilot.click("#runs-table", offset=(header_x(table, "name"), 0))
        assert pane.sort_key == ("name", True) and "Name ▼" in header_labels(table)
        assert table_ids(table) == list(reversed(first))


async def test_open_a_run_shows_verdicts_and_rationales(with_store: dict[str, str]) -> None:
    app = RunsHost()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("down", "enter")  # the second row: gpt-4.1-nano
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunDetailScreen)
        assert screen.detail is not None and screen.detail.info.run_id == with_store["nano"]
        table = screen.query_one("#detail-table", DataTable)
        assert table.row_count == 5
        verdicts = [str(table.get_row_at(i)[1]) for i in range(5)]
        assert verdicts == ["✓ correct", "✓ correct", "✓ correct", "✗ incorrect", "? no verdict"]
        summary = text_of(screen.query_one("#detail-summary", Static))
        assert "gpt-4.1-nano" in summary and "results/results.csv" in summary
        assert "accuracy 60.0% (95% CI 23.1-88.2)" in summary and "cost unknown" in summary  # 95% Wilson, 3 of 5
        await pilot.press("down", "down", "down")
        row_text = text_of(screen.query_one("#detail-row", Static))
        assert "What is 7 x 6?" in row_text and "The answer '48' vs '42'." in row_text
        await pilot.press("down")
        assert "Judge error judge timed out" in text_of(screen.query_one("#detail-row", Static))
        await pilot.press("escape")
        assert isinstance(app.screen.query_one(RunsPane), RunsPane)


async def test_mark_two_and_compare_side_by_side(with_store: dict[str, str]) -> None:
    app = RunsHost()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(RunsPane)
        await settle(pilot)
        await pilot.press("c")
        assert not isinstance(app.screen, CompareScreen), "nothing marked: nothing to compare"
        await pilot.press("down", "space", "up", "space")  # A = nano (baseline), B = mini
        assert pane.marked == [with_store["nano"], with_store["mini"]]
        table = app.query_one("#runs-table", DataTable)
        assert str(table.get_row(with_store["nano"])[0]) == "●"
        # Each marked run by name and date (14:05 today, 11-26 before), so two runs of one model differ.
        assert re.search(r"marked 2/2: gpt-4\.1-nano \d\d[:-]\d\d, gpt-4\.1-mini \d\d[:-]\d\d",
                         text_of(app.query_one("#runs-status", Static)))
        await pilot.press("c")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        comparison = screen.comparison
        assert comparison is not None and comparison.a.run_id == with_store["nano"]
        metrics = screen.query_one("#compare-metrics", DataTable)
        accuracy = [str(c) for c in metrics.get_row_at(0)]
        # Each share with its 95% interval, the paired p-value, and no "better" on 1 vs 2 discordant questions.
        assert accuracy == ["accuracy", "0.600 [0.23-0.88]", "0.800 [0.38-0.96]", "+0.200", "1"]
        rows = text_of(screen.query_one("#compare-rows", Static))
        assert "accuracy: n 5, A only right 1, B only right 2, B - A +20.0 points" in rows
        assert "B is ahead by 20.0 points" in rows and "not a detectable difference at n = 5" in rows
        a_part, b_part = rows.split("B right, A wrong (1)")
        assert "A right, B wrong (1)" in a_part and "How many legs has a spider?" in a_part
        assert "A spider has eight legs, not six." in a_part
        assert "What is 7 x 6?" in b_part
        await pilot.press("escape")
        await pilot.press("down", "space")  # Space on a marked run unmarks it
        assert pane.marked == [with_store["mini"]]


async def test_chart_names_runs_and_values_over_an_axis_and_cycles(with_store: dict[str, str]) -> None:
    app = RunsHost()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        chart = app.query_one(MetricChart)
        assert not chart.display, "the chart waits for g"
        await pilot.press("g")
        assert chart.display and chart.metric == "accuracy"
        assert chart.labels[0].startswith("gpt-4.1-mini") and chart.labels[1].startswith("gpt-4.1-nano")
        assert chart.values == [pytest.approx(0.8), pytest.approx(0.6)], "in the table's order"
        drawn = str(chart.render()).splitlines()
        assert drawn[0].startswith("accuracy  2 runs")
        assert drawn[1].startswith("gpt-4.1-mini") and drawn[1].endswith(" 0.8") and "█" in drawn[1]
        assert drawn[2].startswith("gpt-4.1-nano") and drawn[2].endswith(" 0.6")
        assert "├" in drawn[3] and drawn[4].split() == ["0", "0.25", "0.5", "0.75", "1"], "an axis with its scale"
        assert drawn[1].index("█") == drawn[3].index("├"), "the bars start on the axis"
        await pilot.press("s", "S")  # accuracy, worst first: the chart follows the table
        assert chart.values == [pytest.approx(0.6), pytest.approx(0.8)]
        await pilot.press("g")
        assert chart.metric == "correctness/mean"
        for _ in range(len(CHART_METRICS) - 1):
            await pilot.press("g")
        assert not chart.display, "past the last metric, g hides the chart"


async def test_chart_of_a_metric_no_run_has_takes_two_rows(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.runs

    monkeypatch.setattr(core.runs, "list_runs", fixed_runs)  # no contains_reference/mean in these runs
    app = RunsHost()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        chart = app.query_one(MetricChart)
        while chart.metric != "contains_reference/mean":
            await pilot.press("g")
        await settle(pilot)
        assert "no run shown has this metric" in str(chart.render())
        assert chart.outer_size.height == 2, "a border and the title: the table keeps the room"


def test_chart_lines_fit_the_width_and_scale() -> None:
    assert bar(0.5, 0.0, 1.0, 4) == "██  " and bar(0.0, 0.0, 1.0, 3) == "   " and bar(None, 0.0, 1.0, 2) == "  "
    assert bar(1 / 8, 0.0, 1.0, 2) == "▎ ", "eighths of a cell"
    line, ticks = axis(0.0, 1.0, 41)
    assert line[0] == "├" and line[20] == "┬" and line[40] == "┬" and len(ticks) == 41
    assert ticks.split() == ["0", "0.25", "0.5", "0.75", "1"] and ticks.rstrip().endswith("1")
    lines = chart_lines([0.42, None, 3.0], ["a-very-long-run-name-indeed", "b", "c"], 40)
    assert all(len("".join(parts)) <= 40 for parts in lines)
    assert lines[0][0].startswith("a-very") and "…" in lines[0][0], "a long label is cut, not the bars"
    assert lines[1][2].strip() == "no value" and lines[2][2].strip() == "3"
    assert lines[-1][1].split()[-1] == "3", "latency and counts scale to the largest value"


async def test_an_empty_store_says_how_to_get_runs(clean_env: Path) -> None:
    app = RunsHost()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "No runs yet" in text_of(app.query_one("#runs-empty", Static))
        assert not app.query_one("#runs-table", DataTable).display
        await pilot.press("enter", "space", "c")  # nothing to open or mark: no error
        assert isinstance(app.screen.query_one(RunsPane), RunsPane)


async def test_show_run_from_the_app_opens_it(with_store: dict[str, str]) -> None:
    from tui.app import ProctorApp

    app = ProctorApp(pane="runs", warm_up=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.show_run(with_store["mini"][:8])
        await settle(pilot)
        assert isinstance(app.screen, RunDetailScreen)
        assert app.screen.detail.info.run_id == with_store["mini"]


async def test_m_with_a_tracking_server_shows_its_url(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.runs

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.example.com")
    monkeypatch.setattr(core.runs, "list_runs", lambda experiment=None: [])  # no network in tests
    app = RunsHost()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("m")
        assert app.query_one(RunsPane)._server is None, "nothing to start: the tracking server is the UI"
        assert "MLflow UI: https://mlflow.example.com" in text_of(app.query_one("#runs-status", Static))


@pytest.mark.slow
async def test_m_starts_the_mlflow_ui_and_the_app_stops_it_on_exit(with_store: dict[str, str]) -> None:
    from core.mlflow_server import group_alive

    app = RunsHost()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(RunsPane)
        await settle(pilot)
        await pilot.press("m")
        server = pane._server
        assert server is not None and server.running
        await settle(pilot)  # waits for /health in a worker
        assert f"MLflow UI: {server.url}" in text_of(app.query_one("#runs-status", Static))
        pgid = server.process.pid
    # Quitting does not wait for the server (SIGTERM, then a detached stopper's SIGKILL): it must go all the same.
    deadline = time.monotonic() + 60
    while group_alive(pgid) and time.monotonic() < deadline:
        server.process.poll()  # reap the server once it has exited (Proctor's own exit does this for real)
        await asyncio.sleep(0.1)
    assert not group_alive(pgid), "quitting the app stopped the server and its children"


def fixed_runs(experiment: str | None = None) -> list:
    """Five runs that do not change between test runs; one scored 0 because every answer failed."""
    from core.runs import RunInfo

    def run(i: int, name: str, accuracy: float, correct: float, latency: float, answer_errors: int = 0,
            judge_errors: int = 0, status: str = "FINISHED") -> RunInfo:
        return RunInfo(run_id=f"{i:x}" * 32, name=name, experiment="proctor",
                       start_time=datetime(2026, 11, 20 + i, 9, 30), status=status, model=f"openai:/{name}",
                       judge="openai:/gpt-4.1-mini", rows=20,
                       metrics={"accuracy": accuracy, "correctness/mean": correct, "exact_match/mean": accuracy / 2,
                                "latency_mean_s": latency, "answer_errors": float(answer_errors),
                                "judge_errors": float(judge_errors)})

    return [run(6, "gpt-4.1-mini", 0.85, 0.85, 0.42), run(5, "gpt-4.1-nano", 0.70, 0.74, 0.31, judge_errors=1),
            run(4, "gpt-4o-mini", 0.0, 0.0, 0.55, answer_errors=20, status="FAILED"),
            run(3, "gpt-4.1-nano", 0.65, 0.65, 0.30), run(2, "gpt-35-turbo", 0.55, 0.58, 0.25)]


def overlaps(a, b) -> bool:
    return a.region.overlaps(b.region)


async def test_at_80_columns_the_columns_that_explain_a_run_fit(clean_env: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import core.runs

    monkeypatch.setattr(core.runs, "list_runs", fixed_runs)
    app = RunsHost()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(RunsPane)
        await settle(pilot)
        table = app.query_one("#runs-table", DataTable)
        assert {"name", "accuracy", "errors", "judge", "status", "date"} <= set(pane.shown_columns)
        assert sum(c.get_render_width(table) for c in table.ordered_columns) <= 78, "no column is cut"
        assert header_labels(table)[-2:] == ["Judge", "Status"], "whole titles"
        failed = "4" * 32  # every answer failed: the errors column says why it scored 0
        assert [cell(table, failed, key) for key in ("accuracy", "errors", "status")] == ["0 [0-16]", "20/0", "failed"]
        assert cell(table, "5" * 32, "errors") == "0/1"
        await pilot.resize_terminal(60, 20)
        await settle(pilot)
        assert {"name", "accuracy", "errors", "status"} <= set(pane.shown_columns), "the essentials stay at 60"
        assert sum(c.get_render_width(table) for c in table.ordered_columns) <= 58
        title, status = app.query_one("#runs-title"), app.query_one("#runs-status")
        await pilot.press("space")
        assert not overlaps(title, status), "the header's two texts never run into each other"
        assert status.region.right <= 60
        await pilot.resize_terminal(140, 30)
        await settle(pilot)
        assert {"rows", "cost_usd", "latency_mean_s", "run"} <= set(pane.shown_columns), "wide: everything"


def test_fit_columns_keeps_the_most_telling_and_the_display_order() -> None:
    widths = {"mark": 3, "date": 7, "run": 10, "name": 14, "accuracy": 12, "errors": 9, "judge": 14, "status": 8}
    assert fit_columns(widths, 1000) == ["mark", "date", "run", "name", "accuracy", "errors", "judge", "status"]
    assert fit_columns(widths, 46) == ["mark", "name", "accuracy", "errors", "status"]
    assert short_date(datetime(2026, 11, 2, 9, 5), now=datetime(2026, 11, 2, 23, 0)) == "09:05"
    assert short_date(datetime(2026, 11, 1, 9, 5), now=datetime(2026, 11, 2, 0, 1)) == "11-01"


async def test_slash_filters_and_escape_clears(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.runs

    monkeypatch.setattr(core.runs, "list_runs", fixed_runs)
    app = RunsHost()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.query_one("#runs-table", DataTable)
        box = app.query_one("#runs-filter", Input)
        assert not box.display
        await pilot.press("slash")
        assert box.display and box.has_focus
        await pilot.press(*"nano")
        assert table_ids(table) == ["5" * 32, "3" * 32], "by model or name"
        assert "filter 'nano': 2 of 5" in text_of(app.query_one("#runs-status", Static))
        await pilot.press("enter")
        assert table.has_focus and len(table_ids(table)) == 2, "Enter goes back to the runs, filtered"
        await pilot.press("escape")
        assert len(table_ids(table)) == 5 and not box.display and table.has_focus
        await pilot.press("slash", *"FAILED")  # by status, in any case
        assert table_ids(table) == ["4" * 32]
        await pilot.press("escape")
        assert len(table_ids(table)) == 5 and box.value == ""
        await pilot.press("slash", *"mini done")  # every word must match: judge gpt-4.1-mini and status done
        assert len(table_ids(table)) == 4
        await pilot.press("escape", "slash", *"zzz")
        assert not table.display and "No run matches 'zzz'" in text_of(app.query_one("#runs-empty", Static))
        await pilot.press("escape")
        assert table.display and len(table_ids(table)) == 5


async def test_runs_without_the_sort_value_go_last_in_both_directions(clean_env: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import core.runs

    def priced(experiment: str | None = None) -> list:
        runs = fixed_runs()
        runs[1].metrics["cost_usd"] = 0.01
        runs[3].metrics["cost_usd"] = 0.002
        return runs

    monkeypatch.setattr(core.runs, "list_runs", priced)
    app = RunsHost()
    async with app.run_test(size=(140, 30)) as pilot:
        pane = app.query_one(RunsPane)
        await settle(pilot)
        table = app.query_one("#runs-table", DataTable)
        while pane.sort_key[0] != "cost_usd":
            await pilot.press("s")
        unpriced = ["6" * 32, "4" * 32, "2" * 32]  # no price: unknown cost, newest first as listed
        assert table_ids(table) == ["3" * 32, "5" * 32, *unpriced], "cheapest first"
        assert "Cost ▲" in header_labels(table)
        await pilot.press("S")
        assert table_ids(table) == ["5" * 32, "3" * 32, *unpriced]


async def test_delete_asks_then_deletes_restorably_and_a_run_logged_in_the_app_appears(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    from core.runs import list_runs
    from tui.app import ProctorApp
    from tui.screens.confirm_delete import ConfirmDeleteScreen

    folder = clean_env / "own-store"
    folder.mkdir()
    with store_at(folder) as uri:
        first = log_contract_run(folder, "gpt-4.1-nano", NANO)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    app = ProctorApp(pane="runs", warm_up=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        table = app.query_one("#runs-table", DataTable)
        assert table_ids(table) == [first]
        # An evaluation ends in the app: the pane lists its run without `r`.
        second = log_contract_run(folder, "gpt-4.1-mini", MINI)
        app.run_logged(second)
        await settle(pilot)
        assert table_ids(table) == [second, first]
        assert app.query_one(RunsPane).highlighted_run_id() == first, "the highlight stays on its run"

        await pilot.press("up", "d")
        assert isinstance(app.screen, ConfirmDeleteScreen)
        assert "gpt-4.1-mini" in text_of(app.screen.query_one("#confirm-title", Static))
        await pilot.press("enter")  # Cancel has the focus: a stray Enter keeps the run
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmDeleteScreen) and table_ids(table) == [second, first]
        await pilot.press("d", "n")
        await settle(pilot)
        assert table_ids(table) == [second, first]
        await pilot.press("d", "y")
        await settle(pilot)
        assert table_ids(table) == [first]
        assert [r.run_id for r in list_runs()] == [first]
        assert MlflowClient(uri).get_run(second).info.lifecycle_stage == "deleted", "MLflow's own delete"
        await pilot.press("u")  # restores it
        await settle(pilot)
        assert table_ids(table) == [second, first]
        assert MlflowClient(uri).get_run(second).info.lifecycle_stage == "active"


def test_delete_run_in_core_is_mlflows_restorable_delete(clean_env: Path, store: dict[str, str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from core.errors import InputError
    from core.runs import delete_run, restore_run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    with pytest.raises(InputError):
        delete_run("no-such-run")
    with pytest.raises(InputError):
        restore_run("0" * 32)


@pytest.fixture
def fixed(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.runs

    monkeypatch.setattr(core.runs, "list_runs", fixed_runs)


def snapshot_after(*keys: str):
    async def run_before(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        for field in pilot.app.screen.query("Input"):
            field.cursor_blink = False  # a blinking cursor would make the picture depend on when it is taken
        await pilot.pause()

    return run_before


def test_runs_pane_snapshot_80x24(snap_compare, fixed: None) -> None:
    # Loaded, two runs marked.
    assert snap_compare(RunsHost(), terminal_size=(80, 24), run_before=snapshot_after("down", "space", "down",
                                                                                      "down", "space"))


def test_runs_pane_snapshot_empty_80x24(snap_compare, clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.runs

    monkeypatch.setattr(core.runs, "list_runs", lambda experiment=None: [])
    assert snap_compare(RunsHost(), terminal_size=(80, 24), run_before=snapshot_after())


def test_runs_pane_snapshot_filtered_80x24(snap_compare, fixed: None) -> None:
    assert snap_compare(RunsHost(), terminal_size=(80, 24), run_before=snapshot_after("slash", *"nano"))


def test_runs_pane_snapshot_chart_80x24(snap_compare, fixed: None) -> None:
    assert snap_compare(RunsHost(), terminal_size=(80, 24), run_before=snapshot_after("g"))


def test_runs_pane_snapshot_delete_confirmation_80x24(snap_compare, fixed: None) -> None:
    assert snap_compare(RunsHost(), terminal_size=(80, 24), run_before=snapshot_after("down", "down", "d"))


def test_runs_pane_snapshot_60x20(snap_compare, fixed: None) -> None:
    assert snap_compare(RunsHost(), terminal_size=(60, 20), run_before=snapshot_after("S", "space"))
