"""A selection list and a checkbox whose boxes read without colour: `[x]` chosen, `[ ]` not.

Textual's SelectionList draws the same `▐X▌` block for both states and tells them apart by colour alone, which
is lost on a monochrome terminal, in a screen reader and in a pasted screenshot.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.content import Content
from textual.strip import Strip
from textual.widgets import Checkbox, OptionList, SelectionList
from textual.widgets.option_list import OptionDoesNotExist


class CheckList(SelectionList[str]):
    """A SelectionList drawn with `[x]` / `[ ]` boxes."""

    def _get_left_gutter_width(self) -> int:
        return len("[x] ")

    def render_line(self, y: int) -> Strip:
        line = OptionList.render_line(self, y)
        _, scroll_y = self.scroll_offset
        try:
            selection = self.get_option_at_index(scroll_y + y)
        except OptionDoesNotExist:
            return line
        style = next(iter(line)).style if line.cell_length else self.rich_style
        box = "[x] " if selection.value in self._selected else "[ ] "
        return Strip([Segment(box, style), *line])


class TextCheckbox(Checkbox):
    """A Checkbox drawn `[x]` / `[ ]`, for the same reason as CheckList."""

    @property
    def _button(self) -> Content:
        return Content("[x]" if self.value else "[ ]")
