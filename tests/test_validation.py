"""One test per error message of the reductions, on both backends.

(The quadratic forms' messages are tested in test_quadratic.py.)
"""

import numpy as np
import pytest

import vcalc

REDUCTIONS = ["logsumexp", "softmax", "log_softmax", "softmax_jacobian"]
ARG = {"logsumexp": "a", "softmax": "x", "log_softmax": "x", "softmax_jacobian": "x"}


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("bad", ["abc", None, b"xy"])
def test_not_an_array(backend, name, bad):
    with pytest.raises(TypeError, match=rf"`{ARG[name]}` must be an array of real numbers; got "):
        getattr(vcalc, name)(bad)


@pytest.mark.parametrize("name", REDUCTIONS)
def test_complex_is_rejected(backend, name):
    with pytest.raises(
        TypeError, match=rf"`{ARG[name]}` must be real; got complex dtype complex128"
    ):
        getattr(vcalc, name)(np.array([1.0 + 1j, 2.0]))


@pytest.mark.parametrize("name", REDUCTIONS)
def test_object_and_string_arrays_are_rejected(backend, name):
    with pytest.raises(
        TypeError, match=rf"`{ARG[name]}` must be an array of real numbers; got dtype object"
    ):
        getattr(vcalc, name)(np.array([1.0, None]))
    with pytest.raises(TypeError, match=r"got dtype <U1"):
        getattr(vcalc, name)(np.array(["a", "b"]))


@pytest.mark.parametrize("name", REDUCTIONS)
def test_ragged_lists_are_rejected(backend, name):
    with pytest.raises(
        ValueError, match=rf"`{ARG[name]}` must be a rectangular array of real numbers"
    ):
        getattr(vcalc, name)([[1.0, 2.0], [3.0]])


def test_complex_weights_are_rejected(backend):
    with pytest.raises(TypeError, match=r"`b` must be real; got complex dtype"):
        vcalc.logsumexp([1.0, 2.0], b=[1j, 1.0])


def test_weights_must_broadcast(backend):
    with pytest.raises(
        ValueError, match=r"`b` must broadcast against `a`; got shapes \(3,\) and \(2,\)"
    ):
        vcalc.logsumexp([1.0, 2.0], b=[1.0, 2.0, 3.0])


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [1.5, "0", (0, "1"), True])
def test_axis_type(backend, name, axis):
    with pytest.raises(TypeError, match=r"`axis` must be None, an int or a tuple of ints; got "):
        getattr(vcalc, name)(np.zeros((2, 3)), axis=axis)


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis", [2, -3, (0, 5)])
def test_axis_out_of_range(backend, name, axis):
    if name == "softmax_jacobian" and isinstance(axis, tuple):
        return
    with pytest.raises(
        np.exceptions.AxisError, match=r"`axis` -?\d is out of bounds for an array of dimension 2"
    ):
        getattr(vcalc, name)(np.zeros((2, 3)), axis=axis)


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
def test_axis_repeated(backend, name):
    with pytest.raises(ValueError, match=r"`axis` must not repeat an axis; got \(1, -1\)"):
        getattr(vcalc, name)(np.zeros((2, 3)), axis=(1, -1))


def test_softmax_jacobian_axis_tuple(backend):
    with pytest.raises(
        TypeError, match=r"`axis` must be an int or None for softmax_jacobian; got \(0,\)"
    ):
        vcalc.softmax_jacobian(np.zeros((2, 3)), axis=(0,))


@pytest.mark.parametrize("flag", ["keepdims", "return_sign"])
@pytest.mark.parametrize("value", ["yes", 1, None])
def test_flags_must_be_bool(backend, flag, value):
    with pytest.raises(TypeError, match=rf"`{flag}` must be True or False; got "):
        vcalc.logsumexp([1.0], **{flag: value})


def test_axis_error_is_a_value_error():
    # Callers catching ValueError (the contract's promise) catch AxisError too.
    with pytest.raises(ValueError):
        vcalc.softmax(np.zeros(3), axis=1)
