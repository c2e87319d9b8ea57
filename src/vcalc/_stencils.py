"""Finite-difference stencils with exact (rational) weights.

A stencil approximates the ``deriv``-th derivative of a function of one
variable from its values on a grid of step ``h``::

    f^(deriv)(x) ~= sum_k weights[k] * f(x + offsets[k] * h) / h**deriv

The weights are derived once per (method, order, deriv) in exact rational
arithmetic (:class:`fractions.Fraction`) and cached, so a weight that should
vanish is exactly zero, and its point is dropped: the central first
derivative never evaluates f(x).  Pure Python; NumPy is used only to hand the
stencil out as arrays.

The mathematics
---------------
Taylor matching.  For a grid of N distinct integer offsets o_k, expand

    f(x + o h) = sum_j f^(j)(x) (o h)^j / j!.

Then ``sum_k w_k f(x + o_k h) / h**d`` equals

    sum_j f^(j)(x) h^(j - d) M_j,      M_j = sum_k w_k o_k^j / j!.

The stencil reproduces f^(d)(x) when M_j = delta_{j,d} for j = 0 .. N-1:
N linear equations (a transposed Vandermonde system, non-singular because
the offsets are distinct) for the N weights.  We solve it by Gauss-Jordan
elimination in Fractions, so the weights are exact.

Accuracy order.  The first moment left unmatched is M_N, so the error is
f^(N)(x) M_N h^(N - d) + O(h^(N - d + 1)), and the stencil differentiates
every polynomial of degree <= N - 1 exactly.  With N = order + deriv points
the one-sided (forward/backward) stencils have accuracy ``order``.

Symmetry.  On the symmetric grid -m .. m (N = 2m + 1), the reflection
o -> -o maps a solution to one for the mirrored right-hand side, which is
(-1)^d times the original; by uniqueness w_{-o} = (-1)^d w_o.  For d = 1 the
weights are odd, so w_0 = -w_0 = 0 (f(x) is not needed) and all even
moments vanish: M_{2m+1} is the first unmatched moment, error O(h^(2m)).
For d = 2 the weights are even, so all odd moments vanish, M_{2m+1} = 0 for
free, and the first unmatched moment is M_{2m+2}: error O(h^(2m)) again.
So central order p uses m = p // 2: p points for d = 1 (centre dropped) and
p + 1 points for d = 2.  The backward stencil is the forward one mirrored:
offsets negated, weights multiplied by (-1)^d.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from fractions import Fraction
from math import factorial
from typing import Any, cast

import numpy as np

__all__ = ["METHODS", "ORDERS", "Stencil", "stencil", "mixed_stencil"]

#: Methods that have a fixed real-valued stencil.
METHODS: tuple[str, ...] = ("forward", "backward", "central")

#: Accuracy orders available for each method.
ORDERS: dict[str, tuple[int, ...]] = {
    "forward": (1, 2, 3, 4),
    "backward": (1, 2, 3, 4),
    "central": (2, 4, 6, 8),
}

# Methods of the public API that are not stencils of this kind, and why.
_NOT_A_STENCIL = {
    "complex": "it evaluates f at x + i*h and takes the imaginary part",
    "richardson": "it extrapolates central differences over a sequence of steps",
}


# ---------------------------------------------------------------------------
# Validation (shared with _steps.py)
# ---------------------------------------------------------------------------


def _check_method(method: Any, allowed: tuple[str, ...] = METHODS) -> str:
    """Return `method` if it is one of `allowed`, else raise naming ``method``."""
    if not isinstance(method, str):
        raise TypeError(f"`method` must be a str; got {type(method).__name__}.")
    if method in allowed:
        return method
    names = ", ".join(repr(m) for m in allowed)
    if method in _NOT_A_STENCIL:
        raise ValueError(
            f"method={method!r} has no real-valued stencil ({_NOT_A_STENCIL[method]}); "
            f"`method` must be one of {names} here."
        )
    raise ValueError(f"`method` must be one of {names}; got {method!r}.")


def _check_int(value: Any, name: str) -> int:
    """Return `value` as a Python int; bools and non-integers raise ``TypeError``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be an int; got {value!r}.")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"`{name}` must be an int; got {value!r}.") from None


def _check_order(order: Any, method: str) -> int:
    """Return `order` if it is an accuracy order available for `method`."""
    order = _check_int(order, "order")
    allowed = ORDERS[method]
    if order not in allowed:
        names = ", ".join(str(p) for p in allowed)
        raise ValueError(f"`order` must be one of {names} for method={method!r}; got {order}.")
    return cast(int, order)


def _check_deriv(deriv: Any) -> int:
    """Return `deriv` if it is 1 or 2."""
    deriv = _check_int(deriv, "deriv")
    if deriv not in (1, 2):
        raise ValueError(f"`deriv` must be 1 or 2; got {deriv}.")
    return cast(int, deriv)


# ---------------------------------------------------------------------------
# Exact derivation
# ---------------------------------------------------------------------------


def _taylor_weights(offsets: tuple[int, ...], deriv: int) -> tuple[Fraction, ...]:
    """Exact weights w with sum_k w_k o_k^j / j! = delta_{j,deriv}, j < len(offsets).

    Gauss-Jordan elimination in Fractions on the (transposed) Vandermonde
    system; see the module docstring.

    Parameters
    ----------
    offsets : tuple of int
        Distinct grid offsets, in units of the step.
    deriv : int
        Derivative order, ``0 <= deriv < len(offsets)``.

    Returns
    -------
    tuple of Fraction
        One weight per offset, in the order of `offsets`.

    Examples
    --------
    >>> [str(w) for w in _taylor_weights((-1, 0, 1), 1)]
    ['-1/2', '0', '1/2']
    """
    n = len(offsets)
    # Augmented matrix: row j is  [o_0^j/j!, ..., o_{n-1}^j/j! | delta_{j,deriv}].
    rows = [
        [Fraction(o**j, factorial(j)) for o in offsets] + [Fraction(int(j == deriv))]
        for j in range(n)
    ]
    for col in range(n):
        pivot = next(r for r in range(col, n) if rows[r][col] != 0)  # exists: non-singular
        rows[col], rows[pivot] = rows[pivot], rows[col]
        p = rows[col][col]
        rows[col] = [v / p for v in rows[col]]
        for r in range(n):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    return tuple(row[n] for row in rows)


def _grid(method: str, order: int, deriv: int) -> tuple[int, ...]:
    """The grid offsets before zero weights are dropped (see module docstring)."""
    npoints = order + deriv
    if method == "forward":
        return tuple(range(npoints))
    if method == "backward":
        return tuple(range(-(npoints - 1), 1))
    m = order // 2  # central: -m .. m has accuracy 2m for deriv 1 and 2
    return tuple(range(-m, m + 1))


@dataclass(frozen=True)
class Stencil:
    """A finite-difference stencil: f^(deriv)(x) ~= sum_k w_k f(x + o_k h) / h**deriv.

    Attributes
    ----------
    method : str
        ``"forward"``, ``"backward"`` or ``"central"``.
    order : int
        Accuracy order p: the error is O(h**p).
    deriv : int
        The derivative approximated, 1 or 2.
    offsets : tuple of int
        Grid offsets o_k in units of h, ascending, without any point whose
        weight is exactly zero; ``len(offsets)`` is the number of
        evaluations of f.
    weights : tuple of float
        The weights w_k as float64 (each the correctly rounded `exact`).
    exact : tuple of Fraction
        The exact rational weights.

    Examples
    --------
    >>> s = stencil("central", 2)
    >>> s.offsets, s.weights, s.uses_center
    ((-1, 1), (-0.5, 0.5), False)
    """

    method: str
    order: int
    deriv: int
    offsets: tuple[int, ...]
    weights: tuple[float, ...]
    exact: tuple[Fraction, ...]

    @functools.cached_property
    def offsets_f(self) -> tuple[float, ...]:
        """The offsets as floats."""
        return tuple(float(o) for o in self.offsets)

    @property
    def uses_center(self) -> bool:
        """Whether the stencil evaluates f at x itself (offset 0)."""
        return 0 in self.offsets

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The offsets (int64) and weights (float64) as new NumPy arrays.

        Examples
        --------
        >>> o, w = stencil("forward", 1).arrays()
        >>> o.tolist(), w.tolist()
        ([0, 1], [-1.0, 1.0])
        """
        return (
            np.array(self.offsets, dtype=np.int64),
            np.array(self.weights, dtype=np.float64),
        )


@functools.cache
def _stencil(method: str, order: int, deriv: int) -> Stencil:
    """Cached derivation for validated, normalised arguments."""
    grid = _grid(method, order, deriv)
    exact_all = _taylor_weights(grid, deriv)
    kept = [(o, w) for o, w in zip(grid, exact_all, strict=True) if w != 0]
    offsets = tuple(o for o, _ in kept)
    exact = tuple(w for _, w in kept)
    return Stencil(method, order, deriv, offsets, tuple(float(w) for w in exact), exact)


def stencil(method: str, order: int, deriv: int = 1) -> Stencil:
    """The finite-difference stencil for a method, accuracy order and derivative.

    Parameters
    ----------
    method : {"forward", "backward", "central"}
        One-sided to the right, one-sided to the left, or symmetric.
    order : int
        Accuracy order: 1, 2, 3 or 4 for forward/backward; 2, 4, 6 or 8 for
        central.
    deriv : {1, 2}, default 1
        Which derivative the stencil approximates.

    Returns
    -------
    Stencil
        The cached stencil; the same object is returned for equal arguments.

    Raises
    ------
    TypeError
        If `method` is not a str or `order`/`deriv` is not an int (bools are
        refused).
    ValueError
        If `method` is not one of the three (``"complex"`` and
        ``"richardson"`` have no real-valued stencil), `order` is not
        available for `method`, or `deriv` is not 1 or 2.

    See Also
    --------
    mixed_stencil : the central stencil for a mixed partial derivative.

    Notes
    -----
    Forward uses the offsets 0 .. order+deriv-1, backward their mirror image
    (offsets negated, weights times (-1)**deriv), central the symmetric grid
    -order/2 .. order/2 with zero weights dropped (the centre, for a first
    derivative).  The weights solve the Taylor-matching system
    ``sum_k w_k o_k**j / j! = delta_{j,deriv}`` exactly; the truncation error
    is O(h**order).  Evaluation counts: order + deriv points one-sided,
    ``order`` points for a central first derivative, ``order + 1`` for a
    central second derivative.

    References
    ----------
    .. [1] B. Fornberg, "Generation of finite difference formulas on
       arbitrarily spaced grids", Math. Comp. 51 (1988), 699-706.

    Examples
    --------
    >>> s = stencil("central", 4)
    >>> s.offsets
    (-2, -1, 1, 2)
    >>> [str(w) for w in s.exact]
    ['1/12', '-2/3', '2/3', '-1/12']
    >>> stencil("central", 2, deriv=2).weights
    (1.0, -2.0, 1.0)
    >>> stencil("forward", 5)
    Traceback (most recent call last):
    ...
    ValueError: `order` must be one of 1, 2, 3, 4 for method='forward'; got 5.
    """
    method = _check_method(method)
    order = _check_order(order, method)
    deriv = _check_deriv(deriv)
    return _stencil(method, order, deriv)


# The central mixed partial d2f/dxi dxj (i != j) on the 7 points
#   (1,1), (1,0), (0,1), (0,0), (-1,0), (0,-1), (-1,-1)   [units (hi, hj)]
# with weights 1/2, -1/2, -1/2, 1, -1/2, -1/2, 1/2 over hi*hj.
_MIXED_2 = (
    ((1, 1), Fraction(1, 2)),
    ((1, 0), Fraction(-1, 2)),
    ((0, 1), Fraction(-1, 2)),
    ((0, 0), Fraction(1)),
    ((-1, 0), Fraction(-1, 2)),
    ((0, -1), Fraction(-1, 2)),
    ((-1, -1), Fraction(1, 2)),
)


def mixed_stencil(order: int = 2) -> list[tuple[tuple[int, int], Fraction]]:
    """The central stencil for a mixed partial derivative d2f/dxi dxj, i != j.

    Parameters
    ----------
    order : int, default 2
        Accuracy order; only 2 is available.

    Returns
    -------
    list of ((a, b), Fraction)
        Offset pairs and exact weights w such that
        ``d2f/dxi dxj ~= sum w * f(x + a*hi*ei + b*hj*ej) / (hi*hj)``.
        Every weight is a multiple of 1/2, so ``float(w)`` is exact.

    Raises
    ------
    TypeError
        If `order` is not an int.
    ValueError
        If `order` is not 2.

    See Also
    --------
    stencil : the one-dimensional stencils.

    Notes
    -----
    The formula is

    .. math::

        \\frac{\\partial^2 f}{\\partial x_i \\partial x_j} \\approx
        [f(x + h_i e_i + h_j e_j) - f(x + h_i e_i) - f(x + h_j e_j) + 2 f(x)
         - f(x - h_i e_i) - f(x - h_j e_j) + f(x - h_i e_i - h_j e_j)]
        / (2 h_i h_j).

    Derivation: write f(x + a hi ei + b hj ej) as its Taylor series in
    (a hi, b hj).  The weighted sum divided by hi hj reproduces f_ij when the
    moments ``sum w a^p b^q / (p! q!)`` are 1 for (p, q) = (1, 1) and 0 for
    every other p + q <= 2: the weights sum to 0, the a- and b-moments are
    1/2 - 1/2 + 1/2 - 1/2 = 0, the a^2 and b^2 moments are
    (1/2 - 1/2 - 1/2 + 1/2)/2 = 0, and the ab-moment is 1/2 + 1/2 = 1.  The
    points are symmetric under (a, b) -> (-a, -b) and so are the weights,
    so every odd moment (p + q = 3) vanishes too and the error is
    O(h**2): the formula is exact for every quadratic.

    Besides f(x), it uses f(x ± hi ei) and f(x ± hj ej), which the central
    second-derivative stencil (-1, 0, 1) evaluates anyway, and two new points
    ±(hi ei + hj ej).  A central order-2 Hessian therefore costs
    1 + 2n + 2 * n(n-1)/2 = n**2 + n + 1 evaluations.

    Examples
    --------
    >>> [(ab, str(w)) for ab, w in mixed_stencil()][:3]
    [((1, 1), '1/2'), ((1, 0), '-1/2'), ((0, 1), '-1/2')]
    >>> f = lambda x, y: 3 * x * y + x**2 - 5 * y**2 + 7 * x - 1
    >>> sum(w * f(1 + a * Fraction(1, 10), 2 + b * Fraction(1, 100))
    ...     for (a, b), w in mixed_stencil()) / (Fraction(1, 10) * Fraction(1, 100))
    Fraction(3, 1)
    """
    order = _check_int(order, "order")
    if order != 2:
        raise ValueError(f"`order` must be 2 for the mixed stencil; got {order}.")
    return list(_MIXED_2)
