"""Result objects of the finite-difference functions: DiffInfo, GradCheck, Taylor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DiffInfo", "GradCheck", "Taylor"]


@dataclass(frozen=True)
class DiffInfo:
    """What a finite-difference computation did (``full_output=True``).

    Attributes
    ----------
    nfev : int
        Number of evaluations of f (points at which f was evaluated; with
        ``vectorized=True`` the number of points, not of calls).
    step : ndarray
        The step used per coordinate, shape ``x.shape`` (for
        ``"richardson"``, the largest step of the window chosen).
    error : ndarray
        Estimated absolute error, shaped like the result; NaN where the
        method gives no estimate (every method but ``"richardson"``).
    method : str
        The method used.
    order : int
        The accuracy order of the result: the stencil's order, 2 for
        ``"complex"``, and 8 for ``"richardson"`` (four steps extrapolated).

    Examples
    --------
    >>> import numpy as np, vcalc
    >>> g, info = vcalc.gradient(lambda x: np.sum(x**2), [1.0, 2.0], full_output=True)
    >>> info.nfev, info.method, info.order
    (4, 'central', 2)
    """

    nfev: int
    step: np.ndarray
    error: np.ndarray
    method: str
    order: int


@dataclass(frozen=True)
class GradCheck:
    """The verdict of :func:`vcalc.check_grad`: an analytic gradient against a numerical one.

    Attributes
    ----------
    ok : bool
        Whether ``|analytic - numeric| <= atol + rtol * |numeric|`` everywhere.
    max_abs_error : float
        ``max |analytic - numeric|``.
    max_rel_error : float
        ``max |analytic - numeric| / max(|analytic|, |numeric|)`` (0 where
        both are 0).
    worst_index : tuple of int
        The index where the tolerance is most exceeded (or closest to it).
    numeric, analytic : ndarray
        The two gradients (or Jacobians).
    rtol, atol : float
        The tolerances used.

    Examples
    --------
    >>> import numpy as np, vcalc
    >>> f = lambda x: x[0] ** 2 + 3 * x[1]
    >>> print(vcalc.check_grad(f, lambda x: np.array([2 * x[0], 3.0]), [1.0, 2.0]))
    ... # doctest: +ELLIPSIS
    gradient check PASSED: max abs error ... at index (...)...
    """

    ok: bool
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...]
    numeric: np.ndarray = field(repr=False)
    analytic: np.ndarray = field(repr=False)
    rtol: float = 1e-6
    atol: float = 1e-8

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        verdict = "PASSED" if self.ok else "FAILED"
        i = self.worst_index
        num = float(self.numeric[i]) if self.numeric.size else float("nan")
        ana = float(self.analytic[i]) if self.analytic.size else float("nan")
        return (
            f"gradient check {verdict}: max abs error {self.max_abs_error:.3g}, "
            f"max rel error {self.max_rel_error:.3g}, worst at index {i} "
            f"(analytic {ana:.17g}, numeric {num:.17g}; "
            f"rtol={self.rtol:g}, atol={self.atol:g})"
        )


@dataclass(frozen=True)
class Taylor:
    """A first- or second-order Taylor model of f at x0.

    ``model(x0 + eps) = f0 + grad . eps (+ 1/2 eps^T hess eps)``; for a
    vector-valued f (first order only) ``grad`` is the Jacobian and the model
    is ``f0 + J eps``.

    Attributes
    ----------
    x0 : ndarray
        The expansion point.
    f0 : float or ndarray
        f(x0).
    grad : ndarray
        Gradient (scalar f) or Jacobian (vector f), numerator layout.
    hess : ndarray or None
        Hessian, shape ``x0.shape + x0.shape``; None for a first-order model.
    order : int
        1 or 2.

    Examples
    --------
    >>> import numpy as np, vcalc
    >>> t = vcalc.taylor(np.exp, 0.0)
    >>> bool(np.isclose(t(0.1), 1 + 0.1 + 0.005))
    True
    """

    x0: np.ndarray
    f0: Any
    grad: np.ndarray
    hess: np.ndarray | None
    order: int

    def __call__(self, x: Any) -> Any:
        """The model's value at a point of shape ``x0.shape``, or at a stack of them.

        Parameters
        ----------
        x : array_like, shape ``x0.shape`` or ``(k,) + x0.shape``

        Returns
        -------
        float or ndarray
            f's shape for one point; ``(k,) + f0.shape`` for a stack.
        """
        xa = np.asarray(x, dtype=np.float64)
        shape = self.x0.shape
        if xa.shape == shape:
            stack, single = xa[None], True
        elif xa.ndim == len(shape) + 1 and xa.shape[1:] == shape:
            stack, single = xa, False
        else:
            raise ValueError(
                f"`x` must have shape {shape} or (k,) + {shape}; got shape {xa.shape}."
            )
        n = self.x0.size
        eps = (stack - self.x0).reshape(stack.shape[0], n)
        f0 = np.asarray(self.f0, dtype=np.float64)
        J = np.asarray(self.grad).reshape(f0.size, n)
        val = f0.reshape(1, -1) + eps @ J.T
        if self.hess is not None:
            H = np.asarray(self.hess).reshape(n, n)
            val = val + 0.5 * np.einsum("ki,ij,kj->k", eps, H, eps)[:, None]
        val = val.reshape((stack.shape[0],) + f0.shape)
        if single:
            out = val[0]
            return out[()] if out.ndim == 0 else out
        return val
