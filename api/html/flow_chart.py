"""The journey flow chart: a Sankey-style diagram of moves between funnel stages.

Journeys enter from the left, move through the stages in funnel order and leave to
"Converted" or "Dropped out" on the right; band widths are the moves. Moves back to an
earlier stage would run against the flow, so they are drawn as loops in lanes beneath
the chart, thinnest span first. Drawing primitives and colours are those of
:mod:`api.charts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from .charts import CONVERTED, DROPPED, LOOPED, WIDTH, count, label, num, rect, stage_colour, svg

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
"""Node labels of the stage transition rows (the Markov chain's start and absorbing states)."""


@dataclass
class _Node:
    name: str
    column: int
    value: float
    colour: str
    x: float = 0.0
    y: float = 0.0
    out_at: float = 0.0
    in_at: float = 0.0


@dataclass(frozen=True)
class _Link:
    source: _Node
    target: _Node
    value: float

    @property
    def back(self) -> bool:
        return self.target.column <= self.source.column


def flow(stage_order: Sequence[str], transitions: Sequence[Mapping[str, Any]]) -> str:
    """A Sankey-style flow: all journeys -> stages -> converted or dropped out.

    ``transitions`` are the stage transition rows with repeats collapsed (``source``,
    ``target``, ``count``): moves into a later stage flow right, moves back to an earlier
    stage are drawn as loops beneath the chart.
    """
    nodes, links = _flow_graph(stage_order, transitions)
    top, chart_h, node_w = 46.0, 330.0, 14.0
    columns = len(stage_order) + 2
    step = (WIDTH - 200 - node_w) / max(columns - 1, 1)
    scale = _flow_scale(nodes, chart_h)
    for node in nodes.values():
        node.x = 40 + node.column * step
    _place_nodes(nodes, top, chart_h, scale)
    forward = [lk for lk in links if not lk.back]
    loops = sorted((lk for lk in links if lk.back), key=_loop_span)
    body = [_band(lk, scale, node_w) for lk in forward]
    lane = top + chart_h + 24.0
    for lk in loops:
        thickness = max(lk.value * scale, 1.5)
        body.append(_loop(lk, scale, node_w, lane + thickness / 2))
        lane += thickness + 8
    body += [_flow_node(n, scale, node_w) for n in nodes.values()]
    return svg(WIDTH, lane + 8, "Journey flow between stages", body, "flow")


def _flow_graph(
    stage_order: Sequence[str], transitions: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, _Node], list[_Link]]:
    last = len(stage_order) + 1
    nodes = {START: _Node("All journeys", 0, 0.0, "#6b7280")}
    for k, stage in enumerate(stage_order):
        nodes[stage] = _Node(stage, k + 1, 0.0, stage_colour(k))
    nodes[CONVERSION] = _Node("Converted", last, 0.0, CONVERTED)
    nodes[NULL] = _Node("Dropped out", last, 0.0, DROPPED)
    links = [
        _Link(nodes[str(t["source"])], nodes[str(t["target"])], float(t["count"]))
        for t in transitions
        if t["source"] != t["target"] and float(t["count"]) > 0
    ]
    for lk in links:
        lk.source.out_at += lk.value
        lk.target.in_at += lk.value
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


def _loop_span(link: _Link) -> tuple[int, int]:
    return (link.source.column - link.target.column, link.source.column)


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
    return (
        f'<path class="band" d="{d}" fill="{t.colour}" fill-opacity="0.32" '
        f'data-metric="flow.link" data-value="{link.value}"><title>{escape(tip)}</title></path>'
    )


def _loop(link: _Link, scale: float, node_w: float, lane: float) -> str:
    """A move back: out of the source's foot, along a lane under the chart, up into the target."""
    s, t, h = link.source, link.target, max(link.value * scale, 1.5)
    sx, tx = s.x + node_w, t.x
    # loops stack below the forward bands, in the order they are drawn
    sy, ty = s.y + s.out_at + h / 2, t.y + t.in_at + h / 2
    s.out_at += h
    t.in_at += h
    d = (
        f"M{num(sx)} {num(sy)} C{num(sx + 36)} {num(sy)} {num(sx + 36)} {num(lane)} "
        f"{num(sx)} {num(lane)} L{num(tx)} {num(lane)} C{num(tx - 36)} {num(lane)} "
        f"{num(tx - 36)} {num(ty)} {num(tx)} {num(ty)}"
    )
    tip = f"{s.name} → back to {t.name}: {count(link.value)}"
    return (
        f'<path class="loop" d="{d}" fill="none" stroke="{LOOPED}" stroke-opacity="0.55" '
        f'stroke-width="{num(h)}" data-metric="flow.loop" data-value="{link.value}">'
        f"<title>{escape(tip)}</title></path>"
    )


def _flow_node(node: _Node, scale: float, node_w: float) -> str:
    x, h = node.x, max(node.value * scale, 1.0)
    parts = [rect(x, node.y, node_w, h, node.colour, f"{node.name}: {count(node.value)}")]
    if node.name in ("Converted", "Dropped out"):
        lx, ly, anchor = x + node_w + 8, node.y + h / 2, "start"
        parts += [
            label(lx, ly - 2, node.name, "label strong", anchor, fit=22),
            label(
                lx,
                ly + 15,
                count(node.value),
                "value",
                anchor,
                metric="flow.node",
                node=node.name,
                value=node.value,
            ),
        ]
    else:
        lx, anchor = x + (0 if node.column == 0 else node_w / 2), "start"
        anchor = "start" if node.column == 0 else "middle"
        parts += [
            label(lx, node.y - 22, node.name, "label strong", anchor, fit=22),
            label(
                lx,
                node.y - 7,
                count(node.value),
                "value",
                anchor,
                metric="flow.node",
                node=node.name,
                value=node.value,
            ),
        ]
    return "".join(parts)
