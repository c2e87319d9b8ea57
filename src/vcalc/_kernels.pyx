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
6. Not done here: threads, SIMD-specific code and run-time dispatch.
"""

from libc.math cimport exp, log, log1p, fabs, INFINITY, NAN
from libc.stdlib cimport malloc, free

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


def build_info():
    """Return how this extension was compiled, as a dict of strings."""
    return {
        "compiler": VCALC_COMPILER.decode(),
        "build_flags": VCALC_BUILD_FLAGS.decode(),
        "simd": VCALC_SIMD.decode() + "; run-time dispatch not built",
        "openmp": "not used (kernels are serial)",
        "threads": 1,
    }


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

def logsumexp_rows(const real[:, ::1] a,   # IN  (batch, n)
                   real[::1] out):         # OUT (batch,)
    """out[r] = log(sum(exp(a[r, :])))."""
    cdef:
        Py_ssize_t nrow = a.shape[0], n = a.shape[1], r
        const real* ap
    if nrow == 0:
        return
    if n == 0:
        out[:] = -INFINITY
        return
    ap = &a[0, 0]
    with nogil:
        for r in range(nrow):
            out[r] = <real>_logsumexp_row(ap + r * n, n)


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


def softmax_rows(const real[:, ::1] x,     # IN  (batch, n)
                 real[:, ::1] out):        # OUT (batch, n)
    """out[r] = exp(x[r]) / sum(exp(x[r])), shifted by the row maximum."""
    cdef:
        Py_ssize_t nrow = x.shape[0], n = x.shape[1], r, i
        const real* xp
        real* op
        double* work = NULL
        double rest
    if nrow == 0 or n == 0:
        return
    xp = &x[0, 0]
    op = &out[0, 0]
    if real is float:
        # float32 rows are computed in a double row buffer, then rounded once.
        work = <double*>malloc(n * sizeof(double))
        if work == NULL:
            raise MemoryError()
    try:
        with nogil:
            for r in range(nrow):
                if real is double:
                    _softmax_core(xp + r * n, n, op + r * n, &rest)
                else:
                    _softmax_core(xp + r * n, n, work, &rest)
                    for i in range(n):
                        op[r * n + i] = <float>work[i]
    finally:
        free(work)


def log_softmax_rows(const real[:, ::1] x,  # IN  (batch, n)
                     real[:, ::1] out):     # OUT (batch, n)
    """out[r] = x[r] - logsumexp(x[r])."""
    cdef:
        Py_ssize_t nrow = x.shape[0], n = x.shape[1], r
        const real* xp
        real* op
    if nrow == 0 or n == 0:
        return
    xp = &x[0, 0]
    op = &out[0, 0]
    with nogil:
        for r in range(nrow):
            _log_softmax_row(xp + r * n, n, op + r * n)


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
