"""Finite-difference stencils (exact weights) and step rules."""

from fractions import Fraction
from itertools import product
from math import factorial

import numpy as np
import pytest

from vcalc._stencils import METHODS, ORDERS, Stencil, mixed_stencil, stencil
from vcalc._steps import COMPLEX_STEP, absolute_step, default_step

ALL = [(m, p, d) for m in METHODS for p in ORDERS[m] for d in (1, 2)]
EPS = np.finfo(np.float64).eps


def as_dict(s: Stencil) -> dict[int, Fraction]:
    return dict(zip(s.offsets, s.exact, strict=True))


# ---------------------------------------------------------------------------
# Known tables
# ---------------------------------------------------------------------------

F = Fraction


@pytest.mark.parametrize(
    ("method", "order", "deriv", "table"),
    [
        ("forward", 1, 1, {0: F(-1), 1: F(1)}),
        ("forward", 2, 1, {0: F(-3, 2), 1: F(2), 2: F(-1, 2)}),
        ("forward", 1, 2, {0: F(1), 1: F(-2), 2: F(1)}),
        ("central", 2, 1, {-1: F(-1, 2), 1: F(1, 2)}),
        ("central", 4, 1, {-2: F(1, 12), -1: F(-2, 3), 1: F(2, 3), 2: F(-1, 12)}),
        ("central", 2, 2, {-1: F(1), 0: F(-2), 1: F(1)}),
        (
            "central",
            4,
            2,
            {-2: F(-1, 12), -1: F(4, 3), 0: F(-5, 2), 1: F(4, 3), 2: F(-1, 12)},
        ),
    ],
)
def test_known_tables(method, order, deriv, table):
    s = stencil(method, order, deriv)
    assert as_dict(s) == table
    assert all(isinstance(w, Fraction) for w in s.exact)
    assert s.weights == tuple(float(w) for w in s.exact)
    assert list(s.offsets) == sorted(s.offsets)
    assert (s.method, s.order, s.deriv) == (method, order, deriv)


@pytest.mark.parametrize("order", ORDERS["forward"])
@pytest.mark.parametrize("deriv", [1, 2])
def test_backward_is_mirror_of_forward(order, deriv):
    fwd = as_dict(stencil("forward", order, deriv))
    bwd = as_dict(stencil("backward", order, deriv))
    assert bwd == {-o: w * (-1) ** deriv for o, w in fwd.items()}


@pytest.mark.parametrize("order", ORDERS["central"])
@pytest.mark.parametrize("deriv", [1, 2])
def test_central_symmetry(order, deriv):
    table = as_dict(stencil("central", order, deriv))
    assert all(table[-o] == (-1) ** deriv * w for o, w in table.items())


# ---------------------------------------------------------------------------
# Exactness: polynomial degree exactly order + deriv - 1
# ---------------------------------------------------------------------------


def moment_residual(s: Stencil, j: int) -> Fraction:
    """sum_k w_k o_k^j  minus  (d^deriv/dt^deriv t^j at t = 0) = j! delta_{j,deriv}."""
    value = sum((w * o**j for o, w in zip(s.offsets, s.exact, strict=True)), Fraction(0))
    return value - (factorial(j) if j == s.deriv else 0)


@pytest.mark.parametrize(("method", "order", "deriv"), ALL)
def test_exact_on_polynomials_up_to_degree_and_not_beyond(method, order, deriv):
    s = stencil(method, order, deriv)
    degree = order + deriv - 1
    for j in range(degree + 1):
        assert moment_residual(s, j) == 0, j
    assert moment_residual(s, degree + 1) != 0


@pytest.mark.parametrize(("method", "order", "deriv"), ALL)
def test_exact_on_shifted_polynomial_with_rational_step(method, order, deriv):
    # p(t) = sum c_j t^j of the stencil's degree, at x0 = 3/7 with h = 1/5.
    s = stencil(method, order, deriv)
    degree = order + deriv - 1
    coeffs = [Fraction(k * k - 3 * k + 2, k + 1) for k in range(degree + 1)]
    x0, h = Fraction(3, 7), Fraction(1, 5)

    def p(t):
        return sum(c * t**j for j, c in enumerate(coeffs))

    def dp(t):
        return sum(
            c * Fraction(factorial(j), factorial(j - deriv)) * t ** (j - deriv)
            for j, c in enumerate(coeffs)
            if j >= deriv
        )

    approx = sum(w * p(x0 + o * h) for o, w in zip(s.offsets, s.exact, strict=True)) / h**deriv
    assert approx == dp(x0)


# ---------------------------------------------------------------------------
# Observed convergence order in float64
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "order", "deriv"), ALL)
def test_observed_convergence_order(method, order, deriv):
    # h in the truncation-dominated range: checked below against a bound on
    # the rounding error, eps * sum|w| * f / h**deriv.
    s = stencil(method, order, deriv)
    offsets, weights = s.arrays()
    x = 0.3
    h = 0.4 if method == "central" else 0.05

    def error(step):
        approx = np.sum(weights * np.exp(x + offsets * step)) / step**deriv
        return abs(approx - np.exp(x))

    e1, e2 = error(h), error(h / 2)
    assert e2 > 1000 * EPS * np.exp(1.0) * np.sum(np.abs(weights)) / (h / 2) ** deriv
    assert abs(np.log2(e1 / e2) - order) < 0.35


# ---------------------------------------------------------------------------
# Zero weights dropped, minimal counts, caching
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "order", "deriv"), ALL)
def test_no_zero_weights_and_minimal_counts(method, order, deriv):
    s = stencil(method, order, deriv)
    assert all(w != 0 for w in s.exact)
    assert len(s.offsets) == len(set(s.offsets)) == len(s.weights) == len(s.exact)
    if method == "central" and deriv == 1:
        expected = order
        assert not s.uses_center
        assert 0 not in s.offsets
    elif method == "central":
        expected = order + 1
        assert s.uses_center
    else:
        expected = order + deriv
        assert s.uses_center
    assert len(s.offsets) == expected


def test_central_order2_gradient_costs_two_evaluations_per_coordinate():
    assert stencil("central", 2).offsets == (-1, 1)
    assert len(stencil("forward", 1).offsets) == 2  # n + 1 with f(x) shared
    assert stencil("central", 2, 2).offsets == (-1, 0, 1)


def test_cached_same_object():
    a = stencil("central", 4, 2)
    assert stencil("central", 4, 2) is a
    assert stencil(method="central", order=4, deriv=2) is a
    assert stencil("central", np.int64(4), 2) is a
    assert stencil("central", 4, 1) is not a


def test_stencil_is_frozen_and_arrays_are_copies():
    s = stencil("forward", 2)
    with pytest.raises(AttributeError):
        s.order = 3
    offsets, weights = s.arrays()
    assert offsets.dtype == np.int64 and weights.dtype == np.float64
    weights[:] = 0
    assert s.arrays()[1].tolist() == [-1.5, 2.0, -0.5]


# ---------------------------------------------------------------------------
# Validation messages
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        (
            ("central", 3),
            ValueError,
            r"^`order` must be one of 2, 4, 6, 8 for method='central'; got 3\.$",
        ),
        (
            ("forward", 5),
            ValueError,
            r"^`order` must be one of 1, 2, 3, 4 for method='forward'; got 5\.$",
        ),
        (
            ("backward", 0),
            ValueError,
            r"^`order` must be one of 1, 2, 3, 4 for method='backward'; got 0\.$",
        ),
        (
            ("complex", 2),
            ValueError,
            r"^method='complex' has no real-valued stencil .*`method` must be one of "
            r"'forward', 'backward', 'central' here\.$",
        ),
        (("richardson", 2), ValueError, r"^method='richardson' has no real-valued stencil"),
        (
            ("centre", 2),
            ValueError,
            r"^`method` must be one of 'forward', 'backward', 'central'; got 'centre'\.$",
        ),
        ((None, 2), TypeError, r"^`method` must be a str; got NoneType\.$"),
        ((["central"], 2), TypeError, r"^`method` must be a str; got list\.$"),
        (("central", 2.0), TypeError, r"^`order` must be an int; got 2\.0\.$"),
        (("central", True), TypeError, r"^`order` must be an int; got True\.$"),
        (("central", "2"), TypeError, r"^`order` must be an int; got '2'\.$"),
        (("central", 2, 3), ValueError, r"^`deriv` must be 1 or 2; got 3\.$"),
        (("central", 2, 0), ValueError, r"^`deriv` must be 1 or 2; got 0\.$"),
        (("central", 2, 1.0), TypeError, r"^`deriv` must be an int; got 1\.0\.$"),
    ],
)
def test_stencil_validation(args, exc, match):
    with pytest.raises(exc, match=match):
        stencil(*args)


# ---------------------------------------------------------------------------
# Mixed partials
# ---------------------------------------------------------------------------


def test_mixed_stencil_formula():
    table = dict(mixed_stencil())
    assert table == {
        (1, 1): F(1, 2),
        (1, 0): F(-1, 2),
        (0, 1): F(-1, 2),
        (0, 0): F(1),
        (-1, 0): F(-1, 2),
        (0, -1): F(-1, 2),
        (-1, -1): F(1, 2),
    }
    assert mixed_stencil(order=2) == mixed_stencil()
    # a fresh list: mutating it does not corrupt later calls
    mixed_stencil().clear()
    assert len(mixed_stencil()) == 7


def test_mixed_stencil_exact_on_quadratics():
    # every quadratic q(u, v) = a u^2 + b u v + c v^2 + d u + e v + g with
    # coefficients in {0, 1, -2} (729 of them), at a rational point and steps
    u0, v0, hu, hv = F(-2, 3), F(5, 4), F(1, 8), F(3, 10)
    for a, b, c, d, e, g in product([F(0), F(1), F(-2)], repeat=6):

        def q(u, v, a=a, b=b, c=c, d=d, e=e, g=g):
            return a * u * u + b * u * v + c * v * v + d * u + e * v + g

        approx = sum(w * q(u0 + i * hu, v0 + j * hv) for (i, j), w in mixed_stencil())
        assert approx / (hu * hv) == b, (a, b, c, d, e, g)


def test_mixed_stencil_second_order_not_third():
    # Moments sum w a^p b^q match the Taylor term u^p v^q (1 for uv, else 0) for
    # every p + q <= 3 (cubic terms vanish by the point symmetry), so the error is
    # O(h^2); the quartic moment for u^3 v does not vanish, so it is not O(h^3).
    def moment(p, q):
        return sum(w * F(i) ** p * F(j) ** q for (i, j), w in mixed_stencil())

    for p in range(4):
        for q in range(4 - p):
            assert moment(p, q) == (1 if (p, q) == (1, 1) else 0), (p, q)
    assert moment(3, 1) != 0


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_central_hessian_evaluation_count(n):
    diag = stencil("central", 2, 2).offsets
    points = set()
    for i in range(n):
        for o in diag:
            pt = [0] * n
            pt[i] = o
            points.add(tuple(pt))
    for i in range(n):
        for j in range(i + 1, n):
            for (a, b), _ in mixed_stencil():
                pt = [0] * n
                pt[i], pt[j] = a, b
                points.add(tuple(pt))
    assert len(points) == n * n + n + 1


@pytest.mark.parametrize(
    ("order", "exc", "match"),
    [
        (4, ValueError, r"^`order` must be 2 for the mixed stencil; got 4\.$"),
        (2.0, TypeError, r"^`order` must be an int; got 2\.0\.$"),
        (False, TypeError, r"^`order` must be an int; got False\.$"),
    ],
)
def test_mixed_stencil_validation(order, exc, match):
    with pytest.raises(exc, match=match):
        mixed_stencil(order)


# ---------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "order", "deriv"), ALL)
def test_default_step_rule(method, order, deriv):
    h0 = default_step(method, order, deriv)
    assert isinstance(h0, float)
    assert h0 == pytest.approx(2.0 ** (-52 / (order + deriv)), rel=1e-15)


def test_default_step_values():
    assert default_step("forward", 1) == 2.0**-26
    assert default_step("central", 2) == pytest.approx(6.0554544523933e-06, rel=1e-12)
    assert default_step("central", 2, 2) == 2.0**-13
    assert default_step("complex", 2) == COMPLEX_STEP == 1e-20


X_ZOO = np.array(
    [0.0, 1e-300, -5e-12, 0.1, -0.7, 1.0, 3.0, -12.5, 1e6, -3.3e9, 1e10, 1e300, -1e300]
)


@pytest.mark.parametrize(("method", "order", "deriv"), ALL)
def test_default_steps_exactly_representable_and_positive(method, order, deriv):
    h = absolute_step(X_ZOO, method, order, deriv)
    assert h.dtype == np.float64 and h.shape == X_ZOO.shape
    assert np.all(h > 0) and np.all(np.isfinite(h))
    assert np.array_equal((X_ZOO + h) - X_ZOO, h)
    # relative to max(1, |x|), up to the exactness rounding
    h0 = default_step(method, order, deriv)
    np.testing.assert_allclose(h, h0 * np.maximum(1.0, np.abs(X_ZOO)), rtol=4 * EPS / h0)


def test_relative_scaling_with_abs_x():
    h = absolute_step(np.array([0.5, 1e6, -1e6]), "central", 2)
    # max(1, 0.5) = 1; the exactness rounding moves h by <= ulp(0.5) ~ 1e-16
    assert h[0] == pytest.approx(default_step("central", 2), abs=2 * np.spacing(0.5))
    assert h[1] == pytest.approx(1e6 * h[0], rel=1e-9)
    assert h[2] == pytest.approx(1e6 * h[0], rel=1e-9)


def test_no_zero_step_at_huge_x():
    x = np.array([1e300, -1e300, 1.5e308])
    for method, order in [("forward", 1), ("central", 2), ("central", 8)]:
        h = absolute_step(x, method, order)
        assert np.all(h > 0) and np.all(np.isfinite(h))
        assert np.array_equal((x + h) - x, h)


def test_tiny_user_step_falls_back_to_ulps():
    x = np.array([1e300, -1e12, 1.0])
    h = absolute_step(x, "central", 2, step=1e-5)
    assert np.all(h > 0)
    assert np.array_equal((x + h) - x, h)
    np.testing.assert_array_equal(h[:2], 4 * np.spacing(np.abs(x[:2])))
    assert h[2] == pytest.approx(1e-5, rel=1e-10)


def test_step_override_scalar_and_array():
    x = np.array([[0.0, 2.0], [-3.0, 1e3]])
    h = absolute_step(x, "forward", 1, step=0.125)
    np.testing.assert_array_equal(h, np.full(x.shape, 0.125))  # exact: power of two
    per = np.array([1e-3, 2e-4])  # broadcasts over rows
    h = absolute_step(x, "central", 4, step=per)
    assert h.shape == x.shape
    np.testing.assert_allclose(h, np.broadcast_to(per, x.shape), rtol=1e-9)
    assert np.array_equal((x + h) - x, h)
    # absolute: not scaled by |x|
    assert h[1, 1] == pytest.approx(2e-4, rel=1e-9)


def test_step_scalar_x_and_list_step():
    h = absolute_step(2.0, "backward", 3)
    assert h.shape == () and h.dtype == np.float64 and h > 0
    h = absolute_step([1, 2, 3], "central", 2, step=[0.5, 0.25, 0.125])
    np.testing.assert_array_equal(h, [0.5, 0.25, 0.125])


def test_complex_step_not_made_exact():
    h = absolute_step(np.array([1.0, 1e4]), "complex", 2)
    np.testing.assert_array_equal(h, [1e-20, 1e-16])
    assert absolute_step(3.0, "complex", 2, step=1e-30) == 1e-30


def test_step_does_not_modify_inputs():
    x = np.array([1.0, 2.0])
    step = np.array([0.1, 0.2])
    absolute_step(x, "central", 2, step=step)
    np.testing.assert_array_equal(x, [1.0, 2.0])
    np.testing.assert_array_equal(step, [0.1, 0.2])


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"step": -1.0}, ValueError, r"^`step` must be finite and > 0; got -1\.0\.$"),
        ({"step": 0.0}, ValueError, r"^`step` must be finite and > 0; got 0\.0\.$"),
        ({"step": np.inf}, ValueError, r"^`step` must be finite and > 0; got inf\.$"),
        ({"step": np.nan}, ValueError, r"^`step` must be finite and > 0; got nan\.$"),
        (
            {"step": [1e-3, -2.0, 1e-3]},
            ValueError,
            r"^`step` must be finite and > 0; got -2\.0 at index \(1,\)\.$",
        ),
        (
            {"step": [1e-3, 1e-3]},
            ValueError,
            r"^`step` must broadcast to the shape of `x` \(3,\); got shape \(2,\)\.$",
        ),
        ({"step": "small"}, TypeError, r"^`step` must be an array of real numbers; got str\.$"),
        ({"step": 1e-3 + 0j}, TypeError, r"^`step` must be real; got complex dtype"),
        ({"step": True}, TypeError, r"^`step` must be a positive real number or array; got True"),
        ({"x": [1.0, np.nan, 2.0]}, ValueError, r"^`x` must be finite; got nan at index \(1,\)\.$"),
        ({"x": "abc"}, TypeError, r"^`x` must be an array of real numbers; got str\.$"),
        ({"x": [1j, 2.0, 3.0]}, TypeError, r"^`x` must be real"),
        (
            {"x": [1.7976931348623157e308, 0.0, 0.0]},
            ValueError,
            r"^`x` is too close to the largest float .* index \(0,\)",
        ),
        ({"method": "richardson"}, ValueError, r"^method='richardson' has no single default step"),
        ({"method": "complex", "order": 4}, ValueError, r"^`order` must be 2 for method='complex'"),
        (
            {"method": "complex", "deriv": 2},
            ValueError,
            r"^`deriv` must be 1 for method='complex' \(first derivatives only\); got 2\.$",
        ),
        ({"method": "central", "order": 3}, ValueError, r"^`order` must be one of 2, 4, 6, 8"),
        ({"method": 3}, TypeError, r"^`method` must be a str; got int\.$"),
        (
            {"method": "upwind"},
            ValueError,
            r"^`method` must be one of 'forward', 'backward', 'central', 'complex'; "
            r"got 'upwind'\.$",
        ),
    ],
)
def test_absolute_step_validation(kwargs, exc, match):
    args = {"x": [1.0, 2.0, 3.0], "method": "central", "order": 2, "deriv": 1, "step": None}
    if kwargs.get("method") == "complex" and "order" not in kwargs:
        args["order"] = 2
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        absolute_step(**args)


def test_default_step_validation():
    with pytest.raises(ValueError, match=r"^method='richardson' has no single default step"):
        default_step("richardson", 2)
    with pytest.raises(ValueError, match=r"^`order` must be one of 1, 2, 3, 4 for"):
        default_step("forward", 6)
    with pytest.raises(TypeError, match=r"^`deriv` must be an int; got None\.$"):
        default_step("central", 2, None)


# ---------------------------------------------------------------------------
# The documented failure of a relative step: sin at 1e10
# ---------------------------------------------------------------------------


def central_diff(f, x, h):
    s = stencil("central", 2)
    offsets, weights = s.arrays()
    return np.sum(weights * f(x + offsets * h)) / h


def test_sin_at_1e10_relative_step_fails_absolute_step_works():
    x = 1e10
    exact = np.cos(x)  # cos(1e10) ~ 0.873: not small
    h_rel = absolute_step(x, "central", 2)
    assert h_rel > 1e4  # thousands of periods of sin
    bad = central_diff(np.sin, x, h_rel)
    assert abs(bad - exact) / abs(exact) > 1e-3
    h_abs = absolute_step(x, "central", 2, step=1e-5)
    good = central_diff(np.sin, x, h_abs)
    assert abs(good - exact) / abs(exact) < 1e-6


def test_default_step_is_accurate_on_well_scaled_f():
    # the rule's promise: ~eps**(p/(p+1)) for a well-scaled first derivative
    x = 0.7
    h = absolute_step(x, "central", 2)
    assert abs(central_diff(np.exp, x, h) - np.exp(x)) / np.exp(x) < 1e-9
