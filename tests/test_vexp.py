"""vcalc's own vectorised exp, and the accuracy of the reductions built on it.

The exp of ``_vmath.h`` is tested on millions of points against a reference
with more precision than the result: NumPy's exp in x86's 80-bit extended
``longdouble`` for float64 results, float64 exp for float32 results.  The
error is measured in ulps of the correctly rounded result.  Every SIMD path
this CPU can run is tested (``VCALC_SIMD`` caps the path chosen at import,
so the lower paths run in a subprocess).

The polynomial coefficients in ``_vmath.h`` were made by this script
(Chebyshev-node interpolation in 50-digit arithmetic, near-minimax)::

    import mpmath as mp
    mp.mp.dps = 50
    def fit(deg, f, lo, hi):
        N = deg + 1
        nodes = [(lo + hi) / 2 + (hi - lo) / 2 * mp.cos(mp.pi * (2 * i + 1) / (2 * N))
                 for i in range(N)]
        M = mp.matrix([[x**j for j in range(N)] for x in nodes])
        c = mp.lu_solve(M, mp.matrix([f(x) for x in nodes]))
        return [float(c[j]).hex() for j in range(N)]
    a = mp.log(2) / 2
    fit(12, mp.exp, -a, a)   # exp, double
    fit(6, mp.exp, -a, a)    # exp to float accuracy
    t = (mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)
    Q = lambda z: mp.mpf(2) / 3 if z == 0 else (2 * mp.atanh(mp.sqrt(z)) / mp.sqrt(z) - 2) / z
    fit(7, Q, 0, t * t)      # log1p: 2 atanh(s) = 2 s + s^3 Q(s^2)

and those of ``_vexp512.h`` (the AVX-512 path: exp(r) = 1 + r + r^2 q(r) on
|r| <= ln2/32, slightly widened)::

    q = lambda r: mp.nsum(lambda k: r**k / mp.factorial(k + 2), [0, mp.inf])
    b = mp.log(2) / 32 * mp.mpf("1.0001")
    fit(4, q, -b, b)         # double accuracy
    fit(1, q, -b, b)         # float accuracy (rounded to float for float lanes)
    [float(mp.mpf(2) ** (mp.mpf(j) / 16)).hex() for j in range(16)]   # T_hi
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import vcalc
from vcalc import _backend

K = _backend.kernels("_kernels") if _backend.HAVE_EXTENSION else None
pytestmark = pytest.mark.skipif(K is None, reason="compiled kernels not built")

EXTENDED = np.finfo(np.longdouble).nmant >= 63  # x86 80-bit or quad


def vexp(x):
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    K.vexp(x, out)
    return out


def f64_points(rng, n):
    """Points over the whole float64 domain of exp, denser where it is delicate."""
    return np.concatenate(
        [
            rng.uniform(-745.2, 709.79, n),  # everything, subnormal results included
            rng.uniform(-1.0, 1.0, n // 4),  # one reduction interval and its neighbours
            rng.uniform(-0.35, 0.35, n // 8),  # k = 0: the polynomial alone
            rng.uniform(-745.2, -708.0, n // 8),  # subnormal results
            rng.uniform(700.0, 709.78, n // 8),  # near overflow
            np.linspace(-746.0, 710.0, 200_001),
            np.arange(-1074, 1024) * np.log(2.0),  # at the seams k ln2
            (np.arange(-1074, 1024) + 0.5) * np.log(2.0),  # where k changes
        ]
    )


def ulps_f64(got, x):
    ref = np.exp(x.astype(np.longdouble))
    with np.errstate(over="ignore"):
        rounded = ref.astype(np.float64)
    finite = np.isfinite(rounded)
    unit = np.spacing(np.abs(rounded[finite])).astype(np.longdouble)
    err = np.abs(got[finite].astype(np.longdouble) - ref[finite]) / unit
    return float(err.max()), got[~finite], x[~finite]


def ulps_f32(got, x):
    ref = np.exp(x.astype(np.float64))
    with np.errstate(over="ignore"):
        rounded = ref.astype(np.float32)
    finite = np.isfinite(rounded)
    unit = np.spacing(np.abs(rounded[finite])).astype(np.float64)
    err = np.abs(got[finite].astype(np.float64) - ref[finite]) / unit
    return float(err.max()), got[~finite]


@pytest.mark.skipif(not EXTENDED, reason="needs an extended-precision longdouble")
def test_exp_float64_within_1_1_ulp_over_the_whole_domain():
    rng = np.random.default_rng(20261201)
    x = f64_points(rng, 4_000_000)
    worst, over, xo = ulps_f64(vexp(x), x)
    assert worst <= 1.1, worst
    assert np.all(over == np.inf) and np.all(xo > 709.78)


def test_exp_float32_within_1_1_ulp_over_the_whole_domain():
    rng = np.random.default_rng(7)
    x = np.concatenate(
        [
            rng.uniform(-104.0, 89.0, 4_000_000),
            rng.uniform(-1.0, 1.0, 1_000_000),
            rng.uniform(-104.0, -87.0, 500_000),  # subnormal float results
            np.linspace(-105.0, 89.0, 200_001),
        ]
    ).astype(np.float32)
    worst, over = ulps_f32(vexp(x), x)
    assert worst <= 1.1, worst
    assert np.all(over == np.inf)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_special_values(dtype):
    big, under, huge = (710.0, -745.2, 1e300) if dtype == np.float64 else (88.8, -104.0, 1e38)
    x = np.array([np.nan, np.inf, -np.inf, big, huge, under, -huge, 0.0, -0.0], dtype)
    got = vexp(x)
    assert np.isnan(got[0])
    assert got[1] == np.inf and got[3] == np.inf and got[4] == np.inf
    # Exactly +0 on underflow, not a tiny number and not -0.
    for v in got[[2, 5, 6]]:
        assert v == 0.0 and not np.signbit(v)
    assert got[7] == 1.0 and got[8] == 1.0
    assert got.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_threshold_neighbours(dtype):
    # Around the overflow threshold and the last subnormal, compare with
    # the reference rounded to the dtype, which must be met within 1 ulp.
    f = np.finfo(dtype)
    hi = np.log(np.float64(f.max))
    lo = np.log(np.float64(f.smallest_subnormal))
    x = np.concatenate(
        [np.linspace(hi - 1e-3, hi + 1e-3, 2001), np.linspace(lo - 1e-3, lo + 1e-3, 2001)]
    ).astype(dtype)
    ref = np.exp(x.astype(np.longdouble if EXTENDED else np.float64))
    with np.errstate(over="ignore"):
        want = ref.astype(dtype)
    got = vexp(x)
    fin = np.isfinite(want)
    assert np.all(got[~fin] == np.inf)
    unit = np.spacing(np.abs(want[fin]))
    assert np.all(np.abs(got[fin] - want[fin]) <= unit)


# ---------------------------------------------------------------------------
# Accuracy of the reductions against extended-precision references
# ---------------------------------------------------------------------------

SHAPES = [(1, 100_000), (2, 50_000), (1000, 100), (10_000, 10), (7, 3)]  # 50_000: blocked


def ref_softmax(a, dtype=np.longdouble):
    t = a.astype(dtype)
    t = t - t.max(axis=-1, keepdims=True)
    e = np.exp(t)
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.skipif(not EXTENDED, reason="needs an extended-precision longdouble")
@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_float64_relative_error(shape, scale):
    a = np.random.default_rng(3).standard_normal(shape) * scale
    got = vcalc.softmax(a, axis=-1)
    want = ref_softmax(a)
    norm = want >= np.finfo(np.float64).tiny  # relative error is defined on normals
    rel = np.abs(got[norm] - want[norm]) / want[norm]
    assert float(rel.max()) <= 2e-15


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_float32_relative_error(shape, scale):
    a = (np.random.default_rng(4).standard_normal(shape) * scale).astype(np.float32)
    got = vcalc.softmax(a, axis=-1)
    want = ref_softmax(a, np.float64)
    norm = want >= np.finfo(np.float32).tiny
    rel = np.abs(got[norm].astype(np.float64) - want[norm]) / want[norm]
    assert float(rel.max()) <= 3e-7


@pytest.mark.skipif(not EXTENDED, reason="needs an extended-precision longdouble")
@pytest.mark.parametrize("shape", SHAPES)
def test_logsumexp_and_log_softmax_float64_error(shape):
    a = np.random.default_rng(5).standard_normal(shape) * 10
    t = a.astype(np.longdouble)
    m = t.max(axis=-1, keepdims=True)
    lse = m + np.log(np.exp(t - m).sum(axis=-1, keepdims=True))
    got = vcalc.logsumexp(a, axis=-1)
    assert np.max(np.abs(got - lse[:, 0]) / np.abs(lse[:, 0])) <= 2e-15
    # log_softmax = a - lse: its error is relative to the terms it is made of.
    ls = vcalc.log_softmax(a, axis=-1)
    err = np.abs(ls - (t - lse)) / (np.abs(t) + np.abs(lse))
    assert float(err.max()) <= 4e-16  # the subtraction rounds once, plus the error of lse


# ---------------------------------------------------------------------------
# Every path this CPU can run
# ---------------------------------------------------------------------------

_PATH_SCRIPT = r"""
import sys
import numpy as np
import vcalc
from vcalc import _kernels as K, reference

path = K.simd_path()
assert path.startswith(sys.argv[1]), path
rng = np.random.default_rng(11)
x = rng.uniform(-745.2, 709.78, 400_000)
x = np.concatenate([x, rng.uniform(-1, 1, 100_000), [np.nan, np.inf, -np.inf, 0.0]])
out = np.empty_like(x)
K.vexp(x, out)
if np.finfo(np.longdouble).nmant >= 63:
    ref = np.exp(x[:-4].astype(np.longdouble))
    with np.errstate(over="ignore"):
        r64 = ref.astype(np.float64)
    fin = np.isfinite(r64)
    ulp = np.abs(out[:-4][fin] - ref[fin]) / np.spacing(np.abs(r64[fin]))
    assert float(ulp.max()) <= 1.1, float(ulp.max())
assert np.isnan(out[-4]) and out[-3] == np.inf and out[-2] == 0.0 and out[-1] == 1.0
xf = rng.uniform(-104, 89, 400_000).astype(np.float32)
of = np.empty_like(xf)
K.vexp(xf, of)
ref = np.exp(xf.astype(np.float64))
with np.errstate(over="ignore"):
    r32 = ref.astype(np.float32)
fin = np.isfinite(r32)
assert float((np.abs(of[fin] - ref[fin]) / np.spacing(np.abs(r32[fin]))).max()) <= 1.1
for dtype, tol in ((np.float64, 1e-13), (np.float32, 1e-6)):
    for shape in ((3, 1000), (50, 10), (4, 1), (3, 40000)):  # 40000: blocked rows
        a = (rng.standard_normal(shape) * 20).astype(dtype)
        a[0, 0] = np.inf
        a[1, -1] = np.nan
        for name in ("softmax", "log_softmax", "logsumexp"):
            got = getattr(vcalc, name)(a, axis=-1)
            want = getattr(reference, name)(a, axis=-1)
            # relative below the smallest normal number: subnormal floats
            # one ulp (1.4e-45) apart are not 1e-4 relative wrong
            atol = tol * float(np.finfo(dtype).tiny)
            np.testing.assert_allclose(got, want, rtol=tol, atol=atol)
    for n in (2, 3, 5, 8, 12, 16, 17, 20, 32, 33, 64, 65):  # the one-pass kernels' widths
        A = rng.standard_normal((n, n)).astype(dtype)
        X = rng.standard_normal((33, n)).astype(dtype)
        v, g = vcalc.quadratic_form_value_and_grad(A, X)
        rv, rg = reference.quadratic_form_value_and_grad(A, X)
        np.testing.assert_allclose(v, rv, rtol=tol * 100, atol=tol * 100)
        np.testing.assert_allclose(g, rg, rtol=tol * 100, atol=tol * 100)
print("ok", path)
"""


def _available_paths():
    level = K.build_info()["simd_cpu_best"]
    paths = [("base", "baseline")]
    if level in ("AVX2+FMA", "AVX-512"):
        paths.append(("avx2", "AVX2"))
    if level == "AVX-512":
        paths.append(("avx512", "AVX-512"))
    return paths


@pytest.mark.parametrize("cap,prefix", _available_paths() if K is not None else [])
def test_every_simd_path_this_cpu_runs(cap, prefix):
    env = dict(os.environ, VCALC_SIMD=cap)
    res = subprocess.run(
        [sys.executable, "-c", _PATH_SCRIPT, prefix],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.startswith("ok " + prefix)


def test_show_config_names_the_path():
    info = _backend.config()
    assert info["simd"] == K.simd_path()
    assert info["simd_cpu_best"] in ("baseline", "AVX2+FMA", "AVX-512")
    assert isinstance(info["openmp"], bool)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "n",
    [
        1,
        2,
        3,
        7,
        8,
        9,
        15,
        16,
        17,
        23,
        24,
        25,
        31,
        100,
        255,
        256,
        257,
        4095,
        4096,
        4097,
        16383,
        16384,
        16385,
        40000,
        262143,
        262144,
        262149,
    ],
)
def test_row_lengths_at_every_kernel_switch_match_reference(n, dtype):
    # Rows of n <= 16 take unrolled passes, n <= 24 the flat block path (on
    # AVX-512: 8 rows at a time, gathered, with a partial last group), longer
    # rows the per-row path; blocks hold up to 4096 elements and sums run in
    # chunks of 256; rows over 16384 elements are summed block by block, and
    # from 2^18 on log_softmax writes them from the end backwards.  Each
    # switch, with edge-case rows mixed in (and at least one plain row).
    from vcalc import _selfcheck, reference

    rng = np.random.default_rng(n)
    rows = max(6, 9000 // n)
    a = (rng.standard_normal((rows, n)) * 20).astype(dtype)
    big = 1e308 if dtype == np.float64 else 3e38
    a[0, -1] = np.inf
    a[1, 0] = np.nan
    a[2, :] = -np.inf
    if rows > 4:
        a[3, :] = big
        a[4, 0] = -big
    for name in ("softmax", "log_softmax", "logsumexp"):
        got = getattr(vcalc, name)(a, axis=-1)
        want = getattr(reference, name)(a, axis=-1)
        err, problems = _selfcheck.compare(got, want)
        assert not problems, (name, n, problems)


# Rows longer than 16384 elements are summed in blocks of 16384 (logsumexp
# and log_softmax), each block's (max, sum) folded into the row's as they
# come.  The cases that fold differently: the maximum in the first, a middle
# or the last block; blocks whose terms all underflow against the final
# maximum; a block with no finite maximum (all -inf, a NaN first, +inf),
# which sends the row to the edge-case path; one block only slightly below.
LONG = 3 * 16384 + 5


def _long_rows(dtype):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((12, LONG)).astype(dtype)
    a[0, 3] = 40.0  # max in the first block
    a[1, 20_000] = 40.0  # in a middle one
    a[2, -1] = 40.0  # in the last, partial block
    a[3, :16384] -= 2000.0  # a first block far below the rest (terms underflow)
    a[4, 16384:] -= 2000.0  # the later blocks far below the first
    a[5, 16384:32768] = -np.inf  # a block with no finite maximum
    a[6, 40_000] = np.nan  # NaN in a later block
    a[7, 16384] = np.nan  # NaN first in a block
    a[8, 30_000] = np.inf
    a[9] = 7.0  # every element a maximum: the sum is all ties
    a[10, 16384:] += 1e-9  # the maximum block only just above
    a[11] *= 1e-300  # all terms near 1
    return a


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["logsumexp", "log_softmax", "softmax"])
def test_blocked_long_rows_match_reference(name, dtype):
    from vcalc import _selfcheck, reference

    a = _long_rows(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        want = getattr(reference, name)(a, axis=-1)
    got = getattr(vcalc, name)(a, axis=-1)
    err, problems = _selfcheck.compare(got, want)
    assert not problems, (name, problems)
    if name == "logsumexp":
        # independent of the reference: the maximum plus log of the count of ties
        assert got[9] == pytest.approx(7.0 + np.log(LONG), rel=1e-6)
        assert np.isnan(got[6]) and np.isnan(got[7]) and got[8] == np.inf


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [*range(2, 25), 25, 100, 256])
@pytest.mark.parametrize("rows", [1, 7, 8, 9, 17, 511, 513])
def test_short_row_groups_of_eight_match_reference(n, rows, dtype):
    # Short rows are reduced 8 at a time on the AVX-512 path (and float rows
    # of up to 256 have their sums finished 8 at a time): partial groups,
    # and an edge-case row in each lane position, against the reference.
    # Their softmax and log_softmax are then written 8 elements a step across
    # rows, with a table of steps that repeats every n / gcd(n, 8) steps:
    # every n, blocks that end inside a period.
    from vcalc import _selfcheck, reference

    rng = np.random.default_rng(rows * 100 + n)
    a = (rng.standard_normal((rows, n)) * 30).astype(dtype)
    a[rows // 2, 0] = np.nan
    a[-1, -1] = np.inf
    a[rows // 3, :] = -np.inf
    for name in ("softmax", "log_softmax", "logsumexp"):
        got = getattr(vcalc, name)(a, axis=-1)
        with np.errstate(invalid="ignore"):
            want = getattr(reference, name)(a, axis=-1)
        err, problems = _selfcheck.compare(got, want)
        assert not problems, (name, problems)


@pytest.mark.parametrize("name", ["logsumexp", "log_softmax", "softmax"])
@pytest.mark.parametrize(
    "top", [0.0, 1e4, 65536.0, -65536.0, 65600.0, -70000.0, 4.294968e9, -1e30, 3e38]
)
def test_float_rows_on_both_sides_of_the_raised_clamp(name, top):
    # On the AVX-512 path a float row with |max| <= 2^16 has its elements
    # raised to max - 150 before the exp; beyond that, max - 150 can round
    # to max, and the differences are clamped instead.  Both, with elements
    # far below the maximum, -inf, ties, and each side's rounding of x - m.
    from vcalc import _selfcheck, reference

    rng = np.random.default_rng(3)
    n = 300
    a = np.empty((6, n), dtype=np.float32)
    spread = max(abs(top) * 1e-6, 1.0)
    big = float(np.finfo(np.float32).max)
    for r in range(6):
        row = top - np.abs(rng.standard_normal(n)) * spread * (1, 5, 30, 200, 1e4, 1e8)[r]
        a[r] = np.clip(row, -big, big)
    a[:, 7] = top  # a maximum in every row
    a[1, 100:104] = top  # and ties
    a[2, 50] = -np.inf
    a[3, 60:80] = -3e38
    got = getattr(vcalc, name)(a, axis=-1)
    with np.errstate(over="ignore", invalid="ignore"):
        want = getattr(reference, name)(a, axis=-1)
    err, problems = _selfcheck.compare(got, want)
    assert not problems, (name, top, problems)
    if name == "logsumexp":
        # independent of the reference: a row of two maxima, one element
        # one below and the rest negligible
        b = np.full((1, n), np.float32(top), dtype=np.float32)
        b[0, 2:] = -np.inf
        b[0, 2] = np.float32(top) - np.float32(1.0)
        b[0, 3:40] = np.float32(top) - np.float32(max(2000.0, abs(top) * 1e-3))
        t32 = np.float64(np.float32(top))
        exact = t32 + np.log(2.0 + np.exp(np.float64(b[0, 2]) - t32))
        assert float(vcalc.logsumexp(b, axis=-1)[0]) == pytest.approx(exact, rel=3e-7, abs=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [511, 512, 600, 20000])
def test_rows_starting_anywhere_in_a_cache_line(n, dtype):
    # Rows of 512 or more elements start with a masked step up to the next
    # 64-byte boundary: a row starting at each element offset in a line,
    # with the maximum and an edge value inside that first step.
    from vcalc import _selfcheck, reference

    item = np.dtype(dtype).itemsize
    rng = np.random.default_rng(n)
    buf = np.empty(n * item + 256, dtype=np.uint8)
    base = (-buf.ctypes.data) % 64
    for off in range(64 // item):
        start = base + off * item
        a = buf[start : start + n * item].view(dtype).reshape(1, n)
        assert a.ctypes.data % 64 == off * item
        a[...] = rng.standard_normal((1, n)) * 20
        a[0, min(off, 3)] = 80.0  # the maximum, inside the first step when off < 4
        a[0, 1] = -np.inf
        for name in ("softmax", "log_softmax", "logsumexp"):
            got = getattr(vcalc, name)(a, axis=-1)
            want = getattr(reference, name)(a, axis=-1)
            err, problems = _selfcheck.compare(got, want)
            assert not problems, (name, off, problems)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [512, 1000, 4099])
def test_the_same_rows_anywhere_in_memory_agree_to_a_few_ulps(n, dtype):
    # Rows of 512 or more elements are summed from their first 64-byte
    # boundary, so the order of the sum -- and the last bit of a float64
    # result -- depends on where the row sits in memory (measured: 2.03 eps
    # at most for softmax).  float32 results are rounded from double sums:
    # at most one float32 ulp apart.  A given array gives the same result on
    # every call.
    item = np.dtype(dtype).itemsize
    eps = float(np.finfo(dtype).eps)
    bound = 4 * eps if dtype == np.float64 else eps
    rng = np.random.default_rng(n)
    rows = (rng.standard_normal((16, n)) * 3 - 200).astype(dtype)
    buf = np.empty(rows.size * item + 256, dtype=np.uint8)
    base = (-buf.ctypes.data) % 64
    for name in ("softmax", "log_softmax", "logsumexp"):
        first = None
        for off in range(64 // item):
            a = buf[base + off * item : base + off * item + rows.size * item].view(dtype)
            a = a.reshape(rows.shape)
            a[...] = rows
            got = getattr(vcalc, name)(a, axis=-1)
            np.testing.assert_array_equal(getattr(vcalc, name)(a, axis=-1), got)
            got = got.astype(np.float64)
            if first is None:
                first = got
                continue
            rel = float(np.max(np.abs(got - first) / np.abs(first)))
            assert rel <= bound, (name, off, rel / eps)
