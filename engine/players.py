"""Beasty Bar players named on the command line, for `trainctl eval` and `trainctl arena`.

A player spec is one of:
- a scripted player of the rules reference: any name in `envs.beastybar.rules.OPPONENTS` (`random`,
  `heuristic`, and whatever the rules module adds), played by `rules.OPPONENT_POLICIES[name]`;
- `ckpt:PATH`: a trainctl checkpoint of a Beasty Bar run (loaded with weights_only=True and checked by
  its trainer's `check_resume`), played by its network's deterministic masked argmax; a bare `PATH`
  ending in `.pt` is the same;
- `run:RUN`: a run's checkpoint: the newest in its `best/` folder when that has one, else its newest
  in `checkpoints/`;
- `py:MODULE:FUNC`: a Python function with the scripted players' signature, `(rules.GameState, Rng) ->
  action id`, imported here (a bring-your-own bot). It is handed a copy of the game state, so a bot
  that edits what it is given cannot change the game.

A `Player` chooses for a batch of games at once: `choose(states, rngs, seat)` for games on the rules
reference where it is `seat`'s turn, and, for a neural player, `choose_batch(obs, masks)` over
observations (the Cython core's or the reference's). Every mistake in a spec (unknown name, missing or
foreign checkpoint, a checkpoint of another game, a module that does not import) is a UsageError of
one line, raised before any game is played. Loading a network sets torch to one intra-op thread (see
`load_neural`). This module plays no games itself (engine.matches does) and writes nothing.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.checkpoint import latest_checkpoint, load_checkpoint
from engine.errors import UsageError
from engine.runstore import RunDir, resolve_run
from envs.beastybar import rules
from envs.rng import Rng

if TYPE_CHECKING:
    import torch

GAME = "beastybar"
BEST_FOLDER = "best"
"""A run's folder of its best checkpoint so far (engine.train_eval writes it), which `run:RUN` prefers."""
# Checkpoint format -> (trainer module, the function of it that builds the scoring network): a network
# maps float32[n, 160] observations to float32[n, 33] action scores (policy logits or Q-values).
NETWORKS: dict[str, tuple[str, str]] = {
    "trainctl.ppo/1": ("engine.ppo", "policy_from_checkpoint"),
    "trainctl.dqn-per/1": ("engine.dqn", "q_net_from_checkpoint"),
}
PolicyFunction = Callable[[rules.GameState, Rng], int]


class IllegalMove(Exception):
    """A player chose an action that is not legal (or raised) in one game: `index` is the game's
    position in the batch it was asked about, `detail` says which action and what was legal."""

    def __init__(self, index: int, detail: str) -> None:
        super().__init__(detail)
        self.index = index
        self.detail = detail


@dataclass
class Player:
    """A player and its counters. `decisions`: moves it chose; `raw_illegal`: of those, how many its
    network's unmasked argmax was illegal (a neural player's fallback rate; always 0 for the others)."""

    spec: str
    decisions: int = field(default=0, init=False)
    raw_illegal: int = field(default=0, init=False)

    @property
    def neural(self) -> bool:
        return False

    @property
    def core_opponent(self) -> str | None:
        """The name the Cython core plays this player by, or None when the core cannot play it."""
        return None

    def choose(self, states: Sequence[rules.GameState], rngs: Sequence[Rng], seat: int) -> list[int]:
        """One action per game, for games where it is `seat`'s turn; IllegalMove for a bad one."""
        raise NotImplementedError

    def reset_counts(self) -> None:
        self.decisions = self.raw_illegal = 0


@dataclass
class ScriptedPlayer(Player):
    """A policy `(state, rng) -> action` on the rules reference; the rules' own scripted players, or a
    `py:` one (`copy_state`: it is handed a copy of the state and its answer is checked)."""

    policy: PolicyFunction
    copy_state: bool = False

    @property
    def core_opponent(self) -> str | None:
        return self.spec if not self.copy_state and self.spec in rules.OPPONENTS else None

    def choose(self, states: Sequence[rules.GameState], rngs: Sequence[Rng], seat: int) -> list[int]:
        actions = []
        for index, (state, rng) in enumerate(zip(states, rngs, strict=True)):
            try:
                action = self.policy(copy.deepcopy(state) if self.copy_state else state, rng)
            except Exception as exc:  # a bot's bug ends its pairing, with what it raised
                raise IllegalMove(index, f"raised {type(exc).__name__}: {exc}") from None
            legal = state.legal_actions()
            if not isinstance(action, int | np.integer) or int(action) not in legal:
                raise IllegalMove(index, f"returned {action!r}, not a legal action (legal: {legal})")
            actions.append(int(action))
        self.decisions += len(actions)
        return actions


@dataclass
class NeuralPlayer(Player):
    """A trained network: `choose_batch` runs one forward pass over every game it is asked about and
    takes the masked argmax (deterministic); `step` is the checkpoint's env step, `run` the run it came
    from when it was named as one."""

    network: Any
    step: int = 0
    path: Path | None = None
    run: RunDir | None = None

    @property
    def neural(self) -> bool:
        return True

    def choose_batch(self, obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """int64[n] actions for float32[n, 160] observations and bool[n, 33] legal masks (each row has a
        legal action); counts the rows whose unmasked argmax is illegal."""
        scores = self.action_scores(obs)
        raw = scores.argmax(axis=1)
        self.raw_illegal += int(np.count_nonzero(~masks[np.arange(len(raw)), raw]))
        self.decisions += len(raw)
        return np.asarray(np.where(masks, scores, -np.inf).argmax(axis=1), dtype=np.int64)

    def action_scores(self, obs: np.ndarray) -> np.ndarray:
        """float32[n, 33] action scores (policy logits, or Q-values) for float32[n, 160] observations."""
        import torch

        device = next(self.network.parameters()).device  # a live policy may be on the GPU
        with torch.no_grad():
            return action_scores(self.network, torch.as_tensor(obs, dtype=torch.float32, device=device)).cpu().numpy()

    @property
    def q_values(self) -> bool:
        """Whether the scores are Q-values (a DQN's) rather than a policy's logits."""
        return not hasattr(self.network, "mlp_extractor")

    def choose(self, states: Sequence[rules.GameState], rngs: Sequence[Rng], seat: int) -> list[int]:
        obs = np.stack([rules.encode_observation(state, viewer=seat) for state in states])
        masks = np.array([rules.legal_mask(state.queue, state.hands[seat]) for state in states], dtype=np.bool_)
        return [int(a) for a in self.choose_batch(obs, masks)]


def action_scores(network: Any, obs: torch.Tensor) -> torch.Tensor:
    """float32[n, actions]: a network's score of each action for observations float32[n, obs]: an SB3
    actor-critic policy's action logits (before any mask), a Q-network's Q-values."""
    if hasattr(network, "mlp_extractor"):
        latent = network.mlp_extractor.forward_actor(network.extract_features(obs, network.pi_features_extractor))
        return network.action_net(latent)
    return network(obs)


# -- parsing specs ------------------------------------------------------------------------------------
def player_names() -> tuple[str, ...]:
    """The scripted players' names, read from the rules module each time (it may grow)."""
    return tuple(rules.OPPONENTS)


def _expected() -> str:
    return f"{', '.join(player_names())}, ckpt:PATH, run:RUN or py:MODULE:FUNC"


def parse_player(spec: str, runs_dir: Path) -> Player:
    """The player `spec` names (see the module docstring); UsageError naming what is wrong otherwise."""
    kind, sep, rest = spec.partition(":")
    if not sep:
        if spec in rules.OPPONENT_POLICIES:
            return ScriptedPlayer(spec, policy=rules.OPPONENT_POLICIES[spec])
        if spec.endswith(".pt"):  # a plain checkpoint path, as `trainctl arena assets/beastybar_agent.pt ...`
            return load_neural(spec, Path(spec))
        raise UsageError(f"unknown player {spec!r}; expected {_expected()}")
    if not rest:
        raise UsageError(f"player {spec!r} names nothing after {kind}:; expected {_expected()}")
    if kind == "ckpt":
        return load_neural(spec, Path(rest))
    if kind == "run":
        run = resolve_run(rest, runs_dir)
        player = load_neural(spec, run_checkpoint(run))
        player.run = run
        return player
    if kind == "py":
        return ScriptedPlayer(spec, policy=import_policy(rest), copy_state=True)
    raise UsageError(f"unknown player kind {kind!r} in {spec!r}; expected {_expected()}")


def parse_subject(arg: str, runs_dir: Path) -> Player:
    """The subject of `trainctl eval`: a player spec, or a plain checkpoint path or run."""
    kind = arg.partition(":")[0]
    if kind in ("ckpt", "run", "py") or arg in rules.OPPONENT_POLICIES:
        return parse_player(arg, runs_dir)
    if Path(arg).is_file() or arg.endswith(".pt"):
        return parse_player(f"ckpt:{arg}", runs_dir)
    return parse_player(f"run:{arg}", runs_dir)


def run_checkpoint(run: RunDir) -> Path:
    """A run's checkpoint to play: the newest in its `best/`, else the newest in `checkpoints/`."""
    found = latest_checkpoint(run.path / BEST_FOLDER) or latest_checkpoint(run.checkpoints)
    if found is None:
        raise UsageError(f"run {run.run_id} has no checkpoint yet (none in {run.checkpoints})")
    return found


def load_neural(spec: str, path: Path) -> NeuralPlayer:
    """The network of checkpoint `path`; UsageError for a missing, foreign or other-game checkpoint."""
    state = load_checkpoint(path)
    fmt, env = state.get("format"), state.get("env")
    if env != GAME:
        raise UsageError(f"checkpoint {path} was trained on {env!r}; these players play {GAME!r}")
    if fmt not in NETWORKS:
        raise UsageError(f"checkpoint {path} has format {fmt!r}; playable formats: {', '.join(NETWORKS)}")
    module_name, build = NETWORKS[str(fmt)]
    module = importlib.import_module(module_name)
    try:
        module.check_resume(state)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None
    network = getattr(module, build)(state)
    # One intra-op thread: these forwards are small (a batch of games through an MLP), and on a loaded
    # machine a second OpenMP thread waiting for a core made one 10 x 160 forward ~600x slower (27 ms
    # against 0.04 ms, measured while training runs shared the two cores).
    import torch

    torch.set_num_threads(1)
    return NeuralPlayer(spec, network=network, step=int(state["step"]), path=path)


def import_policy(target: str) -> PolicyFunction:
    """The function `MODULE:FUNC` names; UsageError (one line) when it does not import or is no function."""
    module_name, sep, func_name = target.rpartition(":")
    if not sep or not module_name or not func_name:
        raise UsageError(f"py:{target} is not MODULE:FUNC (e.g. py:mybots.greedy:play)")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure to import is the user's module's; say which and why
        raise UsageError(f"py:{target}: module {module_name!r} does not import ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise UsageError(f"py:{target}: {module_name} has no function {func_name!r}")
    return func
