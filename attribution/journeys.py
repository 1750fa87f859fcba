"""Journey analytics: stage funnel, drop-off, loops back, channel roles and timing.

Attribution says which channels earned the conversions; these reports say where
journeys break. All of them run on a :class:`~attribution.paths.PathSet`: an
aggregated set (each unique path weighted by its journeys, ``conversions + nulls``)
for everything but :func:`timing`, which needs per-journey touch and conversion
times. Every report is vectorised over touches (the only Python loops run over
stages) and returns a small frozen result with ``to_rows()``: tidy rows with the
fixed columns its ``COLUMNS`` constant lists.

Stage order
-----------
``stage_order`` lists stage names first to last (e.g. awareness, consideration,
decision, retention, advocacy). It must name every stage the paths use; stages it
lists that no path uses get zero rows. A stage is *later* than another when it comes
after it in this order.

Which stage's touches conversions depend on most (the Markov removal effect of every
state in a stage) is not computed here: the Markov model reports it as
``Credit.removal_effects["stage"]``.

The reports live in one module each: :mod:`attribution._funnel` (:func:`funnel` and
:func:`dropoff`), :mod:`attribution._loops`, :mod:`attribution._roles` and
:mod:`attribution._timing`, with what they share in :mod:`attribution._reports`.
Import them from here.
"""

from ._funnel import (
    DROPOFF_COLUMNS,
    FUNNEL_COLUMNS,
    Dropoff,
    Funnel,
    dropoff,
    funnel,
    wilson_interval,
)
from ._loops import LOOP_COLUMNS, LOOP_SUMMARY_COLUMNS, Loops, loops
from ._roles import ROLE_COLUMNS, ChannelRoles, channel_roles
from ._timing import TIMING_COLUMNS, Timing, timing

__all__ = [
    "DROPOFF_COLUMNS",
    "FUNNEL_COLUMNS",
    "LOOP_COLUMNS",
    "LOOP_SUMMARY_COLUMNS",
    "ROLE_COLUMNS",
    "TIMING_COLUMNS",
    "ChannelRoles",
    "Dropoff",
    "Funnel",
    "Loops",
    "Timing",
    "channel_roles",
    "dropoff",
    "funnel",
    "loops",
    "timing",
    "wilson_interval",
]
