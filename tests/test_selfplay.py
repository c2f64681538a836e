"""Self-play (engine.selfplay): the schedules; adaptive weights against their formula; the pool's K cap with
the oldest snapshot dropped; each game's neural opponent is the entry it was dealt; both seats equally;
batched neural opponents act as one game at a time; the pool file round trip; bad `selfplay.*` values;
a tiny self-play run writes its metrics and pool, and a resumed run keeps the pool."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ppo, selfplay
from engine.context import RunContext
from engine.errors import UsageError
from engine.launcher import create_trainer_run
from engine.profiles import resolve
from envs.beastybar import rules
from envs.beastybar.vec_env import BeastyBarVecEnv
from tests.test_ppo import TINY

torch.set_num_threads(1)
OBS_SIZE, NUM_ACTIONS = rules.OBS_SIZE, rules.NUM_ACTIONS
TURNS_FEATURE, FIRST_FEATURE = 156, 159  # observation columns: turns played / 24, "the viewer moved first"


def tiny_policy(seed: int) -> Any:
    torch.manual_seed(seed)
    policy = ppo.build_policy(OBS_SIZE, NUM_ACTIONS, [16])
    policy.set_training_mode(False)
    return policy


def test_schedules_run_from_start_to_end() -> None:
    linear = selfplay.schedule("linear", 1.0, 0.5)
    cosine = selfplay.schedule("cosine", 0.04, 0.01)
    assert (linear(1.0), linear(0.5), linear(0.0)) == (1.0, 0.75, 0.5)
    assert math.isclose(cosine(1.0), 0.04) and math.isclose(cosine(0.5), 0.025) and math.isclose(cosine(0.0), 0.01)
    straight = selfplay.schedule("linear", 0.04, 0.01)
    assert cosine(0.9) > straight(0.9) and cosine(0.1) < straight(0.1)  # flat near both ends
    with pytest.raises(UsageError, match="expected one of: linear, cosine"):
        selfplay.schedule("step", 1.0, 0.0)


@given(st.dictionaries(st.sampled_from(rules.OPPONENTS), st.floats(0.0, 1.0), min_size=1),
       st.floats(0.01, 1.0))
@settings(max_examples=60, deadline=None)
def test_adaptive_weights_are_the_formula_normalised(rates: dict[str, float], floor: float) -> None:
    weights = selfplay.AdaptiveWeights(floor)
    weights.observe(rates)
    names = [*rates, "current"]  # "current" never measured: counts as UNMEASURED_WIN_RATE
    raw = [max(1.0 - rates[n], floor) for n in rates] + [max(1.0 - selfplay.UNMEASURED_WIN_RATE, floor)]
    np.testing.assert_allclose(weights.weights(names), np.array(raw) / sum(raw))


def test_adaptive_weights_favour_what_the_agent_loses_to() -> None:
    weights = selfplay.AdaptiveWeights(0.05)
    weights.observe({"random": 0.93, "noisy": 0.72, "queue": 1.0})
    w = dict(zip(["random", "noisy", "queue"], weights.weights(["random", "noisy", "queue"]), strict=True))
    np.testing.assert_allclose([w["random"], w["noisy"], w["queue"]], np.array([0.07, 0.28, 0.05]) / 0.40)


def test_an_entry_is_refreshed_once_it_has_enough_games() -> None:
    tally = selfplay.OutcomeTally()
    tally.add("heuristic", True)
    tally.add("heuristic", 6, 19)
    tally.add("random", 3, 5)
    assert tally.take_measured(20) == {"heuristic": 0.35}
    assert tally.take_measured(20) == {}  # heuristic starts again, random keeps counting
    tally.add("random", 12, 15)
    assert tally.take_measured(20) == {"random": 0.75}


def test_pool_keeps_the_newest_k_snapshots() -> None:
    weights = selfplay.AdaptiveWeights(0.05)
    pool = selfplay.OpponentPool([], 3, weights)
    dropped = []
    for step in range(5):
        weights.observe({f"past-{step}": 0.5})
        dropped += pool.add_snapshot(f"past-{step}", tiny_policy(step))
    assert pool.snapshots == ["past-2", "past-3", "past-4"]
    assert dropped == ["past-0", "past-1"]
    assert pool.entries == [*rules.OPPONENTS, "current", "past-2", "past-3", "past-4"]
    assert "past-0" not in weights.win_rates and "past-4" in weights.win_rates
    # A dropped snapshot's network stays while a game faces it, and goes once none does.
    faced = pool.id_of("past-1")
    pool.prune([faced])
    assert "past-1" in pool.networks and "past-0" not in pool.networks
    pool.prune([])
    assert "past-1" not in pool.networks


def test_pool_without_past_takes_no_snapshots_and_draws_only_its_entries() -> None:
    pool = selfplay.OpponentPool(["current", "heuristic"], 4, selfplay.AdaptiveWeights(0.05))
    assert pool.add_snapshot("past-0", tiny_policy(0)) == [] and pool.snapshots == []
    drawn = {pool.by_id[i] for i in pool.draw(200, np.random.default_rng(0)).tolist()}
    assert drawn == {"current", "heuristic"}


def test_batched_neural_opponents_act_as_one_game_at_a_time() -> None:
    networks = {"a": tiny_policy(1), "b": tiny_policy(2)}
    venv = BeastyBarVecEnv(40, seed=5)
    rng = np.random.default_rng(9)
    for _ in range(6):  # observations and masks from several points of real games
        venv.step(np.array([rng.choice(np.flatnonzero(m)) for m in venv.action_masks()]))
    obs, masks = venv.buffers.obs.copy(), venv.buffers.masks.copy()
    for temperature in (1.0, 0.3):
        batched = selfplay.NeuralOpponents(networks, np.random.default_rng(3), temperature)
        one_by_one = selfplay.NeuralOpponents(networks, np.random.default_rng(3), temperature)
        for name in networks:
            together = batched.act(obs, masks, [name] * len(obs))
            alone = [one_by_one.act(obs[k:k + 1], masks[k:k + 1], [name])[0] for k in range(len(obs))]
            np.testing.assert_array_equal(together, alone)
            assert masks[np.arange(len(obs)), together].all()
    # Mixed batch: each game's action is its own network's (greedy temperature: no noise matters).
    greedy = selfplay.NeuralOpponents(networks, np.random.default_rng(0), 1e-6)
    names = ["a" if k % 3 else "b" for k in range(len(obs))]
    mixed = greedy.act(obs, masks, names)
    for name in networks:
        rows = [k for k, n in enumerate(names) if n == name]
        logits = selfplay.policy_logits(networks[name], obs[rows])
        np.testing.assert_array_equal(mixed[rows], np.argmax(np.where(masks[rows], logits, -np.inf), axis=1))


class Recording(selfplay.NeuralOpponents):
    """NeuralOpponents that remember each call's (game, network, opponent observation) of the step, and
    per call the distinct networks asked for and the forward passes made."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.games: np.ndarray = np.empty(0, dtype=np.int64)
        self.calls: list[tuple[int, str, np.ndarray]] = []
        self.forwards: list[tuple[int, int]] = []

    def act(self, obs: np.ndarray, masks: np.ndarray, names: list[str]) -> np.ndarray:
        self.calls += list(zip(self.games.tolist(), names, obs.copy(), strict=True))
        self.forwards.append((len(set(names)), 0))
        return super().act(obs, masks, names)

    def sample(self, policy: Any, obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        networks, passes = self.forwards[-1]
        self.forwards[-1] = (networks, passes + 1)
        return super().sample(policy, obs, masks)


def pool_env(listed: list[str], num_envs: int, seed: int) -> tuple[selfplay.PoolOpponents, Recording]:
    pool = selfplay.OpponentPool(listed, 2, selfplay.AdaptiveWeights(0.05))
    pool.set_current(tiny_policy(0))
    rng = np.random.default_rng(seed)
    neural = Recording(pool.networks, rng, 1.0)

    def make_venv(policy: Any) -> BeastyBarVecEnv:
        def recorded(obs: np.ndarray, masks: np.ndarray, games: np.ndarray) -> np.ndarray:
            neural.games = games
            return policy(obs, masks, games)

        return BeastyBarVecEnv(num_envs, seed=seed, opponent_policy=recorded)

    env = selfplay.PoolOpponents(make_venv, pool, neural, rng)
    pool.add_snapshot("past-0", tiny_policy(1))
    env.redraw_upcoming()
    return env, neural


def test_each_game_faces_the_entry_it_was_dealt_and_both_seats_equally() -> None:
    env, neural = pool_env(["current", "past", "random", "heuristic", "outcome"], 32, 11)
    rng = np.random.default_rng(4)
    obs = np.asarray(env.reset())
    facing = env.facing.copy()
    neural_names = {"current", "past-0"}
    # The agent's "moved first" feature at each deal, by the kind of opponent dealt.
    first: dict[str, list[float]] = {"neural": [], "scripted": []}

    def note_deals(games: np.ndarray, obs: np.ndarray) -> None:
        for i in games.tolist():
            kind = "neural" if env.pool.by_id[env.facing[i]] in neural_names else "scripted"
            first[kind].append(obs[i, FIRST_FEATURE])

    note_deals(np.arange(32), obs)
    for call_game, name, _ in neural.calls:
        assert name == env.pool.by_id[facing[call_game]]
    for _ in range(400):
        neural.calls = []
        before = env.facing.copy()
        step_obs, _, dones, _ = env.step(np.array([rng.choice(np.flatnonzero(m)) for m in env.action_masks()]))
        obs = np.asarray(step_obs)
        for game, name, opponent_obs in neural.calls:
            opening_of_new_deal = dones[game] and opponent_obs[TURNS_FEATURE] == 0
            expected = env.facing[game] if opening_of_new_deal else before[game]
            assert name == env.pool.by_id[expected], (game, name)
        note_deals(np.flatnonzero(dones), obs)
    # One forward pass per network per round of waiting games, over all the games facing it.
    assert neural.forwards and all(networks == passes for networks, passes in neural.forwards)
    assert max(networks for networks, _ in neural.forwards) == 2
    for kind, firsts in first.items():
        assert len(firsts) > 150, kind
        assert 0.4 < np.mean(firsts) < 0.6, (kind, np.mean(firsts))
    games, wins = env.tally.take()
    assert set(games) <= set(env.pool.entries) and sum(games.values()) > 500
    assert all(0 <= wins[name] <= count for name, count in games.items())


def test_pool_file_round_trip_and_a_foreign_file_is_refused(tmp_path: Path) -> None:
    weights = selfplay.AdaptiveWeights(0.05)
    pool = selfplay.OpponentPool([], 2, weights)
    store = selfplay.PoolStore(tmp_path / "selfplay")
    for step in (100, 200, 300):
        network = tiny_policy(step)
        store.save_snapshot(step, network)
        pool.add_snapshot(selfplay.snapshot_name(step), network)
    weights.observe({"heuristic": 0.8, "past-300": 0.4})
    store.save(pool)
    assert sorted(p.name for p in store.folder.iterdir()) == ["pool.json", "step_000000000200.pt",
                                                            "step_000000000300.pt"]
    restored = selfplay.OpponentPool([], 2, selfplay.AdaptiveWeights(0.05))
    assert store.load(restored, lambda: tiny_policy(0))
    assert restored.snapshots == ["past-200", "past-300"]
    assert restored.weights.win_rates == {"heuristic": 0.8, "past-300": 0.4}
    for name in restored.snapshots:
        for key, tensor in restored.networks[name].state_dict().items():
            assert torch.equal(tensor, pool.networks[name].state_dict()[key])
    (store.folder / "pool.json").write_text(json.dumps({"format": "other", "snapshots": [], "win_rates": {}}))
    with pytest.raises(UsageError, match="not a self-play pool file"):
        store.load(restored, lambda: tiny_policy(0))


def test_a_pool_of_scripted_players_only_saves_its_win_rates(tmp_path: Path) -> None:
    # Without "past" no snapshot is ever written, so the pool file is the first thing in the folder.
    pool = selfplay.OpponentPool(["heuristic", "outcome"], 2, selfplay.AdaptiveWeights(0.05))
    pool.weights.observe({"outcome": 0.3})
    store = selfplay.PoolStore(tmp_path / "selfplay")
    store.save(pool)
    restored = selfplay.OpponentPool(["heuristic", "outcome"], 2, selfplay.AdaptiveWeights(0.05))
    assert store.load(restored, lambda: tiny_policy(0))
    assert restored.snapshots == [] and restored.weights.win_rates == {"outcome": 0.3}


@pytest.mark.parametrize(("assignment", "message"), [
    ("selfplay.weight_floor=0", r"selfplay.weight_floor = 0 is out of range; expected in \(0, 1\]"),
    ("selfplay.weight_floor=1.5", r"expected in \(0, 1\]"),
    ("selfplay.pool_size=0", "selfplay.pool_size = 0 is out of range; expected > 0"),
    ("selfplay.snapshot_every_updates=-1", "expected > 0"),
    ("selfplay.temperature=0", "selfplay.temperature = 0 is out of range"),
    ("selfplay.temperature_schedule=step", "expected one of: linear, cosine"),
    ("selfplay.entropy_schedule=exp", "expected one of: linear, cosine"),
    ('selfplay.opponents=["current","bogus"]', "selfplay.opponents names 'bogus'; expected some of: current, past"),
    ("selfplay.opponents=3", "has the wrong type; expected list"),
])
def test_bad_selfplay_values_are_one_line_errors(assignment: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        resolve("balance", algo="ppo", env="beastybar", assignments=["selfplay.enabled=true", assignment],
                environ={})
    assert "\n" not in str(caught.value)


def test_selfplay_only_where_it_runs() -> None:
    with pytest.raises(UsageError, match="ppo on soccer does not self-play"):
        resolve("balance", algo="ppo", env="soccer", assignments=["selfplay.enabled=true"], environ={})
    with pytest.raises(UsageError, match=r"env\.normalize = true with selfplay\.enabled"):
        resolve("balance", algo="ppo", env="beastybar", assignments=["selfplay.enabled=true", "env.normalize=true"],
                environ={})
    cfg = resolve("selfplay", algo="ppo", env="beastybar", environ={})
    assert cfg["selfplay.enabled"] and cfg.source("selfplay.pool_size").startswith("profile:selfplay")


SELFPLAY = [*TINY, "selfplay.enabled=true", "selfplay.snapshot_every_updates=2", "selfplay.pool_size=2"]


def train(runs: Path, steps: int, resume: dict[str, Any] | None = None, ctx: RunContext | None = None) -> RunContext:
    if ctx is None:
        cfg = resolve("balance", algo="ppo", env="beastybar", cli={"run.total_steps": steps}, assignments=SELFPLAY,
                      environ={})
        ctx = RunContext(create_trainer_run(cfg, runs, ["test"]), cfg)
    try:
        assert ppo.train(ctx, resume) == "finished"
    finally:
        ctx.close()
    return ctx


@pytest.mark.slow
def test_a_tiny_selfplay_run_writes_its_metrics_and_a_resume_keeps_the_pool(tmp_path: Path) -> None:
    ctx = train(tmp_path, 1024)  # 256 steps an update: snapshots at updates 0 and 2 (steps 0 and 512)
    events = [json.loads(line) for line in ctx.run.events_path.read_text().splitlines()]
    values = [e["values"] for e in events if e["kind"] == "metric"]
    names = set().union(*values)
    assert {"selfplay/pool_size", "selfplay/weight/current", "selfplay/weight/heuristic"} <= names
    assert any(n.startswith("selfplay/win_rate/") for n in names)
    assert any(n.startswith("selfplay/games/") for n in names)
    window = next(v for v in values if "selfplay/games/random" in v or "selfplay/games/current" in v)
    weights = [v for n, v in window.items() if n.startswith("selfplay/weight/")]
    assert math.isclose(sum(weights), 1.0, rel_tol=1e-6)
    pool_file = json.loads((ctx.run.path / "selfplay" / "pool.json").read_text())
    assert pool_file["snapshots"] == ["past-0", "past-512"]
    assert values[-1]["selfplay/pool_size"] == 2

    from engine.checkpoint import latest_checkpoint, load_checkpoint

    state = load_checkpoint(latest_checkpoint(ctx.run.checkpoints))  # type: ignore[arg-type]
    cfg = resolve("balance", algo="ppo", env="beastybar", cli={"run.total_steps": 2048}, assignments=SELFPLAY,
                  environ={})
    resumed = train(tmp_path, 2048, state, RunContext(ctx.run, cfg))
    pool_file = json.loads((resumed.run.path / "selfplay" / "pool.json").read_text())
    # The restored pool counts its updates from the resume: the next snapshots at steps 1536 (and no more).
    assert pool_file["snapshots"] == ["past-512", "past-1536"]
    assert sorted(p.name for p in (resumed.run.path / "selfplay").glob("*.pt")) == [
        "step_000000000512.pt", "step_000000001536.pt"]


@pytest.mark.slow
def test_with_evaluation_the_scripted_weights_follow_the_eval_table(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selfplay.SelfPlayMetrics, "MIN_GAMES", 1)  # a tiny run: refresh from any game
    cfg = resolve("balance", algo="ppo", env="beastybar", cli={"run.total_steps": 512}, environ={},
                  assignments=[*SELFPLAY, "eval.every_steps=256", "eval.games=10", 'eval.suite=["random"]'])
    ctx = train(tmp_path, 512, ctx=RunContext(create_trainer_run(cfg, tmp_path, ["test"]), cfg))
    events = [json.loads(line) for line in ctx.run.events_path.read_text().splitlines()]
    [last_row] = [e for e in events if e["kind"] == "eval"][-1]["rows"]
    pool_file = json.loads((ctx.run.path / "selfplay" / "pool.json").read_text())
    assert pool_file["win_rates"]["random"] == last_row["win_rate"]
    # The other scripted players, not in the suite, keep their training-window win rates.
    assert set(pool_file["win_rates"]) - {"random"}
