"""The app's panes, one per file: chat, grade, evaluate, runs."""
