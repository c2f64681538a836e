"""The Duel reference rules (envs/duel/rules.py) against cases derived by hand from docs/games/duel.md,
with the generator's draws scripted so each case fixes its accuracy and roll draws."""

from __future__ import annotations

import numpy as np
import pytest

from envs.duel import rules
from envs.duel.rules import Creature, DuelGame, Side
from envs.rng import Rng

EMBERFOX, TIDECRAB, THORNBEAST, CINDERBAT, REEFEEL, STONEBEAR = range(6)


class ScriptedDraws:
    """An `Rng` stand-in whose `below(n)` answers from a list (each answer checked < n); all must be used."""

    def __init__(self, draws: list[int]) -> None:
        self.draws = list(draws)

    def below(self, n: int) -> int:
        value = self.draws.pop(0)
        assert 0 <= value < n
        return value


def side(*species: int, active: int = 0) -> Side:
    return Side([Creature(s, rules.SPECIES[s].hp) for s in species], active=active)


def game_with(me: Side, foe: Side, draws: list[int], turn: int = 0) -> DuelGame:
    game = DuelGame(Rng(0))
    game.sides = [me, foe]
    game.turn = turn
    game.rng = ScriptedDraws(draws)  # type: ignore[assignment]
    return game


def test_damage_formula_by_hand() -> None:
    blaze, tackle = rules.MOVES[3], rules.MOVES[0]
    # 90 * 12 * 4 * 100 // (11 * 800) = 49; at roll 85: 367200 // 8800 = 41
    assert rules.damage(Creature(EMBERFOX, 60), blaze, Creature(THORNBEAST, 80), 100) == 49
    assert rules.damage(Creature(EMBERFOX, 60), blaze, Creature(THORNBEAST, 80), 85) == 41
    # 40 * 10 * 2 * 85 // (12 * 800) = 7
    assert rules.damage(Creature(TIDECRAB, 70), tackle, Creature(STONEBEAR, 90), 85) == 7


def test_faster_attacks_first_and_a_ko_stops_the_slower() -> None:
    # cinderbat (speed 16) blazes (slot 1) a thornbeast (speed 8) at 30 HP: accuracy 10 < 70 hits, roll
    # 85 + 15: 90 * 14 * 4 * 100 // (11 * 800) = 57 -> capped at 30, KO; the thornbeast never swings.
    me, foe = side(CINDERBAT, TIDECRAB), side(THORNBEAST, STONEBEAR)
    foe.team[0].hp = 30
    game = game_with(me, foe, [10, 15])
    result = game.play_turn((1, 2))
    assert foe.team[0].hp == 0 and me.team[0].hp == 50
    assert result.hp_lost == [0, 30] and not result.over
    assert game.reward(result, "hp") == pytest.approx(30 / 500, rel=1e-6)
    assert game.reward(result, "none") == 0.0
    assert rules.legal_actions(foe) == [5]  # KO active: switch to the stonebear only
    assert game.observation()[27 + 1] == 0.0  # their slot 0 shows KO


def test_equal_speed_is_one_draw_and_a_miss_draws_no_roll() -> None:
    me, foe = side(EMBERFOX), side(EMBERFOX)
    # tie draw 1: side 1 first; its tackle (slot 0, accuracy 100) hits at 99 < 100, roll 85 + 0:
    # 40 * 12 * 2 * 85 // (9 * 800) = 11; then side 0's blaze misses (accuracy draw 70 >= 70), no roll.
    game = game_with(me, foe, [1, 99, 0, 70])
    result = game.play_turn((2, 0))
    assert result.hp_lost == [11, 0] and me.team[0].hp == 49 and game.rng.draws == []  # type: ignore[attr-defined]


def test_switch_comes_before_the_attack_and_pass_heals_after() -> None:
    # Side 0 switches to the tidecrab; side 1's emberfox embers (45 fire, 100) the incoming tidecrab:
    # 45 * 12 * 1 * 100 // (13 * 800) = 5. Then side 1 had attacked, side 0 switched: no heal.
    me, foe = side(THORNBEAST, TIDECRAB), side(EMBERFOX)
    game = game_with(me, foe, [0, 15])
    game.play_turn((rules.SWITCH + 1, 1))
    assert me.active == 1 and me.team[1].hp == 65 and me.team[0].hp == 80
    # A pass heals max HP // 8 = 8 after the hit: 65 - 5 + 8 = 68, capped at 70 later.
    game.rng = ScriptedDraws([0, 15])  # type: ignore[assignment]
    game.play_turn((rules.PASS, 1))
    assert me.team[1].hp == 68
    game.rng = ScriptedDraws([80])  # type: ignore[assignment]  # the blaze misses (80 >= 70): no roll; 68 + 8 caps at 70
    game.play_turn((rules.PASS, 2))
    assert me.team[1].hp == 70
    obs = game.observation()
    assert obs[rules.OBS_LAST_ACTION + 2] == 1.0 and obs[rules.OBS_TURN] == pytest.approx(3 / 40)


def test_last_creature_ko_ends_the_game_with_the_outcome_only() -> None:
    me, foe = side(CINDERBAT), side(STONEBEAR)
    foe.team = [*foe.team[:1], Creature(EMBERFOX, 0), Creature(TIDECRAB, 0)]
    foe.team[0].hp = 5
    game = game_with(me, foe, [0, 0])
    result = game.play_turn((0, 3))  # cinderbat embers first (it is faster), the pass never heals a KO
    assert result.over and result.winner == 0 and game.reward(result, "hp") == 1.0
    assert game.end_info() == {"winner": 0, "turns": 1, "alive": (1, 0)}
    assert game.legal_mask() == [False] * rules.NUM_ACTIONS
    with pytest.raises(ValueError, match="the game is over"):
        game.play_turn((0, 0))


def test_turn_limit_is_a_draw() -> None:
    game = game_with(side(STONEBEAR), side(STONEBEAR), [], turn=rules.PARAMS.max_turns - 1)
    result = game.play_turn((rules.PASS, rules.PASS))
    assert result.over and result.winner == -1 and game.reward(result, "hp") == 0.0


def test_illegal_actions_name_the_legal_ones() -> None:
    me = side(EMBERFOX, TIDECRAB, STONEBEAR)
    me.team[2].hp = 0
    game = game_with(me, side(TIDECRAB), [])
    assert rules.legal_actions(me) == [0, 1, 2, 3, 5]
    with pytest.raises(ValueError, match=r"action 6 is illegal for side 0; legal: \[0, 1, 2, 3, 5\]"):
        game.play_turn((6, 0))


def test_scripted_players_by_hand() -> None:
    # Against a thornbeast (grass): emberfox's best is blaze (slot 2: 90*70*4 beats ember 45*100*4).
    me, foe = side(EMBERFOX, TIDECRAB, REEFEEL), side(THORNBEAST)
    assert rules.greedy_player(me, foe, ScriptedDraws([])) == 2  # type: ignore[arg-type]
    # Sensible: the bench's best matchup vs the thornbeast is the reefeel's torrent 90 * 70 * 1 * 13 = 81900
    # (the tidecrab's tackle 80000), below twice the emberfox's 90 * 70 * 4 * 12 = 302400: no switch.
    assert rules.sensible_player(me, foe, ScriptedDraws([])) == 2  # type: ignore[arg-type]
    # Against a reefeel (water), the emberfox's best is tackle 40*100*2*12 = 96000; the bench's reefeel leaf
    # 45*100*4*13 = 234000 >= 2 x 96000: switch to slot 2.
    foe = side(REEFEEL)
    assert rules.sensible_player(me, foe, ScriptedDraws([])) == rules.SWITCH + 2  # type: ignore[arg-type]
    me.team[0].hp = 0
    assert rules.greedy_player(me, foe, ScriptedDraws([])) == rules.SWITCH + 1  # type: ignore[arg-type]
    assert rules.sensible_player(me, foe, ScriptedDraws([])) == rules.SWITCH + 2  # type: ignore[arg-type]
    # Random: one draw over the ascending legal actions [5, 6] (active KO): draw 1 -> 6.
    assert rules.random_player(me, foe, ScriptedDraws([1])) == 6  # type: ignore[arg-type]


def test_deal_is_two_shuffles_in_side_order() -> None:
    rng, check = Rng(42), Rng(42)
    game = DuelGame(rng)
    for s in game.sides:
        ids = list(range(rules.NUM_SPECIES))
        check.shuffle(ids)
        assert [c.species for c in s.team] == ids[:3]
        assert [c.hp for c in s.team] == [rules.SPECIES[i].hp for i in ids[:3]] and s.active == 0
    assert (rng.s0, rng.s1) == (check.s0, check.s1)
    obs = game.observation()
    assert obs.shape == (rules.OBS_SIZE,) and obs[rules.OBS_LAST_ACTION:].sum() == 0
    assert np.isclose(obs[0], game.sides[0].team[0].hp / 100)


def test_tables_are_plain_ints_and_lists() -> None:
    tables = rules.core_tables()
    assert tables["species_moves"][EMBERFOX] == [0, 2, 3] and tables["effect"][1][3] == 4
    assert tables["max_turns"] == 40 and all(isinstance(v, int | list) for v in tables.values())
