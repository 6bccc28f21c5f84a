"""A footer that shows only the keys that fit, whole, in the order the bindings give them.

Textual's Footer lays every key out in one row and the terminal's edge cuts the last one in half (`m MLflow U▏`
at 80 columns). Here the keys that would not fit entirely are hidden instead; they are still listed by F1 and in
the command palette. The panes order their bindings most important first, so what is cut is what matters least.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class FittingFooter(Footer):
    """Footer that hides the keys that would be cut at the right edge."""

    async def recompose(self) -> None:
        await super().recompose()
        self.call_after_refresh(self._fit)

    def on_resize(self, event: events.Resize) -> None:
        for child in self.children:
            child.display = True
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        palette = [c for c in self.children if isinstance(c, FooterKey) and c.has_class("-command-palette")]
        right = self.region.right - sum(c.outer_size.width for c in palette)
        cut = False
        for child in self.children:
            if child in palette or not child.display:
                continue
            cut = cut or child.region.right + child.styles.margin.right > right
            child.display = not cut
