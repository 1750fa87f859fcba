"""The order-1 transition matrix of a path set as table rows, for Markov's details.

:func:`transition_rows` labels the chain's nodes by channel and stage; the start and
absorbing nodes get the labels :data:`START`, :data:`CONVERSION` and :data:`NULL`.
Import it from :mod:`attribution.markov`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .chain import Chain, build_chain, order_one
from .paths import PathSet

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
"""Labels of the chain's start and absorbing nodes in ``details["transitions"]``."""


def transition_rows(paths: PathSet, chain: Chain | None = None) -> list[dict[str, Any]]:
    """The order-1 transition matrix as rows, one per observed transition.

    Keys: ``from_channel``, ``from_stage``, ``to_channel``, ``to_stage``, ``count``
    (weighted transitions) and ``probability`` (count over the source's total).
    The start and absorbing nodes are ``(start)``, ``(conversion)`` and ``(null)``
    in the channel fields, with stage None. ``chain`` may pass a chain of any order
    already built from ``paths``: its order-1 counts follow from it.
    """
    chain = build_chain(paths, 1) if chain is None else order_one(chain)
    coo = chain.counts.tocoo()
    totals = np.asarray(chain.counts.sum(axis=1)).ravel()
    labels = [(START, None)] + [_state_label(paths, int(w)) for w in chain.windows[:, 0]]
    labels += [(CONVERSION, None), (NULL, None)]
    order = np.lexsort((coo.col, coo.row))
    rows = []
    for r, c, v in zip(coo.row[order], coo.col[order], coo.data[order], strict=True):
        src, dst = labels[int(r)], labels[int(c)]
        rows.append(
            {
                "from_channel": src[0],
                "from_stage": src[1],
                "to_channel": dst[0],
                "to_stage": dst[1],
                "count": float(v),
                "probability": float(v / totals[r]),
            }
        )
    return rows


def _state_label(paths: PathSet, state: int) -> tuple[str, str | None]:
    c, s = divmod(state, paths.n_stage_columns)
    return paths.channel_names[c], None if paths.stage_names is None else paths.stage_names[s]
