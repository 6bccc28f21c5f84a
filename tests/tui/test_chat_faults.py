"""The Chat pane meeting a failing endpoint: the message names the URL and the setting, garbled replies fail."""

from __future__ import annotations

from textual.widgets import Static

from tests.fake_llm_server import closed_port
from tests.tui.pilot import wait_for
from tui.app import ProctorApp
from tui.panes.chat import ChatPane


def status(pane: ChatPane) -> str:
    return str(pane.query_one("#chat-status", Static).render())


async def ask(pilot, text: str) -> None:  # noqa: ANN001
    await pilot.press(*text)
    await pilot.press("enter")


async def test_a_refused_connection_names_the_url_and_the_setting(monkeypatch):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    app = ProctorApp(model="openai:/m", warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ChatPane)
        await ask(pilot, "hello")
        await wait_for(pilot, lambda: status(pane) == "failed", timeout=60)
        shown = pane._reply.source
        assert f"cannot reach {url}" in shown and "connection refused" in shown and "OPENAI_BASE_URL" in shown
        assert "APIConnectionError" not in shown
        assert pane.conversation == []


async def test_garbled_replies_are_a_failure_not_an_empty_answer(openai_env, monkeypatch):
    monkeypatch.setenv("PROCTOR_MAX_RETRIES", "1")
    openai_env.behaviour.non_json_rate = 1.0
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ChatPane)
        await ask(pilot, "hello")
        await wait_for(pilot, lambda: status(pane) == "failed", timeout=60)
        assert "not a chat completion" in pane._reply.source
    assert openai_env.attempts[("gpt-4.1-mini", "hello")] == 2
