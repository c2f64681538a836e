"""Unit tests of the Skirmish rules reference: the to-hit/to-wound/save tables, line of sight, objective
control, charges, the order of the dice and every end_reason. The core is held to the same behaviour by
tests/test_skirmish_differential.py."""

from __future__ import annotations

import pytest

from envs.skirmish import rules
from envs.skirmish.rules import CHARGE, MOVEMENT, SHOOTING, SkirmishGame


class ScriptedDice:
    """Stands in for the game's Rng: hands out the given d6 rolls in order, and fails when they run out."""

    def __init__(self, rolls: list[int]) -> None:
        self.rolls = list(rolls)

    def d6(self) -> int:
        return self.rolls.pop(0)


def open_game(mission: int = 0) -> SkirmishGame:
    """A fresh game forced onto `mission`, every unit moved to the board's far corners out of play."""
    game = SkirmishGame(seed=1)
    game.mission_index, game.mission = mission, rules.MISSIONS[mission]
    game.blocked = rules.blocked_grid(game.mission)
    return game


def place(game: SkirmishGame, unit: int, x: int, y: int) -> None:
    game.x[unit], game.y[unit] = x, y


def only_units(game: SkirmishGame, keep: dict[int, tuple[int, int]]) -> None:
    """Destroys every unit not in `keep` and places the kept ones."""
    for u in range(rules.NUM_UNITS):
        if u in keep:
            place(game, u, *keep[u])
        else:
            game.wounds[u] = 0


@pytest.mark.parametrize(("strength", "toughness", "need"), [
    (8, 4, 2), (9, 4, 2), (5, 4, 3), (9, 5, 3), (4, 4, 4), (3, 4, 5), (4, 7, 5), (2, 4, 6), (3, 6, 6),
])
def test_wound_table(strength: int, toughness: int, need: int) -> None:
    assert rules.wound_need(strength, toughness) == need


@pytest.mark.parametrize(("skill", "faces"), [(1, 5), (2, 5), (3, 4), (4, 3), (6, 1)])
def test_hit_faces_never_count_a_one(skill: int, faces: int) -> None:
    assert rules.hit_faces(skill) == faces


@pytest.mark.parametrize(("save", "ap", "unsaved"), [(2, 0, 1), (3, 1, 3), (4, 0, 3), (5, 3, 6), (2, 1, 2)])
def test_save_table(save: int, ap: int, unsaved: int) -> None:
    assert rules.unsaved_faces(save, ap) == unsaved
    brute = sum(1 for roll in range(1, 7) if roll == 1 or roll - ap < save)
    assert brute == unsaved


@pytest.mark.parametrize(("distance", "ways"), [(2, 36), (3, 33), (4, 26), (5, 15), (6, 6), (7, 1)])
def test_charge_odds(distance: int, ways: int) -> None:
    assert rules.charge_ways(distance) == ways


def test_line_of_sight_is_blocked_by_terrain_only_between_the_ends() -> None:
    blocked = [False] * (rules.BOARD_W * rules.BOARD_H)
    blocked[5 * rules.BOARD_W + 5] = True
    assert not rules.line_of_sight(blocked, 2, 5, 8, 5)
    assert not rules.line_of_sight(blocked, 8, 5, 2, 5)
    assert rules.line_of_sight(blocked, 2, 4, 8, 4)
    assert not rules.line_of_sight(blocked, 3, 3, 7, 7)  # the diagonal runs through (5, 5)
    assert rules.line_of_sight(blocked, 4, 5, 5, 6)  # neighbours always see each other
    assert not rules.line_of_sight(blocked, 4, 4, 6, 6)


def test_line_of_sight_is_symmetric_on_every_mission() -> None:
    for mission in rules.MISSIONS:
        blocked = rules.blocked_grid(mission)
        for ax, ay, bx, by in [(0, 0, 23, 15), (3, 7, 20, 2), (5, 12, 18, 6), (11, 0, 12, 15)]:
            assert rules.line_of_sight(blocked, ax, ay, bx, by) == rules.line_of_sight(blocked, bx, by, ax, ay)


def test_units_in_the_open_can_be_shot_and_terrain_hides_them() -> None:
    game = open_game(mission=0)  # take_and_hold: a block at (11-12, 5-6)
    only_units(game, {0: (10, 4), 4: (14, 7), 5: (14, 3)})
    game.phase, game.unit = SHOOTING, 0
    mask = game.legal_mask()
    assert not mask[10]  # line 0 -> line 4 crosses the block
    assert mask[11]  # heavy 5 in the open within 12 cells
    assert not mask[12] and not mask[13]  # destroyed units


def test_objective_control_sums_oc_within_two_cells() -> None:
    game = open_game(mission=0)
    ox, oy = game.mission.objectives[0]
    only_units(game, {0: (ox - 2, oy), 5: (ox + 1, oy), 7: (ox + 2, oy + 2)})
    assert game.controller(0) == 0  # line OC 2 against heavy 1 + scout 1: a tie
    place(game, 7, ox + 3, oy)
    assert game.controller(0) == 1  # the scout is 3 cells away
    game.wounds[0] = 0
    assert game.controller(0) == -1  # a destroyed unit controls nothing
    assert game.controller(1) == 0


def test_command_phase_scores_from_round_two() -> None:
    game = open_game(mission=0)
    ox, oy = game.mission.objectives[1]
    only_units(game, {0: (ox, oy), 4: (20, 0)})
    game.round = 1
    game._command(rules.MODEL)
    assert game.vp == [0, 0]
    game.round = 2
    game._command(rules.MODEL)
    assert game.vp == [5, 0] and game.vp_gained == [5, 0]


def test_charge_succeeds_on_twice_the_gap_and_lands_next_to_the_target() -> None:
    for rolls, lands in [([3, 3], True), ([2, 3], False)]:
        game = open_game(mission=1)  # scorched_earth: open around (4-8, 6-9)
        only_units(game, {2: (4, 8), 4: (8, 8)})
        game.phase, game.unit = CHARGE, 2
        assert game.legal_mask()[10]
        game.rng = ScriptedDice(rolls)  # type: ignore[assignment]
        game._apply(CHARGE, 2, 10)
        assert game.rng.rolls == []  # exactly two dice
        assert (game.x[2], game.y[2]) == ((7, 8) if lands else (4, 8))


def test_charge_needs_range_and_a_free_cell() -> None:
    game = open_game(mission=1)
    only_units(game, {2: (1, 8), 4: (8, 8)})
    assert not game._can_charge(2, 4)  # 7 cells away
    place(game, 2, 4, 8)
    for dx, dy in rules.COMPASS:
        game.blocked[(8 + dy) * rules.BOARD_W + 8 + dx] = True
    assert not game._can_charge(2, 4)  # surrounded
    game.blocked[9 * rules.BOARD_W + 7] = False
    assert game._charge_cell(2, 4) == 9 * rules.BOARD_W + 7
    game.blocked[8 * rules.BOARD_W + 7] = False
    assert game._charge_cell(2, 4) == 8 * rules.BOARD_W + 7  # the nearer free cell wins


def test_dice_order_is_hit_wound_save_attack_by_attack() -> None:
    game = open_game(mission=1)
    only_units(game, {1: (4, 8), 4: (10, 8)})
    game.phase, game.unit = SHOOTING, 1
    # Heavy (3 shots, BS 3, S 9, AP 3, D 3) at line (T 4, Sv 3): wound on 2+, saved on 6 only.
    # Attack 1: hit, wound, save fails (5 - 3 < 3); 2: miss (2 < BS); 3: hit, wound, saved (6 - 3 >= 3).
    game.rng = ScriptedDice([3, 2, 5, 2, 4, 3, 6])  # type: ignore[assignment]
    game._apply(SHOOTING, 1, 10)
    assert game.rng.rolls == []
    assert game.wounds[4] == 10 - 3
    assert game.dealt == 3


def test_attacks_stop_when_the_target_dies() -> None:
    game = open_game(mission=1)
    only_units(game, {1: (4, 8), 4: (10, 8), 5: (20, 0)})
    game.wounds[4] = 2
    game.rng = ScriptedDice([3, 2, 5])  # type: ignore[assignment]
    game._apply(SHOOTING, 1, 10)
    assert game.wounds[4] == 0 and game.dealt == 2 and game.rng.rolls == []


def test_end_player_destroyed() -> None:
    game = open_game(mission=1)
    only_units(game, {1: (4, 8), 4: (10, 8)})
    game.wounds[4] = 1
    game.phase, game.unit = SHOOTING, 1
    game.rng = ScriptedDice([3, 2, 5])  # type: ignore[assignment]
    game.step(10)
    assert (game.terminated, game.truncated) == (True, False)
    assert game.info()["end_reason"] == "player_destroyed" and game.info()["winner"] == "model"
    assert game.reward_parts[2] == 1.0 and game.legal_mask() == [True] + [False] * 13


def test_end_model_destroyed() -> None:
    game = open_game(mission=1)
    only_units(game, {0: (4, 8), 6: (5, 8)})  # engaged: the model's line can only hold
    game.wounds[0] = 1
    # No decision left: the line fights first (5 misses), the assault strikes back: hit, wound, unsaved.
    game.rng = ScriptedDice([1] * 5 + [4, 4, 1])  # type: ignore[assignment]
    game._walk_to_decision(MOVEMENT, 0)
    assert game.rng.rolls == []
    assert game.terminated and game.info()["end_reason"] == "model_destroyed"
    assert game.info()["winner"] == "player" and game.outcome == -1


def test_end_rounds_and_truncated() -> None:
    game = SkirmishGame(seed=3)
    steps = 0
    while not game.over:
        game.step(0)
        steps += 1
    assert game.info()["end_reason"] in ("rounds", "model_destroyed")  # holding never destroys the player
    if game.info()["end_reason"] == "rounds":
        assert game.info()["turn"] == 5
    short = SkirmishGame(seed=3, params=rules.GameParams(max_steps=2))
    short.step(0)
    assert not short.over
    short.step(0)
    assert (short.terminated, short.truncated) == (False, True)
    assert short.info()["end_reason"] == "truncated" and short.info()["winner"] == ""
    assert short.reward_parts[2] == 0.0


def test_rounds_end_with_more_vp_winning() -> None:
    game = SkirmishGame(seed=3)
    game.round = game.params.rounds
    game.vp = [10, 5]
    game._end(rules.ROUNDS_OVER)
    assert game.info()["winner"] == "model" and game.outcome == 1
    game.vp = [5, 5]
    game._end(rules.ROUNDS_OVER)
    assert game.info()["winner"] == "draw" and game.outcome == 0


def test_observation_layout() -> None:
    game = SkirmishGame(seed=0)
    obs = game.observation()
    assert len(obs) == rules.OBS_SIZE == 103
    x, y = rules.deployment_cell(0)
    assert obs[:9] == [x / 24, y / 16, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    tail = obs[rules.NUM_UNITS * 9 + rules.MAX_OBJECTIVES * 4:]
    assert tail == [0.2, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]  # round 1, movement, unit 0


def test_game_is_reproducible_from_seed_and_actions() -> None:
    def trajectory(seed: int) -> list[list[float]]:
        game, out = SkirmishGame(seed), []
        while not game.over:
            legal = [a for a, ok in enumerate(game.legal_mask()) if ok]
            game.step(legal[len(out) % len(legal)])
            out.append(game.observation())
        return out

    assert trajectory(11) == trajectory(11) != trajectory(12)
