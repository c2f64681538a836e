"""The `trainctl` command line and the Textual app.

This package's __init__ and cli.py must not import Textual at module level: the headless commands
(`run`, `status`, `report`, `stop`, `profiles`) start fast on pods and print plain text.
"""
