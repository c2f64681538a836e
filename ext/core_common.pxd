# What every batched game core shares (the protocol is docs/adding-a-game.md): the monotonic clock its
# `enemy_turn_ns` counter reads, and the checks of its constructor's arguments and buffers. Inline
# functions, compiled into each core that cimports them; nothing here knows a game, and nothing here
# imports a Python module (an inline body runs in the cimporting module's namespace).
from libc.stdint cimport uint64_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC


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
