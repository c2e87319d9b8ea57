"""Smooth test functions with closed-form gradients and Hessians.

Each :class:`Case` has ``f`` written on the last axis (``x[..., i]``) with NumPy
ufuncs only, so the same function is valid on one point ``(n,)``, on a stack
``(k, n)`` (the vectorised evaluator) and on complex input (the complex step).
``grad`` and ``hess`` are the closed forms at one point (``grad`` is
complex-safe too, so ``hessian(f, x, grad=case.grad, method="complex")`` and
``jacobian(case.grad, x, method="complex")`` can be checked); they are the oracles
of ``tests/test_finite_differences.py`` and are themselves checked against
SciPy there (``test_catalogue_closed_forms``), so a typo here cannot hide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import rosen, rosen_der, rosen_hess

__all__ = ["Case", "CATALOGUE", "BY_NAME"]


@dataclass(frozen=True)
class Case:
    """A scalar function of n variables with its exact derivatives.

    Attributes
    ----------
    name : str
    f : callable
        ``(..., n) -> (...)``, complex-safe.
    grad, hess : callable
        ``(n,) -> (n,)`` (complex-safe) and ``(n,) -> (n, n)``: the closed forms.
    x0 : tuple of float
        A well-scaled point where the tests differentiate.
    """

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray], np.ndarray]
    hess: Callable[[np.ndarray], np.ndarray]
    x0: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.x0)

    def point(self) -> np.ndarray:
        return np.array(self.x0, dtype=np.float64)

    def __repr__(self) -> str:  # readable pytest ids
        return self.name


# ---------------------------------------------------------------------------
# Rosenbrock: SciPy's rosen_der / rosen_hess are the oracle
# ---------------------------------------------------------------------------


def _rosen(x):
    a, b = x[..., :-1], x[..., 1:]
    return np.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2, axis=-1)


# ---------------------------------------------------------------------------
# Sums of squares of residuals: f = sum r_k^2
#   grad = 2 sum r_k grad r_k,   hess = 2 sum (grad r_k grad r_k^T + r_k hess r_k)
# ---------------------------------------------------------------------------

_BEALE_C = (1.5, 2.25, 2.625)


def _beale(x):
    u, v = x[..., 0], x[..., 1]
    return sum((c - u + u * v**k) ** 2 for k, c in enumerate(_BEALE_C, start=1))


def _beale_parts(x):
    u, v = x[0], x[1]
    for k, c in enumerate(_BEALE_C, start=1):
        r = c - u + u * v**k
        g = np.array([v**k - 1.0, k * u * v ** (k - 1)])
        hv = k * v ** (k - 1)
        h = np.array([[0.0, hv], [hv, k * (k - 1) * u * v ** (k - 2) if k >= 2 else 0.0]])
        yield r, g, h


def _beale_grad(x):
    return sum(2.0 * r * g for r, g, _ in _beale_parts(x))


def _beale_hess(x):
    return sum(2.0 * (np.outer(g, g) + r * h) for r, g, h in _beale_parts(x))


def _booth(x):
    u, v = x[..., 0], x[..., 1]
    return (u + 2.0 * v - 7.0) ** 2 + (2.0 * u + v - 5.0) ** 2


def _booth_grad(x):
    u, v = x
    r1, r2 = u + 2 * v - 7, 2 * u + v - 5
    return np.array([2 * r1 + 4 * r2, 4 * r1 + 2 * r2])


def _booth_hess(x):
    return np.array([[10.0, 8.0], [8.0, 10.0]])


# ---------------------------------------------------------------------------
# Quadratic x^T A x + b^T x (A not symmetric): grad (A + A^T) x + b, hess A + A^T
# ---------------------------------------------------------------------------

_QA = np.array(
    [
        [2.0, 0.5, -1.0, 0.25],
        [1.5, 3.0, 0.0, -0.5],
        [0.0, -2.0, 1.0, 0.75],
        [0.5, 1.0, -0.25, 4.0],
    ]
)
_QB = np.array([1.0, -2.0, 0.5, 3.0])


def _quad(x):
    # Explicit sums in a fixed order, not einsum or @: their summation order
    # differs between one point and a stack, and the vectorised evaluator must
    # see bit-identical values.
    acc = 0.0
    for i in range(_QA.shape[0]):
        for j in range(_QA.shape[1]):
            acc = acc + _QA[i, j] * x[..., i] * x[..., j]
        acc = acc + _QB[i] * x[..., i]
    return acc


def _quad_grad(x):
    return (_QA + _QA.T) @ x + _QB


def _quad_hess(x):
    return _QA + _QA.T


# ---------------------------------------------------------------------------
# Separable sum of exponentials: sum exp(c_i x_i)
# ---------------------------------------------------------------------------

_EC = np.array([0.5, -1.0, 1.5])


def _sumexp(x):
    return np.sum(np.exp(_EC * x), axis=-1)


def _sumexp_grad(x):
    return _EC * np.exp(_EC * x)


def _sumexp_hess(x):
    return np.diag(_EC**2 * np.exp(_EC * x))


# ---------------------------------------------------------------------------
# log-sum-exp: grad softmax s, hess diag(s) - s s^T (seed example 8)
# ---------------------------------------------------------------------------


def _lse(x):
    # No max-shift: max() is not complex-safe, and the point is well scaled.
    return np.log(np.sum(np.exp(x), axis=-1))


def _softmax(x):
    e = np.exp(x)  # no max-shift, to stay complex-safe (the point is well scaled)
    return e / e.sum()


def _lse_grad(x):
    return _softmax(x)


def _lse_hess(x):
    s = _softmax(x)
    return np.diag(s) - np.outer(s, s)


# ---------------------------------------------------------------------------
# Product of one-variable factors: sin(x0) cos(x1) sin(2 x2)
#   d_i = g_i' prod_{j != i} g_j;  H_ii = g_i'' prod_{j != i} g_j;
#   H_ij = g_i' g_j' prod_{k != i, j} g_k
# ---------------------------------------------------------------------------


def _sincos(x):
    return np.sin(x[..., 0]) * np.cos(x[..., 1]) * np.sin(2.0 * x[..., 2])


def _sincos_parts(x):
    a, b, c = x
    g = np.array([np.sin(a), np.cos(b), np.sin(2 * c)])
    d1 = np.array([np.cos(a), -np.sin(b), 2 * np.cos(2 * c)])
    d2 = np.array([-np.sin(a), -np.cos(b), -4 * np.sin(2 * c)])
    return g, d1, d2


def _sincos_grad(x):
    g, d1, _ = _sincos_parts(x)
    return np.array([d1[i] * np.prod(np.delete(g, i)) for i in range(3)])


def _sincos_hess(x):
    g, d1, d2 = _sincos_parts(x)
    H = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            if i == j:
                H[i, i] = d2[i] * np.prod(np.delete(g, i))
            else:
                H[i, j] = d1[i] * d1[j] * np.prod(np.delete(g, [i, j]))
    return H


# ---------------------------------------------------------------------------
# Rational p / q, p = 1 + x0 - 2 x1 + x0 x1, q = 1 + x0^2 + 2 x1^2 (> 0)
#   grad = grad p / q - p grad q / q^2
#   hess = hess p / q - (gp gq^T + gq gp^T) / q^2 - p hess q / q^2 + 2 p gq gq^T / q^3
# ---------------------------------------------------------------------------


def _rat(x):
    u, v = x[..., 0], x[..., 1]
    return (1.0 + u - 2.0 * v + u * v) / (1.0 + u * u + 2.0 * v * v)


def _rat_parts(x):
    u, v = x
    p = 1 + u - 2 * v + u * v
    q = 1 + u * u + 2 * v * v
    gp = np.array([1 + v, -2 + u])
    gq = np.array([2 * u, 4 * v])
    hp = np.array([[0.0, 1.0], [1.0, 0.0]])
    hq = np.diag([2.0, 4.0])
    return p, q, gp, gq, hp, hq


def _rat_grad(x):
    p, q, gp, gq, _, _ = _rat_parts(x)
    return gp / q - p * gq / q**2


def _rat_hess(x):
    p, q, gp, gq, hp, hq = _rat_parts(x)
    return (
        hp / q
        - (np.outer(gp, gq) + np.outer(gq, gp)) / q**2
        - p * hq / q**2
        + 2 * p * np.outer(gq, gq) / q**3
    )


# ---------------------------------------------------------------------------
# Styblinski-Tang: 1/2 sum (x^4 - 16 x^2 + 5 x)
# ---------------------------------------------------------------------------


def _st(x):
    return 0.5 * np.sum(x**4 - 16.0 * x**2 + 5.0 * x, axis=-1)


def _st_grad(x):
    return 0.5 * (4 * x**3 - 32 * x + 5)


def _st_hess(x):
    return np.diag(0.5 * (12 * x**2 - 32))


# ---------------------------------------------------------------------------
# Seed example 2: x1^2 + exp(x1 x2) + 2 log x2
# ---------------------------------------------------------------------------


def _seed2(x):
    u, v = x[..., 0], x[..., 1]
    return u * u + np.exp(u * v) + 2.0 * np.log(v)


def _seed2_grad(x):
    u, v = x
    e = np.exp(u * v)
    return np.array([2 * u + v * e, u * e + 2 / v])


def _seed2_hess(x):
    u, v = x
    e = np.exp(u * v)
    return np.array([[2 + v * v * e, e + u * v * e], [e + u * v * e, u * u * e - 2 / v**2]])


CATALOGUE: list[Case] = [
    Case("rosen2", _rosen, rosen_der, rosen_hess, (-1.2, 1.0)),
    Case("rosen5", _rosen, rosen_der, rosen_hess, (0.3, -0.4, 0.8, 1.1, -0.6)),
    Case("beale", _beale, _beale_grad, _beale_hess, (1.2, 0.7)),
    Case("booth", _booth, _booth_grad, _booth_hess, (0.4, -1.3)),
    Case("quadratic", _quad, _quad_grad, _quad_hess, (0.5, -1.0, 0.25, 2.0)),
    Case("sumexp", _sumexp, _sumexp_grad, _sumexp_hess, (0.2, -0.3, 0.4)),
    Case("logsumexp", _lse, _lse_grad, _lse_hess, (0.1, -0.5, 0.9, 0.3)),
    Case("sincos", _sincos, _sincos_grad, _sincos_hess, (0.7, -0.4, 0.3)),
    Case("rational", _rat, _rat_grad, _rat_hess, (0.6, -0.8)),
    Case("styblinski_tang", _st, _st_grad, _st_hess, (-2.9, 0.5, 2.7)),
    Case("seed2", _seed2, _seed2_grad, _seed2_hess, (0.5, 1.5)),
]

BY_NAME = {c.name: c for c in CATALOGUE}

# Rosenbrock's value is checked against SciPy's rosen too (the f above is ours).
ROSEN = rosen
