"""The `proctor` subcommands, one module each.

A module here defines `NAME` (the subcommand), `ORDER` (its place in `--help`), `register(subparsers)` which
adds its parser and sets `func`, and keeps heavy imports inside its functions. `tui.cli` finds them by listing
this package, so adding a command is adding a file.
"""
