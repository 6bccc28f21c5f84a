"""The "answer a benchmark" modal: pick a CSV and a model, watch the answers arrive, cancel, open them in Grade.

Answering runs core.benchmark.answer_benchmark in a thread worker (it is blocking and runs its own event loop);
its progress comes back as past-tense messages. Cancelling keeps every answer received (they are in the file, and
the same benchmark answered again resumes). The screen returns the answers file's path, or None if there is none.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from core.safety import shown
from tui import untrusted
from tui.widgets.path_input import PathInput

MAX_SUGGESTIONS = 30


def csv_suggestions(folder: Path | None = None) -> list[str]:
    """CSV files in `folder` (the current one) worth offering: benchmark.csv first, then answers files last."""
    folder = folder or Path.cwd()
    try:
        names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".csv" and p.is_file()
                       and not p.name.startswith("."))
    except OSError:
        return []
    names.sort(key=lambda n: (n != "benchmark.csv", ".answers." in n, n.lower()))
    return names[:MAX_SUGGESTIONS]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class AnswerScreen(ModalScreen[str | None]):
    """Answer a benchmark CSV with a model. Returns the answers file's path (None when nothing was written)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel / close", id="answer.cancel"),
        Binding("ctrl+s", "start", "Start", id="answer.start"),
        Binding("ctrl+g", "open_in_grade", "Open in Grade", id="answer.open_in_grade"),
    ]
    DEFAULT_CSS = """
    AnswerScreen { align: center middle; }
    #answer-dialog { width: 84; max-width: 95%; height: auto; max-height: 95%; border: round $accent;
                     background: $surface; padding: 0 1; }
    #answer-body { height: auto; max-height: 13; }
    .answer-field { height: 1; margin-top: 1; }
    .answer-label { width: 7; }
    #answer-files { height: auto; max-height: 4; }
    #answer-error { color: $error; height: auto; }
    #answer-status { height: auto; min-height: 1; }
    #answer-buttons { height: auto; margin-top: 1; }  /* compact buttons: the dialog fits 80x24 */
    #answer-buttons Button { margin-right: 1; }
    """

    @dataclass
    class ProgressReported(Message):
        progress: object  # core.benchmark.Progress

    @dataclass
    class AnsweringFinished(Message):
        summary: object  # core.benchmark.AnswerSummary

    @dataclass
    class AnsweringFailed(Message):
        error: str

    def __init__(self, path: str | None = None, model: str | None = None) -> None:
        super().__init__()
        self.initial_path = path
        self.initial_model = model
        self.running = False
        self._force_next = False  # the last start was refused for want of --force: the next one forces
        self.out_path: str | None = None
        self.summary = None
        self._cancel = threading.Event()

    def compose(self) -> ComposeResult:
        suggestions = csv_suggestions()
        path = self.initial_path or ("benchmark.csv" if "benchmark.csv" in suggestions else "")
        with Vertical(id="answer-dialog"):
            yield Label("[b]Answer a benchmark[/]")
            # The body scrolls and the buttons stay: at 60x20 the dialog must still show how to start and close.
            with VerticalScroll(id="answer-body"):
                yield Static("A CSV with a question column; the answers go beside it, ready for Grade.",
                             classes="muted")
                with Horizontal(classes="answer-field"):
                    yield Label("CSV", classes="answer-label")
                    yield PathInput(value=path, placeholder="benchmark.csv (Tab completes)", id="answer-path",
                                    compact=True)
                yield OptionList(*(Option(untrusted.line(name), id=name) for name in suggestions),
                                 id="answer-files")
                with Horizontal(classes="answer-field"):
                    yield Label("Model", classes="answer-label")
                    yield Input(value=self.initial_model or self._default_model(), placeholder="azure:/gpt-4.1-nano",
                                id="answer-model", compact=True)
                yield Static("", id="answer-error", classes="error")
                yield ProgressBar(total=None, show_eta=False, id="answer-progress")
                yield Static("", id="answer-status")
            with Horizontal(id="answer-buttons"):
                yield Button("Start", variant="primary", id="answer-start", compact=True)
                yield Button("Cancel", variant="error", id="answer-stop", compact=True)
                yield Button("Open in Grade", variant="success", id="answer-open", compact=True)
                yield Button("Close", id="answer-close", compact=True)

    @staticmethod
    def _default_model() -> str:
        from core.config import load_settings
        from core.errors import ProctorError

        try:
            return load_settings().default_model
        except ProctorError:
            return ""  # the Start check names the missing setting

    def on_mount(self) -> None:
        files = self.query_one("#answer-files", OptionList)
        files.display = files.option_count > 0
        self._show_state()
        self.query_one("#answer-path", Input).focus()

    # -- state

    def _show_state(self) -> None:
        done = self.out_path is not None and not self.running
        self.query_one("#answer-start", Button).display = not self.running
        self.query_one("#answer-start", Button).label = "Start again" if done else "Start"
        self.query_one("#answer-stop", Button).display = self.running
        self.query_one("#answer-open", Button).display = done
        self.query_one("#answer-close", Button).display = not self.running
        self.query_one("#answer-progress", ProgressBar).display = self.running or done
        for widget in self.query(Input):
            widget.disabled = self.running
        self.query_one("#answer-files", OptionList).disabled = self.running

    # Errors and statuses name files and carry server words: scrubbed, printable, never read as markup.
    def _error(self, text: str) -> None:
        self.query_one("#answer-error", Static).update(untrusted.plain(shown(text)))

    def _status(self, text: str) -> None:
        self.query_one("#answer-status", Static).update(untrusted.plain(text))

    # -- starting

    @on(OptionList.OptionSelected, "#answer-files")
    def picked(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#answer-path", Input).value = event.option.id or str(event.option.prompt)
        self.query_one("#answer-model", Input).focus()

    @on(Input.Changed)
    def _inputs_changed(self) -> None:
        if self._force_next:  # another file or model: a replace offered for the old one no longer applies
            self._force_next = False
            self._show_state()

    @on(Input.Submitted, "#answer-path")
    def path_submitted(self) -> None:
        self.query_one("#answer-model", Input).focus()

    @on(Input.Submitted, "#answer-model")
    @on(Button.Pressed, "#answer-start")
    def action_start(self) -> None:
        if self.running:
            return
        from core.config import load_settings, resolve_model
        from core.errors import ProctorError

        path = self.query_one("#answer-path", Input).value.strip()
        if not path:
            self._error("Name a benchmark CSV.")
            self.query_one("#answer-path", Input).focus()
            return
        if not Path(path).is_file():
            self._error(f"{path}: no such file")
            self.query_one("#answer-path", Input).focus()
            return
        try:
            spec = resolve_model(self.query_one("#answer-model", Input).value.strip() or None, load_settings())
        except ProctorError as error:
            self._error(str(error))
            self.query_one("#answer-model", Input).focus()
            return
        self._error("")
        force, self._force_next = self._force_next, False
        self.running = True
        self.out_path = None
        self.summary = None
        self._cancel = threading.Event()
        bar = self.query_one("#answer-progress", ProgressBar)
        bar.update(total=None, progress=0)
        self._status(f"Reading {path}…")
        self._show_state()
        self.query_one("#answer-stop", Button).focus()
        self.answer(path, spec.uri, self._cancel, force)

    @work(thread=True, exclusive=True, group="answer-benchmark")
    def answer(self, path: str, model: str, cancel: threading.Event, force: bool = False) -> None:
        from core.benchmark import answer_benchmark
        from core.errors import ProctorError

        try:
            summary = answer_benchmark(path, model=model, cancel=cancel, force=force,
                                       on_progress=lambda p: self.post_message(self.ProgressReported(p)))
        except ProctorError as error:
            self.post_message(self.AnsweringFailed(str(error)))
        except Exception as error:  # noqa: BLE001 - a worker must report, never die silently
            self.post_message(self.AnsweringFailed(f"{type(error).__name__}: {error}"))
        else:
            self.post_message(self.AnsweringFinished(summary))

    # -- progress

    def on_answer_screen_progress_reported(self, message: ProgressReported) -> None:
        if not self.running:
            return
        p = message.progress
        self.query_one("#answer-progress", ProgressBar).update(total=max(p.total, 1) if p.total else 1,
                                                               progress=p.done if p.total else 1)
        parts = [f"{p.done}/{p.total} rows", f"{p.rate:.1f}/s", f"ETA {_duration(p.eta_s)}", f"errors {p.failed}"]
        if p.already_done:
            parts.append(f"{p.already_done} already done")
        if p.skipped:
            parts.append(f"{p.skipped} empty")
        suffix = " · cancelling…" if self._cancel.is_set() else ""
        self._status(" · ".join(parts) + suffix)

    def on_answer_screen_answering_finished(self, message: AnsweringFinished) -> None:
        summary = message.summary
        self.running = False
        self.summary = summary
        self.out_path = str(Path(summary.out).resolve())  # absolute: the Grade pane must not depend on the cwd
        head = "Cancelled" if summary.cancelled else "Done"
        parts = [f"{summary.answered} answered", f"{summary.failed} failed"]
        if summary.already_done:
            parts.append(f"{summary.already_done} already done")
        if summary.skipped:
            parts.append(f"{summary.skipped} empty")
        if summary.not_sent:
            parts.append(f"{summary.not_sent} not sent")
        text = f"{head}: {', '.join(parts)}. Saved in {summary.out}."
        if summary.latency_mean_s is not None:
            text += f"\nLatency mean {summary.latency_mean_s:.2f} s, p95 {summary.latency_p95_s:.2f} s."
        if summary.cancelled or summary.failed:
            text += "\nStart again to answer the rest: answered rows are not sent again."
        self._status(text)
        if summary.warnings:
            self._error("\n".join(summary.warnings))
        self._show_state()
        self.query_one("#answer-open", Button).focus()

    def on_answer_screen_answering_failed(self, message: AnsweringFailed) -> None:
        self.running = False
        self._status("")
        self._error(message.error)
        self._show_state()
        if "--force" in message.error:
            # The CLI's --force, offered here as a second Start: the file's rows are copied to a backup first.
            self._force_next = True
            self._status("Start again replaces that file; its rows and verdicts are first copied to a backup.")
            self.query_one("#answer-start", Button).label = "Replace (backup first)"

    # -- leaving

    @on(Button.Pressed, "#answer-stop")
    def action_cancel(self) -> None:
        if self.running:
            self._cancel.set()
            self._status("Cancelling… (answers received are kept)")
            return
        self.dismiss(self.out_path)

    @on(Button.Pressed, "#answer-close")
    def close(self) -> None:
        if not self.running:
            self.dismiss(self.out_path)

    @on(Button.Pressed, "#answer-open")
    def action_open_in_grade(self) -> None:
        if self.running or self.out_path is None:
            return
        out = self.out_path
        self.dismiss(out)
        opener = getattr(self.app, "open_in_grade", None)
        if callable(opener):
            opener(out)
