"""Soccer evaluation: a policy's games against the scripted cars, from both sides, as eval rows.

`play_soccer(act, opponent, games, seed, statistics)` plays `games` whole games (each one episode of
`max_steps` steps; goals do not end a game, so every game ends on the same step) on the batched core:
the first ceil(games / 2) with the agent as the left car, seeded `seed`, `seed + 1`, ..., the rest as
the right car, seeded on from there. The same (games, seed) gives the same kick-offs, so evaluations
of two policies, or of one policy at two steps, face the same games. `act(obs) -> actions` maps
float32[G, 18] observations to float32[G, 2] actions; with `statistics` (engine.vec_normalize's
checkpoint value) the observations it sees are normalised by them, frozen (`restore(training=False)`:
no update, no reward scaling), as the policy saw them in training.

`soccer_row(result)` is the row of an `eval` event (docs/events.md): the fields every game's row has
(win/draw/loss, win rate with its Wilson 95 % interval, `margin` = the mean goal difference, `turns`
= the mean game length in steps) plus `goals_for` and `goals_against` (means per game) and
`margin_low`/`margin_high`, the mean goal difference's 95 % interval (`margin_interval`);
`engine.eval_scores.suite_margin` is the score the best policy is chosen by (the mean goal difference
over the suite).

`SoccerPolicy` is a checkpoint's policy with the statistics it needs, loaded from a checkpoint or a
run (`load_soccer_policy`), for `trainctl eval` and `trainctl replay`; every mistake is a one-line
UsageError before a game is played. This module writes nothing and prints nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from engine import vec_normalize
from engine.checkpoint import load_checkpoint
from engine.errors import UsageError
from engine.evaluate import Outcomes
from engine.players import run_checkpoint
from engine.runstore import RunDir, resolve_run
from envs.soccer import rules

GAME = "soccer"
EVAL_SIDES = ("left", "right")
Actor = Callable[[np.ndarray], np.ndarray]  # float32[G, 18] observations -> float32[G, 2] actions


@dataclass(frozen=True)
class SoccerResult:
    """One opponent's games from the agent's side: goals int[G] each way, `sides` the agent's side per
    game ("left" for the first ceil(G/2)), `steps` each game's length in steps."""

    opponent: str
    goals_for: np.ndarray
    goals_against: np.ndarray
    sides: tuple[str, ...]
    steps: int

    @property
    def difference(self) -> np.ndarray:
        return self.goals_for - self.goals_against

    @property
    def outcomes(self) -> Outcomes:
        d = self.difference
        return Outcomes(wins=int(np.count_nonzero(d > 0)), draws=int(np.count_nonzero(d == 0)),
                        losses=int(np.count_nonzero(d < 0)))


def side_games(games: int) -> tuple[int, int]:
    """(games as the left car, games as the right car): the left one more when `games` is odd."""
    return (games + 1) // 2, games // 2


def play_soccer(act: Actor, opponent: str, games: int, seed: int,
                statistics: Mapping[str, Any] | None = None, max_steps: int = rules.MAX_STEPS) -> SoccerResult:
    """See the module docstring."""
    if games < 1:
        raise ValueError(f"games must be >= 1, got {games}")
    goals_for: list[np.ndarray] = []
    goals_against: list[np.ndarray] = []
    sides: list[str] = []
    first = seed
    for side, count in zip(EVAL_SIDES, side_games(games), strict=True):
        if count:
            scored = _play_side(act, opponent, side, count, first, statistics, max_steps)
            goals_for.append(scored[0])
            goals_against.append(scored[1])
            sides += [side] * count
            first += count
    return SoccerResult(opponent, np.concatenate(goals_for), np.concatenate(goals_against), tuple(sides), max_steps)


def _play_side(act: Actor, opponent: str, side: str, count: int, seed: int,
               statistics: Mapping[str, Any] | None, max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    from envs.soccer.vec_env import SoccerVecEnv

    game_env = SoccerVecEnv(count, opponent=opponent, seed=seed, side=side, max_steps=max_steps)
    venv: VecEnv = game_env
    if statistics is not None:
        norm = vec_normalize.wrap(game_env, gamma=0.99)  # gamma unused: restore() freezes it, rewards unscaled
        vec_normalize.restore(norm, statistics, training=False)
        venv = norm
    obs = np.asarray(venv.reset())
    infos: list[dict[str, Any]] = []
    for _ in range(max_steps):
        stepped, _rewards, dones, infos = venv.step(np.asarray(act(obs), dtype=np.float32))
        obs = np.asarray(stepped)
    if not dones.all():  # every game lasts max_steps steps: the time limit is the only end
        raise RuntimeError(f"{int((~dones).sum())} of {count} games did not end after {max_steps} steps")
    venv.close()
    return (np.array([info["goals_for"] for info in infos], dtype=np.int64),
            np.array([info["goals_against"] for info in infos], dtype=np.int64))


def policy_actor(policy: Any) -> Actor:
    """The deterministic actions of an SB3 policy (the Gaussian's mean, clipped to [-1, 1])."""

    def act(obs: np.ndarray) -> np.ndarray:
        actions, _state = policy.predict(obs, deterministic=True)
        return np.asarray(actions, dtype=np.float32)

    return act


def margin_interval(differences: np.ndarray, z: float = 1.96) -> tuple[float, float] | tuple[None, None]:
    """The normal-approximation interval (95 % for z = 1.96) of the mean of per-game goal differences:
    mean -+ z * sample standard deviation / sqrt(games). Under two games nothing bounds the spread:
    (None, None). Games are independent (each its own seed), and 200 of them make the mean near normal."""
    if len(differences) < 2:
        return None, None
    mean = float(differences.mean())
    half = z * float(differences.std(ddof=1)) / float(np.sqrt(len(differences)))
    return mean - half, mean + half


def soccer_row(result: SoccerResult) -> dict[str, Any]:
    """The eval row of one opponent's games (see the module docstring), as plain JSON values."""
    o = result.outcomes
    low, high = o.win_rate_interval()
    margin_low, margin_high = margin_interval(result.difference)
    return {"opponent": result.opponent, "games": o.games, "wins": o.wins, "draws": o.draws, "losses": o.losses,
            "win_rate": o.win_rate, "win_low": low, "win_high": high, "margin": float(result.difference.mean()),
            "turns": float(result.steps), "illegal_rate": None, "stopped": None,
            "goals_for": float(result.goals_for.mean()), "goals_against": float(result.goals_against.mean()),
            "margin_low": margin_low, "margin_high": margin_high}


def evaluate_policy(act: Actor, opponents: Sequence[str], games: int, seed: int,
                    statistics: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One row per opponent, every opponent on the same games."""
    return [soccer_row(play_soccer(act, name, games, seed, statistics)) for name in opponents]


# -- checkpoints --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SoccerPolicy:
    """A soccer checkpoint's policy: its SB3 policy, the normalisation statistics it was trained with
    (None when its run did not normalise), its step and file, and its run when known."""

    spec: str
    policy: Any
    statistics: Mapping[str, Any] | None
    step: int
    path: Path
    run: RunDir | None

    def actor(self) -> Actor:
        return policy_actor(self.policy)


def run_setting(run: RunDir, key: str) -> Any:
    """A resolved setting from a run's run.json (None when the run has no such key, e.g. a wrapped run)."""
    entry = run.read_config().get("config", {}).get(key)
    return entry.get("value") if isinstance(entry, Mapping) else None


def checkpoint_run(path: Path) -> RunDir | None:
    """The run a checkpoint file sits in (`<run>/checkpoints/` or `<run>/best/`), or None."""
    folder = path.resolve().parent.parent
    return RunDir.open(folder) if (folder / "run.json").is_file() else None


def load_soccer_policy(spec: str, path: Path, run: RunDir | None = None) -> SoccerPolicy:
    """The policy of soccer checkpoint `path` (of `run`, else of the run it sits in, if any); UsageError
    for a missing or foreign checkpoint, another game's, or one without the normalisation statistics its
    run trained with."""
    from engine import ppo

    state = load_checkpoint(path)
    if state.get("env") != GAME:
        raise UsageError(f"checkpoint {path} was trained on {state.get('env')!r}; expected a soccer checkpoint")
    if state.get("format") != ppo.STATE_FORMAT:
        raise UsageError(f"checkpoint {path} has format {state.get('format')!r}; expected {ppo.STATE_FORMAT}")
    try:
        ppo.check_resume(state)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None
    run = run or checkpoint_run(path)
    statistics = state.get(vec_normalize.STATE_KEY)
    if run is not None and run_setting(run, "env.normalize") and statistics is None:
        raise UsageError(f"checkpoint {path} has no normalisation statistics but its run trained with "
                         "env.normalize = true; expected a checkpoint written by that run")
    if statistics is not None:
        try:
            vec_normalize.check_statistics(statistics, int(state["obs_size"]))
        except UsageError as exc:
            raise UsageError(f"{path}: {exc}") from None
    import torch

    torch.set_num_threads(1)  # small batches of games through an MLP: a second thread only waits for a core
    return SoccerPolicy(spec, ppo.policy_from_checkpoint(state), statistics, int(state["step"]), path, run)


def parse_soccer_subject(arg: str, runs_dir: Path) -> SoccerPolicy:
    """A soccer policy from `ckpt:PATH`, `run:RUN`, a checkpoint file or a run id or folder."""
    kind, sep, rest = arg.partition(":")
    if sep and kind == "ckpt":
        return load_soccer_policy(arg, Path(rest))
    if sep and kind == "run":
        arg = rest
    elif Path(arg).is_file() or arg.endswith(".pt"):
        return load_soccer_policy(arg, Path(arg))
    run = resolve_run(arg, runs_dir)
    game = run_setting(run, "run.env")
    if game != GAME:
        what = f"plays {game!r}" if game is not None else "is not a trainer run (a wrapped command)"
        raise UsageError(f"run {run.run_id} {what}; expected a soccer run")
    return load_soccer_policy(f"run:{run.run_id}", run_checkpoint(run), run)


def subject_game(arg: str, runs_dir: Path) -> str | None:
    """The game a `trainctl eval` subject names: a run's `run.env` or a checkpoint's `env`; None when it
    names neither (a scripted player, a `py:` bot) or cannot be read (the caller's parser says why)."""
    kind, sep, rest = arg.partition(":")
    if sep and kind not in ("ckpt", "run"):
        return None
    target = rest if sep else arg
    try:
        if kind == "ckpt" or (not sep and (Path(target).is_file() or target.endswith(".pt"))):
            env = load_checkpoint(Path(target)).get("env")
            return str(env) if env is not None else None
        game = run_setting(resolve_run(target, runs_dir), "run.env")
        return str(game) if game is not None else None
    except UsageError:
        return None
