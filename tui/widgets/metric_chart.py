"""A small bar chart of one metric across runs, drawn with unicode eighth blocks (no plotting dependency).

Bars run oldest to newest, left to right, one bar per run with a gap, as tall as the widget allows (four text rows
give 32 levels). The scale starts at 0 for rates (0..1) and at the minimum otherwise, so that small differences
in latency remain visible. A run without the metric leaves a gap, marked `·` on the baseline.
"""

from __future__ import annotations

import math

from rich.text import Text
from textual.widget import Widget

BLOCKS = " ▁▂▃▄▅▆▇█"


def bar_rows(values: list[float | None], height: int, low: float, high: float) -> list[str]:
    """The chart as `height` strings (top first), one column per value and a space between bars."""
    eighths_total = height * 8
    columns: list[list[str]] = []
    for value in values:
        if value is None or math.isnan(value):
            column = [" "] * (height - 1) + ["·"]
        else:
            span = high - low
            share = 1.0 if span <= 0 else (value - low) / span
            eighths = max(1, round(share * eighths_total))  # every value gets at least a sliver: 0 is not "missing"
            column = []
            for level in range(height - 1, -1, -1):
                filled = min(8, max(0, eighths - level * 8))
                column.append(BLOCKS[filled])
        columns.append(column)
    return [" ".join(column[i] for column in columns) for i in range(height)]


class MetricChart(Widget):
    """Bars of `metric` for each run given to `plot`, with a title line: metric, min, max and latest value."""

    DEFAULT_CSS = """
    MetricChart { height: 6; padding: 0 1; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.metric = ""
        self.values: list[float | None] = []
        self.labels: list[str] = []

    def plot(self, metric: str, values: list[float | None], labels: list[str] | None = None) -> None:
        """Show `values` (oldest first) for `metric`; `labels` name the runs (unused in the drawing, kept for tests)."""
        self.metric = metric
        self.values = list(values)
        self.labels = list(labels or [])
        self.refresh()

    def render(self) -> Text:
        present = [v for v in self.values if v is not None and not math.isnan(v)]
        text = Text()
        text.append(self.metric or "no metric", style="bold")
        if not present:
            text.append("  no run has this metric yet", style="dim")
            return text
        low, high = min(present), max(present)
        text.append(f"  {len(present)} runs · min {low:.3g} · max {high:.3g} · latest {present[-1]:.3g}",
                    style="dim")
        # Rates (0..1) are drawn on a 0..1 scale, so a bar's height reads as the rate itself.
        rate = 0.0 <= low and high <= 1.0
        floor = 0.0 if rate or low == high else low - (high - low) * 0.1
        top = 1.0 if rate else (high if high > floor else floor + 1)
        height = max(1, self.size.height - 1)
        # As many of the newest runs as fit across the widget (two cells a bar).
        fit = max(1, (self.size.width + 1) // 2) if self.size.width else len(self.values)
        for row in bar_rows(self.values[-fit:], height, floor, top):
            text.append("\n")
            text.append(row, style="green")
        return text
