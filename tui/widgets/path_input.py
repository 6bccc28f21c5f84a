"""An input for a CSV path: suggests files as you type (read afresh each time) and Tab completes the suggestion.

Textual's Input shows a suggestion greyed after the cursor and accepts it with the right arrow; a terminal user
expects Tab, as in a shell. Tab accepts a suggestion when there is one to accept, and otherwise moves focus on as
usual, so the form stays keyboard-navigable.
"""

from __future__ import annotations

import os
from pathlib import Path

from textual.binding import Binding
from textual.suggester import Suggester
from textual.widgets import Input

MAX_LISTED = 500  # a folder with more files than this is not worth scanning on every key


def csv_candidates(prefix: str, cwd: Path | None = None) -> list[str]:
    """Paths that complete `prefix`: CSV files and folders under the folder the prefix names, sorted."""
    cwd = cwd or Path.cwd()
    head, _, _ = prefix.rpartition("/")
    folder = (cwd / os.path.expanduser(head)) if head else cwd
    try:
        entries = list(os.scandir(folder))[:MAX_LISTED]
    except OSError:
        return []
    from core.safety import printable

    found = []
    for entry in entries:
        if entry.name.startswith(".") and not prefix.rpartition("/")[2].startswith("."):
            continue
        if printable(entry.name) != entry.name:
            continue  # a name holding terminal control characters is never offered (it would be shown)
        shown = f"{head}/{entry.name}" if head else entry.name
        try:
            if entry.is_dir():
                found.append(shown + "/")
            elif entry.name.lower().endswith(".csv"):
                found.append(shown)
        except OSError:
            continue
    return sorted(f for f in found if f.startswith(prefix))


class CsvPathSuggester(Suggester):
    """Suggests the first CSV file or folder that completes what was typed; the folder is read on every call."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        matches = csv_candidates(value)
        return matches[0] if matches else None


class PathInput(Input):
    """An Input for a CSV path with live suggestions; Tab takes the suggestion."""

    BINDINGS = [Binding("tab", "complete", "Complete path", show=False, id="path_input.complete")]

    def __init__(self, value: str = "", placeholder: str = "", id: str | None = None, **kwargs: object) -> None:
        super().__init__(value=value, placeholder=placeholder, id=id, suggester=CsvPathSuggester(), **kwargs)

    def action_complete(self) -> None:
        suggestion = self._suggestion
        if suggestion and suggestion != self.value and self.cursor_at_end:
            self.value = suggestion
            self.cursor_position = len(self.value)
        else:
            self.screen.focus_next()
