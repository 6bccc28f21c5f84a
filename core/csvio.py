"""CSV files as people really have them, and Proctor's own CSV files, read back exactly as they were written.

Reading (`read_rows`, and as a DataFrame `read_csv`, `read_table`) is faithful or refuses with one line naming the line:
- encodings: UTF-8 with or without BOM, UTF-16 with BOM (Excel's "Unicode text"), files wholly in cp1252 or
  latin-1. A UTF-8 file with a few bytes that are not UTF-8 stays UTF-8: each bad byte becomes U+FFFD, a warning
  names the lines, and the file is never written back (`rewrite=True` refuses it: that would lose those bytes).
- the delimiter (comma, semicolon or tab) is the one the header line uses; quoting is strict: a quote that opens a
  cell and never closes, or a row with more cells than the header, is an `InputError`. No field-size limit.
- every cell is text, exactly as in the file (a user's header names are stripped of spaces); rows whose cells are
  all blank (blank lines, `,,,`) are skipped.

Escaping, so that spreadsheets never run a cell as a formula (OWASP CSV injection) and yet every value round-trips:
on writing, a cell starting with = + - @ tab CR, or with the escape character ' itself, gets one leading '
(plain numbers such as -3 are left alone); on reading one of Proctor's own files (one with an `llm_answer` column),
exactly one leading ' is removed from such a cell. A user's file is read verbatim. NUL characters are dropped on
writing and lone surrogates become U+FFFD (neither can be stored as UTF-8 text); every other character round-trips.

Writing goes through one atomic path, `write_bytes_atomic`: a temporary file beside the target, fsync, rename over
it (through a symlink, its target is written and the link stays a link), UTF-8 with a BOM so that Excel and
LibreOffice detect it. A failed write (disk full, read-only folder) raises `WriteError`: the file is left as it was.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import InputError, WriteError

if TYPE_CHECKING:
    import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
_ESCAPED = (*FORMULA_PREFIXES, ESCAPE)
OWN_FILE_COLUMN = "llm_answer"  # a file with this column was written by Proctor: its cells are escaped
DELIMITERS = (",", ";", "\t")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?%?$")
_SURROGATE = re.compile("[\ud800-\udfff]")
_BAD_BYTE = re.compile("[\udc80-\udcff]")  # an undecodable byte, as `surrogateescape` leaves it
_VALID_NON_ASCII = re.compile("[^\x00-\x7f\udc80-\udcff]")
_QUOTED = re.compile(r'"[^"]*"')
_NEWLINE = re.compile(r"\r\n|\r|\n")
_FIELD_LIMIT = 2**31 - 1  # the csv module's largest (a C long on every OS); its default, 131,072, is far too small
# The umask can only be read by setting it: do it once, at import, rather than racing other threads on every write.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


# -- escaping -------------------------------------------------------------------------------------------------


def neutralise(value: object) -> str:
    """A cell as Proctor writes it: text, NUL dropped, escaped with a leading ' when it starts with = + - @ tab CR
    or ' (plain numbers such as `-3` excepted: a spreadsheet reads them as numbers, never as formulas)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ == "NAType":
        return ""
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():  # (the checks are ordered fastest first: answers can be megabytes)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _SURROGATE.sub("\ufffd", text)
    if text.startswith(_ESCAPED) and not _PLAIN_NUMBER.match(text):
        return ESCAPE + text
    return text


def unneutralise(value: str) -> str:
    """Undo `neutralise` on a cell of one of Proctor's own files: exactly one leading ' before = + - @ tab CR '."""
    if value[:1] == ESCAPE and value[1:].startswith(_ESCAPED):
        return value[1:]
    return value


# -- reading --------------------------------------------------------------------------------------------------


@dataclass
class CsvRows:
    """A CSV file as read, without pandas: unique column names, and every row as that many strings.

    `ours` when it is one of Proctor's files (and was unescaped). `proctor answer` works on these, so that its first
    request leaves before pandas (about 1 s to import) is loaded.
    """

    path: Path
    columns: list[str]
    rows: list[list[str]]
    encoding: str
    ours: bool
    warnings: list[str] = field(default_factory=list)


@dataclass
class CsvFile:
    """A CSV file as read: every cell a string; `ours` when it is one of Proctor's files (and was unescaped)."""

    path: Path
    frame: pd.DataFrame
    encoding: str
    ours: bool
    warnings: list[str] = field(default_factory=list)


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a CSV file")
    try:
        return path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from None


def _lines_list(lines: list[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:10])
    return shown + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")


def _decode(raw: bytes, path: Path) -> tuple[str, str, list[int]]:
    """The text of `raw`, the encoding it was read as, and the lines holding bytes that were not text (U+FFFD now).

    UTF-8 is tried first. A file that is not valid UTF-8 is still UTF-8 if it has a BOM or any valid non-ASCII
    UTF-8 character (a cp1252 file practically never does); otherwise it is wholly cp1252 (latin-1 if not even that).
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16"), "utf-16", []
        except UnicodeDecodeError:
            raise InputError(f"{path} starts as UTF-16 text but is not valid UTF-16") from None
    if b"\x00" in raw[:4096]:
        raise InputError(f"{path} is not a text file (it holds binary data)")
    try:
        return raw.decode("utf-8-sig"), "utf-8", []
    except UnicodeDecodeError:
        text = raw.decode("utf-8-sig", errors="surrogateescape")
    if raw.startswith(codecs.BOM_UTF8) or _VALID_NON_ASCII.search(text):
        bad = [n for n, line in enumerate(text.split("\n"), start=1) if _BAD_BYTE.search(line)]
        return _BAD_BYTE.sub("\ufffd", text), "utf-8", bad
    try:
        return raw.decode("cp1252"), "cp1252", []
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1", []


def _delimiter(text: str) -> str:
    """The delimiter of the header line, quoted cells aside: the only candidate it holds, else the sniffer's pick
    among those it holds, else the commonest; comma when it holds none (a one-column file)."""
    sample = text[:64 * 1024]
    lines = _NEWLINE.split(_QUOTED.sub('""', sample))
    header = next((line for line in lines if line.strip()), "")
    counts = {d: header.count(d) for d in DELIMITERS}
    present = "".join(d for d in DELIMITERS if counts[d])
    if len(present) <= 1:
        return present or ","
    try:
        return csv.Sniffer().sniff(sample, delimiters=present).delimiter
    except csv.Error:
        return max(counts, key=lambda d: counts[d])


def _records(text: str, delimiter: str, path: Path) -> list[tuple[int, int, list[str]]]:
    """(first line, last line, cells) of every record with a non-blank cell. Strict: malformed quoting is an
    `InputError`."""
    csv.field_size_limit(_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return records
        except csv.Error as error:
            if "end of data" in str(error):
                raise InputError(f"{path}: line {start}: a quote opens a cell and never closes (a quote inside a "
                                 'quoted cell is written "")') from None
            seen = f", seen on line {reader.line_num}" if reader.line_num != start else ""
            raise InputError(f"{path}: line {start}: a quoted cell is not closed properly ({error}{seen}; a quote "
                             'inside a quoted cell is written "")') from None
        if any(cell.strip() for cell in row):
            records.append((start, reader.line_num, row))


def _unique_names(header: list[str]) -> list[str]:
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        name = name if name.strip() else f"column_{i + 1}"
        if name in seen:  # duplicate headers: keep both, as pandas would
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        names.append(name)
    return names


def read_rows(path: str | os.PathLike[str], *, ours: bool | None = None, rewrite: bool = False) -> CsvRows:
    """Read a CSV file faithfully, header row first (missing cells are ""), as lists of strings (no pandas).

    `ours`: unescape the cells (see the module docstring); by default, when the header has `llm_answer`.
    `rewrite=True`: the caller will write this file back, so a file that could only be read by replacing bytes
    with U+FFFD is refused instead of warned about. Raises `InputError` for a missing, empty, binary or malformed
    file, naming the line.
    """
    path = Path(path)
    text, encoding, bad_lines = _decode(_read_bytes(path), path)
    warnings = []
    if bad_lines:
        where = f"bytes that are not UTF-8 on line{'s' if len(bad_lines) > 1 else ''} {_lines_list(bad_lines)}"
        if rewrite:
            raise InputError(f"{path}: {where}: Proctor will not rewrite this file (they would be lost); fix them "
                             "or save the file as UTF-8")
        warnings.append(f"{path.name}: {where}, read as \ufffd")
    records = _records(text, _delimiter(text), path)
    if not records:
        raise InputError(f"{path} is empty")
    header_line, _, header = records[0]
    width = len(header)
    named = width
    while named and not header[named - 1].strip():
        named -= 1  # a trailing delimiter on the header line, not a column
    rows = []
    for start, end, row in records[1:]:
        if len(row) > width:
            if any(cell.strip() for cell in row[width:]):
                raise InputError(f"{path}: line {start} has {len(row)} cells but the header (line {header_line}) has "
                                 f"{width}")
            row = row[:width]
        if len(row) < named and end > start:
            # A stray quote that swallowed the lines up to a quote at a line end leaves a short row spanning them.
            raise InputError(f"{path}: line {start}: a quoted cell runs on to line {end} and the row has only "
                             f"{len(row)} of {named} cells: a quote that never closes? (a row meant so must have all "
                             "its cells)")
        rows.append(row + [""] * (width - len(row)))
    while width > named and not any(row[width - 1] for row in rows):
        width -= 1
    if not width:
        raise InputError(f"{path} has no header row")
    if ours is None:
        ours = OWN_FILE_COLUMN in header
    if ours:
        header = [unneutralise(cell) for cell in header]
        rows = [[unneutralise(cell) for cell in row] for row in rows]
    else:
        header = [cell.strip() for cell in header]  # ` question ` is `question`: a name, not a value
    return CsvRows(path=path, columns=_unique_names(header[:width]), rows=[row[:width] for row in rows],
                   encoding=encoding, ours=ours, warnings=warnings)


def to_frame(columns: list[str], rows: list[list[str]]) -> pd.DataFrame:
    """A DataFrame of strings from `read_rows`' columns and rows."""
    import pandas as pd

    return pd.DataFrame(rows, columns=columns, dtype=str)


def read_csv(path: str | os.PathLike[str], *, ours: bool | None = None, rewrite: bool = False) -> CsvFile:
    """`read_rows` as a DataFrame of strings (see `read_rows` for what is accepted and refused)."""
    table = read_rows(path, ours=ours, rewrite=rewrite)
    return CsvFile(path=table.path, frame=to_frame(table.columns, table.rows), encoding=table.encoding,
                   ours=table.ours, warnings=table.warnings)


def read_table(path: str | os.PathLike[str], *, ours: bool | None = None, rewrite: bool = False) -> pd.DataFrame:
    """`read_csv(...).frame`: the cells of a CSV file as a DataFrame of strings."""
    return read_csv(path, ours=ours, rewrite=rewrite).frame


# -- writing --------------------------------------------------------------------------------------------------


def _usual_mode(tmp: str, path: Path) -> None:
    """mkstemp makes 0600 files: give the result the mode of the file it replaces, else the umask's default."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    os.chmod(tmp, mode)


def write_bytes_atomic(data: bytes, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
    """Replace `path` with `data` atomically: a temporary file beside it, flushed to disk, then renamed over it.

    A reader, or a process killed half way, sees the old file or the new one, never a mix. Through a symlink, the
    link's target is replaced and the link stays. `fsync=False` skips the flush to disk: the rename is still atomic
    and a killed process still leaves a whole file (the page cache outlives the process); only a power cut could
    lose the last write. Frequent intermediate saves use it. Raises `WriteError` (file untouched, no temp left).
    """
    shown = Path(path)
    target = Path(os.path.realpath(shown))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise WriteError(shown, error) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        _usual_mode(tmp, target)
        os.replace(tmp, target)
    except BaseException as error:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            raise WriteError(shown, error) from None
        raise


def csv_line(cells: Iterable[object]) -> str:
    """One CSV record as Proctor writes it: cells escaped (`neutralise`), comma-separated, CRLF, quoted when needed,
    and every cell quoted when one holds a semicolon or a tab (so that a header line never looks like another
    delimiter's).

    Callers that rewrite a growing file often (answering a benchmark) encode each row once with this and hand the
    lines to `write_lines_atomic`, instead of re-serialising a whole DataFrame on every save.
    """
    texts = [neutralise(c) for c in cells]
    quoting = csv.QUOTE_ALL if any(";" in t or "\t" in t for t in texts) else csv.QUOTE_MINIMAL
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n", quoting=quoting).writerow(texts)
    return buffer.getvalue()


def write_lines_atomic(lines: Iterable[str], path: str | os.PathLike[str], *, fsync: bool = True) -> None:
    """Write records made by `csv_line` (header first) to `path` atomically, UTF-8 with BOM (see
    `write_bytes_atomic` for `fsync`)."""
    write_bytes_atomic("".join(lines).encode("utf-8-sig"), path, fsync=fsync)


def write_csv_atomic(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write `frame`, header included, to `path` atomically: escaped cells, UTF-8 with BOM, CRLF."""
    rows = frame.itertuples(index=False, name=None)
    write_lines_atomic([csv_line(frame.columns), *(csv_line(row) for row in rows)], path)


# -- columns --------------------------------------------------------------------------------------------------


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
