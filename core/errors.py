"""The errors Proctor turns into a one-line message and an exit status, instead of a traceback."""

from __future__ import annotations


class ProctorError(Exception):
    """A failure the user can act on. `str(error)` is the one-line message; `exit_code` the process status."""

    exit_code = 1


class ConfigError(ProctorError):
    """A missing or inconsistent setting. The message names the environment variable to fix."""

    exit_code = 2


class InputError(ProctorError):
    """A bad input file or argument: missing, empty, unreadable, or without the columns we need."""

    exit_code = 2


class LLMError(ProctorError):
    """The model did not answer, after every retry the budget allowed."""

    exit_code = 1


class WriteError(InputError, OSError):
    """A file could not be written (disk full, read-only folder, permission denied). The file was not replaced.

    It is an `OSError` too, so that code which keeps its journal on a failed save still sees one.
    """

    def __init__(self, path: object, error: OSError) -> None:
        self.message = f"cannot write {path}: {error.strerror or error} (the file was left as it was)"
        super().__init__(error.errno, self.message)

    def __str__(self) -> str:
        return self.message
