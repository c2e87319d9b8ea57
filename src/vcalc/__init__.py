"""vcalc: numerical vector calculus with C-speed kernels.

Finite-difference derivatives of black-box functions (``gradient``,
``jacobian``, ``hessian``, ``derivative``, ``directional_derivative``,
``jvp``, ``hvp``, ``check_grad``, ``taylor``), stable reductions
(``logsumexp``, ``softmax``, ``log_softmax``, ``softmax_jacobian``), batched
quadratic forms and least squares, each with a compiled Cython kernel and an
independent NumPy reference (:mod:`vcalc.reference`) selected by
:func:`use_backend`.
"""

from vcalc._backend import (
    get_backend,
    get_num_threads,
    num_threads,
    set_backend,
    set_num_threads,
    show_config,
    use_backend,
)
from vcalc._finite_diff import (
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
from vcalc._quadratic import (
    least_squares,
    normal_equations,
    quadratic_form,
    quadratic_form_grad,
    quadratic_form_hessian,
    quadratic_form_value_and_grad,
    weighted_least_squares,
)
from vcalc._reductions import log_softmax, logsumexp, softmax, softmax_jacobian
from vcalc._results import DiffInfo, GradCheck, Taylor
from vcalc._version import __version__

__all__ = [
    "__version__",
    "get_backend",
    "set_backend",
    "use_backend",
    "show_config",
    "get_num_threads",
    "set_num_threads",
    "num_threads",
    "gradient",
    "jacobian",
    "hessian",
    "derivative",
    "directional_derivative",
    "jvp",
    "hvp",
    "check_grad",
    "taylor",
    "DiffInfo",
    "GradCheck",
    "Taylor",
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
