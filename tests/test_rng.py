"""The C generator and its Python reference give the same stream for the same seed."""

from hypothesis import given
from hypothesis import strategies as st

from envs.rng import Rng
from ext.rng_stream import below_stream, raw_stream


@given(seed=st.integers(min_value=0, max_value=2**64 - 1))
def test_raw_stream_matches_reference(seed: int) -> None:
    rng = Rng(seed)
    assert raw_stream(seed, 64) == [rng.next() for _ in range(64)]


@given(seed=st.integers(min_value=0, max_value=2**64 - 1), n=st.integers(min_value=1, max_value=2**32 - 1))
def test_below_matches_reference_and_stays_in_range(seed: int, n: int) -> None:
    rng = Rng(seed)
    draws = below_stream(seed, n, 32)
    assert draws == [rng.below(n) for _ in range(32)]
    assert all(0 <= d < n for d in draws)


def test_pinned_outputs() -> None:
    # Pins the algorithm: a change of constants or order would silently break every recorded seed.
    # splitmix64(0)'s first output is the published 0xE220A8397B1DCDAF; these follow from it.
    assert raw_stream(0, 3) == [0x99EC5F36CB75F2B4, 0xBF6E1F784956452A, 0x1A5F849D4933E6E0]


def test_shuffle_is_a_permutation_and_seeded() -> None:
    a, b = list(range(24)), list(range(24))
    Rng(7).shuffle(a)
    Rng(7).shuffle(b)
    assert a == b and sorted(a) == list(range(24)) and a != list(range(24))
