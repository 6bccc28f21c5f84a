"""The comparison screen: two evaluation runs side by side, opened from the Runs pane (`c` on two marked runs).

Escape goes back. The screen is on at once; the runs are compared by core.runs in a thread worker (milliseconds
for a local sqlite store, seconds when MLflow's client must be imported).
Each share shows its 95% interval; the paired comparison (matched n, A-only and B-only, the difference with its
paired interval, the exact McNemar p, the MDE, latency) and its plain sentences come before the differing questions.
A run is marked better only where the paired test is significant at 5%.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
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
    from core.runs import Comparison


class CompareScreen(Screen[None]):
    """Two runs side by side: metric deltas (B - A) with intervals, the paired comparison in numbers and sentences,
    then the questions whose verdicts differ, with rationales."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="compare.back")]

    @dataclass
    class Loaded(Message):
        comparison: Any

    @dataclass
    class Failed(Message):
        error: str

    def __init__(self, run_a: str, run_b: str) -> None:
        super().__init__(classes="runs-screen")
        self.run_a = run_a
        self.run_b = run_b
        self.comparison: Comparison | None = None

    def compose(self) -> ComposeResult:
        yield Static(untrusted.markup("[b]Comparing[/] $a and $b  loading…", a=one_line(self.run_a[:8]),
                                      b=one_line(self.run_b[:8])),
                     id="compare-summary")
        with VerticalScroll(id="compare-body"):
            yield DataTable(id="compare-metrics", cursor_type="row", show_cursor=False)
            yield Static("", id="compare-rows")
        yield FittingFooter()

    def on_mount(self) -> None:
        table = self.query_one("#compare-metrics", DataTable)
        # Five columns, so that a share's interval on both sides still fits 80 columns; the better run, where the
        # paired test says so at 5%, is named beside its p-value.
        for key, title in (("metric", "Metric"), ("a", "A [95% CI]"), ("b", "B [95% CI]"), ("delta", "Δ B-A"),
                           ("p", "p · better")):
            table.add_column(title, key=key)
        self.query_one("#compare-body").focus()
        self.load(self.run_a, self.run_b)

    @work(thread=True, exclusive=True)
    def load(self, run_a: str, run_b: str) -> None:
        from core.errors import ProctorError
        from core.runs import compare_runs

        try:
            self.post_message(self.Loaded(compare_runs(run_a, run_b)))
        except ProctorError as error:
            self.post_message(self.Failed(str(error)))
        except Exception as error:  # noqa: BLE001 - a worker must report, never die silently
            self.post_message(self.Failed(f"{type(error).__name__}: {error}"))

    def on_compare_screen_loaded(self, message: Loaded) -> None:
        from core.runs import format_delta, format_metric, format_share, paired_lines
        from core.stats import format_p

        comparison: Comparison = message.comparison
        self.comparison = comparison
        a, b = comparison.a, comparison.b
        # Names, answers, references and rationales come from the store: plain printable values, never markup.
        lines = [untrusted.markup(f"[b]{side}[/] $name $id · $model · judge $judge", name=one_line(r.name),
                                  id=r.short_id, model=one_line(r.model), judge=one_line(r.judge or "none"))
                 for side, r in (("A", a), ("B", b))]
        lines += [untrusted.markup("[yellow]⚠ $w[/]", w=one_line(w)) for w in comparison.warnings]
        self.query_one("#compare-summary", Static).update(Content("\n").join(lines))
        table = self.query_one("#compare-metrics", DataTable)
        for m in comparison.metrics:
            better = {"a": "A", "b": "B"}.get(m.better or "", "")
            a_text = format_share(m.a, m.a_ci) if m.a_ci else format_metric(m.a, m.name)
            b_text = format_share(m.b, m.b_ci) if m.b_ci else format_metric(m.b, m.name)
            p_text = format_p(m.p_value).removeprefix("p ").removeprefix("= ") if m.p_value is not None else ""
            table.add_row(untrusted.cell(m.name), Text(a_text, justify="right"), Text(b_text, justify="right"),
                          Text(format_delta(m.delta, m.name), justify="right"),
                          Text.assemble(p_text, (f" {better}" if better else "", "bold green")))
        parts = [untrusted.markup("$n questions matched · verdicts from $basis", n=comparison.matched_rows,
                                  basis=one_line(comparison.basis or "-"))]
        parts += [untrusted.plain(line) for line in paired_lines(comparison)]
        for title, diffs in ((f"A right, B wrong ({len(comparison.a_right_b_wrong)})", comparison.a_right_b_wrong),
                             (f"B right, A wrong ({len(comparison.b_right_a_wrong)})", comparison.b_right_a_wrong)):
            parts.append(untrusted.markup("\n[b]$title[/]", title=title))
            if not diffs:
                parts.append(untrusted.markup("[dim]none[/]"))
            for d in diffs:
                parts.append(untrusted.markup("[b]Q$row[/] $question  [dim]reference:[/] $reference",
                                              row=one_line(d.row_a), question=d.question, reference=d.reference))
                for side, verdict, answer, why in (("A", d.verdict_a, d.answer_a, d.rationale_a),
                                                   ("B", d.verdict_b, d.answer_b, d.rationale_b)):
                    parts.append(untrusted.markup(f"  [b]{side}[/] $verdict: $answer\n     [dim]$why[/]",
                                                  verdict=one_line(verdict), answer=answer, why=why))
        self.query_one("#compare-rows", Static).update(Content("\n").join(parts))

    def on_compare_screen_failed(self, message: Failed) -> None:
        self.query_one("#compare-summary", Static).update(untrusted.plain(shown(message.error), "red"))
