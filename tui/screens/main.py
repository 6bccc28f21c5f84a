"""The app's main screen: the panes. It lists Proctor's own keys before the keys of Textual's widgets.

Textual orders a screen's bindings from the focused widget outwards, so with the chat's input focused, F1 began
with the input's cursor keys (left, right, home, ...) and the pane's own keys came after. Here the bindings that
Proctor declares (panes, widgets of ours, the app) come first, in the same outward order, then Textual's own; F1
and the footer both read this order.
"""

from __future__ import annotations

from textual.binding import ActiveBinding, Binding
from textual.screen import Screen


def _ours(binding: Binding) -> bool:
    # Every binding Proctor declares has an id (a house rule); Textual's own widgets give theirs none.
    return binding.id is not None


class MainScreen(Screen[None]):
    """The default screen of ProctorApp."""

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        bindings = super().active_bindings
        ordered = {key: active for key, active in bindings.items() if _ours(active.binding)}
        ordered.update((key, active) for key, active in bindings.items() if key not in ordered)
        return ordered
