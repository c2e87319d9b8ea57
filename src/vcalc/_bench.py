"""``python -m vcalc bench``: a short benchmark of vcalc beside its peers, as ratios.

A quick, dependency-free version of the pytest-benchmark suites in the
repository's ``benchmarks/`` folder: for each case it first checks that every
implementation's output matches vcalc's NumPy reference, then times each one
(median of repeated runs, interleaved so that a change of machine load hits
all of them alike) and prints one table per family with each peer's time as a
multiple of vcalc's (above 1: vcalc is faster) and vcalc's time as a multiple
of the limit where there is one.

Peers: ``np.exp(a, out=b)`` (the limit of a reduction: it computes as many
exponentials), a careful NumPy expression, ``scipy.special`` and
``scipy.optimize`` when installed, and for finite differences the floor: a
plain loop making the same calls of f on prebuilt points.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

__all__ = ["run"]


@dataclass
class Case:
    """One benchmark case: implementations by label, and which is the limit."""

    family: str
    label: str
    impls: dict[str, Callable[[], Any]]
    expected: Any = None  # the reference result every checked impl must match
    rtol: float = 1e-10
    unchecked: set[str] = field(default_factory=set)  # limits and floors
    limit: str | None = None


def _peer(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _median_times(impls: dict[str, Callable[[], Any]], budget: float) -> dict[str, float]:
    """Median seconds per call of each implementation, timed in interleaved rounds."""
    calls = {}
    for name, fn in impls.items():  # calls per sample: about 2 ms of work
        t0 = time.perf_counter()
        fn()
        dt = max(time.perf_counter() - t0, 1e-7)
        calls[name] = max(1, min(10_000, int(2e-3 / dt)))
    samples: dict[str, list[float]] = {name: [] for name in impls}
    deadline = time.perf_counter() + budget
    rounds = 0
    while rounds < 5 or (time.perf_counter() < deadline and rounds < 200):
        for name, fn in impls.items():
            k = calls[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            samples[name].append((time.perf_counter() - t0) / k)
        rounds += 1
    return {name: float(np.median(s)) for name, s in samples.items()}


def _close(got: Any, want: Any, rtol: float) -> bool:
    """Whether `got` matches `want` within rtol of the largest entry of `want`."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    return bool(np.allclose(got, want, rtol=rtol, atol=rtol * scale))


def _check(case: Case) -> list[str]:
    """Names of implementations whose output does not match the reference.

    vcalc must match to the case's tolerance; a peer to 1e-4 of the largest
    entry (peers are less accurate, e.g. NumPy's log_softmax near 0: the check
    is there to catch timing the wrong computation, not to grade them).
    """
    bad = []
    for name, fn in case.impls.items():
        if name in case.unchecked:
            continue
        rtol = case.rtol if name == "vcalc" else max(case.rtol, 1e-4)
        got, want = fn(), case.expected
        if isinstance(want, tuple):
            ok = all(_close(g, w, rtol) for g, w in zip(got, want, strict=True))
        else:
            ok = _close(got, want, rtol)
        if not ok:
            bad.append(name)
    return bad


def _reduction_cases(rng: np.random.Generator) -> list[Case]:
    import vcalc
    from vcalc import reference

    special = _peer("scipy.special")
    cases = []
    for dtype in ("float64", "float32"):
        for shape in ((1, 1_000_000), (10_000, 100), (100_000, 10)):
            a = (rng.standard_normal(shape) * 5).astype(dtype)
            out = np.empty_like(a)
            for name in ("softmax", "log_softmax", "logsumexp"):
                impls: dict[str, Callable[[], Any]] = {
                    "vcalc": lambda a=a, name=name: getattr(vcalc, name)(a, axis=-1),
                    "numpy": lambda a=a, name=name: _NUMPY_REDUCTIONS[name](a),
                }
                if special is not None:
                    impls["scipy"] = lambda a=a, name=name: getattr(special, name)(a, axis=-1)
                impls["np.exp"] = lambda a=a, out=out: np.exp(a, out=out)
                cases.append(
                    Case(
                        name,
                        f"{dtype} {shape}",
                        impls,
                        getattr(reference, name)(a, axis=-1),
                        1e-10 if dtype == "float64" else 2e-5,
                        {"np.exp"},
                        "np.exp",
                    )
                )
    return cases


def _np_softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _np_log_softmax(a: np.ndarray) -> np.ndarray:
    t = a - a.max(axis=-1, keepdims=True)
    return t - np.log(np.exp(t).sum(axis=-1, keepdims=True))


def _np_logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=-1, keepdims=True)))[..., 0]


_NUMPY_REDUCTIONS = {
    "softmax": _np_softmax,
    "log_softmax": _np_log_softmax,
    "logsumexp": _np_logsumexp,
}


def _quadratic_cases(rng: np.random.Generator) -> list[Case]:
    import vcalc
    from vcalc import reference

    cases = []
    for dtype in ("float64", "float32"):
        for n in (2, 3, 8, 64):
            B = 4_000_000 // n
            A = rng.standard_normal((n, n)).astype(dtype)
            X = rng.standard_normal((B, n)).astype(dtype)

            def best_numpy(A: np.ndarray = A, X: np.ndarray = X) -> tuple:
                G = X @ (A + A.T)
                return 0.5 * np.einsum("bi,bi->b", G, X), G

            cases.append(
                Case(
                    "quadratic_form_value_and_grad",
                    f"{dtype} n={n} B={B}",
                    {
                        "vcalc": lambda A=A, X=X: vcalc.quadratic_form_value_and_grad(A, X),
                        "numpy": best_numpy,
                    },
                    reference.quadratic_form_value_and_grad(A, X),
                    1e-9 if dtype == "float64" else 1e-3,
                )
            )
    return cases


def _fd_cases(rng: np.random.Generator) -> list[Case]:
    import vcalc

    optimize = _peer("scipy.optimize")

    def f(x: np.ndarray) -> Any:
        return np.dot(x, x) + x[0]

    cases = []
    for n in (2, 10, 100):
        x = 0.1 * rng.standard_normal(n)
        exact = 2 * x
        exact[0] += 1.0
        h = 6e-6
        pts = [x + s * h * e for e in np.eye(n) for s in (1.0, -1.0)]  # 2n points

        def floor(pts: list = pts) -> None:
            for p in pts:
                f(p)

        impls: dict[str, Callable[[], Any]] = {
            "vcalc": lambda x=x: vcalc.gradient(f, x),
            "floor": floor,
        }
        if optimize is not None:
            from scipy.optimize._numdiff import approx_derivative

            impls["approx_derivative"] = lambda x=x: approx_derivative(f, x, method="3-point")
        cases.append(
            Case(
                "gradient (central, 2n calls of f)",
                f"n={n}",
                impls,
                exact,
                1e-7,
                {"floor"},
                "floor",
            )  # fmt: skip
        )
    return cases


def run(quick: bool = True, file: TextIO | None = None, seed: int = 0) -> bool:
    """Run the short benchmark and print the ratio tables; False if a check failed.

    Parameters
    ----------
    quick : bool, default True
        About 0.2 s of timing per case (a minute in all); False gives 1 s.
    file : text stream, optional
        Where to print (default ``sys.stdout``).
    seed : int, default 0
        Seed of the random data.

    Returns
    -------
    bool
        True when every implementation matched the reference.
    """
    out = file if file is not None else sys.stdout
    rng = np.random.default_rng(seed)
    budget = 0.2 if quick else 1.0
    families: dict[str, list[tuple[Case, dict[str, float]]]] = {}
    ok = True
    for case in _reduction_cases(rng) + _quadratic_cases(rng) + _fd_cases(rng):
        bad = _check(case)
        if bad:
            ok = False
            print(f"MISMATCH {case.family} {case.label}: {', '.join(bad)}", file=out)
            continue
        families.setdefault(case.family, []).append((case, _median_times(case.impls, budget)))
    for family, rows in families.items():
        peers = [p for p in rows[0][0].impls if p not in ("vcalc", rows[0][0].limit)]
        limit = rows[0][0].limit
        head = f"{'case':<22} {'vcalc':>10}"
        head += "".join(f" {p + '/vcalc':>22}" for p in peers)
        head += f" {'vcalc/' + limit:>16}" if limit else ""
        print(f"\n{family}  (median time per call; ratios above 1: vcalc is faster)", file=out)
        print(head, file=out)
        for case, t in rows:
            line = f"{case.label:<22} {_fmt(t['vcalc']):>10}"
            line += "".join(f" {t[p] / t['vcalc']:>22.2f}" for p in peers)
            if limit:
                line += f" {t['vcalc'] / t[limit]:>16.2f}"
            print(line, file=out)
    return ok


def _fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"
