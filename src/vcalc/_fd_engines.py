"""Evaluators of finite-difference plans: the Cython loops and the NumPy reference.

An engine turns a plan (``_fd_plan``) into the values of f at its points and
combines them.  Two engines share this interface:

* :class:`CythonEngine` runs the fused loops of ``_fd_kernels`` on a private
  float64 copy of x that it perturbs in place, and the plan's own ordered
  ``combine`` (so loop and vectorised evaluation agree bit for bit);
* :class:`NumpyEngine` is the reference: every point is a new array, f is
  called on it, and the values are combined by scattering the plan's
  ``triplets`` with ``np.add.at`` -- a different code path over the same
  plan and stencils.

Both have a vectorised evaluator (f called on stacks of points).  What f
receives: the loop evaluator passes a read-only view of its buffer, whose
contents change between calls; the others pass new arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np

from vcalc._backend import get_backend, kernels
from vcalc._fd_plan import quiet_fp

__all__ = ["CythonEngine", "NumpyEngine", "engine", "CHUNK_BYTES"]

#: The vectorised evaluator passes f stacks of at most this many bytes of
#: points (2 MiB, plus one point if a point alone is larger), reusing one
#: buffer: a stack that stays in cache costs less to fill than f costs to
#: read, where a stack of all points (16 MB at n = 1000) costs more to build
#: than a cheap f takes to evaluate it.
CHUNK_BYTES = 1 << 21

Plan = Any


def _check_shape(
    a: np.ndarray, shape: tuple[int, ...] | None, scalar: bool, what: str
) -> np.ndarray:
    """`a` if it has the shape of f's earlier values (or, first, is scalar if it must be)."""
    if shape is None:
        if scalar and a.ndim != 0:
            raise ValueError(
                f"`f` must return a scalar for {what}; got an array of shape {a.shape} "
                "(use vcalc.jacobian for vector-valued f)."
            )
    elif a.shape != shape:
        raise ValueError(
            f"`f` returned shape {a.shape} at one point and {shape} at another; "
            "it must return the same shape everywhere."
        )
    return a


def ragged_error(r: Any, err: ValueError, name: str = "f") -> ValueError:
    """The error for a value of f (or `grad`) that NumPy cannot make an array of."""
    return ValueError(
        f"`{name}` must return a number or a rectangular array of numbers; "
        f"it returned a {type(r).__name__} that is not one ({err})"
    )


def as_value(r: Any, name: str = "f") -> np.ndarray:
    """What f (or `grad`) returned, as an array; a ragged sequence is named, not NumPy's error."""
    try:
        return np.asarray(r)
    except ValueError as err:
        raise ragged_error(r, err, name) from err


def check_value(r: Any, shape: tuple[int, ...] | None, scalar: bool, what: str) -> np.ndarray:
    """f's value as a real ndarray; checks the kind and (when known) the shape."""
    a = as_value(r)
    kind = a.dtype.kind
    if kind == "c":
        raise TypeError(
            f"`f` returned complex values (dtype {a.dtype}); finite differences of real "
            "methods need real values (differentiate the real and imaginary parts separately)."
        )
    if kind not in "fiub":
        raise TypeError(f"`f` must return real numbers; got {type(r).__name__} of dtype {a.dtype}.")
    return _check_shape(a, shape, scalar, what)


def check_complex_value(r: Any, shape: tuple[int, ...] | None, scalar: bool, what: str) -> Any:
    """f's value at a complex point: must be complex (f complex-safe)."""
    a = as_value(r)
    if a.dtype.kind != "c":
        if a.dtype.kind not in "fiub":
            raise TypeError(f"`f` must return numbers; got {type(r).__name__} of dtype {a.dtype}.")
        raise TypeError(
            "method='complex' needs f to be complex-safe: for complex input it returned "
            f"real values (dtype {a.dtype}), so the imaginary part that carries the "
            "derivative was lost (abs, real, comparisons, math.* functions and float() do "
            "this); use method='central'."
        )
    return _check_shape(a, shape, scalar, what)


def _call_complex(f: Callable[..., Any], p: np.ndarray, args: tuple[Any, ...], first: bool) -> Any:
    """Call f at a complex point; a TypeError at the first point means not complex-safe."""
    try:
        return f(p, *args)
    except TypeError as err:
        if not first:
            raise
        raise TypeError(
            "method='complex' needs f to accept complex input and stay analytic "
            f"(complex-safe); `f` raised TypeError: {err}"
        ) from err


def _stack_values(
    r: Any, k: int, shape: tuple[int, ...] | None, scalar: bool, what: str, cplx: bool
) -> np.ndarray:
    """Check the value of a vectorised f on a stack of k points; return it as (k, ...)."""
    a = as_value(r)
    if a.ndim == 0 or a.shape[0] != k:
        raise ValueError(
            f"a vectorized `f` must return an array with one entry per point: called on a "
            f"stack of {k} points it returned shape {a.shape}."
        )
    if cplx:
        check_complex_value(a[0], shape, scalar, what)
    else:
        check_value(a[0], shape, scalar, what)
    if shape is not None and a.shape[1:] != shape:
        raise ValueError(
            f"`f` returned shape {a.shape[1:]} at one point and {shape} at another; "
            "it must return the same shape everywhere."
        )
    return a


class _Engine:
    """The evaluator interface, and what both engines share (stacks, line plans).

    An engine evaluates a plan's points and combines the values; the methods
    below without a body here are the interface a new evaluator fills in.
    """

    name = ""
    chunked = True

    def axis(
        self, f: Callable[..., Any], args: tuple[Any, ...], x0: np.ndarray, shape: tuple[int, ...],
        plan: Plan, scalar: bool, what: str,
    ) -> tuple[np.ndarray, tuple[int, ...] | None]:  # fmt: skip
        """Rows (R, m) of an AxisPlan and the shape of f's value."""
        raise NotImplementedError

    def hessian2(
        self, f: Callable[..., Any], args: tuple[Any, ...], x0: np.ndarray, shape: tuple[int, ...],
        plan: Plan,
    ) -> np.ndarray:  # fmt: skip
        """The (n*n, 1) entries of a Hessian2Plan."""
        raise NotImplementedError

    def points(
        self, f: Callable[..., Any], args: tuple[Any, ...], x0: np.ndarray, shape: tuple[int, ...],
        plan: Plan, scalar: bool, what: str,
    ) -> tuple[np.ndarray, tuple[int, ...] | None]:  # fmt: skip
        """Values (K, m) of f at the plan's points and the shape of f's value."""
        raise NotImplementedError

    def complex(
        self, f: Callable[..., Any], args: tuple[Any, ...], x0: np.ndarray, shape: tuple[int, ...],
        plan: Plan, scalar: bool, what: str,
    ) -> tuple[np.ndarray, tuple[int, ...] | None]:  # fmt: skip
        """Imaginary parts (K, m) of f at the complex-step points."""
        raise NotImplementedError

    @staticmethod
    @quiet_fp
    def combine(plan: Plan, values: np.ndarray) -> np.ndarray:
        """The result rows from the values."""
        raise NotImplementedError

    def stack(
        self,
        f: Callable[..., Any],
        args: tuple[Any, ...],
        x0: np.ndarray,
        shape: tuple[int, ...],
        plan: Plan,
        scalar: bool,
        what: str,
        cplx: bool = False,
    ) -> tuple[np.ndarray, tuple[int, ...]]:
        """Evaluate a vectorised f on the plan's points, in chunks of bounded memory.

        One buffer of at most :data:`CHUNK_BYTES` holds a chunk of points: it
        is filled with x once, and per chunk only the perturbed entries are
        set and afterwards restored.  f gets a read-only view of it.
        """
        i1, v1, i2, v2 = plan.points()
        K = i1.size
        if K == 0:
            return np.zeros((0, 0)), ()
        n = max(1, x0.size)
        rows = K if not self.chunked else max(1, min(K, CHUNK_BYTES // (n * (16 if cplx else 8))))
        buf = np.empty((rows, x0.size), dtype=np.complex128 if cplx else np.float64)
        buf[:] = x0
        ro = buf.view()
        ro.flags.writeable = False
        out_shape: tuple[int, ...] | None = None
        values = cast(np.ndarray, None)  # allocated at the first chunk
        for start in range(0, K, rows):
            stop = min(K, start + rows)
            k = stop - start
            r1, r2 = i1[start:stop], i2[start:stop]
            s1, s2 = np.flatnonzero(r1 >= 0), np.flatnonzero(r2 >= 0)
            c1, c2 = r1[s1], r2[s2]
            if cplx:
                buf[s1, c1] = x0[c1] + 1j * v1[start:stop][s1]
            else:
                buf[s1, c1] = v1[start:stop][s1]
                buf[s2, c2] = v2[start:stop][s2]
            try:
                r = f(ro[:k].reshape((k,) + shape), *args)
                a = _stack_values(r, k, out_shape, scalar, what, cplx)
                if out_shape is None:
                    out_shape = a.shape[1:]
                    values = np.empty((K, int(np.prod(out_shape, dtype=np.intp))))
                values[start:stop] = (a.imag if cplx else a).reshape(k, -1)
            finally:
                buf[s1, c1] = x0[c1]
                buf[s2, c2] = x0[c2]
        return values, cast("tuple[int, ...]", out_shape)  # K > 0: set at the first chunk

    def line(
        self,
        f: Callable[..., Any],
        args: tuple[Any, ...],
        plan: Plan,
        shape: tuple[int, ...],
        scalar: bool,
        what: str,
        cplx: bool = False,
        cache: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, tuple[int, ...]]:
        """Evaluate f at the points of a LinePlan (new arrays); values (K, m)."""
        rows = []
        out_shape: tuple[int, ...] | None = None
        for k, o in enumerate(plan.offsets):
            if cache is not None and o == 0.0 and "f0" in cache:
                a = cache["f0"]
            elif cplx:
                p = (plan.x0 + 1j * (o * plan.d)).reshape(shape)
                a = check_complex_value(_call_complex(f, p, args, k == 0), out_shape, scalar, what)
                a = a.imag
            else:
                p = (plan.x0 + o * plan.d if o != 0.0 else plan.x0.copy()).reshape(shape)
                a = check_value(f(p, *args), out_shape, scalar, what)
                if cache is not None and o == 0.0:
                    cache["f0"] = a
            out_shape = a.shape
            rows.append(np.asarray(a, dtype=np.float64).reshape(-1))
        return np.stack(rows), cast("tuple[int, ...]", out_shape)  # a plan has points


class CythonEngine(_Engine):
    """The compiled loops: perturb a private copy of x in place, call f, restore."""

    name = "cython"

    @staticmethod
    def _buffer(
        x0: np.ndarray, shape: tuple[int, ...], args: tuple[Any, ...], cplx: bool = False
    ) -> tuple[np.ndarray, tuple[Any, ...]]:
        xb = x0.astype(np.complex128) if cplx else x0.copy()
        view = xb.reshape(shape)
        view.flags.writeable = False
        return xb, (view,) + args

    def axis(
        self,
        f: Callable[..., Any],
        args: tuple[Any, ...],
        x0: np.ndarray,
        shape: tuple[int, ...],
        plan: Plan,
        scalar: bool,
        what: str,
    ) -> tuple[np.ndarray, tuple[int, ...] | None]:
        """Rows of an AxisPlan with the fused loop."""
        xb, call_args = self._buffer(x0, shape, args)
        offs, wts, lens = plan.table
        acc, out_shape, _ = kernels("_fd_kernels").axis_loop(
            f, call_args, xb, x0, plan.coords, plan.h, plan.kind, offs, wts, lens,
            plan.deriv, scalar, what,
        )  # fmt: skip
        return acc, out_shape

    def hessian2(
        self,
        f: Callable[..., Any],
        args: tuple[Any, ...],
        x0: np.ndarray,
        shape: tuple[int, ...],
        plan: Plan,
    ) -> np.ndarray:
        """The (n*n, 1) entries of a Hessian2Plan with the fused loop."""
        xb, call_args = self._buffer(x0, shape, args)
        H, _ = kernels("_fd_kernels").hessian2_loop(f, call_args, xb, x0, plan.h)
        return H.reshape(-1, 1)

    def points(
        self,
        f: Callable[..., Any],
        args: tuple[Any, ...],
        x0: np.ndarray,
        shape: tuple[int, ...],
        plan: Plan,
        scalar: bool,
        what: str,
    ) -> tuple[np.ndarray, tuple[int, ...] | None]:
        """Values (K, m) of f at the plan's points."""
        xb, call_args = self._buffer(x0, shape, args)
        i1, v1, i2, v2 = plan.points()
        return kernels("_fd_kernels").points_loop(
            f, call_args, xb, x0, i1, v1, i2, v2, scalar, what
        )

    def complex(
        self,
        f: Callable[..., Any],
        args: tuple[Any, ...],
        x0: np.ndarray,
        shape: tuple[int, ...],
        plan: Plan,
        scalar: bool,
        what: str,
    ) -> tuple[np.ndarray, tuple[int, ...] | None]:
        """Imaginary parts (K, m) of f at the complex-step points."""
        xb, call_args = self._buffer(x0, shape, args, cplx=True)
        i1, v1, _, _ = plan.points()
        return kernels("_fd_kernels").complex_loop(f, call_args, xb, x0, i1, v1, scalar, what)

    @staticmethod
    @quiet_fp
    def combine(plan: Plan, values: np.ndarray) -> np.ndarray:
        """The plan's own ordered combine."""
        return cast(np.ndarray, plan.combine(values))


class NumpyEngine(_Engine):
    """The reference: a new array per point, combined by scattering triplets."""

    name = "numpy"
    chunked = False

    def _values(
        self,
        f: Callable[..., Any],
        args: tuple[Any, ...],
        x0: np.ndarray,
        shape: tuple[int, ...],
        plan: Plan,
        scalar: bool,
        what: str,
        cplx: bool,
    ) -> tuple[np.ndarray, tuple[int, ...] | None]:
        i1, v1, i2, v2 = plan.points()
        rows = []
        out_shape = None
        for k in range(i1.size):
            if cplx:
                p = x0.astype(np.complex128)
                p[i1[k]] = x0[i1[k]] + 1j * v1[k]
                a = check_complex_value(
                    _call_complex(f, p.reshape(shape), args, k == 0), out_shape, scalar, what
                ).imag
            else:
                p = x0.copy()
                if i1[k] >= 0:
                    p[i1[k]] = v1[k]
                if i2[k] >= 0:
                    p[i2[k]] = v2[k]
                a = check_value(f(p.reshape(shape), *args), out_shape, scalar, what)
            out_shape = a.shape
            rows.append(np.array(a, dtype=np.float64).reshape(-1))
        if not rows:
            return np.zeros((0, 0)), None
        return np.stack(rows), out_shape

    def axis(
        self, f: Callable[..., Any], args: tuple[Any, ...], x0: np.ndarray, shape: tuple[int, ...],
        plan: Plan, scalar: bool, what: str,
    ) -> tuple[np.ndarray, tuple[int, ...] | None]:  # fmt: skip  # noqa: D102
        values, out_shape = self._values(f, args, x0, shape, plan, scalar, what, False)
        return self.combine(plan, values), out_shape

    def hessian2(
        self, f: Callable[..., Any], args: tuple[Any, ...], x0: np.ndarray, shape: tuple[int, ...],
        plan: Plan,
    ) -> np.ndarray:  # fmt: skip  # noqa: D102
        values, _ = self._values(f, args, x0, shape, plan, True, "hessian", False)
        return self.combine(plan, values)

    def points(
        self, f: Callable[..., Any], args: tuple[Any, ...], x0: np.ndarray, shape: tuple[int, ...],
        plan: Plan, scalar: bool, what: str,
    ) -> tuple[np.ndarray, tuple[int, ...] | None]:  # fmt: skip  # noqa: D102
        return self._values(f, args, x0, shape, plan, scalar, what, False)

    def complex(
        self, f: Callable[..., Any], args: tuple[Any, ...], x0: np.ndarray, shape: tuple[int, ...],
        plan: Plan, scalar: bool, what: str,
    ) -> tuple[np.ndarray, tuple[int, ...] | None]:  # fmt: skip  # noqa: D102
        return self._values(f, args, x0, shape, plan, scalar, what, True)

    @staticmethod
    @quiet_fp
    def combine(plan: Plan, values: np.ndarray) -> np.ndarray:
        """Scatter-add the plan's triplets: out[r] += w * values[c]; divide by the scale."""
        rows, cols, wts, scale = plan.triplets()
        out = np.zeros((scale.size, values.shape[1]))
        np.add.at(out, rows, wts[:, None] * values[cols])
        return cast(np.ndarray, out / scale[:, None])


_CYTHON = CythonEngine()
_NUMPY = NumpyEngine()


def engine() -> _Engine:
    """The engine of the backend in force in this thread."""
    return _CYTHON if get_backend() == "cython" else _NUMPY
