"""Plain-NumPy reference implementation of every public vcalc function.

Each function here has exactly the signature of its namesake in
:mod:`vcalc`, validates its input the same way, and computes with NumPy
array expressions only, on a code path independent of the Cython kernels.
It is what ``vcalc.use_backend("numpy")`` runs, the fallback when the
extension is missing, and the oracle the kernels are tested against.

This module imports without the compiled extension.

Examples
--------
>>> import numpy as np
>>> from vcalc import reference
>>> float(np.round(reference.logsumexp([0.0, 0.0]), 6))  # log 2
0.693147
"""

from vcalc._ref_finite_diff import (
    check_grad,
    derivative,
    directional_derivative,
    gradient,
    hessian,
    hvp,
    jacobian,
    jvp,
    taylor,
)
from vcalc._ref_quadratic import (
    least_squares,
    normal_equations,
    quadratic_form,
    quadratic_form_grad,
    quadratic_form_hessian,
    quadratic_form_value_and_grad,
    weighted_least_squares,
)
from vcalc._ref_reductions import log_softmax, logsumexp, softmax, softmax_jacobian

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
    "logsumexp",
    "softmax",
    "log_softmax",
    "softmax_jacobian",
    "quadratic_form",
    "quadratic_form_grad",
    "quadratic_form_value_and_grad",
    "quadratic_form_hessian",
    "least_squares",
    "weighted_least_squares",
    "normal_equations",
]
