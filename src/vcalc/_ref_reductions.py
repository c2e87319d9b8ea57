"""NumPy reference for the stable reductions, and their shared validation.

The public functions here are re-exported by :mod:`vcalc.reference`; the
``_prep_*`` helpers validate and normalise arguments for both backends, so
both raise the same errors for the same input.

Every computation runs in float64 (float32 and float16 data included) and is
rounded once to the result dtype; array expressions only, no loops.
"""

from __future__ import annotations

from math import prod
from typing import Any, NamedTuple, cast

import numpy as np
from numpy.typing import ArrayLike

from vcalc._validate import (
    as_float_array,
    check_axis,
    check_bool,
    compute_dtype,
    result_dtype,
)

__all__ = ["logsumexp", "softmax", "log_softmax", "softmax_jacobian"]


# ---------------------------------------------------------------------------
# Validation shared with the Cython facade
# ---------------------------------------------------------------------------


class _Reduction(NamedTuple):
    """A validated reduction problem."""

    a: np.ndarray  # data, floating, broadcast against b (may be a view)
    b: np.ndarray | None  # weights, same shape as a, or None
    axes: tuple[int, ...]  # reduced axes, sorted, non-negative
    dtype: np.dtype  # dtype of the result
    cdtype: np.dtype  # dtype the kernels run in (float16 runs as float32)


def _prep_reduction(
    a: ArrayLike, axis: Any, b: ArrayLike | None = None, *, name: str = "a", scalar_as_1d: bool
) -> _Reduction:
    """Validate the data, weights and axes of a reduction.

    ``scalar_as_1d`` treats 0-d data as shape (1,), as ``scipy.special.logsumexp``
    does (so ``axis=0`` works on a scalar there).
    """
    arr = as_float_array(a, name)
    wts = None
    if b is not None:
        wts = as_float_array(b, "b")
        try:
            shape = np.broadcast_shapes(arr.shape, wts.shape)
        except ValueError:
            raise ValueError(
                f"`b` must broadcast against `{name}`; got shapes {wts.shape} and {arr.shape}."
            ) from None
        arr = np.broadcast_to(arr, shape)
        wts = np.broadcast_to(wts, shape)
    if scalar_as_1d and arr.ndim == 0:
        arr = arr.reshape(1)
        wts = None if wts is None else wts.reshape(1)
    dtype = result_dtype(arr) if wts is None else result_dtype(arr, wts)
    axes = check_axis(axis, arr.ndim)
    return _Reduction(arr, wts, axes, dtype, compute_dtype(dtype))


def _reduced_shape(
    shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool
) -> tuple[int, ...]:
    if keepdims:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def _as_result(out: np.ndarray) -> Any:
    """0-d results come back as NumPy scalars, like NumPy's own reductions."""
    return out[()] if out.ndim == 0 else out


def _prep_jacobian_axis(x: ArrayLike, axis: Any) -> tuple[np.ndarray, int | None]:
    arr = as_float_array(x, "x")
    if axis is None:
        return arr, None
    if isinstance(axis, tuple):
        raise TypeError(f"`axis` must be an int or None for softmax_jacobian; got {axis!r}.")
    (ax,) = check_axis(axis, arr.ndim)
    return arr, ax


# ---------------------------------------------------------------------------
# Reference computations (keepdims=True shapes throughout)
# ---------------------------------------------------------------------------


def _shift(x: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``d = fl(x - m)`` and its rounding error ``err`` (TwoSum): x - m = d + err.

    ``err`` is NaN where d is infinite.
    """
    d = x - m
    z = d - x
    return d, (x - (d - z)) + (-m - z)


def _exp_shifted(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """exp(x - m) with the rounding error of x - m folded back in.

    Without the correction exp amplifies that rounding error into a relative
    error of |x - m| * eps / 2.  Where exp underflows the correction is NaN
    or irrelevant and is dropped.
    """
    d, err = _shift(x, m)
    e = np.exp(d)
    c = e * err
    return cast(np.ndarray, e + np.where(np.isnan(c), 0.0, c))


def _row_max(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Maximum over `axes` with NaN propagated; -inf for an empty reduction."""
    if a.size == 0:
        return np.full(_reduced_shape(a.shape, axes, True), -np.inf)
    return cast(np.ndarray, np.max(a, axis=axes, keepdims=True))


def _lse(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """log(sum(exp(a))) over `axes`, keepdims, in float64."""
    m = _row_max(a, axes)
    finite = np.isfinite(m)
    shift = np.where(finite, m, 0.0)
    is_max = a == m
    c = np.sum(is_max, axis=axes, keepdims=True)
    # The c largest terms are exp(0) = 1 each; the rest is summed apart so
    # that log(c + rest) = log(c) + log1p(rest / c) stays exact near 0.
    rest = np.sum(np.where(is_max, 0.0, _exp_shifted(a, shift)), axis=axes, keepdims=True)
    out = shift + np.log(np.maximum(c, 1)) + np.log1p(rest / np.maximum(c, 1))
    # Non-finite maxima: NaN stays NaN, -inf (empty, all -inf) gives -inf,
    # +inf gives +inf.
    return np.where(finite, out, m)


def _lse_weighted(
    a: np.ndarray, b: np.ndarray, axes: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """log|sum(b * exp(a))| and its sign over `axes`, keepdims, in float64."""
    present = b != 0  # a zero weight removes the element, even inf or NaN
    am = np.where(present, a, -np.inf)
    bm = np.where(present, b, 0.0)
    nan = np.any(np.isnan(am) | np.isnan(bm), axis=axes, keepdims=True)
    m = _row_max(np.where(np.isnan(am), -np.inf, am), axes)
    finite = np.isfinite(m)
    shift = np.where(finite, m, 0.0)
    is_max = present & (am == m)
    wmax = np.sum(np.where(is_max, bm, 0.0), axis=axes, keepdims=True)
    terms = np.where(present & ~is_max, bm * _exp_shifted(am, shift), 0.0)
    s = np.sum(terms, axis=axes, keepdims=True)

    # sum = wmax * (1 + r); |1 + r| = 1 + (-r - 2) when r < -1.
    wsafe = np.where(wmax == 0, 1.0, wmax)
    r = s / wsafe
    lp = np.log1p(np.where(r >= -1, r, -r - 2))
    sign_main = np.where(r > -1, np.sign(wmax), np.where(r == -1, 0.0, -np.sign(wmax)))
    out_main = m + np.log(np.abs(wsafe)) + lp
    # Weights of the largest terms cancel: what is left is s alone.
    out_cancel = m + np.log(np.abs(s))
    out = np.where(wmax == 0, out_cancel, out_main)
    sign = np.where(wmax == 0, np.sign(s), sign_main)

    # +inf maximum: only the +inf terms count, their total weight decides.
    inf_w = np.sum(np.where(is_max, bm, 0.0), axis=axes, keepdims=True)
    out = np.where(m == np.inf, np.where(inf_w != 0, np.inf, np.nan), out)
    sign = np.where(m == np.inf, np.where(inf_w != 0, np.sign(inf_w), np.nan), sign)
    # Nothing to sum (empty, all masked, all -inf): log(0).
    out = np.where(m == -np.inf, -np.inf, out)
    sign = np.where(m == -np.inf, 0.0, sign)
    out = np.where(nan, np.nan, out)
    sign = np.where(nan, np.nan, sign)
    return out, sign


def _softmax_parts(
    x: np.ndarray, axes: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shifted exponentials and the pieces softmax and log_softmax share.

    Returns ``(e, total, m, is_max)`` with ``e = exp(x - m)`` (0 where not
    defined), ``total = sum(e)`` and the keepdims maximum ``m``.
    """
    m = _row_max(x, axes)
    shift = np.where(np.isfinite(m), m, 0.0)
    e = _exp_shifted(x, shift)
    total = np.sum(e, axis=axes, keepdims=True)
    return e, total, m, x == m


def _softmax(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    if x.size == 0:
        return np.empty(x.shape)
    e, total, m, is_max = _softmax_parts(x, axes)
    regular = e / total
    # +inf entries: the limit splits the mass evenly over them.
    c = np.sum(is_max, axis=axes, keepdims=True)
    limit = is_max / np.maximum(c, 1)
    out = np.where(m == np.inf, limit, regular)
    # NaN anywhere, or all -inf (no maximum to shift by): NaN.
    return np.where(np.isnan(m) | (m == -np.inf), np.nan, out)


def _log_softmax(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    if x.size == 0:
        return np.empty(x.shape)
    m = _row_max(x, axes)
    shift = np.where(np.isfinite(m), m, 0.0)
    is_max = x == m
    c = np.sum(is_max, axis=axes, keepdims=True)
    csafe = np.maximum(c, 1)
    rest = np.sum(np.where(is_max, 0.0, _exp_shifted(x, shift)), axis=axes, keepdims=True)
    d, err = _shift(x, shift)
    regular = (d - (np.log(csafe) + np.log1p(rest / csafe))) + np.where(np.isnan(err), 0.0, err)
    limit = np.where(is_max, -np.log(csafe), -np.inf)
    out = np.where(m == np.inf, limit, regular)
    return np.where(np.isnan(m) | (m == -np.inf), np.nan, out)


def _moved_rows(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """`a` with `axes` moved to the end and merged into one (a view when possible)."""
    kept = [i for i in range(a.ndim) if i not in axes]
    moved = np.transpose(a, kept + list(axes))
    return moved.reshape(moved.shape[: len(kept)] + (prod(a.shape[i] for i in axes),))


# ---------------------------------------------------------------------------
# Public reference functions
# ---------------------------------------------------------------------------


def logsumexp(
    a: ArrayLike,
    axis: int | tuple[int, ...] | None = None,
    b: ArrayLike | None = None,
    keepdims: bool = False,
    return_sign: bool = False,
) -> Any:
    """NumPy reference for :func:`vcalc.logsumexp` (same signature and results)."""
    keepdims = check_bool(keepdims, "keepdims")
    return_sign = check_bool(return_sign, "return_sign")
    p = _prep_reduction(a, axis, b, scalar_as_1d=True)
    a64 = p.a.astype(np.float64)
    with np.errstate(all="ignore"):  # overflow of x - max to -inf is exact here
        if p.b is None:
            out = _lse(a64, p.axes)
            sign = np.where(out == -np.inf, 0.0, np.where(np.isnan(out), np.nan, 1.0))
        else:
            out, sign = _lse_weighted(a64, p.b.astype(np.float64), p.axes)
            if not return_sign:
                out = np.where(sign < 0, np.nan, out)
        # float64 values beyond float32's range round to inf, as in the kernel.
        shape = _reduced_shape(p.a.shape, p.axes, keepdims)
        out = _as_result(out.reshape(shape).astype(p.dtype))
        sign = _as_result(sign.reshape(shape).astype(p.dtype))
    return (out, sign) if return_sign else out


def softmax(x: ArrayLike, axis: int | tuple[int, ...] | None = None) -> Any:
    """NumPy reference for :func:`vcalc.softmax` (same signature and results)."""
    p = _prep_reduction(x, axis, name="x", scalar_as_1d=False)
    with np.errstate(all="ignore"):
        out = _softmax(p.a.astype(np.float64), p.axes).astype(p.dtype)
    return _as_result(out)


def log_softmax(x: ArrayLike, axis: int | tuple[int, ...] | None = None) -> Any:
    """NumPy reference for :func:`vcalc.log_softmax` (same signature and results)."""
    p = _prep_reduction(x, axis, name="x", scalar_as_1d=False)
    with np.errstate(all="ignore"):
        out = _log_softmax(p.a.astype(np.float64), p.axes).astype(p.dtype)
    return _as_result(out)


def softmax_jacobian(x: ArrayLike, axis: int | None = -1) -> np.ndarray:
    """NumPy reference for :func:`vcalc.softmax_jacobian` (same signature and results)."""
    arr, ax = _prep_jacobian_axis(x, axis)
    dtype = result_dtype(arr)
    axes = tuple(range(arr.ndim)) if ax is None else (ax,)
    rows = _moved_rows(arr.astype(np.float64), axes)  # (..., n)
    n = rows.shape[-1]
    with np.errstate(all="ignore"):
        s = _softmax(rows, (rows.ndim - 1,))
        e, total, m, _ = _softmax_parts(rows, (rows.ndim - 1,))
        # 1 - s_k cancels for the row's (first) maximum when s_k is near 1;
        # there it equals the sum of the other terms over the total.
        first = np.zeros(rows.shape, dtype=bool)
        if n:
            np.put_along_axis(first, np.argmax(rows, axis=-1)[..., None], True, axis=-1)
        rest = np.sum(np.where(first, 0.0, e), axis=-1, keepdims=True)
        comp = np.where(first & np.isfinite(m), rest / total, 1.0 - s)
        jac = -s[..., :, None] * s[..., None, :]
        idx = np.arange(n)
        jac[..., idx, idx] = s * comp
        return cast(np.ndarray, jac.astype(dtype))
