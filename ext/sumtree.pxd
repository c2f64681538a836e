# The sum-tree's C interface, for cores that sample and update it with the GIL released
# (ext.replay_core). ext/sumtree.pyx holds the implementation and its documentation.
cimport cython
from libc.stdint cimport int64_t

from ext.rng cimport Rng

cdef enum:
    MAX_LEVELS = 24


@cython.final
cdef class SumTree:
    cdef readonly Py_ssize_t capacity
    cdef int n_levels
    cdef Py_ssize_t level_offset[MAX_LEVELS]
    cdef Py_ssize_t level_size[MAX_LEVELS]
    cdef object _sums_storage
    cdef object _mins_storage
    cdef object _running_storage
    cdef double* sums
    cdef double* mins  # node k of level >= 1 is at mins[level_offset[level] + k - leaf_count]
    cdef Py_ssize_t leaf_count
    cdef double* running  # like mins: internal nodes only
    cdef double _total
    cdef double _min_positive
    cdef Rng rng
    cdef object _prefix_work
    cdef object _node_work

    cdef double* _aligned(self, double[::1] storage)
    cdef double[::1] _prefix_scratch(self, Py_ssize_t n)
    cdef int64_t[::1] _node_scratch(self, Py_ssize_t n)
    cdef int _check_indices(self, const int64_t[::1] indices) except -1
    cdef void _write_leaf(self, Py_ssize_t leaf, double priority) noexcept nogil
    cdef void _recompute_group(self, int level, Py_ssize_t group_start, double* sum_out, double* min_out) noexcept nogil
    cdef void _recompute_parent(self, int level, Py_ssize_t parent) noexcept nogil
    cdef void _recompute_nodes(self, Py_ssize_t n, int64_t* nodes) noexcept nogil
    cdef void _recompute_range(self, Py_ssize_t first_leaf, Py_ssize_t end_leaf) noexcept nogil
    cdef void _refresh_root(self) noexcept nogil
    cdef void _descend_batch(self, Py_ssize_t n, double* prefix, int64_t* node) noexcept nogil
    cdef bint draw(self, Py_ssize_t n, double beta, double* prefix, int64_t* out_indices,
                   float* out_weights) noexcept nogil
    cdef void write(self, Py_ssize_t n, const int64_t* indices, const double* priorities,
                    int64_t* nodes) noexcept nogil
