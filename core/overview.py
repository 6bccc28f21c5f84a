"""What a CSV file holds, at a glance, for the app's file pickers: rows, how many are graded, judge verdicts.

Reading goes through core.csvio like everything else, so the figures match what opening the file would show.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import ProctorError


def describe_csv(path: str | os.PathLike[str]) -> str:
    """One short line: `48 rows · 20 graded · judged`, `benchmark · 48 questions`, or why it cannot be read."""
    from core.csvio import read_csv

    try:
        frame = read_csv(Path(path)).frame
    except ProctorError as error:
        return f"cannot be read: {str(error).rpartition(': ')[2]}"
    except OSError as error:
        return f"cannot be read: {error.strerror or error}"
    rows = len(frame)
    if "llm_answer" not in frame.columns:
        return f"benchmark · {rows} question{'s' if rows != 1 else ''}"
    parts = [f"{rows} row{'s' if rows != 1 else ''}"]
    if "human_verdict" in frame.columns:
        parts.append(f"{int((frame['human_verdict'].str.strip() != '').sum())} graded")
    else:
        parts.append("0 graded")
    if "judge_verdict" in frame.columns and (frame["judge_verdict"].str.strip() != "").any():
        parts.append("judged")
    return " · ".join(parts)
