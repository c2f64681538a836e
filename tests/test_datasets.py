"""Transition datasets (engine.datasets, `trainctl data`): the JSONL source against the games it records
(and the core's file against the reference's, byte for byte), the cache round trip, hits, invalidation
on a changed source, a truncated cache, the split by game_id, a torn last line, and the bad input a user
can give (one line, exit code 2, nothing written)."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from engine import datasets
from engine.errors import UsageError
from envs.duel import rules

PLAYERS = ("sensible", "random")


def make(path: Path, transitions: int = 1500, seed: int = 3, num_games: int = 16, backend: str = "cython") -> Path:
    datasets.generate(path, PLAYERS, transitions, seed, num_games=num_games, backend=backend)
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return make(tmp_path / "data")


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / datasets.SOURCE_NAME).read_text().splitlines()]


def test_the_core_writes_what_the_reference_would(tmp_path: Path) -> None:
    core = make(tmp_path / "core", transitions=400, num_games=8)
    reference = make(tmp_path / "reference", transitions=400, num_games=8, backend="reference")
    source = (core / datasets.SOURCE_NAME).read_bytes()
    assert source == (reference / datasets.SOURCE_NAME).read_bytes() and source.count(b"\n") >= 400


def test_the_source_records_whole_games_consistently(data_dir: Path) -> None:
    lines = json_lines(data_dir)
    meta = json.loads((data_dir / datasets.META_NAME).read_text())
    assert len(lines) == meta["transitions"] >= 1500 and meta["games"] == lines[-1]["game_id"] + 1
    assert [line["game_id"] for line in lines] == sorted(line["game_id"] for line in lines)
    for before, after in itertools.pairwise(lines):
        if after["game_id"] == before["game_id"]:  # the next turn of the same game starts where this one ended
            assert after["turn"] == before["turn"] + 1 and after["obs"] == before["next_obs"] and not before["done"]
        else:  # a game ends on its last line, with the outcome only, and the next starts at turn 0
            assert before["done"] and before["reward"] in (-1.0, 0.0, 1.0) and after["turn"] == 0
    for line in lines:
        obs, next_obs = np.array(line["obs"], np.float32), np.array(line["next_obs"], np.float32)
        hp, alive = datasets.hp_and_alive(obs)
        next_hp, next_alive = datasets.hp_and_alive(next_obs)
        assert line["hp_delta"] == (next_hp - hp).tolist()
        assert line["ko"] == (alive & ~next_alive).tolist()
        assert next_obs[rules.OBS_LAST_ACTION + line["opp_action"]] == 1.0
        assert sum(line["ko"]) <= 1 and all(d <= 0 or line["action"] == rules.PASS or line["opp_action"] == rules.PASS
                                            for d in line["hp_delta"])


def test_cache_round_trip_and_hit(data_dir: Path) -> None:
    first = datasets.load(data_dir)  # the cache generation wrote from its own columns
    assert first.cache_line() == "cache train=hit val=hit"
    lines = json_lines(data_dir)
    by_game: dict[int, list[dict]] = {}
    for line in lines:
        by_game.setdefault(line["game_id"], []).append(line)
    for split in first.splits.values():
        for i in range(len(split)):
            game = int(split.columns["game_id"][i])
            line = by_game[game][int(split.columns["turn"][i])]
            for name, column in split.columns.items():
                assert np.array_equal(column[i], np.array(line[name], dtype=column.dtype)), name
    assert len(first.train) + len(first.val) == len(lines)
    first_columns = {name: dict(split.columns) for name, split in first.splits.items()}
    shutil.rmtree(data_dir / datasets.CACHE_NAME)
    again = datasets.load(data_dir)  # rebuilt by parsing the source: the same columns
    assert again.cache == {"train": "rebuilt (no cache)", "val": "rebuilt (no cache)"}
    for split_name, split in again.splits.items():
        for column_name, values in split.columns.items():
            assert np.array_equal(values, first_columns[split_name][column_name])


def test_a_changed_source_rebuilds_the_cache(data_dir: Path) -> None:
    datasets.load(data_dir)
    source = data_dir / datasets.SOURCE_NAME
    lines = source.read_text().splitlines(keepends=True)
    record = json.loads(lines[0])
    record["action"] = 5 if record["action"] != 5 else 4
    lines[0] = json.dumps(record) + "\n"  # another key spacing too: read line by line as JSON
    source.write_text("".join(lines))
    changed = datasets.load(data_dir)
    assert changed.cache == {"train": "rebuilt (source changed)", "val": "rebuilt (source changed)"}
    game0 = next(s for s in changed.splits.values() if (s.columns["game_id"] == 0).any())
    row = int(np.flatnonzero((game0.columns["game_id"] == 0) & (game0.columns["turn"] == 0))[0])
    assert game0.columns["action"][row] == record["action"]
    assert datasets.load(data_dir).cache_line() == "cache train=hit val=hit"


def test_a_truncated_cache_file_is_rebuilt_alone(data_dir: Path) -> None:
    datasets.load(data_dir)
    obs = data_dir / datasets.CACHE_NAME / "train" / "obs.npy"
    obs.write_bytes(obs.read_bytes()[: obs.stat().st_size // 2])
    reloaded = datasets.load(data_dir)
    assert reloaded.cache == {"train": "rebuilt (obs.npy truncated)", "val": "hit"}
    assert reloaded.train.columns["obs"].shape == (len(reloaded.train), rules.OBS_SIZE)


def test_split_is_by_game_and_fixed_by_its_seed(data_dir: Path) -> None:
    dataset = datasets.load(data_dir)
    train_games = set(np.unique(dataset.train.columns["game_id"]).tolist())
    val_games = set(np.unique(dataset.val.columns["game_id"]).tolist())
    assert not train_games & val_games and val_games
    assert len(val_games) == round(0.1 * (len(train_games) + len(val_games)))
    ids = np.repeat(np.arange(200), 3)
    same = datasets.split_games(ids, 7, 0.25)
    assert np.array_equal(same, datasets.split_games(ids, 7, 0.25)) and same.sum() == 150
    assert not np.array_equal(same, datasets.split_games(ids, 8, 0.25))


def test_a_torn_last_line_is_skipped_and_counted(data_dir: Path) -> None:
    source = data_dir / datasets.SOURCE_NAME
    rows = source.read_text().count("\n")
    with source.open("a") as f:
        f.write('{"game_id": 99999, "turn": 0, "obs": [0.5')
    dataset = datasets.load(data_dir)
    assert dataset.torn_lines == 1 and len(dataset.train) + len(dataset.val) == rows
    assert "skipped 1 torn last line of transitions.jsonl" in list(datasets.describe(dataset))
    assert datasets.load(data_dir).torn_lines == 1  # a cache hit still says so


def test_a_line_that_is_not_a_transition_is_named(data_dir: Path) -> None:
    source = data_dir / datasets.SOURCE_NAME
    lines = source.read_text().splitlines(keepends=True)
    lines[4] = '{"game_id": 0}\n'
    source.write_text("".join(lines))
    with pytest.raises(UsageError, match=r"transitions.jsonl line 5 is not a transition \(KeyError"):
        datasets.load(data_dir)


def test_show_prints_counts_split_and_cache(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "show", str(data_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"dataset {data_dir}: duel, players sensible,random, seed 3, "
                             f"schema version {datasets.SCHEMA_VERSION}")
    assert out[-2].startswith("split by game_id (seed 3, val share 0.1): train ")
    assert out[-1] == "cache train=hit val=hit"
    (data_dir / datasets.CACHE_NAME / "val" / "manifest.json").unlink()
    assert main(["data", "show", str(data_dir)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "cache train=hit val=rebuilt (no cache)"


def test_gen_writes_a_dataset_with_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "new"
    assert main(["data", "gen", "--env", "duel", "--players", "greedy,sensible", "--transitions", "5e2",
                 "--seed", "4", "--out", str(out_dir), "--games", "8"]) == 0
    captured = capsys.readouterr()
    assert "100% 500/500 transitions" in captured.err
    assert "transitions/s" in captured.out and "cache train=hit val=hit" in captured.out
    assert sorted(p.name for p in out_dir.iterdir()) == ["cache", "dataset.json", "transitions.jsonl"]
    assert not list(out_dir.rglob("*.tmp"))


def fake_meta(path: Path, **changes: object) -> Path:
    path.mkdir()
    (path / datasets.SOURCE_NAME).write_text("")
    (path / datasets.META_NAME).write_text(json.dumps({"schema_version": datasets.SCHEMA_VERSION, "game": "duel",
                                                       **changes}))
    return path


@pytest.mark.parametrize(("argv", "message"), [
    (["data", "show", "{tmp}/missing"], "data folder {tmp}/missing does not exist"),
    (["data", "show", "{tmp}/empty"], "data folder {tmp}/empty is empty"),
    (["data", "show", "{tmp}/v1"], "{tmp}/v1 is a dataset of schema version 1; expected 2"),
    (["data", "show", "{tmp}/other"], "{tmp}/other is a dataset of 'skirmish'; expected one of duel"),
    (["data", "show", "{tmp}/nolines"], "{tmp}/nolines/transitions.jsonl holds no transition"),
    (["data", "gen", "--env", "skirmish", "--players", "random,random", "--transitions", "10", "--out", "{tmp}/g"],
     "--env 'skirmish' has no dataset generator; expected one of: duel"),
    (["data", "gen", "--env", "duel", "--players", "random", "--transitions", "10", "--out", "{tmp}/g"],
     "--players 'random': expected two of random, greedy, sensible"),
    (["data", "gen", "--env", "duel", "--players", "random,nobody", "--transitions", "10", "--out", "{tmp}/g"],
     "--players 'random,nobody': expected two of"),
    (["data", "gen", "--env", "duel", "--players", "random,random", "--transitions", "lots", "--out", "{tmp}/g"],
     "--transitions 'lots': expected a positive whole number"),
    (["data", "gen", "--env", "duel", "--players", "random,random", "--transitions", "10", "--out", "{tmp}/v1"],
     "{tmp}/v1 already exists and is not an empty folder"),
    (["data", "gen", "--env", "duel", "--players", "random,random", "--transitions", "10", "--out", "{tmp}/g",
      "--seed", "-1"], "--seed -1: expected 0 <= seed <= 2**64 - games"),
    (["data", "gen", "--env", "duel", "--players", "random,random", "--transitions", "10", "--out", "{tmp}/g",
      "--games", "0"], "--games 0: expected at least 1"),
], ids=["missing", "empty", "schema", "game", "no-lines", "env", "one-player", "bad-player", "transitions", "not-new",
        "seed", "games"])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                          message: str) -> None:
    (tmp_path / "empty").mkdir()
    fake_meta(tmp_path / "v1", schema_version=1)  # before the turn's draws were recorded
    fake_meta(tmp_path / "other", game="skirmish")
    fake_meta(tmp_path / "nolines", split_seed=0, val_fraction=0.1)
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(tmp=tmp_path) in err
    assert not (tmp_path / "g").exists() and not (tmp_path / "nolines" / datasets.CACHE_NAME).exists()
