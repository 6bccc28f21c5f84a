"""The Chat pane, driven with Textual's Pilot against the fake server, and its snapshot."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Static, TabbedContent

from tests.conftest import TEST_KEY
from tests.tui.pilot import wait_for
from tui.app import ProctorApp
from tui.panes.chat import AnswerLabel, ChatPane
from tui.widgets.chat_message import ChatMessage


def answered(pane: ChatPane, turns: int):
    return lambda: pane._stream is None and len(pane.conversation) == 2 * turns and "tokens" in status(pane)


def status(pane: ChatPane) -> str:
    return str(pane.query_one("#chat-status", Static).render())


async def ask(pilot, text: str) -> None:
    await pilot.press(*text)
    await pilot.press("enter")


async def test_multi_turn_conversation_streams_answers(openai_env):
    requests = []

    def responder(body, info):
        requests.append(body["messages"])
        return f"reply {len(body['messages'])}"

    openai_env.behaviour.responder = responder
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ChatPane)
        assert "openai:/gpt-4.1-mini" in str(pane.query_one("#chat-model", Static).render())
        assert app.focused is pane.query_one("#chat-input", Input)
        await ask(pilot, "hello")
        await wait_for(pilot, answered(pane, 1))
        await ask(pilot, "and again")
        await wait_for(pilot, answered(pane, 2))
        texts = [(m.role, m.text) for m in pane.query(ChatMessage)]
        assert texts == [("user", "hello"), ("assistant", "reply 1"), ("user", "and again"), ("assistant", "reply 3")]
        assert requests[1] == [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "reply 1"},
            {"role": "user", "content": "and again"},
        ]
        assert all(request.stream for request in openai_env.log)


async def test_escape_cancels_the_answer_in_flight(openai_env):
    openai_env.behaviour.responder = lambda body, info: " ".join(["word"] * 400)
    openai_env.behaviour.stream_chunk_delay = 0.02
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ChatPane)
        await ask(pilot, "tell me everything")
        await wait_for(pilot, lambda: len(pane._reply.text) > 10)
        await pilot.press("escape")
        await wait_for(pilot, lambda: pane._stream is None)
        assert status(pane).startswith("cancelled")
        assert 0 < len(pane._reply.text.split()) < 400
        assert pane._reply.has_class("cancelled")
        # The pane is ready for the next question at once.
        openai_env.behaviour.stream_chunk_delay = 0
        openai_env.behaviour.responder = None
        await ask(pilot, "short one")
        await wait_for(pilot, lambda: pane._stream is None and pane.conversation[-1]["role"] == "assistant"
                       and pane.conversation[-1]["content"].endswith("short one"))


async def test_copy_and_clear(openai_env):
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ChatPane)
        await pilot.press("ctrl+y")  # nothing to copy yet: a warning, no crash
        assert app.clipboard == ""
        await ask(pilot, "copy me")
        await wait_for(pilot, answered(pane, 1))
        await pilot.press("ctrl+y")
        assert app.clipboard == "Answer from gpt-4.1-mini: copy me"
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert pane.conversation == []
        assert not pane.query(ChatMessage)


async def test_switch_model_with_the_picker(openai_env, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", openai_env.root)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", TEST_KEY)
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ChatPane)
        await pilot.press("ctrl+o")
        await pilot.pause()
        picker_input = app.screen.query_one("#model-picker-input", Input)
        picker_input.value = "gpt-5"
        await pilot.press("enter")
        await pilot.pause()
        assert "not a model URI" in str(app.screen.query_one("#model-picker-error", Static).render())
        picker_input.value = "azure:/gpt-4.1-nano"
        await pilot.press("enter")
        await pilot.pause()
        assert pane.model_uri == "azure:/gpt-4.1-nano"
        await ask(pilot, "which one?")
        await wait_for(pilot, lambda: pane._stream is None and len(pane.conversation) == 2)
        assert (openai_env.log[-1].route, openai_env.log[-1].model) == ("azure", "gpt-4.1-nano")


async def test_failed_answer_is_shown_and_not_sent_again(openai_env, monkeypatch):
    monkeypatch.setenv("PROCTOR_MAX_RETRIES", "0")
    openai_env.behaviour.fail_rate = 1.0
    openai_env.behaviour.fail_statuses = (500,)
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ChatPane)
        await ask(pilot, "boom")
        await wait_for(pilot, lambda: status(pane) == "failed")
        assert pane._reply.has_class("failed")
        assert pane.conversation == []


async def test_local_model_is_labelled_a_demo():
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(80, 24)):
        label = str(app.query_one("#chat-model", Static).render())
        assert "local:/smollm2" in label and "tiny demo model" in label


@pytest.mark.parametrize(("key", "pane"), [("f3", "grade"), ("f4", "evaluate"), ("f5", "runs"), ("f2", "chat")])
async def test_function_keys_switch_panes(key, pane):
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5" if key == "f2" else key)
        await pilot.press(key)
        await pilot.pause()
        assert app.query_one("#panes", TabbedContent).active == pane


def test_chat_snapshot_80x24(snap_compare, openai_env):
    answer = "MLOps is the practice of running **machine learning** in production."
    openai_env.behaviour.responder = lambda body, info: answer

    async def run_before(pilot) -> None:
        pane = pilot.app.query_one(ChatPane)
        await ask(pilot, "What is MLOps?")
        await wait_for(pilot, lambda: pane._stream is None and len(pane.conversation) == 2)
        pane.query_one("#chat-status", Static).update("0.1 s · 10 tokens")  # timings vary from run to run
        pane.query_one("#chat-input", Input).cursor_blink = False  # nor may the picture depend on a blink
        await pilot.pause()

    assert snap_compare(ProctorApp(warm_up=False), terminal_size=(80, 24), run_before=run_before)


async def test_each_answer_names_its_model_and_up_recalls_questions(openai_env, monkeypatch):
    openai_env.behaviour.responder = lambda body, info: "\n\n".join(f"line {n}" for n in range(40))
    monkeypatch.setenv("PROCTOR_MODELS", "openai:/gpt-4.1-nano,openai:/gpt-4.1-mini")
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ChatPane)
        await ask(pilot, "first question")
        await wait_for(pilot, answered(pane, 1))
        # Switch model: the next answer is labelled with the new one, the earlier keeps its own.
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: app.screen.query("#model-picker-options"))
        options = app.screen.query_one("#model-picker-options")
        offered = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert "openai:/gpt-4.1-nano" in offered and "local:/smollm2" in offered  # PROCTOR_MODELS, then the rest
        app.screen.query_one("#model-picker-input").value = "openai:/gpt-4.1-nano"
        await pilot.press("enter")
        await wait_for(pilot, lambda: pane.model_uri == "openai:/gpt-4.1-nano")
        await ask(pilot, "second question")
        await wait_for(pilot, answered(pane, 2))
        labels = [str(label.render()) for label in pane.query(AnswerLabel)]
        assert labels == ["openai:/gpt-4.1-mini", "openai:/gpt-4.1-nano"]
        # Up recalls earlier questions into the input, newest first; Down comes back to an empty box.
        field = pane.query_one("#chat-input", Input)
        await pilot.press("up")
        assert field.value == "second question"
        await pilot.press("up")
        assert field.value == "first question"
        await pilot.press("down", "down")
        assert field.value == ""
        # PgUp scrolls the conversation while the input keeps the keyboard.
        log = pane.query_one("#chat-log")
        await wait_for(pilot, lambda: log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y)
        bottom = log.scroll_y
        await pilot.press("pageup")
        await wait_for(pilot, lambda: log.scroll_y < bottom)
        assert app.focused is field
        # Ctrl+B starts from the chat's model.
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: app.screen.query("#answer-model"))
        assert app.screen.query_one("#answer-model", Input).value == "openai:/gpt-4.1-nano"


async def test_a_cancelled_turn_is_marked(openai_env):
    openai_env.behaviour.responder = lambda body, info: " ".join(["word"] * 400)
    openai_env.behaviour.stream_chunk_delay = 0.02
    app = ProctorApp(warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ChatPane)
        await ask(pilot, "tell me everything")
        await wait_for(pilot, lambda: len(pane._reply.text) > 10)
        await pilot.press("escape")
        await wait_for(pilot, lambda: pane._stream is None)
        assert str(pane.query_one(AnswerLabel).render()) == "openai:/gpt-4.1-mini · cancelled"
