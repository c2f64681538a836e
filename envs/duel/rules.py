"""Duel rules in pure Python: the reference (oracle) the Cython core `ext/duel_core` must match.

Rules: docs/games/duel.md. This module fixes every detail the page leaves open (ids, resolution order,
generator use, the scripted players, the observation), so the same seed and the same actions give the
same trajectory here and in the core, and its tables (`SPECIES`, `MOVES`, `EFFECT`, `PARAMS`) are the
ones the core is built with (`core_tables()`). Readable first, slow on purpose: it is the baseline the
core's speed is measured against, never a hot path. It imports nothing of ours but `envs.rng`.

Vocabulary: side 0 is the agent, side 1 the scripted player. A team is three `Creature`s in slot order;
`active` is a slot index. An action is an int of the 7-action table: 0-2 attack with that move slot,
3 pass, 4-6 switch to team slot 0-2.

Observation (float32[62], from side 0's view, values computed as Python floats then stored as float32):

    [0:27]   my slots 0-2, 9 each: hp / 100, alive, active, species one-hot (6)
    [27:54]  their slots 0-2, the same
    [54]     turns played / max_turns
    [55:62]  their last action one-hot (all zero at a game's start)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from envs.rng import Rng

TYPES = ("normal", "fire", "water", "grass")
NORMAL, FIRE, WATER, GRASS = range(4)

# EFFECT[move type][defender type], in halves (2 = x1).
EFFECT = (
    (2, 2, 2, 2),
    (2, 1, 1, 4),
    (2, 4, 1, 1),
    (2, 1, 4, 1),
)


class Move(NamedTuple):
    name: str
    type: int
    power: int
    accuracy: int  # percent


MOVES = (
    Move("tackle", NORMAL, 40, 100),
    Move("slam", NORMAL, 80, 75),
    Move("ember", FIRE, 45, 100),
    Move("blaze", FIRE, 90, 70),
    Move("splash", WATER, 45, 100),
    Move("torrent", WATER, 90, 70),
    Move("leaf", GRASS, 45, 100),
    Move("thorns", GRASS, 90, 70),
)


class Species(NamedTuple):
    name: str
    type: int
    hp: int
    attack: int
    defence: int
    speed: int
    moves: tuple[int, int, int]  # move ids, slot order


SPECIES = (
    Species("emberfox", FIRE, 60, 12, 9, 14, (0, 2, 3)),
    Species("tidecrab", WATER, 70, 10, 13, 7, (0, 4, 5)),
    Species("thornbeast", GRASS, 80, 11, 11, 8, (1, 6, 7)),
    Species("cinderbat", FIRE, 50, 14, 8, 16, (2, 3, 1)),
    Species("reefeel", WATER, 55, 13, 9, 13, (4, 5, 6)),
    Species("stonebear", NORMAL, 90, 12, 12, 5, (0, 1, 2)),
)


@dataclass(frozen=True)
class Params:
    """The rules' numbers that are not per creature or move (the page's constants)."""

    max_turns: int = 40
    pass_heal_divisor: int = 8  # a pass heals max_hp // this
    roll_min: int = 85  # the damage roll is roll_min + below(roll_range), in percent
    roll_range: int = 16
    damage_divisor: int = 800  # damage = power * attack * effect * roll // (defence * this)
    shaping_divisor: int = 500  # per-turn reward = (HP dealt - HP taken) / this
    hp_scale: int = 100  # the observation's HP is hp / this


PARAMS = Params()
TEAM_SIZE = 3
MOVES_PER_CREATURE = 3
NUM_SPECIES = len(SPECIES)
PASS = 3
SWITCH = 4  # actions SWITCH + slot
NUM_ACTIONS = 7
SLOT_SIZE = 3 + NUM_SPECIES
OBS_SIZE = 2 * TEAM_SIZE * SLOT_SIZE + 1 + NUM_ACTIONS
OBS_TURN = 2 * TEAM_SIZE * SLOT_SIZE
OBS_LAST_ACTION = OBS_TURN + 1

DRAWS = ("accuracy_0", "accuracy_1", "roll_0", "roll_1", "first")
"""A turn's random draws as the turn used them, NO_DRAW where it made none: the accuracy draw (0-99) and
the damage roll (85-100, in percent: a hit's) of side 0's attack and of side 1's, and the speed tie's draw
(0 = side 0 first). A world model reads them to tell the turn's luck from its rules."""
NO_DRAW = -1

OPPONENTS = ("random", "greedy", "sensible")
"""Scripted players (of either side); the index is the id the core uses."""
SHAPINGS = ("hp", "none")
"""The per-turn reward: `hp` the HP difference of the turn / shaping_divisor, `none` 0 (outcome only)."""


def core_tables() -> dict[str, Any]:
    """The rules tables the Cython core is built with, as plain ints and lists."""
    return {
        "species_type": [s.type for s in SPECIES],
        "species_hp": [s.hp for s in SPECIES],
        "species_attack": [s.attack for s in SPECIES],
        "species_defence": [s.defence for s in SPECIES],
        "species_speed": [s.speed for s in SPECIES],
        "species_moves": [list(s.moves) for s in SPECIES],
        "move_type": [m.type for m in MOVES],
        "move_power": [m.power for m in MOVES],
        "move_accuracy": [m.accuracy for m in MOVES],
        "effect": [list(row) for row in EFFECT],
        **{name: getattr(PARAMS, name) for name in Params.__dataclass_fields__},
    }


def action_name(action: int) -> str:
    """'move slot 1', 'pass', 'switch to slot 2'."""
    if action < PASS:
        return f"move slot {action}"
    return "pass" if action == PASS else f"switch to slot {action - SWITCH}"


# --- state ---------------------------------------------------------------------------------------------


@dataclass
class Creature:
    species: int
    hp: int

    @property
    def stats(self) -> Species:
        return SPECIES[self.species]

    @property
    def alive(self) -> bool:
        return self.hp > 0


@dataclass
class Side:
    team: list[Creature]
    active: int = 0
    last_action: int = -1  # -1 before the first turn

    @property
    def fighter(self) -> Creature:
        return self.team[self.active]

    def alive_count(self) -> int:
        return sum(c.alive for c in self.team)


def deal_team(rng: Rng) -> Side:
    """One side's team: shuffle the species ids (5 draws), the first three in slot order, full HP."""
    ids = list(range(NUM_SPECIES))
    rng.shuffle(ids)
    return Side([Creature(s, SPECIES[s].hp) for s in ids[:TEAM_SIZE]])


def legal_actions(side: Side) -> list[int]:
    """Ascending legal actions of `side`: attacks and pass unless its active creature is KO, switches to
    alive benched slots."""
    actions = [*range(PASS + 1)] if side.fighter.alive else []
    return actions + [SWITCH + slot for slot, c in enumerate(side.team) if c.alive and slot != side.active]


def damage(attacker: Creature, move: Move, defender: Creature, roll: int) -> int:
    """Damage of a hit before the cap at the defender's HP (`roll` in percent)."""
    a, d = attacker.stats, defender.stats
    effect = EFFECT[move.type][d.type]
    return max(1, move.power * a.attack * effect * roll // (d.defence * PARAMS.damage_divisor))


def move_value(attacker: Creature, slot: int, defender: Creature) -> int:
    """The scripted players' value of a move: power * accuracy * effect * attack (exact)."""
    move = MOVES[attacker.stats.moves[slot]]
    return move.power * move.accuracy * EFFECT[move.type][defender.stats.type] * attacker.stats.attack


def matchup(creature: Creature, defender: Creature) -> int:
    return max(move_value(creature, slot, defender) for slot in range(MOVES_PER_CREATURE))


# --- scripted players (me = the side choosing, foe = the other) -------------------------------------------


def random_player(me: Side, foe: Side, rng: Rng) -> int:
    legal = legal_actions(me)
    return legal[rng.below(len(legal))]


def _best_attack(me: Side, foe: Side) -> int:
    values = [move_value(me.fighter, slot, foe.fighter) for slot in range(MOVES_PER_CREATURE)]
    return values.index(max(values))  # the first maximum: ties to the lower slot


def greedy_player(me: Side, foe: Side, rng: Rng) -> int:
    if not me.fighter.alive:
        return SWITCH + next(slot for slot, c in enumerate(me.team) if c.alive)
    return _best_attack(me, foe)


def sensible_player(me: Side, foe: Side, rng: Rng) -> int:
    bench = [(matchup(c, foe.fighter), slot) for slot, c in enumerate(me.team) if c.alive and slot != me.active]
    # best value first, ties to the lower slot
    best = max(bench, key=lambda vs: (vs[0], -vs[1])) if bench else None
    if not me.fighter.alive:
        assert best is not None, "a side with its active creature KO and nobody left has lost"
        return SWITCH + best[1]
    if best is not None and best[0] >= 2 * matchup(me.fighter, foe.fighter):
        return SWITCH + best[1]
    return _best_attack(me, foe)


PLAYERS: dict[str, Callable[[Side, Side, Rng], int]] = {
    "random": random_player,
    "greedy": greedy_player,
    "sensible": sensible_player,
}


# --- a game --------------------------------------------------------------------------------------------


@dataclass
class TurnResult:
    """What one turn did: HP lost per side (damage only), the winner once over (0, 1, -1 draw), and the
    random draws it made (`DRAWS` order, NO_DRAW for those it did not make)."""

    hp_lost: list[int] = field(default_factory=lambda: [0, 0])
    draws: list[int] = field(default_factory=lambda: [NO_DRAW] * len(DRAWS))
    over: bool = False
    winner: int = -1


class DuelGame:
    """One game over its own generator: `sides[0]` the agent, `sides[1]` the scripted player. `reset()`
    deals the next game from the same stream."""

    def __init__(self, rng: Rng) -> None:
        self.rng = rng
        self.reset()

    def reset(self) -> None:
        self.sides = [deal_team(self.rng), deal_team(self.rng)]
        self.turn = 0
        self.over = False
        self.winner = -1

    def choose(self, side: int, player: str) -> int:
        """The scripted `player`'s action for `side` (its draws come from the game's generator)."""
        return PLAYERS[player](self.sides[side], self.sides[1 - side], self.rng)

    def play_turn(self, actions: tuple[int, int]) -> TurnResult:
        """Resolve one turn of both sides' actions (each checked legal); the rules page's steps 1-4."""
        if self.over:
            raise ValueError("the game is over; reset() first")
        for side, action in enumerate(actions):
            legal = legal_actions(self.sides[side])
            if action not in legal:
                raise ValueError(f"action {action} is illegal for side {side}; legal: {legal}")
        result = TurnResult()
        for side, action in enumerate(actions):  # 1. switches
            if action >= SWITCH:
                self.sides[side].active = action - SWITCH
        attackers = [side for side in (0, 1) if actions[side] < PASS]  # 2. attacks
        if len(attackers) == 2:
            speeds = [self.sides[side].fighter.stats.speed for side in (0, 1)]
            # the faster first; a tie is one draw (0 = side 0 first), made only on a tie
            if speeds[0] == speeds[1]:
                first = result.draws[DRAWS.index("first")] = self.rng.below(2)
            else:
                first = 0 if speeds[0] > speeds[1] else 1
            attackers = [first, 1 - first]
        for side in attackers:
            attacker, defender = self.sides[side].fighter, self.sides[1 - side].fighter
            if not attacker.alive:  # KO earlier this turn
                continue
            move = MOVES[attacker.stats.moves[actions[side]]]
            accuracy = result.draws[side] = self.rng.below(100)
            if accuracy < move.accuracy:
                roll = result.draws[2 + side] = PARAMS.roll_min + self.rng.below(PARAMS.roll_range)
                lost = min(defender.hp, damage(attacker, move, defender, roll))
                defender.hp -= lost
                result.hp_lost[1 - side] += lost
        for side, action in enumerate(actions):  # 3. pass heals
            fighter = self.sides[side].fighter
            if action == PASS and fighter.alive:
                fighter.hp = min(fighter.stats.hp, fighter.hp + fighter.stats.hp // PARAMS.pass_heal_divisor)
        for side, action in enumerate(actions):
            self.sides[side].last_action = action
        self.turn += 1  # 4. end
        alive = [s.alive_count() for s in self.sides]
        if alive[0] == 0 or alive[1] == 0:
            self.over = True
            self.winner = -1 if alive[0] == alive[1] else (0 if alive[1] == 0 else 1)
        elif self.turn >= PARAMS.max_turns:
            self.over = True
            self.winner = -1
        result.over, result.winner = self.over, self.winner
        return result

    def reward(self, result: TurnResult, shaping: str) -> float:
        """Side 0's reward for a turn: the outcome on the last turn, the `shaping` part before (computed
        in double, rounded to float32 as the core stores it)."""
        if result.over:
            return {0: 1.0, 1: -1.0, -1: 0.0}[result.winner]
        if shaping == "none":
            return 0.0
        return float(np.float32((result.hp_lost[1] - result.hp_lost[0]) / PARAMS.shaping_divisor))

    def legal_mask(self, side: int = 0) -> list[bool]:
        """bool[7] of `side`'s legal actions; all False once the game is over."""
        legal = set() if self.over else set(legal_actions(self.sides[side]))
        return [action in legal for action in range(NUM_ACTIONS)]

    def end_info(self) -> dict[str, Any]:
        return {"winner": self.winner, "turns": self.turn, "alive": tuple(s.alive_count() for s in self.sides)}

    def observation(self) -> np.ndarray:
        """float32[62] from side 0's view (layout in the module docstring)."""
        obs = [0.0] * OBS_SIZE
        for side_index, side in enumerate(self.sides):
            for slot, creature in enumerate(side.team):
                base = (side_index * TEAM_SIZE + slot) * SLOT_SIZE
                obs[base] = creature.hp / PARAMS.hp_scale
                obs[base + 1] = 1.0 if creature.alive else 0.0
                obs[base + 2] = 1.0 if slot == side.active else 0.0
                obs[base + 3 + creature.species] = 1.0
        obs[OBS_TURN] = self.turn / PARAMS.max_turns
        if self.sides[1].last_action >= 0:
            obs[OBS_LAST_ACTION + self.sides[1].last_action] = 1.0
        return np.array(obs, dtype=np.float32)


def describe_observation(obs: np.ndarray) -> str:
    """Two readable lines (one a side) decoded from an observation: species, HP, KO, the active one."""
    lines = []
    for side_index, who in enumerate(("me", "them")):
        parts = []
        for slot in range(TEAM_SIZE):
            row = obs[(side_index * TEAM_SIZE + slot) * SLOT_SIZE:][:SLOT_SIZE]
            name = SPECIES[int(np.argmax(row[3:]))].name
            hp = round(float(row[0]) * PARAMS.hp_scale)
            parts.append(f"{'*' if row[2] else ' '}{name} {hp}{'' if row[1] else ' KO'}")
        lines.append(f"{who:>4}: " + " | ".join(parts))
    return "\n".join(lines) + "\n"
