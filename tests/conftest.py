"""Shared fixtures: the backend under test and a seeded random generator."""

import os

import numpy as np
import pytest
from hypothesis import settings

import vcalc

# Property tests: a short profile by default (CI), a long one for fuzzing
# campaigns: VCALC_HYPOTHESIS_PROFILE=long pytest -k property
# The CI profile is derandomized, so a run on a clean checkout is reproducible
# and a submission is judged on the code, not on the draw; the "long" and "dev"
# profiles draw fresh examples every run, and that is where new failures are
# found (each then becomes an @example regression).
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("long", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("VCALC_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=["cython", "numpy"])
def backend(request):
    """Run the test once on each backend (the public functions dispatch on it)."""
    with vcalc.use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    """A generator with a fixed seed, so failures reproduce."""
    return np.random.default_rng(20261122)


def array_zoo(rng, dtypes=(np.float64, np.float32)):
    """Yield ``(label, array)`` pairs covering layouts and values that break kernels.

    Modelled on bottleneck's ``arrays()``: 0-d, empty, one element, 1-d to
    3-d, transposed, strided and Fortran-ordered views, byte-swapped and
    read-only data, +-1e308, +-inf, NaN and all -inf rows.
    """
    for dtype in dtypes:
        name = np.dtype(dtype).name
        yield f"{name} 0-d", np.asarray(rng.standard_normal(), dtype=dtype)
        yield f"{name} empty", np.empty((0,), dtype)
        yield f"{name} empty rows", np.empty((3, 0), dtype)
        yield f"{name} one", np.ones((1,), dtype)
        yield f"{name} 1-d", rng.standard_normal(11).astype(dtype)
        yield f"{name} 2-d", rng.standard_normal((4, 7)).astype(dtype)
        yield f"{name} 3-d", rng.standard_normal((2, 3, 5)).astype(dtype)
        yield f"{name} transposed", rng.standard_normal((6, 4)).astype(dtype).T
        yield f"{name} strided", rng.standard_normal((5, 12)).astype(dtype)[::2, ::3]
        yield f"{name} fortran", np.asfortranarray(rng.standard_normal((4, 6)).astype(dtype))
        yield (
            f"{name} byteswapped",
            rng.standard_normal((3, 5)).astype(np.dtype(dtype).newbyteorder(">")),
        )
        ro = rng.standard_normal((3, 4)).astype(dtype)
        ro.flags.writeable = False
        yield f"{name} read-only", ro
        big = np.array([[1e308, -1e308, 0.0], [1e308, 1e308, 1e308], [-1e308, -1e308, 5.0]])
        yield (
            f"{name} +-1e308",
            big.astype(dtype) if dtype == np.float64 else (big * 3e-270).astype(dtype),
        )
        special = np.array(
            [
                [np.inf, 1.0, np.inf],
                [-np.inf, -np.inf, -np.inf],
                [np.nan, 1.0, 2.0],
                [-np.inf, 3.0, np.inf],
                [700.0, -745.0, 0.0],
            ],
            dtype=dtype,
        )
        yield f"{name} inf/nan rows", special


@pytest.fixture
def zoo(rng):
    """The array zoo as a list of ``(label, array)``."""
    return list(array_zoo(rng))
