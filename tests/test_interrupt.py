"""Ctrl-C stops a long finite-difference run promptly, even when f is a C function.

A ufunc method such as ``np.add.reduce`` runs no Python bytecode, so nothing
would handle a pending SIGINT between evaluations unless the loops check for
it.  SIGALRM with a handler raising KeyboardInterrupt stands in for Ctrl-C.
"""

import gc
import signal
import time

import numpy as np
import pytest

import vcalc

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX timers")

# Each call makes 1e5-1e6 evaluations of a C-level f: about half a second or more of
# work uninterrupted, interrupted after 0.1 s.
CALLS = {
    "gradient": lambda: vcalc.gradient(np.add.reduce, np.zeros(50_000)),
    "gradient complex": lambda: vcalc.gradient(np.add.reduce, np.zeros(50_000), method="complex"),
    "jacobian with bounds": lambda: vcalc.jacobian(np.cumsum, np.zeros(20_000), bounds=(0.0, 1.0)),
    "hessian": lambda: vcalc.hessian(np.add.reduce, np.zeros(1000)),
    "hessian order 4": lambda: vcalc.hessian(np.add.reduce, np.zeros(250), order=4),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_interrupt_stops_promptly(name):
    def handler(signum, frame):
        raise KeyboardInterrupt

    # With gc on, the signal can land while a gc callback runs (hypothesis
    # installs one), and Python then reports the KeyboardInterrupt as
    # "ignored" and goes on: seen in CI.  What is tested is vcalc's loops.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        t0 = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            CALLS[name]()
        elapsed = time.perf_counter() - t0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if gc_was_enabled:
            gc.enable()
    assert elapsed < 0.6, f"{name}: stopped after {elapsed:.2f} s"
