"""Plans for finite differences: which points to evaluate and how to combine them.

A finite-difference call is split in three:

1. **plan** (this module, pure NumPy): from the point x, the steps and the
   stencils, the full list of perturbed points and the weights that turn
   f's values there into the result;
2. **evaluate**: an evaluator runs f on the points.  The Cython loop
   (``_fd_kernels``) perturbs a private copy of x in place; the vectorised
   evaluator stacks points and calls f on stacks; the reference evaluator
   builds each point afresh.  A future evaluator (a process pool, a cluster)
   needs only :meth:`points` and :meth:`combine`;
3. **combine**: the weighted sums, divided by the step powers.

Every plan offers

* ``points()``: the points as ``(i1, v1, i2, v2)``, index and value arrays of
  length K: point k is x with ``x[i1[k]] = v1[k]`` and ``x[i2[k]] = v2[k]``,
  an index of -1 meaning "no change" (so ``i1[k] == -1`` is x itself);
* ``combine(values)``: the result rows from the (K, m) values, summing in a
  fixed order that the fused Cython loops repeat operation for operation, so
  every evaluator gives bit-identical results;
* ``triplets()``: the same linear map as (row, column, weight) triplets and a
  per-row divisor, for the reference backend's independent combine;
* ``nfev``: the number of points, which is the number of evaluations of f.

Point coordinates are computed as ``x0[i] + o * h[i]`` (one rounding), the
same expression everywhere, so bounds checks see exactly the points f sees.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar, cast

import numpy as np

from vcalc._stencils import _stencil

__all__ = [
    "KINDS",
    "stencil_table",
    "AxisPlan",
    "Hessian2Plan",
    "TensorHessianPlan",
    "ComplexPlan",
    "LinePlan",
    "choose_kinds",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def quiet_fp(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with NumPy's floating-point warnings off.

    A combination of f-values that contains inf gives inf - inf = NaN; that
    is reported once, naming the entries, by the public function
    (``_finite_diff._warn_nonfinite``), not as NumPy's anonymous "invalid
    value" warning.  A new ``np.errstate`` is made per call: one shared
    instance would not be thread-safe.
    """

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            return fn(*args, **kwargs)

    return wrapper


#: Stencil kinds, in the order of the rows of :func:`stencil_table`.
KINDS: tuple[str, ...] = ("central", "forward", "backward")

_INTP = np.intp


@functools.cache
def stencil_table(order: int, deriv: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets, weights and lengths of the three stencil kinds of one accuracy order.

    Row s is kind ``KINDS[s]``.  A central stencil exists only for even
    orders; for odd ones its row is empty (length 0).  One-sided stencils
    exist for every order (they are what a central stencil of the same order
    turns into next to a bound).

    Parameters
    ----------
    order : int
        Accuracy order.
    deriv : {1, 2}
        Derivative approximated.

    Returns
    -------
    offs : ndarray, float64, shape (3, L)
        Offsets in units of h, zero-padded.
    wts : ndarray, float64, shape (3, L)
        Weights, zero-padded.
    lens : ndarray, intp, shape (3,)
        Number of points of each stencil.

    Examples
    --------
    >>> offs, wts, lens = stencil_table(2, 1)
    >>> lens.tolist()
    [2, 3, 3]
    >>> offs[0, :2].tolist(), wts[0, :2].tolist()
    ([-1.0, 1.0], [-0.5, 0.5])
    """
    rows: list[tuple[tuple[int, ...], tuple[float, ...]]] = []
    for kind in KINDS:
        if kind == "central" and order % 2:
            rows.append(((), ()))
        else:
            s = _stencil(kind, order, deriv)
            rows.append((s.offsets, s.weights))
    width = max(len(o) for o, _ in rows)
    offs = np.zeros((3, width))
    wts = np.zeros((3, width))
    lens = np.zeros(3, dtype=_INTP)
    for r, (o, w) in enumerate(rows):
        offs[r, : len(o)] = o
        wts[r, : len(w)] = w
        lens[r] = len(o)
    for a in (offs, wts, lens):
        a.flags.writeable = False
    return offs, wts, lens


def choose_kinds(
    x0: np.ndarray,
    h: np.ndarray,
    method: str,
    order: int,
    deriv: int,
    lb: np.ndarray,
    ub: np.ndarray,
) -> np.ndarray:
    """Per-coordinate stencil kind so that no point leaves the box [lb, ub].

    The method's own stencil is kept where it fits; next to a bound a
    central stencil becomes forward (or backward), and a one-sided stencil
    flips to the other side, always with the same accuracy order.

    Parameters
    ----------
    x0, h, lb, ub : ndarray, float64, shape (n,)
        The point, the steps and the bounds (``lb <= x0 <= ub``).
    method : {"central", "forward", "backward"}
    order : int
    deriv : {1, 2}

    Returns
    -------
    ndarray, int8, shape (n,)
        Indices into :data:`KINDS`.

    Raises
    ------
    ValueError
        If at some coordinate no stencil of that order fits in the box with
        that step; the message names the coordinate and suggests a smaller
        `step`.

    Examples
    --------
    >>> x0 = np.array([0.0, 0.5, 1.0]); h = np.full(3, 0.25)
    >>> lb, ub = np.zeros(3), np.ones(3)
    >>> choose_kinds(x0, h, "central", 2, 1, lb, ub).tolist()   # forward, central, backward
    [1, 0, 2]
    """
    offs, _, lens = stencil_table(order, deriv)
    prefs = {
        "central": (0, 1, 2),
        "forward": (1, 2),
        "backward": (2, 1),
    }[method]
    kind = np.full(x0.shape, -1, dtype=np.int8)
    for s in prefs:
        if lens[s] == 0:
            continue
        o = offs[s, : lens[s]]
        lo = x0 + o.min() * h
        hi = x0 + o.max() * h
        fits = (lo >= lb) & (hi <= ub) & (kind < 0)
        kind[fits] = s
    if np.any(kind < 0):
        i = int(np.flatnonzero(kind < 0)[0])
        raise ValueError(
            f"`bounds` leave too little room for a stencil of order {order} at flat index {i}: "
            f"x = {x0[i]!r} in [{lb[i]!r}, {ub[i]!r}] with step {h[i]!r}; "
            "pass a smaller `step` or widen the bounds."
        )
    return kind


@dataclass(frozen=True)
class AxisPlan:
    """One-dimensional stencils along coordinates: gradients and Jacobians.

    Row r of the result is coordinate ``coords[r]``; with s = kind[r]::

        row[r] = (sum_k wts[s, k] * f(x + offs[s, k] * h[r] * e_coords[r])) / h[r]**deriv

    summed in the order of the offsets (f(x) where an offset is 0).

    Attributes
    ----------
    x0 : ndarray, float64, shape (n,)
    coords : ndarray, intp, shape (R,)
    h : ndarray, float64, shape (R,)
    kind : ndarray, int8, shape (R,)
    order, deriv : int
    """

    x0: np.ndarray
    coords: np.ndarray
    h: np.ndarray
    kind: np.ndarray
    order: int
    deriv: int

    @property
    def table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stencil table (offsets, weights, lengths)."""
        return stencil_table(self.order, self.deriv)

    @functools.cached_property
    def _layout_cached(self) -> tuple[bool, list[tuple[int, np.ndarray, np.ndarray, int]]]:
        return self._compute_layout()

    def _layout(self) -> tuple[bool, list[tuple[int, np.ndarray, np.ndarray, int]]]:
        """Whether f(x) is needed, and per kind in use: (kind, rows, offsets, first point)."""
        return self._layout_cached

    def _compute_layout(self) -> tuple[bool, list[tuple[int, np.ndarray, np.ndarray, int]]]:
        offs, _, lens = self.table
        k = self.kind
        used = [int(k[0])] if k.size and k.min() == k.max() else [int(s) for s in np.unique(k)]
        center = any(0.0 in offs[s, : lens[s]] for s in used)
        start = int(center)
        groups = []
        for s in used:
            rows = np.arange(k.size) if len(used) == 1 else np.flatnonzero(k == s)
            nz = offs[s, : lens[s]]
            nz = nz[nz != 0.0]
            groups.append((s, rows, nz, start))
            start += rows.size * nz.size
        return center, groups

    @property
    def nfev(self) -> int:
        """Number of evaluations of f."""
        center, groups = self._layout()
        return int(center) + sum(rows.size * nz.size for _, rows, nz, _ in groups)

    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The points: f(x) first if needed, then per kind, per row, per offset."""
        center, groups = self._layout()
        i1 = [np.full(int(center), -1, dtype=_INTP)]
        v1 = [np.zeros(int(center))]
        for _, rows, nz, _ in groups:
            j = self.coords[rows]
            i1.append(np.repeat(j, nz.size).astype(_INTP))
            v1.append((self.x0[j][:, None] + nz[None, :] * self.h[rows][:, None]).ravel())
        i1a = np.concatenate(i1)
        v1a = np.concatenate(v1)
        return i1a, v1a, np.full(i1a.size, -1, dtype=_INTP), np.zeros(i1a.size)

    @quiet_fp
    def combine(self, values: np.ndarray) -> np.ndarray:
        """The (R, m) result from the (nfev, m) values (same operation order as the loop)."""
        offs, wts, lens = self.table
        center, groups = self._layout()
        out = np.zeros((self.coords.size, values.shape[1]))
        for s, rows, nz, start in groups:
            acc = np.zeros((rows.size, values.shape[1]))
            block = values[start : start + rows.size * nz.size].reshape(rows.size, nz.size, -1)
            q = 0
            for k in range(lens[s]):
                o, w = offs[s, k], wts[s, k]
                if o == 0.0:
                    acc += w * values[0]
                else:
                    acc += w * block[:, q]
                    q += 1
            hr = self.h[rows]
            acc /= (hr if self.deriv == 1 else hr * hr)[:, None]
            out[rows] = acc
        return out

    def triplets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, weights) of the linear map and the per-row divisor."""
        offs, wts, lens = self.table
        center, groups = self._layout()
        r_, c_, w_ = [], [], []
        for s, rows, nz, start in groups:
            q = 0
            for k in range(lens[s]):
                r_.append(rows)
                w_.append(np.full(rows.size, wts[s, k]))
                if offs[s, k] == 0.0:
                    c_.append(np.zeros(rows.size, dtype=_INTP))
                else:
                    c_.append(start + np.arange(rows.size) * nz.size + q)
                    q += 1
        scale = self.h if self.deriv == 1 else self.h * self.h
        return np.concatenate(r_), np.concatenate(c_), np.concatenate(w_), scale


@dataclass(frozen=True)
class Hessian2Plan:
    """The central order-2 Hessian in n**2 + n + 1 points (see ``mixed_stencil``).

    Points: x; then x - h_i e_i and x + h_i e_i for each i; then
    x + h_i e_i + h_j e_j and x - h_i e_i - h_j e_j for each i < j, row-major.
    Rows of the result: the n*n entries, row-major.
    """

    x0: np.ndarray
    h: np.ndarray

    @property
    def nfev(self) -> int:
        """Number of evaluations of f."""
        n = self.x0.size
        return n * n + n + 1

    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The points, in the order of the fused loop."""
        n = self.x0.size
        x0, h = self.x0, self.h
        ar = np.arange(n, dtype=_INTP)
        ii, jj = np.triu_indices(n, 1)
        i1 = np.concatenate([[-1], np.repeat(ar, 2), np.repeat(ii, 2)]).astype(_INTP)
        axis = np.stack([x0 - h, x0 + h], axis=1).ravel()
        pp_i, mm_i = x0[ii] + h[ii], x0[ii] - h[ii]
        pp_j, mm_j = x0[jj] + h[jj], x0[jj] - h[jj]
        v1 = np.concatenate([[0.0], axis, np.stack([pp_i, mm_i], axis=1).ravel()])
        i2 = np.concatenate([np.full(1 + 2 * n, -1), np.repeat(jj, 2)]).astype(_INTP)
        v2 = np.concatenate([np.zeros(1 + 2 * n), np.stack([pp_j, mm_j], axis=1).ravel()])
        return i1, v1, i2, v2

    @quiet_fp
    def combine(self, values: np.ndarray) -> np.ndarray:
        """The (n*n, 1) Hessian entries from the values (same order as the loop)."""
        n = self.x0.size
        v = values[:, 0]
        h = self.h
        f0 = v[0]
        fm, fp = v[1 : 1 + 2 * n : 2], v[2 : 2 + 2 * n : 2]
        H = np.empty((n, n))
        acc = 1.0 * fm
        acc += -2.0 * f0
        acc += 1.0 * fp
        H[np.diag_indices(n)] = acc / (h * h)
        ii, jj = np.triu_indices(n, 1)
        fpp, fmm = v[1 + 2 * n :: 2], v[2 + 2 * n :: 2]
        acc = 0.5 * fpp
        acc += -0.5 * fp[ii]
        acc += -0.5 * fp[jj]
        acc += 1.0 * f0
        acc += -0.5 * fm[ii]
        acc += -0.5 * fm[jj]
        acc += 0.5 * fmm
        H[ii, jj] = acc / (h[ii] * h[jj])
        H[jj, ii] = H[ii, jj]
        return H.reshape(n * n, 1)

    def triplets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, weights) over the n*n entries, and the per-row divisor."""
        n = self.x0.size
        ar = np.arange(n)
        m_i, p_i = 1 + 2 * ar, 2 + 2 * ar
        rows = [ar * n + ar] * 3
        cols = [m_i, np.zeros(n, dtype=_INTP), p_i]
        wts = [np.full(n, 1.0), np.full(n, -2.0), np.full(n, 1.0)]
        ii, jj = np.triu_indices(n, 1)
        k = np.arange(ii.size)
        pp, mm = 1 + 2 * n + 2 * k, 2 + 2 * n + 2 * k
        pair_cols = [pp, p_i[ii], p_i[jj], np.zeros(ii.size, dtype=_INTP), m_i[ii], m_i[jj], mm]
        pair_w = [0.5, -0.5, -0.5, 1.0, -0.5, -0.5, 0.5]
        for r in (ii * n + jj, jj * n + ii):
            for c, w in zip(pair_cols, pair_w, strict=True):
                rows.append(r)
                cols.append(c)
                wts.append(np.full(ii.size, w))
        scale = np.outer(self.h, self.h).ravel()
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(wts), scale


@dataclass(frozen=True)
class TensorHessianPlan:
    """A Hessian from tensor products of per-coordinate first-derivative stencils.

    Diagonal entries use the second-derivative stencil of the coordinate's
    kind; an off-diagonal entry (i, j) uses the product of the
    first-derivative stencils of coordinates i and j::

        H_ij ~= sum_a sum_b w_a w_b f(x + a h_i e_i + b h_j e_j) / (h_i h_j)

    which has the same accuracy order.  Points on an axis (a = 0 or b = 0)
    are those of the diagonal stencils and are evaluated once.  Used for
    every method and order except the central order-2 Hessian, and whenever
    bounds make some coordinates one-sided.

    The plan is built explicitly: points (i1, v1, i2, v2) and, per entry of
    the upper triangle, its columns and weights in summation order.
    """

    x0: np.ndarray
    h: np.ndarray
    kind: np.ndarray
    order: int
    i1: np.ndarray
    v1: np.ndarray
    i2: np.ndarray
    v2: np.ndarray
    entry_i: np.ndarray  # (E,) upper-triangle entries
    entry_j: np.ndarray
    cols: np.ndarray  # (E, P) padded columns
    wts: np.ndarray  # (E, P) padded weights
    lens: np.ndarray  # (E,)

    @classmethod
    def build(
        cls, x0: np.ndarray, h: np.ndarray, kind: np.ndarray, order: int
    ) -> TensorHessianPlan:
        """Plan the Hessian at x0 with steps h and per-coordinate kinds."""
        n = x0.size
        o2, w2, l2 = stencil_table(order, 2)
        o1, w1, l1 = stencil_table(order, 1)
        # Axis points: every non-zero offset of the coordinate's deriv-2 stencil
        # (a superset of its deriv-1 offsets); index table axis[(i, offset)].
        i1, v1 = [np.array([-1], dtype=_INTP)], [np.array([0.0])]
        axis: dict[tuple[int, float], int] = {}
        k = 1
        for i in range(n):
            s = int(kind[i])
            offs = set(o2[s, : l2[s]].tolist()) | set(o1[s, : l1[s]].tolist())
            for o in sorted(offs):
                if o != 0.0:
                    axis[(i, o)] = k
                    i1.append(np.array([i], dtype=_INTP))
                    v1.append(np.array([x0[i] + o * h[i]]))
                    k += 1
        i2 = [np.full(k, -1, dtype=_INTP)]
        v2 = [np.zeros(k)]

        def col(i: int, o: float) -> int:
            return 0 if o == 0.0 else axis[(i, o)]

        ent_i, ent_j, ent_c, ent_w = [], [], [], []
        for i in range(n):
            s = int(kind[i])
            ent_i.append(i)
            ent_j.append(i)
            ent_c.append([col(i, o) for o in o2[s, : l2[s]]])
            ent_w.append(list(w2[s, : l2[s]]))
        for i in range(n):
            si = int(kind[i])
            for j in range(i + 1, n):
                sj = int(kind[j])
                cs, ws = [], []
                for a, wa in zip(o1[si, : l1[si]], w1[si, : l1[si]], strict=True):
                    for b, wb in zip(o1[sj, : l1[sj]], w1[sj, : l1[sj]], strict=True):
                        if a == 0.0 or b == 0.0:
                            cs.append(col(j, b) if a == 0.0 else col(i, a))
                        else:
                            cs.append(k)
                            i1.append(np.array([i], dtype=_INTP))
                            v1.append(np.array([x0[i] + a * h[i]]))
                            i2.append(np.array([j], dtype=_INTP))
                            v2.append(np.array([x0[j] + b * h[j]]))
                            k += 1
                        ws.append(wa * wb)
                ent_i.append(i)
                ent_j.append(j)
                ent_c.append(cs)
                ent_w.append(ws)
        width = max(len(c) for c in ent_c)
        E = len(ent_c)
        cols = np.zeros((E, width), dtype=_INTP)
        wts = np.zeros((E, width))
        lens = np.array([len(c) for c in ent_c], dtype=_INTP)
        for e in range(E):
            cols[e, : lens[e]] = ent_c[e]
            wts[e, : lens[e]] = ent_w[e]
        return cls(
            x0,
            h,
            kind,
            order,
            np.concatenate(i1),
            np.concatenate(v1),
            np.concatenate(i2),
            np.concatenate(v2),
            np.array(ent_i, dtype=_INTP),
            np.array(ent_j, dtype=_INTP),
            cols,
            wts,
            lens,
        )

    @property
    def nfev(self) -> int:
        """Number of evaluations of f."""
        return int(self.i1.size)

    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The points, x first."""
        return self.i1, self.v1, self.i2, self.v2

    @quiet_fp
    def combine(self, values: np.ndarray) -> np.ndarray:
        """The (n*n, 1) Hessian entries from the values."""
        n = self.x0.size
        v = values[:, 0]
        acc = np.zeros(self.lens.size)
        for p in range(self.cols.shape[1]):
            sel = self.lens > p
            acc[sel] += self.wts[sel, p] * v[self.cols[sel, p]]
        acc /= self.h[self.entry_i] * self.h[self.entry_j]
        H = np.empty((n, n))
        H[self.entry_i, self.entry_j] = acc
        H[self.entry_j, self.entry_i] = acc
        return H.reshape(n * n, 1)

    def triplets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, weights) over the n*n entries, and the per-row divisor."""
        n = self.x0.size
        e = np.repeat(np.arange(self.lens.size), self.lens)
        mask = np.arange(self.cols.shape[1])[None, :] < self.lens[:, None]
        cols, wts = self.cols[mask], self.wts[mask]
        ei, ej = self.entry_i[e], self.entry_j[e]
        off = ei != ej
        rows = np.concatenate([ei * n + ej, (ej * n + ei)[off]])
        return (
            rows,
            np.concatenate([cols, cols[off]]),
            np.concatenate([wts, wts[off]]),
            np.outer(self.h, self.h).ravel(),
        )


@dataclass(frozen=True)
class ComplexPlan:
    """Complex step: row r is Im f(x + i h[r] e_coords[r]) / h[r].

    ``points()`` gives the coordinate in i1 and the imaginary step in v1.
    """

    x0: np.ndarray
    coords: np.ndarray
    h: np.ndarray

    @property
    def nfev(self) -> int:
        """Number of evaluations of f."""
        return int(self.coords.size)

    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Coordinates and imaginary steps (i2, v2 unused)."""
        k = self.coords.size
        return self.coords.astype(_INTP), self.h, np.full(k, -1, dtype=_INTP), np.zeros(k)

    @quiet_fp
    def combine(self, values: np.ndarray) -> np.ndarray:
        """Rows from the imaginary parts."""
        return cast(np.ndarray, values / self.h[:, None])

    def triplets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, weights) and the per-row divisor."""
        k = np.arange(self.coords.size)
        return k, k, np.ones(k.size), self.h


@dataclass(frozen=True)
class LinePlan:
    """Derivatives along a direction: points x + o_k * d, for a whole-array step d.

    Used by ``derivative`` (elementwise f, d = h per element), by
    ``directional_derivative`` and ``jvp`` (d = t v).  The result is
    ``sum_k w_k f(x + o_k d) / scale`` elementwise in f's output.
    """

    x0: np.ndarray
    d: np.ndarray
    offsets: tuple[float, ...]
    weights: tuple[float, ...]
    scale: np.ndarray

    @property
    def nfev(self) -> int:
        """Number of evaluations of f."""
        return len(self.offsets)

    def point_arrays(self) -> list[np.ndarray]:
        """The K points as separate new arrays (x itself where an offset is 0)."""
        return [self.x0 + o * self.d if o != 0.0 else self.x0.copy() for o in self.offsets]

    @quiet_fp
    def combine(self, values: np.ndarray) -> np.ndarray:
        """The result from the (K, m) values."""
        acc = np.zeros(values.shape[1])
        for k, w in enumerate(self.weights):
            acc += w * values[k]
        return cast(np.ndarray, acc / self.scale)
