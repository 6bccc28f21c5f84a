"""Hostile text for the terminal-safety tests: the escape sequences of issue 10, and how to look for them.

`HOSTILE` sets the terminal title (OSC 0), writes the clipboard (OSC 52), clears the screen (CSI 2J), uses the
one-byte C1 CSI, and carries Textual/Rich markup. `assert_harmless(text)` fails if any of it could act.
"""

from __future__ import annotations

import re

OSC_TITLE = "\x1b]0;pwned title\x07"
OSC_CLIPBOARD = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
CLEAR = "\x1b[2J"
C1_CSI = "\x9b2J"
MARKUP = "[bold red]loud[/] [@click=app.quit]quit[/]"
HOSTILE = f"Paris{OSC_TITLE}{OSC_CLIPBOARD}{CLEAR}{C1_CSI} {MARKUP} end"

# Textual's own output is CSI sequences for colours and cursor moves (ESC [ digits ; m / H) and nothing else.
_TEXTUAL_CSI = re.compile(r"\x1b\[[0-9;?]*[mHJKlhABCDGX]")


def assert_harmless(text: str) -> None:
    """No sequence from `HOSTILE` survives: no OSC, no BEL, no clear, no C1, no other control but \\n and \\t."""
    assert "\x1b]" not in text, "an OSC sequence (title, clipboard) reached the terminal"
    assert "\x07" not in text, "BEL reached the terminal"
    assert "\x1b[2J" not in text, "a clear-screen reached the terminal"
    assert not any(0x80 <= ord(c) <= 0x9F for c in text), "a C1 control reached the terminal"
    rest = _TEXTUAL_CSI.sub("", text)
    bad = sorted({repr(c) for c in rest if ord(c) < 32 and c not in "\n\t\r"})
    assert not bad, f"control characters reached the terminal: {bad}"


def visible(terminal_output: str) -> str:
    """What a person sees: Textual's colour and cursor sequences removed."""
    return _TEXTUAL_CSI.sub("", terminal_output)
