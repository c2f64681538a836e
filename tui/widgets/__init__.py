"""The TUI's widgets, one per module. Each renders tui.model snapshots it is given; none reads files."""
