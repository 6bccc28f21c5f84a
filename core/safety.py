"""Untrusted text made safe to show and to store: terminal control removed, keys scrubbed, URL credentials masked.

Text from outside (model answers, judge rationales, CSV cells, server error bodies) may hold terminal escape
sequences that set the title (OSC 0), write the clipboard (OSC 52) or clear the screen (CSI 2J), and server words
may repeat the key Proctor sent. Every place that shows or stores such text goes through this module:

- `printable(text)`: what a terminal may be given. ESC becomes a visible `␛`; every other C0 control character
  except newline and tab, DEL, and the 8-bit C1 controls (U+0080-U+009F, e.g. the one-byte CSI U+009B) are
  removed; CR and CRLF become a newline. The rest of an escape sequence stays as plain, harmless text
  (`␛]0;title`), so a grader can see that an answer tried something. Other Unicode is kept as it is.
- `one_line(text)`: `printable` for a single line (error messages, table cells): newlines and tabs become spaces.
- `scrub(text, secrets=None)`: every secret in force (`secrets_in_force()`, or the given list) replaced by `****`,
  and the user info of any URL in the text (`scheme://user:pass@`) replaced by `****@`.
- `mask_url(url)`: a URL fit to show, log or store: user info and credential query parameters (`api-key`, `key`,
  `sig`, `token`, `code`, `password` ...) replaced by `****`.

Stdlib only: core and tui both use it, and it must stay cheap to import.
"""

from __future__ import annotations

import functools
import io
import os
import re
from collections.abc import Callable, Iterable
from typing import TextIO
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "****"
ESCAPE_SHOWN = "\u241b"  # ␛ SYMBOL FOR ESCAPE

# Secrets shorter than this are not scrubbed from free text: replacing "test" or "x" (a key that a local server
# accepts) everywhere would corrupt answers. They are still hidden wherever a known URL or setting is shown.
MIN_SECRET_LENGTH = 6

# Environment variables whose values are credentials. The settings' own keys are listed by `Settings.secrets()`;
# these catch the judge's MLflow variables (AZURE_API_KEY ...), MLflow's own (MLFLOW_TRACKING_TOKEN ...) and any
# other *_KEY / *_TOKEN a provider reads.
_SECRET_NAME = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)
# Variables holding URLs whose user info and credential parameters are secrets too.
URL_VARIABLES = ("AZURE_OPENAI_ENDPOINT", "OPENAI_BASE_URL", "OPENAI_API_BASE", "AZURE_API_BASE",
                 "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")

# Query parameters that carry credentials (compared lower-case, without - and _).
_SECRET_PARAMS = {"apikey", "key", "sig", "signature", "token", "code", "password", "passwd", "pwd", "pass",
                  "secret", "auth", "authorization", "credential", "credentials", "session"}
_SECRET_PARAM_ENDINGS = ("key", "token", "secret", "password", "signature", "credential", "sig")

# C0 controls except TAB and LF, DEL, and C1 controls. ESC and CR are handled first.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f\x80-\x9f]")
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#@\"'<>]+)@")


def printable(text: object) -> str:
    """`text` without terminal control: ESC shown as `␛`, other control characters (but newline and tab) removed."""
    if text is None:
        return ""
    value = text if isinstance(text, str) else str(text)
    if value.isprintable():  # the common case: nothing to do (tab and newline are not "printable", so not here)
        return value
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\x1b", ESCAPE_SHOWN)
    return _CONTROL.sub("", value)


def _terminal_safe(text: str) -> str:
    # `printable`, but CR kept: the CLI's own progress lines redraw with it (untrusted text got `printable` already).
    if text.isprintable():
        return text
    return _CONTROL.sub("", text.replace("\x1b", ESCAPE_SHOWN))


class PrintableStream:
    """Pieces of one streamed text made printable as they come, a CRLF split across two pieces kept as one newline."""

    def __init__(self) -> None:
        self._after_cr = False

    def feed(self, piece: str) -> str:
        if self._after_cr and piece.startswith("\n"):
            piece = piece[1:]
        self._after_cr = piece.endswith("\r")
        return printable(piece)


class SafeWriter(io.TextIOBase):
    """A text stream over `stream` that lets no terminal control and no secret in force through.

    The CLI writes everything through one of these (stdout and stderr): whatever a command prints, a model's or a
    server's words cannot drive the terminal, and a key echoed by a server is `****`. CR passes, for progress lines.
    """

    def __init__(self, stream: TextIO, secrets: Iterable[str | None] | None = None) -> None:
        super().__init__()
        self.inner = stream
        self._scrub = scrubber(secrets)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.inner.write(_terminal_safe(self._scrub(text)))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.inner, "errors", None)


def one_line(text: object) -> str:
    """`printable(text)` on one line: newlines and tabs become spaces (error lines, table cells)."""
    return " ".join(printable(text).split())


def _is_secret_param(name: str) -> bool:
    key = unquote(name).lower().replace("-", "").replace("_", "")
    return key in _SECRET_PARAMS or key.endswith(_SECRET_PARAM_ENDINGS)


def _mask_query(query: str) -> str:
    if not query:
        return query
    parts = []
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        parts.append(f"{name}={MASK}" if sep and value and _is_secret_param(name) else part)
    return "&".join(parts)


def mask_url(url: object) -> str:
    """`url` fit to show, log or store: user info and credential query parameters replaced by `****`.

    Not a URL (a path, a model URI, `databricks`): returned as it is. Never raises.
    """
    if url is None:
        return ""
    text = str(url)
    if "@" not in text and "?" not in text and "#" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unclosed IPv6 bracket: fall back to masking what looks like user info
        return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, parts.path, _mask_query(parts.query), _mask_query(parts.fragment)))


def _url_credentials(url: str) -> list[str]:
    """The secret pieces of a URL: its user info (user, password) and credential query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        user, _, password = userinfo.partition(":")
        found += [userinfo, password, unquote(password)]
        if password:
            found.append(user)  # a bare user name is often a token (https://TOKEN@host)
        else:
            found += [user, unquote(user)]
    for section in (parts.query, parts.fragment):
        for part in section.split("&"):
            name, sep, value = part.partition("=")
            if sep and value and _is_secret_param(name):
                found += [value, unquote(value)]
    return found


def secrets_in_force(extra: Iterable[str | None] = ()) -> list[str]:
    """Every credential Proctor may have sent or been given: worth scrubbing from anything shown or stored.

    The settings' keys (AZURE_OPENAI_API_KEY, OPENAI_API_KEY), every *_KEY / *_TOKEN / *_SECRET / *_PASSWORD
    variable in the environment (the judge's AZURE_API_KEY, MLFLOW_TRACKING_TOKEN ...), the user info and
    credential parameters of the URL variables, and `extra` (e.g. a judge's keys).
    """
    found: list[str] = [s for s in extra if s]
    for name, value in os.environ.items():
        if value and _SECRET_NAME.search(name):
            found.append(value.strip())
    for name in URL_VARIABLES:
        value = os.environ.get(name)
        if value:
            found += _url_credentials(value.strip())
    try:  # `.env` values are in os.environ once loaded; this adds nothing then, but costs nothing either.
        from core.config import load_settings

        settings = load_settings()
        found += settings.secrets()
        for url in (settings.azure_endpoint, settings.openai_base_url):
            if url:
                found += _url_credentials(url)
    except Exception:  # noqa: BLE001 - a bad setting must not stop an error from being shown
        pass
    return sorted({s for s in found if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


@functools.lru_cache(maxsize=32)
def _pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    variants: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            variants.add(secret)
            variants.add(quote(secret, safe=""))  # as it appears inside a URL or a form body
    if not variants:
        return None
    return re.compile("|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True)))


def scrubber(secrets: Iterable[str | None] | None = None) -> Callable[[object], str]:
    """A `scrub` bound to one set of secrets (default: those in force now), for cleaning many values fast.

    None and NaN (an empty pandas cell) become "".
    """
    pattern = _pattern(tuple(sorted({s for s in (secrets_in_force() if secrets is None else secrets) if s})))

    def scrub_one(value: object) -> str:
        if value is None or (isinstance(value, float) and value != value):
            return ""
        text = value if isinstance(value, str) else str(value)
        if pattern is not None:
            text = pattern.sub(MASK, text)
        if "@" in text and "://" in text:
            text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
        return text

    return scrub_one


def scrub(text: object, secrets: Iterable[str | None] | None = None) -> str:
    """`text` with every secret (default: `secrets_in_force()`) and any URL's user info replaced by `****`."""
    return scrubber(secrets)(text)


def shown(text: object, secrets: Iterable[str | None] | None = None) -> str:
    """Server words fit for a screen: scrubbed of secrets, then without terminal control."""
    return printable(scrub(text, secrets))
