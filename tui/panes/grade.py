"""The Grade pane (placeholder until issue 4 fills it)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class GradePane(Vertical):
    """Placeholder: says which issue brings this pane."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__()

    def compose(self) -> ComposeResult:
        yield Static("The Grade pane is not built yet (issue 4).", classes="muted")

    def focus_default(self) -> None:
        pass
