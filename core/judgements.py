"""The judge's verdicts written into the answers CSV that was judged, beside the human's.

After an evaluation, every row of the answers file gets `judge_verdict` (correct/incorrect/empty),
`judge_rationale`, `judge_error`, `judge` (the judge's URI), `run_id` and `trace_id` (the row's MLflow trace, empty
for a row that was not sent). Every other column is kept as it is, the human's included, and the rows keep their
order. `human_synced` (see core.feedback) is emptied: the rows now point at new traces, where no human verdict has
been logged yet.

The file is re-read under its lock just before writing: a person may have graded rows while the judge worked, and
those verdicts must survive. If the file no longer holds the rows that were judged (same count, same questions),
nothing is written and a warning says so: the verdicts are still in the run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import InputError, ProctorError
from core.grading import SYNCED_COLUMN as SYNC_COLUMN

if TYPE_CHECKING:
    import pandas as pd

LOCK_WAIT_S = 5.0
JUDGE_FILE_COLUMNS = ("judge_verdict", "judge_rationale", "judge_error", "judge", "run_id", "trace_id")


def _same(a: str, b: str) -> bool:
    return " ".join(str(a).split()) == " ".join(str(b).split())


def record_judgements(path: str | os.PathLike[str], results: pd.DataFrame, questions: Sequence[str],
                      question_column: str, run_id: str, judge: str) -> str | None:
    """Write the judge's columns of `results` (one row per file row, in order) into the answers CSV at `path`.

    `questions` are the questions as they were judged: the file must still hold them, row for row. Returns None
    when written, else a warning saying why the file was left alone.
    """
    from core.csvio import read_table, write_csv_atomic
    from core.filelock import FileLock, FileLockedError

    path = Path(path)
    lock = FileLock(path)
    try:
        # A Grade pane saving a verdict holds it for milliseconds; one with the file open holds it until closed.
        lock.acquire(wait=LOCK_WAIT_S)
    except FileLockedError as error:
        return f"the judge's verdicts were not written into {path.name}: {error}; they are in the run"
    except ProctorError as error:  # a read-only folder, say: the run is logged all the same
        return f"the judge's verdicts were not written into {path.name} ({error}); they are in the run"
    try:
        try:
            frame = read_table(path)
        except InputError as error:
            return f"the judge's verdicts were not written into {path.name}: {error}"
        if len(frame) != len(questions) or question_column not in frame.columns or not all(
                _same(cell, q) for cell, q in zip(frame[question_column], questions, strict=True)):
            return (f"{path.name} changed while it was judged (its rows are not the ones judged): the judge's "
                    "verdicts were not written into it; they are in the run")
        frame = apply_judgements(frame, results, run_id, judge)
        try:
            write_csv_atomic(frame, path)
        except (ProctorError, OSError) as error:
            return f"the judge's verdicts were not written into {path.name} ({error}); they are in the run"
    finally:
        lock.release()
    return None


def apply_judgements(frame: pd.DataFrame, results: pd.DataFrame, run_id: str, judge: str) -> pd.DataFrame:
    """`frame` with the judge's columns set from `results` (same rows, same order); other columns kept."""
    n = len(frame)

    def column(name: str) -> list[str]:
        if name not in results.columns:
            return [""] * n
        return ["" if v is None else str(v) for v in results[name].tolist()]

    values = {
        "judge_verdict": column("judge_verdict"),
        "judge_rationale": column("judge_rationale"),
        "judge_error": column("judge_error"),
        "judge": [judge] * n,
        "run_id": [run_id] * n,
        "trace_id": column("trace_id"),
        # New traces carry no human verdict yet: every verdict on these rows is now waiting to be sent.
        SYNC_COLUMN: [""] * n,
    }
    frame = frame.copy()
    for name, cells in values.items():
        frame[name] = cells  # an existing column keeps its place; a new one goes at the right end
    return frame
