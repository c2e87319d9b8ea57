"""Argument checks shared by every facade and by the reference.

Each public function validates its input once, here, and gets back clean
NumPy arrays; kernels never validate.  Messages name the argument, say what
was expected and what was received.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

__all__ = [
    "as_float_array",
    "check_axis",
    "result_dtype",
    "compute_dtype",
]


def as_float_array(x: Any, name: str) -> np.ndarray:
    """Convert `x` to a floating ndarray, or raise naming `name`.

    float16, float32 and float64 are kept; integers and bools become float64;
    other real floating types (long double) become float64.  Complex, object,
    string, datetime and structured data raise ``TypeError``; ragged nested
    sequences raise ``ValueError``.

    Parameters
    ----------
    x : array_like
        The argument as the user passed it.
    name : str
        The argument's name, used in error messages.

    Returns
    -------
    ndarray
        A (possibly non-contiguous, possibly read-only) floating array; it
        may share memory with `x` and must not be written to.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"`{name}` must be an array of real numbers; got {type(x).__name__}.")
    try:
        arr = np.asarray(x)
    except ValueError as err:  # ragged nested sequences
        raise ValueError(
            f"`{name}` must be a rectangular array of real numbers; "
            f"it could not be converted ({err})."
        ) from err
    kind = arr.dtype.kind
    if kind == "f":
        if arr.dtype.itemsize in (2, 4, 8):
            return arr
        return arr.astype(np.float64)
    if kind in "iub":
        return arr.astype(np.float64)
    if kind == "c":
        raise TypeError(f"`{name}` must be real; got complex dtype {arr.dtype}.")
    raise TypeError(f"`{name}` must be an array of real numbers; got dtype {arr.dtype}.")


def result_dtype(*arrays: np.ndarray) -> np.dtype:
    """The dtype of a result computed from floating `arrays` (NumPy promotion)."""
    return np.result_type(*arrays)


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype the kernels run in for a result of `dtype`: float16 runs as float32."""
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


def check_axis(axis: Any, ndim: int, name: str = "axis") -> tuple[int, ...]:
    """Normalise `axis` (None, int or tuple of ints) to sorted non-negative ints.

    Parameters
    ----------
    axis : None, int or tuple of int
        Axis or axes; negative values count from the end; None means all.
    ndim : int
        Number of dimensions of the array the axes refer to.
    name : str
        The argument's name, for messages.

    Returns
    -------
    tuple of int
        Sorted, unique, non-negative axes.

    Raises
    ------
    TypeError
        If `axis` is not None, an integer or a tuple of integers.
    numpy.exceptions.AxisError
        If an axis is out of range (a ``ValueError``).
    ValueError
        If an axis is repeated.
    """
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for item in items:
        if isinstance(item, (bool, np.bool_)):
            raise TypeError(f"`{name}` must be None, an int or a tuple of ints; got {axis!r}.")
        try:
            ax = operator.index(item)
        except TypeError:
            raise TypeError(
                f"`{name}` must be None, an int or a tuple of ints; got {axis!r}."
            ) from None
        if not -ndim <= ax < ndim:
            raise np.exceptions.AxisError(
                f"`{name}` {ax} is out of bounds for an array of dimension {ndim}"
            )
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"`{name}` must not repeat an axis; got {axis!r}.")
    return tuple(sorted(out))


# ---------------------------------------------------------------------------
# Scalar options (added with the quadratic forms and least squares)
# ---------------------------------------------------------------------------


def check_bool(value: Any, name: str) -> bool:
    """Return `value` as a bool, or raise ``TypeError`` naming `name`.

    Only ``True``/``False`` (and NumPy bools) are accepted: ``1`` or ``"yes"``
    are more likely a misplaced argument than a flag.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False; got {value!r}.")
    return bool(value)


def check_nonnegative_real(value: Any, name: str) -> float:
    """Return `value` as a Python float if it is a finite real number >= 0.

    Parameters
    ----------
    value : int or float
        A real scalar (Python or NumPy); bools, complex numbers, strings and
        arrays are refused.
    name : str
        The argument's name, for messages.

    Returns
    -------
    float
        ``float(value)``; a Python float, so it never changes a result's
        dtype under NumPy's promotion rules.

    Raises
    ------
    TypeError
        If `value` is not a real number (bools included).
    ValueError
        If `value` is negative, NaN or infinite.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"`{name}` must be a real number; got {type(value).__name__}.")
    try:
        out = float(value)
    except OverflowError:  # an int beyond the float range
        out = float("inf")
    if not (np.isfinite(out) and out >= 0.0):
        raise ValueError(f"`{name}` must be finite and >= 0; got {value!r}.")
    return out


__all__ += ["check_bool", "check_nonnegative_real"]
