"""Apply one Beasty Bar play to a queue written in the rules page's notation (docs/games/beastybar.md).

`resolve("B:lion A:monkey", "A:lion")` -> `{"queue": "B:lion A:monkey", "bar": "", "thats_it": "A:lion"}`:
the queue after steps 2-4, the cards that entered the bar and every card thrown out, in order of
arrival. It maps the play to an action id and calls `resolve_play` of the chosen implementation (the
pure-Python `envs.beastybar.rules` or the Cython `ext.beastybar_core`), so scenario tests run
unchanged on both. Notation only: no rules live here.
"""

from __future__ import annotations

from envs.beastybar import rules
from envs.beastybar.rules import CHAMELEON, KANGAROO, PARROT, SPECIES, Card

SCENARIO_CORES = ("reference", "cython")
_OWNERS = "AB"


def parse_card(token: str) -> Card:
    """`"A:hippo"` -> (0, 1). Raises ValueError on anything else."""
    owner, sep, species = token.partition(":")
    if not sep or owner not in _OWNERS or species not in SPECIES:
        raise ValueError(
            f"bad card {token!r}; expected OWNER:species with OWNER in {', '.join(_OWNERS)} "
            f"and species one of {', '.join(SPECIES)}"
        )
    return _OWNERS.index(owner), SPECIES.index(species)


def parse_cards(text: str) -> list[Card]:
    """A space-separated list of cards, front to back; the empty string for none."""
    return [parse_card(token) for token in text.split()]


def action_for(queue: list[Card], species: int, *, jump: int | None, target: int | None, copy: str | None) -> int:
    """The action id for playing `species` on `queue` with the given choices. ValueError if a choice
    does not fit the card (e.g. a jump for a lion), a needed one is missing, or no action matches."""
    acts_as: int | None = species
    if copy is not None:
        if species != CHAMELEON:
            raise ValueError(f"copy={copy!r} is only for a chameleon, not a {SPECIES[species]}")
        if copy not in SPECIES or copy == "chameleon":
            raise ValueError(f"a chameleon cannot copy {copy!r}; expected one of {', '.join(SPECIES[:-1])}")
        acts_as = SPECIES.index(copy)
    elif species == CHAMELEON:
        acts_as = None
    acting = SPECIES[species] if acts_as == species else f"a chameleon as {copy or 'nothing'}"
    if jump is not None and acts_as != KANGAROO:
        raise ValueError(f"jump is only for a kangaroo (or a chameleon as one), not {acting}")
    if target is not None and acts_as != PARROT:
        raise ValueError(f"target is only for a parrot (or a chameleon as one), not {acting}")
    n = len(queue)
    if acts_as == KANGAROO and jump is None:
        if n > 1:
            raise ValueError(f"{acting} needs jump=1 or 2 with {n} cards ahead")
        jump = n  # the rules' "1 if only one is ahead" (0 on an empty queue): the jump is forced
    if acts_as == PARROT and target is None and n > 0:
        raise ValueError(f"{acting} needs target=0-{n - 1} on a queue of {n}")
    wanted = rules.Action(species, acts_as, jump or 0, target)
    if wanted not in rules.ACTIONS:
        raise ValueError(f"no action plays {acting} with jump={jump} target={target}; see the rules' table")
    return rules.ACTIONS.index(wanted)


def resolve(
    before: str,
    play: str,
    *,
    jump: int | None = None,
    target: int | None = None,
    copy: str | None = None,
    core: str = "reference",
) -> dict[str, str]:
    """Play `play` (e.g. `"A:kangaroo"`) on the queue `before` and return the queue after steps 2-4,
    the bar entries and the cards thrown out ("thats_it"), each in the rules' notation.

    `jump`: 1 or 2 for a kangaroo (or a chameleon copying one; may be left out when forced);
    `target`: a queue position for a parrot (or a chameleon copying one); `copy`: the species a
    chameleon copies (None: nothing to copy). `core`: "reference" or "cython". Raises ValueError for
    bad notation or a play that is illegal on that queue.
    """
    if core not in SCENARIO_CORES:
        raise ValueError(f"unknown core {core!r}; expected one of {', '.join(map(repr, SCENARIO_CORES))}")
    queue = parse_cards(before)
    owner, species = parse_card(play.strip())
    action = action_for(queue, species, jump=jump, target=target, copy=copy)
    if core == "cython":
        from ext.beastybar_core import resolve_play as core_resolve_play

        after, bar, thrown = core_resolve_play(rules.core_tables(), queue, owner, action)
    else:
        after, bar, thrown = rules.resolve_play(queue, owner, action)
    return {
        "queue": rules.format_cards(after),
        "bar": rules.format_cards(bar),
        "thats_it": rules.format_cards(thrown),
    }
