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
from typing import Any

import numpy as np

from vcalc import _quadratic, _reductions, reference

__all__ = ["Case", "Entry", "REGISTRY"]


def _edge_values(dtype: Any) -> np.ndarray:
    """Values that break naive kernels, +-1e308 scaled to the dtype's range."""
    big = 1e308 if np.dtype(dtype) == np.float64 else 3e38
    return np.array([0.0, -1.0, 2.5, big, -big, np.inf, -np.inf, np.nan, 80.0, -104.0], dtype)


@dataclass(frozen=True)
class Case:
    """Arguments for one call, and a label for reports."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class Entry:
    """A public function, its reference twin, its cases and its error scale."""

    name: str
    func: Callable[..., Any]
    ref: Callable[..., Any]
    cases: Callable[[np.random.Generator], Iterator[Case]]
    scale: Callable[[Case, Any], Any] | None = None  # None: relative to |reference|


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


REGISTRY: dict[str, Entry] = {
    e.name: e
    for e in [
        Entry(
            "logsumexp",
            _reductions.logsumexp,
            reference.logsumexp,
            lambda rng: _reduction_cases(rng, weights=True),
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
    ]
}
