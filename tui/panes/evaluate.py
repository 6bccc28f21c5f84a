"""The Evaluate pane: choose a CSV, the model, the judge and the scorers; start; watch; cancel; open the run.

Keys: Ctrl+R starts, Escape cancels (and, once a run has ended, goes back to the form), Ctrl+G opens the finished
run in the Runs pane, Ctrl+D grades its answers in the Grade pane. While a run goes, the form gives way to a live
view on the first screen (phase, rows, rate, ETA, errors), which ends in the summary: at 80x24 nothing a person
waits for is below the fold. Several models, comma-separated in the Model field, answer a benchmark at once and
are compared with the first (core.multi_eval): one run each, then the paired comparison's sentences. The evaluation
runs in a thread worker through core.evaluation (which imports mlflow lazily and sends MLflow's banner and logs to
`.proctor/mlflow.log`, so nothing garbles the screen); the worker posts past-tense messages back to the pane.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Input, Label, ProgressBar, Static

from core.safety import one_line, printable, shown
from tui import untrusted
from tui.widgets.check_list import CheckList, TextCheckbox
from tui.widgets.path_input import PathInput

PHASES = {
    "reading": "reading the CSV",
    "checking": "checking the MLflow store",
    "answering": "answering",
    "store set-up": "setting up the MLflow store (once per machine)",
    "judging": "judging",
    "logging": "logging to MLflow",
    "done": "done",
}


class EvaluatePane(Vertical):
    """A form that starts an evaluation, its live progress, and its summary."""

    BINDINGS = [
        Binding("ctrl+r", "start", "Start", id="evaluate.start"),
        Binding("escape", "cancel", "Cancel", id="evaluate.cancel"),
        Binding("ctrl+g", "open_run", "Open run", id="evaluate.open_run"),
        Binding("ctrl+d", "grade", "Grade", id="evaluate.grade"),
    ]

    @dataclass
    class ProgressReported(Message):
        phase: str
        done: int
        total: int
        errors: int
        elapsed_s: float
        message: str = ""
        correct: int = 0
        scored: int = 0

    @dataclass
    class EvaluationFinished(Message):
        summary: Any  # core.evaluation.EvaluationSummary

    @dataclass
    class ComparisonFinished(Message):
        result: Any  # core.multi_eval.MultiEvaluation

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
        self.answers_file: str | None = None
        self._path: str | None = None
        self._lent = False
        self._cancel: threading.Event | None = None
        self._started_at: float | None = None
        self._last_progress: EvaluatePane.ProgressReported | None = None

    def compose(self) -> ComposeResult:
        from core.scorers import available_scorers

        yield Static("", id="eval-status")
        with VerticalScroll(id="eval-form"):
            with Horizontal(classes="eval-field"):
                yield Label("CSV", classes="eval-label")
                yield PathInput(value=self.initial_path or "", id="eval-path",
                                placeholder="benchmark or answers CSV (Tab completes)", compact=True)
            with Horizontal(classes="eval-field"):
                yield Label("Model", classes="eval-label")
                yield Input(value=self.initial_model or "", id="eval-model", compact=True,
                            placeholder="default model; several, comma-separated, are compared with the first")
            with Horizontal(classes="eval-field"):
                yield Label("Judge", classes="eval-label")
                yield Input(value=self.initial_judge or "", placeholder="none: code scorers only", id="eval-judge",
                            compact=True)
            yield Static("", id="eval-judge-note", classes="muted")
            yield Label("[b]Scorers[/] (Space toggles)")
            yield CheckList(*self._scorer_options(available_scorers()), id="eval-scorers")
            yield TextCheckbox("Fresh: ask a benchmark's questions again (else earlier answers are reused)",
                           id="eval-fresh", compact=True)
            with Horizontal(id="eval-buttons"):
                yield Button("Start  Ctrl+R", id="eval-start", variant="primary", compact=True)
        with Vertical(id="eval-live"):
            yield Static("", id="eval-phase")
            yield ProgressBar(id="eval-bar", show_eta=False)
            yield Static("", id="eval-progress")
            with VerticalScroll(id="eval-summary-box"):
                yield Static("", id="eval-summary")
            yield Static("", id="eval-keys", classes="muted")

    @staticmethod
    def _scorer_options(scorers: list[Any]) -> list[tuple[str, str, bool]]:
        return [(s.label + ("  (judge)" if s.needs_judge else ""), s.name, s.default) for s in scorers]

    def on_mount(self) -> None:
        self.query_one("#eval-live").display = False
        self._show_default_judge()
        self._status("Fill in the form, then Ctrl+R starts.  Results stay on this screen.")
        self.set_interval(0.5, self._tick)

    def _show_default_judge(self) -> None:
        from core.config import load_settings
        from core.errors import ProctorError
        from core.judges import default_judge

        note = self.query_one("#eval-judge-note", Static)
        try:
            judge = default_judge(load_settings())
        except ProctorError as error:
            note.update(Text(f"judge settings: {shown(error)}"))
            return
        field = self.query_one("#eval-judge", Input)
        if judge:
            field.placeholder = judge
            note.update(Text(f"empty: {judge} (the default) · none: code scorers only"))
        else:
            note.update(Text("no default judge (PROCTOR_JUDGE): code scorers only unless you name one"))

    def _shown(self) -> bool:
        """True when this pane is the one on screen (its tab is the active one)."""
        return all(node.display for node in self.ancestors_with_self if isinstance(node, Widget))

    def _status(self, text: str | Text) -> None:
        self.query_one("#eval-status", Static).update(text if isinstance(text, Text) else Text(text))

    def _show_live(self, live: bool) -> None:
        self.query_one("#eval-form").display = not live
        self.query_one("#eval-live").display = live
        self.refresh_bindings()
        if live:
            # The form's field had the keyboard; hidden, it would leave the pane's keys with no focused widget.
            self.query_one("#eval-summary-box").focus()

    def focus_default(self) -> None:
        self.focus_target().focus()

    def focus_target(self) -> Widget:
        """The widget that takes the keyboard when the pane is shown."""
        if self.query_one("#eval-live").display:
            return self.query_one("#eval-summary-box")
        return self.query_one("#eval-path", Input)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The footer shows only the keys that do something now, so that it fits 80 columns.
        if action == "start":
            return not self.running
        if action == "cancel":
            return self.running or bool(self.query_one("#eval-live").display)
        if action == "open_run":
            return self.run_id is not None and not self.running
        if action == "grade":
            return self.answers_file is not None and not self.running
        return True

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
        scorers = list(self.query_one("#eval-scorers", CheckList).selected)
        if not scorers:
            self.notify("Choose at least one scorer.", severity="warning")
            return
        model = self.query_one("#eval-model", Input).value.strip() or None
        judge = self.query_one("#eval-judge", Input).value.strip() or None
        fresh = self.query_one("#eval-fresh", TextCheckbox).value
        self._cancel = threading.Event()
        self._started_at = time.monotonic()
        self._last_progress = None
        self.run_id = None
        self.answers_file = None
        self._path = path
        self._set_running(True)
        self.query_one("#eval-summary", Static).update("")
        bar = self.query_one("#eval-bar", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self._show_live(True)
        self._status(Text(f"Evaluating {one_line(path)}", style="bold"))
        self._show_progress("starting…")
        # The judge's columns go into the answers file: a Grade pane writing it lets go until the end.
        lend = getattr(self.app, "lend_to_evaluation", None)
        self._lent = bool(lend(path)) if callable(lend) else False
        self.evaluate(path, model, judge, scorers, self._cancel, fresh)

    @work(thread=True, exclusive=True, group="evaluate")
    def evaluate(self, path: str, model: str | None, judge: str | None, scorers: list[str],
                 cancel: threading.Event, fresh: bool = False) -> None:
        from core.errors import ProctorError
        from core.evaluation import EvaluationCancelled, evaluate_file
        from core.multi_eval import evaluate_models

        last = {"t": 0.0}

        def progress(p: Any) -> None:
            now = time.monotonic()
            if now - last["t"] < 0.1 and p.phase not in ("logging", "done"):
                return  # at most ten screen updates a second
            last["t"] = now
            self.post_message(self.ProgressReported(p.phase, p.done, p.total, p.errors, p.elapsed_s, p.message,
                                                   p.correct, p.scored))

        models = [m.strip() for m in (model or "").split(",") if m.strip()]
        try:
            if len(models) > 1:
                result = evaluate_models(path, models, judge=judge, scorers=scorers, on_progress=progress,
                                         cancel=cancel, fresh=fresh)
                self.post_message(self.ComparisonFinished(result))
                return
            summary = evaluate_file(path, model=models[0] if models else None, judge=judge, scorers=scorers,
                                    on_progress=progress, cancel=cancel, fresh=fresh)
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
        phase = self.query_one("#eval-phase", Static)
        if p is None:
            phase.update(Text.assemble(("starting", "bold"), f"  ·  {elapsed:.0f} s"))
            return
        line = Text.assemble((PHASES.get(p.phase, p.phase), "bold"), f"  ·  {elapsed:.0f} s elapsed")
        if self._cancel is not None and self._cancel.is_set():
            line.append("  ·  cancelling…", style="yellow")
        phase.update(line)
        bar = self.query_one("#eval-bar", ProgressBar)
        if p.total:
            bar.update(total=p.total, progress=p.done)
        else:
            bar.update(total=None)
        details = Text()
        if p.total:
            if p.phase == "store set-up":  # a new store: MLflow's schema migrations, counted
                details.append(f"migrations {p.done}/{p.total}")
            else:
                noun = "judged" if p.phase in ("judging", "logging", "done") else "answered"
                details.append(f"rows {noun} {p.done}/{p.total}")
            rate = p.done / p.elapsed_s if p.elapsed_s > 0 else 0.0
            if rate > 0 and p.done < p.total:
                details.append(f" · {rate:.1f} rows/s · ETA {(p.total - p.done) / rate:.0f} s")
        if p.scored:
            details.append(f" · running accuracy {100 * p.correct / p.scored:.0f}% ({p.correct}/{p.scored})")
        if p.errors:
            details.append(f" · {p.errors} error(s)", style="red")
        if p.message and not p.total:
            details.append(printable(p.message))
        self.query_one("#eval-progress", Static).update(details)

    def _show_progress(self, text: str | Text) -> None:
        self.query_one("#eval-phase", Static).update(text if isinstance(text, Text) else Text(text))

    def _set_running(self, running: bool) -> None:
        self.refresh_bindings()
        self.query_one("#eval-start", Button).disabled = running
        keys = "Esc cancels (answers so far are kept)" if running else (
            "Ctrl+G open the run  ·  Ctrl+D grade the answers  ·  Esc back to the form  ·  Ctrl+R run again"
            if self.run_id else "Esc back to the form  ·  Ctrl+R run again")
        self.query_one("#eval-keys", Static).update(keys)

    # -- the end
    def on_evaluate_pane_evaluation_finished(self, message: EvaluationFinished) -> None:
        from tui.commands.evaluate import summary_rows

        summary = message.summary
        self._cancel = None
        self._give_back()
        self.run_id = summary.run_id
        self.answers_file = str(summary.answers_file) if summary.answers_file else self._path
        self._set_running(False)
        elapsed = summary.timings.get("total_s", 0.0)
        self._show_progress(Text.assemble(("finished", "bold green"), f" in {elapsed:.1f} s"))
        self._status(Text.assemble(("Evaluation logged", "bold green"), f": run {one_line(summary.run_name)}"))
        rows = summary_rows(summary)
        width = max(len(k) for k, _ in rows)
        # Values, warnings and judge errors hold outside words: one printable line each, in Text (never markup).
        text = Text()
        for key, value in rows:
            text.append(f"{key.ljust(width)}  {one_line(value)}\n")
        for warning in summary.warnings:
            text.append("warning: ", style="yellow")
            text.append(f"{one_line(warning)}\n")
        errors = summary.results[summary.results["judge_error"] != ""] if len(summary.results) else []
        for _, row in list(errors.iterrows())[:5] if len(errors) else []:
            text.append(f"row {row['row']}: ", style="red")
            text.append(f"{one_line(row['judge_error'])}\n")
        text.append(f"run {one_line(summary.run_name)}  id {summary.run_id}  "
                    f"(experiment {one_line(summary.experiment)})")
        if summary.judged_file is not None:
            synced = f", {summary.human_synced} human verdict(s) sent to the run" if summary.human_synced else ""
            text.append(f"\njudge's verdicts written into {one_line(summary.judged_file.name)}{synced}: Ctrl+D "
                        "grades it with the judge beside you")
        self.query_one("#eval-summary", Static).update(text)
        self.query_one("#eval-bar", ProgressBar).display = False  # the summary says it is done
        if not self._shown():  # the pane shows the summary itself; a toast is for someone on another pane
            untrusted.notify(self, f"Evaluation logged: run {summary.run_id[:8]}.")
        runs = getattr(self.app, "run_logged", None)
        if callable(runs):
            runs(summary.run_id)

    def on_evaluate_pane_comparison_finished(self, message: ComparisonFinished) -> None:
        from core.prices import format_cost
        from core.runs import paired_lines
        from core.safety import printable

        result = message.result
        self._cancel = None
        self._give_back()
        first = result.summaries[0]
        self.run_id = first.run_id
        self.answers_file = str(first.answers_file) if first.answers_file else self._path
        self._set_running(False)
        self._show_progress(Text.assemble(("finished", "bold green"),
                                          f" {len(result.summaries)} models in "
                                          f"{result.timings.get('total_s', 0.0):.1f} s"))
        self._status(Text.assemble(("Comparison logged", "bold green"),
                                   f": {len(result.summaries)} runs, tag proctor.comparison={result.comparison_id}"))
        text = Text()
        for summary in result.summaries:
            m = summary.metrics
            accuracy, low, high = m.get("accuracy"), m.get("accuracy_ci_low"), m.get("accuracy_ci_high")
            shown = "-" if accuracy is None else f"{accuracy * 100:.1f}%"
            if accuracy is not None and low is not None and high is not None:
                shown += f" (95% CI {low * 100:.1f}-{high * 100:.1f}%)"
            text.append(printable(summary.model), style="bold")
            text.append(f"  accuracy {shown}  ·  cost {format_cost(m.get('cost_usd'))}  ·  run "
                        f"{summary.run_id[:8]}\n")
        for warning in result.warnings + [w for s in result.summaries for w in s.warnings]:
            text.append("warning: ", style="yellow")
            text.append(f"{printable(warning)}\n")
        for comparison in result.comparisons:
            text.append(printable(f"\nA {comparison.a.model} vs B {comparison.b.model}\n"), style="bold")
            for line in paired_lines(comparison):
                text.append(f"{printable(line)}\n")
        text.append("\nCtrl+G opens the first run; in Runs, Space marks two and c compares them.")
        self.query_one("#eval-summary", Static).update(text)
        self.notify(f"Comparison logged: {len(result.summaries)} runs.")
        runs = getattr(self.app, "run_logged", None)
        if callable(runs):
            runs(first.run_id)

    def _give_back(self) -> None:
        if self._lent:
            self._lent = False
            self.app.evaluation_done()

    def on_evaluate_pane_evaluation_failed(self, message: EvaluationFailed) -> None:
        self._cancel = None
        self.query_one("#eval-bar", ProgressBar).display = False  # an idle bar would pulse forever
        self._give_back()
        self._set_running(False)
        if message.cancelled:
            self._show_progress(Text.assemble(("cancelled", "bold yellow"), f": {shown(message.error)}"))
            self._status(Text("Evaluation cancelled: Esc goes back to the form.", style="yellow"))
            self.notify("Evaluation cancelled.", severity="warning")
        else:
            self._show_progress(Text.assemble(("failed", "bold red"), f": {shown(message.error)}"))
            self._status(Text("Evaluation failed: Esc goes back to the form.", style="red"))
            if not self._shown():  # the pane shows the error itself; a toast is for someone on another pane
                untrusted.notify(self, message.error, severity="error", timeout=8)

    # -- keys
    def action_cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self._render_progress()
        elif self.query_one("#eval-live").display:
            self._show_live(False)
            self._status("Fill in the form, then Ctrl+R starts.")
            self.focus_default()

    def action_open_run(self) -> None:
        if self.run_id is None:
            self.notify("No finished evaluation to open yet.", severity="warning")
            return
        self.app.show_run(self.run_id)

    def action_grade(self) -> None:
        if self.answers_file is None:
            self.notify("No evaluated answers file to grade yet.", severity="warning")
            return
        self.app.open_in_grade(self.answers_file)
