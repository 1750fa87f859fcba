"""Sequence effects: what conversions lose when one transition "A then B" is cut.

A channel's removal effect asks what the chain loses without the channel; a sequence
effect asks what it loses without one *step*: a touch of channel ``A`` immediately
followed by a touch of channel ``B``. On a chain of order 2 or more, where a state
remembers the touches before it, the steps "A then B" and "B then A" lead to
different futures, so their effects differ even when the channels' do not.

Cutting a transition
--------------------
The chain is the order-``k`` absorbing chain of :mod:`attribution.chain`. A chain
edge *makes* the step "A then B" when

- it goes from a state whose window ends in ``A`` to the state the next touch,
  ``B``, leads to (the edge adds the pair (last of the old window, last of the new));
- or it goes from the start into a first window that holds ``A`` right before ``B``
  (a path's first window carries its first ``k`` touches, and the steps between them).

Cutting "A then B" sends the probability of every such edge to null: a walk that
would make the step stops there without converting, exactly as a walk that would
enter a removed channel does in a removal effect. Every other probability is
unchanged. With stages, ``A`` and ``B`` are channels and the cut covers every
channel-stage pair of them.

The **removal effect** of the transition is ``1 - P_cut / P``, the relative drop in
the probability of converting; the value removal effect is the same for expected
conversion value. **Steps** (the traffic the top transitions are ranked by) are the
journeys' weighted number of such steps, repeats within a journey counted.

Solving
-------
Each cut changes a few rows of the transition matrix (the sources of its edges), so
``I - Q_cut = (I - Q) + U V`` with ``U`` selecting those ``r`` rows. Small chains
(at most :data:`attribution.chain.DENSE_LIMIT` states) invert ``I - Q`` once and
answer every cut from the Woodbury identity, an ``r``-square solve per cut instead
of a full one. Larger chains solve each cut's expected visits with BiCGSTAB, started
from the uncut chain's visits and checked to a relative residual of
:data:`attribution.chain.RESIDUAL_TOL`; :data:`MAX_TOP` bounds how many run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .chain import DENSE_LIMIT, Chain, build_chain, solve_iteratively
from .exceptions import InvalidParameter
from .paths import PathSet

__all__ = ["MAX_TOP", "SEQUENCE_COLUMNS", "SequenceEffects", "sequence_effects"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

MAX_TOP = 200
"""Most transitions one call evaluates: each may cost one iterative solve."""

SEQUENCE_COLUMNS = (
    "rank",
    "sequence",
    "source",
    "target",
    "steps",
    "p_conversion",
    "p_conversion_cut",
    "removal_effect",
    "value_removal_effect",
)
SEPARATOR = " > "


@dataclass(frozen=True)
class SequenceEffects:
    """Removal effects of the top transitions "source then target" of a chain.

    ``source``/``target`` are channel indices into ``channel_names``; ``steps`` the
    weighted steps made; ``p_cut`` and ``value_cut`` P(conversion) and expected
    conversion value per journey with each transition cut; ``p_conversion`` and
    ``expected_value`` the uncut chain's. ``n_transitions`` counts every distinct
    transition observed, of which the top ``len(source)`` by steps are here.
    """

    order: int
    channel_names: tuple[str, ...]
    source: IntArray
    target: IntArray
    steps: FloatArray
    p_conversion: float
    expected_value: float
    p_cut: FloatArray
    value_cut: FloatArray
    n_transitions: int
    solver: str

    @property
    def removal_effects(self) -> FloatArray:
        """``1 - P_cut / P`` per transition (0 when nothing converts)."""
        return _relative_drop(self.p_cut, self.p_conversion)

    @property
    def value_removal_effects(self) -> FloatArray:
        return _relative_drop(self.value_cut, self.expected_value)

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per transition, most steps first, with :data:`SEQUENCE_COLUMNS`."""
        names = self.channel_names
        fx, vfx = self.removal_effects.tolist(), self.value_removal_effects.tolist()
        rows = []
        for k, (a, b) in enumerate(zip(self.source.tolist(), self.target.tolist(), strict=True)):
            cells = (
                k + 1,
                names[a] + SEPARATOR + names[b],
                names[a],
                names[b],
                float(self.steps[k]),
                self.p_conversion,
                float(self.p_cut[k]),
                fx[k],
                vfx[k],
            )
            rows.append(dict(zip(SEQUENCE_COLUMNS, cells, strict=True)))
        return rows


def sequence_effects(paths: PathSet, order: int = 2, top: int = 20) -> SequenceEffects:
    """Removal effects of the ``top`` transitions by steps, on the order-``order`` chain.

    Parameters
    ----------
    paths : PathSet
        The paths (states as for the Markov model: channels, or channel-stage pairs).
    order : int, default 2
        Order of the chain, 1 to 4. At order 1 a cut removes one chain edge.
    top : int, default 20
        Transitions evaluated, most steps first (ties by channel order), at most
        :data:`MAX_TOP`.

    Returns
    -------
    SequenceEffects

    Notes
    -----
    See the module docstring for what cutting a transition means and how the cut
    chains are solved.

    References
    ----------
    .. [1] Kemeny, J. G., Snell, J. L. (1960). *Finite Markov Chains*. Van Nostrand,
       chapter III (absorbing chains, the fundamental matrix).
    .. [2] Woodbury, M. A. (1950). "Inverting modified matrices." Memorandum Report
       42, Statistical Research Group, Princeton University.
    """
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= 4:
        raise InvalidParameter("order", order, "an integer in [1, 4]")
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        raise InvalidParameter("top", top, f"an integer in [1, {MAX_TOP}]")
    chain = build_chain(paths, order)
    edges = _edges(chain)
    pairs = _edge_pairs(chain, edges, paths)
    n_ch = paths.n_channels
    steps = np.bincount(pairs[1], edges.weight[pairs[0]], minlength=n_ch * n_ch)
    seen = np.flatnonzero(steps > 0)
    chosen = seen[np.argsort(-steps[seen], kind="stable")[:top]]
    cuts = _cut_edges(pairs, chosen, n_ch * n_ch)
    if chain.n_states <= DENSE_LIMIT:
        base, solver = _woodbury(chain, edges, cuts), "dense"
    else:
        base, solver = _iterative(chain, edges, cuts), "bicgstab"
    return SequenceEffects(
        order=order,
        channel_names=paths.channel_names,
        source=(chosen // n_ch).astype(np.int64),
        target=(chosen % n_ch).astype(np.int64),
        steps=steps[chosen].astype(np.float64),
        p_conversion=float(base[0, 0]),
        expected_value=float(base[0, 1]),
        p_cut=base[1:, 0].copy(),
        value_cut=base[1:, 1].copy(),
        n_transitions=len(seen),
        solver=solver,
    )


# ---------------------------------------------------------------------- edges
@dataclass(frozen=True)
class _Edges:
    """The chain's edges into transient states: node rows (0 = start), node columns
    (1..n), weighted counts and probabilities."""

    row: IntArray
    col: IntArray
    weight: FloatArray
    probability: FloatArray


def _edges(chain: Chain) -> _Edges:
    n = chain.n_states
    coo = chain.counts.tocoo()
    row, col = coo.row.astype(np.int64), coo.col.astype(np.int64)
    inner = (col >= 1) & (col <= n)
    out = np.asarray(chain.counts.sum(axis=1), dtype=np.float64).ravel()
    w = np.asarray(coo.data, dtype=np.float64)[inner]
    r, c = row[inner], col[inner]
    return _Edges(r, c, w, w / out[r])


def _edge_pairs(chain: Chain, edges: _Edges, paths: PathSet) -> tuple[IntArray, IntArray]:
    """(edge index, channel-pair code ``a * n_channels + b``) for every step an edge makes.

    An edge between transient states makes one step: last of the source's window,
    last of the target's. An edge from the start makes every step inside the window
    it enters (none for a single touch).
    """
    channel = np.where(chain.windows >= 0, chain.windows // paths.n_stage_columns, -1)
    inner = np.flatnonzero(edges.row > 0)
    idx = [inner]
    src = [channel[edges.row[inner] - 1, -1]]
    dst = [channel[edges.col[inner] - 1, -1]]
    start = np.flatnonzero(edges.row == 0)
    first = channel[edges.col[start] - 1]
    for j in range(1, chain.order):
        ok = first[:, j - 1] >= 0
        idx.append(start[ok])
        src.append(first[ok, j - 1])
        dst.append(first[ok, j])
    code = np.concatenate(src) * paths.n_channels + np.concatenate(dst)
    return np.concatenate(idx), code.astype(np.int64)


def _cut_edges(pairs: tuple[IntArray, IntArray], chosen: IntArray, n_codes: int) -> list[IntArray]:
    """For each chosen pair code, the distinct edges making that step (one sort)."""
    rank = np.full(n_codes, -1, dtype=np.int64)
    rank[chosen] = np.arange(len(chosen))
    edge, which = pairs[0], rank[pairs[1]]
    keep = which >= 0
    edge, which = edge[keep], which[keep]
    order = np.lexsort((edge, which))
    edge, which = edge[order], which[order]
    # a first window can hold the same step twice: keep each edge once per cut
    new = np.ones(len(edge), dtype=bool)
    new[1:] = (edge[1:] != edge[:-1]) | (which[1:] != which[:-1])
    edge, which = edge[new], which[new]
    return np.split(edge, np.searchsorted(which, np.arange(1, len(chosen))))


# ---------------------------------------------------------------------- solving
def _woodbury(chain: Chain, edges: _Edges, cuts: list[IntArray]) -> FloatArray:
    """Uncut then cut (P(conversion), expected value), rows ``1 + len(cuts)``, densely.

    With the start as node 0 of an ``(n + 1)``-square matrix ``Q`` (nothing enters
    it), ``N = (I - Q)^-1`` and ``h = N b``, a cut removing probability ``V[a]`` from
    each of the rows ``S`` gives ``P_cut = h_0 - N[0, S] (I + V N[:, S])^-1 V h``.
    """
    n = chain.n_states
    q = np.zeros((n + 1, n + 1))
    q[edges.row, edges.col] = edges.probability
    b = np.zeros((n + 1, 2))
    b[1:] = chain.targets
    fundamental = np.linalg.inv(np.eye(n + 1) - q)
    h = fundamental @ b
    out = np.empty((1 + len(cuts), 2))
    out[0] = h[0]
    for k, cut in enumerate(cuts, start=1):
        rows, where = np.unique(edges.row[cut], return_inverse=True)
        v = sp.csr_array(
            (edges.probability[cut], (where, edges.col[cut])), shape=(len(rows), n + 1)
        )
        m = np.eye(len(rows)) + v @ fundamental[:, rows]
        out[k] = h[0] - fundamental[0, rows] @ np.linalg.solve(m, v @ h)
    return out


def _iterative(chain: Chain, edges: _Edges, cuts: list[IntArray]) -> FloatArray:
    """The same as :func:`_woodbury`, by one BiCGSTAB solve of expected visits per cut.

    Visits ``y`` solve ``(I - Q^T) y = s``; a cut subtracts its edges from ``s``
    (edges from the start) and from ``Q`` (the others), and the solve starts from
    the uncut visits, which differ from the cut ones only downstream of the cut.
    """
    n = chain.n_states
    inner = edges.row > 0
    qt = sp.csr_array(
        (edges.probability[inner], (edges.col[inner] - 1, edges.row[inner] - 1)), shape=(n, n)
    )
    s, b = chain.start, chain.targets
    base = _visits(qt, s, None, s)
    out = np.empty((1 + len(cuts), 2))
    out[0] = base @ b
    for k, cut in enumerate(cuts, start=1):
        from_start = cut[edges.row[cut] == 0]
        rhs = s.copy()
        rhs[edges.col[from_start] - 1] -= edges.probability[from_start]
        np.clip(rhs, 0.0, None, out=rhs)
        cut_inner = cut[edges.row[cut] > 0]
        out[k] = _visits(qt, rhs, _Cut.of(edges, cut_inner), base) @ b if rhs.any() else 0.0
    return out


@dataclass(frozen=True)
class _Cut:
    """Edges between transient states removed from ``Q``: 0-based source, target, q."""

    src: IntArray
    dst: IntArray
    q: FloatArray

    @classmethod
    def of(cls, edges: _Edges, which: IntArray) -> _Cut:
        return cls(edges.row[which] - 1, edges.col[which] - 1, edges.probability[which])


def _visits(qt: sp.csr_array, rhs: FloatArray, cut: _Cut | None, x0: FloatArray) -> FloatArray:
    """Expected visits ``y`` with ``(I - Q_cut^T) y = rhs``, to :data:`RESIDUAL_TOL`."""
    n = len(rhs)

    def matvec(y: FloatArray) -> FloatArray:
        out: FloatArray = y - qt @ y
        if cut is not None:
            out += np.bincount(cut.dst, cut.q * y[cut.src], minlength=n)
        return out

    return solve_iteratively(matvec, rhs, x0)


def _relative_drop(cut: FloatArray, base: float) -> FloatArray:
    """``1 - cut / base`` clipped to [0, 1] (cutting can only lose), 0 when ``base`` is 0."""
    if base <= 0:
        return np.zeros_like(cut)
    return np.asarray(np.clip(1.0 - cut / base, 0.0, 1.0), dtype=np.float64)
