r"""Batched quadratic forms and least squares: values and gradients.

Facades over the Cython kernels in ``_qf_kernels.pyx``.  Each one validates
once (helpers shared with the reference, in ``_ref_quadratic.py``), hands
the kernel C-contiguous, native-endian arrays of float32 or float64 with the
batch flattened to one axis, and restores the caller's shapes.  On the
``"numpy"`` backend the call goes to :mod:`vcalc.reference` instead.

Broadcasting follows :func:`numpy.matmul`: ``A`` of shape (n, n) is shared
by every row of ``X`` (its own kernels), and a batched ``A`` of shape
(..., n, n) is handed over once, as a stack, with an index saying which
slice each row of the broadcast batch uses; it is never copied per row.
"""

from __future__ import annotations

from math import prod, sqrt
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import ArrayLike

from vcalc import _backend
from vcalc import _ref_quadratic as _ref
from vcalc._ref_quadratic import (
    _as_result,
    _prep_hessian,
    _prep_least_squares,
    _prep_normal,
    _prep_quadratic,
    _prep_weighted,
    _QuadForm,
)
from vcalc._validate import check_bool, compute_dtype

if TYPE_CHECKING:
    from vcalc._backend import QfKernelsAPI

__all__ = [
    "quadratic_form",
    "quadratic_form_grad",
    "quadratic_form_value_and_grad",
    "quadratic_form_hessian",
    "least_squares",
    "weighted_least_squares",
    "normal_equations",
]


# ---------------------------------------------------------------------------
# Helpers: kernel-ready operands
# ---------------------------------------------------------------------------


def _kernels() -> QfKernelsAPI:
    return _backend.kernels("_qf_kernels")


def _stack(
    a: np.ndarray, lead: tuple[int, ...], tail: tuple[int, ...], cdtype: np.dtype
) -> np.ndarray:
    """`a` as a C-contiguous, native-endian `cdtype` array of shape ``(prod(lead),) + tail``.

    Copies only when `a` is not already laid out that way (non-contiguous,
    Fortran-ordered, byte-swapped or of another dtype); the caller's array is
    never written to.
    """
    return _c_aligned(a, cdtype).reshape((prod(lead),) + tail)


def _c_aligned(a: np.ndarray, cdtype: np.dtype) -> np.ndarray:
    """`a` as a C-contiguous, aligned, native `cdtype` array (a copy only if needed).

    ``np.ascontiguousarray`` keeps an unaligned view as it is; the kernels
    load whole doubles or floats from it, which C does not allow.
    """
    out = np.ascontiguousarray(a, dtype=cdtype)
    return out if out.flags.aligned else out.copy()


def _index(part: tuple[int, ...], batch: tuple[int, ...]) -> np.ndarray:
    """For each row of the flattened `batch`, the slice it uses of a stack with batch `part`.

    `part` broadcasts to `batch` (checked by the validation); the result is a
    C-contiguous int64 array of length ``prod(batch)`` with values in
    ``range(prod(part))``.
    """
    idx = np.arange(prod(part), dtype=np.int64).reshape(part)
    return np.ascontiguousarray(np.broadcast_to(idx, batch).reshape(-1))


# How a shared matrix is applied.  Up to ``k.qf_direct_max_n(...)`` (see
# ``vk_tables`` in ``_vkern.h``) one kernel pass forms g = S x and
# v = x . g / 2 per row, S in L1: it reads X once and writes G once, and
# float32 rows are widened in registers.  Above it, G = X S^T goes to BLAS
# (``numpy.matmul``) and a row-dot kernel finishes the values: BLAS runs the
# 2 B n^2 flops near the machine's peak (and on its own threads), but reads
# X twice and G again.  Measured on one AVX-512 machine (the AVX2 rows: the
# AVX2 path on that machine; one run each), B n = 4e6, ms, value and
# gradient / gradient only, BLAS on its 2 threads:
#
#   n                       9          16         32         64
#   AVX-512 kernel, f64  3.0 / 2.9  2.9 / 2.8  4.7 / 4.6  8.0 / 8.1
#   BLAS, f64            5.5 / 2.7  5.5 / 2.9  7.3 / 4.7 10.4 / 7.5
#
#   n                       9          16         24         32
#   AVX2 kernel, f64     3.2 / 3.2  3.3 / 3.2  4.9 / 4.9  6.1 / 5.9
#   BLAS, f64            5.0 / 2.5  5.0 / 2.6  5.4 / 3.1  5.9 / 3.7
#
# so float64 takes the kernel up to n = 32 (AVX-512) or 16 (AVX2): there
# value and gradient take 0.55-0.65 of the BLAS route's time, and the
# gradient alone at most 1.25 of BLAS's on 2 threads (more above).  float32
# takes it as far as it goes (64, 32): its BLAS route computes in double,
# through double copies of X and G.

# float32 rows above the kernel's n go to BLAS in chunks of about this many
# elements, through double buffers that stay in L2 and are reused: whole
# double copies of X and G would be fresh pages on every call (measured at
# 3.5-4.5 ms each for 32 MB, on top of the arithmetic).
_F32_CHUNK_ELEMS = 1 << 16


def _run_shared(
    A: np.ndarray,
    x: np.ndarray,
    value: np.ndarray | None,
    grad: np.ndarray | None,
    symmetric: bool,
) -> None:
    """Values and/or gradients for a shared (n, n) matrix `A`, rows `x` (batch, n).

    Both come from ``g = S x`` with ``S = A + A^T`` (``2 A`` when `symmetric`)
    formed once in double, and ``v = x . g / 2`` (= x^T A x): so the value,
    the gradient and both together agree bit for bit.  float32 data are
    computed in double too and rounded once.
    """
    a = np.asarray(A, dtype=np.float64)
    with np.errstate(over="ignore"):
        S = np.ascontiguousarray(2.0 * a if symmetric else a + a.T)
    if not np.isfinite(S).all() and np.isfinite(a).all():
        # |A| near the largest float: A + A^T overflows although the results
        # may not.  Work on A / 2 (exact) and double the results at the end.
        _run_halved(a, x, value, grad, symmetric)
        return
    n = x.shape[1]
    k = _backend.kernels("_kernels")
    if n <= k.qf_direct_max_n(x.dtype == np.float64):
        k.quadratic_form_small(S, x, value, grad, _backend.threads_for_kernel())
        return
    # inf * 0 or overflow in matmul: NaN or inf in the results, as from the
    # kernels, which do not warn either.
    with np.errstate(invalid="ignore", over="ignore"):
        if x.dtype == np.float64:
            # Row r of X S^T is S x_r (S^T, not S: for symmetric=True, S = 2A
            # is trusted, not known, to be symmetric).
            G = np.matmul(x, S.T, out=grad) if grad is not None else np.matmul(x, S.T)
            if value is not None:
                k.rowdot_half(x, G, value)
        else:
            _run_shared_chunked(S, x, value, grad)


def _run_shared_chunked(
    S: np.ndarray, x: np.ndarray, value: np.ndarray | None, grad: np.ndarray | None
) -> None:
    """:func:`_run_shared` for float32 rows above the kernel's n: BLAS in double, by chunks."""
    B, n = x.shape
    rows = max(1, _F32_CHUNK_ELEMS // n)
    xb = np.empty((min(rows, B), n), np.float64)
    gb = np.empty_like(xb)
    vb = np.empty(xb.shape[0], np.float64)
    k = _backend.kernels("_kernels")
    for i in range(0, B, rows):
        m = min(rows, B - i)
        np.copyto(xb[:m], x[i : i + m])
        np.matmul(xb[:m], S.T, out=gb[:m])
        if grad is not None:
            grad[i : i + m] = gb[:m]
        if value is not None:
            k.rowdot_half(xb[:m], gb[:m], vb[:m])
            value[i : i + m] = vb[:m]


def _run_halved(
    a: np.ndarray,
    x: np.ndarray,
    value: np.ndarray | None,
    grad: np.ndarray | None,
    symmetric: bool,
) -> None:
    """:func:`_run_shared` on ``a / 2``, results doubled (inf only where they overflow)."""
    v64 = None if value is None else np.empty(value.shape, np.float64)
    g64 = None if grad is None else np.empty(grad.shape, np.float64)
    _run_shared(0.5 * a, x, v64, g64, symmetric)
    with np.errstate(over="ignore"):
        if value is not None and v64 is not None:
            value[...] = 2.0 * v64
        if grad is not None and g64 is not None:
            grad[...] = 2.0 * g64


def _run_quadratic(p: _QuadForm, kernel: str, *args: Any) -> None:
    """Run `kernel` on the operands of `p`: :func:`_run_shared` or ``<kernel>_batched``.

    `args` (outputs, then flags) are passed on after the operands.
    """
    n = p.A.shape[-1]
    x = _stack(p.X, p.X.shape[:-1], (n,), p.cdtype)
    k = _kernels()
    if p.A.ndim == 2:
        if kernel == "quadratic_form":
            _run_shared(p.A, x, args[0], None, False)
        elif kernel == "quadratic_form_grad":
            _run_shared(p.A, x, None, args[0], args[1])
        else:
            _run_shared(p.A, x, args[0], args[1], False)
    else:
        a = _stack(p.A, p.A.shape[:-2], (n, n), p.cdtype)
        ia = _index(p.A.shape[:-2], p.batch)
        ix = _index(p.X.shape[:-1], p.batch)
        getattr(k, kernel + "_batched")(a, ia, x, ix, *args)


# ---------------------------------------------------------------------------
# Quadratic forms
# ---------------------------------------------------------------------------


def quadratic_form(A: ArrayLike, X: ArrayLike) -> Any:
    r"""Evaluate the quadratic form :math:`x^\top A x` for a batch of vectors.

    Parameters
    ----------
    A : array_like, shape (n, n) or (..., n, n)
        The matrix, or a stack of matrices whose batch dimensions broadcast
        against those of `X` as in :func:`numpy.matmul`.  It need not be
        symmetric.
    X : array_like, shape (..., n)
        The vectors, one per row.

    Returns
    -------
    value : ndarray or scalar, shape (...)
        :math:`x^\top A x` for each vector; the batch shape is
        ``np.broadcast_shapes(A.shape[:-2], X.shape[:-1])``.  A NumPy scalar
        when that shape is ``()``.  float32 data give float32, float64 give
        float64, mixed types follow NumPy's promotion, integers and bools
        give float64, float16 gives float16 (computed in float32).

    Raises
    ------
    TypeError
        If `A` or `X` is complex or not numeric.
    ValueError
        If `A` is not a (stack of) square matrices, `X` is 0-d or its last
        axis is not n, or the batch shapes do not broadcast.

    See Also
    --------
    quadratic_form_grad : Its gradient with respect to x.
    quadratic_form_value_and_grad : Both in one pass.
    quadratic_form_hessian : Its Hessian, :math:`A + A^\top`.

    Notes
    -----
    .. math:: x^\top A x = \sum_i x_i \sum_j a_{ij} x_j
              = \tfrac12\, x^\top (A + A^\top)\, x,

    summed in double precision for float32 data too and rounded once.  The
    sum can cancel: its rounding error is bounded by about
    :math:`n\,\varepsilon \sum_{ij} |x_i|\,|a_{ij}|\,|x_j|`, not by a multiple
    of the result.  n = 0 gives 0; an empty batch gives an empty array.

    With one matrix for the whole batch (`A` of shape (n, n)) the second
    form is used: :math:`S = A + A^\top` is formed once, in double, and
    each value is :math:`x \cdot (S x) / 2` -- the same sums as the
    gradient, so :func:`quadratic_form_value_and_grad` agrees with this
    function bit for bit.  For n <= 8 the kernel is specialised to n and
    vectorised across rows; one vectorised pass also handles n <= 32
    (float64) and n <= 64 (float32) on CPUs with AVX-512, n <= 16 and
    n <= 32 with AVX2.  Above that,
    :math:`X S^\top` is a BLAS matrix product (``numpy.matmul``, in double;
    it uses the threads of NumPy's BLAS) and a fused kernel finishes the
    dot products.

    Examples
    --------
    Seed example 7 (the quadratic form whose gradient is :math:`(B + B^\top)x`):

    >>> import numpy as np
    >>> import vcalc
    >>> B = np.array([[2.0, 1.0], [0.0, 3.0]])
    >>> float(vcalc.quadratic_form(B, [1.0, 2.0]))
    16.0

    A batch of vectors shares one matrix:

    >>> X = np.array([[1.0, 2.0], [1.0, 0.0], [0.0, 1.0]])
    >>> print(np.round(vcalc.quadratic_form(B, X), 6))
    [16.  2.  3.]
    """
    if _backend.get_backend() == "numpy":
        return _ref.quadratic_form(A, X)
    p = _prep_quadratic(A, X)
    value = np.empty(prod(p.batch), p.cdtype)
    _run_quadratic(p, "quadratic_form", value)
    return _as_result(value.reshape(p.batch), p.dtype)


def quadratic_form_grad(A: ArrayLike, X: ArrayLike, symmetric: bool = False) -> np.ndarray:
    r"""Gradient :math:`(A + A^\top)x` of the quadratic form :math:`x^\top A x`.

    Parameters
    ----------
    A : array_like, shape (n, n) or (..., n, n)
        The matrix, or a stack broadcasting against `X` as in
        :func:`numpy.matmul`.
    X : array_like, shape (..., n)
        The points, one per row.
    symmetric : bool, optional
        If True, compute :math:`2Ax`, which equals :math:`(A + A^\top)x` when
        `A` is symmetric and reads `A` once instead of twice.  The symmetry
        of `A` is trusted, not checked: for a non-symmetric `A` the result
        is :math:`2Ax`, which is not the gradient.  Default False.

    Returns
    -------
    grad : ndarray, shape batch + (n,)
        The gradient at each point (numerator layout: the shape of a point,
        with the broadcast batch in front).  dtypes as in
        :func:`quadratic_form`.

    Raises
    ------
    TypeError
        If `A` or `X` is complex or not numeric, or `symmetric` is not a bool.
    ValueError
        As :func:`quadratic_form`.

    See Also
    --------
    quadratic_form, quadratic_form_value_and_grad, quadratic_form_hessian

    Notes
    -----
    .. math:: \frac{\partial\, x^\top A x}{\partial x} = (A + A^\top)\,x,
              \qquad = 2Ax \ \text{ for } A = A^\top.

    Both products are accumulated in double.  With a stack of matrices, in
    one row-major pass over each `A` (row i gives :math:`(Ax)_i` and adds
    :math:`a_{ij} x_i` to :math:`(A^\top x)_j`); with one matrix for the
    whole batch, as :math:`S x` with :math:`S = A + A^\top` (or :math:`2A`)
    formed once in double, by the kernels described in
    :func:`quadratic_form`.

    Examples
    --------
    Seed example 7: :math:`\partial(x^\top B x)/\partial x = (B + B^\top)x`,
    and :math:`2Bx` for symmetric B.

    >>> import numpy as np
    >>> import vcalc
    >>> B = np.array([[2.0, 1.0], [0.0, 3.0]])
    >>> x = np.array([1.0, 2.0])
    >>> print(np.round(vcalc.quadratic_form_grad(B, x), 6))
    [ 6. 13.]
    >>> bool(np.allclose(vcalc.quadratic_form_grad(B, x), (B + B.T) @ x))
    True
    >>> S = np.array([[2.0, 1.0], [1.0, 3.0]])
    >>> print(np.round(vcalc.quadratic_form_grad(S, x, symmetric=True), 6))
    [ 8. 14.]
    """
    if _backend.get_backend() == "numpy":
        return _ref.quadratic_form_grad(A, X, symmetric)
    symmetric = check_bool(symmetric, "symmetric")
    p = _prep_quadratic(A, X)
    n = p.A.shape[-1]
    grad = np.empty((prod(p.batch), n), p.cdtype)
    _run_quadratic(p, "quadratic_form_grad", grad, symmetric)
    return cast(np.ndarray, _as_result(grad.reshape(p.batch + (n,)), p.dtype))


def quadratic_form_value_and_grad(A: ArrayLike, X: ArrayLike) -> tuple[Any, np.ndarray]:
    r"""Value and gradient of :math:`x^\top A x`, in one pass over each row.

    Parameters
    ----------
    A : array_like, shape (n, n) or (..., n, n)
        The matrix, or a stack broadcasting against `X` as in
        :func:`numpy.matmul`.
    X : array_like, shape (..., n)
        The points, one per row.

    Returns
    -------
    value : ndarray or scalar, shape batch
        ``quadratic_form(A, X)``, bit for bit on the ``"cython"`` backend.
    grad : ndarray, shape batch + (n,)
        ``quadratic_form_grad(A, X)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`quadratic_form`.

    See Also
    --------
    quadratic_form, quadratic_form_grad

    Notes
    -----
    The value :math:`\sum_i x_i (Ax)_i` reuses the :math:`(Ax)_i` that the
    gradient :math:`(A + A^\top)x` needs, so `A` is read once per row: what an
    optimiser wants at every step.

    Examples
    --------
    Seed example 9: for symmetric positive definite A,
    :math:`f(x) = x^\top A x + b^\top x + c` has gradient :math:`2Ax + b`,
    which vanishes at the minimiser, the solution of :math:`2Ax = -b`.

    >>> import numpy as np
    >>> import vcalc
    >>> A = np.array([[2.0, 0.5], [0.5, 1.0]])
    >>> b, c = np.array([1.0, -1.0]), 3.0
    >>> x_star = np.linalg.solve(2 * A, -b)
    >>> print(np.round(x_star * 7, 6))  # [-3/7, 5/7]
    [-3.  5.]
    >>> q, g = vcalc.quadratic_form_value_and_grad(A, x_star)
    >>> bool(np.allclose(g + b, 0.0))  # zero gradient at the critical point
    True
    >>> f_star = q + b @ x_star + c
    >>> bool(np.isclose(f_star, c - b @ np.linalg.solve(4 * A, b)))  # c - b^T A^-1 b / 4
    True
    """
    if _backend.get_backend() == "numpy":
        return _ref.quadratic_form_value_and_grad(A, X)
    p = _prep_quadratic(A, X)
    n = p.A.shape[-1]
    value = np.empty(prod(p.batch), p.cdtype)
    grad = np.empty((prod(p.batch), n), p.cdtype)
    _run_quadratic(p, "quadratic_form_value_and_grad", value, grad)
    return (
        _as_result(value.reshape(p.batch), p.dtype),
        _as_result(grad.reshape(p.batch + (n,)), p.dtype),
    )


def quadratic_form_hessian(A: ArrayLike) -> np.ndarray:
    r"""Hessian :math:`A + A^\top` of the quadratic form :math:`x^\top A x`.

    Parameters
    ----------
    A : array_like, shape (n, n) or (..., n, n)
        The matrix or a stack of matrices.

    Returns
    -------
    hess : ndarray, shape of `A`
        :math:`A + A^\top` (for a stack, the last two axes are swapped); it
        does not depend on x.  dtype as `A`'s (integers and bools give
        float64).  Each entry is one rounded addition, so both backends agree
        exactly.

    Raises
    ------
    TypeError
        If `A` is complex or not numeric.
    ValueError
        If `A` is not a (stack of) square matrices.

    See Also
    --------
    quadratic_form, quadratic_form_grad

    Notes
    -----
    .. math:: \nabla^2 (x^\top A x) = A + A^\top, \qquad = 2A \ \text{ for } A = A^\top.

    Examples
    --------
    Seed example 9: for symmetric A the Hessian of :math:`x^\top A x` is
    :math:`2A`; positive definite, so the critical point is a minimum.

    >>> import numpy as np
    >>> import vcalc
    >>> A = np.array([[2.0, 0.5], [0.5, 1.0]])
    >>> H = vcalc.quadratic_form_hessian(A)
    >>> print(np.round(H, 6))
    [[4. 1.]
     [1. 2.]]
    >>> bool(np.all(np.linalg.eigvalsh(H) > 0))
    True
    """
    if _backend.get_backend() == "numpy":
        return _ref.quadratic_form_hessian(A)
    a, dtype = _prep_hessian(A)
    cdtype = compute_dtype(dtype)
    n = a.shape[-1]
    stack = _stack(a, a.shape[:-2], (n, n), cdtype)
    out = np.empty_like(stack)
    _kernels().quadratic_form_hessian_rows(stack, out)
    return cast(np.ndarray, _as_result(out.reshape(a.shape), dtype))


# ---------------------------------------------------------------------------
# Least squares
# ---------------------------------------------------------------------------


def least_squares(
    Phi: ArrayLike,
    y: ArrayLike,
    theta: ArrayLike,
    *,
    ridge: float = 0.0,
    mean: bool = False,
) -> tuple[Any, np.ndarray]:
    r"""Least-squares loss :math:`\|y - \Phi\theta\|^2` and its gradient, for a batch of θ.

    Parameters
    ----------
    Phi : array_like, shape (N, D)
        The design matrix (one row per observation).
    y : array_like, shape (N,)
        The targets.
    theta : array_like, shape (D,) or (..., D)
        The parameter vector, or a batch of them, one per row.
    ridge : float, optional
        The weight λ >= 0 of the penalty :math:`\lambda\|\theta\|^2`.
        Default 0.
    mean : bool, optional
        If True, the data term is the mean squared error
        :math:`\frac1N\|y - \Phi\theta\|^2` (the ridge term is not divided
        by N).  Default False.

    Returns
    -------
    loss : ndarray or scalar, shape theta.shape[:-1]
        The loss at each θ (a NumPy scalar for a single θ).
    grad : ndarray, shape theta.shape
        Its gradient with respect to θ.  dtypes as in
        :func:`quadratic_form` (promotion over `Phi`, `y` and `theta`).

    Raises
    ------
    TypeError
        If an array is complex or not numeric, `ridge` is not a real number
        (bools included) or `mean` is not a bool.
    ValueError
        If `Phi` is not 2-d, `y` is not (N,), `theta`'s last axis is not D,
        `ridge` is negative, NaN or infinite, or ``mean=True`` with N = 0.

    See Also
    --------
    normal_equations : The θ where the gradient vanishes.
    weighted_least_squares : The weighted form :math:`(x - As)^\top W (x - As)`.

    Notes
    -----
    With :math:`r = y - \Phi\theta` and :math:`c = 1/N` if `mean` else 1,

    .. math:: L(\theta) = c\,\|r\|^2 + \lambda\|\theta\|^2, \qquad
              \nabla L(\theta) = -2c\,\Phi^\top r + 2\lambda\theta.

    The kernel reads each row of Φ once per θ, forming :math:`r_i` and
    adding :math:`r_i \Phi_i` to :math:`\Phi^\top r` in double precision.
    Scaling the data term by 1/N does not move the minimiser when λ = 0.

    Examples
    --------
    Seed example 4: :math:`\nabla L = -2\Phi^\top(y - \Phi\theta)`, zero at the
    solution of the normal equations.

    >>> import numpy as np
    >>> import vcalc
    >>> Phi = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    >>> y = np.array([1.0, 2.0, 2.0])
    >>> loss, grad = vcalc.least_squares(Phi, y, np.zeros(2))
    >>> float(loss), grad.tolist()  # ||y||^2 and -2 Phi^T y
    (9.0, [-10.0, -12.0])
    >>> theta = vcalc.normal_equations(Phi, y)
    >>> print(np.round(theta * 6, 6))  # [7/6, 1/2]
    [7. 3.]
    >>> loss, grad = vcalc.least_squares(Phi, y, theta)
    >>> float(np.round(loss * 6, 6)), bool(np.allclose(grad, 0.0))  # loss 1/6
    (1.0, True)

    The mean squared error has the same minimiser:

    >>> bool(np.allclose(vcalc.least_squares(Phi, y, theta, mean=True)[1], 0.0))
    True
    """
    if _backend.get_backend() == "numpy":
        return _ref.least_squares(Phi, y, theta, ridge=ridge, mean=mean)
    p = _prep_least_squares(Phi, y, theta, ridge, mean)
    p_theta = cast(np.ndarray, p.theta)  # never None for least_squares
    N, D = p.Phi.shape
    lead = p_theta.shape[:-1]
    phi = _c_aligned(p.Phi, p.cdtype)
    yy = _c_aligned(p.y, p.cdtype)
    th = _stack(p_theta, lead, (D,), p.cdtype)
    loss = np.empty(prod(lead), p.cdtype)
    grad = np.empty((prod(lead), D), p.cdtype)
    _kernels().least_squares_rows(phi, yy, th, p.ridge, p.mean, loss, grad)
    return _as_result(loss.reshape(lead), p.dtype), _as_result(grad.reshape(p_theta.shape), p.dtype)


def weighted_least_squares(
    x: ArrayLike, A: ArrayLike, s: ArrayLike, W: ArrayLike | None = None
) -> tuple[Any, np.ndarray]:
    r"""Value and s-gradient of the weighted least squares :math:`(x - As)^\top W (x - As)`.

    Parameters
    ----------
    x : array_like, shape (m,)
        The target vector.
    A : array_like, shape (m, k)
        The linear map.
    s : array_like, shape (k,) or (..., k)
        The point, or a batch of points, one per row.
    W : array_like, shape (m, m), optional
        The weight matrix; None (default) is the identity, giving
        :math:`\|x - As\|^2`.  Usually symmetric (positive semi-definite);
        this is not checked, and a non-symmetric W is handled exactly (see
        Notes).

    Returns
    -------
    value : ndarray or scalar, shape s.shape[:-1]
        :math:`r^\top W r` with :math:`r = x - As`, for each s (a NumPy
        scalar for a single s).
    grad : ndarray, shape s.shape
        Its gradient with respect to s.  dtypes as in :func:`quadratic_form`
        (promotion over every array given).

    Raises
    ------
    TypeError
        If an array is complex or not numeric.
    ValueError
        If `x` is not 1-d (m,), `A` is not (m, k), `s`'s last axis is not k,
        or `W` is not (m, m).

    See Also
    --------
    least_squares, quadratic_form_grad

    Notes
    -----
    .. math:: \frac{\partial}{\partial s}(x - As)^\top W (x - As)
              = -A^\top (W + W^\top)(x - As),

    which is :math:`-2A^\top W (x - As)` for symmetric W.  The general form is
    what is computed, so a non-symmetric W still gets its true gradient (only
    the symmetric part of W matters to the value).  The residual and
    :math:`(W + W^\top)r` are kept in double precision; with ``W=None`` the
    weight is never formed.

    Examples
    --------
    Seed example 7: :math:`\partial/\partial s\,(x - As)^\top W (x - As) =
    -2A^\top W(x - As)` for symmetric W.

    >>> import numpy as np
    >>> import vcalc
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> s = np.array([1.0, 1.0])
    >>> value, grad = vcalc.weighted_least_squares(x, A, s)  # W = I
    >>> float(value), grad.tolist()
    (2.0, [-2.0, -4.0])
    >>> W = np.diag([1.0, 2.0, 3.0])
    >>> value, grad = vcalc.weighted_least_squares(x, A, s, W)
    >>> float(value), bool(np.allclose(grad, -2 * A.T @ W @ (x - A @ s)))
    (5.0, True)
    """
    if _backend.get_backend() == "numpy":
        return _ref.weighted_least_squares(x, A, s, W)
    p = _prep_weighted(x, A, s, W)
    m, k = p.A.shape
    lead = p.s.shape[:-1]
    xx = _c_aligned(p.x, p.cdtype)
    a = _c_aligned(p.A, p.cdtype)
    ss = _stack(p.s, lead, (k,), p.cdtype)
    value = np.empty(prod(lead), p.cdtype)
    grad = np.empty((prod(lead), k), p.cdtype)
    if p.W is None:
        _kernels().weighted_least_squares_identity_rows(xx, a, ss, value, grad)
    else:
        w = _c_aligned(p.W, p.cdtype)
        _kernels().weighted_least_squares_rows(xx, a, ss, w, value, grad)
    return _as_result(value.reshape(lead), p.dtype), _as_result(grad.reshape(p.s.shape), p.dtype)


def _solve_augmented(phi: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    r"""The ``"cython"`` backend of :func:`normal_equations`: a LAPACK least-squares solve.

    Solves :math:`[\Phi; \sqrt\lambda I]\,\theta \approx [y; 0]` with
    :func:`numpy.linalg.lstsq` (SVD-based ``gelsd``) in float64; the default
    ``rcond`` cuts singular values below ``eps * max(rows, D)`` times the
    largest, which gives the minimum-norm solution for a rank-deficient Φ.
    """
    phi = phi.astype(np.float64)
    y = y.astype(np.float64)
    if ridge > 0.0:
        D = phi.shape[1]
        phi = np.concatenate([phi, sqrt(ridge) * np.eye(D)])
        y = np.concatenate([y, np.zeros((D,) + y.shape[1:])])
    return cast(np.ndarray, np.linalg.lstsq(phi, y, rcond=None)[0])


def normal_equations(Phi: ArrayLike, y: ArrayLike, *, ridge: float = 0.0) -> np.ndarray:
    r"""Minimiser θ of the least-squares loss :math:`\|y - \Phi\theta\|^2 + \lambda\|\theta\|^2`.

    Parameters
    ----------
    Phi : array_like, shape (N, D)
        The design matrix.
    y : array_like, shape (N,) or (N, K)
        The targets; K columns are K independent problems sharing Φ.
    ridge : float, optional
        The weight λ >= 0 of the penalty.  Default 0.

    Returns
    -------
    theta : ndarray, shape (D,) or (D, K)
        The solution of the normal equations
        :math:`(\Phi^\top\Phi + \lambda I)\,\theta = \Phi^\top y`.  When that
        system is singular (λ = 0 and Φ rank-deficient, for example N < D),
        the minimum-norm least-squares solution, as :func:`numpy.linalg.lstsq`
        returns it.  dtype: NumPy promotion of `Phi` and `y` (float32 kept,
        float16 kept, integers and bools give float64).

    Raises
    ------
    TypeError
        If an array is complex or not numeric, or `ridge` is not a real
        number.
    ValueError
        If `Phi` is not 2-d, `y` is not (N,) or (N, K), or `ridge` is
        negative, NaN or infinite.

    See Also
    --------
    least_squares : The loss and gradient this minimises.
    numpy.linalg.lstsq, scipy.linalg.lstsq

    Notes
    -----
    Setting the gradient :math:`-2\Phi^\top(y - \Phi\theta) + 2\lambda\theta`
    to zero gives the normal equations.  Forming :math:`\Phi^\top\Phi`
    squares the condition number of the problem, so the ``"cython"`` backend
    does not: it solves the equivalent augmented least-squares problem

    .. math:: \begin{bmatrix}\Phi \\ \sqrt\lambda\, I\end{bmatrix}\theta
              \approx \begin{bmatrix} y \\ 0 \end{bmatrix}

    with LAPACK (through :func:`numpy.linalg.lstsq`, an SVD-based solver, in
    float64), which is accurate up to :math:`\operatorname{cond}(\Phi)` rather
    than its square.  This is not a hand-written kernel: LAPACK is the right
    tool.  The ``"numpy"`` reference uses the textbook closed form
    ``pinv(Phi.T @ Phi + ridge * I) @ (Phi.T @ y)``, an independent path
    that agrees for reasonably conditioned Φ.  The mean squared error has the
    same minimiser (for λ = 0).

    Examples
    --------
    Seed example 4: the normal equations :math:`\Phi^\top\Phi\theta = \Phi^\top y`
    and the ridge version :math:`(\Phi^\top\Phi + \lambda I)\theta = \Phi^\top y`.

    >>> import numpy as np
    >>> import vcalc
    >>> Phi = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    >>> y = np.array([1.0, 2.0, 2.0])
    >>> print(np.round(vcalc.normal_equations(Phi, y), 6))  # [7/6, 1/2]
    [1.166667 0.5     ]
    >>> theta = vcalc.normal_equations(Phi, y, ridge=1.0)
    >>> print(np.round(theta, 6))
    [0.8 0.6]
    >>> bool(np.allclose((Phi.T @ Phi + np.eye(2)) @ theta, Phi.T @ y))
    True
    """
    if _backend.get_backend() == "numpy":
        return _ref.normal_equations(Phi, y, ridge=ridge)
    p = _prep_normal(Phi, y, ridge)
    return cast(np.ndarray, _as_result(_solve_augmented(p.Phi, p.y, p.ridge), p.dtype))
