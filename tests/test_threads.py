"""Threads: every public function, called from 8 threads at once on shared inputs,
gives exactly the serial results; backends chosen per thread do not leak."""

import sys
import threading
import warnings

import numpy as np
import pytest

import vcalc
from vcalc._registry import REGISTRY

N_THREADS = 8


def _flatten(out):
    """A result (array, tuple, DiffInfo, GradCheck, Taylor) as a list of arrays."""
    if isinstance(out, tuple):
        return [a for o in out for a in _flatten(o)]
    for attrs in (("numeric", "analytic"), ("f0", "grad", "hess"), ("error", "step")):
        if all(hasattr(out, a) for a in attrs):
            return [np.asarray(getattr(out, a)) for a in attrs if getattr(out, a) is not None]
    return [np.asarray(out)]


def _same(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def _run_threads(work):
    errors = []
    barrier = threading.Barrier(N_THREADS)

    def target(i):
        try:
            barrier.wait()
            work(i)
        except BaseException as err:  # report in the main thread
            errors.append(err)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_concurrent_calls_match_serial(name):
    entry = REGISTRY[name]
    cases = list(entry.cases(np.random.default_rng(5)))[:12]
    serial = {}
    for backend in ("cython", "numpy"):
        with vcalc.use_backend(backend):
            serial[backend] = [_flatten(entry.func(*c.args, **c.kwargs)) for c in cases]

    def work(i):
        backend = ("cython", "numpy")[i % 2]  # half the threads on each backend
        with vcalc.use_backend(backend):
            for _ in range(2):
                for c, want in zip(cases, serial[backend], strict=True):
                    assert vcalc.get_backend() == backend
                    got = _flatten(entry.func(*c.args, **c.kwargs))
                    assert all(_same(g, w) for g, w in zip(got, want, strict=True)), c.label

    _run_threads(work)


def test_issue_concurrent_complex_steps_corrupted_warning_filters():
    # The complex step makes ComplexWarning an error while it evaluates f; threads
    # doing so at once must not leave that filter (or lose pytest's) afterwards.
    before = list(warnings.filters)

    def f(x):
        return np.sum(np.sin(x) * np.exp(x))

    x = np.linspace(0.1, 1.0, 20)
    want = vcalc.gradient(f, x, method="complex")

    def work(i):
        for _ in range(20):
            np.testing.assert_array_equal(vcalc.gradient(f, x, method="complex"), want)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: inside the with blocks too
    try:
        _run_threads(work)
    finally:
        sys.setswitchinterval(old)
    assert warnings.filters == before
