"""core.csvio: files read faithfully or refused with the line, Proctor's own files round-tripped exactly, encodings,
symlinks and file-system errors. The round trip is a hypothesis property; the CLI cases go through tui.cli.main
against the fake server."""

from __future__ import annotations

import csv
import errno
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import csvio
from core.benchmark import load_benchmark
from core.csvio import csv_line, read_csv, read_table, write_bytes_atomic, write_csv_atomic, write_lines_atomic
from core.errors import InputError, WriteError
from core.grading import GradingSession
from tui.cli import main


def stored_cells(path: Path) -> list[list[str]]:
    """The cells exactly as on disk (no unescaping): what a spreadsheet sees."""
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))


# -- what Proctor writes, Proctor reads back -------------------------------------------------------------------

SPECIAL = ["=SUM(A1:A9)", "+1", "-x", "@cmd", "\tlead tab", "\rlead cr", "'", "''", "'+' in Python", "'-'", "-3",
           "+1.5", "'=1", '"', '""', 'say "hi"', "a,b", "a;b", "line\nbreak", "cr\r\nlf", "\r", " spaced ", "é à ç",
           "日本語", "emoji 🎉", "\x01\x07\x1b[31m\x7f", "\x0b\x0c\x1c\x85\u2028", "'\t"]
special = st.sampled_from(SPECIAL)
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
long = st.builds(lambda head, n: head + "y\n" * n, st.sampled_from(["", "=", "'", '"']), st.sampled_from([600, 70_000]))
cell_text = st.one_of(special, text, special, text, special, text, long)  # long cells (past the csv module's
# 131,072-character limit) less often: they make an example slow


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    header = draw(st.lists(cell_text.filter(lambda h: h.strip() and len(h) < 1000), min_size=1, max_size=5,
                           unique=True))
    cells = st.lists(cell_text, min_size=len(header), max_size=len(header))
    row = cells.filter(lambda r: any(c.strip() for c in r))  # a row of blank cells is skipped on reading
    return header, draw(st.lists(row, max_size=4))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                   HealthCheck.function_scoped_fixture])
@given(table=tables(), by_frame=st.booleans())
def test_any_table_written_by_proctor_reads_back_identical(tmp_path, table, by_frame):
    import pandas as pd

    header, rows = table
    path = tmp_path / "t.csv"
    if by_frame:
        write_csv_atomic(pd.DataFrame(rows, columns=header, dtype=str), path)
    else:  # the answering path: pre-encoded lines
        write_lines_atomic([csv_line(header), *(csv_line(row) for row in rows)], path)
    read = read_csv(path, ours=True)
    assert list(read.frame.columns) == header
    assert read.frame.values.tolist() == rows
    assert read.encoding == "utf-8" and not read.warnings
    for stored in stored_cells(path)[0] + [c for r in stored_cells(path)[1:] for c in r]:
        assert not stored.startswith(csvio.FORMULA_PREFIXES) or csvio._PLAIN_NUMBER.match(stored), \
            "no stored cell runs as a formula in a spreadsheet"


def test_proctor_files_are_recognised_by_their_llm_answer_column(tmp_path):
    path = tmp_path / "answers.csv"
    write_lines_atomic([csv_line(["=q", "llm_answer"]), csv_line(["'+' in Python", "@x"])], path)
    assert stored_cells(path) == [["'=q", "llm_answer"], ["''+' in Python", "'@x"]]
    read = read_csv(path)
    assert read.ours and list(read.frame.columns) == ["=q", "llm_answer"]
    assert read.frame.values.tolist() == [["'+' in Python", "@x"]]


def test_a_10_mb_answer_round_trips(tmp_path):
    answer = ("A long answer, with \"quotes\", commas;\n" * 300_000)[:10_000_000]
    path = tmp_path / "big.csv"
    write_lines_atomic([csv_line(["question", "llm_answer"]), csv_line(["Q?", answer])], path)
    assert read_table(path)["llm_answer"][0] == answer


def test_nul_is_dropped_and_every_other_control_character_kept(tmp_path):
    path = tmp_path / "ctl.csv"
    cell = "a\x00b\x01\x02\x1b[2J\x7f\x0bc"
    write_lines_atomic([csv_line(["question", "llm_answer"]), csv_line(["Q", cell])], path)
    assert b"\x00" not in path.read_bytes()
    assert read_table(path)["llm_answer"][0] == "ab\x01\x02\x1b[2J\x7f\x0bc"


def test_a_lone_surrogate_becomes_the_replacement_character(tmp_path):
    path = tmp_path / "s.csv"
    write_lines_atomic([csv_line(["question", "llm_answer"]), csv_line(["Q", "bad \ud800 half"])], path)
    assert read_table(path)["llm_answer"][0] == "bad \ufffd half"


# -- a user's file is read verbatim ---------------------------------------------------------------------------


def test_a_users_cells_are_read_exactly_as_written(tmp_path):
    path = tmp_path / "bench.csv"
    path.write_text("question,answer\n"
                    "'+' in Python: what does it do?,'-'\n"
                    "=1+1,@x\n"
                    "''quoted twice,\"multi\nline\ttab\"\n"
                    "\" padded \",é\n", encoding="utf-8")
    assert read_table(path).values.tolist() == [
        ["'+' in Python: what does it do?", "'-'"],
        ["=1+1", "@x"],
        ["''quoted twice", "multi\nline\ttab"],
        [" padded ", "é"],
    ]


def test_a_users_header_names_are_stripped_and_blank_ones_get_a_name(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(" Question ,,answer,\nQ,x,A,\n", encoding="utf-8")
    assert list(read_table(path).columns) == ["Question", "column_2", "answer"]


# -- faithful reading, or a refusal naming the line ------------------------------------------------------------


def test_a_quote_that_never_closes_is_refused_with_its_line(tmp_path):
    path = tmp_path / "bench.csv"
    rows = [f"Question {i}?,Answer {i}" for i in range(203)]
    rows[2] = '"Question 2 opens a quote,Answer 2'
    path.write_text("question,answer\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 4: a quote opens a cell and never closes"):
        read_table(path)


def test_a_quote_swallowing_later_rows_is_refused_with_its_line(tmp_path):
    path = tmp_path / "bench.csv"
    path.write_text('question,answer\nQ1,A1\n"Q2,A2\nQ3,A3\n"Q4",A4\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"line 3: a quoted cell is not closed properly .*seen on line 5"):
        read_table(path)


def test_a_quote_closed_only_at_a_later_line_end_is_refused_with_its_line(tmp_path):
    path = tmp_path / "bench.csv"
    path.write_text('question,answer\nQ1,A1\n"Q2 opens,A2\nQ3,A3\nQ4,size 5"\nQ5,A5\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"line 3: a quoted cell runs on to line 5 and the row has only 1 of 2 cells"):
        read_table(path)


def test_a_row_with_more_cells_than_the_header_is_refused_with_its_line(tmp_path):
    path = tmp_path / "bench.csv"
    path.write_text('question,answer\nQ1,A1\n"Q2\non two lines",A2\nQ3,A3,surplus\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"line 5 has 3 cells but the header \(line 1\) has 2"):
        read_table(path)


def test_trailing_empty_cells_and_blank_lines_are_not_data(tmp_path):
    path = tmp_path / "bench.csv"
    path.write_text("question,answer,\n\nQ1,A1,,\n,,\nQ2\n", encoding="utf-8")
    assert read_table(path).values.tolist() == [["Q1", "A1"], ["Q2", ""]]


def test_an_answers_file_that_cannot_be_read_is_never_rewritten(tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text('question,answer,llm_answer\nQ1,A1,x\nQ2,A2,"unclosed\nQ3,A3,z\n', encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(InputError, match="line 3"):
        GradingSession(path)
    assert path.read_bytes() == before


# -- encodings ------------------------------------------------------------------------------------------------

TEXT = "question\tanswer\nCapitale de la Côte d'Ivoire ?\tYamoussoukro\nÉté ?\t«saison»\n"
EXPECTED = [["Capitale de la Côte d'Ivoire ?", "Yamoussoukro"], ["Été ?", "«saison»"]]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252", "latin-1"])
def test_encodings_are_read_correctly(tmp_path, encoding):
    data = TEXT.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):  # Excel's "Unicode text" starts with a BOM
        data = "\ufeff".encode(encoding) + data
    path = tmp_path / "b.txt"
    path.write_bytes(data)
    read = read_csv(path)
    assert read.frame.values.tolist() == EXPECTED and list(read.frame.columns) == ["question", "answer"]
    assert not read.warnings


def test_a_file_with_bytes_latin1_has_but_cp1252_lacks_is_latin1(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes("question,answer\nQ\x81?,é\n".encode("latin-1"))
    assert read_csv(path).encoding == "latin-1" and read_table(path).values.tolist() == [["Q\x81?", "é"]]


def test_utf8_with_a_stray_byte_stays_utf8_with_a_warning_naming_the_line(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes("question,answer\nCôte ?,oui\n".encode() + b"caf\xe9 ?,non\n" + "Été ?,oui\n".encode())
    read = read_csv(path)
    assert read.encoding == "utf-8"
    assert read.frame.values.tolist() == [["Côte ?", "oui"], ["caf\ufffd ?", "non"], ["Été ?", "oui"]]
    assert read.warnings == ["b.csv: bytes that are not UTF-8 on line 3, read as \ufffd"]
    assert load_benchmark(path).warnings[0] == read.warnings[0]


def test_a_bom_and_one_stray_byte_still_find_the_question_column(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xef\xbb\xbfquestion,answer\nQ1 \x92,A1\n")
    bench = load_benchmark(path)
    assert bench.question_col == "question" and bench.questions == ["Q1 \ufffd"]


def test_a_file_read_lossily_is_never_rewritten(tmp_path):
    path = tmp_path / "answers.csv"
    data = "question,answer,llm_answer\nCôte ?,oui,x\n".encode() + b"caf\xe9 ?,non,y\n"
    path.write_bytes(data)
    with pytest.raises(InputError, match=r"bytes that are not UTF-8 on line 3: Proctor will not rewrite"):
        GradingSession(path)
    assert path.read_bytes() == data


# -- writing: symlinks and file-system errors ------------------------------------------------------------------


def test_writing_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "answers.csv"
    target.write_text("old\n", encoding="utf-8")
    link = tmp_path / "link.csv"
    link.symlink_to(Path("real") / "answers.csv")
    write_bytes_atomic(b"new\n", link)
    assert link.is_symlink() and os.readlink(link) == str(Path("real") / "answers.csv")
    assert target.read_bytes() == b"new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "real"]
    assert [p.name for p in (tmp_path / "real").iterdir()] == ["answers.csv"], "no temporary file left"


def test_grading_through_a_symlink_keeps_the_link(tmp_path):
    target = tmp_path / "answers.csv"
    write_lines_atomic([csv_line(["question", "answer", "llm_answer"]), csv_line(["Q", "A", "a"])], target)
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    GradingSession(link).set_verdict(0, "correct")
    assert link.is_symlink() and read_table(target)["human_verdict"].tolist() == ["correct"]


def _fail(code: int):
    def raiser(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return raiser


@pytest.mark.parametrize(("target", "code"), [
    ("os.replace", errno.EROFS),  # a read-only file system (root ignores permission bits, so this is patched)
    ("os.fsync", errno.ENOSPC),  # disk full
    ("tempfile.mkstemp", errno.EACCES),  # a folder we may not write in
])
def test_a_failed_write_is_one_error_and_leaves_the_file_as_it_was(tmp_path, monkeypatch, target, code):
    path = tmp_path / "answers.csv"
    path.write_bytes(b"precious\n")
    monkeypatch.setattr(target, _fail(code))
    with pytest.raises(WriteError) as caught:
        write_bytes_atomic(b"new\n", path)
    error = caught.value
    assert isinstance(error, InputError) and isinstance(error, OSError) and error.exit_code == 2
    assert str(error) == f"cannot write {path}: {os.strerror(code)} (the file was left as it was)"
    assert path.read_bytes() == b"precious\n"
    assert [p.name for p in tmp_path.iterdir()] == ["answers.csv"], "the temporary file is removed"


# -- through the CLI -------------------------------------------------------------------------------------------


def test_cli_answer_refuses_an_unclosed_quote_with_exit_2_and_its_line(openai_env, tmp_path, capsys):
    path = tmp_path / "bench.csv"
    rows = [f"Q{i}?,A{i}" for i in range(203)]
    rows[150] = '"Q150 opens a quote,A150'
    path.write_text("question,answer\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert main(["answer", str(path), "-o", "out.csv"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("proctor: error: ") and "line 152" in err
    assert not (tmp_path / "out.csv").exists() and openai_env.questions() == []


def test_cli_answer_never_rewrites_an_answers_file_with_a_bad_note(openai_env, tmp_path, capsys):
    path = tmp_path / "bench.csv"
    path.write_text("question,answer\n" + "".join(f"Q{i}?,A{i}\n" for i in range(48)), encoding="utf-8")
    assert main(["answer", str(path), "-o", "out.csv"]) == 0
    out = tmp_path / "out.csv"
    lines = out.read_bytes().split(b"\r\n")
    lines[0] += b",human_verdict,human_note"
    lines[1:49] = [line + b",correct," for line in lines[1:49]]
    lines[5] += b'"a note a spreadsheet left open'  # the note's quote never closes
    out.write_bytes(b"\r\n".join(lines))
    before = out.read_bytes()
    capsys.readouterr()
    assert main(["answer", str(path), "-o", "out.csv"]) == 2
    assert "line 6: a quote opens a cell and never closes" in capsys.readouterr().err
    assert main(["grade", "out.csv", "--stats"]) == 2
    assert out.read_bytes() == before


def test_cli_answer_sends_and_keeps_every_cell_exactly(openai_env, tmp_path, capsys):
    path = tmp_path / "bench.csv"
    cells = [["'+' in Python: what does it do?", "'-'"], ["=1+1", "+2"], ["Café\ttab \"quoted\"\nnext line", "é"]]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([["question", "answer"], *cells])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    assert main(["answer", str(path), "-o", "out.csv"]) == 0
    assert sorted(openai_env.questions()) == sorted(q for q, _ in cells)
    frame = read_table(tmp_path / "out.csv")
    assert frame[["question", "answer"]].values.tolist() == cells
    assert frame["llm_answer"].tolist() == [f"Answer from gpt-4.1-mini: {q}" for q, _ in cells]
    assert stored_cells(tmp_path / "out.csv")[1][:2] == ["''+' in Python: what does it do?", "''-'"]
    assert main(["answer", str(path), "-o", "out.csv"]) == 0
    assert "already done 3" in capsys.readouterr().out, "read back exactly, so nothing is asked again"


def test_cli_answer_into_a_read_only_folder_is_one_line_and_exit_2(openai_env, tmp_path, capsys, monkeypatch):
    path = tmp_path / "bench.csv"
    path.write_text("question,answer\nQ1?,A1\n", encoding="utf-8")
    monkeypatch.setattr("os.replace", _fail(errno.EROFS))
    assert main(["answer", str(path), "-o", "out.csv"]) == 2
    err = capsys.readouterr().err
    assert err == f"proctor: error: cannot write out.csv: {os.strerror(errno.EROFS)} (the file was left as it was)\n"
    assert [p.name for p in tmp_path.iterdir() if "out.csv" in p.name] == [], "no file, no temporary file"


def test_cli_fresh_answer_with_a_full_disk_is_one_line_and_exit_2(openai_env, tmp_path, capsys, monkeypatch):
    import core.answers_file

    path = tmp_path / "bench.csv"
    # One row: a second request in flight would be abandoned, and the fake server would print about it.
    path.write_text("question,answer\nQ1?,A1\n", encoding="utf-8")
    # --fresh asks before the first save: the journal is the first write, and the disk is full.
    monkeypatch.setattr(core.answers_file, "open", _fail(errno.ENOSPC), raising=False)  # the journal's open
    monkeypatch.setattr("os.replace", _fail(errno.ENOSPC))
    assert main(["answer", str(path), "-o", "out.csv", "--fresh"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("proctor: error: cannot write "), err
    assert os.strerror(errno.ENOSPC) in err
    assert [p.name for p in tmp_path.iterdir() if "out.csv" in p.name] == []


# -- a real full disk and a real read-only file system (a small tmpfs: needs mount rights, skipped without) ------


@pytest.fixture
def small_fs(tmp_path):
    where = tmp_path / "fs"
    where.mkdir()
    mount = shutil.which("mount")
    if mount is None or subprocess.run([mount, "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)],
                                       capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _answer_again_in_a_subprocess(bench: Path, out: Path) -> subprocess.CompletedProcess[str]:
    with bench.open("a", encoding="utf-8") as handle:
        handle.write("A new question?,new\n")  # something to save
    return subprocess.run([sys.executable, "-m", "tui.cli", "answer", str(bench), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)


def test_a_full_disk_is_one_line_exit_2_and_the_answers_file_intact(openai_env, tmp_path, small_fs):
    bench = tmp_path / "bench.csv"
    bench.write_text("question,answer\nQ1?,A1\nQ2?,A2\n", encoding="utf-8")
    out = small_fs / "out.csv"
    assert main(["answer", str(bench), "-o", str(out)]) == 0
    before = out.read_bytes()
    with open(small_fs / "filler", "wb", buffering=0) as filler:  # fill the disk to the last byte
        with pytest.raises(OSError) as full:
            while True:
                filler.write(b"\0" * 4096)
        assert full.value.errno == errno.ENOSPC
    result = _answer_again_in_a_subprocess(bench, out)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("proctor: error: cannot write "), result.stderr
    assert os.strerror(errno.ENOSPC) in result.stderr
    assert out.read_bytes() == before
    assert not [p.name for p in small_fs.iterdir() if p.name.endswith(".tmp")], "no temporary file left"


def test_a_read_only_file_system_is_one_line_exit_2_and_the_answers_file_intact(openai_env, tmp_path, small_fs):
    bench = tmp_path / "bench.csv"
    bench.write_text("question,answer\nQ1?,A1\n", encoding="utf-8")
    out = small_fs / "out.csv"
    assert main(["answer", str(bench), "-o", str(out)]) == 0
    before = out.read_bytes()
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    result = _answer_again_in_a_subprocess(bench, out)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("proctor: error: cannot write "), result.stderr
    assert os.strerror(errno.EROFS) in result.stderr
    assert out.read_bytes() == before
