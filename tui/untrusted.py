"""Text from outside (answers, rationales, CSV cells, server errors) turned into what the app may display.

Two dangers, both handled here with core.safety's rules: terminal control characters (shown as `␛` or removed),
and Textual markup. A plain `str` given to `Static.update`, `notify` or a `DataTable` cell is parsed as markup,
so an answer holding `[bold]` or `[@click=app.quit]` would be styled or made clickable. These helpers return
`Content` or Rich `Text`, which are never parsed:

- `plain(text, style)`: a `Content` of the printable text.
- `line(text, style)`: the same on one line (table cells, status lines).
- `cell(text, style)`: a Rich `Text` for a `DataTable` cell, on one line.
- `markup(template, **values)`: our own markup with untrusted `$values` substituted as plain text.
- `notify(widget, text, ...)`: `widget.notify` with the text scrubbed of keys, printable, and markup off.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.content import Content

from core.safety import one_line, printable, shown


def plain(text: object, style: str = "") -> Content:
    """Untrusted text as display content: no terminal control, never markup."""
    return Content.styled(printable(text), style) if style else Content(printable(text))


def line(text: object, style: str = "") -> Content:
    """`plain` on one line: newlines and tabs become spaces."""
    return Content.styled(one_line(text), style) if style else Content(one_line(text))


def cell(text: object, style: str = "", limit: int | None = None, justify: str | None = None) -> Text:
    """A `DataTable` cell (str cells are parsed as markup there): one printable line, cut at `limit` characters."""
    value = one_line(text)
    return Text(value[:limit] if limit else value, style=style, justify=justify)  # type: ignore[arg-type]


def markup(template: str, **values: object) -> Content:
    """`Content.from_markup(template, **values)` with every value printable: the values are never parsed."""
    return Content.from_markup(template, **{name: printable(value) for name, value in values.items()})


def notify(widget: Any, text: object, **kwargs: Any) -> None:
    """`widget.notify(text)` for server words: keys scrubbed, control characters removed, markup off."""
    widget.notify(shown(text), markup=False, **kwargs)
