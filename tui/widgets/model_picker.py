"""A modal that asks for a model URI, offering the configured ones, and checks it before accepting."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static

from core.safety import shown
from tui import untrusted


class ModelPickerScreen(ModalScreen[str | None]):
    """Returns the chosen model URI, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="model_picker.cancel")]
    DEFAULT_CSS = """
    ModelPickerScreen { align: center middle; }
    #model-picker { width: 70; max-width: 95%; height: auto; border: round $accent; background: $surface;
                    padding: 0 1; }
    #model-picker OptionList { height: auto; max-height: 8; }
    #model-picker-error { color: $error; height: auto; }
    """

    def __init__(self, current: str | None = None, title: str = "Choose a model") -> None:
        super().__init__()
        self.current = current
        self.title_text = title

    def compose(self) -> ComposeResult:
        from core.config import suggested_models

        with Vertical(id="model-picker"):
            yield Label(f"[b]{self.title_text}[/]")
            yield Static("azure:/DEPLOYMENT · openai:/MODEL · local:/smollm2", classes="muted")
            yield Input(value=self.current or "", placeholder="azure:/gpt-4.1-nano", id="model-picker-input")
            yield OptionList(*suggested_models(), id="model-picker-options")
            yield Static("", id="model-picker-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(OptionList.OptionSelected)
    def picked(self, event: OptionList.OptionSelected) -> None:
        self._accept(str(event.option.prompt))

    @on(Input.Submitted)
    def typed(self, event: Input.Submitted) -> None:
        self._accept(event.value)

    def _accept(self, uri: str) -> None:
        from core.config import resolve_model
        from core.errors import ProctorError

        try:
            spec = resolve_model(uri.strip())
        except ProctorError as error:
            self.query_one("#model-picker-error", Static).update(untrusted.plain(shown(error)))
            return
        self.dismiss(spec.uri)

    def action_cancel(self) -> None:
        self.dismiss(None)
