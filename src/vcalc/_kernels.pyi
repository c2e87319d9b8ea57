"""Type stubs for the compiled ``vcalc._kernels`` (see ``_kernels.pyx``).

The fused ``real`` memoryviews of the kernels accept C-contiguous float32
or float64 arrays, one dtype per call: ``_Real`` below.  Outputs are
written in place.
"""

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

_Real = TypeVar("_Real", np.float32, np.float64)

def build_info() -> dict[str, str | bool]: ...
def simd_path() -> str: ...
def qf_direct_max_n(double_data: bool) -> int: ...
def logsumexp_rows(a: NDArray[_Real], out: NDArray[_Real], n_threads: int = 1) -> None: ...
def logsumexp_rows_weighted(
    a: NDArray[_Real],
    b: NDArray[_Real],
    out: NDArray[_Real],
    sign_out: NDArray[_Real],
    return_sign: bool,
) -> None: ...
def reduce_fast(
    op: int, a: object, axis: object, n_threads: int = 1
) -> NDArray[np.float32] | NDArray[np.float64] | np.float32 | np.float64 | None: ...
def softmax_rows(x: NDArray[_Real], out: NDArray[_Real], n_threads: int = 1) -> None: ...
def log_softmax_rows(x: NDArray[_Real], out: NDArray[_Real], n_threads: int = 1) -> None: ...
def vexp(x: NDArray[_Real], out: NDArray[_Real]) -> None: ...
def quadratic_form_small(
    s: NDArray[np.float64],
    x: NDArray[_Real],
    value_out: NDArray[_Real] | None,
    grad_out: NDArray[_Real] | None,
    n_threads: int = 1,
) -> None: ...
def rowdot_half(x: NDArray[_Real], g: NDArray[_Real], value_out: NDArray[_Real]) -> None: ...
def softmax_jacobian_rows(x: NDArray[_Real], out: NDArray[_Real]) -> None: ...
