# cython: language_level=3
"""Cython kernels for vcalc's batched quadratic forms and least squares.

Design
------
1. What the facade guarantees.  Every ``def`` here is called by the facade in
   ``_quadratic.py`` with C-contiguous, native-endian arrays of one dtype,
   float32 or float64 (float16 and integers were converted there), shapes
   already checked against each other, batch dimensions flattened to one,
   and outputs allocated by the facade.  Nothing is validated here: each
   check runs once, in Python.
2. Broadcasting without copies.  A shared matrix (``A`` of shape (n, n)) is
   not handled here: the facade sends it to the vectorised kernels of
   ``_vkern.h`` (``_kernels.quadratic_form_small``) or to BLAS.  A batched
   ``A`` is passed once as a
   stack ``(BA, n, n)`` together with an int64 index per output row saying
   which slice that row uses, and likewise ``X`` as ``(BX, n)`` with its own
   index; so a broadcast operand is never materialised per row.  The facade
   builds the indices from ``np.arange``, so every index is in range.
3. What is a C helper.  Every per-row computation is a ``cdef inline ...
   noexcept nogil`` helper over raw pointers and lengths (plus caller-owned
   double scratch), so that a later vectorised or blocked helper can replace
   it without touching the loops or the facade.
4. What is a loop.  The ``def`` entry points only loop over rows, with the
   GIL released.  Scratch memory is ``malloc``-ed before the ``nogil``
   region (NULL -> ``MemoryError``) and freed in ``finally``.
5. Precision.  Products and sums are ``double`` for float32 data too, and
   each result is rounded to the data type once, when stored.  Sums are
   plain recursive sums, whose error is at most about ``n * eps`` times the
   sum of the absolute values of the terms (Higham, "Accuracy and Stability
   of Numerical Algorithms", 2nd ed., section 3.1); the tests use that bound.
6. Empty input.  A batch of 0 rows does nothing; n = 0 gives values of 0 and
   empty gradients.  No pointer into an empty buffer is ever formed: a
   zero-length operand points at a local dummy that is never read.
7. Not done here: threads, SIMD-specific code, cache blocking for large n,
   and ``normal_equations`` (a LAPACK least-squares solve through
   ``numpy.linalg.lstsq``, called from the facade).
"""

from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free

from vcalc._common cimport real


# --------------------------------------------------------------------------
# Per-row helpers
# --------------------------------------------------------------------------

cdef inline double _qf_row(const real* a, const real* x,
                           Py_ssize_t n) noexcept nogil:
    """x^T A x = sum_i x_i (A x)_i, for A row-major (n, n)."""
    cdef:
        double value = 0.0, s
        Py_ssize_t i, j
        const real* ai
    for i in range(n):
        ai = a + i * n
        s = 0.0
        for j in range(n):
            s += <double>ai[j] * x[j]
        value += <double>x[i] * s
    return value


cdef inline double _qf_value_grad_row(const real* a, const real* x,
                                      Py_ssize_t n, double* acc,
                                      real* grad_out) noexcept nogil:
    """Return x^T A x and write (A + A^T) x to ``grad_out``, reading A once.

    Row i of A gives (A x)_i = sum_j a_ij x_j (the i-th term of the value is
    x_i (A x)_i, summed exactly as in ``_qf_row`` so both agree bit for bit)
    and adds a_ij x_i to (A^T x)_j for every j.  ``acc`` (n doubles) collects
    A^T x and then A x on top of it.
    """
    cdef:
        double value = 0.0, s, xi, aij
        Py_ssize_t i, j
        const real* ai
    for j in range(n):
        acc[j] = 0.0
    for i in range(n):
        ai = a + i * n
        xi = x[i]
        s = 0.0
        for j in range(n):
            aij = ai[j]
            s += aij * x[j]         # (A x)_i
            acc[j] += aij * xi      # (A^T x)_j, row by row: no strided reads
        value += xi * s
        acc[i] += s
    for i in range(n):
        grad_out[i] = <real>acc[i]
    return value


cdef inline void _qf_grad_sym_row(const real* a, const real* x, Py_ssize_t n,
                                  real* grad_out) noexcept nogil:
    """2 A x, for A symmetric (not checked: the caller said so)."""
    cdef:
        double s
        Py_ssize_t i, j
        const real* ai
    for i in range(n):
        ai = a + i * n
        s = 0.0
        for j in range(n):
            s += <double>ai[j] * x[j]
        grad_out[i] = <real>(2.0 * s)


cdef inline void _sym_part_row(const real* a, Py_ssize_t n,
                               real* out) noexcept nogil:
    """out = A + A^T for one (n, n) matrix."""
    cdef Py_ssize_t i, j
    for i in range(n):
        for j in range(n):
            # Rounding the exact sum of two floats to double and then to
            # float gives the correctly rounded float sum (53 >= 2*24 + 2).
            out[i * n + j] = <real>(<double>a[i * n + j] + a[j * n + i])


cdef inline double _lsq_row(const real* phi, const real* y,
                            const real* theta, Py_ssize_t N, Py_ssize_t D,
                            double ridge, double denom, double* acc,
                            real* grad_out) noexcept nogil:
    """Loss and gradient of ||y - Phi theta||^2 / denom + ridge ||theta||^2.

    One pass over the rows of Phi (row-major (N, D)): the residual
    r_i = y_i - Phi_i . theta is added to the loss and r_i Phi_i to
    ``acc`` (D doubles), which ends as Phi^T r.  ``denom`` is N for the mean
    and 1 otherwise (dividing by 1 is exact).
    """
    cdef:
        double loss = 0.0, pen = 0.0, p, ri, tj
        Py_ssize_t i, j
        const real* row
    for j in range(D):
        acc[j] = 0.0
    for i in range(N):
        row = phi + i * D
        p = 0.0
        for j in range(D):
            p += <double>row[j] * theta[j]
        ri = <double>y[i] - p
        loss += ri * ri
        for j in range(D):
            acc[j] += row[j] * ri
    for j in range(D):
        tj = theta[j]
        pen += tj * tj
        grad_out[j] = <real>(-2.0 * acc[j] / denom + 2.0 * ridge * tj)
    return loss / denom + ridge * pen


cdef inline double _wls_row(const real* x, const real* a, const real* s,
                            const real* w, Py_ssize_t m, Py_ssize_t k,
                            double* r, double* u, double* acc,
                            real* grad_out) noexcept nogil:
    """Value and s-gradient of (x - A s)^T W (x - A s); W = I when w is NULL.

    With r = x - A s (``r``, m doubles): value = r^T W r and
    grad = -A^T (W + W^T) r.  ``u`` (m doubles) holds (W + W^T) r, built in
    one row-major pass over W like ``_qf_value_grad_row``; ``acc``
    (k doubles) collects A^T u.  No symmetry of W is assumed.
    """
    cdef:
        double value = 0.0, p, ri, t, wij
        Py_ssize_t i, j, l
        const real* ai
        const real* wi
        double* v
    for i in range(m):
        ai = a + i * k
        p = 0.0
        for l in range(k):
            p += <double>ai[l] * s[l]
        r[i] = <double>x[i] - p
    if w == NULL:
        # W = I: value = r.r and (W + W^T) r = 2 r; the 2 is applied below.
        for i in range(m):
            value += r[i] * r[i]
        v = r
    else:
        for j in range(m):
            u[j] = 0.0
        for i in range(m):
            wi = w + i * m
            ri = r[i]
            t = 0.0
            for j in range(m):
                wij = wi[j]
                t += wij * r[j]     # (W r)_i
                u[j] += wij * ri    # (W^T r)_j
            value += ri * t
            u[i] += t
        v = u
    for l in range(k):
        acc[l] = 0.0
    for i in range(m):
        ai = a + i * k
        t = v[i]
        for l in range(k):
            acc[l] += ai[l] * t
    for l in range(k):
        grad_out[l] = <real>((-2.0 if w == NULL else -1.0) * acc[l])
    return value


cdef inline double* _scratch(Py_ssize_t count) except NULL:
    """``count`` doubles from malloc (at least one, so 0 is not a failure)."""
    cdef double* p = <double*>malloc((count + 1) * sizeof(double))
    if p == NULL:
        raise MemoryError()
    return p


# --------------------------------------------------------------------------
# Entry points: quadratic forms, batched A (rows pick their slices)
# --------------------------------------------------------------------------

def quadratic_form_batched(const real[:, :, ::1] a,    # IN  (BA, n, n)
                           const int64_t[::1] ia,      # IN  (batch,) slice of a per row
                           const real[:, ::1] x,       # IN  (BX, n)
                           const int64_t[::1] ix,      # IN  (batch,) row of x per row
                           real[::1] value_out):       # OUT (batch,)
    """value_out[r] = x[ix[r]]^T a[ia[r]] x[ix[r]]."""
    cdef:
        Py_ssize_t nrow = value_out.shape[0], n = x.shape[1], r
        const real* ap
        const real* xp
    if nrow == 0:
        return
    if n == 0:
        value_out[:] = 0
        return
    ap = &a[0, 0, 0]
    xp = &x[0, 0]
    with nogil:
        for r in range(nrow):
            value_out[r] = <real>_qf_row(ap + ia[r] * n * n, xp + ix[r] * n, n)


def quadratic_form_grad_batched(const real[:, :, ::1] a,   # IN  (BA, n, n)
                                const int64_t[::1] ia,     # IN  (batch,)
                                const real[:, ::1] x,      # IN  (BX, n)
                                const int64_t[::1] ix,     # IN  (batch,)
                                real[:, ::1] grad_out,     # OUT (batch, n)
                                bint symmetric):
    """grad_out[r] = (A + A^T) x with A = a[ia[r]], x = x[ix[r]]; 2 A x if symmetric."""
    cdef:
        Py_ssize_t nrow = grad_out.shape[0], n = x.shape[1], r
        const real* ap
        const real* xp
        real* gp
        double* acc = NULL
    if nrow == 0 or n == 0:
        return
    ap = &a[0, 0, 0]
    xp = &x[0, 0]
    gp = &grad_out[0, 0]
    if symmetric:
        with nogil:
            for r in range(nrow):
                _qf_grad_sym_row(ap + ia[r] * n * n, xp + ix[r] * n, n,
                                 gp + r * n)
        return
    acc = _scratch(n)
    try:
        with nogil:
            for r in range(nrow):
                _qf_value_grad_row(ap + ia[r] * n * n, xp + ix[r] * n, n,
                                   acc, gp + r * n)
    finally:
        free(acc)


def quadratic_form_value_and_grad_batched(
        const real[:, :, ::1] a,    # IN  (BA, n, n)
        const int64_t[::1] ia,      # IN  (batch,)
        const real[:, ::1] x,       # IN  (BX, n)
        const int64_t[::1] ix,      # IN  (batch,)
        real[::1] value_out,        # OUT (batch,)
        real[:, ::1] grad_out):     # OUT (batch, n)
    """Both of the above for each row, reading each A once."""
    cdef:
        Py_ssize_t nrow = value_out.shape[0], n = x.shape[1], r
        const real* ap
        const real* xp
        real* gp
        double* acc = NULL
    if nrow == 0:
        return
    if n == 0:
        value_out[:] = 0
        return
    ap = &a[0, 0, 0]
    xp = &x[0, 0]
    gp = &grad_out[0, 0]
    acc = _scratch(n)
    try:
        with nogil:
            for r in range(nrow):
                value_out[r] = <real>_qf_value_grad_row(
                    ap + ia[r] * n * n, xp + ix[r] * n, n, acc, gp + r * n)
    finally:
        free(acc)


def quadratic_form_hessian_rows(const real[:, :, ::1] a,   # IN  (BA, n, n)
                                real[:, :, ::1] out):      # OUT (BA, n, n)
    """out[b] = a[b] + a[b]^T."""
    cdef:
        Py_ssize_t nmat = a.shape[0], n = a.shape[1], b
        const real* ap
        real* op
    if nmat == 0 or n == 0:
        return
    ap = &a[0, 0, 0]
    op = &out[0, 0, 0]
    with nogil:
        for b in range(nmat):
            _sym_part_row(ap + b * n * n, n, op + b * n * n)


# --------------------------------------------------------------------------
# Entry points: least squares
# --------------------------------------------------------------------------

def least_squares_rows(const real[:, ::1] phi,      # IN  (N, D)
                       const real[::1] y,           # IN  (N,)
                       const real[:, ::1] theta,    # IN  (batch, D)
                       double ridge, bint mean,
                       real[::1] loss_out,          # OUT (batch,)
                       real[:, ::1] grad_out):      # OUT (batch, D)
    """Loss ||y - phi t||^2 (/N if mean) + ridge ||t||^2 and its gradient, t = theta[r].

    With ``mean`` the facade guarantees N >= 1.
    """
    cdef:
        Py_ssize_t nrow = theta.shape[0], N = phi.shape[0], D = phi.shape[1], r
        real dummy = 0              # target of zero-length operands, never read
        const real* pp = &dummy
        const real* yp = &dummy
        const real* tp = &dummy
        real* gp = &dummy
        double denom = <double>N if mean else 1.0
        double* acc = NULL
    if nrow == 0:
        return
    if N > 0 and D > 0:
        pp = &phi[0, 0]
    if N > 0:
        yp = &y[0]
    if D > 0:
        tp = &theta[0, 0]
        gp = &grad_out[0, 0]
    acc = _scratch(D)
    try:
        with nogil:
            for r in range(nrow):
                loss_out[r] = <real>_lsq_row(pp, yp, tp + r * D, N, D, ridge,
                                             denom, acc, gp + r * D)
    finally:
        free(acc)


cdef _wls_loop(const real[::1] x, const real[:, ::1] a, const real[:, ::1] s,
               const real* wp, real[::1] value_out, real[:, ::1] grad_out):
    """Shared loop of the two weighted least-squares entry points."""
    cdef:
        Py_ssize_t nrow = s.shape[0], m = a.shape[0], k = a.shape[1], r
        real dummy = 0              # target of zero-length operands, never read
        const real* xp = &dummy
        const real* ap = &dummy
        const real* sp = &dummy
        real* gp = &dummy
        double* work = NULL
    if nrow == 0:
        return
    if m > 0:
        xp = &x[0]
    if m > 0 and k > 0:
        ap = &a[0, 0]
    if k > 0:
        sp = &s[0, 0]
        gp = &grad_out[0, 0]
    work = _scratch(2 * m + k)      # r (m), u (m), acc (k)
    try:
        with nogil:
            for r in range(nrow):
                value_out[r] = <real>_wls_row(xp, ap, sp + r * k, wp, m, k,
                                              work, work + m, work + 2 * m,
                                              gp + r * k)
    finally:
        free(work)


def weighted_least_squares_rows(const real[::1] x,          # IN  (m,)
                                const real[:, ::1] a,       # IN  (m, k)
                                const real[:, ::1] s,       # IN  (batch, k)
                                const real[:, ::1] w,       # IN  (m, m)
                                real[::1] value_out,        # OUT (batch,)
                                real[:, ::1] grad_out):     # OUT (batch, k)
    """value_out[r] = (x - a s[r])^T w (x - a s[r]), grad_out[r] its s-gradient."""
    cdef const real* wp = NULL
    # With m = 0 the pointer stays NULL, which selects W = I; the residual is
    # empty, so both readings give value 0 and gradient 0.
    if w.shape[0] > 0:
        wp = &w[0, 0]
    _wls_loop(x, a, s, wp, value_out, grad_out)


def weighted_least_squares_identity_rows(const real[::1] x,       # IN  (m,)
                                         const real[:, ::1] a,    # IN  (m, k)
                                         const real[:, ::1] s,    # IN  (batch, k)
                                         real[::1] value_out,     # OUT (batch,)
                                         real[:, ::1] grad_out):  # OUT (batch, k)
    """As ``weighted_least_squares_rows`` with W = I: ||x - a s||^2 and -2 a^T (x - a s)."""
    _wls_loop(x, a, s, <const real*>NULL, value_out, grad_out)
