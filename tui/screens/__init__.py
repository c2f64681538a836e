"""The TUI's screens, one per module: the runs list with the run monitor, the launcher, compare, and
the modal dialogs (confirm, quit, metric picker)."""
