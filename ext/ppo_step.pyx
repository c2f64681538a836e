"""PPO's gradient steps for SB3's Gaussian MLP actor-critic, one epoch per call, in C with the GIL released.

engine.cpu_ppo runs SB3's `PPO.train()` on the CPU without torch; this is its inner loop. Per minibatch
(rows `order[start:start + batch]` of the rollout, the last minibatch shorter): gather the rows, the
policy and value MLPs forward (tanh hidden layers, linear heads), SB3's loss terms (per-minibatch
advantage normalisation, clipped surrogate, value loss, entropy, approximate KL), SB3's early stop when
the KL passes `target_kl` (before that minibatch's step, as SB3 does), the hand-derived backward pass,
`clip_grad_norm_` over every parameter and torch's Adam, all on one flat float32 parameter vector laid
out as the torch policy's `parameters()`. Matrix products go to BLAS (scipy's `sgemm`, the same OpenBLAS
numpy uses); everything else is flat loops over float32, reductions accumulated in float64.

Why C: a gradient step on 64 rows of a 64 x 64 network is ~2 MFLOP, tens of microseconds of arithmetic;
in numpy the ~60 array operations around it cost several times that in per-call overhead.

tanh is a rational approximation (`tanh32`), within a few float32 ulp of the true value (the tests compare
the whole update with torch's): glibc's `tanhf` costs ~15 ns a value here and would be a third of the step.

Rows of `stats` (one per minibatch): policy loss, value loss, entropy loss, clip fraction, approximate KL,
gradient norm before clipping, after clipping (both 0 for a minibatch stopped by the KL rule).
"""

from libc.math cimport exp, fabs, log, pi, sqrt, sqrtf
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from scipy.linalg.cython_blas cimport sgemm

import numpy as np

cdef enum:
    MAX_LINEAR = 8  # linear layers per MLP, its head included
    MAX_ACTIONS = 64  # action dimensions (per-dimension sums live on the stack)
    STAT_COLUMNS = 7

# tanh(x) ~ x P(x^2) / Q(x^2) on |x| <= TANH_CLAMP (fitted for relative error, max 2e-8 in float64); beyond
# the clamp tanh is 1 in float32.
cdef float TANH_CLAMP = 9.0
cdef float TP0 = 1.0, TP1 = 0.13380999863147736, TP2 = 0.0034955621231347322
cdef float TP3 = 2.060883525700774e-05, TP4 = 1.3354612526939036e-08
cdef float TQ0 = 1.0, TQ1 = 0.46714314818382263, TQ2 = 0.02587687037885189
cdef float TQ3 = 0.000328560039633885, TQ4 = 7.776479264975933e-07


cdef struct Mlp:
    int layers  # linear layers, the last the head (no tanh after it)
    int dims[MAX_LINEAR + 1]  # dims[0] inputs; layer l maps dims[l] -> dims[l + 1]
    int64_t weight[MAX_LINEAR]  # offset of layer l's weight [dims[l + 1], dims[l]] in the flat vector
    int64_t bias[MAX_LINEAR]  # offset of its bias [dims[l + 1]]
    float* out[MAX_LINEAR]  # layer l's output [rows, dims[l + 1]], tanh applied (hidden layers)


cdef inline float tanh32(float x) noexcept nogil:
    if x > TANH_CLAMP:
        x = TANH_CLAMP
    elif x < -TANH_CLAMP:
        x = -TANH_CLAMP
    cdef float z = x * x
    cdef float num = (((TP4 * z + TP3) * z + TP2) * z + TP1) * z + TP0
    cdef float den = (((TQ4 * z + TQ3) * z + TQ2) * z + TQ1) * z + TQ0
    cdef float y = x * num / den
    # Keep |y| <= 1 (the fit overshoots by an ulp near the clamp): 1 - y^2 is tanh's derivative.
    if y > 1.0:
        y = 1.0
    elif y < -1.0:
        y = -1.0
    return y


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return t.tv_sec * 1_000_000_000 + t.tv_nsec


cdef void mlp_forward(Mlp* net, float* params, float* x, int rows) noexcept nogil:
    """Every layer's output for `rows` input rows `x` [rows, dims[0]]."""
    cdef float one = 1.0
    cdef float* inputs = x
    cdef float* y
    cdef int layer, r, n_in, n_out
    cdef int64_t i, size
    for layer in range(net.layers):
        n_in, n_out, y = net.dims[layer], net.dims[layer + 1], net.out[layer]
        for r in range(rows):
            memcpy(y + r * n_out, params + net.bias[layer], n_out * sizeof(float))
        # Row-major y [rows, out] += x [rows, in] W^T, as column-major y^T = W x^T.
        sgemm(b"T", b"N", &n_out, &rows, &n_in, &one, params + net.weight[layer], &n_in, inputs, &n_in,
              &one, y, &n_out)
        if layer < net.layers - 1:
            size = <int64_t>rows * n_out
            for i in range(size):
                y[i] = tanh32(y[i])
        inputs = y


cdef inline int _widest(Mlp* net) noexcept nogil:
    cdef int layer, widest = 1
    for layer in range(net.layers + 1):
        widest = max(widest, net.dims[layer])
    return widest


cdef void mlp_backward(Mlp* net, float* params, float* grads, float* x, int rows, float* grad_out,
                       float* spare) noexcept nogil:
    """Write d loss / d weights of `net` into `grads`, given d loss / d head output `grad_out` [rows, out]
    and the forward pass's outputs; `spare` holds two [rows, widest layer] blocks, used in turn for the
    gradient flowing down."""
    cdef float one = 1.0, zero = 0.0
    cdef float* upstream = grad_out
    cdef float* below = spare
    cdef float* other = spare + <int64_t>rows * _widest(net)
    cdef float* inputs
    cdef float* gb
    cdef float h
    cdef int layer, r, j, n_in, n_out
    cdef int64_t i, size
    for layer in range(net.layers - 1, -1, -1):
        n_in, n_out = net.dims[layer], net.dims[layer + 1]
        inputs = x if layer == 0 else net.out[layer - 1]
        # gW [out, in] = upstream^T inputs, as column-major gW^T = inputs^T upstream.
        sgemm(b"N", b"T", &n_in, &n_out, &rows, &one, inputs, &n_in, upstream, &n_out, &zero,
              grads + net.weight[layer], &n_in)
        gb = grads + net.bias[layer]
        for j in range(n_out):
            gb[j] = 0.0
        for r in range(rows):
            for j in range(n_out):
                gb[j] += upstream[r * n_out + j]
        if layer == 0:
            break
        # d / d inputs [rows, in] = upstream W, then through the tanh that made them.
        sgemm(b"N", b"N", &n_in, &rows, &n_out, &one, params + net.weight[layer], &n_in, upstream, &n_out,
              &zero, below, &n_in)
        size = <int64_t>rows * n_in
        for i in range(size):
            h = inputs[i]
            below[i] *= 1.0 - h * h
        upstream, below, other = below, other, below


cdef class PpoEpochs:
    """SB3's PPO gradient steps over a flat float32 parameter vector (module docstring).

    `pi_layers` / `vf_layers`: each linear layer of the policy / value MLP, input side first, as
    (weight offset, bias offset, outputs, inputs) into the flat vectors; the policy head gives the action
    means, the value head one value. `params`, `grads`, `exp_avg`, `exp_avg_sq`: the flat vectors
    (weights, gradient scratch, Adam's moments), updated in place. `adam_steps`: Adam's step count so far.
    `target_kl`: the early-stop threshold already scaled as SB3 scales it (1.5 x), or None.
    """

    cdef Mlp pi, vf
    cdef int64_t log_std
    cdef int batch, obs_dim, act_dim
    cdef float[::1] params, grads, exp_avg, exp_avg_sq
    cdef float* scratch
    cdef float* obs
    cdef float* actions
    cdef float* old_log_prob
    cdef float* advantages
    cdef float* returns
    cdef float* grad_mean
    cdef float* grad_value
    cdef float* spare
    cdef double lr, beta1, beta2, eps, ent_coef, vf_coef, max_grad_norm, target_kl
    cdef bint normalize_advantage, kl_stop
    cdef public int64_t adam_steps, forward_ns, backward_ns

    def __cinit__(self, pi_layers, vf_layers, int64_t log_std_offset, float[::1] params, float[::1] grads,
                  float[::1] exp_avg, float[::1] exp_avg_sq, int64_t adam_steps, *, int batch_size,
                  double lr, betas, double eps, double ent_coef, double vf_coef, double max_grad_norm,
                  target_kl, bint normalize_advantage):
        self.scratch = NULL
        _describe(&self.pi, pi_layers, "pi_layers")
        _describe(&self.vf, vf_layers, "vf_layers")
        if self.pi.dims[0] != self.vf.dims[0] or self.vf.dims[self.vf.layers] != 1:
            raise ValueError("the policy and value MLPs must read the same inputs, the value head give one value")
        if not (params.shape[0] == grads.shape[0] == exp_avg.shape[0] == exp_avg_sq.shape[0]):
            raise ValueError("params, grads and Adam's moments must be vectors of one length")
        if self.pi.dims[self.pi.layers] > MAX_ACTIONS:
            raise ValueError(f"at most {MAX_ACTIONS} action dimensions, got {self.pi.dims[self.pi.layers]}")
        for layers_of, net in ((pi_layers, "pi_layers"), (vf_layers, "vf_layers")):
            for weight, bias, n_out, n_in in layers_of:
                if min(weight, bias) < 0 or max(weight + n_out * n_in, bias + n_out) > params.shape[0]:
                    raise ValueError(f"{net}: a layer lies outside the parameter vector")
        if not 0 <= log_std_offset <= params.shape[0] - self.pi.dims[self.pi.layers]:
            raise ValueError("log_std_offset: log_std lies outside the parameter vector")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.params, self.grads, self.exp_avg, self.exp_avg_sq = params, grads, exp_avg, exp_avg_sq
        self.batch, self.obs_dim = batch_size, self.pi.dims[0]
        self.act_dim = self.pi.dims[self.pi.layers]
        self.log_std = log_std_offset
        self.adam_steps = adam_steps
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.ent_coef, self.vf_coef, self.max_grad_norm = ent_coef, vf_coef, max_grad_norm
        self.kl_stop = target_kl is not None
        self.target_kl = float(target_kl) if self.kl_stop else 0.0
        self.normalize_advantage = normalize_advantage
        self.forward_ns = self.backward_ns = 0
        self._allocate()

    cdef void _allocate(self) except *:
        """One block for every layer's outputs, the gathered minibatch, the loss gradients and two spare
        [batch, widest layer] blocks for the backward pass."""
        cdef int widest = max(_widest(&self.pi), _widest(&self.vf)), layer, k
        cdef int64_t total = 0, b = self.batch
        cdef Mlp* nets[2]
        nets[0], nets[1] = &self.pi, &self.vf
        for k in range(2):
            for layer in range(nets[k].layers):
                total += b * nets[k].dims[layer + 1]
        total += b * (self.obs_dim + 2 * self.act_dim + 4 + 2 * widest)
        self.scratch = <float*>malloc(total * sizeof(float))
        if self.scratch == NULL:
            raise MemoryError()
        cdef float* cursor = self.scratch
        for k in range(2):
            for layer in range(nets[k].layers):
                nets[k].out[layer] = cursor
                cursor += b * nets[k].dims[layer + 1]
        self.obs, cursor = cursor, cursor + b * self.obs_dim
        self.actions, cursor = cursor, cursor + b * self.act_dim
        self.grad_mean, cursor = cursor, cursor + b * self.act_dim
        self.old_log_prob, cursor = cursor, cursor + b
        self.advantages, cursor = cursor, cursor + b
        self.returns, cursor = cursor, cursor + b
        self.grad_value, cursor = cursor, cursor + b
        self.spare = cursor

    def __dealloc__(self):
        free(self.scratch)

    def epoch(self, const float[:, ::1] obs, const float[:, ::1] actions, const float[::1] old_log_prob,
              const float[::1] advantages, const float[::1] returns, const int64_t[::1] order,
              double clip_range, double[:, ::1] stats):
        """One epoch's minibatches over the rollout (N rows; `order` a permutation of them) -> (minibatches
        done, whether the KL rule stopped training). Writes one row of `stats` per minibatch done."""
        cdef int64_t n = order.shape[0]
        cdef int64_t needed = (n + self.batch - 1) // self.batch
        if obs.shape[1] != self.obs_dim or actions.shape[1] != self.act_dim:
            raise ValueError(f"observations must have {self.obs_dim} columns, actions {self.act_dim}")
        if not (obs.shape[0] == actions.shape[0] == old_log_prob.shape[0] == advantages.shape[0]
                == returns.shape[0] == n):
            raise ValueError("the rollout's arrays and `order` must have one row per transition")
        if stats.shape[0] < needed or stats.shape[1] != STAT_COLUMNS:
            raise ValueError(f"stats must be [>= {needed}, {STAT_COLUMNS}]")
        if n and (np.min(order) < 0 or np.max(order) >= n):
            raise ValueError("order must index the rollout's rows")
        cdef int64_t start, done = 0
        cdef bint stopped = False
        with nogil:
            start = 0
            while start < n:
                if self._minibatch(obs, actions, old_log_prob, advantages, returns, &order[start],
                                   <int>min(self.batch, n - start), clip_range, &stats[done, 0]):
                    stopped = True
                    done += 1
                    break
                done += 1
                start += self.batch
        return done, stopped

    cdef bint _minibatch(self, const float[:, ::1] obs, const float[:, ::1] actions,
                         const float[::1] old_log_prob, const float[::1] advantages, const float[::1] returns,
                         const int64_t* rows, int count, double clip_range, double* stat) noexcept nogil:
        """One minibatch (`count` rollout rows): its stats into `stat`, then a gradient step unless the KL
        rule stops (-> True)."""
        cdef int i, a = self.act_dim
        cdef int64_t row
        cdef float* params = &self.params[0]
        cdef int64_t t0 = now_ns()
        for i in range(count):
            row = rows[i]
            memcpy(self.obs + i * self.obs_dim, &obs[row, 0], self.obs_dim * sizeof(float))
            memcpy(self.actions + i * a, &actions[row, 0], a * sizeof(float))
            self.old_log_prob[i] = old_log_prob[row]
            self.advantages[i] = advantages[row]
            self.returns[i] = returns[row]
        mlp_forward(&self.pi, params, self.obs, count)
        mlp_forward(&self.vf, params, self.obs, count)
        cdef int64_t t1 = now_ns()
        self.forward_ns += t1 - t0
        if self._losses(count, clip_range, stat):
            return True
        mlp_backward(&self.pi, params, &self.grads[0], self.obs, count, self.grad_mean, self.spare)
        mlp_backward(&self.vf, params, &self.grads[0], self.obs, count, self.grad_value, self.spare)
        self._clip_and_step(stat)
        self.backward_ns += now_ns() - t1
        return False

    cdef bint _losses(self, int count, double clip_range, double* stat) noexcept nogil:
        """SB3's loss terms into `stat` and their gradients: d/d means into `grad_mean`, d/d value (times
        vf_coef) into `grad_value`, d/d log_std into `grads`. -> True when the KL rule stops training."""
        cdef int i, j, a = self.act_dim
        cdef float* log_std = &self.params[self.log_std]
        cdef float* grad_log_std = &self.grads[self.log_std]
        cdef float* means = self.pi.out[self.pi.layers - 1]
        cdef float* values = self.vf.out[self.vf.layers - 1]
        cdef float inv_var[MAX_ACTIONS]
        cdef double log_sqrt_2pi = 0.5 * log(2.0 * pi)
        cdef double log_std_sum = 0.0, center = 0.0, spread = 0.0, scale_adv = 1.0
        cdef double squares, log_ratio, ratio, adv, surrogate, clipped, grad_log_prob, diff, scaled, error
        cdef double policy_sum = 0.0, value_sum = 0.0, kl_sum = 0.0, clipped_rows = 0.0
        cdef double grad_log_std_sum[MAX_ACTIONS]
        for j in range(a):
            log_std_sum += log_std[j]
            inv_var[j] = <float>exp(-2.0 * log_std[j])
            grad_log_std_sum[j] = 0.0
        cdef double constant = log_std_sum + log_sqrt_2pi * a
        if self.normalize_advantage and count > 1:
            for i in range(count):
                center += self.advantages[i]
            center /= count
            for i in range(count):
                spread += (self.advantages[i] - center) * (self.advantages[i] - center)
            scale_adv = 1.0 / (sqrt(spread / (count - 1)) + 1e-8)  # torch's std: unbiased
        for i in range(count):
            squares = 0.0
            for j in range(a):
                diff = self.actions[i * a + j] - means[i * a + j]
                squares += diff * diff * inv_var[j]
            log_ratio = (-0.5 * squares - constant) - self.old_log_prob[i]
            ratio = exp(log_ratio)
            adv = self.advantages[i]
            if self.normalize_advantage and count > 1:
                adv = (adv - center) * scale_adv
            surrogate = adv * ratio
            clipped = adv * min(max(ratio, 1.0 - clip_range), 1.0 + clip_range)
            policy_sum += min(surrogate, clipped)
            kl_sum += (ratio - 1.0) - log_ratio
            if fabs(ratio - 1.0) > clip_range:
                clipped_rows += 1.0
            # torch.min's gradient goes to the smaller term; the clipped one carries none outside its range.
            grad_log_prob = -surrogate / count if surrogate <= clipped else 0.0
            for j in range(a):
                diff = self.actions[i * a + j] - means[i * a + j]
                scaled = diff * inv_var[j]
                self.grad_mean[i * a + j] = <float>(grad_log_prob * scaled)
                grad_log_std_sum[j] += grad_log_prob * (diff * scaled - 1.0)
            error = values[i] - self.returns[i]
            value_sum += error * error
            self.grad_value[i] = <float>(self.vf_coef * 2.0 / count * error)
        stat[0] = -policy_sum / count
        stat[1] = value_sum / count
        stat[2] = -(a * (0.5 + log_sqrt_2pi) + log_std_sum)
        stat[3] = clipped_rows / count
        stat[4] = kl_sum / count
        stat[5] = stat[6] = 0.0
        if self.kl_stop and stat[4] > self.target_kl:
            return True
        for j in range(a):  # the entropy loss (-entropy) has d/d log_std = -1 in every dimension
            grad_log_std[j] = <float>(grad_log_std_sum[j] - self.ent_coef)
        return False

    cdef void _clip_and_step(self, double* stat) noexcept nogil:
        """torch's clip_grad_norm_ (always scaled by min(1, max / (norm + 1e-6))), then torch's Adam step."""
        cdef int64_t i, size = self.params.shape[0]
        cdef float* p = &self.params[0]
        cdef float* g = &self.grads[0]
        cdef float* m = &self.exp_avg[0]
        cdef float* v = &self.exp_avg_sq[0]
        cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0  # four running sums: no chain of dependent adds
        for i in range(0, size - 3, 4):
            s0 += <double>g[i] * g[i]
            s1 += <double>g[i + 1] * g[i + 1]
            s2 += <double>g[i + 2] * g[i + 2]
            s3 += <double>g[i + 3] * g[i + 3]
        for i in range(size - size % 4, size):
            s0 += <double>g[i] * g[i]
        cdef double norm = sqrt((s0 + s1) + (s2 + s3))
        cdef double scale = min(1.0, self.max_grad_norm / (norm + 1e-6))
        stat[5], stat[6] = norm, norm * scale
        self.adam_steps += 1
        cdef float clip = <float>scale
        cdef float keep_m = <float>(1.0 - self.beta1), beta2 = <float>self.beta2, keep_v = <float>(1.0 - self.beta2)
        cdef float bias2_sqrt = <float>sqrt(1.0 - self.beta2 ** self.adam_steps)
        cdef float step_size = <float>(self.lr / (1.0 - self.beta1 ** self.adam_steps))
        cdef float eps = <float>self.eps, grad
        for i in range(size):
            grad = g[i] * clip
            m[i] += (grad - m[i]) * keep_m  # torch's lerp_ towards the gradient
            v[i] = v[i] * beta2 + grad * grad * keep_v
            p[i] -= step_size * (m[i] / (sqrtf(v[i]) / bias2_sqrt + eps))


cdef int _describe(Mlp* net, layers, str name) except -1:
    """Fill `net`'s layout from [(weight offset, bias offset, outputs, inputs), ...], checking the chain."""
    layers = list(layers)
    if not 1 <= len(layers) <= MAX_LINEAR:
        raise ValueError(f"{name}: 1 to {MAX_LINEAR} linear layers, got {len(layers)}")
    net.layers = len(layers)
    for layer, (weight, bias, n_out, n_in) in enumerate(layers):
        if layer and n_in != net.dims[layer]:
            raise ValueError(f"{name}: layer {layer} reads {n_in} values, the layer before gives {net.dims[layer]}")
        if n_in < 1 or n_out < 1:
            raise ValueError(f"{name}: layer {layer} has no inputs or outputs")
        net.dims[layer], net.dims[layer + 1] = n_in, n_out
        net.weight[layer], net.bias[layer] = weight, bias
    return 0
