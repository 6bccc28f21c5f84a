"""CSV files as people really have them, and as spreadsheets safely open them.

Reading: delimiter sniffed (comma, semicolon, tab), UTF-8 with or without BOM with a cp1252/latin-1 fallback,
quoted fields with commas and newlines, CRLF, blank lines skipped, every cell read as text.
Writing: atomic (a temporary file in the same folder, then rename), UTF-8 with a BOM so that Excel and LibreOffice
both detect it, and cells a spreadsheet would run as a formula neutralised with a leading apostrophe (OWASP CSV
injection). Reading undoes that neutralisation, so a file read and written again does not grow apostrophes.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?%?$")
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
# The umask can only be read by setting it: do it once, at import, rather than racing other threads on every write.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def neutralise(value: object) -> object:
    """A cell as it may be written: text a spreadsheet would run as a formula gets a leading apostrophe.

    Plain numbers such as `-3` or `+1.5` are left alone: a spreadsheet reads them as numbers, never as formulas.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def unneutralise(value: object) -> object:
    """Undo `neutralise` on a cell read back from one of our files."""
    if isinstance(value, str) and len(value) > 1 and value[0] == "'" and value[1:].startswith(FORMULA_PREFIXES):
        return value[1:]
    return value


def _decode(raw: bytes, path: Path) -> str:
    if b"\x00" in raw[:4096]:
        raise InputError(f"{path} is not a text file (it holds binary data)")
    for encoding in ENCODINGS:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{path} is not text in UTF-8, cp1252 or latin-1")  # pragma: no cover - latin-1 decodes all


def _sniff_delimiter(text: str) -> str:
    sample = text[:64 * 1024]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample.strip() else ""
        counts = {d: first.count(d) for d in ",;\t"}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV file into a DataFrame of strings (missing cells are ""), header row first.

    Raises `InputError` for a missing, empty, binary or malformed file.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a CSV file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from None
    text = _decode(raw, path)
    if not text.strip():
        raise InputError(f"{path} is empty")
    delimiter = _sniff_delimiter(text)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as error:
        raise InputError(f"{path} is not a readable CSV file: {error}") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise InputError(f"{path} is empty")
    header = [cell.strip() for cell in rows[0]]
    while header and not header[-1]:
        header.pop()  # a trailing delimiter on the header line
    if not header:
        raise InputError(f"{path} has no header row")
    width = len(header)
    body = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) > width:
            if any(cell.strip() for cell in row[width:]):
                raise InputError(f"{path}: row {number} has {len(row)} cells but the header has {width}")
            row = row[:width]
        body.append(row + [""] * (width - len(row)))
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        name = name or f"column_{i + 1}"
        if name in seen:  # duplicate headers: keep both, as pandas would
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        header[i] = name
    frame = pd.DataFrame(body, columns=header, dtype=str)
    return frame.map(unneutralise)


def _usual_mode(tmp: str, path: Path) -> None:
    """mkstemp makes 0600 files: give the result the mode of the file it replaces, else the umask's default."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    os.chmod(tmp, mode)


def write_bytes_atomic(data: bytes, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
    """Replace `path` with `data` atomically: a temporary file beside it, flushed to disk, then renamed over it.

    A reader, or a process killed half way, sees the old file or the new one, never a mix. `fsync=False` skips
    the flush to disk: the rename is still atomic and a killed process still leaves a whole file (the page cache
    outlives the process); only a power cut could lose the last write. Frequent intermediate saves use it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        _usual_mode(tmp, path)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_csv_atomic(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write `frame` to `path` atomically (temp file + fsync + rename), spreadsheet-safe, UTF-8 with BOM."""
    text = frame.map(neutralise).to_csv(index=False, lineterminator="\r\n")
    write_bytes_atomic(text.encode("utf-8-sig"), path)


def csv_line(cells: Iterable[object]) -> str:
    """One CSV record exactly as `write_csv_atomic` writes it: cells neutralised, quoted when needed, CRLF.

    Callers that rewrite a growing file often (answering a benchmark) encode each row once with this and hand the
    lines to `write_lines_atomic`, instead of re-serialising a whole DataFrame on every save.
    """
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(["" if c is None else neutralise(c) for c in cells])
    return buffer.getvalue()


def write_lines_atomic(lines: Iterable[str], path: str | os.PathLike[str], *, fsync: bool = True) -> None:
    """Write records made by `csv_line` (header first) to `path` atomically, UTF-8 with BOM (see
    `write_bytes_atomic` for `fsync`)."""
    write_bytes_atomic("".join(lines).encode("utf-8-sig"), path, fsync=fsync)


def normalise_header(name: str) -> str:
    """`Expected_Answer ` -> `expectedanswer`; `Réponse` -> `reponse`: case, spaces, underscores, accents ignored."""
    decomposed = unicodedata.normalize("NFKD", str(name))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[\s_\-]+", "", plain).lower()


QUESTION_ALIASES = ("question", "prompt", "input", "query", "questions", "prompts", "user input")
REFERENCE_ALIASES = ("answer", "expected answer", "expected_response", "expected response", "expected", "reference",
                     "reference answer", "ground truth", "groundtruth", "réponse", "reponse", "target", "answers",
                     "expected output", "correct answer", "gold answer", "réponse attendue", "bonne réponse")


def find_column(columns: list[str], aliases: tuple[str, ...]) -> str | None:
    """The first column (in alias order) whose normalised name matches one of `aliases`."""
    by_name = {normalise_header(c): c for c in reversed(columns)}
    for alias in aliases:
        hit = by_name.get(normalise_header(alias))
        if hit is not None:
            return hit
    return None
