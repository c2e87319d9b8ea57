"""Reductions and exp: vcalc beside scipy.special, careful NumPy, torch and np.exp.

One benchmark group per case (function, dtype, shape), holding every
implementation: vcalc, ``scipy.special``, a careful NumPy expression, torch
on the CPU with one thread (when installed; the tensor shares a copy of the
array's memory and is made once, outside the timing) and the limit
``np.exp(a, out=b)``: every reduction has to compute at least that many
exponentials.  Every implementation's output but the limit's is checked
against vcalc's reference (:mod:`vcalc.reference`) before it is timed.

The ``exp`` groups put vcalc's own vectorised exp (``vcalc._kernels.vexp``)
beside ``np.exp(x, out=y)``, checked entry by entry against it; the
``threads`` group times softmax of a (1e4, 1000) array on one and two
threads (``vcalc.num_threads``); for a clean number run it alone
(``-k threads``): torch, once imported by the other groups, brings a second
OpenMP runtime into the process.
"""

import functools

import numpy as np
import pytest
from conftest import data, peer

import vcalc
from vcalc import reference
from vcalc._bench import EXP_RTOL, REDUCTION_SHAPES

DTYPES = ["float64", "float32"]
IMPLS = ["vcalc", "scipy", "numpy", "torch", "np.exp (limit)"]

#: vcalc's tolerance relative to the reference, and the peers' (torch sums a
#: float32 row in float32: 1.6e-4 off on a row of 1e6).
RTOL = {"float64": 1e-12, "float32": 1e-5}
PEER_RTOL = {"float64": 1e-12, "float32": 1e-3}


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


NUMPY = {"softmax": numpy_softmax, "log_softmax": numpy_log_softmax, "logsumexp": numpy_logsumexp}


def torch_peer():
    """torch on one thread, or skip."""
    torch = peer("torch")
    torch.set_num_threads(1)
    return torch


def implementation(name, impl, a):
    """A callable of no arguments computing `name` of `a` by `impl` (skips a missing peer)."""
    if impl == "vcalc":
        fn = getattr(vcalc, name)
        return lambda: fn(a, axis=-1)
    if impl == "scipy":
        fn = getattr(peer("scipy.special"), name)
        return lambda: fn(a, axis=-1)
    if impl == "numpy":
        fn = NUMPY[name]
        return lambda: fn(a)
    if impl == "torch":
        torch = torch_peer()
        t = torch.from_numpy(np.array(a))  # writable copy; no conversion in the timing
        fn = {"softmax": torch.softmax, "log_softmax": torch.log_softmax}.get(name, torch.logsumexp)
        return lambda: fn(t, dim=-1)
    if impl == "np.exp (limit)":
        out = np.empty_like(a)
        return lambda: np.exp(a, out=out)
    raise AssertionError(impl)


def shape_id(shape):
    return "x".join(map(str, shape))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", REDUCTION_SHAPES, ids=shape_id)
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_reduction(benchmark, name, shape, dtype, impl):
    benchmark.group = f"{name}-{dtype}-{shape_id(shape)}"
    a = data(shape, dtype)
    func = implementation(name, impl, a)
    if impl != "np.exp (limit)":
        got = np.asarray(func(), dtype=np.float64)
        want = getattr(reference, name)(a, axis=-1)
        rtol = (RTOL if impl == "vcalc" else PEER_RTOL)[dtype]
        # Peers compute log(sum) where vcalc uses log1p: near 0 they are off
        # by about eps * max|a| in absolute terms, which is allowed here.
        eps = np.finfo(dtype).eps
        scale = max(1.0, float(np.abs(a).max()))
        atol = 1e-300 if name == "softmax" else max(16 * eps, rtol) * scale
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    benchmark.extra_info["elements"] = a.size
    benchmark(func)


# ---------------------------------------------------------------------------
# exp: vcalc's vectorised exp against np.exp
# ---------------------------------------------------------------------------

#: Most of each dtype's finite range: no overflow, no subnormal results.
EXP_SPAN = {"float64": (-700.0, 700.0), "float32": (-87.0, 88.0)}


@functools.cache
def exp_data(size, dtype):
    x = np.random.default_rng(7).uniform(*EXP_SPAN[dtype], size).astype(dtype)
    x.flags.writeable = False
    return x


def vexp():
    fn = getattr(peer("vcalc._kernels"), "vexp", None)
    if fn is None:
        pytest.skip("this build of vcalc._kernels has no vexp")
    return fn


@pytest.mark.parametrize("impl", ["vcalc", "np.exp", "copy"])
@pytest.mark.parametrize("size", [1_000_000, 100_000, 1000])
@pytest.mark.parametrize("dtype", DTYPES)
def test_exp(benchmark, dtype, size, impl):
    benchmark.group = f"exp-{dtype}-n={size}"
    x = exp_data(size, dtype)
    y = np.empty_like(x)
    if impl == "vcalc":
        fn = vexp()
        fn(x, y)
        # Against exp in more precision than the result: NumPy's float32 exp
        # is itself off by up to 2e-7.
        wide = np.float64 if dtype == "float32" else np.longdouble
        want = np.exp(x.astype(wide))
        err = float(np.max(np.abs(y.astype(wide) - want) / want))
        benchmark.extra_info["max_rel_error"] = err
        assert err <= EXP_RTOL[dtype], f"max relative error {err:.3g}"
        benchmark(fn, x, y)
    elif impl == "np.exp":
        benchmark(np.exp, x, out=y)
    else:  # the memory floor: as many bytes read and written, nothing computed
        benchmark(np.copyto, y, x)


# ---------------------------------------------------------------------------
# threads: softmax on one and two threads
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2])
def test_softmax_threads(benchmark, threads):
    benchmark.group = "threads-softmax-float64-10000x1000"
    if threads > vcalc._backend.config().get("max_threads", 1):
        pytest.skip("fewer than 2 CPUs usable")
    a = data((10_000, 1000))

    def func():
        with vcalc.num_threads(threads):
            return vcalc.softmax(a, axis=-1)

    want = reference.softmax(a, axis=-1)
    np.testing.assert_allclose(func(), want, rtol=1e-12, atol=1e-300)
    benchmark(func)
