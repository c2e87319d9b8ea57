"""Reductions: vcalc beside scipy.special, careful NumPy, torch (if installed) and np.exp.

``np.exp(a, out=b)`` on the same array is the limit: every reduction has to
compute at least that many exponentials.  Every implementation's output is
checked against vcalc's reference before it is timed.
"""

import numpy as np
import pytest
from conftest import data, peer

import vcalc
from vcalc import reference

SHAPES = [(1, 1_000_000), (10_000, 100), (100_000, 10), (100, 10)]
DTYPES = ["float64", "float32"]


def numpy_softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def numpy_log_softmax(a):
    t = a - a.max(axis=-1, keepdims=True)
    return t - np.log(np.exp(t).sum(axis=-1, keepdims=True))


def numpy_logsumexp(a):
    m = a.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=-1, keepdims=True)))[..., 0]


def implementations(name):
    """(label, callable taking the array) for every peer of `name`."""

    def sp(a):
        return getattr(peer("scipy.special"), name)(a, axis=-1)

    def torch_impl(a):
        torch = peer("torch")
        torch.set_num_threads(1)
        t = torch.from_numpy(a)
        if name == "logsumexp":
            return torch.logsumexp(t, dim=-1).numpy()
        return getattr(torch, name)(t, dim=-1).numpy()

    def limit(a):
        out = np.empty_like(a)
        np.exp(a, out=out)
        return None  # not a reduction: nothing to check

    return {
        "vcalc": lambda a: getattr(vcalc, name)(a, axis=-1),
        "scipy": sp,
        "numpy": {
            "softmax": numpy_softmax,
            "log_softmax": numpy_log_softmax,
            "logsumexp": numpy_logsumexp,
        }[name],
        "torch": torch_impl,
        "np.exp (limit)": limit,
    }


@pytest.mark.parametrize("impl", ["vcalc", "scipy", "numpy", "torch", "np.exp (limit)"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
def test_reduction(benchmark, name, shape, dtype, impl):
    benchmark.group = f"{name}-{shape}-{dtype}"
    a = data(shape, dtype)
    func = implementations(name)[impl]
    out = func(a)
    if out is not None:
        want = getattr(reference, name)(a, axis=-1)
        rtol = 1e-12 if dtype == "float64" else 1e-5
        # Peers compute log(sum) where vcalc uses log1p: near 0 they are off
        # by about eps * max|a| in absolute terms, which is allowed here.
        atol = 1e-300 if name == "softmax" else 16 * np.finfo(dtype).eps * max(1, np.abs(a).max())
        np.testing.assert_allclose(np.asarray(out, dtype=np.float64), want, rtol=rtol, atol=atol)
    benchmark(func, a)
