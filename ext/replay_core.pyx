"""The C side of prioritized replay: the lock over the sum-tree and the transition arrays, whole-batch
draws (tree sample plus the gather of every field), and a FIFO of draw and priority-write jobs run by a
native worker thread. Everything that touches the tree or the arrays runs with the GIL released.

Why a native worker: a Python prefetch thread needs the GIL for the Python around its C draw, and the
trainer's thread then waits to get the GIL back at each hand-over; measured inside a dqn-per run at 8
games that cost ~25-30 us per gradient step, a third of what drawing inline costs. This worker never
touches a Python object, so taking a finished batch is reading a counter.

ReplayStore: what engine.replay.PrioritizedReplayBuffer keeps in C. `with store:` holds its lock (a
pthread mutex, which the worker can take without the GIL; the GIL is released while waiting for it),
for Python code that writes the arrays or the tree. `draw()` and `update()` take the lock themselves;
never call them while holding it.

BatchMemory: the arrays one batch is drawn into (allocated once by the caller's allocator, e.g. page-
locked memory for CUDA copies), reused batch after batch. `idle` tells whether anything made from its
arrays (a tensor, a view) is still alive, so a caller can reuse it without changing a batch in use.

JobQueue: jobs run one at a time, in the order they were submitted, each holding the store's lock:
by the worker thread, or by the caller of `wait()` when the job it waits for (or one before it) has not
been started, so a worker that gets no core never leaves the trainer sleeping on it. The worker runs as
SCHED_BATCH on Linux: waking it never preempts the trainer's thread; it takes a free core.

This module knows nothing of SB3 or torch; engine.replay and engine.prefetch hold the Python around it.
"""

cimport cython
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBuffer_Release, PyObject_GetBuffer
from cpython.object cimport PyObject
from libc.math cimport INFINITY, pow
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset
from posix.time cimport nanosleep, timespec

import numpy as np

from ext.sumtree cimport SumTree


cdef extern from *:
    """
    #define TRAINCTL_FETCH_L1(address) __builtin_prefetch((address), 0, 3)
    #define TRAINCTL_FETCH_L2(address) __builtin_prefetch((address), 0, 2)
    """
    void fetch_l1 "TRAINCTL_FETCH_L1" (const void* address) noexcept nogil  # prefetcht0
    void fetch_l2 "TRAINCTL_FETCH_L2" (const void* address) noexcept nogil  # prefetcht1
    Py_ssize_t _refcount "Py_REFCNT" (PyObject* held) noexcept


cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass
    ctypedef unsigned long pthread_t
    int pthread_mutex_init(pthread_mutex_t* mutex, const void* attr)
    int pthread_mutex_destroy(pthread_mutex_t* mutex)
    int pthread_mutex_lock(pthread_mutex_t* mutex)
    int pthread_mutex_trylock(pthread_mutex_t* mutex)
    int pthread_mutex_unlock(pthread_mutex_t* mutex)
    int pthread_cond_init(pthread_cond_t* cond, const void* attr)
    int pthread_cond_destroy(pthread_cond_t* cond)
    int pthread_cond_wait(pthread_cond_t* cond, pthread_mutex_t* mutex)
    int pthread_cond_signal(pthread_cond_t* cond)
    int pthread_cond_broadcast(pthread_cond_t* cond)
    int pthread_create(pthread_t* thread, const void* attr, void* (*start)(void*) noexcept nogil, void* arg)
    int pthread_join(pthread_t thread, void** result)


cdef extern from *:
    """
    #if defined(__linux__) && defined(SCHED_BATCH)
    static void trainctl_batch_priority(void) {
        struct sched_param param;
        param.sched_priority = 0;
        sched_setscheduler(0, SCHED_BATCH, &param);  /* 0: the calling thread */
    }
    #else
    static void trainctl_batch_priority(void) {}
    #endif
    """
    void trainctl_batch_priority() noexcept nogil


cdef enum:
    # Random rows miss every cache. A gather asks for rows GATHER_AHEAD_L2 ahead into L2 and, nearer,
    # GATHER_AHEAD ahead into L1: a core's L1 can wait on only ~16 lines at a time, L2 on several times
    # that, so staging through L2 keeps more misses in flight (measured here: 21.5 -> 14.6 us for 256
    # rows of 10 lines; L1 alone at any distance stays at ~21.5).
    GATHER_AHEAD = 8
    GATHER_AHEAD_L2 = 24
    CACHE_LINE = 64
    RING = 32  # queued jobs at most; a submit that finds the ring full runs the oldest job itself
    POLL_NS = 100000  # an idle worker looks for work every 100 us ...
    IDLE_POLLS = 500  # ... for 50 ms, then sleeps until a submit wakes it
    DRAW = 0
    WRITE = 1


cdef struct Batch:
    Py_ssize_t size
    bint drawn  # False when the last draw found nothing stored (every priority 0)
    double* prefix  # scratch of the tree's draw
    int64_t* indices
    float* weights
    unsigned char* obs
    unsigned char* next_obs
    unsigned char* actions
    float* rewards
    float* dones
    unsigned char* masks  # NULL when the store keeps no masks


cdef struct Job:
    int kind
    Batch* batch  # DRAW: into this batch, with this beta
    double beta
    Py_ssize_t n  # WRITE: n >= 1 leaves at indices get priorities; one malloc'ed block holds both and
    int64_t* indices  # the nodes scratch, freed once run
    double* priorities
    int64_t* nodes
    double largest


cdef inline void _fetch(const void* address, bint into_l2) noexcept nogil:
    if into_l2:  # a constant where this is inlined, so the branch folds away
        fetch_l2(address)
    else:
        fetch_l1(address)


cdef unsigned char* _rows(object array, Py_ssize_t rows) except NULL:
    """The start of a C-contiguous array holding `rows` rows, checked. The caller keeps `array` alive
    (a numpy array's memory never moves). Read through the buffer protocol: a memoryview costs ~1 us."""
    cdef Py_buffer view
    PyObject_GetBuffer(array, &view, PyBUF_C_CONTIGUOUS)
    cdef bint fits = view.ndim >= 1 and view.shape[0] == rows
    cdef unsigned char* start = <unsigned char*>view.buf
    PyBuffer_Release(&view)
    if not fits:
        raise ValueError(f"expected a C-contiguous array of {rows} rows, got shape {array.shape}")
    return start


@cython.final
@cython.no_gc_clear  # a worker may be drawing from the arrays until the queue holding this store is gone
cdef class ReplayStore:
    """The sum-tree, the buffer's arrays and their lock, and the largest priority ever written.

    Args (the buffer's arrays flattened to [capacity, ...], C-contiguous, bound for the store's life):
        tree: the sum-tree, one leaf per transition.
        obs, next_obs: [capacity, *obs_shape], any dtype.
        actions: [capacity, action_dim], any dtype.
        scalars: float32 [capacity, 4]: reward, done, timeout, and the done the TD target uses.
        masks: bool [capacity, n_actions], or None.
    """

    cdef readonly SumTree tree
    cdef public double max_priority
    cdef public Py_ssize_t stored  # transitions held: their indices are [0, stored); kept by the buffer
    cdef pthread_mutex_t mutex
    cdef readonly object arrays  # keeps the bound memory alive
    cdef unsigned char* obs
    cdef unsigned char* next_obs
    cdef unsigned char* actions
    cdef float* scalars
    cdef unsigned char* masks
    cdef readonly Py_ssize_t capacity, obs_bytes, action_bytes, mask_bytes
    cdef double* prefix_work  # scratch of update(), used under the lock only
    cdef int64_t* node_work
    cdef Py_ssize_t work_size

    def __cinit__(self, SumTree tree, obs, next_obs, actions, scalars, masks):
        self.capacity = tree.capacity
        self.tree = tree
        self.max_priority = 1.0
        self.arrays = (obs, next_obs, actions, scalars, masks)
        self.obs = _rows(obs, self.capacity)
        self.next_obs = _rows(next_obs, self.capacity)
        self.actions = _rows(actions, self.capacity)
        if scalars.dtype != np.float32 or scalars.shape[1:] != (4,):
            raise ValueError(f"scalars must be float32 [capacity, 4], got {scalars.dtype} {scalars.shape}")
        self.scalars = <float*>_rows(scalars, self.capacity)
        self.obs_bytes = obs.nbytes // self.capacity
        if next_obs.nbytes != obs.nbytes:
            raise ValueError("obs and next_obs must have the same shape and dtype")
        self.action_bytes = actions.nbytes // self.capacity
        self.masks = NULL
        self.mask_bytes = 0
        if masks is not None:
            self.masks = _rows(masks, self.capacity)
            self.mask_bytes = masks.nbytes // self.capacity
        pthread_mutex_init(&self.mutex, NULL)

    def __dealloc__(self):
        pthread_mutex_destroy(&self.mutex)
        free(self.prefix_work)
        free(self.node_work)

    def __enter__(self):
        self.lock()
        return self

    def __exit__(self, *exc_info):
        pthread_mutex_unlock(&self.mutex)
        return False

    cdef void lock(self) noexcept:
        """Take the lock; the GIL is released only when it has to be waited for."""
        if pthread_mutex_trylock(&self.mutex) != 0:
            with nogil:
                pthread_mutex_lock(&self.mutex)

    def draw(self, BatchMemory batch, double beta):
        """Draw batch.size transitions into `batch` (see Batch). Raises ValueError when nothing is stored."""
        if batch.store is not self:
            raise ValueError("this BatchMemory was laid out for another ReplayStore")
        self.lock()
        with nogil:
            self.draw_locked(&batch.view, beta)
            pthread_mutex_unlock(&self.mutex)
        if not batch.view.drawn:
            raise ValueError(NOTHING_STORED)

    def update(self, indices, priorities, double epsilon, double alpha):
        """`proportional_priorities` and the tree write in one call, without the intermediate array: the
        priorities (>= 0, [n]) of indices ([n], in [0, stored)) become (priority + epsilon) ** alpha.
        Any array-like is taken ([n, 1] is flattened); int64 and float64 numpy arrays without a copy.
        Checked first (ValueError naming the offender; nothing written)."""
        cdef const int64_t[::1] index_view
        cdef const double[::1] priority_view
        try:
            index_view = indices
        except (TypeError, ValueError):  # not a contiguous int64 [n] buffer
            index_view = flat_array(indices, np.int64)
        try:
            priority_view = priorities
        except (TypeError, ValueError):
            priority_view = flat_array(priorities, np.float64)
        self.write_checked(index_view, priority_view, epsilon, alpha)

    cdef int write_checked(self, const int64_t[::1] indices, const double[::1] priorities, double epsilon,
                           double alpha) except -1:
        _check_priorities(indices, priorities, self.stored)
        cdef Py_ssize_t n = indices.shape[0]
        cdef double largest = 0.0
        cdef bint reserved
        if n == 0:
            return 0
        self.lock()
        with nogil:
            reserved = self.reserve(n)
            if reserved:
                largest = _tree_priorities(n, &priorities[0], epsilon, alpha, self.prefix_work)
                if largest < INFINITY:
                    self.write_locked(n, &indices[0], self.prefix_work, largest, self.node_work)
        try:
            if not reserved:
                raise MemoryError()
            if largest == INFINITY:
                _refuse_overflow(indices, priorities, self.prefix_work, epsilon, alpha)
        finally:
            pthread_mutex_unlock(&self.mutex)
        return 0

    cdef bint reserve(self, Py_ssize_t n) noexcept nogil:
        """Scratch for n priorities (grown, never shrunk). Holds the lock. False when memory is short."""
        cdef double* prefix
        cdef int64_t* nodes
        if n <= self.work_size:
            return True
        prefix = <double*>realloc(self.prefix_work, n * sizeof(double))
        if prefix == NULL:
            return False
        self.prefix_work = prefix
        nodes = <int64_t*>realloc(self.node_work, n * sizeof(int64_t))
        if nodes == NULL:
            return False
        self.node_work = nodes
        self.work_size = n
        return True

    cdef void draw_locked(self, Batch* batch, double beta) noexcept nogil:
        """Sample batch.size leaves, then copy each one's transition into the batch. Holds the lock."""
        cdef Py_ssize_t i, n = batch.size
        cdef int64_t row
        batch.drawn = self.tree.draw(n, beta, batch.prefix, batch.indices, batch.weights)
        if not batch.drawn:
            return
        for i in range(min(n, GATHER_AHEAD_L2)):
            self.fetch_row(batch.indices[i], True)
        for i in range(min(n, GATHER_AHEAD)):
            self.fetch_row(batch.indices[i], False)
        for i in range(n):
            if i + GATHER_AHEAD_L2 < n:
                self.fetch_row(batch.indices[i + GATHER_AHEAD_L2], True)
            if i + GATHER_AHEAD < n:
                self.fetch_row(batch.indices[i + GATHER_AHEAD], False)
            row = batch.indices[i]
            memcpy(batch.obs + i * self.obs_bytes, self.obs + row * self.obs_bytes, self.obs_bytes)
            memcpy(batch.next_obs + i * self.obs_bytes, self.next_obs + row * self.obs_bytes, self.obs_bytes)
            memcpy(batch.actions + i * self.action_bytes, self.actions + row * self.action_bytes,
                   self.action_bytes)
            batch.rewards[i] = self.scalars[4 * row]
            batch.dones[i] = self.scalars[4 * row + 3]
            if self.masks != NULL:
                memcpy(batch.masks + i * self.mask_bytes, self.masks + row * self.mask_bytes, self.mask_bytes)

    cdef inline void fetch_row(self, int64_t row, bint into_l2) noexcept nogil:
        """Ask L2 (or L1) for every line of transition `row` that a gather reads."""
        cdef Py_ssize_t offset = 0
        while offset < self.obs_bytes:
            _fetch(self.obs + row * self.obs_bytes + offset, into_l2)
            _fetch(self.next_obs + row * self.obs_bytes + offset, into_l2)
            offset += CACHE_LINE
        _fetch(self.actions + row * self.action_bytes, into_l2)
        _fetch(self.scalars + 4 * row, into_l2)
        if self.masks != NULL:
            _fetch(self.masks + row * self.mask_bytes, into_l2)

    cdef void write_locked(self, Py_ssize_t n, const int64_t* indices, const double* priorities,
                           double largest, int64_t* nodes) noexcept nogil:
        """Write n checked priorities (n >= 1; `nodes` is int64 [n] scratch) and raise the max priority.
        Holds the lock."""
        self.tree.write(n, indices, priorities, nodes)
        if largest > self.max_priority:
            self.max_priority = largest


def flat_array(values, dtype):
    """`values` (any array-like, e.g. a CPU tensor; [n, 1] is flattened) as a C-contiguous 1-D numpy
    array of `dtype`: what a priority update takes (int64 indices, float64 priorities). No copy when it
    already is one."""
    return np.ascontiguousarray(np.asarray(values).reshape(-1), dtype=dtype)


NOTHING_STORED = "cannot sample from a replay buffer with nothing stored yet"


cdef int _check_priorities(const int64_t[::1] indices, const double[::1] priorities, Py_ssize_t stored) except -1:
    """Refuse, naming the first offender, a priority that is NaN, infinite or negative, or an index
    outside [0, stored)."""
    cdef Py_ssize_t n = indices.shape[0], i
    cdef double p
    if priorities.shape[0] != n:
        raise ValueError(f"{n} indices but {priorities.shape[0]} priorities")
    for i in range(n):
        p = priorities[i]
        if not (p >= 0.0 and p < INFINITY):
            raise ValueError(f"priority {p} for replay index {indices[i]} must be finite and >= 0")
        if indices[i] < 0 or indices[i] >= stored:
            raise ValueError(f"replay index {indices[i]} holds no transition (stored: {stored})")
    return 0


cdef double _tree_priorities(Py_ssize_t n, const double* priorities, double epsilon, double alpha,
                             double* out) noexcept nogil:
    """out[i] = (priorities[i] + epsilon) ** alpha; returns their max (inf when one overflows)."""
    cdef Py_ssize_t i
    cdef double largest = 0.0
    for i in range(n):
        out[i] = pow(priorities[i] + epsilon, alpha)
        largest = out[i] if out[i] > largest else largest
    return largest


cdef int _refuse_overflow(const int64_t[::1] indices, const double[::1] priorities, const double* out,
                          double epsilon, double alpha) except -1:
    cdef Py_ssize_t i
    for i in range(indices.shape[0]):
        if out[i] == INFINITY:
            raise ValueError(f"priority {priorities[i]} for replay index {indices[i]} overflows to inf "
                             f"as (priority + {epsilon}) ** {alpha}")
    return 0


def proportional_priorities(
    const int64_t[::1] indices, const double[::1] priorities, Py_ssize_t stored, double epsilon, double alpha
):
    """The tree priorities (priorities[i] + epsilon) ** alpha, float64 [n], and their max, for a PER
    update (checked here, written later, e.g. by a JobQueue).

    indices (int64 [n]) must hold transitions, i.e. lie in [0, stored); priorities (float64 [n]) must be
    finite and >= 0, and so must its result (a huge priority with alpha > 1 overflows). The whole batch
    is checked before anything is returned; the first offender raises ValueError naming its index.
    """
    _check_priorities(indices, priorities, stored)
    cdef Py_ssize_t n = indices.shape[0]
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] out_view = out
    cdef double largest = 0.0
    if n:
        with nogil:
            largest = _tree_priorities(n, &priorities[0], epsilon, alpha, &out_view[0])
        if largest == INFINITY:
            _refuse_overflow(indices, priorities, &out_view[0], epsilon, alpha)
    return out, largest


@cython.final
@cython.no_gc_clear  # a worker may be drawing into the arrays until the queue holding this memory is gone
cdef class BatchMemory:
    """The arrays one batch of `size` transitions is drawn into, as numpy arrays (read after a draw):

        indices int64 [size]; weights float32 [size, 1]; observations, next_observations
        [size, *obs_shape] and actions [size, action_dim] in the store's dtypes; rewards, dones float32
        [size, 1]; next_action_masks bool [size, n_actions] or None.

    allocate(shape, dtype) -> a C-contiguous numpy array (np.empty, or page-locked memory).
    """

    cdef Batch view
    cdef readonly ReplayStore store
    cdef object _prefix
    cdef readonly object indices, weights, observations, next_observations, actions, rewards, dones
    cdef readonly object next_action_masks

    def __cinit__(self, ReplayStore store, Py_ssize_t size, allocate=np.empty):
        if size < 1:
            raise ValueError(f"a batch holds at least 1 transition, got {size}")
        self.store = store
        obs, _, actions, _, masks = store.arrays
        self.indices = allocate((size,), np.int64)
        self.weights = allocate((size, 1), np.float32)
        self.observations = allocate((size, *obs.shape[1:]), obs.dtype)
        self.next_observations = allocate((size, *obs.shape[1:]), obs.dtype)
        self.actions = allocate((size, *actions.shape[1:]), actions.dtype)
        self.rewards = allocate((size, 1), np.float32)
        self.dones = allocate((size, 1), np.float32)
        self.next_action_masks = None if masks is None else allocate((size, *masks.shape[1:]), masks.dtype)
        self._prefix = np.empty(size, dtype=np.float64)
        self.view.size = size
        self.view.drawn = False
        self.view.prefix = <double*>_rows(self._prefix, size)
        self.view.indices = <int64_t*>_rows(self.indices, size)
        self.view.weights = <float*>_rows(self.weights, size)
        self.view.obs = _rows(self.observations, size)
        self.view.next_obs = _rows(self.next_observations, size)
        self.view.actions = _rows(self.actions, size)
        self.view.rewards = <float*>_rows(self.rewards, size)
        self.view.dones = <float*>_rows(self.dones, size)
        self.view.masks = NULL if masks is None else _rows(self.next_action_masks, size)

    @property
    def size(self):
        return self.view.size

    @property
    def drawn(self):
        """Whether the last draw into this memory found transitions (False: nothing was stored)."""
        return self.view.drawn

    @property
    def idle(self):
        """Whether this memory is the only holder of its arrays: no tensor made from them (torch's
        from_numpy keeps its array alive), no numpy view and no caller's name for one is left, so a new
        draw into it changes nothing that anyone can still read."""
        return (_sole(<PyObject*>self.indices) and _sole(<PyObject*>self.weights)
                and _sole(<PyObject*>self.observations) and _sole(<PyObject*>self.next_observations)
                and _sole(<PyObject*>self.actions) and _sole(<PyObject*>self.rewards)
                and _sole(<PyObject*>self.dones)
                and (self.next_action_masks is None or _sole(<PyObject*>self.next_action_masks)))


cdef inline bint _sole(PyObject* held) noexcept:
    """Whether the one reference to `held` is its owner's (read without taking a reference)."""
    return _refcount(held) == 1


cdef void* _worker_main(void* queue) noexcept nogil:
    trainctl_batch_priority()
    (<JobQueue>queue).work()
    return NULL


@cython.final
@cython.no_gc_clear  # __dealloc__ joins the worker and applies queued writes: it needs the store
cdef class JobQueue:
    """Draw and priority-write jobs for one ReplayStore, run in submission order (see the module
    docstring). Each submit returns a ticket; `wait(ticket)` returns once that job and all before it
    have run. Draws go into the BatchMemory objects given here (by position).

    Call `start()` to run a worker thread; without one, every job runs in the caller's `wait()`.
    `close()` (also on deallocation) stops the worker, applies the writes still queued and drops the
    draws.
    """

    cdef ReplayStore store
    cdef readonly tuple batches
    cdef pthread_mutex_t mutex  # guards everything below
    cdef pthread_cond_t work_ready
    cdef pthread_cond_t job_done
    cdef Job ring[RING]
    cdef Py_ssize_t head, count
    cdef uint64_t submitted, completed
    cdef readonly uint64_t caller_runs  # jobs the caller of wait() or submit ran itself
    cdef readonly uint64_t blocked_waits  # wait() calls that found their job not yet run
    cdef bint running, stopping, started
    cdef bint sleeping  # the worker waits on work_ready: a submit must wake it
    cdef pthread_t thread

    def __cinit__(self, ReplayStore store, batches):
        self.store = store
        self.batches = tuple(batches)
        for memory in self.batches:
            if not isinstance(memory, BatchMemory) or (<BatchMemory>memory).store is not store:
                raise TypeError("JobQueue draws into BatchMemory objects laid out for its own store")
        pthread_mutex_init(&self.mutex, NULL)
        pthread_cond_init(&self.work_ready, NULL)
        pthread_cond_init(&self.job_done, NULL)

    def __dealloc__(self):
        self.shut_down()
        pthread_cond_destroy(&self.work_ready)
        pthread_cond_destroy(&self.job_done)
        pthread_mutex_destroy(&self.mutex)

    def start(self):
        """Start the worker thread (once; a no-op while it runs)."""
        if self.started:
            return
        self.stopping = False
        if pthread_create(&self.thread, NULL, _worker_main, <void*>self) != 0:
            raise OSError("could not start the replay prefetch thread")
        self.started = True

    @property
    def worker_alive(self):
        return self.started

    @property
    def pending(self):
        """Jobs submitted and not yet started."""
        return self.count

    def submit_draw(self, Py_ssize_t batch, double beta):
        """Queue a draw into self.batches[batch] with IS exponent `beta`; returns its ticket."""
        if not 0 <= batch < len(self.batches):
            raise IndexError(f"batch {batch} outside the queue's {len(self.batches)} batch memories")
        cdef Job job
        memset(&job, 0, sizeof(Job))
        job.kind = DRAW
        job.batch = &(<BatchMemory>self.batches[batch]).view
        job.beta = beta
        return self.push(job)

    def submit_write(self, const int64_t[::1] indices, const double[::1] priorities, double largest):
        """Queue a write of checked tree priorities (copied now: the caller may reuse its arrays)."""
        cdef Py_ssize_t n = indices.shape[0]
        if priorities.shape[0] != n:
            raise ValueError(f"{n} indices but {priorities.shape[0]} priorities")
        if n == 0:
            return self.submitted  # nothing to write: done as soon as everything before it
        cdef Py_ssize_t i
        for i in range(n):  # the worker writes without checks: an index past the tree would corrupt it
            if indices[i] < 0 or indices[i] >= self.store.capacity:
                raise IndexError(f"replay index {indices[i]} is outside [0, {self.store.capacity})")
        cdef Job job
        memset(&job, 0, sizeof(Job))
        job.kind = WRITE
        job.n = n
        job.largest = largest
        job.indices = <int64_t*>malloc(n * (2 * sizeof(int64_t) + sizeof(double)))
        if job.indices == NULL:
            raise MemoryError()
        job.nodes = job.indices + n
        job.priorities = <double*>(job.indices + 2 * n)
        memcpy(job.indices, &indices[0], n * sizeof(int64_t))
        memcpy(job.priorities, &priorities[0], n * sizeof(double))
        return self.push(job)

    cdef uint64_t push(self, Job job):
        cdef uint64_t ticket
        pthread_mutex_lock(&self.mutex)  # held briefly by anyone: taken with the GIL
        if self.count == RING:
            with nogil:
                while self.count == RING:  # the worker fell far behind: run the oldest job here
                    self.run_oldest_or_wait(True)
        self.ring[(self.head + self.count) % RING] = job
        self.count += 1
        self.submitted += 1
        ticket = self.submitted
        if self.sleeping:
            pthread_cond_signal(&self.work_ready)
        pthread_mutex_unlock(&self.mutex)
        return ticket

    def wait(self, uint64_t ticket):
        """Return once job `ticket` and every job before it have run."""
        if ticket > self.submitted:
            raise ValueError(f"ticket {ticket} was never issued (last: {self.submitted})")
        # Held only for a few instructions at a time, so it is taken with the GIL: a batch the worker
        # has finished is handed over without releasing the GIL.
        pthread_mutex_lock(&self.mutex)
        if self.completed < ticket:
            self.blocked_waits += 1
            with nogil:
                while self.completed < ticket:
                    self.run_oldest_or_wait(True)
        pthread_mutex_unlock(&self.mutex)

    def wait_all(self):
        """Return once every job submitted so far has run."""
        self.wait(self.submitted)

    def close(self):
        """Stop the worker, apply the writes still queued, drop the draws."""
        with nogil:
            self.shut_down()

    cdef void shut_down(self) noexcept nogil:
        cdef Job job
        pthread_mutex_lock(&self.mutex)
        self.stopping = True
        pthread_cond_broadcast(&self.work_ready)
        pthread_mutex_unlock(&self.mutex)
        if self.started:
            pthread_join(self.thread, NULL)
            self.started = False
        pthread_mutex_lock(&self.mutex)
        while self.count:
            job = self.take_oldest()
            if job.kind == WRITE:
                self.run(&job)
            self.completed += 1
        pthread_mutex_unlock(&self.mutex)

    cdef Job take_oldest(self) noexcept nogil:
        """Pop the oldest job. Holds self.mutex; count > 0."""
        cdef Job job = self.ring[self.head]
        self.head = (self.head + 1) % RING
        self.count -= 1
        return job

    cdef void run_oldest_or_wait(self, bint caller) noexcept nogil:
        """Holding self.mutex: run the oldest job here if nobody is running one, else wait for a job to
        finish. Returns holding self.mutex. `caller`: not the worker thread."""
        cdef Job job
        if self.running or self.count == 0:
            pthread_cond_wait(&self.job_done, &self.mutex)
            return
        job = self.take_oldest()
        self.running = True
        self.caller_runs += caller
        pthread_mutex_unlock(&self.mutex)
        self.run(&job)
        pthread_mutex_lock(&self.mutex)
        self.running = False
        self.completed += 1
        pthread_cond_broadcast(&self.job_done)
        pthread_cond_signal(&self.work_ready)  # the worker may have skipped jobs while this ran

    cdef void run(self, Job* job) noexcept nogil:
        """One job under the store's lock (not self.mutex)."""
        pthread_mutex_lock(&self.store.mutex)
        if job.kind == DRAW:
            self.store.draw_locked(job.batch, job.beta)
        else:
            self.store.write_locked(job.n, job.indices, job.priorities, job.largest, job.nodes)
        pthread_mutex_unlock(&self.store.mutex)
        free(job.indices)  # NULL for a draw

    cdef void work(self) noexcept nogil:
        """The worker thread: run jobs as they come. Between jobs it polls, so a trainer that submits
        one pays no wake-up (measured here: waking a thread that sleeps on a condition cost the
        submitting thread ~20 us, a fifth of an inline draw); after IDLE_POLLS empty polls it sleeps
        until a submit signals it."""
        cdef int idle = 0
        cdef timespec pause
        pause.tv_sec = 0
        pause.tv_nsec = POLL_NS
        pthread_mutex_lock(&self.mutex)
        while not self.stopping:
            if self.count and not self.running:
                self.run_oldest_or_wait(False)
                idle = 0
            elif idle < IDLE_POLLS:
                idle += 1
                pthread_mutex_unlock(&self.mutex)
                nanosleep(&pause, NULL)
                pthread_mutex_lock(&self.mutex)
            else:
                self.sleeping = True
                pthread_cond_wait(&self.work_ready, &self.mutex)
                self.sleeping = False
                idle = 0
        pthread_mutex_unlock(&self.mutex)
