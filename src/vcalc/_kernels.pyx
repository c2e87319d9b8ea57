# cython: language_level=3
"""Cython kernels for vcalc's stable reductions (logsumexp, softmax, ...).

Design
------
1. What the facade guarantees.  Every ``def`` here is called by the facade in
   ``_reductions.py`` with C-contiguous ``(batch, n)`` arrays of one dtype,
   float32 or float64 (float16 and integers were converted there), reduced
   axes moved last, and outputs allocated by the facade.  Nothing is validated
   here: each check runs once, in Python.
2. What is a C helper.  Every per-row computation is a ``cdef inline ...
   noexcept nogil`` helper taking raw pointers and a length, so that a later
   vectorised helper (several rows at once, or blocked long rows) can replace
   it without touching the loops or the facade.
3. What is a loop.  The ``def`` entry points only loop over rows, with the
   GIL released.
4. Precision.  Data may be float32, but maxima, exponentials and sums are
   ``double``; the largest term of each sum is taken out so that
   ``log1p`` can be used for the rest (results near 0 keep full relative
   precision).
5. Edge cases (NaN, +-inf, all -inf, empty rows) are decided from the row's
   maximum, which the first pass computes anyway; each special case says why
   it is what it is.
6. The fast path.  logsumexp, softmax and log_softmax of finite rows run in
   the vectorised C kernels of ``_vkern.h`` (vcalc's own exp and log1p,
   compiled for several instruction sets and chosen at import, see there);
   the helpers below remain the reference for the edge-case rows those
   kernels hand back (non-finite maximum, NaN) and for the weighted and
   Jacobian kernels.
7. Threads.  The entry points take ``n_threads`` (decided in Python, >= 1)
   and split the rows into that many contiguous chunks, one per thread
   (static schedule), when there is enough work; without OpenMP at build
   time they run serially.
"""

from libc.math cimport exp, log, log1p, fabs, INFINITY, NAN
from libc.stdlib cimport malloc, free, getenv
from cython.parallel cimport prange
cimport numpy as cnp

cnp.import_array()

from vcalc._common cimport real

cdef extern from *:
    """
    #ifndef VCALC_BUILD_FLAGS
    #define VCALC_BUILD_FLAGS "unknown"
    #endif
    #if defined(__clang__)
    #define VCALC_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #define VCALC_COMPILER "gcc " __VERSION__
    #elif defined(_MSC_VER)
    #define VCALC_COMPILER "msvc"
    #else
    #define VCALC_COMPILER "unknown"
    #endif
    #ifdef _OPENMP
    #include <omp.h>
    #define VCALC_OPENMP 1
    #else
    #define VCALC_OPENMP 0
    #endif
    #if defined(__AVX512F__)
    #define VCALC_SIMD "AVX-512 (compile-time baseline)"
    #elif defined(__AVX2__)
    #define VCALC_SIMD "AVX2 (compile-time baseline)"
    #elif defined(__SSE2__) || defined(_M_X64)
    #define VCALC_SIMD "SSE2 (compile-time baseline)"
    #elif defined(__ARM_NEON) || defined(__aarch64__)
    #define VCALC_SIMD "NEON (compile-time baseline)"
    #else
    #define VCALC_SIMD "none (portable C)"
    #endif
    """
    const char* VCALC_BUILD_FLAGS
    const char* VCALC_COMPILER
    const char* VCALC_SIMD
    const int VCALC_OPENMP


cdef extern from "_vkern.h" nogil:
    ctypedef double (*vk_fbr_d)(const double*, Py_ssize_t) noexcept nogil
    ctypedef double (*vk_fbr_f)(const float*, Py_ssize_t) noexcept nogil
    ctypedef void (*vk_fbe_d)(const double*, double*, Py_ssize_t) noexcept nogil
    ctypedef void (*vk_fbe_f)(const float*, float*, Py_ssize_t) noexcept nogil
    ctypedef struct vk_table:
        const char* name
        void (*exp_d)(const double*, double*, Py_ssize_t) noexcept nogil
        void (*exp_f)(const float*, float*, Py_ssize_t) noexcept nogil
        void (*logsumexp_d)(const double*, double*, Py_ssize_t, Py_ssize_t, vk_fbr_d) noexcept nogil
        void (*logsumexp_f)(const float*, float*, Py_ssize_t, Py_ssize_t, vk_fbr_f) noexcept nogil
        void (*softmax_d)(const double*, double*, Py_ssize_t, Py_ssize_t, vk_fbe_d) noexcept nogil
        void (*softmax_f)(const float*, float*, Py_ssize_t, Py_ssize_t, vk_fbe_f) noexcept nogil
        void (*log_softmax_d)(const double*, double*, Py_ssize_t, Py_ssize_t, vk_fbe_d) noexcept nogil
        void (*log_softmax_f)(const float*, float*, Py_ssize_t, Py_ssize_t, vk_fbe_f) noexcept nogil
        void (*qf_d)(const double*, const double*, Py_ssize_t, Py_ssize_t, double*, double*) noexcept nogil
        void (*qf_f)(const double*, const float*, Py_ssize_t, Py_ssize_t, float*, float*) noexcept nogil
        void (*rowdot_half_d)(const double*, const double*, Py_ssize_t, Py_ssize_t, double*) noexcept nogil
        void (*rowdot_half_f)(const float*, const float*, Py_ssize_t, Py_ssize_t, float*) noexcept nogil
        Py_ssize_t qf_direct_max_d, qf_direct_max_f
    const vk_table* vk_select(const char* cap)
    int vk_cpu_level()


# The kernels' table, chosen once: the CPU's best path, capped by VCALC_SIMD.
cdef const vk_table* _vk = vk_select(getenv("VCALC_SIMD"))

# Rows are split over threads only when a thread gets at least this many
# elements: below it, starting the team costs more than it saves.
cdef enum:
    _PAR_MIN_WORK = 65536


def build_info():
    """Return how this extension was compiled, as a dict of strings."""
    levels = ("baseline", "AVX2+FMA", "AVX-512")
    return {
        "compiler": VCALC_COMPILER.decode().strip(),
        "build_flags": VCALC_BUILD_FLAGS.decode(),
        "simd_baseline": VCALC_SIMD.decode(),
        "simd": _vk.name.decode(),
        "simd_cpu_best": levels[vk_cpu_level()],
        "openmp": bool(VCALC_OPENMP),
    }


def simd_path():
    """The name of the kernel path in use (see ``_vkern.h``)."""
    return _vk.name.decode()


def qf_direct_max_n(bint double_data):
    """The largest n for which :func:`quadratic_form_small` should be used.

    Up to it the kernel is one vectorised pass; above it that function still
    works (a plain loop), but the caller should form ``G = X S^T`` with BLAS
    and finish with :func:`rowdot_half`.
    """
    return _vk.qf_direct_max_d if double_data else _vk.qf_direct_max_f


cdef inline int _teams(Py_ssize_t nrow, Py_ssize_t n, int n_threads) noexcept nogil:
    """How many threads to use on ``nrow`` rows of ``n``: 1 unless each gets enough work."""
    if n_threads <= 1 or nrow < 2 or not VCALC_OPENMP:
        return 1
    if nrow < n_threads:
        n_threads = <int>nrow
    while n_threads > 1 and nrow * n < n_threads * <Py_ssize_t>_PAR_MIN_WORK:
        n_threads -= 1
    return n_threads


# --------------------------------------------------------------------------
# Per-row helpers
# --------------------------------------------------------------------------

cdef inline bint _scan_max(const real* x, Py_ssize_t n,
                           double* m_out, Py_ssize_t* k_out) noexcept nogil:
    """Maximum of a row and the index of its first occurrence.

    Returns True when the row holds a NaN.  An empty or all -inf row gives
    ``m = -inf`` and ``k = -1``.
    """
    cdef:
        double m = -INFINITY, v
        Py_ssize_t k = -1, i
        bint nan = False
    for i in range(n):
        v = x[i]
        if v > m:
            m = v
            k = i
        elif v != v:
            nan = True
    m_out[0] = m
    k_out[0] = k
    return nan


cdef inline Py_ssize_t _count_posinf(const real* x, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i, c = 0
    for i in range(n):
        if x[i] == INFINITY:
            c += 1
    return c


cdef inline double _shift(double x, double m, double* err) noexcept nogil:
    """d = fl(x - m) and, in ``err``, its rounding error: x - m = d + err exactly.

    TwoSum (Knuth, TAOCP vol. 2, 4.2.2); ``err`` is NaN when d is infinite.
    """
    cdef double d = x - m
    cdef double z = d - x
    err[0] = (x - (d - z)) + (-m - z)
    return d


cdef inline double _exp_shifted(double x, double m) noexcept nogil:
    """exp(x - m), with the rounding error of x - m folded back in.

    fl(x - m) is off by up to half an ulp of |x - m|, which exp turns into a
    relative error of |x - m| * eps / 2: 20 ulp at x - m = -40.  With the
    exact error ``err`` of the subtraction (|err| <= ulp(d) / 2 < 1e-13),
    exp(d + err) = exp(d) * (1 + err) in double.  Where d is -inf, err is NaN
    and dropped.
    """
    cdef double err
    cdef double e = exp(_shift(x, m, &err))
    cdef double c = e * err
    return e + c if c == c else e


cdef inline double _sum_exp_rest(const real* x, Py_ssize_t n, double m,
                                 Py_ssize_t k) noexcept nogil:
    """sum(exp(x[i] - m)) over i != k: the sum minus its largest term (= 1)."""
    cdef:
        double s = 0.0
        Py_ssize_t i
    # Two loops instead of a test of i != k inside one: both stay branch-free.
    for i in range(k):
        s += _exp_shifted(x[i], m)
    for i in range(k + 1, n):
        s += _exp_shifted(x[i], m)
    return s


cdef inline double _logsumexp_row(const real* x, Py_ssize_t n) noexcept nogil:
    cdef:
        double m
        Py_ssize_t k
    if _scan_max(x, n, &m, &k):
        return NAN                  # NaN anywhere poisons the slice
    if m == -INFINITY:
        return -INFINITY            # empty or all -inf: log(0)
    if m == INFINITY:
        return INFINITY             # exp(+inf) dominates; x - m would be NaN
    # x[k] - m = 0 exactly, so its term is 1: log(1 + rest) by log1p keeps
    # full relative precision when the result is close to 0.
    return m + log1p(_sum_exp_rest(x, n, m, k))


cdef inline double _sign(double v) noexcept nogil:
    if v > 0:
        return 1.0
    if v < 0:
        return -1.0
    return v                        # 0 stays 0, NaN stays NaN


cdef inline double _logsumexp_row_weighted(const real* x, const real* b,
                                           Py_ssize_t n,
                                           double* sign_out) noexcept nogil:
    """log|sum(b * exp(x))| and its sign; a zero weight removes the element."""
    cdef:
        double m = -INFINITY, v, w, wmax = 0.0, s = 0.0, r
        Py_ssize_t i
        bint nan = False
    for i in range(n):
        w = b[i]
        if w == 0:
            continue                # masked, even when x[i] is inf or NaN
        v = x[i]
        if v != v or w != w:
            nan = True
        elif v > m:
            m = v
    if nan:
        sign_out[0] = NAN
        return NAN
    if m == -INFINITY:
        sign_out[0] = 0.0           # nothing left to sum: log(0)
        return -INFINITY
    if m == INFINITY:
        # Only the +inf entries matter; their weights decide the sign, and
        # weights cancelling to 0 leave inf - inf: undefined.
        for i in range(n):
            if b[i] != 0 and x[i] == INFINITY:
                wmax += b[i]
        sign_out[0] = _sign(wmax) if wmax != 0 else NAN
        return INFINITY if wmax != 0 else NAN
    for i in range(n):
        w = b[i]
        if w == 0:
            continue
        v = x[i]
        if v == m:
            wmax += w               # the largest terms, exp(0) = 1 each
        else:
            s += w * _exp_shifted(v, m)
    if wmax == 0:
        # The weights of the largest terms cancel; the rest is < 1 in size.
        sign_out[0] = _sign(s)
        return m + log(fabs(s))
    # sum = wmax * (1 + r): log1p(r) keeps precision near a result of 0.
    r = s / wmax
    if r >= -1.0:
        sign_out[0] = _sign(wmax) if r > -1.0 else 0.0
        return m + log(fabs(wmax)) + log1p(r)
    sign_out[0] = -_sign(wmax)      # |1 + r| = 1 + (-r - 2) for r < -1
    return m + log(fabs(wmax)) + log1p(-r - 2.0)


cdef inline void _fill(real* out, Py_ssize_t n, double value) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = <real>value


cdef inline int _softmax_core(const real* x, Py_ssize_t n, double* w,
                              double* rest_out) noexcept nogil:
    """Softmax of one row into ``w`` (double), n >= 1.

    Returns 0 for a regular row, with ``rest_out = 1 - w[k]`` for the index k
    of the maximum computed without cancellation; 1 when the row was filled by
    an edge case (NaN or all -inf: NaN everywhere; +inf entries: the limit,
    mass split evenly over them), with ``rest_out`` = 1 - w[i] for no i.
    """
    cdef:
        double m, s, rest, inv
        Py_ssize_t k, i, c
    if _scan_max(x, n, &m, &k) or m == -INFINITY:
        # NaN poisons the row; all -inf has no maximum to shift by (0/0).
        for i in range(n):
            w[i] = NAN
        rest_out[0] = NAN
        return 1
    if m == INFINITY:
        # Limit of softmax(x) as the +inf entries grow together.
        c = _count_posinf(x, n)
        inv = 1.0 / c
        for i in range(n):
            w[i] = inv if x[i] == INFINITY else 0.0
        rest_out[0] = NAN
        return 1
    rest = 0.0
    for i in range(n):
        w[i] = _exp_shifted(x[i], m)
    for i in range(k):
        rest += w[i]
    for i in range(k + 1, n):
        rest += w[i]
    s = 1.0 + rest                  # w[k] = exp(0) = 1 exactly
    for i in range(n):
        w[i] = w[i] / s
    rest_out[0] = rest / s
    return 0


cdef inline void _log_softmax_row(const real* x, Py_ssize_t n,
                                  real* out) noexcept nogil:
    cdef:
        double m, l, d, err
        Py_ssize_t k, i, c
    if _scan_max(x, n, &m, &k) or m == -INFINITY:
        _fill(out, n, NAN)          # NaN poisons; all -inf: log(0/0)
        return
    if m == INFINITY:
        # log of softmax's limit: -log(c) on the c +inf entries, -inf elsewhere.
        c = _count_posinf(x, n)
        l = -log(<double>c)
        for i in range(n):
            out[i] = <real>(l if x[i] == INFINITY else -INFINITY)
        return
    l = log1p(_sum_exp_rest(x, n, m, k))
    for i in range(n):
        # (x - m) - l, adding back the rounding error of x - m: it matters
        # where x - m and l nearly cancel.  x - m may overflow to -inf for
        # x = -1e308, m = 1e308 (err NaN): the true value is below -DBL_MAX,
        # so -inf is the right rounding.
        d = _shift(x[i], m, &err)
        out[i] = <real>((d - l) + err if err == err else d - l)


# --------------------------------------------------------------------------
# Entry points: loops over rows
# --------------------------------------------------------------------------

# Edge-case rows handed back by the vectorised kernels, one per dtype (a C
# function pointer cannot be fused).

cdef double _fb_lse_d(const double* x, Py_ssize_t n) noexcept nogil:
    return _logsumexp_row(x, n)

cdef double _fb_lse_f(const float* x, Py_ssize_t n) noexcept nogil:
    return _logsumexp_row(x, n)

cdef inline void _softmax_edge_row(const real* x, real* out, Py_ssize_t n) noexcept nogil:
    """Softmax of a row whose maximum is not finite or that holds a NaN."""
    cdef:
        double m, inv
        Py_ssize_t k, i
    if _scan_max(x, n, &m, &k) or m == -INFINITY:
        _fill(out, n, NAN)          # NaN poisons the row; all -inf: 0/0
    elif m == INFINITY:
        # Limit of softmax(x) as the +inf entries grow together.
        inv = 1.0 / _count_posinf(x, n)
        for i in range(n):
            out[i] = <real>(inv if x[i] == INFINITY else 0.0)
    else:                           # not reached: the kernel only sends edge rows
        _fill(out, n, NAN)

cdef void _fb_softmax_d(const double* x, double* out, Py_ssize_t n) noexcept nogil:
    _softmax_edge_row(x, out, n)

cdef void _fb_softmax_f(const float* x, float* out, Py_ssize_t n) noexcept nogil:
    _softmax_edge_row(x, out, n)

cdef void _fb_log_softmax_d(const double* x, double* out, Py_ssize_t n) noexcept nogil:
    _log_softmax_row(x, n, out)

cdef void _fb_log_softmax_f(const float* x, float* out, Py_ssize_t n) noexcept nogil:
    _log_softmax_row(x, n, out)


cdef enum _RowOp:
    _LOGSUMEXP, _SOFTMAX, _LOG_SOFTMAX


cdef inline void _row_op(_RowOp op, const real* x, real* out, Py_ssize_t nrow,
                         Py_ssize_t n) noexcept nogil:
    """Run one vectorised row kernel on rows [0, nrow) of x (n >= 1)."""
    if real is double:
        if op == _LOGSUMEXP:
            _vk.logsumexp_d(x, out, nrow, n, _fb_lse_d)
        elif op == _SOFTMAX:
            _vk.softmax_d(x, out, nrow, n, _fb_softmax_d)
        else:
            _vk.log_softmax_d(x, out, nrow, n, _fb_log_softmax_d)
    else:
        if op == _LOGSUMEXP:
            _vk.logsumexp_f(x, out, nrow, n, _fb_lse_f)
        elif op == _SOFTMAX:
            _vk.softmax_f(x, out, nrow, n, _fb_softmax_f)
        else:
            _vk.log_softmax_f(x, out, nrow, n, _fb_log_softmax_f)


cdef void _rows_parallel(_RowOp op, const real* x, real* out, Py_ssize_t nrow,
                         Py_ssize_t n, int n_threads) noexcept nogil:
    """``_row_op`` over all rows, in ``_teams(...)`` contiguous chunks."""
    cdef:
        int teams = _teams(nrow, n, n_threads), t
        Py_ssize_t r0, r1, per, ostride = 1 if op == _LOGSUMEXP else n
    if teams == 1:
        _row_op(op, x, out, nrow, n)
        return
    per = (nrow + teams - 1) // teams
    for t in prange(teams, schedule="static", num_threads=teams):
        r0 = t * per
        r1 = min(r0 + per, nrow)
        if r1 > r0:
            _row_op(op, x + r0 * n, out + r0 * ostride, r1 - r0, n)


def logsumexp_rows(const real[:, ::1] a,   # IN  (batch, n)
                   real[::1] out,          # OUT (batch,)
                   int n_threads=1):
    """out[r] = log(sum(exp(a[r, :])))."""
    cdef Py_ssize_t nrow = a.shape[0], n = a.shape[1]
    if nrow == 0:
        return
    if n == 0:
        out[:] = -INFINITY
        return
    with nogil:
        _rows_parallel(_LOGSUMEXP, &a[0, 0], &out[0], nrow, n, n_threads)


def logsumexp_rows_weighted(const real[:, ::1] a,   # IN  (batch, n)
                            const real[:, ::1] b,   # IN  (batch, n) weights
                            real[::1] out,          # OUT (batch,)
                            real[::1] sign_out,     # OUT (batch,)
                            bint return_sign):
    """out[r] = log|sum(b[r] * exp(a[r]))|, sign_out[r] its sign.

    Without ``return_sign`` a negative sum gives NaN in ``out``.
    """
    cdef:
        Py_ssize_t nrow = a.shape[0], n = a.shape[1], r
        const real* ap
        const real* bp
        double v, sgn
    if nrow == 0:
        return
    if n == 0:
        out[:] = -INFINITY
        sign_out[:] = 0
        return
    ap = &a[0, 0]
    bp = &b[0, 0]
    with nogil:
        for r in range(nrow):
            v = _logsumexp_row_weighted(ap + r * n, bp + r * n, n, &sgn)
            if sgn < 0 and not return_sign:
                v = NAN             # log of a negative number
            out[r] = <real>v
            sign_out[r] = <real>sgn


def reduce_fast(int op, object a, object axis, int n_threads=1):
    """The facade's common case in one call, or None when it does not apply.

    ``op``: 0 logsumexp, 1 softmax, 2 log_softmax.  Applies when `a` is an
    ndarray (exactly), non-empty, aligned, C-contiguous, native float32 or
    float64, and `axis` is None or its last axis as an int: then the rows
    are ``a`` itself, the result is allocated here with the right shape
    (a NumPy scalar for a 0-d result) and returned.  Anything else returns
    None, for the general path of the facade, which validates and copies.
    Doing the checks here rather than in Python takes microseconds off
    every small call (they were the whole time of a 1000-element one).
    """
    cdef:
        cnp.ndarray arr, out
        int t, nd
        Py_ssize_t n, nrow
        _RowOp rop
    if op < 0 or op > 2:
        raise ValueError("`op` must be 0, 1 or 2.")
    rop = <_RowOp>op
    if not cnp.PyArray_CheckExact(a):
        return None
    arr = <cnp.ndarray>a
    t = cnp.PyArray_TYPE(arr)
    if ((t != cnp.NPY_DOUBLE and t != cnp.NPY_FLOAT) or not cnp.PyArray_ISNOTSWAPPED(arr)
            or not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISALIGNED(arr)
            or cnp.PyArray_SIZE(arr) == 0):
        return None
    nd = cnp.PyArray_NDIM(arr)
    if axis is None:
        n = cnp.PyArray_SIZE(arr)
    elif type(axis) is int and nd >= 1:
        # Compared as Python ints: an out-of-range axis of any size goes to
        # the general path, which names it in its error.
        if axis != -1 and axis != nd - 1:
            return None
        n = cnp.PyArray_DIM(arr, nd - 1)
    else:
        return None
    nrow = cnp.PyArray_SIZE(arr) // n
    if rop == _LOGSUMEXP:
        if axis is None:
            out = cnp.PyArray_EMPTY(0, NULL, t, 0)
        else:
            out = cnp.PyArray_EMPTY(nd - 1, cnp.PyArray_DIMS(arr), t, 0)
    else:
        out = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(arr), t, 0)
    with nogil:
        if t == cnp.NPY_DOUBLE:
            _rows_parallel(rop, <const double*>cnp.PyArray_DATA(arr),
                           <double*>cnp.PyArray_DATA(out), nrow, n, n_threads)
        else:
            _rows_parallel(rop, <const float*>cnp.PyArray_DATA(arr),
                           <float*>cnp.PyArray_DATA(out), nrow, n, n_threads)
    if cnp.PyArray_NDIM(out) == 0:
        return out[()]
    return out


def softmax_rows(const real[:, ::1] x,     # IN  (batch, n)
                 real[:, ::1] out,         # OUT (batch, n)
                 int n_threads=1):
    """out[r] = exp(x[r]) / sum(exp(x[r])), shifted by the row maximum."""
    cdef Py_ssize_t nrow = x.shape[0], n = x.shape[1]
    if nrow == 0 or n == 0:
        return
    with nogil:
        _rows_parallel(_SOFTMAX, &x[0, 0], &out[0, 0], nrow, n, n_threads)


def log_softmax_rows(const real[:, ::1] x,  # IN  (batch, n)
                     real[:, ::1] out,      # OUT (batch, n)
                     int n_threads=1):
    """out[r] = x[r] - logsumexp(x[r])."""
    cdef Py_ssize_t nrow = x.shape[0], n = x.shape[1]
    if nrow == 0 or n == 0:
        return
    with nogil:
        _rows_parallel(_LOG_SOFTMAX, &x[0, 0], &out[0, 0], nrow, n, n_threads)


def vexp(const real[::1] x,                 # IN  (n,)
        real[::1] out):                     # OUT (n,)
    """out = exp(x) by vcalc's vectorised exp (for tests and benchmarks)."""
    cdef Py_ssize_t n = x.shape[0]
    if n == 0:
        return
    with nogil:
        if real is double:
            _vk.exp_d(&x[0], &out[0], n)
        else:
            _vk.exp_f(&x[0], &out[0], n)


def quadratic_form_small(const double[:, ::1] s,   # IN  (n, n) A + A^T in double
                         const real[:, ::1] x,     # IN  (batch, n)
                         value_out,                # OUT (batch,) or None
                         grad_out,                 # OUT (batch, n) or None
                         int n_threads=1):
    """g = s x[r] into grad_out, x[r] . g / 2 into value_out, for a shared s.

    Unrolled and vectorised across rows for n <= 8; the same sums with a
    run-time n otherwise.  Either output may be None (not computed).
    """
    cdef:
        Py_ssize_t nrow = x.shape[0], n = x.shape[1], r0, per
        real[::1] v
        real[:, ::1] g
        real* vp = NULL
        real* gp = NULL
        int teams, t
    if value_out is None and grad_out is None:
        return  # nothing asked for (the n <= 8 kernels write a value unless told not to)
    if s.shape[0] != n or s.shape[1] != n:
        raise ValueError(f"s must be ({n}, {n}); got ({s.shape[0]}, {s.shape[1]})")
    if value_out is not None and len(value_out) != nrow:
        raise ValueError(f"value_out must have {nrow} rows; got {len(value_out)}")
    if grad_out is not None and tuple(grad_out.shape) != (nrow, n):
        raise ValueError(f"grad_out must be ({nrow}, {n}); got {tuple(grad_out.shape)}")
    if nrow == 0:
        return
    if n == 0:
        if value_out is not None:
            v = value_out
            v[:] = 0
        return
    if value_out is not None:
        v = value_out
        vp = &v[0]
    if grad_out is not None:
        g = grad_out
        gp = &g[0, 0]
    teams = _teams(nrow, n * n, n_threads)
    per = (nrow + teams - 1) // teams
    with nogil:
        if teams == 1:
            _qf_call(&s[0, 0], &x[0, 0], nrow, n, vp, gp)
        else:
            for t in prange(teams, schedule="static", num_threads=teams):
                r0 = t * per
                if r0 < nrow:
                    _qf_call(&s[0, 0], &x[r0, 0], min(per, nrow - r0), n,
                             vp + r0 if vp != NULL else NULL,
                             gp + r0 * n if gp != NULL else NULL)


cdef inline void _qf_call(const double* s, const real* x, Py_ssize_t nrow, Py_ssize_t n,
                          real* vp, real* gp) noexcept nogil:
    if real is double:
        _vk.qf_d(s, x, nrow, n, vp, gp)
    else:
        _vk.qf_f(s, x, nrow, n, vp, gp)


def rowdot_half(const real[:, ::1] x,   # IN  (batch, n)
                const real[:, ::1] g,   # IN  (batch, n)
                real[::1] value_out):   # OUT (batch,)
    """value_out[r] = x[r] . g[r] / 2, summed in double."""
    cdef Py_ssize_t nrow = x.shape[0], n = x.shape[1]
    if nrow == 0:
        return
    if n == 0:
        value_out[:] = 0
        return
    with nogil:
        if real is double:
            _vk.rowdot_half_d(&x[0, 0], &g[0, 0], nrow, n, &value_out[0])
        else:
            _vk.rowdot_half_f(&x[0, 0], &g[0, 0], nrow, n, &value_out[0])


def softmax_jacobian_rows(const real[:, ::1] x,     # IN  (batch, n)
                          real[:, :, ::1] out):     # OUT (batch, n, n)
    """out[r] = diag(s) - s s^T with s = softmax(x[r])."""
    cdef:
        Py_ssize_t nrow = x.shape[0], n = x.shape[1], r, i, j
        const real* xp
        real* op
        double* s
        double rest, si, diag
        int edge
    if nrow == 0 or n == 0:
        return
    xp = &x[0, 0]
    op = &out[0, 0, 0]
    s = <double*>malloc(n * sizeof(double))
    if s == NULL:
        raise MemoryError()
    try:
        with nogil:
            for r in range(nrow):
                edge = _softmax_core(xp + r * n, n, s, &rest)
                for i in range(n):
                    si = s[i]
                    for j in range(n):
                        op[(r * n + i) * n + j] = <real>(-si * s[j])
                    # 1 - s_i cancels when s_i is close to 1.  Only the row's
                    # first maximum can exceed 1/2 (every other exp term is
                    # <= its term, 1), and for it 1 - s_k = rest, computed
                    # from the other terms without cancellation.
                    if edge == 0 and si > 0.5:
                        diag = si * rest
                    else:
                        diag = si * (1.0 - si)
                    op[(r * n + i) * n + i] = <real>diag
    finally:
        free(s)
