# What every batched game core shares (the protocol is docs/adding-a-game.md): the monotonic clock its
# `enemy_turn_ns` counter reads, the checks of its constructor's arguments and buffers, the allocation of
# its games, and the seeding and reading of their generators. Inline functions, compiled into each core
# that cimports them; nothing here knows a game. A core's games are an array of its own `Game` struct,
# each with an `Rng rng` field: the generator helpers take `&games[0].rng` and the stride
# `sizeof(Game)`, so one helper serves every struct. The two that build numpy arrays import numpy in
# their body (a dict look-up once loaded), as an inline body would otherwise read the cimporting module's
# globals; they run in `reset` and the tests' `rng_states`, never in a step.
from libc.stdint cimport uint64_t
from libc.math cimport isfinite
from libc.stdlib cimport calloc
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from ext.rng cimport Rng, rng_seed, rng_state


cdef inline uint64_t now_ns() noexcept nogil:
    """CLOCK_MONOTONIC in nanoseconds (a vDSO read on Linux, no system call)."""
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <uint64_t>ts.tv_sec * 1000000000ULL + <uint64_t>ts.tv_nsec


cdef inline int choice_index(str what, object value, tuple expected) except -1:
    """The index of `value` in `expected` (the core's id for it); ValueError naming the expected ones."""
    if value not in expected:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(map(repr, expected))}")
    return expected.index(value)


cdef inline dict checked_dict(str what, object value, tuple keys):
    """`value` (the core's `tables` or `options`) as a dict; ValueError unless its keys are exactly `keys`
    (a core takes no defaults: the envs hold them)."""
    if not isinstance(value, dict) or sorted(value) != sorted(keys):
        given = ", ".join(sorted(map(str, value))) if isinstance(value, dict) else type(value).__name__
        raise ValueError(f"{what} must be a dict with the keys {', '.join(keys)}; got {given or 'none'}")
    return value


cdef inline list checked_weights(object weights, tuple parts):
    """`options["reward_weights"]` as a list of floats in `parts` order; ValueError unless it is a dict with
    exactly the keys `parts`, each a finite number (bools are not numbers here)."""
    checked_dict("reward_weights", weights, parts)
    values = []
    for part in parts:
        value = weights[part]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not isfinite(<double>value):
            raise ValueError(f"reward_weights[{part!r}] must be a finite number, got {value!r}")
        values.append(float(value))
    return values


cdef inline object _checked_array(object array, str name, str dtype, tuple shape):
    if getattr(array, "dtype", None) != dtype or array.shape != shape:
        raise ValueError(f"buffers.{name} must be a numpy {dtype} array of shape {shape}")
    if not array.flags.c_contiguous or not array.flags.writeable:
        raise ValueError(f"buffers.{name} must be C-contiguous and writeable")
    return array


cdef inline tuple checked_buffers(object buffers, int num_games, int obs_size, int num_actions):
    """(obs, rewards, terminated, truncated, masks, terminal_obs) of `buffers` (an
    envs.batched_vec_env.CoreBuffers, or any object with those attributes), each checked for dtype, shape,
    C order and writeability; the bool arrays come back viewed as uint8 (the same memory, a dtype typed
    memoryviews accept). ValueError naming the first wrong one, or a game count below 1."""
    if num_games < 1:
        raise ValueError(f"num_games must be >= 1, got {num_games}")
    return (
        _checked_array(buffers.obs, "obs", "float32", (num_games, obs_size)),
        _checked_array(buffers.rewards, "rewards", "float32", (num_games,)),
        _checked_array(buffers.terminated, "terminated", "bool", (num_games,)).view("u1"),
        _checked_array(buffers.truncated, "truncated", "bool", (num_games,)).view("u1"),
        _checked_array(buffers.masks, "masks", "bool", (num_games, num_actions)).view("u1"),
        _checked_array(buffers.terminal_obs, "terminal_obs", "float32", (num_games, obs_size)),
    )


cdef inline int check_index(int index, int num_games) except -1:
    """IndexError unless 0 <= index < num_games (the per-game query methods are not bounds-checked)."""
    if not 0 <= index < num_games:
        raise IndexError(f"game index {index} out of range 0..{num_games - 1}")
    return 0


cdef inline void* allocated(size_t count, size_t size) except NULL:
    """calloc(count, size) (a core's game arrays; `checked_buffers` has made count >= 1), or MemoryError."""
    cdef void* block = calloc(count, size)
    if block == NULL:
        raise MemoryError()
    return block


cdef inline Rng* nth_rng(Rng* first, size_t stride, int index) noexcept nogil:
    return <Rng*>(<char*>first + <size_t>index * stride)


cdef inline int reseed_games(object seeds, Rng* first, size_t stride, int num_games) except -1:
    """Seed game i's generator (at `first` + i * `stride`) from seeds[i], a uint64[num_games]; None leaves
    every stream as it is (a core's `reset(seeds)`). ValueError for another number of seeds."""
    if seeds is None:
        return 0
    import numpy
    cdef const uint64_t[::1] seed_view = numpy.ascontiguousarray(seeds, dtype=numpy.uint64)
    if seed_view.shape[0] != num_games:
        raise ValueError(f"expected {num_games} seeds, got {seed_view.shape[0]}")
    cdef int i
    for i in range(num_games):
        rng_seed(nth_rng(first, stride, i), seed_view[i])
    return 0


cdef inline object rng_state_rows(Rng* first, size_t stride, int num_games):
    """uint64[num_games, 4]: the state words of each game's generator (a core's `rng_states()`, which its
    differential test compares with the reference's draws)."""
    import numpy
    out = numpy.zeros((num_games, 4), dtype=numpy.uint64)
    cdef uint64_t[:, ::1] rows = out
    cdef int i
    for i in range(num_games):
        rng_state(nth_rng(first, stride, i), &rows[i, 0])
    return out
