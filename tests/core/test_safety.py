"""core.safety: terminal control removed from untrusted text, secrets scrubbed, URL credentials masked."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.safety import (
    PrintableStream,
    SafeWriter,
    mask_url,
    one_line,
    printable,
    scrub,
    scrubber,
    secrets_in_force,
    shown,
)

OSC_TITLE = "\x1b]0;pwned title\x07"
OSC_CLIPBOARD = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
CLEAR = "\x1b[2J"
C1_CSI = "\x9b2J"


def _has_control(text: str) -> bool:
    return any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in text)


def test_printable_defeats_title_clipboard_clear_and_8bit_csi():
    text = f"before{OSC_TITLE}{OSC_CLIPBOARD}{CLEAR}{C1_CSI}after"
    out = printable(text)
    assert not _has_control(out)
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    # ESC is shown, so a grader sees that the answer tried to drive the terminal.
    assert out == "before␛]0;pwned title␛]52;c;ZWNobyBwd25lZA==␛[2J2Jafter"


def test_printable_keeps_unicode_newlines_and_tabs():
    text = "Café 中文 🙂 naïve — “quotes”\nline two\tcol"
    assert printable(text) == text


def test_printable_turns_carriage_returns_into_newlines():
    # A bare CR would let text overwrite what the line showed before it.
    assert printable("safe\rEVIL\r\nnext") == "safe\nEVIL\nnext"


def test_printable_of_none_and_non_strings():
    assert printable(None) == ""
    assert printable(3.5) == "3.5"


@given(st.text())
def test_printable_never_leaves_a_control_character(text):
    out = printable(text)
    assert not _has_control(out)
    # Nothing but control characters is touched.
    assert [c for c in out if c != "␛"] == [c for c in text.replace("\r\n", "\n").replace("\r", "\n")
                                              if not _has_control(c) and c != "\x1b" and c != "␛"]


def test_one_line_flattens():
    assert one_line("a\n  b\t\x1b[2Jc\r\n") == "a b ␛[2Jc"


KEY = "sk-live-SECRET-abcdef0123456789"


def test_scrub_replaces_the_given_secrets_everywhere():
    body = f'{{"error": "bad key", "headers": {{"Authorization": "Bearer {KEY}", "api-key": "{KEY}"}}}}'
    out = scrub(body, [KEY])
    assert KEY not in out
    assert out.count("****") == 2
    assert scrub(None, [KEY]) == ""
    assert scrub(float("nan"), [KEY]) == ""


def test_scrub_catches_the_url_encoded_form_of_a_key():
    key = "abc/def+ghi=jkl"
    out = scrub("GET /v1?api-key=abc%2Fdef%2Bghi%3Djkl", [key])
    assert "abc%2F" not in out and "****" in out


def test_short_secrets_are_not_scrubbed_from_free_text():
    # OPENAI_API_KEY=x is enough for a local server; scrubbing every "x" would corrupt answers.
    assert scrub("x marks the spot", ["x"]) == "x marks the spot"


def test_scrub_masks_user_info_of_any_url_in_text():
    out = scrub("cannot reach http://alice:hunter2@proxy.example:8080/v1 (refused)", [])
    assert "hunter2" not in out and "alice" not in out
    assert "http://****@proxy.example:8080/v1" in out


def test_secrets_in_force_reads_settings_judge_and_url_variables(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key-0001-abcdef")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-0002-abcdef")
    monkeypatch.setenv("AZURE_API_KEY", "judge-key-0003-abcdef")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "mlflow-token-0004")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://user:pa55word-0005@host/v1")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://r.example/?api-key=query-key-0006")
    found = secrets_in_force()
    for secret in ("azure-key-0001-abcdef", "sk-openai-0002-abcdef", "judge-key-0003-abcdef", "mlflow-token-0004",
                   "pa55word-0005", "query-key-0006"):
        assert secret in found
    text = "echo: azure-key-0001-abcdef judge-key-0003-abcdef pa55word-0005 query-key-0006 mlflow-token-0004"
    assert scrub(text) == "echo: **** **** **** **** ****"
    assert shown(f"{OSC_TITLE}sk-openai-0002-abcdef") == "␛]0;pwned title****"


def test_scrubber_binds_one_set_of_secrets():
    clean = scrubber([KEY, None, ""])
    assert clean(f"a {KEY} b") == "a **** b"
    assert clean(12) == "12"


@pytest.mark.parametrize(("url", "expected"), [
    ("http://user:pass@host:8080/v1", "http://****@host:8080/v1"),
    ("https://TOKEN123@github.example/x", "https://****@github.example/x"),
    ("https://r.openai.azure.com/?api-key=abc&api-version=2024", "https://r.openai.azure.com/?api-key=****&api-version=2024"),
    ("https://blob.example/c?sv=2020&sig=SIGNATURE&se=1", "https://blob.example/c?sv=2020&sig=****&se=1"),
    ("http://h/cb?code=ONE&state=x&token=T&password=P&key=K&access_token=A",
     "http://h/cb?code=****&state=x&token=****&password=****&key=****&access_token=****"),
    ("https://api.openai.com/v1", "https://api.openai.com/v1"),
    ("sqlite:////tmp/x/mlflow.db", "sqlite:////tmp/x/mlflow.db"),
    ("databricks", "databricks"),
    ("http://u:p@[::1", "http://****@[::1"),
    ("postgresql://mlflow:s3cret@db:5432/mlflow", "postgresql://****@db:5432/mlflow"),
])
def test_mask_url(url, expected):
    assert mask_url(url) == expected


def test_mask_url_of_none():
    assert mask_url(None) == ""


def test_printable_stream_keeps_a_crlf_split_across_pieces_as_one_newline():
    stream = PrintableStream()
    pieces = [stream.feed(p) for p in ["line one\r", "\nline two", "\x1b]0;t", "itle\x07 end"]]
    assert "".join(pieces) == "line one\nline two␛]0;title end"


def test_safe_writer_lets_no_control_and_no_key_through():
    sink = io.StringIO()
    writer = SafeWriter(sink, [KEY])
    print(f"key {KEY} {OSC_TITLE}{CLEAR}{C1_CSI}", file=writer)
    writer.write("\rprogress 50%")  # the CLI's own progress lines redraw with CR
    assert sink.getvalue() == "key **** ␛]0;pwned title␛[2J2J\n\rprogress 50%"
    assert writer.isatty() is False
