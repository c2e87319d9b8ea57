"""Finite differences: gradient, jacobian, hessian, derivative and friends.

Oracles are closed forms (the seed examples, the catalogue in ``fd_catalogue``)
and SciPy; no expected number here comes from vcalc itself.  Sections:

1. seed examples 1, 2, 3, 5, 6, 10, 11;
2. accuracy over the catalogue, per method and order (tolerance tables);
3. observed convergence order of every stencil;
4. exact evaluation counts;
5. bounds;
6. faults raised by f;
7. vectorised and loop evaluators agree bit for bit;
8. backends agree;
9. the complex step;
10. Richardson extrapolation;
11. validation (one test per message);
12. the caller's x, what f sees, shapes;
13. check_grad and taylor;
14. hvp, jvp and directional_derivative;
15. regressions (empty x, complex-step detection).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from fd_catalogue import BY_NAME, CATALOGUE, ROSEN, Case
from hypothesis import given
from hypothesis import strategies as st
from numpy.exceptions import ComplexWarning
from scipy import differentiate, optimize

import vcalc

# ---------------------------------------------------------------------------
# Methods, orders and tolerance tables
# ---------------------------------------------------------------------------

STENCIL_MO = (
    [("central", p) for p in (2, 4, 6, 8)]
    + [("forward", p) for p in (1, 2, 3, 4)]
    + [("backward", p) for p in (1, 2, 3, 4)]
)
ALL_MO = STENCIL_MO + [("complex", 2), ("richardson", 2)]
HESS_MO = STENCIL_MO + [("richardson", 2)]  # "complex" needs grad=


def mo_id(mo):
    return f"{mo[0]}{mo[1]}"


def what_mo(whats, mos=ALL_MO):
    """(what, (method, order)) pairs; a Hessian from f alone has no complex step."""
    return [
        pytest.param(w, mo, id=f"{w}-{mo_id(mo)}")
        for w in whats
        for mo in mos
        if not (w == "hessian" and mo[0] == "complex")
    ]


# Worst relative error max|num - exact| / max(1, max|exact|) allowed over the
# catalogue for first derivatives (gradient, jacobian, hessian with grad=).
# Measured worst values (both backends, all catalogue functions) in brackets;
# the targets: central 2 <= 1e-8, central 4+ <= 1e-10, complex <= 1e-14,
# richardson <= 1e-12.
TOL_FIRST = {
    ("central", 2): 2e-9,  # [4.3e-10]
    ("central", 4): 2e-11,  # [1.4e-12]
    ("central", 6): 2e-11,  # [3.7e-12]
    ("central", 8): 2e-11,  # [6.2e-12]
    ("forward", 1): 5e-7,  # [1.1e-7]
    ("forward", 2): 3e-9,  # [6.8e-10]
    ("forward", 3): 2e-10,  # [3.9e-11]
    ("forward", 4): 5e-11,  # [8.9e-12]
    ("backward", 1): 5e-7,  # [1.4e-7]
    ("backward", 2): 3e-9,  # [6.5e-10]
    ("backward", 3): 2e-10,  # [3.6e-11]
    ("backward", 4): 5e-11,  # [7.4e-12]
    ("complex", 2): 4e-15,  # [1.3e-15]
    ("richardson", 2): 1e-12,  # [3.8e-13]
}

# The same for Hessians from f alone.  Second differences lose eps|f|/h**2, so
# these are looser; booth (|f| ~ 115 against |H| ~ 10) is the worst case.
TOL_HESS = {
    ("central", 2): 5e-7,  # [1.5e-7]
    ("central", 4): 1e-9,  # [1.8e-10]
    ("central", 6): 5e-10,  # [9.8e-11]
    ("central", 8): 5e-10,  # [1.4e-10]
    ("forward", 1): 5e-4,  # [1.2e-4]
    ("forward", 2): 2e-6,  # [5.1e-7]
    ("forward", 3): 2e-7,  # [5.3e-8]
    ("forward", 4): 5e-8,  # [2.4e-9]
    ("backward", 1): 5e-4,  # [1.2e-4]
    ("backward", 2): 2e-6,  # [3.2e-7]
    ("backward", 3): 2e-7,  # [4.6e-8]
    ("backward", 4): 5e-8,  # [1.0e-8]
    ("richardson", 2): 1e-8,  # [1.6e-9]
}


def rel_err(num, exact) -> float:
    """max|num - exact| / max(1, max|exact|)."""
    num, exact = np.asarray(num, dtype=np.float64), np.asarray(exact, dtype=np.float64)
    assert num.shape == exact.shape, (num.shape, exact.shape)
    return float(np.max(np.abs(num - exact)) / max(1.0, float(np.max(np.abs(exact)))))


class Counter:
    """Wraps f; counts calls and points (rows of a stack when vectorised)."""

    def __init__(self, f, vectorized=False):
        self.f = f
        self.vectorized = vectorized
        self.calls = 0
        self.points = 0

    def __call__(self, x, *args):
        self.calls += 1
        self.points += np.shape(x)[0] if self.vectorized else 1
        return self.f(x, *args)


class Boom(Exception):
    """Raised by the faulty f of the fault tests."""


def vec_field(x):
    """F: R^3 -> R^2, valid on one point and on a stack (same values bit for bit)."""
    a, b, c = x[..., 0], x[..., 1], x[..., 2]
    return np.stack([a * b + np.sin(c), np.exp(a) * c - b * b], axis=-1)


def vec_field_jac(x):
    a, b, c = x
    return np.array([[b, a, np.cos(c)], [np.exp(a) * c, -2 * b, np.exp(a)]])


# ---------------------------------------------------------------------------
# 0. The catalogue itself is right (SciPy as the oracle of the closed forms)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CATALOGUE, ids=repr)
def test_catalogue_closed_forms(case: Case):
    x = case.point()

    def fv(X):  # scipy.differentiate wants the coordinate on the first axis
        return case.f(np.moveaxis(X, 0, -1))

    g = differentiate.jacobian(fv, x).df
    H = differentiate.hessian(fv, x).ddf
    assert rel_err(case.grad(x), g) < 1e-9
    assert rel_err(case.hess(x), H) < 1e-8
    assert np.allclose(case.hess(x), case.hess(x).T, rtol=0, atol=1e-12)
    if case.name.startswith("rosen"):
        assert case.f(x) == pytest.approx(ROSEN(x), rel=1e-15)


# ---------------------------------------------------------------------------
# 1. Seed examples
# ---------------------------------------------------------------------------

SEED_MO = [("central", 2), ("central", 4), ("forward", 1), ("backward", 2)]
SEED_MO += [("complex", 2), ("richardson", 2)]


@pytest.mark.parametrize("mo", SEED_MO, ids=mo_id)
@pytest.mark.parametrize("point", [(1.0, 2.0), (-0.5, 0.3), (2.5, -1.5)])
def test_seed1_gradient_by_partials(backend, mo, point):
    def f(v):
        return 5 * v[0] ** 2 + 3 * v[0] * v[1] + 3 * v[1] ** 3

    x, y = point
    g = vcalc.gradient(f, list(point), method=mo[0], order=mo[1])
    assert g.shape == (2,)
    assert rel_err(g, [10 * x + 3 * y, 3 * x + 9 * y**2]) <= TOL_FIRST[mo]
    if mo[0] != "complex":
        H = vcalc.hessian(f, list(point), method=mo[0], order=mo[1])
        assert rel_err(H, [[10, 3], [3, 18 * y]]) <= TOL_HESS[mo]


@pytest.mark.parametrize("mo", SEED_MO, ids=mo_id)
@pytest.mark.parametrize("point", [(0.5, 1.5), (-1.0, 1.1), (0.2, 3.0)])
def test_seed2_hessian_is_jacobian_of_gradient(backend, mo, point):
    case = BY_NAME["seed2"]
    x = np.array(point)
    e = np.exp(x[0] * x[1])
    grad_exact = [2 * x[0] + x[1] * e, x[0] * e + 2 / x[1]]
    hess_exact = [
        [2 + x[1] ** 2 * e, e + x[0] * x[1] * e],
        [e + x[0] * x[1] * e, x[0] ** 2 * e - 2 / x[1] ** 2],
    ]
    m, p = mo
    g = vcalc.gradient(case.f, x, method=m, order=p)
    assert rel_err(g, grad_exact) <= TOL_FIRST[mo]
    J = vcalc.jacobian(case.grad, x, method=m, order=p)
    assert rel_err(J, hess_exact) <= TOL_FIRST[mo]
    if m != "complex":
        H = vcalc.hessian(case.f, x, method=m, order=p)
        assert rel_err(H, hess_exact) <= TOL_HESS[mo]
        assert rel_err(J, H) <= TOL_HESS[mo] + TOL_FIRST[mo]
        np.testing.assert_array_equal(H, H.T)


@pytest.mark.parametrize(
    ("method", "rtol"), [("central", 1e-8), ("complex", 1e-14), ("richardson", 1e-11)]
)
@pytest.mark.parametrize("t", [0.7, 1.3, -0.4])
def test_seed3_chain_rule(backend, method, rtol, t):
    def f(x):
        return np.exp(x[0] * x[1] ** 2)

    def g(s):
        return np.array([s * np.cos(s), s * np.sin(s)])

    x1, x2 = g(t)
    exact = np.exp(x1 * x2**2) * (
        x2**2 * (np.cos(t) - t * np.sin(t)) + 2 * x1 * x2 * (np.sin(t) + t * np.cos(t))
    )
    dh = vcalc.derivative(lambda s: f(g(s)), t, method=method)
    Jf = vcalc.jacobian(f, g(t), method=method)
    Jg = vcalc.jacobian(g, t, method=method)
    assert np.shape(dh) == () and Jf.shape == (2,) and Jg.shape == (2,)
    assert dh == pytest.approx(exact, rel=rtol)
    assert Jf @ Jg == pytest.approx(exact, rel=rtol)
    assert dh == pytest.approx(Jf @ Jg, rel=2 * rtol)


FIRST_MO_SHAPES = [("central", 2), ("central", 4), ("forward", 1), ("backward", 2)]
FIRST_MO_SHAPES += [("complex", 2), ("richardson", 2)]


@pytest.mark.parametrize("mo", FIRST_MO_SHAPES, ids=mo_id)
def test_seed5_linear_map(backend, mo, rng):
    M, N = 3, 4
    A = rng.standard_normal((M, N))
    x = rng.standard_normal(N)
    m, p = mo
    JA = vcalc.jacobian(lambda v: A @ v, x, method=m, order=p)
    assert JA.shape == (M, N)
    assert rel_err(JA, A) <= 10 * TOL_FIRST[mo]
    T = vcalc.jacobian(lambda B: B @ x, A, method=m, order=p)
    assert T.shape == (M, M, N)
    exact = np.zeros((M, M, N))
    for i in range(M):
        for k in range(M):
            for q in range(N):
                exact[i, k, q] = x[q] if i == k else 0.0  # df_i/dA_kq
    assert rel_err(T, exact) <= 10 * TOL_FIRST[mo]


@pytest.mark.parametrize("mo", FIRST_MO_SHAPES, ids=mo_id)
def test_seed6_matrix_by_matrix(backend, mo, rng):
    M, N = 3, 2
    R = rng.standard_normal((M, N))
    m, p = mo
    T = vcalc.jacobian(lambda S: S.T @ S, R, method=m, order=p)
    assert T.shape == (N, N, M, N)
    exact = np.zeros((N, N, M, N))
    for pp in range(N):
        for q in range(N):
            for i in range(M):
                for j in range(N):
                    if j == pp == q:
                        exact[pp, q, i, j] = 2 * R[i, q]
                    elif j == pp != q:
                        exact[pp, q, i, j] = R[i, q]
                    elif j == q != pp:
                        exact[pp, q, i, j] = R[i, pp]
    assert rel_err(T, exact) <= 10 * TOL_FIRST[mo]


def _slope(s, e):
    return float(np.polyfit(np.log(s), np.log(e), 1)[0])


def test_seed10_taylor_errors_shrink_like_powers(backend):
    def f(x):
        return np.exp(x[0]) * np.sin(x[1]) + x[0] * x[1] ** 2

    def g(x):
        return np.array([x[0] * x[1], np.sin(x[0]) + x[1] ** 3])

    x0 = np.array([0.2, 0.9])
    d = np.array([0.6, -0.8])
    s = np.logspace(-1, -3, 7)
    t1, t2 = vcalc.taylor(f, x0, order=1), vcalc.taylor(f, x0, order=2)
    tg = vcalc.taylor(g, x0, order=1)
    e1 = [abs(t1(x0 + si * d) - f(x0 + si * d)) for si in s]
    e2 = [abs(t2(x0 + si * d) - f(x0 + si * d)) for si in s]
    eg = [np.linalg.norm(tg(x0 + si * d) - g(x0 + si * d)) for si in s]
    assert _slope(s, e1) == pytest.approx(2.0, abs=0.15)
    assert _slope(s, e2) == pytest.approx(3.0, abs=0.15)
    assert _slope(s, eg) == pytest.approx(2.0, abs=0.15)
    assert all(b < a for a, b in zip(e1, e2, strict=True))


def test_seed10_directional_derivative_sign_rule(backend):
    def f(x):
        return np.exp(x[0]) * np.sin(x[1]) + x[0] * x[1] ** 2

    x = np.array([0.2, 0.9])
    g = vcalc.gradient(f, x)
    exact = np.array([np.exp(0.2) * np.sin(0.9) + 0.81, np.exp(0.2) * np.cos(0.9) + 2 * 0.2 * 0.9])
    assert rel_err(g, exact) <= TOL_FIRST["central", 2]
    t = 1e-4
    up, down, flat = g / np.linalg.norm(g), -g / np.linalg.norm(g), np.array([-g[1], g[0]])
    flat /= np.linalg.norm(flat)
    assert vcalc.directional_derivative(f, x, up) > 0
    assert f(x + t * up) > f(x)
    assert vcalc.directional_derivative(f, x, down) < 0
    assert f(x + t * down) < f(x)
    dd = vcalc.directional_derivative(f, x, flat)
    assert abs(dd) <= 1e-9 * np.linalg.norm(exact)
    # unchanged to first order: |f(x + t d) - f(x)| = O(t**2), not O(t)
    assert abs(f(x + t * flat) - f(x)) <= 10 * t**2
    assert vcalc.directional_derivative(f, x, up) == pytest.approx(np.linalg.norm(exact))


def _himmelblau(x):
    return (x[..., 0] ** 2 + x[..., 1] - 11) ** 2 + (x[..., 0] + x[..., 1] ** 2 - 7) ** 2


def _himmelblau_grad(x):
    a, b = x
    r1, r2 = a * a + b - 11, a + b * b - 7
    return np.array([4 * a * r1 + 2 * r2, 2 * r1 + 4 * b * r2])


def _himmelblau_hess(x):
    a, b = x
    return np.array(
        [[12 * a * a + 4 * b - 42, 4 * a + 4 * b], [4 * a + 4 * b, 4 * a + 12 * b * b - 26]]
    )


@pytest.mark.parametrize("mo", HESS_MO, ids=mo_id)
def test_seed11_curvature_at_min_and_max(backend, mo):
    # Himmelblau: a minimum at (3, 2), a local maximum near (-0.27, -0.92)
    # (located by SciPy on the closed-form gradient).
    xmax = optimize.root(_himmelblau_grad, [-0.27, -0.92], jac=_himmelblau_hess, tol=1e-14).x
    assert np.allclose(_himmelblau_grad(xmax), 0, atol=1e-10)
    m, p = mo
    for x, sign in ((np.array([3.0, 2.0]), 1.0), (xmax, -1.0)):
        H = vcalc.hessian(_himmelblau, x, method=m, order=p)
        ev = np.linalg.eigvalsh(H)
        assert np.all(sign * ev > 0), (x, ev)
        assert rel_err(ev, np.linalg.eigvalsh(_himmelblau_hess(x))) <= TOL_HESS[mo]
        g = vcalc.gradient(_himmelblau, x, method=m, order=p)
        assert np.max(np.abs(g)) <= 1e-5  # a critical point


def test_seed11_saddle_is_indefinite(backend):
    xs = optimize.root(_himmelblau_grad, [-3.07, -0.08], jac=_himmelblau_hess, tol=1e-14).x
    ev = np.linalg.eigvalsh(vcalc.hessian(_himmelblau, xs))
    assert ev[0] < 0 < ev[1]


# ---------------------------------------------------------------------------
# 2. Accuracy over the catalogue
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mo", ALL_MO, ids=mo_id)
@pytest.mark.parametrize("case", CATALOGUE, ids=repr)
def test_gradient_accuracy(backend, case, mo):
    x = case.point()
    g = vcalc.gradient(case.f, x, method=mo[0], order=mo[1])
    assert g.shape == x.shape
    assert rel_err(g, case.grad(x)) <= TOL_FIRST[mo]


@pytest.mark.parametrize("mo", ALL_MO, ids=mo_id)
@pytest.mark.parametrize("case", CATALOGUE, ids=repr)
def test_jacobian_accuracy(backend, case, mo):
    # the Jacobian of the closed-form gradient is the closed-form Hessian
    x = case.point()
    J = vcalc.jacobian(case.grad, x, method=mo[0], order=mo[1])
    assert J.shape == (case.n, case.n)
    assert rel_err(J, case.hess(x)) <= TOL_FIRST[mo]


@pytest.mark.parametrize("mo", HESS_MO, ids=mo_id)
@pytest.mark.parametrize("case", CATALOGUE, ids=repr)
def test_hessian_accuracy(backend, case, mo):
    x = case.point()
    H = vcalc.hessian(case.f, x, method=mo[0], order=mo[1])
    assert H.shape == (case.n, case.n)
    np.testing.assert_array_equal(H, H.T)
    assert rel_err(H, case.hess(x)) <= TOL_HESS[mo]


@pytest.mark.parametrize("mo", ALL_MO, ids=mo_id)
@pytest.mark.parametrize("case", CATALOGUE, ids=repr)
def test_hessian_with_grad_accuracy(backend, case, mo):
    x = case.point()
    H = vcalc.hessian(case.f, x, method=mo[0], order=mo[1], grad=case.grad)
    np.testing.assert_array_equal(H, H.T)  # symmetrised
    assert rel_err(H, case.hess(x)) <= TOL_FIRST[mo]


@pytest.mark.parametrize("case", CATALOGUE, ids=repr)
def test_defaults_are_central_order_2(backend, case):
    x = case.point()
    g, info = vcalc.gradient(case.f, x, full_output=True)
    assert (info.method, info.order) == ("central", 2)
    assert rel_err(g, case.grad(x)) <= TOL_FIRST["central", 2]
    H, info = vcalc.hessian(case.f, x, full_output=True)
    assert (info.method, info.order) == ("central", 2)
    assert rel_err(H, case.hess(x)) <= TOL_HESS["central", 2]


# ---------------------------------------------------------------------------
# 3. Observed convergence order of every stencil
# ---------------------------------------------------------------------------

# (name, f, f', f'', point): every derivative is non-zero at the point.
CONV_FUNCS = [
    ("exp", np.exp, math.exp, math.exp, 0.3),
    ("sin", np.sin, math.cos, lambda t: -math.sin(t), 0.7),
]
# Steps 2**-k, k = K0 .. K0 + 2: there truncation dominates rounding by orders
# of magnitude and the leading error term dominates the next ones.
K0 = {1: 6, 2: 5, 3: 4, 4: 4, 6: 2, 8: 1}


@pytest.mark.parametrize("deriv", [1, 2])
@pytest.mark.parametrize("mo", STENCIL_MO, ids=mo_id)
@pytest.mark.parametrize("func", CONV_FUNCS, ids=lambda c: c[0])
def test_observed_convergence_order(backend, func, mo, deriv):
    _, f, d1, d2, x = func
    exact = (d1 if deriv == 1 else d2)(x)
    m, p = mo
    hs = [2.0 ** -(K0[p] + i) for i in range(3)]
    errs = [abs(vcalc.derivative(f, x, n=deriv, method=m, order=p, step=h) - exact) for h in hs]
    slopes = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    for s in slopes:
        assert s == pytest.approx(p, abs=0.3), (errs, slopes)


@pytest.mark.parametrize("func", CONV_FUNCS, ids=lambda c: c[0])
def test_complex_step_is_second_order(backend, func):
    _, f, d1, _, x = func
    hs = [2.0**-3, 2.0**-4, 2.0**-5]
    errs = [abs(vcalc.derivative(f, x, method="complex", step=h) - d1(x)) for h in hs]
    for i in range(2):
        assert math.log2(errs[i] / errs[i + 1]) == pytest.approx(2.0, abs=0.1)


def _textbook_weights(method, order, deriv):
    """Offsets and weights of the stencil, derived here independently of vcalc.

    The grid is 0..order+deriv-1 (forward), its mirror (backward) or
    -order/2..order/2 (central); the weights solve the Taylor-matching
    Vandermonde system sum_k w_k o_k**j / j! = delta_{j, deriv}.
    """
    npts = order + deriv
    if method == "forward":
        offs = np.arange(npts)
    elif method == "backward":
        offs = -np.arange(npts)[::-1]
    else:
        offs = np.arange(-(order // 2), order // 2 + 1)
    V = np.array([[o**j / math.factorial(j) for o in offs] for j in range(offs.size)], float)
    rhs = np.zeros(offs.size)
    rhs[deriv] = 1.0
    return offs, np.linalg.solve(V, rhs)


@pytest.mark.parametrize("deriv", [1, 2])
@pytest.mark.parametrize("mo", STENCIL_MO, ids=mo_id)
def test_explicit_step_is_the_grid_spacing(backend, mo, deriv):
    # With an explicit step h the result is the stencil's weighted sum of f at
    # x + o*h over h**deriv: checked against the textbook weights.
    m, p = mo
    x = np.array([0.25, -1.125])  # dyadic: x + o*h is exact
    h = 2.0**-5
    offs, w = _textbook_weights(m, p, deriv)
    expected = [float(np.dot(w, np.exp(xi + offs * h))) / h**deriv for xi in x]
    if deriv == 1:
        g, info = vcalc.gradient(
            lambda v: np.sum(np.exp(v)), x, method=m, order=p, step=h, full_output=True
        )
        np.testing.assert_array_equal(info.step, [h, h])
        np.testing.assert_allclose(g, expected, rtol=1e-12)
        per_coord = vcalc.gradient(lambda v: np.sum(np.exp(v)), x, method=m, order=p,
                                   step=[h, h / 2])  # fmt: skip
        assert per_coord[0] == g[0] and per_coord[1] != g[1]
    else:
        H = vcalc.hessian(lambda v: np.sum(np.exp(v)), x, method=m, order=p, step=h)
        np.testing.assert_allclose(np.diag(H), expected, rtol=1e-10)
    d = vcalc.derivative(np.exp, x, n=deriv, method=m, order=p, step=h)
    # rounding: eps * sum|w| * |f| / h**deriv, ~1e-12 relative for deriv = 2
    np.testing.assert_allclose(d, expected, rtol=1e-12 if deriv == 1 else 1e-10)


# ---------------------------------------------------------------------------
# 4. Evaluation counts
# ---------------------------------------------------------------------------


def first_nfev(method: str, order: int, n: int) -> int:
    return {
        "forward": order * n + 1,
        "backward": order * n + 1,
        "central": order * n,
        "complex": n,
        "richardson": 8 * n,
    }[method]


def hessian_nfev(method: str, order: int, n: int) -> int:
    if method == "central" and order == 2:
        return n * n + n + 1
    # second-derivative stencils on the diagonal (sharing the axis points of
    # the first-derivative ones), tensor products off it, f(x) once
    o1 = _used_offsets(method, order, 1) - {0}
    o2 = _used_offsets(method, order, 2) - {0}
    return 1 + n * len(o1 | o2) + n * (n - 1) // 2 * len(o1) ** 2


def _used_offsets(method: str, order: int, deriv: int) -> set[int]:
    """Offsets whose textbook weight is not zero (the centre of a central first derivative is)."""
    offs, w = _textbook_weights(method, order, deriv)
    return {int(o) for o, wk in zip(offs, w, strict=True) if abs(wk) > 1e-9}


@pytest.mark.parametrize("vectorized", [False, True], ids=["loop", "vec"])
@pytest.mark.parametrize(
    ("what", "mo"), what_mo(["gradient", "jacobian", "hessian", "hessian_grad"], ALL_MO)
)
def test_nfev_exact(backend, what, mo, vectorized):
    m, p = mo
    case = BY_NAME["sumexp"]  # n = 3, every function elementwise: stack-safe
    x = case.point()
    n = x.size
    if what == "gradient":
        w = Counter(case.f, vectorized)
        _, info = vcalc.gradient(w, x, method=m, order=p, vectorized=vectorized, full_output=True)
        expected = first_nfev(m, p, n)
    elif what == "jacobian":
        w = Counter(vec_field, vectorized)
        _, info = vcalc.jacobian(w, x, method=m, order=p, vectorized=vectorized, full_output=True)
        expected = first_nfev(m, p, n)
    elif what == "hessian":
        w = Counter(case.f, vectorized)
        _, info = vcalc.hessian(w, x, method=m, order=p, vectorized=vectorized, full_output=True)
        # Richardson: four levels of the central order-2 plan, f(x) shared
        expected = hessian_nfev(m, p, n) if m != "richardson" else 4 * (n * n + n) + 1
    else:
        f_calls = Counter(case.f)
        w = Counter(_stack_safe_grad, vectorized)
        _, info = vcalc.hessian(f_calls, x, method=m, order=p, grad=w, vectorized=vectorized,
                                full_output=True)  # fmt: skip
        assert f_calls.calls == 0  # with grad=, f is not needed
        expected = first_nfev(m, p, n)
    assert info.nfev == w.points == expected
    if vectorized and m != "richardson":
        assert w.calls == 1  # all points in one call
    assert (info.method, info.order) == (m, 8 if m == "richardson" else p)


@pytest.mark.parametrize("case", CATALOGUE, ids=repr)
def test_nfev_richardson_smooth(backend, case):
    # smooth, well-scaled f: the first window of four steps is accepted
    w = Counter(case.f)
    _, info = vcalc.gradient(w, case.point(), method="richardson", full_output=True)
    assert info.nfev == w.calls == 8 * case.n
    w = Counter(case.f)
    _, info = vcalc.hessian(w, case.point(), method="richardson", full_output=True)
    assert info.nfev == w.calls == 4 * (case.n**2 + case.n) + 1  # f(x) once


@pytest.mark.parametrize("mo", STENCIL_MO, ids=mo_id)
@pytest.mark.parametrize("n", [1, 2, 4])
def test_nfev_hessian_all_sizes(backend, mo, n):
    m, p = mo
    w = Counter(lambda v: np.sum(np.cos(v) * np.arange(1.0, n + 1)))
    _, info = vcalc.hessian(w, np.linspace(0.1, 0.9, n), method=m, order=p, full_output=True)
    assert info.nfev == w.calls == hessian_nfev(m, p, n)


@pytest.mark.parametrize("mo", ALL_MO, ids=mo_id)
def test_line_methods_cost_independent_of_n(backend, mo):
    m, p = mo
    counts = set()
    for n in (2, 5, 11):
        A = np.arange(1.0, n * n + 1).reshape(n, n) / (n * n)
        w = Counter(lambda v, A=A: np.sin(A @ v))
        s = Counter(lambda v, A=A: np.sum(np.sin(A @ v)))
        x, v = np.linspace(0.1, 0.9, n), np.linspace(-1, 1, n)
        vcalc.jvp(w, x, v, method=m, order=p)
        vcalc.directional_derivative(s, x, v, method=m, order=p)
        counts.add((w.calls, s.calls))
    assert len(counts) == 1
    ((calls, _),) = counts
    if m == "complex":
        assert calls == 1
    elif m != "richardson":
        assert calls == len(_used_offsets(m, p, 1))


def test_hvp_costs(backend):
    for n in (2, 5):
        f = Counter(lambda v: np.sum(v**3))
        g = Counter(lambda v: 3 * v**2)
        vcalc.hvp(f, np.ones(n), np.ones(n), grad=g)
        assert (f.calls, g.calls) == (0, 2)
        f = Counter(lambda v: np.sum(v**3))
        vcalc.hvp(f, np.ones(n), np.ones(n))
        assert f.calls == 4 * n  # documented: 4 n without grad


def _f_at_x_counts(what, m, p, vectorized, x0):
    """How often f (or grad) is evaluated at x0 itself."""
    hits = [0]

    def f(x):
        hits[0] += int(np.sum(np.all(np.atleast_2d(x) == x0, axis=-1)))
        return _stack_safe_f(x)

    def grad(x):
        hits[0] += int(np.sum(np.all(np.atleast_2d(x) == x0, axis=-1)))
        return _stack_safe_grad(x)

    if what == "gradient":
        vcalc.gradient(f, x0, method=m, order=p, vectorized=vectorized)
    elif what == "hessian":
        vcalc.hessian(f, x0, method=m, order=p, vectorized=vectorized)
    else:
        vcalc.hessian(f, x0, method=m, order=p, grad=grad, vectorized=vectorized)
    return hits[0]


@pytest.mark.parametrize("vectorized", [False, True], ids=["loop", "vec"])
@pytest.mark.parametrize(("what", "mo"), what_mo(["gradient", "hessian", "hessian_grad"], ALL_MO))
def test_f_at_x_evaluated_at_most_once(backend, what, mo, vectorized):
    m, p = mo
    assert _f_at_x_counts(what, m, p, vectorized, np.array([0.3, -0.7, 1.1])) <= 1


# ---------------------------------------------------------------------------
# 5. Bounds
# ---------------------------------------------------------------------------

LB = np.array([0.0, 0.0, -1.0, 0.0, 0.0])
UB = np.array([1.0, 1.0, 2.0, 1.0, 1.0])
# at the lower bound, at the upper bound, inside, and 1e-7 from each bound
X_BOUND = np.array([0.0, 1.0, 0.5, 1e-7, 1 - 1e-7])


def _bf(x):
    return (
        np.sum(np.exp(0.5 * x) * np.cos(x + 0.3), axis=-1)
        + x[..., 0] * x[..., 1]
        + x[..., 3] * x[..., 4]
    )


def _bf_grad(x):
    g = np.exp(0.5 * x) * (0.5 * np.cos(x + 0.3) - np.sin(x + 0.3))
    g[0] += x[1]
    g[1] += x[0]
    g[3] += x[4]
    g[4] += x[3]
    return g


def _bf_hess(x):
    H = np.diag(np.exp(0.5 * x) * (-0.75 * np.cos(x + 0.3) - np.sin(x + 0.3)))
    H[0, 1] = H[1, 0] = H[3, 4] = H[4, 3] = 1.0
    return H


def _boxed(f, lb, ub):
    def g(x, *args):
        xr = np.real(x)  # the complex step moves x off the real axis only
        assert np.all(xr >= lb) and np.all(xr <= ub), f"f evaluated outside the box: {xr}"
        return f(x, *args)

    return g


@pytest.mark.parametrize("vectorized", [False, True], ids=["loop", "vec"])
@pytest.mark.parametrize(
    ("what", "mo"), what_mo(["gradient", "hessian"], STENCIL_MO + [("complex", 2)])
)
def test_bounds_never_left_and_accurate(backend, what, mo, vectorized):
    m, p = mo
    f = _boxed(_bf, LB, UB)
    if what == "gradient":
        r = vcalc.gradient(f, X_BOUND, method=m, order=p, bounds=(LB, UB), vectorized=vectorized)
        # one-sided stencils of the same order: within 10x the unbounded tolerance
        assert rel_err(r, _bf_grad(X_BOUND)) <= 10 * TOL_FIRST[mo]
    else:
        r = vcalc.hessian(f, X_BOUND, method=m, order=p, bounds=(LB, UB), vectorized=vectorized)
        assert rel_err(r, _bf_hess(X_BOUND)) <= 10 * TOL_HESS[mo]


@pytest.mark.parametrize("mo", STENCIL_MO, ids=mo_id)
def test_bounds_hessian_with_grad(backend, mo):
    m, p = mo
    g = _boxed(_bf_grad, LB, UB)
    H = vcalc.hessian(_bf, X_BOUND, method=m, order=p, grad=g, bounds=(LB, UB))
    assert rel_err(H, _bf_hess(X_BOUND)) <= 10 * TOL_FIRST[mo]


@pytest.mark.parametrize("mo", STENCIL_MO, ids=mo_id)
def test_bounds_scalar_and_none(backend, mo):
    m, p = mo
    x = np.array([0.0, 0.25, 3.0])
    f = _boxed(lambda v: np.sum(np.exp(v)), np.array([0.0, 0.0, -np.inf]), np.inf)
    g = vcalc.gradient(f, x, method=m, order=p, bounds=(0.0, None))
    assert rel_err(g, np.exp(x)) <= 10 * TOL_FIRST[mo]


@pytest.mark.parametrize("vectorized", [False, True], ids=["loop", "vec"])
def test_bounds_richardson_near_bound(backend, vectorized):
    # Richardson needs central differences: x strictly inside, steps shrink to fit
    x = np.array([1e-3, 1 - 1e-3, 0.5, 1e-2, 1 - 1e-2])
    f = _boxed(_bf, LB, UB)
    g, info = vcalc.gradient(f, x, method="richardson", bounds=(LB, UB), vectorized=vectorized,
                             full_output=True)  # fmt: skip
    err = np.abs(g - _bf_grad(x))
    assert np.all(err <= info.error)
    assert rel_err(g, _bf_grad(x)) <= 1e-10
    H, info = vcalc.hessian(f, x, method="richardson", bounds=(LB, UB), vectorized=vectorized,
                            full_output=True)  # fmt: skip
    assert np.all(np.abs(H - _bf_hess(x)) <= info.error)
    assert rel_err(H, _bf_hess(x)) <= 1e-6


@pytest.mark.parametrize("what", ["gradient", "hessian"])
def test_bounds_richardson_on_bound_raises(backend, what):
    with pytest.raises(ValueError, match=r"strictly inside `bounds`"):
        getattr(vcalc, what)(_bf, X_BOUND, method="richardson", bounds=(LB, UB))


@pytest.mark.parametrize("mo", STENCIL_MO, ids=mo_id)
@pytest.mark.parametrize("what", ["gradient", "jacobian", "hessian"])
def test_bounds_too_narrow_raises(backend, what, mo):
    m, p = mo
    f = _boxed(lambda v: np.sum(v**2), 1 - 1e-12, 1 + 1e-12)
    with pytest.raises(ValueError, match=r"`bounds`"):
        getattr(vcalc, what)(f, np.ones(2), method=m, order=p, bounds=(1 - 1e-12, 1 + 1e-12))


def test_bounds_narrow_box_works_with_small_step(backend):
    f = _boxed(lambda v: np.sum(v**2), 1 - 1e-6, 1 + 1e-6)
    g = vcalc.gradient(f, np.ones(2), bounds=(1 - 1e-6, 1 + 1e-6), step=1e-7)
    np.testing.assert_allclose(g, [2.0, 2.0], rtol=1e-8)


@pytest.mark.parametrize("method", ["central", "forward", "backward", "complex", "richardson"])
def test_bounds_x_outside_raises(backend, method):
    with pytest.raises(ValueError, match=r"`x` must lie within `bounds`"):
        vcalc.gradient(_bf, X_BOUND + 0.5, method=method, bounds=(LB, UB))


# ---------------------------------------------------------------------------
# 6. Faults: an exception raised by f propagates unchanged, x is untouched
# ---------------------------------------------------------------------------


def _fault_run(what, m, p, vectorized, x, f):
    if what == "gradient":
        return vcalc.gradient(f, x, method=m, order=p, vectorized=vectorized)
    if what == "jacobian":
        return vcalc.jacobian(f, x, method=m, order=p, vectorized=vectorized)
    if what == "hessian":
        return vcalc.hessian(f, x, method=m, order=p, vectorized=vectorized)
    return vcalc.hessian(_stack_safe_f, x, method=m, order=p, grad=f, vectorized=vectorized)


def _stack_safe_f(v):
    c = np.array([0.5, -1.0, 1.5])[: v.shape[-1]]
    return np.sum(np.exp(c * v), axis=-1)


def _stack_safe_grad(v):
    c = np.array([0.5, -1.0, 1.5])[: v.shape[-1]]
    return c * np.exp(c * v)


@pytest.mark.parametrize("vectorized", [False, True], ids=["loop", "vec"])
@pytest.mark.parametrize(
    ("what", "mo"), what_mo(["gradient", "jacobian", "hessian", "hessian_grad"], ALL_MO)
)
def test_fault_at_every_evaluation(backend, what, mo, vectorized):
    m, p = mo
    base = {
        "gradient": _stack_safe_f,
        "jacobian": vec_field,
        "hessian": _stack_safe_f,
        "hessian_grad": _stack_safe_grad,
    }[what]
    n = 2 if what.startswith("hessian") else 3
    x_arr = np.array([0.25, -0.0, 1.5])[:n]  # -0.0: a bitwise check sees it
    snapshot = x_arr.tobytes()
    counter = Counter(base)
    _fault_run(what, m, p, vectorized, x_arr.copy(), counter)
    total = counter.calls
    assert total >= 1
    for x in (x_arr, x_arr.tolist()):
        x_before = list(x) if isinstance(x, list) else None
        for k in range(1, total + 1):
            raised = []
            calls = [0]

            def f(v, k=k, raised=raised, calls=calls):
                calls[0] += 1
                if calls[0] == k:
                    raised.append(Boom(f"evaluation {k}"))
                    raise raised[-1]
                return base(v)

            with pytest.raises(Boom, match=rf"^evaluation {k}$") as info:
                _fault_run(what, m, p, vectorized, x, f)
            assert info.value is raised[0]
            assert calls[0] == k  # nothing is evaluated after the fault
            assert x_arr.tobytes() == snapshot
            if x_before is not None:
                assert x == x_before
        # still usable afterwards, with the same answer as before
        assert np.array_equal(
            _fault_run(what, m, p, vectorized, x, base),
            _fault_run(what, m, p, vectorized, x_arr.copy(), base),
        )


LINE_FAULT_CASES = [
    (api, method)
    for api in (
        "derivative",
        "derivative2",
        "jvp",
        "directional_derivative",
        "check_grad",
        "taylor",
    )
    for method in ("central", "forward", "complex", "richardson")
    if not (api in ("derivative2", "taylor") and method == "complex")
] + [("hvp", "central"), ("hvp_grad", "central")]


@pytest.mark.parametrize(("api", "method"), LINE_FAULT_CASES)
def test_fault_in_line_methods(backend, api, method):
    x = np.array([0.25, -0.0, 1.5])
    snapshot = x.tobytes()
    v = np.array([1.0, -2.0, 0.5])

    def call(f):
        if api == "derivative":
            return vcalc.derivative(f, x, method=method)
        if api == "derivative2":
            return vcalc.derivative(f, x, n=2, method=method)
        if api == "jvp":
            return vcalc.jvp(f, x, v, method=method)
        if api == "directional_derivative":
            return vcalc.directional_derivative(lambda z: np.sum(f(z)), x, v, method=method)
        if api == "hvp":
            return vcalc.hvp(lambda z: np.sum(f(z)), x, v)
        if api == "hvp_grad":
            return vcalc.hvp(lambda z: np.sum(np.exp(z)), x, v, grad=f)
        if api == "check_grad":
            return vcalc.check_grad(lambda z: np.sum(f(z)), np.exp, x, method=method)
        return vcalc.taylor(lambda z: np.sum(f(z)), x, method=method)

    counter = Counter(np.exp)
    call(counter)
    for k in range(1, counter.calls + 1):
        raised, calls = [], [0]

        def f(z, k=k, raised=raised, calls=calls):
            calls[0] += 1
            if calls[0] == k:
                raised.append(Boom(f"evaluation {k}"))
                raise raised[-1]
            return np.exp(z)

        with pytest.raises(Boom) as info:
            call(f)
        assert info.value is raised[0]
        assert x.tobytes() == snapshot


# ---------------------------------------------------------------------------
# 7. Vectorised and loop evaluators agree bit for bit (Cython backend)
# ---------------------------------------------------------------------------

VEC_CASES = ["rosen5", "sincos", "quadratic", "rational"]


def _assert_stack_consistent(f, x, rng):
    """Precondition: f gives the same bits on a stack as point by point."""
    S = x + 1e-3 * rng.standard_normal((7, x.size))
    np.testing.assert_array_equal(f(S), np.array([f(s) for s in S]))


@pytest.mark.parametrize("mo", STENCIL_MO + [("complex", 2)], ids=mo_id)
@pytest.mark.parametrize("name", VEC_CASES)
def test_vectorized_equals_loop_gradient_hessian(mo, name, rng):
    case = BY_NAME[name]
    x = case.point()
    _assert_stack_consistent(case.f, x, rng)
    m, p = mo
    with vcalc.use_backend("cython"):
        for xin in (x, x.tolist()):  # the ndarray takes the fast path, the list does not
            a = vcalc.gradient(case.f, xin, method=m, order=p)
            b = vcalc.gradient(case.f, xin, method=m, order=p, vectorized=True)
            assert np.array_equal(a, b), np.max(np.abs(a - b))
            if m != "complex":
                a = vcalc.hessian(case.f, xin, method=m, order=p)
                b = vcalc.hessian(case.f, xin, method=m, order=p, vectorized=True)
                assert np.array_equal(a, b), np.max(np.abs(a - b))


@pytest.mark.parametrize("mo", STENCIL_MO + [("complex", 2)], ids=mo_id)
def test_vectorized_equals_loop_jacobian(mo, rng):
    x = np.array([0.4, -1.2, 0.8])
    _assert_stack_consistent(vec_field, x, rng)
    m, p = mo
    with vcalc.use_backend("cython"):
        a = vcalc.jacobian(vec_field, x, method=m, order=p)
        b = vcalc.jacobian(vec_field, x, method=m, order=p, vectorized=True)
        assert np.array_equal(a, b)
        assert rel_err(a, vec_field_jac(x)) <= 10 * TOL_FIRST[mo]
        # with grad=: the Jacobian of a stack-safe gradient
        a = vcalc.hessian(BY_NAME["sumexp"].f, x, method=m, order=p, grad=_stack_safe_grad)
        b = vcalc.hessian(BY_NAME["sumexp"].f, x, method=m, order=p, grad=_stack_safe_grad,
                          vectorized=True)  # fmt: skip
        assert np.array_equal(a, b)


@pytest.mark.parametrize("mo", [("central", 2), ("forward", 1), ("central", 8), ("complex", 2)],
                         ids=mo_id)  # fmt: skip
def test_vectorized_large_n(backend, mo):
    # n = 600: the stack of perturbed points is big enough to be evaluated in
    # several chunks; the result must not depend on the chunking.
    m, p = mo
    n = 600
    x = np.linspace(-1.0, 1.0, n)
    w = np.arange(1.0, n + 1)

    def f(z):
        return np.sum(w * np.sin(z), axis=-1)

    c = Counter(f, vectorized=True)
    a, info = vcalc.gradient(c, x, method=m, order=p, vectorized=True, full_output=True)
    assert c.points == info.nfev == first_nfev(m, p, n)
    assert np.array_equal(a, vcalc.gradient(f, x, method=m, order=p))
    assert rel_err(a, w * np.cos(x)) <= 10 * TOL_FIRST[mo]
    # f returning its (reused) input stack: values must be taken before reuse
    J = vcalc.jacobian(lambda z: z, x, method=m, order=p, vectorized=True)
    np.testing.assert_allclose(J, np.eye(n), rtol=0, atol=1e-10)


@pytest.mark.parametrize("mo", STENCIL_MO, ids=mo_id)
def test_vectorized_equals_loop_with_bounds(mo):
    m, p = mo
    with vcalc.use_backend("cython"):
        for what in ("gradient", "hessian"):
            a = getattr(vcalc, what)(_bf, X_BOUND, method=m, order=p, bounds=(LB, UB))
            b = getattr(vcalc, what)(_bf, X_BOUND, method=m, order=p, bounds=(LB, UB),
                                     vectorized=True)  # fmt: skip
            assert np.array_equal(a, b)


# ---------------------------------------------------------------------------
# 8. Backends agree
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("vectorized", [False, True], ids=["loop", "vec"])
@pytest.mark.parametrize(
    ("what", "mo"), what_mo(["gradient", "jacobian", "hessian", "hessian_grad"], ALL_MO)
)
def test_backends_agree(what, mo, vectorized):
    m, p = mo
    kw = {"method": m, "order": p, "vectorized": vectorized, "full_output": True}
    x3 = np.array([0.4, -1.2, 0.8])
    for name in ("rosen5", "beale", "logsumexp", "seed2"):
        case = BY_NAME[name]
        x = case.point()
        out = {}
        for b in ("cython", "numpy"):
            with vcalc.use_backend(b):
                if what == "gradient":
                    out[b] = vcalc.gradient(case.f, x, **kw)
                elif what == "hessian":
                    out[b] = vcalc.hessian(case.f, x, **kw)
                elif what == "jacobian":  # the closed-form grads are not stack-safe
                    out[b] = (
                        vcalc.jacobian(vec_field, x3, **kw)
                        if vectorized
                        else vcalc.jacobian(case.grad, x, **kw)
                    )
                else:
                    out[b] = (
                        vcalc.hessian(_stack_safe_f, x3, grad=_stack_safe_grad, **kw)
                        if vectorized
                        else vcalc.hessian(case.f, x, grad=case.grad, **kw)
                    )
        (rc, ic), (rn, i_n) = out["cython"], out["numpy"]
        assert rel_err(rc, rn) <= 1e-13
        assert ic.nfev == i_n.nfev
        np.testing.assert_array_equal(ic.step, i_n.step)
        if m == "richardson":
            np.testing.assert_allclose(ic.error, i_n.error, rtol=1e-6)


@pytest.mark.parametrize("method", ["central", "forward", "backward", "complex", "richardson"])
def test_backends_agree_line_methods(method):
    x = np.array([0.3, -1.2, 2.0])
    v = np.array([1.0, 0.5, -2.0])
    out = {}
    for b in ("cython", "numpy"):
        with vcalc.use_backend(b):
            r = [
                vcalc.derivative(np.sin, x, method=method),
                vcalc.jvp(vec_field, x, v, method=method),
                vcalc.directional_derivative(lambda z: np.sum(np.cos(z)), x, v, method=method),
                vcalc.hvp(lambda z: np.sum(np.cos(z)), x, v),
            ]
            if method != "complex":
                r.append(vcalc.derivative(np.sin, x, n=2, method=method))
            out[b] = r
    for a, b in zip(out["cython"], out["numpy"], strict=True):
        assert rel_err(a, b) <= 1e-13


# ---------------------------------------------------------------------------
# 9. The complex step
# ---------------------------------------------------------------------------


NOT_COMPLEX_SAFE = {
    "abs": lambda x: abs(x[0]) ** 2,
    "np.abs": lambda x: np.sum(np.abs(x) ** 3, axis=-1),
    "np.real": lambda x: np.real(np.sum(np.exp(x), axis=-1)),
    "math.sin-tolist": lambda x: math.sin(np.asarray(x).tolist()[0]),
    "math.sin": lambda x: math.sin(x[0]) + math.cos(x[1]),
    "float": lambda x: float(x[0] * x[1]),
}


@pytest.mark.parametrize("name", list(NOT_COMPLEX_SAFE))
@pytest.mark.parametrize("what", ["gradient", "jacobian", "hessian_grad", "derivative", "jvp"])
def test_complex_step_not_complex_safe_is_type_error(backend, what, name):
    f = NOT_COMPLEX_SAFE[name]
    x = np.array([0.7, -1.3])
    with warnings.catch_warnings():
        # numpy's ComplexWarning (float() / math.* on a complex scalar) is a
        # RuntimeWarning, which this suite turns into errors; a user sees it
        # printed, then vcalc's TypeError.
        warnings.simplefilter("ignore", ComplexWarning)
        with pytest.raises(TypeError, match="complex"):
            if what == "gradient":
                vcalc.gradient(f, x, method="complex")
            elif what == "jacobian":
                vcalc.jacobian(lambda z: np.stack([f(z), f(z)]), x, method="complex")
            elif what == "hessian_grad":
                vcalc.hessian(f, x, method="complex", grad=lambda z: np.stack([f(z), f(z)]))
            elif what == "derivative":
                vcalc.derivative(lambda t: f(np.stack([t, t])), 0.4, method="complex")
            else:
                vcalc.jvp(lambda z: np.stack([f(z), f(z)]), x, x, method="complex")


@pytest.mark.parametrize("name", ["np.abs", "np.real"])
def test_complex_step_not_complex_safe_vectorized(backend, name):
    with pytest.raises(TypeError, match="complex"):
        vcalc.gradient(NOT_COMPLEX_SAFE[name], [0.7, -1.3], method="complex", vectorized=True)


def test_complex_step_type_error_chains_the_original(backend):
    def f(x):
        raise TypeError("my own type error")

    with pytest.raises(TypeError, match="complex") as info:
        vcalc.gradient(f, [1.0, 2.0], method="complex")
    assert isinstance(info.value.__cause__, TypeError)
    assert str(info.value.__cause__) == "my own type error"


@pytest.mark.parametrize("case", CATALOGUE, ids=repr)
def test_complex_step_machine_precision(backend, case):
    x = case.point()
    g = vcalc.gradient(case.f, x, method="complex")
    assert rel_err(g, case.grad(x)) <= 4e-15


@pytest.mark.parametrize("x", [0.3, -2.0, 7.5, 1e-8, 123.0])
def test_complex_step_derivative_exact(backend, x):
    funcs = [
        (np.exp, np.exp),
        (np.sin, np.cos),
        (lambda t: t**5 - 3 * t, lambda t: 5 * t**4 - 3),
        (np.arctan, lambda t: 1 / (1 + t * t)),
    ]
    for f, d in funcs:
        assert vcalc.derivative(f, x, method="complex") == pytest.approx(d(x), rel=2e-15, abs=0)


def test_hessian_complex_needs_grad(backend):
    with pytest.raises(ValueError, match=r"method='complex' gives first derivatives only"):
        vcalc.hessian(BY_NAME["booth"].f, [1.0, 2.0], method="complex")


# ---------------------------------------------------------------------------
# 10. Richardson
# ---------------------------------------------------------------------------


def test_richardson_sin_at_1e10(backend):
    exact = math.cos(1e10)  # libm's correctly reduced cosine
    d = vcalc.derivative(np.sin, 1e10, method="richardson")
    assert d == pytest.approx(exact, rel=1e-9)
    g, info = vcalc.gradient(lambda v: np.sin(v[0]), [1e10], method="richardson",
                             full_output=True)  # fmt: skip
    assert g[0] == pytest.approx(exact, rel=1e-9)
    assert abs(g[0] - exact) <= info.error[0] < 1e-9
    dv = vcalc.derivative(np.sin, np.array([1e10, 1.0, -3e9]), method="richardson")
    np.testing.assert_allclose(dv, [math.cos(t) for t in (1e10, 1.0, -3e9)], rtol=1e-9)


def test_richardson_log_near_zero(backend):
    assert vcalc.derivative(np.log, 0.01, method="richardson") == pytest.approx(100.0, rel=1e-10)
    g = vcalc.gradient(lambda v: np.log(v[0]), [0.01], method="richardson")
    assert g[0] == pytest.approx(100.0, rel=1e-10)
    assert vcalc.derivative(np.log, 0.01, n=2, method="richardson") == pytest.approx(-1e4, rel=1e-8)


def test_richardson_jvp_and_directional(backend):
    x = np.array([0.4, -1.2, 0.8])
    v = np.array([1.0, 0.5, -2.0])
    J = vec_field_jac(x)
    np.testing.assert_allclose(vcalc.jvp(vec_field, x, v, method="richardson"), J @ v, rtol=1e-12)
    case = BY_NAME["sincos"]
    x = case.point()
    dd = vcalc.directional_derivative(case.f, x, v, method="richardson")
    assert dd == pytest.approx(case.grad(x) @ v, rel=1e-12)


@st.composite
def catalogue_points(draw):
    case = draw(st.sampled_from(CATALOGUE))
    scale = draw(st.sampled_from([1e-3, 0.1, 0.5]))
    shift = np.array(
        [draw(st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)) for _ in range(case.n)]
    )
    x = case.point() + scale * shift
    if case.name == "seed2":  # domain x2 > 0
        x[1] = abs(x[1]) + 0.2
    return case, x


@given(catalogue_points(), st.sampled_from(["cython", "numpy"]), st.booleans())
def test_richardson_error_estimate_bounds_error(cx, backend_name, vectorized):
    case, x = cx
    with vcalc.use_backend(backend_name):
        g, info = vcalc.gradient(case.f, x, method="richardson", vectorized=vectorized,
                                 full_output=True)  # fmt: skip
    exact = case.grad(x)
    assert np.all(np.isfinite(info.error))
    assert np.all(np.abs(g - exact) <= info.error)
    assert rel_err(g, exact) <= 1e-10
    assert info.nfev >= 8 * case.n and info.nfev % 2 == 0
    assert info.order == 8 and info.method == "richardson"


def test_error_is_nan_for_other_methods(backend):
    for m in ("central", "forward", "backward", "complex"):
        _, info = vcalc.gradient(BY_NAME["booth"].f, [1.0, 2.0], method=m, full_output=True)
        assert info.error.shape == (2,) and np.all(np.isnan(info.error))


# ---------------------------------------------------------------------------
# 11. Validation: one test per message
# ---------------------------------------------------------------------------


def _sq(x):
    return float(np.sum(np.asarray(x) ** 2))


X2 = np.array([1.0, 2.0])

VALIDATION = {
    "method-unknown": (lambda: vcalc.gradient(_sq, X2, method="centre"), ValueError,
                       r"`method` must be one of 'forward', 'backward', 'central', 'complex', "
                       r"'richardson'; got 'centre'"),
    "method-not-str": (lambda: vcalc.gradient(_sq, X2, method=2), TypeError,
                       r"`method` must be a str; got int"),
    "order-central": (lambda: vcalc.gradient(_sq, X2, order=3), ValueError,
                      r"`order` must be one of 2, 4, 6, 8 for method='central'; got 3"),
    "order-forward": (lambda: vcalc.jacobian(_sq, X2, method="forward", order=5), ValueError,
                      r"`order` must be one of 1, 2, 3, 4 for method='forward'; got 5"),
    "order-hessian": (lambda: vcalc.hessian(_sq, X2, method="backward", order=0), ValueError,
                      r"`order` must be one of 1, 2, 3, 4 for method='backward'; got 0"),
    "order-complex": (lambda: vcalc.gradient(_sq, X2, method="complex", order=4), ValueError,
                      r"`order` must be 2 for method='complex'"),
    "order-richardson": (lambda: vcalc.gradient(_sq, X2, method="richardson", order=4),
                         ValueError, r"`order` must be 2 for method='richardson'"),
    "order-bool": (lambda: vcalc.gradient(_sq, X2, order=True), TypeError,
                   r"`order` must be an int; got True"),
    "order-float": (lambda: vcalc.gradient(_sq, X2, order=2.0), TypeError,
                    r"`order` must be an int; got 2.0"),
    "step-negative": (lambda: vcalc.gradient(_sq, X2, step=-1.0), ValueError,
                      r"`step` must be finite and > 0; got -1.0"),
    "step-zero": (lambda: vcalc.hessian(_sq, X2, step=0.0), ValueError,
                  r"`step` must be finite and > 0; got 0.0"),
    "step-nan": (lambda: vcalc.gradient(_sq, X2, step=np.nan), ValueError,
                 r"`step` must be finite and > 0; got nan"),
    "step-entry": (lambda: vcalc.gradient(_sq, X2, step=[1e-3, -1e-3]), ValueError,
                   r"`step` must be finite and > 0; got -0.001"),
    "step-shape": (lambda: vcalc.gradient(_sq, X2, step=[1e-3] * 3), ValueError,
                   r"`step` must be a scalar or broadcast to the shape of `x` \(2,\); "
                   r"got shape \(3,\)"),
    "step-bool": (lambda: vcalc.gradient(_sq, X2, step=True), TypeError,
                  r"`step` must be a positive real number or array; got True"),
    "step-str": (lambda: vcalc.gradient(_sq, X2, step="1e-3"), TypeError,
                 r"`step` must be an array of real numbers; got str"),
    "step-line-array": (lambda: vcalc.jvp(np.sin, X2, X2, step=[1e-3, 1e-3]), TypeError,
                        r"`step` must be a positive real number here"),
    "args-not-tuple": (lambda: vcalc.gradient(_sq, X2, args=5), TypeError,
                       r"`args` must be a tuple of extra arguments for f; got int"),
    "args-none": (lambda: vcalc.hessian(_sq, X2, args=None), TypeError,
                  r"`args` must be a tuple of extra arguments for f; got NoneType"),
    "f-not-callable": (lambda: vcalc.gradient(None, X2), TypeError,
                       r"`f` must be callable; got NoneType"),
    "f-not-callable-derivative": (lambda: vcalc.derivative("sin", X2), TypeError,
                                  r"`f` must be callable; got str"),
    "x-complex": (lambda: vcalc.gradient(_sq, np.array([1 + 1j, 2])), TypeError,
                  r"`x` must be real; got complex dtype complex128"),
    "x-str": (lambda: vcalc.gradient(_sq, "1.0"), TypeError,
              r"`x` must be an array of real numbers; got str"),
    "x-object": (lambda: vcalc.jacobian(_sq, np.array([1.0, None])), TypeError,
                 r"`x` must be an array of real numbers; got dtype object"),
    "x-ragged": (lambda: vcalc.gradient(_sq, [[1.0], [1.0, 2.0]]), ValueError,
                 r"`x` must be a rectangular array of real numbers"),
    "x-nan": (lambda: vcalc.gradient(_sq, np.array([1.0, np.nan])), ValueError,
              r"`x` must be finite; got .*nan.* at index \(1,\)"),
    "x-inf": (lambda: vcalc.hessian(_sq, [1.0, np.inf]), ValueError,
              r"`x` must be finite; got .*inf.* at index \(1,\)"),
    "x-overflow": (lambda: vcalc.gradient(_sq, np.array([1.7976931348623157e308, 1.0])),
                   ValueError, r"`x` is too close to the largest float"),
    "f-vector-for-gradient": (lambda: vcalc.gradient(lambda z: 2 * z, X2), ValueError,
                              r"`f` must return a scalar for gradient; got an array of "
                              r"shape \(2,\)"),
    "f-vector-for-hessian": (lambda: vcalc.hessian(lambda z: 2 * z, X2), ValueError,
                             r"`f` must return a scalar for hessian"),
    "f-complex-value": (lambda: vcalc.gradient(lambda z: complex(z[0]), X2), TypeError,
                        r"`f` returned complex values \(dtype complex128\)"),
    "f-complex-value-jacobian": (lambda: vcalc.jacobian(lambda z: z + 1j, X2,
                                                        method="richardson"),
                                 TypeError, r"`f` returned complex values"),
    "f-non-numeric": (lambda: vcalc.gradient(lambda z: "a", X2), TypeError,
                      r"`f` must return real numbers; got str"),
    "f-shape-changes": (lambda: vcalc.jacobian(lambda z: np.zeros(2 if z[0] == 1.0 else 3), X2,
                                               method="forward"),
                        ValueError, r"`f` returned shape \(3,\) at one point and \(2,\)"),
    "vectorized-bad-return": (lambda: vcalc.gradient(lambda z: 1.0, X2, vectorized=True),
                              ValueError, r"a vectorized `f` must return an array with one "
                              r"entry per point"),
    "vectorized-not-bool": (lambda: vcalc.gradient(_sq, X2, vectorized=1), TypeError,
                            r"`vectorized` must be True or False; got 1"),
    "full-output-not-bool": (lambda: vcalc.gradient(_sq, X2, full_output=1), TypeError,
                             r"`full_output` must be True or False; got 1"),
    "bounds-not-pair": (lambda: vcalc.gradient(_sq, X2, bounds=(0.0,)), TypeError,
                        r"`bounds` must be a pair \(lb, ub\) of scalars or arrays"),
    "bounds-scalar": (lambda: vcalc.hessian(_sq, X2, bounds=1.0), TypeError,
                      r"`bounds` must be a pair \(lb, ub\)"),
    "bounds-nan": (lambda: vcalc.gradient(_sq, X2, bounds=(np.nan, 3.0)), ValueError,
                   r"`bounds`: the lower bound contains NaN"),
    "bounds-shape": (lambda: vcalc.gradient(_sq, X2, bounds=(0.0, [3.0, 3.0, 3.0])), ValueError,
                     r"`bounds`: the upper bound must broadcast to the shape of `x` \(2,\)"),
    "bounds-str": (lambda: vcalc.gradient(_sq, X2, bounds=("a", 3.0)), TypeError,
                   r"`bounds`: the lower bound must be real numbers"),
    "derivative-n-value": (lambda: vcalc.derivative(np.sin, X2, n=3), ValueError,
                           r"`n` must be 1 or 2; got 3"),
    "derivative-n-type": (lambda: vcalc.derivative(np.sin, X2, n=1.0), TypeError,
                          r"`n` must be an int \(1 or 2\); got 1.0"),
    "derivative-n2-complex": (lambda: vcalc.derivative(np.sin, X2, n=2, method="complex"),
                              ValueError, r"method='complex' gives first derivatives only; "
                              r"`n` must be 1"),
    "derivative-not-elementwise": (lambda: vcalc.derivative(np.sum, X2), ValueError,
                                   r"`f` must be elementwise for derivative"),
    "v-shape-jvp": (lambda: vcalc.jvp(np.sin, X2, [1.0, 2.0, 3.0]), ValueError,
                    r"`v` must have the shape of `x` \(2,\); got shape \(3,\)"),
    "v-shape-dd": (lambda: vcalc.directional_derivative(_sq, X2, [1.0]), ValueError,
                   r"`v` must have the shape of `x` \(2,\); got shape \(1,\)"),
    "v-shape-hvp": (lambda: vcalc.hvp(_sq, X2, np.ones((2, 1))), ValueError,
                    r"`v` must have the shape of `x` \(2,\); got shape \(2, 1\)"),
    "v-not-finite": (lambda: vcalc.jvp(np.sin, X2, [np.nan, 1.0]), ValueError,
                     r"`v` must be finite"),
    "check-grad-shape": (lambda: vcalc.check_grad(_sq, lambda z: np.zeros(3), X2), ValueError,
                         r"`grad` must return shape \(2,\) \(f\(x\).shape \+ x.shape\); "
                         r"got \(3,\)"),
    "check-grad-not-callable": (lambda: vcalc.check_grad(_sq, None, X2), TypeError,
                                r"`grad` must be callable; got NoneType"),
    "check-grad-rtol": (lambda: vcalc.check_grad(_sq, lambda z: 2 * z, X2, rtol=-1.0),
                        ValueError, r"`rtol` must be finite and >= 0"),
    "hessian-grad-shape": (lambda: vcalc.hessian(_sq, X2, grad=lambda z: np.zeros(3)),
                           ValueError, r"`grad` must return an array of the shape of `x`"),
    "hvp-grad-shape": (lambda: vcalc.hvp(_sq, X2, X2, grad=lambda z: np.zeros(3)), ValueError,
                       r"`grad` must return an array of the shape of `x`"),
    "taylor-order": (lambda: vcalc.taylor(_sq, X2, order=3), ValueError,
                     r"`order` must be 1 or 2 for a Taylor model; got 3"),
    "taylor-order2-vector": (lambda: vcalc.taylor(lambda z: z, X2, order=2), ValueError,
                             r"a second-order Taylor model needs scalar f"),
    "taylor-call-shape": (lambda: vcalc.taylor(_sq, X2)(np.zeros(3)), ValueError,
                          r"`x` must have shape \(2,\) or \(k,\) \+ \(2,\); got shape \(3,\)"),
    "workers-gradient": (lambda: vcalc.gradient(_sq, X2, workers=2), NotImplementedError,
                         r"`workers` \(parallel evaluation of f\) is not available"),
    "workers-jacobian": (lambda: vcalc.jacobian(_sq, [1.0, 2.0], workers=map),
                         NotImplementedError, r"`workers`"),
    "workers-hessian": (lambda: vcalc.hessian(_sq, X2, workers=2), NotImplementedError,
                        r"`workers`"),
    "progress-gradient": (lambda: vcalc.gradient(_sq, X2, progress=True), NotImplementedError,
                          r"`progress` is not available in this version"),
    "progress-hessian": (lambda: vcalc.hessian(_sq, X2, progress=True), NotImplementedError,
                         r"`progress` is not available"),
    "sparsity": (lambda: vcalc.jacobian(_sq, X2, sparsity=np.ones((1, 2), bool)),
                 NotImplementedError, r"`sparsity` is not available in this version"),
}  # fmt: skip


@pytest.mark.parametrize("key", list(VALIDATION))
def test_validation(backend, key):
    call, exc, match = VALIDATION[key]
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------
# 12. The caller's x, what f sees, shapes
# ---------------------------------------------------------------------------


def _writer(x):
    x[0] = 1.0  # numpy refuses: the loop evaluator hands out a read-only view
    return float(np.sum(x))


@pytest.mark.parametrize(("what", "mo"), what_mo(["gradient", "jacobian", "hessian"], ALL_MO))
def test_f_gets_read_only_view_in_loop(what, mo):
    m, p = mo
    x = np.array([0.5, -0.0, 2.0])
    snapshot = x.tobytes()
    with vcalc.use_backend("cython"):
        for xin in (x, x.tolist()):
            with pytest.raises(ValueError, match="read-only"):
                getattr(vcalc, what)(_writer, xin, method=m, order=p)
    assert x.tobytes() == snapshot


def _api_calls():
    def s(z):
        return np.sum(np.exp(z) * np.cos(z))

    def grad(z):
        return np.exp(z) * (np.cos(z) - np.sin(z))

    return {
        "gradient": lambda x, v: vcalc.gradient(s, x),
        "gradient-list-path": lambda x, v: vcalc.gradient(s, x, step=1e-6),
        "gradient-richardson": lambda x, v: vcalc.gradient(s, x, method="richardson"),
        "gradient-complex": lambda x, v: vcalc.gradient(s, x, method="complex"),
        "gradient-vectorized": lambda x, v: vcalc.gradient(
            lambda z: np.sum(np.exp(z) * np.cos(z), axis=(-2, -1)), x, vectorized=True
        ),
        "jacobian": lambda x, v: vcalc.jacobian(np.sin, x, method="forward", order=3),
        "hessian": lambda x, v: vcalc.hessian(s, x),
        "hessian-order4": lambda x, v: vcalc.hessian(s, x, order=4),
        "hessian-richardson": lambda x, v: vcalc.hessian(s, x, method="richardson"),
        "hessian-grad": lambda x, v: vcalc.hessian(s, x, grad=grad),
        "hessian-bounds": lambda x, v: vcalc.hessian(s, x, bounds=(-5.0, 5.0)),
        "derivative": lambda x, v: vcalc.derivative(np.sin, x, n=2),
        "jvp": lambda x, v: vcalc.jvp(np.sin, x, v),
        "directional_derivative": lambda x, v: vcalc.directional_derivative(s, x, v),
        "hvp": lambda x, v: vcalc.hvp(s, x, v),
        "hvp-grad": lambda x, v: vcalc.hvp(s, x, v, grad=grad),
        "check_grad": lambda x, v: vcalc.check_grad(s, grad, x),
        "taylor": lambda x, v: vcalc.taylor(s, x)(x + 0.01),
    }


@pytest.mark.parametrize("api", list(_api_calls()))
def test_caller_arrays_not_modified(backend, api):
    call = _api_calls()[api]
    x = np.array([[0.5, -0.0], [2.0, -1.25]])
    v = np.array([[1.0, -2.0], [0.0, 0.5]])
    xs, vs = x.tobytes(), v.tobytes()
    call(x, v)
    assert x.tobytes() == xs and v.tobytes() == vs
    xf = np.asfortranarray(x)
    call(xf, v)
    assert xf.tobytes(order="A") == np.asfortranarray(x).tobytes(order="A")
    ro = x.copy()
    ro.flags.writeable = False
    call(ro, v)  # read-only input is fine
    assert ro.tobytes() == xs


SHAPES = [(), (3,), (2, 3), (2, 2, 2)]


@pytest.mark.parametrize("vectorized", [False, True], ids=["loop", "vec"])
@pytest.mark.parametrize("mo", ALL_MO, ids=mo_id)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_identity_jacobian(backend, shape, mo, vectorized):
    m, p = mo
    x = (0.3 * np.arange(1, 1 + math.prod(shape))).reshape(shape)
    eye = np.eye(x.size).reshape(shape + shape)
    # f returns its argument itself, or a view of it
    for f in (lambda z: z, lambda z: z[...]):
        J = vcalc.jacobian(f, x, method=m, order=p, vectorized=vectorized)
        assert np.shape(J) == shape + shape
        np.testing.assert_allclose(J, eye, rtol=0, atol=1e-10)
    if shape == (3,) and not vectorized:
        J = vcalc.jacobian(lambda z: z[::-1], x, method=m, order=p)
        np.testing.assert_allclose(J, eye[::-1], rtol=0, atol=1e-10)
        g = vcalc.gradient(lambda z: z[..., 1], x, method=m, order=p)  # a 0-d view
        np.testing.assert_allclose(g, [0.0, 1.0, 0.0], rtol=0, atol=1e-10)


@pytest.mark.parametrize("mo", ALL_MO, ids=mo_id)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_shapes_numerator_layout(backend, shape, mo):
    m, p = mo
    n = math.prod(shape)
    x = (0.1 * np.arange(1, 1 + n)).reshape(shape)
    w = np.arange(1.0, n + 1).reshape(shape)

    def s(z):
        return np.sum(w * np.sin(z))

    def vf(z):  # shape (2,) + x.shape... flattened to (2, n): a matrix-valued f
        return np.stack([np.sin(z), z * z]).reshape((2,) + shape)

    g = vcalc.gradient(s, x, method=m, order=p)
    assert np.shape(g) == shape
    np.testing.assert_allclose(g, w * np.cos(x), rtol=10 * TOL_FIRST[mo], atol=0)
    if shape == ():
        assert isinstance(g, float)  # 0-d x: a scalar
    J = vcalc.jacobian(vf, x, method=m, order=p)
    assert J.shape == (2,) + shape + shape
    exact = np.zeros((2, n, n))
    exact[0][np.diag_indices(n)] = np.cos(x).ravel()
    exact[1][np.diag_indices(n)] = 2 * x.ravel()
    assert rel_err(J.reshape(2, n, n), exact) <= 10 * TOL_FIRST[mo]
    if m != "complex":
        H = vcalc.hessian(s, x, method=m, order=p)
        assert np.shape(H) == shape + shape
        exact = np.diag((-w * np.sin(x)).ravel())
        assert rel_err(np.reshape(H, (n, n)), exact) <= 10 * TOL_HESS[mo]
    d = vcalc.derivative(np.sin, x, method=m, order=p)
    assert np.shape(d) == shape
    np.testing.assert_allclose(d, np.cos(x), rtol=10 * TOL_FIRST[mo], atol=0)


def test_scalar_inputs_and_outputs(backend):
    assert isinstance(vcalc.gradient(lambda t: t**3, 2.0), float)
    assert vcalc.gradient(lambda t: t**3, 2.0) == pytest.approx(12.0, rel=1e-9)
    assert vcalc.hessian(lambda t: t**3, 2.0) == pytest.approx(12.0, rel=1e-7)
    assert vcalc.derivative(np.exp, 1) == pytest.approx(math.e, rel=1e-9)  # int input
    np.testing.assert_allclose(vcalc.jacobian(lambda t: np.array([t, t * t]), 2.0), [1.0, 4.0])
    # integer / bool / float32 points compute in float64
    g = vcalc.gradient(lambda z: np.sum(z**2), np.array([1, 2], dtype=np.int32))
    assert g.dtype == np.float64 and np.allclose(g, [2.0, 4.0])
    g32 = vcalc.gradient(lambda z: np.sum(z.astype(np.float64) ** 2), np.float32([1.5, 2.5]))
    assert g32.dtype == np.float64 and np.allclose(g32, [3.0, 5.0])
    # f may return Python lists, ints and float32
    J = vcalc.jacobian(lambda z: [z[0], 2 * z[1]], [1.0, 2.0])
    np.testing.assert_allclose(J, [[1.0, 0.0], [0.0, 2.0]], atol=1e-9)
    np.testing.assert_array_equal(vcalc.jacobian(lambda z: np.array([1, 2]), [1.0, 2.0]), 0.0)


def test_args_are_passed(backend):
    def f(x, a, b):
        return a * np.sum(x**2) + b

    x = np.array([1.0, -2.0])
    for m in ("central", "forward", "complex", "richardson"):
        np.testing.assert_allclose(vcalc.gradient(f, x, args=(3.0, 1.0), method=m), 6 * x,
                                   rtol=1e-7)  # fmt: skip
        np.testing.assert_allclose(vcalc.gradient(f, x, args=[3.0, 1.0], method=m), 6 * x,
                                   rtol=1e-7)  # fmt: skip
    np.testing.assert_allclose(vcalc.hessian(f, x, args=(3.0, 1.0)), 6 * np.eye(2), rtol=1e-6)
    assert vcalc.derivative(lambda t, a: np.sin(a * t), 0.5, args=(2.0,)) == pytest.approx(
        2 * np.cos(1.0), rel=1e-9
    )


def test_step_is_exact_and_reported(backend):
    x = np.array([0.3, 3.0, -1e6, 0.0])
    for m, p in STENCIL_MO:
        _, info = vcalc.gradient(lambda z: np.sum(z), x, method=m, order=p, full_output=True)
        assert info.step.shape == x.shape
        assert np.all(info.step > 0)
        np.testing.assert_array_equal((x + info.step) - x, info.step)
        h0 = np.finfo(float).eps ** (1 / (p + 1))
        np.testing.assert_allclose(info.step, h0 * np.maximum(1, np.abs(x)), rtol=1e-6)
    _, info = vcalc.gradient(lambda z: np.sum(z), x, method="complex", full_output=True)
    np.testing.assert_array_equal(info.step, 1e-20)


# ---------------------------------------------------------------------------
# 13. check_grad and taylor
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["central", "forward", "complex", "richardson"])
def test_check_grad_pass_and_fail(backend, method):
    B = np.array([[1.0, 2.0], [0.0, 3.0]])
    x = [1.0, -1.0]

    def f(v):
        return v @ B @ v

    good = vcalc.check_grad(f, lambda v: (B + B.T) @ v, x, method=method)
    assert good.ok and bool(good)
    assert str(good).startswith("gradient check PASSED")
    assert good.max_abs_error <= 1e-6
    np.testing.assert_allclose(good.analytic, (B + B.T) @ np.array(x))
    bad = vcalc.check_grad(f, lambda v: 2 * B @ v, x, method=method)  # forgot B^T
    assert not bad.ok and not bool(bad)
    assert str(bad).startswith("gradient check FAILED")
    assert bad.worst_index == (0,)  # (2B x)_0 = -2 vs (B + B^T) x = 0
    assert bad.max_abs_error == pytest.approx(2.0, rel=1e-6)
    assert "(0,)" in str(bad)
    # a small error in one entry: the worst index points at it
    off = vcalc.check_grad(f, lambda v: (B + B.T) @ v + np.array([0.0, 1e-3]), x, method=method)
    assert not off.ok and off.worst_index == (1,)
    assert off.max_abs_error == pytest.approx(1e-3, rel=1e-4)


def test_check_grad_jacobian(backend):
    A = np.arange(6.0).reshape(2, 3)
    x = [1.0, 2.0, 3.0]
    good = vcalc.check_grad(lambda v: A @ v**2, lambda v: A * 2 * v, x)
    assert good.ok and good.numeric.shape == (2, 3)
    wrong = 2 * A * np.array(x)
    wrong[1, 2] += 1.0
    bad = vcalc.check_grad(lambda v: A @ v**2, lambda v: wrong, x)
    assert not bad.ok and bad.worst_index == (1, 2)
    assert str(bad).startswith("gradient check FAILED")


def test_check_grad_catalogue(backend):
    for case in CATALOGUE:
        res = vcalc.check_grad(case.f, case.grad, case.point())
        assert res.ok, str(res)
        res = vcalc.check_grad(case.f, lambda v, c=case: 1.01 * c.grad(v), case.point())
        assert not res.ok


@pytest.mark.parametrize("method", ["central", "forward", "complex", "richardson"])
def test_taylor_scalar(backend, method):
    case = BY_NAME["seed2"]
    x = case.point()
    rng = np.random.default_rng(3)
    eps = 1e-2 * rng.standard_normal((5, 2))
    f0 = case.f(x)
    for order in (1, 2):
        t = vcalc.taylor(case.f, x, order=order, method=method)
        assert t.order == order and t.f0 == pytest.approx(f0, rel=1e-15)
        np.testing.assert_allclose(t.grad, case.grad(x), rtol=1e-6)
        if order == 1:
            assert t.hess is None
            exact = f0 + eps @ case.grad(x)
        else:
            np.testing.assert_allclose(t.hess, case.hess(x), rtol=1e-5)
            exact = f0 + eps @ case.grad(x) + 0.5 * np.einsum("ki,ij,kj->k", eps, case.hess(x), eps)
        one = t(x + eps[0])
        assert np.shape(one) == ()
        assert one == pytest.approx(exact[0], rel=1e-9)
        stack = t(x + eps)
        assert stack.shape == (5,)
        np.testing.assert_allclose(stack, exact, rtol=1e-9)


def test_taylor_vector(backend):
    x = np.array([0.4, -1.2, 0.8])
    t = vcalc.taylor(vec_field, x, order=1)
    J = vec_field_jac(x)
    np.testing.assert_allclose(t.grad, J, rtol=1e-8)
    eps = np.array([1e-3, -2e-3, 5e-4])
    one = t(x + eps)
    assert one.shape == (2,)
    np.testing.assert_allclose(one, vec_field(x) + J @ eps, rtol=1e-10)
    stack = t(np.stack([x, x + eps, x - eps]))
    assert stack.shape == (3, 2)
    np.testing.assert_allclose(stack[1], one, rtol=1e-15)
    np.testing.assert_allclose(stack[0], vec_field(x), rtol=1e-15)


def test_taylor_0d(backend):
    t = vcalc.taylor(np.exp, 0.0)
    assert t(0.1) == pytest.approx(1 + 0.1 + 0.005, rel=1e-8)
    np.testing.assert_allclose(t(np.array([0.1, -0.2])), [1.105, 1 - 0.2 + 0.02], rtol=1e-8)


# ---------------------------------------------------------------------------
# 14. hvp, jvp, directional_derivative
# ---------------------------------------------------------------------------

QA = np.array([[2.0, 1.0, 0.5], [1.0, 3.0, -1.0], [0.5, -1.0, 4.0]])
QB = np.array([1.0, -1.0, 2.0])


@pytest.mark.parametrize("v", [[1.0, 2.0, -0.5], [0.0, 0.0, 1e-3], [1e3, -1.0, 0.0]])
def test_hvp_quadratic(backend, v):
    v = np.array(v)
    x = np.array([0.3, -0.2, 1.1])

    def f(z):
        return z @ QA @ z + QB @ z

    def g(z):
        return 2 * QA @ z + QB

    exact = 2 * QA @ v
    scale = max(1.0, np.max(np.abs(exact)))
    assert np.max(np.abs(vcalc.hvp(f, x, v, grad=g) - exact)) <= 1e-10 * scale
    assert np.max(np.abs(vcalc.hvp(f, x, v) - exact)) <= 1e-6 * scale


def test_hvp_zero_direction(backend):
    np.testing.assert_array_equal(vcalc.hvp(lambda z: np.sum(z**2), [1.0, 2.0], [0.0, 0.0]), 0.0)


@pytest.mark.parametrize("case", CATALOGUE, ids=repr)
def test_hvp_catalogue(backend, case):
    x = case.point()
    v = np.linspace(-1, 1, case.n) + 0.3
    exact = case.hess(x) @ v
    assert rel_err(vcalc.hvp(case.f, x, v, grad=case.grad), exact) <= 1e-9
    assert rel_err(vcalc.hvp(case.f, x, v), exact) <= 5e-7


@pytest.mark.parametrize("mo", ALL_MO, ids=mo_id)
def test_jvp_and_directional(backend, mo):
    m, p = mo
    rng = np.random.default_rng(7)
    x = np.array([0.4, -1.2, 0.8])
    J = vec_field_jac(x)
    for _ in range(3):
        v = rng.standard_normal(3)
        r = vcalc.jvp(vec_field, x, v, method=m, order=p)
        assert r.shape == (2,)
        assert rel_err(r, J @ v) <= 10 * TOL_FIRST[mo]
    for case in (BY_NAME["rosen5"], BY_NAME["logsumexp"], BY_NAME["sincos"]):
        x = case.point()
        v = rng.standard_normal(case.n)
        dd = vcalc.directional_derivative(case.f, x, v, method=m, order=p)
        assert np.shape(dd) == ()
        assert rel_err(dd, case.grad(x) @ v) <= 10 * TOL_FIRST[mo]


def test_jvp_zero_direction(backend):
    r = vcalc.jvp(vec_field, [0.1, 0.2, 0.3], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(r, [0.0, 0.0])


# ---------------------------------------------------------------------------
# 15. Regressions: empty x, complex-step detection
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("xkind", ["ndarray", "list"])
@pytest.mark.parametrize("vectorized", [False, True], ids=["loop", "vec"])
@pytest.mark.parametrize(("what", "mo"), what_mo(["gradient", "jacobian", "hessian"], ALL_MO))
def test_empty_x(backend, what, mo, vectorized, xkind):
    # Regression: the loop evaluator's stencil combine (AxisPlan.triplets) and
    # the tensor-product Hessian plan (TensorHessianPlan.build) used to raise
    # "need at least one array to concatenate" / "max() arg is an empty sequence".
    m, p = mo
    x = np.empty(0) if xkind == "ndarray" else []

    def f(z):
        return np.sum(z, axis=-1)

    def vf(z):
        return np.stack([np.sum(z, axis=-1), np.sum(z, axis=-1)], axis=-1)

    r = getattr(vcalc, what)(vf if what == "jacobian" else f, x, method=m, order=p,
                             vectorized=vectorized)  # fmt: skip
    assert np.shape(r) == {"gradient": (0,), "jacobian": (2, 0), "hessian": (0, 0)}[what]


@pytest.mark.parametrize("filter_", ["ignore", "default", "error"])
def test_complex_step_mixed_math_function_is_detected(backend, filter_):
    # Regression: math.sin(x[0]) drops the imaginary part of x[0] (NumPy only
    # warns, ComplexWarning) while f's value stays complex through x[1]; the
    # gradient used to come back as [0, 1] without an error.
    x = np.array([0.7, -1.3])
    with warnings.catch_warnings():
        warnings.simplefilter(filter_, ComplexWarning)
        with pytest.raises(TypeError, match="complex"):
            vcalc.gradient(lambda z: math.sin(z[0]) + z[1], x, method="complex")

        def stacked(z):  # the same f, on a stack of points
            return np.array([math.sin(row[0]) for row in z]) + z[..., 1]

        with pytest.raises(TypeError, match="complex"):
            vcalc.gradient(stacked, x, method="complex", vectorized=True)


def test_bounds_lower_above_upper_is_named():
    with pytest.raises(ValueError, match="lower bound exceeds the upper bound at flat index 1"):
        vcalc.gradient(lambda x: float(x @ x), [0.5, 0.5], bounds=([0.0, 1.0], [1.0, 0.0]))


def test_richardson_next_to_a_bound_stays_strictly_inside():
    # log'(1e-3) with bounds=(0, None): log is never evaluated at 0 or below.
    seen = []

    def f(x):
        seen.append(float(np.min(x)))
        return np.log(x[0])

    g, info = vcalc.gradient(f, [1e-3], method="richardson", bounds=(0.0, None), full_output=True)
    assert min(seen) > 0.0
    assert abs(g[0] - 1e3) <= info.error[0]
    assert abs(g[0] - 1e3) <= 1e-9 * 1e3
