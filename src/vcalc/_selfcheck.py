"""Self-check: every compiled kernel against the NumPy reference.

Runs each registry entry's cases on the ``"cython"`` and the ``"numpy"``
backends and compares the results: same type, dtype and shape, NaN and inf
in the same places, and finite values within a tolerance of the dtype,
measured against the entry's error scale.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from vcalc import _backend
from vcalc._registry import REGISTRY, Case, Entry

__all__ = ["compare", "check_entry", "run"]

# Largest accepted error, relative to the scale, by result dtype: a few
# hundred ulp of headroom over what the kernels and the reference reach.
TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-5, np.dtype(np.float16): 4e-3}


@dataclass
class Report:
    """What one function's self-check found."""

    name: str
    cases: int
    max_error: float
    worst: str
    failures: list[str]

    @property
    def ok(self) -> bool:
        return not self.failures


def _parts(out: Any) -> tuple[Any, ...]:
    return out if isinstance(out, tuple) else (out,)


def compare(fast: Any, ref: Any, scale: Any = None) -> tuple[float, list[str]]:
    """Compare a fast result with the reference result.

    Parameters
    ----------
    fast, ref : scalar, ndarray or tuple of them
        The two results.
    scale : ndarray or tuple of ndarray, optional
        The size each error is measured against (default: ``|ref|``, or the
        smallest normal number of its dtype where ``|ref|`` is below it).

    Returns
    -------
    max_error : float
        The largest ``|fast - ref| / scale`` over finite entries.
    problems : list of str
        Structural mismatches and errors above the dtype's tolerance.
    """
    fast_t, ref_t = _parts(fast), _parts(ref)
    scale_t = _parts(scale) if scale is not None else (None,) * len(ref_t)
    if len(fast_t) != len(ref_t):
        return np.inf, [f"returns {len(fast_t)} values, reference {len(ref_t)}"]
    worst, problems = 0.0, []
    for k, (f, r, s) in enumerate(zip(fast_t, ref_t, scale_t, strict=True)):
        where = f"output {k}: " if len(ref_t) > 1 else ""
        if np.isscalar(f) != np.isscalar(r):
            problems.append(
                f"{where}{type(f).__name__} where the reference gives {type(r).__name__}"
            )
        f, r = np.asarray(f), np.asarray(r)
        if f.dtype != r.dtype or f.shape != r.shape:
            problems.append(f"{where}{f.dtype}{f.shape} vs reference {r.dtype}{r.shape}")
            continue
        nan_f, nan_r = np.isnan(f), np.isnan(r)
        if np.any(nan_f != nan_r):
            problems.append(f"{where}NaN at {np.argwhere(nan_f != nan_r)[0].tolist()} differs")
        inf = np.isinf(f) | np.isinf(r)
        if np.any(f[inf] != r[inf]):
            problems.append(f"{where}inf at {np.argwhere(inf & (f != r))[0].tolist()} differs")
        fin = np.isfinite(f) & np.isfinite(r)
        if not fin.any():
            continue
        diff = np.abs(f[fin].astype(np.float64) - r[fin].astype(np.float64))
        if s is None:
            # relative error, measured no finer than the smallest normal
            # number: a subnormal result one ulp (2^-149 for float32) off is
            # not 1e-5 relative wrong
            tiny = float(np.finfo(r.dtype).tiny) if r.dtype.kind in "fc" else 0.0
            den = np.maximum(np.abs(r[fin].astype(np.float64)), tiny)
        else:
            den = np.broadcast_to(np.abs(np.asarray(s, dtype=np.float64)), r.shape)[fin]
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.where(diff == 0, 0.0, diff / den)
        err = np.where(np.isnan(err), np.inf, err)
        e = float(err.max())
        worst = max(worst, e)
        tol = TOLERANCE.get(r.dtype, 1e-12)
        if e > tol:
            problems.append(f"{where}error {e:.3g} above tolerance {tol:g}")
    return worst, problems


def check_entry(entry: Entry, rng: np.random.Generator) -> Report:
    """Run one registry entry's cases on both backends and compare."""
    report = Report(entry.name, 0, 0.0, "", [])
    for case in entry.cases(rng):
        report.cases += 1
        with _backend.use_backend("numpy"):
            ref = entry.ref(*case.args, **case.kwargs)
        with _backend.use_backend("cython"):
            fast = entry.func(*case.args, **case.kwargs)
        if entry.project is not None:
            ref, fast = entry.project(ref), entry.project(fast)
        scale = entry.scale(case, ref) if entry.scale else None
        err, problems = compare(fast, ref, scale)
        if err >= report.max_error:
            report.max_error, report.worst = err, case.label
        report.failures += [f"{case.label}: {p}" for p in problems]
    return report


def run(seed: int = 0, file: TextIO | None = None, entries: list[Entry] | None = None) -> bool:
    """Check every kernel against the reference and print one line per function.

    Returns True when every function matches.
    """
    out = file if file is not None else sys.stdout
    if not _backend.HAVE_EXTENSION:
        print("FAIL: the compiled extension is not available; nothing to check.", file=out)
        return False
    rng = np.random.default_rng(seed)
    reports = [check_entry(e, rng) for e in (entries or list(REGISTRY.values()))]
    width = max(len(r.name) for r in reports)
    print(f"\nself-check: Cython kernels vs NumPy reference (seed {seed})", file=out)
    for r in reports:
        status = "ok" if r.ok else "MISMATCH"
        print(
            f"  {r.name:<{width}}  {r.cases:3d} cases  max rel error {r.max_error:9.2e}  {status}",
            file=out,
        )
        for failure in r.failures[:5]:
            print(f"      {failure}", file=out)
    bad = [r.name for r in reports if not r.ok]
    if bad:
        print(
            f"FAIL: {len(bad)} of {len(reports)} functions differ from the reference: "
            f"{', '.join(bad)}",
            file=out,
        )
        return False
    print(f"PASS: all {len(reports)} functions match the reference.", file=out)
    return True


__all__ += ["Case", "Report"]
