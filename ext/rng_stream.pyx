"""Exposes the shared C generator (ext/rng.pxd) to Python so tests can compare it with envs.rng."""

from libc.stdint cimport uint64_t, uint32_t

from ext.rng cimport Rng, rng_seed, rng_next, rng_below


def raw_stream(uint64_t seed, int count):
    """The first `count` 64-bit outputs of the generator seeded with `seed`, as Python ints."""
    cdef Rng rng
    rng_seed(&rng, seed)
    return [rng_next(&rng) for _ in range(count)]


def below_stream(uint64_t seed, uint32_t n, int count):
    """The first `count` draws of `rng_below(n)` from the generator seeded with `seed`."""
    cdef Rng rng
    rng_seed(&rng, seed)
    return [rng_below(&rng, n) for _ in range(count)]
