"""Beasty Bar scenarios: the rules page's 8 (docs/games/beastybar.md), then more derived by hand from the
rules (not from code).

Each row: queue before, the card played with its choices, and the queue, bar entries and thrown-out
cards after steps 2-4. `CORES` lists the implementations the rows run on; the Cython core's helper
adds its own comparison, so this list stays the reference's.
"""

from __future__ import annotations

from typing import Any

import pytest

from envs.beastybar.scenario import resolve

CORES = ["reference"]

# (id, before, play, choices, queue after, bar, thrown out)
RULES_FILE = [
    ("1-lion-throws-monkeys", "B:monkey A:hippo B:zebra A:monkey", "A:lion", {},
     "A:lion A:hippo B:zebra", "", "B:monkey A:monkey"),
    ("2-second-lion-out", "B:lion A:monkey", "A:lion", {}, "B:lion A:monkey", "", "A:lion"),
    ("3-kangaroo-then-hippos", "A:hippo B:hippo", "A:kangaroo", {"jump": 2},
     "A:hippo B:hippo A:kangaroo", "", ""),
    ("4-kangaroo-eaten", "B:parrot B:crocodile", "A:kangaroo", {"jump": 2},
     "B:crocodile", "", "B:parrot A:kangaroo"),
    ("5-monkeys", "B:monkey A:hippo B:zebra A:crocodile", "A:monkey", {},
     "A:monkey B:monkey B:zebra", "", "A:hippo A:crocodile"),
    ("6-skunk", "A:crocodile B:crocodile B:parrot A:zebra", "B:skunk", {},
     "B:parrot B:skunk", "", "A:crocodile B:crocodile A:zebra"),
    ("7-chameleon-parrot", "B:parrot B:zebra A:kangaroo", "A:chameleon", {"copy": "parrot", "target": 1},
     "B:parrot A:kangaroo A:chameleon", "", "B:zebra"),
    ("8-giraffes-recur", "B:skunk A:giraffe B:giraffe", "A:zebra", {},
     "A:giraffe B:giraffe B:skunk A:zebra", "", ""),
]  # fmt: skip

BY_HAND = [
    # hippo passes monkey and parrot, stops behind the zebra; 5 cards -> step 4
    ("hippo-zebra-step4", "A:seal B:zebra B:parrot A:monkey", "B:hippo", {},
     "B:hippo B:parrot", "A:seal B:zebra", "A:monkey"),
    # hippo passes a chameleon and a crocodile, stops behind the lion; the croc then can't eat the hippo
    ("hippo-lion-croc", "B:lion A:crocodile B:chameleon", "A:hippo", {},
     "B:lion A:hippo A:crocodile B:chameleon", "", ""),
    # crocodile eats chameleon, seal, giraffe (that giraffe never recurs), stops at the zebra
    ("croc-eats-to-zebra", "A:zebra B:giraffe A:seal B:chameleon", "B:crocodile", {},
     "A:zebra B:crocodile", "", "B:chameleon A:seal B:giraffe"),
    ("croc-stops-at-hippo", "A:hippo B:kangaroo", "B:crocodile", {}, "A:hippo B:crocodile", "", "B:kangaroo"),
    # recurring order: the giraffe swaps first, then the crocodile eats seal then giraffe
    ("recurring-giraffe-then-croc", "B:seal A:giraffe B:crocodile", "A:zebra", {},
     "B:crocodile A:zebra", "", "B:seal A:giraffe"),
    # stable snake: A's zebra stays ahead of B's; 5 cards -> step 4
    ("snake-stable-step4", "A:zebra B:chameleon A:monkey B:zebra", "A:snake", {},
     "B:zebra B:chameleon", "A:snake A:zebra", "A:monkey"),
    # a chameleon as snake sorts itself 9 (after the real snake, stable), the other chameleon 5
    ("chameleon-snake", "B:chameleon A:seal B:snake", "A:chameleon", {"copy": "snake"},
     "B:snake A:chameleon A:seal B:chameleon", "", ""),
    ("giraffe-swaps-once", "A:lion B:skunk A:kangaroo", "B:giraffe", {},
     "A:lion B:skunk B:giraffe A:kangaroo", "", ""),
    # seal reverses; the hippo, now behind parrot and seal, passes both
    ("seal-then-hippo", "A:lion B:hippo A:parrot", "B:seal", {},
     "B:hippo B:seal A:parrot A:lion", "", ""),
    # three monkeys: chameleon-as-monkey, then the real monkeys back to front, then the rest
    ("three-monkeys", "A:monkey B:crocodile B:monkey A:seal", "B:chameleon", {"copy": "monkey"},
     "B:chameleon B:monkey A:monkey A:seal", "", "B:crocodile"),
    # a chameleon in the queue is not a monkey: it stays among the rest
    ("monkeys-and-chameleon", "B:chameleon A:hippo B:monkey", "A:monkey", {},
     "A:monkey B:monkey B:chameleon", "", "A:hippo"),
    ("lone-monkey", "B:hippo A:crocodile", "B:monkey", {}, "B:hippo A:crocodile B:monkey", "", ""),
    ("chameleon-lion-out", "B:lion A:seal", "A:chameleon", {"copy": "lion"}, "B:lion A:seal", "", "A:chameleon"),
    ("lion-meets-lion", "A:lion", "B:lion", {}, "A:lion", "", "B:lion"),
    ("kangaroo-jump-1", "A:seal B:zebra", "B:kangaroo", {"jump": 1}, "A:seal B:kangaroo B:zebra", "", ""),
    ("kangaroo-alone", "", "A:kangaroo", {}, "A:kangaroo", "", ""),
    ("parrot-alone", "", "A:parrot", {}, "A:parrot", "", ""),
    ("parrot-front", "A:hippo B:crocodile A:giraffe", "B:parrot", {"target": 0},
     "B:crocodile A:giraffe B:parrot", "", "A:hippo"),
    # the zebra protects the crocodile's prey after the parrot removed the seal
    ("zebra-stops-recurring-croc", "B:seal A:zebra B:crocodile", "A:parrot", {"target": 0},
     "A:zebra B:crocodile A:parrot", "", "B:seal"),
    ("skunk-with-chameleon-kept", "A:chameleon B:seal A:snake A:seal", "B:skunk", {},
     "A:chameleon B:skunk", "", "B:seal A:snake A:seal"),
    ("skunk-throws-chameleon", "B:chameleon A:monkey A:parrot", "A:skunk", {},
     "A:parrot A:skunk", "", "B:chameleon A:monkey"),
    ("skunk-one-species", "A:zebra B:zebra", "A:skunk", {}, "A:skunk", "", "A:zebra B:zebra"),
    ("chameleon-skunk", "B:skunk A:giraffe B:giraffe A:seal", "A:chameleon", {"copy": "skunk"},
     "B:skunk A:chameleon", "", "A:giraffe B:giraffe A:seal"),
    # acting as a skunk (strength 1), the played chameleon neither counts nor goes, though a 5 does
    ("chameleon-skunk-keeps-itself", "B:skunk B:chameleon A:seal", "A:chameleon", {"copy": "skunk"},
     "B:skunk A:chameleon", "", "B:chameleon A:seal"),
    # a chameleon as hippo passes the parrot and the other chameleon, stops at the zebra; step 4
    ("chameleon-hippo-step4", "B:hippo A:zebra B:chameleon A:parrot", "A:chameleon", {"copy": "hippo"},
     "A:chameleon B:chameleon", "B:hippo A:zebra", "A:parrot"),
    ("chameleon-croc", "B:crocodile A:kangaroo B:seal", "A:chameleon", {"copy": "crocodile"},
     "B:crocodile A:chameleon", "", "B:seal A:kangaroo"),
    ("chameleon-giraffe", "B:giraffe A:seal", "B:chameleon", {"copy": "giraffe"},
     "B:giraffe B:chameleon A:seal", "", ""),
    ("chameleon-seal", "A:lion B:seal A:skunk", "A:chameleon", {"copy": "seal"},
     "A:chameleon A:skunk B:seal A:lion", "", ""),
    ("chameleon-zebra", "B:zebra A:monkey", "A:chameleon", {"copy": "zebra"}, "B:zebra A:monkey A:chameleon", "", ""),
    # chameleon as kangaroo jumps 2; then the recurring hippo passes seal, chameleon and kangaroo
    ("chameleon-kangaroo-then-hippo", "B:kangaroo A:seal B:hippo", "B:chameleon", {"copy": "kangaroo", "jump": 2},
     "B:hippo B:kangaroo B:chameleon A:seal", "", ""),
    ("chameleon-nothing-to-copy", "B:chameleon", "A:chameleon", {}, "B:chameleon A:chameleon", "", ""),
    # a chameleon in the queue never recurs (it would pass the parrot as a hippo)
    ("chameleon-never-recurs", "A:parrot B:chameleon", "A:zebra", {}, "A:parrot B:chameleon A:zebra", "", ""),
]  # fmt: skip

SCENARIOS = RULES_FILE + BY_HAND


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize(
    ("before", "play", "choices", "queue", "bar", "thats_it"),
    [row[1:] for row in SCENARIOS],
    ids=[row[0] for row in SCENARIOS],
)
def test_scenario(
    core: str, before: str, play: str, choices: dict[str, Any], queue: str, bar: str, thats_it: str
) -> None:
    assert resolve(before, play, core=core, **choices) == {"queue": queue, "bar": bar, "thats_it": thats_it}


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize(
    ("before", "play", "choices", "message"),
    [
        ("A:seal", "A:kangaroo", {"jump": 2}, "illegal"),
        ("A:seal B:lion", "A:kangaroo", {}, "needs jump"),
        ("A:seal", "A:chameleon", {"copy": "lion"}, "illegal"),
        ("A:seal", "A:chameleon", {}, "illegal"),
        ("A:seal", "A:chameleon", {"copy": "chameleon"}, "cannot copy"),
        ("A:seal", "A:parrot", {"target": 1}, "illegal"),
        ("A:seal", "A:parrot", {}, "needs target"),
        ("A:seal", "A:lion", {"jump": 1}, "only for a kangaroo"),
        ("A:seal", "A:lion", {"copy": "seal"}, "only for a chameleon"),
        ("A:sael", "A:lion", {}, "bad card"),
        ("A:seal", "C:lion", {}, "bad card"),
        ("A:seal", "A:seal", {}, "already in the queue"),
        ("A:seal B:seal A:lion B:lion A:hippo", "B:hippo", {}, "at most 4"),
    ],
)
def test_bad_scenario_raises(core: str, before: str, play: str, choices: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve(before, play, core=core, **choices)


def test_unknown_core_raises() -> None:
    with pytest.raises(ValueError, match="'pure'"):
        resolve("", "A:lion", core="pure")
