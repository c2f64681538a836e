# The per-game random generator every core shares: xoshiro256** seeded by four splitmix64 outputs.
# envs/rng.py implements the same algorithm bit for bit; it is the reference the cores are checked by.
from libc.stdint cimport uint64_t, uint32_t


cdef struct Rng:
    uint64_t s0
    uint64_t s1
    uint64_t s2
    uint64_t s3


cdef inline uint64_t _rotl(uint64_t x, int k) noexcept nogil:
    return (x << k) | (x >> (64 - k))


cdef inline uint64_t _splitmix64(uint64_t* state) noexcept nogil:
    state[0] += <uint64_t>0x9E3779B97F4A7C15ULL
    cdef uint64_t z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline void rng_seed(Rng* rng, uint64_t seed) noexcept nogil:
    cdef uint64_t sm = seed
    rng.s0 = _splitmix64(&sm)
    rng.s1 = _splitmix64(&sm)
    rng.s2 = _splitmix64(&sm)
    rng.s3 = _splitmix64(&sm)


cdef inline uint64_t rng_next(Rng* rng) noexcept nogil:
    cdef uint64_t result = _rotl(rng.s1 * 5, 7) * 9
    cdef uint64_t t = rng.s1 << 17
    rng.s2 ^= rng.s0
    rng.s3 ^= rng.s1
    rng.s1 ^= rng.s2
    rng.s0 ^= rng.s3
    rng.s2 ^= t
    rng.s3 = _rotl(rng.s3, 45)
    return result


cdef inline void rng_state(const Rng* rng, uint64_t* out) noexcept nogil:
    """The four state words, in order, into out[0..3] (a core's `rng_states()` row, for its tests)."""
    out[0] = rng.s0
    out[1] = rng.s1
    out[2] = rng.s2
    out[3] = rng.s3


cdef inline uint32_t rng_below(Rng* rng, uint32_t n) noexcept nogil:
    # Lemire's multiply-shift on the top 32 bits: bias at most n / 2**32, and one multiply.
    return <uint32_t>(((rng_next(rng) >> 32) * <uint64_t>n) >> 32)


cdef inline int rng_d6(Rng* rng) noexcept nogil:
    return 1 + <int>rng_below(rng, 6)
