"""Stable reductions: logsumexp, softmax, log_softmax, softmax_jacobian.

Facades over the Cython kernels in ``_kernels.pyx``.  Each one validates
once (helpers shared with the reference), hands the kernel C-contiguous
``(batch, n)`` rows of float32 or float64 with the reduced axes last,
and restores the caller's shape.  On the ``"numpy"`` backend the call goes
to :mod:`vcalc.reference` instead.
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import ArrayLike

from vcalc import _backend
from vcalc import _ref_reductions as _ref
from vcalc._ref_reductions import (
    _as_result,
    _prep_jacobian_axis,
    _prep_reduction,
    _reduced_shape,
)
from vcalc._validate import check_bool, compute_dtype, result_dtype

if TYPE_CHECKING:
    from vcalc._backend import KernelsAPI

__all__ = ["logsumexp", "softmax", "log_softmax", "softmax_jacobian"]


def _rows(a: np.ndarray, axes: tuple[int, ...], cdtype: np.dtype) -> np.ndarray:
    """C-contiguous, native-endian ``(batch, n)`` rows of `cdtype` with `axes` last.

    Transposes as a view, then copies at most once (layout and dtype
    together); the final reshape of the contiguous result is free.
    """
    kept = [i for i in range(a.ndim) if i not in axes]
    moved = np.ascontiguousarray(np.transpose(a, kept + list(axes)), dtype=cdtype)
    if not moved.flags.aligned:  # a view into a byte buffer at an odd offset
        moved = moved.copy()
    n = prod(a.shape[i] for i in axes)
    return moved.reshape(prod(a.shape[i] for i in kept), n)


def _unrows(out: np.ndarray, a_shape: tuple[int, ...], axes: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`_rows` for an elementwise result of shape ``a_shape``."""
    kept = [i for i in range(len(a_shape)) if i not in axes]
    order = kept + list(axes)
    moved = out.reshape(tuple(a_shape[i] for i in order))
    return np.transpose(moved, np.argsort(order))


def _kernels() -> KernelsAPI:
    return _backend.kernels("_kernels")


def logsumexp(
    a: ArrayLike,
    axis: int | tuple[int, ...] | None = None,
    b: ArrayLike | None = None,
    keepdims: bool = False,
    return_sign: bool = False,
) -> Any:
    r"""Compute ``log(sum(b * exp(a)))`` without overflow or underflow.

    A drop-in replacement for :func:`scipy.special.logsumexp` (same
    signature, same values and dtypes) that also gets the edge cases right
    and never warns on finite input.

    Parameters
    ----------
    a : array_like
        Input data.  float16, float32 and float64 keep their dtype; integer
        and bool data become float64; complex data raise ``TypeError``.
    axis : None or int or tuple of int, optional
        Axis or axes to reduce over; negative values count from the end.
        Default None reduces over every element.
    b : array_like, optional
        Weights, broadcast against `a`.  A zero weight removes its element
        (even when that element is inf or NaN); negative weights subtract.
    keepdims : bool, optional
        Keep the reduced axes as axes of length one.
    return_sign : bool, optional
        If True, return ``(res, sgn)`` with ``res = log|sum|`` and ``sgn``
        the sign of the sum (+1, 0 or -1).  If False (default), a negative
        sum gives NaN.

    Returns
    -------
    res : ndarray or scalar
        The reduced values; a NumPy scalar when every axis is reduced.
    sgn : ndarray or scalar
        Only with ``return_sign=True``: the sign of each sum, same shape.

    Raises
    ------
    TypeError
        If `a` or `b` is complex or not numeric, or an argument has the
        wrong type.
    ValueError
        If `b` does not broadcast against `a`, or `axis` is out of range or
        repeated.

    See Also
    --------
    softmax : The gradient of `logsumexp`.
    scipy.special.logsumexp : The function this one replaces.

    Notes
    -----
    With :math:`m = \max_i a_i` and :math:`k` the position of the first
    maximum,

    .. math:: \log\sum_i e^{a_i} = m + \operatorname{log1p}
              \Big(\sum_{i \ne k} e^{a_i - m}\Big),

    which never overflows, and keeps full relative precision when the
    result is close to 0.  Sums are carried in double for float32 data.
    With weights, the terms at the maximum are summed apart the same way.

    Edge cases: a NaN in a slice (with non-zero weight) gives NaN; an empty
    or all ``-inf`` slice gives ``-inf`` (sign 0); ``+inf`` entries give
    ``+inf`` (NaN when their weights cancel).  Entries of magnitude 1e308
    give correct values and no ``RuntimeWarning``.

    References
    ----------
    .. [1] P. Blanchard, D. J. Higham, N. J. Higham, "Accurately computing the
       log-sum-exp and softmax functions", IMA J. Numer. Anal. 41(4), 2021.

    Examples
    --------
    Seed example 8: the log-sum-exp of a vector, and its stability.

    >>> import numpy as np
    >>> import vcalc
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> bool(np.isclose(vcalc.logsumexp(x), np.log(np.exp(x).sum())))
    True
    >>> float(vcalc.logsumexp([1000.0, 1000.0]))  # 1000 + log 2, no overflow
    1000.6931471805599
    >>> res, sgn = vcalc.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    >>> float(np.round(res, 6)), float(sgn)
    (1.541325, -1.0)
    """
    if _backend.get_backend() == "numpy":
        return _ref.logsumexp(a, axis, b, keepdims, return_sign)
    if b is None and keepdims is False and return_sign is False:
        # The common call (an aligned, C-contiguous float ndarray over its
        # last axis or all of it) is checked and run in one kernel call.
        res = _kernels().reduce_fast(0, a, axis, _backend.threads_for_kernel())
        if res is not None:
            return res
    keepdims = check_bool(keepdims, "keepdims")
    return_sign = check_bool(return_sign, "return_sign")
    p = _prep_reduction(a, axis, b, scalar_as_1d=True)
    rows = _rows(p.a, p.axes, p.cdtype)
    out = np.empty(rows.shape[0], p.cdtype)
    if p.b is None:
        _kernels().logsumexp_rows(rows, out, _backend.threads_for_kernel())
        sign = None
        if return_sign:
            # Without weights every sum is positive, except log(0) = -inf.
            sign = np.where(out == -np.inf, 0.0, np.where(np.isnan(out), np.nan, 1.0))
    else:
        sign = np.empty_like(out)
        _kernels().logsumexp_rows_weighted(
            rows, _rows(p.b, p.axes, p.cdtype), out, sign, return_sign
        )
    shape = _reduced_shape(p.a.shape, p.axes, keepdims)
    res = _as_result(out.reshape(shape).astype(p.dtype, copy=False))
    if return_sign:
        sign = cast(np.ndarray, sign)  # not None: set above when return_sign
        return res, _as_result(sign.reshape(shape).astype(p.dtype, copy=False))
    return res


def softmax(x: ArrayLike, axis: int | tuple[int, ...] | None = None) -> Any:
    r"""Compute the softmax ``exp(x) / sum(exp(x))`` along the given axes.

    A drop-in replacement for :func:`scipy.special.softmax` that returns the
    mathematical limit instead of NaN when entries are ``+inf``, and never
    warns on finite input.

    Parameters
    ----------
    x : array_like
        Input data.  float16, float32 and float64 keep their dtype; integer
        and bool data become float64; complex data raise ``TypeError``.
    axis : None or int or tuple of int, optional
        Axis or axes over which the softmax is normalised.  Default None
        normalises over the whole array.

    Returns
    -------
    s : ndarray
        Same shape as `x`; entries in [0, 1] summing to 1 over `axis`.

    Raises
    ------
    TypeError
        If `x` is complex or not numeric, or `axis` is not an int or tuple.
    ValueError
        If `axis` is out of range or repeated.

    See Also
    --------
    log_softmax : Its logarithm, computed accurately.
    softmax_jacobian : Its Jacobian ``diag(s) - s s^T``.
    logsumexp : Whose gradient is the softmax.

    Notes
    -----
    :math:`\sigma(x)_j = e^{x_j - m} / \sum_k e^{x_k - m}` with
    :math:`m = \max_k x_k`, so no exponential overflows; sums are carried in
    double for float32 data and each result is rounded once.

    Edge cases: a NaN in a slice, or a slice of all ``-inf``, gives NaN for
    the slice (as SciPy).  ``+inf`` entries give the limit: the mass split
    evenly over the ``+inf`` entries and 0 elsewhere (SciPy gives NaN).  An
    empty array gives an empty array.

    Examples
    --------
    Seed example 8: the gradient of log-sum-exp is the softmax, positive
    entries summing to one with most mass on the largest input.

    >>> import numpy as np
    >>> import vcalc
    >>> s = vcalc.softmax([1.0, 2.0, 3.0])
    >>> np.round(s, 4)
    array([0.09  , 0.2447, 0.6652])
    >>> bool(np.isclose(s.sum(), 1.0)), int(np.argmax(s))
    (True, 2)
    >>> vcalc.softmax([np.inf, 0.0, np.inf])
    array([0.5, 0. , 0.5])
    """
    if _backend.get_backend() == "numpy":
        return _ref.softmax(x, axis)
    return _elementwise(x, axis, "softmax_rows")


def log_softmax(x: ArrayLike, axis: int | tuple[int, ...] | None = None) -> Any:
    r"""Compute ``log(softmax(x))`` accurately, without forming the softmax.

    A drop-in replacement for :func:`scipy.special.log_softmax`.

    Parameters
    ----------
    x : array_like
        Input data.  float16, float32 and float64 keep their dtype; integer
        and bool data become float64; complex data raise ``TypeError``.
    axis : None or int or tuple of int, optional
        Axis or axes over which the softmax is normalised.  Default None
        normalises over the whole array.

    Returns
    -------
    ndarray
        Same shape as `x`: ``x - logsumexp(x, axis, keepdims=True)``.

    Raises
    ------
    TypeError
        If `x` is complex or not numeric, or `axis` is not an int or tuple.
    ValueError
        If `axis` is out of range or repeated.

    See Also
    --------
    softmax, logsumexp

    Notes
    -----
    :math:`\log\sigma(x)_j = (x_j - m) - \operatorname{log1p}\big(\sum_{k
    \ne k^*} e^{x_k - m}\big)` with :math:`m = x_{k^*}` the maximum; unlike
    ``log(softmax(x))`` it stays finite where the softmax underflows, and
    keeps full relative precision for entries close to 0.

    Edge cases follow :func:`softmax`: NaN for a slice with NaN or all
    ``-inf``; with ``+inf`` entries, ``-log(c)`` on the ``c`` infinite
    entries and ``-inf`` elsewhere; empty in, empty out.

    Examples
    --------
    >>> import numpy as np
    >>> import vcalc
    >>> vcalc.log_softmax([1000.0, 1.0])   # log(softmax) would give -inf
    array([   0., -999.])
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> bool(np.allclose(np.exp(vcalc.log_softmax(x)), vcalc.softmax(x)))
    True
    """
    if _backend.get_backend() == "numpy":
        return _ref.log_softmax(x, axis)
    return _elementwise(x, axis, "log_softmax_rows")


_FAST_OP = {"softmax_rows": 1, "log_softmax_rows": 2}


def _elementwise(x: ArrayLike, axis: Any, kernel: str) -> Any:
    """Run a row kernel whose output has the shape of its input."""
    res = _kernels().reduce_fast(_FAST_OP[kernel], x, axis, _backend.threads_for_kernel())
    if res is not None:  # the common call, as in logsumexp
        return res
    p = _prep_reduction(x, axis, name="x", scalar_as_1d=False)
    rows = _rows(p.a, p.axes, p.cdtype)
    out = np.empty_like(rows)
    getattr(_kernels(), kernel)(rows, out, _backend.threads_for_kernel())
    res = _unrows(out, p.a.shape, p.axes).astype(p.dtype, copy=False)
    return _as_result(res)


def softmax_jacobian(x: ArrayLike, axis: int | None = -1) -> np.ndarray:
    r"""Jacobian of the softmax: ``diag(s) - s s^T`` with ``s = softmax(x)``.

    Parameters
    ----------
    x : array_like
        Input data, shape ``(..., n, ...)``.  float16, float32 and float64
        keep their dtype; integer and bool data become float64.
    axis : int or None, optional
        The axis the softmax is taken along (default -1, the last).  None
        flattens `x` and takes one softmax over all of it.

    Returns
    -------
    J : ndarray, shape ``(..., n, n)``
        For every slice along `axis` (the other axes in their order, then
        two new axes), ``J[..., i, j] = ds_i / dx_j = s_i (delta_ij - s_j)``.
        With ``axis=None`` the shape is ``(x.size, x.size)``.

    Raises
    ------
    TypeError
        If `x` is complex or not numeric, or `axis` is a tuple.
    ValueError
        If `axis` is out of range.

    See Also
    --------
    softmax

    Notes
    -----
    The diagonal :math:`s_i (1 - s_i)` is computed without cancellation: for
    the largest entry, :math:`1 - s_k = \sum_{j \ne k} e^{x_j - m} /
    \sum_j e^{x_j - m}`.  The matrix is symmetric, each row sums to 0, and
    it is the Hessian of :func:`logsumexp`.  Slices with NaN or all
    ``-inf`` give NaN; ``+inf`` entries use the softmax's limit.

    Examples
    --------
    Seed example 8: the Jacobian of the softmax is ``diag(s) - s s^T``.

    >>> import numpy as np
    >>> import vcalc
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> s = vcalc.softmax(x)
    >>> J = vcalc.softmax_jacobian(x)
    >>> bool(np.allclose(J, np.diag(s) - np.outer(s, s)))
    True
    >>> bool(np.allclose(J.sum(axis=1), 0.0))
    True
    """
    if _backend.get_backend() == "numpy":
        return _ref.softmax_jacobian(x, axis)
    arr, ax = _prep_jacobian_axis(x, axis)
    dtype = result_dtype(arr)
    cdtype = compute_dtype(dtype)
    axes = tuple(range(arr.ndim)) if ax is None else (ax,)
    kept = tuple(s for i, s in enumerate(arr.shape) if i not in axes)
    rows = _rows(arr, axes, cdtype)
    n = rows.shape[1]
    out = np.empty((rows.shape[0], n, n), cdtype)
    _kernels().softmax_jacobian_rows(rows, out)
    return out.reshape(kept + (n, n)).astype(dtype, copy=False)
