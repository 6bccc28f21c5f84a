"""The Chat pane: a multi-turn conversation with the model, answers streamed as they come.

Keys: Enter sends, Escape cancels the answer in flight, Up/Down recall earlier questions, PgUp/PgDn scroll the
conversation while typing, Ctrl+Y copies the last answer, Ctrl+L clears the conversation, Ctrl+O switches the
model. Every answer is labelled with the model that gave it (and marked when cancelled or failed), so a
conversation that switched models stays readable. The answer streams in a thread worker (core.llm.ChatStream is blocking
I/O); the worker posts past-tense messages back to the pane.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Static

from core.safety import PrintableStream, printable, scrub
from tui import untrusted
from tui.widgets.model_picker import ModelPickerScreen

if TYPE_CHECKING:
    from tui.widgets.chat_message import ChatMessage


class AnswerLabel(Static):
    """The line above an answer: which model gave it, and whether it was cancelled or failed."""

    def __init__(self, model: str) -> None:
        super().__init__(classes="chat-answer-label muted", markup=False)
        self.model = model
        self.mark("")

    def mark(self, state: str) -> None:
        self.update(f"{self.model} · {state}" if state else self.model)


class ChatInput(Input):
    """The question box. Up/Down recall earlier questions and PgUp/PgDn scroll the conversation: Textual's Input
    binds those keys to scrolling itself (a one-line box has nothing to scroll), so they must be rebound here."""

    BINDINGS = [
        Binding("up", "recall(-1)", "Earlier question", show=False, id="chat.recall_previous"),
        Binding("down", "recall(1)", "Later question", show=False, id="chat.recall_next"),
        Binding("pageup", "scroll_log(-1)", "Scroll up", show=False, id="chat.scroll_up"),
        Binding("pagedown", "scroll_log(1)", "Scroll down", show=False, id="chat.scroll_down"),
    ]

    def action_recall(self, step: int) -> None:
        self.query_ancestor(ChatPane).action_recall(step)

    def action_scroll_log(self, direction: int) -> None:
        self.query_ancestor(ChatPane).action_scroll_log(direction)


class ChatPane(Vertical):
    """Talk to the model under test."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="chat.cancel"),
        Binding("ctrl+y", "copy", "Copy", id="chat.copy"),
        Binding("ctrl+l", "clear", "Clear", show=False, id="chat.clear"),
        Binding("ctrl+o", "switch_model", "Model", id="chat.model"),
    ]

    @dataclass
    class AnswerStarted(Message):
        pass

    @dataclass
    class AnswerChunkReceived(Message):
        text: str

    @dataclass
    class AnswerFinished(Message):
        text: str
        latency_s: float | None
        completion_tokens: int | None
        cancelled: bool

    @dataclass
    class AnswerFailed(Message):
        error: str

    def __init__(self, model: str | None = None) -> None:
        super().__init__(id="chat-pane")
        self.model_uri = model
        self.conversation: list[dict[str, str]] = []
        self._stream = None
        self._reply: ChatMessage | None = None
        self._label: AnswerLabel | None = None
        self._md_stream = None
        self.history: list[str] = []  # questions sent, oldest first, for Up/Down recall
        self._recall_at: int | None = None  # index into history while recalling; None: a new question
        self._printable = PrintableStream()

    def compose(self) -> ComposeResult:
        with Horizontal(id="chat-model-bar"):
            yield Static("", id="chat-model")
            yield Static("", id="chat-status", classes="muted")
        with VerticalScroll(id="chat-log"):
            yield Static(
                "Ask the model anything. Enter sends · Esc cancels · Ctrl+O changes the model.",
                id="chat-empty", classes="muted",
            )
        yield ChatInput(placeholder="Ask the model…  (Enter to send · ↑ earlier questions)", id="chat-input")

    def on_mount(self) -> None:
        self._show_model()

    def focus_default(self) -> None:
        self.focus_target().focus()

    def focus_target(self) -> Widget:
        """The widget that takes the keyboard when the pane is shown."""
        return self.query_one("#chat-input", Input)

    # -- model
    def _show_model(self) -> None:
        from core.config import resolve_model
        from core.errors import ProctorError

        label = self.query_one("#chat-model", Static)
        try:
            spec = resolve_model(self.model_uri)
        except ProctorError as error:
            label.update(untrusted.markup("[b]Model[/] [red]$error[/]", error=str(error)))
            return
        self.model_uri = spec.uri
        text = "[b]Model[/] $uri"
        if spec.provider == "local":
            text += "  [yellow](tiny demo model: answers mean little)[/]"
        label.update(untrusted.markup(text, uri=spec.uri))

    def action_switch_model(self) -> None:
        def chosen(uri: str | None) -> None:
            if uri:
                self.model_uri = uri
                self._show_model()
                untrusted.notify(self, f"Chatting with {uri}")
            self.focus_default()

        self.app.push_screen(ModelPickerScreen(current=self.model_uri), chosen)

    # -- conversation
    @on(Input.Submitted, "#chat-input")
    async def send(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            return
        if self._stream is not None:
            self.notify("Wait for the answer, or press Esc to cancel it.", severity="warning")
            return
        event.input.value = ""
        if not self.history or self.history[-1] != question:
            self.history.append(question)
        self._recall_at = None
        from textual.widgets import Markdown

        from tui.widgets.chat_message import ChatMessage

        for empty in self.query("#chat-empty"):
            await empty.remove()
        log = self.query_one("#chat-log", VerticalScroll)
        self.conversation.append({"role": "user", "content": question})
        await log.mount(ChatMessage("user", question))
        self._label = AnswerLabel(self.model_uri or "default model")
        self._reply = ChatMessage("assistant", model=self.model_uri)
        await log.mount(self._label, self._reply)
        self._md_stream = Markdown.get_stream(self._reply)
        self._printable = PrintableStream()  # the model's words may hold escape sequences
        log.anchor()
        self._set_status("answering…  (Esc cancels)")
        self.stream_answer(list(self.conversation), self.model_uri)

    @work(thread=True, exclusive=True, group="chat")
    def stream_answer(self, messages: list[dict[str, str]], model: str | None) -> None:
        from core.errors import ProctorError
        from core.llm import stream_chat

        try:
            stream = stream_chat(messages, model)
            self._stream = stream
            self.post_message(self.AnswerStarted())
            for piece in stream:
                self.post_message(self.AnswerChunkReceived(piece))
            self.post_message(self.AnswerFinished(stream.text, stream.latency_s, stream.completion_tokens,
                                                  stream.cancelled))
        except ProctorError as error:
            self.post_message(self.AnswerFailed(scrub(error)))
        except Exception as error:  # noqa: BLE001 - a worker must report, never die silently
            self.post_message(self.AnswerFailed(scrub(f"{type(error).__name__}: {error}")))

    async def on_chat_pane_answer_chunk_received(self, message: AnswerChunkReceived) -> None:
        if self._reply is not None and self._md_stream is not None:
            piece = self._printable.feed(message.text)
            self._reply.text += piece
            await self._md_stream.write(piece)

    async def _end_answer(self) -> None:
        if self._md_stream is not None:
            await self._md_stream.stop()
        self._md_stream = None
        self._stream = None

    async def on_chat_pane_answer_finished(self, message: AnswerFinished) -> None:
        await self._end_answer()
        if message.text:
            self.conversation.append({"role": "assistant", "content": message.text})
        details = []
        if message.latency_s is not None:
            details.append(f"{message.latency_s:.1f} s")
        if message.completion_tokens:
            details.append(f"{message.completion_tokens} tokens")
        if message.cancelled:
            details.insert(0, "cancelled")
            if self._reply is not None:
                self._reply.add_class("cancelled")
            if self._label is not None:
                self._label.mark("cancelled")
        self._set_status(" · ".join(details))

    async def on_chat_pane_answer_failed(self, message: AnswerFailed) -> None:
        await self._end_answer()
        if self._reply is not None:
            self._reply.add_class("failed")
            await self._reply.update(f"**Error:** {printable(message.error)}")
        if self._label is not None:
            self._label.mark("failed")
        # The question stays in the log but not in the conversation sent next time.
        if self.conversation and self.conversation[-1]["role"] == "user":
            self.conversation.pop()
        self._set_status("failed")
        untrusted.notify(self, message.error, severity="error", timeout=8)

    def _set_status(self, text: str) -> None:
        self.query_one("#chat-status", Static).update(untrusted.line(text))

    # -- keys
    def action_cancel(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            self._set_status("cancelling…")

    def action_recall(self, step: int) -> None:
        """Put an earlier (step -1) or later (+1) question back into the input, like a shell's history."""
        if not self.history:
            return
        at = len(self.history) if self._recall_at is None else self._recall_at
        at = max(0, min(len(self.history), at + step))
        field = self.query_one("#chat-input", Input)
        if at == len(self.history):
            self._recall_at = None
            field.value = ""
        else:
            self._recall_at = at
            field.value = self.history[at]
        field.cursor_position = len(field.value)

    def action_scroll_log(self, direction: int) -> None:
        log = self.query_one("#chat-log", VerticalScroll)
        if direction < 0:
            log.scroll_page_up()
        else:
            log.scroll_page_down()

    def action_copy(self) -> None:
        from tui.widgets.chat_message import ChatMessage

        answers = [m for m in self.query(ChatMessage) if m.role == "assistant" and m.text]
        if not answers:
            self.notify("No answer to copy yet.", severity="warning")
            return
        self.app.copy_to_clipboard(answers[-1].text)
        self.notify("Last answer copied to the clipboard.")

    async def action_clear(self) -> None:
        self.action_cancel()
        self.conversation.clear()
        log = self.query_one("#chat-log", VerticalScroll)
        await log.remove_children()
        await log.mount(Static("Conversation cleared.", id="chat-empty", classes="muted"))
        self._set_status("")
