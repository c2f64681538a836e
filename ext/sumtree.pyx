"""Sum-tree (with a min-tree beside it) for proportional prioritized replay: batched stratified sampling
and batched priority updates, both in C with the GIL released.

The tree is 8-ary: the 8 children of a node are one 64-byte cache line of float64, so a descent over a
1,000,000-leaf tree touches 7 cache lines instead of 20. Beside each internal node's sum the tree keeps
its running sum within its group of siblings (children 0..j of one parent), so a descent picks a child
by counting 8 independent comparisons instead of walking a chain of additions. Leaves keep no running
sums: a descent works out the 8 of its leaf group from the line it reads anyway, which saves a cache
miss per draw and 8 MB per million leaves. Running sums are added as a tree of pairs in one fixed order
(`_running8`), the same wherever they are needed. Every internal node and running sum is recomputed
from the children on each update (never patched by a delta), so the total is a pure function of the
leaves: after any sequence of updates it equals, bit for bit, the total of a tree built from the same
leaves.

The min-tree holds the smallest positive leaf (a leaf of priority 0 counts as +inf there): it gives the
largest importance weight, so weights are normalised without a pass over the batch's peers.

SumTree is not thread-safe: a caller sharing one between threads serialises every call with one lock
(ext.replay_core does, for engine.replay.PrioritizedReplayBuffer). Its C methods, declared in
ext/sumtree.pxd, let such a core sample and update with the GIL released. This module knows nothing of
transitions; it must not import anything of ours beyond ext.rng.
"""

from libc.math cimport INFINITY, powf
from libc.stdint cimport int64_t, uint64_t

import numpy as np

from ext.rng cimport Rng, rng_next, rng_seed


cdef extern from *:
    void __builtin_prefetch(const void* address) noexcept nogil

cdef enum:
    BRANCH = 8  # _running8 adds exactly 8 siblings
    # Doubles per 64-byte cache line: every level starts on a line, so each group of children is one.
    ALIGN_DOUBLES = 8
    # How many nodes ahead a batched update fetches: enough to cover a miss, few enough to stay cached.
    PREFETCH_AHEAD = 8


cdef inline double _running8(const double* child, double* running) noexcept nogil:
    """running[j] = child[0] + ... + child[j] for one group of BRANCH (8) siblings; returns running[7].

    Added as a tree of pairs, 3 dependent additions deep instead of 7, in one fixed order. For children
    >= 0 the result is nondecreasing in j, and a zero child's running sum equals its left neighbour's
    exactly (x + 0 == x), which the descent relies on to never take a zero child."""
    cdef double pair01 = child[0] + child[1], pair23 = child[2] + child[3]
    cdef double pair45 = child[4] + child[5], pair67 = child[6] + child[7]
    cdef double first4 = pair01 + pair23
    running[0] = child[0]
    running[1] = pair01
    running[2] = pair01 + child[2]
    running[3] = first4
    running[4] = first4 + child[4]
    running[5] = first4 + pair45
    running[6] = first4 + (pair45 + child[6])
    running[7] = first4 + (pair45 + pair67)
    return running[7]


cdef inline double _uniform01(Rng* rng) noexcept nogil:
    """A double in [0, 1) from the top 53 bits of one generator output."""
    return <double>(rng_next(rng) >> 11) * (1.0 / 9007199254740992.0)


cdef class SumTree:  # attributes and C methods are declared in ext/sumtree.pxd
    """Priorities of `capacity` slots (leaves 0..capacity-1), all starting at 0 (never sampled).

    Args:
        capacity: number of leaves, >= 1.
        seed: seeds the tree's own generator (ext.rng's xoshiro256**) that draws the stratified
            uniforms, so a given seed and call sequence gives the same samples on every machine.
    """

    def __cinit__(self, Py_ssize_t capacity, uint64_t seed=0):
        if capacity < 1:
            raise ValueError(f"SumTree capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        cdef Py_ssize_t size = ((capacity + BRANCH - 1) // BRANCH) * BRANCH
        cdef Py_ssize_t total_size = 0
        self.n_levels = 0
        while True:
            self.level_offset[self.n_levels] = total_size
            self.level_size[self.n_levels] = size
            total_size += size
            self.n_levels += 1
            if size <= BRANCH:
                break
            size = ((size // BRANCH + BRANCH - 1) // BRANCH) * BRANCH
        self._sums_storage = np.zeros(total_size + ALIGN_DOUBLES, dtype=np.float64)
        # Leaves need no min of their own (a leaf's is itself), so mins start at level 1.
        self.leaf_count = self.level_size[0]
        self._mins_storage = np.full(total_size - self.leaf_count + ALIGN_DOUBLES, np.inf, dtype=np.float64)
        self.sums = self._aligned(self._sums_storage)
        self.mins = self._aligned(self._mins_storage)
        self._running_storage = np.zeros(total_size - self.leaf_count + ALIGN_DOUBLES, dtype=np.float64)
        self.running = self._aligned(self._running_storage)
        self._total = 0.0
        self._min_positive = INFINITY
        rng_seed(&self.rng, seed)

    cdef double* _aligned(self, double[::1] storage):
        cdef double* base = &storage[0]
        cdef Py_ssize_t misalign = (<Py_ssize_t>base // 8) % ALIGN_DOUBLES
        return base + (ALIGN_DOUBLES - misalign) % ALIGN_DOUBLES

    @property
    def total(self):
        """Sum of all leaves (float64)."""
        return self._total

    @property
    def min_priority(self):
        """Smallest positive leaf, +inf when every leaf is 0."""
        return self._min_positive

    def __reduce__(self):
        # Pickles as leaves + generator state, so a saved replay buffer resumes the same sample stream.
        rng_state = (self.rng.s0, self.rng.s1, self.rng.s2, self.rng.s3)
        return (_rebuild_sumtree, (self.capacity, self.leaves(), rng_state))

    def _restore(self, const double[::1] leaves, tuple rng_state):
        cdef Py_ssize_t i
        with nogil:
            for i in range(self.capacity):
                self._write_leaf(i, leaves[i])
            self._recompute_range(0, self.capacity)
        self.rng.s0, self.rng.s1, self.rng.s2, self.rng.s3 = rng_state

    def get(self, const int64_t[::1] indices):
        """Priorities of `indices` (int64 [n]) as float64 [n]."""
        cdef Py_ssize_t n = indices.shape[0], i
        self._check_indices(indices)
        out = np.empty(n, dtype=np.float64)
        cdef double[::1] out_view = out
        for i in range(n):
            out_view[i] = self.sums[indices[i]]
        return out

    def leaves(self):
        """A copy of all leaves, float64 [capacity]."""
        return np.asarray(<double[:self.capacity]> self.sums).copy()

    cdef double[::1] _prefix_scratch(self, Py_ssize_t n):
        """A float64 [n] work array kept between calls (sampling allocates nothing once warm)."""
        if self._prefix_work is None or self._prefix_work.shape[0] < n:
            self._prefix_work = np.empty(n, dtype=np.float64)
        return self._prefix_work

    cdef int64_t[::1] _node_scratch(self, Py_ssize_t n):
        """An int64 [n] work array kept between calls (updating allocates nothing once warm)."""
        if self._node_work is None or self._node_work.shape[0] < n:
            self._node_work = np.empty(n, dtype=np.int64)
        return self._node_work

    cdef int _check_indices(self, const int64_t[::1] indices) except -1:
        cdef Py_ssize_t i
        for i in range(indices.shape[0]):
            if indices[i] < 0 or indices[i] >= self.capacity:
                raise IndexError(
                    f"sum-tree index {indices[i]} (batch position {i}) is outside [0, {self.capacity})"
                )
        return 0

    def update(self, const int64_t[::1] indices, const double[::1] priorities):
        """Set leaf `indices[i]` to `priorities[i]` for every i (int64 [n], float64 [n]).

        The whole batch is checked before any leaf is written: an index out of range raises IndexError,
        a priority that is NaN, infinite or negative raises ValueError naming its index, and the tree is
        left as it was. A repeated index takes its last priority.
        """
        cdef Py_ssize_t n = indices.shape[0], i
        cdef double p
        if priorities.shape[0] != n:
            raise ValueError(f"{n} indices but {priorities.shape[0]} priorities")
        self._check_indices(indices)
        for i in range(n):
            p = priorities[i]
            if not (p >= 0.0 and p < INFINITY):
                raise ValueError(
                    f"priority {p} for index {indices[i]} (batch position {i}) must be finite and >= 0"
                )
        if n == 0:
            return
        cdef int64_t[::1] nodes = self._node_scratch(n)
        with nogil:
            self.write(n, &indices[0], &priorities[0], &nodes[0])

    cdef void write(self, Py_ssize_t n, const int64_t* indices, const double* priorities,
                    int64_t* nodes) noexcept nogil:
        """Set leaf indices[i] to priorities[i] (n checked values, n >= 1) and recompute their
        ancestors; `nodes` is int64 [n] scratch."""
        cdef Py_ssize_t i
        for i in range(n):
            self._write_leaf(indices[i], priorities[i])
            nodes[i] = indices[i]
        self._recompute_nodes(n, nodes)

    def fill(self, Py_ssize_t start, Py_ssize_t count, double priority):
        """Set leaves start .. start+count-1 to `priority` (finite, >= 0); the range must fit."""
        if start < 0 or count < 0 or start + count > self.capacity:
            raise IndexError(f"leaf range [{start}, {start + count}) is outside [0, {self.capacity})")
        if not (priority >= 0.0 and priority < INFINITY):
            raise ValueError(f"priority {priority} must be finite and >= 0")
        if count == 0:
            return
        cdef Py_ssize_t i
        with nogil:
            for i in range(start, start + count):
                self._write_leaf(i, priority)
            self._recompute_range(start, start + count)

    cdef void _write_leaf(self, Py_ssize_t leaf, double priority) noexcept nogil:
        self.sums[leaf] = priority

    cdef void _recompute_group(
        self, int level, Py_ssize_t group_start, double* sum_out, double* min_out
    ) noexcept nogil:
        """Write the sum of the BRANCH siblings at group_start (on `level`) and their smallest positive
        leaf; above the leaves, refresh their running sums too."""
        cdef Py_ssize_t j
        cdef double m = INFINITY, v
        cdef double leaf_running[BRANCH]
        cdef const double* child_mins
        if level == 0:
            sum_out[0] = _running8(&self.sums[group_start], leaf_running)
            for j in range(BRANCH):
                v = self.sums[group_start + j]
                m = v if (v > 0.0 and v < m) else m
        else:
            sum_out[0] = _running8(&self.sums[group_start], &self.running[group_start - self.leaf_count])
            child_mins = self.mins + (group_start - self.leaf_count)
            for j in range(BRANCH):
                v = child_mins[j]
                m = v if v < m else m
        min_out[0] = m

    cdef void _recompute_parent(self, int level, Py_ssize_t parent) noexcept nogil:
        """Set node `parent` of level+1 from its BRANCH children on `level`."""
        cdef Py_ssize_t node = self.level_offset[level + 1] + parent
        self._recompute_group(
            level, self.level_offset[level] + parent * BRANCH, &self.sums[node], &self.mins[node - self.leaf_count]
        )

    cdef void _recompute_nodes(self, Py_ssize_t n, int64_t* nodes) noexcept nogil:
        """Recompute every ancestor of the n changed leaves in `nodes` (overwritten), level by level.

        A parent equal to the one just before it in `nodes` is done once: sampled batches come sorted,
        so their shared upper ancestors cost one recomputation per level, not one per leaf. The group
        PREFETCH_AHEAD places further on is fetched early so the misses of a level overlap.
        """
        cdef int level
        cdef Py_ssize_t i, previous, ahead_group
        for level in range(self.n_levels - 1):
            previous = -1
            for i in range(n):
                if i + PREFETCH_AHEAD < n:
                    ahead_group = self.level_offset[level] + (nodes[i + PREFETCH_AHEAD] // BRANCH) * BRANCH
                    __builtin_prefetch(&self.sums[ahead_group])
                    if level > 0:
                        __builtin_prefetch(&self.running[ahead_group - self.leaf_count])
                        __builtin_prefetch(&self.mins[ahead_group - self.leaf_count])
                nodes[i] = nodes[i] // BRANCH
                if nodes[i] != previous:
                    self._recompute_parent(level, nodes[i])
                    previous = nodes[i]
        self._refresh_root()

    cdef void _recompute_range(self, Py_ssize_t first_leaf, Py_ssize_t end_leaf) noexcept nogil:
        """Recompute every ancestor of leaves first_leaf .. end_leaf-1 (a range has a range of parents)."""
        cdef int level
        cdef Py_ssize_t first = first_leaf, last = end_leaf - 1, parent
        for level in range(self.n_levels - 1):
            first = first // BRANCH
            last = last // BRANCH
            for parent in range(first, last + 1):
                self._recompute_parent(level, parent)
        self._refresh_root()

    cdef void _refresh_root(self) noexcept nogil:
        cdef int top = self.n_levels - 1
        self._recompute_group(top, self.level_offset[top], &self._total, &self._min_positive)

    cdef void _descend_batch(self, Py_ssize_t n, double* prefix, int64_t* node) noexcept nogil:
        """Replace each of the n `prefix` values by what is left of it and write into `node` the leaf
        whose cumulative range holds it, never a leaf of priority 0. Requires total > 0.

        At each node the child taken is the first whose running sum exceeds the prefix, i.e. the count
        of running sums <= the prefix (8 independent comparisons, no data-dependent branch). A zero
        child is never taken, since its running sum equals its left neighbour's. Rounding can leave a
        prefix at or past the last running sum (a draw at the very top of the total); then the last
        positive child is taken, so a node with a positive sum always leads to a positive leaf. All n
        descents advance one level at a time and each prefetches the group it reads next, so the cache
        misses of the lower levels overlap instead of queueing one behind the other.
        """
        cdef int level
        cdef Py_ssize_t i, group_start, j, chosen
        cdef double left
        cdef double leaf_running[BRANCH]
        cdef const double* running
        for i in range(n):
            node[i] = 0
        for level in range(self.n_levels - 1, -1, -1):
            for i in range(n):
                group_start = self.level_offset[level] + node[i] * BRANCH
                if level == 0:
                    _running8(&self.sums[group_start], leaf_running)
                    running = leaf_running
                else:
                    running = &self.running[group_start - self.leaf_count]
                left = prefix[i]
                chosen = 0
                for j in range(BRANCH):
                    chosen += running[j] <= left
                if chosen == BRANCH:
                    chosen = BRANCH - 1
                    while self.sums[group_start + chosen] == 0.0:
                        chosen -= 1
                    left = self.sums[group_start + chosen]
                elif chosen > 0:
                    left -= running[chosen - 1]
                prefix[i] = left
                node[i] = node[i] * BRANCH + chosen
                if level > 1:
                    __builtin_prefetch(&self.running[self.level_offset[level - 1] + node[i] * BRANCH - self.leaf_count])
                elif level == 1:
                    __builtin_prefetch(&self.sums[node[i] * BRANCH])  # the leaf group, read next

    def find(self, const double[::1] prefixes):
        """The leaves (int64 [n]) whose cumulative ranges hold `prefixes` (float64 [n], >= 0; a prefix at
        or past the total lands on the last positive leaf).

        The deterministic half of sampling, exposed to check the descent against a cumulative sum.
        """
        if not self._total > 0.0:
            raise ValueError("cannot search a sum-tree whose total is 0")
        cdef Py_ssize_t n = prefixes.shape[0], i
        for i in range(n):
            if not prefixes[i] >= 0.0:
                raise ValueError(f"prefix {prefixes[i]} (position {i}) must be >= 0")
        out = np.empty(n, dtype=np.int64)
        left = np.array(prefixes, dtype=np.float64)
        cdef int64_t[::1] out_view = out
        cdef double[::1] left_view = left
        if n > 0:
            with nogil:
                self._descend_batch(n, &left_view[0], &out_view[0])
        return out

    def sample(self, Py_ssize_t batch_size, double beta, int64_t[::1] out_indices, float[::1] out_weights):
        """Draw `batch_size` leaves proportionally to priority, stratified, into the out arrays.

        The total is cut into `batch_size` equal strata and one uniform draw from the tree's generator
        lands in each, so out_indices (int64 [batch_size]) comes out in ascending order of prefix.
        out_weights (float32 [batch_size]) gets the importance weights (min_priority / priority) ** beta,
        i.e. (N * P(i)) ** -beta divided by its largest possible value, so every weight is in (0, 1].
        Raises ValueError when every leaf is 0.
        """
        if not self._total > 0.0:
            raise ValueError("cannot sample from a sum-tree whose total is 0 (nothing stored yet)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if out_indices.shape[0] < batch_size or out_weights.shape[0] < batch_size:
            raise ValueError(f"out arrays hold fewer than batch_size={batch_size} entries")
        cdef double[::1] prefix = self._prefix_scratch(batch_size)
        with nogil:
            self.draw(batch_size, beta, &prefix[0], &out_indices[0], &out_weights[0])

    cdef bint draw(self, Py_ssize_t n, double beta, double* prefix, int64_t* out_indices,
                   float* out_weights) noexcept nogil:
        """`sample()` without its checks: n >= 1 leaves into out_indices (int64 [n]) and their weights
        into out_weights (float32 [n]); `prefix` is float64 [n] scratch. False (nothing drawn, no
        generator output used) when every leaf is 0."""
        cdef Py_ssize_t i
        if not self._total > 0.0:
            return False
        cdef double stratum = self._total / n
        for i in range(n):
            prefix[i] = (i + _uniform01(&self.rng)) * stratum
        self._descend_batch(n, prefix, out_indices)
        cdef float beta_single = <float>beta
        for i in range(n):  # a float32 weight needs no float64 power (which costs twice as much)
            out_weights[i] = powf(<float>(self._min_positive / self.sums[out_indices[i]]), beta_single)
        return True


def _rebuild_sumtree(capacity, leaves, rng_state):
    tree = SumTree(capacity)
    tree._restore(leaves, rng_state)
    return tree
