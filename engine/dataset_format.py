"""A dataset folder's format: its file names, splits and schema version (docs/datasets.md);
the columns are engine.datasets'.

Kept apart from engine.datasets (the writer, reader and cache, which need numpy) so that the command
line can describe a dataset without loading numpy.
"""

from __future__ import annotations

SCHEMA_VERSION = 2  # 2: each transition holds the turn's random draws (`draws`, envs.duel.rules.DRAWS)
DATA_GAMES = ("duel",)
META_NAME = "dataset.json"
SOURCE_NAME = "transitions.jsonl"
CACHE_NAME = "cache"
SPLITS = ("train", "val")
DEFAULT_VAL_FRACTION = 0.1
