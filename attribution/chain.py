"""The absorbing Markov chain of a path set, counted and solved exactly.

A path set defines a chain with a start node, one transient node per *state*, and two
absorbing nodes, conversion and null. At order 1 a state is a base state (a channel, or
a channel-stage pair when the set has stages: :attr:`PathSet.states`). At order ``k``
a state is a window of ``k`` consecutive base states; the start goes to a path's first
window and a path shorter than ``k`` is a single state, its window padded with ``-1``
on the left.

Every path is walked once with weight ``conversions + nulls``; its last state goes to
conversion with weight ``conversions`` and to null with weight ``nulls``. The chain is
solved exactly: a dense solve for small chains, BiCGSTAB with a checked residual for
big ones (sparse LU is avoided: it fills in catastrophically on higher-order chains).

Removing states makes them unreachable: every transition into a removed state goes to
null instead, so a walk that would enter one never converts.

:class:`Chain`, :func:`build_chain` and :func:`order_one`, which count the chain, live
in :mod:`attribution._chain_counts`; this module solves it. Import both from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.linalg import LinearOperator, bicgstab

from ._chain_counts import BINCOUNT_LIMIT, Chain, build_chain, order_one

__all__ = [
    "BINCOUNT_LIMIT",
    "DENSE_LIMIT",
    "RESIDUAL_TOL",
    "Chain",
    "Removals",
    "SolverError",
    "build_chain",
    "conversion_probability",
    "order_one",
    "solve_removals",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

DENSE_LIMIT = 500
"""Chains with at most this many transient states are solved densely."""

RESIDUAL_TOL = 1e-13
"""Relative residual every iterative solve must reach, or :class:`SolverError`."""

_BATCH_ELEMENTS = 1 << 22
"""Matrix elements per batched dense solve (bounds the temporaries' memory)."""


class SolverError(ArithmeticError):
    """An iterative solve did not reach :data:`RESIDUAL_TOL`. An internal error."""


@dataclass(frozen=True)
class Removals:
    """Conversion probability and expected conversion value of a chain per removal.

    ``conversion[i]`` is P(absorbed in conversion from start) and ``value[i]`` the
    expected conversion value of a walk, with the ``i``-th set of states removed.
    ``solver`` names the method that ran: ``"dense"`` or ``"bicgstab"``.
    """

    conversion: FloatArray
    value: FloatArray
    solver: str


# ---------------------------------------------------------------------- solving
def conversion_probability(chain: Chain, removed: BoolArray | None = None) -> float:
    """P(absorbed in conversion from the start), with ``removed`` states unreachable.

    ``removed`` has one entry per transient state (see :meth:`Chain.contains`).
    """
    mask = np.zeros((1, chain.n_states), dtype=bool)
    if removed is not None:
        mask[0] = removed
    return float(solve_removals(chain, mask).conversion[0])


def solve_removals(chain: Chain, removed: BoolArray, *, dense_limit: int = DENSE_LIMIT) -> Removals:
    """Solve the chain once per row of ``removed`` (shape ``(m, n)``, True = removed).

    Notes
    -----
    With ``Q`` the transient transition matrix, ``s`` the start distribution and
    ``b`` the one-step conversion probabilities (and values), the absorbing chain
    gives ``P = s (I - Q)^-1 b``. Removing a set ``R`` zeroes the rows and
    columns of ``R``.

    Dense (``n <= dense_limit``): one inverse ``N = (I - Q)^-1`` serves every set.
    A walk converts either without visiting ``R`` or after first entering ``R``, so
    ``P_R = s N b - (s N)_R (N_RR)^-1 (N b)_R`` (solving a ``|R|``-square system),
    or, when ``R`` is most of the chain, a direct solve on the kept states. Sets are
    batched by size.

    Iterative (larger chains): per set, BiCGSTAB on the transposed system
    ``(I - Q_R)^T y = s_R`` (``y`` = expected visits, which gives conversion and
    value at once), to a relative residual of :data:`RESIDUAL_TOL`, checked.

    References
    ----------
    .. [1] Kemeny, J. G., Snell, J. L. (1960). *Finite Markov Chains*. Van Nostrand,
       chapter III (absorbing chains, the fundamental matrix).
    .. [2] van der Vorst, H. A. (1992). "Bi-CGSTAB: a fast and smoothly converging
       variant of Bi-CG for the solution of nonsymmetric linear systems." SIAM
       Journal on Scientific and Statistical Computing 13(2), 631-644.
    """
    removed = np.asarray(removed, dtype=bool)
    if removed.ndim == 1:
        removed = removed.reshape(1, -1)
    if chain.n_states == 0:
        zeros = np.zeros(len(removed))
        return Removals(zeros, zeros.copy(), "dense")
    if chain.n_states <= dense_limit:
        out = _dense_removals(chain, removed)
        return Removals(out[:, 0], out[:, 1], "dense")
    out = _iterative_removals(chain, removed)
    return Removals(out[:, 0], out[:, 1], "bicgstab")


def _dense_removals(chain: Chain, removed: BoolArray) -> FloatArray:
    n = chain.n_states
    a = np.eye(n) - chain.transient.toarray()
    fundamental = np.linalg.inv(a)
    s, b = chain.start, chain.targets
    h = fundamental @ b
    g = s @ fundamental
    out = np.empty((len(removed), 2))
    sizes = removed.sum(axis=1)
    for k in np.unique(sizes).tolist():
        for rows in _batches(np.flatnonzero(sizes == k), min(k, n - k)):
            if k == 0:
                out[rows] = s @ h
            elif k == n:
                out[rows] = 0.0
            elif k <= n - k:
                idx = np.nonzero(removed[rows])[1].reshape(len(rows), k)
                block = fundamental[idx[:, :, None], idx[:, None, :]]
                corr = np.linalg.solve(block, h[idx])
                out[rows] = s @ h - np.einsum("mk,mkj->mj", g[idx], corr)
            else:
                idx = np.nonzero(~removed[rows])[1].reshape(len(rows), n - k)
                x = np.linalg.solve(a[idx[:, :, None], idx[:, None, :]], b[idx])
                out[rows] = np.einsum("mk,mkj->mj", s[idx], x)
    return out


def _batches(rows: IntArray, size: int) -> Iterator[IntArray]:
    step = max(1, _BATCH_ELEMENTS // max(1, size * size))
    for i in range(0, len(rows), step):
        yield rows[i : i + step]


def _iterative_removals(chain: Chain, removed: BoolArray) -> FloatArray:
    qt = sp.csr_array(chain.transient.T)
    s, b = chain.start, chain.targets
    out = np.empty((len(removed), 2))
    for i, mask in enumerate(removed):
        keep = (~mask).astype(np.float64)
        rhs = s * keep
        if not rhs.any():
            out[i] = 0.0
            continue
        y = _solve_visits(qt, keep, rhs)
        out[i] = y @ b
    return out


def _solve_visits(qt: sp.csr_array, keep: FloatArray, rhs: FloatArray) -> FloatArray:
    """Expected visits ``y`` with ``(I - D Q^T D) y = rhs``, ``D = diag(keep)``."""

    def matvec(y: FloatArray) -> FloatArray:
        out: FloatArray = y - keep * (qt @ (keep * y))
        return out

    return solve_iteratively(matvec, rhs, rhs)


def solve_iteratively(
    matvec: Callable[[FloatArray], FloatArray], rhs: FloatArray, x0: FloatArray
) -> FloatArray:
    """``y`` with ``A y = rhs`` for the operator ``matvec``, from ``x0``, by BiCGSTAB to a
    relative residual of :data:`RESIDUAL_TOL`; :class:`SolverError` when it cannot."""
    n = len(rhs)
    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    norm = float(np.linalg.norm(rhs))
    y = x0.copy()
    residual = np.inf
    # BiCGSTAB can stall just short of the tolerance; a restart from the current
    # iterate usually finishes the job
    for _ in range(3):
        y, _info = bicgstab(op, rhs, x0=y, rtol=RESIDUAL_TOL, atol=0.0, maxiter=10 * n)
        residual = float(np.linalg.norm(rhs - matvec(y))) / norm
        if residual <= RESIDUAL_TOL:
            return np.asarray(y, dtype=np.float64)
    raise SolverError(
        f"BiCGSTAB reached a relative residual of {residual:.3g}, not {RESIDUAL_TOL:g}"
    )
