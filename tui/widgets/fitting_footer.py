"""A footer that shows only the keys that fit, whole, in the order the bindings give them.

Textual's Footer lays every key out in one row and the terminal's edge cuts the last one in half (`m MLflow U▏`
at 80 columns). Here the keys that would not fit entirely are hidden instead; they are still listed by F1 and in
the command palette. The panes order their bindings most important first, so what is cut is what matters least.
"""

from __future__ import annotations

from textual import events
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class FittingFooter(Footer):
    """Footer that hides the keys that would be cut at the right edge."""

    async def recompose(self) -> None:
        await super().recompose()
        self.call_after_refresh(self._fit)

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    def _width(self, child: Widget) -> int:
        # Measured from the content, not from the last layout: a footer under a modal screen is not laid out
        # again until it is shown, so its regions can be stale.
        styles = child.styles
        content = child.get_content_width(self.size, self.app.size)
        return content + styles.gutter.width + styles.margin.width

    def _fit(self) -> None:
        palette = [c for c in self.children if isinstance(c, FooterKey) and c.has_class("-command-palette")]
        room = self.size.width - sum(self._width(c) for c in palette)
        used = 0
        for child in self.children:
            if child in palette:
                continue
            used += self._width(child)
            child.display = used <= room
