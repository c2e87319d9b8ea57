"""Memory: repeated calls of every public function do not grow the heap.

Each function runs its first registry case on both backends, warms up, then
runs many more times under tracemalloc (which also sees NumPy's array data);
a leaked reference or buffer per call would grow the traced memory by at
least a few dozen bytes a call.  The C heap (glibc's mallinfo2) and the
resident set size are checked the same way, for what tracemalloc does not see.
The long versions (twice 5e4 calls of each function) are behind the ``slow``
marker: ``pytest -m slow tests/test_memory.py``.
"""

import ctypes
import gc
import os
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


# ---------------------------------------------------------------------------
# The C heap and the resident set: what tracemalloc cannot see (malloc in the
# extensions and in libgomp, memory of C-level f loops).  glibc's mallinfo2
# counts the bytes malloc has handed out and not had back, to the byte; the
# resident set size is the coarse, platform-level check (freed memory that is
# still resident hides small leaks from it, so its bound is loose).
# ---------------------------------------------------------------------------


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _mallinfo2():
    try:
        libc = ctypes.CDLL(None)
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    return fn


_MALLINFO2 = _mallinfo2()


def _c_heap_bytes():
    """Bytes in use from malloc (glibc >= 2.33), or None."""
    if _MALLINFO2 is None:
        return None
    info = _MALLINFO2()
    return info.uordblks + info.hblkhd


def _rss_bytes():
    """Current resident set size from /proc (Linux), or None."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _native_growth(call, n):
    """(C heap, RSS) bytes gained over n calls: the smaller of two windows each."""
    for _ in range(max(200, n // 10)):  # warm up: arenas, caches, thread pools
        call()
    gc.collect()
    marks = [(_c_heap_bytes() or 0, _rss_bytes() or 0)]
    for _ in range(2):
        for _ in range(n):
            call()
        gc.collect()
        marks.append((_c_heap_bytes() or 0, _rss_bytes() or 0))
    return tuple(min(marks[1][i] - marks[0][i], marks[2][i] - marks[1][i]) for i in range(2))


needs_native = pytest.mark.skipif(
    _c_heap_bytes() is None or _rss_bytes() is None, reason="needs glibc mallinfo2 and /proc"
)


@needs_native
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_c_heap_and_rss_do_not_grow_over_repeated_calls(backend, name):
    call = _first_case(name)
    with vcalc.use_backend(backend):
        heap, rss = _native_growth(call, 1000)
    # 16 bytes a call is below the smallest malloc chunk (32 bytes on x86-64).
    assert heap < 1000 * 16, f"{name}: the C heap grew by {heap} bytes over 1000 calls"
    assert rss < 1024 * 1024, f"{name}: RSS grew by {rss} bytes over 1000 calls"


@needs_native
def test_c_heap_detector_sees_a_leaked_buffer_per_call():
    kept = []
    heap, _ = _native_growth(lambda: kept.append(np.ones(8)), 1000)  # NumPy data: malloc
    assert heap >= 1000 * 16


@pytest.mark.slow
@needs_native
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_c_heap_and_rss_do_not_grow_over_1e5_calls(name):
    heap, rss = _native_growth(_first_case(name), 50_000)
    assert heap < 64 * 1024, f"{name}: the C heap grew by {heap} bytes over 5e4 calls"
    assert rss < 4 * 1024 * 1024, f"{name}: RSS grew by {rss} bytes over 5e4 calls"
