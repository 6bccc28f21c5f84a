"""Answering a benchmark: read a CSV of questions, ask a model each one, save a spreadsheet-ready answers CSV.

`answer_benchmark` goes in four steps, under the output's lock (`core.filelock`: one writer at a time):

1. **read** the benchmark, and what an earlier run left in the output (`core.answers_file.read_earlier`);
2. **match** the earlier rows to the benchmark's by question and reference text, not by position (`_plan`): a row
   already answered by the same model is not asked again (unless `fresh`), and keeps its verdict and note;
   writing over another benchmark's file, or over verdicts given on another model's answers, is refused unless
   `force` (`_refuse_unless_forced`);
3. **back up** the earlier rows that lose their answer or verdict (asked again, or no longer in the benchmark),
   whole, to `OUT.backup-DATE-TIME.csv` beside the output, before anything is overwritten (`_back_up`);
4. **ask and save** (`_ask_and_save`): every answer goes to a journal beside the output (`.OUT.csv.journal`) the
   moment it arrives, and the CSV is rewritten atomically from pre-encoded rows in small time-bounded batches
   (`SAVE_INTERVAL_S`); at the end (or on Ctrl-C, cancel, or a fatal error) the CSV is written one last time and
   the journal removed. A run killed at any moment loses nothing received, and the same command resumes it.

The answers file holds every input column in its original order, then `ANSWER_COLUMNS`, then the columns a grader
or a judge added, rows in the benchmark's order.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from core.answers_file import (
    ANSWER_COLUMNS,
    SAVE_INTERVAL_S,
    AnswersFile,
    Earlier,
    EarlierRow,
    Key,
    journal_path,
    match,
    read_earlier,
    row_keys,
    write_backup,
)
from core.csvio import QUESTION_ALIASES, REFERENCE_ALIASES, find_column, read_rows
from core.errors import InputError
from core.filelock import FileLock

if TYPE_CHECKING:
    import pandas as pd

    from core.config import ModelSpec, Settings
    from core.llm import Answer

__all__ = ["ANSWER_COLUMNS", "AnswerSummary", "answer_benchmark", "default_output_path", "journal_path",
           "load_benchmark"]

EMPTY_QUESTION_ERROR = "empty question: not sent"
NOT_ASKED_ERROR = "not asked (beyond --limit)"
PROGRESS_INTERVAL_S = 0.1


# ---------------------------------------------------------------- reading


@dataclass
class Benchmark:
    """A benchmark read from a CSV: every cell a string, the question and reference columns found by alias.

    Held as plain lists, so that answering never imports pandas (about 1 s before the first question could leave);
    `frame` makes the DataFrame for those who want one.
    """

    path: Path
    columns: list[str]
    rows: list[list[str]]
    question_col: str
    reference_col: str | None
    warnings: list[str] = field(default_factory=list)

    def column(self, name: str) -> list[str]:
        at = self.columns.index(name)
        return [row[at] for row in self.rows]

    @property
    def questions(self) -> list[str]:
        return self.column(self.question_col)

    @cached_property
    def frame(self) -> pd.DataFrame:
        from core.csvio import to_frame

        return to_frame(self.columns, self.rows)


def is_answers_file(frame: pd.DataFrame | Benchmark) -> bool:
    """True when `frame` (or a benchmark) is an answers file (it has the `llm_answer` column)."""
    return "llm_answer" in frame.columns


def load_benchmark(path: str | os.PathLike[str]) -> Benchmark:
    """Read a benchmark CSV (see `core.csvio.read_rows` for the variations it accepts).

    Raises `InputError` for a missing, empty or binary file, or one without a question column. A missing reference
    column is allowed, with a warning: answering does not need it, grading and evaluation will.
    """
    path = Path(path)
    read = read_rows(path)
    columns = read.columns
    question_col = find_column(columns, QUESTION_ALIASES)
    if question_col is None:
        raise InputError(
            f"{path} has no question column (looked for {', '.join(QUESTION_ALIASES[:4])}; "
            f"found {', '.join(columns[:8])})"
        )
    if not read.rows:
        raise InputError(f"{path} has a header but no rows")
    reference_col = find_column(columns, REFERENCE_ALIASES)
    warnings = list(read.warnings)
    if reference_col is None:
        warnings.append(
            f"{path.name} has no reference answer column (answer, expected answer, reference, ground truth, ...): "
            "answering works, grading and evaluation will need one"
        )
    bench = Benchmark(path=path, columns=columns, rows=read.rows, question_col=question_col,
                      reference_col=reference_col, warnings=warnings)
    empty = sum(1 for question in bench.questions if not question.strip())
    if empty:
        warnings.append(f"{empty} row(s) of {path.name} have an empty question: kept in the output, not sent")
    return bench


_UNSAFE_IN_NAMES = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')  # refused by Windows, or a path separator somewhere
_RESERVED_NAMES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:80].strip("-.")


def default_output_path(input_path: str | os.PathLike[str], model_uri: str | None) -> Path:
    """Where answers go without `-o`: beside the input, `STEM.answers.PROVIDER-MODEL.csv`.

    `benchmark.csv` answered by `azure:/gpt-4.1-nano` -> `benchmark.answers.azure-gpt-4.1-nano.csv`, by
    `openai:/gpt-4.1-nano` -> `benchmark.answers.openai-gpt-4.1-nano.csv`: two models, two files. The name is one
    every OS accepts: none of `< > : " / \\ | ? *` or control characters, no reserved name (CON, NUL, COM1...),
    no trailing dot or space, at most about 200 characters.
    """
    input_path = Path(input_path)
    provider, _, name = (model_uri or "").partition(":")
    model = "-".join(part for part in (_slug(provider), _slug(name.strip("/ "))) if part) or "model"
    stem = _UNSAFE_IN_NAMES.sub("-", input_path.stem)[:120].rstrip(". ") or "benchmark"
    if stem.split(".")[0].upper() in _RESERVED_NAMES:
        stem = f"_{stem}"
    return input_path.with_name(f"{stem}.answers.{model}.csv")


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
    backup: Path | None = None  # where earlier rows that lost their answer or verdict went, before any overwrite
    backup_rows: int = 0
    backup_verdicts: int = 0
    backup_note: str = ""  # one line saying how many verdicts went where (also among `warnings`)
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


# ---------------------------------------------------------------- answering: read, match, back up, ask and save


@dataclass
class _Plan:
    """What a run will do, decided before anything is written: the output rows and what each one needs."""

    out: Path
    header: list[str]  # the input columns, as written
    extra_header: list[str]  # the earlier file's columns right of the answer columns, carried over
    inputs: list[list[str]]
    keys: list[Key]
    values: list[list[str]]  # each row's answer cells as it starts
    extras: list[list[str] | None]
    ask: list[int]  # rows to send
    earlier: Earlier
    orphans: list[EarlierRow]  # earlier rows no benchmark row claims, with something in them
    replaced: list[EarlierRow]  # earlier rows asked again, with something in them
    skipped: int = 0
    already_done: int = 0
    not_sent: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def leaving(self) -> list[EarlierRow]:
        """The earlier rows that lose their answer or verdict: they go to the backup before any write."""
        return self.orphans + self.replaced


def _input_columns(bench: Benchmark, warnings: list[str]) -> tuple[list[str], list[str]]:
    """The benchmark's columns that go into the output, and their names there."""
    header = list(bench.columns)
    if is_answers_file(bench):
        # Answering an answers file again (another model, say): its answers, and the verdicts given on them, are
        # not this run's; only the columns before them are the questions'.
        header = header[:header.index("llm_answer")]
        header = [c for c in header if c not in ANSWER_COLUMNS]
        warnings.append(f"{bench.path.name} already holds answers: its answer columns, and any verdicts after "
                        "them, are left out of the output")
    clashes = [c for c in header if c in ANSWER_COLUMNS]
    if clashes:
        warnings.append(f"input column(s) {', '.join(clashes)} renamed with an _input suffix: those names are "
                        "the answer columns'")
    return header, [f"{c}_input" if c in ANSWER_COLUMNS else c for c in header]


def _plan(bench: Benchmark, out: Path, model_uri: str, *, limit: int | None, fresh: bool, force: bool) -> _Plan:
    """Read the earlier answers file at `out` (and its journal) and match its rows to the benchmark's by text."""
    warnings: list[str] = []
    header, out_header = _input_columns(bench, warnings)
    questions = bench.questions
    references = bench.column(bench.reference_col) if bench.reference_col else [""] * len(questions)
    keys = row_keys(questions, references)

    try:
        earlier = read_earlier(out, journal_path(out))
    except InputError as error:
        if not force:
            raise InputError(f"{error}; it is not overwritten: fix it, choose another -o, or pass --force (it is "
                             "first copied to a backup beside it)") from None
        earlier = Earlier(out, exists=True, foreign=True)
    matched, orphans = match(keys, earlier, use_reference=earlier.has_reference == (bench.reference_col is not None))
    n_rows = len(keys)
    if limit is not None:
        # Never shrink an earlier file: rows beyond the limit that were there before stay, with what they had.
        last_matched = max((i for i, row in enumerate(matched) if row is not None), default=-1)
        n_rows = min(n_rows, max(limit, last_matched + 1))
    orphans += [row for row in matched[n_rows:] if row is not None]
    extra_header = [c for c in earlier.extra_header if c not in out_header]
    extra_at = [earlier.extra_header.index(c) for c in extra_header]

    def carried(cells: list[str]) -> list[str]:
        return [cells[k] for k in extra_at]

    at = [bench.columns.index(name) for name in header]
    inputs = [[row[k] for k in at] for row in bench.rows[:n_rows]]
    plan = _Plan(out=out, header=out_header, extra_header=extra_header, inputs=inputs, keys=keys[:n_rows],
                 values=[], extras=[], ask=[], earlier=earlier,
                 orphans=[row for row in orphans if earlier.loses_something(row)], replaced=[], warnings=warnings)
    ask_rows = min(n_rows, limit) if limit is not None else n_rows
    for i in range(n_rows):
        before = matched[i]
        if not questions[i].strip():
            plan.values.append(["", model_uri, "", "", "", EMPTY_QUESTION_ERROR])
            plan.extras.append(carried(before.extras) if before is not None else None)
            plan.skipped += 1
        elif before is not None and before.answered and before.model in ("", model_uri) and not fresh:
            plan.values.append(before.values)  # the same answer: its verdict and note stay with it
            plan.extras.append(carried(before.extras))
            plan.already_done += 1
        elif i >= ask_rows:
            plan.values.append(before.values if before is not None else ["", "", "", "", "", NOT_ASKED_ERROR])
            plan.extras.append(carried(before.extras) if before is not None else None)
            plan.not_sent += 1
        else:
            plan.ask.append(i)
            if before is None:
                plan.values.append([""] * len(ANSWER_COLUMNS))
                plan.extras.append(None)
                continue
            if earlier.loses_something(before):
                plan.replaced.append(before)  # asked again: the old answer and its verdict go to the backup
            # An earlier failure stays visible until this run replaces it; an earlier answer does not.
            plan.values.append(before.values if before.values[0] == "" else [""] * len(ANSWER_COLUMNS))
            plan.extras.append(carried(earlier.without_answer_cells(before)))
    return plan


def _refuse_unless_forced(plan: _Plan, bench: Benchmark, model_uri: str) -> None:
    """Writing over a file that is not this benchmark's answers, or over verdicts given on another model's
    answers, is refused (exit 2) unless `--force`: it is what `-o` pointed at the wrong file looks like."""
    earlier, out = plan.earlier, plan.out
    if earlier.foreign:
        raise InputError(f"{out} exists and is not an answers file: nothing was written; choose another -o, or pass "
                         "--force to replace it (it is first copied to a backup beside it)")
    not_here = [row for row in plan.orphans if earlier.graded(row)]
    if not_here:
        raise InputError(f"{out} holds {len(not_here)} graded row(s) whose question is not in {bench.path.name} "
                         "(another benchmark's answers?): nothing was written; choose another -o, or pass --force "
                         "(those rows then go to a backup beside it)")
    by_others = [row for row in plan.replaced if earlier.graded(row) and row.model not in ("", model_uri)]
    if by_others:
        count, others = len(by_others), sorted({row.model for row in by_others})
        raise InputError(f"{out} holds {count} graded answer(s) by {', '.join(others)}, not {model_uri}: nothing was "
                         "written; choose another -o, or pass --force to answer again (the old answers and their "
                         "verdicts then go to a backup beside it)")


def _back_up(plan: _Plan, summary: AnswerSummary) -> None:
    """Before anything is overwritten: the earlier rows that lose their answer or verdict, to a backup beside it."""
    earlier = plan.earlier
    if not (earlier.foreign or plan.leaving):
        return
    summary.backup = write_backup(earlier, plan.leaving)
    summary.backup_rows = len(plan.leaving)
    summary.backup_verdicts = sum(1 for row in plan.leaving if earlier.has_verdict(row))
    if earlier.foreign:
        summary.backup_note = f"{plan.out.name} was not an answers file: copied whole to {summary.backup}"
    else:
        summary.backup_note = (f"{summary.backup_verdicts} verdict(s) moved out of {plan.out.name}, with "
                               f"{summary.backup_rows} earlier row(s) whose answer changed or left the benchmark "
                               f"(answers, verdicts, notes): backup in {summary.backup}")
    summary.warnings.append(summary.backup_note)


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
    force: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    settings: Settings | None = None,
    benchmark: Benchmark | None = None,
) -> AnswerSummary:
    """Ask `model` every question of the benchmark at `path`; write the answers CSV to `out`; return a summary.

    The steps: read the benchmark and the earlier answers file (under the file's lock: one writer at a time), match
    their rows by text, back up what would be lost, ask the questions still to ask, save as answers arrive.

    Synchronous: it runs the async engine in its own event loop, so a Textual thread worker can call it. Setting
    `cancel` stops at once (answers received are kept). Ctrl-C saves and raises `AnswerInterrupted` (a
    KeyboardInterrupt carrying the summary). Raises `InputError` for a bad file, or an output holding another
    benchmark's or model's verdicts (unless `force`); `FileLockedError` when another process writes the output;
    `ConfigError` for a missing setting or a refused key / unknown model (those fail every row alike).
    """
    from core.config import load_settings, resolve_model

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

    with FileLock(out_path):
        plan = _plan(bench, out_path, spec.uri, limit=limit, fresh=fresh, force=force)
        if not force:
            _refuse_unless_forced(plan, bench, spec.uri)
        summary = AnswerSummary(out=out_path, model=spec.uri, rows=len(plan.keys),
                                warnings=[*bench.warnings, *plan.warnings], skipped=plan.skipped,
                                already_done=plan.already_done, not_sent=plan.not_sent)
        _back_up(plan, summary)
        return _ask_and_save(plan, spec, settings, summary, started, fresh=fresh, concurrency=concurrency,
                             on_progress=on_progress, cancel=cancel or threading.Event())


def _ask_and_save(plan: _Plan, spec: ModelSpec, settings: Settings, summary: AnswerSummary, started: float, *,
                  fresh: bool, concurrency: int | None, on_progress: Callable[[Progress], None] | None,
                  cancel: threading.Event) -> AnswerSummary:
    """Send the rows still to ask; save every answer as it arrives (journal at once, the CSV in small batches)."""
    from core.llm import CallOptions, Engine, run_sync

    file = AnswersFile(plan.out, plan.header, plan.inputs, plan.keys, settings.secrets(), plan.extra_header)
    for i, (values, extras) in enumerate(zip(plan.values, plan.extras, strict=True)):
        file.set(i, values, extras)
    if fresh:
        # Start over: the journal is not this run's. The file itself stays until the first answer arrives, so
        # that a bad key does not cost the user their earlier answers.
        file.journal.unlink(missing_ok=True)
        file.holding = True
    else:
        # The merged state is now the file; the journal it came from has done its work.
        file.save()
        file.close(remove_journal=True)
    questions = {i: plan.keys[i][0] for i in plan.ask}
    pending = [(i, questions[i]) for i in plan.ask]

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
        file.record(answer.key, _answer_values(answer, spec.uri, file.scrub))
        if answer.ok:
            file.holding = False
            counts["answered"] += 1
            if answer.latency_s is not None:
                latencies.append(answer.latency_s)
            summary.prompt_tokens += answer.prompt_tokens or 0
            summary.completion_tokens += answer.completion_tokens or 0
        else:
            counts["failed"] += 1
        file.maybe_save()

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
            run_sync(run)
    except KeyboardInterrupt:
        summary.cancelled = True
        finish()
        raise AnswerInterrupted(summary) from None
    except BaseException:
        # A fatal error: what was received is saved all the same (the journal goes only once the CSV holds it).
        try:
            if counts["answered"] or not fresh:  # with --fresh, failures alone do not replace the earlier file
                file.save(final=True)
            file.close(remove_journal=True)
        except OSError:
            file.close(remove_journal=False)
        if not file.saved and summary.backup is not None and not plan.earlier.foreign:
            summary.backup.unlink(missing_ok=True)  # nothing was written over: the earlier file is still whole
        raise
    finish()
    return summary
