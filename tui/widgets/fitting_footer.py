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

    _shown: tuple | None = None  # what the keys on screen were composed from

    def _keys(self) -> tuple:
        """Everything `Footer.compose` draws from: the active bindings as it reads them, and its two switches."""
        return (self.compact, self.show_command_palette, tuple(
            (binding.key, binding.action, binding.description, binding.show, enabled, tooltip,
             self.app.get_key_display(binding),
             None if binding.group is None else (binding.group.description, binding.group.compact))
            for _, binding, enabled, tooltip in self.screen.active_bindings.values()))

    async def recompose(self) -> None:
        # Textual recomposes the footer on every focus change, and a pane switch or a screen opened fires several:
        # each costs tens of milliseconds (0.3-0.5 s at a load of 14) on the UI thread, for the same keys. Only a
        # change of what the keys show is worth it.
        if self._bindings_ready and self.is_attached:
            keys = self._keys()
            if keys == self._shown:
                return
            self._shown = keys
        await super().recompose()
        # Fitted at once (the widths come from the content, not the layout), so that no frame shows the new keys
        # unfitted; and again after the refresh, once they are laid out.
        self._fit()
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
