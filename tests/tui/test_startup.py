"""What the app loads before its first frame: a guard on the import discipline, not a timing test.

The first frame waits for every module imported before it (README, "Start-up"). These tests run the real entry
path (the command's parser, the settings, the app) in a fresh interpreter, stop the app at its first frame, and
check what was loaded by then: none of the heavy libraries, and no pane's module but the one shown.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Input, TabbedContent, TabPane

from tests.tui.pilot import wait_for
from tests.tui.test_grade_pane import answers_csv
from tui.app import PANES, ProctorApp

ROOT = Path(__file__).resolve().parents[2]

HEAVY = ("openai", "mlflow", "pandas", "numpy", "scipy", "httpx", "markdown_it")
# Each subcommand's module: `proctor` alone needs none of them.
COMMANDS = "tui.commands."
PANE_MODULES = ("tui.panes.chat", "tui.panes.grade", "tui.panes.evaluate", "tui.panes.runs")

# `proctor` without arguments (tui.cli.main, as the console script runs it; another pane: the app made directly),
# the app run headless and stopped when its first frame is drawn: `_after_first_frame` is where the app starts
# loading everything else.
FIRST_FRAME = """
import json, sys
import tui.app
import tui.cli

seen = []

def after_first_frame(self):
    seen.extend(sorted(sys.modules))
    self.exit()

run = tui.app.ProctorApp.run
tui.app.ProctorApp._after_first_frame = after_first_frame
tui.app.ProctorApp.run = lambda self, **options: run(self, headless=True, size=(80, 24))
if sys.argv[1] == "chat":
    assert tui.cli.main([]) == 0
else:
    tui.app.ProctorApp(pane=sys.argv[1]).run()
print(json.dumps({"modules": seen, "shown": bool(seen)}))
"""


def _loaded_at_first_frame(pane: str, folder: Path) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", FIRST_FRAME, pane], capture_output=True, text=True, cwd=folder,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["shown"], "the app never drew its first frame"
    return set(report["modules"])


def _tops(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("pane", ["chat", "evaluate"])
def test_the_first_frame_loads_no_heavy_library_and_only_the_pane_shown(pane: str, tmp_path: Path,
                                                                        openai_env) -> None:  # noqa: ANN001
    loaded = _loaded_at_first_frame(pane, tmp_path)
    assert not _tops(loaded) & set(HEAVY), "imported before the first frame: " + ", ".join(
        sorted(_tops(loaded) & set(HEAVY)))
    assert f"tui.panes.{pane}" in loaded
    assert not [module for module in loaded if module.startswith(COMMANDS)], "the command parser was built"
    others = {module for module in PANE_MODULES if module != f"tui.panes.{pane}"}
    assert not loaded & others, f"built before the first frame: {sorted(loaded & others)}"


def test_importing_the_app_imports_no_pane() -> None:
    # Each pane's module is imported when the pane is built: the one shown first, then the others after the frame.
    code = f"import json, sys, tui.app\nprint(json.dumps(sorted(m for m in {PANE_MODULES!r} if m in sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(result.stdout) == []


class _NoBackgroundBuild(ProctorApp):
    """The app as a key pressed at once finds it: the first frame drawn, the other panes not built yet."""

    def _after_first_frame(self) -> None:
        pass


async def test_every_pane_is_built_after_the_first_frame_without_a_key(openai_env) -> None:  # noqa: ANN001
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: all(app.mounted_pane(pane) is not None for pane in PANES))
        assert app.query_one("#panes", TabbedContent).active == "chat"
        assert app.focused is not None and app.focused.id == "chat-input"
        for pane in PANES:
            assert app.mounted_pane(pane).parent is app.query_one(f"#{pane}", TabPane)


async def test_a_pane_shown_before_it_is_built_is_built_and_takes_the_keyboard(openai_env) -> None:  # noqa: ANN001
    app = _NoBackgroundBuild(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.mounted_pane("grade") is None
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.focused is not None and app.focused.id == "csv-picker-input")
        assert app.query_one("#panes", TabbedContent).active == "grade"
        assert app.mounted_pane("evaluate") is None  # only what was asked for


async def test_keys_typed_while_a_pane_is_being_built_reach_it(openai_env) -> None:  # noqa: ANN001
    app = _NoBackgroundBuild(warm_up=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4", *"abc", "tab", "x")  # F4 waits for the pane; the keys after it are held meanwhile
        await wait_for(pilot, lambda: app.mounted_pane("evaluate") is not None
                       and app.query_one("#eval-model", Input).value == "x")
        assert app.query_one("#eval-path", Input).value == "abc"
        assert app.query_one("#panes", TabbedContent).active == "evaluate"


async def test_a_call_for_a_pane_not_built_yet_waits_for_it(openai_env, tmp_path: Path) -> None:  # noqa: ANN001
    path = answers_csv(tmp_path / "a.csv")
    app = _NoBackgroundBuild(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.lend_to_evaluation(str(path)) is False  # no Grade pane yet: it has no file to lend
        app.open_in_grade(str(path))
        await wait_for(pilot, lambda: app.mounted_pane("grade") is not None
                       and app.mounted_pane("grade").session is not None)
        await wait_for(pilot, lambda: app.query_one("#panes", TabbedContent).active == "grade"
                       and app.focused is app.mounted_pane("grade"))
        assert app.mounted_pane("grade").session.path.name == "a.csv"
