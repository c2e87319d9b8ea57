"""Faults in f leave nothing behind: no leaked references or memory, no changed input.

test_finite_differences.py raises at every k-th evaluation and checks that
the same exception propagates and x is unchanged; here the same faults are
repeated many times to show that a fault leaks no reference (to x, to the
extra ``args``, to the exception) and no memory, and that every other input
(v, arrays of steps and bounds, the args) is left as it was, on both
backends, for the loop and the vectorized evaluators.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc

import numpy as np
import pytest

import vcalc


class Boom(Exception):
    pass


def _scalar(x, c):
    x = np.asarray(x)
    return np.sum(c[: x.shape[-1]] * np.sin(x), axis=-1) + np.sum(x * x, axis=-1)


def _vector(x, c):
    x = np.asarray(x)
    return np.stack([np.sin(x[..., 0]) * c[0], x[..., 0] * x[..., 1], np.exp(x[..., 1])], -1)


def _elementwise(x, c):
    return np.sin(np.asarray(x)) * c[0]


X = np.array([0.3, -0.7])
V = np.array([1.0, 0.5])
C = np.array([1.5, -2.0])
STEP = np.array([1e-5, 2e-5])
BOUNDS = (np.array([0.0, -1.0]), np.array([0.3, 1.0]))  # x[0] on the upper bound

# label -> (call(f, x, v, args), base f, vectorizable)
CALLS = {
    "gradient": (lambda f, x, v, a, **k: vcalc.gradient(f, x, args=a, **k), _scalar),
    "gradient step": (lambda f, x, v, a, **k: vcalc.gradient(f, x, args=a, step=STEP, **k),
                      _scalar),
    "gradient bounds": (lambda f, x, v, a, **k: vcalc.gradient(f, x, args=a, bounds=BOUNDS,
                                                               **k), _scalar),
    "gradient richardson": (lambda f, x, v, a, **k: vcalc.gradient(
        f, x, args=a, method="richardson", **k), _scalar),
    "gradient complex": (lambda f, x, v, a, **k: vcalc.gradient(
        f, x, args=a, method="complex", **k), _scalar),
    "jacobian": (lambda f, x, v, a, **k: vcalc.jacobian(f, x, args=a, order=4, **k), _vector),
    "hessian": (lambda f, x, v, a, **k: vcalc.hessian(f, x, args=a, **k), _scalar),
    "hessian richardson": (lambda f, x, v, a, **k: vcalc.hessian(
        f, x, args=a, method="richardson", **k), _scalar),
    "derivative": (lambda f, x, v, a: vcalc.derivative(f, x, args=a, n=2), _elementwise),
    "directional_derivative": (lambda f, x, v, a: vcalc.directional_derivative(
        f, x, v, args=a), _scalar),
    "jvp": (lambda f, x, v, a: vcalc.jvp(f, x, v, args=a, method="richardson"), _vector),
    "hvp": (lambda f, x, v, a: vcalc.hvp(f, x, v, args=a), _scalar),
    "check_grad": (lambda f, x, v, a: vcalc.check_grad(
        f, lambda z, c: 2 * z + c * np.cos(z), x, args=a), _scalar),
    "taylor": (lambda f, x, v, a: vcalc.taylor(f, x, args=a), _scalar),
}  # fmt: skip
VECTORIZABLE = {"gradient", "gradient step", "gradient bounds", "jacobian", "hessian"}
CASES = [(name, False) for name in CALLS] + [(name, True) for name in sorted(VECTORIZABLE)]


def _faulty(base, k):
    """base, but raising a fresh Boom at its k-th call."""
    calls = [0]

    def f(x, c):
        calls[0] += 1
        if calls[0] == k:
            raise Boom(f"evaluation {k}")
        return base(x, c)

    return f, calls


def _total_calls(name, vectorized):
    call, base = CALLS[name]
    f, calls = _faulty(base, -1)
    kw = {"vectorized": True} if vectorized else {}
    call(f, X.copy(), V.copy(), (C.copy(),), **kw)
    return calls[0]


@pytest.mark.parametrize(("name", "vectorized"), CASES)
def test_fault_leaks_nothing_and_changes_no_input(backend, name, vectorized):
    call, base = CALLS[name]
    kw = {"vectorized": True} if vectorized else {}
    total = _total_calls(name, vectorized)
    x, v, c = X.copy(), V.copy(), C.copy()
    args = (c,)
    saved = [a.copy() for a in (x, v, c, STEP, *BOUNDS)]
    refs = [sys.getrefcount(a) for a in (x, v, c, args)]
    ks = sorted({1, max(1, total // 2), total})

    def fault_once(k):
        # try/except, not pytest.raises: that keeps the exception and its
        # frames alive, which is what this test must be able to see.
        f, _ = _faulty(base, k)
        try:
            call(f, x, v, args, **kw)
        except Boom as err:
            assert str(err) == f"evaluation {k}"
        else:
            raise AssertionError(f"f raised at evaluation {k}, but nothing propagated")

    for _ in range(30):  # warm up caches (stencils, plans) and free lists
        for k in ks:
            fault_once(k)
    gc.collect()
    tracemalloc.start()
    try:
        marks = [tracemalloc.get_traced_memory()[0]]
        for _ in range(2):  # two windows: a leak grows both, a one-off fills one
            for _ in range(40):
                for k in ks:
                    fault_once(k)
            gc.collect()
            marks.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    grown = min(marks[1] - marks[0], marks[2] - marks[1])
    # Free lists and NumPy's context variables settle over some hundreds of
    # calls (up to ~8 kB measured here, flat afterwards), so this bound catches
    # a leaked array or traceback per fault (a frame is ~0.5 kB), not a small
    # object; the reference counts below catch any kept frame or traceback,
    # since those hold x, v and args.
    n = 40 * len(ks)
    assert grown < 16 * 1024, f"{name}: {grown} bytes kept over {n} faults"
    gc.collect()
    assert [sys.getrefcount(a) for a in (x, v, c, args)] == refs
    for before, after in zip(saved, (x, v, c, STEP, *BOUNDS), strict=True):
        assert before.tobytes() == after.tobytes()


@pytest.mark.parametrize("name", sorted(CALLS))
def test_fault_exception_is_the_one_f_raised_with_its_traceback(backend, name):
    call, base = CALLS[name]
    raised = []

    def f(x, c):
        if len(raised) == 0:
            raised.append(Boom("first"))
            raise raised[0]
        return base(x, c)

    with pytest.raises(Boom) as info:
        call(f, X.copy(), V.copy(), (C,))
    assert info.value is raised[0]
    assert info.traceback[-1].name == "f"  # the frame that raised is f's own


def test_keyboard_interrupt_from_f_propagates_unchanged(backend):
    def f(x):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vcalc.hessian(f, X.copy())
