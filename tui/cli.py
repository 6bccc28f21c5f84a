"""The `proctor` command: no arguments opens the app; subcommands (tui/commands/) call core.

Every `ProctorError` becomes `proctor: error: MESSAGE` and its exit status (2 for usage, input and
configuration errors); Ctrl-C exits 130, SIGTERM 143 and SIGHUP 129 (128 + the signal's number) after the command
has saved what it had.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
import threading
from collections.abc import Sequence

import tui.commands
from core import __version__
from core.errors import ProctorError


def _command_modules() -> list:
    modules = [
        importlib.import_module(f"tui.commands.{info.name}")
        for info in pkgutil.iter_modules(tui.commands.__path__)
        if not info.name.startswith("_")
    ]
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.NAME))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proctor",
        description="Evaluate LLMs from the terminal. Without a command, opens the app on its Chat pane.",
        epilog="Settings come from the environment and .env in the current folder: see .env.example.",
    )
    parser.add_argument("--version", action="version", version=f"proctor {__version__}")
    parser.add_argument("--model", dest="app_model", metavar="MODEL",
                        help="model URI for the app's chat (azure:/DEPLOYMENT, openai:/MODEL, local:/smollm2)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        module.register(subparsers)
    return parser


def fail(message: str, code: int = 2) -> int:
    """Print a one-line error to stderr (server words in it scrubbed and made printable); return the exit status."""
    from core.safety import one_line, scrub

    print(f"proctor: error: {one_line(scrub(message))}", file=sys.stderr)
    return code


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C would be, so that commands save their work the same way."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_received_signal: int | None = None
_quick_exit = False  # the command asked for it (`set_defaults(quick_exit=True)`): see `entry`


def _stop_like_ctrl_c(signum: int, frame: object) -> None:
    global _received_signal
    _received_signal = signum
    raise Terminated(signum)


def interrupted_status() -> int:
    """The exit status for a command stopped by a signal: 128 + its number (Ctrl-C: 130, SIGHUP: 129).

    Commands that catch the KeyboardInterrupt to save their work (and raise their own, or return) lose the
    `Terminated` that carried the number: the handler remembers it here.
    """
    return 128 + (_received_signal or signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    global _quick_exit
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv:
        args = build_parser().parse_args(argv)
    else:
        # `proctor` alone opens the app: the parser (which imports every command's module) is not needed for that,
        # and the first frame would wait for it.
        args = argparse.Namespace(command=None, app_model=None)
    _quick_exit = bool(getattr(args, "quick_exit", False))
    if args.command is not None and threading.current_thread() is threading.main_thread():
        # SIGTERM and SIGHUP (a closed SSH session) stop a command the way Ctrl-C does: what is done is saved,
        # and child servers are stopped by atexit.
        for name in ("SIGTERM", "SIGHUP"):
            signal.signal(getattr(signal, name), _stop_like_ctrl_c)
    saved = sys.stdout, sys.stderr
    if args.command is not None:
        # Everything a command prints passes core.safety: no terminal control, no key in force. `ask --raw` keeps
        # stdout as it is, for pipes that want the bytes as received.
        from core.safety import SafeWriter, secrets_in_force

        secrets = secrets_in_force()
        if not getattr(args, "raw", False):
            sys.stdout = SafeWriter(sys.stdout, secrets)  # type: ignore[assignment]
        sys.stderr = SafeWriter(sys.stderr, secrets)  # type: ignore[assignment]
    try:
        if args.command is None:
            from core.config import load_settings, resolve_model

            # Check the settings before the screen is taken, so that a bad .env reads as a one-line error.
            resolve_model(args.app_model, load_settings())
            from tui.app import ProctorApp

            ProctorApp(model=args.app_model).run()
            if threading.current_thread() is threading.main_thread():
                from tui.quick_exit import exit_process

                exit_process(0)  # the terminal back at once, not after seconds of interpreter teardown
            return 0
        return int(args.func(args) or 0)
    except ProctorError as error:
        return fail(str(error), error.exit_code)
    except Terminated as stop:
        return fail("terminated (what was finished is saved)", 128 + stop.signum)
    except KeyboardInterrupt:
        if _received_signal is not None:
            return fail("terminated (what was finished is saved)", interrupted_status())
        return fail("interrupted (what was finished is saved)", 130)
    except BrokenPipeError:
        return 0
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        sys.stdout, sys.stderr = saved


def entry() -> None:  # pragma: no cover - the console script
    from tui import quick_exit

    quick_exit.arm()
    code = main()
    if _quick_exit:
        # A command whose work is all on disk when it returns (its files written atomically, its threads joined):
        # the exit handlers run, then the process ends without the interpreter's teardown, which costs a fraction
        # of a second once openai is loaded (measured: 0.03 s instead of 1.5-2.3 s at a load average of 14).
        quick_exit.exit_process(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    # `python -m tui.cli` runs a copy of this module as __main__: hand over to the importable one, so that commands
    # importing tui.cli (interrupted_status) see the state its signal handler keeps.
    from tui.cli import entry as _entry

    _entry()
