"""The Proctor app: one tab per pane (Chat, Grade, Evaluate, Runs), app-wide keys, lazy warm-up of core.

The first frame waits for as little as possible (README, "Start-up and quitting"): nothing here imports openai,
mlflow or pandas; only the pane shown first is built before it; the other panes' modules are imported in a thread worker
once the screen is drawn, and the panes are mounted into their (empty until then) tabs; openai and pandas are
warmed up in a thread worker after that. Code that needs a pane goes through `with_pane`, which waits
for the pane (building it at once if need be) instead of assuming it is there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widget import AwaitMount, Widget
from textual.widgets import Header, TabbedContent, TabPane

from tui import quick_exit
from tui.screens.main import MainScreen
from tui.widgets.fitting_footer import FittingFooter

HERE = Path(__file__).parent

# Each pane's tab title and the module that holds it, in tab order.
PANES: dict[str, tuple[str, str]] = {
    "chat": ("Chat [dim]F2[/]", "tui.panes.chat"),
    "grade": ("Grade [dim]F3[/]", "tui.panes.grade"),
    "evaluate": ("Evaluate [dim]F4[/]", "tui.panes.evaluate"),
    "runs": ("Runs [dim]F5[/]", "tui.panes.runs"),
}


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
        self._tabs: dict[str, TabPane] = {}
        self._panes: dict[str, Widget] = {}  # built (mounted, or being mounted)
        self._mounting: dict[str, AwaitMount] = {}  # awaited: the pane is mounted
        self._waiting: dict[str, list[Callable[[Any], object]]] = {}  # calls for a pane not mounted yet
        self._asked_for: str | None = None  # the pane last shown before it was mounted: shown again once it is
        self._held_keys: list[events.Key] | None = None  # keys typed while F2-F5 waits for a pane being built

    @dataclass
    class PanesImported(Message):
        """The worker has imported the modules of the panes not built yet."""

    PRIORITY_KEYS = frozenset(binding.key for binding in BINDINGS if binding.priority)

    def get_default_screen(self) -> Screen:
        return MainScreen(id="_default")

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial=self.initial_pane, id="panes"):
            for pane_id, (title, _) in PANES.items():
                with TabPane(title, id=pane_id) as tab:
                    self._tabs[pane_id] = tab
                    if pane_id == self.initial_pane:
                        self._panes[pane_id] = pane = self._new_pane(pane_id)
                        yield pane
        yield FittingFooter()

    def _new_pane(self, pane_id: str) -> Widget:
        module = importlib.import_module(PANES[pane_id][1])
        if pane_id == "chat":
            return module.ChatPane(model=self.model)
        if pane_id == "grade":
            return module.GradePane(path=self.grade_path, blind=self.grade_blind)
        if pane_id == "evaluate":
            return module.EvaluatePane()
        return module.RunsPane()

    def on_load(self) -> None:
        # Before any pane starts a thread worker: quitting must not wait for a worker still importing or working.
        quick_exit.install()

    def on_mount(self) -> None:
        self._run_waiting(self.initial_pane)  # composed with the app: mounted by now
        # After the first frame is on screen: it waits for neither the other panes nor the warm-up.
        self.call_after_refresh(self._after_first_frame)

    def _after_first_frame(self) -> None:
        self.import_panes()

    @work(thread=True, group="panes")
    def import_panes(self) -> None:
        """Import the other panes' modules off the UI thread (Textual widgets, DataTable: about 0.5 s), and the
        chat's Markdown messages (markdown-it), which the first question would otherwise wait for."""
        for pane_id, (_, module) in PANES.items():
            if pane_id not in self._panes:
                importlib.import_module(module)
        importlib.import_module("tui.widgets.chat_message")
        self.post_message(self.PanesImported())

    def on_proctor_app_panes_imported(self, _: PanesImported) -> None:
        for pane_id in PANES:
            self._build(pane_id)
        if self._warm_up:
            self.warm_up()  # after the panes: it would only slow their imports down

    def _build(self, pane_id: str) -> None:
        """Build the pane and mount it in its tab, unless done already; then run the calls that waited for it."""
        if pane_id in self._panes or not self._tabs[pane_id].is_attached:
            return  # built already, or the app is closing
        self._panes[pane_id] = pane = self._new_pane(pane_id)
        self._mounting[pane_id] = mounting = self._tabs[pane_id].mount(pane)
        # Awaited in a worker, not here: the keys pressed meanwhile are handled while the pane composes.
        self.run_worker(self._mounted(pane_id, mounting), group="panes")

    async def _mounted(self, pane_id: str, mounting: AwaitMount) -> None:
        await mounting
        self._run_waiting(pane_id)
        if self._asked_for == pane_id:
            # Shown before it was there (and a focus event still queued may have pulled the old tab back since):
            # show it and give it the keyboard now.
            self._asked_for = None
            self.query_one("#panes", TabbedContent).active = pane_id
            self.focus_pane(pane_id, now=True)

    def _run_waiting(self, pane_id: str) -> None:
        for then in self._waiting.pop(pane_id, []):
            then(self._panes[pane_id])

    def with_pane(self, pane_id: str, then: Callable[[Any], object]) -> None:
        """Call `then(pane)` now if the pane is mounted, else as soon as it is (building it now if need be)."""
        pane = self._panes.get(pane_id)
        if pane is not None and pane.is_mounted:
            then(pane)
            return
        self._waiting.setdefault(pane_id, []).append(then)
        self._build(pane_id)

    def mounted_pane(self, pane_id: str) -> Any:
        """The pane if it is mounted, else None (a pane not mounted yet has nothing open or loaded)."""
        pane = self._panes.get(pane_id)
        return pane if pane is not None and pane.is_mounted else None

    @work(thread=True, exclusive=True, group="warm-up")
    def warm_up(self) -> None:
        """Import the openai SDK and pandas off the UI thread, after the first frame, so the first question and the
        first file read are quick. (Intervals and tests need no import: core.stats uses the standard library.)"""
        from core.llm import warm_up

        warm_up()
        import pandas  # noqa: F401 - grading, answering and evaluating read their CSVs with it

    async def action_show_pane(self, pane: str) -> None:
        """F2-F5. A pane not built yet (the first moments, or a loaded machine) is built now and waited for, so that
        the keys pressed meanwhile wait too and reach it, as they would a pane that was there."""
        if self.mounted_pane(pane) is None and self._held_keys is None:
            self._held_keys = []  # see on_event
            try:
                self.screen.set_focus(None)
                self.query_one("#panes", TabbedContent).active = pane
                self._build(pane)
                mounting = self._mounting.get(pane)
                if mounting is not None:
                    await mounting
                self._asked_for = None
                self.query_one("#panes", TabbedContent).active = pane  # a focus event queued meanwhile moves it
                self.focus_pane(pane, now=True)
            finally:
                held, self._held_keys = self._held_keys, None
                for key in held:
                    await super().on_event(key)  # to the pane's widget that has the keyboard now
            return
        self.show_pane(pane)

    async def on_event(self, event: events.Event) -> None:
        # While F2-F5 waits for a pane being built, the keys typed meanwhile are held here and handed on once it has
        # the keyboard (they would reach no widget before). Ctrl+Q is not held.
        if self._held_keys is not None and isinstance(event, events.Key) and event.key not in self.PRIORITY_KEYS:
            self._held_keys.append(event)
            return
        await super().on_event(event)

    def show_pane(self, pane: str) -> None:
        """Show the pane and give it the keyboard (once it is mounted, if it is not yet)."""
        # Drop focus first: a focused widget left in the old pane would pull its tab back to the front.
        self.screen.set_focus(None)
        self.query_one("#panes", TabbedContent).active = pane
        self.focus_pane(pane)
        self._show_when_built(pane)

    def _show_when_built(self, pane: str) -> None:
        if self.mounted_pane(pane) is not None:
            self._asked_for = None
            return
        self._asked_for = pane
        self._build(pane)  # shown before the worker got to it: build it now

    def focus_pane(self, pane: str, now: bool = False) -> None:
        """Give the keyboard to the pane's main widget, so its keys work at once. `now`: before the messages
        already queued (keys typed while the pane was being built), not after them as `Widget.focus` would."""
        if not self.screen_stack:
            return  # the app has closed
        found = self.screen.query(f"#{pane}")
        if not found or not isinstance(found.first(), TabPane):
            return  # the app is closing (the panes are gone), or another screen is on top
        for child in found.first().children:
            if not child.is_mounted:
                return  # still composing: it takes the keyboard once mounted (`_mounted`)
            target = getattr(child, "focus_target", None)
            if now and callable(target):
                self.screen.set_focus(target())
                return
            focus = getattr(child, "focus_default", None)
            if callable(focus):
                focus()
                return

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id:
            if self.mounted_pane(event.pane.id) is None:
                self._show_when_built(event.pane.id)  # a tab clicked before its pane was built
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
        self.show_pane("grade")
        self.with_pane("grade", lambda pane: pane.action_open())

    def action_compare_runs(self) -> None:
        self.show_pane("runs")
        self.notify("Mark two runs with Space, then press c to compare them.")

    def action_mlflow_ui(self) -> None:
        self.show_pane("runs")
        self.with_pane("runs", lambda pane: pane.action_mlflow_ui())

    # -- hooks the panes use to hand work to each other

    def action_answer_benchmark(self) -> None:
        """Open the "answer a benchmark" screen (pick a CSV and a model, watch progress, open in Grade).

        It starts from the model the Chat pane talks to: the one the user has just been trying."""
        from tui.widgets.answer_screen import AnswerScreen

        self.with_pane("chat", lambda pane: self.push_screen(AnswerScreen(model=pane.model_uri)))

    def open_in_grade(self, path: str) -> None:
        """Show the Grade pane on `path` (an answers CSV)."""
        self.show_pane("grade")
        self.with_pane("grade", lambda pane: pane.open_file(path))

    def run_logged(self, run_id: str) -> None:
        """An evaluation run ended in the app: the Runs pane lists it without waiting for `r`."""
        runs = self.mounted_pane("runs")
        if runs is not None:  # else it lists the runs when it mounts
            runs.action_reload()

    def lend_to_evaluation(self, path: str) -> bool:
        """An evaluation of `path` starts: the Grade pane lets go of the file it writes into, if it has it open."""
        grade = self.mounted_pane("grade")
        if grade is None:
            return False  # not mounted yet: it has no file open
        stem = f"{Path(path).stem}.answers."  # a benchmark's answers file: STEM.answers.MODEL.csv
        return grade.lend_file(path, stem, "an evaluation in this Proctor (Evaluate pane)")

    def evaluation_done(self) -> None:
        """The evaluation ended: the Grade pane writes its file again (reloaded with the judge's columns)."""
        grade = self.mounted_pane("grade")
        if grade is not None:
            grade.take_back()

    def show_run(self, run_id: str) -> None:
        """Show the Runs pane with `run_id` opened."""
        self.show_pane("runs")
        self.with_pane("runs", lambda pane: pane.show_run(run_id))

    async def action_quit(self) -> None:
        """Ctrl+Q (and the command palette's Quit). In the `proctor` command the process ends here, at once
        (`quick_exit.leave`): a verdict being saved gets a moment to finish, the panes give up their files and
        servers, the terminal is restored. Elsewhere (tests, `main()` called in-process) Textual's own exit, which
        unmounts the panes (they do the same on unmount)."""
        if not quick_exit.armed():
            self.exit()
            return
        grade = self.mounted_pane("grade")
        if grade is not None and grade.saving:
            # A verdict being saved is written before the file's lock is given up. Other jobs (an answer run, an
            # evaluation, an import) are not waited for: they would not finish in time, and they save as they go.
            quick_exit.finish_jobs()
        for pane in self._panes.values():
            release = getattr(pane, "release", None)
            if callable(release):
                release()
        quick_exit.leave(self._driver)

    def action_toggle_keys(self) -> None:
        if self.screen.query("KeyPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()
