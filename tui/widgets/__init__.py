"""Widgets and modals that more than one pane uses."""
