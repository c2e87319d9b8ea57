"""Finite differences: vcalc beside scipy, numdifftools and the floor of calling f.

The floor is a plain Python loop ``for p in pts: f(p)`` over prebuilt points,
exactly as many as vcalc evaluates (forward order 1: n + 1; central order 2:
2n; central Hessian: n**2 + n + 1): no finite-difference code can call a
Python f that often for less.  For ``vectorized=True`` the floor is one call
of the vectorised f on the whole prebuilt stack of points.

f is cheap on purpose (``np.dot(x, x) + x[0]``, about a microsecond), so the
tables show the overhead of each implementation.  Every implementation's
result is checked against the closed-form gradient or Hessian before it is
timed (max error relative to the largest entry); the number of evaluations,
counted once outside the timed loop, is in ``extra_info["nfev"]`` (points;
``"calls"`` is the number of calls of a vectorised f).  The points are
``0.1 * data`` (standard deviation 0.3), so that the rounding error of the
one-sided difference of an f summing 1000 terms stays below the forward
tolerance.
"""

import numpy as np
import pytest
from conftest import data, peer

import vcalc

EPS = float(np.finfo(np.float64).eps)

#: Allowed error of each method, relative to the largest entry of the exact result.
RTOL = {"forward": 1e-6, "central": 1e-8, "numdifftools": 1e-10, "richardson": 1e-12}
#: Richardson at n = 100: f sums 100 terms (|f| ~ 130), and its rounding error,
#: eps |f| / h, puts 1e-12 out of reach of any step sequence here: numdifftools gets
#: 6.8e-12, scipy.differentiate 2.6e-11, vcalc 1.0e-11 (3.4e-12 with 4x larger steps).
RTOL_RICHARDSON = {2: 1e-12, 10: 1e-12, 100: 2e-11}
#: Central second differences lose eps / h**2 ~ sqrt(eps) relative to |f|; 1e-8 is out
#: of reach for any h once |f| exceeds |H| (here |f| ~ 0.09 n, H = 2 I).
RTOL_HESSIAN = 1e-6

#: vcalc's accuracy order per method: forward order 1 (n + 1 evaluations),
#: central order 2 (2n evaluations).
ORDER = {"forward": 1, "central": 2}


# ---------------------------------------------------------------------------
# The functions and their exact derivatives
# ---------------------------------------------------------------------------


def f(x):
    """The cheap scalar f: x . x + x[0]."""
    return np.dot(x, x) + x[0]


def f_rows(X):
    """vcalc's vectorised twin of f: a stack (k, n) of points -> (k,)."""
    return np.einsum("ij,ij->i", X, X) + X[:, 0]


def f_leading(X):
    """scipy.differentiate's vectorised twin of f: coordinates first, (n, ...) -> (...)."""
    return np.einsum("i...,i...->...", X, X) + X[0]


def grad_f(x):
    g = 2 * x
    g[0] += 1.0
    return g


def hess_f(x):
    return 2.0 * np.eye(x.size)


def f_smooth(x):
    """A smooth f for Richardson extrapolation: sum(exp(sin(x)))."""
    return np.sum(np.exp(np.sin(x)))


def grad_smooth(x):
    return np.cos(x) * np.exp(np.sin(x))


def point(n):
    """The point of dimension n (a new, writeable float64 array)."""
    return 0.1 * data((n,), seed=n)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


class Counter:
    """Wraps f and counts calls and points (for a vectorised f, points per call)."""

    def __init__(self, func, points=lambda a: 1):
        self.func, self.points = func, points
        self.calls = self.nfev = 0

    def __call__(self, x, *args):
        self.calls += 1
        self.nfev += self.points(np.asarray(x))
        return self.func(x, *args)


def rel_error(got, want):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def check(benchmark, got, want, rtol):
    err = rel_error(got, want)
    benchmark.extra_info["rel_error"] = err
    assert err <= rtol, f"relative error {err:.2e} > {rtol:.0e}"


def floor(func, pts):
    """The least any implementation can do: call f at each point."""
    for p in pts:
        func(p)


def axis_points(x, method):
    """The points of vcalc's first-derivative stencil, as separate arrays."""
    n = x.size
    h = np.full(n, 1e-6)
    E = np.diag(h)
    if method == "forward":
        P = np.vstack([x[None, :], x + E])  # n + 1
    else:
        P = np.vstack([x + E, x - E])  # 2n
    return [p.copy() for p in P]


def hessian_points(x):
    """n**2 + n + 1 points: x, x +- h e_i and x +- h (e_i + e_j) for i < j."""
    n = x.size
    E = np.diag(np.full(n, 1e-4))
    i, j = np.triu_indices(n, 1)
    P = np.vstack([x[None, :], x + E, x - E, x + E[i] + E[j], x - E[i] - E[j]])
    return [p.copy() for p in P]


def grouped(group, rows):
    """pytest params (one per row), each marked with its benchmark group."""
    return [
        pytest.param(
            *row,
            id="-".join(map(str, row)),
            marks=pytest.mark.benchmark(group=group.format(*row)),
        )
        for row in rows
    ]


def numdifftools():
    return peer("numdifftools")


def scipy_differentiate():
    """scipy.differentiate (scipy >= 1.15) or skip."""
    return peer("scipy.differentiate")


# ---------------------------------------------------------------------------
# 1. Gradient of a cheap Python f, forward and central
# ---------------------------------------------------------------------------

GRADIENT_N = [2, 10, 100, 1000]

#: impl -> the methods it is benchmarked for (approx_fprime is forward only;
#: scipy.differentiate and numdifftools are central with extrapolation).
GRADIENT_IMPLS = {
    "vcalc": ("forward", "central"),
    "floor": ("forward", "central"),
    "approx_fprime": ("forward",),
    "approx_derivative": ("forward", "central"),
    "scipy.differentiate": ("central",),
    "numdifftools": ("central",),
}


def gradient_impl(impl, method, x):
    """(callable taking x, rtol or None for no check, counting function -> Counter)."""
    if impl == "vcalc":
        order = ORDER[method]
        return (
            lambda x: vcalc.gradient(f, x, method=method, order=order),
            RTOL[method],
            lambda c: vcalc.gradient(c, x, method=method, order=order),
        )
    if impl == "floor":
        pts = axis_points(x, method)
        return (lambda x: floor(f, pts)), None, lambda c: floor(c, pts)
    if impl == "approx_fprime":
        approx_fprime = peer("scipy.optimize").approx_fprime
        eps = np.sqrt(EPS)
        return (
            lambda x: approx_fprime(x, f, eps),
            RTOL[method],
            lambda c: approx_fprime(x, c, eps),
        )
    if impl == "approx_derivative":
        approx_derivative = peer("scipy.optimize._numdiff").approx_derivative
        how = {"forward": "2-point", "central": "3-point"}[method]
        return (
            lambda x: approx_derivative(f, x, method=how),
            RTOL[method],
            lambda c: approx_derivative(c, x, method=how),
        )
    if impl == "scipy.differentiate":
        jacobian = scipy_differentiate().jacobian
        return (
            lambda x: jacobian(f_leading, x).df,
            RTOL[method],
            lambda c: jacobian(c, x).df,
        )
    if impl == "numdifftools":
        if x.size > 100:
            pytest.skip("numdifftools.Gradient at n=1000: too slow (default Richardson steps)")
        grad = numdifftools().Gradient(f)  # built once, like a user would
        nd = numdifftools()
        return grad, RTOL["numdifftools"], lambda c: nd.Gradient(c)(x)
    raise AssertionError(impl)


def points_of(impl):
    """How many points one call of f gets from impl (scipy.differentiate stacks them)."""
    if impl == "scipy.differentiate":
        return lambda X: int(np.prod(X.shape[1:], dtype=np.intp))
    return lambda X: 1


@pytest.mark.parametrize(
    "method, n, impl",
    grouped(
        "gradient-{0}-n={1}",
        [
            (method, n, impl)
            for method in ("forward", "central")
            for n in GRADIENT_N
            for impl, methods in GRADIENT_IMPLS.items()
            if method in methods
        ],
    ),
)
def test_gradient(benchmark, method, n, impl):
    x = point(n)
    func, rtol, counted = gradient_impl(impl, method, x)
    counter = Counter(f_leading if impl == "scipy.differentiate" else f, points_of(impl))
    counted(counter)
    benchmark.extra_info.update(nfev=counter.nfev, calls=counter.calls)
    if impl in ("vcalc", "floor"):
        assert counter.nfev == (n + 1 if method == "forward" else 2 * n)
    if rtol is not None:
        check(benchmark, func(x), grad_f(x), rtol)
    benchmark(func, x)


# ---------------------------------------------------------------------------
# 2. vectorized=True: all 2n points in one call of a vectorised f
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, impl",
    grouped(
        "gradient-vectorized-central-n={0}",
        [(n, impl) for n in (10, 100, 1000) for impl in ("vcalc", "one call of f")],
    ),
)
def test_gradient_vectorized(benchmark, n, impl):
    x = point(n)
    if impl == "vcalc":
        counter = Counter(f_rows, lambda X: X.shape[0])
        vcalc.gradient(counter, x, vectorized=True)
        benchmark.extra_info.update(nfev=counter.nfev, calls=counter.calls)
        assert counter.nfev == 2 * n

        def func(x):
            return vcalc.gradient(f_rows, x, vectorized=True)

        check(benchmark, func(x), grad_f(x), RTOL["central"])
    else:
        stack = np.array(axis_points(x, "central"))  # (2n, n), prebuilt

        def func(x):
            return f_rows(stack)

    benchmark(func, x)


# ---------------------------------------------------------------------------
# 3. Hessian of a cheap Python f, central order 2
# ---------------------------------------------------------------------------

HESSIAN_IMPLS = ["vcalc", "floor", "numdifftools", "scipy.differentiate"]


@pytest.mark.parametrize(
    "n, impl",
    grouped("hessian-central-n={0}", [(n, impl) for n in (2, 10, 50) for impl in HESSIAN_IMPLS]),
)
def test_hessian(benchmark, n, impl):
    x = point(n)
    want = hess_f(x)
    if impl == "vcalc":
        func, rtol = (lambda x: vcalc.hessian(f, x)), RTOL_HESSIAN
        counter = Counter(f)
        vcalc.hessian(counter, x)
        assert counter.nfev == n * n + n + 1
    elif impl == "floor":
        pts = hessian_points(x)
        func, rtol = (lambda x: floor(f, pts)), None
        counter = Counter(f)
        floor(counter, pts)
        assert counter.nfev == n * n + n + 1
    elif impl == "numdifftools":
        if n > 10:
            pytest.skip("numdifftools.Hessian at n=50: too slow (default Richardson steps)")
        nd = numdifftools()
        func, rtol = nd.Hessian(f), RTOL["numdifftools"]
        counter = Counter(f)
        nd.Hessian(counter)(x)
    elif impl == "scipy.differentiate":
        hessian = scipy_differentiate().hessian
        func, rtol = (lambda x: hessian(f_leading, x).ddf), RTOL["central"]
        counter = Counter(f_leading, points_of(impl))
        hessian(counter, x)
    else:
        raise AssertionError(impl)
    benchmark.extra_info.update(nfev=counter.nfev, calls=counter.calls)
    if rtol is not None:
        check(benchmark, func(x), want, rtol)
    benchmark(func, x)


# ---------------------------------------------------------------------------
# 4. Richardson extrapolation: accuracy and its price
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, impl",
    grouped(
        "gradient-richardson-n={0}",
        [(n, impl) for n in (2, 10, 100) for impl in ("vcalc", "numdifftools")],
    ),
)
def test_gradient_richardson(benchmark, n, impl):
    x = data((n,), seed=n).copy()  # sd 3: several periods of sin
    if impl == "vcalc":

        def func(x):
            return vcalc.gradient(f_smooth, x, method="richardson")

        def counted(c):
            return vcalc.gradient(c, x, method="richardson")

        rtol = RTOL_RICHARDSON[n]
    else:
        nd = numdifftools()
        func = nd.Gradient(f_smooth)

        def counted(c):
            return nd.Gradient(c)(x)

        rtol = RTOL["numdifftools"]
    counter = Counter(f_smooth)
    counted(counter)
    benchmark.extra_info.update(nfev=counter.nfev, calls=counter.calls)
    check(benchmark, func(x), grad_smooth(x), rtol)
    benchmark(func, x)
