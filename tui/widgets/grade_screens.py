"""The Grade pane's small screens: pick a CSV to open, write a note, list the keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static

GRADE_KEYS = (
    ("y", "the answer is correct (saved, then the next row)"),
    ("n", "the answer is incorrect (saved, then the next row)"),
    ("s", "skip: next row, no verdict"),
    ("u", "undo the last verdict or note"),
    ("e", "write a note on this row"),
    ("j / ↓", "next row"),
    ("k / ↑", "previous row"),
    ("g", "next ungraded row"),
    ("b", "blind mode: hide the model, the run and the judge"),
    ("t", "table of all rows and verdicts (Enter opens a row)"),
    ("d", "step through rows where you and the judge disagree"),
    ("PgUp / PgDn", "scroll a long answer"),
    ("r", "reload the file after it changed on disk"),
    ("o", "open another CSV"),
    ("?", "this help"),
    ("q", "close the file (every verdict is already saved); Ctrl+Q quits the app"),
)


def csv_files(folder: Path | None = None) -> list[str]:
    """CSV files in `folder` (the current one by default), most recently changed first."""
    folder = folder or Path.cwd()
    try:
        files = [p for p in folder.iterdir() if p.suffix.lower() == ".csv" and p.is_file()]
    except OSError:
        return []
    return [p.name for p in sorted(files, key=lambda p: (-p.stat().st_mtime, p.name))]


class CsvPicker(Vertical):
    """Type a path or choose one of the CSV files in the current folder; posts `Picked`."""

    @dataclass
    class Picked(Message):
        path: str

    def compose(self) -> ComposeResult:
        yield Label("[b]Open an answers CSV[/]  (from `proctor answer` or `proctor evaluate`)")
        yield Input(placeholder="path/to/answers.csv  (Enter opens)", id="csv-picker-input")
        files = csv_files()
        yield Static("CSV files here:" if files else "No CSV files in this folder: type a path.", classes="muted")
        yield OptionList(*files, id="csv-picker-options")
        yield Static("", id="csv-picker-error", classes="error")

    def focus_default(self) -> None:
        options = self.query_one(OptionList)
        (options if options.option_count else self.query_one(Input)).focus()

    def show_error(self, text: str) -> None:
        self.query_one("#csv-picker-error", Static).update(Text(text))

    @on(OptionList.OptionSelected, "#csv-picker-options")
    def _picked_option(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Picked(str(event.option.prompt)))

    @on(Input.Submitted, "#csv-picker-input")
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.post_message(self.Picked(event.value.strip()))


class OpenCsvScreen(ModalScreen[str | None]):
    """Returns the path chosen, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="open_csv.cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="open-csv", classes="grade-modal"):
            yield CsvPicker()

    def on_mount(self) -> None:
        self.query_one(CsvPicker).focus_default()

    def on_csv_picker_picked(self, message: CsvPicker.Picked) -> None:
        self.dismiss(message.path)

    def action_cancel(self) -> None:
        self.dismiss(None)


class NoteScreen(ModalScreen[str | None]):
    """Edit a row's note: Enter returns the text (possibly empty), Escape returns None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="note.cancel")]

    def __init__(self, note: str, row_label: str) -> None:
        super().__init__()
        self.note = note
        self.row_label = row_label

    def compose(self) -> ComposeResult:
        with Vertical(id="note-box", classes="grade-modal"):
            yield Label(f"[b]Note on {self.row_label}[/]")
            yield Input(value=self.note, placeholder="why this verdict…", id="note-input")
            yield Static("Enter saves · Esc cancels · an empty note clears it", classes="muted")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#note-input")
    def _saved(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class GradeHelpScreen(ModalScreen[None]):
    """Every key of the Grade pane."""

    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close", id="grade_help.close"),
    ]

    def compose(self) -> ComposeResult:
        table = Text()
        for keys, what in GRADE_KEYS:
            table.append(f"{keys:>12}  ", style="bold")
            table.append(f"{what}\n")
        with Vertical(id="grade-help", classes="grade-modal"):
            yield Label("[b]Grading keys[/]")
            yield Static(table)
            yield Static("Each verdict is written to the CSV before the next row shows.  Esc closes.",
                         classes="muted")

    def action_close(self) -> None:
        self.dismiss(None)
