"""The width of the world model's input vector (engine.worldmodel.features), without torch: the launcher
sizes a world-model run's preloaded tensors before any process imports torch (the TUI launches runs
too). Must not import torch; it imports numpy (through the duel rules), so callers that must stay light
import it where they use it."""

from __future__ import annotations

from envs.duel import rules

DRAW_FEATURES = 8  # engine.worldmodel.draw_features' width
SPECIES = rules.NUM_SPECIES
ATTACKS = SPECIES * rules.MOVES_PER_CREATURE * SPECIES  # (attacker species, move slot, defender species)
# engine.worldmodel.matchup_features': a side's block (its attack one-hot and the same times the roll, its
# species when it passed, its fighter's team slot, its fighter's HP last), side 0's then side 1's
MATCHUP_SIDE = 2 * ATTACKS + SPECIES + rules.TEAM_SIZE + 1
MATCHUP_FEATURES = 2 * MATCHUP_SIDE


def input_width(obs_size: int, num_actions: int) -> int:
    """Features a transition: the observation, both sides' actions one-hot, the draws' and the matchup's."""
    return obs_size + 2 * num_actions + DRAW_FEATURES + MATCHUP_FEATURES
