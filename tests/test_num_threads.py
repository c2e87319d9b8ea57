"""Opt-in kernel threads: the setting, its scope, and identical results.

Rows are independent and each is computed by one thread in the same order
whatever the thread count, so threaded results must equal serial ones bit
for bit.
"""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import vcalc
from vcalc import _backend

requires_ext = pytest.mark.skipif(not _backend.HAVE_EXTENSION, reason="no compiled kernels")


def test_default_is_one_thread():
    assert vcalc.get_num_threads() == 1
    assert _backend.config()["num_threads"] == 1


def test_set_num_threads_is_process_wide_and_validated():
    try:
        vcalc.set_num_threads(3)
        assert vcalc.get_num_threads() == 3
        seen = []
        t = threading.Thread(target=lambda: seen.append(vcalc.get_num_threads()))
        t.start()
        t.join()
        assert seen == [3]
    finally:
        vcalc.set_num_threads(1)
    for bad, err in [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError)]:
        with pytest.raises(err, match="`n`"):
            vcalc.set_num_threads(bad)
    with pytest.raises(TypeError, match="`n`"):
        vcalc.set_num_threads(True)
    assert vcalc.get_num_threads() == 1


def test_num_threads_context_is_thread_local_and_nests():
    inner = []

    def other():
        inner.append(vcalc.get_num_threads())

    with vcalc.num_threads(2):
        assert vcalc.get_num_threads() == 2
        t = threading.Thread(target=other)
        t.start()
        t.join()
        with vcalc.num_threads(4):
            assert vcalc.get_num_threads() == 4
        assert vcalc.get_num_threads() == 2
    assert vcalc.get_num_threads() == 1
    assert inner == [1]  # the other thread kept the process-wide default
    with pytest.raises(RuntimeError), vcalc.num_threads(2):
        raise RuntimeError("restored even on error")
    assert vcalc.get_num_threads() == 1
    with pytest.raises(ValueError, match="`n`"), vcalc.num_threads(0):
        pass


def test_threads_are_capped_by_the_cpus(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with vcalc.num_threads(64):
        assert _backend.threads_for_kernel() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    with vcalc.num_threads(64):
        assert 1 <= _backend.threads_for_kernel() <= _backend._cpu_count()


SHAPES = [(4000, 100), (300, 1000), (2, 200_000), (70_001, 3), (1, 10)]


@requires_ext
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_threaded_reductions_equal_serial(shape, dtype):
    rng = np.random.default_rng(9)
    a = (rng.standard_normal(shape) * 10).astype(dtype)
    a[0, 0] = np.inf  # edge-case rows go through the same split
    if shape[0] > 2:
        a[2, 1] = np.nan
    for name in ("softmax", "log_softmax", "logsumexp"):
        serial = getattr(vcalc, name)(a, axis=-1)
        for n in (2, 3, 8):
            with vcalc.num_threads(n):
                threaded = getattr(vcalc, name)(a, axis=-1)
            np.testing.assert_array_equal(threaded, serial, err_msg=f"{name} {n} threads")


@requires_ext
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [2, 3, 8, 12, 17, 40])
def test_threaded_quadratic_forms_equal_serial(n, dtype):
    rng = np.random.default_rng(n)
    A = rng.standard_normal((n, n)).astype(dtype)
    X = rng.standard_normal((100_003, n)).astype(dtype)
    v1, g1 = vcalc.quadratic_form_value_and_grad(A, X)
    with vcalc.num_threads(2):
        v2, g2 = vcalc.quadratic_form_value_and_grad(A, X)
        g3 = vcalc.quadratic_form_grad(A, X)
    np.testing.assert_array_equal(v1, v2)
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(g1, g3)


_FORK_SCRIPT = r"""
import os, sys
import numpy as np
import vcalc
a = np.random.default_rng(1).standard_normal((2000, 1000))
vcalc.set_num_threads(2)
r = vcalc.softmax(a, axis=-1)           # the parent runs an OpenMP team
pid = os.fork()
if pid == 0:
    r2 = vcalc.softmax(a, axis=-1)      # would hang in GNU OpenMP
    os._exit(0 if np.array_equal(r, r2) else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@requires_ext
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_after_threaded_use_does_not_hang():
    res = subprocess.run(
        [sys.executable, "-c", _FORK_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-2000:]


@requires_ext
def test_python_threads_each_with_kernel_threads_match_serial():
    # Several Python threads, each asking for an OpenMP team of its own.
    a = np.random.default_rng(4).standard_normal((3000, 300))
    want = vcalc.softmax(a, axis=-1)
    results, errors = [None] * 4, []

    def work(i):
        try:
            with vcalc.num_threads(2):
                for _ in range(5):
                    results[i] = vcalc.softmax(a, axis=-1)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors
    for r in results:
        np.testing.assert_array_equal(r, want)
