"""Matches between two Beasty Bar players (engine.players): many games in lockstep, seats balanced.

Seats. The rules (envs.beastybar.rules.deal) shuffle player A's deck, then B's, then draw who moves
first from the game's generator; the `first` option overrides that draw (the draw is still made, so a
seed deals the same hands whoever starts). Apart from the first move the rules treat A and B alike
(ties are draws whoever holds them). So the seat that matters is the first move, and `paired_deals(G,
S)` plays each deal twice: seeds S, S, S+1, S+1, ..., once with A moving first and once with B (an odd
G plays its last deal once, A first). Each player of a pairing then moves first in half the games
(A in one more when G is odd), on the same hands both ways: a pairing's result is neither seat luck
nor the luck of which deals fell to which starter. The first player of a match always sits as A (the
only seat the Cython core gives its agent). The schedule depends only on (G, S): every pairing with
the same --games and --seed gets the same games.

Play. `play_match(a, b, deals)` plays one game per deal, a as A and b as B, in lockstep: at each step
every player acts once for all the games where it is its turn, so a neural player runs one forward pass
per step over all its games. A neural player against a scripted one the core knows runs on the
batched Cython core (`envs.beastybar.core.CORE`), the neural one always as A (the match is played from
its side and the result turned round); everything else runs on the rules reference, one generator per
game (seeded by its seed) shared by the deal and the scripted players' draws, exactly as the core and
the gym env use it, so both paths give the same games. A `py:` player's illegal action (or exception)
stops its pairing: the result carries which game, seed, turn and move, and the games played before.

Results are per game (outcome, point margin and turns, from a's side) plus the players' decision
counters; `MatchResult` summarises them. This module writes nothing and prints nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.evaluate import Outcomes, wilson_interval
from engine.players import IllegalMove, NeuralPlayer, Player
from envs.beastybar import rules
from envs.beastybar.env import core_options
from envs.rng import Rng

TURNS_PLAYED = 156
"""Observation entry holding the turns played so far / 24 (layout: envs.beastybar.rules)."""
TURNS_SCALE = 2 * rules.CARDS_PER_PLAYER


@dataclass(frozen=True)
class Deals:
    """The games of a pairing: `seeds` uint64[G] deal seeds and `a_first` bool[G], whether seat A moves
    first in each (the rules' `first` option: "agent" for A, "opponent" for B)."""

    seeds: np.ndarray
    a_first: np.ndarray

    def __len__(self) -> int:
        return len(self.seeds)

    def first(self, k: int) -> str:
        """Game k's `first` option."""
        return "agent" if self.a_first[k] else "opponent"

    def swapped(self) -> Deals:
        """The same games with the seats swapped: whoever moved first still does."""
        return Deals(self.seeds, ~self.a_first)


def paired_deals(games: int, seed: int) -> Deals:
    """`games` games on deal seeds `seed`, `seed`, `seed + 1`, `seed + 1`, ..., each deal once with A and
    once with B moving first (see the module docstring)."""
    if games < 1:
        raise ValueError(f"games must be >= 1, got {games}")
    index = np.arange(games, dtype=np.uint64)
    return Deals(np.uint64(seed) + index // np.uint64(2), index % np.uint64(2) == 0)


@dataclass(frozen=True)
class MatchResult:
    """One pairing's games from `first`'s side: `outcome` int8[G] (+1 win, 0 draw, -1 loss), `margin`
    int[G] (first's bar points minus second's), `turns` int[G] (plays by both players); the players'
    decisions and raw-illegal counts over these games; `stopped`: why the pairing ended early (a bot's
    illegal move), its games then being those finished before; `neural`: which sides are networks."""

    first: str
    second: str
    outcome: np.ndarray
    margin: np.ndarray
    turns: np.ndarray
    decisions: tuple[int, int]
    raw_illegal: tuple[int, int]
    stopped: str | None = None
    neural: tuple[bool, bool] = (False, False)

    @property
    def outcomes(self) -> Outcomes:
        return Outcomes(wins=int(np.count_nonzero(self.outcome == 1)), draws=int(np.count_nonzero(self.outcome == 0)),
                        losses=int(np.count_nonzero(self.outcome == -1)))

    @property
    def games(self) -> int:
        return len(self.outcome)

    @property
    def mean_margin(self) -> float:
        return float(self.margin.mean()) if self.games else 0.0

    @property
    def mean_turns(self) -> float:
        return float(self.turns.mean()) if self.games else 0.0

    def illegal_rate(self, side: int = 0) -> float | None:
        """How often a side's unmasked argmax was illegal; None for a side that is not neural."""
        return self.raw_illegal[side] / self.decisions[side] if self.decisions[side] and self.neural[side] else None

    def illegal_interval(self, side: int = 0) -> tuple[float, float] | None:
        """Wilson 95 % interval of `illegal_rate(side)`, or None."""
        if self.illegal_rate(side) is None:
            return None
        return wilson_interval(self.raw_illegal[side], self.decisions[side])

    def turned(self) -> MatchResult:
        """The same games from the second player's side."""
        return MatchResult(self.second, self.first, -self.outcome, -self.margin, self.turns,
                           self.decisions[::-1], self.raw_illegal[::-1], self.stopped, self.neural[::-1])


def play_match(a: Player, b: Player, deals: Deals, scoring: str = "points",
               use_core: bool = True) -> MatchResult:
    """One game per deal, `a` as A and `b` as B (see the module docstring); `use_core=False` forces the
    rules reference (the tests compare both paths)."""
    if b.neural and not a.neural:
        return play_match(b, a, deals.swapped(), scoring, use_core).turned()
    a.reset_counts()
    b.reset_counts()
    if use_core and isinstance(a, NeuralPlayer) and b.core_opponent is not None:
        outcome, margin, turns = _core_games(a, b.core_opponent, deals, scoring)
        b.decisions += int(turns.sum()) - a.decisions  # the core played b's turns: every turn not a's
        stopped = None
    else:
        outcome, margin, turns, stopped = _reference_games(a, b, deals, scoring)
    return MatchResult(a.spec, b.spec, outcome, margin, turns, (a.decisions, b.decisions),
                       (a.raw_illegal, b.raw_illegal), stopped, (a.neural, b.neural))


def _core_games(a: NeuralPlayer, opponent: str, deals: Deals,
                scoring: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The games on the core: one core for the games A starts and one for those B starts (the core
    takes `first` per batch), stepped together so `a` still runs one forward per step over all."""
    from envs.beastybar.core import CORE

    groups = []
    for first, games in (("agent", np.flatnonzero(deals.a_first)), ("opponent", np.flatnonzero(~deals.a_first))):
        if len(games):
            core, buffers = CORE.build(len(games), opponent, core_options(scoring, first), auto_reset=False)
            core.reset(np.asarray(deals.seeds[games], dtype=np.uint64))
            groups.append((games, core, buffers))
    # Whoever starts, a Beasty Bar game gives the agent 12 decisions, so the groups end on the same step.
    while not all(buffers.terminated.all() for _, _, buffers in groups):
        if any(buffers.terminated.any() for _, _, buffers in groups):
            raise RuntimeError("games of one batch ended on different steps; the core cannot step ended games")
        actions = a.choose_batch(np.concatenate([buffers.obs for _, _, buffers in groups]),
                                 np.concatenate([buffers.masks for _, _, buffers in groups]))
        offset = 0
        for games, core, _ in groups:
            mine = actions[offset:offset + len(games)]
            offset += len(games)
            bad = core.step(mine)
            if bad >= 0:
                raise RuntimeError(f"game {games[bad]}: masked action {mine[bad]} is illegal; legal "
                                   f"{core.legal_actions(bad)}")
    outcome = np.zeros(len(deals), dtype=np.int8)
    margin = np.zeros(len(deals), dtype=np.int64)
    turns = np.zeros(len(deals), dtype=np.int64)
    for games, core, buffers in groups:
        # BeastyBarCore's per-game arrays of the last finished game, beyond the core protocol: what
        # end_info(i) reads, without building a dict a game (which took a quarter of a 10,000-game eval).
        beasty: Any = core
        winner, points = np.asarray(beasty.winner), np.asarray(beasty.points, dtype=np.int64)
        outcome[games] = np.select([winner == 0, winner == 1], [1, -1], 0)
        margin[games] = points[:, 0] - points[:, 1]
        turns[games] = np.rint(buffers.obs[:, TURNS_PLAYED] * TURNS_SCALE)
    return outcome, margin, turns


def _reference_games(a: Player, b: Player, deals: Deals,
                     scoring: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str | None]:
    seeds = deals.seeds
    rngs = [Rng(int(seed)) for seed in seeds]
    states = [rules.deal(rng, first=deals.first(k)) for k, rng in enumerate(rngs)]
    seats = (a, b)
    stopped = None
    while stopped is None:
        live = [i for i, state in enumerate(states) if not state.over]
        if not live:
            break
        moves: list[tuple[int, int]] = []
        for seat, player in enumerate(seats):
            games = [i for i in live if states[i].current_player == seat]
            if not games:
                continue
            try:
                actions = player.choose([states[i] for i in games], [rngs[i] for i in games], seat)
            except IllegalMove as bad:
                i = games[bad.index]
                stopped = (f"{player.spec} {bad.detail} in game {i} (seed {int(seeds[i])}), turn "
                           f"{states[i].turn + 1}; pairing stopped")
                break
            moves += zip(games, actions, strict=True)
        if stopped is None:
            for i, action in moves:
                rules.play_turn(states[i], action)
    done = [state for state in states if state.over] if stopped else states
    outcome = np.array([{0: 1, 1: -1, -1: 0}[rules.winner(s, scoring)] for s in done], dtype=np.int8)
    margin = np.array([p[0] - p[1] for p in (rules.bar_points(s) for s in done)], dtype=np.int64)
    turns = np.array([s.turn for s in done], dtype=np.int64)
    return outcome, margin, turns, stopped
