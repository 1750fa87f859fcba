"""The counts of a path set's absorbing chain: :class:`Chain`, built by :func:`build_chain`.

States, windows and walks are described in :mod:`attribution.chain`, which solves
the chain and is where to import all of this from. Counting is vectorised over
touches; :func:`order_one` derives the order-1 counts from a chain of any order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .exceptions import InvalidParameter
from .paths import PathSet

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

BINCOUNT_LIMIT = 1 << 23
BLOCK = 1 << 20  # elements per step of in-place work on arrays as long as the touches
"""Largest integer-code domain counted with ``np.bincount``; larger domains sort."""


@dataclass(frozen=True, eq=False)
class Chain:
    """Transition counts of a path set's absorbing chain of order ``order``.

    Attributes
    ----------
    order : int
        Length of the windows of base states that make a state.
    windows : ndarray of int64, shape (n, order)
        Base-state codes of each transient state's window, oldest first; ``-1``
        pads the left of windows of paths shorter than ``order``. States are
        numbered in increasing order of their windows, so the numbering does not
        depend on the order of the input rows.
    counts : scipy.sparse.csr_array, shape (n + 1, n + 3)
        Rows: the start node (0) and transient states ``1..n``. Columns: every node,
        0 start, ``1..n`` transient, ``n + 1`` conversion, ``n + 2`` null. Entries
        are weighted numbers of transitions.
    conversion_value : ndarray of float64, shape (n + 1,)
        Total conversion value of the paths whose last state is each node (index 0,
        the start, is unused). Used for value removal effects.
    """

    order: int
    windows: IntArray
    counts: sp.csr_array
    conversion_value: FloatArray

    @property
    def n_states(self) -> int:
        """Number of transient states."""
        return len(self.windows)

    def contains(self, base_removed: BoolArray) -> BoolArray:
        """True for each transient state whose window contains a removed base state.

        ``base_removed`` has one entry per base state (:attr:`PathSet.n_states`), or
        shape ``(m, n_base)`` for ``m`` sets at once, giving ``(m, n)``.
        """
        base = np.asarray(base_removed, dtype=bool)
        # the appended False column is what the -1 padding indexes
        padded = np.concatenate([base, np.zeros((*base.shape[:-1], 1), dtype=bool)], axis=-1)
        return np.asarray(padded[..., self.windows].any(axis=-1), dtype=bool)

    @cached_property
    def _out_weight(self) -> FloatArray:
        total: FloatArray = np.asarray(self.counts.sum(axis=1), dtype=np.float64).ravel()
        return total

    @cached_property
    def start(self) -> FloatArray:
        """Probabilities of going from the start to each transient state, shape (n,)."""
        n = self.n_states
        row = self.counts[[0], :].toarray().ravel()[1 : n + 1]
        return _safe_divide(row, self._out_weight[0])

    @cached_property
    def transient(self) -> sp.csr_array:
        """Transition probabilities between transient states, shape (n, n)."""
        n = self.n_states
        block = sp.csr_array(self.counts[1:, 1 : n + 1])
        inv = _safe_divide(np.ones(n), self._out_weight[1:])
        return sp.csr_array(sp.diags_array(inv) @ block)

    @cached_property
    def targets(self) -> FloatArray:
        """Per transient state, shape (n, 2): probability of stepping to conversion,
        and expected conversion value collected on that step."""
        n = self.n_states
        conv = self.counts[:, [n + 1]].toarray().ravel()[1:]
        out = np.column_stack([conv, self.conversion_value[1:]])
        return _safe_divide(out, self._out_weight[1:, None])


# ---------------------------------------------------------------------- building
def build_chain(paths: PathSet, order: int = 1) -> Chain:
    """Count the order-``order`` absorbing chain of a path set.

    Parameters
    ----------
    paths : PathSet
        The paths; each walks once with weight ``conversions + nulls``.
    order : int, default 1
        Number of consecutive base states that make a state.

    Returns
    -------
    Chain
        Transition counts, state windows and conversion value by last state.

    Notes
    -----
    Vectorised over touches: window codes are mixed-radix integers, mapped to dense
    state ids, and transitions are counted with ``np.bincount`` over integer pair
    codes. Cost is linear in the number of touches (plus a sort only when the code
    domain is too large to count directly).
    """
    if order < 1:
        raise InvalidParameter("order", order, "an integer >= 1")
    radix = paths.n_states + 1
    if radix**order >= 2**62:
        raise InvalidParameter("order", order, f"small enough that {radix}**order fits in int64")
    per_path = np.maximum(paths.lengths - order + 1, 1)  # states each path walks through
    firsts = np.cumsum(per_path) - per_path
    lasts = firsts + per_path - 1
    codes = _window_codes(paths, order, per_path, firsts)
    # the base state each window adds: its code's last digit (a window code is a
    # multiple of the radix plus its last state + 1)
    new_base = paths.states if order == 1 else codes % radix - 1
    unique_codes, ids = _dense_ids(codes, radix**order)
    del codes  # as long as the touches: let it go before the next ones are made
    n = len(unique_codes)
    weight = paths.conversions + paths.nulls
    first_ids, last_ids = ids[firsts], ids[lasts]
    # weight of the step into each state from the previous one; a path's first state
    # is entered from the start instead, so its step weighs nothing
    step = weight[paths.path_index] if order == 1 else np.repeat(weight, per_path)
    step[firsts] = 0.0
    parts = [
        _column(0, first_ids, weight, n + 1, scatter_rows=False),
        _inner_transitions(unique_codes, ids, new_base, step, paths.n_states, order),
        _column(n + 1, last_ids, paths.conversions, n + 1),
        _column(n + 2, last_ids, paths.nulls, n + 1),
    ]
    rows, cols, data = (np.concatenate(x) for x in zip(*parts, strict=True))
    counts = sp.csr_array((data, (rows, cols)), shape=(n + 1, n + 3))
    value = _fsum(last_ids, paths.value, n + 1)
    return Chain(order, _decode(unique_codes, radix, order), counts, value)


def _window_codes(paths: PathSet, order: int, per_path: IntArray, firsts: IntArray) -> IntArray:
    """Mixed-radix code of each state's window.

    A touch ends a state when at least ``order`` touches of its path end there, or
    when it is the last touch of a path shorter than ``order``. The code of a
    window ``(w_1..w_k)`` is ``sum((w_j + 1) * radix**(k - j))``: padding is digit 0.
    """
    states = paths.states
    if order == 1:
        return states + 1
    lengths = paths.lengths
    # each path's states end at consecutive touches from its min(length, order)-th on
    shift = paths.offsets[:-1] + np.minimum(lengths, order) - 1 - firsts
    touch = np.repeat(shift, per_path)
    for first in range(0, len(touch), BLOCK):  # + arange, without a second long array
        touch[first : first + BLOCK] += np.arange(first, min(first + BLOCK, len(touch)))
    radix = paths.n_states + 1
    codes = states[touch]
    codes += 1
    short = np.flatnonzero(lengths < order)
    at, end = firsts[short], touch[firsts[short]]
    # full windows first (in place, one buffer: these arrays are as long as the
    # touches) ...
    digit = np.empty_like(codes)
    for back in range(1, order):
        touch -= 1  # the touch ``back`` steps before each window's last
        # clipped: only padded windows reach before their path, and they are redone
        np.take(states, touch, mode="clip", out=digit)
        digit += 1
        digit *= radix**back
        codes += digit
    del touch, digit
    # ... then redo the few paths shorter than the order, whose windows are padded
    if len(short):
        fixed = np.zeros(len(short), dtype=np.int64)
        for back in range(order):
            valid = lengths[short] > back
            fixed += np.where(valid, states[np.where(valid, end - back, 0)] + 1, 0) * radix**back
        codes[at] = fixed
    return codes


def _dense_ids(codes: IntArray, domain: int) -> tuple[IntArray, IntArray]:
    """(sorted distinct codes, 1-based dense id of each code)."""
    if domain <= max(BINCOUNT_LIMIT, 2 * len(codes)) and domain <= 4 * BINCOUNT_LIMIT:
        seen = np.bincount(codes, minlength=domain) > 0
        if not seen[0] and seen[1:].all():
            # every code but the padding-only one occurs: codes are already dense ids
            return np.arange(1, domain, dtype=np.int64), codes
        lookup = np.cumsum(seen, dtype=np.int64)
        return np.flatnonzero(seen).astype(np.int64), lookup[codes]
    unique, inverse = np.unique(codes, return_inverse=True)
    return unique, inverse.astype(np.int64) + 1


def _inner_transitions(
    unique_codes: IntArray,
    ids: IntArray,
    new_base: IntArray,
    step: FloatArray,
    n_base: int,
    order: int,
) -> tuple[IntArray, IntArray, FloatArray]:
    """Transitions between consecutive states of a path, as (rows, cols, counts).

    The next window is the previous one shifted by the new touch's base state, so
    a transition is keyed by (source state, new base state): a domain of
    ``n * n_base`` codes, far smaller than ``n * n`` at higher orders. Keys that
    straddle two paths carry zero weight and drop out.
    """
    keys = ids[:-1]  # in place: these arrays are as long as the touches (ids are spent)
    keys -= 1
    keys *= n_base
    keys += new_base[1:]
    uniq, totals = _sum_by_key(keys, step[1:], len(unique_codes) * n_base)
    src_of_key = uniq // n_base + 1
    radix = n_base + 1
    shifted = (unique_codes[src_of_key - 1] % radix ** (order - 1)) * radix
    dst = np.searchsorted(unique_codes, shifted + uniq % n_base + 1) + 1
    return src_of_key, dst.astype(np.int64), totals


def _sum_by_key(keys: IntArray, weight: FloatArray, domain: int) -> tuple[IntArray, FloatArray]:
    """Distinct keys with positive total weight, and those totals."""
    if domain <= BINCOUNT_LIMIT:
        totals = _fsum(keys, weight, domain)
        uniq = np.flatnonzero(totals > 0).astype(np.int64)
        return uniq, totals[uniq]
    uniq, inverse = np.unique(keys, return_inverse=True)
    sums = _fsum(inverse, weight, len(uniq))
    keep = sums > 0
    return uniq[keep].astype(np.int64), sums[keep]


def _column(
    col: int, ids: IntArray, weight: FloatArray, n_rows: int, scatter_rows: bool = True
) -> tuple[IntArray, IntArray, FloatArray]:
    """Transitions from many states into one node (or, for the start, from row 0)."""
    totals = _fsum(ids, weight, n_rows)
    nz = np.flatnonzero(totals > 0).astype(np.int64)
    if scatter_rows:
        return nz, np.full(len(nz), col, dtype=np.int64), totals[nz]
    return np.full(len(nz), col, dtype=np.int64), nz, totals[nz]


def _fsum(keys: IntArray, weight: FloatArray, size: int) -> FloatArray:
    """Weighted counts per key (``np.bincount``, typed as the floats it returns)."""
    return np.asarray(np.bincount(keys, weight, minlength=size), dtype=np.float64)


def _decode(unique_codes: IntArray, radix: int, order: int) -> IntArray:
    windows = np.empty((len(unique_codes), order), dtype=np.int64)
    for back in range(order):
        windows[:, order - 1 - back] = (unique_codes // radix**back) % radix - 1
    return windows


def order_one(chain: Chain) -> Chain:
    """The order-1 chain of the same paths, derived from an order-k chain's counts.

    Every order-1 transition sits inside one order-k transition: a step between
    windows adds the pair (last of the old window, last of the new), the start's
    step into a path's first window adds start -> its first touch and every pair
    inside that window, and absorption leaves from the window's last touch. So the
    order-1 counts follow from the order-k counts without another pass over touches.
    """
    if chain.order == 1:
        return chain
    windows = chain.windows
    base = np.unique(windows[windows >= 0])
    m = len(base)
    last = np.searchsorted(base, windows[:, -1]) + 1
    coo = chain.counts.tocoo()
    r, c, d = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    rows, cols, data = [], [], []
    inner = r > 0
    col_map = np.concatenate([[0], last, [m + 1, m + 2]])  # node -> order-1 node
    rows.append(last[r[inner] - 1])
    cols.append(col_map[c[inner]])
    data.append(d[inner])
    first_win, weight = windows[c[~inner] - 1], d[~inner]
    rows.append(np.zeros(len(weight), dtype=np.int64))
    lead = np.argmax(first_win >= 0, axis=1)
    cols.append(np.searchsorted(base, first_win[np.arange(len(lead)), lead]) + 1)
    data.append(weight)
    for j in range(1, chain.order):
        ok = first_win[:, j - 1] >= 0
        rows.append(np.searchsorted(base, first_win[ok, j - 1]) + 1)
        cols.append(np.searchsorted(base, first_win[ok, j]) + 1)
        data.append(weight[ok])
    counts = sp.csr_array(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(m + 1, m + 3)
    )
    counts.sum_duplicates()
    value = _fsum(last, chain.conversion_value[1:], m + 1)
    return Chain(1, base[:, None].astype(np.int64), counts, value)


def _safe_divide(num: FloatArray, den: FloatArray | float) -> FloatArray:
    """``num / den`` with 0 where ``den`` is 0 (states no weighted path leaves)."""
    den_arr = np.broadcast_to(np.asarray(den, dtype=np.float64), np.shape(num))
    out = np.zeros(np.shape(num))
    np.divide(num, den_arr, out=out, where=den_arr > 0)
    return np.asarray(out, dtype=np.float64)
