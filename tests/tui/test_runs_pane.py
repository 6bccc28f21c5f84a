"""The Runs pane with Pilot, against a real sqlite MLflow store: list, sort, open a run, mark two and compare, chart.

The snapshot uses fixed runs (monkeypatched `core.runs.list_runs`): real run ids and dates change at every test
run, and a snapshot must not.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Static

from tests.runs_support import MINI, NANO, log_contract_run, store_at
from tui.panes.runs import RunsPane
from tui.screens.compare import CompareScreen
from tui.screens.run_detail import RunDetailScreen
from tui.widgets.metric_chart import MetricChart, bar_rows

TUI = Path(__file__).resolve().parents[2] / "tui"


class RunsHost(App[None]):
    """The Runs pane alone, styled as in the app: other panes' changes cannot move these tests."""

    CSS_PATH = [TUI / "proctor.tcss", TUI / "panes" / "runs.tcss", TUI / "screens" / "compare.tcss",
                TUI / "screens" / "run_detail.tcss"]

    def compose(self) -> ComposeResult:
        yield RunsPane()
        yield Footer()

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


async def test_table_lists_runs_and_sorts(with_store: dict[str, str]) -> None:
    app = RunsHost()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(RunsPane)
        await settle(pilot)
        table = app.query_one("#runs-table", DataTable)
        assert table.display and table.has_focus
        assert table_ids(table) == [with_store["mini"], with_store["nano"]], "newest first"
        assert "loaded 2 runs" in text_of(app.query_one("#runs-status", Static))
        row = [str(cell) for cell in table.get_row(with_store["nano"])]
        # Accuracy in percent with its 95% Wilson interval (3 of 5: 23.1-88.2); no price for this model: unknown.
        assert row[2:6] == [with_store["nano"][:8], "gpt-4.1-nano", "5", "60 [23-88]"]
        assert row[9:] == ["unknown", "openai:/gpt-4.1-mini", "finished"]
        info = text_of(app.query_one("#runs-info", Static))
        assert info.startswith("accuracy 80.0% (95% CI 37.6-96.4)") and "cost unknown" in info  # the highlighted run
        await pilot.press("s")  # date -> accuracy, best first
        assert pane.sort_key == ("accuracy", True)
        assert table_ids(table) == [with_store["mini"], with_store["nano"]]
        await pilot.press("s")  # model, A to Z
        assert table_ids(table) == [with_store["mini"], with_store["nano"]]
        await pilot.press("s", "s")  # latency (equal) then back to date
        await pilot.press("s")
        assert pane.sort_key == ("start", True)
        # A click on a column header sorts by it; a second click flips the direction.
        await pilot.click("#runs-table", offset=(28, 0))  # the Name header
        assert pane.sort_key == ("name", False)
        first = table_ids(table)
        await pilot.click("#runs-table", offset=(28, 0))  # the Name header
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
        assert "marked 2/2: gpt-4.1-nano, gpt-4.1-mini" in text_of(app.query_one("#runs-status", Static))
        await pilot.press("c")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        comparison = screen.comparison
        assert comparison is not None and comparison.a.run_id == with_store["nano"]
        metrics = screen.query_one("#compare-metrics", DataTable)
        accuracy = [str(c) for c in metrics.get_row_at(0)]
        # Each share with its 95% interval, the paired p-value, and no "better" on 1 vs 2 discordant questions.
        assert accuracy == ["accuracy", "0.600 [0.23-0.88]", "0.800 [0.38-0.96]", "+0.200", "1", ""]
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


async def test_chart_plots_a_metric_across_runs_and_cycles(with_store: dict[str, str]) -> None:
    app = RunsHost()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        chart = app.query_one(MetricChart)
        assert chart.metric == "accuracy"
        assert chart.values == [pytest.approx(0.6), pytest.approx(0.8)], "oldest first"
        assert "min 0.6 · max 0.8 · latest 0.8" in str(chart.render())
        await pilot.press("g")
        assert chart.metric == "correctness/mean"
        assert chart.labels == ["gpt-4.1-nano", "gpt-4.1-mini"]


def test_bar_rows_scale() -> None:
    assert bar_rows([0.0, 0.5, 1.0, None], 2, 0.0, 1.0) == ["    █  ", "▁ █ █ ·"]  # 0 is a sliver, 0.5 half, None a dot


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
    assert not group_alive(pgid), "quitting the app stopped the server and its children"


def fixed_runs(experiment: str | None = None) -> list:
    from core.runs import RunInfo

    def run(i: int, name: str, accuracy: float, correct: float, exact: float, latency: float) -> RunInfo:
        return RunInfo(run_id=f"{i:x}" * 32, name=name, experiment="proctor",
                       start_time=datetime(2026, 11, 20 + i, 9, 30), status="FINISHED", model=f"openai:/{name}",
                       judge="openai:/gpt-4.1-mini", rows=20,
                       metrics={"accuracy": accuracy, "correctness/mean": correct, "exact_match/mean": exact,
                                "latency_mean_s": latency})

    return [run(6, "gpt-4.1-mini", 0.85, 0.85, 0.55, 0.42), run(5, "gpt-4.1-nano", 0.70, 0.74, 0.45, 0.31),
            run(4, "gpt-4o-mini", 0.80, 0.80, 0.50, 0.55), run(3, "gpt-4.1-nano", 0.65, 0.65, 0.40, 0.30),
            run(2, "gpt-35-turbo", 0.55, 0.58, 0.35, 0.25)]


def test_runs_pane_snapshot_80x24(snap_compare, clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.runs

    monkeypatch.setattr(core.runs, "list_runs", fixed_runs)

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("down", "space", "down", "down", "space")

    assert snap_compare(RunsHost(), terminal_size=(80, 24), run_before=run_before)
