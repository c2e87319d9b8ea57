"""The input audit: every public function x every kind of bad input -> its outcome.

Each row of the tables below is one test, run on both backends.  The outcome
is either a ``TypeError``/``ValueError`` whose message names the argument, or
a result that equals the result on the same values as a plain C-ordered
float64 array (layouts and dtypes vcalc must accept).  The tables:

* ``SLOTS``: every array argument of every public function, with a good
  value for it (the other arguments are fixed and good);
* ``REJECTED``: what no array argument accepts (str, None, bytes, dict,
  object/str/datetime arrays, ragged lists, complex);
* ``ACCEPTED``: layouts and dtypes every array argument accepts: read-only,
  byte-swapped, memory-mapped (also read-only), strided and negative-stride
  views, Fortran order, unaligned data, int, bool, float16 and long double
  (which becomes float64);
* ``NONFINITE``: NaN and inf where a finite point or direction is required;
* ``SHAPES``: 0-d, empty and wrongly shaped arguments, function by function;
* ``OPTIONS``: the keyword arguments (method, order, step, bounds, axis, the
  flags, ridge, tolerances, n, args) and the configuration functions;
* ``F_RETURNS``: what f (or `grad`) may return that is not a good value.

Outcomes of f faults (f raising at the k-th evaluation), no-writeback,
threads and memory have files of their own (test_finite_differences.py,
test_no_writeback.py, test_threads.py, test_memory.py).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import vcalc


def _sq(x):
    x = np.asarray(x)
    return float(np.sum(x * x))


def _sq_grad(x):
    return 2.0 * np.asarray(x, dtype=np.float64)


def _vf(x):
    return np.asarray(x) ** 2


X = np.array([0.5, 1.5])
M = np.array([[2.0, 0.5], [-0.25, 1.0]])

# label -> (call taking the value for the slot, argument name, good value, kind)
# kind "point": a finite point of finite differences; "direction": a finite
# direction; "data": any real data (NaN allowed).
SLOTS = {
    "gradient(x)": (lambda v: vcalc.gradient(_sq, v), "x", X, "point"),
    "jacobian(x)": (lambda v: vcalc.jacobian(_vf, v), "x", X, "point"),
    "hessian(x)": (lambda v: vcalc.hessian(_sq, v), "x", X, "point"),
    "derivative(x)": (lambda v: vcalc.derivative(np.sin, v), "x", X, "point"),
    "directional_derivative(x)": (
        lambda v: vcalc.directional_derivative(_sq, v, [1.0, -2.0]), "x", X, "point"),
    "directional_derivative(v)": (
        lambda v: vcalc.directional_derivative(_sq, X, v), "v", X, "direction"),
    "jvp(x)": (lambda v: vcalc.jvp(_vf, v, [1.0, -2.0]), "x", X, "point"),
    "jvp(v)": (lambda v: vcalc.jvp(_vf, X, v), "v", X, "direction"),
    "hvp(x)": (lambda v: vcalc.hvp(_sq, v, [1.0, -2.0]), "x", X, "point"),
    "hvp(v)": (lambda v: vcalc.hvp(_sq, X, v), "v", X, "direction"),
    "check_grad(x)": (lambda v: vcalc.check_grad(_sq, _sq_grad, v).numeric, "x", X, "point"),
    "taylor(x)": (lambda v: vcalc.taylor(_sq, v).grad, "x", X, "point"),
    "logsumexp(a)": (lambda v: vcalc.logsumexp(v), "a", X, "data"),
    "logsumexp(b)": (lambda v: vcalc.logsumexp(X, b=v), "b", X, "data"),
    "softmax(x)": (lambda v: vcalc.softmax(v), "x", X, "data"),
    "log_softmax(x)": (lambda v: vcalc.log_softmax(v), "x", X, "data"),
    "softmax_jacobian(x)": (lambda v: vcalc.softmax_jacobian(v), "x", X, "data"),
    "quadratic_form(A)": (lambda v: vcalc.quadratic_form(v, X), "A", M, "data"),
    "quadratic_form(X)": (lambda v: vcalc.quadratic_form(M, v), "X", X, "data"),
    "quadratic_form_grad(A)": (lambda v: vcalc.quadratic_form_grad(v, X), "A", M, "data"),
    "quadratic_form_grad(X)": (lambda v: vcalc.quadratic_form_grad(M, v), "X", X, "data"),
    "quadratic_form_value_and_grad(A)": (
        lambda v: vcalc.quadratic_form_value_and_grad(v, X)[1], "A", M, "data"),
    "quadratic_form_value_and_grad(X)": (
        lambda v: vcalc.quadratic_form_value_and_grad(M, v)[1], "X", X, "data"),
    "quadratic_form_hessian(A)": (lambda v: vcalc.quadratic_form_hessian(v), "A", M, "data"),
    "least_squares(Phi)": (lambda v: vcalc.least_squares(v, X, X)[1], "Phi", M, "data"),
    "least_squares(y)": (lambda v: vcalc.least_squares(M, v, X)[1], "y", X, "data"),
    "least_squares(theta)": (lambda v: vcalc.least_squares(M, X, v)[1], "theta", X, "data"),
    "weighted_least_squares(x)": (
        lambda v: vcalc.weighted_least_squares(v, M, X)[1], "x", X, "data"),
    "weighted_least_squares(A)": (
        lambda v: vcalc.weighted_least_squares(X, v, X)[1], "A", M, "data"),
    "weighted_least_squares(s)": (
        lambda v: vcalc.weighted_least_squares(X, M, v)[1], "s", X, "data"),
    "weighted_least_squares(W)": (
        lambda v: vcalc.weighted_least_squares(X, M, X, v)[1], "W", np.eye(2) + 0.25, "data"),
    "normal_equations(Phi)": (lambda v: vcalc.normal_equations(v, X), "Phi", M, "data"),
    "normal_equations(y)": (lambda v: vcalc.normal_equations(M, v), "y", X, "data"),
}  # fmt: skip


# ---------------------------------------------------------------------------
# What no array argument accepts
# ---------------------------------------------------------------------------

REJECTED = {
    "str": ("abc", TypeError, "`{}` must be an array of real numbers; got str"),
    "None": (None, TypeError, "`{}` must be an array of real numbers; got NoneType"),
    "bytes": (b"xy", TypeError, "`{}` must be an array of real numbers; got bytes"),
    "dict": ({"a": 1.0}, TypeError, "`{}` must be an array of real numbers; got dtype object"),
    "object array": (np.array([1.0, None]), TypeError,
                     "`{}` must be an array of real numbers; got dtype object"),
    "str array": (np.array(["a", "b"]), TypeError,
                  "`{}` must be an array of real numbers; got dtype <U1"),
    "datetime array": (np.array([1, 2], "datetime64[s]"), TypeError,
                       r"`{}` must be an array of real numbers; got dtype datetime64\[s\]"),
    "ragged list": ([[1.0, 2.0], [3.0]], ValueError,
                    "`{}` must be a rectangular array of real numbers"),
    "complex": (np.array([1.0 + 1.0j, 2.0]), TypeError,
                "`{}` must be real; got complex dtype complex128"),
}  # fmt: skip


@pytest.mark.parametrize("bad", list(REJECTED))
@pytest.mark.parametrize("slot", list(SLOTS))
def test_rejected(backend, slot, bad):
    call, name, _, _ = SLOTS[slot]
    value, exc, message = REJECTED[bad]
    if value is None and slot in _OPTIONAL:
        call(value)  # the default: no weights / the identity
        return
    with pytest.raises(exc, match=message.format(name)):
        call(value)


_OPTIONAL = {"logsumexp(b)", "weighted_least_squares(W)"}


# ---------------------------------------------------------------------------
# Layouts and dtypes every array argument accepts
# ---------------------------------------------------------------------------


def _memmap(path, a, mode):
    m = np.memmap(path, dtype=a.dtype, mode="w+", shape=a.shape)
    m[...] = a
    m.flush()
    del m
    return np.memmap(path, dtype=a.dtype, mode=mode, shape=a.shape)


def _unaligned(a):
    buf = np.zeros(a.nbytes + 1, np.uint8)
    out = buf[1:].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def _unit_diagonal(a, dtype):
    """The identity for a matrix (keeps int and bool matrices well posed), else 0."""
    return np.eye(2, dtype=dtype) if a.ndim == 2 else np.zeros((), dtype)


# name -> the variant made from the good value (and a scratch file path)
ACCEPTED = {
    "read-only": lambda a, p: _read_only(a),
    "byte-swapped": lambda a, p: a.astype(a.dtype.newbyteorder(">")),
    "memmap": lambda a, p: _memmap(p, a, "r+"),
    "read-only memmap": lambda a, p: _memmap(p, a, "r"),
    "strided view": lambda a, p: np.repeat(a, 2, axis=-1)[..., ::2],
    "negative strides": lambda a, p: np.flip(a).copy()[(slice(None, None, -1),) * a.ndim],
    "Fortran order": lambda a, p: np.asfortranarray(a),
    "unaligned": lambda a, p: _unaligned(a),
    "int": lambda a, p: np.round(a * 4).astype(np.int64) + _unit_diagonal(a, int),
    "bool": lambda a, p: (a > 0.75) | _unit_diagonal(a, bool),
    "float16": lambda a, p: a.astype(np.float16),
    "long double": lambda a, p: a.astype(np.longdouble),
    "list": lambda a, p: a.tolist(),
}


@pytest.mark.parametrize("variant", list(ACCEPTED))
@pytest.mark.parametrize("slot", list(SLOTS))
def test_accepted(backend, slot, variant, tmp_path):
    # The result equals the result on the same values as a C-ordered float64
    # array (int and bool matrices get a unit diagonal, to stay well posed).
    call, name, good, _ = SLOTS[slot]
    v = ACCEPTED[variant](good, tmp_path / "a.dat")
    plain = np.array(v, dtype=np.float64, order="C")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # bool data may make a NaN derivative
        got = np.asarray(call(v))
        want = np.asarray(call(plain))
    assert got.shape == want.shape
    rtol = 2e-3 if variant == "float16" else 1e-13
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=rtol, atol=1e-13)
    if variant == "long double":
        assert got.dtype == np.float64  # documented: long double is computed as float64


# ---------------------------------------------------------------------------
# Non-finite points and directions
# ---------------------------------------------------------------------------

NONFINITE = {
    "nan": np.array([np.nan, 1.0]),
    "inf": np.array([1.0, np.inf]),
    "-inf": np.array([-np.inf, 1.0]),
}


@pytest.mark.parametrize("value", list(NONFINITE))
@pytest.mark.parametrize("slot", [s for s in SLOTS if SLOTS[s][3] != "data"])
def test_nonfinite_point_or_direction(backend, slot, value):
    call, name, _, _ = SLOTS[slot]
    with pytest.raises(ValueError, match=f"`{name}` must be finite"):
        call(NONFINITE[value])


# ---------------------------------------------------------------------------
# Shapes: 0-d, empty, wrong ndim or length
# ---------------------------------------------------------------------------

_QF_A = r"`A` must have shape \(n, n\) or \(\.\.\., n, n\); got shape "
_PHI = r"`Phi` must be a 2-d array of shape \(N, D\); got shape "
_V = r"`v` must have the shape of `x` \(2,\); got shape "

# (slot, the value) -> None (accepted: the result has `shape`) or (exception, message)
SHAPES = {
    ("gradient(x)", "0-d"): ((), None),
    ("gradient(x)", "empty"): ((0,), None),
    ("gradient(x)", "3-d"): ((2, 2, 2), None),
    ("jacobian(x)", "empty"): ((0, 0), None),
    ("hessian(x)", "0-d"): ((), None),
    ("hessian(x)", "empty"): ((0, 0), None),
    ("derivative(x)", "3-d"): ((2, 2, 2), None),
    ("directional_derivative(v)", "0-d"): (ValueError, _V + r"\(\)"),
    ("directional_derivative(v)", "empty"): (ValueError, _V + r"\(0,\)"),
    ("jvp(v)", "3-d"): (ValueError, _V + r"\(2, 2, 2\)"),
    ("hvp(v)", "empty"): (ValueError, _V + r"\(0,\)"),
    ("logsumexp(a)", "empty"): ((), None),
    ("logsumexp(b)", "empty"): (ValueError, r"`b` must broadcast against `a`; got shapes"),
    ("softmax(x)", "empty"): ((0,), None),
    ("softmax(x)", "0-d"): ((), None),
    ("softmax_jacobian(x)", "0-d"): (
        ValueError,
        r"`axis` -1 is out of bounds for an array of dimension 0",
    ),
    ("softmax_jacobian(x)", "3-d"): ((2, 2, 2, 2), None),
    ("quadratic_form(A)", "0-d"): (ValueError, _QF_A + r"\(\)"),
    ("quadratic_form(A)", "vector"): (ValueError, _QF_A + r"\(2,\)"),
    ("quadratic_form(A)", "3-d"): ((2,), None),
    ("quadratic_form(X)", "0-d"): (ValueError, r"`X` must have shape \(\.\.\., 2\) to match `A`"),
    ("quadratic_form(X)", "empty"): (ValueError, r"`X` must have shape \(\.\.\., 2\)"),
    ("quadratic_form_hessian(A)", "vector"): (ValueError, _QF_A + r"\(2,\)"),
    ("least_squares(Phi)", "vector"): (ValueError, _PHI + r"\(2,\)"),
    ("least_squares(Phi)", "3-d"): (ValueError, _PHI + r"\(2, 2, 2\)"),
    ("least_squares(y)", "0-d"): (ValueError, r"`y` must have shape \(N,\) = \(2,\)"),
    ("least_squares(theta)", "empty"): (ValueError, r"`theta` must have shape \(D,\)"),
    ("least_squares(theta)", "3-d"): ((2, 2, 2), None),
    ("weighted_least_squares(x)", "3-d"): (ValueError, r"`x` must be 1-d, shape \(m,\)"),
    ("weighted_least_squares(A)", "vector"): (ValueError, r"`A` must have shape \(m, k\)"),
    ("weighted_least_squares(s)", "0-d"): (ValueError, r"`s` must have shape \(k,\)"),
    ("weighted_least_squares(W)", "vector"): (ValueError, r"`W` must have shape \(m, m\)"),
    ("normal_equations(Phi)", "0-d"): (ValueError, _PHI + r"\(\)"),
    ("normal_equations(y)", "3-d"): (ValueError, r"`y` must have shape \(N,\) or \(N, K\)"),
}
_SHAPE_VALUES = {
    "0-d": np.float64(0.75),
    "empty": np.empty(0),
    "vector": X,
    "3-d": np.arange(8.0).reshape(2, 2, 2) / 8 + 0.25,
}


@pytest.mark.parametrize(("slot", "what"), list(SHAPES))
def test_shapes(backend, slot, what):
    call = SLOTS[slot][0]
    want, message = SHAPES[slot, what]
    if message is None:
        assert np.shape(call(_SHAPE_VALUES[what])) == want
    else:
        with pytest.raises(want, match=message):
            call(_SHAPE_VALUES[what])


# ---------------------------------------------------------------------------
# Options: keyword arguments and configuration
# ---------------------------------------------------------------------------

_FD = {
    "gradient": lambda **k: vcalc.gradient(_sq, X, **k),
    "jacobian": lambda **k: vcalc.jacobian(_vf, X, **k),
    "hessian": lambda **k: vcalc.hessian(_sq, X, **k),
    "derivative": lambda **k: vcalc.derivative(np.sin, X, **k),
    "directional_derivative": lambda **k: vcalc.directional_derivative(_sq, X, X, **k),
    "jvp": lambda **k: vcalc.jvp(_vf, X, X, **k),
    "check_grad": lambda **k: vcalc.check_grad(_sq, _sq_grad, X, **k),
    "taylor": lambda **k: vcalc.taylor(_sq, X, **k),
}
_NOT_INT = [None, "2", 2.5, True, float("nan"), [2], np.ones(3), (2,)]
_NOT_STR = [None, 1, True, np.ones(3), ["central"], b"central"]
_NOT_BOOL = [None, 0, 1, "yes", 2.5, np.ones(3)]
_STEP_BAD_VALUE = [-1.0, 0.0, float("nan"), float("inf")]

OPTIONS: dict[str, tuple] = {}
for _fn, _call in _FD.items():
    for _i, _v in enumerate(_NOT_STR):
        OPTIONS[f"{_fn} method type {_i}"] = (
            _call,
            {"method": _v},
            TypeError,
            "`method` must be a str",
        )
    OPTIONS[f"{_fn} method value"] = (
        _call,
        {"method": "centre"},
        ValueError,
        "`method` must be one of 'forward', 'backward'",
    )
    for _v in ("a", [1, 2], np.ones(3), {"a": 1}):
        OPTIONS[f"{_fn} args {type(_v).__name__}"] = (
            _call,
            {"args": _v},
            TypeError,
            "`args` must be a tuple|positional arg",
        )
    if _fn in ("taylor", "check_grad"):
        continue
    for _i, _v in enumerate(_NOT_INT):
        OPTIONS[f"{_fn} order type {_i}"] = (
            _call,
            {"order": _v},
            TypeError,
            "`order` must be an int",
        )
    for _v in (-1, 0, 3, 10**30):
        OPTIONS[f"{_fn} order value {_v}"] = (
            _call,
            {"order": _v},
            ValueError,
            "`order` must be one of 2, 4, 6, 8",
        )
    for _v in _STEP_BAD_VALUE:
        OPTIONS[f"{_fn} step {_v}"] = (
            _call,
            {"step": _v},
            ValueError,
            "`step` must be finite and > 0",
        )
    OPTIONS[f"{_fn} step str"] = (
        _call,
        {"step": "h"},
        TypeError,
        "`step` must be an array of real numbers",
    )
    OPTIONS[f"{_fn} step bool"] = (_call, {"step": True}, TypeError, "`step` must be a positive")
for _fn in ("gradient", "jacobian", "hessian"):
    for _v in (1.0, "box", np.ones(3), (0.0, 1.0, 2.0), (0.0,)):
        OPTIONS[f"{_fn} bounds {_v!r}"[:40]] = (
            _FD[_fn],
            {"bounds": _v},
            TypeError,
            r"`bounds` must be a pair \(lb, ub\)",
        )
    OPTIONS[f"{_fn} bounds exclude x"] = (
        _FD[_fn],
        {"bounds": (1.0, 2.0)},
        ValueError,
        "`x` must lie within `bounds`",
    )
    OPTIONS[f"{_fn} bounds nan"] = (
        _FD[_fn],
        {"bounds": (np.nan, 2.0)},
        ValueError,
        "`bounds`: the lower bound contains NaN",
    )
    OPTIONS[f"{_fn} step shape"] = (
        _FD[_fn],
        {"step": np.ones(3)},
        ValueError,
        r"`step` must be a scalar or broadcast to the shape of `x`",
    )
    for _flag in ("vectorized", "full_output"):
        for _i, _v in enumerate(_NOT_BOOL):
            OPTIONS[f"{_fn} {_flag} {_i}"] = (
                _FD[_fn],
                {_flag: _v},
                TypeError,
                f"`{_flag}` must be True or False",
            )
for _i, _v in enumerate([0, 3, 1.0, "1", None]):
    OPTIONS[f"derivative n {_i}"] = (
        _FD["derivative"],
        {"n": _v},
        ValueError if type(_v) is int else TypeError,
        "`n` must be",
    )
for _tol in ("rtol", "atol"):
    for _v in (-1.0, float("nan"), float("inf")):
        OPTIONS[f"check_grad {_tol} {_v}"] = (
            _FD["check_grad"],
            {_tol: _v},
            ValueError,
            f"`{_tol}` must be finite and >= 0",
        )
    OPTIONS[f"check_grad {_tol} str"] = (
        _FD["check_grad"],
        {_tol: "1e-6"},
        TypeError,
        f"`{_tol}` must be a real number",
    )
OPTIONS["hessian grad not callable"] = (
    _FD["hessian"],
    {"grad": 1.0},
    TypeError,
    "`grad` must be callable",
)
OPTIONS["hvp grad not callable"] = (
    lambda **k: vcalc.hvp(_sq, X, X, **k),
    {"grad": "g"},
    TypeError,
    "`grad` must be callable",
)
OPTIONS["hvp step"] = (
    lambda **k: vcalc.hvp(_sq, X, X, **k),
    {"step": -1.0},
    ValueError,
    "`step` must be finite and > 0",
)
OPTIONS["taylor order"] = (_FD["taylor"], {"order": 3}, ValueError, "`order` must be 1 or 2")
OPTIONS["taylor order type"] = (_FD["taylor"], {"order": 1.0}, TypeError, "`order` must be an int")

_RED = {n: getattr(vcalc, n) for n in ("logsumexp", "softmax", "log_softmax", "softmax_jacobian")}
for _fn, _f in _RED.items():
    _call = (lambda f: lambda **k: f(np.ones((2, 3)), **k))(_f)
    for _v in (1.5, "0", True, np.int64(1) + 0.5, [0]):
        OPTIONS[f"{_fn} axis type {_v!r}"] = (_call, {"axis": _v}, TypeError, "`axis` must be")
    for _v in (2, -3, 10**30):
        OPTIONS[f"{_fn} axis range {_v}"] = (
            _call,
            {"axis": _v},
            ValueError,
            f"`axis` {_v} is out of bounds",
        )
    if _fn != "softmax_jacobian":
        OPTIONS[f"{_fn} axis repeated"] = (
            _call,
            {"axis": (1, -1)},
            ValueError,
            "`axis` must not repeat an axis",
        )
OPTIONS["softmax_jacobian axis tuple"] = (
    lambda **k: vcalc.softmax_jacobian(X, **k),
    {"axis": (0,)},
    TypeError,
    "`axis` must be an int",
)
for _flag in ("keepdims", "return_sign"):
    for _i, _v in enumerate(_NOT_BOOL):
        OPTIONS[f"logsumexp {_flag} {_i}"] = (
            lambda **k: vcalc.logsumexp(X, **k),
            {_flag: _v},
            TypeError,
            f"`{_flag}` must be True or False",
        )
_LSQ = {
    "least_squares": lambda **k: vcalc.least_squares(M, X, X, **k),
    "normal_equations": lambda **k: vcalc.normal_equations(M, X, **k),
}
for _fn, _call in _LSQ.items():
    for _v in (-1.0, float("nan"), float("inf")):
        OPTIONS[f"{_fn} ridge {_v}"] = (
            _call,
            {"ridge": _v},
            ValueError,
            "`ridge` must be finite and >= 0",
        )
    for _v in (None, "0", True, np.ones(2)):
        OPTIONS[f"{_fn} ridge {type(_v).__name__}"] = (
            _call,
            {"ridge": _v},
            TypeError,
            "`ridge` must be a real number",
        )
for _i, _v in enumerate(_NOT_BOOL):
    OPTIONS[f"least_squares mean {_i}"] = (
        _LSQ["least_squares"],
        {"mean": _v},
        TypeError,
        "`mean` must be True or False",
    )
    OPTIONS[f"quadratic_form_grad symmetric {_i}"] = (
        lambda **k: vcalc.quadratic_form_grad(M, X, **k),
        {"symmetric": _v},
        TypeError,
        "`symmetric` must be True or False",
    )


@pytest.mark.parametrize("key", list(OPTIONS))
def test_options(backend, key):
    call, kwargs, exc, message = OPTIONS[key]
    with pytest.raises(exc, match=message):
        call(**kwargs)


CONFIG = {
    "set_backend type": (vcalc.set_backend, 1, TypeError, "`name` must be a str"),
    "set_backend value": (vcalc.set_backend, "c", ValueError, "`name` must be one of"),
    "use_backend type": (
        lambda v: vcalc.use_backend(v).__enter__(),
        None,
        TypeError,
        "`name` must be a str",
    ),
    "use_backend value": (
        lambda v: vcalc.use_backend(v).__enter__(),
        "torch",
        ValueError,
        "`name` must be one of",
    ),
}
for _fn, _f in [
    ("set_num_threads", vcalc.set_num_threads),
    ("num_threads", lambda v: vcalc.num_threads(v).__enter__()),
]:
    for _v in (0, -1):
        CONFIG[f"{_fn} {_v}"] = (_f, _v, ValueError, "`n` must be a positive int")
    for _v in (None, 2.0, "2", True, float("nan")):
        CONFIG[f"{_fn} {_v!r}"] = (_f, _v, TypeError, "`n` must be a positive int")


@pytest.mark.parametrize("key", list(CONFIG))
def test_configuration(key):
    call, value, exc, message = CONFIG[key]
    before = (vcalc.get_backend(), vcalc.get_num_threads())
    with pytest.raises(exc, match=message):
        call(value)
    assert (vcalc.get_backend(), vcalc.get_num_threads()) == before  # nothing half-set


def test_more_threads_than_cpus_are_accepted_and_capped():
    # Asked-for counts above the CPU count are kept (get_num_threads reports
    # them) and capped where kernels run: the result is the serial one.
    a = np.random.default_rng(0).standard_normal((300, 300))
    with vcalc.num_threads(10**6):
        assert vcalc.get_num_threads() == 10**6
        got = vcalc.softmax(a, axis=1)
    np.testing.assert_array_equal(got, vcalc.softmax(a, axis=1))


# ---------------------------------------------------------------------------
# What f (or `grad`) returns
# ---------------------------------------------------------------------------

_F_CALLS = {
    "gradient": lambda f: vcalc.gradient(f, X),
    "gradient vectorized": lambda f: vcalc.gradient(
        lambda P: [f(p) for p in P], X, vectorized=True
    ),
    "gradient richardson": lambda f: vcalc.gradient(f, X, method="richardson"),
    "gradient forward": lambda f: vcalc.gradient(f, X, method="forward"),
    "jacobian": lambda f: vcalc.jacobian(f, X),
    "hessian": lambda f: vcalc.hessian(f, X),
    "hessian order 4": lambda f: vcalc.hessian(f, X, order=4),
    "hessian richardson": lambda f: vcalc.hessian(f, X, method="richardson"),
    "derivative": lambda f: vcalc.derivative(lambda z: np.ones_like(z) * f(z), X),
    "directional_derivative": lambda f: vcalc.directional_derivative(f, X, X),
    "directional_derivative richardson": lambda f: vcalc.directional_derivative(
        f, X, X, method="richardson"
    ),
    "jvp": lambda f: vcalc.jvp(f, X, X),
    "hvp": lambda f: vcalc.hvp(f, X, X),
    "check_grad": lambda f: vcalc.check_grad(f, _sq_grad, X),
    "taylor": lambda f: vcalc.taylor(f, X),
}

F_RETURNS = {
    "None": (lambda x: None, TypeError, "`f` must return real numbers; got NoneType"),
    "str": (lambda x: "1.0", TypeError, "`f` must return real numbers; got str"),
    "dict": (lambda x: {"v": 1.0}, TypeError, "`f` must return real numbers; got dict"),
    "object": (lambda x: object(), TypeError, "`f` must return real numbers; got object"),
    "str array": (lambda x: np.array(["a"]), TypeError, "`f` must return real numbers"),
    "ragged": (
        lambda x: [[1.0], [1.0, 2.0]],
        ValueError,
        "`f` must return a number or a rectangular array of numbers",
    ),
    "complex": (lambda x: 1.0 + 1.0j, TypeError, "`f` returned complex values"),
}
_ELEMENTWISE_ONLY = {"derivative"}  # np.ones_like(z) * f(z): only a number makes sense


@pytest.mark.parametrize(
    ("api", "ret"),
    [(a, r) for a in _F_CALLS for r in F_RETURNS if a not in _ELEMENTWISE_ONLY or r == "complex"],
)
def test_f_returns_bad_value(backend, api, ret):
    f, exc, message = F_RETURNS[ret]
    if api == "gradient vectorized" and ret in ("ragged", "str array"):
        message = "`f` must return|a vectorized `f` must return an array with one entry"
    with pytest.raises(exc, match=message):
        _F_CALLS[api](f)


def _nan_beyond(x):
    """NaN at every point whose first coordinate is moved away from x[0] = 0.5."""
    x = np.asarray(x)
    return np.nan if x[0] != 0.5 else float(np.sum(x * x))


def _inf_everywhere(x):
    return np.inf


@pytest.mark.parametrize("api", [a for a in _F_CALLS if a not in _ELEMENTWISE_ONLY])
@pytest.mark.parametrize("f", [_nan_beyond, _inf_everywhere], ids=["nan at x0 +- h", "inf"])
def test_f_returns_nonfinite_gives_nan_and_one_named_warning(backend, api, f):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _F_CALLS[api](f)
    mine = [w for w in caught if str(w.message).startswith("vcalc.")]
    assert len(mine) == len(caught) >= 1, [str(w.message) for w in caught]  # no NumPy warnings
    assert all(issubclass(w.category, RuntimeWarning) for w in mine)
    assert all(w.filename == __file__ for w in mine)  # attributed to the caller's line
    first = getattr(out, "grad", getattr(out, "numeric", out))
    first = np.asarray(first)
    assert not np.all(np.isfinite(first)), "a non-finite f must give a non-finite derivative"
    index = str(tuple(int(i) for i in np.argwhere(~np.isfinite(first))[0])) if first.ndim else "()"
    assert re.search(rf"is NaN or inf at index {re.escape(index)}", str(mine[0].message))
    if f is _nan_beyond and api.startswith("gradient"):
        # Only coordinate 0 is affected: coordinate 1's derivative is still right.
        assert np.isnan(first[0]) and first[1] == pytest.approx(3.0, rel=1e-6)


def test_derivative_f_not_elementwise_is_named(backend):
    with pytest.raises(ValueError, match=r"`f` must be elementwise for derivative: .* \(3,\)"):
        vcalc.derivative(lambda z: np.zeros(3), X)
    with pytest.raises(ValueError, match=r"`f` must be elementwise for derivative"):
        vcalc.derivative(lambda z: np.zeros(3), X, method="richardson")


def test_check_grad_ragged_grad_is_named(backend):
    with pytest.raises(ValueError, match="`grad` must return a number or a rectangular array"):
        vcalc.check_grad(_sq, lambda z: [[1.0], [1.0, 2.0]], X)


def test_issue_hessian_array_method_or_order_gave_numpys_truth_value_error(backend):
    # The Hessian's fast-path test compared `method == "central"` before checking
    # the type, so an array raised "truth value of an array is ambiguous".
    with pytest.raises(TypeError, match="`method` must be a str"):
        vcalc.hessian(_sq, X, method=np.array(["central", "central"]))
    with pytest.raises(TypeError, match="`order` must be an int"):
        vcalc.hessian(_sq, X, order=np.array([2, 2]))


def test_issue_directional_richardson_returned_0_when_f_was_nan_off_x(backend):
    # The step search went on until x + t*v rounded back to x, where every
    # point gave f(x) and the difference was exactly 0 with zero error.
    with pytest.warns(RuntimeWarning, match="vcalc.directional_derivative"):
        got = vcalc.directional_derivative(_nan_beyond, X, X, method="richardson")
    assert np.isnan(got)


# ---------------------------------------------------------------------------
# Regressions found by the atheris campaign (fuzz/README.md)
# ---------------------------------------------------------------------------


def test_issue_vectorized_gradient_of_a_reversed_view_read_the_wrong_memory(backend):
    # The vectorized fast path took x.reshape(-1) as contiguous; for a reversed
    # view that is a strided view, and the kernel read past it: [10, 0, 0, 0, 0].
    x = np.arange(1.0, 6.0)[::-1]
    f = lambda P: np.sum(P**2, axis=-1)  # noqa: E731
    want = 2 * np.ascontiguousarray(x)
    np.testing.assert_allclose(vcalc.gradient(f, x, vectorized=True), want, rtol=1e-8)
    np.testing.assert_allclose(vcalc.gradient(f, x), want, rtol=1e-8)
    xm = np.arange(1.0, 7.0).reshape(2, 3)[:, ::-1]
    J = vcalc.jacobian(lambda P: P**2, xm, vectorized=True)
    np.testing.assert_allclose(np.einsum("ijij->ij", J), 2 * xm, rtol=1e-8)


@pytest.mark.parametrize("v", [5e-324, 1e-310, 1e300])
def test_issue_jvp_with_a_subnormal_direction_overflowed_the_step(backend, v):
    # The default step ~1e-5 / max|v| was inf for v = 5e-324 (OverflowError).
    with np.errstate(over="ignore", under="ignore"):
        want = np.cos(1.0) * v
    assert vcalc.jvp(np.sin, 1.0, v) == pytest.approx(want, rel=1e-6)
    if v < 1e-320:
        return  # X * v would itself be rounded to a multiple of 5e-324
    got = vcalc.directional_derivative(_sq, X, X * v)
    assert got == pytest.approx(2 * float(X @ X) * v, rel=1e-6)
    np.testing.assert_allclose(vcalc.hvp(_sq, X, X * v), 2 * X * v, rtol=1e-5)


def test_issue_normal_equations_hung_on_non_finite_data(backend):
    # LAPACK's least-squares solvers never returned on inf (Cython backend);
    # now a ValueError names the argument and the first bad entry.
    Phi = np.ones((5, 3))
    Phi[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"`Phi` must be finite .* at index \(0, 0\)"):
        vcalc.normal_equations(Phi, np.ones(5))
    with pytest.raises(ValueError, match=r"`y` must be finite"):
        vcalc.normal_equations(np.eye(2), [np.nan, 1.0])


def test_issue_reference_normal_equations_hung_when_phi_t_phi_overflowed(backend):
    # Finite Phi of 1e308: the reference formed Phi^T Phi = inf and pinv hung.
    got = vcalc.normal_equations([[1e308, -1e308, 0.0]], [1.0])
    np.testing.assert_allclose(got, [5e-309, -5e-309, 0.0], rtol=1e-12, atol=0)


def test_issue_reference_normal_equations_of_empty_phi_with_tiny_ridge_was_nan(backend):
    got = vcalc.normal_equations(np.zeros((0, 2)), np.zeros(0), ridge=5e-324)
    np.testing.assert_array_equal(got, [0.0, 0.0])


def test_issue_quadratic_form_overflowed_forming_a_plus_a_transpose(backend):
    # |A| = 1.5e308: A + A^T is inf although x^T A x and (A + A^T) x are not.
    A = np.full((3, 3), -1.5e308)
    x = np.full(3, 1e-10)
    assert vcalc.quadratic_form(A, np.zeros(3)) == 0.0
    assert vcalc.quadratic_form(A, x) == pytest.approx(-1.35e289, rel=1e-12)
    np.testing.assert_allclose(vcalc.quadratic_form_grad(A, x), np.full(3, -9e298), rtol=1e-12)
    v, g = vcalc.quadratic_form_value_and_grad(A, x)
    assert v == pytest.approx(-1.35e289, rel=1e-12)
    np.testing.assert_allclose(g, np.full(3, -9e298), rtol=1e-12)


def test_issue_quadratic_form_small_with_no_output_wrote_through_null():
    from vcalc import _kernels

    # Documented as "either output may be None"; with both None it segfaulted.
    _kernels.quadratic_form_small(np.eye(3), np.ones((2, 3)), None, None, 1)
    with pytest.raises(ValueError, match="grad_out must be"):
        _kernels.quadratic_form_small(np.eye(3), np.ones((2, 3)), None, np.empty((1, 3)), 1)


@pytest.mark.parametrize("which", ["least_squares", "weighted_least_squares"])
def test_issue_least_squares_passed_unaligned_arrays_to_the_kernels(backend, which):
    # Found by UBSan (tools/asan.sh): C-contiguous but unaligned Phi, y, x, A, W
    # went to the kernels as they were (misaligned double loads, undefined in C).
    def unaligned(a):
        buf = np.zeros(a.nbytes + 1, np.uint8)
        out = buf[1:].view(a.dtype).reshape(a.shape)
        out[...] = a
        return out

    rng = np.random.default_rng(4)
    if which == "least_squares":
        Phi, y, theta = rng.standard_normal((5, 3)), rng.standard_normal(5), rng.standard_normal(3)
        got = vcalc.least_squares(unaligned(Phi), unaligned(y), theta)
        want = vcalc.least_squares(Phi, y, theta)
    else:
        x, A, s = rng.standard_normal(4), rng.standard_normal((4, 2)), rng.standard_normal(2)
        W = np.eye(4) + 0.1
        got = vcalc.weighted_least_squares(unaligned(x), unaligned(A), s, unaligned(W))
        want = vcalc.weighted_least_squares(x, A, s, W)
    for g, w in zip(got, want, strict=True):
        # BLAS (the NumPy backend) may sum in another order for unaligned data.
        np.testing.assert_allclose(g, w, rtol=1e-14, atol=0)
