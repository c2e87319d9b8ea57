"""Richardson extrapolation of central differences, with a search over steps.

:func:`richardson` drives the ``"richardson"`` method of the finite
differences: it asks a callback for central differences of many independent
quantities ("rows") at a geometric sequence of steps, extrapolates each run
of four consecutive steps to h = 0, estimates the error of every
extrapolated value, and searches for the steps where that error is smallest.
Pure NumPy; the callback evaluates f, this module only decides which steps to
ask for and what to make of the answers.

Notes
-----
**Levels and steps.**  Level k of a row is the step ``h = base * 2**-k``:
level 0 is the base step, positive levels smaller steps, negative levels
larger ones.  The callback reports the step it actually used (the facade
rounds it so that ``(x + h) - x == h``), and every formula below uses that
actual h, never the nominal ratio 2.

**The extrapolation.**  A central difference for the d-th derivative
(d = 1 or 2) has an even error expansion::

    D(h) = f^(d)(x) + c1 h**2 + c2 h**4 + c3 h**6 + c4 h**8 + ...

so D is a polynomial in t = h**2 plus a remainder.  A *window* is four
consecutive levels k .. k+3 with steps h_0 > h_1 > h_2 > h_3 and
t_i = h_i**2.  Neville's recursion for the value at t = 0 of the polynomial
through (t_i, D_i), i = a .. b::

    P[a..b] = (t_a P[a+1..b] - t_b P[a..b-1]) / (t_a - t_b),    P[i..i] = D_i

gives T = P[0..3], which cancels c1, c2 and c3: its truncation error is
``~ c4 t_0 t_1 t_2 t_3``, O(h**8).  T is a linear combination of the D_i
with the Lagrange weights at 0::

    T = sum_i g_i D_i,    g_i = prod_{j != i} t_j / (t_j - t_i),    sum_i g_i = 1;

for steps exactly halved, g = (-1/2835, 4/135, -64/135, 4096/2835).

**Truncation.**  ``|T - P[1..3]|`` is the classical Richardson estimate: it
is about the error of P[1..3], O(h**6), which over-estimates the error of T
by a factor ~ c3 / (c4 h**2) once the window is asymptotic.  The estimate
uses ``TRUNC_SAFETY |T - P[1..3]|`` (factor 2), for windows that are only
just asymptotic.

**Rounding noise (the model).**  Each value of f carries a relative error of
at most ``c eps`` with c = NOISE_ULPS = 2: eps/2 for the final rounding plus
up to about one ulp for the library function or expression that computes f.
The central difference multiplies its f values by weights whose absolute
values sum to ``W / h**d``, W = 1 for d = 1 (weights -+1/(2h)) and W = 4 for
d = 2 (weights 1, -2, 1 over h**2).  With F = max |f| over the values used::

    noise(D_i) = c eps (W F_i / h_i**d + |D_i|)

(the |D_i| term covers the rounding of the quotient itself), and
``noise_model(T) = sum_i |g_i| noise(D_i)``.  The smallest step dominates:
for halved steps, ``sum_i |g_i| 2**(i d)`` is ~13.5 (d = 1) or ~100
(d = 2), so noise_model(T) ~ 13.5 c eps F / h_0 or ~ 400 c eps F / h_0**2.
For an f computed to within an ulp or two this is a bound, not a guess.

**Noise the model does not know.**  If f is noisy itself (an iterative
solver, a simulation, float32 inside), its noise is far above c eps |f|.
The combination ``rho = P[1..3] - P[0..2] = sum_i beta_i D_i`` cancels
f^(d), c1 and c2, so it holds c3 h**6 terms and noise only.  If the values of
f carry errors of at most sigma, its noise is at most ``sigma G_rho`` with
``G_rho = sum_i |beta_i| W / h_i**d``, so ``|rho| / G_rho`` is a sample of
sigma from below (and an over-estimate where c3 h**6 dominates).  A window's
empirical sigma is the largest sample over itself, its larger-step
neighbour and every computed window at smaller steps (where noise dominates
rho most), and::

    noise(T) = max(noise_model(T), EMPIRICAL_SAFETY sigma G_T),
    G_T = sum_i |g_i| W / h_i**d,    EMPIRICAL_SAFETY = 4.

The factor covers the typical ratio between a sample and sigma (about 1/4 for
uniform noise) and the chance that a few samples are all small.  On smooth f
at the default steps, rho is rounding, and the term stays near the model.

**The error estimate** of a window, per output, is::

    error = TRUNC_SAFETY |T - P[1..3]| + noise(T)

for a *valid* window and +inf otherwise, then raised by the consistency rule
below.

**Validity.**  A window counts only if it looks asymptotic.  With
``delta_i = D_i - D_(i+1)``, the c1 term alone gives
``delta_i / delta_(i+1) = q_i = (t_i - t_(i+1)) / (t_(i+1) - t_(i+2))``
(4 for halved steps).  With ``n_i = DELTA_NOISE (noise(D_i) +
noise(D_(i+1)))`` (DELTA_NOISE = 4; noise(D_i) the larger of the model and
the empirical sigma times W / h_i**d) the size of a difference that is only
noise, each consecutive pair of differences must satisfy::

    |delta_i| + n_i >= RATIO_LO q_i (|delta_(i+1)| - n_(i+1))
    |delta_i| - n_i <= RATIO_HI q_i (|delta_(i+1)| + n_(i+1))

with RATIO_LO = 1/2 and RATIO_HI = 6 (ratios 2 .. 24 for halved steps; 16 is
the ratio when c1 = 0 and c2 leads, e.g. x**5 at 0), and have the same sign
unless one is within its noise.  Differences at the noise level pass.  All
four D_i must be finite, the steps positive and strictly decreasing.

**Consistency with smaller steps (aliasing).**  Validity alone cannot reject
every large-step window.  For sin at x = 1e10 with base step
``2**-5 * 1e10``, the steps are ``5**10 * 2**(5-k)`` and 5**10 happens to lie
0.056 above a multiple of 2 pi, so ``D = cos(x) sin(h) / h`` at levels 0 .. 4
is the central difference of a slowly varying alias: the differences shrink
by ~4 and T "converges" to -5e-9 with a tiny error estimate, while the
truth is cos(1e10) ~ -0.87.  Sampled on one geometric grid, nothing local
tells the two apart; smaller steps do.  So a window at smaller steps that is
valid and *resolved* (below) is trusted over one at larger steps::

    error_i = max(error_i, max_{j smaller steps} (|T_i - T_j| - error_j)).

A window is *resolved* when its differences are small next to what they
could be: ``max |delta| <= 1e-3 max(max |D|, W F_3 / h_3**d)``.  Garbage
from steps far beyond the scale of f (aliases included) has differences of
the size of D or of F / h**d; noise and truncation at sensible steps do not.

**The search.**  Every row starts with levels 0 .. 3 (window 0: 8
evaluations per row for d = 1).  After each round each output takes the
valid window of smallest error so far, and a row is *accepted*, and no
longer computed, when for every output::

    error <= max(RTOL_ACCEPT |value|, NOISE_ACCEPT noise_model(T))

with RTOL_ACCEPT = 1e-13 and NOISE_ACCEPT = 4: either the value meets the
facade's target of 1e-12 with room to spare, or it is within a few times the
rounding floor, where smaller steps cannot help.  A row that is not accepted
moves one level per round (one new window each) in one direction:

- up (larger steps) first if every failing output looks like noise of f:
  window 0 invalid, resolved, and its differences growing as h shrinks;
- down (smaller steps) otherwise: truncation, or non-asymptotic behaviour.

A direction ends when

- the new level has a non-finite D (down: for an output that was finite at
  some level, since an output never finite yet may still find its domain at
  smaller steps), or its step is not smaller (down) / larger (up) than the
  previous one: f left its domain, or the steps stopped changing, and no
  level further that way is ever asked for;
- the level limit is reached (``max_down`` halvings, ``max_up`` doublings);
- for every output, the best window is *trusted* (``error <=
  max(TRUST_RTOL |value|, NOISE_ACCEPT noise_model)``, TRUST_RTOL = 1e-4)
  and the last two windows in this direction (window 0 counting as the
  first) have larger errors; going down they must also be resolved, so that
  the growth is noise and not garbage at steps that are still too large;
- or for every output, the last three windows in this direction are no
  improvement on the best (going down: and resolved) and the newest one's
  unvalidated estimate is more than twice the smallest before it in this
  direction: noise (down) or truncation (up) that keeps growing.

When the first direction ends, the row tries the other one under the same
rules, then it is done.  Levels are cached per row: no (level, row) pair is
asked for twice, and each round asks only for the rows still active.

**The result.**  Per output, the value and error of the valid window of
smallest error.  If no window is valid, the value is T of the finite window
with the smallest unvalidated estimate (or, if no window has four finite
D, the central difference at the smallest step where it is finite, NaN if
none) and the error is +inf: a window that does not look asymptotic carries
no error bound worth the name.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["RichardsonResult", "richardson"]

_EPS = float(np.finfo(np.float64).eps)

#: Relative error of one value of f, in units of eps (see Notes).
NOISE_ULPS = 2.0
#: Safety factor on the truncation estimate |T - P[1..3]|.
TRUNC_SAFETY = 2.0
#: Factor on the empirical noise amplitude of f (see Notes).
EMPIRICAL_SAFETY = 4.0
#: A difference within this many times its rounding noise counts as noise.
DELTA_NOISE = 4.0
#: Allowed ratio of successive differences, relative to the c1 prediction.
RATIO_LO, RATIO_HI = 0.5, 6.0
#: A row is accepted when error <= max(RTOL_ACCEPT |value|, NOISE_ACCEPT noise).
RTOL_ACCEPT = 1e-13
NOISE_ACCEPT = 4.0
#: A minimum may stop a direction only if error <= max(TRUST_RTOL |value|, ...).
TRUST_RTOL = 1e-4
#: A window is resolved when max |delta| <= this * max(max |D|, W F / h**deriv).
NOISE_LIKE_SCATTER = 1e-3

# Sum of |weights| of the central difference, times h**deriv.
_WEIGHT_SUM = {1: 1.0, 2: 4.0}

_DOWN, _UP, _DONE = 1, -1, 0

ComputeFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class RichardsonResult:
    """The outcome of :func:`richardson`, one row per differentiated quantity.

    Attributes
    ----------
    value : ndarray, float64, shape (nrows, m)
        The extrapolated derivative per row and output.
    error : ndarray, float64, shape (nrows, m)
        Estimated absolute error, >= 0; +inf where no window was valid.
    step : ndarray, float64, shape (nrows,)
        The largest step of the window chosen for the row's worst output
        (the one with the largest error relative to its value).
    levels_used : ndarray, int64, shape (nrows,)
        How many levels (steps) were computed for each row.
    """

    value: np.ndarray
    error: np.ndarray
    step: np.ndarray
    levels_used: np.ndarray


def _check_count(value: Any, name: str, minimum: int) -> int:
    """Return `value` as an int >= `minimum`, else raise naming it."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be an int; got {value!r}.")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"`{name}` must be an int; got {value!r}.") from None
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value}.")
    return cast(int, value)


def _call(
    compute: ComputeFn, levels: np.ndarray, rows: np.ndarray, m: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Call `compute` and check the shapes of what it returns."""
    a = levels.shape[0]
    out = compute(levels, rows)
    D, F, h = (np.asarray(v, dtype=np.float64) for v in out)
    if D.ndim == 1:
        D = D[:, None]
    if F.ndim == 1:
        F = F[:, None]
    if D.ndim != 2 or D.shape[0] != a or (m is not None and D.shape[1] != m):
        want = f"({a}, {m if m is not None else 'm'})"
        raise ValueError(f"`compute` must return D of shape {want}; got {D.shape}.")
    if F.shape != D.shape:
        raise ValueError(f"`compute` must return F of shape {D.shape}; got {F.shape}.")
    h = h.reshape(-1)
    if h.shape != (a,):
        raise ValueError(f"`compute` must return h of shape ({a},); got {h.shape}.")
    return D, F, h


def _lagrange0(t: np.ndarray, idx: tuple[int, ...]) -> list[np.ndarray]:
    """Weights at t = 0 of the interpolating polynomial through the points `idx`.

    ``t`` has the points on its last axis; returns one array per point of
    `idx`: ``prod_{j != i} t_j / (t_j - t_i)``.
    """
    out = []
    for i in idx:
        g = np.ones_like(t[..., 0])
        for j in idx:
            if j != i:
                g = g * (t[..., j] / (t[..., j] - t[..., i]))
        out.append(g)
    return out


def _windows(D: np.ndarray, F: np.ndarray, H: np.ndarray, deriv: int) -> dict[str, np.ndarray]:
    """Extrapolate and assess every window of four consecutive levels.

    Parameters
    ----------
    D, F : ndarray, shape (r, L, m)
        Central differences and max |f| per level (NaN where not computed).
    H : ndarray, shape (r, L)
        Steps per level (NaN where not computed).
    deriv : int
        1 or 2.

    Returns
    -------
    dict of ndarray, each of shape (r, W, m) with W = L - 3 windows
        (window w covers levels w .. w+3):

        - ``T``: the extrapolated values;
        - ``err``: error estimates, +inf where not valid;
        - ``raw``: the estimate before validation, +inf where not finite;
        - ``noise``: the rounding noise of T (the model, not the empirical part);
        - ``valid``, ``resolved``, ``noise_like``: see the module docstring.
    """
    Dw = sliding_window_view(D, 4, axis=1)  # (r, W, m, 4)
    Fw = sliding_window_view(F, 4, axis=1)
    Hw = sliding_window_view(H, 4, axis=1)[:, :, None, :]  # (r, W, 1, 4)
    wsum = _WEIGHT_SUM[deriv]
    with np.errstate(all="ignore"):
        t = Hw * Hw
        gain = wsum / (Hw if deriv == 1 else t)  # sum |weights| of each difference
        nz = NOISE_ULPS * _EPS * (gain * Fw + np.abs(Dw))  # rounding of each D_i
        steps_ok = np.all(np.isfinite(Hw), axis=-1) & (Hw[..., 3] > 0)
        steps_ok &= (Hw[..., 0] > Hw[..., 1]) & (Hw[..., 1] > Hw[..., 2])
        steps_ok &= Hw[..., 2] > Hw[..., 3]
        steps_ok &= np.isfinite(gain[..., 3])
        t0, t1, t2, t3 = (t[..., i] for i in range(4))
        d0, d1, d2, d3 = (Dw[..., i] for i in range(4))

        # Neville's tableau at t = 0.
        p01 = (t0 * d1 - t1 * d0) / (t0 - t1)
        p12 = (t1 * d2 - t2 * d1) / (t1 - t2)
        p23 = (t2 * d3 - t3 * d2) / (t2 - t3)
        p012 = (t0 * p12 - t2 * p01) / (t0 - t2)
        p123 = (t1 * p23 - t3 * p12) / (t1 - t3)
        T = (t0 * p123 - t3 * p012) / (t0 - t3)

        # Linear weights of T and of rho = P[1..3] - P[0..2] on the D_i.
        g = _lagrange0(t, (0, 1, 2, 3))
        a = _lagrange0(t, (1, 2, 3))
        b = _lagrange0(t, (0, 1, 2))
        beta = [-b[0], a[0] - b[1], a[1] - b[2], a[2]]
        noise_model = sum(np.abs(g[i]) * nz[..., i] for i in range(4))
        gain_T = sum(np.abs(g[i]) * gain[..., i] for i in range(4))
        gain_rho = sum(np.abs(beta[i]) * gain[..., i] for i in range(4))

        finite = steps_ok & np.all(np.isfinite(Dw), axis=-1) & np.isfinite(T)
        finite &= np.isfinite(noise_model) & np.isfinite(p012) & np.isfinite(p123)

        # Empirical noise of f: rho / gain_rho is at most the noise amplitude
        # of the f values where noise dominates rho (an over-estimate where
        # c3 h**6 does); the largest over this window, its larger-step
        # neighbour and every window at smaller steps.
        sample = np.where(finite, np.abs(p123 - p012) / gain_rho, 0.0)
        sample = np.where(np.isfinite(sample), sample, 0.0)
        sigma = np.maximum.accumulate(sample[:, ::-1], axis=1)[:, ::-1]
        sigma[:, 1:] = np.maximum(sigma[:, 1:], sample[:, :-1])
        noise = np.maximum(noise_model, EMPIRICAL_SAFETY * sigma * gain_T)

        raw = TRUNC_SAFETY * np.abs(T - p123) + noise
        raw = np.where(finite & np.isfinite(raw), raw, np.inf)

        # Successive differences and their noise level (model or empirical).
        nz_all = np.maximum(nz, EMPIRICAL_SAFETY * sigma[..., None] * gain)
        delta = np.stack([d0 - d1, d1 - d2, d2 - d3], axis=-1)
        adelta = np.abs(delta)
        dnz = DELTA_NOISE * (nz_all[..., :3] + nz_all[..., 1:])
        above = adelta > dnz
        ok = np.ones(T.shape, dtype=bool)
        for i in range(2):
            q = (t[..., i] - t[..., i + 1]) / (t[..., i + 1] - t[..., i + 2])
            a_i, a_j = adelta[..., i], adelta[..., i + 1]
            n_i, n_j = dnz[..., i], dnz[..., i + 1]
            ok &= a_i + n_i >= RATIO_LO * q * (a_j - n_j)
            ok &= a_i - n_i <= RATIO_HI * q * (a_j + n_j)
            same_sign = np.sign(delta[..., i]) == np.sign(delta[..., i + 1])
            ok &= same_sign | ~above[..., i] | ~above[..., i + 1]
        valid = finite & ok

        # Resolved: the differences are tiny next to D or to the scale f/h**d.
        scale = np.maximum(np.max(np.abs(Dw), axis=-1), gain[..., 3] * Fw[..., 3])
        resolved = finite & (np.max(adelta, axis=-1) <= NOISE_LIKE_SCATTER * scale)
        noise_like = resolved & ~valid & (adelta[..., 2] >= adelta[..., 0])

        err = np.where(valid, raw, np.inf)

        # Consistency with smaller steps: a valid, resolved window j at smaller
        # steps shows that T_i is off by at least |T_i - T_j| - err_j.
        trusted_j = valid & resolved & np.isfinite(err)
        upper = np.where(trusted_j, T + err, np.inf)[:, ::-1]  # reversed: small steps first
        lower = np.where(trusted_j, T - err, -np.inf)[:, ::-1]
        min_up = np.minimum.accumulate(upper, axis=1)[:, ::-1]  # min over j >= i
        max_lo = np.maximum.accumulate(lower, axis=1)[:, ::-1]
        gap = np.zeros_like(T)
        gap[:, :-1] = np.maximum(max_lo[:, 1:] - T[:, :-1], T[:, :-1] - min_up[:, 1:])
        gap = np.where(np.isfinite(gap), gap, 0.0)
        err = np.maximum(err, gap)
    return {
        "T": T,
        "err": err,
        "raw": raw,
        "noise": noise_model,
        "valid": valid,
        "resolved": resolved,
        "noise_like": noise_like,
    }


def _best(win: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row and output: index of the best valid window, its error and noise.

    Returns ``(w, err, noise)``, each of shape (r, m); err is +inf (and w
    meaningless) where no window is valid.
    """
    err = win["err"]
    w = np.argmin(err, axis=1)  # (r, m)
    take = w[:, None, :]
    best_err = np.take_along_axis(err, take, axis=1)[:, 0, :]
    best_noise = np.take_along_axis(win["noise"], take, axis=1)[:, 0, :]
    return w, best_err, best_noise


def richardson(
    compute: ComputeFn,
    nrows: int,
    *,
    deriv: int,
    max_down: int = 48,
    max_up: int = 12,
) -> RichardsonResult:
    """Richardson-extrapolated central differences, searching over steps.

    Parameters
    ----------
    compute : callable ``compute(levels, rows) -> (D, F, h)``
        `levels` and `rows` are int64 arrays of equal length A. Returns the
        central differences ``D`` (A, m) for row ``rows[a]`` at step
        ``h[a] ~ base[rows[a]] * 2.0**-levels[a]`` (may hold NaN/inf),
        ``F`` (A, m) the largest |f| among the values used by each
        difference, and ``h`` (A,) the steps actually used.  Each
        (level, row) pair is asked for at most once.  When `nrows` is 0 it
        is called once with empty arrays, only to learn m.
    nrows : int
        Number of independent rows.
    deriv : {1, 2}
        The derivative the central differences approximate.
    max_down : int, default 48
        Largest level: at most this many halvings below the base step
        (at least 3, the first window).
    max_up : int, default 12
        At most this many doublings above the base step.

    Returns
    -------
    RichardsonResult
        ``value`` and ``error`` (nrows, m), ``step`` (nrows,) and
        ``levels_used`` (nrows,).

    Raises
    ------
    TypeError
        If `nrows`, `deriv`, `max_down` or `max_up` is not an int.
    ValueError
        If `deriv` is not 1 or 2, `nrows` or `max_up` is negative,
        `max_down` is below 3, or `compute` returns arrays of the wrong shape.

    Notes
    -----
    Each window of four consecutive levels (steps h_0 > ... > h_3, t = h**2)
    is extrapolated by Neville's recursion to t = 0, an O(h**8) value
    ``T = sum_i g_i D_i`` with ``g_i = prod_{j != i} t_j / (t_j - t_i)``.
    Its error estimate is::

        2 |T - P[1..3]| + max(sum_i |g_i| noise(D_i), 4 sigma sum_i |g_i| W / h_i**deriv)

    where ``noise(D_i) = 2 eps (W F_i / h_i**deriv + |D_i|)``, W = 1
    (deriv 1) or 4 (deriv 2) is the sum of the absolute weights of the
    central difference times h**deriv, and sigma is an empirical noise
    level of f from ``P[1..3] - P[0..2]``, which cancels the derivative and
    the h**2 and h**4 terms.  A window counts only if its successive
    differences shrink like h**2 (by 2 to 24 for halved steps) or are at
    the noise level, else its error is +inf; a window at larger steps that
    disagrees with a trustworthy one at smaller steps takes the
    disagreement as its error.  Rows start with levels 0 .. 3 and are
    accepted when every output has ``error <= max(1e-13 |value|,
    4 noise)``; the others search smaller steps, then larger ones (or the
    reverse when the failure looks like noise of f), one level per round.
    The module docstring of :mod:`vcalc._richardson` has the full rules.

    Examples
    --------
    The derivative of exp at 0 and 1; the facade's compute, in miniature:

    >>> import numpy as np
    >>> x = np.array([0.0, 1.0])
    >>> base = 2.0**-7 * np.maximum(1.0, np.abs(x))
    >>> def compute(levels, rows):
    ...     x0 = x[rows]
    ...     h = (x0 + np.ldexp(base[rows], -levels)) - x0
    ...     fp, fm = np.exp(x0 + h), np.exp(x0 - h)
    ...     D = (fp - fm) / (2 * h)
    ...     return D[:, None], np.maximum(np.abs(fp), np.abs(fm))[:, None], h
    >>> res = richardson(compute, 2, deriv=1)
    >>> bool(np.allclose(res.value[:, 0], np.exp(x), rtol=1e-13, atol=0))
    True
    >>> bool(np.all(np.abs(res.value[:, 0] - np.exp(x)) <= res.error[:, 0]))
    True
    >>> res.levels_used
    array([4, 4])
    """
    nrows = _check_count(nrows, "nrows", 0)
    deriv = _check_count(deriv, "deriv", 1)
    if deriv not in (1, 2):
        raise ValueError(f"`deriv` must be 1 or 2; got {deriv}.")
    max_down = _check_count(max_down, "max_down", 3)
    max_up = _check_count(max_up, "max_up", 0)

    if nrows == 0:
        empty = np.zeros(0, dtype=np.int64)
        d_empty, _, _ = _call(compute, empty, empty, None)
        m0 = d_empty.shape[1]
        return RichardsonResult(
            value=np.zeros((0, m0)),
            error=np.zeros((0, m0)),
            step=np.zeros(0),
            levels_used=np.zeros(0, dtype=np.int64),
        )

    search = _Search(compute, nrows, deriv, max_down, max_up)
    search.run()
    return search.result()


class _Search:
    """The state of one call of :func:`richardson`: the level cache and the rows' states."""

    def __init__(
        self, compute: ComputeFn, nrows: int, deriv: int, max_down: int, max_up: int
    ) -> None:
        self.compute = compute
        self.nrows = nrows
        self.deriv = deriv
        self.max_down = max_down
        self.max_up = max_up
        self.off = max_up  # column of level 0
        self.nlev = max_up + max_down + 1
        self.m: int | None = None
        self.lo = np.zeros(nrows, dtype=np.int64)  # smallest level computed (largest step)
        self.hi = np.full(nrows, -1, dtype=np.int64)  # largest level computed (smallest step)
        self.direction = np.full(nrows, _DONE, dtype=np.int64)
        self.switched = np.zeros(nrows, dtype=bool)

    # -- the cache -----------------------------------------------------------

    def fetch(self, rows: np.ndarray, levels: np.ndarray) -> None:
        """Compute (level, row) pairs that are not cached yet and store them."""
        rows = rows.astype(np.int64)
        levels = levels.astype(np.int64)
        if self.m is None:
            D, F, h = _call(self.compute, levels, rows, None)
            self.m = D.shape[1]
            shape = (self.nrows, self.nlev, self.m)
            self.D = np.full(shape, np.nan)
            self.F = np.full(shape, np.nan)
            self.H = np.full((self.nrows, self.nlev), np.nan)
            self.have = np.zeros((self.nrows, self.nlev), dtype=bool)
        else:
            if np.any(self.have[rows, levels + self.off]):  # pragma: no cover - by construction
                raise RuntimeError("internal error: a (level, row) pair was requested twice")
            D, F, h = _call(self.compute, levels, rows, self.m)
        col = levels + self.off
        self.D[rows, col] = D
        self.F[rows, col] = F
        self.H[rows, col] = h
        self.have[rows, col] = True
        np.minimum.at(self.lo, rows, levels)
        np.maximum.at(self.hi, rows, levels)

    # -- assessment ----------------------------------------------------------

    def assess(self, rows: np.ndarray) -> dict[str, Any]:
        """Windows of `rows` over the span of levels any of them has computed."""
        c0 = int(np.min(self.lo[rows])) + self.off
        c1 = int(np.max(self.hi[rows])) + self.off + 1
        win: dict[str, Any] = _windows(
            self.D[rows, c0:c1], self.F[rows, c0:c1], self.H[rows, c0:c1], self.deriv
        )
        win["c0"] = c0
        win["w0"] = self.off - c0  # index of window 0
        win["step"] = self.H[rows, c0 : c1 - 3]  # largest step of each window
        w, e, n = _best(win)
        win["w_best"], win["e_best"], win["n_best"] = w, e, n
        v = np.abs(np.take_along_axis(win["T"], w[:, None, :], axis=1)[:, 0, :])
        with np.errstate(invalid="ignore"):
            fine = np.isfinite(e)
            win["accepted"] = np.all(
                fine & (e <= np.maximum(RTOL_ACCEPT * v, NOISE_ACCEPT * n)), axis=1
            )
            win["trusted"] = fine & (e <= np.maximum(TRUST_RTOL * v, NOISE_ACCEPT * n))
        return win

    def blocked(self, rows: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Whether direction `d` (per row) is closed: level limit, domain, or stuck steps."""
        down = d == _DOWN
        limit = np.where(down, self.hi[rows] >= self.max_down, self.lo[rows] <= -self.max_up)
        new = np.where(down, self.hi[rows], self.lo[rows]) + self.off
        prev = np.where(down, self.hi[rows] - 1, self.lo[rows] + 1) + self.off
        h_new, h_prev = self.H[rows, new], self.H[rows, prev]
        with np.errstate(invalid="ignore"):
            bad_h = ~(np.isfinite(h_new) & (h_new > 0))
            bad_h |= np.where(down, ~(h_new < h_prev), ~(h_new > h_prev))
        # Towards larger steps any non-finite D ends the direction; towards
        # smaller steps only one that was finite at some level (an output that
        # was never finite may still reach its domain at smaller steps).
        bad_d = ~np.isfinite(self.D[rows, new])  # (r, m)
        finite_somewhere = np.any(np.isfinite(self.D[rows]), axis=1)
        bad_d &= ~down[:, None] | finite_somewhere
        return cast(np.ndarray, limit | bad_h | np.any(bad_d, axis=1))

    def stopped(self, rows: np.ndarray, win: dict[str, Any]) -> np.ndarray:
        """The growth rules: whether each row's current direction has run its course."""
        d = self.direction[rows]
        down = d == _DOWN
        w0 = win["w0"]
        err, raw, resolved = win["err"], win["raw"], win["resolved"]
        nw = err.shape[1]
        r_idx = np.arange(rows.size)
        # Newest window in the direction, and how many windows the direction has.
        newest = np.where(down, self.hi[rows] - 3, self.lo[rows]) + self.off - win["c0"]
        length = np.where(down, self.hi[rows] - 3, -self.lo[rows]) + 1
        back = np.where(down, -1, 1)  # from the newest towards window 0
        e_best = win["e_best"]

        def at(j: np.ndarray, a: np.ndarray) -> np.ndarray:
            return cast(np.ndarray, a[r_idx, np.clip(j, 0, nw - 1)])  # (r, m)

        j1, j2, j3 = newest, newest + back, newest + 2 * back
        grown = (length >= 3)[:, None] & (at(j1, err) > e_best) & (at(j2, err) > e_best)
        stop = win["trusted"] & grown
        # Towards small steps the growth must look like noise, not like garbage.
        stop &= ~down[:, None] | (at(j1, resolved) & at(j2, resolved))

        # No trusted minimum needed after three windows in a row that are no
        # improvement, the newest unvalidated estimate more than twice the
        # smallest before it in this direction; towards small steps they must
        # also be resolved (growing noise, not garbage).
        def no_better(j: np.ndarray) -> np.ndarray:
            e = at(j, err)
            return cast(
                np.ndarray, (at(j, resolved) | ~down[:, None]) & ~(np.isfinite(e) & (e <= e_best))
            )

        cols = np.arange(nw)[None, :]
        lo_c = np.where(down, w0, newest + 1)[:, None]
        hi_c = np.where(down, newest - 1, w0)[:, None]
        before = (cols >= lo_c) & (cols <= hi_c)  # window 0 .. the one before the newest
        raw_min = np.min(np.where(before[:, :, None], raw, np.inf), axis=1)
        growing = (length >= 4)[:, None] & no_better(j1) & no_better(j2) & no_better(j3)
        growing &= at(j1, raw) > 2.0 * raw_min
        return cast(np.ndarray, np.all(stop | growing, axis=1))

    # -- the search ----------------------------------------------------------

    def run(self) -> None:
        """The first window for every row, then one level per active row per round."""
        all_rows = np.arange(self.nrows, dtype=np.int64)
        self.fetch(np.repeat(all_rows, 4), np.tile(np.arange(4, dtype=np.int64), self.nrows))
        if self.m == 0:
            return
        win = self.assess(all_rows)
        todo = all_rows[~win["accepted"]]
        if todo.size:
            w0 = win["w0"]
            e0 = win["err"][todo, w0]
            v0 = np.abs(win["T"][todo, w0])
            n0 = win["noise"][todo, w0]
            with np.errstate(invalid="ignore"):
                fail = ~(np.isfinite(e0) & (e0 <= np.maximum(RTOL_ACCEPT * v0, NOISE_ACCEPT * n0)))
            noisy = np.all(win["noise_like"][todo, w0] | ~fail, axis=1)
            prefer = np.where(noisy, _UP, _DOWN)
            ok_first = ~self.blocked(todo, prefer)
            ok_other = ~self.blocked(todo, -prefer)
            self.direction[todo] = np.where(ok_first, prefer, np.where(ok_other, -prefer, _DONE))
            self.switched[todo] = ~ok_first
        while True:
            active = np.flatnonzero(self.direction != _DONE)
            if active.size == 0:
                break
            down = self.direction[active] == _DOWN
            self.fetch(active, np.where(down, self.hi[active] + 1, self.lo[active] - 1))
            win = self.assess(active)
            d = self.direction[active]
            finished = win["accepted"]
            turn = ~finished & (self.blocked(active, d) | self.stopped(active, win))
            can_turn = turn & ~self.switched[active] & ~self.blocked(active, -d)
            self.direction[active[finished | (turn & ~can_turn)]] = _DONE
            self.direction[active[can_turn]] = -d[can_turn]
            self.switched[active[can_turn]] = True

    def result(self) -> RichardsonResult:
        """Per output, the valid window of smallest error (or the fallback)."""
        rows = np.arange(self.nrows, dtype=np.int64)
        win = self.assess(rows)
        w, err = win["w_best"], win["e_best"]
        value = np.take_along_axis(win["T"], w[:, None, :], axis=1)[:, 0, :]
        step_e = np.take_along_axis(win["step"], w, axis=1)  # (r, m)

        none_valid = ~np.isfinite(err)
        if np.any(none_valid):
            raw = win["raw"]
            w_raw = np.argmin(raw, axis=1)
            raw_min = np.take_along_axis(raw, w_raw[:, None, :], axis=1)[:, 0, :]
            raw_val = np.take_along_axis(win["T"], w_raw[:, None, :], axis=1)[:, 0, :]
            raw_step = np.take_along_axis(win["step"], w_raw, axis=1)
            # No finite window: the central difference at the smallest finite-D step.
            finite_d = np.isfinite(self.D)  # (r, L, m)
            last = self.nlev - 1 - np.argmax(finite_d[:, ::-1, :], axis=1)  # (r, m)
            any_finite = np.any(finite_d, axis=1)
            d_val = np.take_along_axis(self.D, last[:, None, :], axis=1)[:, 0, :]
            d_val = np.where(any_finite, d_val, np.nan)
            d_step = np.where(any_finite, np.take_along_axis(self.H, last, axis=1), np.nan)
            has_raw = np.isfinite(raw_min)
            value = np.where(none_valid, np.where(has_raw, raw_val, d_val), value)
            step_e = np.where(none_valid, np.where(has_raw, raw_step, d_step), step_e)
            err = np.where(none_valid, np.inf, err)

        with np.errstate(all="ignore"):
            score = err / np.maximum(np.abs(value), np.finfo(np.float64).tiny)
        score = np.where(np.isnan(score), np.inf, score)
        worst = np.argmax(score, axis=1) if score.shape[1] else np.zeros(self.nrows, np.intp)
        if not score.shape[1]:
            step_e = np.full((self.nrows, 1), np.nan)
        return RichardsonResult(
            value=np.ascontiguousarray(value, dtype=np.float64),
            error=np.ascontiguousarray(err, dtype=np.float64),
            step=np.asarray(step_e[rows, worst], dtype=np.float64),
            levels_used=np.sum(self.have, axis=1).astype(np.int64),
        )
