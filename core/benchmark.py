"""Answering a benchmark: read a CSV of questions, ask a model each one, save a spreadsheet-ready answers CSV.

The answers file holds every input column in its original order, then `ANSWER_COLUMNS`, rows in the input's
order. It is saved as the answers arrive, so that a run killed at any moment loses nothing:

- every answer is appended to a journal beside the output (`.OUT.csv.journal`) the moment it arrives;
- the CSV itself is rewritten atomically from pre-encoded rows in small time-bounded batches (`SAVE_INTERVAL_S`),
  so it is at most a few tens of milliseconds behind the journal;
- at the end (or on Ctrl-C, cancel, or a fatal error) the CSV is written one last time and the journal removed.

Running the same command again resumes: rows already answered (an answer, no error, the same question at the same
row, by the same model) are taken from the CSV and the journal and not sent again; failed rows are retried.
`fresh=True` starts over.
"""

from __future__ import annotations

import asyncio
import glob
import json
import math
import os
import re
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.csvio import (
    QUESTION_ALIASES,
    REFERENCE_ALIASES,
    csv_line,
    find_column,
    read_csv,
    read_table,
    write_lines_atomic,
)
from core.errors import InputError, WriteError

if TYPE_CHECKING:
    import pandas as pd

    from core.config import Settings
    from core.llm import Answer

ANSWER_COLUMNS = ["llm_answer", "model", "latency_s", "prompt_tokens", "completion_tokens", "error"]
EMPTY_QUESTION_ERROR = "empty question: not sent"
NOT_ASKED_ERROR = "not asked (beyond --limit)"
SAVE_INTERVAL_S = 0.025
PROGRESS_INTERVAL_S = 0.1


# ---------------------------------------------------------------- reading


@dataclass
class Benchmark:
    """A benchmark read from a CSV: every cell a string, the question and reference columns found by alias."""

    path: Path
    frame: pd.DataFrame
    question_col: str
    reference_col: str | None
    warnings: list[str] = field(default_factory=list)

    @property
    def questions(self) -> list[str]:
        return self.frame[self.question_col].tolist()


def is_answers_file(frame: pd.DataFrame) -> bool:
    """True when `frame` is an answers file (it has the `llm_answer` column)."""
    return "llm_answer" in frame.columns


def load_benchmark(path: str | os.PathLike[str]) -> Benchmark:
    """Read a benchmark CSV (see `core.csvio.read_table` for the variations it accepts).

    Raises `InputError` for a missing, empty or binary file, or one without a question column. A missing reference
    column is allowed, with a warning: answering does not need it, grading and evaluation will.
    """
    path = Path(path)
    read = read_csv(path)
    frame = read.frame
    columns = [str(c) for c in frame.columns]
    question_col = find_column(columns, QUESTION_ALIASES)
    if question_col is None:
        raise InputError(
            f"{path} has no question column (looked for {', '.join(QUESTION_ALIASES[:4])}; "
            f"found {', '.join(columns[:8])})"
        )
    if frame.empty:
        raise InputError(f"{path} has a header but no rows")
    reference_col = find_column(columns, REFERENCE_ALIASES)
    warnings = list(read.warnings)
    if reference_col is None:
        warnings.append(
            f"{path.name} has no reference answer column (answer, expected answer, reference, ground truth, ...): "
            "answering works, grading and evaluation will need one"
        )
    empty = int((frame[question_col].str.strip() == "").sum())
    if empty:
        warnings.append(f"{empty} row(s) of {path.name} have an empty question: kept in the output, not sent")
    return Benchmark(path=path, frame=frame, question_col=question_col, reference_col=reference_col,
                     warnings=warnings)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "model"


def default_output_path(input_path: str | os.PathLike[str], model_uri: str | None) -> Path:
    """Where answers go without `-o`: beside the input, `STEM.answers.MODEL.csv`.

    `benchmark.csv` answered by `azure:/gpt-4.1-nano` -> `benchmark.answers.gpt-4.1-nano.csv`.
    """
    input_path = Path(input_path)
    provider, _, name = (model_uri or "").partition(":")
    name = name.strip("/ ") or provider or "model"
    return input_path.with_name(f"{input_path.stem}.answers.{_slug(name)}.csv")


def journal_path(out: str | os.PathLike[str]) -> Path:
    """The append-only journal kept beside an answers file while it is being written."""
    out = Path(out)
    return out.with_name(f".{out.name}.journal")


# ---------------------------------------------------------------- progress and summary


@dataclass
class Progress:
    """Where a run stands. `done` counts rows finished this run (answered or failed) out of `total` to send."""

    done: int
    total: int
    failed: int
    skipped: int
    elapsed_s: float
    rate: float  # rows per second
    eta_s: float | None
    answered: int = 0
    already_done: int = 0


@dataclass
class AnswerSummary:
    """What a run did. Counts are of rows; `answered`/`failed` are this run's, `already_done` came from a resume."""

    out: Path
    model: str
    rows: int
    answered: int = 0
    failed: int = 0
    skipped: int = 0
    already_done: int = 0
    not_sent: int = 0  # rows left unanswered by a cancel (or beyond --limit)
    latency_mean_s: float | None = None
    latency_p95_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cancelled: bool = False
    setup_s: float = 0.0  # reading, resuming and connecting, before the first question was sent
    elapsed_s: float = 0.0  # sending and receiving
    warnings: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every row asked was answered: nothing failed and nothing was cut short."""
        return self.failed == 0 and not self.cancelled

    @property
    def exit_code(self) -> int:
        """0 when every row was answered, 1 when some failed or were left unsent (they are in the file, marked)."""
        return 0 if self.complete else 1


class AnswerInterrupted(KeyboardInterrupt):
    """Ctrl-C during `answer_benchmark`: what was received is saved; `summary` says what."""

    def __init__(self, summary: AnswerSummary) -> None:
        super().__init__("interrupted")
        self.summary = summary


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


# ---------------------------------------------------------------- the answers file being written


class _AnswersFile:
    """The output rows, each kept pre-encoded as a CSV line, saved atomically in batches, backed by a journal.

    A row is its input cells (encoded once), its answer cells (encoded when they change) and, after them, the cells
    of columns an earlier answers file had beyond the answer columns (a grader's verdicts, say), kept as they were.
    """

    def __init__(self, out: Path, header: list[str], inputs: list[list[str]], secrets: list[str],
                 extra_header: list[str] | None = None) -> None:
        self.out = out
        self.journal = journal_path(out)
        self.extra_header = list(extra_header or [])
        self.header_line = csv_line(header + ANSWER_COLUMNS + self.extra_header)
        self.prefix = [csv_line(row)[:-2] + "," for row in inputs]  # input cells, neutralised once
        blank_extras = "," + csv_line([""] * len(self.extra_header))[:-2] if self.extra_header else ""
        self.suffix = [blank_extras] * len(inputs)
        self.answers: list[list[str]] = [[""] * len(ANSWER_COLUMNS) for _ in inputs]
        blank = csv_line(self.answers[0] if inputs else [])[:-2]
        self.lines = [f"{p}{blank}{x}\r\n" for p, x in zip(self.prefix, self.suffix, strict=True)]
        self.secrets = [s for s in secrets if s]
        self.dirty = False
        self.save_interval = SAVE_INTERVAL_S
        self.last_save = 0.0
        self._journal_handle: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None
        for stale in out.parent.glob(f".{glob.escape(out.name)}.*.tmp"):
            stale.unlink(missing_ok=True)  # a save cut short by a kill -9

    def set(self, row: int, values: list[str], extras: list[str] | None = None) -> None:
        self.answers[row] = values
        if extras is not None and self.extra_header:
            self.suffix[row] = "," + csv_line(extras)[:-2]
        self.lines[row] = f"{self.prefix[row]}{csv_line(values)[:-2]}{self.suffix[row]}\r\n"
        self.dirty = True

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "****")
        return text

    def record(self, row: int, question: str, values: list[str]) -> None:
        """Keep one answer: in memory, then in the journal at once (it is what survives a kill -9)."""
        self.set(row, values)
        try:
            if self._journal_handle is None:
                self._journal_handle = open(self.journal, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._journal_handle.write(json.dumps({"row": row, "question": question, "values": values}) + "\n")
            self._journal_handle.flush()  # in the OS's hands now: a killed process loses nothing
        except OSError as error:  # a full disk or a read-only folder: one line, not a traceback
            raise WriteError(self.journal, error) from None

    def _write(self, text: str, fsync: bool) -> None:
        started = time.perf_counter()
        write_lines_atomic([text], self.out, fsync=fsync)
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
        if not self.dirty or time.perf_counter() - self.last_save < self.save_interval:
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


@dataclass
class _Previous:
    """An earlier run's answers file, journal applied: per row (question, answer values, extra cells)."""

    rows: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    extra_header: list[str] = field(default_factory=list)


def _previous_answers(out: Path, journal: Path) -> _Previous:
    """What an earlier run left in `out` and its journal (a kill -9 leaves the journal a little ahead)."""
    previous = _Previous()
    if out.exists():
        frame = read_table(out, rewrite=True)
        if not is_answers_file(frame):
            raise InputError(f"{out} exists and is not an answers file: choose another -o, or pass --fresh to "
                             "replace it")
        columns = [str(c) for c in frame.columns]
        # Columns after the answer columns were added by someone else (grading): they are carried over.
        after = columns.index("llm_answer")
        previous.extra_header = [c for c in columns[after:] if c not in ANSWER_COLUMNS]
        question_col = find_column([c for c in columns[:after] if c not in ANSWER_COLUMNS], QUESTION_ALIASES)
        for c in ANSWER_COLUMNS:
            if c not in frame.columns:
                frame[c] = ""
        questions = frame[question_col].tolist() if question_col else [""] * len(frame)
        values = frame[ANSWER_COLUMNS].values.tolist()
        extras = frame[previous.extra_header].values.tolist() if previous.extra_header else [[]] * len(frame)
        previous.rows = [(q, list(v), list(x)) for q, v, x in zip(questions, values, extras, strict=True)]
    if journal.exists():
        blank_extras = [""] * len(previous.extra_header)
        with open(journal, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                    row, question, values = int(entry["row"]), str(entry["question"]), list(entry["values"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a kill mid-write
                if len(values) != len(ANSWER_COLUMNS) or row < 0:
                    continue
                while len(previous.rows) <= row:
                    previous.rows.append(("", [""] * len(ANSWER_COLUMNS), blank_extras))
                extras = previous.rows[row][2] if previous.rows[row][0] == question else blank_extras
                previous.rows[row] = (question, [str(v) for v in values], extras)
    return previous


# ---------------------------------------------------------------- answering


def _answer_values(answer: Answer, model_uri: str, scrub: Callable[[str], str]) -> list[str]:
    return [
        answer.text if answer.ok else "",
        model_uri,
        f"{answer.latency_s:.3f}" if answer.latency_s is not None else "",
        "" if answer.prompt_tokens is None else str(answer.prompt_tokens),
        "" if answer.completion_tokens is None else str(answer.completion_tokens),
        scrub(answer.error or "").replace("\r", " ").replace("\n", " "),
    ]


def answer_benchmark(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    model: str | None = None,
    concurrency: int | None = None,
    limit: int | None = None,
    fresh: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    settings: Settings | None = None,
    benchmark: Benchmark | None = None,
) -> AnswerSummary:
    """Ask `model` every question of the benchmark at `path`; write the answers CSV to `out`; return a summary.

    Synchronous: it runs the async engine in its own event loop, so a Textual thread worker can call it. Setting
    `cancel` stops at once (answers received are kept). Ctrl-C saves and raises `AnswerInterrupted` (a
    KeyboardInterrupt carrying the summary). Raises `InputError` for a bad file and `ConfigError` for a missing
    setting or a refused key / unknown model (those fail every row alike, so the run stops).
    """
    from core.config import load_settings, resolve_model
    from core.llm import CallOptions, Engine

    started = time.perf_counter()
    if concurrency is not None and concurrency < 1:
        raise InputError(f"concurrency must be at least 1, not {concurrency}")
    if limit is not None and limit < 1:
        raise InputError(f"limit must be at least 1, not {limit}")
    settings = settings or load_settings()
    bench = benchmark or load_benchmark(path)
    spec = resolve_model(model, settings)
    out_path = Path(out) if out else default_output_path(bench.path, spec.uri)
    if out_path.resolve() == bench.path.resolve():
        raise InputError(f"the output {out_path} is the input file: the input is never modified; choose another -o")
    if out_path.is_dir():
        raise InputError(f"{out_path} is a folder: give -o a file name")
    warnings = list(bench.warnings)

    frame = bench.frame
    header = [str(c) for c in frame.columns]
    if is_answers_file(frame):
        # Answering an answers file again (another model, say): its old answer columns are replaced, not doubled.
        warnings.append(f"{bench.path.name} already holds answers: its {', '.join(ANSWER_COLUMNS)} columns are "
                        "replaced in the output")
        header = [c for c in header if c not in ANSWER_COLUMNS]
    clashes = [c for c in header if c in ANSWER_COLUMNS]
    if clashes:
        warnings.append(f"input column(s) {', '.join(clashes)} renamed with an _input suffix: those names are "
                        "the answer columns'")
    out_header = [f"{c}_input" if c in ANSWER_COLUMNS else c for c in header]
    questions = frame[bench.question_col].tolist()

    earlier = _Previous()
    journal = journal_path(out_path)
    if fresh:
        journal.unlink(missing_ok=True)
    else:
        earlier = _previous_answers(out_path, journal)
    previous = earlier.rows
    extra_header = [c for c in earlier.extra_header if c not in out_header]
    extra_at = [earlier.extra_header.index(c) for c in extra_header]
    n_rows = len(questions)
    if limit is not None:
        # Never shrink an earlier, longer answers file: rows beyond the limit keep what they had.
        n_rows = min(n_rows, max(limit, len(previous)))
    inputs = frame[header].values.tolist()[:n_rows] if header else [[] for _ in range(n_rows)]
    inputs = [[str(c) for c in row] for row in inputs]

    file = _AnswersFile(out_path, out_header, inputs, settings.secrets(), extra_header)
    summary = AnswerSummary(out=out_path, model=spec.uri, rows=n_rows, warnings=warnings)
    pending: list[tuple[int, str]] = []
    ask_rows = min(n_rows, limit) if limit is not None else n_rows
    for i in range(n_rows):
        question = questions[i]
        before = previous[i] if i < len(previous) and previous[i][0] == question else None
        extras = [before[2][k] for k in extra_at] if before is not None else None
        if not question.strip():
            file.set(i, ["", spec.uri, "", "", "", EMPTY_QUESTION_ERROR], extras)
            summary.skipped += 1
        elif before is not None and before[1][0] != "" and before[1][5] == "" and before[1][1] in ("", spec.uri):
            file.set(i, before[1], extras)
            summary.already_done += 1
        elif i >= ask_rows:
            file.set(i, before[1] if before is not None else ["", "", "", "", "", NOT_ASKED_ERROR], extras)
            summary.not_sent += 1
        else:
            if before is not None:
                file.set(i, before[1], extras)  # an earlier failure stays visible until this run replaces it
            pending.append((i, question))
    if not fresh:
        # The merged state is now the file; the journal it came from has done its work. (With --fresh the old file
        # stays until the first answer arrives, so that a bad key does not cost the user their earlier answers.)
        file.save()
        file.close(remove_journal=True)

    latencies: list[float] = []
    counts = {"answered": 0, "failed": 0}
    total = len(pending)
    if pending:
        from core.llm import warm_up

        warm_up()  # import the SDK now, so that its 2 s count as set-up, not as answering
    sent_at = time.perf_counter()
    summary.setup_s = sent_at - started
    last_progress = 0.0

    def progress(force: bool = False) -> None:
        nonlocal last_progress
        now = time.perf_counter()
        if on_progress is None or (not force and now - last_progress < PROGRESS_INTERVAL_S):
            return
        last_progress = now
        done = counts["answered"] + counts["failed"]
        elapsed = now - sent_at
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        on_progress(Progress(done=done, total=total, failed=counts["failed"], skipped=summary.skipped,
                             elapsed_s=elapsed, rate=rate, eta_s=eta, answered=counts["answered"],
                             already_done=summary.already_done))

    def on_answer(answer: Answer) -> None:
        values = _answer_values(answer, spec.uri, file.scrub)
        file.record(answer.key, answer.question, values)
        if answer.ok:
            counts["answered"] += 1
            if answer.latency_s is not None:
                latencies.append(answer.latency_s)
            summary.prompt_tokens += answer.prompt_tokens or 0
            summary.completion_tokens += answer.completion_tokens or 0
        else:
            counts["failed"] += 1
        file.maybe_save()

    cancel = cancel or threading.Event()
    engine = Engine(spec, CallOptions.from_settings(settings, concurrency=concurrency))

    async def run() -> None:
        try:
            task = asyncio.ensure_future(engine.ask_many(pending, on_answer, cancel))
            while not task.done():
                await asyncio.wait({task}, timeout=SAVE_INTERVAL_S)
                if cancel.is_set() and not task.done():
                    # Stop now: requests in flight are abandoned (nothing of theirs was received).
                    task.cancel()
                    try:
                        await task
                    except asyncio.CancelledError:
                        pass
                    return
                file.maybe_save()  # answers that arrived after the last save, when no new one comes to trigger it
                progress()
            task.result()  # a fatal ConfigError (bad key, unknown model) surfaces here
        finally:
            await engine.aclose()

    def finish() -> None:
        summary.answered = counts["answered"]
        summary.failed = counts["failed"]
        summary.not_sent += total - counts["answered"] - counts["failed"]
        summary.cancelled = cancel.is_set() or summary.cancelled
        summary.elapsed_s = time.perf_counter() - sent_at
        summary.latency_mean_s = statistics.fmean(latencies) if latencies else None
        summary.latency_p95_s = _p95(latencies)
        file.save(final=True)
        file.close(remove_journal=True)
        progress(force=True)

    progress(force=True)
    try:
        if pending:
            asyncio.run(run())
    except KeyboardInterrupt:
        summary.cancelled = True
        finish()
        raise AnswerInterrupted(summary) from None
    except BaseException:
        # A fatal error: what was received is saved all the same (the journal goes only once the CSV holds it).
        try:
            if counts["answered"] + counts["failed"] or not fresh:
                file.save(final=True)
            file.close(remove_journal=True)
        except OSError:
            file.close(remove_journal=False)
        raise
    finish()
    return summary
