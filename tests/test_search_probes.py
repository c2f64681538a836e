"""The search probes of bench/beastybar_search_probes.py: the clairvoyant never ends a deal worse than the
agent it plans with, and neither probe draws from the game's generator."""

from __future__ import annotations

import numpy as np
import pytest

from bench import beastybar_search_probes as probes
from bench.beastybar_unseen_bots import _margin
from envs.beastybar import rules
from envs.rng import Rng


def agent(state: rules.GameState, rng: Rng) -> int:
    return probes._agent_actions([state])[0]


def end(player: rules.Player, seed: int, first: str) -> tuple[int, int]:
    """(sign, margin) of `player`'s game as A against `outcome` on deal `seed`."""
    state, _ = rules.play_game([player, rules.outcome_opponent], Rng(seed), first)
    margin = _margin(state, 0)
    return int(np.sign(margin)), margin


@pytest.mark.parametrize("first", ["agent", "opponent"])
@pytest.mark.parametrize("seed", [3, 11])
def test_the_clairvoyant_ends_each_deal_no_worse_than_the_agent(seed: int, first: str) -> None:
    assert end(probes.clairvoyant_vs_outcome, seed, first) >= end(agent, seed, first)


@pytest.mark.parametrize("probe", [probes.clairvoyant_vs_outcome, probes.sampled_rollouts])
def test_a_probe_plays_a_legal_action_and_leaves_the_generator_alone(probe: rules.Player) -> None:
    rng = Rng(5)
    state = rules.deal(rng, first="agent")
    before = (rng.s0, rng.s1, rng.s2, rng.s3)
    assert probe(state, rng) in state.legal_actions()
    assert (rng.s0, rng.s1, rng.s2, rng.s3) == before
