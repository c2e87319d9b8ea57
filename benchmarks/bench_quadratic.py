"""Batched quadratic forms: vcalc beside NumPy's best expressions.

NumPy's value and gradient: ``G = X @ (A + A.T)`` then
``v = 0.5 * np.einsum('bi,bi->b', G, X)``.
"""

import numpy as np
import pytest
from conftest import data

import vcalc
from vcalc import reference


def numpy_value_and_grad(A, X):
    G = X @ (A + A.T)
    return 0.5 * np.einsum("bi,bi->b", G, X), G


@pytest.mark.parametrize("impl", ["vcalc", "numpy"])
@pytest.mark.parametrize("n", [2, 3, 8, 64])
def test_value_and_grad(benchmark, n, impl):
    benchmark.group = f"quadratic_form_value_and_grad-B*n=4e6-n={n}"
    A, X = data((n, n), seed=1), data((4_000_000 // n, n), seed=2)
    func = {"vcalc": vcalc.quadratic_form_value_and_grad, "numpy": numpy_value_and_grad}[impl]
    v, g = func(A, X)
    want_v, want_g = reference.quadratic_form_value_and_grad(A, X)
    scale = np.abs(X) @ (np.abs(A) + np.abs(A).T)
    np.testing.assert_allclose(g, want_g, rtol=0, atol=1e-12 * scale.max())
    np.testing.assert_allclose(v, want_v, rtol=0, atol=1e-12 * (scale * np.abs(X)).sum(-1).max())
    benchmark(func, A, X)


@pytest.mark.parametrize("impl", ["vcalc", "numpy"])
def test_least_squares_batch(benchmark, impl):
    benchmark.group = "least_squares-N=1000-D=20-batch=200"
    Phi, y, theta = data((1000, 20), seed=3), data((1000,), seed=4), data((200, 20), seed=5)

    def numpy_impl(Phi, y, theta):
        r = y - theta @ Phi.T
        return (r * r).sum(-1), -2 * r @ Phi

    func = {"vcalc": vcalc.least_squares, "numpy": numpy_impl}[impl]
    loss, grad = func(Phi, y, theta)
    want_loss, want_grad = reference.least_squares(Phi, y, theta)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-9, atol=1e-9 * np.abs(want_grad).max())
    benchmark(func, Phi, y, theta)
