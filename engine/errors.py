"""The one exception type for mistakes a user can make (bad profile, flag, config value, run folder,
checkpoint). The CLI and the TUI catch it once and show its message as a single line (exit code 2 on
the CLI); anything else that escapes is a bug and keeps its traceback.
"""


class UsageError(Exception):
    """A user-caused error. The message is one line naming what is wrong and what was expected."""
