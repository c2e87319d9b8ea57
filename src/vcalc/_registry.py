"""The registry of public functions: (fast facade, reference) pairs and their cases.

One table drives the self-check (``python -m vcalc``) and the test sweeps, so
a function added to vcalc cannot skip its fast-versus-reference check: the
tests assert that every public numerical function has an entry here.

Each entry gives a case generator (random and edge-case arguments) and a
``scale`` function: the size each output is measured against.  For the
reductions that is the reference value itself (errors are relative); for
sums of products of either sign (quadratic forms, least squares) it is the
same sum taken over absolute values, the natural bound of a rounding error
in the presence of cancellation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from vcalc import _finite_diff, _quadratic, _reductions, reference
from vcalc._finite_diff import RICHARDSON_STEP
from vcalc._steps import default_step

__all__ = ["Case", "Entry", "REGISTRY"]


def _edge_values(dtype: Any) -> np.ndarray:
    """Values that break naive kernels, +-1e308 scaled to the dtype's range."""
    big = 1e308 if np.dtype(dtype) == np.float64 else 3e38
    return np.array([0.0, -1.0, 2.5, big, -big, np.inf, -np.inf, np.nan, 80.0, -104.0], dtype)


@dataclass(frozen=True)
class Case:
    """Arguments for one call, and a label for reports."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class Entry:
    """A public function, its reference twin, its cases and its error scale."""

    name: str
    func: Callable[..., Any]
    ref: Callable[..., Any]
    cases: Callable[[np.random.Generator], Iterator[Case]]
    scale: Callable[[Case, Any], Any] | None = None  # None: relative to |reference|
    project: Callable[[Any], Any] | None = None  # result object -> arrays to compare


def _data(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    return (rng.standard_normal(shape) * 5).astype(dtype)


def _reduction_cases(rng: np.random.Generator, *, weights: bool) -> Iterator[Case]:
    for dtype in (np.float64, np.float32):
        for shape, axis in [
            ((7,), None),
            ((4, 9), -1),
            ((4, 9), 0),
            ((3, 4, 5), (0, 2)),
            ((2, 3), None),
            ((6, 1000), 1),
            ((5, 0), 1),
            ((0, 5), 1),
        ]:
            a = _data(rng, shape, dtype)
            yield Case((a,), {"axis": axis}, f"{np.dtype(dtype).name}{shape} axis={axis}")
            if weights:
                b = rng.uniform(-1, 2, shape).astype(dtype)
                b[b < 0] = 0.0  # masked entries
                yield Case((a,), {"axis": axis, "b": b}, "weights >= 0")
                yield Case(
                    (a,),
                    {
                        "axis": axis,
                        "b": rng.uniform(-1, 1, shape).astype(dtype),
                        "return_sign": True,
                    },
                    "signed weights",
                )
        # Rows drawn from the edge values: +-1e308, +-inf, NaN, all -inf, ...
        edge = rng.choice(_edge_values(dtype), size=(200, 4))
        big = _edge_values(dtype)[3]
        edge[0] = -np.inf
        edge[1] = [big, -big, big, 0.0]
        edge[2] = [np.inf, 1.0, np.inf, -np.inf]
        yield Case((edge,), {"axis": 1}, f"{np.dtype(dtype).name} edge rows")
        if weights:
            b = rng.choice([0.0, 1.0, -1.0, 0.5], size=edge.shape).astype(dtype)
            yield Case((edge,), {"axis": 1, "b": b, "return_sign": True}, "edge rows, weights")


def _jacobian_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in (np.float64, np.float32):
        yield Case((_data(rng, (5,), dtype),), {}, "vector")
        yield Case((_data(rng, (3, 6), dtype),), {"axis": 0}, "axis 0")
        yield Case((_data(rng, (2, 3, 4), dtype),), {"axis": -1}, "batch")
        yield Case((np.array([0.0, -40.0, -60.0], dtype),), {}, "near one-hot")
        edge = rng.choice(_edge_values(dtype), size=(50, 3))
        yield Case((edge,), {"axis": 1}, "edge rows")


def _quadratic_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in (np.float64, np.float32):
        for n in (1, 2, 3, 5, 8, 17):
            A = _data(rng, (n, n), dtype)
            yield Case(
                (A, _data(rng, (50, n), dtype)), {}, f"{np.dtype(dtype).name} n={n} A shared"
            )
            yield Case((_data(rng, (4, n, n), dtype), _data(rng, (4, n), dtype)), {}, "A batched")
            yield Case(
                (_data(rng, (3, 1, n, n), dtype), _data(rng, (4, n), dtype)), {}, "broadcast"
            )
        yield Case((_data(rng, (3, 3), dtype), _data(rng, (3,), dtype)), {}, "single x")
        yield Case((_data(rng, (4, 4), dtype), _data(rng, (0, 4), dtype)), {}, "empty batch")
    # Entries of 1e150: products near 1e300 must stay finite and exact.
    yield Case(
        (_data(rng, (6, 6), np.float64) * 1e150, _data(rng, (7, 6), np.float64)),
        {},
        "large entries",
    )


def _quadratic_grad_cases(rng: np.random.Generator) -> Iterator[Case]:
    yield from _quadratic_cases(rng)
    for dtype in (np.float64, np.float32):
        for n in (2, 5, 17):
            A = _data(rng, (n, n), dtype)
            yield Case(
                (A + A.T, _data(rng, (20, n), dtype)),
                {"symmetric": True},
                f"{np.dtype(dtype).name} n={n} symmetric",
            )


def _hessian_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in (np.float64, np.float32):
        yield Case((_data(rng, (5, 5), dtype),), {}, "square")
        yield Case((_data(rng, (3, 4, 4), dtype),), {}, "batched")


def _least_squares_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in (np.float64, np.float32):
        Phi, y = _data(rng, (40, 6), dtype), _data(rng, (40,), dtype)
        yield Case((Phi, y, _data(rng, (6,), dtype)), {}, f"{np.dtype(dtype).name} one theta")
        yield Case((Phi, y, _data(rng, (3, 5, 6), dtype)), {"ridge": 0.5}, "batch, ridge")
        yield Case((Phi, y, _data(rng, (8, 6), dtype)), {"mean": True}, "batch, mean")


def _weighted_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in (np.float64, np.float32):
        x, A = _data(rng, (7,), dtype), _data(rng, (7, 3), dtype)
        W = _data(rng, (7, 7), dtype)
        yield Case((x, A, _data(rng, (3,), dtype)), {}, f"{np.dtype(dtype).name} W=None")
        yield Case((x, A, _data(rng, (10, 3), dtype)), {"W": W @ W.T}, "batch, W spd")
        yield Case((x, A, _data(rng, (2, 5, 3), dtype)), {"W": W}, "batch, W general")


def _normal_cases(rng: np.random.Generator) -> Iterator[Case]:
    for dtype in (np.float64, np.float32):
        Phi = _data(rng, (30, 4), dtype)
        yield Case((Phi, _data(rng, (30,), dtype)), {}, f"{np.dtype(dtype).name} full rank")
        yield Case((Phi, _data(rng, (30, 2), dtype)), {"ridge": 2.0}, "ridge, two rhs")


# -- error scales -----------------------------------------------------------


def _abs(x: Any) -> np.ndarray:
    return np.abs(np.asarray(x, dtype=np.float64))


def _qf_scale(case: Case, ref_out: Any) -> Any:
    A, X = (_abs(v) for v in case.args[:2])
    value = np.einsum("...i,...ij,...j->...", X, A, X)
    grad = np.matmul(A + np.swapaxes(A, -1, -2), X[..., None])[..., 0]
    return value, grad


def _lse_scale(case: Case, ref_out: Any) -> Any:
    """Errors of a logsumexp with signed weights, against |result| + cond.

    log|sum b e^a| is computed from a sum whose terms nearly cancel when the
    weights have both signs: its absolute error is then eps times the
    condition number sum |b| e^a / |sum b e^a|, however it is computed (the
    kernel and the reference round differently).  Elsewhere, |result|.
    """
    b = case.kwargs.get("b")
    if b is None or not np.any(np.asarray(b) < 0):
        return None
    a = np.asarray(case.args[0], dtype=np.float64)
    w = np.asarray(b, dtype=np.float64)
    axis = case.kwargs.get("axis")
    with np.errstate(all="ignore"):
        m = np.max(np.where(np.isfinite(a), a, -np.inf), axis=axis, keepdims=True)
        e = np.exp(a - np.where(np.isfinite(m), m, 0.0))
        cond = np.sum(np.abs(w) * e, axis=axis) / np.abs(np.sum(w * e, axis=axis))
    cond = np.where(np.isfinite(cond), cond, 0.0)
    value = ref_out[0] if isinstance(ref_out, tuple) else ref_out
    scale = np.abs(np.asarray(value, dtype=np.float64)) + cond
    return (scale, None) if isinstance(ref_out, tuple) else scale


def _qf_value_scale(case: Case, ref_out: Any) -> Any:
    return _qf_scale(case, ref_out)[0]


def _qf_grad_scale(case: Case, ref_out: Any) -> Any:
    return _qf_scale(case, ref_out)[1]


def _lsq_scale(case: Case, ref_out: Any) -> Any:
    Phi, y, theta = (np.asarray(v, dtype=np.float64) for v in case.args)
    ridge = case.kwargs.get("ridge", 0.0)
    r = np.abs(y) + np.abs(theta) @ np.abs(Phi).T
    den = Phi.shape[0] if case.kwargs.get("mean") else 1
    loss = (r**2).sum(-1) / den + ridge * (theta**2).sum(-1)
    grad = 2 * (r @ np.abs(Phi)) / den + 2 * ridge * np.abs(theta)
    return loss, grad


def _wlsq_scale(case: Case, ref_out: Any) -> Any:
    x, A, s = (_abs(v) for v in case.args)
    W = _abs(case.kwargs["W"]) if case.kwargs.get("W") is not None else np.eye(len(x))
    r = x + s @ A.T
    value = np.einsum("...i,ij,...j->...", r, W, r)
    grad = ((W + W.T) @ r[..., None])[..., 0] @ A
    return value, grad


def _normal_scale(case: Case, ref_out: Any) -> Any:
    # A solve is as good as its conditioning allows: measure errors against
    # the size of the solution, scaled by the condition number of Phi.
    Phi = np.asarray(case.args[0], dtype=np.float64)
    cond = np.linalg.cond(Phi)
    return np.full(np.shape(ref_out), np.max(_abs(ref_out)) * cond)


# -- finite differences -------------------------------------------------------
#
# The two backends evaluate the same points of the same plan but combine the
# values in a different order, so their results differ by rounding in the
# weighted sum: about eps * sum|w f| / h**d.  The error scale below is that
# sum (times 1e3 for the tolerance's headroom of ~4000 eps at 1e-12).


def _fd_scalar(x: np.ndarray) -> Any:
    return np.sum(np.exp(np.sin(x))) + x.flat[0] * x.flat[-1]


def _fd_vector(x: np.ndarray) -> np.ndarray:
    return np.stack([np.sum(x**2), np.prod(np.cos(x)), x.flat[0] ** 3])


def _fd_elementwise(x: Any) -> Any:
    return np.exp(-x) * np.sin(2 * x)


def _fd_grad(x: np.ndarray) -> np.ndarray:
    g = np.cos(x) * np.exp(np.sin(x))
    g.flat[0] += x.flat[-1]
    g.flat[-1] += x.flat[0]
    return cast(np.ndarray, g)


_FD_METHODS = [
    ("central", 2),
    ("central", 4),
    ("central", 8),
    ("forward", 1),
    ("forward", 3),
    ("backward", 2),
    ("complex", 2),
    ("richardson", 2),
]


def _fd_first_cases(rng: np.random.Generator, f: Callable[..., Any]) -> Iterator[Case]:
    for shape in ((3,), (2, 2), ()):
        x = rng.uniform(-1.5, 1.5, shape)
        for method, order in _FD_METHODS:
            yield Case((f, x), {"method": method, "order": order}, f"{shape} {method} {order}")
    x = rng.uniform(-1.5, 1.5, (4,))
    yield Case((f, x), {"bounds": (x - 1e-7, 2.0)}, "at a lower bound")
    yield Case((f, x), {"step": 1e-4}, "absolute step")
    yield Case((f, x), {"method": "richardson", "full_output": True}, "richardson + error")


def _fd_hessian_cases(rng: np.random.Generator) -> Iterator[Case]:
    for shape in ((3,), (2, 2)):
        x = rng.uniform(-1.5, 1.5, shape)
        for method, order in [("central", 2), ("central", 4), ("forward", 1), ("backward", 2)]:
            yield Case((_fd_scalar, x), {"method": method, "order": order}, f"{method} {order}")
        yield Case((_fd_scalar, x), {"method": "richardson"}, "richardson")
        yield Case((_fd_scalar, x), {"grad": _fd_grad}, "grad=")
    x = rng.uniform(-1.5, 1.5, 3)
    yield Case((_fd_scalar, x), {"bounds": (x, x + 1.0)}, "at the lower bounds")


def _fd_derivative_cases(rng: np.random.Generator) -> Iterator[Case]:
    x = rng.uniform(-2, 2, (2, 5))
    for method, order in _FD_METHODS:
        yield Case((_fd_elementwise, x), {"method": method, "order": order}, f"{method} {order}")
    for method, order in [("central", 2), ("central", 6), ("forward", 2), ("richardson", 2)]:
        yield Case((_fd_elementwise, x), {"n": 2, "method": method, "order": order}, "n=2")
    yield Case((_fd_elementwise, 0.7), {}, "0-d")


def _fd_line_cases(rng: np.random.Generator, f: Callable[..., Any]) -> Iterator[Case]:
    x, v = rng.uniform(-1.5, 1.5, 4), rng.standard_normal(4)
    for method, order in _FD_METHODS:
        yield Case((f, x, v), {"method": method, "order": order}, f"{method} {order}")


def _fd_hvp_cases(rng: np.random.Generator) -> Iterator[Case]:
    x, v = rng.uniform(-1.5, 1.5, 4), rng.standard_normal(4)
    yield Case((_fd_scalar, x, v), {}, "from f")
    yield Case((_fd_scalar, x, v), {"grad": _fd_grad}, "from grad")


def _fd_check_grad_cases(rng: np.random.Generator) -> Iterator[Case]:
    x = rng.uniform(-1.5, 1.5, 5)
    yield Case((_fd_scalar, _fd_grad, x), {}, "right gradient")
    yield Case((_fd_scalar, lambda x: 1.01 * _fd_grad(x), x), {}, "wrong gradient")


def _fd_taylor_cases(rng: np.random.Generator) -> Iterator[Case]:
    x = rng.uniform(-1.5, 1.5, 3)
    yield Case((_fd_scalar, x), {}, "order 2")
    yield Case((_fd_vector, x), {"order": 1}, "vector f, order 1")


def _fd_scale(case: Case, ref_out: Any) -> Any:
    """eps-sized differences of the weighted sums: sum|w f| / h**d, with headroom."""
    f = case.args[0]
    x = np.asarray(case.args[2 if callable(case.args[1]) else 1], dtype=np.float64)
    kw = case.kwargs
    method = kw.get("method", "central")
    deriv = 2 if kw.get("n") == 2 else 1
    fx = float(np.max(np.abs(f(x)))) if f is not _fd_elementwise else 1.0
    if method == "richardson":
        h = RICHARDSON_STEP / 8
    elif method == "complex":
        h = 1.0  # no subtraction: no cancellation to allow for
    else:
        h = default_step(method, kw.get("order", 2), deriv)
    s = 1e3 * max(fx, 1.0) / h**deriv

    def one(r: Any) -> Any:
        return np.maximum(np.abs(np.asarray(r, dtype=np.float64)), s)

    if isinstance(ref_out, tuple):
        return tuple(one(r) for r in ref_out)
    return one(ref_out)


def _fd_hessian_scale(case: Case, ref_out: Any) -> Any:
    x = np.asarray(case.args[1], dtype=np.float64)
    fx = float(np.abs(_fd_scalar(x)))
    kw = case.kwargs
    method = kw.get("method", "central")
    if kw.get("grad") is not None:
        h, d = default_step("central", 2, 1), 1
    elif method == "richardson":
        h, d = RICHARDSON_STEP / 8, 2
    else:
        h, d = default_step(method, kw.get("order", 2), 2), 2
    return np.maximum(np.abs(ref_out), 1e3 * max(fx, 1.0) / h**d)


def _project_info(out: Any) -> Any:
    """(result, DiffInfo) -> (result, error)."""
    if isinstance(out, tuple):
        return out[0], out[1].error
    return out


REGISTRY: dict[str, Entry] = {
    e.name: e
    for e in [
        Entry(
            "logsumexp",
            _reductions.logsumexp,
            reference.logsumexp,
            lambda rng: _reduction_cases(rng, weights=True),
            _lse_scale,
        ),
        Entry(
            "softmax",
            _reductions.softmax,
            reference.softmax,
            lambda rng: _reduction_cases(rng, weights=False),
        ),
        Entry(
            "log_softmax",
            _reductions.log_softmax,
            reference.log_softmax,
            lambda rng: _reduction_cases(rng, weights=False),
        ),
        Entry(
            "softmax_jacobian",
            _reductions.softmax_jacobian,
            reference.softmax_jacobian,
            _jacobian_cases,
        ),
        Entry(
            "quadratic_form",
            _quadratic.quadratic_form,
            reference.quadratic_form,
            _quadratic_cases,
            _qf_value_scale,
        ),
        Entry(
            "quadratic_form_grad",
            _quadratic.quadratic_form_grad,
            reference.quadratic_form_grad,
            _quadratic_grad_cases,
            _qf_grad_scale,
        ),
        Entry(
            "quadratic_form_value_and_grad",
            _quadratic.quadratic_form_value_and_grad,
            reference.quadratic_form_value_and_grad,
            _quadratic_cases,
            _qf_scale,
        ),
        Entry(
            "quadratic_form_hessian",
            _quadratic.quadratic_form_hessian,
            reference.quadratic_form_hessian,
            _hessian_cases,
        ),
        Entry(
            "least_squares",
            _quadratic.least_squares,
            reference.least_squares,
            _least_squares_cases,
            _lsq_scale,
        ),
        Entry(
            "weighted_least_squares",
            _quadratic.weighted_least_squares,
            reference.weighted_least_squares,
            _weighted_cases,
            _wlsq_scale,
        ),
        Entry(
            "normal_equations",
            _quadratic.normal_equations,
            reference.normal_equations,
            _normal_cases,
            _normal_scale,
        ),
        Entry(
            "gradient",
            _finite_diff.gradient,
            reference.gradient,
            lambda rng: _fd_first_cases(rng, _fd_scalar),
            _fd_scale,
            _project_info,
        ),
        Entry(
            "jacobian",
            _finite_diff.jacobian,
            reference.jacobian,
            lambda rng: _fd_first_cases(rng, _fd_vector),
            _fd_scale,
            _project_info,
        ),
        Entry(
            "hessian", _finite_diff.hessian, reference.hessian, _fd_hessian_cases, _fd_hessian_scale
        ),
        Entry(
            "derivative",
            _finite_diff.derivative,
            reference.derivative,
            _fd_derivative_cases,
            _fd_scale,
        ),
        Entry(
            "directional_derivative",
            _finite_diff.directional_derivative,
            reference.directional_derivative,
            lambda rng: _fd_line_cases(rng, _fd_scalar),
            _fd_scale,
        ),
        Entry(
            "jvp",
            _finite_diff.jvp,
            reference.jvp,
            lambda rng: _fd_line_cases(rng, _fd_vector),
            _fd_scale,
        ),
        Entry(
            "hvp",
            _finite_diff.hvp,
            reference.hvp,
            _fd_hvp_cases,
            lambda case, ref: np.maximum(np.abs(ref), 1e3 * 4 / default_step("central", 2, 2) ** 2),
        ),
        Entry(
            "check_grad",
            _finite_diff.check_grad,
            reference.check_grad,
            _fd_check_grad_cases,
            _fd_scale,
            lambda r: (r.numeric, r.analytic, float(r.ok)),
        ),
        Entry(
            "taylor",
            _finite_diff.taylor,
            reference.taylor,
            _fd_taylor_cases,
            lambda case, ref: tuple(
                np.maximum(np.abs(r), 1e3 * 30 / default_step("central", 2, 2) ** 2) for r in ref
            ),
            lambda t: (np.asarray(t.f0), t.grad, t.hess if t.hess is not None else np.zeros(0)),
        ),
    ]
}
