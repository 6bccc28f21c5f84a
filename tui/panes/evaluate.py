"""The Evaluate pane (placeholder until issue 5 fills it)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class EvaluatePane(Vertical):
    """Placeholder: says which issue brings this pane."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__()

    def compose(self) -> ComposeResult:
        yield Static("The Evaluate pane is not built yet (issue 5).", classes="muted")

    def focus_default(self) -> None:
        pass
