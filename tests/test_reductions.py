"""Stable reductions against scipy.special, extended precision and DESIGN's edge cases."""

import warnings

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import vcalc
from vcalc import reference

EPS = {np.float64: np.finfo(np.float64).eps, np.float32: np.finfo(np.float32).eps}
RTOL = {np.float64: 1e-13, np.float32: 2e-6}

SHAPES_AXES = [
    ((9,), None),
    ((9,), 0),
    ((4, 7), None),
    ((4, 7), 1),
    ((4, 7), 0),
    ((4, 7), -1),
    ((2, 3, 5), (0, 2)),
    ((2, 3, 5), (-1, -2)),
    ((3, 300), 1),
]


def scipy_call(name, *args, **kwargs):
    """SciPy's result, with its RuntimeWarnings on extreme input silenced."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return getattr(sp, name)(*args, **kwargs)


def slice_scale(a, axis):
    """max(1, max |a|) over each slice, keepdims: the absolute size of rounding in x - max."""
    return np.maximum(1.0, np.max(np.abs(a), axis=axis, keepdims=True))


# ---------------------------------------------------------------------------
# Against scipy.special, on finite input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("shape", "axis"), SHAPES_AXES)
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_logsumexp_matches_scipy(backend, rng, dtype, shape, axis, scale):
    a = (rng.standard_normal(shape) * scale).astype(dtype)
    got = vcalc.logsumexp(a, axis=axis)
    want = scipy_call("logsumexp", a, axis=axis)
    assert np.asarray(got).dtype == np.asarray(want).dtype == dtype
    assert np.shape(got) == np.shape(want)
    # Both take out the maximum exactly; results near 0 may differ by a few
    # ulp of the slice's largest entry (the two sum in different orders).
    atol = 8 * EPS[dtype] * np.max(slice_scale(a, axis))
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=atol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("shape", "axis"), SHAPES_AXES)
def test_logsumexp_weighted_matches_scipy(backend, rng, dtype, shape, axis):
    a = (rng.standard_normal(shape) * 3).astype(dtype)
    b = rng.uniform(0.0, 2.0, shape).astype(dtype)
    b[rng.random(shape) < 0.2] = 0.0
    got = vcalc.logsumexp(a, axis=axis, b=b)
    want = scipy_call("logsumexp", a, axis=axis, b=b)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=8 * EPS[dtype] * 10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logsumexp_signed_weights_match_scipy(backend, rng, dtype):
    a = rng.standard_normal((50, 6)).astype(dtype)
    b = rng.uniform(-1.0, 1.0, (50, 6)).astype(dtype)
    got, sgn = vcalc.logsumexp(a, axis=1, b=b, return_sign=True)
    want, want_sgn = scipy_call("logsumexp", a, axis=1, b=b, return_sign=True)
    np.testing.assert_array_equal(sgn, want_sgn)
    assert sgn.dtype == want_sgn.dtype == dtype
    # |sum| can be small through cancellation of the weighted terms: errors
    # are bounded by eps * sum|b exp(a - m)| / |sum|, not by eps alone.
    m = a.max(axis=1).astype(np.float64)
    cond = np.sum(np.abs(b) * np.exp(a - m[:, None]), axis=1) / np.exp(want.astype(np.float64) - m)
    err = np.abs(got.astype(np.float64) - want)
    assert np.all(err <= RTOL[dtype] * np.abs(want) + 16 * EPS[dtype] * (cond + np.abs(m)))
    # Without return_sign a negative total is NaN, as in SciPy.
    plain = vcalc.logsumexp(a, axis=1, b=b)
    np.testing.assert_array_equal(np.isnan(plain), want_sgn < 0)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("shape", "axis"), SHAPES_AXES)
def test_softmax_family_matches_scipy(backend, rng, name, dtype, shape, axis):
    a = (rng.standard_normal(shape) * 4).astype(dtype)
    got = getattr(vcalc, name)(a, axis=axis)
    want = scipy_call(name, a, axis=axis)
    assert got.dtype == want.dtype == dtype
    assert got.shape == want.shape == a.shape
    if name == "softmax":
        np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=0)
    else:
        # SciPy's log(sum) carries an absolute error of about eps at the
        # slice maximum, where log_softmax is near 0; vcalc's log1p does not.
        atol = 8 * EPS[dtype] * slice_scale(a, axis)
        np.testing.assert_allclose(
            got, want, rtol=RTOL[dtype], atol=np.broadcast_to(atol, a.shape).max()
        )


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(("shape", "axis"), SHAPES_AXES)
def test_logsumexp_keepdims_shape_matches_numpy(backend, rng, shape, axis, keepdims):
    a = rng.standard_normal(shape)
    got = vcalc.logsumexp(a, axis=axis, keepdims=keepdims)
    assert np.shape(got) == np.shape(np.sum(a, axis=axis, keepdims=keepdims))
    if not keepdims and np.ndim(got) == 0:
        assert isinstance(got, np.float64)


def test_logsumexp_of_scalar_like_scipy(backend):
    assert vcalc.logsumexp(3.0) == 3.0
    assert vcalc.logsumexp(np.float32(3.0), axis=0) == np.float32(3.0)
    assert (
        vcalc.logsumexp(2.0, keepdims=True).shape
        == scipy_call("logsumexp", 2.0, keepdims=True).shape
    )


def test_weights_broadcast_against_data_like_scipy(backend, rng):
    a = rng.standard_normal(5)
    b = rng.uniform(0.5, 2.0, (3, 5))
    got = vcalc.logsumexp(a, axis=-1, b=b)
    assert got.shape == (3,)
    np.testing.assert_allclose(got, scipy_call("logsumexp", a, axis=-1, b=b), rtol=1e-13)
    got = vcalc.logsumexp(rng.standard_normal((4, 5)), axis=0, b=np.array([2.0]))
    assert got.shape == (5,)


# ---------------------------------------------------------------------------
# Accuracy against an extended-precision reference
# ---------------------------------------------------------------------------


def _extended(a, axis):
    """logsumexp, softmax, log_softmax of 2-d `a` along axis 1, in long double.

    x - m is exact in long double for double data of moderate range; the sum
    is split into its largest term (1) and the rest so that log1p keeps the
    reference exact near 0 as well.
    """
    assert axis == 1
    x = np.asarray(a, dtype=np.longdouble)
    m = np.max(x, axis=1, keepdims=True)
    e = np.exp(x - m)
    first = np.zeros(x.shape, bool)
    first[np.arange(x.shape[0]), np.argmax(x, axis=1)] = True
    rest = np.sum(np.where(first, 0, e), axis=1, keepdims=True)
    log_s = np.log1p(rest)
    return m + log_s, e / (1 + rest), (x - m) - log_s


@pytest.mark.skipif(np.finfo(np.longdouble).nmant < 60, reason="needs an extended long double")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reductions_within_few_ulp_of_extended_precision(backend, rng, dtype):
    a = (rng.standard_normal((200, 40)) * 5).astype(dtype)
    lse, sm, lsm = _extended(a, 1)
    eps = EPS[dtype]
    # A few ulp of the correctly rounded results, and for log_softmax the
    # condition of (x - m) - log(sum) where the two terms nearly cancel.
    got = vcalc.logsumexp(a, axis=1)
    ulp = np.abs((got - lse[:, 0]) / lse[:, 0]).astype(np.float64) / eps
    assert ulp.max() <= 2, ulp.max()
    got = vcalc.softmax(a, axis=1)
    ulp = np.abs((got - sm) / sm).astype(np.float64) / eps
    assert ulp.max() <= 4, ulp.max()
    got = vcalc.log_softmax(a, axis=1)
    cond = (np.abs(lsm) + np.abs(lse - a.max(axis=1, keepdims=True))) / np.abs(lsm)
    ulp = np.abs((got - lsm) / lsm).astype(np.float64) / eps
    assert np.all(ulp <= 2 * cond.astype(np.float64)), (ulp / cond.astype(np.float64)).max()


def test_log1p_keeps_precision_near_zero(backend):
    # log(1 + e^-40) = 4.248354255291589e-18: plain log(sum) would round to 0.
    want = np.log1p(np.exp(-40.0))
    assert vcalc.logsumexp([0.0, -40.0]) == pytest.approx(want, rel=1e-15)
    assert vcalc.log_softmax([0.0, -40.0])[0] == pytest.approx(-want, rel=1e-15)
    J = vcalc.softmax_jacobian([0.0, -40.0])
    s1 = np.exp(-40.0) / (1 + np.exp(-40.0))
    np.testing.assert_allclose(
        J, [[s1 * (1 - s1), -s1 * (1 - s1)], [-s1 * (1 - s1), s1 * (1 - s1)]], rtol=1e-14
    )


# ---------------------------------------------------------------------------
# Edge cases settled by DESIGN.md
# ---------------------------------------------------------------------------


def test_entries_of_1e308_give_correct_values_without_warning(backend):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert vcalc.logsumexp([1e308, 1e308]) == 1e308  # 1e308 + log 2 rounds to 1e308
        assert vcalc.logsumexp([-1e308, 1e308]) == 1e308
        assert vcalc.logsumexp([-1e308, -1e308]) == -1e308
        np.testing.assert_array_equal(vcalc.softmax([-1e308, 1e308]), [0.0, 1.0])
        np.testing.assert_array_equal(vcalc.softmax([1e308, 1e308]), [0.5, 0.5])
        np.testing.assert_array_equal(vcalc.log_softmax([1e308, -1e308]), [0.0, -np.inf])
        res, sgn = vcalc.logsumexp([1e308, 1e308], b=[1.0, -1.0], return_sign=True)
        assert res == -np.inf and sgn == 0.0
        assert vcalc.logsumexp([1e308, 1e308], b=[2.0, 1.0]) == pytest.approx(1e308 + np.log(3))
        J = vcalc.softmax_jacobian([1e308, -1e308])
        np.testing.assert_array_equal(J, np.zeros((2, 2)))
        assert vcalc.logsumexp(np.float32([3e38, 3e38])) == np.float32(3e38)


def test_nan_poisons_its_slice_only(backend):
    a = np.array([[np.nan, 1.0, 2.0], [0.0, 1.0, 2.0]])
    lse = vcalc.logsumexp(a, axis=1)
    assert np.isnan(lse[0]) and np.isfinite(lse[1])
    for f in (vcalc.softmax, vcalc.log_softmax):
        out = f(a, axis=1)
        assert np.all(np.isnan(out[0])) and np.all(np.isfinite(out[1]))
    assert np.all(np.isnan(vcalc.softmax_jacobian(a)[0]))
    _, sgn = vcalc.logsumexp(a, axis=1, return_sign=True)
    assert np.isnan(sgn[0]) and sgn[1] == 1.0


def test_zero_weight_masks_inf_and_nan(backend):
    a = np.array([np.nan, np.inf, 0.0, 1.0])
    b = np.array([0.0, 0.0, 1.0, 1.0])
    assert vcalc.logsumexp(a, b=b) == pytest.approx(np.log(1 + np.e), rel=1e-15)


def test_all_minus_inf_slice(backend):
    a = np.full((2, 3), -np.inf)
    np.testing.assert_array_equal(vcalc.logsumexp(a, axis=1), [-np.inf, -np.inf])
    res, sgn = vcalc.logsumexp(a, axis=1, return_sign=True)
    np.testing.assert_array_equal(sgn, [0.0, 0.0])
    assert np.all(np.isnan(vcalc.softmax(a, axis=1)))
    assert np.all(np.isnan(vcalc.log_softmax(a, axis=1)))
    # Every weight zero is the same as an empty sum.
    assert vcalc.logsumexp([1.0, 2.0], b=[0.0, 0.0]) == -np.inf


def test_plus_inf_entries_give_the_limit(backend):
    a = np.array([np.inf, 1.0, np.inf, -np.inf])
    assert vcalc.logsumexp(a) == np.inf
    np.testing.assert_array_equal(vcalc.softmax(a), [0.5, 0.0, 0.5, 0.0])
    np.testing.assert_array_equal(vcalc.log_softmax(a), [-np.log(2), -np.inf, -np.log(2), -np.inf])
    res, sgn = vcalc.logsumexp([np.inf, 0.0], b=[-2.0, 1.0], return_sign=True)
    assert res == np.inf and sgn == -1.0
    assert np.isnan(vcalc.logsumexp([np.inf, np.inf], b=[1.0, -1.0]))  # inf - inf


def test_empty_reductions(backend):
    assert vcalc.logsumexp([]) == -np.inf
    res, sgn = vcalc.logsumexp(np.empty(0, np.float32), return_sign=True)
    assert res == -np.inf and sgn == 0 and res.dtype == np.float32
    np.testing.assert_array_equal(vcalc.logsumexp(np.empty((3, 0)), axis=1), [-np.inf] * 3)
    assert vcalc.logsumexp(np.empty((0, 3)), axis=1).shape == (0,)
    for f in (vcalc.softmax, vcalc.log_softmax):
        out = f(np.empty((3, 0), np.float32), axis=1)
        assert out.shape == (3, 0) and out.dtype == np.float32
    assert vcalc.softmax_jacobian(np.empty((2, 0))).shape == (2, 0, 0)


def test_negative_total_is_nan_without_warning(backend):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(vcalc.logsumexp([1.0, 2.0], b=[1.0, -1.0]))


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.float16, np.float16),
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int64, np.float64),
        (np.int8, np.float64),
        (np.uint16, np.float64),
        (bool, np.float64),
    ],
)
def test_result_dtypes(backend, dtype, expected):
    a = np.array([[1, 0, 1], [0, 1, 1]], dtype=dtype)
    assert vcalc.logsumexp(a, axis=1).dtype == expected
    assert vcalc.softmax(a, axis=1).dtype == expected
    assert vcalc.log_softmax(a, axis=1).dtype == expected
    assert vcalc.softmax_jacobian(a).dtype == expected


def test_float16_computed_in_float32(backend):
    a = np.array([0.1, 2.5, -3.0], dtype=np.float16)
    np.testing.assert_array_equal(
        vcalc.softmax(a), reference.softmax(a.astype(np.float32)).astype(np.float16)
    )
    assert vcalc.logsumexp(a) == np.float16(scipy_call("logsumexp", a.astype(np.float64)))


def test_mixed_dtypes_promote_like_scipy(backend):
    a = np.zeros(3, np.float32)
    assert vcalc.logsumexp(a, b=np.ones(3)).dtype == scipy_call("logsumexp", a, b=np.ones(3)).dtype
    assert vcalc.logsumexp(a, b=np.ones(3, np.float32)).dtype == np.float32


# ---------------------------------------------------------------------------
# Layouts: the caller never notices strides, order or byte order
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax", "softmax_jacobian"])
def test_layouts_give_the_contiguous_result(backend, zoo, name):
    f = getattr(vcalc, name)
    for label, a in zoo:
        if name == "softmax_jacobian" and a.ndim == 0:
            continue
        axis = -1 if a.ndim else None
        got = f(a, axis=axis)
        want = f(np.array(a, dtype=a.dtype.newbyteorder("=")), axis=axis)
        np.testing.assert_array_equal(got, want, err_msg=label)


# ---------------------------------------------------------------------------
# Seed example 8 and the calculus the functions stand for
# ---------------------------------------------------------------------------


def _central_jacobian(f, x, h=1e-6):
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h))
    return np.stack(cols, axis=-1)


def test_seed8_gradient_of_logsumexp_is_softmax(backend, rng):
    x = rng.standard_normal(6)
    s = vcalc.softmax(x)
    np.testing.assert_allclose(_central_jacobian(vcalc.logsumexp, x), s, rtol=1e-8, atol=1e-10)
    assert np.all(s > 0) and s.sum() == pytest.approx(1.0, abs=1e-15)
    assert np.argmax(s) == np.argmax(x)


def test_seed8_softmax_jacobian_is_diag_minus_outer(backend, rng):
    x = rng.standard_normal((3, 5))
    J = vcalc.softmax_jacobian(x)
    for k in range(3):
        s = sp.softmax(x[k])
        np.testing.assert_allclose(J[k], np.diag(s) - np.outer(s, s), rtol=1e-13, atol=1e-17)
        np.testing.assert_allclose(J[k], _central_jacobian(vcalc.softmax, x[k]), atol=1e-9)
    np.testing.assert_allclose(J, np.swapaxes(J, -1, -2), rtol=0, atol=0)
    np.testing.assert_allclose(J.sum(axis=-1), 0.0, atol=1e-16)


def test_softmax_jacobian_axis(backend, rng):
    x = rng.standard_normal((4, 3, 2))
    J = vcalc.softmax_jacobian(x, axis=1)
    assert J.shape == (4, 2, 3, 3)
    np.testing.assert_allclose(J[2, 1], vcalc.softmax_jacobian(x[2, :, 1]), rtol=1e-15)
    Jall = vcalc.softmax_jacobian(x, axis=None)
    assert Jall.shape == (24, 24)
    np.testing.assert_allclose(Jall, vcalc.softmax_jacobian(x.ravel()), rtol=1e-15)


# ---------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------

finite64 = st.floats(-1e308, 1e308, allow_nan=False, allow_infinity=False)
anyfloat = st.floats(allow_nan=True, allow_infinity=True, width=64)


@st.composite
def data_and_axis(draw, elements=anyfloat):
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6))
    el = elements if dtype == np.float64 else st.floats(width=32, allow_nan=True)
    a = draw(hnp.arrays(dtype, shape, elements=el))
    axis = draw(st.none() | st.integers(-a.ndim, a.ndim - 1))
    return a, axis


def _same(got, want, dtype, scale=0.0):
    """Equal up to rounding; `scale` is max|input|, for results that cancel.

    logsumexp and log_softmax compute m + log(sum) and x - m - log(sum):
    where those nearly cancel, the error is a few ulp of the input, not of
    the result (x = -1.0977 over three equal entries gives 0.000956).
    """
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    rtol = 1e-13 if dtype == np.float64 else 1e-6
    atol = max(1e-300, 8 * float(np.finfo(dtype).eps) * scale)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@given(data_and_axis())
@example((np.array([1e308, -1e308, np.inf, -np.inf]), None))
@example((np.array([[np.nan, -np.inf], [np.inf, np.inf]]), 1))
def test_property_kernels_match_reference(case):
    a, axis = case
    for name in ("logsumexp", "softmax", "log_softmax"):
        with vcalc.use_backend("numpy"):
            want = getattr(vcalc, name)(a, axis=axis)
        with vcalc.use_backend("cython"):
            got = getattr(vcalc, name)(a, axis=axis)
        _same(got, want, a.dtype)


@given(data_and_axis(elements=st.floats(-700, 700)), st.floats(-100, 100))
def test_property_shift_invariance_and_normalisation(case, c):
    a, axis = case
    if a.dtype != np.float64 or a.size == 0:
        return
    s = vcalc.softmax(a, axis=axis)
    np.testing.assert_allclose(np.sum(s, axis=axis), 1.0, rtol=1e-13)
    np.testing.assert_allclose(vcalc.softmax(a + c, axis=axis), s, rtol=1e-9, atol=1e-300)
    lse = vcalc.logsumexp(a, axis=axis)
    np.testing.assert_allclose(vcalc.logsumexp(a + c, axis=axis), lse + c, rtol=1e-12, atol=1e-9)


@given(data_and_axis(elements=finite64))
def test_property_finite_input_never_warns_and_matches_scipy(case):
    a, axis = case
    if not np.all(np.isfinite(a)):
        return  # float32 draws may hold inf / NaN
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = vcalc.logsumexp(a, axis=axis)
        s = vcalc.softmax(a, axis=axis)
    # An empty slice is log(0) = -inf; every other slice is finite.
    assert np.all(np.isfinite(got)) or 0 in a.shape
    assert np.all(np.isfinite(s))
    if a.size == 0:
        return  # scipy 1.17 raises IndexError on some empty shapes
    want = scipy_call("logsumexp", a.astype(np.float64), axis=axis)
    fine = np.isfinite(want)  # SciPy overflows where vcalc does not
    atol = 8 * EPS[np.float64] * float(np.max(np.abs(a), initial=1.0))
    np.testing.assert_allclose(
        np.asarray(got, dtype=np.float64)[fine],
        np.asarray(want)[fine],
        rtol=2e-6 if a.dtype == np.float32 else 1e-13,
        atol=atol,
    )


@st.composite
def strided_views(draw):
    """A view with arbitrary steps (negative included), maybe transposed, of a larger array."""
    dtype = draw(st.sampled_from([np.float64, np.float32, np.dtype(">f8")]))
    base = draw(
        hnp.arrays(dtype, (7, 9), elements=st.floats(-1e4, 1e4, width=32, allow_subnormal=False))
    )
    steps = draw(st.tuples(st.sampled_from([1, 2, 3, -1, -2]), st.sampled_from([1, 2, 4, -1, -3])))
    view = base[:: steps[0], :: steps[1]]
    if draw(st.booleans()):
        view = view.T
    axis = draw(st.sampled_from([None, 0, 1, -1, (0, 1)]))
    return view, axis


@given(strided_views())
# Found by the long profile: logsumexp of rows of three -1.09765625 is 0.000956,
# where the two backends differ by one ulp of the input (cancellation).
@example((np.full((9, 3), -1.09765625), 1))
def test_property_strided_views_match_contiguous_and_reference(case):
    view, axis = case
    contiguous = np.ascontiguousarray(view, dtype=view.dtype.newbyteorder("="))
    scale = float(np.max(np.abs(contiguous), initial=0.0))
    for name in ("logsumexp", "softmax", "log_softmax"):
        got = getattr(vcalc, name)(view, axis=axis)
        np.testing.assert_array_equal(got, getattr(vcalc, name)(contiguous, axis=axis))
        with vcalc.use_backend("numpy"):
            want = getattr(vcalc, name)(view, axis=axis)
        _same(got, want, contiguous.dtype, scale)


def _unaligned(a):
    """A copy of `a` whose data start one byte past an aligned address."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    out = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,axis", [((700,), None), ((30, 50), -1), ((30, 50), 1), ((5, 7), 0)])
def test_unaligned_and_swapped_input_match_aligned(backend, dtype, shape, axis):
    # The kernels' fast path takes aligned native arrays as they are; an
    # unaligned or byte-swapped one must be copied, never read as is.
    a = np.random.default_rng(2).standard_normal(shape).astype(dtype) * 10
    for other in (_unaligned(a), a.astype(np.dtype(dtype).newbyteorder())):
        for name in ("logsumexp", "softmax", "log_softmax"):
            got = getattr(vcalc, name)(other, axis=axis)
            want = getattr(vcalc, name)(a, axis=axis)
            np.testing.assert_array_equal(got, want, err_msg=name)


def test_fast_path_results_have_the_general_paths_types(backend):
    # 0-d in, scalar out; axis=None over an n-d array, scalar out; the
    # same dtypes and shapes as the reference in each case.
    cases = [np.float64(2.0), np.ones((2, 3), np.float32), np.arange(6.0).reshape(2, 3)]
    for a in cases:
        for axis in (None, -1, a.ndim - 1):
            if a.ndim == 0 and axis is not None:
                continue
            for name in ("logsumexp", "softmax", "log_softmax"):
                got = getattr(vcalc, name)(np.asarray(a), axis=axis)
                with vcalc.use_backend("numpy"):
                    want = getattr(vcalc, name)(np.asarray(a), axis=axis)
                assert type(got) is type(want), (name, axis, type(got), type(want))
                assert np.shape(got) == np.shape(want) and got.dtype == want.dtype
                np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
def test_out_of_range_axis_of_any_size_is_named(backend, name):
    # The kernels' fast path compares the axis as a Python int: a huge one
    # must reach the general validation, not overflow a C int.
    for axis in (2, -3, 2**40, -(2**70)):
        with pytest.raises(ValueError, match="axis"):
            getattr(vcalc, name)(np.ones((2, 3)), axis=axis)


@pytest.mark.skipif(np.finfo(np.longdouble).eps > 1e-18, reason="needs an extended longdouble")
def test_signed_weights_that_nearly_cancel_within_the_conditioned_bound(backend):
    # log|sum b e^a| with weights of both signs: the sum's terms cancel to a
    # part in 1e6 .. 1e12, so no method does better than eps times the
    # condition number sum |b| e^a / |sum b e^a| in absolute terms.  Against
    # long double, vcalc stays within a few of those.
    rng = np.random.default_rng(11)
    rows, n = 200, 64
    a = rng.standard_normal((rows, n)) * 3
    b = rng.uniform(-1, 1, (rows, n))
    # make each row's weighted sum nearly vanish: adjust the weight of its
    # largest term so that the rest cancels it to a chosen fraction
    j = np.argmax(a, axis=1)
    frac = 10.0 ** -rng.uniform(6, 12, rows)
    e = np.exp(a - a.max(axis=1, keepdims=True))
    rest = (b * e).sum(axis=1) - b[np.arange(rows), j] * e[np.arange(rows), j]
    b[np.arange(rows), j] = -rest * (1 + frac) / e[np.arange(rows), j]
    got, sign = vcalc.logsumexp(a, axis=1, b=b, return_sign=True)
    al, bl = a.astype(np.longdouble), b.astype(np.longdouble)
    s = (bl * np.exp(al)).sum(axis=1)
    exact = np.log(np.abs(s))
    cond = (np.abs(bl) * np.exp(al)).sum(axis=1) / np.abs(s)
    assert float(cond.min()) > 1e5  # the rows do cancel
    eps = np.finfo(np.float64).eps
    bound = 8 * eps * cond + 4 * eps * np.abs(exact)
    assert np.all(np.abs(got - exact) <= bound), float(np.max(np.abs(got - exact) / bound))
    np.testing.assert_array_equal(sign, np.sign(s).astype(np.float64))
