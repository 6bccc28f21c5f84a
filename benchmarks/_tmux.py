"""The environment of a command that a benchmark runs in a tmux pane.

A pane's command inherits the tmux server's environment, which is whatever process started the server: the
developer's shell (its AZURE_/OPENAI_/MLFLOW_ settings) or a benchmark that had set variables for its own use. That
once made the app refuse its settings and exit before it was timed. `clean_env` starts from nothing instead.
"""

from __future__ import annotations

# Kept from the pane's own shell: what a terminal program needs to find itself and draw.
KEPT = ("HOME", "PATH", "TERM", "COLORTERM", "LANG")


def clean_env(assignments: str) -> str:
    """`env -i` with the terminal's basics and `assignments` ("NAME=value ..."): prefix for a pane's command."""
    kept = " ".join(f'{name}="${name}"' for name in KEPT)
    return f"env -i {kept} {assignments}"
