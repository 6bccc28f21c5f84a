"""The Proctor app: one tab per pane (Chat, Grade, Evaluate, Runs), app-wide keys, lazy warm-up of core.

The first frame must not wait for openai or mlflow (2-3 s to import each): nothing here imports them, and
`on_mount` warms openai up in a thread worker once the screen is drawn.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, TabbedContent, TabPane

from tui import quick_exit
from tui.panes.chat import ChatPane
from tui.panes.evaluate import EvaluatePane
from tui.panes.grade import GradePane
from tui.panes.runs import RunsPane
from tui.screens.main import MainScreen
from tui.widgets.fitting_footer import FittingFooter

HERE = Path(__file__).parent


def _stylesheets() -> list[Path]:
    # One stylesheet per component: the app's own first, then each pane's or widget's that has one.
    own = HERE / "proctor.tcss"
    return [own] + sorted(p for p in HERE.rglob("*.tcss") if p != own)


class ProctorApp(App[None]):
    """Proctor's Textual app. `pane` picks the pane shown first; the other arguments feed the panes."""

    TITLE = "Proctor"
    SUB_TITLE = "evaluate LLMs from the terminal"
    CSS_PATH = _stylesheets()
    # The pane keys are written on the tabs themselves, so the footer keeps its room for the pane's own keys.
    BINDINGS = [
        Binding("f2", "show_pane('chat')", "Chat", id="app.pane.chat", show=False),
        Binding("f3", "show_pane('grade')", "Grade", id="app.pane.grade", show=False),
        Binding("f4", "show_pane('evaluate')", "Evaluate", id="app.pane.evaluate", show=False),
        Binding("f5", "show_pane('runs')", "Runs", id="app.pane.runs", show=False),
        Binding("ctrl+b", "answer_benchmark", "Answer CSV", id="app.answer"),
        Binding("f1", "toggle_keys", "Keys", id="app.keys"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(self, model: str | None = None, pane: str = "chat", grade_path: str | None = None,
                 warm_up: bool = True, grade_blind: bool = False) -> None:
        super().__init__()
        self.model = model
        self.initial_pane = pane
        self.grade_path = grade_path
        self.grade_blind = grade_blind
        self._warm_up = warm_up

    def get_default_screen(self) -> Screen:
        return MainScreen(id="_default")

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial=self.initial_pane, id="panes"):
            with TabPane("Chat [dim]F2[/]", id="chat"):
                yield ChatPane(model=self.model)
            with TabPane("Grade [dim]F3[/]", id="grade"):
                yield GradePane(path=self.grade_path, blind=self.grade_blind)
            with TabPane("Evaluate [dim]F4[/]", id="evaluate"):
                yield EvaluatePane()
            with TabPane("Runs [dim]F5[/]", id="runs"):
                yield RunsPane()
        yield FittingFooter()

    def on_load(self) -> None:
        # Before any pane starts a thread worker: quitting must not wait for a worker still importing or working.
        quick_exit.install()

    def on_mount(self) -> None:
        if self._warm_up:
            self.warm_up()

    @work(thread=True, exclusive=True, group="warm-up")
    def warm_up(self) -> None:
        """Import the openai SDK and pandas off the UI thread, after the first frame, so the first question and the
        first file read are quick. (Intervals and tests need no import: core.stats uses the standard library.)"""
        from core.llm import warm_up

        warm_up()
        import pandas  # noqa: F401 - grading, answering and evaluating read their CSVs with it

    def action_show_pane(self, pane: str) -> None:
        # Drop focus first: a focused widget left in the old pane would pull its tab back to the front.
        self.screen.set_focus(None)
        self.query_one("#panes", TabbedContent).active = pane
        self.focus_pane(pane)

    def focus_pane(self, pane: str) -> None:
        """Give the keyboard to the pane's main widget, so its keys work at once."""
        found = self.screen.query(f"#{pane}")
        if not found or not isinstance(found.first(), TabPane):
            return  # the app is closing (the panes are gone), or another screen is on top
        for child in found.first().children:
            focus = getattr(child, "focus_default", None)
            if callable(focus):
                focus()
                return

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id:
            self.focus_pane(event.pane.id)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P): Proctor's own actions by name first, then Textual's (theme, keys, quit)."""
        yield SystemCommand("Answer a benchmark", "Ask a model every question of a CSV (Ctrl+B)",
                            self.action_answer_benchmark)
        yield SystemCommand("Open a CSV to grade", "Pick an answers CSV and grade it by hand (Grade pane)",
                            self.action_open_csv)
        yield SystemCommand("Start an evaluation", "Judge a model's answers with MLflow (Evaluate pane)",
                            lambda: self.action_show_pane("evaluate"))
        yield SystemCommand("Open a run", "List the evaluation runs; Enter opens one (Runs pane)",
                            lambda: self.action_show_pane("runs"))
        yield SystemCommand("Compare two runs", "Runs pane: Space marks two runs, c compares them",
                            self.action_compare_runs)
        yield SystemCommand("MLflow UI", "Start MLflow's web UI on 127.0.0.1 over the same runs",
                            self.action_mlflow_ui)
        yield SystemCommand("Chat with the model", "Ask the model under test (Chat pane)",
                            lambda: self.action_show_pane("chat"))
        yield from super().get_system_commands(screen)

    def action_open_csv(self) -> None:
        self.action_show_pane("grade")
        self.query_one(GradePane).action_open()

    def action_compare_runs(self) -> None:
        self.action_show_pane("runs")
        self.notify("Mark two runs with Space, then press c to compare them.")

    def action_mlflow_ui(self) -> None:
        self.action_show_pane("runs")
        self.query_one(RunsPane).action_mlflow_ui()

    # -- hooks the panes use to hand work to each other

    def action_answer_benchmark(self) -> None:
        """Open the "answer a benchmark" screen (pick a CSV and a model, watch progress, open in Grade).

        It starts from the model the Chat pane talks to: the one the user has just been trying."""
        from tui.widgets.answer_screen import AnswerScreen

        self.push_screen(AnswerScreen(model=self.query_one(ChatPane).model_uri))

    def open_in_grade(self, path: str) -> None:
        """Show the Grade pane on `path` (an answers CSV)."""
        self.action_show_pane("grade")
        self.query_one(GradePane).open_file(path)

    def run_logged(self, run_id: str) -> None:
        """An evaluation run ended in the app: the Runs pane lists it without waiting for `r`."""
        self.query_one(RunsPane).action_reload()

    def lend_to_evaluation(self, path: str) -> bool:
        """An evaluation of `path` starts: the Grade pane lets go of the file it writes into, if it has it open."""
        from pathlib import Path

        stem = f"{Path(path).stem}.answers."  # a benchmark's answers file: STEM.answers.MODEL.csv
        return self.query_one(GradePane).lend_file(path, stem, "an evaluation in this Proctor (Evaluate pane)")

    def evaluation_done(self) -> None:
        """The evaluation ended: the Grade pane writes its file again (reloaded with the judge's columns)."""
        self.query_one(GradePane).take_back()

    def show_run(self, run_id: str) -> None:
        """Show the Runs pane with `run_id` opened."""
        self.action_show_pane("runs")
        self.query_one(RunsPane).show_run(run_id)

    def action_toggle_keys(self) -> None:
        if self.screen.query("KeyPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()
