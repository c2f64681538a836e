"""Beasty Bar's scripted players and the option `first`: hand-derived choices of each player, properties of
every player on reachable positions (hypothesis: a legal action, exactly one draw, blind to what its
observation hides), that no two players are copies, and whole games between every pair of players in
the core (`play_games`) against the reference (`rules.play_game`), from both seats."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.beastybar import rules
from envs.beastybar.rules import KANGAROO, MONKEY, SEAL, SKUNK, SNAKE, GameState
from envs.rng import Rng
from ext import beastybar_core

TABLES = rules.core_tables()
PLAYERS = rules.OPPONENTS


def position() -> GameState:
    # B to move on A:lion A:zebra B:seal B:parrot holding snake, monkey, skunk, kangaroo; A has nothing
    # left (the rules tests' opponent position). Each play by hand, from B's side (B_me, B_them, T_me,
    # T_them; queue after; Q; V = 5 N + Q):
    #   snake 3:  sorts lion zebra seal parrot + snake 9 -> bar A:lion B:snake, out B:parrot
    #             (2, 2, 4, 0); A:zebra B:seal; Q = -4*3 + 2*2 = -8; V = -8
    #   monkey 7: alone, nothing -> bar A:lion A:zebra, out B:monkey (0, 6, 3, 0); B:seal B:parrot;
    #             Q = 2*3 + 4*2 = 14; V = -30 + 14 = -16
    #   skunk 8:  throws the two strongest, lion and zebra (0, 0, 0, 6); B:seal B:parrot B:skunk;
    #             Q = 6 + 8 + 4 = 18; V = 18
    #   kangaroo jump 1 (10): -> bar A:lion A:zebra, out B:parrot (0, 6, 4, 0); B:seal B:kangaroo; V = -16
    #   kangaroo jump 2 (11): -> bar A:lion A:zebra, out B:parrot (0, 6, 4, 0); B:kangaroo B:seal; V = -14
    from test_beastybar_rules import _opponent_state  # pytest puts tests/ on sys.path

    return _opponent_state()


# From the table above: heuristic N = 0 for snake and skunk; aggressive 3 B_me - B_them + 2 T_them is 4 for
# the snake and 12 for the skunk; defensive B_me - 3 B_them - 2 T_me is -12 for the snake, 0 for the skunk;
# queue V is best for the skunk; skunk N + 3 (6 - 0) + 1 = 19 for the skunk. A has nothing left to play, so
# outcome scores V as queue does.
BEST = {"heuristic": [SNAKE, SKUNK], "aggressive": [SKUNK], "defensive": [SKUNK], "queue": [SKUNK],
        "skunk": [SKUNK], "outcome": [SKUNK], "random": [SNAKE, MONKEY, SKUNK, 10, 11]}  # fmt: skip


@pytest.mark.parametrize("player", sorted(BEST))
@pytest.mark.parametrize("seed", range(4))
def test_each_player_picks_among_its_best_with_one_draw(player: str, seed: int) -> None:
    rng, expected = Rng(seed), Rng(seed)
    best = BEST[player]
    assert rules.OPPONENT_POLICIES[player](position(), rng) == best[expected.below(len(best))]
    assert rng.next() == expected.next()


@pytest.mark.parametrize("seed", range(8))
def test_noisy_weighs_each_action_by_how_far_its_value_is_below_the_best(seed: int) -> None:
    # V: snake -8, monkey -16, skunk 18, kangaroo 1 -16, kangaroo 2 -14: the skunk weighs 2**10, each
    # other action is 26 or more below it and weighs 1.
    rng, expected = Rng(seed), Rng(seed)
    draw = expected.below(1028)  # walks the weights 1, 1, 1024, 1, 1 of the actions 3, 7, 8, 10, 11
    choice = [SNAKE, MONKEY][draw] if draw < 2 else SKUNK if draw < 1026 else [10, 11][draw - 1026]
    assert rules.noisy_opponent(position(), rng) == choice
    assert rng.next() == expected.next()


def test_noisy_takes_worse_plays_sometimes_and_the_best_most_often() -> None:
    state = rules.deal(Rng(4))
    legal = state.legal_actions()
    values = {a: rules.play_effect(state.queue, state.current_player, a, state.current_player).value for a in legal}
    choices = [rules.noisy_opponent(state, Rng(seed)) for seed in range(400)]
    best = max(values.values())
    assert len(set(values.values())) > 1
    assert sum(values[c] == best for c in choices) > 200
    assert any(values[c] < best for c in choices)


def test_outcome_looks_one_reply_ahead_where_queue_does_not() -> None:
    # A to move on B:snake B:hippo, holding the kangaroo; B has only the seal left. From A's side:
    #   jump 1: B:snake A:kangaroo B:hippo, the hippo recurs past both: B:hippo B:snake A:kangaroo,
    #           Q = -2*3 - 2*2 + 4*1 = -6. Seal: reversed B:seal A:kangaroo B:snake B:hippo, the hippo
    #           passes all three: B:hippo B:seal A:kangaroo B:snake, Q = -6 - 4 + 4 = -6.
    #   jump 2: A:kangaroo B:snake B:hippo, the hippo passes both: B:hippo A:kangaroo B:snake,
    #           Q = -6 + 8 - 2 = 0. Seal: B:seal B:snake A:kangaroo B:hippo, the hippo passes all:
    #           B:hippo B:seal B:snake A:kangaroo, Q = -6 - 4 - 2 = -12.
    # queue sees 0 > -6 and jumps 2; outcome sees the seal coming (-6 > -12) and jumps 1.
    state = GameState(hands=[{KANGAROO}, set()], piles=[[], [SEAL]], first=0,
                      queue=[(1, SNAKE), (1, rules.HIPPO)], turn=20)
    for seed in range(4):
        assert rules.queue_opponent(state, Rng(seed)) == 11
        assert rules.outcome_opponent(state, Rng(seed)) == 10


# --- properties on reachable positions -------------------------------------------------------------------


def reachable(seed: int, turns: int, first: str = "random") -> GameState:
    """The position after `turns` random legal plays of the game dealt from `seed`."""
    state, rng = rules.deal(Rng(seed), first=first), Rng(seed + 1)
    for _ in range(turns):
        rules.play_turn(state, rules.random_opponent(state, rng))
    return state


def hide_reshuffled(state: GameState, shuffle_seed: int) -> GameState:
    """`state` with what the player to move cannot see redrawn: which of the other's unplayed species are
    in hand, and the order of both draw piles."""
    other = copy.deepcopy(state)
    me, them = state.current_player, 1 - state.current_player
    rng = Rng(shuffle_seed)
    unplayed = sorted(state.hands[them] | set(state.piles[them]))
    rng.shuffle(unplayed)
    held = len(state.hands[them])
    other.hands[them], other.piles[them] = set(unplayed[:held]), unplayed[held:]
    rng.shuffle(other.piles[me])
    return other


positions = given(seed=st.integers(0, 2**32), turns=st.integers(0, 23), player=st.sampled_from(PLAYERS),
                  draw_seed=st.integers(0, 2**32))


@settings(max_examples=150, deadline=None)
@positions
def test_every_player_plays_a_legal_action_with_exactly_one_draw(seed: int, turns: int, player: str,
                                                                   draw_seed: int) -> None:
    state = reachable(seed, turns)
    rng, expected = Rng(draw_seed), Rng(draw_seed)
    assert rules.OPPONENT_POLICIES[player](state, rng) in state.legal_actions()
    expected.next()
    assert (rng.s0, rng.s1, rng.s2, rng.s3) == (expected.s0, expected.s1, expected.s2, expected.s3)


@settings(max_examples=150, deadline=None)
@positions
def test_players_see_only_their_observation(seed: int, turns: int, player: str, draw_seed: int) -> None:
    state = reachable(seed, turns)
    policy = rules.OPPONENT_POLICIES[player]
    assert policy(hide_reshuffled(state, seed + turns), Rng(draw_seed)) == policy(state, Rng(draw_seed))


def test_no_two_players_are_copies() -> None:
    # Same position, same draw: two players choose alike only where their choices coincide. Over 300
    # positions every pair differs in at least 5% of them. The closest pairs (about 7% and 10% when
    # written): heuristic and random, as the heuristic has a preference only when a play fills the
    # queue, and noisy and queue, noisy being queue's values drawn with weights.
    states = [reachable(seed, seed % 24) for seed in range(300)]
    choices = {name: [policy(state, Rng(i)) for i, state in enumerate(states)]
               for name, policy in rules.OPPONENT_POLICIES.items()}
    for a in PLAYERS:
        for b in PLAYERS[PLAYERS.index(a) + 1:]:
            differ = sum(x != y for x, y in zip(choices[a], choices[b], strict=True))
            assert differ >= 15, (a, b, differ)


# --- who starts -------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**64 - 1))
def test_first_fixes_the_starter_and_keeps_the_deal(seed: int) -> None:
    deals = {first: rules.deal(Rng(seed), first=first) for first in rules.FIRSTS}
    assert deals["agent"].first == 0 and deals["opponent"].first == 1
    for state in deals.values():
        assert (state.hands, state.piles) == (deals["random"].hands, deals["random"].piles)
    rngs = {first: Rng(seed) for first in rules.FIRSTS}
    for first, rng in rngs.items():
        rules.deal(rng, first=first)
    assert len({(r.s0, r.s1, r.s2, r.s3) for r in rngs.values()}) == 1  # the same draws in every mode


def test_random_first_starts_each_side_about_half_the_time() -> None:
    starters = [rules.deal(Rng(seed)).first for seed in range(2000)]
    assert 900 < sum(starters) < 1100


def test_unknown_first_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown first 'me'; expected one of 'random', 'agent', 'opponent'"):
        rules.deal(Rng(0), first="me")


# --- scripted vs scripted: the core against the reference ------------------------------------------------


def check_games_match(player: str, games_per_pairing: int) -> int:
    """`player` as player 0 against every player, every `first`, both scorings in turn: the core's games
    equal the reference's move for move. Returns how many games were compared."""
    compared = 0
    for k, other in enumerate(PLAYERS):
        for f, first in enumerate(rules.FIRSTS):
            scoring = rules.SCORINGS[(k + f) % 2]
            seeds = np.arange(games_per_pairing, dtype=np.uint64) + 1_000 * k + 100 * f + 7
            core = beastybar_core.play_games(TABLES, (player, other), seeds, {"scoring": scoring, "first": first})
            policies = [rules.OPPONENT_POLICIES[player], rules.OPPONENT_POLICIES[other]]
            for i, seed in enumerate(seeds.tolist()):
                state, actions = rules.play_game(policies, Rng(seed), first)
                where = f"{player} vs {other}, first {first}, seed {seed}"
                assert core["actions"][i].tolist() == actions, where
                assert core["first"][i] == state.first, where
                assert core["winner"][i] == rules.winner(state, scoring), where
                assert core["points"][i].tolist() == rules.bar_points(state), where
                assert core["bar_count"][i].tolist() == rules.bar_counts(state), where
                compared += 1
    return compared


@pytest.mark.parametrize("player", PLAYERS)
def test_core_games_match_reference(player: str) -> None:
    assert check_games_match(player, 1) == len(PLAYERS) * len(rules.FIRSTS)


@pytest.mark.heavy
@pytest.mark.parametrize("player", PLAYERS)
def test_core_games_match_reference_at_length(player: str) -> None:
    # 8 x 8 pairings x 3 starters x 12 games: 2,304 games over the eight cases.
    assert check_games_match(player, 12) == len(PLAYERS) * len(rules.FIRSTS) * 12


def test_play_games_plays_both_seats_as_asked() -> None:
    seeds = np.arange(200, dtype=np.uint64)
    options = {"scoring": "points"}
    starters = {first: beastybar_core.play_games(TABLES, ("random", "heuristic"), seeds, {**options, "first": first})
                for first in rules.FIRSTS}
    assert (starters["agent"]["first"] == 0).all() and (starters["opponent"]["first"] == 1).all()
    assert 70 < starters["random"]["first"].sum() < 130
    # The starter is drawn in every mode: where the draw gave player 0 (1), "random" and "agent"
    # ("opponent") play the very same game.
    for starter, first in ((0, "agent"), (1, "opponent")):
        drawn = starters["random"]["first"] == starter
        assert (starters["random"]["actions"][drawn] == starters[first]["actions"][drawn]).all()
        assert not (starters["random"]["actions"][~drawn] == starters[first]["actions"][~drawn]).all()


@pytest.mark.parametrize(("players", "options", "message"), [
    (("random",), {"scoring": "points", "first": "random"}, "players must be two names"),
    (("random", "genius"), {"scoring": "points", "first": "random"}, "unknown player 'genius'"),
    (("random", "random"), {"scoring": "points"}, "options must be a dict with the keys scoring, first"),
    (("random", "random"), {"scoring": "points", "first": "me"}, "unknown first 'me'"),
])
def test_play_games_refuses_bad_arguments(players: tuple, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        beastybar_core.play_games(TABLES, players, np.zeros(2, np.uint64), options)


def test_core_player_weights_are_the_reference_ones() -> None:
    assert beastybar_core.PLAYER_WEIGHTS == {
        "door": rules.DOOR_WEIGHTS, "bar": rules.BAR_WEIGHT, "noisy_sharpness": rules.NOISY_SHARPNESS}
