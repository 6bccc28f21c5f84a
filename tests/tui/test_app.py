"""App-wide behaviour: the keys panel and footer order, the command palette's own commands."""

from __future__ import annotations

from textual.command import CommandPalette

from tests.tui.pilot import wait_for
from tui.app import ProctorApp


async def test_f1_lists_the_panes_keys_before_the_input_boxs_cursor_keys(openai_env):
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        order = [active.binding.action for active in app.screen.active_bindings.values()]
        # The chat's input is focused: its cursor keys exist, but come after the pane's and the app's own.
        assert "cursor_left" in order and "cancel" in order and "answer_benchmark" in order
        assert order.index("cancel") < order.index("answer_benchmark") < order.index("cursor_left")
        await pilot.press("f1")
        await pilot.pause()
        assert app.screen.query("KeyPanel"), "F1 shows the keys panel"


async def test_command_palette_carries_proctors_commands(openai_env):
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in ("Answer a benchmark", "Open a CSV to grade", "Start an evaluation", "Open a run",
                      "Compare two runs", "MLflow UI"):
            assert title in titles
        # Typing a command's name runs it: "start an evaluation" shows the Evaluate pane.
        await pilot.press(*"start an evaluation")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.query_one("#panes").active == "evaluate")


async def test_the_footer_shows_the_keys_of_the_pane_in_front(openai_env):
    # The footer recomposes only when the keys it shows change (tui/widgets/fitting_footer.py): after every pane
    # switch, there and back, its keys must still be exactly the active bindings it is meant to show.
    from textual.widgets._footer import FooterKey

    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(160, 30)) as pilot:
        for pane in ("f5", "f3", "f4", "f2", "f5", "f4"):
            await pilot.press(pane)
            await pilot.pause(0.3)
            footer = app.screen.query_one("FittingFooter")
            want = list(dict.fromkeys(b.action for _, b, _, _ in app.screen.active_bindings.values() if b.show))
            got = [key.action for key in footer.query(FooterKey) if not key.has_class("-command-palette")]
            assert got == want, pane
