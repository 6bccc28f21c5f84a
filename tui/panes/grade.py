"""The Grade pane: grade an answers CSV by hand, one row at a time, keyboard only.

Keys: y correct, n incorrect (both save, then move on), s skip, u undo, e note, j/k and arrows move, g next
ungraded, b blind, t table, d disagreements with the judge, r reload, o open, w take over, ? help,
q closes the file (Ctrl+Q quits the app).

One writer at a time: the pane's session holds the file's lock (core.filelock) while the file is open here. When
another process holds it (`proctor answer` resuming the file, another Proctor grading it), the file opens read-only
under a banner naming that process; once it lets go, the banner offers `w` to take over (the file is reloaded).

All logic is in core.grading.GradingSession; this pane shows what it returns. Beside the human's verdict it shows
the judge's (judge_verdict, judge_rationale, judge_error, written by `proctor evaluate`), hidden in blind mode.

Verdicts on rows of an evaluation run go to MLflow as HUMAN feedback through core.feedback.FeedbackSender, a
thread of its own: a verdict is on disk before anything is sent, and never waits on MLflow. Each verdict MLflow
confirms is recorded in the file (`human_synced`) through the same save queue as the grader's keys.

Saving runs in a thread worker (an fsync can be slow on a real disk) and the next row is shown only once the
worker reports the verdict saved; keys pressed meanwhile wait in a queue and run in order, so a fast grader never
grades the wrong row.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static

from core.safety import one_line, printable
from tui import untrusted
from tui.widgets.grade_screens import CsvPicker, GradeHelpScreen, NoteScreen, OpenCsvScreen

if TYPE_CHECKING:
    from core.feedback import FeedbackSender

VERDICT_MARKS = {"correct": ("✓ correct", "green"), "incorrect": ("✗ incorrect", "red"), "": ("— not graded", "dim")}


@dataclass
class _Change:
    """A change waiting to be saved: what, on which row, and the question it had (to recognise it on reload)."""

    kind: str  # "verdict", "note", "undo", or "synced" (verdicts MLflow now holds, recorded in the file)
    row: int
    value: str | None
    question: str
    advance: bool = False
    synced: dict[int, str] | None = None


def _pct(x: float | None) -> str:
    # Whole percents: the intervals are wide enough that a decimal would be noise, and the line fits 80 columns.
    return "—" if x is None else f"{100 * x:.0f}%"


class GradePane(Vertical, can_focus=True):
    """Grade an answers CSV. `path` opens it at once; `blind` starts in blind mode."""

    BINDINGS = [
        Binding("y", "verdict('correct')", "Correct", id="grade.correct"),
        Binding("n", "verdict('incorrect')", "Incorrect", id="grade.incorrect"),
        Binding("s", "skip", "Skip", id="grade.skip"),
        Binding("u", "undo", "Undo", id="grade.undo"),
        Binding("e", "note", "Note", id="grade.note"),
        # Help and quit before the rest: at 80 columns the footer has room for about this much.
        Binding("question_mark", "help", "Help", id="grade.help"),
        Binding("q", "close", "Close", id="grade.close"),
        Binding("j,down", "move(1)", "Next", show=False, id="grade.next"),
        Binding("k,up", "move(-1)", "Previous", show=False, id="grade.previous"),
        Binding("g", "next_ungraded", "Ungraded", id="grade.ungraded"),
        Binding("b", "blind", "Blind", id="grade.blind"),
        Binding("t", "table", "Table", id="grade.table"),
        Binding("d", "disagreements", "Disagree", id="grade.disagreements"),
        Binding("pagedown", "scroll_answer(1)", "Scroll down", show=False, id="grade.scroll_down"),
        Binding("pageup", "scroll_answer(-1)", "Scroll up", show=False, id="grade.scroll_up"),
        Binding("r", "reload", "Reload", show=False, id="grade.reload"),
        Binding("o", "open", "Open", show=False, id="grade.open"),
        Binding("w", "take_over", "Take over", show=False, id="grade.take_over"),
    ]

    @dataclass
    class FileOpened(Message):
        session: object  # core.grading.GradingSession
        locked: str | None = None  # why it opened read-only: another writer holds it

    @dataclass
    class FileFailed(Message):
        error: str

    @dataclass
    class ChangeSaved(Message):
        change: _Change
        row: int | None  # the row the change was on (for undo: the row it put back)

    @dataclass
    class ChangeBlocked(Message):
        change: _Change | None
        error: str

    @dataclass
    class ChangeFailed(Message):
        change: _Change
        error: str

    @dataclass
    class TakeOverDone(Message):
        holder: str | None = None  # still held by this writer
        error: str | None = None  # the file could not be read again

    @dataclass
    class FeedbackSent(Message):
        row: int
        verdict: str
        sender: object = None  # which FeedbackSender: one replaced since (a reload) speaks of rows as they were

    @dataclass
    class FeedbackState(Message):
        pending: int
        error: str
        sender: object = None

    @dataclass
    class FileReloaded(Message):
        session: object
        pending: _Change | None
        reapplied: bool
        error: str | None = None

    def __init__(self, path: str | None = None, blind: bool = False) -> None:
        super().__init__(id="grade-pane")
        self.initial_path = path
        self.session = None
        self.current: int | None = None
        self.blind = blind
        self.table_mode = False
        self.disagreement_mode = False
        self.saving = False
        self.blocked: _Change | None = None  # a change refused because the file changed on disk
        self.changed_on_disk = False
        self.locked: str | None = None  # read-only: who holds the file ("another Proctor process (pid N)")
        self.lock_free = False  # read-only, and the other writer has let go: offer to take over
        self._queued: deque[tuple[Callable[..., object], tuple[object, ...]]] = deque()
        self._table_built = False
        self.sender: FeedbackSender | None = None
        self.unsent = 0  # verdicts not yet in MLflow
        self.mlflow_error = ""
        self._synced_waiting: dict[int, str] = {}

    def compose(self) -> ComposeResult:
        with Vertical(id="grade-open"):
            yield CsvPicker(id="grade-picker")
        with Vertical(id="grade-view"):
            yield Static("", id="grade-position")
            yield Static("", id="grade-stats")
            yield Static("", id="grade-banner")
            with Vertical(id="grade-single"):
                yield Static("", id="grade-question")
                yield Static("", id="grade-reference")
                with VerticalScroll(id="grade-answer-box"):
                    yield Static("", id="grade-answer")
                yield Static("", id="grade-verdict")
                yield Static("", id="grade-judge")
            yield DataTable(id="grade-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#grade-view").display = False
        self.query_one("#grade-table").display = False
        self.query_one("#grade-banner").display = False
        if self.initial_path:
            self.open_file(self.initial_path)
        # Notice a spreadsheet saving the file while it is open, not only when the next verdict is refused.
        self.set_interval(2.0, self._check_disk)

    def on_unmount(self) -> None:
        self.release()

    def release(self) -> None:
        """The app is closing: stop sending verdicts (what is left stays pending in the file) and give up the file's
        lock. Called on unmount, and by the app's quick quit, which unmounts nothing. Safe to call twice."""
        self._stop_feedback()
        if self.session is not None:
            self.session.close()

    def focus_default(self) -> None:
        self.focus_target().focus()

    def focus_target(self) -> Widget:
        """The widget that takes the keyboard when the pane is shown."""
        if self.session is None:
            return self.query_one(CsvPicker).focus_target()
        if self.table_mode:
            return self.query_one(DataTable)
        return self

    # -- opening

    def open_file(self, path: str) -> None:
        """Open `path` (an answers CSV) in the pane; errors show in the pane, never as a traceback."""
        if self._deferred(self.open_file, path):
            return
        if self.session is not None and not self.session.read_only and \
                os.path.realpath(path) == os.path.realpath(self.session.path):
            self.action_reload()  # already open and written here: read it again, keeping our lock
            return
        self.load(str(path))

    @work(thread=True, exclusive=True, group="grade-load")
    def load(self, path: str) -> None:
        from core.errors import ProctorError
        from core.grading import FileLockedError, GradingSession

        try:
            try:
                self.post_message(self.FileOpened(GradingSession(path)))
            except FileLockedError as locked:
                self.post_message(self.FileOpened(GradingSession(path, read_only=True), locked.who))
        except ProctorError as error:
            self.post_message(self.FileFailed(str(error)))
        except Exception as error:  # noqa: BLE001 - a worker must report, never die silently
            self.post_message(self.FileFailed(f"{type(error).__name__}: {error}"))

    def on_grade_pane_file_opened(self, message: FileOpened) -> None:
        session = message.session
        if self.session is not None and self.session is not session:
            self.session.close()  # let the file we leave go: another writer may want it
        self.session = session
        self.blocked = None
        self.changed_on_disk = False
        self.locked = message.locked
        self.lock_free = False
        self.disagreement_mode = False
        self._queued.clear()
        self._table_built = False
        self.query_one("#grade-open").display = False
        self.query_one("#grade-view").display = True
        self._set_table_mode(False)
        first = session.next_ungraded()
        self.current = first if first is not None else session.order[0] if session.order else None
        self._start_feedback()
        self._render_all()
        self.focus_default()

    def on_grade_pane_file_failed(self, message: FileFailed) -> None:
        if self.session is None:
            self.query_one(CsvPicker).show_error(message.error)
        untrusted.notify(self, message.error, severity="error", timeout=8)

    def on_csv_picker_picked(self, message: CsvPicker.Picked) -> None:
        self.open_file(message.path)

    def action_open(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.open_file(path)
            self.focus_default()

        self.app.push_screen(OpenCsvScreen(), chosen)

    # -- navigation

    def _nav(self) -> list[int]:
        if self.session is None:
            return []
        return self.session.disagreements() if self.disagreement_mode else self.session.order

    def _step(self, current: int | None, step: int) -> int | None:
        """The row `step` places from `current` among the rows navigated, by grading order; None past the end."""
        nav = self._nav()
        if not nav:
            return None
        if current in nav:
            i = nav.index(current) + step
            return nav[i] if 0 <= i < len(nav) else None
        # The current row left the list (a disagreement just resolved): go by its place in grading order.
        place = {row: i for i, row in enumerate(self.session.order)}
        here = place.get(current, -1)
        after = [r for r in nav if place[r] > here] if step > 0 else [r for r in reversed(nav) if place[r] < here]
        return after[0] if after else None

    def _go(self, row: int | None) -> None:
        self.current = row
        self._render_row()
        self._render_position()
        if self.table_mode and row is not None and self._table_built:
            table = self.query_one(DataTable)
            index = table.get_row_index(str(row))
            if table.cursor_row != index:
                table.move_cursor(row=index)

    def _deferred(self, action: Callable[..., object], *args: object) -> bool:
        """Queue `action` while a save is in flight, so keys run in the order pressed. True when queued."""
        if self.saving:
            self._queued.append((action, args))
            return True
        return False

    def _ready(self) -> bool:
        if self.session is None:
            self.notify("Open a CSV first (o).", severity="warning")
            return False
        return True

    def action_move(self, step: int) -> None:
        if self._deferred(self.action_move, step) or not self._ready():
            return
        target = self._step(self.current, step)
        if target is None:
            self.notify("Last row." if step > 0 else "First row.", timeout=2)
            return
        self._go(target)

    def action_skip(self) -> None:
        self.action_move(1)

    def action_next_ungraded(self) -> None:
        if self._deferred(self.action_next_ungraded) or not self._ready():
            return
        row = self.session.next_ungraded(self.current)
        if row is None:
            self.notify("Every row is graded.", timeout=3)
            return
        self.disagreement_mode = False
        self._go(row)
        self._render_status()

    def action_scroll_answer(self, direction: int) -> None:
        box = self.query_one("#grade-answer-box", VerticalScroll)
        box.scroll_page_down() if direction > 0 else box.scroll_page_up()

    # -- changes

    def _refused_read_only(self) -> bool:
        """True (and says so) when the file is open read-only: another process writes it."""
        if self.locked is None:
            return False
        self.notify("Read-only: another process writes this file; nothing was saved."
                    + (" Press w to take over." if self.lock_free else ""), severity="warning")
        return True

    def _submit(self, change: _Change) -> None:
        if self._refused_read_only():
            return
        if self.blocked is not None:
            self.notify("The file changed on disk: press r to reload it first.", severity="warning")
            return
        self.saving = True
        self.save(change)

    def action_verdict(self, verdict: str) -> None:
        if self._deferred(self.action_verdict, verdict) or not self._ready() or self.current is None:
            return
        self._submit(_Change("verdict", self.current, verdict, self.session.question(self.current), advance=True))

    def action_undo(self) -> None:
        if self._deferred(self.action_undo) or not self._ready():
            return
        if not self.session.undo_stack:
            self.notify("Nothing to undo.", timeout=2)
            return
        self._submit(_Change("undo", self.session.undo_stack[-1].row, None, ""))

    def action_note(self) -> None:
        if self._deferred(self.action_note) or not self._ready() or self.current is None \
                or self._refused_read_only():
            return
        row = self.current

        def written(note: str | None) -> None:
            self.focus_default()
            if note is not None and note != self.session.note(row):
                self._submit(_Change("note", row, note, self.session.question(row)))

        self.app.push_screen(NoteScreen(self.session.note(row), self._row_label(row)), written)

    @work(thread=True, exclusive=True, group="grade-save")
    def save(self, change: _Change) -> None:
        from core.errors import ProctorError
        from core.grading import FileChangedError

        session = self.session
        try:
            if change.kind == "synced":
                try:
                    session.mark_synced(change.synced or {})
                except (ProctorError, OSError):
                    # Not recorded: those rows stay pending and are checked again (sending is idempotent).
                    pass
                self.post_message(self.ChangeSaved(change, None))
                return
            if change.kind == "verdict":
                session.set_verdict(change.row, change.value)
                row = change.row
            elif change.kind == "note":
                session.set_note(change.row, change.value or "")
                row = change.row
            else:
                row = session.undo()
            self.post_message(self.ChangeSaved(change, row))
        except FileChangedError as error:
            self.post_message(self.ChangeBlocked(change, str(error)))
        except (ProctorError, OSError, ValueError, IndexError) as error:
            self.post_message(self.ChangeFailed(change, str(error)))
        except Exception as error:  # noqa: BLE001 - a worker must report, never die silently
            self.post_message(self.ChangeFailed(change, f"{type(error).__name__}: {error}"))

    def on_grade_pane_change_saved(self, message: ChangeSaved) -> None:
        change = message.change
        if change.kind == "synced":
            self._render_status()
            self._done_saving()
            return
        if change.kind in ("verdict", "undo") and message.row is not None:
            self._send_row(message.row)
        if message.row is not None:
            self._update_table_row(message.row)
        if change.kind == "verdict" and change.advance and change.row == self.current:
            target = self._step(change.row, 1)
            if target is None:
                self.notify("Last row graded: g finds any row still ungraded.", timeout=3)
            self._go(target if target is not None else change.row)
        elif change.kind == "undo" and message.row is not None:
            self._go(message.row)
        else:
            self._render_row()
        self._render_status()
        self._done_saving()

    def on_grade_pane_change_blocked(self, message: ChangeBlocked) -> None:
        self.blocked = message.change
        self.changed_on_disk = True
        self._queued.clear()  # keys pressed after the refusal would act on a file we no longer trust
        self._render_status()
        self.saving = False

    def on_grade_pane_change_failed(self, message: ChangeFailed) -> None:
        untrusted.notify(self, f"Not saved: {message.error}", severity="error", timeout=8)
        self._queued.clear()
        self._render_row()
        self._render_status()
        self.saving = False

    def _done_saving(self) -> None:
        self.saving = False
        while self._queued and not self.saving:
            action, args = self._queued.popleft()
            action(*args)

    # -- MLflow feedback (in the background)

    def _start_feedback(self) -> None:
        """Send the file's pending verdicts (rows of an evaluation run) and follow new ones, off the UI thread."""
        from core.feedback import FeedbackSender, pending_in_frame

        self._stop_feedback()
        session = self.session
        if session is None or "trace_id" not in session.frame.columns:
            self.unsent = 0
            return
        self.mlflow_error = ""
        sender = FeedbackSender(on_sent=lambda row, verdict: self._feedback_sent(sender, row, verdict),
                                on_state=lambda pending, error: self._feedback_state(sender, pending, error),
                                metrics_for=self._metrics_for)
        self.sender = sender.start()
        pending = pending_in_frame(session.frame)
        self.unsent = len(pending)
        self.sender.submit(pending)

    def _stop_feedback(self) -> None:
        if self.sender is not None:
            self.sender.stop(timeout=0)  # what is left stays pending in the file, for the next open
            self.sender = None
        self._synced_waiting.clear()

    def _metrics_for(self, run_id: str) -> dict[str, float]:
        # Called from the sender's thread: the frame is only read, and a stale read is corrected next time.
        from core.feedback import metrics_in_frame

        session = self.session
        return metrics_in_frame(session.frame, run_id) if session is not None else {}

    def _feedback_sent(self, sender: object, row: int, verdict: str) -> None:
        # From the sender's thread: messages are thread-safe.
        self.post_message(self.FeedbackSent(row, verdict, sender))

    def _feedback_state(self, sender: object, pending: int, error: str) -> None:
        self.post_message(self.FeedbackState(pending, error, sender))

    def _send_row(self, row: int) -> None:
        """A verdict on `row` was saved: queue it for MLflow when the row belongs to an evaluation run."""
        from core.feedback import pending_from

        s = self.session
        if self.sender is None or s is None:
            return
        from core.grading import SYNCED_COLUMN

        items = pending_from([(row, s.cell(row, "run_id"), s.cell(row, "trace_id"), s.cell(row, "human_verdict"),
                               s.cell(row, SYNCED_COLUMN))])
        if items:
            self.sender.submit(items)
            self.unsent = self.sender.pending

    def on_grade_pane_feedback_sent(self, message: FeedbackSent) -> None:
        if message.sender is not self.sender:
            # A sender stopped since (the file was reloaded, lent or closed): its row numbers may no longer be
            # this file's. What it sent is found in MLflow, as "already", by the sender that replaced it.
            return
        self._synced_waiting[message.row] = message.verdict
        # Recorded in the file in batches, through the save queue (never between a key and its save).
        self.set_timer(0.3, self._record_synced)

    def _record_synced(self) -> None:
        if not self._synced_waiting or self.session is None or self.blocked is not None or self.changed_on_disk:
            return
        if self.saving:
            self.set_timer(0.3, self._record_synced)
            return
        synced, self._synced_waiting = dict(self._synced_waiting), {}
        self.saving = True
        self.save(_Change("synced", -1, None, "", synced=synced))

    def on_grade_pane_feedback_state(self, message: FeedbackState) -> None:
        if message.sender is not self.sender:
            return
        self.unsent = message.pending
        self.mlflow_error = message.error
        self._render_status()

    # -- change on disk

    def _check_disk(self) -> None:
        if self.session is not None and self.locked is not None and not self.lock_free:
            from core.filelock import holder

            if holder(self.session.path) is None:
                self.lock_free = True
                self._render_status()
        # Never while our own write is in flight: the file is being replaced by us.
        if self.session is None or self.saving or self.changed_on_disk:
            return
        if self.session.changed_on_disk():
            self.changed_on_disk = True
            self._render_status()

    def action_reload(self) -> None:
        if self._deferred(self.action_reload) or not self._ready():
            return
        self.saving = True
        self.reload(self.blocked)

    @work(thread=True, exclusive=True, group="grade-save")
    def reload(self, pending: _Change | None) -> None:
        from core.errors import ProctorError
        from core.grading import GradingSession

        session = self.session
        try:
            session.reload()
        except ProctorError as error:
            self.post_message(self.FileReloaded(session, pending, False, str(error)))
            return
        reapplied = False
        # Re-apply the refused change only if its row still holds the same question: rows may have moved.
        if pending is not None and pending.kind != "undo" and pending.row < session.rows and \
                session.question(pending.row) == pending.question:
            try:
                if pending.kind == "verdict":
                    session.set_verdict(pending.row, pending.value)
                else:
                    session.set_note(pending.row, pending.value or "")
                reapplied = True
            except ProctorError as error:
                self.post_message(self.FileReloaded(session, pending, False, str(error)))
                return
        assert isinstance(session, GradingSession)
        self.post_message(self.FileReloaded(session, pending, reapplied))

    def on_grade_pane_file_reloaded(self, message: FileReloaded) -> None:
        self.saving = False
        if message.error:
            untrusted.notify(self, f"Reload failed: {message.error}", severity="error", timeout=8)
            return
        self.blocked = None
        self.changed_on_disk = False
        self._table_built = False
        pending = message.pending
        if pending is not None and message.reapplied:
            self.notify(f"Reloaded; your {pending.kind} on {self._row_label(pending.row)} is saved.")
            if pending.kind == "verdict" and pending.row == self.current:
                target = self._step(pending.row, 1)
                self.current = pending.row if target is None else target
        elif pending is not None:
            self.notify(f"Reloaded; your {pending.kind} was not saved: the row changed. Grade it again.",
                        severity="warning", timeout=8)
        else:
            self.notify("Reloaded.")
        if self.current is None or self.current >= self.session.rows:
            self.current = self.session.next_ungraded()
        if self.table_mode:
            self._build_table()
        self._start_feedback()  # rows may have moved: what is pending is read again from the file
        self._render_all()

    # -- the lock

    def action_take_over(self) -> None:
        if self._deferred(self.action_take_over) or not self._ready():
            return
        if self.locked is None:
            self.notify("This pane already writes this file.", timeout=2)
            return
        self.saving = True
        self.take_over()

    @work(thread=True, exclusive=True, group="grade-save")
    def take_over(self) -> None:
        from core.errors import ProctorError
        from core.grading import FileLockedError

        try:
            self.session.take_over()
            self.post_message(self.TakeOverDone())
        except FileLockedError as error:
            self.post_message(self.TakeOverDone(holder=error.who))
        except ProctorError as error:
            self.post_message(self.TakeOverDone(error=str(error)))

    def on_grade_pane_take_over_done(self, message: TakeOverDone) -> None:
        self.saving = False
        if message.holder is not None:
            self.lock_free = False
            self.locked = message.holder
            untrusted.notify(self, f"Not taken over: still held by {message.holder}.", severity="warning", timeout=8)
        elif message.error is not None:
            untrusted.notify(self, f"Not taken over: {message.error}", severity="error", timeout=8)
        else:
            self.locked = None
            self.lock_free = False
            self.blocked = None
            self.changed_on_disk = False
            self._table_built = False
            self.notify("This pane now writes the file (reloaded).")
            if self.current is None or self.current >= self.session.rows:
                self.current = self.session.next_ungraded()
            if self.table_mode:
                self._build_table()
            self._start_feedback()
        self._render_all()

    def lend_file(self, path: str, stem: str, who: str) -> bool:
        """Let another writer in this Proctor write the open file (an evaluation writing the judge's columns into
        it): the pane turns read-only until `take_back()`. `path` is the file it writes, or, for a benchmark, the
        file whose name starts with `stem` (its answers file). True when the pane's file was lent."""
        from pathlib import Path

        s = self.session
        if s is None or self.locked is not None:
            return False
        mine = s.path.resolve()
        target = Path(path).resolve()
        if mine != target and not (mine.parent == target.parent and mine.name.startswith(stem)):
            return False
        self._stop_feedback()
        s.close()  # after any save in flight: the save worker holds no lock of its own
        self.locked = who
        self.lock_free = False
        self._render_status()
        return True

    def take_back(self) -> None:
        """The writer the file was lent to is done: write it again, reloaded with what that writer wrote."""
        if self.session is not None and self.locked is not None:
            self.action_take_over()

    # -- modes

    def action_blind(self) -> None:
        if not self._ready():
            return
        self.blind = not self.blind
        if self.blind and self.disagreement_mode:
            self.disagreement_mode = False
        self._table_built = False
        if self.table_mode:
            self._build_table()
        self._render_all()
        self.notify("Blind: model, run and judge hidden." if self.blind else "Blind mode off.", timeout=2)

    def action_disagreements(self) -> None:
        if self._deferred(self.action_disagreements) or not self._ready():
            return
        if self.disagreement_mode:
            self.disagreement_mode = False
            self._render_all()
            return
        if not self.session.has_judge:
            self.notify("This file holds no judge verdicts (judge_verdict): run `proctor evaluate` first.",
                        severity="warning")
            return
        if self.blind:
            self.notify("Disagreements show the judge's verdict: leave blind mode (b) first.", severity="warning")
            return
        rows = self.session.disagreements()
        if not rows:
            self.notify("You and the judge agree on every row you both graded.")
            return
        self.disagreement_mode = True
        self._go(rows[0])  # step through them from the first, in grading order
        self._render_status()

    def action_table(self) -> None:
        if not self._ready():
            return
        self._set_table_mode(not self.table_mode)
        if self.table_mode:
            if not self._table_built:
                self._build_table()
            self._go(self.current)
        else:
            self._render_row()
        self.focus_default()

    def _set_table_mode(self, on_: bool) -> None:
        self.table_mode = on_
        self.query_one("#grade-single").display = not on_
        self.query_one("#grade-table").display = on_

    def action_help(self) -> None:
        self.app.push_screen(GradeHelpScreen())

    def action_close(self) -> None:
        """Close the file and go back to the picker (Ctrl+Q quits the app). A save in flight finishes first."""
        if self._deferred(self.action_close) or self.session is None:
            return
        session, self.session = self.session, None
        session.close()
        self.current = None
        self.locked = None
        self.lock_free = False
        self.blocked = None
        self.changed_on_disk = False
        self.disagreement_mode = False
        self._table_built = False
        self.query_one("#grade-view").display = False
        self.query_one("#grade-open").display = True
        self.query_one(CsvPicker).refresh_files()
        self.focus_default()
        self.notify("File closed: every verdict is saved.", timeout=3)

    # -- the table

    def _table_cells(self, row: int) -> list[object]:
        s = self.session
        label, style = VERDICT_MARKS[s.verdict(row)]
        cells: list[object] = [str(row + 1), Text(label, style=style)]
        if s.has_judge and not self.blind:
            judge_label, judge_style = VERDICT_MARKS[s.judge(row)]
            cells.append(Text(judge_label, style=judge_style))
        # CSV cells are untrusted: one printable line each, in Text so that the table never reads them as markup.
        # Clipped so that question, reference and the start of the answer fit on one 80-column screen.
        for text, width in ((s.question(row), 40), (s.reference(row), 24), (s.answer(row), 60)):
            flat = one_line(text)
            cells.append(untrusted.cell(flat if len(flat) <= width else flat[:width - 1] + "…"))
        cells.append(untrusted.cell(s.note(row), limit=30))
        return cells

    def _build_table(self) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        keys = ["row", "verdict"] + (["judge"] if self.session.has_judge and not self.blind else []) + \
            ["question", "reference", "answer", "note"]
        labels = {"row": "Row", "verdict": "You", "judge": "Judge", "note": "Note", "question": "Question",
                  "reference": "Reference", "answer": "Answer"}
        for key in keys:
            table.add_column(labels[key], key=key)
        for row in self.session.order:
            table.add_row(*self._table_cells(row), key=str(row))
        self._table_built = True

    def _update_table_row(self, row: int) -> None:
        if not self._table_built:
            return
        table = self.query_one(DataTable)
        label, style = VERDICT_MARKS[self.session.verdict(row)]
        table.update_cell(str(row), "verdict", Text(label, style=style))
        table.update_cell(str(row), "note", untrusted.cell(self.session.note(row), limit=30))

    @on(DataTable.RowHighlighted, "#grade-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.current = int(event.row_key.value)
            self._render_status()

    @on(DataTable.RowSelected, "#grade-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.current = int(event.row_key.value)
        self.action_table()

    # -- showing

    def _row_label(self, row: int) -> str:
        return f"row {row + 1}"

    def _render_all(self) -> None:
        self._render_row()
        self._render_status()

    def _file_label(self) -> str:
        # Blind grading must not learn the model from the file name (`bench.answers.gpt-4.1-mini.csv`).
        return "this file" if self.blind else one_line(self.session.path.name)

    def _render_position(self) -> None:
        """The header line: the file, and the row on screen (it must always name the row shown)."""
        s = self.session
        if s is None:
            return
        position = Text()
        position.append("blind grading" if self.blind else one_line(s.path.name), style="bold")
        if self.current is not None:
            position.append(f"  row {self.current + 1} of {s.rows}")
            if s.sample_order is not None and self.current in s.sample_order:
                position.append(f"  · sample {s.sample_order.index(self.current) + 1} of {len(s.sample_order)}")
        if self.disagreement_mode:
            rows = s.disagreements()
            here = f"{rows.index(self.current) + 1} of " if self.current in rows else ""
            position.append(f"  · disagreement {here}{len(rows)}", style="bold yellow")
        if self.blind:
            position.append("  · BLIND", style="bold magenta")
        self.query_one("#grade-position", Static).update(position)

    def _render_status(self) -> None:
        s = self.session
        if s is None:
            return
        self._render_position()

        st = s.stats()
        line = Text()
        line.append(f"graded {st.graded}/{st.scope}")
        line.append(f" · correct {_pct(st.interval.share)}")
        if st.graded:
            line.append(f" [{_pct(st.interval.low)}–{_pct(st.interval.high)}]", style="dim")
        if st.whole_file is not None and st.whole_file.share is not None:
            w = st.whole_file
            line.append(f" · whole file ≈{_pct(w.share)}")
            line.append(f" [{_pct(w.low)}–{_pct(w.high)}]", style="dim")
        if st.has_judge and not self.blind:
            kappa = "—" if st.judge_kappa is None else f"{st.judge_kappa:.2f}"
            line.append(f" · judge agrees {_pct(st.judge_agreement)}, κ {kappa}, {len(st.disagreements)} differ")
        if self.sender is not None and self.unsent:
            line.append(f" · {self.unsent} not in MLflow", style="yellow")
            if self.mlflow_error:
                line.append(" (unreachable, retrying)", style="yellow")
        self.query_one("#grade-stats", Static).update(line)

        banner = self.query_one("#grade-banner", Static)
        if self.locked is not None:
            if self.lock_free:
                text = (f"READ-ONLY: the other writer has let go of {self._file_label()}. Press w to take over "
                        "(the file is read again).")
            else:
                text = (f"READ-ONLY: {self._file_label()} is being written by {one_line(self.locked)}. "
                        "Nothing is saved here; w takes over once it is done.")
            banner.update(Text(text, style="bold"))
            banner.display = True
        elif self.blocked is not None or self.changed_on_disk:
            text = f"{self._file_label()} changed on disk since it was opened: nothing is written over it. "
            text += "r reloads it" + (" and saves your last verdict" if self.blocked else "") + "."
            banner.update(Text(text))
            banner.display = True
        else:
            banner.display = False

    def _render_row(self) -> None:
        s = self.session
        if s is None:
            return
        row = self.current
        question = self.query_one("#grade-question", Static)
        reference = self.query_one("#grade-reference", Static)
        answer = self.query_one("#grade-answer", Static)
        verdict = self.query_one("#grade-verdict", Static)
        if row is None:
            question.update(Text("This file has no rows to grade.", style="dim"))
            for widget in (reference, answer, verdict):
                widget.update("")
            self.query_one("#grade-judge", Static).display = False
            return
        # Every cell shown is untrusted (the model's answer above all): printable, in Text (never markup).
        question.update(Text.assemble(("Question  ", "bold"), printable(s.question(row))))
        reference.update(Text.assemble(("Reference ", "bold"), printable(s.reference(row)) or "—"))
        text = printable(s.answer(row))
        error = one_line(s.cell(row, "error"))
        answer.update(Text(text) if text.strip() else Text(f"(no answer) {error}".strip(), style="italic red"))
        self.query_one("#grade-answer-box", VerticalScroll).scroll_home(animate=False)
        label, style = VERDICT_MARKS[s.verdict(row)]
        line = Text.assemble(("Verdict ", "bold"), (label, style))
        note = s.note(row)
        if note:
            line.append("  · note: ", style="bold")
            line.append(one_line(note))
        if not self.blind:
            meta = [(label, s.cell(row, name)) for name, label in (("model", "model"), ("run_id", "run"))
                    if s.cell(row, name)]
            for name, value in meta:
                line.append(f"  · {name} ", style="bold")
                line.append(one_line(value[:12] if name == "run" else value))
        verdict.update(line)
        self._render_judge(row)

    def _render_judge(self, row: int) -> None:
        """The judge's verdict and rationale under the human's; hidden in blind mode and for files never judged."""
        s = self.session
        judge = self.query_one("#grade-judge", Static)
        judge.display = bool(s.has_judge and not self.blind)
        if not judge.display:
            return
        label, style = VERDICT_MARKS[s.judge(row)]
        text = Text.assemble(("Judge   ", "bold"), (label if s.judge(row) else "— no verdict", style))
        who = s.cell(row, "judge")
        if who:
            text.append(f"  ({one_line(who)})", style="dim")
        if s.verdict(row) and s.judge(row) and s.verdict(row) != s.judge(row):
            text.append("  ≠ you", style="bold yellow")
        rationale, error = s.cell(row, "judge_rationale"), s.cell(row, "judge_error")
        if rationale:
            text.append("\n")
            text.append(one_line(rationale), style="italic")
        elif error:
            text.append("\n")
            text.append(one_line(error), style="italic red")
        judge.update(text)
