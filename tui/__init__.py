"""The Textual app of trainctl: runs list, run monitor, launcher, compare. Opened by cli.main."""
