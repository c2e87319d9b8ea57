"""Step sizes for finite differences: the default rule and user overrides.

:func:`default_step` gives the relative step h0 for a method, accuracy order
and derivative; :func:`absolute_step` turns it (or a step given by the user)
into per-coordinate absolute steps in float64, each exactly representable in
the sense that ``(x + h) - x == h``.  Pure Python and NumPy.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from vcalc._stencils import _check_deriv, _check_int, _check_method, _check_order
from vcalc._validate import as_float_array

__all__ = ["default_step", "absolute_step"]

_EPS = float(np.finfo(np.float64).eps)

#: Step of the complex-step method.  With no subtraction there is no
#: cancellation, so h can be far below eps; 1e-20 makes the O(h**2)
#: truncation error (~1e-40 |f'''|) vanish in float64 while h**2 = 1e-40 and
#: h * |x| stay far above the underflow threshold for any sensible x.
COMPLEX_STEP = 1e-20

#: When a user's absolute step is below the float spacing at x, so that
#: (x + h) - x rounds to 0, the step falls back to this many units in the last
#: place of x (a power of two, so the result is exact).
FALLBACK_ULPS = 4.0

_STEP_METHODS = ("forward", "backward", "central", "complex")


def _check_step_args(method: Any, order: Any, deriv: Any) -> tuple[str, int, int]:
    """Validate (method, order, deriv) for the step rules."""
    if isinstance(method, str) and method == "richardson":
        raise ValueError(
            "method='richardson' has no single default step (it extrapolates over a "
            "sequence of steps); `method` must be one of 'forward', 'backward', "
            "'central', 'complex' here."
        )
    method = _check_method(method, _STEP_METHODS)
    if method == "complex":
        order = _check_int(order, "order")
        if order != 2:
            raise ValueError(
                f"`order` must be 2 for method='complex' (the complex step is "
                f"second-order accurate); got {order}."
            )
        deriv = _check_int(deriv, "deriv")
        if deriv != 1:
            raise ValueError(
                f"`deriv` must be 1 for method='complex' (first derivatives only); got {deriv}."
            )
        return method, order, deriv
    return method, _check_order(order, method), _check_deriv(deriv)


def default_step(method: str, order: int, deriv: int = 1) -> float:
    """The optimal relative step h0 for a method, accuracy order and derivative.

    Parameters
    ----------
    method : {"forward", "backward", "central", "complex"}
        The finite-difference method.
    order : int
        Accuracy order: 1-4 for forward/backward, 2, 4, 6 or 8 for central,
        2 for complex.
    deriv : {1, 2}, default 1
        The derivative approximated (complex: 1 only).

    Returns
    -------
    float
        ``eps**(1/(order + deriv))`` for the real stencils, with
        ``eps = 2**-52``; :data:`COMPLEX_STEP` (1e-20) for ``"complex"``.

    Raises
    ------
    TypeError
        If `method` is not a str or `order`/`deriv` is not an int.
    ValueError
        If `method`, `order` or `deriv` is not one of the allowed values
        (``"richardson"`` chooses its own sequence of steps).

    See Also
    --------
    absolute_step : the per-coordinate absolute steps built from h0.

    Notes
    -----
    For a stencil of accuracy p for the d-th derivative with step h, the
    computed value has two errors:

    - truncation, ``C_t |f^(p+d)| h**p`` (the first unmatched Taylor term);
    - rounding: each f value carries a relative error ~eps, the weights are
      O(1), and the sum is divided by h**d, giving ``C_r eps |f| / h**d``.

    Their sum is smallest where its derivative in h vanishes,
    ``p C_t |f^(p+d)| h**(p-1) = d C_r eps |f| h**(-d-1)``, i.e. at
    ``h**(p+d) ~ eps`` times an O(1) factor that is 1 for a function whose
    value and derivatives are of similar size on the unit scale.  Hence
    ``h0 = eps**(1/(p+d))``, with total error ~ ``eps**(p/(p+d))``:
    forward order 1 gives h0 ~ 1.5e-8 and ~1e-8 error, central order 2
    h0 ~ 6.1e-6 and ~4e-11, central order 2 for a second derivative
    h0 ~ 1.2e-4 and ~1e-8.  The step actually used is h0 * max(1, |x_i|)
    (see :func:`absolute_step`): the scale of x is taken as the scale on
    which f varies.

    That assumption fails where f varies on a scale much smaller than |x|:
    for sin at x = 1e10 the central step is ~6e4, many periods, and the
    difference quotient is garbage.  Pass an absolute `step` (e.g. 1e-5
    there) or use method ``"richardson"``, which searches over steps.

    The complex step ``Im f(x + i h) / h`` subtracts nothing, so its rounding
    error is ~eps |f'| whatever h is; h is taken tiny so that the O(h**2)
    truncation error vanishes.  It is absolute (not scaled by |x|) and is
    not made exact: x itself is not perturbed.

    Examples
    --------
    >>> default_step("forward", 1) == 2.0**-26
    True
    >>> round(default_step("central", 2), 9)
    6.055e-06
    >>> default_step("complex", 2)
    1e-20
    """
    method, order, deriv = _check_step_args(method, order, deriv)
    if method == "complex":
        return COMPLEX_STEP
    return cast(float, _EPS ** (1.0 / (order + deriv)))


def _make_exact(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Round the steps `h` so that ``(x + h) - x == h`` in float64, never 0.

    Where the rounding gives 0 (h below half the spacing of floats at x),
    the step becomes :data:`FALLBACK_ULPS` units in the last place of x.
    Where x + h overflows, a ``ValueError`` names `x`.
    """
    if x.size and np.abs(x).max() < 1e300 and np.abs(h).max() < 1e300:
        # Common case: x + h cannot overflow, so no floating-point state to guard.
        h = np.array((x + h) - x, dtype=np.float64)
        if h.all():
            return h
    with np.errstate(over="ignore", invalid="ignore"):
        h = np.array((x + h) - x, dtype=np.float64)
        zero = h == 0
        if np.any(zero):
            tiny = FALLBACK_ULPS * np.spacing(np.abs(x[zero]))
            h[zero] = (x[zero] + tiny) - x[zero]
    bad = ~np.isfinite(h)
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"`x` is too close to the largest float for a finite-difference step; "
            f"x + h overflows at index {idx} (x = {float(x[idx])!r})."
        )
    return h


def absolute_step(
    x: ArrayLike, method: str, order: int, deriv: int = 1, step: ArrayLike | None = None
) -> np.ndarray:
    """Per-coordinate absolute steps, exactly representable, for finite differences.

    Parameters
    ----------
    x : array_like, shape (...)
        The point of differentiation; real and finite.
    method : {"forward", "backward", "central", "complex"}
        The finite-difference method.
    order : int
        Accuracy order (see :func:`default_step`).
    deriv : {1, 2}, default 1
        The derivative approximated.
    step : None, float or array_like broadcastable to ``x.shape``, default None
        None gives ``h0 * max(1, |x_i|)`` with ``h0 = default_step(method,
        order, deriv)``.  A float or an array of per-coordinate steps is
        absolute and used as given (up to the exactness rounding below).

    Returns
    -------
    ndarray, float64, shape ``x.shape``
        Positive steps h.  For the real methods each satisfies
        ``(x + h) - x == h``, so the perturbed point x + h differs from x by
        exactly h in floating point; the complex step is returned as is.

    Raises
    ------
    TypeError
        If `x` or `step` is not real numeric data (bools are refused for
        `step`), or `method`/`order`/`deriv` has the wrong type.
    ValueError
        If `step` has an entry that is not finite and > 0 or does not
        broadcast to the shape of `x`; if `x` is not finite, or so close to
        the largest float that x + h overflows; if `method`, `order` or
        `deriv` has a wrong value.

    See Also
    --------
    default_step : the relative step h0 and its derivation.

    Notes
    -----
    Making the step exact, ``h = (x + h) - x``, removes the rounding of the
    perturbation itself from the difference quotient: without it f is
    evaluated at a point whose distance from x is not the h we divide by
    (an error of up to eps |x| / h relative). Exactness is guaranteed for
    the point x + h; other stencil points x + k h are computed with at most
    one rounding, a relative error ~eps in the offset, far below the
    truncation error.

    Where a step is below half the spacing of floats at x (an absolute step
    of 1e-5 at x = 1e12, say), (x + h) - x rounds to 0; such a step is
    replaced by :data:`FALLBACK_ULPS` (4) units in the last place of x, the
    smallest step that still resolves a difference.  The default relative
    step never needs this: h0 * |x| is far above the spacing eps * |x|.

    A relative step is right when f varies on the scale of max(1, |x|).
    It fails where f varies much faster: for ``sin`` at x = 1e10 the
    default central step is ~6e4 (thousands of periods), and the central
    difference is unrelated to cos(1e10).  Give an absolute `step` (1e-5
    gives ~1e-11 relative error there) or use method ``"richardson"``,
    which searches over a sequence of larger and smaller steps.

    Examples
    --------
    >>> x = np.array([0.0, 3.0, -1e6])
    >>> h = absolute_step(x, "central", 2)
    >>> np.allclose(h, default_step("central", 2) * np.array([1.0, 3.0, 1e6]))
    True
    >>> bool(np.all((x + h) - x == h))
    True
    >>> absolute_step([1.0, 2.0], "forward", 1, step=0.25)
    array([0.25, 0.25])
    >>> absolute_step(1.0, "central", 2, step=-1.0)
    Traceback (most recent call last):
    ...
    ValueError: `step` must be finite and > 0; got -1.0.
    """
    method, order, deriv = _check_step_args(method, order, deriv)
    xa = np.asarray(as_float_array(x, "x"), dtype=np.float64)
    if not np.all(np.isfinite(xa)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(xa))[0])
        raise ValueError(f"`x` must be finite; got {float(xa[idx])!r} at index {idx}.")

    if step is None:
        h0 = default_step(method, order, deriv)
        h = h0 * np.maximum(1.0, np.abs(xa))
        if method == "complex":
            return h
        return _make_exact(xa, h)

    if isinstance(step, (bool, np.bool_)) or (
        isinstance(step, np.ndarray) and step.dtype == np.bool_
    ):
        raise TypeError(f"`step` must be a positive real number or array; got {step!r}.")
    sa = np.asarray(as_float_array(step, "step"), dtype=np.float64)
    try:
        h = np.array(np.broadcast_to(sa, xa.shape), dtype=np.float64)
    except ValueError:
        raise ValueError(
            f"`step` must broadcast to the shape of `x` {xa.shape}; got shape {sa.shape}."
        ) from None
    bad = ~(np.isfinite(sa) & (sa > 0))
    if np.any(bad):
        if sa.ndim == 0:
            raise ValueError(f"`step` must be finite and > 0; got {float(sa)!r}.")
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"`step` must be finite and > 0; got {float(sa[idx])!r} at index {idx}.")
    if method == "complex":
        return h
    return _make_exact(xa, h)
