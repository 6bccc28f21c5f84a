"""The run detail screen: one evaluation run's summary and its per-row verdicts, opened from the Runs pane.

Escape goes back. The screen is on at once; the run is loaded through core.runs in a thread worker (milliseconds
for a local sqlite store, seconds when MLflow's client must be imported).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from core.safety import one_line, shown
from tui import untrusted
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
        yield Static(untrusted.markup("[b]Run[/] $ref  loading…", ref=one_line(self.run_ref)), id="detail-summary")
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
        # Everything read from the store is outside text: substituted as plain, printable values.
        self.query_one("#detail-summary", Static).update(untrusted.markup(
            "[b]$name[/] $id · $model · judge $judge · $date · $status\n$metrics$human\n[dim]rows from $source[/]",
            name=one_line(info.name), id=info.short_id, model=one_line(info.model),
            judge=one_line(info.judge or "none"), date=info.date, status=one_line(info.status.lower()),
            metrics=one_line(metrics), human=_human_line(info.metrics), source=source))
        table = self.query_one("#detail-table", DataTable)
        self._records = detail.rows
        for index, record in enumerate(self._records):
            table.add_row(untrusted.cell(record.get("row", str(index + 1))), _verdict_text(record),
                          _clip(record.get("question", ""), 40), _clip(record.get("llm_answer", ""), 24),
                          _clip(record.get("reference", ""), 18), key=str(index))
        if self._records:
            self._show_record(0)
        else:
            self.query_one("#detail-row", Static).update("This run has no per-row results.")

    def on_run_detail_screen_failed(self, message: Failed) -> None:
        self.query_one("#detail-summary", Static).update(untrusted.plain(shown(message.error), "red"))

    @on(DataTable.RowHighlighted, "#detail-table")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show_record(int(event.row_key.value))

    def _show_record(self, index: int) -> None:
        record = self._records[index]
        # The question, answer, rationale and errors are outside text: values, never markup, never control.
        lines = [untrusted.markup("[b]Q$row[/] $question", row=one_line(record.get("row", "")),
                                  question=record.get("question", "")),
                 untrusted.markup("[b]Reference[/] $text", text=record.get("reference", "")),
                 untrusted.markup("[b]Answer[/] $text", text=record.get("llm_answer", ""))]
        if record.get("answer_error"):
            lines.append(untrusted.markup("[red]Answer error[/] $text", text=shown(record["answer_error"])))
        lines.append(untrusted.markup("[b]Judge[/] $verdict: $text",
                                      verdict=one_line(record.get("judge_verdict") or "-"),
                                      text=record.get("judge_rationale", "")))
        if record.get("judge_error"):
            lines.append(untrusted.markup("[red]Judge error[/] $text", text=shown(record["judge_error"])))
        if record.get("human_verdict"):
            lines.append(untrusted.markup("[b]Human[/] $text", text=one_line(record["human_verdict"])))
        self.query_one("#detail-row", Static).update(Content("\n").join(lines))


def _human_line(metrics: dict[str, float]) -> str:
    """The judge-vs-human numbers a run carries once human verdicts were synced, with their 95% intervals."""
    if "human/graded" not in metrics:
        return ""

    def pct(name: str) -> str:
        return f"{100 * metrics[name]:.0f}%" if name in metrics else "—"

    text = (f"\nhuman: {int(metrics['human/graded'])} graded, accuracy {pct('human/accuracy')} "
            f"[{pct('human/accuracy_ci_low')}–{pct('human/accuracy_ci_high')}]")
    if "judge_human/agreement" in metrics:
        text += f" · judge agrees {pct('judge_human/agreement')}"
    if "judge_human/kappa" in metrics:
        text += (f", κ {metrics['judge_human/kappa']:.2f} [{metrics.get('judge_human/kappa_ci_low', 0):.2f}–"
                 f"{metrics.get('judge_human/kappa_ci_high', 0):.2f}]")
    counts = [("both ✓", "both_correct"), ("both ✗", "both_incorrect"), ("judge-only ✓", "judge_only_correct"),
              ("human-only ✓", "human_only_correct")]
    if all(f"judge_human/{key}" in metrics for _, key in counts):
        text += " · " + ", ".join(f"{label} {int(metrics[f'judge_human/{key}'])}" for label, key in counts)
    return text


def _verdict_text(record: dict[str, str]) -> Text:
    from core.runs import parse_verdict

    verdict = parse_verdict(record.get("judge_verdict"))
    if verdict is True:
        return Text("✓ correct", style="green")
    if verdict is False:
        return Text("✗ incorrect", style="red")
    return Text("? no verdict", style="yellow")


def _clip(text: str, width: int) -> Text:
    text = one_line(text)
    return untrusted.cell(text if len(text) <= width else text[: width - 1] + "…")
