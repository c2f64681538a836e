"""Running means and variances, and the observation scaling of engine.vec_normalize, in C.

SB3's `VecNormalize` spends ~140 us a vec step of 16 soccer games in numpy (a batch mean and variance per
statistic through numpy's Python-level `_methods`, a merge, a deep copy, the scaling), where the games
themselves step in ~15 us. The observations' share, the same arithmetic in one call each:

- `update_columns`: SB3's `RunningMeanStd.update` of float32 observations: each column's batch mean and
  population variance as numpy takes them (float32 sums, row after row, two passes), merged into the
  running float64 ones by Chan et al.'s parallel rule term for term as SB3 writes it. Bit for bit SB3's.
- `scale`: `clip((obs - mean) / sqrt(var + epsilon), -clip, clip)` in float64, returned as float32 as
  SB3's `normalize_obs` returns it. Bit for bit SB3's.

Each returns new arrays and leaves its inputs alone, as SB3's assignments do (a checkpoint's statistics
taken earlier never change under it).
"""

from libc.math cimport sqrt

import numpy as np


def update_columns(const double[::1] mean, const double[::1] var, double count, const float[:, ::1] batch):
    """(mean [D], var [D], count) after merging `batch` [N, D] (rows are samples) into the running
    statistics (mean [D], var [D], count)."""
    cdef Py_ssize_t n = batch.shape[0], d = batch.shape[1], i, j
    if mean.shape[0] != d or var.shape[0] != d:
        raise ValueError(f"the statistics have {mean.shape[0]} and {var.shape[0]} columns, the batch {d}")
    if n == 0:
        return np.array(mean), np.array(var), count
    new_mean = np.empty(d)
    new_var = np.empty(d)
    cdef double[::1] m = new_mean, v = new_var
    cdef float column_sum, column_mean, delta, squares
    with nogil:
        for j in range(d):
            # numpy's mean and var over axis 0 of float32 rows: float32 sums, row after row
            column_sum = 0.0
            for i in range(n):
                column_sum = column_sum + batch[i, j]
            column_mean = column_sum / <float>n
            squares = 0.0
            for i in range(n):
                delta = batch[i, j] - column_mean
                squares = squares + delta * delta
            # SB3 multiplies the float32 batch variance by the count in float32 too
            _merge(mean[j], var[j], count, column_mean, (squares / <float>n) * <float>n, n, &m[j], &v[j])
    return new_mean, new_var, count + n


cdef inline void _merge(double mean, double var, double count, double batch_mean, double batch_spread,
                        double batch_count, double* out_mean, double* out_var) noexcept nogil:
    """SB3's RunningMeanStd.update_from_moments, term for term; `batch_spread` is its batch variance times
    the batch count."""
    cdef double delta = batch_mean - mean
    cdef double total = count + batch_count
    out_mean[0] = mean + delta * batch_count / total
    out_var[0] = (var * count + batch_spread + delta * delta * count * batch_count / total) / total


def scale(const float[:, ::1] obs, const double[::1] mean, const double[::1] var, double epsilon, double clip):
    """float32 [N, D]: `obs` [N, D] centred by `mean`, divided by sqrt(`var` + `epsilon`), clipped to +-`clip`."""
    cdef Py_ssize_t n = obs.shape[0], d = obs.shape[1], i, j
    if mean.shape[0] != d or var.shape[0] != d:
        raise ValueError(f"the statistics have {mean.shape[0]} and {var.shape[0]} columns, the observations {d}")
    out = np.empty((n, d), dtype=np.float32)
    cdef float[:, ::1] o = out
    cdef double value
    with nogil:
        for i in range(n):
            for j in range(d):
                value = (obs[i, j] - mean[j]) / sqrt(var[j] + epsilon)
                o[i, j] = <float>min(max(value, -clip), clip)
    return out
