"""Benchmark fixtures: cached inputs with a fixed seed, and the peers when installed.

Run with ``pip install ".[bench]" && pytest benchmarks``; each group puts
vcalc beside its peers in one table.
"""

import functools

import numpy as np
import pytest


@functools.cache
def data(shape, dtype="float64", seed=0):
    """A read-only array of standard normals times 3, cached across benchmarks."""
    a = (np.random.default_rng(seed).standard_normal(shape) * 3).astype(dtype)
    a.flags.writeable = False
    return a


def peer(name):
    """Import a peer library or skip the benchmark that needs it."""
    return pytest.importorskip(name)
