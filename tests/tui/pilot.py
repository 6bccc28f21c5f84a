"""Helpers for driving the app with Textual's Pilot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 120.0) -> None:
    """Let the app run until `condition()` holds (worker threads post their messages meanwhile).

    The deadline is generous on purpose: on a loaded 2-core machine importing openai alone can take 10 s.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)
