"""The `trainctl` command layer: argument parsing and the headless commands. Never imports Textual."""
