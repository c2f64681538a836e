"""Beasty Bar players that no trainctl run trains against, for checking that a policy holds against
play it never met (`trainctl eval CKPT --vs py:bench.beastybar_unseen_bots:rollout`, and
bench/bench_beastybar_strength.py). They live here, not in envs/, so the self-play pool and the
evaluation suite during training never see them.

Both have the scripted players' signature, `(rules.GameState, Rng) -> action id` for the player to move,
and only use what that player may know: its own hand, the queue, the bar, the cards thrown out and, for
the other player, which species it has not played yet (every player holds one card of each species, so
that much is public); never the other hand or the order of a draw pile.

- `rollout`: a Monte Carlo player. For each legal action it plays ROLLOUTS games out to the end, each on
  a fresh guess of the hidden cards (the other player's unplayed species shuffled between its hand and
  pile, my own pile shuffled), both sides then playing uniformly at random, and picks the action of the
  best mean final margin (my bar points minus theirs). A different kind of player from the one-ply
  scripted ones: it looks to the end of the game, with noise.
- `hoarder`: greedy on the bar this turn (my points in minus theirs), then keeps its strong animals for
  later: among equal plays, the weakest card (lowest strength), which none of the scripted players
  prefers.
"""

from __future__ import annotations

import copy

from envs.beastybar import rules
from envs.rng import Rng

ROLLOUTS = 6
"""Random playouts per legal action (each on its own guess of the hidden cards)."""


def _guess_hidden(state: rules.GameState, me: int, rng: Rng) -> rules.GameState:
    """A copy of `state` with everything `me` cannot see drawn again: the other players' unplayed
    species dealt anew between hand and pile, and my own pile reshuffled."""
    guess = copy.deepcopy(state)
    for player in range(guess.num_players):
        if player == me:
            rng.shuffle(guess.piles[player])
            continue
        unplayed = sorted(guess.hands[player] | set(guess.piles[player]))
        rng.shuffle(unplayed)
        in_hand = len(guess.hands[player])
        guess.hands[player], guess.piles[player] = set(unplayed[:in_hand]), unplayed[in_hand:]
    return guess


def _margin(state: rules.GameState, me: int) -> int:
    points = rules.bar_points(state)
    return points[me] - max(p for player, p in enumerate(points) if player != me)


def rollout(state: rules.GameState, rng: Rng) -> int:
    """The legal action whose random playouts end with the best mean margin for the player to move."""
    me, legal = state.current_player, state.legal_actions()
    if len(legal) == 1:
        return legal[0]
    totals = []
    for action in legal:
        total = 0
        for _ in range(ROLLOUTS):
            game = _guess_hidden(state, me, rng)
            rules.play_turn(game, action)
            while not game.over:
                moves = game.legal_actions()
                rules.play_turn(game, moves[rng.below(len(moves))])
            total += _margin(game, me)
        totals.append(total)
    best = max(totals)
    return legal[totals.index(best)]


def hoarder(state: rules.GameState, rng: Rng) -> int:
    """The greatest N (the heuristic's bar points this turn), then the weakest card played."""
    me, legal = state.current_player, state.legal_actions()
    net = [rules.play_effect(state.queue, me, action, me).net for action in legal]
    best = max(net)
    ties = [action for action, n in zip(legal, net, strict=True) if n == best]
    return min(ties, key=lambda action: (rules.STRENGTH[rules.ACTIONS[action].card], action))
