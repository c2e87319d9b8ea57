"""Type stubs for the compiled ``vcalc._qf_kernels`` (see ``_qf_kernels.pyx``).

The fused ``real`` memoryviews accept C-contiguous float32 or float64
arrays, one dtype per call: ``_Real`` below.  ``ia`` and ``ix`` are int64
slice indices.  Outputs are written in place.
"""

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

_Real = TypeVar("_Real", np.float32, np.float64)

def quadratic_form_batched(
    a: NDArray[_Real],
    ia: NDArray[np.int64],
    x: NDArray[_Real],
    ix: NDArray[np.int64],
    value_out: NDArray[_Real],
) -> None: ...
def quadratic_form_grad_batched(
    a: NDArray[_Real],
    ia: NDArray[np.int64],
    x: NDArray[_Real],
    ix: NDArray[np.int64],
    grad_out: NDArray[_Real],
    symmetric: bool,
) -> None: ...
def quadratic_form_value_and_grad_batched(
    a: NDArray[_Real],
    ia: NDArray[np.int64],
    x: NDArray[_Real],
    ix: NDArray[np.int64],
    value_out: NDArray[_Real],
    grad_out: NDArray[_Real],
) -> None: ...
def quadratic_form_hessian_rows(a: NDArray[_Real], out: NDArray[_Real]) -> None: ...
def least_squares_rows(
    phi: NDArray[_Real],
    y: NDArray[_Real],
    theta: NDArray[_Real],
    ridge: float,
    mean: bool,
    loss_out: NDArray[_Real],
    grad_out: NDArray[_Real],
) -> None: ...
def weighted_least_squares_rows(
    x: NDArray[_Real],
    a: NDArray[_Real],
    s: NDArray[_Real],
    w: NDArray[_Real],
    value_out: NDArray[_Real],
    grad_out: NDArray[_Real],
) -> None: ...
def weighted_least_squares_identity_rows(
    x: NDArray[_Real],
    a: NDArray[_Real],
    s: NDArray[_Real],
    value_out: NDArray[_Real],
    grad_out: NDArray[_Real],
) -> None: ...
