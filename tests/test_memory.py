"""Memory: repeated calls of every public function do not grow the heap.

Each function runs its first registry case on both backends, warms up, then
runs many more times under tracemalloc (which also sees NumPy's array data);
a leaked reference or buffer per call would grow the traced memory by at
least a few dozen bytes a call.  The long version (twice 5e4 calls) is behind
the ``slow`` marker.
"""

import gc
import tracemalloc

import numpy as np
import pytest

import vcalc
from vcalc._registry import REGISTRY


def _growth(call, n):
    """Traced bytes gained over n calls, in each of two consecutive windows.

    A leak grows the heap in both windows; one-off growth (a cache filling,
    an allocator arena) shows in one at most, so the smaller of the two is
    what a test bounds.
    """
    for _ in range(20):  # warm up caches (stencils, plans, imports)
        call()
    gc.collect()
    tracemalloc.start()
    try:
        call()
        gc.collect()
        marks = [tracemalloc.get_traced_memory()[0]]
        for _ in range(2):
            for _ in range(n):
                call()
            gc.collect()
            marks.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    return min(marks[1] - marks[0], marks[2] - marks[1])


def _first_case(name):
    entry = REGISTRY[name]
    case = next(entry.cases(np.random.default_rng(3)))
    return lambda: entry.func(*case.args, **case.kwargs)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_no_growth_over_repeated_calls(backend, name):
    call = _first_case(name)
    with vcalc.use_backend(backend):
        grown = _growth(call, 500)
    # 20 bytes a call is below the smallest leaked object (a float is 24); one-off
    # growth measured here stays under 8 kB (NumPy's small-buffer cache).
    assert grown < 500 * 20, f"{name}: traced memory grew by {grown} bytes per 500 calls"


def test_growth_detector_sees_a_leaked_float_per_call():
    kept = []
    grown = _growth(lambda: kept.append(float(len(kept)) + 0.5), 500)
    assert grown >= 500 * 20


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_no_growth_over_1e5_calls(name):
    grown = _growth(_first_case(name), 50_000)
    assert grown < 64 * 1024, f"{name}: traced memory grew by {grown} bytes per 5e4 calls"
