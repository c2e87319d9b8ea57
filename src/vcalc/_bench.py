"""``python -m vcalc bench``: a short benchmark of vcalc beside its peers, as ratios.

A quick, dependency-free version of the pytest-benchmark suites in the
repository's ``benchmarks/`` folder (``benchmarks/report.py`` runs the long
version and writes ``benchmarks/RESULTS.md``).  It first prints the facts of
the machine, then for each case checks that every implementation's output
matches vcalc's NumPy reference (:mod:`vcalc.reference`), times each one
(median of repeated runs, interleaved so that a change of machine load hits
all of them alike, in a new order each round so that none always runs right
after the same one) and prints one table per family: vcalc's time per call and
per element (or row), each peer's time as a multiple of vcalc's (above 1:
vcalc is faster) and vcalc's time as a multiple of the limit where there is
one.  A last table holds the targets of the performance issue, measured in
this run.

Families and peers:

* ``softmax``, ``log_softmax``, ``logsumexp`` over the last axis, float64 and
  float32, at (1, 1e6), (1e4, 100), (1e5, 10) and (10, 100) (1000 elements:
  the cost of a call): a careful NumPy expression, ``scipy.special``, torch
  on the CPU with one thread (when importable; the tensor shares the array's
  memory and is made once, outside the timing) and the limit
  ``np.exp(a, out=b)``: it computes as many exponentials, and is not checked.
  softmax and log_softmax also show vcalc's time over ``np.exp(a)``, which
  allocates its result as they do: timed between peers that free large
  temporaries, a new array of 1e6 elements can cost as much as the
  exponentials (fresh pages, zeroed by the kernel).
* ``exp``: vcalc's vectorised exp (``vcalc._kernels.vexp``) against
  ``np.exp(x, out=y)``, checked entry by entry (relative difference at most
  4e-16 for float64, 2e-7 for float32), at 1e6 elements (16 or 8 MB of
  traffic: more than L2), 1e5 (in L2) and 1000.  Beside them, the memory
  floor ``np.copyto(y, x)``, which reads and writes as many bytes and
  computes nothing: ``np.exp/copy`` is the most any exp could gain on
  np.exp at that size on this machine.
* ``quadratic_form_value_and_grad`` and ``quadratic_form_grad`` with
  B * n = 4e6 rows: NumPy's best expression (``G = X @ (A + A.T)``,
  ``v = 0.5 * np.einsum('bi,bi->b', G, X)``) and its torch equivalent; the
  value-and-gradient table also shows its time over the gradient alone.
  Beside them, the floor: ``X.copy()`` (and a new ``v`` filled), which
  reads X once and writes new arrays of the result's sizes, as any
  implementation returning new arrays must; ``numpy/floor`` is the most
  any implementation could gain on NumPy's expression here.
* ``threads``: softmax of a (1e4, 1000) float64 array with
  ``vcalc.num_threads(2)`` against one thread (run first, before torch is
  imported).
* finite differences: ``vcalc.gradient`` beside scipy's ``approx_derivative``
  and the floor (a plain loop making the same calls of f).

BLAS (NumPy's matmul, used by NumPy, by the torch peer and by vcalc's
quadratic forms above its one-pass kernel: float64 / float32 n > 32 / 64
on the AVX-512 path, 16 / 32 on the AVX2 path, n > 8 elsewhere) runs with however many
threads NumPy's BLAS uses; vcalc's own kernels and torch run on one thread
except in the ``threads`` family.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

import numpy as np

__all__ = ["run", "machine_facts"]


@dataclass
class Case:
    """One benchmark case: implementations by label, and which is the limit.

    `expected` (or a function of no arguments computing it, called once at
    check time) is what every implementation not in `unchecked` must return;
    `expected_of` gives other results for some implementations (e.g. the
    gradient alone, timed beside the value and gradient).  Implementations in
    `side` are timed but shown only through `extras`: columns
    ``header -> (numerator, denominator)`` of time ratios.  `per` is the
    unit and count (``("elem", a.size)``) of the time-per-unit column, and
    `key` names the case for the targets table.
    """

    family: str
    label: str
    # Called with no arguments; Callable[..., Any] because mypy cannot infer the
    # type of a lambda with default arguments in a Callable[[], Any] context.
    impls: dict[str, Callable[..., Any]]
    expected: Any = None  # the reference result every checked impl must match
    rtol: float = 1e-10
    unchecked: set[str] = field(default_factory=set)  # limits and floors
    limit: str | None = None
    relative: bool = False  # check each entry to rtol of itself, not of the largest one
    expected_of: dict[str, Any] = field(default_factory=dict)
    side: set[str] = field(default_factory=set)
    extras: dict[str, tuple[str, str]] = field(default_factory=dict)
    per: tuple[str, int] | None = None
    key: tuple[Any, ...] = ()
    peer_rtol: float = 1e-4  # the peers' tolerance (when above rtol)


@dataclass
class _Row:
    """What is kept of a timed case for its table (not its arrays)."""

    label: str
    times: dict[str, float]
    peers: list[str]
    limit: str | None
    extras: dict[str, tuple[str, str]]
    per: tuple[str, int] | None


def _peer(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@functools.cache
def _torch() -> Any:
    """torch, set to one thread, or None when it is not importable (never a dependency)."""
    torch = _peer("torch")
    if torch is not None:
        torch.set_num_threads(1)
    return torch


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _blas() -> str:
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except Exception:  # the layout of show_config's dict is not an API
        return "unknown"


def machine_facts() -> list[str]:
    """The facts of the machine and of the software a benchmark ran with, one a line."""
    from vcalc import __version__, _backend

    cfg = _backend.config()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    facts = [
        f"CPU: {_cpu_model()} ({platform.machine()}), {os.cpu_count()} logical cores, "
        f"{usable} usable by this process",
        f"OS: {platform.platform()}; Python {platform.python_version()}",
    ]
    try:
        with open("/proc/loadavg", encoding="utf-8") as f:
            facts.append(f"load average at start: {' '.join(f.read().split()[:3])}")
    except OSError:
        pass
    if cfg.get("extension"):
        facts.append(
            f"vcalc {__version__}: simd path {cfg.get('simd', '?')} "
            f"(CPU best: {cfg.get('simd_cpu_best', '?')}), OpenMP {cfg.get('openmp', '?')}, "
            f"{cfg.get('compiler', '?')} {cfg.get('build_flags', '')}".rstrip()
        )
    else:
        facts.append(f"vcalc {__version__}: compiled extension missing (NumPy backend)")
    facts.append(
        f"numpy {np.__version__} (BLAS: {_blas()}), scipy {_version('scipy')}, "
        f"torch {_version('torch')}"
    )
    env = ", ".join(
        f"{v}={os.environ[v]}"
        for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        if v in os.environ
    )
    facts.append(
        "threads: vcalc and torch 1 (except in the 'threads' family); BLAS threads are "
        "whatever NumPy's BLAS uses" + (f" ({env})" if env else " (no *_NUM_THREADS set)")
    )
    return facts


def _median_times(impls: dict[str, Callable[..., Any]], budget: float) -> dict[str, float]:
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
    # A new order each round: what runs just before a call matters (a peer
    # that frees large temporaries leaves the next large allocation fresh
    # pages to fault in, and evicts the caches), so no implementation may
    # always follow the same one.
    order = np.random.default_rng(12345)
    names = list(impls)
    while rounds < 5 or (time.perf_counter() < deadline and rounds < 200):
        for i in order.permutation(len(names)):
            name = names[i]
            fn = impls[name]
            k = calls[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            samples[name].append((time.perf_counter() - t0) / k)
        rounds += 1
    return {name: float(np.median(s)) for name, s in samples.items()}


def _close(got: Any, want: Any, rtol: float, relative: bool = False) -> bool:
    """Whether `got` matches `want` within rtol of the largest entry of `want`.

    With `relative`, each entry must be within rtol of itself (zeros and
    infinities exactly equal).
    """
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False
    if relative:
        with np.errstate(invalid="ignore", divide="ignore"):
            err = np.abs(got - want) / np.abs(want)
        exact = (want == 0) | np.isinf(want)
        return bool(np.all(np.where(exact, got == want, err <= rtol)))
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    return bool(np.allclose(got, want, rtol=rtol, atol=rtol * scale))


def _resolve(want: Any) -> Any:
    return want() if callable(want) else want


def _check(case: Case) -> list[str]:
    """Names of implementations whose output does not match the reference.

    vcalc (and every vcalc variant timed beside it) must match to the case's
    tolerance; a peer to ``peer_rtol`` (default 1e-4) of the largest entry
    (peers are less accurate, e.g. NumPy's log_softmax near 0, or torch's
    float32 softmax, which sums a row of 1e6 in float32: the check is there to
    catch timing the wrong computation, not to grade them).  An
    implementation that raises does not match.
    """
    bad = []
    wants: dict[int, Any] = {}  # each expected result computed once
    for name, fn in case.impls.items():
        if name in case.unchecked:
            continue
        spec = case.expected_of.get(name, case.expected)
        if id(spec) not in wants:
            wants[id(spec)] = _resolve(spec)
        want = wants[id(spec)]
        own = name == "vcalc" or name in case.side
        rtol = case.rtol if own else max(case.rtol, case.peer_rtol)
        try:
            got = fn()
            if isinstance(want, tuple):
                ok = len(got) == len(want) and all(
                    _close(g, w, rtol, case.relative) for g, w in zip(got, want, strict=True)
                )
            else:
                ok = _close(got, want, rtol, case.relative)
        except Exception:
            ok = False
        if not ok:
            bad.append(name)
    return bad


# ---------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------

#: Shapes of the reductions; the last one (1000 elements) shows the cost of a call.
REDUCTION_SHAPES = ((1, 1_000_000), (10_000, 100), (100_000, 10), (10, 100))
#: n of the quadratic forms, each with B = 4_000_000 // n rows.
QUADRATIC_N = (2, 3, 8, 16, 32, 64)


def _np_softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return cast(np.ndarray, e)


def _np_log_softmax(a: np.ndarray) -> np.ndarray:
    t = a - a.max(axis=-1, keepdims=True)
    return cast(np.ndarray, t - np.log(np.exp(t).sum(axis=-1, keepdims=True)))


def _np_logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(axis=-1, keepdims=True)
    return cast(np.ndarray, (m + np.log(np.exp(a - m).sum(axis=-1, keepdims=True)))[..., 0])


_NUMPY_REDUCTIONS = {
    "softmax": _np_softmax,
    "log_softmax": _np_log_softmax,
    "logsumexp": _np_logsumexp,
}


def _torch_reduction(torch: Any, name: str, t: Any) -> Callable[[], Any]:
    fn = {"softmax": torch.softmax, "log_softmax": torch.log_softmax}.get(name, torch.logsumexp)
    return lambda: fn(t, dim=-1)


def _reduction_cases(rng: np.random.Generator) -> Iterator[Case]:
    import vcalc
    from vcalc import reference

    special = _peer("scipy.special")
    torch = _torch()
    arrays = {
        (dtype, shape): (rng.standard_normal(shape) * 5).astype(dtype)
        for dtype in ("float64", "float32")
        for shape in REDUCTION_SHAPES
    }
    for name in ("softmax", "log_softmax", "logsumexp"):  # one table each
        for (dtype, shape), a in arrays.items():
            out = np.empty_like(a)
            impls: dict[str, Callable[..., Any]] = {
                "vcalc": lambda a=a, name=name: getattr(vcalc, name)(a, axis=-1),
                "numpy": lambda a=a, name=name: _NUMPY_REDUCTIONS[name](a),
            }
            if special is not None:
                impls["scipy"] = lambda a=a, name=name: getattr(special, name)(a, axis=-1)
            if torch is not None:
                impls["torch"] = _torch_reduction(torch, name, torch.from_numpy(a))
            impls["np.exp"] = lambda a=a, out=out: np.exp(a, out=out)
            # softmax and log_softmax return a new array of a's size, as
            # np.exp(a) does: its time shows what the allocation (fresh
            # pages, when the peers' frees gave memory back) adds to the limit
            alloc = name != "logsumexp"
            if alloc:
                impls["np.exp(a)"] = lambda a=a: np.exp(a)
            yield Case(
                name,
                f"{dtype} {shape}",
                impls,
                lambda a=a, name=name: getattr(reference, name)(a, axis=-1),
                1e-10 if dtype == "float64" else 2e-5,
                {"np.exp", "np.exp(a)"},
                "np.exp",
                per=("elem", a.size),
                key=("reduction", name, dtype, shape),
                peer_rtol=1e-4 if dtype == "float64" else 1e-3,
                side={"np.exp(a)"} if alloc else set(),
                extras={"vcalc/np.exp(a)": ("vcalc", "np.exp(a)")} if alloc else {},
            )


#: Largest relative difference allowed between vcalc's exp and np.exp.
EXP_RTOL = {"float64": 4e-16, "float32": 2e-7}
#: Sizes of the exp cases: beyond L2 (the issue's 1e6), in L2, and a short call.
EXP_SIZES = (1_000_000, 100_000, 1000)


def _exp_cases(rng: np.random.Generator) -> Iterator[Case | str]:
    kernels = _peer("vcalc._kernels")
    vexp = getattr(kernels, "vexp", None)
    if vexp is None:
        yield "exp: skipped (vcalc._kernels.vexp is not available in this build)"
        return
    # Most of the finite range: no overflow, no subnormal results.
    span = {"float64": (-700.0, 700.0), "float32": (-87.0, 88.0)}
    for dtype in ("float64", "float32"):
        for size in EXP_SIZES:
            x = rng.uniform(*span[dtype], size).astype(dtype)
            y, z, w = np.empty_like(x), np.empty_like(x), np.empty_like(x)

            def ours(x: np.ndarray = x, y: np.ndarray = y) -> np.ndarray:
                vexp(x, y)
                return y

            lo, hi = span[dtype]
            yield Case(
                "exp",
                f"{dtype} n={size} [{lo:g}, {hi:g}]",
                {
                    "vcalc": ours,
                    "np.exp": lambda x=x, z=z: np.exp(x, out=z),
                    "copy": lambda x=x, w=w: np.copyto(w, x),
                },
                # The reference is exp in more precision than the result
                # (np.exp's own float32 exp is off by up to 2e-7 here).
                lambda x=x: np.exp(
                    x.astype(np.float64 if x.dtype == np.float32 else np.longdouble)
                ),
                EXP_RTOL[dtype],
                {"np.exp", "copy"},
                "np.exp",
                relative=True,
                side={"copy"},
                extras={"vcalc/copy": ("vcalc", "copy"), "np.exp/copy": ("np.exp", "copy")},
                per=("elem", size),
                key=("exp", dtype, size),
            )


def _quadratic_cases(rng: np.random.Generator) -> Iterator[Case]:
    import vcalc
    from vcalc import reference

    torch = _torch()
    dtypes = ("float64", "float32")
    keys = [(d, n) for d in dtypes for n in QUADRATIC_N]
    seeds = dict(zip(keys, rng.integers(2**32, size=len(keys)).tolist(), strict=True))

    def operands(dtype: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        r = np.random.default_rng(seeds[dtype, n])  # the same data in both families
        A = r.standard_normal((n, n)).astype(dtype)
        return A, r.standard_normal((4_000_000 // n, n)).astype(dtype)

    for family in ("quadratic_form_value_and_grad", "quadratic_form_grad"):
        for dtype in dtypes:
            for n in QUADRATIC_N:
                A, X = operands(dtype, n)
                B = X.shape[0]
                both = family == "quadratic_form_value_and_grad"

                def best_numpy(A: np.ndarray = A, X: np.ndarray = X, both: bool = both) -> Any:
                    G = X @ (A + A.T)
                    return (0.5 * np.einsum("bi,bi->b", G, X), G) if both else G

                impls: dict[str, Callable[..., Any]] = {
                    "vcalc": (
                        (lambda A=A, X=X: vcalc.quadratic_form_value_and_grad(A, X))
                        if both
                        else (lambda A=A, X=X: vcalc.quadratic_form_grad(A, X))
                    ),
                    "numpy": best_numpy,
                }
                if torch is not None:
                    At, Xt = torch.from_numpy(A), torch.from_numpy(X)

                    def best_torch(At: Any = At, Xt: Any = Xt, both: bool = both) -> Any:
                        G = Xt @ (At + At.T)
                        return (0.5 * torch.einsum("bi,bi->b", G, Xt), G) if both else G

                    impls["torch"] = best_torch
                case = Case(
                    family,
                    f"{dtype} n={n} B={B}",
                    impls,
                    functools.partial(getattr(reference, family), A, X),
                    1e-9 if dtype == "float64" else 1e-4,
                    per=("row", B),
                    key=(family, dtype, n),
                )
                # The floor: read X once, write new arrays of the result's sizes.
                if both:

                    def floor(X: np.ndarray = X) -> Any:
                        v = np.empty(X.shape[0], X.dtype)
                        v.fill(0.0)
                        return v, X.copy()

                else:

                    def floor(X: np.ndarray = X) -> Any:
                        return X.copy()

                case.impls["floor"] = floor
                case.side.add("floor")
                case.unchecked.add("floor")
                case.extras["numpy/floor"] = ("numpy", "floor")
                if both:  # the gradient alone, timed beside: v+g / grad
                    case.impls["vcalc grad"] = lambda A=A, X=X: vcalc.quadratic_form_grad(A, X)
                    case.expected_of["vcalc grad"] = functools.partial(
                        reference.quadratic_form_grad, A, X
                    )
                    case.side.add("vcalc grad")
                    case.extras["v+g/grad"] = ("vcalc", "vcalc grad")
                yield case


def _thread_cases(rng: np.random.Generator) -> Iterator[Case | str]:
    import vcalc
    from vcalc import _backend, reference

    if _backend.config().get("max_threads", 1) < 2:
        yield "threads: skipped (fewer than 2 CPUs usable, or OMP_NUM_THREADS=1)"
        return
    a = rng.standard_normal((10_000, 1000)) * 5

    def two() -> Any:
        with vcalc.num_threads(2):
            return vcalc.softmax(a, axis=-1)

    def one() -> Any:
        with vcalc.num_threads(1):
            return vcalc.softmax(a, axis=-1)

    yield Case(
        "threads (vcalc.num_threads(2) vs 1 thread)",
        "softmax float64 (10000, 1000)",
        {"vcalc": two, "1 thread": one},
        lambda: reference.softmax(a, axis=-1),
        1e-10,
        side={"1 thread"},
        extras={"speed-up": ("1 thread", "vcalc")},
        per=("elem", a.size),
        key=("threads", "softmax"),
    )


def _fd_cases(rng: np.random.Generator) -> Iterator[Case]:
    import vcalc

    optimize = _peer("scipy.optimize")

    def f(x: np.ndarray) -> Any:
        return np.dot(x, x) + x[0]

    for n in (2, 10, 100):
        x = 0.1 * rng.standard_normal(n)
        exact = 2 * x
        exact[0] += 1.0
        h = 6e-6
        pts = [x + s * h * e for e in np.eye(n) for s in (1.0, -1.0)]  # 2n points

        def floor(pts: list[np.ndarray] = pts) -> None:
            for p in pts:
                f(p)

        impls: dict[str, Callable[..., Any]] = {
            "vcalc": lambda x=x: vcalc.gradient(f, x),
            "floor": floor,
        }
        if optimize is not None:
            # SciPy ships no type information (scipy-stubs is not a dependency).
            from scipy.optimize._numdiff import (  # type: ignore[import-untyped, unused-ignore]
                approx_derivative,
            )

            impls["approx_derivative"] = lambda x=x: approx_derivative(f, x, method="3-point")
        yield Case(
            "gradient (central, 2n calls of f)",
            f"n={n}",
            impls,
            exact,
            1e-7,
            {"floor"},
            "floor",
        )  # fmt: skip


#: The case builders, in the order of the tables (looked up by name when run).  The
#: threads case comes first, before torch is imported: torch brings an OpenMP
#: runtime of its own, and a second runtime in the process can cost vcalc's
#: threads (seen here: 0.86x instead of 0.98x with the other core busy).
_BUILDERS = ("_thread_cases", "_reduction_cases", "_exp_cases", "_quadratic_cases", "_fd_cases")


# ---------------------------------------------------------------------------
# The targets of the performance issue ("Done when"), checked on this run
# ---------------------------------------------------------------------------


def _ratio(num: str, den: str) -> Callable[[dict[str, float]], float]:
    return lambda t: t[num] / t[den]


#: A performance target: (what, case key, measure of the case's times, "<=" or ">=", bound).
_Target = tuple[str, tuple[Any, ...], Callable[[dict[str, float]], float], str, float]

#: Where a target has a ceiling measured in the same run -- the value the
#: measure would take if vcalc ran as fast as the memory floor -- the name
#: of that floor's ratio, by the target's case key family.
_CEILINGS: dict[str, tuple[str, str, str]] = {
    "exp": ("np.exp/copy", "np.exp", "copy"),
    "quadratic_form_value_and_grad": ("numpy/floor", "numpy", "floor"),
}


def _targets() -> list[_Target]:
    """(what, case key, measure of the case's times, "<=" or ">=", bound)."""
    big = REDUCTION_SHAPES[:3]
    out: list[_Target] = []
    bounds = {"float64": (1.2, 1.2, 1.3), "float32": (1.3, 1.5, 2.5)}
    for name in ("softmax", "log_softmax"):
        for dtype, lims in bounds.items():
            for shape, lim in zip(big, lims, strict=True):
                out.append(
                    (
                        f"{name} {dtype} {shape}: vcalc/np.exp",
                        ("reduction", name, dtype, shape),
                        _ratio("vcalc", "np.exp"),
                        "<=",
                        lim,
                    )
                )
    for shape, lim in zip(big, (1.0, 1.0, 1.4), strict=True):
        out.append(
            (
                f"logsumexp float64 {shape}: vcalc/np.exp",
                ("reduction", "logsumexp", "float64", shape),
                _ratio("vcalc", "np.exp"),
                "<=",
                lim,
            )
        )
    for dtype in ("float64", "float32"):
        for shape in REDUCTION_SHAPES:
            out.append(
                (
                    f"logsumexp {dtype} {shape}: scipy/vcalc",
                    ("reduction", "logsumexp", dtype, shape),
                    _ratio("scipy", "vcalc"),
                    ">=",
                    10.0,
                )
            )
    for name in ("softmax", "log_softmax", "logsumexp"):
        for dtype in ("float64", "float32"):
            out.append(
                (
                    f"{name} {dtype} {REDUCTION_SHAPES[3]}: us per call",
                    ("reduction", name, dtype, REDUCTION_SHAPES[3]),
                    lambda t: t["vcalc"] * 1e6,
                    "<=",
                    3.0,
                )
            )
    for dtype in ("float64", "float32"):
        for size, where in ((1_000_000, ""), (100_000, " (in L2)")):
            out.append(
                (
                    f"exp {dtype} n={size}{where}: np.exp/vcalc",
                    ("exp", dtype, size),
                    _ratio("np.exp", "vcalc"),
                    ">=",
                    1.8,
                )
            )
    for n, lim in ((2, 8.0), (3, 8.0), (8, 3.0), (64, 1.0)):
        out.append(
            (
                f"value_and_grad float64 n={n}: numpy/vcalc",
                ("quadratic_form_value_and_grad", "float64", n),
                _ratio("numpy", "vcalc"),
                ">=",
                lim,
            )
        )
    for n in QUADRATIC_N:
        out.append(
            (
                f"value_and_grad float64 n={n}: v+g/grad",
                ("quadratic_form_value_and_grad", "float64", n),
                _ratio("vcalc", "vcalc grad"),
                "<=",
                1.5,
            )
        )
    out.append(
        (
            "softmax float64 (10000, 1000): 2-thread speed-up (idle machine)",
            ("threads", "softmax"),
            _ratio("1 thread", "vcalc"),
            ">=",
            1.7,
        )
    )
    return out


def _print_targets(results: dict[tuple[Any, ...], dict[str, float]], out: TextIO) -> None:
    lines = []
    for what, key, measure, op, bound in _targets():
        if key not in results:
            continue
        try:
            value = measure(results[key])
        except KeyError:  # a peer that is not installed
            continue
        ok = value <= bound if op == "<=" else value >= bound
        line = f"{what:<62} {value:>8.2f} {op} {bound:<5g} {'ok' if ok else 'MISSED'}"
        ceiling = _CEILINGS.get(key[0])
        times = results[key]
        if not ok and ceiling and ceiling[1] in times and ceiling[2] in times:
            name, num, den = ceiling
            line += f"  (memory ceiling {name}: {times[num] / times[den]:.2f})"
        lines.append(line)
    if lines:
        print(
            "\ntargets of issue 4 ('Done when'), measured in this run "
            "(meant for an idle machine: see the load average above); a memory "
            "ceiling is what the ratio would be if vcalc ran at the speed of the "
            "floor (a copy of as many bytes), timed beside it",
            file=out,
        )
        for line in lines:
            print(line, file=out)


# ---------------------------------------------------------------------------
# Running and printing
# ---------------------------------------------------------------------------


def _fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def _ratio_cell(num: str, den: str) -> Callable[[_Row], str]:
    def cell(r: _Row) -> str:
        if num not in r.times or den not in r.times:
            return "-"
        return f"{r.times[num] / r.times[den]:.2f}"

    return cell


def _per_cell(r: _Row) -> str:
    return f"{r.times['vcalc'] / r.per[1] * 1e9:.2f}" if r.per else "-"


def _print_table(family: str, rows: list[_Row], out: TextIO) -> None:
    """One table: the columns are those of the family's first row."""
    first = rows[0]
    cols: list[tuple[str, Callable[[_Row], str]]] = [("vcalc", lambda r: _fmt(r.times["vcalc"]))]
    if first.per is not None:
        cols.append((f"ns/{first.per[0]}", _per_cell))
    cols += [(f"{p}/vcalc", _ratio_cell(p, "vcalc")) for p in first.peers]
    if first.limit:
        cols.append((f"vcalc/{first.limit}", _ratio_cell("vcalc", first.limit)))
    cols += [(head, _ratio_cell(num, den)) for head, (num, den) in first.extras.items()]
    table = [["case"] + [head for head, _ in cols]]
    table += [[r.label] + [cell(r) for _, cell in cols] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    print(f"\n{family}  (median time per call; ratios above 1: vcalc is faster)", file=out)
    for line in table:
        text = f"{line[0]:<{widths[0]}}"
        text += "".join(f"  {x:>{w}}" for x, w in zip(line[1:], widths[1:], strict=True))
        print(text, file=out)


def _selected(case: Case, only: list[str]) -> bool:
    text = f"{case.family} {case.label}".lower()
    return not only or any(p in text for p in only)


def run(
    quick: bool = True,
    file: TextIO | None = None,
    seed: int = 0,
    *,
    only: str | Iterable[str] | None = None,
    header: bool = True,
) -> bool:
    """Run the benchmark and print the machine facts and ratio tables; False if a check failed.

    Parameters
    ----------
    quick : bool, default True
        About 0.2 s of timing per case (a minute or two in all); False gives
        1 s per case.
    file : text stream, optional
        Where to print (default ``sys.stdout``).
    seed : int, default 0
        Seed of the random data.
    only : str or iterable of str, optional
        Run only the cases whose "family label" (e.g. ``"softmax float64
        (10, 100)"``) contains one of these substrings (case-insensitive; a
        string may hold several, separated by ``;``).  The data do not
        depend on it.
    header : bool, default True
        Print the machine facts (:func:`machine_facts`) first.

    Returns
    -------
    bool
        True when every implementation matched the reference.
    """
    out = file if file is not None else sys.stdout
    if isinstance(only, str):
        only = only.split(";")
    patterns = [p.strip().lower() for p in (only or ()) if p.strip()]
    rng = np.random.default_rng(seed)
    budget = 0.2 if quick else 1.0
    for line in machine_facts() if header else ():
        print(line, file=out)
    ok = True
    results: dict[tuple[Any, ...], dict[str, float]] = {}
    family: str | None
    rows: list[_Row]
    family, rows = None, []  # the family being timed; its table prints when it ends
    for builder in _BUILDERS:
        for case in globals()[builder](rng):
            if isinstance(case, str):
                print(case, file=out)
                continue
            if not _selected(case, patterns):
                continue
            if case.family != family:
                if rows:
                    _print_table(cast(str, family), rows, out)  # set with the rows
                family, rows = case.family, []
            bad = _check(case)
            if bad:
                ok = False
                print(f"MISMATCH {case.family} {case.label}: {', '.join(bad)}", file=out)
                continue
            times = _median_times(case.impls, budget)
            peers = [p for p in case.impls if p not in ("vcalc", case.limit) and p not in case.side]
            rows.append(_Row(case.label, times, peers, case.limit, case.extras, case.per))
            if case.key:
                results[case.key] = times
            out.flush()
    if rows:
        _print_table(cast(str, family), rows, out)  # set with the rows
    _print_targets(results, out)
    return ok
