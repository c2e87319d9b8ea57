"""Finite differences: gradient, jacobian, hessian, derivative and friends.

Each public function validates its arguments once, plans the points
(``_fd_plan``), has an engine evaluate f there (``_fd_engines``: the Cython
loops, or the NumPy reference under ``use_backend("numpy")``), combines the
values and restores the shape (numerator layout: ``f(x).shape + x.shape``).

The public functions here are thin: ``gradient(...)`` is
``_gradient(engine(), ...)``; :mod:`vcalc.reference` calls the same
``_gradient`` with the reference engine.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import numpy as np
from numpy.typing import ArrayLike

from vcalc._backend import kernels
from vcalc._fd_engines import (
    _CYTHON,
    _NUMPY,
    CHUNK_BYTES,
    _Engine,
    as_value,
    check_value,
    engine,
)
from vcalc._fd_engines import _stack_values as _stack_check
from vcalc._fd_plan import (
    AxisPlan,
    ComplexPlan,
    Hessian2Plan,
    LinePlan,
    TensorHessianPlan,
    choose_kinds,
)
from vcalc._results import DiffInfo, GradCheck, Taylor
from vcalc._richardson import richardson
from vcalc._stencils import ORDERS, _stencil
from vcalc._steps import COMPLEX_STEP, _make_exact, default_step
from vcalc._validate import as_float_array, check_bool

if TYPE_CHECKING:
    from vcalc._backend import FdKernelsAPI

__all__ = [
    "gradient",
    "jacobian",
    "hessian",
    "derivative",
    "directional_derivative",
    "jvp",
    "hvp",
    "check_grad",
    "taylor",
]

_METHODS = ("forward", "backward", "central", "complex", "richardson")
_KIND = {"central": 0, "forward": 1, "backward": 2}
_EPS = float(np.finfo(np.float64).eps)

#: First step of the Richardson sequence, relative to max(1, |x_i|): the
#: sequence is h0 * 2**-k.  Small enough that the four steps of the first
#: window stay within 1% of a unit-scale x (log at 0.01 is never evaluated at
#: x <= 0), large enough that the O(h**8) result of a well-scaled f is not
#: dominated by rounding.
RICHARDSON_STEP = 2.0**-7

#: Accuracy order of the Richardson estimate (four central differences).
RICHARDSON_ORDER = 8

Func = Callable[..., Any]

_P = ParamSpec("_P")
_R = TypeVar("_R")


# ---------------------------------------------------------------------------
# Non-finite results
# ---------------------------------------------------------------------------


def _warn_nonfinite(name: str, result: _R) -> _R:
    """Return ``result``; warn once, naming the entries, if it has NaN or inf.

    A derivative is NaN or inf when f returned NaN or inf at a point
    evaluated for it (outside f's domain, say), or when the differences of
    f's values overflowed.  The entries stay NaN/inf (the others are still
    right), and one ``RuntimeWarning`` starting ``"vcalc.<name>: "`` gives
    their indices into the result (for ``gradient``, ``derivative`` and
    ``hvp`` that is the coordinate of x; for ``jacobian`` it is
    ``f index + x index``).  NumPy's own "invalid value" warnings from the
    combination are silenced (``_fd_plan.quiet_fp``), so this is the only one.
    """
    if isinstance(result, tuple):  # full_output=True: (result, info)
        parts = [("result", result[0])]
    elif isinstance(result, GradCheck):
        parts = [("numeric derivative", result.numeric)]
    elif isinstance(result, Taylor):
        parts = [("gradient", result.grad)]
        parts += [] if result.hess is None else [("Hessian", result.hess)]
    else:
        parts = [("result", result)]
    for part, value in parts:
        a = np.asarray(value)
        if a.dtype.kind != "f":
            continue
        bad = ~np.isfinite(a)
        if not bad.any():
            continue
        where = [tuple(int(i) for i in row) for row in np.argwhere(bad)[:3]] if a.ndim else [()]
        more = ", ..." if int(bad.sum()) > len(where) else ""
        warnings.warn(
            f"vcalc.{name}: the {part} is NaN or inf at index "
            f"{', '.join(map(str, where))}{more} ({int(bad.sum())} of {a.size} entries): "
            "f returned NaN or inf at a point evaluated for it, or the differences of "
            "its values overflowed (`bounds` keeps the points inside f's domain).",
            RuntimeWarning,
            stacklevel=3,
        )
    return result


def nonfinite_warning(name: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorate public function ``name`` with :func:`_warn_nonfinite` on its result."""

    def decorate(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            return _warn_nonfinite(name, fn(*args, **kwargs))

        return wrapper

    return decorate


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _check_f(f: Any, name: str = "f") -> None:
    if not callable(f):
        raise TypeError(f"`{name}` must be callable; got {type(f).__name__}.")


def _check_args(args: Any) -> tuple[Any, ...]:
    if isinstance(args, tuple):
        return args
    if isinstance(args, list):
        return tuple(args)
    raise TypeError(f"`args` must be a tuple of extra arguments for f; got {type(args).__name__}.")


def _check_point(x: Any, name: str = "x") -> tuple[np.ndarray, tuple[int, ...]]:
    """x as a flat float64 copy and its shape; x must be finite."""
    if type(x) is float:  # fast path for the scalar case
        if not math.isfinite(x):
            raise ValueError(f"`{name}` must be finite; got {x!r}.")
        return np.array([x]), ()
    xa = as_float_array(x, name)
    x0 = np.array(xa, dtype=np.float64, order="C").reshape(-1)
    if not np.isfinite(x0).all():
        i = int(np.flatnonzero(~np.isfinite(x0))[0])
        idx = np.unravel_index(i, xa.shape) if xa.ndim else ()
        raise ValueError(f"`{name}` must be finite; got {x0[i]!r} at index {tuple(map(int, idx))}.")
    return x0, xa.shape


def _check_unsupported(workers: Any, progress: Any) -> None:
    if workers is not None:
        raise NotImplementedError(
            "`workers` (parallel evaluation of f) is not available in this version; "
            "leave it at None."
        )
    if progress is not False:
        raise NotImplementedError("`progress` is not available in this version; leave it at False.")


def _check_method(method: Any, allowed: tuple[str, ...] = _METHODS) -> str:
    if not isinstance(method, str):
        raise TypeError(f"`method` must be a str; got {type(method).__name__}.")
    if method not in allowed:
        names = ", ".join(repr(m) for m in allowed)
        raise ValueError(f"`method` must be one of {names}; got {method!r}.")
    return method


def _check_order(order: Any, method: str) -> int:
    if isinstance(order, (bool, np.bool_)):
        raise TypeError(f"`order` must be an int; got {order!r}.")
    try:
        order = operator.index(order)
    except TypeError:
        raise TypeError(f"`order` must be an int; got {order!r}.") from None
    if method in ("complex", "richardson"):
        if order != 2:
            why = (
                "the complex step is second-order accurate"
                if method == "complex"
                else "it extrapolates central differences of order 2 to order 8"
            )
            raise ValueError(f"`order` must be 2 for method={method!r} ({why}); got {order}.")
        return cast(int, order)
    allowed = ORDERS[method]
    if order not in allowed:
        names = ", ".join(str(p) for p in allowed)
        raise ValueError(f"`order` must be one of {names} for method={method!r}; got {order}.")
    return cast(int, order)


def _check_bounds(
    bounds: Any, x0: np.ndarray, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray] | None:
    """(lb, ub) as flat float64 arrays broadcast to x, with lb <= x <= ub."""
    if bounds is None:
        return None
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise TypeError(
            f"`bounds` must be a pair (lb, ub) of scalars or arrays; got {type(bounds).__name__}."
        )
    out = []
    for name, b in zip(("lower", "upper"), bounds, strict=True):
        if b is None:
            b = -np.inf if name == "lower" else np.inf
        try:
            ba = as_float_array(b, "bounds")
        except TypeError as err:
            raise TypeError(f"`bounds`: the {name} bound must be real numbers ({err}).") from err
        if np.isnan(ba).any():
            raise ValueError(f"`bounds`: the {name} bound contains NaN.")
        try:
            ba = np.broadcast_to(ba.astype(np.float64), shape).reshape(-1)
        except ValueError:
            raise ValueError(
                f"`bounds`: the {name} bound must broadcast to the shape of `x` {shape}; "
                f"got shape {np.shape(b)}."
            ) from None
        out.append(ba)
    lb, ub = out
    if (lb > ub).any():
        i = int(np.flatnonzero(lb > ub)[0])
        raise ValueError(
            f"`bounds`: the lower bound exceeds the upper bound at flat index {i} "
            f"({lb[i]!r} > {ub[i]!r})."
        )
    bad = (x0 < lb) | (x0 > ub)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"`x` must lie within `bounds`; at flat index {i} x = {x0[i]!r} is outside "
            f"[{lb[i]!r}, {ub[i]!r}]."
        )
    return lb, ub


_COMPLEX_LOCK = threading.RLock()


@contextlib.contextmanager
def _complex_safe() -> Iterator[None]:
    """Turn NumPy's ComplexWarning inside f into the complex-step TypeError.

    An f that casts its complex argument to real somewhere (``math.sin(x[0])``,
    ``float(x[0])`` on a NumPy complex scalar) loses the imaginary part that
    carries the derivative; NumPy only warns.  During complex-step evaluation
    that warning is an error, re-raised as a ``TypeError`` saying f is not
    complex-safe (chained to the warning).

    ``warnings.catch_warnings`` changes process-wide state (before Python
    3.14): two threads entering and leaving it interleaved would restore each
    other's filters and could leave ComplexWarning an error for good.  A lock
    makes complex-step evaluations take turns; while one runs, ComplexWarning
    is an error in every thread.
    """
    with _COMPLEX_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        try:
            yield
        except np.exceptions.ComplexWarning as err:
            raise TypeError(
                "method='complex' needs f to be complex-safe, but f cast its complex "
                f"argument to real ({err}); the imaginary part that carries the derivative "
                "was lost. Use method='central', or write f with NumPy functions that "
                "accept complex input."
            ) from err


def _steps(x0: np.ndarray, method: str, order: int, deriv: int, step: Any) -> np.ndarray:
    """Per-coordinate absolute steps (see ``_steps.absolute_step``), flat."""
    if step is None:
        if method == "complex":
            return np.full(x0.size, COMPLEX_STEP)
        h0 = default_step(method, order, deriv)
        return _make_exact(x0, h0 * np.maximum(1.0, np.abs(x0)))
    if isinstance(step, (bool, np.bool_)) or (
        isinstance(step, np.ndarray) and step.dtype == np.bool_
    ):
        raise TypeError(f"`step` must be a positive real number or array; got {step!r}.")
    sa = np.asarray(as_float_array(step, "step"), dtype=np.float64)
    bad = ~(np.isfinite(sa) & (sa > 0))
    if bad.any():
        v = sa if sa.ndim == 0 else sa[tuple(np.argwhere(bad)[0])]
        raise ValueError(f"`step` must be finite and > 0; got {float(v)!r}.")
    try:
        h = np.array(np.broadcast_to(sa, x0.shape if sa.ndim <= 1 else sa.shape), dtype=float)
    except ValueError:
        raise ValueError(
            f"`step` must be a scalar or have one entry per coordinate of `x` ({x0.size}); "
            f"got shape {sa.shape}."
        ) from None
    return h


def _steps_shaped(
    x0: np.ndarray, shape: tuple[int, ...], method: str, order: int, deriv: int, step: Any
) -> np.ndarray:
    """Like :func:`_steps` but `step` may have the shape of x; flat result."""
    if step is not None and not isinstance(step, (bool, np.bool_)) and np.ndim(step) > 0:
        sa = np.asarray(step)
        if sa.dtype.kind in "fiu":
            try:
                step = np.broadcast_to(sa, shape).reshape(-1)
            except ValueError:
                raise ValueError(
                    f"`step` must be a scalar or broadcast to the shape of `x` {shape}; "
                    f"got shape {sa.shape}."
                ) from None
    h = _steps(x0, method, order, deriv, step)
    if step is not None and method != "complex":
        h = _make_exact(x0, h)
    return h


def _richardson_base(x0: np.ndarray, step: Any, shape: tuple[int, ...]) -> np.ndarray:
    """First step of the Richardson sequence per coordinate (flat, exact)."""
    if step is None:
        return _make_exact(x0, RICHARDSON_STEP * np.maximum(1.0, np.abs(x0)))
    return _steps_shaped(x0, shape, "central", 2, 1, step)


def _info(
    nfev: int,
    h: np.ndarray,
    shape: tuple[int, ...],
    error: np.ndarray | None,
    res_shape: tuple[int, ...],
    method: str,
    order: int,
) -> DiffInfo:
    err = np.full(res_shape, np.nan) if error is None else error.reshape(res_shape)
    return DiffInfo(int(nfev), np.asarray(h).reshape(shape), err, method, order)


def _scalarize(a: np.ndarray) -> Any:
    return a[()] if a.ndim == 0 else a


# ---------------------------------------------------------------------------
# First derivatives along coordinates: gradient and jacobian
# ---------------------------------------------------------------------------


def _first(
    eng: _Engine,
    what: str,
    f: Func,
    x: ArrayLike,
    method: str,
    order: int,
    step: Any,
    args: Any,
    vectorized: bool,
    bounds: Any,
    workers: Any,
    progress: Any,
    full_output: bool,
) -> Any:
    """Gradient (scalar f) or Jacobian: rows (n, m) -> numerator layout."""
    if (
        eng is _CYTHON
        and type(x) is np.ndarray
        and x.dtype == np.float64
        and type(method) is str
        and method in _KIND
        and type(order) is int
        and step is None
        and type(args) is tuple
        and vectorized is False
        and bounds is None
        and workers is None
        and progress is False
        and callable(f)
    ):
        return _first_fast(what, f, x, method, order, args, full_output)
    _check_f(f)
    _check_unsupported(workers, progress)
    args = _check_args(args)
    x0, shape = _check_point(x)
    method = _check_method(method)
    order = _check_order(order, method)
    vectorized = check_bool(vectorized, "vectorized")
    full_output = check_bool(full_output, "full_output")
    box = _check_bounds(bounds, x0, shape)
    scalar = what == "gradient"
    n = x0.size
    coords = np.arange(n, dtype=np.intp)
    error = None
    out_shape: tuple[int, ...] | None

    if n == 0:
        # Nothing to perturb: f is evaluated once, for the shape of its value.
        out_shape = check_value(f(x0.reshape(shape), *args), None, scalar, what).shape
        result = np.zeros(out_shape + shape)
        if full_output:
            return result, _info(1, x0.copy(), shape, None, out_shape + shape, method, order)
        return result
    if method == "richardson":
        rows, out_shape, nfev, h, error = _first_richardson(
            eng, f, args, x0, shape, step, box, scalar, what, vectorized
        )
        order_used = RICHARDSON_ORDER
    elif method == "complex":
        h = _steps_shaped(x0, shape, method, order, 1, step)
        plan = ComplexPlan(x0, coords, h)
        with _complex_safe():
            if vectorized:
                values, out_shape = eng.stack(f, args, x0, shape, plan, scalar, what, cplx=True)
            else:
                values, out_shape = eng.complex(f, args, x0, shape, plan, scalar, what)
        rows = eng.combine(plan, values) if n else values
        nfev, order_used = plan.nfev, order
    else:
        h = _steps_shaped(x0, shape, method, order, 1, step)
        if box is None:
            kind = np.full(n, _KIND[method], dtype=np.int8)
        else:
            kind = choose_kinds(x0, h, method, order, 1, *box)
        axis_plan = AxisPlan(x0, coords, h, kind, order, 1)
        if vectorized:
            values, out_shape = eng.stack(f, args, x0, shape, axis_plan, scalar, what)
            rows = eng.combine(axis_plan, values) if n else values
        else:
            rows, out_shape = eng.axis(f, args, x0, shape, axis_plan, scalar, what)
        nfev, order_used = axis_plan.nfev, order

    res_shape = tuple(cast("tuple[int, ...]", out_shape)) + shape  # n > 0: f was evaluated
    result = np.ascontiguousarray(rows.T).reshape(res_shape)
    if error is not None:
        error = np.ascontiguousarray(error.T).reshape(res_shape)
    result = _scalarize(result)
    if full_output:
        return result, _info(nfev, h, shape, error, res_shape, method, order_used)
    return result


_H0_FIRST = {p: _EPS ** (1.0 / (p + 1)) for p in range(1, 9)}
_H0_SECOND = _EPS ** (1.0 / 4)  # central order 2, second derivatives


def _fd_kernels() -> FdKernelsAPI:
    return kernels("_fd_kernels")


def _first_fast(
    what: str,
    f: Func,
    x: np.ndarray,
    method: str,
    order: int,
    args: tuple[Any, ...],
    full_output: Any,
) -> Any:
    """The common case, lean: Cython loop, real stencil, default step, no bounds."""
    if order not in ORDERS[method]:
        _check_order(order, method)  # raises
    if full_output is not False:
        full_output = check_bool(full_output, "full_output")
    shape = x.shape
    if x.size == 0:
        return _first(
            _NUMPY, what, f, x, method, order, None, args, False, None, None, False, full_output
        )
    s = _stencil(method, order, 1)
    # rows and out_shape are None only when bad >= 0, which raises below.
    rows, out_shape, nfev, h, bad = cast(
        "tuple[np.ndarray, tuple[int, ...], int, np.ndarray, int]",
        _fd_kernels().axis_default(
            f, args, np.ascontiguousarray(x).reshape(-1), shape, _H0_FIRST[order], s.offsets_f,
            s.weights,
            what == "gradient", what,
        ),
    )  # fmt: skip
    if bad >= 0:
        x0 = x.reshape(-1)
        _check_point(x0)  # raises: x is not finite
        _make_exact(x0, h)  # raises naming the overflow
    if out_shape == ():
        result = rows.reshape(shape)
    else:
        result = np.ascontiguousarray(rows.T).reshape(out_shape + shape)
    result = _scalarize(result)
    if full_output:
        return result, _info(nfev, h, shape, None, out_shape + shape, method, order)
    return result


_SLOW = object()


def _try_fast(
    what: str,
    f: Any,
    x: Any,
    method: Any,
    order: Any,
    step: Any,
    args: Any,
    vectorized: Any,
    bounds: Any,
    workers: Any,
    progress: Any,
    full_output: Any,
) -> Any:
    """The lean paths for the common cases on the Cython backend, else ``_SLOW``.

    Common: a float64 ndarray x, a real stencil, default steps, no bounds.
    Everything else (and every error message) is the general path's.
    """
    if (
        type(x) is np.ndarray
        and x.dtype == np.float64
        and type(method) is str
        and method in _KIND
        and type(order) is int
        and step is None
        and type(args) is tuple
        and bounds is None
        and workers is None
        and progress is False
        and callable(f)
    ):
        if vectorized is False:
            return _first_fast(what, f, x, method, order, args, full_output)
        if vectorized is True:
            out = _first_stack_fast(what, f, x, method, order, args, full_output)
            if out is not None:
                return out
    return _SLOW


def _first_stack_fast(
    what: str,
    f: Func,
    x: np.ndarray,
    method: str,
    order: int,
    args: tuple[Any, ...],
    full_output: Any,
) -> Any:
    """The common vectorized case, lean: all points in one stack, default steps.

    Returns None (the caller takes the general path) when the stack would
    exceed :data:`CHUNK_BYTES` or x is empty or has a non-finite entry.
    The combine repeats the loop's operations in the same order, so the
    result is bit-identical to ``vectorized=False``.
    """
    if order not in ORDERS[method]:
        _check_order(order, method)  # raises
    if full_output is not False:
        full_output = check_bool(full_output, "full_output")
    shape = x.shape
    x0 = np.ascontiguousarray(x).reshape(-1)  # C-contiguous (a copy if x is not); only read
    n = x0.size
    s = _stencil(method, order, 1)
    center = int(s.uses_center)
    nz = [o for o in s.offsets_f if o != 0.0]
    K = center + len(nz) * n
    if n == 0 or K * n * 8 > CHUNK_BYTES:
        return None
    K_ = _fd_kernels()
    # P is None only when bad >= 0.
    P, h, bad = cast(
        "tuple[np.ndarray, np.ndarray, int]", K_.axis_stack(x0, _H0_FIRST[order], s.offsets_f)
    )
    if bad >= 0:
        return None
    P.flags.writeable = False
    r = f(P.reshape((K,) + shape), *args)
    a = as_value(r)
    if a.ndim == 0 or a.shape[0] != K or a.dtype.kind not in "fiub":
        _stack_check(r, K, None, what == "gradient", what, False)  # raises
    out_shape = a.shape[1:]
    if what == "gradient" and out_shape != ():
        _stack_check(r, K, None, True, what, False)  # raises
    V = a.reshape(K, -1)
    if V.dtype != np.float64 or not V.flags.c_contiguous:
        V = np.ascontiguousarray(V, dtype=np.float64)
    acc = K_.axis_combine(V, h, s.offsets_f, s.weights)
    if out_shape == ():
        result = acc.reshape(shape)
    else:
        result = np.ascontiguousarray(acc.T).reshape(out_shape + shape)
    result = _scalarize(result)
    if full_output:
        return result, _info(K, h, shape, None, out_shape + shape, method, order)
    return result


def _first_richardson(
    eng: _Engine,
    f: Func,
    args: tuple[Any, ...],
    x0: np.ndarray,
    shape: tuple[int, ...],
    step: Any,
    box: tuple[np.ndarray, np.ndarray] | None,
    scalar: bool,
    what: str,
    vectorized: bool,
) -> tuple[np.ndarray, tuple[int, ...], int, np.ndarray, np.ndarray]:
    """Gradient/Jacobian rows by Richardson extrapolation of central differences."""
    n = x0.size
    base = _richardson_base(x0, step, shape)
    if box is not None:
        room = np.minimum(x0 - box[0], box[1] - x0)
        if np.any(room <= 0):
            i = int(np.flatnonzero(room <= 0)[0])
            raise ValueError(
                f"method='richardson' needs x strictly inside `bounds` (it uses central "
                f"differences); at flat index {i} x = {x0[i]!r} is on a bound."
            )
        # Half the room: the first steps stay strictly inside the box, so f is
        # not evaluated on a bound (where, e.g., log is -inf) unless searched.
        base = np.minimum(base, _make_exact(x0, room / 2))
    state: dict[str, Any] = {"nfev": 0, "shape": None}

    def compute(levels: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h = _make_exact(x0[rows], base[rows] * np.exp2(-levels.astype(np.float64)))
        D = np.full((rows.size, max(state["m"], 1) if "m" in state else 1), np.nan)
        F = np.zeros_like(D)
        ok = np.ones(rows.size, dtype=bool)
        if box is not None:
            ok = (x0[rows] - h >= box[0][rows]) & (x0[rows] + h <= box[1][rows])
        if ok.any():
            plan = AxisPlan(x0, rows[ok], h[ok], np.zeros(int(ok.sum()), np.int8), 2, 1)
            out_shape: tuple[int, ...] | None
            if vectorized:
                values, out_shape = eng.stack(f, args, x0, shape, plan, scalar, what)
            else:
                values, out_shape = eng.points(f, args, x0, shape, plan, scalar, what)
            state["nfev"] += plan.nfev
            state["shape"] = out_shape
            m = values.shape[1]
            if D.shape[1] != m:
                D = np.full((rows.size, m), np.nan)
                F = np.zeros_like(D)
            state["m"] = m
            D[ok] = eng.combine(plan, values)
            F[ok] = np.abs(values).reshape(-1, 2, m).max(axis=1)
        return D, F, h

    if n == 0:
        return np.zeros((0, 0)), (), 0, base, np.zeros((0, 0))
    res = richardson(compute, n, deriv=1)
    return res.value, state["shape"], state["nfev"], res.step, res.error


@nonfinite_warning("gradient")
def gradient(
    f: Func,
    x: ArrayLike,
    *,
    method: str = "central",
    order: int = 2,
    step: ArrayLike | None = None,
    args: tuple[Any, ...] = (),
    vectorized: bool = False,
    bounds: tuple[ArrayLike, ArrayLike] | None = None,
    workers: Any = None,
    progress: bool = False,
    full_output: bool = False,
) -> Any:
    """Gradient of a scalar function by finite differences.

    Parameters
    ----------
    f : callable
        ``f(x, *args) -> float``; x keeps the shape of `x`.  With the default
        (loop) evaluator f receives a read-only array whose contents change
        between calls: an f that keeps its argument must copy it.
    x : array_like, shape (...)
        The point; real and finite.  Computation is in float64.
    method : {"central", "forward", "backward", "complex", "richardson"}
        Stencil: symmetric, one-sided, complex step (f must be analytic and
        accept complex input; first derivatives to machine precision), or
        Richardson extrapolation over a sequence of steps with an error
        estimate.
    order : int, default 2
        Accuracy order: 1-4 for forward/backward, 2, 4, 6 or 8 for central;
        2 for complex and richardson.
    step : float or array_like, optional
        Absolute step (the stencil's grid spacing), one or one per
        coordinate (shape of `x`).  Default: the optimal relative step for
        the method and order times ``max(1, |x_i|)``, made exactly
        representable.  For ``"richardson"``, the first step of the sequence.
    args : tuple, optional
        Extra arguments for f.
    vectorized : bool, default False
        f takes a stack ``(k,) + x.shape`` and returns ``(k,)``; all points
        are then evaluated in as few calls as memory allows.
    bounds : (lb, ub), optional
        Scalars or arrays broadcastable to `x`; f is never evaluated outside
        the box, and next to a bound the stencil turns one-sided with the
        same order.
    workers, progress
        Not available yet; must be None and False.
    full_output : bool, default False
        Also return a :class:`DiffInfo`.

    Returns
    -------
    grad : ndarray, shape ``x.shape`` (a float for 0-d x)
    info : DiffInfo
        Only with ``full_output=True``.

    Raises
    ------
    TypeError
        If f is not callable, `x` is not real numeric data, f returns
        non-numeric or complex values (real methods), or f is not
        complex-safe for ``method="complex"``.
    ValueError
        If f does not return a scalar, `x` is not finite, or `method`,
        `order`, `step` or `bounds` is invalid (including a box too narrow
        for the step).

    Warns
    -----
    RuntimeWarning
        Once, starting ``"vcalc.gradient: "``, when entries of the result are NaN
        or inf (f returned NaN or inf at a point evaluated for them, or the
        differences of its values overflowed); it gives their indices.  The
        other entries are still right.

    See Also
    --------
    jacobian : for vector-valued f.
    check_grad : compare an analytic gradient with this one.

    Notes
    -----
    Evaluations: forward/backward order p: ``p*n + 1``; central order p:
    ``p*n`` (f(x) is not needed); complex: ``n``; richardson: ``8n`` when
    the first four steps suffice, more where it searches.

    The default step is ``eps**(1/(p+1)) * max(1, |x_i|)``, which balances
    the truncation error O(h**p) against the rounding error O(eps/h) for f
    that varies on the scale of max(1, |x|).  It fails where f varies much
    faster than that: for sin at x = 1e10 the central step is ~6e4, many
    periods.  Then pass an absolute `step` or use ``method="richardson"``,
    which searches larger and smaller steps and reports an error estimate.

    Richardson's first step is ``2**-7 * max(1, |x_i|)`` (four steps down to
    an eighth of it, then a search).  For f defined only near x (log at
    x = 1e-3) that first step can leave f's domain; pass `bounds` (its steps
    then start at half the distance to the nearest bound) or a smaller
    `step`.

    Examples
    --------
    Seed example 1: f(x, y) = 5x**2 + 3xy + 3y**3 has gradient
    [10x + 3y, 3x + 9y**2].

    >>> import numpy as np, vcalc
    >>> f = lambda v: 5 * v[0]**2 + 3 * v[0] * v[1] + 3 * v[1]**3
    >>> g = vcalc.gradient(f, [1.0, 2.0])
    >>> np.allclose(g, [10 * 1 + 3 * 2, 3 * 1 + 9 * 2**2])
    True
    >>> g, info = vcalc.gradient(f, [1.0, 2.0], method="richardson", full_output=True)
    >>> bool(np.all(np.abs(g - [16, 39]) <= info.error))
    True
    """
    eng = engine()
    if (
        eng is _CYTHON
        and type(x) is np.ndarray
        and x.dtype == np.float64
        and type(method) is str
        and method in _KIND
        and type(order) is int
        and step is None
        and type(args) is tuple
        and bounds is None
        and workers is None
        and progress is False
        and callable(f)
    ):
        if vectorized is False:
            return _first_fast("gradient", f, x, method, order, args, full_output)
        if vectorized is True:
            out = _first_stack_fast("gradient", f, x, method, order, args, full_output)
            if out is not None:
                return out
    if eng is _CYTHON:
        out = _try_fast("gradient", f, x, method, order, step, args, vectorized, bounds,
                        workers, progress, full_output)  # fmt: skip
        if out is not _SLOW:
            return out
    return _first(
        eng, "gradient", f, x, method, order, step, args, vectorized, bounds, workers,
        progress, full_output,
    )  # fmt: skip


@nonfinite_warning("jacobian")
def jacobian(
    f: Func,
    x: ArrayLike,
    *,
    method: str = "central",
    order: int = 2,
    step: ArrayLike | None = None,
    args: tuple[Any, ...] = (),
    vectorized: bool = False,
    bounds: tuple[ArrayLike, ArrayLike] | None = None,
    workers: Any = None,
    progress: bool = False,
    full_output: bool = False,
    sparsity: Any = None,
) -> Any:
    """Jacobian of a function by finite differences, in numerator layout.

    ``J[i..., j...] = d f(x)[i...] / d x[j...]``, shape ``f(x).shape + x.shape``
    for any shapes of x and f(x).

    Parameters
    ----------
    f : callable
        ``f(x, *args) -> array_like`` of a fixed shape.
    x : array_like
        The point; real and finite.
    method, order, step, args, vectorized, bounds, full_output
        As for :func:`gradient`.
    workers, progress, sparsity
        Not available yet; must be None, False and None.

    Returns
    -------
    jac : ndarray, shape ``f(x).shape + x.shape``
    info : DiffInfo
        Only with ``full_output=True``.

    Raises
    ------
    TypeError, ValueError
        As for :func:`gradient` (f may return any fixed shape).

    Warns
    -----
    RuntimeWarning
        Once, starting ``"vcalc.jacobian: "``, when entries of the result are NaN
        or inf (f returned NaN or inf at a point evaluated for them, or the
        differences of its values overflowed); it gives their indices.  The
        other entries are still right.

    See Also
    --------
    gradient, jvp

    Notes
    -----
    The same stencils, steps and evaluation counts as :func:`gradient`:
    each evaluation gives a whole column of the Jacobian.

    Examples
    --------
    Seed example 5: f(x) = A x has Jacobian A, and differentiating A x by
    the matrix A gives the (M, M, N) tensor with J[i, i, q] = x[q].

    >>> import numpy as np, vcalc
    >>> A = np.arange(6.0).reshape(2, 3); x = np.array([1.0, -2.0, 0.5])
    >>> np.allclose(vcalc.jacobian(lambda v: A @ v, x), A)
    True
    >>> T = vcalc.jacobian(lambda B: B @ x, A)
    >>> T.shape, np.allclose(T[0, 0], x), np.allclose(T[0, 1], 0)
    ((2, 2, 3), True, True)

    Seed example 6: K = R^T R differentiated by R has shape (N, N, M, N).

    >>> R = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> vcalc.jacobian(lambda R: R.T @ R, R).shape
    (2, 2, 3, 2)
    """
    if sparsity is not None:
        raise NotImplementedError("`sparsity` is not available in this version; leave it at None.")
    eng = engine()
    if eng is _CYTHON:
        out = _try_fast("jacobian", f, x, method, order, step, args, vectorized, bounds,
                        workers, progress, full_output)  # fmt: skip
        if out is not _SLOW:
            return out
    return _first(
        eng, "jacobian", f, x, method, order, step, args, vectorized, bounds, workers,
        progress, full_output,
    )  # fmt: skip


# ---------------------------------------------------------------------------
# Hessian
# ---------------------------------------------------------------------------


def _hessian(
    eng: _Engine,
    f: Func,
    x: ArrayLike,
    method: str,
    order: int,
    step: Any,
    args: Any,
    vectorized: bool,
    bounds: Any,
    grad: Any,
    workers: Any,
    progress: Any,
    full_output: bool,
) -> Any:
    _check_f(f)
    if grad is not None:
        _check_f(grad, "grad")
        J = _first(
            eng, "jacobian", grad, x, method, order, step, args, vectorized, bounds, workers,
            progress, True,
        )  # fmt: skip
        J, info = J
        x0, shape = _check_point(x)
        n = x0.size
        if np.shape(J) != shape + shape:
            raise ValueError(
                f"`grad` must return an array of the shape of `x` {shape}; "
                f"got shape {np.shape(J)[: np.ndim(J) - len(shape)]}."
            )
        Jm = np.asarray(J, dtype=np.float64).reshape(n, n)
        H = ((Jm + Jm.T) * 0.5).reshape(shape + shape)
        err = info.error
        if method == "richardson":
            e = np.asarray(err).reshape(n, n)
            err = ((e + e.T) * 0.5).reshape(shape + shape)
        if full_output:
            return _scalarize(H), DiffInfo(info.nfev, info.step, err, info.method, info.order)
        return _scalarize(H)

    _check_unsupported(workers, progress)
    args = _check_args(args)
    x0, shape = _check_point(x)
    method = _check_method(method)
    if method == "complex":
        raise ValueError(
            "method='complex' gives first derivatives only; for a Hessian pass the "
            "gradient as `grad=` (it is then differentiated with the complex step) or "
            "use another method."
        )
    order = _check_order(order, method)
    vectorized = check_bool(vectorized, "vectorized")
    full_output = check_bool(full_output, "full_output")
    box = _check_bounds(bounds, x0, shape)
    n = x0.size
    error = None

    if n == 0:
        result = np.zeros(shape + shape)
        if full_output:
            return result, _info(0, x0.copy(), shape, None, shape + shape, method, order)
        return result
    if method == "richardson":
        H, nfev, h, error = _hessian_richardson(eng, f, args, x0, shape, step, box, vectorized)
        order_used = RICHARDSON_ORDER
    else:
        h = _steps_shaped(x0, shape, method, order, 2, step)
        if box is None:
            kind = np.full(n, _KIND[method], dtype=np.int8)
        else:
            kind = choose_kinds(x0, h, method, order, 2, *box)
        if method == "central" and order == 2 and np.all(kind == 0):
            plan: Any = Hessian2Plan(x0, h)
        else:
            plan = TensorHessianPlan.build(x0, h, kind, order)
        if vectorized:
            values, _ = eng.stack(f, args, x0, shape, plan, True, "hessian")
            H = eng.combine(plan, values)
        elif isinstance(plan, Hessian2Plan):
            H = eng.hessian2(f, args, x0, shape, plan)
        else:
            values, _ = eng.points(f, args, x0, shape, plan, True, "hessian")
            H = eng.combine(plan, values)
        nfev, order_used = plan.nfev, order

    result = _scalarize(np.asarray(H).reshape(shape + shape))
    if full_output:
        return result, _info(nfev, h, shape, error, shape + shape, method, order_used)
    return result


def _hessian_richardson(
    eng: _Engine,
    f: Func,
    args: tuple[Any, ...],
    x0: np.ndarray,
    shape: tuple[int, ...],
    step: Any,
    box: tuple[np.ndarray, np.ndarray] | None,
    vectorized: bool,
) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """Hessian entries (upper triangle) by Richardson extrapolation of the 7-point formula."""
    n = x0.size
    if n == 0:
        return np.zeros((0, 0)), 0, x0.copy(), np.zeros((0, 0))
    base = _richardson_base(x0, step, shape)
    if box is not None:
        room = np.minimum(x0 - box[0], box[1] - x0)
        if np.any(room <= 0):
            i = int(np.flatnonzero(room <= 0)[0])
            raise ValueError(
                f"method='richardson' needs x strictly inside `bounds`; at flat index {i} "
                f"x = {x0[i]!r} is on a bound."
            )
        # Half the room: the first steps stay strictly inside the box, so f is
        # not evaluated on a bound (where, e.g., log is -inf) unless searched.
        base = np.minimum(base, _make_exact(x0, room / 2))
    ii, jj = np.triu_indices(n)
    state = {"nfev": 0}
    cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    f0: np.ndarray | None = None

    def full(level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nonlocal f0
        if level not in cache:
            h = _make_exact(x0, base * 2.0**-level)
            if box is not None and ((x0 - h < box[0]) | (x0 + h > box[1])).any():
                nan = np.full((n, n), np.nan)
                cache[level] = (nan, np.zeros((n, n)), h)
            else:
                plan = Hessian2Plan(x0, h)
                # f(x) is point 0 of every level's plan: evaluate it once.
                todo = plan if f0 is None else _PointsFrom(plan, 1)
                if vectorized:
                    values, _ = eng.stack(f, args, x0, shape, todo, True, "hessian")
                else:
                    values, _ = eng.points(f, args, x0, shape, todo, True, "hessian")
                state["nfev"] += todo.nfev
                if f0 is None:
                    f0 = values[:1].copy()
                else:
                    values = np.concatenate([f0, values])
                Hl = eng.combine(plan, values).reshape(n, n)
                v = np.abs(values[:, 0])
                fm, fp = v[1 : 1 + 2 * n : 2], v[2 : 2 + 2 * n : 2]
                axis = np.maximum(fm, fp)
                F = np.maximum.outer(axis, axis)
                F = np.maximum(F, v[0])
                a, b = np.triu_indices(n, 1)
                F[a, b] = np.maximum(F[a, b], np.maximum(v[1 + 2 * n :: 2], v[2 + 2 * n :: 2]))
                F[b, a] = F[a, b]
                cache[level] = (Hl, F, h)
        return cache[level]

    def compute(levels: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        D = np.empty((rows.size, 1))
        F = np.empty((rows.size, 1))
        hs = np.empty(rows.size)
        for lev in np.unique(levels):
            sel = levels == lev
            Hl, Fl, h = full(int(lev))
            r = rows[sel]
            D[sel, 0] = Hl[ii[r], jj[r]]
            F[sel, 0] = Fl[ii[r], jj[r]]
            hs[sel] = np.sqrt(h[ii[r]] * h[jj[r]])
        return D, F, hs

    res = richardson(compute, ii.size, deriv=2)
    H = np.empty((n, n))
    E = np.empty((n, n))
    H[ii, jj] = res.value[:, 0]
    H[jj, ii] = res.value[:, 0]
    E[ii, jj] = res.error[:, 0]
    E[jj, ii] = res.error[:, 0]
    step_used = np.zeros(n)
    with np.errstate(invalid="ignore"):  # NaN steps of failed entries
        np.maximum.at(step_used, ii, res.step)
    return H, state["nfev"], step_used, E


class _PointsFrom:
    """The points of a plan from index `start` on (to skip points already evaluated)."""

    def __init__(self, plan: Any, start: int) -> None:
        self.plan, self.start = plan, start

    @property
    def nfev(self) -> int:
        return cast(int, self.plan.nfev - self.start)

    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return tuple(a[self.start :] for a in self.plan.points())


@nonfinite_warning("hessian")
def hessian(
    f: Func,
    x: ArrayLike,
    *,
    method: str = "central",
    order: int = 2,
    step: ArrayLike | None = None,
    args: tuple[Any, ...] = (),
    vectorized: bool = False,
    bounds: tuple[ArrayLike, ArrayLike] | None = None,
    grad: Func | None = None,
    workers: Any = None,
    progress: bool = False,
    full_output: bool = False,
) -> Any:
    """Hessian of a scalar function by finite differences; symmetric.

    Parameters
    ----------
    f : callable
        ``f(x, *args) -> float``.
    x : array_like
        The point; real and finite.
    method : {"central", "forward", "backward", "richardson"}
        ``"complex"`` only with `grad`.
    order : int, default 2
        Accuracy order of the stencils (see :func:`gradient`).
    step : float or array_like, optional
        Absolute step per coordinate; default ``eps**(1/(p+2)) * max(1, |x_i|)``
        (``eps**(1/(p+1))`` with `grad`), made exact.
    args, vectorized, bounds, full_output
        As for :func:`gradient`.
    grad : callable, optional
        ``grad(x, *args)`` returning the gradient (shape of x).  Then the
        Hessian is the Jacobian of `grad` (first-derivative stencils, steps
        and costs), symmetrised as ``(J + J^T) / 2``.
    workers, progress
        Not available yet.

    Returns
    -------
    hess : ndarray, shape ``x.shape + x.shape``
    info : DiffInfo
        Only with ``full_output=True``.

    Raises
    ------
    TypeError, ValueError
        As for :func:`gradient`; ``method="complex"`` without `grad` is a
        ``ValueError``.

    Warns
    -----
    RuntimeWarning
        Once, starting ``"vcalc.hessian: "``, when entries of the result are NaN
        or inf (f returned NaN or inf at a point evaluated for them, or the
        differences of its values overflowed); it gives their indices.  The
        other entries are still right.

    See Also
    --------
    hvp : Hessian-vector products without forming the Hessian.

    Notes
    -----
    The central order-2 Hessian uses ``n**2 + n + 1`` evaluations: f(x),
    f(x +- h_i e_i) for the diagonal

        H_ii = (f(x + h_i e_i) - 2 f(x) + f(x - h_i e_i)) / h_i**2,

    and for i < j two more points ``x +- (h_i e_i + h_j e_j)``:

        H_ij = [f(x + h_i e_i + h_j e_j) - f(x + h_i e_i) - f(x + h_j e_j) + 2 f(x)
                - f(x - h_i e_i) - f(x - h_j e_j) + f(x - h_i e_i - h_j e_j)] / (2 h_i h_j),

    exact for quadratics, error O(h**2).  Other orders and methods use the
    second-derivative stencil on the diagonal and the tensor product of
    first-derivative stencils off it.  The result is symmetric by
    construction.  ``"richardson"`` extrapolates the central order-2 Hessian
    over steps h, h/2, h/4, h/8 (4 (n**2 + n) + 1 evaluations at least) and
    estimates the error of each entry.

    Examples
    --------
    Seed example 2: f = x1**2 + exp(x1 x2) + 2 log x2; its Hessian is the
    Jacobian of its gradient.

    >>> import numpy as np, vcalc
    >>> f = lambda x: x[0]**2 + np.exp(x[0] * x[1]) + 2 * np.log(x[1])
    >>> def grad_f(x):
    ...     e = np.exp(x[0] * x[1])
    ...     return np.array([2 * x[0] + x[1] * e, x[0] * e + 2 / x[1]])
    >>> x = np.array([0.5, 1.5]); e = np.exp(0.75)
    >>> H = vcalc.hessian(f, x)
    >>> exact = [[2 + 1.5**2 * e, e + 0.75 * e], [e + 0.75 * e, 0.25 * e - 2 / 1.5**2]]
    >>> np.allclose(H, exact, rtol=1e-6), np.allclose(vcalc.jacobian(grad_f, x), H, rtol=1e-6)
    (True, True)

    Seed example 11: positive definite at a critical point means a minimum.

    >>> H = vcalc.hessian(lambda v: v[0]**2 + v[0] * v[1] + v[1]**2, [0.0, 0.0])
    >>> bool(np.all(np.linalg.eigvalsh(H) > 0))
    True
    """
    eng = engine()
    if (
        eng is _CYTHON
        and type(x) is np.ndarray
        and x.dtype == np.float64
        and x.size > 0
        and type(method) is str
        and method == "central"
        and type(order) is int
        and order == 2
        and step is None
        and type(args) is tuple
        and vectorized is False
        and bounds is None
        and grad is None
        and workers is None
        and progress is False
        and callable(f)
    ):
        return _hessian_fast(f, x, args, full_output)
    return _hessian(
        eng, f, x, method, order, step, args, vectorized, bounds, grad, workers,
        progress, full_output,
    )  # fmt: skip


def _hessian_fast(f: Func, x: np.ndarray, args: tuple[Any, ...], full_output: Any) -> Any:
    """The common Hessian, lean: central order 2, default steps, Cython loop."""
    if full_output is not False:
        full_output = check_bool(full_output, "full_output")
    shape = x.shape
    x0 = x.reshape(-1).copy()
    K = _fd_kernels()
    h, bad = K.relative_steps(x0, _H0_SECOND)
    if bad >= 0:
        _check_point(x0)  # raises: x is not finite
        _make_exact(x0, h)  # raises naming the overflow
    xb = x0.copy()
    view = xb.reshape(shape)
    view.flags.writeable = False
    H, nfev = K.hessian2_loop(f, (view,) + args, xb, x0, h)
    result = _scalarize(H.reshape(shape + shape))
    if full_output:
        return result, _info(nfev, h, shape, None, shape + shape, "central", 2)
    return result


# ---------------------------------------------------------------------------
# Along a direction: derivative (elementwise), directional_derivative, jvp, hvp
# ---------------------------------------------------------------------------


def _line_eval(
    eng: _Engine,
    f: Func,
    args: tuple[Any, ...],
    x0: np.ndarray,
    d: np.ndarray,
    shape: tuple[int, ...],
    method: str,
    order: int,
    deriv: int,
    scale: np.ndarray,
    scalar: bool,
    what: str,
    cache: dict[str, Any] | None = None,
) -> tuple[np.ndarray, tuple[int, ...], int]:
    """sum_k w_k f(x + o_k d) / scale for the method's stencil; (values (m,), shape, nfev)."""
    if method == "complex":
        plan = LinePlan(x0, d, (1.0,), (1.0,), scale)
        with _complex_safe():
            values, out_shape = eng.line(f, args, plan, shape, scalar, what, cplx=True)
    else:
        s = _stencil(method, order, deriv)
        plan = LinePlan(x0, d, tuple(map(float, s.offsets)), s.weights, scale)
        values, out_shape = eng.line(f, args, plan, shape, scalar, what, cache=cache)
    _check_elementwise(what, out_shape, shape)
    return plan.combine(values), out_shape, plan.nfev


def _line_richardson(
    eng: _Engine,
    f: Func,
    args: tuple[Any, ...],
    x0: np.ndarray,
    direction: np.ndarray,
    base: np.ndarray,
    shape: tuple[int, ...],
    deriv: int,
    scalar: bool,
    what: str,
    elementwise: bool,
) -> tuple[np.ndarray, tuple[int, ...], int, np.ndarray, np.ndarray]:
    """Richardson along x + t * direction (rows: elements if elementwise, else one row)."""
    state: dict[str, Any] = {"nfev": 0, "shape": None}
    cache: dict[str, Any] = {}
    s = _stencil("central", 2, deriv)
    nrows = x0.size if elementwise else 1

    def compute(levels: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        D: np.ndarray | None = None
        F = cast(np.ndarray, None)  # allocated with D
        hs = np.empty(rows.size)
        for lev in np.unique(levels):
            sel = levels == lev
            t = base * 2.0 ** -int(lev)
            if elementwise:
                t = _make_exact(x0, t)
            d = t * direction
            plan = LinePlan(x0, d, tuple(map(float, s.offsets)), s.weights, t**deriv)
            values, out_shape = eng.line(f, args, plan, shape, scalar, what, cache=cache)
            state["nfev"] += sum(1 for o in s.offsets if o != 0.0)
            state["shape"] = out_shape
            _check_elementwise(what, out_shape, shape)
            res = plan.combine(values)
            Fv = np.abs(values).max(axis=0)
            if D is None:
                m = 1 if elementwise else res.size
                D = np.empty((rows.size, m))
                F = np.empty((rows.size, m))
            r = rows[sel]
            if elementwise:
                D[sel, 0] = res[r]
                F[sel, 0] = Fv[r]
                hs[sel] = t[r]
            elif np.any((x0 + d == x0) & (direction != 0)):
                # The step is below the spacing of floats at x in some coordinate:
                # x + t*v rounds back to x there, so this level measures nothing.
                # Without this, an f that is NaN everywhere but at x itself gave 0.
                D[sel] = np.nan
                F[sel] = np.nan
                hs[sel] = np.nan
            else:
                D[sel] = res
                F[sel] = Fv
                hs[sel] = float(np.max(t))
        return cast(np.ndarray, D), F, hs  # levels is not empty

    res = richardson(compute, nrows, deriv=deriv)
    nfev = state["nfev"] + (1 if "f0" in cache else 0)
    if elementwise:
        return res.value[:, 0], state["shape"], nfev, res.step, res.error[:, 0]
    return res.value[0], state["shape"], nfev, res.step, res.error[0]


def _derivative(
    eng: _Engine, f: Func, x: ArrayLike, n: Any, method: str, order: int, step: Any, args: Any
) -> Any:
    _check_f(f)
    args = _check_args(args)
    x0, shape = _check_point(x)
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"`n` must be an int (1 or 2); got {n!r}.")
    if n not in (1, 2):
        raise ValueError(f"`n` must be 1 or 2; got {n}.")
    n = int(n)
    method = _check_method(method)
    order = _check_order(order, method)
    if method == "complex" and n == 2:
        raise ValueError("method='complex' gives first derivatives only; `n` must be 1.")
    if x0.size == 0:
        return np.zeros(shape)
    if method == "richardson":
        base = _richardson_base(x0, step, shape)
        val, out_shape, _, _, _ = _line_richardson(
            eng, f, args, x0, np.ones_like(x0), base, shape, n, False, "derivative", True
        )
    else:
        h = _steps_shaped(x0, shape, method, order, n, step)
        val, out_shape, _ = _line_eval(
            eng, f, args, x0, h, shape, method, order, n, h**n, False, "derivative"
        )
    _check_elementwise(what="derivative", out_shape=out_shape, shape=shape)
    return _scalarize(val.reshape(shape))


def _check_elementwise(what: str, out_shape: Any, shape: tuple[int, ...]) -> None:
    """derivative's f must map x to an array of x's shape (checked before combining)."""
    if what == "derivative" and tuple(out_shape) != shape:
        raise ValueError(
            f"`f` must be elementwise for derivative: for x of shape {shape} it returned "
            f"shape {tuple(out_shape)} (use vcalc.jacobian otherwise)."
        )


@nonfinite_warning("derivative")
def derivative(
    f: Func,
    x: ArrayLike,
    *,
    n: int = 1,
    method: str = "central",
    order: int = 2,
    step: ArrayLike | None = None,
    args: tuple[Any, ...] = (),
) -> Any:
    """Elementwise first or second derivative of an elementwise function.

    f maps arrays to arrays of the same shape elementwise (like ``np.sin``);
    the result is f'(x) (or f''(x)) at every element, from a handful of calls
    of f on whole arrays.

    Parameters
    ----------
    f : callable
        ``f(x, *args)``, elementwise.
    x : array_like
        Points; real and finite.
    n : {1, 2}, default 1
        Which derivative.
    method, order, step, args
        As for :func:`gradient` (``"complex"`` for n = 1 only).

    Returns
    -------
    ndarray or float
        Shape of `x`.

    Raises
    ------
    TypeError, ValueError
        As for :func:`gradient`; also if f's value does not have the shape
        of `x`, or `n` is not 1 or 2.

    Warns
    -----
    RuntimeWarning
        Once, starting ``"vcalc.derivative: "``, when entries of the result are NaN
        or inf (f returned NaN or inf at a point evaluated for them, or the
        differences of its values overflowed); it gives their indices.  The
        other entries are still right.

    Notes
    -----
    Each stencil point is one call of f on the whole array: central order 2
    uses 2 calls for n = 1 and 3 for n = 2.  Steps are per element, relative
    to max(1, |x_i|); a fixed relative step fails where f varies much faster
    than |x| (sin at 1e10): use an absolute `step` or ``"richardson"``.

    Examples
    --------
    Seed example 3 (chain rule): h = f(g(t)) with f(x) = exp(x1 x2**2) and
    g(t) = [t cos t, t sin t]; dh/dt = J_f(g(t)) J_g(t).

    >>> import numpy as np, vcalc
    >>> f = lambda x: np.exp(x[0] * x[1]**2)
    >>> g = lambda t: np.array([t * np.cos(t), t * np.sin(t)])
    >>> t = 0.7
    >>> dh = vcalc.derivative(lambda s: f(g(s)), t)
    >>> chain = vcalc.jacobian(f, g(t)) @ vcalc.jacobian(g, t)
    >>> x1, x2 = g(t)
    >>> exact = np.exp(x1 * x2**2) * (x2**2 * (np.cos(t) - t * np.sin(t))
    ...                               + 2 * x1 * x2 * (np.sin(t) + t * np.cos(t)))
    >>> bool(np.isclose(dh, exact, rtol=1e-8)), bool(np.isclose(chain, exact, rtol=1e-8))
    (True, True)
    >>> bool(np.isclose(vcalc.derivative(np.sin, 1e10, method="richardson"), np.cos(1e10)))
    True
    """
    return _derivative(engine(), f, x, n, method, order, step, args)


def _direction(v: Any, x0: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    va = as_float_array(v, "v")
    if va.shape != shape:
        raise ValueError(f"`v` must have the shape of `x` {shape}; got shape {va.shape}.")
    d = np.array(va, dtype=np.float64).reshape(-1)
    if not np.isfinite(d).all():
        raise ValueError("`v` must be finite.")
    return d


def _line_step(
    x0: np.ndarray, d: np.ndarray, method: str, order: int, deriv: int, step: Any
) -> float:
    """Step t along d: h0 * max(1, max|x|) / max|d| unless given."""
    if step is not None:
        if isinstance(step, (bool, np.bool_)) or np.ndim(step) != 0:
            raise TypeError(f"`step` must be a positive real number here; got {step!r}.")
        t = float(as_float_array(step, "step"))
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"`step` must be finite and > 0; got {t!r}.")
        return t
    if method == "richardson":
        h0 = RICHARDSON_STEP
    else:
        h0 = default_step(method, order, deriv)
    xs = max(1.0, float(np.max(np.abs(x0)))) if x0.size else 1.0
    t = h0 * xs / float(np.max(np.abs(d)))
    return float(2.0 ** math.floor(math.log2(t)))  # a power of two: t * v is exact


def _unit_scale(d: np.ndarray, step: Any) -> tuple[np.ndarray, float]:
    """(d / s, s) for a power of two s making max|d / s| about 1, when that matters.

    The default step along d is about 1e-5 / max|d|: for a subnormal d it
    overflows (and for a huge d it underflows), although t * d is an ordinary
    number.  jvp, directional_derivative and hvp are linear in v, so they run
    on d / s and multiply by s; s is a power of two, so for ordinary d (left
    alone here) nothing changes, and elsewhere nothing is rounded.  A given
    `step` is along v itself, so then d is left as it is.
    """
    m = float(np.max(np.abs(d)))
    if step is not None or 2.0**-500 < m < 2.0**500:
        return d, 1.0
    e = math.frexp(m)[1]
    return np.ldexp(d, -e), math.ldexp(1.0, e)


def _jvp(
    eng: _Engine,
    what: str,
    f: Func,
    x: ArrayLike,
    v: ArrayLike,
    method: str,
    order: int,
    step: Any,
    args: Any,
) -> Any:
    _check_f(f)
    args = _check_args(args)
    x0, shape = _check_point(x)
    d = _direction(v, x0, shape)
    method = _check_method(method)
    order = _check_order(order, method)
    scalar = what == "directional_derivative"
    if not np.any(d):
        val = check_value(f(x0.reshape(shape), *args), None, scalar, what)
        return _scalarize(np.zeros(val.shape))
    d, scale = _unit_scale(d, step)
    t = _line_step(x0, d, method, order, 1, step)
    if method == "richardson":
        val, out_shape, _, _, _ = _line_richardson(
            eng, f, args, x0, d, np.array(t), shape, 1, scalar, what, False
        )
    else:
        if method == "complex":
            t = COMPLEX_STEP / float(np.max(np.abs(d))) if step is None else t
        val, out_shape, _ = _line_eval(
            eng, f, args, x0, t * d, shape, method, order, 1, np.array(t), scalar, what
        )
    return _scalarize(val.reshape(out_shape) * scale)


@nonfinite_warning("directional_derivative")
def directional_derivative(
    f: Func,
    x: ArrayLike,
    v: ArrayLike,
    *,
    method: str = "central",
    order: int = 2,
    step: float | None = None,
    args: tuple[Any, ...] = (),
) -> Any:
    """Directional derivative of a scalar function: grad f(x) . v.

    Computed as d/dt f(x + t v) at t = 0, at a cost independent of the
    dimension.  `v` is not normalised: pass a unit vector for the slope per
    unit length.

    Parameters
    ----------
    f : callable
        ``f(x, *args) -> float``.
    x : array_like
        The point.
    v : array_like, shape of `x`
        The direction.
    method, order, args
        As for :func:`gradient`.
    step : float, optional
        Step in t; default ``h0 * max(1, max|x|) / max|v|`` rounded down to a
        power of two, with h0 the method's relative step.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        As for :func:`gradient`; also if `v` does not have the shape of `x`.

    Warns
    -----
    RuntimeWarning
        Once, starting ``"vcalc.directional_derivative: "``, when entries of the result are NaN
        or inf (f returned NaN or inf at a point evaluated for them, or the
        differences of its values overflowed); it gives their indices.  The
        other entries are still right.

    Notes
    -----
    Central order 2: 2 evaluations; forward order 1: 2; complex: 1.

    Examples
    --------
    Seed example 10: moving along d with grad f . d > 0 increases f.

    >>> import numpy as np, vcalc
    >>> f = lambda x: x[0]**2 + 3 * x[1]
    >>> x = np.array([1.0, 1.0])
    >>> float(np.round(vcalc.directional_derivative(f, x, [1.0, 0.0]), 6))
    2.0
    >>> float(np.round(vcalc.directional_derivative(f, x, [3.0, -2.0]), 6))  # 6 - 6
    0.0
    """
    return _jvp(engine(), "directional_derivative", f, x, v, method, order, step, args)


@nonfinite_warning("jvp")
def jvp(
    f: Func,
    x: ArrayLike,
    v: ArrayLike,
    *,
    method: str = "central",
    order: int = 2,
    step: float | None = None,
    args: tuple[Any, ...] = (),
) -> Any:
    """Jacobian-vector product J(x) v without forming J.

    Parameters
    ----------
    f : callable
        ``f(x, *args) -> array_like``.
    x : array_like
        The point.
    v : array_like, shape of `x`
        The tangent.
    method, order, step, args
        As for :func:`directional_derivative`.

    Returns
    -------
    ndarray, shape ``f(x).shape``

    Raises
    ------
    TypeError, ValueError
        As for :func:`directional_derivative`.

    Warns
    -----
    RuntimeWarning
        Once, starting ``"vcalc.jvp: "``, when entries of the result are NaN
        or inf (f returned NaN or inf at a point evaluated for them, or the
        differences of its values overflowed); it gives their indices.  The
        other entries are still right.

    Notes
    -----
    ``J v = d/dt f(x + t v)`` at t = 0: a fixed number of evaluations (2
    for central order 2), independent of the dimension.

    Examples
    --------
    Seed example 10: g(x + eps) ~= g(x) + J(x) eps.

    >>> import numpy as np, vcalc
    >>> g = lambda x: np.array([x[0] * x[1], np.sin(x[0])])
    >>> x = np.array([1.0, 2.0]); eps = np.array([1e-3, -2e-3])
    >>> np.allclose(g(x + eps), g(x) + vcalc.jvp(g, x, eps), atol=1e-5)
    True
    """
    return _jvp(engine(), "jvp", f, x, v, method, order, step, args)


def _hvp(eng: _Engine, f: Func, x: ArrayLike, v: ArrayLike, grad: Any, step: Any, args: Any) -> Any:
    out_shape: tuple[int, ...] | None  # of grad's value, or of f's
    _check_f(f)
    args = _check_args(args)
    x0, shape = _check_point(x)
    d = _direction(v, x0, shape)
    if not np.any(d):
        return _scalarize(np.zeros(shape))
    d, scale = _unit_scale(d, step)
    if grad is not None:
        _check_f(grad, "grad")
        t = _line_step(x0, d, "central", 2, 1, step)
        val, out_shape, _ = _line_eval(
            eng, grad, args, x0, t * d, shape, "central", 2, 1, np.array(t), False, "hvp"
        )
        if tuple(out_shape) != shape:
            raise ValueError(
                f"`grad` must return an array of the shape of `x` {shape}; got {out_shape}."
            )
        return _scalarize(val.reshape(shape) * scale)
    # Without a gradient: (H v)_i = d2 f / dt ds at x + t v + s e_i, the central
    # mixed difference in (t, s): 4 evaluations per coordinate.
    t = _line_step(x0, d, "central", 2, 2, step)
    h = _steps(x0, "central", 2, 2, None)
    n = x0.size
    pts = []
    for sign_t in (1.0, -1.0):
        xt = x0 + sign_t * t * d
        for sign_s in (1.0, -1.0):
            P = np.tile(xt, (n, 1))
            P[np.arange(n), np.arange(n)] += sign_s * h
            pts.append(P)
    vals = np.empty((4, n))
    out_shape = None
    for q, P in enumerate(pts):
        for i in range(n):
            a = check_value(f(P[i].reshape(shape), *args), out_shape, True, "hvp")
            out_shape = a.shape
            vals[q, i] = float(a)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN is reported by the caller
        acc = 1.0 * vals[0]
        acc += -1.0 * vals[1]
        acc += -1.0 * vals[2]
        acc += 1.0 * vals[3]
        return _scalarize((acc / (4.0 * t * h)).reshape(shape) * scale)


@nonfinite_warning("hvp")
def hvp(
    f: Func,
    x: ArrayLike,
    v: ArrayLike,
    *,
    grad: Func | None = None,
    step: float | None = None,
    args: tuple[Any, ...] = (),
) -> Any:
    """Hessian-vector product H(x) v of a scalar function without forming H.

    Parameters
    ----------
    f : callable
        ``f(x, *args) -> float``.
    x : array_like
        The point.
    v : array_like, shape of `x`
        The vector.
    grad : callable, optional
        ``grad(x, *args)``, the gradient of f.  With it, ``H v`` is the
        central difference ``(grad(x + t v) - grad(x - t v)) / (2 t)``: two
        evaluations of `grad`, whatever the dimension.
    step : float, optional
        Step t along v (see :func:`directional_derivative`).
    args : tuple, optional

    Returns
    -------
    ndarray, shape of `x`

    Raises
    ------
    TypeError, ValueError
        As for :func:`directional_derivative`.

    Warns
    -----
    RuntimeWarning
        Once, starting ``"vcalc.hvp: "``, when entries of the result are NaN
        or inf (f returned NaN or inf at a point evaluated for them, or the
        differences of its values overflowed); it gives their indices.  The
        other entries are still right.

    Notes
    -----
    The cost independent of n needs `grad`: H v has n entries and each
    evaluation of a scalar f gives one number, so from f alone at least n
    evaluations are needed.  Without `grad`, each entry is the central mixed
    difference of f in t (along v) and s (along e_i), 4 n evaluations.

    Examples
    --------
    Seed example 9: f = x^T A x + b^T x has H = 2A (A symmetric).

    >>> import numpy as np, vcalc
    >>> A = np.array([[2.0, 1.0], [1.0, 3.0]]); b = np.array([1.0, -1.0])
    >>> f = lambda x: x @ A @ x + b @ x
    >>> g = lambda x: 2 * A @ x + b
    >>> x = np.array([0.3, -0.2]); v = np.array([1.0, 2.0])
    >>> np.allclose(vcalc.hvp(f, x, v, grad=g), 2 * A @ v)
    True
    >>> np.allclose(vcalc.hvp(f, x, v), 2 * A @ v, rtol=1e-6)
    True
    """
    return _hvp(engine(), f, x, v, grad, step, args)


# ---------------------------------------------------------------------------
# check_grad and taylor
# ---------------------------------------------------------------------------


def _check_grad(
    eng: _Engine,
    f: Func,
    grad: Func,
    x: ArrayLike,
    rtol: Any,
    atol: Any,
    method: str,
    args: Any,
) -> GradCheck:
    _check_f(f)
    _check_f(grad, "grad")
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, (int, float, np.number)):
            raise TypeError(f"`{name}` must be a real number; got {tol!r}.")
        if not (tol >= 0 and math.isfinite(tol)):
            raise ValueError(f"`{name}` must be finite and >= 0; got {tol!r}.")
    args = _check_args(args)
    x0, shape = _check_point(x)
    numeric = np.asarray(
        _first(eng, "jacobian", f, x, method, 2, None, args, False, None, None, False, False)
    )
    analytic = as_value(grad(x0.reshape(shape).copy(), *args), "grad")
    if analytic.dtype.kind not in "fiub":
        raise TypeError(f"`grad` must return real numbers; got dtype {analytic.dtype}.")
    analytic = analytic.astype(np.float64)
    if analytic.shape != numeric.shape:
        raise ValueError(
            f"`grad` must return shape {numeric.shape} (f(x).shape + x.shape); "
            f"got {analytic.shape}."
        )
    diff = np.abs(analytic - numeric)
    denom = np.maximum(np.abs(analytic), np.abs(numeric))
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(denom > 0, diff / np.where(denom > 0, denom, 1.0), 0.0)
        ratio = diff / (atol + rtol * np.abs(numeric))
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    ok = bool(np.all(diff <= atol + rtol * np.abs(numeric)))
    worst = (
        tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), ratio.shape))
        if ratio.size
        else ()
    )
    return GradCheck(
        ok,
        float(diff.max()) if diff.size else 0.0,
        float(rel.max()) if rel.size else 0.0,
        worst,
        numeric,
        analytic,
        float(rtol),
        float(atol),
    )


@nonfinite_warning("check_grad")
def check_grad(
    f: Func,
    grad: Func,
    x: ArrayLike,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    method: str = "central",
    args: tuple[Any, ...] = (),
) -> GradCheck:
    """Check an analytic gradient (or Jacobian) against finite differences.

    Parameters
    ----------
    f : callable
        ``f(x, *args)``, scalar or array valued.
    grad : callable
        ``grad(x, *args)``, its claimed derivative in numerator layout
        (``f(x).shape + x.shape``; for scalar f, the shape of x).
    x : array_like
        The point.
    rtol, atol : float
        The check passes where ``|analytic - numeric| <= atol + rtol * |numeric|``.
    method : str, default "central"
        Finite-difference method for the numeric derivative (order 2).
    args : tuple, optional

    Returns
    -------
    GradCheck
        ``ok``, the largest absolute and relative errors, the worst index
        and both derivatives; ``str()`` gives a one-line verdict.

    Raises
    ------
    TypeError, ValueError
        As for :func:`jacobian`; also if `grad` returns the wrong shape.

    Warns
    -----
    RuntimeWarning
        Once, starting ``"vcalc.check_grad: "``, when entries of the result are NaN
        or inf (f returned NaN or inf at a point evaluated for them, or the
        differences of its values overflowed); it gives their indices.  The
        other entries are still right.

    Examples
    --------
    Seed example 7: d(x^T B x)/dx = (B + B^T) x.

    >>> import numpy as np, vcalc
    >>> B = np.array([[1.0, 2.0], [0.0, 3.0]])
    >>> res = vcalc.check_grad(lambda x: x @ B @ x, lambda x: (B + B.T) @ x, [1.0, -1.0])
    >>> res.ok
    True
    >>> bad = vcalc.check_grad(lambda x: x @ B @ x, lambda x: 2 * B @ x, [1.0, -1.0])
    >>> bad.ok, bad.worst_index
    (False, (0,))
    """
    return _check_grad(engine(), f, grad, x, rtol, atol, method, args)


def _taylor(eng: _Engine, f: Func, x: ArrayLike, order: Any, method: str, args: Any) -> Taylor:
    _check_f(f)
    args = _check_args(args)
    x0, shape = _check_point(x)
    if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)):
        raise TypeError(f"`order` must be an int (1 or 2); got {order!r}.")
    if order not in (1, 2):
        raise ValueError(f"`order` must be 1 or 2 for a Taylor model; got {order}.")
    method = _check_method(method)
    f0 = check_value(f(x0.reshape(shape).copy(), *args), None, False, "taylor")
    f0 = np.array(f0, dtype=np.float64)
    if order == 2 and f0.ndim != 0:
        raise ValueError(
            f"a second-order Taylor model needs scalar f; f returned shape {f0.shape} "
            "(use order=1 for vector-valued f)."
        )
    J = np.asarray(
        _first(eng, "jacobian", f, x, method, 2, None, args, False, None, None, False, False)
    )
    H = None
    if order == 2:
        H = np.asarray(
            _hessian(
                eng,
                f,
                x,
                "central" if method == "complex" else method,
                2,
                None,
                args,
                False,
                None,
                None,
                None,
                False,
                False,
            )  # fmt: skip
        )
    return Taylor(x0.reshape(shape), _scalarize(f0), J, H, int(order))


@nonfinite_warning("taylor")
def taylor(
    f: Func, x: ArrayLike, *, order: int = 2, method: str = "central", args: tuple[Any, ...] = ()
) -> Taylor:
    """First- or second-order Taylor model of f at x.

    Parameters
    ----------
    f : callable
        ``f(x, *args)``; scalar for order 2, any shape for order 1.
    x : array_like
        The expansion point.
    order : {1, 2}, default 2
    method : str, default "central"
        Method for the derivatives (order 2 stencils; ``"complex"`` is used
        for the gradient only).
    args : tuple, optional

    Returns
    -------
    Taylor
        Callable on a point (or a stack of points) with the model's value.

    Raises
    ------
    TypeError, ValueError
        As for :func:`gradient`; also for order 2 with vector-valued f.

    Warns
    -----
    RuntimeWarning
        Once, starting ``"vcalc.taylor: "``, when entries of the result are NaN
        or inf (f returned NaN or inf at a point evaluated for them, or the
        differences of its values overflowed); it gives their indices.  The
        other entries are still right.

    Notes
    -----
    The first-order model's error shrinks like ||eps||**2, the second-order
    one's like ||eps||**3 (seed example 10).

    Examples
    --------
    >>> import numpy as np, vcalc
    >>> f = lambda x: np.exp(x[0]) * np.sin(x[1])
    >>> x = np.array([0.2, 0.9]); eps = np.array([1e-2, -1e-2])
    >>> t1, t2 = vcalc.taylor(f, x, order=1), vcalc.taylor(f, x)
    >>> e1, e2 = abs(t1(x + eps) - f(x + eps)), abs(t2(x + eps) - f(x + eps))
    >>> bool(e2 < e1 < 1e-3)
    True
    """
    return _taylor(engine(), f, x, order, method, args)
