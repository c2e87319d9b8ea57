"""Property tests over the whole registry: every public function, fast vs reference.

Hypothesis picks a registry entry (so every public numerical function, the
finite differences included), one of its cases (random and edge-case
arguments drawn from a seed), and a layout for every array argument: C order,
a strided view, a negative-stride view, Fortran order, byte-swapped, unaligned
or read-only.  For the reductions it also scales the data by a power of ten
from 1e-300 to 1e300.  The Cython backend must then agree with the NumPy
reference exactly as the self-check demands (same type, dtype, shape, NaN and
inf in the same places, finite values within the dtype's tolerance).

The CI profile runs a short, derandomized draw; the fuzzing campaign runs
``VCALC_HYPOTHESIS_PROFILE=long pytest tests/test_property_registry.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import vcalc
from vcalc._registry import REGISTRY, Case
from vcalc._selfcheck import compare

NAMES = sorted(REGISTRY)
REDUCTIONS = {"logsumexp", "softmax", "log_softmax", "softmax_jacobian"}
LAYOUTS = ["C", "strided", "reversed", "fortran", "byteswapped", "unaligned", "read-only"]


def _layout(a: np.ndarray, how: str) -> np.ndarray:
    """The same values as `a` in another memory layout."""
    if how == "C" or a.ndim == 0 or a.size == 0:
        return a
    if how == "strided":
        return np.repeat(a, 2, axis=-1)[..., ::2]
    if how == "reversed":
        return np.flip(a).copy()[(slice(None, None, -1),) * a.ndim]
    if how == "fortran":
        return np.asfortranarray(a)
    if how == "byteswapped":
        return a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder != ">" else "<"))
    if how == "unaligned":
        buf = np.zeros(a.nbytes + 1, np.uint8)
        out = buf[1:].view(a.dtype).reshape(a.shape)
        out[...] = a
        return out
    out = a.copy()
    out.flags.writeable = False
    return out


@st.composite
def registry_calls(draw):
    name = draw(st.sampled_from(NAMES))
    entry = REGISTRY[name]
    cases = list(entry.cases(np.random.default_rng(draw(st.integers(0, 2**32 - 1)))))
    case = cases[draw(st.integers(0, len(cases) - 1))]
    factor = 1.0
    if name in REDUCTIONS:
        factor = 10.0 ** draw(st.sampled_from([0, -300, -30, -8, 8, 30, 300]))

    def transform(v):
        if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
            return v
        if factor != 1.0:
            with np.errstate(over="ignore", under="ignore"):
                v = (v.astype(np.float64) * factor).astype(v.dtype)
        return _layout(v, draw(st.sampled_from(LAYOUTS)))

    args = tuple(transform(a) for a in case.args)
    kwargs = {k: transform(v) for k, v in case.kwargs.items()}
    return name, case.label, args, kwargs


@settings(max_examples=3 * settings.default.max_examples)
@given(registry_calls())
def test_property_every_public_function_matches_reference(call):
    name, label, args, kwargs = call
    entry = REGISTRY[name]
    snapshot = [a.copy() for a in args if isinstance(a, np.ndarray)]
    with warnings.catch_warnings():
        # Edge-case arguments of the finite differences (NaN from f) warn by design.
        warnings.filterwarnings("ignore", message="vcalc.", category=RuntimeWarning)
        with vcalc.use_backend("numpy"):
            ref = entry.ref(*args, **kwargs)
        with vcalc.use_backend("cython"):
            fast = entry.func(*args, **kwargs)
    if entry.project is not None:
        ref, fast = entry.project(ref), entry.project(fast)
    scale = entry.scale(Case(args, kwargs, label), ref) if entry.scale else None
    _, problems = compare(fast, ref, scale)
    assert not problems, f"{name} [{label}]: {problems}"
    for before, after in zip(snapshot, [a for a in args if isinstance(a, np.ndarray)], strict=True):
        np.testing.assert_array_equal(before, after)  # no writeback
