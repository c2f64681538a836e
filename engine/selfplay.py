"""Self-play for PPO on Beasty Bar (`selfplay.enabled`): each game's opponent is drawn from a pool when the
game is dealt, and the pool adapts to what the agent loses to (docs/selfplay.md).

The pool's entries are named: a scripted player of `envs.beastybar.rules.OPPONENTS` (played inside the
Cython core), `current` (the live policy) and `past-<step>` (a frozen copy of the policy taken at env step
`<step>`; one every `selfplay.snapshot_every_updates` PPO updates, at most `selfplay.pool_size` kept, the
oldest dropped). Jobs, one class each:

- `AdaptiveWeights`: an entry's weight is `max(1 - win_rate, selfplay.weight_floor)`, normalised over the
  entries; an entry never measured counts as `UNMEASURED_WIN_RATE`.
- `OpponentPool`: the entries, the neural ones' networks, and the draw of an entry per game.
- `NeuralOpponents`: player B's moves for the games facing neural entries, one forward pass per entry
  over all the games that face it, sampled at a temperature (Gumbel-max over the legal actions).
- `PoolOpponents`: the VecEnv wrapper that deals each game its drawn opponent (through the core's
  `set_next_opponents`), routes waiting games to `NeuralOpponents` and counts outcomes per entry.
- `OutcomeTally`: games and wins per entry since the last metric window.
- `PoolStore`: the pool on disk in the run folder, `selfplay/` (frozen policies as torch state dicts
  through engine.checkpoint's writer, `pool.json` for the entries' win rates), so a resumed run keeps it.
- `SnapshotSchedule`: the SB3 callback that takes snapshots and moves the temperature schedule.
- `EvalFeedsPool`: evaluation during training whose table sets the scripted entries' win rates.

The agent is always player A; who moves first is the deal's draw (`first = "random"`), so the agent plays
either seat, half the games each on average. Nothing here trains; it writes only under `selfplay/`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from engine.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from engine.errors import UsageError
from engine.profiles import SCHEDULES, SELFPLAY_KINDS
from engine.runstore import atomic_write_json
from engine.train_eval import EvalDuringTraining
from envs.beastybar import rules
from envs.beastybar.vec_env import EXTERNAL, OpponentPolicy

POOL_KINDS = SELFPLAY_KINDS
"""The `selfplay.opponents` names besides the scripted players: the live policy, the frozen snapshots."""
CURRENT, PAST = POOL_KINDS
UNMEASURED_WIN_RATE = 0.5
"""The win rate an entry counts as before any game against it was measured."""
FOLDER = "selfplay"
POOL_FILE = "pool.json"
POOL_FORMAT = "trainctl.selfplay/1"

Schedule = Callable[[float], float]


def schedule(kind: str, start: float, end: float) -> Schedule:
    """f(progress_remaining) -> value: `start` at progress_remaining 1, `end` at 0, straight ("linear") or
    along half a cosine ("cosine": flat at both ends)."""
    if kind == "linear":
        return lambda remaining: end + (start - end) * remaining
    if kind == "cosine":
        return lambda remaining: end + (start - end) * 0.5 * (1.0 - math.cos(math.pi * remaining))
    raise UsageError(f"schedule {kind!r} is unknown; expected one of: {', '.join(SCHEDULES)}")


def pool_names(listed: Iterable[str]) -> list[str]:
    """The `selfplay.opponents` list as the pool uses it ([] = current, past and every scripted player)."""
    return list(listed) or [*POOL_KINDS, *rules.OPPONENTS]


class AdaptiveWeights:
    """Each entry's last measured win rate and the draw weights that follow: `max(1 - win_rate, floor)`,
    normalised to sum to 1."""

    def __init__(self, floor: float) -> None:
        self.floor = floor
        self.win_rates: dict[str, float] = {}

    def observe(self, rates: Mapping[str, float]) -> None:
        self.win_rates.update({name: float(rate) for name, rate in rates.items()})

    def forget(self, name: str) -> None:
        self.win_rates.pop(name, None)

    def weights(self, names: list[str]) -> np.ndarray:
        """float64[len(names)], summing to 1."""
        raw = np.array([max(1.0 - self.win_rates.get(n, UNMEASURED_WIN_RATE), self.floor) for n in names])
        return raw / raw.sum()


class OpponentPool:
    """The entries a game's opponent is drawn from. `scripted`: the scripted players taken; `current`:
    whether the live policy is one; `capacity`: frozen snapshots kept (0 when `past` is not taken).
    Neural entries are SB3 actor-critic policies (`networks[name]`), eval mode; a dropped snapshot's
    network stays until `prune` finds no game facing it."""

    def __init__(self, listed: Iterable[str], capacity: int, weights: AdaptiveWeights) -> None:
        names = pool_names(listed)
        self.scripted = [n for n in names if n not in POOL_KINDS]
        self.current = CURRENT in names
        self.capacity = capacity if PAST in names else 0
        self.weights = weights
        self.snapshots: list[str] = []  # oldest first
        self.networks: dict[str, Any] = {}
        self.ids: dict[str, int] = {}  # every name ever dealt -> a stable id (games hold ids)
        self.by_id: list[str] = []

    @property
    def entries(self) -> list[str]:
        return [*self.scripted, *([CURRENT] if self.current else []), *self.snapshots]

    def set_current(self, policy: Any) -> None:
        self.networks[CURRENT] = policy

    def add_snapshot(self, name: str, network: Any) -> list[str]:
        """Add a frozen network; returns the names dropped to stay within `capacity` (oldest first)."""
        if not self.capacity:
            return []
        network.set_training_mode(False)
        self.snapshots.append(name)
        self.networks[name] = network
        dropped, self.snapshots = self.snapshots[:-self.capacity], self.snapshots[-self.capacity:]
        for old in dropped:
            self.weights.forget(old)
        return dropped

    def prune(self, in_play: Iterable[int]) -> None:
        """Release the networks of dropped snapshots that no game (ids `in_play`) faces any more."""
        keep = {*self.entries, *(self.by_id[i] for i in in_play)}
        for name in [n for n in self.networks if n not in keep]:
            del self.networks[name]

    def id_of(self, name: str) -> int:
        if name not in self.ids:
            self.ids[name] = len(self.by_id)
            self.by_id.append(name)
        return self.ids[name]

    def draw(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """int64[count]: ids of entries drawn by their weights."""
        entries = self.entries
        picks = rng.choice(len(entries), size=count, p=self.weights.weights(entries))
        return np.array([self.id_of(entries[k]) for k in range(len(entries))], dtype=np.int64)[picks]

    def core_name(self, entry_id: int) -> str:
        """The opponent name the core deals for an entry: a scripted player's own, or EXTERNAL."""
        name = self.by_id[entry_id]
        return name if name in rules.OPPONENTS else EXTERNAL


class NeuralOpponents:
    """Player B's actions from neural policies, `temperature` > 0 (1 = the policy's own distribution;
    lower is greedier). `act` makes one forward pass per distinct network in the batch; the sampling
    noise is drawn per network group in one block, so a batch of one network gives the same actions as
    the same games one at a time (same generator state)."""

    def __init__(self, networks: Mapping[str, Any], rng: np.random.Generator, temperature: float = 1.0) -> None:
        self.networks = networks
        self.rng = rng
        self.temperature = temperature

    def act(self, obs: np.ndarray, masks: np.ndarray, names: list[str]) -> np.ndarray:
        """obs float32[K, 160], masks bool[K, 33], names[k] the network game k faces -> actions int64[K]."""
        actions = np.zeros(len(names), dtype=np.int64)
        labels = np.array(names)
        for name in dict.fromkeys(names):  # first-seen order: deterministic noise order
            rows = np.flatnonzero(labels == name)
            actions[rows] = self.sample(self.networks[name], obs[rows], masks[rows])
        return actions

    def sample(self, policy: Any, obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        logits = policy_logits(policy, obs)
        gumbel = -np.log(-np.log(self.rng.random(logits.shape).clip(1e-12, 1.0 - 1e-12)))
        scores = np.where(masks, logits / self.temperature + gumbel, -np.inf)
        return np.argmax(scores, axis=1)


def policy_logits(policy: Any, obs: np.ndarray) -> np.ndarray:
    """float32[K, A]: an SB3 actor-critic policy's action logits (before masking) for obs float32[K, D]."""
    with torch.no_grad():
        obs_t = torch.as_tensor(obs, device=policy.device)
        features = policy.extract_features(obs_t, policy.pi_features_extractor)
        logits = policy.action_net(policy.mlp_extractor.forward_actor(features))
    return logits.float().cpu().numpy()


class OutcomeTally:
    """Games and agent wins per entry since the last `take` (a draw is a game, not a win)."""

    def __init__(self) -> None:
        self.games: dict[str, int] = {}
        self.wins: dict[str, int] = {}

    def add(self, name: str, won: int | bool, games: int = 1) -> None:
        """Count `games` games against `name`, `won` of them (a bool for one game) won."""
        self.games[name] = self.games.get(name, 0) + games
        self.wins[name] = self.wins.get(name, 0) + int(won)

    def take(self) -> tuple[dict[str, int], dict[str, int]]:
        """(games, wins) per entry played since the last take; then starts a new window."""
        games, wins = self.games, self.wins
        self.games, self.wins = {}, {}
        return games, wins

    def take_measured(self, min_games: int) -> dict[str, float]:
        """The win rates of the entries with at least `min_games` games since their last take; those
        entries start again, the others keep counting."""
        ready = [name for name, count in self.games.items() if count >= min_games]
        return {name: self.wins.pop(name) / self.games.pop(name) for name in ready}


class PoolOpponents(VecEnvWrapper):
    """A Beasty Bar VecEnv (built by `make_venv(opponent_policy)`) whose games each face an entry of
    `pool`, drawn when the game is dealt. `facing[i]`: the entry id game i plays now; `upcoming[i]`: the
    one its next deal brings (already handed to the core). Outcomes go to `tally` by entry."""

    def __init__(self, make_venv: Callable[[OpponentPolicy], Any], pool: OpponentPool, neural: NeuralOpponents,
                 rng: np.random.Generator) -> None:
        self.pool = pool
        self.neural = neural
        self.rng = rng
        self.tally = OutcomeTally()
        self._neural_ns = 0
        super().__init__(make_venv(self._play))
        self.game_env = self.venv
        self.facing = np.zeros(self.num_envs, dtype=np.int64)
        self.upcoming = pool.draw(self.num_envs, rng)
        self._hand_upcoming()

    def _hand_upcoming(self) -> None:
        self.venv.set_next_opponents([self.pool.core_name(i) for i in self.upcoming.tolist()])  # type: ignore[attr-defined]

    def _play(self, obs: np.ndarray, masks: np.ndarray, games: np.ndarray) -> np.ndarray:
        # A game that ended during this step (its end flag set: see step_wait) has been dealt again: it
        # already faces its upcoming entry.
        start = time.perf_counter_ns()
        buffers = self.venv.buffers  # type: ignore[attr-defined]
        dealt = (buffers.terminated | buffers.truncated)[games]
        ids = np.where(dealt, self.upcoming[games], self.facing[games])
        actions = self.neural.act(obs, masks, [self.pool.by_id[i] for i in ids.tolist()])
        self._neural_ns += time.perf_counter_ns() - start
        return actions

    @property
    def enemy_turn_ns(self) -> int:
        """Nanoseconds of the opponents' turns since construction: the scripted ones' inside the core and
        the neural ones' here (the trainer books them as the `enemy_turn` phase)."""
        return int(self.venv.enemy_turn_ns) + self._neural_ns  # type: ignore[attr-defined]

    def reset(self) -> np.ndarray:
        self.facing[:] = self.upcoming
        obs = self.venv.reset()
        self.upcoming = self.pool.draw(self.num_envs, self.rng)
        self._hand_upcoming()
        return obs  # type: ignore[return-value]

    def step_wait(self) -> VecEnvStepReturn:
        # The core writes every game's end flags during each step (a game waiting for its external reply
        # gets them after the reply); clearing last step's first lets `_play` tell this step's new deals.
        buffers = self.venv.buffers  # type: ignore[attr-defined]
        buffers.terminated[:] = False
        buffers.truncated[:] = False
        obs, rewards, dones, infos = self.venv.step_wait()
        ended = np.flatnonzero(dones)
        if ended.size:
            for i in ended.tolist():
                self.tally.add(self.pool.by_id[self.facing[i]], infos[i].get("winner") == 0)
            self.facing[ended] = self.upcoming[ended]
            self.upcoming[ended] = self.pool.draw(int(ended.size), self.rng)
            self._hand_upcoming()
        return obs, rewards, dones, infos

    def redraw_upcoming(self) -> None:
        """Draw every game's next entry again (after the pool changed: no deal brings a dropped snapshot)."""
        self.upcoming = self.pool.draw(self.num_envs, self.rng)
        self._hand_upcoming()
        self.pool.prune(self.facing.tolist())

    def action_masks(self) -> np.ndarray:
        return self.venv.action_masks()  # type: ignore[attr-defined]


class PoolStore:
    """The pool in `folder` (a run's `selfplay/`): each snapshot a checkpoint file `step_<step>.pt` holding
    `{"step", "policy": state dict}` (engine.checkpoint's atomic writer, loaded with weights_only=True),
    and `pool.json`: the snapshot names, oldest first, and the entries' win rates."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save_snapshot(self, step: int, policy: Any) -> None:
        save_checkpoint(self.folder, step, {"step": int(step), "policy": policy.state_dict()})

    def save(self, pool: OpponentPool) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)  # a pool without "past" has saved no snapshot yet
        kept = {snapshot_step(name) for name in pool.snapshots}
        for path in list_checkpoints(self.folder):
            if int(path.stem.removeprefix("step_")) not in kept:
                path.unlink(missing_ok=True)
        atomic_write_json(self.folder / POOL_FILE, {"format": POOL_FORMAT, "snapshots": pool.snapshots,
                                                   "win_rates": pool.weights.win_rates})

    def load(self, pool: OpponentPool, new_policy: Callable[[], Any]) -> bool:
        """Restore the snapshots (each into `new_policy()`) and win rates saved here; False if none were.
        UsageError (one line) for a pool file that cannot be read."""
        path = self.folder / POOL_FILE
        if not path.is_file():
            return False
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            names, rates = list(data["snapshots"]), dict(data["win_rates"])
            if data.get("format") != POOL_FORMAT or not all(isinstance(r, int | float) for r in rates.values()):
                raise ValueError("unexpected contents")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{path}: not a self-play pool file ({exc})") from None
        pool.weights.observe(rates)
        for name in names:
            state = load_checkpoint(self.folder / f"step_{snapshot_step(name):012d}.pt")
            network = new_policy()
            network.load_state_dict(state["policy"])
            pool.add_snapshot(name, network)
        return True


def snapshot_name(step: int) -> str:
    return f"{PAST}-{step}"


def snapshot_step(name: str) -> int:
    return int(name.removeprefix(f"{PAST}-"))


class SnapshotSchedule(BaseCallback):
    """Before each rollout: the opponents' temperature from `temperature(progress_remaining)`, and a frozen
    copy of the live policy (`new_policy()` loaded with its weights) when `every` updates have passed
    since the last one (and at the start of a run whose pool has none); the pool is saved after each."""

    def __init__(self, env: PoolOpponents, store: PoolStore, new_policy: Callable[[], Any], every: int,
                 temperature: Schedule) -> None:
        super().__init__()
        self.env = env
        self.store = store
        self.new_policy = new_policy
        self.every = every
        self.temperature = temperature
        self.updates = -1  # PPO updates done in this learn() call, -1 before its first rollout
        self.last_snapshot = 0

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        remaining = max(0.0, 1.0 - self.model.num_timesteps / self.model._total_timesteps)
        self.env.neural.temperature = float(self.temperature(remaining))
        pool = self.env.pool
        # Rollouts start once before the first update and once after each (SB3's own counter counts epochs).
        first = self.updates < 0
        self.updates += 1
        if not first and self.updates - self.last_snapshot < self.every:
            return
        self.last_snapshot = self.updates
        if (first and pool.snapshots) or not pool.capacity:  # a restored pool counts its updates from here
            return
        step = int(self.model.num_timesteps)
        network = self.new_policy()
        network.load_state_dict(self.model.policy.state_dict())
        self.store.save_snapshot(step, network)
        pool.add_snapshot(snapshot_name(step), network)
        self.env.redraw_upcoming()
        self.store.save(pool)


class EvalFeedsPool(EvalDuringTraining):
    """Evaluation during training (engine.train_eval) whose table's win rates become the adaptive weights'
    win rates of the scripted entries it covers."""

    def __init__(self, *args: Any, weights: AdaptiveWeights, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool_weights = weights

    def evaluate(self, step: int) -> dict[str, Any]:
        event = super().evaluate(step)
        self.pool_weights.observe({row["opponent"]: row["win_rate"] for row in event["rows"]})
        return event


class SelfPlayMetrics:
    """Each metric window: games and win rate per entry, the weights, the pool size and temperature.
    At each window the adaptive weights take the win rate of every entry that has had `MIN_GAMES` games
    since its last refresh (a window of a few games would swing its weight from the floor to the top;
    only the neural entries when evaluation sets the scripted ones: `eval_feeds`), and the pool file is
    rewritten."""

    MIN_GAMES = 20

    def __init__(self, env: PoolOpponents, store: PoolStore, eval_feeds: bool) -> None:
        self.env = env
        self.store = store
        self.eval_feeds = eval_feeds
        self.pending = OutcomeTally()  # games since each entry's last refresh

    def take(self) -> dict[str, float]:
        pool = self.env.pool
        games, wins = self.env.tally.take()
        rates = {name: wins[name] / count for name, count in games.items()}
        for name, count in games.items():
            # With evaluation on, the scripted entries' win rates come from its table (EvalFeedsPool).
            if name in pool.entries and not (self.eval_feeds and name in rules.OPPONENTS):
                self.pending.add(name, wins[name], count)
        pool.weights.observe(self.pending.take_measured(self.MIN_GAMES))
        self.store.save(pool)
        entries = pool.entries
        values: dict[str, float] = {f"selfplay/games/{n}": float(g) for n, g in games.items()}
        values.update({f"selfplay/win_rate/{n}": r for n, r in rates.items()})
        weights = pool.weights.weights(entries)
        values.update({f"selfplay/weight/{n}": float(w) for n, w in zip(entries, weights, strict=True)})
        values["selfplay/pool_size"] = float(len(pool.snapshots))
        values["selfplay/temperature"] = float(self.env.neural.temperature)
        return values


def pool_env(cfg: Any, seed: int, make_venv: Callable[[OpponentPolicy], Any]) -> PoolOpponents:
    """The run's games facing a pool built from `selfplay.*` of the resolved config `cfg`; draws seeded `seed`."""
    s = cfg.section("selfplay")
    pool = OpponentPool(s["opponents"], s["pool_size"], AdaptiveWeights(s["weight_floor"]))
    rng = np.random.default_rng(seed)
    return PoolOpponents(make_venv, pool, NeuralOpponents(pool.networks, rng, s["temperature"]), rng)


def attach(ctx: Any, env: PoolOpponents, policy: Any,
           new_policy: Callable[[], Any]) -> tuple[SnapshotSchedule, SelfPlayMetrics]:
    """Put the live `policy` in the pool, restore a saved pool from the run folder of `ctx` (a RunContext),
    and return the run's snapshot callback and metric source."""
    s = ctx.cfg.section("selfplay")
    env.pool.set_current(policy)
    store = PoolStore(ctx.run.path / FOLDER)
    if store.load(env.pool, new_policy):
        env.redraw_upcoming()
        ctx.log("info", f"self-play: pool restored from {FOLDER}/ ({len(env.pool.snapshots)} snapshots)")
    temperature = schedule(s["temperature_schedule"], s["temperature"], s["temperature_end"])
    return (SnapshotSchedule(env, store, new_policy, s["snapshot_every_updates"], temperature),
            SelfPlayMetrics(env, store, bool(ctx.cfg["eval.every_steps"])))
