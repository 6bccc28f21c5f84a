"""Grading answers by hand: verdicts saved into the answers CSV, sampling, and the statistics that go with them.

A `GradingSession` holds one answers CSV in memory. Every change (`set_verdict`, `undo`) is written to disk
atomically before the call returns, so a verdict the screen has moved past survives kill -9.

Saved into the file:
- `human_verdict`: `correct`, `incorrect`, or empty (not graded); `human_note`: free text. Both are added at the
  right end when missing; every other column, and the row order, stay as they were.
- `human_sample` (only when sampling): the row's place 1..n in a reproducible random sample, empty outside it.
  A file holding a sample is graded in sample order when reopened (resuming it); asking for a different sample
  (another size or seed) on such a file raises `SampleMismatchError` instead of silently reshuffling.

Change detection: the file's size, mtime and bytes are kept when it is read and after each of our writes.
Before writing, if the file on disk is no longer the one we read (a spreadsheet saved it, say), nothing is written
and `FileChangedError` is raised; `reload()` then reads the new file, and the caller may re-apply its verdict.

One writer at a time: a session holds the file's `core.filelock.FileLock` from opening to `close()` (or the
process's death), so `proctor answer`, another Grade pane or another `proctor grade` cannot write between our
change check and our rename. Opening a file another writer holds raises `FileLockedError`; `read_only=True` opens
it to look at, and `take_over()` makes the session the writer once the other one is gone.

Speed: a 3,000-row file is ~2 MB. Re-serialising the whole frame for each verdict (`csvio.write_csv_atomic`) takes
~50 ms, so the session keeps each row's serialised CSV line and re-serialises only the row that changed. The lines
are made by `csvio.csv_line` (cells escaped, minimal quoting, CRLF) and written with BOM, fsync and rename, so the
bytes are those `write_csv_atomic` would write (a test checks it).

The statistics (Wilson intervals, agreement, Cohen's kappa) come from core.stats.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.csvio import QUESTION_ALIASES, REFERENCE_ALIASES, csv_line, find_column, read_table, write_bytes_atomic
from core.errors import InputError, ProctorError
from core.filelock import FileLock, FileLockedError  # noqa: F401 - what opening a held file raises, for callers
from core.stats import Z_95, agreement, cohens_kappa, wilson_interval

if TYPE_CHECKING:
    import pandas as pd

VERDICT_COLUMN = "human_verdict"
NOTE_COLUMN = "human_note"
SAMPLE_COLUMN = "human_sample"
SYNCED_COLUMN = "human_synced"  # the verdict MLflow holds for the row's trace (core.feedback)
JUDGE_COLUMN = "judge_verdict"
ANSWER_COLUMN = "llm_answer"
BLIND_COLUMNS = ("model", "run_id")
CORRECT = "correct"
INCORRECT = "incorrect"
VERDICTS = (CORRECT, INCORRECT)
BOM = "\ufeff".encode()


# -- statistics --------------------------------------------------------------------------------------------


def normalise_verdict(value: object) -> str:
    """`Correct ` -> `correct`: a cell as a verdict, or "" when it is not one (empty, or text we do not know)."""
    text = str(value).strip().lower() if value is not None else ""
    return text if text in VERDICTS else ""


@dataclass
class Estimate:
    """A share of correct answers with its 95% interval; `rows` scales it to a number of rows when known."""

    share: float | None
    low: float
    high: float
    rows: int | None = None

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"share": self.share, "ci95": [self.low, self.high]}
        if self.rows is not None:
            data["rows"] = self.rows
            data["correct_rows"] = (None if self.share is None else round(self.share * self.rows, 1))
            data["correct_rows_ci95"] = [round(self.low * self.rows, 1), round(self.high * self.rows, 1)]
        return data


@dataclass
class GradingStats:
    """What the pane and `proctor grade --stats` show. Row numbers are 1-based data rows."""

    rows: int
    scope: int  # rows being graded: the sample's size, or every row
    graded: int
    correct: int
    incorrect: int
    interval: Estimate
    sample_size: int | None = None
    whole_file: Estimate | None = None
    judge_compared: int = 0
    judge_agreement: float | None = None
    judge_kappa: float | None = None
    disagreements: list[int] = field(default_factory=list)
    has_judge: bool = False

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "rows": self.rows, "scope": self.scope, "graded": self.graded, "correct": self.correct,
            "incorrect": self.incorrect, "share_correct": self.interval.share,
            "ci95": [self.interval.low, self.interval.high], "sample_size": self.sample_size,
            "whole_file": self.whole_file.as_dict() if self.whole_file else None,
            "judge": None,
        }
        if self.has_judge:
            data["judge"] = {"compared": self.judge_compared, "agreement": self.judge_agreement,
                             "kappa": self.judge_kappa, "disagreements": [r + 1 for r in self.disagreements]}
        return data


def population_estimate(k: int, n: int, population: int, z: float = Z_95) -> Estimate:
    """The share correct in a population of `population` rows, from k correct among n drawn at random.

    Wilson's interval with a finite population correction: the sampling variance shrinks by (N - n) / (N - 1),
    which is the same as using z * sqrt((N - n) / (N - 1)); grading every row gives the exact share.
    """
    if n == 0:
        return Estimate(None, 0.0, 1.0, population)
    fpc = (population - n) / (population - 1) if population > 1 else 0.0
    low, high = wilson_interval(k, n, z * math.sqrt(max(fpc, 0.0)))
    return Estimate(k / n, low, high, population)


# -- errors ------------------------------------------------------------------------------------------------


class FileChangedError(ProctorError):
    """The file on disk is no longer the one we read: nothing was written. `reload()` and try again."""

    exit_code = 2


class ReadOnlyError(ProctorError):
    """The session was opened read-only (another writer held the file): nothing was written."""

    exit_code = 2


class SampleMismatchError(InputError):
    """The file already holds a different sample from the one asked for."""


# -- the session -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stamp:
    size: int
    mtime_ns: int
    data: bytes  # compared only when size or mtime differ (a rewrite with the same bytes is not a change)


@dataclass(frozen=True)
class Change:
    """One saved change, kept for undo: the row and the cells it had before."""

    row: int
    verdict: str
    note: str


def _line(cells: Sequence[object]) -> bytes:
    # csvio's own record format (header cells escaped too), kept encoded: a write then only joins bytes.
    return csv_line(cells).encode("utf-8")


class GradingSession:
    """One answers CSV being graded. Rows are 0-based positions in the file."""

    def __init__(self, path: str | os.PathLike[str], sample: int | None = None, seed: int | None = None, *,
                 read_only: bool = False) -> None:
        """Open `path` for grading: lock it (one writer at a time), then read it.

        Raises `FileLockedError` when another writer holds the file (`read_only=True` opens it without the lock,
        for showing or statistics: every write then raises `ReadOnlyError`).
        """
        self.path = Path(path)
        self.undo_stack: list[Change] = []
        self._all_rows: list[int] = []
        self._lock = FileLock(self.path)
        self.read_only = read_only
        if not read_only:
            self._lock.acquire()
        try:
            self._load()
            if sample is not None:
                self.select_sample(sample, 0 if seed is None else seed)
            elif seed is not None:
                raise InputError("--seed goes with --sample N")
        except BaseException:
            self.close()
            raise

    # -- the lock

    def close(self) -> None:
        """Give up the lock (the session stays readable; it can no longer write until `take_over()`)."""
        self._lock.release()
        self.read_only = True

    def __enter__(self) -> GradingSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def take_over(self) -> None:
        """Become the file's writer: take the lock (`FileLockedError` if it is still held), then read the file again
        (the writer before us may have changed it)."""
        self._lock.acquire()
        try:
            self.reload()
        except BaseException:
            self._lock.release()
            raise
        self.read_only = False

    # -- reading

    def _load(self) -> None:
        frame = read_table(self.path, rewrite=True)
        stamp_bytes = self.path.read_bytes()
        columns = list(frame.columns)
        if ANSWER_COLUMN not in columns:
            raise InputError(f"{self.path} has no {ANSWER_COLUMN} column: grade a file written by `proctor answer`")
        question = find_column(columns, QUESTION_ALIASES)
        if question is None:
            raise InputError(f"{self.path} has no question column (one of: {', '.join(QUESTION_ALIASES)})")
        self.question_column = question
        self.reference_column = find_column(columns, REFERENCE_ALIASES)
        added = False
        for name in (VERDICT_COLUMN, NOTE_COLUMN):
            if name not in frame.columns:
                frame[name] = ""
                added = True
        self.frame: pd.DataFrame = frame
        self._lines: list[bytes] = []
        self._rebuild_lines()
        self._verdict_at = frame.columns.get_loc(VERDICT_COLUMN)
        self._note_at = frame.columns.get_loc(NOTE_COLUMN)
        # Normalised verdicts kept as lists: the statistics are recomputed after every verdict, and reading 3,000
        # cells through pandas each time would cost more than the write itself.
        self._verdicts = [normalise_verdict(v) for v in frame[VERDICT_COLUMN]]
        self._judges = ([normalise_verdict(v) for v in frame[JUDGE_COLUMN]] if JUDGE_COLUMN in frame.columns
                        else [""] * len(frame))
        self._stamp = self._stamp_of(stamp_bytes)
        self._read_sample()
        self.added_columns = added

    def _stamp_of(self, data: bytes) -> _Stamp:
        status = self.path.stat()
        return _Stamp(status.st_size, status.st_mtime_ns, data)

    def _read_sample(self) -> None:
        self.sample_order: list[int] | None = None
        if SAMPLE_COLUMN not in self.frame.columns:
            return
        places: list[tuple[int, int]] = []
        for row, cell in enumerate(self.frame[SAMPLE_COLUMN]):
            text = str(cell).strip()
            if not text:
                continue
            try:
                places.append((int(float(text)), row))  # a spreadsheet may have saved 3 as 3.0
            except ValueError:
                raise InputError(f"{self.path}: row {row + 1} has {SAMPLE_COLUMN}={text!r}, not a number") from None
        if places:
            self.sample_order = [row for _, row in sorted(places)]

    def reload(self) -> None:
        """Read the file again (after it changed on disk). The undo history is dropped: its rows may have moved."""
        self.undo_stack.clear()
        self._load()

    @property
    def rows(self) -> int:
        return len(self.frame)

    def changed_on_disk(self) -> bool:
        """True when the file on disk is not the one we last read or wrote."""
        try:
            status = self.path.stat()
        except OSError:
            return True
        if status.st_size == self._stamp.size and status.st_mtime_ns == self._stamp.mtime_ns:
            return False
        # Same bytes rewritten (a spreadsheet saving without changes, `touch`): not a change worth stopping for.
        try:
            return self.path.read_bytes() != self._stamp.data
        except OSError:
            return True

    # -- cells

    def cell(self, row: int, column: str | None) -> str:
        if column is None or column not in self.frame.columns:
            return ""
        return str(self.frame.iat[row, self.frame.columns.get_loc(column)])

    def question(self, row: int) -> str:
        return self.cell(row, self.question_column)

    def reference(self, row: int) -> str:
        return self.cell(row, self.reference_column)

    def answer(self, row: int) -> str:
        return self.cell(row, ANSWER_COLUMN)

    def verdict(self, row: int) -> str:
        return self._verdicts[row]

    def note(self, row: int) -> str:
        return str(self.frame.iat[row, self._note_at])

    def judge(self, row: int) -> str:
        return self._judges[row]

    @property
    def has_judge(self) -> bool:
        return JUDGE_COLUMN in self.frame.columns

    # -- writing

    def _set_cells(self, row: int, verdict: str, note: str) -> None:
        self.frame.iat[row, self._verdict_at] = verdict
        self.frame.iat[row, self._note_at] = note
        self._verdicts[row] = normalise_verdict(verdict)
        self._lines[row + 1] = _line(self.frame.iloc[row].tolist())

    def _write(self) -> None:
        """Save the file. Under our lock no other Proctor writer can come between the change check and the rename;
        the check still catches a spreadsheet (which takes no lock) saving the file meanwhile."""
        if self.read_only or not self._lock.held:
            raise ReadOnlyError(f"{self.path.name} is open read-only here: nothing was written")
        if self.changed_on_disk():
            raise FileChangedError(f"{self.path.name} changed on disk since it was opened: nothing was written")
        data = BOM + b"".join(self._lines)
        write_bytes_atomic(data, self.path)
        self._stamp = self._stamp_of(data)

    def _apply(self, row: int, verdict: str, note: str) -> None:
        """Change the row and write the file; on any failure the row is put back as it was."""
        before = (str(self.frame.iat[row, self._verdict_at]), self.note(row))
        self._set_cells(row, verdict, note)
        try:
            self._write()
        except BaseException:
            self._set_cells(row, *before)
            raise

    def set_verdict(self, row: int, verdict: str | None, note: str | None = None) -> None:
        """Save `verdict` (`correct`, `incorrect`, or None/"" to clear) and optionally `note` for `row`.

        The file is written atomically before this returns. Raises `FileChangedError` (nothing written) when the
        file changed on disk since it was read.
        """
        if not 0 <= row < self.rows:
            raise IndexError(f"row {row} is outside 0..{self.rows - 1}")
        verdict = verdict or ""
        if verdict and verdict not in VERDICTS:
            raise ValueError(f"a verdict is {CORRECT!r}, {INCORRECT!r} or empty, not {verdict!r}")
        old = Change(row, str(self.frame.iat[row, self._verdict_at]), self.note(row))
        self._apply(row, verdict, old.note if note is None else note)
        self.undo_stack.append(old)

    def set_note(self, row: int, note: str) -> None:
        """Save a note for `row`, keeping its verdict cell as it is (written before returning, undoable)."""
        if not 0 <= row < self.rows:
            raise IndexError(f"row {row} is outside 0..{self.rows - 1}")
        old = Change(row, str(self.frame.iat[row, self._verdict_at]), self.note(row))
        self._apply(row, old.verdict, note)
        self.undo_stack.append(old)

    def undo(self) -> int | None:
        """Put back the last change (written before returning); the row it was on, or None with nothing to undo."""
        if not self.undo_stack:
            return None
        change = self.undo_stack[-1]
        self._apply(change.row, change.verdict, change.note)
        self.undo_stack.pop()
        return change.row

    def mark_synced(self, verdicts: dict[int, str]) -> None:
        """Record, in `human_synced`, the verdict MLflow now holds for each row (core.feedback); written at once.

        Not a grader's change: it is not undoable. Raises like `set_verdict` (nothing written) on failure.
        """
        if not verdicts:
            return
        added = SYNCED_COLUMN not in self.frame.columns
        if added:
            self.frame[SYNCED_COLUMN] = ""
        at = self.frame.columns.get_loc(SYNCED_COLUMN)
        before = {row: self.frame.iat[row, at] for row in verdicts}
        for row, verdict in verdicts.items():
            self.frame.iat[row, at] = verdict
        try:
            if added:
                self._rebuild_lines()
            else:
                for row in verdicts:
                    self._lines[row + 1] = _line(self.frame.iloc[row].tolist())
            self._write()
        except BaseException:
            if added:
                self.frame.drop(columns=[SYNCED_COLUMN], inplace=True)
                self._rebuild_lines()
            else:
                for row, verdict in before.items():
                    self.frame.iat[row, at] = verdict
                    self._lines[row + 1] = _line(self.frame.iloc[row].tolist())
            raise

    # -- sampling and order

    def draw_sample(self, size: int, seed: int) -> list[int]:
        """The rows of a random sample of `size`, in grading order; the same for the same file length and seed."""
        if size < 1:
            raise InputError(f"--sample needs a positive number of rows, not {size}")
        if size > self.rows:
            raise InputError(f"--sample {size} is more than the {self.rows} rows of {self.path.name}")
        return random.Random(seed).sample(range(self.rows), size)

    def select_sample(self, size: int, seed: int) -> None:
        """Grade a reproducible random sample: draw it and save it in `human_sample`, or resume the one saved.

        A file that already holds a different sample raises `SampleMismatchError`: reshuffling would throw away
        what makes the graded rows a random sample.
        """
        order = self.draw_sample(size, seed)
        if self.sample_order is not None:
            if self.sample_order == order:
                return
            raise SampleMismatchError(
                f"{self.path.name} already holds a sample of {len(self.sample_order)} rows, not the one drawn by "
                f"--sample {size} --seed {seed}: run `proctor grade {self.path.name}` to resume it, or empty its "
                f"{SAMPLE_COLUMN} column to draw a new one")
        had_column = SAMPLE_COLUMN in self.frame.columns
        places = [""] * self.rows
        for place, row in enumerate(order, start=1):
            places[row] = str(place)
        before = self.frame[SAMPLE_COLUMN].copy() if had_column else None
        self.frame[SAMPLE_COLUMN] = places
        try:
            self._rebuild_lines()
            self._write()
        except BaseException:
            if before is None:
                self.frame.drop(columns=[SAMPLE_COLUMN], inplace=True)
            else:
                self.frame[SAMPLE_COLUMN] = before
            self._rebuild_lines()
            raise
        self.sample_order = order

    def _rebuild_lines(self) -> None:
        self._lines = [_line(self.frame.columns)]
        self._lines += [_line(row) for row in self.frame.itertuples(index=False)]

    @property
    def order(self) -> list[int]:
        """The rows being graded, in grading order: the sample's, or every row. Do not modify the list."""
        if self.sample_order is not None:
            return self.sample_order
        if len(self._all_rows) != self.rows:
            self._all_rows = list(range(self.rows))
        return self._all_rows

    def next_ungraded(self, after: int | None = None) -> int | None:
        """The first ungraded row after `after` in grading order (wrapping round), or None when all are graded."""
        order = self.order
        start = order.index(after) + 1 if after is not None and after in order else 0
        for row in order[start:] + order[:start]:
            if not self.verdict(row):
                return row
        return None

    def disagreements(self) -> list[int]:
        """Rows (in grading order) where the person and the judge both gave a verdict and differ."""
        verdicts, judges = self._verdicts, self._judges
        return [row for row in self.order if verdicts[row] and judges[row] and verdicts[row] != judges[row]]

    # -- statistics

    def stats(self) -> GradingStats:
        order = self.order
        verdicts = [self._verdicts[row] for row in order]
        correct = verdicts.count(CORRECT)
        incorrect = verdicts.count(INCORRECT)
        graded = correct + incorrect
        low, high = wilson_interval(correct, graded)
        stats = GradingStats(rows=self.rows, scope=len(order), graded=graded, correct=correct, incorrect=incorrect,
                             interval=Estimate(correct / graded if graded else None, low, high))
        if self.sample_order is not None:
            stats.sample_size = len(self.sample_order)
            stats.whole_file = population_estimate(correct, graded, self.rows)
        if self.has_judge:
            stats.has_judge = True
            pairs = [(self._verdicts[r], self._judges[r]) for r in order if self._verdicts[r] and self._judges[r]]
            human = [h for h, _ in pairs]
            judge = [j for _, j in pairs]
            stats.judge_compared = len(pairs)
            stats.judge_agreement = agreement(human, judge)
            stats.judge_kappa = cohens_kappa(human, judge)
            stats.disagreements = self.disagreements()
        return stats


def format_stats(stats: GradingStats, name: str) -> str:
    """The short table `proctor grade --stats` prints."""

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:.1f}%"

    lines = [f"{name}: {stats.rows} rows" + (f", sample of {stats.sample_size}" if stats.sample_size else "")]
    lines.append(f"graded      {stats.graded} of {stats.scope}")
    share = pct(stats.interval.share)
    lines.append(f"correct     {stats.correct} of {stats.graded} = {share}  "
                 f"(95% CI {pct(stats.interval.low)}–{pct(stats.interval.high)}, Wilson)")
    if stats.whole_file is not None:
        whole = stats.whole_file
        rows = "—" if whole.share is None else f"{whole.share * stats.rows:.0f}"
        lines.append(f"whole file  ≈ {pct(whole.share)} (95% CI {pct(whole.low)}–{pct(whole.high)}), "
                     f"≈ {rows} of {stats.rows} rows correct")
    if stats.has_judge:
        kappa = "—" if stats.judge_kappa is None else f"{stats.judge_kappa:.3f}"
        lines.append(f"judge       agreement {pct(stats.judge_agreement)} on {stats.judge_compared} rows, "
                     f"Cohen's kappa {kappa}, {len(stats.disagreements)} disagreement"
                     f"{'' if len(stats.disagreements) == 1 else 's'}")
        if stats.disagreements:
            shown = ", ".join(str(r + 1) for r in stats.disagreements[:20])
            more = " …" if len(stats.disagreements) > 20 else ""
            lines.append(f"            rows {shown}{more}")
    return "\n".join(lines)
