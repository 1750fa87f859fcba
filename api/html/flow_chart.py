"""The journey flow chart: a Sankey-style diagram of moves between funnel stages.

Journeys enter from the left, move through the stages in funnel order and leave to
"Converted" or "Dropped out" on the right; band widths are the moves, and a band wide
enough to carry its count has it written at its start. Only moves forward are drawn:
moves back to an earlier stage, drawn as arcs, would cross every band between, so
they are counted under their stage ("↩ back") and listed in a table beside the chart,
as are repeated touches in one stage ("↻ stay"). Touches without a stage are not a
step of the funnel: they get a column of their own, "no stage", before the first
stage, never between the last stage and the outcomes; moves into it from a stage are
counted under that stage ("→ no stage") and listed with the moves back. Drawing
primitives and colours are those of :mod:`api.html.charts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from attribution.paths import NO_STAGE

from .charts import (
    CONVERTED,
    DROPPED,
    UNSTAGED,
    WIDTH,
    count,
    label,
    num,
    rect,
    stage_colour,
    stage_label,
    svg,
)

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
"""Node labels of the stage transition rows (the Markov chain's start and absorbing states)."""
OUTCOMES = ("Converted", "Dropped out")
BAND_LABEL_MIN = 13.0
"""Bands at least this many pixels wide have their count written on them."""


@dataclass
class _Node:
    key: str
    name: str
    column: int
    value: float
    colour: str
    x: float = 0.0
    y: float = 0.0
    out_at: float = 0.0
    in_at: float = 0.0
    stay: float = 0.0
    back: float = 0.0
    unstaged: float = 0.0


@dataclass(frozen=True)
class _Link:
    source: _Node
    target: _Node
    value: float

    @property
    def back(self) -> bool:
        return self.target.column <= self.source.column


def flow(
    stage_order: Sequence[str],
    transitions: Sequence[Mapping[str, Any]],
    stays: Mapping[str, float] | None = None,
) -> str:
    """A Sankey-style flow: all journeys -> stages -> converted or dropped out.

    ``transitions`` are the stage transition rows with repeats collapsed (``source``,
    ``target``, ``count``): moves into a later column are drawn as bands; moves back
    are counted under their source stage. ``stays`` counts repeated touches in each
    stage (its moves to itself before collapsing), written under the stage too.
    """
    nodes, links = _flow_graph(stage_order, transitions)
    for stage, n in (stays or {}).items():
        if stage in nodes:
            nodes[stage].stay = n
    top, chart_h, node_w, left, right = 50.0, 330.0, 14.0, 104.0, 130.0
    last = max(n.column for n in nodes.values())
    step = (WIDTH - left - right - node_w) / last
    scale = _flow_scale(nodes, chart_h)
    for node in nodes.values():
        node.x = left + node.column * step
    _place_nodes(nodes, top, chart_h, scale)
    body = [_band(lk, scale, node_w) for lk in links if not lk.back]
    fit = max(8, int(step / 7.5))
    body += [_flow_node(n, scale, node_w, fit) for n in nodes.values()]
    foot, bottom = _foot(list(nodes.values()), node_w, left + 44, top + chart_h + 22)
    return svg(WIDTH, bottom + 8, "Journey flow between stages", body + foot, "flow")


def back_moves(
    stage_order: Sequence[str], transitions: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The moves the chart does not draw, biggest first: (source, target, count) from a
    stage back to an earlier one, or into "no stage", for the table under the chart."""
    _, links = _flow_graph(stage_order, transitions)
    return [
        {"source": lk.source.name, "target": lk.target.name, "count": lk.value}
        for lk in sorted(
            (lk for lk in links if lk.back), key=lambda lk: (-lk.value, lk.source.column)
        )
    ]


def node_name(key: str) -> str:
    """How the chart names a transition row's node."""
    names = {START: "All journeys", CONVERSION: OUTCOMES[0], NULL: OUTCOMES[1]}
    return names.get(key, stage_label(key))


def _flow_graph(
    stage_order: Sequence[str], transitions: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, _Node], list[_Link]]:
    ordered = [s for s in stage_order if s != NO_STAGE]
    nodes = {START: _Node(START, node_name(START), 0, 0.0, "#6b7280")}
    if NO_STAGE in stage_order:
        nodes[NO_STAGE] = _Node(NO_STAGE, node_name(NO_STAGE), 1, 0.0, UNSTAGED)
    first = len(nodes)
    for k, stage in enumerate(ordered):
        nodes[stage] = _Node(stage, stage, first + k, 0.0, stage_colour(k))
    last = first + len(ordered)
    nodes[CONVERSION] = _Node(CONVERSION, node_name(CONVERSION), last, 0.0, CONVERTED)
    nodes[NULL] = _Node(NULL, node_name(NULL), last, 0.0, DROPPED)
    links = [
        _Link(nodes[str(t["source"])], nodes[str(t["target"])], float(t["count"]))
        for t in transitions
        if t["source"] != t["target"] and float(t["count"]) > 0
    ]
    for lk in links:
        lk.source.out_at += lk.value
        lk.target.in_at += lk.value
        if lk.back and lk.target.key == NO_STAGE:
            lk.source.unstaged += lk.value
        elif lk.back:
            lk.source.back += lk.value
    for node in nodes.values():
        node.value = max(node.in_at, node.out_at)
        node.in_at = node.out_at = 0.0
    return nodes, links


def _flow_scale(nodes: Mapping[str, _Node], chart_h: float) -> float:
    per_column: dict[int, list[float]] = {}
    for node in nodes.values():
        per_column.setdefault(node.column, []).append(node.value)
    fits = [(chart_h - 24 * (len(vs) - 1)) / sum(vs) for vs in per_column.values() if sum(vs) > 0]
    return min(fits, default=1.0)


def _place_nodes(nodes: Mapping[str, _Node], top: float, chart_h: float, scale: float) -> None:
    """Centre each column; the outcome column stacks converted above dropped out."""
    columns: dict[int, list[_Node]] = {}
    for node in nodes.values():
        columns.setdefault(node.column, []).append(node)
    for members in columns.values():
        height = sum(n.value * scale for n in members) + 24 * (len(members) - 1)
        y = top + (chart_h - height) / 2
        for node in members:
            node.y = y
            y += node.value * scale + 24


def _band(link: _Link, scale: float, node_w: float) -> str:
    s, t, h = link.source, link.target, link.value * scale
    sx, tx = s.x + node_w, t.x
    sy, ty = s.y + s.out_at, t.y + t.in_at
    s.out_at += h
    t.in_at += h
    mx = (sx + tx) / 2
    d = (
        f"M{num(sx)} {num(sy)} C{num(mx)} {num(sy)} {num(mx)} {num(ty)} {num(tx)} "
        f"{num(ty)} L{num(tx)} {num(ty + h)} C{num(mx)} {num(ty + h)} {num(mx)} "
        f"{num(sy + h)} {num(sx)} {num(sy + h)} Z"
    )
    tip = f"{s.name} → {t.name}: {count(link.value)}"
    band = (
        f'<path class="band" d="{d}" fill="{t.colour}" fill-opacity="0.32" '
        f'data-metric="flow.link" data-source="{escape(s.key)}" '
        f'data-target="{escape(t.key)}" data-value="{link.value}">'
        f"<title>{escape(tip)}</title></path>"
    )
    if h < BAND_LABEL_MIN:
        return band
    return band + label(sx + 4, sy + h / 2 + 4, count(link.value), "bandnum")


def _flow_node(node: _Node, scale: float, node_w: float, fit: int) -> str:
    x, h = node.x, max(node.value * scale, 1.0)
    parts = [rect(x, node.y, node_w, h, node.colour, f"{node.name}: {count(node.value)}")]
    data: dict[str, Any] = {"metric": "flow.node", "node": node.name, "value": node.value}
    if node.name in OUTCOMES:
        lx, ly = x + node_w + 8, node.y + h / 2
        parts += [
            label(lx, ly - 2, node.name, "label strong", fit=14),
            label(lx, ly + 15, count(node.value), "value", **data),
        ]
    elif node.column == 0:
        lx, ly = x - 8, node.y + h / 2
        parts += [
            label(lx, ly - 2, node.name, "label strong", "end"),
            label(lx, ly + 15, count(node.value), "value", "end", **data),
        ]
    else:
        lx = x + node_w / 2
        parts += [
            label(lx, node.y - 22, node.name, "label strong", "middle", fit=fit),
            label(lx, node.y - 7, count(node.value), "value", "middle", **data),
        ]
    return "".join(parts)


FOOT_ROWS = (
    # heading, metric, the node's attribute counting it
    ("↻ stay", "flow.stay", "stay"),
    ("↩ back", "flow.back", "back"),
    ("→ no stage", "flow.to_no_stage", "unstaged"),
)


def _foot(nodes: Sequence[_Node], node_w: float, x0: float, y: float) -> tuple[list[str], float]:
    """Rows under the chart: per stage, in its column, its repeated touches, its moves
    back and its moves into "no stage" (none drawn as bands); each row headed at the
    left, under "All journeys", so the numbers need no words of their own."""
    out: list[str] = []
    for heading, metric, attribute in FOOT_ROWS:
        counted = [(n, float(getattr(n, attribute))) for n in nodes if getattr(n, attribute)]
        if not counted:
            continue
        out.append(label(x0, y, heading, "label strong", "end"))
        out += [
            label(n.x + node_w / 2, y, count(v), "label muted", "middle",
                  metric=metric, node=n.key, value=v)
            for n, v in counted
        ]  # fmt: skip
        y += 16
    return out, y
