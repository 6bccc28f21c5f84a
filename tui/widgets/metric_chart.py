"""A horizontal bar chart of one metric across runs: one labelled bar and its value per run, over a scale axis.

Drawn with unicode eighth blocks (no plotting dependency): at 80 columns each bar has about 50 cells, 400 levels,
and a horizontal layout leaves room to name each run, which vertical bars at one cell a run cannot. The scale
starts at 0 (at the lowest value when some are negative) and ends at 1 for rates (0..1), so a bar's length reads
as the rate itself; otherwise at the largest value. A run without the metric has no bar and reads "no value".
"""

from __future__ import annotations

import math

from rich.text import Text
from textual.widget import Widget

EIGHTHS = " ▏▎▍▌▋▊▉"


def scale(values: list[float | None]) -> tuple[float, float]:
    """The axis' (low, high) for `values`: 0..1 for rates, else from min(0, lowest) to the highest."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    if not present:
        return 0.0, 1.0
    low, high = min(0.0, min(present)), max(present)
    if low >= 0.0 and high <= 1.0:
        return 0.0, 1.0
    return low, high if high > low else low + 1.0


def bar(value: float | None, low: float, high: float, width: int) -> str:
    """`value` as a bar of at most `width` cells, in eighths of a cell, padded to `width`."""
    if value is None or math.isnan(value) or width <= 0:
        return " " * max(0, width)
    share = min(1.0, max(0.0, (value - low) / (high - low)))
    eighths = round(share * width * 8)
    drawn = "█" * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")
    return drawn.ljust(width)


def number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "no value"
    return f"{value:.3g}"


def axis(low: float, high: float, width: int) -> tuple[str, str]:
    """The axis line (`└──┬──…`) and the tick labels under it, `width` cells each.

    Five ticks when there is room, three otherwise; a label that would touch its neighbour is left out.
    """
    count = 5 if width >= 40 else 3 if width >= 12 else 2
    positions = [round(i * (width - 1) / (count - 1)) for i in range(count)]
    line = ["─"] * width
    for position in positions:
        line[position] = "┬"
    line[0] = "├"
    labels = [" "] * width
    taken_until = -1
    for i, position in enumerate(positions):
        label = f"{low + (high - low) * i / (count - 1):.3g}"
        start = position if i == 0 else position - len(label) + 1 if i == count - 1 else position - len(label) // 2
        start = max(0, min(start, width - len(label)))
        if start <= taken_until + 1 and i != 0:
            continue
        labels[start:start + len(label)] = label
        taken_until = start + len(label) - 1
    return "".join(line), "".join(labels)


def chart_lines(values: list[float | None], labels: list[str], width: int) -> list[tuple[str, str, str]]:
    """The chart's body, one (label, bar, value) triple a run, then the axis and its labels as two more triples.

    Every line is at most `width` cells: labels are cut (with "…") before the bars get shorter than 10 cells.
    """
    low, high = scale(values)
    numbers = [number(v) for v in values]
    value_width = max((len(n) for n in numbers), default=1)
    label_width = max((len(label) for label in labels), default=0)
    label_width = min(label_width, max(4, width - value_width - 3 - 10))
    plot_width = max(1, width - label_width - value_width - 3)
    lines = []
    for label, value, text in zip(labels, values, numbers, strict=True):
        cut = label if len(label) <= label_width else label[: label_width - 1] + "…"
        lines.append((cut.ljust(label_width) + " ▕", bar(value, low, high, plot_width), " " + text.rjust(value_width)))
    line, ticks = axis(low, high, plot_width)
    lines.append((" " * label_width + "  ", line, ""))
    lines.append((" " * label_width + "  ", ticks, ""))
    return lines


class MetricChart(Widget):
    """A bar of `metric` for each run given to `plot`, named and valued, under a title line and over an axis."""

    DEFAULT_CSS = """
    MetricChart { height: 8; padding: 0 1; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.metric = ""
        self.values: list[float | None] = []
        self.labels: list[str] = []
        self.total = 0

    def plot(self, metric: str, values: list[float | None], labels: list[str], total: int | None = None) -> None:
        """Show `values` of `metric`, one bar a run named by `labels`; `total` runs exist (more than shown)."""
        self.metric = metric
        self.values = list(values)
        self.labels = list(labels)
        self.total = len(self.values) if total is None else total
        self.refresh()

    def render(self) -> Text:
        text = Text()
        text.append(self.metric or "no metric", style="bold")
        present = [v for v in self.values if v is not None and not math.isnan(v)]
        if not present:
            text.append("  no run shown has this metric", style="dim")
            return text
        shown = f"{len(self.values)} of {self.total} runs" if self.total > len(self.values) else \
            f"{len(self.values)} run{'s' if len(self.values) != 1 else ''}"
        text.append(f"  {shown}, in table order · g: next metric", style="dim")
        width = self.content_region.width or 76
        for label, drawn, value in chart_lines(self.values, self.labels, width):
            text.append("\n")
            text.append(label, style="dim" if not label.strip() else "")
            text.append(drawn, style="dim" if not value else "green")
            text.append(value, style="bold")
        return text
