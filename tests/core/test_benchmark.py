"""core.benchmark: reading benchmarks as people have them, answering them into a safe CSV, resuming after a kill.

Answers come from the real openai SDK talking to the fake server; the kill test runs `proctor answer` in a real
subprocess and SIGKILLs it half way.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.benchmark import (
    ANSWER_COLUMNS,
    EMPTY_QUESTION_ERROR,
    AnswerSummary,
    answer_benchmark,
    default_output_path,
    is_answers_file,
    journal_path,
    load_benchmark,
)
from core.csvio import read_table
from core.errors import ConfigError, InputError
from tests.conftest import TEST_KEY
from tests.fake_llm_server import Behaviour, FakeLLMServer

ROOT = Path(__file__).resolve().parents[2]
MODEL = "openai:/gpt-4.1-mini"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def raw_rows(path: Path) -> list[list[str]]:
    """The cells exactly as stored (no un-neutralising), for checking what a spreadsheet would see."""
    text = path.read_bytes().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline="")))


# ---------------------------------------------------------------- reading variations


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiters_are_sniffed(tmp_path, delimiter):
    d = delimiter
    text = f"question{d}answer{d}topic\nWhat is 2+2?{d}4{d}maths\nCapital of Peru?{d}Lima{d}geo\n"
    path = write(tmp_path / "b.csv", text)
    bench = load_benchmark(path)
    assert list(bench.frame.columns) == ["question", "answer", "topic"]
    assert bench.questions == ["What is 2+2?", "Capital of Peru?"]
    assert bench.frame["answer"].tolist() == ["4", "Lima"]
    assert (bench.question_col, bench.reference_col) == ("question", "answer")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_encodings_utf8_with_and_without_bom_and_cp1252(tmp_path, encoding):
    path = write(tmp_path / "b.csv", "question;réponse\nQuelle est la capitale de l’Italie ?;Rome\nCœur ?;Le cœur\n",
                 encoding)
    bench = load_benchmark(path)
    assert list(bench.frame.columns) == ["question", "réponse"]  # no BOM glued to the first header
    assert bench.questions == ["Quelle est la capitale de l’Italie ?", "Cœur ?"]
    assert bench.frame["réponse"].tolist() == ["Rome", "Le cœur"]


def test_latin1_bytes_that_cp1252_cannot_decode_still_read(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes("question,answer\ncaf\xe9 ?,ok\nx\x81y,z\n".encode("latin-1"))  # 0x81 is not cp1252
    assert load_benchmark(path).questions == ["café ?", "x\x81y"]


def test_quoted_commas_newlines_and_crlf(tmp_path):
    text = ('question,answer\r\n"Name three colours, separated by commas","red, green, blue"\r\n'
            '"A question\r\non two lines","and an ""answer"""\r\n')
    bench = load_benchmark(write(tmp_path / "b.csv", text))
    assert bench.questions == ["Name three colours, separated by commas", "A question\r\non two lines"]
    assert bench.frame["answer"].tolist() == ["red, green, blue", 'and an "answer"']


@pytest.mark.parametrize(("question", "reference"), [
    ("Question", "Réponse"),
    ("QUESTION", "Expected_Answer"),
    (" prompt ", "Ground Truth"),
    ("Input", "expected_response"),
    ("query", "Target"),
    ("Prompt", "reference"),
    ("question", "Reponse"),
    ("Questions", "EXPECTED ANSWER"),
])
def test_header_aliases(tmp_path, question, reference):
    path = write(tmp_path / "b.csv", f"id,{question},{reference},notes\n1,Q1?,A1,n1\n")
    bench = load_benchmark(path)
    assert bench.question_col == question.strip()
    assert bench.reference_col == reference
    assert bench.questions == ["Q1?"]
    assert bench.warnings == []


def test_blank_lines_are_skipped_and_empty_questions_kept(tmp_path):
    path = write(tmp_path / "b.csv", "question,answer\n\nQ1?,A1\n\n   \n,orphan answer\nQ3?,A3\n\n")
    bench = load_benchmark(path)
    assert bench.questions == ["Q1?", "", "Q3?"]
    assert any("empty question" in w for w in bench.warnings)


def test_missing_reference_column_is_allowed_with_a_warning(tmp_path):
    bench = load_benchmark(write(tmp_path / "b.csv", "prompt,category\nQ?,x\n"))
    assert bench.reference_col is None
    assert len(bench.warnings) == 1 and "reference" in bench.warnings[0]


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    (b"", "is empty"),
    (b"\r\n\n  \n", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not a text file"),
    (b"name,answer\nQ?,A\n", "no question column"),
    (b"question,answer\n", "no rows"),
])
def test_bad_files_raise_one_line_input_errors(tmp_path, content, message):
    path = tmp_path / "b.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_benchmark(path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_the_shipped_benchmark():
    bench = load_benchmark(ROOT / "benchmark.csv")
    assert list(bench.frame.columns) == ["question", "answer"]
    assert (bench.question_col, bench.reference_col, bench.warnings) == ("question", "answer", [])
    frame = bench.frame
    assert len(frame) >= 40
    assert (frame["question"].str.strip() != "").all() and (frame["answer"].str.strip() != "").all()
    assert frame["question"].is_unique
    assert (frame["answer"].str.len() <= 40).all(), "references must stay short"
    french = frame["question"].str.contains(r"^(?:Quel|Qui|Combien|Comment|Que|En quelle|Sur quel|À quelle|Dans)")
    assert 10 <= french.sum() <= len(frame) - 10, "both English and French questions"
    assert "Canberra" in frame["answer"].tolist()
    answers = dict(zip(frame["question"], frame["answer"], strict=True))
    assert answers["Combien font 7 fois 8 ?"] == "56"
    assert answers["What is 12 multiplied by 12?"] == "144"


def test_default_output_path_and_is_answers_file(tmp_path):
    assert default_output_path(tmp_path / "bench.csv", "azure:/gpt-4.1-nano") == tmp_path / \
        "bench.answers.azure-gpt-4.1-nano.csv"
    assert default_output_path(tmp_path / "bench.csv", "openai:/gpt-4.1-nano").name == \
        "bench.answers.openai-gpt-4.1-nano.csv", "two providers, two files"
    assert default_output_path("data/q.csv", "openai:/org/model:v1").name == "q.answers.openai-org-model-v1.csv"
    assert default_output_path("q.csv", "local:/").name == "q.answers.local.csv"
    bench = load_benchmark(write(tmp_path / "b.csv", "question\nQ?\n"))
    assert not is_answers_file(bench.frame)


# ---------------------------------------------------------------- answering


def test_output_columns_order_and_values(openai_env, tmp_path):
    path = write(tmp_path / "in.csv", "id;Question;Réponse;notes\r\n1;Q one?;A1;n1\r\n2;;A2;n2\r\n3;Q three?;A3;n3\r\n")
    before = path.read_bytes()
    out = tmp_path / "out.csv"
    summary = answer_benchmark(path, out)
    assert isinstance(summary, AnswerSummary)
    assert (summary.answered, summary.failed, summary.skipped, summary.already_done) == (2, 0, 1, 0)
    assert summary.exit_code == 0 and summary.model == MODEL and summary.out == out
    assert path.read_bytes() == before, "the input file is never modified"
    assert out.read_bytes().startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM, for Excel"
    frame = read_table(out)
    assert list(frame.columns) == ["id", "Question", "Réponse", "notes", *ANSWER_COLUMNS]
    assert is_answers_file(frame)
    assert frame["id"].tolist() == ["1", "2", "3"]
    assert frame["notes"].tolist() == ["n1", "n2", "n3"]
    assert frame["llm_answer"].tolist() == ["Answer from gpt-4.1-mini: Q one?", "",
                                            "Answer from gpt-4.1-mini: Q three?"]
    assert frame["model"].tolist() == [MODEL] * 3
    assert frame["error"].tolist() == ["", EMPTY_QUESTION_ERROR, ""]
    assert float(frame["latency_s"][0]) >= 0 and frame["latency_s"][1] == ""
    assert frame["prompt_tokens"].tolist() == ["2", "", "2"]
    assert frame["completion_tokens"].tolist() == ["5", "", "5"]
    assert sorted(q for _, q in openai_env.attempts) == ["Q one?", "Q three?"], "the empty question was not sent"
    assert not journal_path(out).exists()
    assert TEST_KEY not in out.read_text(encoding="utf-8-sig")


def test_default_output_beside_the_input(openai_env, tmp_path):
    (tmp_path / "sub").mkdir()
    path = write(tmp_path / "sub" / "bench.csv", "question\nQ?\n")
    summary = answer_benchmark(path, model="openai:/my-model")
    assert summary.out == tmp_path / "sub" / "bench.answers.openai-my-model.csv"
    assert summary.out.exists()
    assert summary.warnings and "reference" in summary.warnings[0]


def test_output_may_not_be_the_input(openai_env, tmp_path):
    path = write(tmp_path / "b.csv", "question\nQ?\n")
    with pytest.raises(InputError, match="never modified"):
        answer_benchmark(path, tmp_path / "." / "b.csv")


def test_formula_like_answers_and_questions_are_neutralised(openai_env, tmp_path):
    nasty = {"q1": "=HYPERLINK(\"http://evil\",\"click\")", "q2": "+cmd|' /C calc'!A0", "q3": "@SUM(A1:A9)",
             "q4": "-2+3", "q5": "-3", "q6": "\t=1+1"}
    openai_env.behaviour.responder = lambda body, info: nasty[info.question]
    path = write(tmp_path / "b.csv", "question,answer\n" + "".join(f"{q},=A1\n" for q in nasty) + "\"=1+1\",2\n")
    nasty["=1+1"] = "fine"
    out = tmp_path / "out.csv"
    answer_benchmark(path, out)
    stored = raw_rows(out)
    header = stored[0]
    cells = {row[0]: row for row in stored[1:]}
    answer_at = header.index("llm_answer")
    assert cells["q1"][answer_at] == "'" + nasty["q1"]
    assert cells["q2"][answer_at] == "'" + nasty["q2"]
    assert cells["q3"][answer_at] == "'" + nasty["q3"]
    assert cells["q4"][answer_at] == "'-2+3"
    assert cells["q5"][answer_at] == "-3", "a plain negative number stays a number"
    assert cells["q6"][answer_at].startswith("'\t")
    assert cells["q1"][1] == "'=A1", "input cells are neutralised too"
    assert "'=1+1" in cells
    for row in stored:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
    # Reading our own file back gives the model's text, not the apostrophes.
    frame = read_table(out)
    assert frame["llm_answer"].tolist()[:3] == [nasty["q1"], nasty["q2"], nasty["q3"]]


def test_failed_rows_are_marked_then_retried_on_the_next_run(openai_env, tmp_path, monkeypatch):
    monkeypatch.setenv("PROCTOR_MAX_RETRIES", "0")
    openai_env.behaviour.fail_first = 1  # each question fails its first attempt
    openai_env.behaviour.fail_statuses = (500,)
    path = write(tmp_path / "b.csv", "question\n" + "".join(f"Q{i}?\n" for i in range(6)))
    out = tmp_path / "out.csv"
    first = answer_benchmark(path, out)
    assert (first.answered, first.failed, first.exit_code) == (0, 6, 1)
    frame = read_table(out)
    assert (frame["llm_answer"] == "").all()
    assert frame["error"].str.startswith("HTTP 500").all()
    second = answer_benchmark(path, out)
    assert (second.answered, second.failed, second.already_done, second.exit_code) == (6, 0, 0, 0)
    assert set(openai_env.attempts.values()) == {2}
    third = answer_benchmark(path, out)
    assert (third.answered, third.already_done) == (0, 6)
    assert set(openai_env.attempts.values()) == {2}, "answered rows are not sent again"
    assert (read_table(out)["error"] == "").all()


def test_resume_sends_only_missing_rows_and_fresh_starts_over(openai_env, tmp_path):
    path = write(tmp_path / "b.csv", "question,answer\n" + "".join(f"Q{i}?,A{i}\n" for i in range(10)))
    out = tmp_path / "out.csv"
    answer_benchmark(path, out, limit=4)
    assert len(read_table(out)) == 4
    assert sorted(q for _, q in openai_env.attempts) == [f"Q{i}?" for i in range(4)]
    summary = answer_benchmark(path, out)
    assert (summary.answered, summary.already_done) == (6, 4)
    assert all(n == 1 for n in openai_env.attempts.values()) and len(openai_env.attempts) == 10
    # A smaller --limit later never cuts rows out of the longer file.
    summary = answer_benchmark(path, out, limit=2)
    assert (summary.answered, summary.already_done, summary.rows) == (0, 10, 10)
    summary = answer_benchmark(path, out, fresh=True)
    assert (summary.answered, summary.already_done) == (10, 0)
    assert set(openai_env.attempts.values()) == {2}


def test_resume_only_reuses_the_same_question_by_the_same_model(openai_env, tmp_path):
    path = write(tmp_path / "b.csv", "question\nQ0?\nQ1?\nQ2?\n")
    out = tmp_path / "out.csv"
    answer_benchmark(path, out)
    write(path, "question\nQ0?\nQ1 changed?\nQ2?\n")
    summary = answer_benchmark(path, out)
    assert (summary.answered, summary.already_done) == (1, 2)
    summary = answer_benchmark(path, out, model="openai:/other-model")
    assert (summary.answered, summary.already_done) == (3, 0)
    assert read_table(out)["model"].tolist() == ["openai:/other-model"] * 3


def test_an_out_file_that_is_not_an_answers_file_is_not_overwritten(openai_env, tmp_path):
    path = write(tmp_path / "b.csv", "question\nQ?\n")
    precious = write(tmp_path / "precious.csv", "a,b\n1,2\n")
    for fresh in (False, True):
        with pytest.raises(InputError, match="not an answers file.*--force"):
            answer_benchmark(path, precious, fresh=fresh)
        assert precious.read_text() == "a,b\n1,2\n"
    summary = answer_benchmark(path, precious, force=True)
    assert is_answers_file(read_table(precious))
    assert summary.backup.read_text() == "a,b\n1,2\n", "copied whole before it was replaced"
    assert str(summary.backup) in summary.backup_note


def test_answering_an_answers_file_replaces_its_answer_columns(openai_env, tmp_path):
    path = write(tmp_path / "b.csv", "question\nQ?\n")
    first = tmp_path / "first.csv"
    answer_benchmark(path, first)
    second = answer_benchmark(first, tmp_path / "second.csv", model="openai:/other")
    frame = read_table(second.out)
    assert list(frame.columns) == ["question", *ANSWER_COLUMNS]
    assert frame["llm_answer"].tolist() == ["Answer from other: Q?"]


def test_columns_added_after_the_answers_survive_a_resume(openai_env, tmp_path, monkeypatch):
    """A grader writes verdicts into the answers file; answering again (to retry failures) must not drop them."""
    monkeypatch.setenv("PROCTOR_MAX_RETRIES", "0")
    openai_env.behaviour.responder = lambda body, info: "=bad" if info.question == "Q2?" else "fine"
    openai_env.behaviour.fail_statuses = (500,)
    path = write(tmp_path / "b.csv", "question\nQ0?\nQ1?\nQ2?\nQ3?\n")
    out = tmp_path / "out.csv"
    openai_env.behaviour.fail_first = 1
    answer_benchmark(path, out, limit=2)  # rows 0-1, both failed
    openai_env.behaviour.fail_first = 0
    answer_benchmark(path, out, limit=1)  # row 0 answered, row 1 still failed
    from core.csvio import write_csv_atomic

    graded = read_table(out)
    graded["human_verdict"] = ["correct", ""]
    graded["human_note"] = ["=looks right", "no answer"]
    write_csv_atomic(graded, out)
    summary = answer_benchmark(path, out)
    assert (summary.already_done, summary.answered) == (1, 3)
    frame = read_table(out)
    assert list(frame.columns) == ["question", *ANSWER_COLUMNS, "human_verdict", "human_note"]
    assert frame["human_verdict"].tolist() == ["correct", "", "", ""]
    # Row 1's note judged its failure; the failure was retried, so the note left with it, to the backup.
    assert frame["human_note"].tolist() == ["=looks right", "", "", ""]
    assert frame["llm_answer"].tolist() == ["fine", "fine", "=bad", "fine"]
    assert raw_rows(out)[1][-1] == "'=looks right"
    assert (summary.backup_rows, summary.backup_verdicts) == (1, 0)
    backup = read_table(summary.backup)
    assert backup["question"].tolist() == ["Q1?"] and backup["human_note"].tolist() == ["no answer"]


def test_journal_left_by_a_kill_is_merged_on_resume(openai_env, tmp_path):
    """The state a kill -9 leaves: the CSV a batch behind, the rest in the journal (last line torn)."""
    path = write(tmp_path / "b.csv", "question\n" + "".join(f"Q{i}?\n" for i in range(5)))
    out = tmp_path / "out.csv"
    answer_benchmark(path, out, limit=1)  # the CSV holds row 0
    journal = journal_path(out)
    journal.write_text(
        '{"row": 1, "question": "Q1?", "reference": "", "nth": 0, '
        '"values": ["from journal", "openai:/gpt-4.1-mini", "0.1", "1", "2", ""]}\n'
        '{"row": 2, "question": "Q-other?", "reference": "", "nth": 0, '
        '"values": ["stale", "openai:/gpt-4.1-mini", "0.1", "1", "2", ""]}\n'
        '{"row": 3, "question": "Q3?", "val', encoding="utf-8")
    openai_env.reset()
    summary = answer_benchmark(path, out)
    assert (summary.already_done, summary.answered) == (2, 3)
    assert sorted(q for _, q in openai_env.attempts) == ["Q2?", "Q3?", "Q4?"]
    assert read_table(out)["llm_answer"][1] == "from journal"
    assert not journal.exists()
    # The answer to a question no longer in the benchmark is not dropped: it went to the backup.
    assert read_table(summary.backup)["llm_answer"].tolist() == ["stale"]


def test_cancel_keeps_what_was_received(openai_env, tmp_path):
    openai_env.behaviour.latency = 0.05
    cancel = threading.Event()
    seen = []

    def on_progress(progress):
        seen.append(progress)
        if progress.done >= 4:
            cancel.set()

    path = write(tmp_path / "b.csv", "question\n" + "".join(f"Q{i}?\n" for i in range(40)))
    out = tmp_path / "out.csv"
    summary = answer_benchmark(path, out, concurrency=2, cancel=cancel, on_progress=on_progress)
    assert summary.cancelled and summary.exit_code == 1
    assert 4 <= summary.answered < 40 and summary.not_sent == 40 - summary.answered
    frame = read_table(out)
    assert len(frame) == 40 and (frame["llm_answer"] != "").sum() == summary.answered
    assert seen[-1].done == summary.answered and seen[-1].total == 40
    asked_before = set(openai_env.attempts)
    resumed = answer_benchmark(path, out)
    assert (resumed.already_done, resumed.answered) == (summary.answered, 40 - summary.answered)
    assert all(openai_env.attempts[k] == 1 for k in asked_before if k[1] in set(frame["question"][
        frame["llm_answer"] != ""]))


def test_progress_reports_rate_and_eta(openai_env, tmp_path):
    openai_env.behaviour.latency = 0.02
    seen = []
    path = write(tmp_path / "b.csv", "question\n" + "".join(f"Q{i}?\n" for i in range(30)))
    answer_benchmark(path, tmp_path / "out.csv", concurrency=2, on_progress=seen.append)
    assert seen[0].done == 0 and seen[0].total == 30
    last = seen[-1]
    assert (last.done, last.failed, last.answered) == (30, 0, 30)
    assert last.rate > 0 and last.eta_s == 0
    assert any(0 < p.done < 30 and p.eta_s and p.eta_s > 0 for p in seen)


@pytest.mark.parametrize("what", ["key", "model"])
def test_fatal_errors_stop_the_run_with_a_config_error(openai_env, tmp_path, monkeypatch, what):
    path = write(tmp_path / "b.csv", "question\n" + "".join(f"Q{i}?\n" for i in range(20)))
    if what == "key":
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-0123456789")
        message = "OPENAI_API_KEY"
    else:
        openai_env.unknown_models.add("missing")
        monkeypatch.setenv("OPENAI_MODEL", "missing")
        message = "not found"
    with pytest.raises(ConfigError, match=message) as caught:
        answer_benchmark(path, tmp_path / "out.csv")
    assert caught.value.exit_code == 2
    assert sum(openai_env.attempts.values()) <= 8, "the run stopped instead of failing every row"
    assert "sk-wrong" not in str(caught.value)


# ---------------------------------------------------------------- a verdict belongs to an answer


def _grade(out: Path, verdicts: dict[str, tuple[str, str]]) -> None:
    """Grade rows of `out` the way a person does, through a GradingSession: {question: (verdict, note)}."""
    from core.grading import GradingSession

    with GradingSession(out) as session:
        for row in range(session.rows):
            if session.question(row) in verdicts:
                verdict, note = verdicts[session.question(row)]
                session.set_verdict(row, verdict, note)


def _graded(out: Path) -> dict[str, tuple[str, str, str]]:
    frame = read_table(out)
    return {q: (a, v, n) for q, a, v, n in zip(frame["question"], frame["llm_answer"], frame["human_verdict"],
                                                frame["human_note"], strict=True)}


def test_rows_are_matched_by_text_not_position(openai_env, tmp_path):
    """A question inserted at the top, then the graded file sorted in a spreadsheet: nothing re-asked, nothing lost."""
    path = write(tmp_path / "b.csv", "question,answer\n" + "".join(f"Q{i}?,A{i}\n" for i in range(5)))
    out = tmp_path / "out.csv"
    answer_benchmark(path, out)
    _grade(out, {f"Q{i}?": ("correct" if i % 2 else "incorrect", f"note {i}") for i in range(5)})
    before = _graded(out)

    write(path, "question,answer\nNew first?,N\n" + "".join(f"Q{i}?,A{i}\n" for i in range(5)))
    openai_env.reset()
    summary = answer_benchmark(path, out)
    assert (summary.answered, summary.already_done, summary.backup) == (1, 5, None)
    assert [q for _, q in openai_env.attempts] == ["New first?"]
    after = _graded(out)
    assert {q: after[q] for q in before} == before, "every verdict and note stayed with its answer"
    assert read_table(out)["question"].tolist() == ["New first?", *(f"Q{i}?" for i in range(5))]

    from core.csvio import write_csv_atomic

    frame = read_table(out)
    write_csv_atomic(frame.sort_values("human_verdict", ascending=False), out)  # sorted in a spreadsheet
    openai_env.reset()
    summary = answer_benchmark(path, out)
    assert (summary.answered, summary.already_done, summary.backup) == (0, 6, None)
    assert not openai_env.attempts
    assert _graded(out) == after
    assert read_table(out)["question"].tolist() == ["New first?", *(f"Q{i}?" for i in range(5))], \
        "rows back in the benchmark's order"


def test_a_question_asked_twice_is_two_rows(openai_env, tmp_path):
    path = write(tmp_path / "b.csv", "question,answer\nSame?,x\nOther?,y\nSame?,x\n")
    out = tmp_path / "out.csv"
    answer_benchmark(path, out)
    _grade(out, {"Other?": ("correct", "")})
    openai_env.reset()
    summary = answer_benchmark(path, out)
    assert (summary.answered, summary.already_done) == (0, 3)
    write(path, "question,answer\nSame?,x\nOther?,y\nSame?,x\nSame?,x\n")
    summary = answer_benchmark(path, out)
    assert (summary.answered, summary.already_done) == (1, 3)


def test_fresh_moves_verdicts_with_their_answers_to_a_backup(openai_env, tmp_path):
    path = write(tmp_path / "b.csv", "question,answer\n" + "".join(f"Q{i}?,A{i}\n" for i in range(4)))
    out = tmp_path / "out.csv"
    answer_benchmark(path, out)
    _grade(out, {"Q0?": ("correct", "good"), "Q2?": ("incorrect", "")})
    old = read_table(out)
    openai_env.behaviour.responder = lambda body, info: f"new answer to {info.question}"
    summary = answer_benchmark(path, out, fresh=True)
    assert summary.answered == 4 and (summary.backup_rows, summary.backup_verdicts) == (4, 2)
    assert summary.backup.parent == tmp_path and summary.backup.name.startswith("out.backup-")
    assert "2 verdict(s)" in summary.backup_note and str(summary.backup) in summary.backup_note
    frame = read_table(out)
    assert (frame["human_verdict"] == "").all() and (frame["human_note"] == "").all(), \
        "no verdict left next to an answer it was not given on"
    assert frame["llm_answer"].str.startswith("new answer").all()
    backup = read_table(summary.backup)
    assert backup.equals(old), "the backup holds the old rows whole: answers, verdicts, notes"


def test_another_models_graded_file_is_refused_unless_forced(openai_env, tmp_path):
    path = write(tmp_path / "b.csv", "question,answer\n" + "".join(f"Q{i}?,A{i}\n" for i in range(3)))
    out = tmp_path / "out.csv"
    answer_benchmark(path, out)
    _grade(out, {"Q1?": ("correct", "")})
    data = out.read_bytes()
    openai_env.reset()
    with pytest.raises(InputError, match="1 graded answer.*gpt-4.1-mini.*--force") as caught:
        answer_benchmark(path, out, model="openai:/other")
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)
    assert out.read_bytes() == data and not openai_env.attempts, "nothing asked, nothing written"
    assert list(tmp_path.glob("out.backup-*")) == []
    summary = answer_benchmark(path, out, model="openai:/other", force=True)
    assert summary.answered == 3 and summary.backup_verdicts == 1
    frame = read_table(out)
    assert frame["model"].tolist() == ["openai:/other"] * 3 and (frame["human_verdict"] == "").all()
    assert read_table(summary.backup)["human_verdict"].tolist() == ["", "correct", ""]


def test_another_benchmarks_graded_file_is_refused_unless_forced(openai_env, tmp_path):
    first = write(tmp_path / "first.csv", "question,answer\n" + "".join(f"F{i}?,A{i}\n" for i in range(3)))
    other = write(tmp_path / "other.csv", "question,answer\nO?,x\n")
    out = tmp_path / "graded.csv"
    answer_benchmark(first, out)
    _grade(out, {"F0?": ("correct", ""), "F2?": ("incorrect", "")})
    data = out.read_bytes()
    for fresh in (False, True):
        with pytest.raises(InputError, match="2 graded row.*not in other.csv.*--force"):
            answer_benchmark(other, out, fresh=fresh)
        assert out.read_bytes() == data
    summary = answer_benchmark(other, out, force=True)
    assert read_table(out)["question"].tolist() == ["O?"]
    assert read_table(summary.backup)["question"].tolist() == ["F0?", "F1?", "F2?"]
    assert summary.backup_verdicts == 2


def test_a_fatal_error_with_fresh_leaves_the_file_whole_and_no_backup(openai_env, tmp_path, monkeypatch):
    path = write(tmp_path / "b.csv", "question\nQ?\n")
    out = tmp_path / "out.csv"
    answer_benchmark(path, out)
    data = out.read_bytes()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-0123456789")
    with pytest.raises(ConfigError):
        answer_benchmark(path, out, fresh=True)
    assert out.read_bytes() == data
    assert list(tmp_path.glob("out.backup-*")) == []


def test_another_writer_holding_the_file_stops_the_run(openai_env, tmp_path):
    from core.filelock import FileLock, FileLockedError

    path = write(tmp_path / "b.csv", "question\nQ?\n")
    out = tmp_path / "out.csv"
    with FileLock(out), pytest.raises(FileLockedError) as caught:
        answer_benchmark(path, out)
    assert caught.value.exit_code == 2 and not out.exists() and not openai_env.attempts
    answer_benchmark(path, out)  # the lock went with its holder
    assert not (tmp_path / ".out.csv.lock").exists()


def test_default_names_are_safe_on_every_os():
    names = [default_output_path(stem, uri).name for stem, uri in [
        ("a:b*c?.csv", "openai:/x\\y|z<>\"q"), ("con.csv", "azure:/d"), ("NUL.x.csv", "openai:/m"),
        ("q.csv", "openai:/" + "m" * 400), ("bench .csv", "azure:/dep.")]]
    for name in names:
        assert not set(name) & set('<>:"/\\|?*'), name
        assert name.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL"}, name
        assert len(name.encode()) < 255 and not name.endswith((" ", ".")), name


# ---------------------------------------------------------------- kill -9 and Ctrl-C, in a real subprocess


def _proctor_env(server: FakeLLMServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "OPENAI_", "AZURE_"))}
    env.update(OPENAI_API_KEY=TEST_KEY, OPENAI_BASE_URL=server.url, OPENAI_MODEL="gpt-4.1-mini",
               PROCTOR_BACKOFF_BASE="0.01")
    return env


def _wait_for(condition, timeout: float = 120.0) -> None:  # a loaded machine starts Python slowly
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def _answered_rows(out: Path) -> dict[int, str]:
    """Rows answered in the file plus its journal: what a resume will not send again."""
    from core.answers_file import read_earlier

    rows = read_earlier(out, journal_path(out)).rows
    return {i: row.key[0] for i, row in enumerate(rows) if row.answered}


@pytest.mark.slow
def test_killed_half_way_then_restarted_sends_no_finished_row_again(tmp_path):
    n = 60
    path = write(tmp_path / "b.csv", "question,answer\n" + "".join(f"Question {i}?,A{i}\n" for i in range(n)))
    out = tmp_path / "out.csv"
    command = [sys.executable, "-m", "tui.cli", "answer", str(path), "-o", str(out), "--concurrency", "4", "-q"]
    with FakeLLMServer(Behaviour(latency=0.1), api_key=TEST_KEY) as server:
        env = _proctor_env(server)
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(lambda: len(server.log) >= n // 2 + 4)  # half the rows asked, a few more in flight
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        time.sleep(0.3)  # let the server finish the requests that were in flight
        received = _answered_rows(out)
        # What must hold, however loaded the machine: the kill came half way, and every answer received is kept
        # (in the CSV or the journal beside it). How far the CSV lagged the journal is a speed, not a property.
        assert 0 < len(received) < n, f"{len(received)} rows were saved before the kill"
        in_csv = read_table(out)
        assert set(in_csv["question"][in_csv["llm_answer"] != ""]) <= set(received.values())
        asked_before = dict(server.attempts)

        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "" and result.stderr == ""  # --quiet
    for question in received.values():
        assert server.attempts[("gpt-4.1-mini", question)] == 1, f"{question} was asked again"
    frame = read_table(out)
    assert len(frame) == n and (frame["llm_answer"] != "").all() and (frame["error"] == "").all()
    assert frame["question"].tolist() == [f"Question {i}?" for i in range(n)]
    assert frame["answer"].tolist() == [f"A{i}" for i in range(n)]
    assert sum(server.attempts.values()) - sum(asked_before.values()) == n - len(received)
    assert not journal_path(out).exists()


@pytest.mark.slow
def test_ctrl_c_saves_prints_what_was_kept_and_exits_130(tmp_path):
    # 200 rows of 0.3 s at 4 at once: 15 s of work, so the signal sent after 20 requests lands mid-run even when a
    # loaded machine is slow to see them (60 rows of 0.1 s once finished before the signal came).
    n = 200
    path = write(tmp_path / "b.csv", "question\n" + "".join(f"Q{i}?\n" for i in range(n)))
    out = tmp_path / "out.csv"
    with FakeLLMServer(Behaviour(latency=0.3), api_key=TEST_KEY) as server:
        # preexec_fn: a suite started in the background by a shell without job control inherits an ignored SIGINT,
        # and so would the command (a shell's `proctor ... &` rightly does not stop on Ctrl-C).
        proc = subprocess.Popen([sys.executable, "-m", "tui.cli", "answer", str(path), "-o", str(out), "-c", "4"],
                                env=_proctor_env(server), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        _wait_for(lambda: len(server.log) >= 20)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted: kept" in stderr and str(out) in stderr
    frame = read_table(out)
    kept = int((frame["llm_answer"] != "").sum())
    assert 10 <= kept < n and f"kept {kept} answer(s)" in stderr
    assert not journal_path(out).exists(), "the CSV holds everything: the journal is gone"
