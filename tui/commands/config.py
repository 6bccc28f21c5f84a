"""`proctor config`: the settings in force, keys masked, and the model they resolve to."""

from __future__ import annotations

import argparse

NAME = "config"
ORDER = 90


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help="show the settings in force (keys masked)",
                                   description="Show the settings in force, from the environment and .env; "
                                               "keys are masked.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core.config import load_settings, resolve_model

    settings = load_settings()
    for name, value in settings.masked().items():
        print(f"{name}={value}")
    spec = resolve_model(None, settings)
    print(f"# default model: {spec.uri}")
    return 0
