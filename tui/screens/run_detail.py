"""The run detail screen: one evaluation run's summary and its per-row verdicts, opened from the Runs pane.

Escape goes back. The run is loaded through core.runs in a thread worker (importing mlflow takes about 3 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from tui.widgets.fitting_footer import FittingFooter

if TYPE_CHECKING:
    from core.runs import RunDetail


class RunDetailScreen(Screen[None]):
    """One run: its summary, and one line per question with the verdict; the highlighted row's text in full."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="run_detail.back")]

    @dataclass
    class Loaded(Message):
        detail: Any

    @dataclass
    class Failed(Message):
        error: str

    def __init__(self, run_ref: str) -> None:
        super().__init__(classes="runs-screen")
        self.run_ref = run_ref
        self.detail: RunDetail | None = None
        self._records: list[dict[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Static(f"[b]Run[/] {escape(self.run_ref)}  loading…", id="detail-summary")
        yield DataTable(id="detail-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="detail-row-box"):
            yield Static("", id="detail-row")
        yield FittingFooter()

    def on_mount(self) -> None:
        table = self.query_one("#detail-table", DataTable)
        for key, title in (("row", "#"), ("verdict", "Verdict"), ("question", "Question"), ("answer", "Answer"),
                           ("reference", "Reference")):
            table.add_column(title, key=key)
        table.focus()
        self.load(self.run_ref)

    @work(thread=True, exclusive=True)
    def load(self, ref: str) -> None:
        from core.errors import ProctorError
        from core.runs import load_run

        try:
            self.post_message(self.Loaded(load_run(ref)))
        except ProctorError as error:
            self.post_message(self.Failed(str(error)))
        except Exception as error:  # noqa: BLE001 - a worker must report, never die silently
            self.post_message(self.Failed(f"{type(error).__name__}: {error}"))

    def on_run_detail_screen_loaded(self, message: Loaded) -> None:
        from core.runs import format_metric
        from tui.panes.runs import run_line

        detail: RunDetail = message.detail
        self.detail = detail
        info = detail.info
        others = " · ".join(f"{name} {format_metric(value, name)}" for name, value in info.main_metrics.items()
                            if name not in info.shares)
        metrics = run_line(info) + (f"\n{others}" if others else "")
        source = {"artifact": "results/results.csv", "traces": "trace assessments"}.get(detail.results_source,
                                                                                       "no per-row results")
        self.query_one("#detail-summary", Static).update(
            f"[b]{escape(info.name)}[/] {info.short_id} · {escape(info.model)} · judge {escape(info.judge or 'none')}"
            f" · {info.date} · {info.status.lower()}\n{escape(metrics)}\n[dim]rows from {source}[/]")
        table = self.query_one("#detail-table", DataTable)
        self._records = detail.results.fillna("").astype(str).to_dict(orient="records")
        for index, record in enumerate(self._records):
            table.add_row(record.get("row", str(index + 1)), _verdict_text(record),
                          _clip(record.get("question", ""), 40), _clip(record.get("llm_answer", ""), 24),
                          _clip(record.get("reference", ""), 18), key=str(index))
        if self._records:
            self._show_record(0)
        else:
            self.query_one("#detail-row", Static).update("This run has no per-row results.")

    def on_run_detail_screen_failed(self, message: Failed) -> None:
        self.query_one("#detail-summary", Static).update(f"[red]{escape(message.error)}[/]")

    @on(DataTable.RowHighlighted, "#detail-table")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show_record(int(event.row_key.value))

    def _show_record(self, index: int) -> None:
        record = self._records[index]
        lines = [f"[b]Q{escape(record.get('row', ''))}[/] {escape(record.get('question', ''))}",
                 f"[b]Reference[/] {escape(record.get('reference', ''))}",
                 f"[b]Answer[/] {escape(record.get('llm_answer', ''))}"]
        if record.get("answer_error"):
            lines.append(f"[red]Answer error[/] {escape(record['answer_error'])}")
        lines.append(f"[b]Judge[/] {escape(record.get('judge_verdict') or '-')}: "
                     f"{escape(record.get('judge_rationale', ''))}")
        if record.get("judge_error"):
            lines.append(f"[red]Judge error[/] {escape(record['judge_error'])}")
        if record.get("human_verdict"):
            lines.append(f"[b]Human[/] {escape(record['human_verdict'])}")
        self.query_one("#detail-row", Static).update("\n".join(lines))


def _verdict_text(record: dict[str, str]) -> Text:
    from core.runs import parse_verdict

    verdict = parse_verdict(record.get("judge_verdict"))
    if verdict is True:
        return Text("✓ correct", style="green")
    if verdict is False:
        return Text("✗ incorrect", style="red")
    return Text("? no verdict", style="yellow")


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
