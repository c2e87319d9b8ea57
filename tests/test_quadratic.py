"""Quadratic forms and least squares against the big-three identities.

Closed forms are written out here with NumPy (``einsum``, ``@``) and never
produced by vcalc.  Most tests run on both backends through the ``backend``
fixture; ``TestBackendsAgree`` and the hypothesis properties compare the
Cython kernels with the NumPy reference directly.

Tolerances.  ``x^T A x`` is a sum of terms of either sign, so it can cancel:
its rounding error is bounded by a multiple of ``eps`` times the same sum
taken over absolute values (``einsum`` of ``|X|, |A|, |X|``), not by a
multiple of the result.  Every comparison below therefore allows
``tol * bound`` with that bound (and the analogue for gradients and least
squares), where ``tol`` is 1e-12 for float64.
"""

import itertools
import warnings

import numpy as np
import pytest
import scipy.linalg
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import vcalc
from vcalc import reference

# n = 8 and 9 on either side of the unrolled kernels; 9-64 (AVX-512) or 9-32
# (AVX2) run one vectorised pass, above that BLAS (16/17, 32/33 and 64/65:
# where the vectors and the routes change).  test_vexp.py runs the widths on
# every SIMD path this CPU has.
NS = [1, 2, 3, 5, 8, 9, 12, 16, 17, 33, 65]

# (A's batch shape, X's batch shape): shared A, matching batches, the
# matmul-style broadcast (3, 1) x (4,) -> (3, 4), a single x, a single x
# against a stack of A.
BROADCASTS = [((), (6,)), ((5,), (5,)), ((3, 1), (4,)), ((), ()), ((4,), ()), ((2, 1), (1, 3))]

# Property tests: about 50 examples each under the default ("ci") profile of
# conftest.py; a longer profile (VCALC_HYPOTHESIS_PROFILE=long) raises it.
_PROFILE_EXAMPLES = settings.default.max_examples
EXAMPLES = 50 if _PROFILE_EXAMPLES <= 100 else _PROFILE_EXAMPLES


# ---------------------------------------------------------------------------
# Closed forms and error bounds (NumPy only)
# ---------------------------------------------------------------------------


def qf_closed(A, X):
    """x^T A x and (A + A^T) x by einsum, with their absolute-value bounds."""
    A, X = np.asarray(A, np.float64), np.asarray(X, np.float64)
    At = np.swapaxes(A, -1, -2)
    value = np.einsum("...i,...ij,...j->...", X, A, X)
    grad = np.einsum("...ij,...j->...i", A + At, X)
    aA, aX = np.abs(A), np.abs(X)
    vbound = np.einsum("...i,...ij,...j->...", aX, aA, aX)
    gbound = np.einsum("...ij,...j->...i", aA + np.swapaxes(aA, -1, -2), aX)
    return value, grad, vbound, gbound


def lsq_closed(Phi, y, theta, ridge=0.0, mean=False):
    """Loss and gradient of ||y - Phi theta||^2 (/N) + ridge ||theta||^2, and bounds."""
    Phi, y, theta = (np.asarray(v, np.float64) for v in (Phi, y, theta))
    c = 1.0 / Phi.shape[0] if mean else 1.0
    r = y - theta @ Phi.T
    loss = c * np.sum(r**2, axis=-1) + ridge * np.sum(theta**2, axis=-1)
    grad = -2.0 * c * (r @ Phi) + 2.0 * ridge * theta
    rb = np.abs(y) + np.abs(theta) @ np.abs(Phi).T
    lbound = c * np.sum(rb**2, axis=-1) + ridge * np.sum(theta**2, axis=-1)
    gbound = 2.0 * c * (rb @ np.abs(Phi)) + 2.0 * ridge * np.abs(theta)
    return loss, grad, lbound, gbound


def wls_closed(x, A, s, W=None):
    """(x - A s)^T W (x - A s) and -A^T (W + W^T)(x - A s), and bounds."""
    x, A, s = (np.asarray(v, np.float64) for v in (x, A, s))
    W = np.eye(x.shape[0]) if W is None else np.asarray(W, np.float64)
    r = x - s @ A.T
    value = np.einsum("...i,ij,...j->...", r, W, r)
    grad = -np.einsum("ij,...j->...i", A.T @ (W + W.T), r)
    rb = np.abs(x) + np.abs(s) @ np.abs(A).T
    aW = np.abs(W)
    vbound = np.einsum("...i,ij,...j->...", rb, aW, rb)
    gbound = np.einsum("ij,...j->...i", np.abs(A).T @ (aW + aW.T), rb)
    return value, grad, vbound, gbound


def assert_within(actual, expected, bound, tol, *, dtype=None):
    """|actual - expected| <= tol * bound elementwise (bound >= |expected|)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if dtype is not None:
        assert actual.dtype == np.dtype(dtype), (actual.dtype, dtype)
    with np.errstate(invalid="ignore"):  # inf - inf where both overflowed
        err = np.abs(actual.astype(np.float64) - expected)
    allowed = tol * np.asarray(bound, np.float64)
    bad = ~((err <= allowed) | (actual == expected))
    assert not np.any(bad), (
        f"max error {np.max(err)} exceeds tol * bound at {np.argwhere(bad)[0].tolist()}: "
        f"{actual[tuple(np.argwhere(bad)[0])] if actual.ndim else actual} vs "
        f"{expected[tuple(np.argwhere(bad)[0])] if expected.ndim else expected}"
    )


def make_qf(rng, a_batch, x_batch, n, dtype=np.float64):
    A = rng.standard_normal(a_batch + (n, n)).astype(dtype)
    X = rng.standard_normal(x_batch + (n,)).astype(dtype)
    return A, X


def central_diff_grad(f, x, h=1e-5):
    """Gradient of scalar f at x by central differences, one coordinate at a time."""
    x = np.asarray(x, np.float64)
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = h
        g.flat[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


# ---------------------------------------------------------------------------
# Quadratic forms against closed forms
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("a_batch,x_batch", BROADCASTS)
def test_quadratic_form_closed_form(backend, rng, n, a_batch, x_batch):
    A, X = make_qf(rng, a_batch, x_batch, n)
    value, grad, vbound, gbound = qf_closed(A, X)
    batch = np.broadcast_shapes(a_batch, x_batch)
    got = vcalc.quadratic_form(A, X)
    assert np.shape(got) == batch
    assert_within(got, value, vbound, 1e-12, dtype=np.float64)
    assert_within(vcalc.quadratic_form_grad(A, X), grad, gbound, 1e-12, dtype=np.float64)
    v2, g2 = vcalc.quadratic_form_value_and_grad(A, X)
    assert_within(v2, value, vbound, 1e-12, dtype=np.float64)
    assert_within(g2, grad, gbound, 1e-12, dtype=np.float64)


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("a_batch,x_batch", BROADCASTS)
def test_quadratic_form_grad_symmetric(backend, rng, n, a_batch, x_batch):
    A, X = make_qf(rng, a_batch, x_batch, n)
    S = A + np.swapaxes(A, -1, -2)
    expected = 2.0 * np.einsum("...ij,...j->...i", S, X)
    bound = 2.0 * np.einsum("...ij,...j->...i", np.abs(S), np.abs(X))
    got = vcalc.quadratic_form_grad(S, X, symmetric=True)
    assert_within(got, expected, bound, 1e-12, dtype=np.float64)
    # For a symmetric matrix both formulas are the gradient.
    assert_within(vcalc.quadratic_form_grad(S, X), expected, 2 * bound, 1e-12)


def test_quadratic_form_grad_symmetric_is_trusted(backend):
    # symmetric=True computes 2 A x even when A is not symmetric (documented).
    A = np.array([[1.0, 2.0], [0.0, 1.0]])
    x = np.array([1.0, 1.0])
    np.testing.assert_array_equal(vcalc.quadratic_form_grad(A, x, symmetric=True), 2 * A @ x)
    np.testing.assert_array_equal(vcalc.quadratic_form_grad(A, x), (A + A.T) @ x)


def test_quadratic_form_scalar_result_is_numpy_scalar(backend):
    v = vcalc.quadratic_form(np.eye(3), [1.0, 2.0, 3.0])
    assert isinstance(v, np.float64)
    assert v == 14.0
    v, g = vcalc.quadratic_form_value_and_grad(np.eye(3, dtype=np.float32), np.ones(3, np.float32))
    assert isinstance(v, np.float32) and v == 3.0
    assert isinstance(g, np.ndarray) and g.dtype == np.float32


@pytest.mark.parametrize("a_batch,x_batch", BROADCASTS)
def test_value_and_grad_equals_separate_calls(backend, rng, a_batch, x_batch):
    for dtype, n in itertools.product((np.float64, np.float32), (7, 9, 16, 17, 33, 65)):
        A, X = make_qf(rng, a_batch, x_batch, n, dtype)
        v, g = vcalc.quadratic_form_value_and_grad(A, X)
        np.testing.assert_array_equal(v, vcalc.quadratic_form(A, X))
        np.testing.assert_array_equal(g, vcalc.quadratic_form_grad(A, X))


# Every vector width of the shared-matrix kernel (n = 8 v + 1 .. 8 v + 8 for
# v = 1..7 is v + 1 vectors), the float64 BLAS route above n = 32 and the
# float32 one above 64 (in chunks: 2100 rows of 65 are three), full and
# partial blocks of 8 rows.
SHARED_NS = [9, 13, 16, 17, 24, 25, 31, 32, 33, 40, 41, 48, 49, 56, 57, 63, 64, 65, 80]


def assert_rounded_once(got, want, bound, dtype, n):
    """`got` (of `dtype`) is `want` rounded once, after a sum in double.

    Allowed: the double sums' error, (4 n + 8) eps64 * bound, plus for
    float32 one float32 ulp of the result -- far tighter than a sum in
    float32 would be (about n eps32 * bound).
    """
    assert got.dtype == dtype and got.shape == want.shape
    err = np.abs(got.astype(np.float64) - want)
    one_ulp = np.finfo(dtype).eps if dtype == np.float32 else 0.0
    allowed = (4 * n + 8) * np.finfo(np.float64).eps * bound + one_ulp * np.abs(want)
    assert np.all(err <= allowed), float(np.max(err / (allowed + 1e-300)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", SHARED_NS)
def test_shared_matrix_every_width(backend, rng, dtype, n):
    for B in (1, 7, 11, 47) + ((2100,) if n >= 65 else ()):
        A = rng.standard_normal((n, n)).astype(dtype)
        X = (rng.standard_normal((B, n)) * 4).astype(dtype)
        value, grad, vb, gb = qf_closed(A, X)
        v, g = vcalc.quadratic_form_value_and_grad(A, X)
        assert_rounded_once(v, value, vb, dtype, n)
        assert_rounded_once(g, grad, gb, dtype, n)
        np.testing.assert_array_equal(vcalc.quadratic_form(A, X), v)
        np.testing.assert_array_equal(vcalc.quadratic_form_grad(A, X), g)
        S = (A + A.T).astype(dtype)
        gs = vcalc.quadratic_form_grad(S, X, symmetric=True)
        want = 2 * np.einsum("ij,bj->bi", S.astype(np.float64), X.astype(np.float64))
        assert_rounded_once(gs, want, 2 * gb, dtype, n)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [2, 3, 5, 8] + SHARED_NS)
def test_shared_matrix_inf_and_nan_rows(dtype, n):
    # All-inf rows against a positive A have value +inf: the kernels' padding
    # lanes (0 * inf = NaN) must not reach it.  No warning from any route.
    A = np.ones((n, n), dtype)
    X = np.ones((9, n), dtype)
    X[0] = np.inf
    X[1] = -np.inf
    X[2, 0] = -np.inf  # inf - inf: NaN
    X[3, -1] = np.nan
    X[4, n // 2] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v, g = vcalc.quadratic_form_value_and_grad(A, X)
    rv, rg = reference.quadratic_form_value_and_grad(A, X)
    assert v[0] == v[1] == np.inf
    np.testing.assert_array_equal(v, rv)
    np.testing.assert_array_equal(g, rg)


@pytest.mark.parametrize("a_batch", [(), (4,), (2, 3)])
def test_quadratic_form_hessian(backend, rng, a_batch):
    for n in NS:
        A = rng.standard_normal(a_batch + (n, n))
        H = vcalc.quadratic_form_hessian(A)
        assert H.shape == A.shape and H.dtype == np.float64
        # One rounded addition per entry: exact agreement.
        np.testing.assert_array_equal(H, A + np.swapaxes(A, -1, -2))
        np.testing.assert_array_equal(H, np.swapaxes(H, -1, -2))


def test_quadratic_form_gradient_by_central_differences(backend, rng):
    for n in (1, 3, 6):
        A = rng.standard_normal((n, n))
        for _ in range(3):
            x = rng.standard_normal(n)
            numeric = central_diff_grad(lambda z, A=A: float(vcalc.quadratic_form(A, z)), x)
            # f is quadratic, so central differences have no truncation error:
            # only rounding, about eps * |f| / h.
            scale = np.abs(A).sum() * np.max(np.abs(x)) ** 2 + 1.0
            np.testing.assert_allclose(
                vcalc.quadratic_form_grad(A, x), numeric, rtol=0, atol=1e-9 * scale
            )


# ---------------------------------------------------------------------------
# Seed examples 7 and 9
# ---------------------------------------------------------------------------


def test_seed_example_7_quadratic_identity(backend, rng):
    # d(x^T B x)/dx = (B + B^T) x; 2 B x for symmetric B.
    B = np.array([[2.0, 1.0, -1.0], [0.0, 3.0, 4.0], [5.0, -2.0, 1.0]])
    x = np.array([1.0, 2.0, -1.0])
    np.testing.assert_allclose(vcalc.quadratic_form_grad(B, x), (B + B.T) @ x, rtol=1e-15)
    Bs = B + B.T
    np.testing.assert_allclose(
        vcalc.quadratic_form_grad(Bs, x, symmetric=True), 2 * Bs @ x, rtol=1e-15
    )
    np.testing.assert_allclose(vcalc.quadratic_form_grad(Bs, x), 2 * Bs @ x, rtol=1e-15)
    assert float(vcalc.quadratic_form(B, x)) == pytest.approx(x @ B @ x, rel=1e-15)


def test_seed_example_7_weighted_identity(backend, rng):
    # d/ds (x - As)^T W (x - As) = -2 A^T W (x - As) for symmetric W.
    m, k = 6, 3
    x, A, s = rng.standard_normal(m), rng.standard_normal((m, k)), rng.standard_normal(k)
    L = rng.standard_normal((m, m))
    W = L @ L.T
    r = x - A @ s
    value, grad = vcalc.weighted_least_squares(x, A, s, W)
    np.testing.assert_allclose(value, r @ W @ r, rtol=1e-12)
    np.testing.assert_allclose(grad, -2 * A.T @ W @ r, rtol=1e-12, atol=1e-12)
    value, grad = vcalc.weighted_least_squares(x, A, s)
    np.testing.assert_allclose(value, r @ r, rtol=1e-12)
    np.testing.assert_allclose(grad, -2 * A.T @ r, rtol=1e-12, atol=1e-12)


def test_seed_example_9_quadratic_objective(backend, rng):
    # f(x) = x^T A x + b^T x + c, A symmetric positive definite:
    # grad f = 2 A x + b, zero at the solution of 2 A x = -b, Hessian 2 A.
    n = 4
    L = rng.standard_normal((n, n))
    A = L @ L.T + n * np.eye(n)
    b, c = rng.standard_normal(n), 1.5

    def f(x):
        return float(vcalc.quadratic_form(A, x)) + b @ x + c

    for _ in range(3):
        x = rng.standard_normal(n)
        np.testing.assert_allclose(
            vcalc.quadratic_form_grad(A, x, symmetric=True) + b, 2 * A @ x + b, rtol=1e-13
        )
    x_star = np.linalg.solve(2 * A, -b)
    _, g = vcalc.quadratic_form_value_and_grad(A, x_star)
    np.testing.assert_allclose(g + b, 0.0, atol=1e-12)
    H = vcalc.quadratic_form_hessian(A)
    np.testing.assert_allclose(H, 2 * A, rtol=1e-15)
    assert np.all(np.linalg.eigvalsh(H) > 0)
    # A minimum: every step away from x_star increases f.
    for _ in range(5):
        d = rng.standard_normal(n) * 1e-2
        assert f(x_star + d) > f(x_star)


# ---------------------------------------------------------------------------
# Least squares, weighted least squares, normal equations
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("theta_batch", [(), (5,), (2, 3)])
@pytest.mark.parametrize("ridge,mean", [(0.0, False), (0.7, False), (0.0, True), (2.0, True)])
def test_least_squares_closed_form(backend, rng, theta_batch, ridge, mean):
    N, D = 20, 4
    Phi, y = rng.standard_normal((N, D)), rng.standard_normal(N)
    theta = rng.standard_normal(theta_batch + (D,))
    loss, grad, lbound, gbound = lsq_closed(Phi, y, theta, ridge, mean)
    got_loss, got_grad = vcalc.least_squares(Phi, y, theta, ridge=ridge, mean=mean)
    assert np.shape(got_loss) == theta_batch
    assert_within(got_loss, loss, lbound, 1e-12, dtype=np.float64)
    assert_within(got_grad, grad, gbound, 1e-12, dtype=np.float64)
    if theta_batch == ():
        assert isinstance(got_loss, np.float64)


def test_seed_example_4_least_squares(backend, rng):
    # grad L = -2 Phi^T (y - Phi theta); zero at the normal-equations solution.
    N, D = 30, 5
    Phi, y = rng.standard_normal((N, D)), rng.standard_normal(N)
    theta = rng.standard_normal(D)
    _, grad = vcalc.least_squares(Phi, y, theta)
    np.testing.assert_allclose(grad, -2 * Phi.T @ (y - Phi @ theta), rtol=1e-12, atol=1e-12)

    theta_hat = vcalc.normal_equations(Phi, y)
    np.testing.assert_allclose(Phi.T @ Phi @ theta_hat, Phi.T @ y, rtol=1e-10, atol=1e-10)
    _, g0 = vcalc.least_squares(Phi, y, theta_hat)
    np.testing.assert_allclose(g0, 0.0, atol=1e-10)
    # Mean squared error: same minimiser.
    _, gm = vcalc.least_squares(Phi, y, theta_hat, mean=True)
    np.testing.assert_allclose(gm, 0.0, atol=1e-11)

    # Ridge: (Phi^T Phi + lambda I) theta = Phi^T y, and the ridge gradient vanishes.
    lam = 3.0
    theta_r = vcalc.normal_equations(Phi, y, ridge=lam)
    np.testing.assert_allclose(
        (Phi.T @ Phi + lam * np.eye(D)) @ theta_r, Phi.T @ y, rtol=1e-10, atol=1e-10
    )
    _, gr = vcalc.least_squares(Phi, y, theta_r, ridge=lam)
    np.testing.assert_allclose(gr, 0.0, atol=1e-10)
    # A minimum: nearby points have a larger loss.
    loss_r = vcalc.least_squares(Phi, y, theta_r, ridge=lam)[0]
    for _ in range(5):
        d = rng.standard_normal(D) * 1e-3
        assert vcalc.least_squares(Phi, y, theta_r + d, ridge=lam)[0] > loss_r


def test_normal_equations_vs_scipy_lstsq(backend, rng):
    Phi = rng.standard_normal((40, 6))
    y = rng.standard_normal(40)
    Y = rng.standard_normal((40, 3))
    np.testing.assert_allclose(
        vcalc.normal_equations(Phi, y), scipy.linalg.lstsq(Phi, y)[0], rtol=1e-10, atol=1e-12
    )
    got = vcalc.normal_equations(Phi, Y)
    assert got.shape == (6, 3)
    np.testing.assert_allclose(got, scipy.linalg.lstsq(Phi, Y)[0], rtol=1e-10, atol=1e-12)
    # Ridge through the augmented system, solved independently with SciPy.
    lam = 0.5
    aug = np.vstack([Phi, np.sqrt(lam) * np.eye(6)])
    expected = scipy.linalg.lstsq(aug, np.concatenate([y, np.zeros(6)]))[0]
    np.testing.assert_allclose(
        vcalc.normal_equations(Phi, y, ridge=lam), expected, rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("shape", [(20, 5), (3, 6)])
def test_normal_equations_rank_deficient_min_norm(backend, rng, shape):
    # A repeated column (exact rank deficiency) or N < D: infinitely many
    # minimisers; the documented choice is the minimum-norm one.
    N, D = shape
    Phi = rng.standard_normal((N, D))
    if N >= D:
        Phi[:, 2] = Phi[:, 0]
    y = rng.standard_normal(N)
    got = vcalc.normal_equations(Phi, y)
    expected = scipy.linalg.lstsq(Phi, y)[0]  # SciPy's gelsd: minimum norm
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(got, np.linalg.pinv(Phi) @ y, rtol=1e-8, atol=1e-10)
    # It is a minimiser (zero gradient) ...
    np.testing.assert_allclose(vcalc.least_squares(Phi, y, got)[1], 0.0, atol=1e-9)
    # ... and no other minimiser is shorter: adding a null-space direction
    # keeps the loss but lengthens theta.
    null = scipy.linalg.null_space(Phi)[:, 0]
    other = got + 0.3 * null
    np.testing.assert_allclose(
        vcalc.least_squares(Phi, y, other)[0],
        vcalc.least_squares(Phi, y, got)[0],
        rtol=1e-9,
        atol=1e-12 * (y @ y),  # N < D: both losses are 0 up to rounding
    )
    assert np.linalg.norm(other) > np.linalg.norm(got)


def test_least_squares_gradient_by_central_differences(backend, rng):
    N, D = 12, 4
    Phi, y = rng.standard_normal((N, D)), rng.standard_normal(N)
    for ridge, mean in [(0.0, False), (0.8, True)]:
        for _ in range(3):
            theta = rng.standard_normal(D)
            numeric = central_diff_grad(
                lambda t, r=ridge, m=mean: float(
                    vcalc.least_squares(Phi, y, t, ridge=r, mean=m)[0]
                ),
                theta,
            )
            _, grad = vcalc.least_squares(Phi, y, theta, ridge=ridge, mean=mean)
            np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("s_batch", [(), (6,), (2, 3)])
@pytest.mark.parametrize("weight", ["none", "spd", "general"])
def test_weighted_least_squares_closed_form(backend, rng, s_batch, weight):
    m, k = 7, 3
    x, A = rng.standard_normal(m), rng.standard_normal((m, k))
    s = rng.standard_normal(s_batch + (k,))
    L = rng.standard_normal((m, m))
    W = {"none": None, "spd": L @ L.T, "general": L}[weight]
    value, grad, vbound, gbound = wls_closed(x, A, s, W)
    got_v, got_g = vcalc.weighted_least_squares(x, A, s, W)
    assert np.shape(got_v) == s_batch and got_g.shape == s.shape
    assert_within(got_v, value, vbound, 1e-12, dtype=np.float64)
    assert_within(got_g, grad, gbound, 1e-12, dtype=np.float64)


def test_weighted_least_squares_nonsymmetric_w_gradient(backend, rng):
    # A non-symmetric W gets its true gradient -A^T (W + W^T) r, which is not
    # -2 A^T W r; checked by central differences.
    m, k = 5, 2
    x, A, s = rng.standard_normal(m), rng.standard_normal((m, k)), rng.standard_normal(k)
    W = np.triu(rng.standard_normal((m, m)))
    numeric = central_diff_grad(lambda t: float(vcalc.weighted_least_squares(x, A, t, W)[0]), s)
    _, grad = vcalc.weighted_least_squares(x, A, s, W)
    np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-7)
    r = x - A @ s
    assert not np.allclose(grad, -2 * A.T @ W @ r)


# ---------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------


def _all_calls(dtype_a, dtype_b, rng):
    """One call of every function with its first array in dtype_a, the rest dtype_b."""
    n, N, D = 4, 9, 3
    A = (rng.standard_normal((2, n, n)) * 4).astype(dtype_a)
    X = (rng.standard_normal((2, n)) * 4).astype(dtype_b)
    Phi = (rng.standard_normal((N, D)) * 4).astype(dtype_a)
    y = (rng.standard_normal(N) * 4).astype(dtype_b)
    th = (rng.standard_normal((2, D)) * 4).astype(dtype_b)
    xw = (rng.standard_normal(N) * 4).astype(dtype_a)
    W = np.eye(N).astype(dtype_b) * 2
    return {
        "quadratic_form": ((A, X), {}),
        "quadratic_form_grad": ((A, X), {}),
        "quadratic_form_value_and_grad": ((A, X), {}),
        "quadratic_form_hessian": ((A,), {}),
        "least_squares": ((Phi, y, th), {"ridge": 0.5}),
        "weighted_least_squares": ((xw, Phi, th, W), {}),
        "normal_equations": ((Phi, y), {"ridge": 0.1}),
    }


def _outputs(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize(
    "dtype_a,dtype_b,expected",
    [
        (np.float64, np.float64, np.float64),
        (np.float32, np.float32, np.float32),
        (np.float16, np.float16, np.float16),
        (np.float32, np.float64, np.float64),
        (np.float16, np.float32, np.float32),
        (np.int64, np.int64, np.float64),
        (np.int32, np.float32, np.float64),
        (np.bool_, np.bool_, np.float64),
    ],
)
def test_result_dtypes(backend, rng, dtype_a, dtype_b, expected):
    for name, (args, kwargs) in _all_calls(dtype_a, dtype_b, rng).items():
        if name == "quadratic_form_hessian":
            want = np.float64 if np.dtype(dtype_a).kind in "iub" else dtype_a
        else:
            want = expected
        for out in _outputs(getattr(vcalc, name)(*args, **kwargs)):
            assert np.asarray(out).dtype == np.dtype(want), (name, out.dtype, want)


class TestBackendsAgree:
    """The Cython kernels against the NumPy reference, in value and dtype."""

    # Result dtype -> tolerance relative to the absolute-value bound: a few
    # hundred ulp of headroom (the kernels round once from double; float16
    # is rounded through float32).
    TOL = {np.float64: 1e-12, np.float32: 1e-5, np.float16: 4e-3}

    @staticmethod
    def _both(name, *args, **kwargs):
        with vcalc.use_backend("cython"):
            fast = getattr(vcalc, name)(*args, **kwargs)
        with vcalc.use_backend("numpy"):
            ref = getattr(vcalc, name)(*args, **kwargs)
        return _outputs(fast), _outputs(ref)

    def _check(self, name, bounds, *args, **kwargs):
        fast, ref = self._both(name, *args, **kwargs)
        assert len(fast) == len(ref) == len(bounds)
        for f, r, b in zip(fast, ref, bounds, strict=True):
            assert type(f) is type(r)
            f, r = np.asarray(f), np.asarray(r)
            assert f.dtype == r.dtype and f.shape == r.shape
            assert_within(f, r, b, self.TOL[r.dtype.type])

    @pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int64])
    @pytest.mark.parametrize("n", NS)
    @pytest.mark.parametrize("a_batch,x_batch", BROADCASTS)
    def test_quadratic(self, rng, dtype, n, a_batch, x_batch):
        A, X = make_qf(rng, a_batch, x_batch, n)
        A, X = (A * 3).astype(dtype), (X * 3).astype(dtype)
        _, _, vb, gb = qf_closed(A, X)
        self._check("quadratic_form", [vb], A, X)
        self._check("quadratic_form_grad", [gb], A, X)
        S = A + np.swapaxes(A, -1, -2)
        _, _, _, gbs = qf_closed(S, X)
        self._check("quadratic_form_grad", [gbs], S, X, symmetric=True)
        self._check("quadratic_form_value_and_grad", [vb, gb], A, X)
        self._check("quadratic_form_hessian", [np.abs(A) + np.abs(np.swapaxes(A, -1, -2))], A)

    @pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
    def test_least_squares(self, rng, dtype):
        Phi = rng.standard_normal((15, 4)).astype(dtype)
        y = rng.standard_normal(15).astype(dtype)
        theta = rng.standard_normal((3, 4)).astype(dtype)
        for ridge, mean in [(0.0, False), (1.5, True)]:
            _, _, lb, gb = lsq_closed(Phi, y, theta, ridge, mean)
            self._check("least_squares", [lb, gb], Phi, y, theta, ridge=ridge, mean=mean)
        x, A = y[:6], Phi[:6]
        for W in (None, np.outer(x, x).astype(dtype) + np.eye(6, dtype=dtype)):
            _, _, vb, gb = wls_closed(x, A, theta, W)
            self._check("weighted_least_squares", [vb, gb], x, A, theta, W)

    @pytest.mark.parametrize("dtype", [np.float64, np.float32])
    def test_normal_equations(self, rng, dtype):
        Phi = rng.standard_normal((25, 4)).astype(dtype)
        Y = rng.standard_normal((25, 2)).astype(dtype)
        for ridge in (0.0, 0.3):
            fast, ref = self._both("normal_equations", Phi, Y, ridge=ridge)
            assert fast[0].dtype == ref[0].dtype == np.dtype(dtype)
            # Well-conditioned Phi: both solves agree to the dtype's precision.
            scale = np.max(np.abs(ref[0])) * np.linalg.cond(Phi.astype(np.float64))
            assert_within(fast[0], ref[0], scale, self.TOL[np.dtype(dtype).type])


# ---------------------------------------------------------------------------
# Property tests (hypothesis): kernels vs reference over broadcast shapes
# ---------------------------------------------------------------------------


@st.composite
def qf_problems(draw, max_abs=1e3, dtypes=(np.float32, np.float64), x_max_abs=None):
    dtype = draw(st.sampled_from(dtypes))
    # mostly small n (the unrolled kernels, and where edge cases are dense),
    # sometimes the vectorised widths and the BLAS routes
    n = draw(st.one_of(st.integers(0, 5), st.sampled_from([9, 16, 17, 33, 65])))
    shapes = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)
    )
    a_batch, x_batch = shapes.input_shapes
    width = 32 if dtype == np.float32 else 64
    x_max_abs = max_abs if x_max_abs is None else x_max_abs

    def elements(bound):
        return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=width)

    A = draw(hnp.arrays(dtype, a_batch + (n, n), elements=elements(max_abs)))
    X = draw(hnp.arrays(dtype, x_batch + (n,), elements=elements(x_max_abs)))
    return A, X


def _check_qf_property(A, X):
    n = A.shape[-1]
    dtype = A.dtype
    # Rounding error bound of both paths (plain sums in double, the reference
    # in float64, each rounded once to dtype), plus underflow: each of the n*n
    # products a_ij * x_j may underflow (absolute error below the smallest
    # subnormal), and the value then multiplies that error by x_i, so the
    # value's floor grows with max|x|. Which products underflow depends on the
    # order of evaluation, so the two paths may differ by that much.
    tol = 1e-12 if dtype == np.float64 else 1e-5
    info = np.finfo(dtype)
    x_max = float(np.max(np.abs(X), initial=0.0))
    floor = (n * n + 1) * (info.tiny + float(info.smallest_subnormal) * x_max)
    _, _, vb, gb = qf_closed(A, X)
    for name, bounds in [
        ("quadratic_form", [vb]),
        ("quadratic_form_grad", [gb]),
        ("quadratic_form_value_and_grad", [vb, gb]),
    ]:
        with vcalc.use_backend("cython"):
            fast = _outputs(getattr(vcalc, name)(A, X))
        ref = _outputs(getattr(reference, name)(A, X))
        for f, r, b in zip(fast, ref, bounds, strict=True):
            assert np.asarray(f).dtype == np.asarray(r).dtype == dtype
            assert np.shape(f) == np.shape(r)
            assert_within(f, r, np.asarray(b) + floor / tol, tol)


@settings(max_examples=EXAMPLES, deadline=None)
@given(qf_problems())
def test_property_quadratic_kernels_match_reference(problem):
    _check_qf_property(*problem)


@settings(max_examples=max(30, EXAMPLES // 2), deadline=None)
@given(qf_problems(max_abs=1.0, dtypes=(np.float64,), x_max_abs=1e150))
@example((np.array([[1.0, -1.0], [1.0, 1.0]]), np.array([1e150, -1e150])))
# Found by CI: a*x0 underflows to 0 and is then multiplied by x1 ~ 1e135, so the
# shared-matrix kernel (x.(A + A^T)x / 2) and the reference differ by 1e-307.
@example(
    (
        np.array([[1.68072601e-221, 1.68072601e-221], [0.0, 0.0]]),
        np.array([1.68072601e-221, 7.87681396e134]),
    )
)
def test_property_quadratic_large_entries(problem):
    # |x| up to 1e150 and |A| <= 1: products up to 25e300 stay finite.
    A, X = problem
    _check_qf_property(A, X)
    with vcalc.use_backend("cython"):
        assert np.all(np.isfinite(vcalc.quadratic_form(A, X)))


@st.composite
def lsq_problems(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    width = 32 if dtype == np.float32 else 64
    N, D = draw(st.integers(1, 6)), draw(st.integers(0, 4))
    theta_batch = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    el = st.floats(-1e3, 1e3, allow_nan=False, width=width)
    Phi = draw(hnp.arrays(dtype, (N, D), elements=el))
    y = draw(hnp.arrays(dtype, (N,), elements=el))
    theta = draw(hnp.arrays(dtype, theta_batch + (D,), elements=el))
    ridge = draw(st.sampled_from([0.0, 0.25, 3.0]))
    mean = draw(st.booleans())
    return Phi, y, theta, ridge, mean


@settings(max_examples=EXAMPLES, deadline=None)
@given(lsq_problems())
def test_property_least_squares_kernels_match_reference(problem):
    Phi, y, theta, ridge, mean = problem
    tol = 1e-12 if Phi.dtype == np.float64 else 1e-5
    floor = 100 * np.finfo(Phi.dtype).tiny
    _, _, lb, gb = lsq_closed(Phi, y, theta, ridge, mean)
    with vcalc.use_backend("cython"):
        fast = vcalc.least_squares(Phi, y, theta, ridge=ridge, mean=mean)
    ref = reference.least_squares(Phi, y, theta, ridge=ridge, mean=mean)
    for f, r, b in zip(fast, ref, (lb, gb), strict=True):
        assert np.asarray(f).dtype == np.asarray(r).dtype == Phi.dtype
        assert_within(f, r, np.asarray(b) + floor / tol, tol)


# ---------------------------------------------------------------------------
# Layouts, no writeback, empty input
# ---------------------------------------------------------------------------


def _awkward(a, kind):
    """The same values as `a` in an awkward layout."""
    if kind == "readonly":
        out = a.copy()
        out.flags.writeable = False
        return out
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "strided":
        big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
        view = big[tuple(slice(None, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if kind == "byteswapped":
        return a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder in "=<" else "<"))
    if kind == "transposed":
        return np.ascontiguousarray(a.T).T
    raise ValueError(kind)


def _calls(rng):
    n, N, D, m, k = 5, 8, 3, 6, 2
    A = rng.standard_normal((n, n))
    As = rng.standard_normal((3, n, n))
    X = rng.standard_normal((4, n))
    Xb = rng.standard_normal((3, n))
    Phi, y, th = rng.standard_normal((N, D)), rng.standard_normal(N), rng.standard_normal((4, D))
    x, Aw, s, W = (
        rng.standard_normal(m),
        rng.standard_normal((m, k)),
        rng.standard_normal((5, k)),
        rng.standard_normal((m, m)),
    )
    return [
        ("quadratic_form", (A, X), {}),
        ("quadratic_form", (As, Xb), {}),
        ("quadratic_form_grad", (A, X), {}),
        ("quadratic_form_grad", (As, Xb), {"symmetric": True}),
        ("quadratic_form_value_and_grad", (As, Xb), {}),
        ("quadratic_form_hessian", (As,), {}),
        ("least_squares", (Phi, y, th), {"ridge": 0.5, "mean": True}),
        ("weighted_least_squares", (x, Aw, s, W), {}),
        ("weighted_least_squares", (x, Aw, s), {}),
        ("normal_equations", (Phi, y), {"ridge": 0.5}),
    ]


@pytest.mark.parametrize("kind", ["readonly", "fortran", "strided", "byteswapped", "transposed"])
def test_awkward_layouts_no_writeback(backend, rng, kind):
    for name, args, kwargs in _calls(rng):
        expected = _outputs(getattr(vcalc, name)(*args, **kwargs))
        odd = [_awkward(a, kind) for a in args]
        before = [a.copy() for a in odd]
        got = _outputs(getattr(vcalc, name)(*odd, **kwargs))
        for g, e in zip(got, expected, strict=True):
            if backend == "cython":
                # The kernels see the same contiguous data: the same bits.
                np.testing.assert_array_equal(g, e)
            else:
                # BLAS may sum in another order for another memory layout.
                np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12 * np.max(np.abs(e)))
            assert np.asarray(g).dtype.isnative
        for a, b in zip(odd, before, strict=True):
            np.testing.assert_array_equal(a, b)  # inputs untouched
            assert a.dtype == b.dtype
        if kind == "readonly":
            assert not any(a.flags.writeable for a in odd)


def test_outputs_do_not_alias_inputs(backend, rng):
    for name, args, kwargs in _calls(rng):
        for out in _outputs(getattr(vcalc, name)(*args, **kwargs)):
            for a in args:
                assert not np.shares_memory(out, a), name


@pytest.mark.parametrize(
    "a_batch,x_batch", [((), (0,)), ((0,), (0,)), ((0, 1), (3,)), ((2,), (0, 1))]
)
def test_empty_batch(backend, a_batch, x_batch):
    A, X = np.ones(a_batch + (3, 3)), np.ones(x_batch + (3,))
    batch = np.broadcast_shapes(a_batch, x_batch)
    assert vcalc.quadratic_form(A, X).shape == batch
    assert vcalc.quadratic_form_grad(A, X).shape == batch + (3,)
    assert vcalc.quadratic_form_grad(A, X, symmetric=True).shape == batch + (3,)
    v, g = vcalc.quadratic_form_value_and_grad(A, X)
    assert v.shape == batch and g.shape == batch + (3,)
    assert vcalc.quadratic_form_hessian(A).shape == A.shape


def test_zero_dimension(backend):
    A, X = np.ones((0, 0)), np.ones((4, 0))
    v = vcalc.quadratic_form(A, X)
    np.testing.assert_array_equal(v, np.zeros(4))
    assert vcalc.quadratic_form_grad(A, X).shape == (4, 0)
    v, g = vcalc.quadratic_form_value_and_grad(np.ones((2, 0, 0)), np.ones((0,)))
    np.testing.assert_array_equal(v, np.zeros(2))
    assert g.shape == (2, 0)
    assert float(vcalc.quadratic_form(A, np.ones(0))) == 0.0
    assert vcalc.quadratic_form_hessian(np.ones((3, 0, 0))).shape == (3, 0, 0)


def test_least_squares_degenerate_sizes(backend):
    # D = 0: the loss is ||y||^2, the gradient empty.
    loss, grad = vcalc.least_squares(np.ones((3, 0)), [1.0, 2.0, 2.0], np.ones((2, 0)))
    np.testing.assert_array_equal(loss, [9.0, 9.0])
    assert grad.shape == (2, 0)
    # N = 0: only the ridge term is left.
    loss, grad = vcalc.least_squares(np.ones((0, 2)), np.ones(0), [1.0, 2.0], ridge=0.5)
    assert float(loss) == 2.5
    np.testing.assert_array_equal(grad, [1.0, 2.0])
    # Empty batch of theta.
    loss, grad = vcalc.least_squares(np.ones((3, 2)), np.ones(3), np.ones((0, 2)))
    assert loss.shape == (0,) and grad.shape == (0, 2)
    # Weighted: m = 0 and k = 0.
    value, grad = vcalc.weighted_least_squares(np.ones(0), np.ones((0, 2)), [1.0, 1.0])
    assert float(value) == 0.0
    np.testing.assert_array_equal(grad, [0.0, 0.0])
    value, grad = vcalc.weighted_least_squares([3.0, 4.0], np.ones((2, 0)), np.ones(0), np.eye(2))
    assert float(value) == 25.0 and grad.shape == (0,)
    value, grad = vcalc.weighted_least_squares(
        np.ones(0), np.ones((0, 2)), [1.0, 1.0], np.ones((0, 0))
    )
    assert float(value) == 0.0
    np.testing.assert_array_equal(grad, [0.0, 0.0])
    # Normal equations: no data gives theta = 0 (minimum norm); D = 0 gives empty.
    np.testing.assert_array_equal(vcalc.normal_equations(np.ones((0, 3)), np.ones(0)), np.zeros(3))
    assert vcalc.normal_equations(np.ones((4, 0)), np.ones((4, 2))).shape == (0, 2)


# ---------------------------------------------------------------------------
# Errors: one test per message
# ---------------------------------------------------------------------------


def test_error_A_not_matrix(backend):
    with pytest.raises(
        ValueError, match=r"`A` must have shape \(n, n\) or \(\.\.\., n, n\); got shape \(3,\)"
    ):
        vcalc.quadratic_form(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"`A` must have shape .*got shape \(\)"):
        vcalc.quadratic_form_hessian(2.0)


def test_error_A_not_square(backend):
    with pytest.raises(ValueError, match=r"`A` must be square .*got shape \(2, 3\)"):
        vcalc.quadratic_form_grad(np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match=r"`A` must be square .*got shape \(4, 2, 3\)"):
        vcalc.quadratic_form_hessian(np.ones((4, 2, 3)))


def test_error_X_zero_dim(backend):
    with pytest.raises(
        ValueError, match=r"`X` must have shape \(\.\.\., 1\) to match `A`; got a 0-d array"
    ):
        vcalc.quadratic_form(np.ones((1, 1)), 2.0)


def test_error_X_wrong_length(backend):
    with pytest.raises(
        ValueError,
        match=(
            r"`X` must have shape \(\.\.\., 3\) to match `A` of shape \(3, 3\)"
            r"; got shape \(5, 2\)"
        ),
    ):
        vcalc.quadratic_form_value_and_grad(np.eye(3), np.ones((5, 2)))


def test_error_batch_shapes_do_not_broadcast(backend):
    with pytest.raises(
        ValueError, match=r"batch shapes of `A` and `X` must broadcast .*\(2,\).*\(3,\)"
    ):
        vcalc.quadratic_form(np.ones((2, 3, 3)), np.ones((3, 3)))


@pytest.mark.parametrize("bad", [1, "yes", None, 1.0])
def test_error_symmetric_not_bool(backend, bad):
    with pytest.raises(TypeError, match=r"`symmetric` must be True or False"):
        vcalc.quadratic_form_grad(np.eye(2), np.ones(2), symmetric=bad)


@pytest.mark.parametrize("name", ["A", "X"])
def test_error_complex_quadratic(backend, name):
    args = {"A": np.eye(2), "X": np.ones(2)}
    args[name] = args[name] + 1j
    with pytest.raises(TypeError, match=rf"`{name}` must be real; got complex"):
        vcalc.quadratic_form(**args)


@pytest.mark.parametrize("name", ["Phi", "y", "theta"])
def test_error_complex_least_squares(backend, name):
    args = {"Phi": np.ones((3, 2)), "y": np.ones(3), "theta": np.ones(2)}
    args[name] = args[name] * (1 + 1j)
    with pytest.raises(TypeError, match=rf"`{name}` must be real; got complex"):
        vcalc.least_squares(**args)


def test_error_non_numeric(backend):
    with pytest.raises(TypeError, match=r"`X` must be an array of real numbers; got str"):
        vcalc.quadratic_form(np.eye(2), "ab")


def test_error_phi_not_2d(backend):
    with pytest.raises(
        ValueError, match=r"`Phi` must be a 2-d array of shape \(N, D\); got shape \(3,\)"
    ):
        vcalc.least_squares(np.ones(3), np.ones(3), np.ones(1))
    with pytest.raises(ValueError, match=r"`Phi` must be a 2-d array .*got shape \(2, 3, 4\)"):
        vcalc.normal_equations(np.ones((2, 3, 4)), np.ones(2))


def test_error_y_wrong_shape_least_squares(backend):
    with pytest.raises(
        ValueError,
        match=(
            r"`y` must have shape \(N,\) = \(4,\) to match `Phi` of shape \(4, 2\)"
            r"; got shape \(4, 1\)"
        ),
    ):
        vcalc.least_squares(np.ones((4, 2)), np.ones((4, 1)), np.ones(2))


def test_error_theta_wrong_shape(backend):
    with pytest.raises(
        ValueError,
        match=r"`theta` must have shape \(D,\) or \(\.\.\., D\) with D = 2 .*got shape \(3, 3\)",
    ):
        vcalc.least_squares(np.ones((4, 2)), np.ones(4), np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"`theta` must have shape .*got shape \(\)"):
        vcalc.least_squares(np.ones((4, 2)), np.ones(4), 1.0)


def test_error_mean_without_rows(backend):
    with pytest.raises(
        ValueError, match=r"`mean=True` needs at least one row in `Phi` \(N >= 1\); got N = 0"
    ):
        vcalc.least_squares(np.ones((0, 2)), np.ones(0), np.ones(2), mean=True)


@pytest.mark.parametrize("bad", [1, 0, "true", None])
def test_error_mean_not_bool(backend, bad):
    with pytest.raises(TypeError, match=r"`mean` must be True or False"):
        vcalc.least_squares(np.ones((3, 2)), np.ones(3), np.ones(2), mean=bad)


@pytest.mark.parametrize("func", ["least_squares", "normal_equations"])
@pytest.mark.parametrize("bad", [True, np.bool_(False), 1j, "1.0", None, np.array([1.0])])
def test_error_ridge_not_real(backend, func, bad):
    args = (np.ones((3, 2)), np.ones(3)) + ((np.ones(2),) if func == "least_squares" else ())
    with pytest.raises(TypeError, match=r"`ridge` must be a real number; got"):
        getattr(vcalc, func)(*args, ridge=bad)


@pytest.mark.parametrize("func", ["least_squares", "normal_equations"])
@pytest.mark.parametrize("bad", [-1.0, -1e-300, np.nan, np.inf, -np.inf, 10**400])
def test_error_ridge_bad_value(backend, func, bad):
    args = (np.ones((3, 2)), np.ones(3)) + ((np.ones(2),) if func == "least_squares" else ())
    with pytest.raises(ValueError, match=r"`ridge` must be finite and >= 0; got"):
        getattr(vcalc, func)(*args, ridge=bad)


def test_ridge_accepts_numpy_and_int_scalars(backend):
    Phi, y = np.ones((3, 2), np.float32), np.ones(3, np.float32)
    for ridge in (1, np.int64(1), np.float64(1.0), np.float32(1.0)):
        loss, grad = vcalc.least_squares(Phi, y, np.ones(2, np.float32), ridge=ridge)
        # A NumPy float64 ridge must not promote float32 results.
        assert loss.dtype == grad.dtype == np.float32
        assert float(loss) == 3 + 2  # ||1 - 2||^2 * 3 + 1 * ||theta||^2
        assert vcalc.normal_equations(Phi, y, ridge=ridge).dtype == np.float32


def test_error_y_wrong_shape_normal_equations(backend):
    msg = (
        r"`y` must have shape \(N,\) or \(N, K\) with N = 4 to match `Phi` of shape \(4, 2\)"
        r"; got shape"
    )
    with pytest.raises(ValueError, match=msg + r" \(3,\)"):
        vcalc.normal_equations(np.ones((4, 2)), np.ones(3))
    with pytest.raises(ValueError, match=msg + r" \(4, 1, 1\)"):
        vcalc.normal_equations(np.ones((4, 2)), np.ones((4, 1, 1)))
    with pytest.raises(ValueError, match=msg + r" \(\)"):
        vcalc.normal_equations(np.ones((4, 2)), 1.0)


def test_error_weighted_x_not_vector(backend):
    with pytest.raises(ValueError, match=r"`x` must be 1-d, shape \(m,\); got shape \(2, 2\)"):
        vcalc.weighted_least_squares(np.ones((2, 2)), np.ones((2, 2)), np.ones(2))


def test_error_weighted_A_shape(backend):
    with pytest.raises(
        ValueError,
        match=(
            r"`A` must have shape \(m, k\) with m = 3 to match `x` of shape \(3,\)"
            r"; got shape \(2, 2\)"
        ),
    ):
        vcalc.weighted_least_squares(np.ones(3), np.ones((2, 2)), np.ones(2))


def test_error_weighted_s_shape(backend):
    with pytest.raises(
        ValueError,
        match=(
            r"`s` must have shape \(k,\) or \(\.\.\., k\) with k = 2 to match `A` of shape \(3, 2\)"
            r"; got shape \(4, 3\)"
        ),
    ):
        vcalc.weighted_least_squares(np.ones(3), np.ones((3, 2)), np.ones((4, 3)))


def test_error_weighted_W_shape(backend):
    with pytest.raises(
        ValueError,
        match=(
            r"`W` must have shape \(m, m\) = \(3, 3\) to match `x` of shape \(3,\)"
            r"; got shape \(3,\)"
        ),
    ):
        vcalc.weighted_least_squares(np.ones(3), np.ones((3, 2)), np.ones(2), np.ones(3))


def test_error_weighted_W_complex(backend):
    with pytest.raises(TypeError, match=r"`W` must be real; got complex"):
        vcalc.weighted_least_squares(np.ones(2), np.ones((2, 1)), np.ones(1), np.eye(2) * 1j)


def test_unaligned_operands_match_aligned(backend):
    rng = np.random.default_rng(8)
    for n in (2, 8, 20):
        A = rng.standard_normal((n, n))
        X = rng.standard_normal((37, n))
        bufs = []
        for arr in (A, X):
            buf = np.zeros(arr.nbytes + 1, np.uint8)
            u = np.frombuffer(buf.data, dtype=arr.dtype, count=arr.size, offset=1)
            u = u.reshape(arr.shape)
            u[...] = arr
            assert not u.flags.aligned
            bufs.append(u)
        v, g = vcalc.quadratic_form_value_and_grad(*bufs)
        v0, g0 = vcalc.quadratic_form_value_and_grad(A, X)
        if backend == "cython":  # copied to aligned memory: the same kernel
            np.testing.assert_array_equal(v, v0)
            np.testing.assert_array_equal(g, g0)
        else:  # NumPy may pick another matmul loop for unaligned data
            np.testing.assert_allclose(v, v0, rtol=1e-13, atol=1e-13)
            np.testing.assert_allclose(g, g0, rtol=1e-13, atol=1e-13)
