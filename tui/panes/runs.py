"""The Runs pane: the evaluation runs in the tracking store, a chart of one metric, and two runs compared.

Keys: Enter opens the highlighted run (per-row verdicts and rationales), Space marks it (two at most), `c` compares
the two marked runs side by side, `s` cycles the sort column (or click a column header), `g` charts the next metric,
`r` reloads, `m` starts MLflow's own web UI on 127.0.0.1 (stopped when the app exits).

All MLflow work goes through core.runs and core.mlflow_server in thread workers: importing mlflow takes about 3 s,
so the pane shows "loading…" first and never imports it on the UI thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from tui.screens.compare import CompareScreen
from tui.screens.run_detail import RunDetailScreen
from tui.widgets.metric_chart import MetricChart

if TYPE_CHECKING:
    from core.mlflow_server import MlflowServer
    from core.runs import RunInfo

CHART_METRICS = ("accuracy", "correctness/mean", "exact_match/mean", "contains_reference/mean", "latency_mean_s",
                 "judge_errors", "answer_errors")
# Sort keys `s` cycles through: (label, key function on RunInfo, descending).
SORTS: tuple[tuple[str, str, bool], ...] = (
    ("date", "start", True), ("accuracy", "accuracy", True), ("model", "model", False), ("name", "name", False),
    ("latency", "latency_mean_s", False),
)
# Columns: (key, title). Metric columns read `RunInfo.metrics[key]`.
# The metrics come before the judge and status, so that they fit in 80 columns.
# Accuracy shows its 95% Wilson interval in percent; the highlighted run's every share (with its interval) and cost
# are spelled out in the line under the table.
COLUMNS = (("mark", " "), ("date", "Date"), ("run", "Run"), ("name", "Name"), ("rows", "Rows"),
           ("accuracy", "Acc % [95% CI]"), ("correctness/mean", "Judge✓"), ("exact_match/mean", "Exact"),
           ("latency_mean_s", "Lat s"), ("cost_usd", "Cost"), ("judge", "Judge"), ("status", "Status"))


def share_cell(run: RunInfo, name: str) -> str:
    """`85 [71-93]`: a share and its 95% interval in percent, for a narrow column."""
    value = run.metrics.get(name)
    if value is None:
        return ""
    interval = run.interval(name)
    if interval is None:
        return f"{value * 100:.0f}"
    return f"{value * 100:.0f} [{interval[0] * 100:.0f}-{interval[1] * 100:.0f}]"


def run_line(run: RunInfo) -> str:
    """One line on a run: every share with its 95% interval, then the cost (unknown when there is no price)."""
    from core.prices import format_cost
    from core.safety import printable

    parts = []
    for name, found in run.shares.items():
        if found["share"] is None:
            continue
        text = f"{name.removesuffix('/mean')} {found['share'] * 100:.1f}%"
        if found["ci_low"] is not None and found["ci_high"] is not None:
            text += f" (95% CI {found['ci_low'] * 100:.1f}-{found['ci_high'] * 100:.1f})"
        parts.append(text)
    cost = f"cost {format_cost(run.cost_usd)}"
    if run.judge and run.judge != "none":
        cost += f", judge {format_cost(run.judge_cost_usd)}"
    return printable(" · ".join([*parts, cost]))


def _sort_value(run: RunInfo, key: str) -> Any:
    if key == "start":
        return run.start_time.timestamp() if run.start_time else 0.0
    if key in ("model", "name", "judge", "status"):
        return str(getattr(run, key) or "").lower()
    if key == "rows":
        return run.rows if run.rows is not None else -1
    if key == "run":
        return run.run_id
    value = run.metrics.get(key)
    return float("-inf") if value is None else value


class RunsPane(Vertical):
    """A sortable table of evaluation runs, with a metric chart; opens and compares runs."""

    BINDINGS = [
        Binding("enter", "open_run", "Open", id="runs.open"),
        Binding("space", "mark", "Mark", id="runs.mark"),
        Binding("c", "compare", "Compare", id="runs.compare"),
        Binding("s", "cycle_sort", "Sort", id="runs.sort"),
        Binding("g", "next_metric", "Chart", id="runs.chart"),
        Binding("r", "reload", "Reload", id="runs.reload"),
        Binding("m", "mlflow_ui", "MLflow", id="runs.mlflow_ui"),
    ]

    @dataclass
    class RunsLoaded(Message):
        runs: list
        experiment: str

    @dataclass
    class RunsFailed(Message):
        error: str

    @dataclass
    class MlflowUiReady(Message):
        url: str
        seconds: float | None

    @dataclass
    class MlflowUiFailed(Message):
        error: str

    def __init__(self, experiment: str | None = None, **kwargs: object) -> None:
        super().__init__(id="runs-pane")
        self.experiment = experiment
        self.runs: list[RunInfo] = []
        self.marked: list[str] = []
        self.sort_index = 0
        self.sort_key: tuple[str, bool] = ("start", True)
        self.metric_index = 0
        self.loaded = False
        self._pending_open: str | None = None
        self._server: MlflowServer | None = None
        self._server_cancel = threading.Event()
        self._ui_url: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="runs-bar"):
            yield Static("", id="runs-title")
            yield Static("", id="runs-status", classes="muted")
        table: DataTable = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("loading runs…", id="runs-empty", classes="muted")
        yield Static("", id="runs-info", classes="muted")
        yield MetricChart(id="runs-chart")
        yield Static("Enter opens a run · Space marks two, c compares them · s or a header click sorts",
                     id="runs-help", classes="muted")

    def on_mount(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        for key, title in COLUMNS:
            table.add_column(title, key=key)
        self.query_one("#runs-table").display = False
        self.action_reload()

    def on_unmount(self) -> None:
        # The app is closing (or the pane is gone): MLflow's UI must not outlive it.
        self._server_cancel.set()
        if self._server is not None:
            self._server.stop(grace_s=5.0)

    def focus_default(self) -> None:
        self.query_one("#runs-table", DataTable).focus()

    # -- loading
    def action_reload(self) -> None:
        self._set_status("loading…")
        self.load_runs(self.experiment)

    @work(thread=True, exclusive=True, group="runs-load")
    def load_runs(self, experiment: str | None) -> None:
        from core.errors import ProctorError
        from core.runs import experiment_name, list_runs

        try:
            runs = list_runs(experiment)
            self.post_message(self.RunsLoaded(runs, experiment_name(experiment)))
        except ProctorError as error:
            self.post_message(self.RunsFailed(str(error)))
        except Exception as error:  # noqa: BLE001 - a worker must report, never die silently
            self.post_message(self.RunsFailed(f"{type(error).__name__}: {error}"))

    def on_runs_pane_runs_loaded(self, message: RunsLoaded) -> None:
        self.runs = list(message.runs)
        self.loaded = True
        known = {r.run_id for r in self.runs}
        self.marked = [m for m in self.marked if m in known]
        self.query_one("#runs-title", Static).update(
            f"[b]Runs[/] in experiment [b]{escape(message.experiment)}[/]")
        empty = self.query_one("#runs-empty", Static)
        table = self.query_one("#runs-table", DataTable)
        if self.runs:
            empty.display = False
            table.display = True
        else:
            empty.update("No runs yet: `proctor evaluate` (or the Evaluate pane) logs them here. r reloads.")
            empty.display = True
            table.display = False
        self._fill_table()
        self._plot()
        self._set_status(f"loaded {len(self.runs)} run{'s' if len(self.runs) != 1 else ''}")
        if self._pending_open:
            run_id, self._pending_open = self._pending_open, None
            self.open_run(run_id)

    def on_runs_pane_runs_failed(self, message: RunsFailed) -> None:
        self.loaded = True
        empty = self.query_one("#runs-empty", Static)
        empty.update(f"[red]Runs could not be loaded:[/] {escape(message.error)}")
        empty.display = True
        self.query_one("#runs-table", DataTable).display = False
        self._set_status("failed")
        self.notify(message.error, severity="error", timeout=8)

    # -- table
    def _sorted(self) -> list[RunInfo]:
        key, descending = self.sort_key
        return sorted(self.runs, key=lambda r: _sort_value(r, key), reverse=descending)

    def _cells(self, run: RunInfo) -> list[Any]:
        from core.runs import format_metric

        mark = Text("●", style="bold yellow") if run.run_id in self.marked else ""
        date = run.start_time.strftime("%m-%d %H:%M") if run.start_time else ""  # the year rarely helps here
        return [
            mark, date, run.short_id, Text(run.name), Text("" if run.rows is None else str(run.rows), justify="right"),
            Text(share_cell(run, "accuracy"), justify="right"),
            Text(format_metric(run.metrics.get("correctness/mean")), justify="right"),
            Text(format_metric(run.metrics.get("exact_match/mean")), justify="right"),
            Text(format_metric(run.metrics.get("latency_mean_s")), justify="right"),
            Text(format_metric(run.cost_usd, "cost_usd"), justify="right"),
            Text(run.judge or "none"), run.status.lower(),
        ]

    def _fill_table(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        current = self.highlighted_run_id()
        table.clear()
        for run in self._sorted():
            table.add_row(*self._cells(run), key=run.run_id)
        if current is not None and current in {r.run_id for r in self.runs}:
            table.move_cursor(row=table.get_row_index(current))

    def highlighted_run_id(self) -> str | None:
        table = self.query_one("#runs-table", DataTable)
        if not table.row_count:
            return None
        try:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        except Exception:  # noqa: BLE001 - an empty or stale cursor means "no run"
            return None
        return str(row_key.value) if row_key.value is not None else None

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        label, key, descending = SORTS[self.sort_index]
        self.sort_key = (key, descending)
        self._fill_table()
        self._set_status(f"sorted by {label}")

    @on(DataTable.HeaderSelected, "#runs-table")
    def header_sort(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key == "mark":
            return
        key = "start" if key == "date" else key
        # The same header twice flips the direction; a new one starts with the useful end first.
        descending = (not self.sort_key[1]) if self.sort_key[0] == key else key not in ("name", "judge", "run")
        self.sort_key = (key, descending)
        self._fill_table()
        self._set_status(f"sorted by {event.label.plain.lower()}" + (" (descending)" if descending else ""))

    @on(DataTable.RowHighlighted, "#runs-table")
    def row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        run = next((r for r in self.runs if r.run_id == event.row_key.value), None)
        self.query_one("#runs-info", Static).update(Text(run_line(run)) if run is not None else "")

    # -- open, mark, compare
    @on(DataTable.RowSelected, "#runs-table")
    def row_selected(self, event: DataTable.RowSelected) -> None:
        self.open_run(str(event.row_key.value))

    def action_open_run(self) -> None:
        run_id = self.highlighted_run_id()
        if run_id:
            self.open_run(run_id)

    def open_run(self, run_id: str) -> None:
        """Push the detail screen for `run_id` (an id, prefix or name; resolved by core.runs)."""
        self.app.push_screen(RunDetailScreen(run_id))

    def show_run(self, run_id: str) -> None:
        """Open `run_id` now, or once the runs have loaded (the Evaluate pane calls this after a run)."""
        if self.loaded:
            self.action_reload()  # a run just logged is not in the table yet
            self.open_run(run_id)
        else:
            self._pending_open = run_id

    def action_mark(self) -> None:
        run_id = self.highlighted_run_id()
        if run_id is None:
            return
        if run_id in self.marked:
            self.marked.remove(run_id)
        else:
            self.marked.append(run_id)
            if len(self.marked) > 2:
                self.marked.pop(0)  # the oldest mark gives way: two runs at most
        self._fill_table()
        names = [next((r.name for r in self.runs if r.run_id == m), m[:8]) for m in self.marked]
        self._set_status(f"marked {len(self.marked)}/2: {', '.join(names)}" if self.marked else "no run marked")

    def action_compare(self) -> None:
        if len(self.marked) != 2:
            self.notify("Mark two runs with Space first (the first marked is A, the baseline).", severity="warning")
            return
        self.app.push_screen(CompareScreen(self.marked[0], self.marked[1]))

    # -- chart
    def _plot(self) -> None:
        metric = CHART_METRICS[self.metric_index]
        oldest_first = sorted(self.runs, key=lambda r: _sort_value(r, "start"))
        self.query_one(MetricChart).plot(metric, [r.metrics.get(metric) for r in oldest_first],
                                         [r.name for r in oldest_first])

    def action_next_metric(self) -> None:
        self.metric_index = (self.metric_index + 1) % len(CHART_METRICS)
        self._plot()

    # -- MLflow UI
    def action_mlflow_ui(self) -> None:
        from core.errors import ProctorError
        from core.mlflow_server import is_remote, plan_server
        from core.tracking import tracking_uri

        if self._ui_url and self._server is not None and self._server.running:
            self.notify(f"MLflow UI at {self._ui_url}")
            return
        if self._server is not None and self._server.running:
            self.notify("The MLflow UI is starting…")
            return
        uri = tracking_uri()
        if is_remote(uri):
            self._ui_url = uri
            self._set_status(f"MLflow UI: {uri}")
            self.notify(f"MLflow UI is the tracking server at {uri}")
            return
        try:
            # Launching is quick (the wait for /health is the worker's): a busy port is reported at once.
            self._server = plan_server().start()
        except ProctorError as error:
            self.notify(str(error), severity="error", timeout=8)
            return
        self._server_cancel.clear()
        self._set_status(f"MLflow UI starting on {self._server.url}…")
        self.wait_for_mlflow_ui(self._server)

    @work(thread=True, exclusive=True, group="runs-mlflow-ui")
    def wait_for_mlflow_ui(self, server: MlflowServer) -> None:
        from core.errors import ProctorError

        try:
            url = server.wait_until_ready(cancelled=self._server_cancel)
            self.post_message(self.MlflowUiReady(url, server.ready_after_s))
        except ProctorError as error:
            self.post_message(self.MlflowUiFailed(str(error)))

    def on_runs_pane_mlflow_ui_ready(self, message: MlflowUiReady) -> None:
        self._ui_url = message.url
        self._set_status(f"MLflow UI: {message.url}")
        self.notify(f"MLflow UI ready at {message.url}", timeout=10)

    def on_runs_pane_mlflow_ui_failed(self, message: MlflowUiFailed) -> None:
        self._server = None
        self._set_status("MLflow UI failed")
        self.notify(message.error, severity="error", timeout=10)

    def _set_status(self, text: str) -> None:
        parts = [text]
        if self._ui_url and "MLflow UI" not in text:
            parts.append(f"MLflow UI: {self._ui_url}")
        self.query_one("#runs-status", Static).update(escape(" · ".join(p for p in parts if p)))
