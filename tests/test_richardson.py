"""Richardson extrapolation with a search over steps (vcalc._richardson).

Each test builds the facade's ``compute`` callback in miniature for an
elementwise function g of a vector x (one row per element), with the exact
step ``h = (x + base * 2**-level) - x``, and records every request.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcalc._richardson import RichardsonResult, richardson

#: The base step recommended to the facade, relative to max(1, |x|).
DEFAULT_REL = 2.0**-7


def default_base(x, rel=DEFAULT_REL):
    return rel * np.maximum(1.0, np.abs(np.asarray(x, dtype=np.float64)))


class Elementwise:
    """``compute(levels, rows)`` for an elementwise g (one row per element of x).

    g maps an array of points to an array of values of the same shape, or
    with one extra trailing axis of m outputs.  Records every request and
    counts evaluations as the facade would: 2 per (level, row), plus f(x)
    once per row for the second derivative.
    """

    def __init__(self, g: Callable, x, base, deriv: int) -> None:
        self.g = g
        self.x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        self.base = np.broadcast_to(np.asarray(base, dtype=np.float64), self.x.shape).copy()
        self.deriv = deriv
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []
        self.nfev = 0
        self._centre_rows: set[int] = set()

    def values(self, t: np.ndarray) -> np.ndarray:
        v = np.asarray(self.g(t), dtype=np.float64)
        return v.reshape(t.shape[0], -1)

    def steps(self, levels: np.ndarray, rows: np.ndarray) -> np.ndarray:
        x0 = self.x[rows]
        return (x0 + np.ldexp(self.base[rows], -levels)) - x0

    def __call__(self, levels: np.ndarray, rows: np.ndarray):
        assert levels.dtype == np.int64 and rows.dtype == np.int64
        assert levels.shape == rows.shape and levels.ndim == 1
        self.calls.append((levels.copy(), rows.copy()))
        x0 = self.x[rows]
        h = self.steps(levels, rows)
        fp, fm = self.values(x0 + h), self.values(x0 - h)
        self.nfev += 2 * levels.size
        hh = h[:, None]
        with np.errstate(invalid="ignore", over="ignore"):
            if self.deriv == 1:
                D = (fp - fm) / (2.0 * hh)
                F = np.maximum(np.abs(fp), np.abs(fm))
            else:
                f0 = self.values(x0)
                new = set(rows.tolist()) - self._centre_rows
                self._centre_rows |= new
                self.nfev += len(new)
                D = (fp - 2.0 * f0 + fm) / (hh * hh)
                F = np.maximum(np.maximum(np.abs(fp), np.abs(fm)), np.abs(f0))
        return D, F, h

    def requested(self) -> list[tuple[int, int]]:
        """Every (level, row) pair asked for, in order."""
        return [
            (int(level), int(row))
            for levels, rows in self.calls
            for level, row in zip(levels, rows, strict=True)
        ]

    def levels_of(self, row: int) -> list[int]:
        return sorted(level for level, r in self.requested() if r == row)


def noise(t: np.ndarray) -> np.ndarray:
    """Pseudo-random numbers in [-1, 1), a deterministic function of the bits of t."""
    z = np.ascontiguousarray(t, dtype=np.float64).view(np.uint64).copy()
    z *= np.uint64(0x9E3779B97F4A7C15)
    z ^= z >> np.uint64(29)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(32)
    return (z >> np.uint64(11)).astype(np.float64) / 2.0**52 - 1.0


def rel_error(value, truth):
    """|value - truth| / max(|truth|, 1): relative, or absolute where truth is small."""
    return np.abs(value - truth) / np.maximum(np.abs(truth), 1.0)


# name: (g, g', g'', points, domain for the property test)
CATALOGUE: dict[str, tuple[Callable, Callable, Callable, list[float], tuple[float, float]]] = {
    "exp": (np.exp, np.exp, np.exp, [-1.7, -0.4, 0.0, 0.6, 1.5, 2.3], (-20.0, 20.0)),
    "sin": (np.sin, np.cos, lambda t: -np.sin(t), [-1.7, -0.4, 0.0, 0.6, 1.5, 2.3], (-8.0, 8.0)),
    "cos": (
        np.cos,
        lambda t: -np.sin(t),
        lambda t: -np.cos(t),
        [-1.7, -0.4, 0.0, 0.6, 1.5, 2.3],
        (-8.0, 8.0),
    ),
    "log": (
        np.log,
        lambda t: 1.0 / t,
        lambda t: -1.0 / t**2,
        [0.6, 1.0, 1.5, 2.3, 4.0, 10.0],
        (0.05, 100.0),
    ),
    "runge": (
        lambda t: 1.0 / (1.0 + t * t),
        lambda t: -2.0 * t / (1.0 + t * t) ** 2,
        lambda t: (6.0 * t * t - 2.0) / (1.0 + t * t) ** 3,
        [-1.7, -0.4, 0.0, 0.6, 1.5, 2.3],
        (-8.0, 8.0),
    ),
    "x**5": (
        lambda t: t**5,
        lambda t: 5.0 * t**4,
        lambda t: 20.0 * t**3,
        [-1.7, -0.4, 0.0, 0.6, 1.5, 2.3],
        (-8.0, 8.0),
    ),
    "atan": (
        np.arctan,
        lambda t: 1.0 / (1.0 + t * t),
        lambda t: -2.0 * t / (1.0 + t * t) ** 2,
        [-1.7, -0.4, 0.0, 0.6, 1.5, 2.3],
        (-8.0, 8.0),
    ),
    "x*exp(x)": (
        lambda t: t * np.exp(t),
        lambda t: (1.0 + t) * np.exp(t),
        lambda t: (2.0 + t) * np.exp(t),
        [-1.7, -0.4, 0.0, 0.6, 1.5, 2.3],
        (-20.0, 20.0),
    ),
}

# Relative (or, near 0, absolute) accuracy required in the first window.
TOL = {1: 1e-12, 2: 1e-9}


def run(g, x, deriv, base=None, **kwargs) -> tuple[RichardsonResult, Elementwise]:
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    compute = Elementwise(g, x, default_base(x) if base is None else base, deriv)
    return richardson(compute, x.size, deriv=deriv, **kwargs), compute


# ---------------------------------------------------------------------------
# Smooth, well-scaled functions: the first window, 8 evaluations per row
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("deriv", [1, 2])
@pytest.mark.parametrize("name", list(CATALOGUE))
def test_smooth_functions_accepted_in_first_window(name, deriv):
    g, d1, d2, points, _ = CATALOGUE[name]
    x = np.array(points)
    res, compute = run(g, x, deriv)
    truth = (d1 if deriv == 1 else d2)(x)
    assert res.value.shape == res.error.shape == (x.size, 1)
    err = rel_error(res.value[:, 0], truth)
    assert np.all(err <= TOL[deriv]), (err.max(), err)
    assert np.all(np.abs(res.value[:, 0] - truth) <= res.error[:, 0])
    np.testing.assert_array_equal(res.levels_used, 4)
    assert compute.nfev == 8 * x.size + (x.size if deriv == 2 else 0)
    assert len(compute.calls) == 1
    assert set(compute.requested()) == {(k, r) for k in range(4) for r in range(x.size)}
    zeros = np.zeros(x.size, dtype=np.int64)
    np.testing.assert_array_equal(res.step, compute.steps(zeros, np.arange(x.size)))


@pytest.mark.parametrize("deriv", [1, 2])
@pytest.mark.parametrize("name", list(CATALOGUE))
def test_smooth_functions_with_base_two_to_minus_five(name, deriv):
    # A larger base step: the same accuracy, but functions whose h**6 term is
    # not yet negligible (1/(1 + x**2), exp at 2.3, ...) need a level or three more.
    g, d1, d2, points, _ = CATALOGUE[name]
    x = np.array(points)
    res, _ = run(g, x, deriv, base=default_base(x, 2.0**-5))
    truth = (d1 if deriv == 1 else d2)(x)
    err = rel_error(res.value[:, 0], truth)
    assert np.all(err <= TOL[deriv]), (err.max(), err)
    assert np.all(np.abs(res.value[:, 0] - truth) <= res.error[:, 0])
    assert np.all(res.levels_used <= 8)


def test_steps_actually_used_enter_the_extrapolation():
    # For f = t**7 the central difference is exactly a cubic in h**2, so the
    # extrapolation to h = 0 is exact -- provided it uses the true steps,
    # which here are deliberately not in ratio 2.
    x = np.array([0.7, -1.3, 2.0])

    def compute(levels, rows):
        h = 0.1 * 2.0 ** -levels.astype(np.float64) * (1.0 + 0.05 * np.sin(3.0 * levels + rows))
        x0 = x[rows]
        fp, fm = (x0 + h) ** 7, (x0 - h) ** 7
        return ((fp - fm) / (2 * h))[:, None], np.maximum(abs(fp), abs(fm))[:, None], h

    res = richardson(compute, x.size, deriv=1)
    np.testing.assert_allclose(res.value[:, 0], 7 * x**6, rtol=1e-13)
    assert np.all(np.abs(res.value[:, 0] - 7 * x**6) <= res.error[:, 0])


# ---------------------------------------------------------------------------
# The search
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("deriv", "rel"), [(1, 1e-9), (2, 1e-9)])
def test_sin_at_1e10(deriv, rel):
    # Steps ~1e8 are thousands of periods.  With this base the steps are
    # 5**10 * 2**(5 - k), which alias sin into a slowly varying function:
    # the first windows look asymptotic and converge to ~0.  The truth is
    # cos(1e10) = 0.873... (sin'' = -sin(1e10) = 0.488...).
    x = np.array([1e10])
    res, compute = run(np.sin, x, deriv, base=2.0**-5 * x)
    truth = np.cos(x) if deriv == 1 else -np.sin(x)
    assert abs(res.value[0, 0] - truth[0]) <= rel * abs(truth[0])
    assert abs(res.value[0, 0] - truth[0]) <= res.error[0, 0] <= 1e-10
    assert res.step[0] < 1.0  # far below the aliasing steps
    assert max(compute.levels_of(0)) <= 48
    assert res.levels_used[0] == len(compute.requested())


@pytest.mark.parametrize("deriv", [1, 2])
def test_log_near_zero_never_leaves_the_domain(deriv):
    # log'(0.01) = 100: with the default base (2**-7 < 0.01) every point is
    # positive; the search goes down to steps small next to 0.01.
    def log_positive(t):
        assert np.all(t > 0), t[t <= 0]
        return np.log(t)

    x = np.array([0.01])
    res, _ = run(log_positive, x, deriv, base=2.0**-7)
    truth = 100.0 if deriv == 1 else -1e4
    assert abs(res.value[0, 0] - truth) <= 1e-10 * abs(truth) * (1 if deriv == 1 else 10)
    assert abs(res.value[0, 0] - truth) <= res.error[0, 0]


def test_log_with_a_base_beyond_the_domain():
    # With base 2**-5 > 0.01, levels 0 and 1 evaluate log at negative points
    # (NaN): larger steps are never tried, smaller ones find the derivative.
    def log_nan(t):
        with np.errstate(invalid="ignore"):
            return np.log(t)

    x = np.array([0.01])
    res, compute = run(log_nan, x, 1, base=2.0**-5)
    assert min(compute.levels_of(0)) == 0
    assert abs(res.value[0, 0] - 100.0) <= 1e-10 * 100.0
    assert abs(res.value[0, 0] - 100.0) <= res.error[0, 0]


def test_no_pair_requested_twice_and_only_open_rows_recomputed():
    # Rows 0, 2 are well scaled (accepted at once); rows 1, 3 need a search.
    x = np.array([0.3, 1e10, -1.2, 0.01])
    base = np.array([2.0**-7, 2.0**-5 * 1e10, 2.0**-7 * 1.2, 2.0**-7])
    res, compute = run(np.sin, x, 1, base=base)
    np.testing.assert_allclose(res.value[:, 0], np.cos(x), rtol=1e-12)

    pairs = compute.requested()
    assert len(pairs) == len(set(pairs))
    per_row = Counter(row for _, row in pairs)
    np.testing.assert_array_equal(res.levels_used, [per_row[r] for r in range(x.size)])
    assert compute.nfev == 2 * len(pairs)

    first_levels, first_rows = compute.calls[0]
    assert sorted(zip(first_levels.tolist(), first_rows.tolist(), strict=True)) == sorted(
        (k, r) for r in range(x.size) for k in range(4)
    )
    assert res.levels_used[0] == res.levels_used[2] == 4
    assert res.levels_used[1] > 4
    for _levels, rows in compute.calls[1:]:
        assert 0 not in rows and 2 not in rows
        assert len(set(rows.tolist())) == rows.size  # one level per row per round
    # Each row's levels form one contiguous run (a cache without holes).
    for r in range(x.size):
        lv = compute.levels_of(r)
        assert lv == list(range(lv[0], lv[-1] + 1))


def test_level_limits_are_respected():
    # Pure noise has no derivative: the search runs into both limits.
    def pure_noise(t):
        return 1e-3 * noise(t)

    res, compute = run(pure_noise, [0.5, -3.0], 1, max_down=10, max_up=2)
    for r in range(2):
        lv = compute.levels_of(r)
        assert min(lv) >= -2 and max(lv) <= 10
    assert np.all(res.levels_used <= 13)
    assert np.all(np.isfinite(res.value))
    assert np.all(res.error >= np.abs(res.value))  # nothing to be learnt here


NOISY_X = np.array([-2.0, -1.1, -0.3, 0.4, 0.9, 1.3, 2.2, 2.9])


@pytest.mark.parametrize("deriv", [1, 2])
def test_noisy_function_searches_larger_steps(deriv):
    def noisy_sin(t):
        return np.sin(t) + 1e-10 * noise(t)

    base = default_base(NOISY_X)
    res, compute = run(noisy_sin, NOISY_X, deriv)
    truth = np.cos(NOISY_X) if deriv == 1 else -np.sin(NOISY_X)
    err = np.abs(res.value[:, 0] - truth)
    assert np.all(err <= res.error[:, 0])
    # Noise 1e-10 in f: at the base step the error would be ~1e-10 / h.
    assert np.all(err <= (1e-7 if deriv == 1 else 1e-5))
    assert np.all(res.error[:, 0] <= (1e-7 if deriv == 1 else 1e-5))
    for r in range(NOISY_X.size):
        assert min(compute.levels_of(r)) < 0  # larger steps were tried
    assert np.median(res.step / base) > 1.0  # and mostly chosen


# Noise far below 1e-10 can hide in the first window (it is indistinguishable
# from rounding there); such rows may be accepted with the rounding estimate.
@settings(deadline=None, max_examples=60, derandomize=True)
@given(
    amp=st.sampled_from([1e-10, 1e-8, 1e-6]),
    x=st.floats(min_value=-3.0, max_value=3.0),
    deriv=st.sampled_from([1, 2]),
)
def test_noisy_function_error_estimate_bounds_the_error(amp, x, deriv):
    def noisy_sin(t):
        return np.sin(t) + amp * noise(t)

    res, _ = run(noisy_sin, [x], deriv)
    truth = np.cos(x) if deriv == 1 else -np.sin(x)
    assert abs(res.value[0, 0] - truth) <= res.error[0, 0]


@pytest.mark.parametrize("x", [1.0, 2.0, -0.5, 0.3, -2.5])
def test_non_finite_towards_larger_steps_stops_that_direction(x):
    # f is noisy (so the search goes up) and NaN below x - 0.2: the first
    # step beyond 0.2 gives NaN, and no larger step is ever asked for.
    def g(t):
        return np.where(t >= x - 0.2, np.sin(t) + 1e-8 * noise(t), np.nan)

    res, compute = run(g, [x], 1)
    lv = compute.levels_of(0)
    h = compute.steps(np.array(lv, dtype=np.int64), np.zeros(len(lv), dtype=np.int64))
    assert np.sum(h > 0.2) == 1  # exactly one request left the domain ...
    assert h[0] == h.max() > 0.2  # ... the largest step, the last one tried upwards
    assert np.isfinite(res.value[0, 0]) and np.isfinite(res.error[0, 0])
    assert abs(res.value[0, 0] - np.cos(x)) <= res.error[0, 0] <= 1e-5


@pytest.mark.parametrize("x", [0.06, 0.08, 0.12])
def test_sqrt_near_zero_stops_where_larger_steps_leave_the_domain(x):
    def noisy_sqrt(t):
        with np.errstate(invalid="ignore"):
            return np.sqrt(t) + 1e-7 * noise(t)

    res, compute = run(noisy_sqrt, [x], 1, base=2.0**-7)
    lv = compute.levels_of(0)
    h = 2.0**-7 * 2.0 ** -np.array(lv, dtype=np.float64)
    assert np.sum(h > x) <= 1
    if np.any(h > x):
        assert h.max() > x and h[0] == h.max()
    truth = 0.5 / np.sqrt(x)
    assert np.isfinite(res.value[0, 0])
    assert abs(res.value[0, 0] - truth) <= res.error[0, 0] <= 1e-3


def test_nothing_valid_gives_infinite_error():
    # Differences that alternate in sign never look asymptotic.
    def compute(levels, rows):
        h = 2.0 ** -levels.astype(np.float64)
        D = 1.0 + (-1.0) ** levels * 0.1 * h**0.5
        return D[:, None], np.ones((levels.size, 1)), h

    res = richardson(compute, 2, deriv=1, max_down=9, max_up=3)
    assert np.all(np.isfinite(res.value))
    # Either no window counts (inf), or the scatter counts as noise, honestly.
    assert np.all(res.error >= np.maximum(np.abs(res.value - 1.0), 0.01))
    assert np.all(res.levels_used <= 13)


def test_no_finite_window_falls_back_with_infinite_error():
    # Only every other level is finite: no window of four finite levels.
    def compute(levels, rows):
        h = 2.0 ** -levels.astype(np.float64)
        D = np.where(levels % 2 == 0, 1.0 + h**2, np.nan)
        return D[:, None], np.ones((levels.size, 1)), h

    res = richardson(compute, 1, deriv=1, max_down=6, max_up=0)
    assert np.isinf(res.error[0, 0])
    # Level 3 is NaN, so smaller steps are closed (f left its domain) and
    # max_up=0 closes larger ones: the value is D at the smallest finite step.
    assert res.levels_used[0] == 4
    assert res.value[0, 0] == 1.0 + 2.0**-4
    assert res.step[0] == 2.0**-2


# ---------------------------------------------------------------------------
# The error estimate bounds the error: a property over the catalogue
# ---------------------------------------------------------------------------


@st.composite
def catalogue_point(draw):
    name = draw(st.sampled_from(sorted(CATALOGUE)))
    lo, hi = CATALOGUE[name][4]
    x = draw(st.floats(min_value=lo, max_value=hi, allow_nan=False))
    return name, x


@settings(deadline=None)
@given(
    point=catalogue_point(),
    deriv=st.sampled_from([1, 2]),
    rel=st.sampled_from([2.0**-5, 2.0**-7]),
)
def test_error_estimate_bounds_the_true_error(point, deriv, rel):
    name, x = point
    g, d1, d2, _, _ = CATALOGUE[name]
    res, _ = run(g, [x], deriv, base=default_base(x, rel))
    truth = (d1 if deriv == 1 else d2)(np.float64(x))
    assert np.isfinite(res.error[0, 0])
    assert abs(res.value[0, 0] - truth) <= res.error[0, 0]
    assert rel_error(res.value[0, 0], truth) <= 10 * TOL[deriv]


# ---------------------------------------------------------------------------
# Several outputs per row
# ---------------------------------------------------------------------------


def three_outputs(t):
    return np.stack([np.sin(t), np.exp(t / 2.0), t**3], axis=-1)


def test_three_outputs_per_row():
    x = np.array([-1.4, 0.0, 0.3, 1.7])
    res, compute = run(three_outputs, x, 1)
    truth = np.stack([np.cos(x), 0.5 * np.exp(x / 2.0), 3.0 * x**2], axis=-1)
    assert res.value.shape == res.error.shape == (4, 3)
    assert res.step.shape == res.levels_used.shape == (4,)
    assert np.all(rel_error(res.value, truth) <= 1e-12)
    assert np.all(np.abs(res.value - truth) <= res.error)
    np.testing.assert_array_equal(res.levels_used, 4)
    assert compute.nfev == 8 * x.size


def test_one_hard_output_keeps_its_row_searching():
    # Row 1 is at 1e10 with a base step that aliases sin; its t**2 output is
    # easy, the sin output needs ~33 more levels; row 0 is done at once.
    def g(t):
        return np.stack([np.sin(t), t**2, np.ones_like(t)], axis=-1)

    x = np.array([0.5, 1e10])
    res, _ = run(g, x, 1, base=np.array([2.0**-7, 2.0**-5 * 1e10]))
    truth = np.stack([np.cos(x), 2.0 * x, np.zeros(2)], axis=-1)
    assert np.all(rel_error(res.value, truth) <= 1e-12)
    assert np.all(np.abs(res.value - truth) <= res.error)
    assert res.levels_used[0] == 4 and res.levels_used[1] > 30


# ---------------------------------------------------------------------------
# Interface
# ---------------------------------------------------------------------------


def test_result_is_frozen():
    res, _ = run(np.sin, [0.5], 1)
    assert isinstance(res, RichardsonResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.value = np.zeros((1, 1))  # type: ignore[misc]
    assert res.value.dtype == res.error.dtype == res.step.dtype == np.float64
    assert res.levels_used.dtype == np.int64


def test_no_rows():
    calls = []

    def compute(levels, rows):
        calls.append(levels.size)
        return np.zeros((levels.size, 2)), np.zeros((levels.size, 2)), np.zeros(levels.size)

    res = richardson(compute, 0, deriv=2)
    assert res.value.shape == res.error.shape == (0, 2)
    assert res.step.shape == res.levels_used.shape == (0,)
    assert calls == [0]


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"deriv": 3}, ValueError, r"`deriv` must be 1 or 2; got 3"),
        ({"deriv": True}, TypeError, r"`deriv` must be an int"),
        ({"deriv": 1.0}, TypeError, r"`deriv` must be an int"),
        ({"deriv": 1, "max_down": 2}, ValueError, r"`max_down` must be >= 3; got 2"),
        ({"deriv": 1, "max_up": -1}, ValueError, r"`max_up` must be >= 0; got -1"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    compute = Elementwise(np.sin, [0.5], 2.0**-7, 1)
    with pytest.raises(exc, match=match):
        richardson(compute, 1, **kwargs)


def test_bad_nrows():
    compute = Elementwise(np.sin, [0.5], 2.0**-7, 1)
    with pytest.raises(ValueError, match=r"`nrows` must be >= 0; got -1"):
        richardson(compute, -1, deriv=1)


def test_compute_returning_wrong_shapes():
    def short(levels, rows):
        return np.zeros((levels.size - 1, 1)), np.zeros((levels.size - 1, 1)), np.ones(levels.size)

    with pytest.raises(ValueError, match=r"`compute` must return D of shape"):
        richardson(short, 2, deriv=1)

    def bad_f(levels, rows):
        return np.zeros((levels.size, 2)), np.zeros((levels.size, 1)), np.ones(levels.size)

    with pytest.raises(ValueError, match=r"`compute` must return F of shape"):
        richardson(bad_f, 2, deriv=1)
