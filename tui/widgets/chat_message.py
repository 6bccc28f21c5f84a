"""One turn of the Chat pane's conversation, rendered as Markdown.

A file of its own so that the Chat pane (drawn in the first frame) does not import Textual's Markdown widget
(markdown-it and its rules) before the first question: the app imports this module in a worker after the first frame.
"""

from __future__ import annotations

from textual.widgets import Markdown

from core.safety import printable


class ChatMessage(Markdown):
    """One turn of the conversation, styled by role; an answer also knows the model that gave it.

    The text is shown printable (core.safety): a model's escape sequences show as `␛`, they never drive the terminal.
    """

    def __init__(self, role: str, text: str = "", model: str | None = None) -> None:
        super().__init__(printable(text), classes=f"chat-message {role}")
        self.role = role
        self.text = printable(text)  # what is shown, and what Ctrl+Y copies
        self.model = model
