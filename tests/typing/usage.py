"""The public API used the way the tests and README use it, for ``mypy --strict``.

Not a test module (pytest collects ``test_*.py`` only): ``mypy`` (see
``[tool.mypy]`` in pyproject.toml) checks that these calls type-check, and
``python tests/typing/usage.py`` runs them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

import vcalc
from vcalc import reference

F64 = NDArray[np.float64]


def f(v: F64) -> float:
    return float(5 * v[0] ** 2 + 3 * v[0] * v[1] + 3 * v[1] ** 3)


def grad_f(v: F64) -> F64:
    return np.array([10 * v[0] + 3 * v[1], 3 * v[0] + 9 * v[1] ** 2])


def vector_f(v: F64, scale: float) -> F64:
    return scale * np.array([v[0] * v[1], np.sin(v[0])])


def main() -> None:
    x: F64 = np.array([1.0, 2.0])
    v: F64 = np.array([1.0, -1.0])

    # Finite differences.
    g: F64 = vcalc.gradient(f, [1.0, 2.0])
    g, info = vcalc.gradient(f, x, method="richardson", full_output=True)
    diff: vcalc.DiffInfo = info
    nfev: int = diff.nfev
    err: F64 = diff.error
    assert np.all(np.abs(g - [16.0, 39.0]) <= err) and nfev > 0
    g = vcalc.gradient(f, x, method="forward", order=4, bounds=(0.0, 3.0), vectorized=False)
    J: F64 = vcalc.jacobian(vector_f, x, args=(2.0,))
    J, info = vcalc.jacobian(vector_f, x, args=(2.0,), full_output=True)
    H: F64 = vcalc.hessian(f, x)
    H, info = vcalc.hessian(f, x, grad=grad_f, full_output=True)
    d: float = vcalc.derivative(np.sin, 0.5)
    d2: F64 = vcalc.derivative(np.sin, np.linspace(0.0, 1.0, 5), n=2, method="central", order=4)
    s: float = vcalc.directional_derivative(f, x, v)
    Jv: F64 = vcalc.jvp(vector_f, x, v, args=(1.0,))
    Hv: F64 = vcalc.hvp(f, x, v, grad=grad_f)
    Hv = vcalc.hvp(f, x, v, step=1e-4)

    check: vcalc.GradCheck = vcalc.check_grad(f, grad_f, x, rtol=1e-6, atol=1e-8)
    ok: bool = check.ok and bool(check)
    worst: tuple[int, ...] = check.worst_index
    errors: tuple[float, float] = (check.max_abs_error, check.max_rel_error)
    numeric: F64 = check.numeric
    print(check)

    model: vcalc.Taylor = vcalc.taylor(f, x, order=2)
    hess: F64 | None = model.hess
    value = model(x + 1e-3)
    assert ok and model.order == 2 and hess is not None and np.isclose(value, f(x + 1e-3))

    # Stable reductions.
    a: F64 = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, -np.inf]])
    lse: F64 = vcalc.logsumexp(a, axis=-1)
    res, sign = vcalc.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    assert float(sign) == -1.0
    sm: F64 = vcalc.softmax(a, axis=1)
    lsm: F64 = vcalc.log_softmax(a, axis=(0, 1))
    sj: F64 = vcalc.softmax_jacobian(a[0])

    # Quadratic forms and least squares.
    A: F64 = np.array([[2.0, 0.5], [0.5, 1.0]])
    X: F64 = np.random.default_rng(0).standard_normal((4, 2))
    q: F64 = vcalc.quadratic_form(A, X)
    qg: F64 = vcalc.quadratic_form_grad(A, X, symmetric=True)
    q, qg = vcalc.quadratic_form_value_and_grad(A, X)
    qh: F64 = vcalc.quadratic_form_hessian(A)
    Phi: F64 = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    y: F64 = np.array([1.0, 2.0, 2.0])
    theta: F64 = vcalc.normal_equations(Phi, y, ridge=0.0)
    loss, lgrad = vcalc.least_squares(Phi, y, theta, ridge=0.0, mean=True)
    assert np.allclose(lgrad, 0.0)
    wval, wgrad = vcalc.weighted_least_squares(y, Phi, theta, np.eye(3))

    # Backends, threads, configuration.
    name: str = vcalc.get_backend()
    with vcalc.use_backend("numpy") as current:
        assert current == "numpy" == vcalc.get_backend()
        r: F64 = reference.gradient(f, x)
    with vcalc.num_threads(2) as n_threads:
        assert n_threads == vcalc.get_num_threads() == 2
        sm = vcalc.softmax(np.zeros((4, 3)), axis=-1)
    vcalc.set_num_threads(1)
    vcalc.set_backend(name)
    version: str = vcalc.__version__
    vcalc.show_config()

    print(
        f"vcalc {version}: usage ran",
        g, J, H, d, d2, s, Jv, Hv, worst, errors, numeric.shape, lse, res, sm, lsm, sj,
        q, qg, qh, loss, wval, wgrad, r, sep="\n",
    )  # fmt: skip


if __name__ == "__main__":
    main()
