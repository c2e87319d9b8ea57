"""Type stubs for the compiled ``vcalc._fd_kernels`` (see ``_fd_kernels.pyx``).

``f`` is called as ``f(*call_args)`` (``f(xv, *args)`` for ``axis_default``);
``xb`` is the private buffer that the loops perturb and restore.  The
returned ``shape`` is the shape of f's value, None when nothing was
evaluated.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from typing_extensions import disjoint_base

_F64 = NDArray[np.float64]
_Intp = NDArray[np.intp]

@disjoint_base
class _Results:
    """Checks and converts the values f returns (the attributes are public)."""

    shape: tuple[int, ...] | None
    m: int
    nfev: int
    def __init__(self, scalar_only: bool, what: str) -> None: ...

def axis_loop(
    f: Callable[..., Any],
    call_args: tuple[Any, ...],
    xb: _F64,
    x0: _F64,
    coords: _Intp,
    h: _F64,
    kind: NDArray[np.int8],
    offs: _F64,
    wts: _F64,
    lens: _Intp,
    deriv: int,
    scalar: bool,
    what: str,
) -> tuple[_F64, tuple[int, ...] | None, int]: ...
def hessian2_loop(
    f: Callable[..., Any], call_args: tuple[Any, ...], xb: _F64, x0: _F64, h: _F64
) -> tuple[_F64, int]: ...
def points_loop(
    f: Callable[..., Any],
    call_args: tuple[Any, ...],
    xb: _F64,
    x0: _F64,
    i1: _Intp,
    v1: _F64,
    i2: _Intp,
    v2: _F64,
    scalar: bool,
    what: str,
) -> tuple[_F64, tuple[int, ...] | None]: ...
def complex_loop(
    f: Callable[..., Any],
    call_args: tuple[Any, ...],
    xb: NDArray[np.complex128],
    x0: _F64,
    i1: _Intp,
    h: _F64,
    scalar: bool,
    what: str,
) -> tuple[_F64, tuple[int, ...] | None]: ...
def relative_steps(x0: _F64, h0: float) -> tuple[_F64, int]: ...
def axis_default(
    f: Callable[..., Any],
    args: tuple[Any, ...],
    x_arr: _F64,
    shape: tuple[int, ...],
    h0: float,
    offsets: tuple[float, ...],
    weights: tuple[float, ...],
    scalar: bool,
    what: str,
) -> tuple[_F64 | None, tuple[int, ...] | None, int, _F64, int]: ...
def axis_stack(
    x0_arr: _F64, h0: float, offsets: tuple[float, ...]
) -> tuple[_F64 | None, _F64, int]: ...
def axis_combine(
    V_arr: _F64, h_arr: _F64, offsets: tuple[float, ...], weights: tuple[float, ...]
) -> _F64: ...
