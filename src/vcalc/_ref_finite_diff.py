"""NumPy reference for the finite-difference functions.

Same signatures as :mod:`vcalc`'s, same validation, same plans and stencils
(``_fd_plan``), but a different evaluation and combination path: every point
is a new array, and the values are combined by scattering the plan's
(row, column, weight) triplets with ``np.add.at`` instead of the ordered
sums of the Cython loops (see ``_fd_engines.NumpyEngine``).
"""

from __future__ import annotations

from typing import Any

from numpy.typing import ArrayLike

from vcalc import _finite_diff as _fd
from vcalc._fd_engines import _NUMPY
from vcalc._results import GradCheck, Taylor

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

Func = _fd.Func


@_fd.nonfinite_warning("gradient")
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
    """Reference :func:`vcalc.gradient`."""
    return _fd._first(
        _NUMPY, "gradient", f, x, method, order, step, args, vectorized, bounds, workers,
        progress, full_output,
    )  # fmt: skip


@_fd.nonfinite_warning("jacobian")
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
    """Reference :func:`vcalc.jacobian`."""
    if sparsity is not None:
        raise NotImplementedError("`sparsity` is not available in this version; leave it at None.")
    return _fd._first(
        _NUMPY, "jacobian", f, x, method, order, step, args, vectorized, bounds, workers,
        progress, full_output,
    )  # fmt: skip


@_fd.nonfinite_warning("hessian")
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
    """Reference :func:`vcalc.hessian`."""
    return _fd._hessian(
        _NUMPY, f, x, method, order, step, args, vectorized, bounds, grad, workers, progress,
        full_output,
    )  # fmt: skip


@_fd.nonfinite_warning("derivative")
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
    """Reference :func:`vcalc.derivative`."""
    return _fd._derivative(_NUMPY, f, x, n, method, order, step, args)


@_fd.nonfinite_warning("directional_derivative")
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
    """Reference :func:`vcalc.directional_derivative`."""
    return _fd._jvp(_NUMPY, "directional_derivative", f, x, v, method, order, step, args)


@_fd.nonfinite_warning("jvp")
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
    """Reference :func:`vcalc.jvp`."""
    return _fd._jvp(_NUMPY, "jvp", f, x, v, method, order, step, args)


@_fd.nonfinite_warning("hvp")
def hvp(
    f: Func,
    x: ArrayLike,
    v: ArrayLike,
    *,
    grad: Func | None = None,
    step: float | None = None,
    args: tuple[Any, ...] = (),
) -> Any:
    """Reference :func:`vcalc.hvp`."""
    return _fd._hvp(_NUMPY, f, x, v, grad, step, args)


@_fd.nonfinite_warning("check_grad")
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
    """Reference :func:`vcalc.check_grad`."""
    return _fd._check_grad(_NUMPY, f, grad, x, rtol, atol, method, args)


@_fd.nonfinite_warning("taylor")
def taylor(
    f: Func, x: ArrayLike, *, order: int = 2, method: str = "central", args: tuple[Any, ...] = ()
) -> Taylor:
    """Reference :func:`vcalc.taylor`."""
    return _fd._taylor(_NUMPY, f, x, order, method, args)
