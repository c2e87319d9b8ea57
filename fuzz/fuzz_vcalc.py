#!/usr/bin/env python3
"""Coverage-guided fuzzing of vcalc with atheris.

One atheris target per group of entry points, chosen with ``--target`` (or
the environment variable ``VCALC_FUZZ_TARGET``):

* ``reductions``  logsumexp (b, axis, keepdims, return_sign), softmax,
                  log_softmax, softmax_jacobian;
* ``quadratic``   quadratic_form(_grad, _value_and_grad, _hessian),
                  least_squares, weighted_least_squares, normal_equations;
* ``finite_diff`` gradient, jacobian, hessian, derivative,
                  directional_derivative, jvp, hvp, check_grad, taylor;
* ``raw``         the Cython entry points of ``vcalc._kernels``,
                  ``vcalc._qf_kernels`` and ``vcalc._fd_kernels`` that the
                  facade calls, with the facade's preconditions kept
                  ("contract" cases, checked against NumPy) or broken on
                  purpose ("loose" cases, checked for out-of-bounds writes).

Every other argument is passed to libFuzzer, e.g.::

    python fuzz/fuzz_vcalc.py --target reductions /tmp/fuzz-corpus/reductions \
        -max_total_time=420 -timeout=10 -rss_limit_mb=4096

What counts as a finding
------------------------
* a public function raising anything but TypeError, ValueError (AxisError
  included) or NotImplementedError (warnings are ignored);
* the cython and numpy backends disagreeing: one raises and the other
  returns, or both return with a different shape, dtype or type, or (for
  reductions and quadratic forms) values outside a tolerance derived from
  the dtype's eps and the magnitude of the data; finite differences are
  compared on shape and dtype, and on values only for smooth f at moderate
  finite x with default steps;
* a function writing into its input;
* for raw entry points: any exception but TypeError/ValueError/BufferError,
  a write outside the output arrays (canaries around every output), a
  contract-respecting call whose result differs from NumPy, or a call that
  breaks a precondition and is *accepted* (logged as "precondition", for
  review: these are the preconditions the facade must establish);
* a crash or a hang (libFuzzer's -timeout).

By default the Python-level findings are logged (one file per distinct
signature, with the input that triggered it) under ``$VCALC_FUZZ_FINDINGS``
(default ``/tmp/fuzz-findings/<target>``) and fuzzing goes on; with
``VCALC_FUZZ_FAIL_FAST=1`` the first one raises, so libFuzzer stops and
writes a crash file.  ``--replay FILE...`` runs inputs once, printing the
case drawn from each and every finding (no atheris instrumentation needed).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
import traceback
import warnings

import numpy as np

import atheris

with atheris.instrument_imports(include=["vcalc"]):
    import vcalc
    import vcalc.reference as ref
    from vcalc import _fd_kernels, _kernels, _qf_kernels
    from vcalc._stencils import stencil as _stencil

warnings.simplefilter("ignore")
np.seterr(all="ignore")

ALLOWED = (TypeError, ValueError, NotImplementedError)
RAW_ALLOWED = ALLOWED + (BufferError,)

FAIL_FAST = os.environ.get("VCALC_FUZZ_FAIL_FAST", "") not in ("", "0")
# Known crashers and hangs are skipped (so that a campaign goes on past them)
# unless VCALC_FUZZ_NO_SKIPS=1; see KNOWN_CRASHERS and _known_hang.
NO_SKIPS = os.environ.get("VCALC_FUZZ_NO_SKIPS", "") not in ("", "0")
VERBOSE = False  # set by --replay
FINDINGS_DIR = ""
CURRENT = {"data": b"", "case": []}
SEEN: dict[str, int] = {}


class Finding(AssertionError):
    """A fuzzing finding (raised only with VCALC_FUZZ_FAIL_FAST=1)."""


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def note(name: str, value: object) -> None:
    """Record one drawn ingredient of the current case (for replays and logs)."""
    CURRENT["case"].append((name, value))
    if VERBOSE:  # printed at once: a crash may follow
        print(f"  {name} = {describe(value)[:2000]}", flush=True)
        dump = os.environ.get("VCALC_FUZZ_DUMP")
        if dump:  # the case so far, for writing a standalone reproducer
            import pickle

            with open(dump, "wb") as fh:
                pickle.dump([(k, v) for k, v in CURRENT["case"] if not callable(v)], fh)


def _case_text() -> str:
    lines = []
    for name, value in CURRENT["case"]:
        text = describe(value)
        if len(text) > 2000:
            text = text[:2000] + " ..."
        lines.append(f"  {name} = {text}")
    return "\n".join(lines)


def finding(kind: str, where: str, msg: str) -> None:
    """Report a finding of `kind` at `where` (the signature is kind + where)."""
    sig = f"{kind}|{where}"
    SEEN[sig] = SEEN.get(sig, 0) + 1
    text = f"[{kind}] {where}\n{msg}\ncase:\n{_case_text()}\n"
    if VERBOSE:
        print("FINDING " + text, flush=True)
    if FAIL_FAST:
        raise Finding(text)
    if SEEN[sig] == 1:
        h = hashlib.sha1(sig.encode()).hexdigest()[:12]
        os.makedirs(FINDINGS_DIR, exist_ok=True)
        with open(os.path.join(FINDINGS_DIR, f"{kind}-{h}.txt"), "w") as fh:
            fh.write(text)
        with open(os.path.join(FINDINGS_DIR, f"{kind}-{h}.input"), "wb") as fh:
            fh.write(CURRENT["data"])
        print(f"\n#### new finding [{kind}] {where}\n", file=sys.stderr, flush=True)


def _where(err: BaseException) -> str:
    """Type of `err` and the innermost vcalc frame (file:line) it came from."""
    tb = traceback.extract_tb(err.__traceback__)
    loc = "?"
    for fr in tb:
        if "vcalc" in fr.filename and "fuzz_vcalc" not in fr.filename:
            loc = f"{os.path.basename(fr.filename)}:{fr.lineno}"
    return f"{type(err).__name__} at {loc}"


def describe(v: object) -> str:
    """A readable (and mostly copy-pasteable) description of a drawn value."""
    if isinstance(v, np.ndarray):
        flags = []
        if not v.flags.aligned:
            flags.append("UNALIGNED")
        if not v.flags.writeable:
            flags.append("readonly")
        if v.flags.c_contiguous:
            flags.append("C")
        elif v.flags.f_contiguous:
            flags.append("F")
        if type(v) is not np.ndarray:
            flags.append(type(v).__name__)
        with np.printoptions(threshold=60, precision=17):
            vals = repr(np.asarray(v).tolist()) if v.dtype == object else np.array2string(
                np.asarray(v), separator=", "
            )
        return (
            f"ndarray(dtype={v.dtype.str!r}, shape={v.shape}, strides={v.strides}, "
            f"{' '.join(flags)}) {vals}"
        )
    if isinstance(v, tuple) and any(isinstance(e, np.ndarray) for e in v):
        return "(" + ", ".join(describe(e) for e in v) + ")"
    if callable(v):
        return getattr(v, "__qualname__", repr(v))
    return repr(v)


# ---------------------------------------------------------------------------
# Drawing inputs
# ---------------------------------------------------------------------------

SPECIAL = [
    0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -3.0, 100.0, -100.0, 1000.0, -1000.0,
    np.inf, -np.inf, np.nan, -np.nan,
    1e308, -1e308, 1.7976931348623157e308, -1.7976931348623157e308, 8.98846567431158e307,
    5e-324, -5e-324, 1e-310, 2.2250738585072014e-308, 1e-300, 1e150, -1e150, 1e154,
    709.78, 710.0, -745.2, -746.0, 88.72, 89.0, -103.9, 3.4e38, -3.4e38, 3.5e38,
    65504.0, 65520.0, 6e-8, 1e-45, 1e15, 2.0**53, 1e-20, -1e-20,
]
DTYPES = [
    "float64", "float32", "float16", "int64", "int8", "bool", "complex128", "object",
    ">f8", ">f4",
]
LAYOUTS = [
    "C", "F", "neg", "step", "T", "unaligned", "unaligned_T", "bcast", "list", "subclass",
]


class Sub(np.ndarray):
    """A trivial ndarray subclass (the fast paths take exact ndarrays only)."""


class Draw:
    """Typed draws from the fuzzer's bytes."""

    def __init__(self, data: bytes) -> None:
        self.fdp = atheris.FuzzedDataProvider(data)

    def int(self, lo: int, hi: int) -> int:
        return self.fdp.ConsumeIntInRange(lo, hi)

    def bool(self) -> bool:
        return self.fdp.ConsumeBool()

    def pick(self, seq):  # noqa: ANN001, ANN201
        return seq[self.fdp.ConsumeIntInRange(0, len(seq) - 1)]

    def rare(self, k: int = 8) -> bool:
        """True with probability about 1/k."""
        return self.fdp.ConsumeIntInRange(0, k - 1) == 0

    def float(self) -> float:
        mode = self.int(0, 3)
        if mode == 0:
            return self.pick(SPECIAL)
        if mode == 1:
            return self.fdp.ConsumeFloatInRange(-10.0, 10.0)
        if mode == 2:
            return float(self.int(-5, 5))
        return self.fdp.ConsumeFloat()

    # -- values ------------------------------------------------------------

    def values(self, count: int, kind: str = "f") -> np.ndarray:
        """`count` float64 values (ints for kind "i", bools "b")."""
        mode = self.int(0, 6)
        if count > 48:
            rng = np.random.default_rng(self.int(0, 2**31))
            if mode in (0, 1):
                v = rng.standard_normal(count) * self.pick([1.0, 10.0, 1e3, 1e-3, 300.0])
            elif mode == 2:
                v = rng.integers(-5, 6, count).astype(np.float64)
            elif mode == 3:
                v = np.full(count, self.pick(SPECIAL))
            else:
                v = rng.uniform(-1, 1, count) * self.pick([1.0, 1e300, 1e-300, 700.0, 1e30])
            for _ in range(self.int(0, 4)):
                v[self.int(0, count - 1)] = self.pick(SPECIAL)
        elif mode == 0:
            v = np.array([self.fdp.ConsumeFloatInRange(-10.0, 10.0) for _ in range(count)])
        elif mode == 1:
            v = np.array([self.pick(SPECIAL) for _ in range(count)], dtype=np.float64)
        elif mode == 2:
            v = np.array([float(self.int(-5, 5)) for _ in range(count)])
        elif mode == 3:
            v = np.full(count, self.float())
        elif mode == 4:
            v = np.array([self.fdp.ConsumeFloat() for _ in range(count)], dtype=np.float64)
        else:
            v = np.array([self.float() for _ in range(count)], dtype=np.float64)
        v = v.reshape(count).astype(np.float64)
        if kind == "i":
            v = np.nan_to_num(v, nan=0.0, posinf=127, neginf=-128)
            return np.clip(np.trunc(v), -128, 127)
        return v

    # -- shapes, dtypes, layouts -------------------------------------------

    def side(self, big_ok: bool = True) -> int:
        if big_ok and self.rare(12):
            return self.int(7, 300)
        return self.int(0, 6)

    def shape(self, min_ndim: int = 0, max_ndim: int = 4, cap: int = 3000) -> tuple[int, ...]:
        nd = self.int(min_ndim, max_ndim)
        sides = [self.int(0, 6) for _ in range(nd)]
        if nd and self.rare(10):
            sides[self.int(0, nd - 1)] = self.int(7, 300)
        while math.prod(sides) > cap:
            i = int(np.argmax(sides))
            sides[i] = max(1, sides[i] // 2)
        return tuple(sides)

    def dtype(self, dtypes: list[str] | None = None) -> str:
        if dtypes is None:
            # float64 and float32 most often: they reach the kernels.
            if self.int(0, 2):
                return self.pick(["float64", "float32", "float64", ">f8", "float16"])
            return self.pick(DTYPES)
        return self.pick(dtypes)

    def array(self, shape: tuple[int, ...] | None = None, dtype: str | None = None,
              layout: str | None = None, name: str = "a", real_only: bool = False):  # noqa: ANN201
        """A drawn array (or list/subclass) and its recipe."""
        if shape is None:
            shape = self.shape()
        if dtype is None:
            dtype = self.dtype()
            if real_only and dtype in ("complex128", "object"):
                dtype = "float64"
        if layout is None:
            layout = self.pick(LAYOUTS) if self.int(0, 1) else "C"
        size = math.prod(shape)
        vals = self.values(size, "i" if dtype in ("int64", "int8") else "f")
        perm = None
        if layout in ("T", "unaligned_T") and len(shape) > 1:
            perm = list(range(len(shape)))[::-1]
            if self.bool():
                perm = list(np.random.default_rng(self.int(0, 999)).permutation(len(shape)))
        bshape = None
        if layout == "bcast":
            bshape = tuple(s if self.bool() else 1 for s in shape)
        ro = self.rare(6)
        arr = build_array(vals, shape, dtype, layout, readonly=ro, perm=perm, bshape=bshape)
        note(name, arr)
        return arr


def _cast(vals: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "object":
        out = np.empty(vals.shape, dtype=object)
        for idx in np.ndindex(vals.shape):
            out[idx] = float(vals[idx])
        return out
    if dtype == "bool":
        return vals != 0
    if dtype == "complex128":
        return vals.astype(np.complex128) * (1 + 0.5j)
    if dtype in ("int64", "int8"):
        return vals.astype(dtype)
    return vals.astype(dtype)


def build_array(vals, shape, dtype, layout, readonly=False, perm=None, bshape=None):  # noqa: ANN001, ANN201
    """The array with `vals` (flat, C order) of `shape` and `dtype`, laid out as `layout`.

    layout: C, F (Fortran), neg (negative strides on every axis), step
    (every 2nd element of a larger array), T (a transposed C array),
    unaligned (a view into a uint8 buffer at an odd byte offset),
    unaligned_T (its transpose), bcast (np.broadcast_to of a smaller array,
    zero strides), list (nested Python lists), subclass (an ndarray subclass).
    """
    vals = np.asarray(vals, dtype=np.float64).reshape(shape)
    base = _cast(vals, dtype)
    nd = base.ndim
    if layout == "F":
        arr = np.asfortranarray(base)
    elif layout == "neg":
        rev = (slice(None, None, -1),) * nd
        arr = np.ascontiguousarray(base[rev])[rev]
    elif layout == "step":
        big = np.zeros(tuple(2 * s for s in shape), dtype=base.dtype)
        sl = (slice(None, None, 2),) * nd
        big[sl] = base
        arr = big[sl]
    elif layout in ("T", "unaligned_T") and nd > 1:
        p = list(perm) if perm is not None else list(range(nd))[::-1]
        inv = list(np.argsort(p))
        moved = np.ascontiguousarray(np.transpose(base, p))
        if layout == "unaligned_T" and base.dtype.itemsize > 1 and base.dtype != object:
            buf = np.zeros(moved.nbytes + moved.itemsize + 1, np.uint8)
            u = buf[1:1 + moved.nbytes].view(moved.dtype).reshape(moved.shape)
            u[...] = moved
            moved = u
        arr = np.transpose(moved, inv)
    elif layout in ("unaligned", "unaligned_T") and base.dtype.itemsize > 1 and base.dtype != object:
        buf = np.zeros(base.nbytes + base.itemsize + 1, np.uint8)
        arr = buf[1:1 + base.nbytes].view(base.dtype).reshape(shape)
        arr[...] = base
    elif layout == "bcast" and bshape is not None:
        small = base[tuple(slice(0, b) for b in bshape)]
        arr = np.broadcast_to(small, shape)
    elif layout == "list":
        return base.tolist()
    elif layout == "subclass":
        arr = base.view(Sub)
    else:
        arr = base
    if readonly and isinstance(arr, np.ndarray) and arr.flags.writeable:
        arr.flags.writeable = False
    return arr


def draw_axis(d: Draw, ndim: int):  # noqa: ANN201
    mode = d.int(0, 9)
    if mode <= 2:
        ax = None if mode == 0 else -1
    elif mode <= 5:
        ax = d.int(-ndim - 1, ndim) if ndim else d.int(-1, 1)
    elif mode == 6:
        ax = tuple(d.int(-ndim - 1, ndim) for _ in range(d.int(0, 3)))
    elif mode == 7:
        ax = d.pick([True, False, 1.0, np.int64(0), np.int8(-1), [0], 2**63, -(2**70), "0",
                     (0, -1), (np.int32(0),), ()])
    else:
        ax = tuple(range(ndim)) if d.bool() else (ndim - 1 if ndim else 0)
    note("axis", ax)
    return ax


def draw_flag(d: Draw, name: str):  # noqa: ANN201
    v = d.pick([False, True]) if d.int(0, 9) else d.pick([0, 1, None, np.bool_(True), "yes"])
    note(name, v)
    return v


# ---------------------------------------------------------------------------
# Running both backends and comparing
# ---------------------------------------------------------------------------


def call(backend: str, fn, *args, **kwargs):  # noqa: ANN001, ANN201
    """("ok", result) or ("err", exc); any other exception is a finding."""
    with vcalc.use_backend(backend):
        try:
            return "ok", fn(*args, **kwargs)
        except ALLOWED as err:
            return "err", err
        except Finding:
            raise
        except Exception as err:  # noqa: BLE001
            finding(
                "exception",
                f"{getattr(fn, '__name__', fn)}[{backend}] {_where(err)}",
                "".join(traceback.format_exception(err)),
            )
            return "bad", err


def snapshot(*xs):  # noqa: ANN001, ANN201
    return [np.array(x, copy=True) if isinstance(x, np.ndarray) else None for x in xs]


def check_unmodified(name: str, xs, snaps) -> None:  # noqa: ANN001
    for x, s in zip(xs, snaps):
        # Bit for bit (NaN included; object arrays compare their pointers).
        if s is not None and x.tobytes() != s.tobytes():
            finding("mutates-input", name, "an input array was modified")


def _eps(dt: np.dtype) -> float:
    dt = np.dtype(dt)
    return float(np.finfo(dt).eps) if dt.kind in "fc" else float(np.finfo(np.float64).eps)


def _rtol(dt: np.dtype) -> float:
    return {8: 1e-6, 4: 1e-4, 2: 1e-2}.get(np.dtype(dt).itemsize, 1e-6)


def compare_values(name: str, c, r, atol, category: str, rtol: float | None = None) -> None:  # noqa: ANN001
    """Same type, shape and dtype; values within atol + rtol |r| (NaN = NaN, inf = inf)."""
    if category in ("raw-extreme", "raw-nonfinite"):
        # Raw kernels are checked against plain NumPy formulas, whose overflow
        # (inf - inf) differs from the kernels' order of operations: values
        # only for ordinary data (the facade targets compare the references).
        atol = np.inf
    if type(c) is not type(r):
        finding("type-mismatch", f"{name}: {type(c).__name__} vs {type(r).__name__}", "")
        return
    ca, ra = np.asarray(c), np.asarray(r)
    if ca.shape != ra.shape or ca.dtype != ra.dtype:
        finding(
            "shape-dtype-mismatch",
            f"{name}: cython {ca.shape} {ca.dtype} vs numpy {ra.shape} {ra.dtype}",
            "",
        )
        return
    if ca.dtype.kind not in "fc" or ca.size == 0:
        return
    if rtol is None:
        rtol = _rtol(ca.dtype)
    c64, r64 = ca.astype(np.float64), ra.astype(np.float64)
    atol = np.nan_to_num(np.asarray(atol, np.float64), nan=np.inf)
    try:
        atol = np.broadcast_to(atol, r64.shape)
    except ValueError:  # a tolerance of another shape: take its largest entry
        atol = np.full(r64.shape, atol.max(initial=0.0))
    ok = np.isclose(c64, r64, rtol=rtol, atol=0.0, equal_nan=True)
    diff = np.abs(c64 - r64)
    ok |= np.isfinite(c64) & np.isfinite(r64) & (diff <= atol + rtol * np.abs(r64))
    ok |= ~np.isfinite(atol) & np.isfinite(c64) & np.isfinite(r64)  # tolerance unbounded
    ok &= np.isnan(c64) == np.isnan(r64)
    if not ok.all():
        i = np.unravel_index(int(np.argmin(ok)), ok.shape) if ok.ndim else ()
        finding(
            f"value-mismatch-{category}",
            name,
            f"at {i}: cython {c64[i]!r} numpy {r64[i]!r} atol {atol[i]!r} rtol {rtol}; "
            f"{int((~ok).sum())} of {ok.size} differ",
        )


def both(name: str, fn, args: tuple, kwargs: dict, inputs: tuple):  # noqa: ANN001, ANN201
    """Run fn on both backends; report raise/return disagreements; return both results."""
    snaps = snapshot(*inputs)
    sc, c = call("cython", fn, *args, **kwargs)
    check_unmodified(name + "[cython]", inputs, snaps)
    sn, r = call("numpy", fn, *args, **kwargs)
    check_unmodified(name + "[numpy]", inputs, snaps)
    if "bad" in (sc, sn):
        return None
    if sc != sn:
        finding(
            "backend-disagree",
            f"{name}: cython {sc} vs numpy {sn}",
            f"cython: {c!r}\nnumpy: {r!r}",
        )
        return None
    if sc == "err":
        if type(c) is not type(r):
            finding(
                "error-type-mismatch",
                f"{name}: cython {type(c).__name__} vs numpy {type(r).__name__}",
                f"cython: {c}\nnumpy: {r}",
            )
        return None
    return c, r


def _f64(x) -> np.ndarray | None:  # noqa: ANN001
    """x as float64 if it is real numeric, else None."""
    try:
        a = np.asarray(x)
    except Exception:  # noqa: BLE001
        return None
    if a.dtype.kind not in "fiub":
        return None
    return a.astype(np.float64)


def _category(*xs, cdtype=np.float64) -> str:  # noqa: ANN001
    """"ordinary", "nonfinite" (inf/NaN in the input) or "extreme" (huge finite values)."""
    big = float(np.finfo(cdtype).max) / 1e6 if np.dtype(cdtype).kind == "f" else 1e300
    cat = "ordinary"
    for x in xs:
        a = _f64(x)
        if a is None or a.size == 0:
            continue
        if not np.isfinite(a).all():
            return "nonfinite"
        if np.abs(a).max() > min(big, 1e150):
            cat = "extreme"
    return cat


# ---------------------------------------------------------------------------
# Target (a): reductions
# ---------------------------------------------------------------------------


def target_reductions(d: Draw) -> None:
    fname = d.pick(["logsumexp", "softmax", "log_softmax", "softmax_jacobian", "logsumexp"])
    note("fn", fname)
    a = d.array(name="a")
    nd = np.ndim(a)
    axis = draw_axis(d, nd)
    fn = getattr(vcalc, fname)
    kwargs = {}
    b = None
    if fname == "logsumexp":
        if d.bool():
            shape = np.shape(a)
            m = d.int(0, 3)
            if m == 0:
                bshape = shape
            elif m == 1:
                bshape = tuple(s if d.bool() else 1 for s in shape)[d.int(0, len(shape)):]
            elif m == 2:
                bshape = d.shape(max_ndim=3)
            else:
                bshape = ()
            b = d.array(shape=bshape, name="b")
            kwargs["b"] = b
        if d.bool():
            kwargs["keepdims"] = draw_flag(d, "keepdims")
        if d.bool():
            kwargs["return_sign"] = draw_flag(d, "return_sign")
    elif fname == "softmax_jacobian":
        size = int(np.size(a))
        n = size if axis is None else (np.shape(a)[axis] if isinstance(axis, int)
                                       and not isinstance(axis, bool) and -nd <= axis < nd
                                       else 1)
        if size * max(n, 1) > 200_000:
            return
    res = both(fname, fn, (a, axis), kwargs, (a, b))
    if res is None:
        return
    c, r = res
    arr = _f64(a)
    if arr is None:
        return
    dt = np.asarray(r[0] if isinstance(r, tuple) else r).dtype
    if dt.kind != "f":
        finding("result-not-float", fname, f"result dtype {dt}")
        return
    eps = _eps(dt)
    fin = arr[np.isfinite(arr)]
    amax = float(np.abs(fin).max()) if fin.size else 0.0
    n = max(arr.size, 1)
    cat = _category(a, b, cdtype=dt)
    if fname in ("logsumexp", "log_softmax"):
        atol = 64 * eps * (1.0 + amax + math.log1p(n))
    else:
        atol = 64 * eps * (1.0 + amax)
    if b is not None:
        bb = _f64(b)
        # Cancellation in sum(b * exp(a)): the condition number of log|sum|.
        try:
            with vcalc.use_backend("numpy"):
                mag = ref.logsumexp(arr, axis, b=np.abs(bb),
                                    keepdims=bool(kwargs.get("keepdims", False)))
            r0 = np.asarray(r[0] if isinstance(r, tuple) else r, np.float64)
            cond = np.exp(np.asarray(mag, np.float64) - r0)
            cond = np.where(np.isfinite(cond), cond, np.inf)
        except Exception:  # noqa: BLE001
            cond = np.inf
        bfin = bb[np.isfinite(bb)]
        bmax = float(np.abs(bfin).max()) if bfin.size else 0.0
        atol = 64 * eps * (1.0 + amax + math.log1p(n) + math.log1p(bmax)) * np.maximum(1.0, cond * n)
    if isinstance(r, tuple):
        compare_values(fname + "/res", c[0], r[0], atol, cat)
        satol = np.where(np.asarray(atol) * 1e3 < 1, 0.0, np.inf) if b is not None else 0.0
        compare_values(fname + "/sign", c[1], r[1], satol, cat)
    else:
        compare_values(fname, c, r, atol, cat)


# ---------------------------------------------------------------------------
# Target (b): quadratic forms and least squares
# ---------------------------------------------------------------------------


def _maybe_bad_shape(d: Draw, shape: tuple[int, ...]) -> tuple[int, ...]:
    if d.rare(10):
        return d.shape(max_ndim=3)
    return shape


def _batch(d: Draw, k: int = 2) -> tuple[int, ...]:
    return tuple(d.int(0, 3) for _ in range(d.int(0, k)))


def _bcast_partner(d: Draw, batch: tuple[int, ...]) -> tuple[int, ...]:
    m = d.int(0, 3)
    if m == 0:
        return batch
    if m == 1:
        return tuple(s if d.bool() else 1 for s in batch)[d.int(0, len(batch)):]
    if m == 2:
        return ()
    return _batch(d)


def _ridge(d: Draw):  # noqa: ANN201
    if d.int(0, 3):
        v = d.pick([0.0, 0.5, 1.0, 3.0, 1e-8, 0])
    else:
        v = d.pick([-1.0, np.nan, np.inf, True, "1", 10**400, np.float32(2.0), np.int64(1),
                    1e308, 5e-324, None, 1j])
    note("ridge", v)
    return v


def _tol(mag, inner: int, dt) -> np.ndarray:  # noqa: ANN001
    """n eps |terms| bound for a sum of `inner` products with magnitudes `mag`."""
    dt = np.dtype(dt)
    eps = _eps(dt)
    tiny = float(np.finfo(dt).smallest_subnormal) if dt.kind == "f" else 5e-324
    m = np.asarray(mag, np.float64)
    return 8.0 * (inner + 2) * eps * m + 1e4 * (inner + 2) * tiny


def _known_hang(Phi, y) -> bool:  # noqa: ANN001
    """normal_equations hangs in LAPACK on such data: the cython backend
    (np.linalg.lstsq in _quadratic._solve_augmented) for some Phi with inf,
    e.g. (5, 3) with one inf; the numpy backend (np.linalg.pinv of a Gram
    matrix that overflowed, _ref_quadratic.normal_equations) for entries near
    1e308, e.g. [[1e308, -1e308, 0]].  Skipped unless VCALC_FUZZ_NO_SKIPS=1."""
    if NO_SKIPS:
        return False
    for z in (Phi, y):
        a = _f64(z)
        if a is not None and a.size and not (np.isfinite(a).all() and np.abs(a).max() < 1e150):
            note("skipped", "known hang: normal_equations with non-finite or huge data")
            return True
    return False


def target_quadratic(d: Draw) -> None:
    fname = d.pick([
        "quadratic_form", "quadratic_form_grad", "quadratic_form_value_and_grad",
        "quadratic_form_hessian", "least_squares", "weighted_least_squares", "normal_equations",
    ])
    note("fn", fname)
    n = d.int(17, 40) if d.rare(8) else d.int(0, 6)
    fn = getattr(vcalc, fname)
    if fname.startswith("quadratic_form"):
        batch = _batch(d)
        ashape = _maybe_bad_shape(d, batch + (n, n))
        A = d.array(shape=ashape, name="A")
        if fname == "quadratic_form_hessian":
            res = both(fname, fn, (A,), {}, (A,))
            if res:
                a64 = _f64(A)
                mag = np.abs(a64) + np.swapaxes(np.abs(a64), -1, -2) if a64 is not None else np.inf
                compare_values(fname, res[0], res[1], _tol(mag, 1, np.asarray(res[1]).dtype),
                               _category(A))
            return
        xshape = _maybe_bad_shape(d, _bcast_partner(d, batch) + (n,))
        X = d.array(shape=xshape, name="X")
        kwargs = {}
        if fname == "quadratic_form_grad" and d.bool():
            kwargs["symmetric"] = draw_flag(d, "symmetric")
        res = both(fname, fn, (A, X), kwargs, (A, X))
        if not res:
            return
        c, r = res
        a64, x64 = _f64(A), _f64(X)
        cat = _category(A, X)
        with vcalc.use_backend("numpy"):
            mv = ref.quadratic_form(np.abs(a64), np.abs(x64))
            mg = ref.quadratic_form_grad(np.abs(a64), np.abs(x64))
        if kwargs.get("symmetric") is True:
            mg = 2 * np.abs(np.matmul(np.abs(a64), np.abs(x64)[..., None]))[..., 0]
            if a64.shape[-2:] and not np.array_equal(a64, np.swapaxes(a64, -1, -2), equal_nan=True):
                cat = "asymmetric"  # symmetric=True is a promise; values may differ
        if fname == "quadratic_form_value_and_grad":
            dt = np.asarray(r[0]).dtype
            compare_values(fname + "/value", c[0], r[0], _tol(mv, n, dt), cat)
            compare_values(fname + "/grad", c[1], r[1], _tol(mg, n, dt), cat)
        elif fname == "quadratic_form":
            compare_values(fname, c, r, _tol(mv, n, np.asarray(r).dtype), cat)
        else:
            compare_values(fname, c, r, _tol(mg, n, np.asarray(r).dtype), cat)
        return
    if fname == "least_squares":
        N, D = d.int(0, 8), n
        Phi = d.array(shape=_maybe_bad_shape(d, (N, D)), name="Phi")
        y = d.array(shape=_maybe_bad_shape(d, (N,)), name="y")
        theta = d.array(shape=_maybe_bad_shape(d, _batch(d) + (D,)), name="theta")
        kwargs = {}
        if d.bool():
            kwargs["ridge"] = _ridge(d)
        if d.bool():
            kwargs["mean"] = draw_flag(d, "mean")
        res = both(fname, fn, (Phi, y, theta), kwargs, (Phi, y, theta))
        if not res:
            return
        c, r = res
        P, Y, T = _f64(Phi), _f64(y), _f64(theta)
        ridge = float(kwargs.get("ridge", 0.0))
        denom = max(N, 1) if kwargs.get("mean") is True else 1
        resid = np.abs(Y) + np.matmul(np.abs(T), np.abs(P).T)  # (..., N)
        ml = (resid**2).sum(-1) / denom + ridge * (T**2).sum(-1)
        mg = 2 * np.matmul(resid, np.abs(P)) / denom + 2 * ridge * np.abs(T)
        dt = np.asarray(r[0]).dtype
        cat = _category(Phi, y, theta)
        compare_values(fname + "/loss", c[0], r[0], _tol(ml, N * D + D, dt), cat)
        compare_values(fname + "/grad", c[1], r[1], _tol(mg, N * D + D, dt), cat)
        return
    if fname == "weighted_least_squares":
        m, k = d.int(0, 6), n
        x = d.array(shape=_maybe_bad_shape(d, (m,)), name="x")
        A = d.array(shape=_maybe_bad_shape(d, (m, k)), name="A")
        s = d.array(shape=_maybe_bad_shape(d, _batch(d) + (k,)), name="s")
        W = d.array(shape=_maybe_bad_shape(d, (m, m)), name="W") if d.bool() else None
        res = both(fname, fn, (x, A, s, W), {}, (x, A, s, W))
        if not res:
            return
        c, r = res
        X, AA, S = _f64(x), _f64(A), _f64(s)
        WW = np.eye(m) if W is None else np.abs(_f64(W))
        resid = np.abs(X) + np.matmul(np.abs(S), np.abs(AA).T)  # (..., m)
        mv = np.einsum("...i,ij,...j->...", resid, WW, resid)
        mg = np.matmul(np.matmul(resid, WW + WW.T), np.abs(AA))
        dt = np.asarray(r[0]).dtype
        cat = _category(x, A, s, W)
        compare_values(fname + "/value", c[0], r[0], _tol(mv, m * k + m * m, dt), cat)
        compare_values(fname + "/grad", c[1], r[1], _tol(mg, m * k + m * m, dt), cat)
        return
    # normal_equations
    N, D = d.int(0, 8), n
    Phi = d.array(shape=_maybe_bad_shape(d, (N, D)), name="Phi")
    yshape = (N,) if d.bool() else (N, d.int(0, 3))
    y = d.array(shape=_maybe_bad_shape(d, yshape), name="y")
    kwargs = {"ridge": _ridge(d)} if d.bool() else {}
    if _known_hang(Phi, y):
        return
    res = both(fname, fn, (Phi, y), kwargs, (Phi, y))
    if not res:
        return
    c, r = res
    P, Y = _f64(Phi), _f64(y)
    cat = _category(Phi, y)
    tol: float = np.inf
    if (cat == "ordinary" and P.size and np.abs(P).max() < 1e100
            and np.abs(Y).max(initial=0) < 1e100):
        ridge = float(kwargs.get("ridge", 0.0))
        D = P.shape[1]
        aug = np.vstack([P, math.sqrt(ridge) * np.eye(D)]) if ridge > 0 else P
        try:
            sv = np.linalg.svd(aug, compute_uv=False)
            cond = sv[0] / sv[-1] if sv.size and sv[-1] > 0 and aug.shape[0] >= D else np.inf
        except np.linalg.LinAlgError:
            cond = np.inf
        dt = np.asarray(r).dtype
        if cond < 1e6:
            tol = 1e3 * _eps(dt) * cond * cond * max(1.0, float(np.abs(np.asarray(r)).max(initial=0)))
    compare_values(fname, c, r, tol, cat)


# ---------------------------------------------------------------------------
# Target (c): finite differences
# ---------------------------------------------------------------------------


def _sum_last(k: int):  # noqa: ANN202
    return tuple(range(-k, 0)) if k else None


def make_f(d: Draw, kind: str, xnd: int, vectorized: bool):  # noqa: ANN201
    """A simple numpy f (and a flag: smooth, real-valued, of the right kind)."""
    ax = _sum_last(xnd)

    def ssq(x):  # noqa: ANN001, ANN202
        return np.sum(x**2, axis=ax) if vectorized and ax else np.sum(x**2) if not vectorized else x**2

    def ssin(x):  # noqa: ANN001, ANN202
        return np.sum(np.sin(x), axis=ax) if vectorized and ax else np.sum(np.sin(x)) if not vectorized else np.sin(x)

    def pyfloat(x):  # noqa: ANN001, ANN202
        return float(np.sum(np.cos(x)))

    def vec2(x):  # noqa: ANN001, ANN202
        if vectorized:
            return np.stack([np.sum(x, axis=ax) if ax else x, np.sum(x**3, axis=ax) if ax else x**3], -1)
        return np.array([np.sum(x), np.sum(x**3)])

    def returns_none(x):  # noqa: ANN001, ANN202
        return None

    def returns_complex(x):  # noqa: ANN001, ANN202
        return np.sum(x) * 1j

    def returns_str(x):  # noqa: ANN001, ANN202
        return "1.0"

    def varying_shape(x):  # noqa: ANN001, ANN202
        # A shape that depends on the point (deterministic: same on both backends).
        t = float(np.nansum(np.abs(np.asarray(x, dtype=np.float64))))
        return np.zeros(1 + (int(t * 1e6 % 2) if math.isfinite(t) else 0))

    def raises(x):  # noqa: ANN001, ANN202
        raise ValueError("f failed")

    def keeps_nan(x):  # noqa: ANN001, ANN202
        return np.sum(x) + np.nan

    scalar_good = [ssq, ssin] + ([] if vectorized else [pyfloat])
    # (an f that writes into its argument is left out: the cython loop passes a
    # read-only view and the reference new arrays, as documented)
    bad = [returns_none, returns_complex, returns_str, varying_shape, raises, keeps_nan]
    if d.rare(6):
        f = d.pick(bad)
        smooth = False
    elif kind == "vector":
        f = d.pick([np.sin, vec2]) if not vectorized else d.pick([np.sin, vec2])
        smooth = True
    elif kind == "elementwise":
        f = d.pick([np.sin, np.exp, np.cos])
        smooth = True
    else:
        f = d.pick(scalar_good)
        smooth = True
    note("f", f)
    return f, smooth


def _method(d: Draw):  # noqa: ANN201
    if d.int(0, 7):
        return d.pick(["central", "forward", "backward", "complex", "richardson", "central"])
    return d.pick(["Central", "", None, 1, "fwd", b"central"])


def _order(d: Draw):  # noqa: ANN201
    if d.int(0, 5):
        return d.pick([2, 1, 4, 2, 3, 6, 8])
    return d.pick([0, -1, 5, 7, 9, 100, 2.0, True, None, "2", np.int64(4), 2**70])


def _step(d: Draw, shape: tuple[int, ...]):  # noqa: ANN201
    m = d.int(0, 9)
    if m <= 4:
        return None
    if m <= 6:
        return d.pick([1e-3, 1e-6, 0.1, 1e-8, 0.0, -1e-3, np.nan, np.inf, 1e-300, 1e300, 5e-324,
                       1, True, "0.1", np.float32(1e-3), 1e-20])
    if m == 7:
        return build_array(np.abs(d.values(math.prod(shape))) + 1e-3 * d.int(0, 1), shape,
                           "float64", "C")
    if m == 8:
        return build_array(d.values(math.prod(shape)), shape, d.pick(["float64", "float32", "int64"]),
                           d.pick(["C", "neg", "bcast", "unaligned"]), bshape=tuple(1 for _ in shape))
    return [1e-3] * (d.int(0, 3))


def _bounds(d: Draw, shape: tuple[int, ...]):  # noqa: ANN201
    m = d.int(0, 7)
    if m <= 4:
        return None
    if m == 5:
        return (d.float(), d.float())
    if m == 6:
        size = math.prod(shape)
        lo = build_array(d.values(size), shape, "float64", "C")
        hi = build_array(np.asarray(lo).reshape(-1) + np.abs(d.values(size)), shape, "float64",
                         d.pick(["C", "neg"]))
        return (lo, hi)
    return d.pick([(0.0,), (None, None), (1.0, -1.0), (np.nan, 1.0), (-np.inf, np.inf), "x",
                   (0.0, 1.0, 2.0)])


def target_finite_diff(d: Draw) -> None:
    fname = d.pick(["gradient", "gradient", "jacobian", "hessian", "derivative",
                    "directional_derivative", "jvp", "hvp", "check_grad", "taylor"])
    note("fn", fname)
    big = fname in ("gradient", "jacobian") and d.rare(10)
    cap = 420 if big else (6 if fname in ("hessian", "hvp", "taylor") else 16)
    shape = d.shape(max_ndim=3, cap=cap)
    if big:
        shape = (d.int(60, 420),) if d.bool() else (d.int(2, 20), d.int(10, 20))
    dtype = d.pick(["float64", "float64", "float64", "float32", "float16", "int64", "bool",
                    "complex128", "object", ">f8"])
    x = d.array(shape=shape, dtype=dtype, name="x",
                layout=d.pick(["C", "F", "neg", "step", "T", "unaligned", "bcast", "list", "neg",
                               "step", "subclass", "unaligned_T"]))
    xnd = len(shape)
    vectorized = False
    kwargs: dict = {}
    if fname in ("gradient", "jacobian", "hessian"):
        vm = d.int(0, 5)
        vectorized = vm in (1, 2)
        if vm == 3:
            kwargs["vectorized"] = d.pick([1, None, "yes"])
        elif vm:
            kwargs["vectorized"] = vectorized
    kind = {"gradient": "scalar", "hessian": "scalar", "check_grad": "scalar", "taylor": "scalar",
            "hvp": "scalar", "derivative": "elementwise", "jacobian": "vector",
            "directional_derivative": "scalar", "jvp": "vector"}[fname]
    f, smooth = make_f(d, kind, xnd, vectorized)
    method = _method(d) if d.bool() else "central"
    if method != "central" or d.bool():
        if fname not in ("hvp",):
            kwargs["method"] = method
        note("method", method)
    if fname not in ("hvp", "check_grad") and d.bool():
        kwargs["order"] = _order(d)
        note("order", kwargs["order"])
    if fname not in ("check_grad", "taylor") and d.bool():
        kwargs["step"] = _step(d, shape)
        note("step", kwargs["step"])
        if fname in ("directional_derivative", "jvp", "hvp") and isinstance(kwargs["step"], np.ndarray):
            kwargs["step"] = float(np.asarray(kwargs["step"]).flat[0]) if kwargs["step"].size else None
    if fname in ("gradient", "jacobian", "hessian") and d.bool():
        kwargs["bounds"] = _bounds(d, shape)
        note("bounds", kwargs["bounds"])
    if fname in ("gradient", "jacobian", "hessian") and d.rare(4):
        kwargs["full_output"] = draw_flag(d, "full_output")
    if d.rare(12):
        kwargs["args"] = d.pick([(), (1,), [], None])
        note("args", kwargs["args"])
        if kwargs["args"] == (1,):
            f0 = f
            f = lambda x, a, _f=f0: _f(x)  # noqa: E731
    if fname == "derivative" and d.bool():
        kwargs["n"] = d.pick([1, 2, 0, 3, -1, 1.0, True])
        note("n", kwargs["n"])
    if fname in ("directional_derivative", "jvp", "hvp"):
        vshape = shape if d.int(0, 5) else d.shape(max_ndim=2)
        v = d.array(shape=vshape, name="v")
        args = (f, x, v)
        inputs = (x, v)
    elif fname == "check_grad":
        good = d.int(0, 2)

        def grad(z):  # noqa: ANN001, ANN202
            zz = np.asarray(z, dtype=np.float64)
            return 2 * zz if good == 1 else (np.zeros(zz.shape) if good == 0 else np.zeros(3))

        note("grad", ("2x", "zeros", "wrong-shape")[good])
        for key in ("step",):
            kwargs.pop(key, None)
        if d.bool():
            kwargs["rtol"] = d.pick([1e-6, 0.0, -1.0, np.nan, 1])
            note("rtol", kwargs["rtol"])
        args = (f, grad, x)
        inputs = (x,)
    else:
        args = (f, x)
        inputs = (x,)
    if fname == "hvp" and d.bool():
        def hgrad(z):  # noqa: ANN001, ANN202
            return 2 * np.asarray(z, dtype=np.float64)
        kwargs["grad"] = hgrad
        note("grad", "2x")
    for k in ("vectorized", "bounds", "full_output"):
        if k in kwargs and fname not in ("gradient", "jacobian", "hessian"):
            kwargs.pop(k)
    note("kwargs", sorted(kwargs))
    res = both(fname, getattr(vcalc, fname), args, kwargs, inputs)
    if res is None:
        return
    c, r = res
    if fname == "check_grad":
        if type(c) is not type(r):
            finding("type-mismatch", fname, f"{type(c)} vs {type(r)}")
        return
    if fname == "taylor":
        for attr in ("f0", "grad", "hess"):
            cv, rv = getattr(c, attr, None), getattr(r, attr, None)
            if (cv is None) != (rv is None) or (
                    cv is not None and (np.shape(cv) != np.shape(rv)
                                        or np.asarray(cv).dtype != np.asarray(rv).dtype)):
                finding("shape-dtype-mismatch", f"taylor.{attr}", f"{cv!r} vs {rv!r}")
        return
    if kwargs.get("full_output") is True:
        c, r = c[0], r[0]
    if isinstance(c, tuple) or isinstance(r, tuple):
        return
    ca, ra = np.asarray(c), np.asarray(r)
    if type(c) is not type(r) or ca.shape != ra.shape or ca.dtype != ra.dtype:
        finding("shape-dtype-mismatch",
                f"{fname}: cython {type(c).__name__} {ca.shape} {ca.dtype} vs numpy "
                f"{type(r).__name__} {ra.shape} {ra.dtype}", "")
        return
    # Values, only where both backends must agree closely: smooth f, finite
    # moderate x, default steps, no bounds.
    xx = _f64(x)
    if (smooth and xx is not None and np.isfinite(xx).all() and np.abs(xx).max(initial=0) <= 100
            and kwargs.get("step") is None and kwargs.get("bounds") is None
            and ca.dtype.kind == "f" and np.isfinite(ra).all()):
        scale = 1.0 + float(np.abs(ra).max(initial=0))
        tol = 1e-6 if method == "richardson" else 1e-7
        if not np.allclose(ca, ra, rtol=1e-6, atol=tol * scale * 1e3):
            bad = np.argmax(np.abs(ca - ra))
            finding("fd-value-mismatch", f"{fname} method={method} vectorized={vectorized}",
                    f"max diff at flat {bad}: cython {ca.flat[bad]!r} numpy {ra.flat[bad]!r}")


# ---------------------------------------------------------------------------
# Target (d): raw Cython entry points
# ---------------------------------------------------------------------------

# Elements of canary on each side of an output: more than any overrun the
# loose cases can cause (outputs too small by a few rows or columns), so that
# a write out of bounds lands in the canary rather than in the heap.
CANARY = 8192


def guarded(shape: tuple[int, ...], dtype) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """An output array inside a larger buffer whose ends hold a canary pattern."""
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    buf = np.empty(size + 2 * CANARY, dtype)
    buf.view(np.uint8)[:] = 0xA5
    out = buf[CANARY:CANARY + size].reshape(shape)
    return out, buf


def canary_ok(buf: np.ndarray, size: int) -> bool:
    raw = buf.view(np.uint8)
    isz = buf.dtype.itemsize
    head = raw[: CANARY * isz]
    tail = raw[(CANARY + size) * isz:]
    return bool((head == 0xA5).all() and (tail == 0xA5).all())


def raw_input(d: Draw, shape, dtype, name: str, loose: bool):  # noqa: ANN001, ANN201
    """An input array for a kernel: contract layout (C, aligned or not, read-only) or any."""
    if loose and d.rare(3):
        layout = d.pick(["F", "neg", "step", "T", "bcast", "list", "unaligned"])
        dtype = d.pick([dtype, "float64", "float32", "int64", ">f8", "float16"])
    else:
        layout = d.pick(["C", "C", "C", "unaligned"])
    vals = d.values(math.prod(shape))
    arr = build_array(vals, shape, dtype, layout, readonly=d.rare(4),
                      bshape=tuple(1 for _ in shape) if layout == "bcast" else None)
    note(name, arr)
    return arr


def _off(d: Draw, v: int, loose: bool) -> int:
    """`v`, or (loose) `v` off by a little."""
    if loose and d.rare(3):
        return max(0, v + d.pick([-1, 1, 2, -2, 3]))
    return v


def raw_call(name: str, fn, args, outs, loose: bool, reason, check=None) -> None:  # noqa: ANN001
    """Call a kernel and check its canaries.

    `reason` is the first precondition the call breaks (False if none): then
    an accepted call is logged (loose cases); otherwise `check()` compares
    the result with NumPy.
    """
    if skip_known(name, reason):
        return
    try:
        fn(*args)
    except RAW_ALLOWED:
        return
    except MemoryError as err:
        finding("raw-exception", f"{name} {_where(err)}", "".join(traceback.format_exception(err)))
        return
    except Exception as err:  # noqa: BLE001
        finding("raw-exception", f"{name} {_where(err)}", "".join(traceback.format_exception(err)))
        return
    for buf, size in outs:
        if not canary_ok(buf, size):
            finding("raw-oob-write", f"{name} ({'loose' if loose else 'contract'})",
                    "the canary around an output was overwritten")
    if reason:
        finding("precondition", f"{name}: {reason}", "a call breaking this precondition was accepted")
    elif check is not None:
        check()


def _loose_reason(pairs) -> str | bool:  # noqa: ANN001
    """The broken preconditions among (ok, text) pairs, joined by "; ", or False."""
    broken = [text for ok, text in pairs if not ok]
    return "; ".join(broken) if broken else False


def _join(*reasons) -> str | bool:  # noqa: ANN001
    broken = [r for r in reasons if r]
    return "; ".join(broken) if broken else False


def _contract(*arrs) -> str | bool:  # noqa: ANN001
    for i, a in enumerate(arrs):
        if not isinstance(a, np.ndarray):
            return f"operand {i} not an ndarray"
        if not a.flags.c_contiguous:
            return f"operand {i} not C-contiguous"
        if not a.dtype.isnative:
            return f"operand {i} byte-swapped"
    return False


# Broken preconditions found to crash the process (segfault); skipped unless
# VCALC_FUZZ_NO_SKIPS=1, so that fuzzing can go on past them.  Each is
# reported in fuzz/README.md.
KNOWN_CRASHERS = {
    ("axis_combine", "weights shorter than offsets"),
    ("axis_default", "weights shorter than offsets"),
    ("quadratic_form_small", "both outputs None"),
    ("quadratic_form_batched", "index arrays shorter than the output"),
    ("quadratic_form_grad_batched", "index arrays shorter than the output"),
    ("quadratic_form_value_and_grad_batched", "index arrays shorter than the output"),
}


def skip_known(entry: str, reason) -> bool:  # noqa: ANN001
    if NO_SKIPS or not reason:
        return False
    if any((entry, r) in KNOWN_CRASHERS for r in str(reason).split("; ")):
        note("skipped", f"known crasher: {entry}: {reason}")
        return True
    return False


def target_raw(d: Draw) -> None:
    entry = d.pick([
        "reduce_fast", "logsumexp_rows", "logsumexp_rows_weighted", "softmax_rows",
        "log_softmax_rows", "vexp", "quadratic_form_small", "rowdot_half",
        "softmax_jacobian_rows", "quadratic_form_batched", "quadratic_form_grad_batched",
        "quadratic_form_value_and_grad_batched", "quadratic_form_hessian_rows",
        "least_squares_rows", "weighted_least_squares_rows",
        "weighted_least_squares_identity_rows", "relative_steps", "axis_stack", "axis_combine",
        "axis_default", "axis_loop", "hessian2_loop", "points_loop", "complex_loop",
    ])
    loose = d.rare(4)
    note("entry", entry)
    note("loose", loose)
    dt = d.pick(["float64", "float32"])
    eps = _eps(dt)
    big = d.rare(8)
    nrow = d.int(0, 40) if big else d.int(0, 5)
    n = d.int(7, 300) if big else d.int(0, 8)
    nt = d.pick([1, 1, 2, 0, -1])

    if entry == "reduce_fast":
        a = d.array(name="a")
        axis = draw_axis(d, np.ndim(a))
        op = d.pick([0, 1, 2, 0, 1, 2, 3, -1])
        note("op", op)
        try:
            res = _kernels.reduce_fast(op, a, axis, nt)
        except RAW_ALLOWED:
            return
        except Exception as err:  # noqa: BLE001
            finding("raw-exception", f"reduce_fast {_where(err)}", traceback.format_exc())
            return
        if res is None:
            return
        fn = [ref.logsumexp, ref.softmax, ref.log_softmax][op]
        try:
            want = fn(a, axis)
        except ALLOWED as err:
            finding("raw-accepts-invalid", f"reduce_fast op={op}", f"reference raised {err!r}")
            return
        arr = _f64(a)
        fin = arr[np.isfinite(arr)]
        amax = float(np.abs(fin).max()) if fin.size else 0.0
        compare_values(f"reduce_fast op={op}", res, want,
                       64 * _eps(np.asarray(want).dtype) * (1 + amax + math.log1p(arr.size)),
                       _category(a, cdtype=np.asarray(want).dtype))
        return

    if entry in ("logsumexp_rows", "softmax_rows", "log_softmax_rows", "logsumexp_rows_weighted",
                 "softmax_jacobian_rows"):
        if entry == "softmax_jacobian_rows":
            n = min(n, 12)  # an overrun of (batch, n, n) must stay inside the canaries
        a = raw_input(d, (nrow, n), dt, "a", loose)
        odt = dt if not (loose and d.rare(3)) else d.pick(["float64", "float32"])
        if entry in ("logsumexp_rows", "logsumexp_rows_weighted"):
            oshape = (_off(d, nrow, loose),)
        elif entry == "softmax_jacobian_rows":
            oshape = (_off(d, nrow, loose), n, _off(d, n, loose))
        else:
            oshape = (_off(d, nrow, loose), _off(d, n, loose))
        out, buf = guarded(oshape, odt)
        outs = [(buf, out.size)]
        args = [a, out]
        if entry == "logsumexp_rows_weighted":
            b = raw_input(d, (_off(d, nrow, loose), _off(d, n, loose)), dt, "b", loose)
            sign, sbuf = guarded((_off(d, nrow, loose),), odt)
            outs.append((sbuf, sign.size))
            rs = d.bool()
            args = [a, b, out, sign, rs]
        elif entry != "softmax_jacobian_rows":
            args.append(nt)
        arrs = [x for x in args if isinstance(x, np.ndarray) or isinstance(x, list)]
        reason = _join(_contract(*arrs), _loose_reason([
            (len({np.asarray(x).dtype for x in arrs}) == 1, "operands of different dtypes"),
            (out.shape[0] == nrow, "output rows != input rows"),
            (entry in ("logsumexp_rows", "logsumexp_rows_weighted") or out.shape[1] == n,
             "output columns != n"),
            (entry != "softmax_jacobian_rows" or out.shape[2] == n, "output not (batch, n, n)"),
            (entry != "logsumexp_rows_weighted" or (np.shape(args[1]) == (nrow, n)
                                                     and args[3].shape == (nrow,)),
             "weights/sign shape != a's"),
        ]))

        def check() -> None:
            A = np.asarray(a, np.float64)
            if entry == "logsumexp_rows":
                want = ref.logsumexp(A, axis=1) if nrow else np.empty(0)
            elif entry == "softmax_rows":
                want = ref.softmax(A, axis=1)
            elif entry == "log_softmax_rows":
                want = ref.log_softmax(A, axis=1)
            elif entry == "softmax_jacobian_rows":
                want = ref.softmax_jacobian(A, axis=1) if nrow and n else out
            else:
                w, sg = ref.logsumexp(A, axis=1, b=np.asarray(args[1], np.float64), return_sign=True)
                want = np.where((np.asarray(sg) < 0) & (not rs), np.nan, w)
                compare_values(entry + "/sign", sign, np.asarray(sg, out.dtype), np.inf, "raw")
            fin = A[np.isfinite(A)]
            amax = float(np.abs(fin).max()) if fin.size else 0.0
            tol = 64 * eps * (1 + amax + math.log1p(max(n, 1)))
            if entry == "logsumexp_rows_weighted":
                tol = np.inf  # cancellation: values checked by the facade target
            compare_values(entry, out, np.asarray(want, out.dtype), tol,
                           "raw-" + _category(a, cdtype=np.dtype(dt)))

        raw_call(entry, getattr(_kernels, entry), args, outs, loose,
                 reason, check)
        return

    if entry == "vexp":
        x = raw_input(d, (n * max(nrow, 1),), dt, "x", loose)
        out, buf = guarded((_off(d, n * max(nrow, 1), loose),), dt)
        reason = _join(_contract(x), _loose_reason([(out.shape == np.shape(x), "out shape != x shape"),
                                                (np.asarray(x).dtype == out.dtype, "dtypes differ")]))

        def check() -> None:
            want = np.exp(np.asarray(x, np.float64)).astype(dt)
            compare_values("vexp", out, want, 0.0, "raw", rtol=8 * eps)

        raw_call("vexp", _kernels.vexp, (x, out), [(buf, out.size)], loose,
                 reason, check)
        return

    if entry in ("quadratic_form_small", "rowdot_half"):
        n = min(n, 40)
        x = raw_input(d, (nrow, n), dt, "x", loose)
        if entry == "quadratic_form_small":
            s = raw_input(d, (_off(d, n, loose), _off(d, n, loose)), "float64", "s", loose)
            want_v = d.bool() or d.bool()
            want_g = d.bool()
            v, vb = guarded((_off(d, nrow, loose),), dt)
            g, gb = guarded((_off(d, nrow, loose), _off(d, n, loose)), dt)
            args = (s, x, v if want_v else None, g if want_g else None, nt)
            outs = [(vb, v.size), (gb, g.size)]
            note("value_out", v if want_v else None)
            note("grad_out", g if want_g else None)
            reason = _join(_contract(x, s), _loose_reason([
                (want_v or want_g, "both outputs None"),
                (np.shape(s) == (n, n), "s not (n, n)"),
                (not want_v or v.shape == (nrow,), "value_out not (batch,)"),
                (not want_g or g.shape == (nrow, n), "grad_out not (batch, n)"),
                (np.asarray(x).dtype == v.dtype, "dtypes differ"),
            ]))

            def check() -> None:
                S, X = np.asarray(s, np.float64), np.asarray(x, np.float64)
                G = X @ S.T
                mg = np.abs(X) @ np.abs(S).T
                if want_g:
                    compare_values("quadratic_form_small/grad", g, G.astype(dt), _tol(mg, n, dt),
                                   "raw-" + _category(x, s))
                if want_v:
                    V = 0.5 * np.einsum("ij,ij->i", X, G)
                    mv = 0.5 * np.einsum("ij,ij->i", np.abs(X), mg)
                    compare_values("quadratic_form_small/value", v, V.astype(dt),
                                   _tol(mv, 2 * n, dt), "raw-" + _category(x, s))
        else:
            g = raw_input(d, (_off(d, nrow, loose), _off(d, n, loose)), dt, "g", loose)
            v, vb = guarded((_off(d, nrow, loose),), dt)
            args = (x, g, v)
            outs = [(vb, v.size)]
            reason = _join(_contract(x, g), _loose_reason([
                (np.shape(g) == (nrow, n), "g shape != x shape"),
                (v.shape == (nrow,), "value_out not (batch,)"),
                (np.asarray(x).dtype == np.asarray(g).dtype == v.dtype, "dtypes differ"),
            ]))

            def check() -> None:
                X, G = np.asarray(x, np.float64), np.asarray(g, np.float64)
                compare_values("rowdot_half", v, (0.5 * (X * G).sum(1)).astype(dt),
                               _tol(0.5 * (np.abs(X) * np.abs(G)).sum(1), n, dt),
                               "raw-" + _category(x, g))
        raw_call(entry, getattr(_kernels, entry), args, outs, loose,
                 reason, check)
        return

    if entry.startswith("quadratic_form") or entry == "quadratic_form_hessian_rows":
        n = min(n, 12)
        BA, BX = d.int(0 if loose else 1, 4), d.int(0 if loose else 1, 4)
        a = raw_input(d, (BA, n, _off(d, n, loose)), dt, "a", loose)
        if entry == "quadratic_form_hessian_rows":
            out, ob = guarded((_off(d, BA, loose), n, n), dt)
            reason = _join(_contract(a), _loose_reason([
                (np.shape(a) == (BA, n, n), "a not (BA, n, n)"),
                (out.shape == np.shape(a), "out shape != a shape"),
                (out.dtype == np.asarray(a).dtype, "dtypes differ"),
            ]))

            def check() -> None:
                A = np.asarray(a, np.float64)
                compare_values(entry, out, (A + np.swapaxes(A, 1, 2)).astype(dt),
                               _tol(np.abs(A) + np.abs(np.swapaxes(A, 1, 2)), 1, dt), "raw")

            raw_call(entry, _qf_kernels.quadratic_form_hessian_rows, (a, out), [(ob, out.size)],
                     loose, reason, check)
            return
        x = raw_input(d, (BX, _off(d, n, loose)), dt, "x", loose)
        batch = nrow
        hi_a, hi_x = (BA, BX) if loose and d.rare(2) else (BA - 1, BX - 1)
        ia = np.array([d.int(-1 if loose else 0, max(hi_a, 0)) for _ in range(batch)], np.int64)
        ix = np.array([d.int(-1 if loose else 0, max(hi_x, 0)) for _ in range(batch)], np.int64)
        note("ia", ia)
        note("ix", ix)
        v, vb = guarded((_off(d, batch, loose),), dt)
        g, gb = guarded((_off(d, batch, loose), _off(d, n, loose)), dt)
        sym = d.bool()
        if entry == "quadratic_form_batched":
            args = (a, ia, x, ix, v)
        elif entry == "quadratic_form_grad_batched":
            args = (a, ia, x, ix, g, sym)
        else:
            args = (a, ia, x, ix, v, g)
        reason = _join(_contract(a, x), _loose_reason([
            (np.shape(a)[1:] == (n, n), "a not (BA, n, n)"),
            (np.shape(x)[1:] == (n,), "x not (BX, n)"),
            (ia.size >= (g.shape[0] if entry == "quadratic_form_grad_batched" else v.shape[0])
             and ix.size >= (g.shape[0] if entry == "quadratic_form_grad_batched" else v.shape[0]),
             "index arrays shorter than the output"),
            (ia.size == 0 or (0 <= ia.min() and ia.max() < BA), "ia index out of range"),
            (ix.size == 0 or (0 <= ix.min() and ix.max() < BX), "ix index out of range"),
            (BA > 0 or batch == 0, "empty a with rows to compute"),
            (BX > 0 or batch == 0, "empty x with rows to compute"),
            (entry == "quadratic_form_grad_batched" or v.shape == (batch,), "value_out not (batch,)"),
            (entry == "quadratic_form_batched" or g.shape == (batch, n), "grad_out not (batch, n)"),
            (entry != "quadratic_form_value_and_grad_batched" or v.shape[0] == g.shape[0],
             "value/grad rows differ"),
            (np.asarray(a).dtype == np.asarray(x).dtype == v.dtype, "dtypes differ"),
        ]))

        def check() -> None:
            A = np.asarray(a, np.float64)[ia]
            X = np.asarray(x, np.float64)[ix]
            val = np.einsum("bi,bij,bj->b", X, A, X)
            mv = np.einsum("bi,bij,bj->b", np.abs(X), np.abs(A), np.abs(X))
            At = np.swapaxes(A, 1, 2)
            sym2 = sym and entry == "quadratic_form_grad_batched"  # value_and_grad has no flag
            gr = np.einsum("bij,bj->bi", 2 * A if sym2 else A + At, X)
            mg = np.einsum("bij,bj->bi", np.abs(A) + np.abs(At), np.abs(X))
            cat = "raw-" + _category(a, x)
            if entry != "quadratic_form_grad_batched":
                compare_values(entry + "/value", v, val.astype(dt), _tol(mv, n, dt), cat)
            if entry != "quadratic_form_batched":
                compare_values(entry + "/grad", g, gr.astype(dt), _tol(2 * mg, n, dt), cat)

        raw_call(entry, getattr(_qf_kernels, entry), args, [(vb, v.size), (gb, g.size)],
                 loose, reason, check)
        return

    if entry == "least_squares_rows":
        N, D = d.int(0, 8), min(n, 10)
        phi = raw_input(d, (N, _off(d, D, loose)), dt, "phi", loose)
        y = raw_input(d, (_off(d, N, loose),), dt, "y", loose)
        th = raw_input(d, (nrow, _off(d, D, loose)), dt, "theta", loose)
        ridge = d.pick([0.0, 0.5, 2.0]) if not loose else d.pick([0.0, -1.0, np.nan, np.inf])
        mean = d.bool()
        loss, lb = guarded((_off(d, nrow, loose),), dt)
        grad, gb = guarded((_off(d, nrow, loose), _off(d, D, loose)), dt)
        note("ridge", ridge)
        note("mean", mean)
        reason = _join(_contract(phi, y, th), _loose_reason([
            (np.shape(phi) == (N, D), "phi not (N, D)"),
            (np.shape(y) == (N,), "y not (N,)"),
            (np.shape(th) == (nrow, D), "theta not (batch, D)"),
            (loss.shape == (nrow,), "loss_out not (batch,)"),
            (grad.shape == (nrow, D), "grad_out not (batch, D)"),
            (not mean or N >= 1, "mean with N = 0"),
            (math.isfinite(ridge) and ridge >= 0, "ridge negative or not finite"),
            (len({np.asarray(z).dtype for z in (phi, y, th, loss)}) == 1, "dtypes differ"),
        ]))

        def check() -> None:
            c, r = (loss, grad), ref.least_squares(np.asarray(phi, np.float64),
                                                   np.asarray(y, np.float64),
                                                   np.asarray(th, np.float64), ridge=ridge, mean=mean)
            P, Y, T = (np.asarray(z, np.float64) for z in (phi, y, th))
            resid = np.abs(Y) + np.abs(T) @ np.abs(P).T
            den = max(N, 1) if mean else 1
            ml = (resid**2).sum(-1) / den + ridge * (T**2).sum(-1)
            mg = 2 * resid @ np.abs(P) / den + 2 * ridge * np.abs(T)
            cat = "raw-" + _category(phi, y, th)
            compare_values(entry + "/loss", c[0], np.asarray(r[0], dt), _tol(ml, N * D + D, dt), cat)
            compare_values(entry + "/grad", c[1], np.asarray(r[1], dt), _tol(mg, N * D + D, dt), cat)

        raw_call(entry, _qf_kernels.least_squares_rows, (phi, y, th, ridge, mean, loss, grad),
                 [(lb, loss.size), (gb, grad.size)], loose,
                 reason, check)
        return

    if entry.startswith("weighted_least_squares"):
        m, k = d.int(0, 6), min(n, 8)
        x = raw_input(d, (m,), dt, "x", loose)
        a = raw_input(d, (_off(d, m, loose), _off(d, k, loose)), dt, "a", loose)
        s = raw_input(d, (nrow, _off(d, k, loose)), dt, "s", loose)
        ident = entry.endswith("identity_rows")
        w = None if ident else raw_input(d, (_off(d, m, loose), _off(d, m, loose)), dt, "w", loose)
        val, vb = guarded((_off(d, nrow, loose),), dt)
        grad, gb = guarded((_off(d, nrow, loose), _off(d, k, loose)), dt)
        args = (x, a, s, val, grad) if ident else (x, a, s, w, val, grad)
        reason = _join(_contract(*[z for z in (x, a, s, w) if z is not None]), _loose_reason([
            (np.shape(a) == (m, k), "a not (m, k)"),
            (np.shape(s) == (nrow, k), "s not (batch, k)"),
            (ident or np.shape(w) == (m, m), "w not (m, m)"),
            (val.shape == (nrow,), "value_out not (batch,)"),
            (grad.shape == (nrow, k), "grad_out not (batch, k)"),
            (len({np.asarray(z).dtype for z in (x, a, s, val) + (() if ident else (w,))}) == 1,
             "dtypes differ"),
        ]))

        def check() -> None:
            X, AA, S = (np.asarray(z, np.float64) for z in (x, a, s))
            WW = None if ident else np.asarray(w, np.float64)
            r = ref.weighted_least_squares(X, AA, S, WW)
            Wm = np.eye(m) if ident else np.abs(WW)
            resid = np.abs(X) + np.abs(S) @ np.abs(AA).T
            mv = np.einsum("bi,ij,bj->b", resid, Wm, resid)
            mg = resid @ (Wm + Wm.T) @ np.abs(AA)
            cat = "raw-" + _category(x, a, s, w)
            compare_values(entry + "/value", val, np.asarray(r[0], dt),
                           _tol(mv, m * k + m * m, dt), cat)
            compare_values(entry + "/grad", grad, np.asarray(r[1], dt),
                           _tol(mg, m * k + m * m, dt), cat)

        raw_call(entry, getattr(_qf_kernels, entry), args, [(vb, val.size), (gb, grad.size)],
                 loose, reason, check)
        return

    # --- finite-difference kernels ------------------------------------------
    n = min(n, 40)
    x0 = raw_input(d, (n,), "float64", "x0", loose)
    X0 = np.asarray(x0, np.float64)
    h0 = d.pick([1e-5, 6e-6, 1e-3, 1e-8]) if not loose else d.pick([0.0, -1.0, np.nan, np.inf, 1e300])
    meth, order = d.pick([("central", 2), ("central", 4), ("forward", 1), ("backward", 2),
                          ("central", 8), ("forward", 4)])
    st = _stencil(meth, order, 1)
    offsets, weights = tuple(st.offsets_f), tuple(float(w) for w in st.weights)
    if loose and d.rare(2):
        cut = d.int(0, len(offsets))
        if d.bool():
            offsets = offsets[:cut]
        else:
            weights = weights[:cut]
    note("h0", h0)
    note("offsets", offsets)
    note("weights", weights)
    nfev = [0]

    def fsum(z):  # noqa: ANN001, ANN202
        nfev[0] += 1
        return float(np.sum(np.asarray(z) ** 2)) if d_scalar else np.asarray(z) ** 2

    d_scalar = d.bool()
    xreason = _join(_contract(x0), _loose_reason([
        (np.asarray(x0).dtype == np.float64, "x not float64")]))
    sreason = _loose_reason([(len(weights) >= len(offsets), "weights shorter than offsets"),
                             (len(offsets) >= 1, "empty stencil")])
    hreason = _loose_reason([(h0 > 0 and math.isfinite(h0), "h0 not finite and > 0")])
    del hreason  # h0 is only a number: any value is memory-safe (it gives bad >= 0)
    reason = {"axis_combine": sreason,
              "axis_default": _join(xreason, sreason)}.get(entry, xreason)
    if skip_known(entry, reason):
        return

    guards: list = []

    def steps() -> np.ndarray:
        t = h0 * np.maximum(1.0, np.abs(X0))
        return (X0 + t) - X0

    try:
        if entry == "relative_steps":
            h, bad = _fd_kernels.relative_steps(x0, h0)
            if not reason:
                want = steps()
                if not np.array_equal(h, want, equal_nan=True):
                    finding("raw-wrong-result", "relative_steps", f"{h} vs {want}")
        elif entry == "axis_stack":
            P, h, bad = _fd_kernels.axis_stack(x0, h0, offsets)
            if loose and reason:
                if not (isinstance(x0, np.ndarray) and np.array_equal(P[0] if P is not None and len(P) else X0, X0)):
                    finding("precondition", f"axis_stack: {reason}", "accepted, result wrong")
                else:
                    finding("precondition", f"axis_stack: {reason}", "accepted")
            elif P is not None and bad < 0:
                hh = steps()
                rows = [X0.copy()] if any(o == 0.0 for o in offsets) else []
                for o in offsets:
                    if o == 0.0:
                        continue
                    for j in range(n):
                        p = X0.copy()
                        p[j] = X0[j] + o * hh[j]
                        rows.append(p)
                want = np.array(rows).reshape(-1, n)
                if P.shape != want.shape or not np.array_equal(P, want, equal_nan=True):
                    finding("raw-wrong-result", f"axis_stack ({_category(x0)})",
                            f"P {P.shape} differs from the expected stack {want.shape}")
        elif entry == "axis_combine":
            K = (1 if 0.0 in offsets else 0) + sum(o != 0.0 for o in offsets) * n
            mcols = d.int(0 if loose else 1, 3)
            V = raw_input(d, (_off(d, K, loose), mcols), "float64", "V", loose)
            h = np.abs(X0) * 1e-3 + 1e-3
            reason = _join(reason, _contract(V), _loose_reason([
                (np.shape(V)[0] == K, "V rows != points of the stencil"),
                (np.shape(V)[1:] != (0,), "V with no columns")]))
            if skip_known(entry, reason):
                return
            acc = _fd_kernels.axis_combine(V, h, offsets, weights)
            if loose and reason:
                finding("precondition", f"axis_combine: {reason}", "accepted")
        elif entry == "axis_default":
            shape = (n,) if d.int(0, 2) else d.pick([(n, 1), (1, n), ()])
            note("shape", shape)
            out = _fd_kernels.axis_default(fsum, (), x0, shape, h0, offsets, weights, d_scalar,
                                           "gradient")
            if loose and reason:
                finding("precondition", f"axis_default: {reason}", "accepted")
        elif entry == "axis_loop":
            R = d.int(0, 2 * n + 1) if n else 0  # no row can move a coordinate of an empty x
            coords = np.array([d.int(0, max(n - 1, 0)) for _ in range(R)], np.intp)
            if loose and R and d.rare(2):
                coords[d.int(0, R - 1)] = d.pick([n, n + 1, -1])
            kinds = np.zeros(R, np.int8)
            hh = np.full(R, 1e-3)
            offs = np.array([offsets], np.float64) if offsets else np.zeros((1, 0))
            wts = np.array([weights], np.float64) if weights else np.zeros((1, 0))
            lens = np.array([min(len(offsets), len(weights))], np.intp)
            if loose and d.rare(2):
                lens[0] += d.int(1, 3)
            note("coords", coords)
            note("lens", lens)
            xb, xbuf = guarded((n,), np.float64)
            xb[:] = X0
            guards.append((xbuf, n))
            reason = _join(reason, _loose_reason([
                (R == 0 or (coords.min() >= 0 and coords.max() < n), "coords out of range"),
                (lens[0] <= offs.shape[1], "lens beyond the stencil table"),
                (np.shape(x0) == (n,), "x shape")]))
            if skip_known(entry, reason):
                return
            _fd_kernels.axis_loop(fsum, (xb.reshape(-1),), xb, X0, coords, hh, kinds, offs,
                                  wts, lens, 1, d_scalar, "gradient")
            if loose and reason:
                finding("precondition", f"axis_loop: {reason}", "accepted")
        elif entry == "hessian2_loop":
            n2 = min(n, 8)
            xb, xbuf = guarded((n2,), np.float64)
            xb[:] = X0[:n2]
            guards.append((xbuf, n2))
            h = np.full(_off(d, n2, loose), 1e-3)
            reason = _loose_reason([(h.shape == (n2,), "h shorter/longer than x")])
            d_scalar = True
            if skip_known(entry, reason):
                return
            _fd_kernels.hessian2_loop(fsum, (xb,), xb, X0[:n2].copy(), h)
            if loose and reason:
                finding("precondition", f"hessian2_loop: {reason}", "accepted")
        elif entry in ("points_loop", "complex_loop"):
            K = d.int(0, 6) if n else 0  # (an index into an empty xb corrupts the heap)
            i1 = np.array([d.int(-1, n - 1) if n else -1 for _ in range(K)], np.intp)
            i2 = np.array([d.int(-1, n - 1) if n else -1 for _ in range(K)], np.intp)
            if loose and K and d.rare(2):
                i1[d.int(0, K - 1)] = d.pick([n, n + 2, -2])
            v1 = np.arange(K, dtype=np.float64)
            v2 = -np.arange(K, dtype=np.float64)
            note("i1", i1)
            note("i2", i2)
            if entry == "points_loop":
                reason = _loose_reason([(K == 0 or (i1.min() >= -1 and i1.max() < n
                                                    and i2.min() >= -1 and i2.max() < n),
                                         "index out of range")])
                xb, xbuf = guarded((n,), np.float64)
                xb[:] = X0
                guards.append((xbuf, n))
                if skip_known(entry, reason):
                    return
                _fd_kernels.points_loop(fsum, (xb,), xb, X0, i1, v1, i2, v2, d_scalar, "jacobian")
            else:
                i1 = np.where(i1 < 0, 0, i1) if not loose else i1
                reason = _loose_reason([(K == 0 or (i1.min() >= 0 and i1.max() < n),
                                         "index out of range (complex: -1 not allowed)")])
                xb, xbuf = guarded((n,), np.complex128)
                xb[:] = X0
                guards.append((xbuf, n))
                if skip_known(entry, reason):
                    return
                _fd_kernels.complex_loop(lambda z: np.sum(z**2), (xb,), xb, X0, i1, v1 + 1e-3,
                                         True, "gradient")
            if loose and reason:
                finding("precondition", f"{entry}: {reason}", "accepted")
    except RAW_ALLOWED:
        pass
    except Exception as err:  # noqa: BLE001
        finding("raw-exception", f"{entry} {_where(err)}", traceback.format_exc())
    for buf, size in guards:
        if not canary_ok(buf, size):
            finding("raw-oob-write", f"{entry} ({'loose' if loose else 'contract'})",
                    "the canary around the perturbed buffer xb was overwritten")


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

TARGETS = {
    "reductions": target_reductions,
    "quadratic": target_quadratic,
    "finite_diff": target_finite_diff,
    "raw": target_raw,
}


def make_test_one_input(target):  # noqa: ANN001, ANN201
    def test_one_input(data: bytes) -> None:
        CURRENT["data"] = data
        CURRENT["case"] = []
        try:
            target(Draw(data))
        except Finding:
            raise
        except Exception as err:  # noqa: BLE001  (the harness's own oracle failed)
            finding("harness-error", _where(err) + " " + type(err).__name__,
                    "".join(traceback.format_exception(err)))

    return test_one_input


def main() -> None:
    global FINDINGS_DIR, VERBOSE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    parser.add_argument("--target", default=os.environ.get("VCALC_FUZZ_TARGET"),
                        choices=sorted(TARGETS))
    parser.add_argument("--replay", action="store_true",
                        help="run the given input files once, printing cases and findings")
    parser.add_argument("--help-harness", action="store_true")
    ns, rest = parser.parse_known_args()
    if ns.help_harness or ns.target is None:
        print(__doc__)
        sys.exit(0 if ns.help_harness else 2)
    FINDINGS_DIR = os.environ.get("VCALC_FUZZ_FINDINGS", f"/tmp/fuzz-findings/{ns.target}")
    test_one_input = make_test_one_input(TARGETS[ns.target])
    if ns.replay:
        VERBOSE = True
        for path in rest:
            with open(path, "rb") as fh:
                data = fh.read()
            print(f"=== {path}")
            test_one_input(data)
            print("(done)", flush=True)
        return
    atheris.Setup([sys.argv[0]] + rest, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
