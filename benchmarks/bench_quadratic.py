"""Batched quadratic forms: vcalc beside NumPy's best expressions and torch.

One group per (function, dtype, n), with B = 4e6 // n rows, so that every
group handles 4e6 numbers.  NumPy's value and gradient:
``G = X @ (A + A.T)`` then ``v = 0.5 * np.einsum('bi,bi->b', G, X)``; its
gradient alone is ``G``.  The torch peer (CPU, one thread, when installed)
does the same on tensors made once, outside the timing.  Compare a
value-and-gradient group with the gradient group of the same n for the cost
of the value on top of the gradient.  Every result is checked against
vcalc's reference before it is timed, except the floor: ``X.copy()`` (and a
new value array filled), which reads X once and writes new arrays of the
result's sizes, as any implementation returning new arrays must.
"""

import functools

import numpy as np
import pytest
from conftest import data, peer

import vcalc
from vcalc import reference
from vcalc._bench import QUADRATIC_N

IMPLS = ["vcalc", "numpy", "torch", "floor"]


def numpy_value_and_grad(A, X):
    G = X @ (A + A.T)
    return 0.5 * np.einsum("bi,bi->b", G, X), G


def numpy_grad(A, X):
    return X @ (A + A.T)


def implementation(family, impl, A, X):
    """A callable of no arguments computing `family` of (A, X) by `impl`."""
    both = family == "quadratic_form_value_and_grad"
    if impl == "vcalc":
        fn = getattr(vcalc, family)
        return lambda: fn(A, X)
    if impl == "numpy":
        fn = numpy_value_and_grad if both else numpy_grad
        return lambda: fn(A, X)
    if impl == "floor":  # read X once, write new arrays of the result's sizes; not checked
        if both:

            def floor():
                v = np.empty(X.shape[0], X.dtype)
                v.fill(0.0)
                return v, X.copy()

            return floor
        return X.copy
    if impl == "torch":
        torch = peer("torch")
        torch.set_num_threads(1)
        At, Xt = torch.from_numpy(np.array(A)), torch.from_numpy(np.array(X))

        def func():
            G = Xt @ (At + At.T)
            return (0.5 * torch.einsum("bi,bi->b", G, Xt), G) if both else G

        return func
    raise AssertionError(impl)


def operands(dtype, n):
    return data((n, n), dtype, seed=1), data((4_000_000 // n, n), dtype, seed=2)


@functools.lru_cache(maxsize=1)  # the implementations of a group run one after another
def expected(family, dtype, n):
    """The reference result of `family` and the absolute error allowed of each part.

    The errors allowed are relative to the sums of |terms| (float32 peers
    round every product and sum in float32).
    """
    A, X = operands(dtype, n)
    tol = 1e-12 if dtype == "float64" else 4 * n * float(np.finfo(np.float32).eps)
    A64, X64 = np.abs(A.astype(np.float64)), np.abs(X.astype(np.float64))
    scale = X64 @ (A64 + A64.T)
    g_atol = tol * scale.max()
    if family == "quadratic_form_value_and_grad":
        v_atol = tol * (scale * X64).sum(-1).max()
        return reference.quadratic_form_value_and_grad(A, X), (v_atol, g_atol)
    return (reference.quadratic_form_grad(A, X),), (g_atol,)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n", QUADRATIC_N)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("family", ["quadratic_form_value_and_grad", "quadratic_form_grad"])
def test_quadratic_form(benchmark, family, dtype, n, impl):
    A, X = operands(dtype, n)
    benchmark.group = f"{family}-{dtype}-n={n}-B={X.shape[0]}"
    func = implementation(family, impl, A, X)
    got = func()
    got = got if isinstance(got, tuple) else (got,)
    wants, atols = expected(family, dtype, n)
    for g, want, atol in zip(got, wants, atols, strict=True):
        if impl == "floor":
            assert g.shape == want.shape
        else:
            np.testing.assert_allclose(np.asarray(g, dtype=np.float64), want, rtol=0, atol=atol)
    benchmark.extra_info["rows"] = X.shape[0]
    benchmark(func)


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
