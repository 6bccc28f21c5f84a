"""The Grade pane's small screens: pick a CSV to open, write a note, list the keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from core.safety import printable, shown
from tui import untrusted
from tui.widgets.path_input import PathInput

MAX_DESCRIBED = 50  # reading every CSV of a big folder would keep a worker busy for nothing

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
    """Type a path (Enter opens what is typed, Tab completes it) or choose from the CSV files here (Down moves
    into the list, which tells for each file its rows, how many are graded and whether a judge has judged it).
    Posts `Picked`."""

    BINDINGS = [Binding("down", "to_list", "Files", show=False, id="csv_picker.to_list")]

    @dataclass
    class Picked(Message):
        path: str

    @dataclass
    class FilesDescribed(Message):
        descriptions: dict[str, str]

    def compose(self) -> ComposeResult:
        yield Label("[b]Open an answers CSV[/]  (from `proctor answer` or `proctor evaluate`)")
        yield PathInput(placeholder="path/to/answers.csv  (Enter opens, Tab completes, ↓ lists)",
                        id="csv-picker-input")
        yield Static("", id="csv-picker-heading", classes="muted")
        yield OptionList(id="csv-picker-options")
        yield Static("", id="csv-picker-error", classes="error")

    def on_mount(self) -> None:
        self.refresh_files()

    def refresh_files(self) -> None:
        """List the CSV files here again (files made since are offered), then describe each in a worker."""
        files = csv_files()
        self.query_one("#csv-picker-heading", Static).update(
            "CSV files here (↓ to choose):" if files else "No CSV files in this folder: type a path.")
        options = self.query_one("#csv-picker-options", OptionList)
        options.clear_options()
        # File names are shown printable and never as markup; the option's id keeps the real name.
        options.add_options([Option(untrusted.line(name), id=name) for name in files])
        if files:
            self._describe(files)

    @work(thread=True, exclusive=True, group="csv-picker")
    def _describe(self, files: list[str]) -> None:
        from core.overview import describe_csv

        self.post_message(self.FilesDescribed({name: describe_csv(name) for name in files[:MAX_DESCRIBED]}))

    def on_csv_picker_files_described(self, message: FilesDescribed) -> None:
        options = self.query_one("#csv-picker-options", OptionList)
        for name, description in message.descriptions.items():
            try:
                options.replace_option_prompt(name, Text.assemble(name, ("  " + description, "dim")))
            except OptionDoesNotExist:
                continue  # the list was refreshed meanwhile

    def focus_default(self) -> None:
        self.focus_target().focus()

    def focus_target(self) -> Widget:
        # What is typed wins: focus starts in the path field; the list is a helper one key away.
        return self.query_one(PathInput)

    def action_to_list(self) -> None:
        options = self.query_one(OptionList)
        if options.option_count and self.query_one(PathInput).has_focus:
            options.focus()
            if options.highlighted is None:
                options.highlighted = 0

    def show_error(self, text: str) -> None:
        self.query_one("#csv-picker-error", Static).update(untrusted.plain(shown(text)))

    @on(OptionList.OptionSelected, "#csv-picker-options")
    def _picked_option(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Picked(str(event.option.id)))

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
            yield Input(value=printable(self.note), placeholder="why this verdict…", id="note-input")
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
