"""The question before a run is deleted from the Runs pane (`d`): which run, what deleting means, yes or no.

Dismissed with True only by the Delete button or `y`; Escape, `n` and the Cancel button (focused first, so a
stray Enter keeps the run) dismiss with False. The deletion itself is core.runs.delete_run, in the pane's worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

if TYPE_CHECKING:
    from core.runs import RunInfo


class ConfirmDeleteScreen(ModalScreen[bool]):
    """Asks whether to delete `run`; dismisses with True to delete."""

    DEFAULT_CSS = """
    ConfirmDeleteScreen { align: center middle; }
    ConfirmDeleteScreen > Vertical {
        width: 64; max-width: 100%; height: auto; max-height: 100%;
        border: thick $error 80%; background: $surface; padding: 0 1;
    }
    ConfirmDeleteScreen #confirm-title { text-style: bold; }
    ConfirmDeleteScreen #confirm-text { margin: 1 0; }
    ConfirmDeleteScreen Horizontal { height: auto; align-horizontal: right; }
    ConfirmDeleteScreen Button { margin-left: 2; min-width: 10; }
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Delete", id="confirm_delete.yes"),
        Binding("n,escape", "answer(False)", "Cancel", id="confirm_delete.no"),
    ]

    def __init__(self, run: RunInfo) -> None:
        super().__init__()
        self.run_info = run

    def compose(self) -> ComposeResult:
        from tui.panes.runs import short, short_judge

        run = self.run_info
        when = run.date or "no date"
        with Vertical():
            yield Static(Text(f"Delete run {short(run.name, 40)}?"), id="confirm-title")
            yield Static(Text(
                f"{run.run_id[:8]} · {when} · judge {short_judge(run.judge)} · {run.status.lower()}\n\n"
                "MLflow marks it deleted: it leaves every list. `u` in the Runs pane (or `mlflow runs restore`) "
                "brings it back until the store is garbage-collected (`mlflow gc`)."), id="confirm-text")
            with Horizontal():
                yield Button("Delete (y)", variant="error", id="confirm-yes")
                yield Button("Cancel (n)", id="confirm-no")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, delete: bool) -> None:
        self.dismiss(delete)
