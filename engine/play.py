"""One game of Beasty Bar between a person and a player (engine.players), on the rules reference.

`HumanGame(agent, seed, first)` deals a game (envs.beastybar.rules.deal, `first` one of rules.FIRSTS from
the person's side: "agent" means the person, seat A, moves first; "opponent" the agent, seat B; "random"
the deal's draw). The person plays with `play_human(action)`, the agent with `play_agent()`, which
chooses as `trainctl eval` plays it (a network: the masked argmax of its scores; a scripted player: its
policy with the game's generator) and, for a network, also gives its top actions by the masked softmax
of its scores (for a PPO policy the probabilities it would sample from; for a DQN a softmax of its
Q-values). Every move is kept in `moves`. No terminal, no files: tui.screens.play shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.players import NeuralPlayer, Player
from envs.beastybar import rules
from envs.rng import Rng

HUMAN, AGENT = 0, 1
"""The seats: the person is player A, the agent player B."""
SEATS = {"first": "agent", "second": "opponent", "random": "random"}
"""The person's --seat -> the rules' `first` option (named from seat A's side, the person's)."""
TOP_ACTIONS = 3


@dataclass(frozen=True)
class Move:
    """A play: who made it (`seat`), the action id, and for a network its top actions with their
    masked-softmax probabilities, most likely first (empty for the person or a scripted player)."""

    seat: int
    action: int
    top: tuple[tuple[int, float], ...] = ()


def masked_softmax(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """float64[33] probabilities over the legal actions (0 for the illegal ones)."""
    legal = np.where(mask, scores.astype(np.float64), -np.inf)
    shifted = np.exp(legal - legal.max())
    return shifted / shifted.sum()


@dataclass
class HumanGame:
    agent: Player
    seed: int
    first: str = "random"
    moves: list[Move] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = Rng(self.seed)
        self.state = rules.deal(self.rng, first=self.first)

    @property
    def over(self) -> bool:
        return self.state.over

    @property
    def human_to_move(self) -> bool:
        return not self.over and self.state.current_player == HUMAN

    def legal_actions(self) -> list[int]:
        """The legal plays of the player to move."""
        return self.state.legal_actions()

    def play_human(self, action: int) -> Move:
        """The person's play; ValueError when it is not the person's turn or not legal."""
        if not self.human_to_move:
            raise ValueError("it is not the person's turn")
        rules.play_turn(self.state, action)  # raises ValueError for an illegal action
        self.moves.append(Move(HUMAN, action))
        return self.moves[-1]

    def play_agent(self) -> Move:
        """The agent's play (see the module docstring)."""
        if self.over or self.state.current_player != AGENT:
            raise ValueError("it is not the agent's turn")
        top: tuple[tuple[int, float], ...] = ()
        if isinstance(self.agent, NeuralPlayer):
            obs = rules.encode_observation(self.state, viewer=AGENT)
            mask = np.array(rules.legal_mask(self.state.queue, self.state.hands[AGENT]), dtype=np.bool_)
            probabilities = masked_softmax(self.agent.action_scores(obs[None])[0], mask)
            ranked = [int(a) for a in np.argsort(-probabilities, kind="stable") if mask[a]][:TOP_ACTIONS]
            top = tuple((a, float(probabilities[a])) for a in ranked)
        [action] = self.agent.choose([self.state], [self.rng], AGENT)
        rules.play_turn(self.state, action)
        self.moves.append(Move(AGENT, action, top))
        return self.moves[-1]

    def points(self) -> tuple[int, int]:
        """(the person's, the agent's) bar points so far."""
        mine, theirs = rules.bar_points(self.state)
        return mine, theirs

    def result(self) -> int:
        """Once over: +1 the person won, -1 the agent won, 0 a draw (more bar points wins)."""
        return {HUMAN: 1, AGENT: -1, -1: 0}[rules.winner(self.state, "points")]
