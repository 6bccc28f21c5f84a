"""The Runs pane: the evaluation runs in the tracking store, a chart of one metric, and two runs compared.

Keys: Enter opens the highlighted run (per-row verdicts and rationales), Space marks it (two at most), `c` compares
the two marked runs side by side, `/` filters (Escape clears), `s` cycles the sort column and `S` reverses it (or
click a column header; ▲/▼ marks it), `g` shows the chart and cycles its metric, `d` deletes a run after a
confirmation (MLflow's restorable delete; `u` restores), `h` grades the run's rows by hand in the Grade pane (the
verdicts go to that run), `r` reloads, `m` starts MLflow's own web UI on 127.0.0.1
(stopped when the app exits). The columns shown are those that fit the width, most telling first.

All MLflow work goes through core.runs and core.mlflow_server in thread workers: importing mlflow takes about 3 s,
so the pane shows "loading…" first and never imports it on the UI thread.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from core.safety import mask_url, one_line, shown
from tui import untrusted
from tui.screens.compare import CompareScreen
from tui.screens.confirm_delete import ConfirmDeleteScreen
from tui.screens.run_detail import RunDetailScreen
from tui.widgets.metric_chart import MetricChart

if TYPE_CHECKING:
    from core.mlflow_server import MlflowServer
    from core.runs import RunInfo

CHART_METRICS = ("accuracy", "correctness/mean", "exact_match/mean", "contains_reference/mean", "latency_mean_s",
                 "judge_errors", "answer_errors", "human/accuracy", "judge_human/kappa")
# Sort keys `s` cycles through: (label, key on RunInfo or a column key, descending first).
SORTS: tuple[tuple[str, str, bool], ...] = (
    ("date", "start", True), ("accuracy", "accuracy", True), ("name", "name", False), ("errors", "errors", True),
    ("latency", "latency_mean_s", False), ("cost", "cost_usd", False),
)
# Keys whose natural first direction is A to Z / low to high (a header click on them starts ascending).
ASCENDING_FIRST = ("name", "judge", "run", "status", "latency_mean_s", "cost_usd")


@dataclass(frozen=True)
class Column:
    """A table column. `priority` decides which columns stay when the pane is narrow (lower stays longer)."""

    key: str
    title: str
    priority: int
    right: bool = False


# In display order. At 80 columns the ones that explain a run stay: its name, accuracy with its 95% interval, the
# errors (answers that failed / verdicts that failed: why a run scores 0), the judge and the status; the judge's
# correctness and the date come next. Rows, cost, latency, exact match and the run id appear as the pane widens.
# Accuracy is in percent with its 95% Wilson interval; the highlighted run's every share (with its interval),
# its errors and its cost are spelled out in the line under the table.
COLUMNS: tuple[Column, ...] = (
    Column("mark", " ", 0), Column("date", "Date", 6), Column("run", "Run", 15), Column("name", "Name", 1),
    Column("rows", "Rows", 8, right=True), Column("accuracy", "Acc% [CI]", 2, right=True),
    Column("correctness/mean", "Judge✓", 7, right=True), Column("errors", "Err a/j", 3, right=True),
    # After human verdicts are synced (core.feedback); empty, hence hidden, before.
    Column("human/accuracy", "Human", 10, right=True), Column("judge_human/kappa", "κ", 12, right=True),
    Column("exact_match/mean", "Exact", 14, right=True), Column("latency_mean_s", "Lat s", 11, right=True),
    Column("cost_usd", "Cost", 9, right=True), Column("judge", "Judge", 5), Column("status", "Status", 4),
)
NAME_WIDTH = 16  # run names and judges longer than this end in "…" (the detail screen shows them whole)
STATUS_WORDS = {"FINISHED": "done", "FAILED": "failed", "RUNNING": "running", "KILLED": "killed",
                "SCHEDULED": "queued"}


def short(text: str, width: int = NAME_WIDTH) -> str:
    """`text` on one line, at most `width` characters (the end replaced by "…")."""
    from core.safety import one_line

    text = one_line(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def short_judge(judge: str) -> str:
    """The judge without its provider (`openai:/gpt-4.1-mini` -> `gpt-4.1-mini`); "none" when there is none."""
    if not judge:
        return "none"
    _, sep, rest = judge.partition(":/")
    return short(rest if sep and rest else judge, 14)


def short_date(when: datetime | None, now: datetime | None = None) -> str:
    """`14:05` for a run of today, `11-26` before: five characters (the detail screen has the full date)."""
    if when is None:
        return ""
    now = now or datetime.now()
    return when.strftime("%H:%M") if when.date() == now.date() else when.strftime("%m-%d")


def status_word(status: str) -> str:
    return STATUS_WORDS.get(status.upper(), status.lower())


def errors_cell(run: RunInfo) -> str:
    """`answer errors/judge errors`, e.g. `20/0` (every answer failed) or `0/3`; `-` where a count was not logged."""
    counts = [run.metrics.get("answer_errors"), run.metrics.get("judge_errors")]
    if all(c is None for c in counts):
        return ""
    return "/".join("-" if c is None or math.isnan(c) else str(int(c)) for c in counts)


def fit_columns(widths: dict[str, int], available: int) -> list[str]:
    """The keys of the columns to show in `available` cells: by priority while they fit, in display order.

    `widths` holds each column's cell width (content plus the table's padding); columns missing from it are
    left out (nothing to show in them).
    """
    chosen: set[str] = set()
    used = 0
    for column in sorted(COLUMNS, key=lambda c: c.priority):
        width = widths.get(column.key)
        if width is None or used + width > available:
            continue
        chosen.add(column.key)
        used += width
    return [c.key for c in COLUMNS if c.key in chosen]


def matches(run: RunInfo, words: list[str]) -> bool:
    """True when every word is part of the run's model, name, judge, status or id (case does not matter)."""
    haystack = " ".join([run.model, run.name, run.judge or "none", run.status, status_word(run.status),
                         run.run_id]).lower()
    return all(word in haystack for word in words)


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
    failed = [f"{int(run.metrics[key])} {what}" for key, what in
              (("answer_errors", "answers failed"), ("judge_errors", "verdicts failed"))
              if run.metrics.get(key) and not math.isnan(run.metrics[key])]
    parts.extend(failed)
    if "human/graded" in run.metrics:
        # After human verdicts were synced (core.feedback): the human's accuracy and the judge's kappa with them.
        human = f"human {run.metrics.get('human/accuracy', 0) * 100:.0f}% of {int(run.metrics['human/graded'])}"
        if "judge_human/kappa" in run.metrics:
            human += f", judge κ {run.metrics['judge_human/kappa']:.2f}"
        parts.append(human)
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
    if key == "errors":
        return sum(run.metrics.get(name) or 0.0 for name in ("answer_errors", "judge_errors"))
    if key == "date":
        return _sort_value(run, "start")
    value = run.metrics.get(key)
    return None if value is None or math.isnan(value) else value


class RunsPane(Vertical):
    """A sortable, filterable table of evaluation runs, with a metric chart; opens, compares and deletes runs."""

    BINDINGS = [
        Binding("enter", "open_run", "Open", id="runs.open"),
        Binding("space", "mark", "Mark", id="runs.mark"),
        Binding("c", "compare", "Compare", id="runs.compare"),
        Binding("slash", "filter", "Filter", id="runs.filter"),
        Binding("s", "cycle_sort", "Sort", id="runs.sort"),
        Binding("S", "reverse_sort", "Reverse", id="runs.reverse", show=False),
        Binding("g", "next_metric", "Chart", id="runs.chart"),
        Binding("d,delete", "delete_run", "Delete", id="runs.delete"),
        Binding("h", "grade_run", "Grade", id="runs.grade"),
        Binding("u", "undo_delete", "Undo delete", id="runs.undo_delete", show=False),
        Binding("r", "reload", "Reload", id="runs.reload"),
        Binding("m", "mlflow_ui", "MLflow", id="runs.mlflow_ui"),
        Binding("escape", "clear_filter", "Clear filter", id="runs.clear_filter", show=False),
    ]

    @dataclass
    class RunsLoaded(Message):
        runs: list
        experiment: str

    @dataclass
    class RunsFailed(Message):
        error: str

    @dataclass
    class RunDeleted(Message):
        run_id: str
        name: str

    @dataclass
    class DeleteFailed(Message):
        error: str

    @dataclass
    class RunRestored(Message):
        run_id: str

    @dataclass
    class GradeReady(Message):
        path: str
        how: str

    @dataclass
    class GradeFailed(Message):
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
        self.metric_index = -1  # -1: the chart is hidden; `g` shows it and cycles its metric
        self.filter_text = ""
        self.shown_columns: list[str] = []
        self.loaded = False
        self._pending_open: str | None = None
        self._deleted: list[str] = []  # run ids deleted here, newest last: `u` restores them
        self._server: MlflowServer | None = None
        self._server_cancel = threading.Event()
        self._ui_url: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="runs-bar"):
            yield Static("", id="runs-title")
            yield Static("", id="runs-status", classes="muted")
        yield Input(placeholder="filter: model, name, judge or status (Esc clears)", id="runs-filter")
        table: DataTable = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("loading runs…", id="runs-empty", classes="muted")
        yield Static("", id="runs-info", classes="muted")
        yield MetricChart(id="runs-chart")
        yield Static("Enter open · Space mark, c compare · / filter · s S sort · g chart · d delete",
                     id="runs-help", classes="muted")

    def on_mount(self) -> None:
        self.query_one("#runs-table").display = False
        self.query_one("#runs-filter").display = False
        self.query_one(MetricChart).display = False
        self.action_reload()

    def on_unmount(self) -> None:
        self.release()

    def release(self) -> None:
        """The app is closing (or the pane is gone): MLflow's UI must not outlive it. Called on unmount, and by the
        app's quick quit, which unmounts nothing. Safe to call twice."""
        self._server_cancel.set()
        server, self._server = self._server, None
        if server is not None:
            # Detached: SIGTERM now, and a stopper process SIGKILLs it later if need be; the app quits at once.
            server.stop(grace_s=5.0, detach=True)

    def on_resize(self) -> None:
        # Which columns fit depends on the width: refill only when that changes the set.
        if self.loaded and self._columns_to_show() != self.shown_columns:
            self._fill_table()
        if self.metric_index >= 0:
            self._plot()

    def focus_default(self) -> None:
        self.focus_target().focus()

    def focus_target(self) -> Widget:
        """The widget that takes the keyboard when the pane is shown."""
        return self.query_one("#runs-table", DataTable)

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
            untrusted.markup("[b]Runs[/] · $name", name=one_line(short(message.experiment, 24))))
        self._fill_table()
        self._set_status(self._count_text())
        if self._pending_open:
            run_id, self._pending_open = self._pending_open, None
            self.open_run(run_id)

    def on_runs_pane_runs_failed(self, message: RunsFailed) -> None:
        self.loaded = True
        empty = self.query_one("#runs-empty", Static)
        empty.update(untrusted.markup("[red]Runs could not be loaded:[/] $error", error=shown(message.error)))
        empty.display = True
        self.query_one("#runs-table", DataTable).display = False
        self._set_status("failed")
        untrusted.notify(self, message.error, severity="error", timeout=8)

    # -- table
    def visible_runs(self) -> list[RunInfo]:
        """The runs the table shows: those the filter lets through, in the sort order."""
        words = self.filter_text.lower().split()
        key, descending = self.sort_key
        shown = [r for r in self.runs if matches(r, words)]
        # Runs without the value (no price, a metric not logged) go last whichever the direction.
        known = [r for r in shown if _sort_value(r, key) is not None]
        unknown = [r for r in shown if _sort_value(r, key) is None]
        return sorted(known, key=lambda r: _sort_value(r, key), reverse=descending) + unknown

    def _sort_column(self) -> str:
        key = self.sort_key[0]
        return "date" if key == "start" else key

    def _title(self, column: Column) -> Text:
        """The header: the title, with ▲ (ascending) or ▼ (descending) on the sort column."""
        if column.key == self._sort_column():
            return Text(f"{column.title} {'▼' if self.sort_key[1] else '▲'}", style="bold",
                        justify="right" if column.right else "left")
        return Text(column.title, justify="right" if column.right else "left")

    def _cells(self, run: RunInfo) -> dict[str, Any]:
        from core.runs import format_metric

        status = status_word(run.status)
        return {
            "mark": Text("●", style="bold yellow") if run.run_id in self.marked else "",
            "date": short_date(run.start_time),
            "run": run.short_id,
            "name": untrusted.cell(short(run.name)),  # from the store: one printable line, never markup
            "rows": "" if run.rows is None else str(run.rows),
            "accuracy": share_cell(run, "accuracy"),
            "correctness/mean": format_metric(run.metrics.get("correctness/mean")),
            "errors": errors_cell(run),
            "human/accuracy": format_metric(run.metrics.get("human/accuracy")),
            "judge_human/kappa": format_metric(run.metrics.get("judge_human/kappa")),
            "exact_match/mean": format_metric(run.metrics.get("exact_match/mean")),
            "latency_mean_s": format_metric(run.metrics.get("latency_mean_s")),
            "cost_usd": format_metric(run.cost_usd, "cost_usd"),
            "judge": untrusted.cell(short_judge(run.judge)),
            "status": untrusted.cell(status, style="bold red" if status in ("failed", "killed") else ""),
        }

    def _column_widths(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Each column's content width (its widest cell or title); columns empty for every run are left out."""
        widths: dict[str, int] = {}
        for column in COLUMNS:
            cells = [Text(c) if isinstance(c, str) else c for c in (row[column.key] for row in rows)]
            if column.key != "mark" and rows and not any(cell.plain for cell in cells):
                continue  # a column empty for every run only takes room
            widths[column.key] = max([self._title(column).cell_len, *(c.cell_len for c in cells)])
        return widths

    def _columns_to_show(self, rows: list[dict[str, Any]] | None = None) -> list[str]:
        if rows is None:
            rows = [self._cells(r) for r in self.visible_runs()]
        # Each cell has one space of padding either side; the table's vertical scroll bar takes two cells.
        padded = {key: width + 2 for key, width in self._column_widths(rows).items()}
        return fit_columns(padded, (self.size.width or 1000) - 2)

    def _fill_table(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        current = self.highlighted_run_id()
        runs = self.visible_runs()
        rows = [self._cells(r) for r in runs]
        self.shown_columns = self._columns_to_show(rows)
        widths = self._column_widths(rows)
        by_key = {c.key: c for c in COLUMNS}
        table.clear(columns=True)
        # Fixed widths, measured here: the table's own auto width can draw a refilled table with stale widths.
        for key in self.shown_columns:
            table.add_column(self._title(by_key[key]), key=key, width=widths[key])
        for run, row in zip(runs, rows, strict=True):
            cells = [row[key] for key in self.shown_columns]
            table.add_row(*[Text(c, justify="right") if isinstance(c, str) and by_key[k].right else c
                            for k, c in zip(self.shown_columns, cells, strict=True)], key=run.run_id)
        if current is not None and current in {r.run_id for r in runs}:
            table.move_cursor(row=table.get_row_index(current))
        empty = self.query_one("#runs-empty", Static)
        table.display = bool(runs)
        empty.display = not runs
        if not self.runs:
            empty.update("No runs yet: `proctor evaluate` (or the Evaluate pane) logs them here. r reloads.")
        elif not runs:
            empty.update(Text(f"No run matches {self.filter_text!r}. Esc clears the filter."))
        if not runs:
            self.query_one("#runs-info", Static).update("")
        if self.metric_index >= 0:
            self._plot()

    def highlighted_run_id(self) -> str | None:
        table = self.query_one("#runs-table", DataTable)
        if not table.row_count:
            return None
        try:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        except Exception:  # noqa: BLE001 - an empty or stale cursor means "no run"
            return None
        return str(row_key.value) if row_key.value is not None else None

    def _sorted_status(self) -> str:
        column = self._sort_column()
        title = next((c.title for c in COLUMNS if c.key == column), column)
        label = next((label for label, key, _ in SORTS if key == self.sort_key[0]), title.lower())
        return f"sorted by {label} {'▼' if self.sort_key[1] else '▲'}"

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        _, key, descending = SORTS[self.sort_index]
        self.sort_key = (key, descending)
        self._fill_table()
        self._set_status(self._sorted_status())

    def action_reverse_sort(self) -> None:
        self.sort_key = (self.sort_key[0], not self.sort_key[1])
        self._fill_table()
        self._set_status(self._sorted_status())

    @on(DataTable.HeaderSelected, "#runs-table")
    def header_sort(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key == "mark":
            return
        key = "start" if key == "date" else key
        # The same header twice flips the direction; a new one starts with the useful end first.
        descending = (not self.sort_key[1]) if self.sort_key[0] == key else key not in ASCENDING_FIRST
        self.sort_key = (key, descending)
        self._fill_table()
        self._set_status(self._sorted_status())

    @on(DataTable.RowHighlighted, "#runs-table")
    def row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        run = next((r for r in self.runs if r.run_id == event.row_key.value), None)
        self.query_one("#runs-info", Static).update(Text(run_line(run)) if run is not None else "")

    # -- filter
    def action_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#runs-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        if not self.loaded:
            return  # applied when the runs arrive
        self._fill_table()
        self._set_status(self._count_text())

    @on(Input.Submitted, "#runs-filter")
    def filter_submitted(self, event: Input.Submitted) -> None:
        if not self.filter_text:
            event.input.display = False
        self.focus_default()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Escape is the pane's only while a filter is set or typed: otherwise it goes on to the app.
        if action == "clear_filter":
            return bool(self.filter_text) or self.query_one("#runs-filter", Input).has_focus
        return True

    def action_clear_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        self.filter_text = ""
        box.value = ""  # its Changed message refills the table
        box.display = False
        self._fill_table()
        self.focus_default()
        self._set_status(self._count_text())

    def _count_text(self) -> str:
        total = len(self.runs)
        if self.filter_text:
            return f"filter {self.filter_text!r}: {len(self.visible_runs())} of {total}"
        return f"{total} run{'s' if total != 1 else ''}"

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
        # With the date: two runs of one model are told apart.
        names = [next((f"{short(r.name)} {short_date(r.start_time)}".strip() for r in self.runs if r.run_id == m),
                      m[:8]) for m in self.marked]
        self._set_status(f"marked {len(self.marked)}/2: {', '.join(names)}" if self.marked else "no run marked")

    def action_compare(self) -> None:
        if len(self.marked) != 2:
            self.notify("Mark two runs with Space first (the first marked is A, the baseline).", severity="warning")
            return
        self.app.push_screen(CompareScreen(self.marked[0], self.marked[1]))

    # -- delete
    def action_delete_run(self) -> None:
        run_id = self.highlighted_run_id()
        run = next((r for r in self.runs if r.run_id == run_id), None)
        if run is None:
            return

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._set_status(f"deleting {run.short_id}…")
                self.delete_in_store(run.run_id, run.name)

        self.app.push_screen(ConfirmDeleteScreen(run), answered)

    @work(thread=True, exclusive=True, group="runs-delete")
    def delete_in_store(self, run_id: str, name: str) -> None:
        from core.errors import ProctorError
        from core.runs import delete_run

        try:
            delete_run(run_id)
            self.post_message(self.RunDeleted(run_id, name))
        except ProctorError as error:
            self.post_message(self.DeleteFailed(str(error)))
        except Exception as error:  # noqa: BLE001 - a worker must report, never die silently
            self.post_message(self.DeleteFailed(f"{type(error).__name__}: {error}"))

    def on_runs_pane_run_deleted(self, message: RunDeleted) -> None:
        self._deleted.append(message.run_id)
        self.runs = [r for r in self.runs if r.run_id != message.run_id]
        self.marked = [m for m in self.marked if m != message.run_id]
        self._fill_table()
        self._set_status(f"deleted {short(message.name)} · u restores it")
        self.notify(f"Deleted run {message.run_id[:8]} ({message.name}); u restores it.", timeout=8, markup=False)

    def on_runs_pane_delete_failed(self, message: DeleteFailed) -> None:
        self._set_status("delete failed")
        self.notify(message.error, severity="error", timeout=8, markup=False)

    def action_undo_delete(self) -> None:
        if not self._deleted:
            self.notify("No run deleted here to restore.", severity="warning")
            return
        self.restore_in_store(self._deleted.pop())

    @work(thread=True, exclusive=True, group="runs-delete")
    def restore_in_store(self, run_id: str) -> None:
        from core.errors import ProctorError
        from core.runs import restore_run

        try:
            restore_run(run_id)
            self.post_message(self.RunRestored(run_id))
        except ProctorError as error:
            self.post_message(self.DeleteFailed(str(error)))
        except Exception as error:  # noqa: BLE001 - a worker must report, never die silently
            self.post_message(self.DeleteFailed(f"{type(error).__name__}: {error}"))

    def on_runs_pane_run_restored(self, message: RunRestored) -> None:
        self.notify(f"Restored run {message.run_id[:8]}.", timeout=5)
        self.action_reload()

    # -- grade a run by hand
    def action_grade_run(self) -> None:
        run_id = self.highlighted_run_id()
        if run_id is None:
            self.notify("No run to grade.", severity="warning")
            return
        self._set_status("finding the run's answers…")
        self.find_answers(run_id)

    @work(thread=True, exclusive=True, group="runs-grade")
    def find_answers(self, run_id: str) -> None:
        from core.errors import ProctorError
        from core.run_answers import answers_for_run

        try:
            path, how = answers_for_run(run_id)
            self.post_message(self.GradeReady(str(path), how))
        except ProctorError as error:
            self.post_message(self.GradeFailed(str(error)))
        except Exception as error:  # noqa: BLE001 - a worker must report, never die silently
            self.post_message(self.GradeFailed(f"{type(error).__name__}: {error}"))

    def on_runs_pane_grade_ready(self, message: GradeReady) -> None:
        from pathlib import Path

        name = Path(message.path).name
        self._set_status({"answers": f"grading {name}", "resumed": f"grading {name} (made earlier from the run)",
                          "created": f"grading {name} (made from the run's results)"}.get(message.how, name))
        self.app.open_in_grade(message.path)

    def on_runs_pane_grade_failed(self, message: GradeFailed) -> None:
        from core.safety import shown

        self._set_status("could not grade the run")
        self.notify(shown(message.error), severity="error", timeout=8, markup=False)

    # -- chart
    def _plot(self) -> None:
        chart = self.query_one(MetricChart)
        if self.metric_index < 0:
            chart.display = False
            return
        metric = CHART_METRICS[self.metric_index]
        runs = self.visible_runs()
        # As many runs as leave the table half the pane.
        room = max(2, (self.size.height or 24) // 2 - 3)
        shown = runs[:room]
        has_values = any(r.metrics.get(metric) is not None for r in shown)
        # The border, the title, the axis and its labels; just the border and the title when there is nothing to draw.
        chart.styles.height = len(shown) + 4 if has_values else 2
        chart.display = True
        labels = [f"{short(r.name)} {short_date(r.start_time)}" for r in shown]
        chart.plot(metric, [r.metrics.get(metric) for r in shown], labels, total=len(runs))

    def action_next_metric(self) -> None:
        # off -> each metric in turn -> off
        self.metric_index += 1
        if self.metric_index >= len(CHART_METRICS):
            self.metric_index = -1
        self._plot()
        self._set_status(f"chart: {CHART_METRICS[self.metric_index]}" if self.metric_index >= 0 else "chart off")

    # -- MLflow UI
    def action_mlflow_ui(self) -> None:
        from core.errors import ProctorError
        from core.mlflow_server import is_remote, plan_server
        from core.tracking import tracking_uri

        if self._ui_url and self._server is not None and self._server.running:
            untrusted.notify(self, f"MLflow UI at {self._ui_url}")
            return
        if self._server is not None and self._server.running:
            self.notify("The MLflow UI is starting…")
            return
        uri = tracking_uri()
        if is_remote(uri):
            self._ui_url = mask_url(uri)  # credentials in MLFLOW_TRACKING_URI are never shown
            self._set_status(f"MLflow UI: {self._ui_url}")
            untrusted.notify(self, f"MLflow UI is the tracking server at {self._ui_url}")
            return
        try:
            # Launching is quick (the wait for /health is the worker's): a busy port is reported at once.
            self._server = plan_server().start()
        except ProctorError as error:
            untrusted.notify(self, error, severity="error", timeout=8)
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
        untrusted.notify(self, f"MLflow UI ready at {message.url}", timeout=10)

    def on_runs_pane_mlflow_ui_failed(self, message: MlflowUiFailed) -> None:
        self._server = None
        self._set_status("MLflow UI failed")
        untrusted.notify(self, message.error, severity="error", timeout=10)

    def _set_status(self, text: str) -> None:
        parts = [text]
        if self._ui_url and "MLflow UI" not in text:
            parts.append(f"MLflow UI: {self._ui_url}")
        self.query_one("#runs-status", Static).update(untrusted.line(" · ".join(p for p in parts if p)))
