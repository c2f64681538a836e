"""Two search players built on the shipped Beasty Bar agent, for measuring what stands between it and
issue 10's target (docs/selfplay.md, "What the plateau is made of"). Neither is a product player:

    PYTHONPATH=. trainctl eval py:bench.beastybar_search_probes:clairvoyant_vs_outcome --vs outcome --games 400
    PYTHONPATH=. trainctl eval py:bench.beastybar_search_probes:sampled_rollouts --vs outcome --games 400

- `clairvoyant_vs_outcome` cheats: it reads the other hand, both draw piles and the game's generator, so
  it knows exactly what `outcome` will answer. For each legal action it plays the game to the end on a
  copy (itself continuing with the agent's masked argmax, the opponent with the true `outcome`) and
  keeps the action of the best end (result, then margin), the agent's own choice on a tie. The end it
  plans is the end it gets unless a later turn finds a better one, so it never does worse than the agent
  on a deal: its win rate is how much a deal leaves to win once nothing is hidden.
- `sampled_rollouts` does not cheat: for each legal action, ROLLOUTS guesses of what it cannot see (as
  bench/beastybar_unseen_bots.py's `rollout` guesses), each played to the end with the agent's masked
  argmax for both sides, one forward a ply over every rollout; the action of the best mean result (a win
  1, a draw 0, a loss -1), margin breaking ties. Its guesses come from its own generator, never the game's.

Both only read the game: the generator they are handed is copied, never drawn from.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import numpy as np

from bench.beastybar_unseen_bots import _guess_hidden, _margin
from engine.players import NeuralPlayer, load_neural
from envs.beastybar import rules
from envs.rng import Rng

AGENT = Path(__file__).resolve().parents[1] / "assets" / "beastybar_agent.pt"
ROLLOUTS = 16
"""Guesses of the hidden cards per legal action (`sampled_rollouts`)."""
GUESS_SEED = 20261203


@cache
def _agent() -> NeuralPlayer:
    return load_neural("agent", AGENT)


@cache
def _guesses() -> Rng:
    return Rng(GUESS_SEED)


def _agent_actions(states: list[rules.GameState]) -> list[int]:
    """The agent's masked argmax for each state's player to move, one forward for all."""
    obs = np.stack([rules.encode_observation(s, viewer=s.current_player) for s in states])
    masks = np.array([rules.legal_mask(s.queue, s.hands[s.current_player]) for s in states], dtype=np.bool_)
    return [int(a) for a in _agent().choose_batch(obs, masks)]


def _planned_end(state: rules.GameState, rng: Rng, action: int, me: int) -> tuple[int, int]:
    """(sign of my margin, my margin) at the end of the game after `action`, the agent playing on for me
    and `outcome` for the other player with a copy of the game's generator."""
    game, generator = copy.deepcopy(state), copy.deepcopy(rng)
    rules.play_turn(game, action)
    while not game.over:
        if game.current_player == me:
            rules.play_turn(game, _agent_actions([game])[0])
        else:
            rules.play_turn(game, rules.outcome_opponent(game, generator))
    margin = _margin(game, me)
    return int(np.sign(margin)), margin


def clairvoyant_vs_outcome(state: rules.GameState, rng: Rng) -> int:
    """The legal action whose exact continuation against `outcome` ends best (cheats: see the docstring)."""
    me, legal = state.current_player, state.legal_actions()
    best = _agent_actions([state])[0]
    best_end = _planned_end(state, rng, best, me)
    for action in legal:
        if action != best and (end := _planned_end(state, rng, action, me)) > best_end:
            best, best_end = action, end
    return best


def sampled_rollouts(state: rules.GameState, rng: Rng) -> int:
    """The legal action of the best mean result over ROLLOUTS guessed deals played out by the agent."""
    me, legal = state.current_player, state.legal_actions()
    if len(legal) == 1:
        return legal[0]
    games, first_action = [], []
    for index, action in enumerate(legal):
        for _ in range(ROLLOUTS):
            game = _guess_hidden(state, me, _guesses())
            rules.play_turn(game, action)
            games.append(game)
            first_action.append(index)
    playing = [game for game in games if not game.over]
    while playing:
        for game, action in zip(playing, _agent_actions(playing), strict=True):
            rules.play_turn(game, action)
        playing = [game for game in playing if not game.over]
    scores = np.zeros(len(legal))
    for game, index in zip(games, first_action, strict=True):
        margin = _margin(game, me)
        scores[index] += np.sign(margin) + margin / 1000
    return legal[int(np.argmax(scores))]
