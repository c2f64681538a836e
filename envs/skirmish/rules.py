"""Skirmish, the pure-Python reference of the rules (docs/games/skirmish.md): the oracle the Cython core
(ext/skirmish_core.pyx) is checked against step for step, and the one place the rules are fixed in full.

It is slow on purpose (distances and line of sight are computed fresh on every query, never cached) and
must never sit on a training hot path; it imports nothing of ours but the shared generator.

What the rules page leaves open is fixed here; every number lives in a table below (`PROFILES`,
`MISSIONS`, `DEPLOYMENT`, `GameParams`), so a variant is a new table, and the core takes these very
tables at construction (`core_tables()`), so there is one source of truth.

Board and units
    Cells (x, y), x in [0, 24) left to right, y in [0, 16) top to bottom; north is y - 1. Units 0-3 are
    the model's (the agent's) army, 4-7 the player's (scripted), in type order line, heavy, assault,
    scout (unit i has type i % 4). The model deploys on `DEPLOYMENT`, the player on the same cells
    mirrored (x -> 23 - x). A destroyed unit leaves the board (it blocks nothing).
    Distance: Chebyshev. Line of sight between two cells: the Bresenham line drawn from the cell with the
    smaller index y * 24 + x to the other crosses no blocking cell (end cells excluded; units never
    block sight), so it is symmetric. Engaged: an alive enemy at distance 1.

Missions (`MISSIONS`, chosen at reset by `rng.below(3)`): terrain rectangles (inclusive corners) and
    objective cells. An objective is controlled by the side whose alive units within 2 cells of it have
    the strictly larger OC sum; controller +1 model, -1 player, 0 nobody.

A game
    Reset: mission draw, deployment, round 1, the model's command phase, then on to its first decision.
    Each round: the model's turn, then the player's. A turn: command (from round 2 the side scores 5 VP
    per objective it controls), movement, shooting, charge, fight. The game ends at once when an army
    loses its last unit, else after the player's turn of round 5 (more VP wins, equal is a draw).

The agent's decisions (14 actions: 0 hold, 1-8 move N NE E SE S SW W NW, 9 toward objective, 10-13
    target enemy unit 0-3). A decision is a (phase, unit) pair walked in the order movement units 0..3,
    shooting units 0..3, charge units 0..3, with legality computed on the state at that moment. A pair
    is skipped (no step) when the unit is destroyed, engaged, or has no legal action but hold; command
    and fight never ask. After the model's last decision the rest of its turn, the player's whole turn
    and the next turn's command phase run within the same step, until the next real decision or the end.
    - Move 1-8: step one cell at a time in that direction, up to M cells, stopping before a cell that is
      off board, blocking or occupied; legal when the first cell is free.
    - Move toward a target cell (action 9, and every scripted move): up to M king steps; each step goes
      to the free neighbour with the smallest key (Chebyshev distance to the target, squared Euclidean
      distance to the target), ties to the first in compass order N NE E SE S SW W NW, and only if that
      key is strictly smaller than the current cell's (so it never cycles and stops when stuck).
      Action 9 targets the nearest objective (Chebyshev, ties to the lower objective index) whose
      controller is not the model, and is legal when such an objective exists and the first step moves.
    - Shoot 10-13: an alive enemy within range with line of sight.
    - Charge 10-13: an alive enemy within 6 cells that has a free cell next to it. The destination is the
      free cell at distance 1 from the target with the smallest key (Chebyshev distance to the charger,
      squared Euclidean distance to the charger), ties to compass order around the target. Roll 2D6
      (two d6 draws); success when the sum >= 2 * (distance - 1); the charger then jumps there.

Attacks (shooting: `shots` at BS with the ranged profile; fight: `A` at WS with the melee profile)
    For each attack in turn, while the target lives: a d6 to hit (a 1 or less than the skill misses);
    if hit, a d6 to wound (a 1 fails; needs 2+ if S >= 2T, 3+ if S > T, 4+ if S = T, 6+ if 2S <= T, else
    5+); if wounded, a d6 save (saved when the roll is not a 1 and roll - AP >= Sv); if unsaved the
    target loses min(D, wounds left). Draw order is exactly that: hit, wound, save, attack after attack;
    no roll is made for a missed step or for attacks after the target died.
    Fight phase of side s: each engaged unit of s in index order strikes the adjacent enemy with the
    fewest wounds left (ties to the lower index); then each still-engaged unit of the other side does
    the same in index order. A unit destroyed before its strike does not strike.

Player AI (scripted, deterministic given the dice)
    Expected damages are integers in units of 1/216 (three d6 steps): count of successful faces to hit,
    to wound and unsaved, times the number of attacks and min(D, target wounds left).
    - Movement, units 4..7 if alive and unengaged: toward the nearest objective not controlled by the
      player (controllers recomputed before each unit moves), else toward the nearest alive model unit.
    - Shooting: the visible target in range with the highest expected damage (ties: lower index).
    - Charge: the chargeable target with the highest expected melee damage times the number of 2D6
      outcomes (of 36) that succeed; it charges when that beats 36 times its best expected shooting
      damage at that moment (0 when it has no shot).

Observation (float32[103]): per unit 0..7 (9 each): x/24, y/16, wounds/W, alive, engaged, type one-hot
    (4) (a destroyed unit keeps only its type bits); per objective slot 0..4 (4 each): x/24, y/16,
    present, controller; then round/5, phase one-hot (command, movement, shooting, charge, fight),
    acting-unit one-hot (4), (model VP - player VP)/50. At the end the phase and unit bits are zero.
    Each value is computed in double and rounded to float32 (the core does the same, so they match bit
    for bit).

Reward of a step, three parts kept apart: vp = (model VP gained - player VP gained)/10, damage = (wounds
    dealt by the model - wounds taken by the model)/20, outcome = +1 win, -1 loss, 0 draw or not ended.
    The step's reward is their sum in double, rounded to float32; each part is reported rounded to float32.

Info: `model_health`/`player_health` = wounds left summed over the army; `in_attack` = a model unit is
    engaged; `model_vp`, `player_vp`; `mission` (name); `end_reason` ("" while playing, else `rounds`,
    `model_destroyed`, `player_destroyed`, `truncated`); `winner` ("" while playing or truncated, else
    `model`, `player`, `draw`); `turn` = the battle round (1-5) the game is in (or ended in). Debug mode
    adds `positions` (x, y per unit, (-1, -1) when destroyed), `wounds`, `phase`, `acting_unit` and
    `reward_parts` {vp, damage, outcome}.

Truncation: a safety net; a game that reaches `max_steps` decisions (default 200, above the 60 a game
    can hold) stops with terminated False, truncated True, end_reason `truncated`, no outcome reward.

Randomness: one `envs.rng.Rng` per game (xoshiro256** seeded by splitmix64); the mission draw and every
    die come from it in the order above; a new game continues the same stream.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, NamedTuple

from envs.rng import Rng

BOARD_W = 24
BOARD_H = 16
UNITS_PER_SIDE = 4
NUM_UNITS = 2 * UNITS_PER_SIDE
MAX_OBJECTIVES = 5
NUM_ACTIONS = 14
OBS_SIZE = NUM_UNITS * 9 + MAX_OBJECTIVES * 4 + 1 + 5 + UNITS_PER_SIDE + 1  # 103

MODEL, PLAYER = 0, 1
COMMAND, MOVEMENT, SHOOTING, CHARGE, FIGHT = range(5)
PHASE_NAMES = ("command", "movement", "shooting", "charge", "fight")
HOLD, TOWARD_OBJECTIVE, FIRST_TARGET = 0, 9, 10
# Action 1-8 -> (dx, dy): N NE E SE S SW W NW, the compass order every tie-break uses.
COMPASS = ((0, -1), (1, -1), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1))

# The scripted player is the only opponent; its whole turn runs inside the step that ends the model's.
OPPONENTS = ("scripted",)
# "train": the lean info keys; "debug" adds positions, wounds, phase, acting unit and reward parts.
MODES = ("train", "debug")

END_REASONS = ("", "rounds", "model_destroyed", "player_destroyed", "truncated")
NOT_ENDED, ROUNDS_OVER, MODEL_DESTROYED, PLAYER_DESTROYED, TRUNCATED = range(5)
WINNERS = {1: "model", -1: "player", 0: "draw"}

UNIT_TYPES = ("line", "heavy", "assault", "scout")
PROFILE_FIELDS = ("M", "WS", "BS", "T", "W", "Sv", "OC", "range", "shots", "S", "AP", "D",
                  "A", "mS", "mAP", "mD")  # mS/mAP/mD: the melee profile's S, AP, D
M, WS, BS, T, W, SV, OC, RANGE, SHOTS, S, AP, D, A, MS, MAP, MD = range(len(PROFILE_FIELDS))
PROFILES: tuple[tuple[int, ...], ...] = (
    # M WS BS T  W Sv OC rng shots S AP D   A mS mAP mD
    (3, 3, 3, 4, 10, 3, 2, 12, 5, 4, 1, 1, 5, 4, 0, 1),  # line
    (2, 4, 3, 5, 12, 2, 1, 18, 3, 9, 3, 3, 3, 6, 1, 2),  # heavy
    (5, 2, 4, 4, 8, 4, 1, 6, 2, 4, 0, 1, 8, 5, 2, 1),  # assault
    (6, 3, 3, 3, 5, 5, 1, 10, 4, 3, 0, 1, 2, 3, 0, 1),  # scout
)


class Mission(NamedTuple):
    name: str
    terrain: tuple[tuple[int, int, int, int], ...]  # blocking rectangles (x0, y0, x1, y1), inclusive
    objectives: tuple[tuple[int, int], ...]  # at most MAX_OBJECTIVES cells


# Layouts are symmetric under the half turn (x, y) -> (23 - x, 15 - y) where the rules allow it.
MISSIONS: tuple[Mission, ...] = (
    Mission("take_and_hold",
            ((7, 5, 8, 6), (15, 9, 16, 10), (7, 10, 8, 11), (15, 4, 16, 5), (11, 5, 12, 6), (11, 9, 12, 10)),
            ((12, 3), (12, 8), (12, 12))),
    Mission("scorched_earth",
            ((9, 2, 10, 4), (13, 11, 14, 13), (9, 11, 10, 13), (13, 2, 14, 4)),
            ((6, 3), (6, 12), (11, 8), (17, 3), (17, 12))),
    Mission("sweep",
            ((10, 0, 11, 3), (12, 12, 13, 15), (10, 7, 13, 8), (8, 11, 9, 12), (14, 3, 15, 4)),
            ((5, 4), (5, 11), (18, 4), (18, 11))),
)

# The model's units 0-3 (line, heavy, assault, scout); the player's are these mirrored, x -> 23 - x.
DEPLOYMENT: tuple[tuple[int, int], ...] = ((2, 7), (1, 9), (3, 11), (3, 4))


@dataclass(frozen=True)
class GameParams:
    """The scalar rules numbers (the defaults are the game's, docs/games/skirmish.md)."""

    rounds: int = 5
    vp_per_objective: int = 5
    control_range: int = 2
    charge_range: int = 6
    max_steps: int = 200


def deployment_cell(unit: int) -> tuple[int, int]:
    x, y = DEPLOYMENT[unit % UNITS_PER_SIDE]
    return (x, y) if unit < UNITS_PER_SIDE else (BOARD_W - 1 - x, y)


def blocked_grid(mission: Mission) -> list[bool]:
    """Row-major bool[BOARD_H * BOARD_W]: True where terrain blocks movement and sight."""
    grid = [False] * (BOARD_W * BOARD_H)
    for x0, y0, x1, y1 in mission.terrain:
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                grid[y * BOARD_W + x] = True
    return grid


def core_tables() -> dict[str, Any]:
    """The tables above as flat int lists, in the layout `ext.skirmish_core.SkirmishCore` takes."""
    params = GameParams()
    return {
        "mission_names": [m.name for m in MISSIONS],
        "profiles": [v for row in PROFILES for v in row],
        "blocked": [int(b) for m in MISSIONS for b in blocked_grid(m)],
        "objectives": [c for m in MISSIONS for k in range(MAX_OBJECTIVES)
                       for c in (m.objectives[k] if k < len(m.objectives) else (-1, -1))],
        "deployment": [c for u in range(NUM_UNITS) for c in deployment_cell(u)],
        "scalars": [params.rounds, params.vp_per_objective, params.control_range, params.charge_range],
    }


def wound_need(strength: int, toughness: int) -> int:
    """The D6 roll needed to wound."""
    if strength >= 2 * toughness:
        return 2
    if strength > toughness:
        return 3
    if strength == toughness:
        return 4
    if 2 * strength <= toughness:
        return 6
    return 5


def hit_faces(skill: int) -> int:
    """Faces of a d6 that hit (a 1 always misses)."""
    return 7 - max(skill, 2)


def unsaved_faces(save: int, ap: int) -> int:
    """Faces of a d6 that fail the save (roll - AP >= Sv saves, a 1 always fails)."""
    return 6 - max(0, 7 - max(save + ap, 2))


def charge_ways(distance: int) -> int:
    """How many of the 36 2D6 outcomes make a charge over `distance` cells (sum >= 2 * (distance - 1))."""
    need = 2 * (distance - 1)
    return sum(1 for a in range(1, 7) for b in range(1, 7) if a + b >= need)


def to_float32(value: float) -> float:
    """`value` rounded to the nearest float32 (what the core stores), as a Python float."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


def chebyshev(ax: int, ay: int, bx: int, by: int) -> int:
    return max(abs(ax - bx), abs(ay - by))


def line_of_sight(blocked: list[bool], ax: int, ay: int, bx: int, by: int) -> bool:
    """Bresenham from the lower-index cell to the other; True when no cell strictly between blocks."""
    if by * BOARD_W + bx < ay * BOARD_W + ax:
        ax, ay, bx, by = bx, by, ax, ay
    dx, dy = abs(bx - ax), -abs(by - ay)
    sx = 1 if ax < bx else -1
    sy = 1 if ay < by else -1
    err = dx + dy
    x, y = ax, ay
    while True:
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x += sx
        if e2 <= dx:
            err += dx
            y += sy
        if x == bx and y == by:
            return True
        if blocked[y * BOARD_W + x]:
            return False


class SkirmishGame:
    """One game of Skirmish, walked decision by decision; `reset()` starts the next game on the same
    generator. After `step`, read `observation()`, `legal_mask()`, `reward_parts`, `terminated`,
    `truncated` and `info(mode)`."""

    def __init__(self, seed: int, params: GameParams | None = None) -> None:
        self.params = params or GameParams()
        self.rng = Rng(seed)
        self.reset()

    # --- game flow -------------------------------------------------------------------------------

    def reseed(self, seed: int) -> None:
        self.rng = Rng(seed)
        self.reset()

    def reset(self) -> None:
        self.mission_index = self.rng.below(len(MISSIONS))
        self.mission = MISSIONS[self.mission_index]
        self.blocked = blocked_grid(self.mission)
        self.x = [deployment_cell(u)[0] for u in range(NUM_UNITS)]
        self.y = [deployment_cell(u)[1] for u in range(NUM_UNITS)]
        self.wounds = [PROFILES[u % UNITS_PER_SIDE][W] for u in range(NUM_UNITS)]
        self.vp = [0, 0]
        self.round = 1
        self.phase, self.unit = COMMAND, 0
        self.steps = 0
        self.end_reason = NOT_ENDED
        self.winner = 0
        self._clear_step_tallies()
        self._command(MODEL)
        self._walk_to_decision(MOVEMENT, 0)
        assert self.end_reason == NOT_ENDED, "a fresh game always starts with a decision"

    @property
    def terminated(self) -> bool:
        return self.end_reason not in (NOT_ENDED, TRUNCATED)

    @property
    def truncated(self) -> bool:
        return self.end_reason == TRUNCATED

    @property
    def over(self) -> bool:
        return self.end_reason != NOT_ENDED

    def step(self, action: int) -> None:
        """Play the pending decision with `action` and run the game on to the next decision or the end."""
        if self.over:
            raise ValueError("the game is over; call reset()")
        mask = self.legal_mask()
        if not 0 <= action < NUM_ACTIONS or not mask[action]:
            legal = [a for a in range(NUM_ACTIONS) if mask[a]]
            raise ValueError(f"illegal action {action} in {PHASE_NAMES[self.phase]} for unit {self.unit}; "
                             f"legal actions: {legal}")
        self._clear_step_tallies()
        self._apply(self.phase, self.unit, action)
        if not self.over:
            self._walk_to_decision(self.phase, self.unit + 1)
        self.steps += 1
        if not self.over and self.steps >= self.params.max_steps:
            self.end_reason = TRUNCATED

    def _clear_step_tallies(self) -> None:
        self.vp_gained = [0, 0]
        self.dealt = 0
        self.taken = 0
        self.outcome = 0

    def _walk_to_decision(self, phase: int, unit: int) -> None:
        while True:
            for u in range(unit, UNITS_PER_SIDE):
                if self._has_choice(phase, u):
                    self.phase, self.unit = phase, u
                    return
            if phase < CHARGE:
                phase, unit = phase + 1, 0
                continue
            self._fight(MODEL)
            if self.over:
                return
            self._player_turn()
            if self.over:
                return
            if self.round == self.params.rounds:
                self._end(ROUNDS_OVER)
                return
            self.round += 1
            self._command(MODEL)
            phase, unit = MOVEMENT, 0

    def _has_choice(self, phase: int, unit: int) -> bool:
        if self.wounds[unit] == 0 or self._engaged(unit):
            return False
        return any(self._legal(phase, unit)[1:])

    def _end(self, reason: int) -> None:
        self.end_reason = reason
        if reason == MODEL_DESTROYED:
            self.winner = -1
        elif reason == PLAYER_DESTROYED:
            self.winner = 1
        else:
            self.winner = (self.vp[0] > self.vp[1]) - (self.vp[0] < self.vp[1])
        self.outcome = self.winner

    # --- queries (uncached on purpose) -----------------------------------------------------------

    def _alive(self, u: int) -> bool:
        return self.wounds[u] > 0

    def _dist(self, i: int, j: int) -> int:
        return chebyshev(self.x[i], self.y[i], self.x[j], self.y[j])

    def _los(self, i: int, j: int) -> bool:
        return line_of_sight(self.blocked, self.x[i], self.y[i], self.x[j], self.y[j])

    @staticmethod
    def _enemies(u: int) -> range:
        return range(UNITS_PER_SIDE, NUM_UNITS) if u < UNITS_PER_SIDE else range(UNITS_PER_SIDE)

    def _engaged(self, u: int) -> bool:
        return any(self._alive(e) and self._dist(u, e) == 1 for e in self._enemies(u))

    def _free(self, x: int, y: int) -> bool:
        if not (0 <= x < BOARD_W and 0 <= y < BOARD_H) or self.blocked[y * BOARD_W + x]:
            return False
        return not any(self._alive(u) and self.x[u] == x and self.y[u] == y for u in range(NUM_UNITS))

    def controller(self, k: int) -> int:
        ox, oy = self.mission.objectives[k]
        oc = [0, 0]
        for u in range(NUM_UNITS):
            if self._alive(u) and chebyshev(self.x[u], self.y[u], ox, oy) <= self.params.control_range:
                oc[u // UNITS_PER_SIDE] += PROFILES[u % UNITS_PER_SIDE][OC]
        return (oc[0] > oc[1]) - (oc[0] < oc[1])

    def _nearest_objective_not_held(self, u: int, side_sign: int) -> int:
        """Index of the nearest objective whose controller is not `side_sign`, or -1."""
        best, best_d = -1, 1 << 30
        for k, (ox, oy) in enumerate(self.mission.objectives):
            if self.controller(k) != side_sign:
                d = chebyshev(self.x[u], self.y[u], ox, oy)
                if d < best_d:
                    best, best_d = k, d
        return best

    def _first_step_toward(self, u: int, tx: int, ty: int) -> int:
        """The compass index of the next king step toward (tx, ty), or -1 when no step improves."""
        x, y = self.x[u], self.y[u]
        best_key = (chebyshev(x, y, tx, ty), (x - tx) ** 2 + (y - ty) ** 2)
        best = -1
        for d, (dx, dy) in enumerate(COMPASS):
            nx, ny = x + dx, y + dy
            if self._free(nx, ny):
                key = (chebyshev(nx, ny, tx, ty), (nx - tx) ** 2 + (ny - ty) ** 2)
                if key < best_key:
                    best_key, best = key, d
        return best

    def _charge_cell(self, u: int, target: int) -> int:
        """Row-major index of the charge destination next to `target`, or -1 when none is free."""
        best, best_key = -1, (1 << 30, 1 << 30)
        for dx, dy in COMPASS:
            cx, cy = self.x[target] + dx, self.y[target] + dy
            if self._free(cx, cy):
                key = (chebyshev(cx, cy, self.x[u], self.y[u]), (cx - self.x[u]) ** 2 + (cy - self.y[u]) ** 2)
                if key < best_key:
                    best_key, best = key, cy * BOARD_W + cx
        return best

    def _can_shoot(self, u: int, e: int) -> bool:
        profile = PROFILES[u % UNITS_PER_SIDE]
        return self._alive(e) and self._dist(u, e) <= profile[RANGE] and self._los(u, e)

    def _can_charge(self, u: int, e: int) -> bool:
        return (self._alive(e) and self._dist(u, e) <= self.params.charge_range
                and self._charge_cell(u, e) >= 0)

    def _legal(self, phase: int, u: int) -> list[bool]:
        """bool[14] for unit u (alive, unengaged) in `phase`; hold is always legal."""
        mask = [False] * NUM_ACTIONS
        mask[HOLD] = True
        if phase == MOVEMENT:
            for d, (dx, dy) in enumerate(COMPASS):
                mask[1 + d] = self._free(self.x[u] + dx, self.y[u] + dy)
            k = self._nearest_objective_not_held(u, 1)
            if k >= 0:
                ox, oy = self.mission.objectives[k]
                mask[TOWARD_OBJECTIVE] = self._first_step_toward(u, ox, oy) >= 0
        else:
            can = self._can_shoot if phase == SHOOTING else self._can_charge
            for t in range(UNITS_PER_SIDE):
                mask[FIRST_TARGET + t] = can(u, UNITS_PER_SIDE + t)
        return mask

    def legal_mask(self) -> list[bool]:
        """bool[14] of the pending decision; hold only once the game is over."""
        if self.over:
            return [True] + [False] * (NUM_ACTIONS - 1)
        return self._legal(self.phase, self.unit)

    # --- actions ---------------------------------------------------------------------------------

    def _apply(self, phase: int, u: int, action: int) -> None:
        if action == HOLD:
            return
        if phase == MOVEMENT:
            if action == TOWARD_OBJECTIVE:
                ox, oy = self.mission.objectives[self._nearest_objective_not_held(u, 1)]
                self._move_toward(u, ox, oy)
            else:
                self._move_straight(u, *COMPASS[action - 1])
        elif phase == SHOOTING:
            self._shoot(u, UNITS_PER_SIDE + action - FIRST_TARGET)
        else:
            self._charge(u, UNITS_PER_SIDE + action - FIRST_TARGET)

    def _move_straight(self, u: int, dx: int, dy: int) -> None:
        for _ in range(PROFILES[u % UNITS_PER_SIDE][M]):
            if not self._free(self.x[u] + dx, self.y[u] + dy):
                return
            self.x[u] += dx
            self.y[u] += dy

    def _move_toward(self, u: int, tx: int, ty: int) -> None:
        for _ in range(PROFILES[u % UNITS_PER_SIDE][M]):
            d = self._first_step_toward(u, tx, ty)
            if d < 0:
                return
            self.x[u] += COMPASS[d][0]
            self.y[u] += COMPASS[d][1]

    def _shoot(self, u: int, target: int) -> None:
        p = PROFILES[u % UNITS_PER_SIDE]
        self._attacks(u, target, p[SHOTS], p[BS], p[S], p[AP], p[D])

    def _charge(self, u: int, target: int) -> None:
        cell = self._charge_cell(u, target)
        roll = self.rng.d6() + self.rng.d6()
        if roll >= 2 * (self._dist(u, target) - 1):
            self.x[u], self.y[u] = cell % BOARD_W, cell // BOARD_W

    def _attacks(self, u: int, target: int, count: int, skill: int, strength: int, ap: int, damage: int) -> None:
        tp = PROFILES[target % UNITS_PER_SIDE]
        need = wound_need(strength, tp[T])
        for _ in range(count):
            if self.wounds[target] == 0:
                return
            roll = self.rng.d6()
            if roll == 1 or roll < skill:
                continue
            roll = self.rng.d6()
            if roll == 1 or roll < need:
                continue
            roll = self.rng.d6()
            if roll != 1 and roll - ap >= tp[SV]:
                continue
            lost = min(damage, self.wounds[target])
            self.wounds[target] -= lost
            if target >= UNITS_PER_SIDE:
                self.dealt += lost
            else:
                self.taken += lost
            if self.wounds[target] == 0:
                self._casualty(target)

    def _casualty(self, target: int) -> None:
        side = range(UNITS_PER_SIDE) if target < UNITS_PER_SIDE else range(UNITS_PER_SIDE, NUM_UNITS)
        if not any(self._alive(v) for v in side):
            self._end(MODEL_DESTROYED if target < UNITS_PER_SIDE else PLAYER_DESTROYED)

    def _command(self, side: int) -> None:
        if self.round < 2:
            return
        sign = 1 if side == MODEL else -1
        held = sum(1 for k in range(len(self.mission.objectives)) if self.controller(k) == sign)
        gained = held * self.params.vp_per_objective
        self.vp[side] += gained
        self.vp_gained[side] += gained

    def _fight(self, side: int) -> None:
        first = range(UNITS_PER_SIDE) if side == MODEL else range(UNITS_PER_SIDE, NUM_UNITS)
        second = range(UNITS_PER_SIDE, NUM_UNITS) if side == MODEL else range(UNITS_PER_SIDE)
        for group in (first, second):
            for u in group:
                if not self._alive(u):
                    continue
                target, fewest = -1, 1 << 30
                for e in self._enemies(u):
                    if self._alive(e) and self._dist(u, e) == 1 and self.wounds[e] < fewest:
                        target, fewest = e, self.wounds[e]
                if target < 0:
                    continue
                p = PROFILES[u % UNITS_PER_SIDE]
                self._attacks(u, target, p[A], p[WS], p[MS], p[MAP], p[MD])
                if self.over:
                    return

    # --- the scripted player ---------------------------------------------------------------------

    def _expected_shooting(self, u: int, e: int) -> int:
        p, tp = PROFILES[u % UNITS_PER_SIDE], PROFILES[e % UNITS_PER_SIDE]
        return (p[SHOTS] * hit_faces(p[BS]) * (7 - wound_need(p[S], tp[T])) * unsaved_faces(tp[SV], p[AP])
                * min(p[D], self.wounds[e]))

    def _expected_melee(self, u: int, e: int) -> int:
        p, tp = PROFILES[u % UNITS_PER_SIDE], PROFILES[e % UNITS_PER_SIDE]
        return (p[A] * hit_faces(p[WS]) * (7 - wound_need(p[MS], tp[T])) * unsaved_faces(tp[SV], p[MAP])
                * min(p[MD], self.wounds[e]))

    def _best_shot(self, u: int) -> tuple[int, int]:
        """(target, expected damage) of the player's best shot for u, (-1, 0) when none."""
        best, best_score = -1, 0
        for e in range(UNITS_PER_SIDE):
            if self._can_shoot(u, e):
                score = self._expected_shooting(u, e)
                if score > best_score:
                    best, best_score = e, score
        return best, best_score

    def _player_turn(self) -> None:
        self._command(PLAYER)
        units = range(UNITS_PER_SIDE, NUM_UNITS)
        for u in units:
            if not self._alive(u) or self._engaged(u):
                continue
            k = self._nearest_objective_not_held(u, -1)
            if k >= 0:
                tx, ty = self.mission.objectives[k]
            else:
                nearest, nearest_d = -1, 1 << 30
                for e in range(UNITS_PER_SIDE):
                    if self._alive(e) and self._dist(u, e) < nearest_d:
                        nearest, nearest_d = e, self._dist(u, e)
                tx, ty = self.x[nearest], self.y[nearest]
            self._move_toward(u, tx, ty)
        for u in units:
            if self._alive(u) and not self._engaged(u):
                target, _ = self._best_shot(u)
                if target >= 0:
                    self._shoot(u, target)
                    if self.over:
                        return
        for u in units:
            if not self._alive(u) or self._engaged(u):
                continue
            best, best_score = -1, 0
            for e in range(UNITS_PER_SIDE):
                if self._can_charge(u, e):
                    score = self._expected_melee(u, e) * charge_ways(self._dist(u, e))
                    if score > best_score:
                        best, best_score = e, score
            if best >= 0 and best_score > 36 * self._best_shot(u)[1]:
                self._charge(u, best)
        self._fight(PLAYER)

    # --- what the agent sees ---------------------------------------------------------------------

    def observation(self) -> list[float]:
        """float[103] as the module docstring lays it out (the caller casts to float32)."""
        obs: list[float] = []
        for u in range(NUM_UNITS):
            kind = u % UNITS_PER_SIDE
            onehot = [1.0 if t == kind else 0.0 for t in range(UNITS_PER_SIDE)]
            if self._alive(u):
                obs += [self.x[u] / BOARD_W, self.y[u] / BOARD_H, self.wounds[u] / PROFILES[kind][W], 1.0,
                        1.0 if self._engaged(u) else 0.0]
            else:
                obs += [0.0] * 5
            obs += onehot
        for k in range(MAX_OBJECTIVES):
            if k < len(self.mission.objectives):
                ox, oy = self.mission.objectives[k]
                obs += [ox / BOARD_W, oy / BOARD_H, 1.0, float(self.controller(k))]
            else:
                obs += [0.0] * 4
        obs.append(self.round / self.params.rounds)
        obs += [1.0 if not self.over and p == self.phase else 0.0 for p in range(5)]
        obs += [1.0 if not self.over and u == self.unit else 0.0 for u in range(UNITS_PER_SIDE)]
        obs.append((self.vp[0] - self.vp[1]) / 50)
        return obs

    def _reward_parts_exact(self) -> tuple[float, float, float]:
        return ((self.vp_gained[0] - self.vp_gained[1]) / 10, (self.dealt - self.taken) / 20,
                float(self.outcome))

    @property
    def reward_parts(self) -> tuple[float, float, float]:
        """(vp, damage, outcome) of the last step, each rounded to float32."""
        vp, damage, outcome = self._reward_parts_exact()
        return (to_float32(vp), to_float32(damage), outcome)

    @property
    def reward(self) -> float:
        """The last step's reward: the parts summed in double, then rounded to float32."""
        return to_float32(sum(self._reward_parts_exact()))

    def info(self, mode: str = "train") -> dict[str, Any]:
        info: dict[str, Any] = {
            "model_health": sum(self.wounds[:UNITS_PER_SIDE]),
            "player_health": sum(self.wounds[UNITS_PER_SIDE:]),
            "in_attack": any(self._alive(u) and self._engaged(u) for u in range(UNITS_PER_SIDE)),
            "model_vp": self.vp[0],
            "player_vp": self.vp[1],
            "mission": self.mission.name,
            "end_reason": END_REASONS[self.end_reason],
            "winner": WINNERS[self.winner] if self.terminated else "",
            "turn": self.round,
        }
        if mode == "debug":
            vp, damage, outcome = self.reward_parts
            info["positions"] = [(self.x[u], self.y[u]) if self._alive(u) else (-1, -1) for u in range(NUM_UNITS)]
            info["wounds"] = list(self.wounds)
            info["phase"] = "" if self.over else PHASE_NAMES[self.phase]
            info["acting_unit"] = -1 if self.over else self.unit
            info["reward_parts"] = {"vp": vp, "damage": damage, "outcome": outcome}
        return info
