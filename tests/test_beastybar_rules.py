"""The Beasty Bar rules reference: the action table, legality, the deal, the opponents, scoring, the
observation, and properties of whole games played with random legal moves (hypothesis)."""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.beastybar import rules
from envs.beastybar.rules import (
    ACTIONS,
    CHAMELEON,
    HIPPO,
    KANGAROO,
    LION,
    MONKEY,
    PARROT,
    SEAL,
    SKUNK,
    SNAKE,
    ZEBRA,
    Action,
    GameState,
)
from envs.rng import Rng

ALL_SPECIES = frozenset(range(12))


def test_species_table_follows_the_spec() -> None:
    assert rules.SPECIES[:9] == ("lion", "hippo", "crocodile", "snake", "giraffe", "zebra", "seal", "monkey", "skunk")
    assert rules.SPECIES[9:] == ("kangaroo", "parrot", "chameleon")
    assert rules.STRENGTH == (12, 11, 10, 9, 8, 7, 6, 4, 1, 3, 2, 5)
    assert rules.POINTS == (2, 2, 3, 2, 3, 4, 2, 3, 4, 4, 4, 3)


def test_action_table_follows_the_rules_file() -> None:
    assert len(ACTIONS) == rules.NUM_ACTIONS == 33
    assert [ACTIONS[k] for k in range(9)] == [Action(k, k) for k in range(9)]
    assert [ACTIONS[9 + d] for d in range(3)] == [Action(KANGAROO, KANGAROO, jump=d) for d in range(3)]
    assert [ACTIONS[12 + t] for t in range(4)] == [Action(PARROT, PARROT, target=t) for t in range(4)]
    assert ACTIONS[16] == Action(PARROT, PARROT, target=None)
    assert ACTIONS[17] == Action(CHAMELEON, None)
    assert [ACTIONS[18 + k] for k in range(9)] == [Action(CHAMELEON, k) for k in range(9)]
    assert [ACTIONS[27 + t] for t in range(4)] == [Action(CHAMELEON, PARROT, target=t) for t in range(4)]
    assert [ACTIONS[31], ACTIONS[32]] == [Action(CHAMELEON, KANGAROO, jump=1), Action(CHAMELEON, KANGAROO, jump=2)]


def test_legal_on_empty_queue_with_full_hand() -> None:
    # every plain species, kangaroo without a jump, parrot without a target, chameleon copying nothing
    assert rules.legal_actions([], ALL_SPECIES) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17]


def test_fifteen_legal_actions_at_most() -> None:
    queue = [(1, PARROT), (1, KANGAROO), (0, LION), (0, HIPPO)]
    hand = {CHAMELEON, PARROT, KANGAROO, SEAL}
    # seal; kangaroo jumps 1, 2; parrot targets 0-3; chameleon as lion, hippo, parrot 0-3, kangaroo 1, 2
    assert rules.legal_actions(queue, hand) == [6, 10, 11, 12, 13, 14, 15, 18, 19, 27, 28, 29, 30, 31, 32]


def test_legal_kangaroo_and_chameleon_choices() -> None:
    one = [(1, ZEBRA)]
    assert rules.legal_actions(one, {KANGAROO, PARROT, CHAMELEON}) == [10, 12, 23]
    only_chameleons = [(1, CHAMELEON)]
    assert rules.legal_actions(only_chameleons, {CHAMELEON}) == [17]
    with_kangaroo = [(1, KANGAROO)]
    assert rules.legal_actions(with_kangaroo, {CHAMELEON}) == [31]


def test_deal_follows_the_spec_rng_order() -> None:
    state = rules.deal(Rng(7))
    rng = Rng(7)
    decks = []
    for _ in range(2):
        deck = list(range(12))
        rng.shuffle(deck)
        decks.append(deck)
    assert state.first == rng.below(2)
    assert state.hands == [set(deck[:4]) for deck in decks]
    assert state.piles == [deck[4:] for deck in decks]
    assert state.queue == state.bar == state.thrown_out == []
    assert state.turn == 0 and state.current_player == state.first


def test_play_turn_draws_the_next_pile_card() -> None:
    state = GameState(hands=[{LION, SEAL, ZEBRA, SKUNK}, {MONKEY}], piles=[[HIPPO, SNAKE], []], first=0)
    rules.play_turn(state, SEAL)
    assert state.hands[0] == {LION, ZEBRA, SKUNK, HIPPO}
    assert state.piles[0] == [SNAKE]
    assert state.queue == [(0, SEAL)]
    assert state.current_player == 1
    with pytest.raises(ValueError, match="illegal for player 1"):
        rules.play_turn(state, SEAL)


def _opponent_state() -> GameState:
    # B to move on A:lion A:zebra B:seal B:parrot, holding snake, monkey, skunk, kangaroo. By hand:
    # snake -> bar A:lion B:snake (0); skunk throws lion and zebra (0); monkey, kangaroo 1 or 2 all
    # send A:lion A:zebra to the bar (-6). So the heuristic picks between 3 and 8.
    return GameState(
        hands=[set(), {SNAKE, MONKEY, SKUNK, KANGAROO}],
        piles=[[], []],
        first=1,
        queue=[(0, LION), (0, ZEBRA), (1, SEAL), (1, PARROT)],
    )


@pytest.mark.parametrize("seed", range(6))
def test_heuristic_opponent_picks_among_the_best_with_one_draw(seed: int) -> None:
    rng, expected = Rng(seed), Rng(seed)
    assert rules.heuristic_opponent(_opponent_state(), rng) == [3, 8][expected.below(2)]
    assert rng.next() == expected.next()


@pytest.mark.parametrize("seed", range(6))
def test_random_opponent_draws_once_among_legal(seed: int) -> None:
    rng, expected = Rng(seed), Rng(seed)
    assert rules.random_opponent(_opponent_state(), rng) == [3, 7, 8, 10, 11][expected.below(5)]
    assert rng.next() == expected.next()


def test_heuristic_draws_once_even_without_a_tie() -> None:
    state = GameState(hands=[set(), {LION}], piles=[[], []], first=1, queue=[(1, ZEBRA), (0, SEAL)])
    rng, expected = Rng(3), Rng(3)
    assert rules.heuristic_opponent(state, rng) == LION
    expected.below(1)
    assert rng.next() == expected.next()


def _finished(bar: list[tuple[int, int]]) -> GameState:
    return GameState(hands=[set(), set()], piles=[[], []], first=0, bar=bar, turn=24)


def test_scoring_points_and_count() -> None:
    # A: zebra + parrot = 8 points, 2 cards, strength 9; B: lion + hippo + seal = 6 points, 3 cards
    state = _finished([(0, ZEBRA), (1, LION), (0, PARROT), (1, HIPPO), (1, SEAL)])
    assert rules.bar_points(state) == [8, 6] and rules.bar_counts(state) == [2, 3]
    assert rules.winner(state, "points") == 0
    assert rules.winner(state, "count") == 1


def test_scoring_count_tie_breaks_on_lower_strength_then_draws() -> None:
    state = _finished([(0, SKUNK), (1, PARROT)])  # strengths 1 vs 2, points 4 vs 4
    assert rules.winner(state, "points") == -1
    assert rules.winner(state, "count") == 0
    assert rules.winner(_finished([(0, SKUNK), (1, SKUNK)]), "count") == -1
    with pytest.raises(ValueError, match="'best'"):
        rules.winner(state, "best")


def test_observation_layout() -> None:
    state = GameState(
        hands=[{LION, SEAL}, {MONKEY}],
        piles=[[HIPPO], [SNAKE, ZEBRA]],
        first=1,
        queue=[(1, KANGAROO), (0, CHAMELEON)],
        bar=[(0, ZEBRA), (1, PARROT)],
        thrown_out=[(1, SKUNK), (0, MONKEY)],
        turn=7,
    )
    obs = rules.encode_observation(state)
    assert obs.dtype == np.float32 and obs.shape == (160,)
    expected = np.zeros(160, dtype=np.float32)
    expected[[KANGAROO, 13, 14 + CHAMELEON, 14 + 12]] = 1.0  # slot 0: B's kangaroo; slot 1: my chameleon
    expected[[70 + LION, 70 + SEAL, 82 + HIPPO]] = 1.0
    expected[[94 + MONKEY, 94 + SNAKE, 94 + ZEBRA]] = 1.0
    expected[[106 + ZEBRA, 118 + PARROT, 130 + MONKEY, 142 + SKUNK]] = 1.0
    expected[154:160] = [4 / 20, 4 / 20, 7 / 24, 1 / 8, 2 / 8, 0.0]
    np.testing.assert_array_equal(obs, expected)
    assert "queue: B:kangaroo A:chameleon" in rules.describe_observation(obs)


# --- properties of whole games ----------------------------------------------------------------------


def _check_cards_accounted_for(state: GameState) -> None:
    cards = [(p, s) for p in range(2) for s in (*state.hands[p], *state.piles[p])]
    cards += state.queue + state.bar + state.thrown_out
    assert len(cards) == 24 and set(cards) == {(p, s) for p in range(2) for s in range(12)}


def _table_legality(action: int, queue: list[tuple[int, int]], hand: set[int]) -> bool:
    """The rules page's action table (docs/games/beastybar.md), transcribed independently of `rules.is_legal`."""
    n, present = len(queue), {species for _, species in queue}
    if action < 9:
        return action in hand
    if action < 12:
        return KANGAROO in hand and (action == 9 if n == 0 else 1 <= action - 9 <= min(2, n))
    if action < 17:
        return PARROT in hand and (action == 16 if n == 0 else action - 12 < n)
    if CHAMELEON not in hand:
        return False
    if action == 17:
        return present <= {CHAMELEON}
    if action < 27:
        return action - 18 in present
    if action < 31:
        return PARROT in present and action - 27 < n
    return KANGAROO in present and action - 30 <= n


def _check_mask_is_legality(state: GameState) -> None:
    hand = state.hands[state.current_player]
    mask = rules.legal_mask(state.queue, hand)
    assert mask == [_table_legality(action, state.queue, hand) for action in range(33)]
    assert 1 <= sum(mask) <= rules.MAX_LEGAL_ACTIONS
    for action, legal in enumerate(mask):
        trial = copy.deepcopy(state)
        if legal:
            rules.play_turn(trial, action)
        else:
            with pytest.raises(ValueError):
                rules.play_turn(trial, action)


def random_game_keeps_the_invariants(seed: int, picks: list[int]) -> None:
    state = rules.deal(Rng(seed))
    played = Counter[int]()
    while not state.over:
        _check_cards_accounted_for(state)
        assert len(state.queue) <= 4
        _check_mask_is_legality(state)
        legal = state.legal_actions()
        played[state.current_player] += 1
        rules.play_turn(state, legal[picks[state.turn] % len(legal)])
    _check_cards_accounted_for(state)
    assert played == {0: 12, 1: 12}
    assert state.hands == [set(), set()] and state.piles == [[], []]
    assert rules.legal_mask(state.queue, state.hands[0]) == [False] * 33


any_game = given(seed=st.integers(0, 2**64 - 1), picks=st.lists(st.integers(0, 14), min_size=24, max_size=24))
test_random_games_keep_the_invariants = settings(max_examples=10, deadline=None)(
    any_game(random_game_keeps_the_invariants))
test_random_games_keep_the_invariants_at_length = pytest.mark.heavy(settings(max_examples=40, deadline=None)(
    any_game(random_game_keeps_the_invariants)))


queues = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 11)), max_size=4, unique=True)


@settings(max_examples=300, deadline=None)
@given(queue=queues, owner=st.integers(0, 1), action=st.integers(0, 32))
def test_resolve_play_conserves_cards_or_rejects(queue: list[tuple[int, int]], owner: int, action: int) -> None:
    played = (owner, ACTIONS[action].card)
    if played in queue:
        with pytest.raises(ValueError, match="already in the queue"):
            rules.resolve_play(queue, owner, action)
        return
    if not rules.is_legal(action, queue, {played[1]}):
        with pytest.raises(ValueError, match=f"action {action} .*illegal.*legal there"):
            rules.resolve_play(queue, owner, action)
        return
    after, bar, thrown = rules.resolve_play(queue, owner, action)
    assert Counter(after + bar + thrown) == Counter([*queue, played])
    assert len(after) <= 4
    # step 4 fires exactly when steps 2-3 left 5 cards: 2 to the bar, 1 out, 2 stay
    left_by_steps_2_3 = len(queue) + 1 - len(thrown) + (1 if bar else 0)
    assert len(bar) == (2 if left_by_steps_2_3 == 5 else 0)
    assert len(after) == (2 if bar else left_by_steps_2_3)


@pytest.mark.parametrize("num_players", [3, 4])
def test_more_players_play_to_the_end(num_players: int) -> None:
    # The player count is a parameter of the deal and the turn order (the observation stays 2-player).
    state, rng = rules.deal(Rng(num_players), num_players), Rng(0)
    while not state.over:
        assert len(state.queue) <= 4
        rules.play_turn(state, rules.random_opponent(state, rng))
    assert state.turn == 12 * num_players
    held = state.queue + state.bar + state.thrown_out
    assert sorted(held) == [(p, s) for p in range(num_players) for s in range(12)]
    assert -1 <= rules.winner(state, "points") < num_players
