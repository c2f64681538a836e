"""Transition datasets of scripted games, for supervised (world-model) training: generation, the columnar
cache beside the source, loading and the train/val split. The folder layout is docs/datasets.md.

A dataset folder holds `dataset.json` (what was generated: game, players, seed, counts, the schema
version, the split's seed and share), `transitions.jsonl` (the source: one transition a line, `COLUMNS`
in order, whole games only, each game's turns in order, games in the order they ended) and `cache/`,
one folder a split of numpy `.npy` columns (never pickles) with a `manifest.json` keyed by the source's
sha256, the schema version and the split. `load` uses a split's cache when its key and files match
(`cache train=hit val=hit`) and rebuilds it from the source otherwise, saying why; a last source line
without its newline is a torn write: skipped and counted. Everything is written under a temporary name
and renamed into place, so a crash leaves the old file or the new one, never half of one.

Generation steps N games at once in the Cython core (`CoreBatch`) and writes the source and the cache
from the same values; `ReferenceBatch` plays the same games through the pure-Python rules, so a test
can hold the two files byte for byte equal. This module knows Duel's observation layout
(`envs.duel.rules`) to derive HP deltas and KO flags; it must not hold a rule of the game. Bad input a
user can cause is a one-line UsageError.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from engine.dataset_format import (
    CACHE_NAME,
    DATA_GAMES,
    DEFAULT_VAL_FRACTION,
    META_NAME,
    SCHEMA_VERSION,
    SOURCE_NAME,
    SPLITS,
)
from engine.errors import UsageError
from engine.runstore import atomic_write_json
from envs.duel import rules
from envs.rng import Rng

HP_COLUMNS = 2 * rules.TEAM_SIZE  # my slots 0-2, then theirs

# Column -> (dtype, width; 0 = a scalar per transition), in the order of a JSONL line's keys.
COLUMNS: dict[str, tuple[str, int]] = {
    "game_id": ("int64", 0),
    "turn": ("int16", 0),
    "obs": ("float32", rules.OBS_SIZE),
    "action": ("int8", 0),
    "opp_action": ("int8", 0),
    "draws": ("int8", len(rules.DRAWS)),
    "next_obs": ("float32", rules.OBS_SIZE),
    "hp_delta": ("int16", HP_COLUMNS),
    "ko": ("bool", HP_COLUMNS),
    "reward": ("float32", 0),
    "done": ("bool", 0),
}

VALUES_PER_LINE = sum(max(width, 1) for _, width in COLUMNS.values())
PARSE_CHUNK = 1 << 14  # lines parsed together
_KEY = re.compile(rb'"[a-z_]+":')
_KEYS = [f'"{name}":'.encode() for name in COLUMNS]

Progress = Callable[[int, int], None]
"""progress(transitions written, transitions asked for)."""


# -- generation -----------------------------------------------------------------------------------------


class Batch(Protocol):
    """N games of Duel played by two scripted players, one turn a call."""

    obs: np.ndarray  # float32[N, D], each game's observation before the coming turn

    def turn(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Play one turn everywhere: (agent actions int64[N], the turn's random draws int8[N, 5]
        (rules.DRAWS), next_obs float32[N, D] (a finished game's final observation), rewards float32[N],
        dones bool[N]); finished games deal their next one."""
        ...


class CoreBatch:
    """N games in the Cython core: game i seeded `seed + i`, `agent` choosing for side 0 inside the core."""

    def __init__(self, num_games: int, agent: str, opponent: str, seed: int) -> None:
        from envs.duel.core import CORE  # the compiled core only when generating: `data show` needs no build

        self.core, self.buffers = CORE.build(num_games, opponent, {"shaping": "hp"}, auto_reset=True)
        self.core.reset(np.arange(seed, seed + num_games, dtype=np.uint64))
        self.agent = agent
        self.actions = np.zeros(num_games, dtype=np.int64)
        self.obs = self.buffers.obs.copy()

    def turn(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        b = self.buffers
        self.core.choose(self.agent, self.actions)  # type: ignore[attr-defined]
        if self.core.step(self.actions) >= 0:
            raise RuntimeError("a scripted player chose an illegal action")
        dones = b.terminated.copy()
        next_obs = np.where(dones[:, None], b.terminal_obs, b.obs)
        self.obs = b.obs.copy()
        draws = self.core.turn_draws.copy()  # type: ignore[attr-defined]
        return self.actions.copy(), draws, next_obs, b.rewards.copy(), dones


class ReferenceBatch:
    """The same N games as `CoreBatch` through the pure-Python rules (slow: for tests)."""

    def __init__(self, num_games: int, agent: str, opponent: str, seed: int) -> None:
        self.games = [rules.DuelGame(Rng(seed + i)) for i in range(num_games)]
        self.agent, self.opponent = agent, opponent
        self.obs = np.stack([g.observation() for g in self.games])

    def turn(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        actions, draws, next_obs, rewards, dones = [], [], [], [], []
        for game in self.games:
            action = game.choose(0, self.agent)
            result = game.play_turn((action, game.choose(1, self.opponent)))
            actions.append(action)
            draws.append(result.draws)
            next_obs.append(game.observation())
            rewards.append(game.reward(result, "hp"))
            dones.append(game.over)
            if game.over:
                game.reset()
        self.obs = np.stack([g.observation() for g in self.games])
        return (np.array(actions, np.int64), np.array(draws, np.int8), np.stack(next_obs),
                np.array(rewards, np.float32), np.array(dones, np.bool_))


class _FloatText:
    """Shortest text of float32 values (`0.43`, not `0.4300000071525879`): a float32 read back from it
    is the same value. An observation is a few blocks (a creature's 9 values, the turn, the last action)
    that take few distinct values, so the text of each block is memoised by its bytes."""

    # An observation's blocks, as byte ranges of a float32 row: six creature slots, the turn, the last action.
    BLOCKS: ClassVar[list[tuple[int, int]]] = [
        *((4 * s * rules.SLOT_SIZE, 4 * (s + 1) * rules.SLOT_SIZE) for s in range(HP_COLUMNS)),
        (4 * rules.OBS_TURN, 4 * rules.OBS_LAST_ACTION), (4 * rules.OBS_LAST_ACTION, 4 * rules.OBS_SIZE)]

    def __init__(self) -> None:
        self._texts: dict[float, str] = {}
        self._blocks: dict[bytes, str] = {}

    def __call__(self, value: float) -> str:
        text = self._texts.get(value)
        if text is None:
            text = self._texts[value] = str(np.float32(value))
        return text

    def row(self, values: np.ndarray) -> str:
        """The comma-separated text of one float32[OBS_SIZE] observation."""
        raw = values.tobytes()
        parts = []
        for start, end in self.BLOCKS:
            key = raw[start:end]
            text = self._blocks.get(key)
            if text is None:
                text = self._blocks[key] = ",".join(self(v) for v in np.frombuffer(key, np.float32).tolist())
            parts.append(text)
        return ",".join(parts)


def hp_and_alive(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(HP int16[..., 6], not KO bool[..., 6]) read off observations (HP is exact there: hp / hp_scale)."""
    slots = obs[..., : HP_COLUMNS * rules.SLOT_SIZE].reshape(*obs.shape[:-1], HP_COLUMNS, rules.SLOT_SIZE)
    return np.rint(slots[..., 0] * rules.PARAMS.hp_scale).astype(np.int16), slots[..., 1] > 0


@dataclass
class GenerationResult:
    transitions: int
    games: int
    seconds: float
    source_bytes: int


def generate(out: Path, players: tuple[str, str], transitions: int, seed: int, *, num_games: int = 256,
             val_fraction: float = DEFAULT_VAL_FRACTION, backend: str = "cython",
             progress: Progress | None = None) -> GenerationResult:
    """Write a dataset of at least `transitions` transitions (whole games) to the new folder `out`:
    `players[0]` plays side 0, `players[1]` side 1, game i of the N in flight seeded `seed + i`. The
    source is written under a temporary name and renamed, then dataset.json, then the cache, from the
    columns the source was written from (so loading it next is a hit). UsageError for bad arguments or an
    `out` that already holds files."""
    check_generation(out, players, transitions, seed, num_games, val_fraction)
    batch: Batch = (CoreBatch if backend == "cython" else ReferenceBatch)(num_games, *players, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    fd, tmp = tempfile.mkstemp(prefix=f".{SOURCE_NAME}.", suffix=".tmp", dir=out)
    try:
        with os.fdopen(fd, "w", encoding="ascii", newline="\n") as f:
            writer = _SourceWriter(f)
            columns = _write_games(writer, batch, num_games, transitions, progress)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out / SOURCE_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - started
    written, games = len(columns["game_id"]), int(columns["game_id"][-1]) + 1
    meta = {
        "schema_version": SCHEMA_VERSION, "game": "duel", "players": list(players), "seed": seed,
        "transitions": written, "games": games, "requested": transitions, "games_in_flight": num_games,
        "split_seed": seed, "val_fraction": val_fraction, "obs_size": rules.OBS_SIZE,
        "num_actions": rules.NUM_ACTIONS, "columns": list(COLUMNS), "source": SOURCE_NAME,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_json(out / META_NAME, meta)
    _store_splits(out, cache_key(meta, writer.digest.hexdigest()), meta, columns, 0, SPLITS)
    return GenerationResult(written, games, seconds, (out / SOURCE_NAME).stat().st_size)


def check_generation(out: Path, players: Sequence[str], transitions: int, seed: int, num_games: int,
                     val_fraction: float) -> None:
    """UsageError (one line) for arguments `generate` cannot take; creates nothing."""
    if num_games < 1:
        raise UsageError(f"--games {num_games}: expected at least 1")
    if not 0 <= seed <= 2**64 - num_games:
        raise UsageError(f"--seed {seed}: expected 0 <= seed <= 2**64 - games (game i is seeded seed + i)")
    if len(players) != 2 or any(p not in rules.OPPONENTS for p in players):
        raise UsageError(f"--players {','.join(players)!r}: expected two of {', '.join(rules.OPPONENTS)} "
                         "separated by a comma (side 0's, then side 1's)")
    if transitions < 1:
        raise UsageError(f"--transitions {transitions}: expected at least 1")
    if not 0 < val_fraction < 1:
        raise UsageError(f"--val-fraction {val_fraction}: expected a share between 0 and 1")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} already exists and is not an empty folder; expected a new folder for the dataset")


class _SourceWriter:
    """Writes the source's text and hashes it on the way (the cache key needs its sha256)."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.digest = hashlib.sha256()

    def write(self, text: str) -> None:
        self.f.write(text)
        self.digest.update(text.encode("ascii"))


def _write_games(writer: _SourceWriter, batch: Batch, num_games: int, target: int,
                 progress: Progress | None) -> dict[str, np.ndarray]:
    """Turns until at least `target` transitions of whole games are written; the columns of what was
    written, row i = line i (`COLUMNS`)."""
    text = _FloatText()
    pending: list[list[str]] = [[] for _ in range(num_games)]  # each game in flight's lines, less game_id
    pending_steps: list[list[int]] = [[] for _ in range(num_games)]  # and the turns (steps) they came from
    steps: list[dict[str, np.ndarray]] = []  # every step's values of every game, by column
    rows_step: list[int] = []  # per line written: its step and its game slot
    rows_slot: list[int] = []
    obs_text = [text.row(row) for row in batch.obs]
    turn = [0] * num_games
    written = games = 0
    while written < target:
        obs = batch.obs
        actions, draws, next_obs, rewards, dones = batch.turn()
        action_list, reward_list, done_list = actions.tolist(), rewards.tolist(), dones.tolist()
        draw_list = draws.tolist()
        hp, alive = hp_and_alive(obs)
        next_hp, next_alive = hp_and_alive(next_obs)
        delta = (next_hp - hp).tolist()
        ko = (alive & ~next_alive).tolist()
        opp_actions = np.argmax(next_obs[:, rules.OBS_LAST_ACTION:], axis=1).tolist()
        steps.append({"turn": np.array(turn), "obs": obs, "action": actions, "opp_action": np.array(opp_actions),
                      "draws": draws, "next_obs": next_obs, "hp_delta": np.array(delta), "ko": np.array(ko),
                      "reward": rewards, "done": dones})
        for i in range(num_games):
            pending_steps[i].append(len(steps) - 1)
            next_text = text.row(next_obs[i])
            pending[i].append(
                f'"turn":{turn[i]},"obs":[{obs_text[i]}],"action":{action_list[i]},"opp_action":{opp_actions[i]},'
                f'"draws":[{",".join(map(str, draw_list[i]))}],'
                f'"next_obs":[{next_text}],"hp_delta":[{",".join(map(str, delta[i]))}],'
                f'"ko":[{",".join("true" if k else "false" for k in ko[i])}],"reward":{text(reward_list[i])},'
                f'"done":{"true" if done_list[i] else "false"}}}\n')
            obs_text[i] = next_text
            turn[i] += 1
        for i in np.flatnonzero(dones).tolist():  # games that ended, in slot order, get the next ids
            writer.write("".join(f'{{"game_id":{games},{line}' for line in pending[i]))
            written += len(pending[i])
            games += 1
            rows_step.extend(pending_steps[i])
            rows_slot.extend([i] * len(pending[i]))
            pending[i].clear()
            pending_steps[i].clear()
            turn[i] = 0
            obs_text[i] = text.row(batch.obs[i])
        if progress is not None:
            progress(min(written, target), target)
    step_index, slot_index = np.array(rows_step), np.array(rows_slot)
    columns: dict[str, np.ndarray] = {}
    for name, (dtype, _) in COLUMNS.items():
        if name == "game_id":
            ends = np.flatnonzero(np.stack([s["done"] for s in steps])[step_index, slot_index])
            columns[name] = np.repeat(np.arange(len(ends)), np.diff(ends, prepend=-1)).astype(dtype)
        else:
            columns[name] = np.stack([s[name] for s in steps])[step_index, slot_index].astype(dtype)
    return columns


# -- loading and the cache ------------------------------------------------------------------------------


@dataclass
class Split:
    """One split's columns (read-only memory maps of the cache files, row i = transition i)."""

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.columns["game_id"].shape[0])

    @property
    def games(self) -> int:
        return int(np.unique(self.columns["game_id"]).size)


@dataclass
class Dataset:
    path: Path
    meta: dict[str, Any]
    splits: dict[str, Split]
    cache: dict[str, str]  # split -> "hit" | "rebuilt (why)"
    torn_lines: int = 0
    source_sha256: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def train(self) -> Split:
        return self.splits["train"]

    @property
    def val(self) -> Split:
        return self.splits["val"]

    def cache_line(self) -> str:
        """`cache train=hit val=hit` (or `rebuilt (why)`), the words the log and run.json use."""
        return "cache " + " ".join(f"{name}={state}" for name, state in self.cache.items())


def read_meta(path: Path, game: str | None = None) -> dict[str, Any]:
    """dataset.json of folder `path`; UsageError if the folder is missing or empty, or holds a dataset of
    another schema version or (given `game`) another game."""
    if not path.exists():
        raise UsageError(f"data folder {path} does not exist; expected a folder written by `trainctl data gen`")
    if not path.is_dir():
        raise UsageError(f"{path} is not a folder; expected a folder written by `trainctl data gen`")
    meta_path = path / META_NAME
    if not meta_path.is_file():
        what = "is empty" if not any(path.iterdir()) else f"holds no {META_NAME}"
        raise UsageError(f"data folder {path} {what}; expected a folder written by `trainctl data gen`")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{meta_path} is not readable JSON ({exc}); expected the file `trainctl data gen` wrote") \
            from None
    if not isinstance(meta, dict):
        raise UsageError(f"{meta_path} is not a JSON object; expected the file `trainctl data gen` wrote")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise UsageError(f"{path} is a dataset of schema version {meta.get('schema_version')!r}; expected "
                         f"{SCHEMA_VERSION} (generate it again with `trainctl data gen`)")
    expected = (game,) if game is not None else DATA_GAMES
    if meta.get("game") not in expected:
        raise UsageError(f"{path} is a dataset of {meta.get('game')!r}; expected one of {', '.join(expected)}")
    if not (path / SOURCE_NAME).is_file():
        raise UsageError(f"data folder {path} has no {SOURCE_NAME}; expected the source `trainctl data gen` wrote")
    return meta


def source_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(meta: Mapping[str, Any], sha256: str) -> dict[str, Any]:
    """What a split's cache must have been built from to be used."""
    return {"schema_version": SCHEMA_VERSION, "source_sha256": sha256, "split_seed": meta["split_seed"],
            "val_fraction": meta["val_fraction"]}


def _cached_split(folder: Path, key: Mapping[str, Any]) -> tuple[Split | None, str, int]:
    """(the split, "", torn lines) when its cache matches `key`, else (None, why not, 0)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError:
        return None, "no cache", 0
    except (OSError, ValueError):
        return None, "unreadable manifest", 0
    if not isinstance(manifest, dict) or manifest.get("key") != dict(key):
        changed = [k for k in key if not isinstance(manifest, dict) or manifest.get("key", {}).get(k) != key[k]]
        return None, "source changed" if "source_sha256" in changed else f"{', '.join(changed)} changed", 0
    columns = {}
    for name, (dtype, width) in COLUMNS.items():
        shape = (manifest["rows"], width) if width else (manifest["rows"],)
        try:
            array = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            return None, f"{name}.npy missing", 0
        except (OSError, ValueError):
            return None, f"{name}.npy truncated", 0
        if array.dtype != np.dtype(dtype) or array.shape != shape:
            return None, f"{name}.npy truncated", 0
        columns[name] = array
    return Split(columns), "", int(manifest.get("torn_lines", 0))


def parse_source(path: Path) -> tuple[dict[str, np.ndarray], int]:
    """Every transition of a JSONL source as columns, and how many torn last lines were skipped (0 or 1).
    UsageError naming the first line that is not a transition."""
    rows = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            rows += chunk.count(b"\n")
    columns = {name: np.zeros((rows, width) if width else rows, dtype=dtype)
               for name, (dtype, width) in COLUMNS.items()}
    torn = 0
    with path.open("rb") as f:
        lines: list[bytes] = []
        done = 0
        for raw in f:
            if not raw.endswith(b"\n"):  # a last line without its newline: a torn write
                torn = 1
                break
            lines.append(raw)
            if len(lines) == PARSE_CHUNK:
                _parse_lines(path, done, lines, columns)
                done += len(lines)
                lines = []
        _parse_lines(path, done, lines, columns)
    return columns, torn


def _parse_lines(path: Path, first: int, lines: list[bytes], columns: Mapping[str, np.ndarray]) -> None:
    """Lines `first`.. of the source into rows `first`.. of `columns`. Lines as `generate` writes them
    (keys in `COLUMNS` order, nothing else) are read in bulk by numpy; anything else line by line as JSON."""
    if not lines:
        return
    table = _bulk_values(lines)
    if table is not None:
        at = 0
        for name, (_, width) in COLUMNS.items():
            block = table[:, at: at + max(width, 1)]
            columns[name][first: first + len(lines)] = block if width else block[:, 0]
            at += max(width, 1)
        return
    for number, raw in enumerate(lines, first):
        _parse_line(path, number, raw, columns)


def _bulk_values(lines: list[bytes]) -> np.ndarray | None:
    """float64[lines, VALUES_PER_LINE] of lines in exactly `generate`'s shape (keys in order, each line
    VALUES_PER_LINE numbers or booleans), else None."""
    chunk = b"".join(lines)
    if _KEY.findall(chunk) != _KEYS * len(lines):
        return None
    body = _KEY.sub(b"", chunk).translate(None, b"[]{}").replace(b"true", b"1").replace(b"false", b"0")
    if body.count(b",") != (VALUES_PER_LINE - 1) * len(lines):
        return None
    try:  # numpy's C text parser: a few times faster than json.loads on these number-heavy lines
        values = np.loadtxt(body.splitlines(), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        return None
    return values if values.shape == (len(lines), VALUES_PER_LINE) else None


def _parse_line(path: Path, number: int, raw: bytes, columns: Mapping[str, np.ndarray]) -> None:
    try:
        record = json.loads(raw)
        for name, column in columns.items():
            column[number] = record[name]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path} line {number + 1} is not a transition ({type(exc).__name__}: {exc}); "
                         f"expected one JSON object with {', '.join(COLUMNS)}") from None


def split_games(game_ids: np.ndarray, seed: int, val_fraction: float) -> np.ndarray:
    """bool[rows]: the rows of validation games. The games (by id) are permuted by a generator of `seed`
    and the first round(share x games) of them, at least one when there are two or more, go to val."""
    games = np.unique(game_ids)
    n_val = min(max(round(val_fraction * games.size), 1 if games.size > 1 else 0), games.size)
    val_games = np.random.default_rng(seed).permutation(games)[:n_val]
    return np.isin(game_ids, val_games)


def _write_split(folder: Path, columns: Mapping[str, np.ndarray], key: Mapping[str, Any], torn: int) -> None:
    """The split's columns and manifest in a temporary folder, swapped in for the old one whole."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        for name, array in columns.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        rows = int(columns["game_id"].shape[0])
        atomic_write_json(tmp / "manifest.json", {"key": dict(key), "rows": rows, "torn_lines": torn,
                                                  "games": int(np.unique(columns["game_id"]).size)})
        old = folder.with_name(f".{folder.name}.old")
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _store_splits(path: Path, key: Mapping[str, Any], meta: Mapping[str, Any], columns: Mapping[str, np.ndarray],
                  torn: int, names: Sequence[str]) -> dict[str, Split]:
    """Split every transition's `columns` by game and write the caches of the splits `names`; those splits."""
    is_val = split_games(columns["game_id"], meta["split_seed"], meta["val_fraction"])
    stored = {}
    for name in names:
        rows = is_val if name == "val" else ~is_val
        _write_split(path / CACHE_NAME / name, {k: v[rows] for k, v in columns.items()}, key, torn)
        split, why, _ = _cached_split(path / CACHE_NAME / name, key)
        assert split is not None, why
        stored[name] = split
    return stored


def load(path: Path, game: str | None = None) -> Dataset:
    """The dataset in folder `path`, from its cache where the cache matches, rebuilding the splits whose
    cache does not (`Dataset.cache` says which and why). UsageError for a folder that is not a dataset."""
    meta = read_meta(path, game)
    source = path / SOURCE_NAME
    sha256 = source_sha256(source)
    key = cache_key(meta, sha256)
    splits: dict[str, Split] = {}
    cache: dict[str, str] = {}
    torn = 0
    for name in SPLITS:
        split, why, torn_then = _cached_split(path / CACHE_NAME / name, key)
        if split is not None:
            splits[name], cache[name], torn = split, "hit", torn_then
        else:
            cache[name] = f"rebuilt ({why})"
    if len(splits) < len(SPLITS):
        columns, torn = parse_source(source)
        if not columns["game_id"].size:
            raise UsageError(f"{source} holds no transition; expected at least one line")
        splits.update(_store_splits(path, key, meta, columns, torn, [n for n in SPLITS if n not in splits]))
    notes = [f"skipped {torn} torn last line of {SOURCE_NAME}"] if torn else []
    return Dataset(path, meta, {name: splits[name] for name in SPLITS}, cache, torn, sha256, notes)


def describe(dataset: Dataset) -> Iterator[str]:
    """The lines `trainctl data show` prints: what, counts, the split, the cache state."""
    meta = dataset.meta
    size = (dataset.path / SOURCE_NAME).stat().st_size
    yield (f"dataset {dataset.path}: {meta['game']}, players {','.join(meta['players'])}, seed {meta['seed']}, "
           f"schema version {meta['schema_version']}")
    total = sum(len(s) for s in dataset.splits.values())
    games = sum(s.games for s in dataset.splits.values())
    yield (f"transitions {total:,} in {games:,} games ({SOURCE_NAME}, {size / 1e6:,.1f} MB, "
           f"sha256 {dataset.source_sha256[:12]})")
    yield from dataset.notes
    yield (f"split by game_id (seed {meta['split_seed']}, val share {meta['val_fraction']:g}): "
           + ", ".join(f"{name} {len(s):,} transitions / {s.games:,} games" for name, s in dataset.splits.items()))
    yield dataset.cache_line()
