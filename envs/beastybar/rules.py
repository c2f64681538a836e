"""Beasty Bar rules in pure Python: the reference (oracle) the Cython core `ext/beastybar_core` must match.

Rules: docs/games/beastybar.md. This module fixes every detail the rules leave open (ids, action table,
resolution order, generator use, opponents, observation), so the same seed and the same actions give the
same trajectory here and in the core, and its tables (`STRENGTH`, `POINTS`) are the ones the core is
built with (`core_tables()`). Readable first, fast second: this module is the baseline the core's speed
is measured against, never a hot path. It holds no gym or numpy-buffer plumbing beyond the observation
encoder.

Vocabulary: a card is `(owner, species)`; owner 0 = A (the agent), 1 = B (the scripted opponent). A
queue is a list of cards, front (index 0, the bar's door) to back. The player count is a parameter of
the deal and the turn order; the observation and the opponents' "me vs the rest" are written for two.

Observation (float32[160], from the viewer's side, computed as Python floats then stored as float32):

    [0:70]    queue, 5 slots front to back, 14 values each: species one-hot (12), then 1.0 if the
              card is mine, then 1.0 if it is theirs; empty slots are all zeros
    [70:82]   species in my hand (multi-hot)
    [82:94]   species in my draw pile (multi-hot)
    [94:106]  species the opponent has not played yet (its hand + draw pile, multi-hot)
    [106:118] my cards in the bar (multi-hot by species)     [118:130] their cards in the bar
    [130:142] my cards thrown out                            [142:154] their cards thrown out
    [154]     my bar points / 20                             [155]     their bar points / 20
    [156]     turns played so far / 24
    [157]     my draw pile size / 8                          [158]     their draw pile size / 8
    [159]     1.0 if I started the game, else 0.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from envs.rng import Rng

Card = tuple[int, int]
"""(owner, species)."""

LION, HIPPO, CROCODILE, SNAKE, GIRAFFE, ZEBRA, SEAL, MONKEY, SKUNK, KANGAROO, PARROT, CHAMELEON = range(12)
SPECIES = (
    "lion", "hippo", "crocodile", "snake", "giraffe", "zebra",
    "seal", "monkey", "skunk", "kangaroo", "parrot", "chameleon",
)  # fmt: skip
STRENGTH = (12, 11, 10, 9, 8, 7, 6, 4, 1, 3, 2, 5)
POINTS = (2, 2, 3, 2, 3, 4, 2, 3, 4, 4, 4, 3)
NUM_SPECIES = 12
CARDS_PER_PLAYER = NUM_SPECIES
HAND_SIZE = 4
QUEUE_FULL = 5
"""A queue of this many cards sends its front two to the bar and its last one out (step 4)."""
MAX_LEGAL_ACTIONS = 15

RECURRING = (HIPPO, CROCODILE, GIRAFFE)


class Action(NamedTuple):
    """One entry of the 33-action table.

    `card`: the species played. `acts_as`: the species whose action is performed (the card's own,
    the copied one for a chameleon, None for a chameleon with nothing to copy). `jump`: kangaroo
    distance d. `target`: parrot position t (counted from the front of the queue before the play);
    None when the queue is empty.
    """

    card: int
    acts_as: int | None
    jump: int = 0
    target: int | None = None


ACTIONS: tuple[Action, ...] = (
    *(Action(species, species) for species in range(SKUNK + 1)),  # 0-8
    *(Action(KANGAROO, KANGAROO, jump=d) for d in range(3)),  # 9-11
    *(Action(PARROT, PARROT, target=t) for t in range(4)),  # 12-15
    Action(PARROT, PARROT),  # 16
    Action(CHAMELEON, None),  # 17
    *(Action(CHAMELEON, species) for species in range(SKUNK + 1)),  # 18-26
    *(Action(CHAMELEON, PARROT, target=t) for t in range(4)),  # 27-30
    *(Action(CHAMELEON, KANGAROO, jump=d) for d in (1, 2)),  # 31-32
)
NUM_ACTIONS = len(ACTIONS)

OPPONENTS = ("random", "heuristic", "aggressive", "defensive", "queue", "skunk", "noisy", "outcome")
"""The scripted players (`OPPONENT_POLICIES`, the rules page says what each does); the index is the
id the core uses."""
SCORINGS = ("points", "count")
"""End-of-game scorings; the index is the id the core uses."""
FIRSTS = ("random", "agent", "opponent")
"""Who starts a game (option `first`): the deal's draw, player A, player B; the index is the core's id."""
REWARD_PARTS = ("outcome", "margin")
"""The parts of player A's reward at a game's end (option `reward_weights` weighs them): `outcome` +1 / 0 /
-1 for a win / draw / loss under the game's scoring, `margin` A's bar points minus B's over MARGIN_SCALE."""
DEFAULT_WEIGHTS: Mapping[str, float] = {"outcome": 1.0, "margin": 0.0}
MARGIN_SCALE = 20.0
"""Bar points per unit of `margin` (the observation's scale of bar points, obs[154] and obs[155])."""


def end_reward(winner: int, points: Sequence[int], weights: Sequence[float]) -> float:
    """Player A's reward at the end of a game won by `winner` (0, 1, -1 = draw) with bar `points` [A, B]:
    the REWARD_PARTS weighted by `weights` (in that order), summed in float64 as the core sums them."""
    outcome = 1.0 if winner == 0 else (-1.0 if winner == 1 else 0.0)
    return weights[0] * outcome + weights[1] * ((points[0] - points[1]) / MARGIN_SCALE)


def core_tables() -> dict[str, Any]:
    """The rules tables the Cython core is built with, per species id: `strength` and `points` (the core
    types neither again; the hippo, crocodile, giraffe and snake thresholds are read from `strength`)."""
    return {"strength": list(STRENGTH), "points": list(POINTS)}


OBS_SIZE = 160
_SLOT = NUM_SPECIES + 2
_HAND, _PILE, _UNPLAYED = 70, 82, 94
_BAR, _THROWN = 106, 130
_SCALARS = 154
MAX_BAR_POINTS_OBS = sum(POINTS) / 20
"""Upper bound of obs[154] and obs[155] (every card of one player in the bar); all others are <= 1."""


def action_name(action: int) -> str:
    """A readable name of an action id, e.g. 27 -> 'chameleon as parrot, target 0'."""
    a = ACTIONS[action]
    name = SPECIES[a.card]
    if a.card == CHAMELEON:
        name += " copying nothing" if a.acts_as is None else f" as {SPECIES[a.acts_as]}"
    if a.acts_as == KANGAROO:
        name += f", jump {a.jump}"
    elif a.acts_as == PARROT:
        name += ", no target" if a.target is None else f", target {a.target}"
    return name


def format_cards(cards: Sequence[Card]) -> str:
    """The rules page's notation (docs/games/beastybar.md): `A:hippo B:zebra`; the empty string for no cards."""
    return " ".join(f"{chr(ord('A') + owner)}:{SPECIES[species]}" for owner, species in cards)


# --- legality ---------------------------------------------------------------------------------------


def is_legal(action: int, queue: Sequence[Card], hand: set[int] | frozenset[int]) -> bool:
    """Whether `action` may be played on `queue` (front to back, before the play) from `hand`."""
    a = ACTIONS[action]
    if a.card not in hand:
        return False
    n = len(queue)
    if a.card == CHAMELEON:
        present = {species for _, species in queue}
        if a.acts_as is None:
            return present <= {CHAMELEON}
        if a.acts_as not in present:
            return False
    if a.acts_as == KANGAROO:
        return a.jump == 0 if n == 0 else 1 <= a.jump <= min(2, n)
    if a.acts_as == PARROT:
        return a.target is None if n == 0 else a.target is not None and a.target < n
    return True


def legal_mask(queue: Sequence[Card], hand: set[int] | frozenset[int]) -> list[bool]:
    """bool[33]: which actions may be played on `queue` from `hand`."""
    return [is_legal(action, queue, hand) for action in range(NUM_ACTIONS)]


def legal_actions(queue: Sequence[Card], hand: set[int] | frozenset[int]) -> list[int]:
    """The legal action ids, ascending."""
    return [action for action in range(NUM_ACTIONS) if is_legal(action, queue, hand)]


# --- resolution of one play (steps 2-4) ----------------------------------------------------------------


def _strength(card: Card) -> int:
    return STRENGTH[card[1]]


# One function per species' action: each mutates `queue` (which holds the acting card `played`) and
# appends what it throws out to `thrown`. A chameleon acts through its copied species' function.


def _lion(queue: list[Card], played: Card, action: Action, thrown: list[Card]) -> None:
    if any(card != played and card[1] == LION for card in queue):
        queue.remove(played)
        thrown.append(played)
        return
    monkeys = [card for card in queue if card[1] == MONKEY]
    thrown.extend(monkeys)
    queue[:] = [played] + [card for card in queue if card != played and card[1] != MONKEY]


def _hippo(queue: list[Card], played: Card, action: Action, thrown: list[Card]) -> None:
    i = queue.index(played)
    while i > 0 and _strength(queue[i - 1]) < STRENGTH[HIPPO] and queue[i - 1][1] != ZEBRA:
        queue[i - 1], queue[i] = queue[i], queue[i - 1]
        i -= 1


def _crocodile(queue: list[Card], played: Card, action: Action, thrown: list[Card]) -> None:
    i = queue.index(played)
    while i > 0 and _strength(queue[i - 1]) < STRENGTH[CROCODILE] and queue[i - 1][1] != ZEBRA:
        thrown.append(queue.pop(i - 1))
        i -= 1


def _snake(queue: list[Card], played: Card, action: Action, thrown: list[Card]) -> None:
    # A chameleon sorts itself with the snake's strength; list.sort is stable, as the rules require.
    queue.sort(key=lambda card: -(STRENGTH[SNAKE] if card == played else _strength(card)))


def _giraffe(queue: list[Card], played: Card, action: Action, thrown: list[Card]) -> None:
    i = queue.index(played)
    if i > 0 and _strength(queue[i - 1]) < STRENGTH[GIRAFFE]:
        queue[i - 1], queue[i] = queue[i], queue[i - 1]


def _zebra(queue: list[Card], played: Card, action: Action, thrown: list[Card]) -> None:
    pass


def _seal(queue: list[Card], played: Card, action: Action, thrown: list[Card]) -> None:
    queue.reverse()


def _monkey(queue: list[Card], played: Card, action: Action, thrown: list[Card]) -> None:
    other_monkeys = [card for card in queue if card != played and card[1] == MONKEY]
    if not other_monkeys:
        return
    thrown.extend(card for card in queue if card[1] in (HIPPO, CROCODILE))
    rest = [card for card in queue if card != played and card[1] not in (MONKEY, HIPPO, CROCODILE)]
    queue[:] = [played, *reversed(other_monkeys), *rest]


def _skunk(queue: list[Card], played: Card, action: Action, thrown: list[Card]) -> None:
    # The played card (a skunk, or a chameleon acting as one) is neither counted nor thrown out.
    victims = [card for card in queue if card != played and card[1] != SKUNK]
    strongest = sorted({_strength(card) for card in victims}, reverse=True)[:2]
    out = [card for card in victims if _strength(card) in strongest]
    thrown.extend(out)
    queue[:] = [card for card in queue if card not in out]


def _kangaroo(queue: list[Card], played: Card, action: Action, thrown: list[Card]) -> None:
    queue.insert(len(queue) - 1 - action.jump, queue.pop())


def _parrot(queue: list[Card], played: Card, action: Action, thrown: list[Card]) -> None:
    if action.target is not None:
        thrown.append(queue.pop(action.target))


_ACT: dict[int, Callable[[list[Card], Card, Action, list[Card]], None]] = {
    LION: _lion, HIPPO: _hippo, CROCODILE: _crocodile, SNAKE: _snake, GIRAFFE: _giraffe,
    ZEBRA: _zebra, SEAL: _seal, MONKEY: _monkey, SKUNK: _skunk, KANGAROO: _kangaroo, PARROT: _parrot,
}  # fmt: skip


def _resolve(queue: Sequence[Card], owner: int, action: int) -> tuple[list[Card], list[Card], list[Card]]:
    """Steps 2-4 for an action already known to be legal; returns (queue_after, bar_entered, thrown_out)."""
    a = ACTIONS[action]
    played = (owner, a.card)
    after = [*queue, played]
    thrown: list[Card] = []
    if a.acts_as is not None:  # step 2
        _ACT[a.acts_as](after, played, a, thrown)
    recurring = [card for card in after if card != played and card[1] in RECURRING]
    for card in recurring:  # step 3: each acts once, from where it is now, if still in the queue
        if card in after:
            _ACT[card[1]](after, card, ACTIONS[card[1]], thrown)
    bar: list[Card] = []
    if len(after) == QUEUE_FULL:  # step 4
        bar = after[:2]
        thrown.append(after[4])
        after = after[2:4]
    return after, bar, thrown


def _check_queue(queue: Sequence[Card], owner: int, species: int) -> None:
    if len(queue) > QUEUE_FULL - 1:
        raise ValueError(f"queue holds {len(queue)} cards; expected at most {QUEUE_FULL - 1} before a play")
    for card in queue:
        if card[0] < 0 or not 0 <= card[1] < NUM_SPECIES:
            raise ValueError(f"bad card {card!r}; expected (owner >= 0, species 0-{NUM_SPECIES - 1})")
    if len(set(queue)) != len(queue):
        raise ValueError(f"queue {format_cards(queue)!r} holds a card twice; each player has one per species")
    if (owner, species) in queue:
        raise ValueError(f"the played card {format_cards([(owner, species)])} is already in the queue")


def resolve_play(queue: Sequence[Card], owner: int, action: int) -> tuple[list[Card], list[Card], list[Card]]:
    """Play `action` by `owner` on `queue` (front to back, <= 4 cards) and resolve steps 2-4.

    The played species is assumed in hand. Returns (queue_after, bar_entered, thrown_out), each a list
    of (owner, species) in order of arrival. Raises ValueError for an illegal action (naming the legal
    ones) or a malformed queue.
    """
    if not 0 <= action < NUM_ACTIONS:
        raise ValueError(f"action {action} is out of range; expected 0-{NUM_ACTIONS - 1}")
    queue = [(int(o), int(s)) for o, s in queue]
    _check_queue(queue, owner, ACTIONS[action].card)
    if not is_legal(action, queue, {ACTIONS[action].card}):
        legal = legal_actions(queue, frozenset(range(NUM_SPECIES)))
        raise ValueError(
            f"action {action} ({action_name(action)}) is illegal on queue {format_cards(queue)!r}; legal there: {legal}"
        )
    return _resolve(queue, owner, action)


# --- a whole game ------------------------------------------------------------------------------------


@dataclass
class GameState:
    """One game in progress. `hands[p]`: species in p's hand; `piles[p]`: p's draw pile, next card
    first; `bar` and `thrown_out`: cards in order of arrival; `turn`: turns played so far."""

    hands: list[set[int]]
    piles: list[list[int]]
    first: int
    queue: list[Card] = field(default_factory=list)
    bar: list[Card] = field(default_factory=list)
    thrown_out: list[Card] = field(default_factory=list)
    turn: int = 0

    @property
    def num_players(self) -> int:
        return len(self.hands)

    @property
    def current_player(self) -> int:
        return (self.first + self.turn) % self.num_players

    @property
    def over(self) -> bool:
        return self.turn == CARDS_PER_PLAYER * self.num_players

    def legal_actions(self) -> list[int]:
        """Legal action ids of the player to move, ascending (empty once the game is over)."""
        return legal_actions(self.queue, self.hands[self.current_player]) if not self.over else []


def deal(rng: Rng, num_players: int = 2, first: str = "random") -> GameState:
    """A new game from `rng`'s stream: shuffle each player's deck in player order, then draw who starts.

    `first` (one of `FIRSTS`): "random" keeps the draw; "agent" (player 0) or "opponent" (player 1)
    overrides it. The draw is made in every mode, so a seed deals the same hands whoever starts."""
    if first not in FIRSTS:
        raise ValueError(f"unknown first {first!r}; expected one of {', '.join(map(repr, FIRSTS))}")
    decks = []
    for _ in range(num_players):
        deck = list(range(NUM_SPECIES))
        rng.shuffle(deck)
        decks.append(deck)
    drawn = rng.below(num_players)
    return GameState(
        hands=[set(deck[:HAND_SIZE]) for deck in decks],
        piles=[deck[HAND_SIZE:] for deck in decks],
        first=drawn if first == "random" else FIRSTS.index(first) - 1,
    )


def play_turn(state: GameState, action: int) -> None:
    """The current player plays `action` (steps 1-5). Raises ValueError if it is illegal."""
    player = state.current_player
    legal = state.legal_actions()
    if action not in legal:
        detail = "the game is over" if state.over else f"legal: {legal}"
        raise ValueError(f"action {action} is illegal for player {player} now; {detail}")
    a = ACTIONS[action]
    state.hands[player].remove(a.card)
    state.queue, bar, thrown = _resolve(state.queue, player, action)
    state.bar.extend(bar)
    state.thrown_out.extend(thrown)
    if state.piles[player]:
        state.hands[player].add(state.piles[player].pop(0))
    state.turn += 1


# --- scripted players ------------------------------------------------------------------------------
#
# Each plays for the player to move ("me") from what that player's observation shows, and draws exactly
# once from the game's generator per turn. The weights below define the players (they are not rules
# numbers, so they are not in `core_tables()`); the core types them again and the differential tests
# hold the two equal. Definitions in words: the rules page, "Scripted players".

DOOR_WEIGHTS = (3, 2, 1)
"""Queue value: an animal at position p (0 = the door) counts its points times DOOR_WEIGHTS[p], 0 beyond."""
BAR_WEIGHT = 5
"""A bar point in the position value V = BAR_WEIGHT * N + Q (the door weights are in fifths of it)."""
NOISY_SHARPNESS = 10
"""The noisy player weighs an action 2 ** max(0, NOISY_SHARPNESS - (best V - its V))."""


class PlayEffect(NamedTuple):
    """What one play does, seen from `me`: the points of my and their animals entering the bar and thrown
    out, the queue after it, and that queue's value Q (`queue_value`)."""

    bar_mine: int
    bar_theirs: int
    thrown_mine: int
    thrown_theirs: int
    queue: list[Card]
    queue_value: int

    @property
    def net(self) -> int:
        """N: my points minus theirs entering the bar."""
        return self.bar_mine - self.bar_theirs

    @property
    def value(self) -> int:
        """V = BAR_WEIGHT * N + Q."""
        return BAR_WEIGHT * self.net + self.queue_value


def queue_value(queue: Sequence[Card], me: int) -> int:
    """Q: each animal's points times its door weight, + for mine, - for theirs."""
    return sum(
        (1 if owner == me else -1) * POINTS[species] * weight
        for (owner, species), weight in zip(queue, DOOR_WEIGHTS, strict=False)
    )


def play_effect(queue: Sequence[Card], player: int, action: int, me: int) -> PlayEffect:
    """The effect of `player` playing legal `action` on `queue`, seen from `me`."""
    after, bar, thrown = _resolve(queue, player, action)

    def points(cards: list[Card], mine: bool) -> int:
        return sum(POINTS[species] for owner, species in cards if (owner == me) == mine)

    return PlayEffect(points(bar, True), points(bar, False), points(thrown, True), points(thrown, False),
                      after, queue_value(after, me))


def _pick_best(legal: list[int], scores: list[int], rng: Rng) -> int:
    """Uniformly among the actions of the best score, in ascending order: one draw, even without a tie."""
    best_score = max(scores)
    best = [action for action, score in zip(legal, scores, strict=True) if score == best_score]
    return best[rng.below(len(best))]


def _greedy(state: GameState, rng: Rng, score: Callable[[int, PlayEffect], int]) -> int:
    """The legal action of the best `score(action, effect)`, ties as `_pick_best`."""
    me, legal = state.current_player, state.legal_actions()
    return _pick_best(legal, [score(action, play_effect(state.queue, me, action, me)) for action in legal], rng)


def random_opponent(state: GameState, rng: Rng) -> int:
    """A uniformly random legal action: one draw from `rng`."""
    legal = state.legal_actions()
    return legal[rng.below(len(legal))]


def heuristic_opponent(state: GameState, rng: Rng) -> int:
    """The greatest N: the most of my points minus the rest's points into the bar this turn."""
    return _greedy(state, rng, lambda action, e: e.net)


def aggressive_opponent(state: GameState, rng: Rng) -> int:
    """The greatest 3 B_me - B_them + 2 T_them: scores its own, throws theirs out."""
    return _greedy(state, rng, lambda action, e: 3 * e.bar_mine - e.bar_theirs + 2 * e.thrown_theirs)


def defensive_opponent(state: GameState, rng: Rng) -> int:
    """The greatest B_me - 3 B_them - 2 T_me: lets none of theirs in, loses none of its own."""
    return _greedy(state, rng, lambda action, e: e.bar_mine - 3 * e.bar_theirs - 2 * e.thrown_mine)


def queue_opponent(state: GameState, rng: Rng) -> int:
    """The greatest V: the bar this turn, then my animals near the door and theirs far from it."""
    return _greedy(state, rng, lambda action, e: e.value)


def _skunk_score(action: int, e: PlayEffect) -> int:
    bonus = 3 * (e.thrown_theirs - e.thrown_mine) + 1 if ACTIONS[action].acts_as == SKUNK else 0
    return e.net + bonus


def skunk_opponent(state: GameState, rng: Rng) -> int:
    """N, plus 3 (T_them - T_me) + 1 for a play acting as a skunk: reaches for the skunk."""
    return _greedy(state, rng, _skunk_score)


def noisy_opponent(state: GameState, rng: Rng) -> int:
    """Each legal action with weight 2 ** max(0, NOISY_SHARPNESS - d), d = how far its V is below the
    best V: one draw below the total weight, actions in ascending order."""
    me, legal = state.current_player, state.legal_actions()
    values = [play_effect(state.queue, me, action, me).value for action in legal]
    best = max(values)
    weights = [1 << max(0, NOISY_SHARPNESS - (best - value)) for value in values]
    draw = rng.below(sum(weights))
    for action, weight in zip(legal, weights, strict=True):
        if draw < weight:
            return action
        draw -= weight
    raise AssertionError("the draw is below the total weight")


def outcome_opponent(state: GameState, rng: Rng) -> int:
    """Plays the rules one reply ahead: each action scores its worst case over every reply the next
    player's unplayed species allow, BAR_WEIGHT (N_mine + N_reply) + Q after the reply (both from my
    side); V of my play when they have nothing left to play. Ties as `_pick_best`."""
    me, legal = state.current_player, state.legal_actions()
    them = (me + 1) % state.num_players
    unplayed = state.hands[them] | set(state.piles[them])
    scores = []
    for action in legal:
        mine = play_effect(state.queue, me, action, me)
        replies = [play_effect(mine.queue, them, reply, me) for reply in legal_actions(mine.queue, unplayed)]
        scores.append(min((BAR_WEIGHT * (mine.net + r.net) + r.queue_value for r in replies), default=mine.value))
    return _pick_best(legal, scores, rng)


Player = Callable[[GameState, Rng], int]
"""A player function: the action of the player to move in `state`, drawing from the game's `rng`."""

OPPONENT_POLICIES: dict[str, Player] = {
    "random": random_opponent,
    "heuristic": heuristic_opponent,
    "aggressive": aggressive_opponent,
    "defensive": defensive_opponent,
    "queue": queue_opponent,
    "skunk": skunk_opponent,
    "noisy": noisy_opponent,
    "outcome": outcome_opponent,
}
"""Each scripted player's reference, `(state, rng) -> action` for the player to move, by name."""


def observed_policy(policy: Callable[[np.ndarray, np.ndarray], int]) -> Player:
    """A player of `policy(observation float32[160], legal mask bool[33]) -> action`, both from the side of
    the player to move: how the reference plays an opponent whose actions come from outside (a neural
    policy). It draws nothing from the game's generator."""

    def player(state: GameState, rng: Rng) -> int:
        me = state.current_player
        return policy(encode_observation(state, me), np.array(legal_mask(state.queue, state.hands[me])))

    return player


def play_game(policies: Sequence[Player], rng: Rng,
              first: str = "random") -> tuple[GameState, list[int]]:
    """One whole game, player p choosing with `policies[p]`, from `rng`'s stream (the deal with `first`,
    then the policies' draws in turn order). Returns the finished state and the actions in turn order."""
    state = deal(rng, len(policies), first)
    actions = []
    while not state.over:
        action = policies[state.current_player](state, rng)
        play_turn(state, action)
        actions.append(action)
    return state, actions


# --- scoring ------------------------------------------------------------------------------------------


def bar_points(state: GameState) -> list[int]:
    """Per player, the points of their cards in the bar."""
    points = [0] * state.num_players
    for owner, species in state.bar:
        points[owner] += POINTS[species]
    return points


def bar_counts(state: GameState) -> list[int]:
    """Per player, how many of their cards are in the bar."""
    counts = [0] * state.num_players
    for owner, _ in state.bar:
        counts[owner] += 1
    return counts


def winner(state: GameState, scoring: str) -> int:
    """The winning player, or -1 for a draw. `points`: more bar points wins. `count`: more bar cards
    wins, then the lower total bar strength; still equal is a draw."""
    if scoring == "points":
        keys: list[tuple[int, ...]] = [(p,) for p in bar_points(state)]
    elif scoring == "count":
        strengths = [0] * state.num_players
        for owner, species in state.bar:
            strengths[owner] += STRENGTH[species]
        keys = [(c, -s) for c, s in zip(bar_counts(state), strengths, strict=True)]
    else:
        raise ValueError(f"unknown scoring {scoring!r}; expected one of {SCORINGS}")
    best = max(keys)
    leaders = [player for player, key in enumerate(keys) if key == best]
    return leaders[0] if len(leaders) == 1 else -1


# --- observation --------------------------------------------------------------------------------------


def encode_observation(state: GameState, viewer: int = 0) -> np.ndarray:
    """float32[160] from `viewer`'s side (two players); layout in the module docstring."""
    if state.num_players != 2:
        raise ValueError(f"the observation is defined for 2 players, not {state.num_players}")
    other = 1 - viewer
    obs = np.zeros(OBS_SIZE, dtype=np.float32)
    for slot, (owner, species) in enumerate(state.queue):
        base = slot * _SLOT
        obs[base + species] = 1.0
        obs[base + NUM_SPECIES + (0 if owner == viewer else 1)] = 1.0
    for species in state.hands[viewer]:
        obs[_HAND + species] = 1.0
    for species in state.piles[viewer]:
        obs[_PILE + species] = 1.0
    for species in (*state.hands[other], *state.piles[other]):
        obs[_UNPLAYED + species] = 1.0
    for offset, cards in ((_BAR, state.bar), (_THROWN, state.thrown_out)):
        for owner, species in cards:
            obs[offset + (0 if owner == viewer else NUM_SPECIES) + species] = 1.0
    points = bar_points(state)
    obs[_SCALARS + 0] = points[viewer] / 20
    obs[_SCALARS + 1] = points[other] / 20
    obs[_SCALARS + 2] = state.turn / (CARDS_PER_PLAYER * 2)
    obs[_SCALARS + 3] = len(state.piles[viewer]) / (CARDS_PER_PLAYER - HAND_SIZE)
    obs[_SCALARS + 4] = len(state.piles[other]) / (CARDS_PER_PLAYER - HAND_SIZE)
    obs[_SCALARS + 5] = 1.0 if state.first == viewer else 0.0
    return obs


def describe_observation(obs: np.ndarray) -> str:
    """A few readable lines decoded from an observation (any backend's): the queue in the rules'
    notation with A = the viewer, the viewer's hand and both bar scores."""
    queue = []
    for slot in range(QUEUE_FULL):
        values = obs[slot * _SLOT : (slot + 1) * _SLOT]
        if values[:NUM_SPECIES].any():
            queue.append((0 if values[NUM_SPECIES] else 1, int(np.argmax(values[:NUM_SPECIES]))))
    hand = [SPECIES[s] for s in range(NUM_SPECIES) if obs[_HAND + s]]
    return (
        f"turn {round(float(obs[_SCALARS + 2]) * 24)}/24  bar points A {round(float(obs[_SCALARS]) * 20)}"
        f" - B {round(float(obs[_SCALARS + 1]) * 20)}\n"
        f"queue: {format_cards(queue) or '(empty)'}\n"
        f"hand:  {' '.join(hand) or '(empty)'}\n"
    )
