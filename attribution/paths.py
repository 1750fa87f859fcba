"""The encoded path set every model runs on.

A :class:`PathSet` holds unique journeys (or single journeys) as integer-coded flat
arrays with offsets, plus their totals: conversions, nulls (journeys that did not
convert) and conversion value. It is validated once, here; models trust it.

Layout
------
``tokens[offsets[i]:offsets[i + 1]]`` are the channel codes of path ``i`` in touch
order, indexing ``channel_names``. ``stage_tokens`` (optional) is aligned with
``tokens`` and indexes ``stage_names``. ``times`` (optional) is aligned with
``tokens``: each touch's time in seconds since the epoch; ``conversion_times``
(optional) holds each path's conversion time (NaN where it did not convert).

States
------
Markov chains and Shapley games run over *states*: the channel when the set has no
stages, else the channel-stage pair, coded ``channel * n_stages + stage``. Credit is
always reported on the ``(n_channels, n_stage_columns)`` grid where
``n_stage_columns`` is ``n_stages`` or 1.

A *campaign set* (``columns="campaign"``, built by
:func:`attribution.campaigns.campaign_paths`) puts campaigns where the stages are:
``stage_names`` and ``stage_tokens`` then name and code each touch's campaign, so the
states are channel-campaign pairs and every model's grid, marginals and removal sets
work on them unchanged; the result reports them as the ``campaign`` dimension.

Its inputs are checked and encoded in :mod:`attribution._validation`, and identical
paths are grouped in :mod:`attribution._grouping`.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._grouping import _group_paths, _touch_selector
from ._validation import (
    MIN_POSITIVE_COUNT,
    NO_STAGE,
    _count_array,
    _drop_unused,
    _encode,
    _encode_optional,
    _field,
    _float_array,
    _ids,
    _int_array,
    _names,
    _split,
    _stages,
)
from .exceptions import InvalidPaths

__all__ = ["CA_SEPARATOR", "MIN_POSITIVE_COUNT", "NO_STAGE", "PathSet", "read_ca_csv"]

CA_SEPARATOR = " > "
"""Separator of ChannelAttribution-style path strings."""

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class PathSet:
    """Aggregated (or per-journey) paths, integer-coded.

    Build it with :meth:`from_lists`, :meth:`from_rows`, :meth:`from_arrays` or
    :func:`read_ca_csv`; the constructor itself does not validate.
    """

    channel_names: tuple[str, ...]
    tokens: IntArray
    offsets: IntArray
    conversions: FloatArray
    nulls: FloatArray
    value: FloatArray
    stage_names: tuple[str, ...] | None = None
    stage_tokens: IntArray | None = None
    times: FloatArray | None = None
    conversion_times: FloatArray | None = None
    path_ids: tuple[str, ...] | None = None
    columns: str = "stage"
    """What the grid's columns (``stage_names``, ``stage_tokens``) are: ``"stage"``, or
    ``"campaign"`` in a campaign set."""

    # ------------------------------------------------------------------ building
    @classmethod
    def from_arrays(
        cls,
        channel_names: Sequence[str],
        tokens: ArrayLike,
        offsets: ArrayLike,
        conversions: ArrayLike,
        nulls: ArrayLike | None = None,
        value: ArrayLike | None = None,
        stage_names: Sequence[str] | None = None,
        stage_tokens: ArrayLike | None = None,
        times: ArrayLike | None = None,
        conversion_times: ArrayLike | None = None,
        path_ids: Sequence[str] | None = None,
    ) -> PathSet:
        """Validate flat arrays and build a path set.

        Stage codes of ``-1`` mean "no stage"; they become the stage ``"(none)"``
        when other touches carry stages, and the set has no stages when all do.
        Channels or stages that no touch uses are dropped from the dictionaries.
        """
        tok = _int_array(tokens, "tokens")
        off = _int_array(offsets, "offsets")
        n = len(off) - 1
        if n < 0 or (len(off) and off[0] != 0) or (n >= 0 and off[-1] != len(tok)):
            raise InvalidPaths("offsets must start at 0 and end at len(tokens)")
        if n > 0 and np.any(np.diff(off) <= 0):
            bad = int(np.flatnonzero(np.diff(off) <= 0)[0])
            raise InvalidPaths(f"path {bad} is empty: every path needs at least one touch")
        conv = _count_array(conversions, n, "conversions")
        nul = np.zeros(n) if nulls is None else _count_array(nulls, n, "nulls")
        val = np.zeros(n) if value is None else _float_array(value, n, "value")
        bad_value = np.flatnonzero((val != 0) & (conv == 0))
        if len(bad_value):
            raise InvalidPaths(f"path {int(bad_value[0])} has value but no conversions")
        names = _names(channel_names, "channel_names")
        if len(tok) and (tok.min() < 0 or tok.max() >= len(names)):
            raise InvalidPaths("channel codes must index channel_names")
        names, tok = _drop_unused(names, tok)
        snames, stok = _stages(stage_names, stage_tokens, len(tok))
        return cls(
            channel_names=names,
            tokens=tok,
            offsets=off,
            conversions=conv,
            nulls=nul,
            value=val,
            stage_names=snames,
            stage_tokens=stok,
            times=None if times is None else _float_array(times, len(tok), "times"),
            conversion_times=(
                None
                if conversion_times is None
                else _float_array(conversion_times, n, "conversion_times", allow_nan=True)
            ),
            path_ids=None if path_ids is None else _ids(path_ids, n),
        )

    @classmethod
    def from_lists(
        cls,
        paths: Sequence[Sequence[str]],
        conversions: ArrayLike,
        nulls: ArrayLike | None = None,
        value: ArrayLike | None = None,
        stages: Sequence[Sequence[str | None]] | None = None,
        times: Sequence[Sequence[float]] | None = None,
        conversion_times: ArrayLike | None = None,
        path_ids: Sequence[str] | None = None,
    ) -> PathSet:
        """Build from Python lists of channel names (one list per path).

        ``stages`` (optional) has the same shape as ``paths``; ``None`` entries mean
        no stage. ``times`` (optional) gives each touch's time in seconds.
        """
        lengths = np.fromiter((len(p) for p in paths), dtype=np.int64, count=len(paths))
        flat = [c for p in paths for c in p]
        names, tok = _encode(flat)
        snames: list[str] | None = None
        stok: IntArray | None = None
        if stages is not None:
            if len(stages) != len(paths) or any(
                len(s) != len(p) for s, p in zip(stages, paths, strict=True)
            ):
                raise InvalidPaths("stages must have the same shape as paths")
            snames, stok = _encode_optional([s for p in stages for s in p])
        flat_times = None
        if times is not None:
            if len(times) != len(paths) or any(
                len(t) != len(p) for t, p in zip(times, paths, strict=True)
            ):
                raise InvalidPaths("times must have the same shape as paths")
            flat_times = np.array([t for p in times for t in p], dtype=np.float64)
        return cls.from_arrays(
            names,
            tok,
            np.concatenate([[0], np.cumsum(lengths)]),
            conversions,
            nulls,
            value,
            stage_names=snames,
            stage_tokens=stok,
            times=flat_times,
            conversion_times=conversion_times,
            path_ids=path_ids,
        )

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], separator: str = CA_SEPARATOR) -> PathSet:
        """Build from row mappings such as a store or a CSV returns.

        Each row has ``path`` (a list of channels or a ``"a > b > c"`` string) and
        optionally ``stages`` (list or string), ``conversions`` (or
        ``total_conversions``), ``nulls`` (or ``total_null``) and ``value`` (or
        ``total_conversion_value``).
        """
        paths: list[list[str]] = []
        stages: list[list[str | None]] = []
        conv: list[float] = []
        nul: list[float] = []
        val: list[float] = []
        any_stages = False
        for i, row in enumerate(rows):
            path = _split(row.get("path"), separator, f"row {i}: path")
            paths.append(path)
            st = row.get("stages")
            if st is None or st == "":
                stages.append([None] * len(path))
            else:
                any_stages = True
                sp: list[str | None] = list(_split(st, separator, f"row {i}: stages"))
                if len(sp) != len(path):
                    raise InvalidPaths(f"row {i}: stages has {len(sp)} entries, path {len(path)}")
                stages.append(sp)
            conv.append(_field(row, ("conversions", "total_conversions"), i))
            nul.append(_field(row, ("nulls", "total_null"), i))
            val.append(_field(row, ("value", "total_conversion_value"), i))
        return cls.from_lists(paths, conv, nul, val, stages=stages if any_stages else None)

    # ------------------------------------------------------------------ derived
    @property
    def n_paths(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    @property
    def has_stages(self) -> bool:
        return self.stage_names is not None and self.columns == "stage"

    @property
    def has_campaigns(self) -> bool:
        """Whether this is a campaign set: its states are channel-campaign pairs."""
        return self.columns == "campaign"

    @property
    def n_stage_columns(self) -> int:
        """Columns of the credit grid: the number of stages, or 1 without stages."""
        return 1 if self.stage_names is None else len(self.stage_names)

    @property
    def n_states(self) -> int:
        return self.n_channels * self.n_stage_columns

    @cached_property
    def lengths(self) -> IntArray:
        return np.diff(self.offsets)

    @cached_property
    def path_index(self) -> IntArray:
        """For each touch, the index of its path."""
        return np.repeat(np.arange(self.n_paths, dtype=np.int64), self.lengths)

    @cached_property
    def position(self) -> IntArray:
        """For each touch, its 0-based position within its path."""
        return np.arange(len(self.tokens), dtype=np.int64) - self.offsets[self.path_index]

    @cached_property
    def states(self) -> IntArray:
        """State code of every touch: channel, or ``channel * n_stages + stage``."""
        if self.stage_tokens is None:
            return self.tokens
        return self.tokens * self.n_stage_columns + self.stage_tokens

    @cached_property
    def state_present(self) -> NDArray[np.bool_]:
        """Grid ``(n_channels, n_stage_columns)``: True where some touch is in that state."""
        seen = np.bincount(self.states, minlength=self.n_states) > 0
        return seen.reshape(self.n_channels, self.n_stage_columns)

    @property
    def total_conversions(self) -> float:
        return float(self.conversions.sum())

    @property
    def total_nulls(self) -> float:
        return float(self.nulls.sum())

    @property
    def total_value(self) -> float:
        return float(self.value.sum())

    def paths_as_lists(self) -> list[list[str]]:
        """Channel names per path (slow; for tests, debugging and small sets)."""
        names = self.channel_names
        return [
            [names[t] for t in self.tokens[a:b]]
            for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)
        ]

    def derived(self, name: str, compute: Callable[[PathSet], Any]) -> Any:
        """A value that depends on the paths' touches alone, not on their totals,
        computed once per set: :meth:`with_counts` hands it on, read-only, with the
        other per-touch arrays (a model's per-touch weights, for instance)."""
        memo = self.__dict__.setdefault("_derived", {})
        if name not in memo:
            memo[name] = compute(self)
        return memo[name]

    # ------------------------------------------------------------------ transforms
    def with_counts(self, conversions: ArrayLike, nulls: ArrayLike, value: ArrayLike) -> PathSet:
        """The same paths with other totals (the bootstrap's resamples; a store's
        paths after a write that changed only totals). What the set derived from its
        touches alone is kept, read-only, so the new set need not derive it again."""
        n = self.n_paths
        out = replace(
            self,
            conversions=_count_array(conversions, n, "conversions"),
            nulls=_count_array(nulls, n, "nulls"),
            value=_float_array(value, n, "value"),
        )
        for name in _TOUCH_DERIVED:
            if name in self.__dict__:
                out.__dict__[name] = _read_only(self.__dict__[name])
        if "_derived" in self.__dict__:
            out.__dict__["_derived"] = {
                k: _read_only(v) for k, v in self.__dict__["_derived"].items()
            }
        return out

    def collapse_repeats(self) -> PathSet:
        """Merge consecutive touches in the same state (channel, or channel and stage).

        The merged touch keeps the time of the last touch of the run, the one
        closest to the conversion.
        """
        st = self.states
        # a touch survives when it ends its run: the next touch is in another state
        # or in another path (runs never span two paths)
        keep = np.ones(len(st), dtype=bool)
        keep[:-1] = st[1:] != st[:-1]
        keep[self.offsets[1:] - 1] = True
        return _rebuild(self, keep)

    def group_channels(self, mapping: Mapping[str, str]) -> PathSet:
        """Rename channels through ``mapping`` (unmapped names stay); merges groups."""
        new_names = [mapping.get(c, c) for c in self.channel_names]
        names, codes = _encode(new_names)
        grouped = PathSet.from_arrays(
            names,
            codes[self.tokens],
            self.offsets,
            self.conversions,
            self.nulls,
            self.value,
            stage_names=self.stage_names,
            stage_tokens=self.stage_tokens,
            times=self.times,
            conversion_times=self.conversion_times,
            path_ids=self.path_ids,
        )
        return replace(grouped, columns=self.columns)

    def aggregated_index(self) -> IntArray:
        """For each path, the index of the row of :meth:`aggregate`'s result it is
        merged into (rows numbered in order of first appearance, as there)."""
        if self.n_paths == 0:
            return np.zeros(0, dtype=np.int64)
        return _group_paths(self.states, self.offsets)[1].astype(np.int64)

    def aggregate(self) -> PathSet:
        """Merge identical (channel path, stage path) rows, summing their totals.

        Touch times and path ids are dropped: an aggregated path has none.
        """
        key_tokens = self.states
        n = self.n_paths
        if n == 0:
            return self
        first, inverse = _group_paths(key_tokens, self.offsets)
        m = len(first)
        # bincount with weights is float64; asarray only tells the type checker so
        conv = np.asarray(np.bincount(inverse, self.conversions, minlength=m), dtype=np.float64)
        nul = np.asarray(np.bincount(inverse, self.nulls, minlength=m), dtype=np.float64)
        val = np.asarray(np.bincount(inverse, self.value, minlength=m), dtype=np.float64)
        sel = _touch_selector(self.offsets, first)
        return PathSet(
            channel_names=self.channel_names,
            tokens=self.tokens[sel],
            offsets=np.concatenate([[0], np.cumsum(self.lengths[first])]).astype(np.int64),
            conversions=conv,
            nulls=nul,
            value=val,
            stage_names=self.stage_names,
            stage_tokens=None if self.stage_tokens is None else self.stage_tokens[sel],
            columns=self.columns,
        )


def read_ca_csv(
    source: str | os.PathLike[str] | io.TextIOBase, separator: str = CA_SEPARATOR
) -> PathSet:
    """Read a ChannelAttribution-style CSV.

    Columns: ``path`` (``a > b > c``), ``total_conversions``, ``total_null`` and
    optionally ``total_conversion_value`` and ``stages`` (``s1 > s2 > s3``).
    """
    if isinstance(source, str | os.PathLike):
        with open(source, newline="", encoding="utf-8") as fh:
            return PathSet.from_rows(list(csv.DictReader(fh)), separator)
    return PathSet.from_rows(list(csv.DictReader(source)), separator)


# ---------------------------------------------------------------------- helpers
_TOUCH_DERIVED = ("lengths", "path_index", "position", "states", "state_present")
"""Cached properties that depend on the touches alone (see :meth:`PathSet.with_counts`)."""


def _read_only(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_read_only(v) for v in value)
    if isinstance(value, np.ndarray) and value.flags.writeable:
        value = value.view()
        value.flags.writeable = False
    return value


def _rebuild(paths: PathSet, keep: NDArray[np.bool_]) -> PathSet:
    lengths = (
        np.add.reduceat(keep.astype(np.int64), paths.offsets[:-1])
        if paths.n_paths
        else paths.lengths
    )
    return PathSet(
        channel_names=paths.channel_names,
        tokens=paths.tokens[keep],
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        conversions=paths.conversions,
        nulls=paths.nulls,
        value=paths.value,
        stage_names=paths.stage_names,
        stage_tokens=None if paths.stage_tokens is None else paths.stage_tokens[keep],
        times=None if paths.times is None else paths.times[keep],
        conversion_times=paths.conversion_times,
        path_ids=paths.path_ids,
        columns=paths.columns,
    )
