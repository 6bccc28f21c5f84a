"""The Evaluate pane: choose a CSV, the model, the judge and the scorers; start; watch; cancel; open the run.

Keys: Ctrl+R starts, Escape cancels, Ctrl+G opens the finished run in the Runs pane. The evaluation runs in a
thread worker through core.evaluation (which imports mlflow lazily and sends MLflow's banner and logs to
`.proctor/mlflow.log`, so nothing garbles the screen); the worker posts past-tense messages back to the pane.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, SelectionList, Static


def _csv_suggestions(folder: Path | None = None) -> list[str]:
    folder = folder or Path.cwd()
    try:
        return sorted(str(p.relative_to(folder)) for p in folder.glob("*.csv"))[:200]
    except OSError:
        return []


class EvaluatePane(Vertical):
    """A form that starts an evaluation, its live progress, and its summary."""

    BINDINGS = [
        Binding("ctrl+r", "start", "Start", id="evaluate.start"),
        Binding("escape", "cancel", "Cancel", id="evaluate.cancel"),
        Binding("ctrl+g", "open_run", "Open run", id="evaluate.open_run"),
    ]

    @dataclass
    class ProgressReported(Message):
        phase: str
        done: int
        total: int
        errors: int
        elapsed_s: float

    @dataclass
    class EvaluationFinished(Message):
        summary: Any  # core.evaluation.EvaluationSummary

    @dataclass
    class EvaluationFailed(Message):
        error: str
        cancelled: bool = False

    def __init__(self, path: str | None = None, model: str | None = None, judge: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(id="evaluate-pane")
        self.initial_path = path
        self.initial_model = model
        self.initial_judge = judge
        self.run_id: str | None = None
        self._cancel: threading.Event | None = None
        self._started_at: float | None = None
        self._last_progress: EvaluatePane.ProgressReported | None = None

    def compose(self) -> ComposeResult:
        from core.scorers import available_scorers

        with VerticalScroll(id="eval-form"):
            yield Label("[b]Benchmark or answers CSV[/]")
            yield Input(value=self.initial_path or "", placeholder="benchmark.csv (Tab completes)", id="eval-path",
                        suggester=SuggestFromList(_csv_suggestions(), case_sensitive=False))
            with Horizontal(classes="eval-row"):
                with Vertical():
                    yield Label("[b]Model[/] (answers a benchmark; labels an answers file)")
                    yield Input(value=self.initial_model or "", placeholder="default model", id="eval-model")
                with Vertical():
                    yield Label("[b]Judge[/] (none: code scorers only)")
                    yield Input(value=self.initial_judge or "", placeholder="PROCTOR_JUDGE or azure:/gpt-4.1-nano",
                                id="eval-judge")
            yield Label("[b]Scorers[/]")
            yield SelectionList[str](
                *[(f"{s.label}{'  [dim](judge)[/]' if s.needs_judge else ''}", s.name, s.default)
                  for s in available_scorers()],
                id="eval-scorers",
            )
            with Horizontal(id="eval-buttons"):
                yield Button("Start  Ctrl+R", id="eval-start", variant="primary")
                yield Button("Cancel  Esc", id="eval-cancel", disabled=True)
                yield Button("Open run  Ctrl+G", id="eval-open", disabled=True)
            yield Static("", id="eval-progress")
            yield Static("", id="eval-summary")

    def on_mount(self) -> None:
        self.set_interval(0.5, self._tick)

    def focus_default(self) -> None:
        self.query_one("#eval-path", Input).focus()

    @property
    def running(self) -> bool:
        return self._cancel is not None

    # -- starting
    @on(Button.Pressed, "#eval-start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_start()

    def action_start(self) -> None:
        if self.running:
            self.notify("An evaluation is already running (Esc cancels it).", severity="warning")
            return
        path = self.query_one("#eval-path", Input).value.strip()
        if not path:
            self.notify("Choose a CSV file first.", severity="warning")
            self.focus_default()
            return
        scorers = list(self.query_one("#eval-scorers", SelectionList).selected)
        if not scorers:
            self.notify("Choose at least one scorer.", severity="warning")
            return
        model = self.query_one("#eval-model", Input).value.strip() or None
        judge = self.query_one("#eval-judge", Input).value.strip() or None
        self._cancel = threading.Event()
        self._started_at = time.monotonic()
        self._last_progress = None
        self.run_id = None
        self._set_running(True)
        self.query_one("#eval-summary", Static).update("")
        self._show_progress("starting…")
        self.evaluate(path, model, judge, scorers, self._cancel)

    @work(thread=True, exclusive=True, group="evaluate")
    def evaluate(self, path: str, model: str | None, judge: str | None, scorers: list[str],
                 cancel: threading.Event) -> None:
        from core.errors import ProctorError
        from core.evaluation import EvaluationCancelled, evaluate_file

        last = {"t": 0.0}

        def progress(p: Any) -> None:
            now = time.monotonic()
            if now - last["t"] < 0.1 and p.phase not in ("logging", "done"):
                return  # at most ten screen updates a second
            last["t"] = now
            self.post_message(self.ProgressReported(p.phase, p.done, p.total, p.errors, p.elapsed_s))

        try:
            summary = evaluate_file(path, model=model, judge=judge, scorers=scorers, on_progress=progress,
                                    cancel=cancel)
            self.post_message(self.EvaluationFinished(summary))
        except EvaluationCancelled as error:
            self.post_message(self.EvaluationFailed(str(error), cancelled=True))
        except ProctorError as error:
            self.post_message(self.EvaluationFailed(str(error)))
        except Exception as error:  # noqa: BLE001 - a worker must report, never die silently
            self.post_message(self.EvaluationFailed(f"{type(error).__name__}: {error}"))

    # -- progress
    def on_evaluate_pane_progress_reported(self, message: ProgressReported) -> None:
        self._last_progress = message
        self._render_progress()

    def _tick(self) -> None:
        if self.running:
            self._render_progress()

    def _render_progress(self) -> None:
        p = self._last_progress
        elapsed = time.monotonic() - self._started_at if self._started_at else 0.0
        if p is None:
            self._show_progress(f"starting…  {elapsed:.0f} s")
            return
        text = f"[b]{p.phase}[/]"
        if p.total:
            text += f"  rows {p.done}/{p.total}"
        if p.errors:
            text += f"  [red]{p.errors} error(s)[/]"
        text += f"  ·  {elapsed:.0f} s elapsed"
        if self._cancel is not None and self._cancel.is_set():
            text += "  ·  cancelling…"
        self._show_progress(text)

    def _show_progress(self, text: str) -> None:
        self.query_one("#eval-progress", Static).update(text)

    def _set_running(self, running: bool) -> None:
        self.query_one("#eval-start", Button).disabled = running
        self.query_one("#eval-cancel", Button).disabled = not running
        self.query_one("#eval-open", Button).disabled = running or self.run_id is None

    # -- the end
    def on_evaluate_pane_evaluation_finished(self, message: EvaluationFinished) -> None:
        from tui.commands.evaluate import summary_rows

        summary = message.summary
        self._cancel = None
        self.run_id = summary.run_id
        self._set_running(False)
        elapsed = summary.timings.get("total_s", 0.0)
        self._show_progress(f"[green]finished[/] in {elapsed:.1f} s")
        rows = summary_rows(summary)
        width = max(len(k) for k, _ in rows)
        lines = [f"{escape(k.ljust(width))}  {escape(v)}" for k, v in rows]
        for warning in summary.warnings:
            lines.append(f"[yellow]warning:[/] {escape(warning)}")
        errors = summary.results[summary.results["judge_error"] != ""] if len(summary.results) else []
        for _, row in list(errors.iterrows())[:5] if len(errors) else []:
            lines.append(f"[red]row {row['row']}:[/] {escape(row['judge_error'])}")
        lines.append(f"run [b]{escape(summary.run_name)}[/]  id {summary.run_id}  "
                     f"(experiment {escape(summary.experiment)})  ·  Ctrl+G opens it")
        self.query_one("#eval-summary", Static).update("\n".join(lines))
        self.notify(f"Evaluation logged: run {summary.run_id[:8]}.")

    def on_evaluate_pane_evaluation_failed(self, message: EvaluationFailed) -> None:
        self._cancel = None
        self._set_running(False)
        if message.cancelled:
            self._show_progress(f"[yellow]cancelled[/]: {escape(message.error)}")
            self.notify("Evaluation cancelled.", severity="warning")
        else:
            self._show_progress(f"[red]failed[/]: {escape(message.error)}")
            self.notify(message.error, severity="error", timeout=8)

    # -- keys
    @on(Button.Pressed, "#eval-cancel")
    def action_cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self._render_progress()

    @on(Button.Pressed, "#eval-open")
    def action_open_run(self) -> None:
        if self.run_id is None:
            self.notify("No finished evaluation to open yet.", severity="warning")
            return
        self.app.show_run(self.run_id)
