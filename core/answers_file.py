"""The answers file on disk: what an earlier run left in it, which of its rows are which benchmark row, the backup of
rows whose answer or verdict leaves, and the file being written while answers arrive.

**A row is known by its text, not its place.** Each row's key is its question, its reference answer, and which
occurrence of that pair it is (a question asked twice in a benchmark is two rows). Inserting a question at the top
of the benchmark, or sorting the graded answers file in a spreadsheet, changes no key: every answer and verdict
finds its row again.

**A verdict belongs to an answer.** The columns right of the answer columns in an answers file (`human_verdict`,
`human_note`, and the judge's columns when the file came from `proctor evaluate -o`) judge the row's answer: they
stay with it while the answer is unchanged, and leave the row with it when it is asked again. `ROW_COLUMNS`
(`human_sample`) belong to the row, not its answer, and stay. Before anything is overwritten, every earlier row
that loses its answer or verdict is written, whole and unchanged, to a backup beside the file (`write_backup`).

While a run writes the file it keeps a journal beside it (`.OUT.csv.journal`): one JSON line per answer the moment
it arrives, keyed like the rows, so that a run killed at any moment loses nothing received.
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.csvio import (
    QUESTION_ALIASES,
    REFERENCE_ALIASES,
    csv_line,
    find_column,
    read_rows,
    write_bytes_atomic,
    write_lines_atomic,
)
from core.errors import WriteError
from core.safety import scrubber, secrets_in_force

ANSWER_COLUMNS = ["llm_answer", "model", "latency_s", "prompt_tokens", "completion_tokens", "error"]
ROW_COLUMNS = ("human_sample",)  # columns after the answers that belong to the row, not to its answer
GRADE_COLUMNS = ("human_verdict", "human_note")  # a person's work: never dropped without --force and a backup
SAVE_INTERVAL_S = 0.025

Key = tuple[str, str, int]  # (question, reference, occurrence)


def row_keys(questions: list[str], references: list[str]) -> list[Key]:
    """Each row's key: its question and reference text, and which occurrence of that pair it is."""
    seen: Counter[tuple[str, str]] = Counter()
    keys = []
    for pair in zip(questions, references, strict=True):
        keys.append((pair[0], pair[1], seen[pair]))
        seen[pair] += 1
    return keys


def journal_path(out: str | os.PathLike[str]) -> Path:
    """The append-only journal kept beside an answers file while it is being written."""
    out = Path(out)
    return out.with_name(f".{out.name}.journal")


# ---------------------------------------------------------------- what an earlier run left


@dataclass
class EarlierRow:
    """One row of the earlier answers file (journal applied)."""

    key: Key
    values: list[str]  # the answer columns
    extras: list[str]  # the cells right of the answer columns, as in `Earlier.extra_header`
    cells: list[str]  # the whole row as in `Earlier.header`: what the backup gets

    @property
    def answered(self) -> bool:
        """It holds an answer and no error: it need not be asked again (by the same model)."""
        return self.values[0] != "" and self.values[5] == ""

    @property
    def model(self) -> str:
        return self.values[1]


@dataclass
class Earlier:
    """An earlier answers file at the output path, and its journal. Empty when there is none."""

    path: Path
    question_col: str | None = None
    exists: bool = False
    foreign: bool = False  # it exists but is not an answers file (or cannot be read): never merged into
    header: list[str] = field(default_factory=list)
    extra_header: list[str] = field(default_factory=list)
    rows: list[EarlierRow] = field(default_factory=list)
    has_reference: bool = False

    def _at(self, names: tuple[str, ...]) -> list[int]:
        return [i for i, name in enumerate(self.extra_header) if name in names]

    def answer_bound(self, row: EarlierRow) -> list[str]:
        """The row's cells that judge its answer (they leave with it)."""
        return [row.extras[i] for i, name in enumerate(self.extra_header) if name not in ROW_COLUMNS]

    def graded(self, row: EarlierRow) -> bool:
        """A person graded it: a verdict or a note."""
        return any(row.extras[i].strip() for i in self._at(GRADE_COLUMNS))

    def has_verdict(self, row: EarlierRow) -> bool:
        return any(row.extras[i].strip() for i in self._at(("human_verdict",)))

    def loses_something(self, row: EarlierRow) -> bool:
        """Taking its answer off the row would lose work: an answer, or any cell judging it."""
        return row.values[0] != "" or any(cell.strip() for cell in self.answer_bound(row))

    def without_answer_cells(self, row: EarlierRow) -> list[str]:
        """`row.extras` with the cells that judge the answer emptied (for a row asked again)."""
        return [cell if name in ROW_COLUMNS else "" for name, cell in zip(self.extra_header, row.extras, strict=True)]


def _split_header(columns: list[str]) -> tuple[list[str], list[str]]:
    """An answers file's columns: (input columns, extra columns right of the answer columns)."""
    after = columns.index("llm_answer")
    inputs = [c for c in columns[:after] if c not in ANSWER_COLUMNS]
    extras = [c for c in columns[after:] if c not in ANSWER_COLUMNS]
    return inputs, extras


def read_earlier(out: Path, journal: Path) -> Earlier:
    """What an earlier run left in `out` and its journal (a kill -9 leaves the journal a little ahead of the CSV).

    A file at `out` that is not an answers file comes back `foreign` (its bytes are never merged into). A file that
    cannot be read faithfully raises `InputError` (it is never rewritten).
    """
    earlier = Earlier(out)
    if out.exists() and not (out.is_file() and out.stat().st_size == 0):  # an empty file holds nothing to keep
        earlier.exists = True
        table = read_rows(out, rewrite=True)  # refused if it could only be read by replacing bytes
        columns = table.columns
        if "llm_answer" not in columns:
            earlier.foreign = True
            return earlier
        inputs, earlier.extra_header = _split_header(columns)
        question_col = earlier.question_col = find_column(inputs, QUESTION_ALIASES)
        reference_col = find_column(inputs, REFERENCE_ALIASES)
        earlier.has_reference = reference_col is not None
        earlier.header = [*columns, *(c for c in ANSWER_COLUMNS if c not in columns)]
        at = {name: i for i, name in enumerate(columns)}
        rows = table.rows

        def cells_of(names: list[str]) -> list[list[str]]:
            # A column the file lacks (an answer column, in a file cut by hand) reads as empty cells.
            where = [at.get(name) for name in names]
            return [["" if k is None else row[k] for k in where] for row in rows]

        questions = [row[at[question_col]] for row in rows] if question_col else [""] * len(rows)
        references = [row[at[reference_col]] for row in rows] if reference_col else [""] * len(rows)
        values, extras, cells = cells_of(ANSWER_COLUMNS), cells_of(earlier.extra_header), cells_of(earlier.header)
        earlier.rows = [EarlierRow(k, v, x, c) for k, v, x, c in
                        zip(row_keys(questions, references), values, extras, cells, strict=True)]
    if journal.exists():
        _apply_journal(earlier, journal)
    return earlier


def _apply_journal(earlier: Earlier, journal: Path) -> None:
    """Answers the journal holds replace the row's (its verdict was given on an older answer and is backed up by
    the run that wrote the journal); answers for rows the CSV does not hold yet are added."""
    by_key = {row.key: row for row in earlier.rows}
    if not earlier.header:
        earlier.header = ["question", "reference", *ANSWER_COLUMNS]
    with open(journal, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
                key = (str(entry["question"]), str(entry.get("reference", "")), int(entry.get("nth", 0)))
                values = [str(v) for v in entry["values"]]
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a line torn by a kill mid-write
            if len(values) != len(ANSWER_COLUMNS):
                continue
            row = by_key.get(key)
            if row is None:
                cells = ["" for _ in earlier.header]
                for name, value in zip(ANSWER_COLUMNS, values, strict=True):
                    cells[earlier.header.index(name)] = value
                cells[earlier.header.index(earlier.question_col) if earlier.question_col else 0] = key[0]
                row = EarlierRow(key, values, [""] * len(earlier.extra_header), cells)
                earlier.rows.append(row)
                by_key[key] = row
                continue
            row.values = values
            row.extras = earlier.without_answer_cells(row)
            for name, value in [*zip(ANSWER_COLUMNS, values, strict=True),
                                *zip(earlier.extra_header, row.extras, strict=True)]:
                row.cells[earlier.header.index(name)] = value


def match(keys: list[Key], earlier: Earlier, use_reference: bool) -> tuple[list[EarlierRow | None], list[EarlierRow]]:
    """Each benchmark row's earlier row (or None), by key; and the earlier rows no benchmark row claimed.

    `use_reference=False` matches by question alone (when only one of the two files has a reference column).
    """
    if use_reference:
        earlier_keys = [row.key for row in earlier.rows]
    else:
        earlier_keys = row_keys([row.key[0] for row in earlier.rows], [""] * len(earlier.rows))
        keys = row_keys([key[0] for key in keys], [""] * len(keys))
    by_key = dict(zip(earlier_keys, earlier.rows, strict=True))
    matched = [by_key.pop(key, None) for key in keys]
    return matched, list(by_key.values())


# ---------------------------------------------------------------- the backup


def backup_path(out: Path, now: datetime | None = None) -> Path:
    """`OUT.backup-YYYYMMDD-HHMMSS.csv` beside `out`, never the name of an existing file."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    candidate = out.with_name(f"{out.stem}.backup-{stamp}{out.suffix or '.csv'}")
    n = 2
    while candidate.exists():
        candidate = out.with_name(f"{out.stem}.backup-{stamp}-{n}{out.suffix or '.csv'}")
        n += 1
    return candidate


def write_backup(earlier: Earlier, rows: list[EarlierRow]) -> Path:
    """Write `rows` of the earlier file, whole and as they were, to a new backup beside it; its path.

    A foreign file (not an answers file, or unreadable) is copied byte for byte.
    """
    path = backup_path(earlier.path)
    if earlier.foreign or not earlier.header:
        write_bytes_atomic(earlier.path.read_bytes(), path)
    else:
        write_lines_atomic([csv_line(earlier.header), *(csv_line(row.cells) for row in rows)], path)
    return path


# ---------------------------------------------------------------- the answers file being written


class AnswersFile:
    """The output rows, each kept pre-encoded as a CSV line, saved atomically in batches, backed by a journal.

    A row is its input cells (encoded once), its answer cells (encoded when they change) and, after them, the cells
    of columns an earlier answers file had beyond the answer columns (a grader's verdicts, say).
    """

    def __init__(self, out: Path, header: list[str], inputs: list[list[str]], keys: list[Key],
                 secrets: list[str], extra_header: list[str] | None = None) -> None:
        self.out = out
        self.journal = journal_path(out)
        self.keys = keys
        self.extra_header = list(extra_header or [])
        self.header_line = csv_line(header + ANSWER_COLUMNS + self.extra_header)
        self.prefix = [csv_line(row)[:-2] + "," for row in inputs]  # input cells, neutralised once
        blank_extras = "," + csv_line([""] * len(self.extra_header))[:-2] if self.extra_header else ""
        self.suffix = [blank_extras] * len(inputs)
        self.answers: list[list[str]] = [[""] * len(ANSWER_COLUMNS) for _ in inputs]
        blank = csv_line(self.answers[0] if inputs else [])[:-2]
        self.lines = [f"{p}{blank}{x}\r\n" for p, x in zip(self.prefix, self.suffix, strict=True)]
        self.scrub = scrubber(secrets_in_force(secrets))  # server words in the error column: no key in force
        self.dirty = False
        self.saved = False  # written at least once: the earlier file is gone
        self.holding = False  # no background save yet: the earlier file stays until the first answer (--fresh)
        self.save_interval = SAVE_INTERVAL_S
        self.last_save = 0.0
        self._journal_handle: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None
        for stale in out.parent.glob(f".{glob.escape(out.name)}.*.tmp"):
            stale.unlink(missing_ok=True)  # a save cut short by a kill -9 (we hold the lock: it is not a live one)

    def set(self, row: int, values: list[str], extras: list[str] | None = None) -> None:
        self.answers[row] = values
        if extras is not None and self.extra_header:
            self.suffix[row] = "," + csv_line(extras)[:-2]
        self.lines[row] = f"{self.prefix[row]}{csv_line(values)[:-2]}{self.suffix[row]}\r\n"
        self.dirty = True

    def record(self, row: int, values: list[str]) -> None:
        """Keep one answer: in memory, then in the journal at once (it is what survives a kill -9)."""
        self.set(row, values)
        question, reference, nth = self.keys[row]
        entry = {"row": row, "question": question, "reference": reference, "nth": nth, "values": values}
        try:
            if self._journal_handle is None:
                self._journal_handle = open(self.journal, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._journal_handle.write(json.dumps(entry) + "\n")
            self._journal_handle.flush()  # in the OS's hands now: a killed process loses nothing
        except OSError as error:  # a full disk or a read-only folder: one line, not a traceback
            raise WriteError(self.journal, error) from None

    def _write(self, text: str, fsync: bool) -> None:
        started = time.perf_counter()
        write_lines_atomic([text], self.out, fsync=fsync)
        self.saved = True
        # A huge file saved every 25 ms would eat the CPU the requests need: keep saving under ~10% of the time.
        self.save_interval = max(SAVE_INTERVAL_S, 10 * (time.perf_counter() - started))

    def _wait_for_writer(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # a failed background save (disk full, say) surfaces here

    def save(self, *, final: bool = False) -> None:
        """Write the whole file now (after any background save in flight), fsync'd when `final`."""
        self._wait_for_writer()
        self.dirty = False
        self._write("".join([self.header_line, *self.lines]), final)
        self.last_save = time.perf_counter()

    def maybe_save(self) -> None:
        """Save in the background if there is news and the last save is old enough.

        Replacing a file makes the kernel flush it (ext4 does on rename): 2-4 ms that must not block the event
        loop the requests run on, so the write happens in a thread; the loop only joins the pre-encoded lines.
        """
        if self.holding or not self.dirty or time.perf_counter() - self.last_save < self.save_interval:
            return
        if self._pending is not None:
            if not self._pending.done():
                return  # one save at a time; this news goes in the next one
            self._wait_for_writer()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="answers-save")
        self.dirty = False
        self.last_save = time.perf_counter()
        self._pending = self._executor.submit(self._write, "".join([self.header_line, *self.lines]), False)

    def close(self, *, remove_journal: bool) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._journal_handle is not None:
            self._journal_handle.close()
            self._journal_handle = None
        if remove_journal:
            try:
                self.journal.unlink()
            except FileNotFoundError:
                pass
