# cython: language_level=3
"""Cython evaluators for vcalc's finite differences.

Design
------
A finite-difference call is planned in Python (``_fd_plan.py``: which
coordinates move, by which offsets, with which weights), evaluated here, and
combined.  Two kinds of entry point:

* **Fused loops** for the compact plans (one-dimensional stencils along each
  coordinate, and the central order-2 Hessian).  They perturb a private
  float64 copy of x in place, call f, fold the value into the result with its
  stencil weight at once, and restore the coordinate: no array of points and
  no array of values is ever built, so the cost is the calls of f and little
  else.  The order of the floating-point operations is exactly the one of the
  plan's NumPy ``combine``, so the vectorised evaluator (which stacks the
  same points and combines them in NumPy) gives bit-identical results.
* **Point loops** for explicit plans (arbitrary points x + a e_i + b e_j):
  they return the array of values, which the plan combines.

What f sees.  f is called as ``f(*call_args)`` where ``call_args[0]`` is a
read-only view of the private buffer ``xb`` with the user's shape; the
facade builds that tuple once.  The view is read-only so that an f that
writes into its argument fails loudly instead of corrupting every later
point.  Its contents change between calls: an f that keeps its argument must
copy it.

Faults.  The perturbed coordinate is restored in a ``finally`` clause, and
f's result is copied before the restore (f may return a view of its input).
An exception raised by f propagates unchanged; the user's x was copied by
the facade and is never touched.

No GIL release here: every iteration calls Python.
"""

from cpython.exc cimport PyErr_CheckSignals
from cpython.float cimport PyFloat_Check, PyFloat_AS_DOUBLE
from libc.string cimport memcpy
from cpython.mem cimport PyMem_Malloc, PyMem_Free
cimport numpy as cnp

import numpy as np

cnp.import_array()


cdef inline object _call(object f, tuple call_args):
    """f(*call_args); with no extra arguments, the one-argument (vectorcall) path.

    Pending signals are handled first: when f is a C function (a ufunc
    method, say) no Python bytecode runs between evaluations, and without
    this check Ctrl-C would only act after the whole loop.
    """
    PyErr_CheckSignals()
    if len(call_args) == 1:
        return f(<object> call_args[0])
    return f(*call_args)


cdef class _Results:
    """Checks and converts the values f returns.

    The first value fixes the output shape; every later one must match it.
    Python floats (and NumPy float64 scalars, a subclass) take a fast path.
    """

    cdef public object shape     # output shape, None until the first value
    cdef public Py_ssize_t m     # number of output entries
    cdef public Py_ssize_t nfev  # evaluations so far (set by the loops that use it)
    cdef bint scalar_only        # True: f must return a scalar (gradient, Hessian)
    cdef object what             # the function being computed, for messages

    def __init__(self, bint scalar_only, str what):
        self.shape = None
        self.m = -1
        self.scalar_only = scalar_only
        self.what = what
        self.nfev = 0

    cdef object _array(self, object r):
        """f's value as a real ndarray of the expected shape."""
        try:
            a = np.asarray(r)
        except ValueError as err:
            from vcalc._fd_engines import ragged_error
            raise ragged_error(r, err) from err
        kind = a.dtype.kind
        if kind == "c":
            raise TypeError(
                f"`f` returned complex values (dtype {a.dtype}); finite differences of "
                "real methods need real values (differentiate the real and imaginary "
                "parts separately)."
            )
        if kind not in "fiub":
            raise TypeError(
                f"`f` must return real numbers; got {type(r).__name__} of dtype {a.dtype}."
            )
        if self.shape is None:
            if self.scalar_only and a.ndim != 0:
                raise ValueError(
                    f"`f` must return a scalar for {self.what}; got an array of shape "
                    f"{a.shape} (use vcalc.jacobian for vector-valued f)."
                )
            self.shape = a.shape
            self.m = a.size
        elif a.shape != self.shape:
            raise ValueError(
                f"`f` returned shape {a.shape} at one point and {self.shape} at another; "
                "it must return the same shape everywhere."
            )
        return a

    cdef double scalar(self, object r) except? -1.5:
        """f's value as a double (f must return one number)."""
        if PyFloat_Check(r) and self.shape is not None:
            return PyFloat_AS_DOUBLE(r)
        if self.shape is None and PyFloat_Check(r):
            self.shape = ()
            self.m = 1
            return PyFloat_AS_DOUBLE(r)
        a = self._array(r)
        if a.ndim != 0:
            raise ValueError(
                f"`f` must return a scalar for {self.what}; got an array of shape {a.shape}."
            )
        return float(a)

    cdef object vector(self, object r):
        """f's value as a new C-contiguous float64 vector of length m."""
        if PyFloat_Check(r):
            if self.shape is None:
                self.shape = ()
                self.m = 1
            if self.m == 1 and self.shape == ():
                return np.full(1, PyFloat_AS_DOUBLE(r))
        a = self._array(r)
        return np.array(a, dtype=np.float64, order="C").reshape(-1)


def axis_loop(object f, tuple call_args, double[::1] xb, const double[::1] x0,
              const Py_ssize_t[::1] coords, const double[::1] h,
              const signed char[::1] kind,
              const double[:, ::1] offs, const double[:, ::1] wts,
              const Py_ssize_t[::1] lens, int deriv, bint scalar, str what):
    """Fused evaluate-and-combine for one-dimensional stencils along each coordinate.

    For row r, coordinate j = coords[r], with stencil s = kind[r] (offsets
    offs[s, :lens[s]], weights wts[s, :lens[s]]) computes

        acc[r] = (sum_k wts[s, k] * f(x + offs[s, k] * h[r] * e_j)) / h[r]**deriv

    summing in the order of the offsets.  f(x) is evaluated once, first, if
    any stencil in use has offset 0.

    Parameters
    ----------
    f, call_args : callable, tuple
        f is called as ``f(*call_args)``; ``call_args[0]`` views `xb`.
    xb : double[::1]          # IN/OUT: perturbed and restored; equals x0 on return
    x0 : double[::1]          # IN: the point
    coords : intp[::1]        # IN: coordinate of each row
    h : double[::1]           # IN: step per row
    kind : int8[::1]          # IN: stencil index per row
    offs, wts : double[:, ::1]  # IN: stencil table, padded rows
    lens : intp[::1]          # IN: stencil lengths
    deriv : int               # 1 or 2: divide by h or h**2
    scalar : bool             # f must return a scalar
    what : str                # name of the public function, for messages

    Returns
    -------
    acc : ndarray, float64, shape (R, m)
    shape : tuple
        The shape of f's value.
    nfev : int
    """
    cdef:
        Py_ssize_t n = coords.shape[0]
        Py_ssize_t r, j, k, t, s, m = 0, nfev = 0
        double o, w, hj, v, scale
        bint need_center = False, have = False
        double[:, ::1] acc
        const double[::1] row
        const double[::1] f0v
        double f0 = 0.0
        _Results res = _Results(scalar, what)

    for r in range(n):
        s = kind[r]
        for k in range(lens[s]):
            if offs[s, k] == 0.0:
                need_center = True
    if need_center:
        val = _call(f, call_args)
        nfev += 1
        if scalar:
            f0 = res.scalar(val)
        else:
            f0v = res.vector(val)
        m = res.m
        acc = np.zeros((n, m))
        have = True

    for r in range(n):
        s = kind[r]
        j = coords[r]
        hj = h[r]
        for k in range(lens[s]):
            o = offs[s, k]
            w = wts[s, k]
            if o == 0.0:
                if scalar:
                    acc[r, 0] += w * f0
                else:
                    for t in range(m):
                        acc[r, t] += w * f0v[t]
                continue
            xb[j] = x0[j] + o * hj
            try:
                val = _call(f, call_args)
                nfev += 1
                if scalar:
                    v = res.scalar(val)
                    if not have:
                        m = 1
                        acc = np.zeros((n, 1))
                        have = True
                    acc[r, 0] += w * v
                else:
                    row = res.vector(val)
                    if not have:
                        m = res.m
                        acc = np.zeros((n, m))
                        have = True
                    for t in range(m):
                        acc[r, t] += w * row[t]
            finally:
                xb[j] = x0[j]
        scale = hj if deriv == 1 else hj * hj
        for t in range(m):
            acc[r, t] = acc[r, t] / scale
    if not have:  # n == 0: nothing was evaluated
        return np.zeros((0, 0)), None, nfev
    return np.asarray(acc), res.shape, nfev


def hessian2_loop(object f, tuple call_args, double[::1] xb, const double[::1] x0,
                  const double[::1] h):
    """Fused central order-2 Hessian of a scalar f in n**2 + n + 1 evaluations.

    Evaluates f(x), then f(x - h_i e_i) and f(x + h_i e_i) for each i, then
    f(x + h_i e_i + h_j e_j) and f(x - h_i e_i - h_j e_j) for each i < j
    (row-major), and combines them (see ``_stencils.mixed_stencil``)::

        H_ii = (f(-h_i) - 2 f(x) + f(+h_i)) / h_i**2
        H_ij = (f(++)/2 - f(+h_i)/2 - f(+h_j)/2 + f(x) - f(-h_i)/2 - f(-h_j)/2
                + f(--)/2) / (h_i h_j)

    summed left to right, H_ji = H_ij.

    Parameters
    ----------
    f, call_args : callable, tuple
    xb : double[::1]          # IN/OUT: perturbed and restored
    x0 : double[::1]          # IN
    h : double[::1]           # IN: step per coordinate

    Returns
    -------
    H : ndarray, float64, shape (n, n)
    nfev : int
    """
    cdef:
        Py_ssize_t n = xb.shape[0]
        Py_ssize_t i, j, nfev = 0
        double f0, fpp, fmm, acc
        double[::1] fp = np.empty(n)
        double[::1] fm = np.empty(n)
        double[:, ::1] H = np.empty((n, n))
        _Results res = _Results(True, "hessian")

    f0 = res.scalar(_call(f, call_args))
    nfev += 1
    for i in range(n):
        xb[i] = x0[i] - h[i]
        try:
            fm[i] = res.scalar(_call(f, call_args))
            nfev += 1
            xb[i] = x0[i] + h[i]
            fp[i] = res.scalar(_call(f, call_args))
            nfev += 1
        finally:
            xb[i] = x0[i]
        acc = 1.0 * fm[i]
        acc += -2.0 * f0
        acc += 1.0 * fp[i]
        H[i, i] = acc / (h[i] * h[i])
    for i in range(n):
        for j in range(i + 1, n):
            xb[i] = x0[i] + h[i]
            xb[j] = x0[j] + h[j]
            try:
                fpp = res.scalar(_call(f, call_args))
                nfev += 1
                xb[i] = x0[i] - h[i]
                xb[j] = x0[j] - h[j]
                fmm = res.scalar(_call(f, call_args))
                nfev += 1
            finally:
                xb[i] = x0[i]
                xb[j] = x0[j]
            acc = 0.5 * fpp
            acc += -0.5 * fp[i]
            acc += -0.5 * fp[j]
            acc += 1.0 * f0
            acc += -0.5 * fm[i]
            acc += -0.5 * fm[j]
            acc += 0.5 * fmm
            H[i, j] = acc / (h[i] * h[j])
            H[j, i] = H[i, j]
    return np.asarray(H), nfev


def points_loop(object f, tuple call_args, double[::1] xb, const double[::1] x0,
                const Py_ssize_t[::1] i1, const double[::1] v1,
                const Py_ssize_t[::1] i2, const double[::1] v2,
                bint scalar, str what):
    """Evaluate f at explicit points: x with x[i1[k]] = v1[k] and x[i2[k]] = v2[k].

    An index of -1 leaves x alone (``i1[k] == -1`` is the point x itself).

    Parameters
    ----------
    f, call_args : callable, tuple
    xb : double[::1]          # IN/OUT: perturbed and restored
    x0 : double[::1]          # IN
    i1, i2 : intp[::1]        # IN: coordinates moved (-1: none)
    v1, v2 : double[::1]      # IN: their values at the point
    scalar : bool
    what : str

    Returns
    -------
    values : ndarray, float64, shape (K, m)
    shape : tuple or None
        The shape of f's value (None when K == 0).
    """
    cdef:
        Py_ssize_t K = i1.shape[0]
        Py_ssize_t k, a, b, t, m = 0
        double v
        bint have = False
        double[:, ::1] out
        const double[::1] row
        _Results res = _Results(scalar, what)

    for k in range(K):
        a = i1[k]
        b = i2[k]
        if a >= 0:
            xb[a] = v1[k]
        if b >= 0:
            xb[b] = v2[k]
        try:
            r = _call(f, call_args)
            if scalar:
                v = res.scalar(r)
                if not have:
                    m = 1
                    out = np.empty((K, 1))
                    have = True
                out[k, 0] = v
            else:
                row = res.vector(r)
                if not have:
                    m = res.m
                    out = np.empty((K, m))
                    have = True
                for t in range(m):
                    out[k, t] = row[t]
        finally:
            if a >= 0:
                xb[a] = x0[a]
            if b >= 0:
                xb[b] = x0[b]
    if not have:
        return np.zeros((0, 0)), None
    return np.asarray(out), res.shape


def complex_loop(object f, tuple call_args, double complex[::1] xb,
                 const double[::1] x0, const Py_ssize_t[::1] i1, const double[::1] h,
                 bint scalar, str what):
    """Complex-step values: Im f(x + i h[k] e_{i1[k]}) for each k.

    The buffer is complex; each point moves one coordinate to
    ``x0[i] + 1j * h[k]`` and restores it.  f must keep the imaginary part:
    a real result, or a ``TypeError`` at the first point, means f is not
    complex-safe and raises a ``TypeError`` saying so (chained to f's own).

    Parameters
    ----------
    f, call_args : callable, tuple
    xb : complex128[::1]      # IN/OUT: perturbed and restored
    x0 : double[::1]          # IN
    i1 : intp[::1]            # IN: coordinate moved
    h : double[::1]           # IN: imaginary step
    scalar : bool
    what : str

    Returns
    -------
    values : ndarray, float64, shape (K, m)
        The imaginary parts (not yet divided by h).
    shape : tuple or None
    """
    cdef:
        Py_ssize_t K = i1.shape[0]
        Py_ssize_t k, a, m = 0
        bint have = False
        object out = None, shape = None

    for k in range(K):
        a = i1[k]
        xb[a] = x0[a] + 1j * h[k]
        try:
            try:
                r = _call(f, call_args)
            except TypeError as err:
                if k == 0:
                    raise TypeError(
                        "method='complex' needs f to accept complex input and stay "
                        f"analytic (complex-safe); `f` raised TypeError: {err}"
                    ) from err
                raise
            try:
                a_r = np.asarray(r)
            except ValueError as err:
                from vcalc._fd_engines import ragged_error
                raise ragged_error(r, err) from err
            if a_r.dtype.kind != "c":
                if a_r.dtype.kind not in "fiub":
                    raise TypeError(
                        f"`f` must return numbers; got {type(r).__name__} of dtype {a_r.dtype}."
                    )
                raise TypeError(
                    "method='complex' needs f to be complex-safe: for complex input it "
                    f"returned real values (dtype {a_r.dtype}), so the imaginary part that "
                    "carries the derivative was lost (abs, real, comparisons, math.* "
                    "functions and float() do this); use method='central'."
                )
            if not have:
                if scalar and a_r.ndim != 0:
                    raise ValueError(
                        f"`f` must return a scalar for {what}; got an array of shape "
                        f"{a_r.shape} (use vcalc.jacobian for vector-valued f)."
                    )
                shape = a_r.shape
                m = a_r.size
                out = np.empty((K, m))
                have = True
            elif a_r.shape != shape:
                raise ValueError(
                    f"`f` returned shape {a_r.shape} at one point and {shape} at another; "
                    "it must return the same shape everywhere."
                )
            out[k] = a_r.imag.reshape(-1)
        finally:
            xb[a] = x0[a]
    if not have:
        return np.zeros((0, 0)), None
    return out, shape


def relative_steps(const double[::1] x0, double h0):
    """Default steps ``h = (x + h0 * max(1, |x|)) - x``, exactly representable.

    Returns ``(h, bad)``: `bad` is -1, or the first index where x is not
    finite or x + h overflows (the facade raises naming it).  The step is
    never rounded to 0 here: h0 * max(1, |x|) is far above the spacing of
    floats at x for every h0 the step rules use.

    Parameters
    ----------
    x0 : double[::1]          # IN
    h0 : double               # relative step

    Returns
    -------
    h : ndarray, float64, shape (n,)
    bad : int
    """
    cdef:
        Py_ssize_t n = x0.shape[0], i, bad = -1
        double a, t
        double[::1] h = np.empty(n)
    for i in range(n):
        a = x0[i]
        t = h0 * (a if a > 1.0 else (-a if a < -1.0 else 1.0))
        t = (a + t) - a
        if not (t - t == 0.0):  # inf or NaN: x not finite, or x + h overflowed
            if bad < 0:
                bad = i
        h[i] = t
    return np.asarray(h), bad


def axis_default(object f, tuple args, cnp.ndarray x_arr, tuple shape, double h0,
                 tuple offsets, tuple weights, bint scalar, str what):
    """The common case of :func:`axis_loop` in one call, with raw pointers.

    One stencil for every coordinate, the default step computed here as in
    :func:`relative_steps`, first derivatives.  Calling overhead matters
    when f is cheap: this entry point takes no typed memoryviews (whose
    acquisition costs more than the loop at n = 2).

    Parameters
    ----------
    f, args : callable, tuple
        f is called as ``f(xv, *args)`` with ``xv`` a read-only view, of shape
        `shape`, of a private copy of x that is perturbed and restored.
    x_arr : ndarray, float64, C-contiguous, shape (n,)   # IN: the point (copied)
    shape : tuple                # the user's shape of x
    h0 : double                # relative step
    offsets, weights : tuple of float   # the stencil, at most 16 points
    scalar : bool
    what : str

    Returns
    -------
    acc : ndarray, float64, shape (n, m), or None if x is not finite or
        x + h overflows (nothing was evaluated)
    shape : tuple or None
    nfev : int
    h : ndarray, float64, shape (n,)
    bad : int
        -1, or the first index with a non-finite x or step.
    """
    cdef:
        Py_ssize_t n = cnp.PyArray_SIZE(x_arr)
        Py_ssize_t L = len(offsets)
        Py_ssize_t j, k, bad = -1
        cnp.ndarray xb_arr = cnp.PyArray_NewCopy(x_arr, cnp.NPY_CORDER)
        double *xb = <double*> cnp.PyArray_DATA(xb_arr)
        double *x0
        double *hp
        double oc[16]
        double wc[16]
        double a, hj
        bint need_center = False
        cnp.ndarray h_arr = np.empty(n)
        _Results res = _Results(scalar, what)

    if L > 16:
        raise ValueError("stencil too long")
    for k in range(L):
        oc[k] = offsets[k]
        wc[k] = weights[k]
        if oc[k] == 0.0:
            need_center = True
    hp = <double*> cnp.PyArray_DATA(h_arr)
    for j in range(n):
        a = xb[j]
        hj = h0 * (a if a > 1.0 else (-a if a < -1.0 else 1.0))
        hj = (a + hj) - a
        if not (hj - hj == 0.0) and bad < 0:
            bad = j
        hp[j] = hj
    if bad >= 0:
        return None, None, 0, h_arr, bad
    # f sees a read-only view; the loop writes through the raw pointer.
    cnp.PyArray_CLEARFLAGS(xb_arr, cnp.NPY_ARRAY_WRITEABLE)
    view = xb_arr if cnp.PyArray_NDIM(xb_arr) == len(shape) else xb_arr.reshape(shape)
    call_args = (view,) + args
    x0 = <double*> PyMem_Malloc(max(n, 1) * sizeof(double))
    if x0 == NULL:
        raise MemoryError()
    memcpy(x0, xb, n * sizeof(double))
    try:
        acc, m = _axis_default_loop(f, call_args, xb, x0, hp, n, L, oc, wc, need_center, res)
    finally:
        PyMem_Free(x0)
    return acc, res.shape, res.nfev, h_arr, -1


cdef tuple _axis_default_loop(object f, tuple call_args, double *xb, const double *x0,
                              const double *hp, Py_ssize_t n, Py_ssize_t L,
                              const double *oc, const double *wc, bint need_center,
                              _Results res):
    """The loop of :func:`axis_default` (x0 is a private C copy freed by the caller)."""
    cdef:
        Py_ssize_t j, k, t, m = 0, nfev = 0
        double hj, v, f0 = 0.0, scale
        double *ap
        const double *rp
        bint have = False, scalar = res.scalar_only
        cnp.ndarray acc = None
        cnp.ndarray f0v = None
        cnp.ndarray row

    if need_center and n > 0:
        val = _call(f, call_args)
        nfev += 1
        if scalar:
            f0 = res.scalar(val)
        else:
            f0v = res.vector(val)
        m = res.m
        acc = np.zeros((n, m))
        have = True

    for j in range(n):
        hj = hp[j]
        for k in range(L):
            if oc[k] == 0.0:
                ap = <double*> cnp.PyArray_DATA(acc) + j * m
                if scalar:
                    ap[0] += wc[k] * f0
                else:
                    rp = <const double*> cnp.PyArray_DATA(f0v)
                    for t in range(m):
                        ap[t] += wc[k] * rp[t]
                continue
            xb[j] = x0[j] + oc[k] * hj
            try:
                val = _call(f, call_args)
                nfev += 1
                if scalar:
                    v = res.scalar(val)
                    if not have:
                        m = 1
                        acc = np.zeros((n, 1))
                        have = True
                    ap = <double*> cnp.PyArray_DATA(acc) + j
                    ap[0] += wc[k] * v
                else:
                    row = res.vector(val)
                    if not have:
                        m = res.m
                        acc = np.zeros((n, m))
                        have = True
                    ap = <double*> cnp.PyArray_DATA(acc) + j * m
                    rp = <const double*> cnp.PyArray_DATA(row)
                    for t in range(m):
                        ap[t] += wc[k] * rp[t]
            finally:
                xb[j] = x0[j]
        if have:
            scale = hj
            ap = <double*> cnp.PyArray_DATA(acc) + j * m
            for t in range(m):
                ap[t] = ap[t] / scale
    res.nfev = nfev
    return acc, m


def axis_stack(cnp.ndarray x0_arr, double h0, tuple offsets):
    """All points of a one-stencil gradient, stacked, with the default steps.

    Row 0 is x when the stencil uses offset 0; then, for each non-zero
    offset o (in order), n rows where row j is x with x[j] = x[j] + o h[j].

    Parameters
    ----------
    x0_arr : ndarray, float64, C-contiguous, shape (n,)   # IN
    h0 : double                 # relative step (see :func:`relative_steps`)
    offsets : tuple of float    # the stencil's offsets

    Returns
    -------
    P : ndarray, float64, shape (K, n), or None when `bad` >= 0
    h : ndarray, float64, shape (n,)
    bad : int
        -1, or the first index with a non-finite x or step.
    """
    cdef:
        Py_ssize_t n = cnp.PyArray_SIZE(x0_arr), L = len(offsets)
        Py_ssize_t j, k, q, row, center = 0, bad = -1
        const double *x0 = <const double*> cnp.PyArray_DATA(x0_arr)
        double *hp
        double *pp
        double a, hj, o
        cnp.ndarray h_arr = np.empty(n)
        cnp.ndarray P
    hp = <double*> cnp.PyArray_DATA(h_arr)
    for j in range(n):
        a = x0[j]
        hj = h0 * (a if a > 1.0 else (-a if a < -1.0 else 1.0))
        hj = (a + hj) - a
        if not (hj - hj == 0.0) and bad < 0:
            bad = j
        hp[j] = hj
    if bad >= 0:
        return None, h_arr, bad
    for k in range(L):
        if offsets[k] == 0.0:
            center = 1
    P = np.empty((center + (L - center) * n, n))
    pp = <double*> cnp.PyArray_DATA(P)
    for row in range(center + (L - center) * n):
        memcpy(pp + row * n, x0, n * sizeof(double))
    q = 0
    for k in range(L):
        o = offsets[k]
        if o == 0.0:
            continue
        for j in range(n):
            row = center + q * n + j
            pp[row * n + j] = x0[j] + o * hp[j]
        q += 1
    return P, h_arr, -1


def axis_combine(cnp.ndarray V_arr, cnp.ndarray h_arr, tuple offsets, tuple weights):
    """Combine the values of :func:`axis_stack`'s points, in the loop's order.

    ``acc[j] = (sum_k w_k V[row(k, j)]) / h[j]``, summed in the order of the
    offsets, exactly as :func:`axis_default` does, so vectorised and loop
    results are bit-identical.

    Parameters
    ----------
    V_arr : ndarray, float64, C-contiguous, shape (K, m)   # IN
    h_arr : ndarray, float64, shape (n,)                   # IN
    offsets, weights : tuple of float

    Returns
    -------
    acc : ndarray, float64, shape (n, m)
    """
    cdef:
        Py_ssize_t n = cnp.PyArray_SIZE(h_arr), m = cnp.PyArray_DIM(V_arr, 1)
        Py_ssize_t L = len(offsets), j, k, q, t, center = 0, row
        const double *V = <const double*> cnp.PyArray_DATA(V_arr)
        const double *hp = <const double*> cnp.PyArray_DATA(h_arr)
        double *ap
        double w, o
        cnp.ndarray acc = np.zeros((n, m))
    ap = <double*> cnp.PyArray_DATA(acc)
    for k in range(L):
        if offsets[k] == 0.0:
            center = 1
    q = 0
    for k in range(L):
        o = offsets[k]
        w = weights[k]
        if o == 0.0:
            for j in range(n):
                for t in range(m):
                    ap[j * m + t] += w * V[t]
        else:
            for j in range(n):
                row = center + q * n + j
                for t in range(m):
                    ap[j * m + t] += w * V[row * m + t]
            q += 1
    for j in range(n):
        for t in range(m):
            ap[j * m + t] = ap[j * m + t] / hp[j]
    return acc
