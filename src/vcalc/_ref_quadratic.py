"""NumPy reference for the quadratic forms and least squares, and their validation.

The public functions here are re-exported by :mod:`vcalc.reference`; the
``_prep_*`` helpers validate and normalise arguments for both backends, so
both raise the same errors for the same input.

Every computation runs in float64 (float32 and float16 data included) with
NumPy array expressions (``matmul``, ``einsum``, ``linalg``), and is rounded
once to the result dtype; no loops, and nothing shared with the kernels.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, cast

import numpy as np
from numpy.typing import ArrayLike

from vcalc._validate import (
    as_float_array,
    check_bool,
    check_nonnegative_real,
    compute_dtype,
    result_dtype,
)

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
# Validation shared with the Cython facade
# ---------------------------------------------------------------------------


def _check_square(A: np.ndarray, name: str = "A") -> int:
    """Check that `A` is a matrix or a stack of square matrices; return n."""
    if A.ndim < 2:
        raise ValueError(f"`{name}` must have shape (n, n) or (..., n, n); got shape {A.shape}.")
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(
            f"`{name}` must be square in its last two axes, shape (..., n, n); got shape {A.shape}."
        )
    return cast(int, A.shape[-1])


class _QuadForm(NamedTuple):
    """A validated quadratic-form problem."""

    A: np.ndarray  # (n, n) or (..., n, n), floating, as given (may be a view)
    X: np.ndarray  # (..., n), floating, as given
    batch: tuple[int, ...]  # broadcast of A.shape[:-2] and X.shape[:-1]
    dtype: np.dtype  # dtype of the results
    cdtype: np.dtype  # dtype the kernels run in (float16 runs as float32)


def _prep_quadratic(A: ArrayLike, X: ArrayLike) -> _QuadForm:
    """Validate ``A`` (n, n) / (..., n, n) and ``X`` (..., n); broadcast their batches.

    Parameters
    ----------
    A, X : array_like
        The arguments of the quadratic-form functions.

    Returns
    -------
    _QuadForm
        The floating arrays, the broadcast batch shape and the dtypes.

    Raises
    ------
    TypeError
        If either is complex or not numeric.
    ValueError
        If `A` is not a (stack of) square matrices, `X` is 0-d or its last
        axis is not n, or the batch shapes do not broadcast.
    """
    a = as_float_array(A, "A")
    x = as_float_array(X, "X")
    n = _check_square(a)
    if x.ndim == 0:
        raise ValueError(f"`X` must have shape (..., {n}) to match `A`; got a 0-d array.")
    if x.shape[-1] != n:
        raise ValueError(
            f"`X` must have shape (..., {n}) to match `A` of shape {a.shape}; got shape {x.shape}."
        )
    try:
        batch = np.broadcast_shapes(a.shape[:-2], x.shape[:-1])
    except ValueError:
        raise ValueError(
            "the batch shapes of `A` and `X` must broadcast like np.matmul; got "
            f"{a.shape[:-2]} (from `A` of shape {a.shape}) and {x.shape[:-1]} "
            f"(from `X` of shape {x.shape})."
        ) from None
    dtype = result_dtype(a, x)
    return _QuadForm(a, x, batch, dtype, compute_dtype(dtype))


def _prep_hessian(A: ArrayLike) -> tuple[np.ndarray, np.dtype]:
    """Validate ``A`` for :func:`quadratic_form_hessian`; return it and its dtype."""
    a = as_float_array(A, "A")
    _check_square(a)
    return a, result_dtype(a)


class _LeastSquares(NamedTuple):
    """A validated least-squares problem."""

    Phi: np.ndarray  # (N, D)
    y: np.ndarray  # (N,) for least_squares; (N,) or (N, K) for normal_equations
    theta: np.ndarray | None  # (..., D); None for normal_equations
    ridge: float
    mean: bool
    dtype: np.dtype
    cdtype: np.dtype


def _check_design(Phi: ArrayLike) -> np.ndarray:
    phi = as_float_array(Phi, "Phi")
    if phi.ndim != 2:
        raise ValueError(f"`Phi` must be a 2-d array of shape (N, D); got shape {phi.shape}.")
    return phi


def _prep_least_squares(
    Phi: ArrayLike, y: ArrayLike, theta: ArrayLike, ridge: Any, mean: Any
) -> _LeastSquares:
    """Validate the arguments of :func:`least_squares`.

    Raises
    ------
    TypeError
        For complex or non-numeric arrays, a `ridge` that is not a real
        number, or a `mean` that is not a bool.
    ValueError
        For `Phi` not 2-d, `y` not (N,), `theta` not (..., D), a negative or
        non-finite `ridge`, or ``mean=True`` with N = 0.
    """
    phi = _check_design(Phi)
    yy = as_float_array(y, "y")
    th = as_float_array(theta, "theta")
    ridge = check_nonnegative_real(ridge, "ridge")
    mean = check_bool(mean, "mean")
    N, D = phi.shape
    if yy.shape != (N,):
        raise ValueError(
            f"`y` must have shape (N,) = ({N},) to match `Phi` of shape {phi.shape}; "
            f"got shape {yy.shape}."
        )
    if th.ndim == 0 or th.shape[-1] != D:
        raise ValueError(
            f"`theta` must have shape (D,) or (..., D) with D = {D} to match `Phi` of shape "
            f"{phi.shape}; got shape {th.shape}."
        )
    if mean and N == 0:
        raise ValueError("`mean=True` needs at least one row in `Phi` (N >= 1); got N = 0.")
    dtype = result_dtype(phi, yy, th)
    return _LeastSquares(phi, yy, th, ridge, mean, dtype, compute_dtype(dtype))


def _prep_normal(Phi: ArrayLike, y: ArrayLike, ridge: Any) -> _LeastSquares:
    """Validate the arguments of :func:`normal_equations` (``theta`` is None)."""
    phi = _check_design(Phi)
    yy = as_float_array(y, "y")
    ridge = check_nonnegative_real(ridge, "ridge")
    N = phi.shape[0]
    if yy.ndim not in (1, 2) or yy.shape[0] != N:
        raise ValueError(
            f"`y` must have shape (N,) or (N, K) with N = {N} to match `Phi` of shape "
            f"{phi.shape}; got shape {yy.shape}."
        )
    for a, name in ((phi, "Phi"), (yy, "y")):
        bad = ~np.isfinite(a)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"`{name}` must be finite for normal_equations (the least-squares solvers "
                f"do not terminate on inf or NaN); got {a[idx]!r} at index {idx}."
            )
    dtype = result_dtype(phi, yy)
    return _LeastSquares(phi, yy, None, ridge, False, dtype, compute_dtype(dtype))


class _Weighted(NamedTuple):
    """A validated weighted least-squares problem."""

    x: np.ndarray  # (m,)
    A: np.ndarray  # (m, k)
    s: np.ndarray  # (..., k)
    W: np.ndarray | None  # (m, m), or None for the identity
    dtype: np.dtype
    cdtype: np.dtype


def _prep_weighted(x: ArrayLike, A: ArrayLike, s: ArrayLike, W: ArrayLike | None) -> _Weighted:
    """Validate the arguments of :func:`weighted_least_squares`.

    Raises
    ------
    TypeError
        For complex or non-numeric arrays.
    ValueError
        For `x` not (m,), `A` not (m, k), `s` not (..., k), `W` not (m, m).
    """
    xx = as_float_array(x, "x")
    a = as_float_array(A, "A")
    ss = as_float_array(s, "s")
    w = None if W is None else as_float_array(W, "W")
    if xx.ndim != 1:
        raise ValueError(f"`x` must be 1-d, shape (m,); got shape {xx.shape}.")
    m = xx.shape[0]
    if a.ndim != 2 or a.shape[0] != m:
        raise ValueError(
            f"`A` must have shape (m, k) with m = {m} to match `x` of shape {xx.shape}; "
            f"got shape {a.shape}."
        )
    k = a.shape[1]
    if ss.ndim == 0 or ss.shape[-1] != k:
        raise ValueError(
            f"`s` must have shape (k,) or (..., k) with k = {k} to match `A` of shape "
            f"{a.shape}; got shape {ss.shape}."
        )
    if w is not None and w.shape != (m, m):
        raise ValueError(
            f"`W` must have shape (m, m) = ({m}, {m}) to match `x` of shape {xx.shape}; "
            f"got shape {w.shape}."
        )
    dtype = result_dtype(xx, a, ss) if w is None else result_dtype(xx, a, ss, w)
    return _Weighted(xx, a, ss, w, dtype, compute_dtype(dtype))


def _as_result(out: np.ndarray, dtype: np.dtype) -> Any:
    """Round once to `dtype`; 0-d results come back as NumPy scalars.

    A value beyond the range of `dtype` (float16 above 65504, say) becomes
    +-inf without a warning, as it does in the kernels.
    """
    with np.errstate(over="ignore"):
        out = np.asarray(out).astype(dtype, copy=False)
    return out[()] if out.ndim == 0 else out


def _f64(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64, copy=False)


# ---------------------------------------------------------------------------
# Public reference functions
# ---------------------------------------------------------------------------


def quadratic_form(A: ArrayLike, X: ArrayLike) -> Any:
    """NumPy reference for :func:`vcalc.quadratic_form` (same signature and results).

    Computed as ``einsum('...i,...i->...', X, A @ X)`` in float64.
    """
    p = _prep_quadratic(A, X)
    a, x = _f64(p.A), _f64(p.X)
    with np.errstate(all="ignore"):  # overflow gives inf, as in the kernels
        ax = np.matmul(a, x[..., None])[..., 0]
        value = np.einsum("...i,...i->...", x, ax)
    return _as_result(value, p.dtype)


def quadratic_form_grad(A: ArrayLike, X: ArrayLike, symmetric: bool = False) -> np.ndarray:
    """NumPy reference for :func:`vcalc.quadratic_form_grad` (same signature and results).

    Computed as ``A @ X + A^T @ X`` (``2 A @ X`` with ``symmetric=True``) in float64.
    """
    symmetric = check_bool(symmetric, "symmetric")
    p = _prep_quadratic(A, X)
    a, x = _f64(p.A), _f64(p.X)
    with np.errstate(all="ignore"):
        ax = np.matmul(a, x[..., None])[..., 0]
        if symmetric:
            grad = 2.0 * ax
        else:
            grad = ax + np.matmul(np.swapaxes(a, -1, -2), x[..., None])[..., 0]
    return cast(np.ndarray, _as_result(grad, p.dtype))


def quadratic_form_value_and_grad(A: ArrayLike, X: ArrayLike) -> tuple[Any, np.ndarray]:
    """NumPy reference for :func:`vcalc.quadratic_form_value_and_grad`.

    Same signature and results: ``(quadratic_form(A, X), quadratic_form_grad(A, X))``.
    """
    p = _prep_quadratic(A, X)
    a, x = _f64(p.A), _f64(p.X)
    with np.errstate(all="ignore"):
        ax = np.matmul(a, x[..., None])[..., 0]
        value = np.einsum("...i,...i->...", x, ax)
        grad = ax + np.matmul(np.swapaxes(a, -1, -2), x[..., None])[..., 0]
    return (
        _as_result(value, p.dtype),
        _as_result(grad, p.dtype),
    )


def quadratic_form_hessian(A: ArrayLike) -> np.ndarray:
    """NumPy reference for :func:`vcalc.quadratic_form_hessian`: ``A + swapaxes(A, -1, -2)``."""
    a, dtype = _prep_hessian(A)
    a = _f64(a)
    with np.errstate(all="ignore"):
        return cast(np.ndarray, _as_result(a + np.swapaxes(a, -1, -2), dtype))


def least_squares(
    Phi: ArrayLike,
    y: ArrayLike,
    theta: ArrayLike,
    *,
    ridge: float = 0.0,
    mean: bool = False,
) -> tuple[Any, np.ndarray]:
    """NumPy reference for :func:`vcalc.least_squares` (same signature and results).

    Computed in float64 as ``r = y - theta @ Phi.T``, ``loss = sum(r**2)``
    and ``grad = -2 r @ Phi`` (both over N when `mean`), plus the ridge terms.
    """
    p = _prep_least_squares(Phi, y, theta, ridge, mean)
    phi, yy, th = _f64(p.Phi), _f64(p.y), _f64(cast(np.ndarray, p.theta))  # not None here
    den = phi.shape[0] if p.mean else 1
    with np.errstate(all="ignore"):
        r = yy - np.matmul(th, phi.T)  # (..., N)
        loss = np.einsum("...i,...i->...", r, r) / den + p.ridge * np.einsum(
            "...j,...j->...", th, th
        )
        grad = -2.0 * np.matmul(r, phi) / den + 2.0 * p.ridge * th
    return _as_result(loss, p.dtype), _as_result(grad, p.dtype)


def weighted_least_squares(
    x: ArrayLike, A: ArrayLike, s: ArrayLike, W: ArrayLike | None = None
) -> tuple[Any, np.ndarray]:
    """NumPy reference for :func:`vcalc.weighted_least_squares` (same signature and results).

    Computed in float64 as ``r = x - s @ A.T``, ``value = einsum(r, W r)`` and
    ``grad = -(r @ (W + W.T)) @ A`` (``W = I`` when None).
    """
    p = _prep_weighted(x, A, s, W)
    xx, a, ss = _f64(p.x), _f64(p.A), _f64(p.s)
    with np.errstate(all="ignore"):
        r = xx - np.matmul(ss, a.T)  # (..., m)
        if p.W is None:
            value = np.einsum("...i,...i->...", r, r)
            grad = -2.0 * np.matmul(r, a)
        else:
            w = _f64(p.W)
            value = np.einsum("...i,ij,...j->...", r, w, r)
            grad = -np.matmul(np.matmul(r, w + w.T), a)
    return _as_result(value, p.dtype), _as_result(grad, p.dtype)


def normal_equations(Phi: ArrayLike, y: ArrayLike, *, ridge: float = 0.0) -> np.ndarray:
    """NumPy reference for :func:`vcalc.normal_equations` (same signature and results).

    The textbook closed form ``pinv(Phi.T @ Phi + ridge I) @ (Phi.T @ y)`` in
    float64.  Singular values of the Gram matrix below ``max(N, D) * eps``
    times the largest are cut, so a rank-deficient `Phi` gives the
    minimum-norm solution.  Forming the Gram matrix squares the condition
    number: trust this only for ``cond(Phi)`` well below ``1e7``; the Cython
    backend's solve does not have that limit.
    """
    p = _prep_normal(Phi, y, ridge)
    phi, yy = _f64(p.Phi), _f64(p.y)
    N, D = phi.shape
    # Scale Phi by a power of two c so that max|c Phi| is about 1 (exact):
    # theta(c Phi, y, c^2 ridge) = theta / c, and Phi^T Phi cannot overflow
    # (or underflow) for any finite Phi.
    m = float(np.max(np.abs(phi), initial=0.0))
    e = math.frexp(m)[1] if m > 0 else 0
    phi = np.ldexp(phi, -e)
    with np.errstate(over="ignore", under="ignore"):
        rhs = phi.T @ yy
        if not np.any(rhs):  # y orthogonal to Phi's columns (or Phi empty): theta = 0
            return cast(np.ndarray, _as_result(np.zeros(rhs.shape), p.dtype))
        ridge = min(math.ldexp(p.ridge, -2 * e), float(np.finfo(np.float64).max))
        gram = phi.T @ phi + ridge * np.eye(D)
        rtol = max(N, D, 1) * np.finfo(np.float64).eps
        theta = np.ldexp(np.linalg.pinv(gram, rtol=rtol) @ rhs, -e)
    return cast(np.ndarray, _as_result(theta, p.dtype))
