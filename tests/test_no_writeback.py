"""No public function modifies its inputs, on either backend, whatever their layout."""

import copy

import numpy as np
import pytest

import vcalc
from vcalc._registry import REGISTRY


def _layouts(arr):
    """Four layouts of the same values: C order, strided view, Fortran order, big-endian.

    Where a layout does not apply (a strided view of an empty array, Fortran
    order of a vector) the C-ordered copy stands in, so every array has four.
    """
    yield np.array(arr)
    if arr.ndim >= 1 and arr.size:
        yield np.repeat(arr, 2, axis=-1)[..., ::2]  # a strided view into a larger buffer
    else:
        yield np.array(arr)
    yield np.asfortranarray(arr) if arr.ndim >= 2 else np.array(arr)
    yield arr.astype(arr.dtype.newbyteorder(">"))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_inputs_unchanged(backend, name):
    entry = REGISTRY[name]
    for case in entry.cases(np.random.default_rng(11)):
        arrays = [a for a in case.args if isinstance(a, np.ndarray)]
        for variant in zip(*[_layouts(a) for a in arrays], strict=True):
            it = iter(variant)
            args = tuple(next(it) if isinstance(a, np.ndarray) else a for a in case.args)
            kwargs = {
                k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in case.kwargs.items()
            }
            before = [(copy.deepcopy(a), getattr(a, "strides", None)) for a in args]
            kw_before = copy.deepcopy(kwargs)
            entry.func(*args, **kwargs)
            for a, (b, strides) in zip(args, before, strict=True):
                if isinstance(a, np.ndarray):
                    np.testing.assert_array_equal(a, b, err_msg=case.label)
                    assert a.dtype == b.dtype and a.strides == strides
            for k, v in kwargs.items():
                if isinstance(v, np.ndarray):
                    np.testing.assert_array_equal(v, kw_before[k])


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_read_only_inputs_are_accepted(backend, name):
    entry = REGISTRY[name]
    case = next(entry.cases(np.random.default_rng(12)))
    args = []
    for a in case.args:
        if isinstance(a, np.ndarray):
            a = a.copy()
            a.flags.writeable = False
        args.append(a)
    entry.func(*args, **case.kwargs)  # a write would raise ValueError: read-only


def test_outputs_do_not_alias_inputs(backend):
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = vcalc.softmax(a, axis=1)
    assert not np.shares_memory(out, a)
    out[...] = 0
    np.testing.assert_array_equal(a, [[1.0, 2.0], [3.0, 4.0]])
