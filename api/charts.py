"""Server-side SVG charts for the HTML report: funnel, journey flow, credit, drop-off.

Each function takes the rows the JSON reports return and gives back one ``<svg>``
element as a string. Drawing on the server keeps the report one self-contained file:
it shows its charts with scripts disabled, offline, or saved to disk. Styling (fonts,
text colours) comes from the page's stylesheet through the class names used here;
fills are set inline so a chart copied out of the page keeps its colours.

Every number a chart prints is also in an element's ``data-value`` attribute, so the
numbers on the page can be checked against the API's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

WIDTH = 1120
STAGE_COLOURS = ("#2f5d9e", "#3f7fc1", "#3e9bb8", "#3fae9a", "#6aa86a", "#8a9a5b", "#a5835a")
MODEL_COLOURS = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#b07aa1",
    "#edc948",
    "#9c755f",
    "#ff9da7",
    "#8c8c8c",
)
CONVERTED, DROPPED, LOOPED = "#2e9d62", "#d1495b", "#e9a23b"
DASH = "\u2013"

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
"""Node labels of the stage transition rows (the Markov chain's start and absorbing states)."""


# ---------------------------------------------------------------------- formatting
def count(x: float) -> str:
    """A journey count: whole numbers with thousands separators, else one decimal."""
    return f"{x:,.0f}" if abs(x - round(x)) < 1e-9 else f"{x:,.1f}"


def percent(x: float | None, digits: int = 1) -> str:
    return DASH if x is None else f"{100 * x:.{digits}f}%"


def stage_colour(k: int) -> str:
    return STAGE_COLOURS[k % len(STAGE_COLOURS)]


def model_colour(k: int) -> str:
    return MODEL_COLOURS[k % len(MODEL_COLOURS)]


# ---------------------------------------------------------------------- primitives
def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _svg(width: float, height: float, label: str, body: Sequence[str], cls: str) -> str:
    return (
        f'<svg class="chart {cls}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" width="{_num(width)}" '
        f'height="{_num(height)}" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "", **data: Any) -> str:
    attrs = "".join(f' data-{k}="{escape(str(v))}"' for k, v in data.items())
    title = f"<title>{escape(tip)}</title>" if tip else ""
    return (
        f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(max(w, 0))}" '
        f'height="{_num(max(h, 0))}" fill="{fill}" rx="2"{attrs}>{title}</rect>'
    )


def _text(x: float, y: float, s: str, cls: str = "", anchor: str = "start", **data: Any) -> str:
    attrs = "".join(f' data-{k}="{escape(str(v))}"' for k, v in data.items())
    return (
        f'<text x="{_num(x)}" y="{_num(y)}" class="{cls}" '
        f'text-anchor="{anchor}"{attrs}>{escape(s)}</text>'
    )


def legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    """Coloured swatches with labels in one row."""
    out: list[str] = []
    for label, colour in items:
        out += [_rect(x, y - 10, 12, 12, colour), _text(x + 18, y, label, "legend")]
        x += 34 + 7.5 * len(label)
    return out


# ---------------------------------------------------------------------- funnel
_FUNNEL_PARTS = (
    ("moved_on", "moved on", None),
    ("converted", "converted here", CONVERTED),
    ("looped_back", "looped back", LOOPED),
    ("dropped_out", "dropped out here", DROPPED),
)


def funnel(rows: Sequence[Mapping[str, Any]], total_journeys: float) -> str:
    """Per stage, a bar as long as the journeys that reached it, split by what they did."""
    label_w, right_w, row_h, top = 190, 150, 50, 40
    bar_w = WIDTH - label_w - right_w
    body = legend([(p[1], p[2] or stage_colour(0)) for p in _FUNNEL_PARTS], label_w, 16)
    for k, row in enumerate(rows):
        y = top + k * row_h
        body += [
            _text(0, y + 17, str(row["stage"]), "label strong"),
            _text(0, y + 35, f"{count(row['reached'])} reached", "label muted"),
        ]
        body += _funnel_bar(row, k, label_w, y, bar_w / max(total_journeys, 1e-300))
        body.append(
            _text(
                WIDTH - right_w + 14,
                y + 26,
                percent(row["cumulative_rate"]),
                "value big",
                metric="funnel.cumulative_rate",
                stage=row["stage"],
                value=row["cumulative_rate"],
            )
        )
        body.append(_text(WIDTH - right_w + 14, y + 42, "of all journeys", "label muted"))
    height = top + len(rows) * row_h + 4
    return _svg(WIDTH, height, "Stage funnel", body, "funnel")


def _funnel_bar(row: Mapping[str, Any], k: int, x: float, y: float, scale: float) -> list[str]:
    out: list[str] = []
    for key, label, colour in _FUNNEL_PARTS:
        n = float(row[key])
        w = n * scale
        tip = f"{row['stage']}: {count(n)} {label}"
        out.append(
            _rect(
                x,
                y + 4,
                w,
                36,
                colour or stage_colour(k),
                tip,
                metric=f"funnel.{key}",
                stage=row["stage"],
                value=n,
            )
        )
        if w > 44:
            out.append(_text(x + w / 2, y + 27, count(n), "inbar", "middle"))
        x += w
    return out


# ---------------------------------------------------------------------- flow (Sankey)
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
    return _svg(WIDTH, lane + 8, "Journey flow between stages", body, "flow")


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
        f"M{_num(sx)} {_num(sy)} C{_num(mx)} {_num(sy)} {_num(mx)} {_num(ty)} {_num(tx)} "
        f"{_num(ty)} L{_num(tx)} {_num(ty + h)} C{_num(mx)} {_num(ty + h)} {_num(mx)} "
        f"{_num(sy + h)} {_num(sx)} {_num(sy + h)} Z"
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
        f"M{_num(sx)} {_num(sy)} C{_num(sx + 36)} {_num(sy)} {_num(sx + 36)} {_num(lane)} "
        f"{_num(sx)} {_num(lane)} L{_num(tx)} {_num(lane)} C{_num(tx - 36)} {_num(lane)} "
        f"{_num(tx - 36)} {_num(ty)} {_num(tx)} {_num(ty)}"
    )
    tip = f"{s.name} → back to {t.name}: {count(link.value)}"
    return (
        f'<path class="loop" d="{d}" fill="none" stroke="{LOOPED}" stroke-opacity="0.55" '
        f'stroke-width="{_num(h)}" data-metric="flow.loop" data-value="{link.value}">'
        f"<title>{escape(tip)}</title></path>"
    )


def _flow_node(node: _Node, scale: float, node_w: float) -> str:
    x, h = node.x, max(node.value * scale, 1.0)
    parts = [_rect(x, node.y, node_w, h, node.colour, f"{node.name}: {count(node.value)}")]
    if node.name in ("Converted", "Dropped out"):
        lx, ly, anchor = x + node_w + 8, node.y + h / 2, "start"
        parts += [
            _text(lx, ly - 2, node.name, "label strong", anchor),
            _text(
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
            _text(lx, node.y - 22, node.name, "label strong", anchor),
            _text(
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


# ---------------------------------------------------------------------- credit by model
def credit(rows: Sequence[Mapping[str, Any]], models: Sequence[str]) -> str:
    """Conversions credited to each channel, one small bar chart per model side by side.

    ``rows`` are the attribution table's channel rows (``model``, ``channel``,
    ``conversions``, ``share``). Channels are ordered by their mean share over models,
    and every panel shares one scale, so bars compare across models.
    """
    cells = {(r["model"], r["channel"]): r for r in rows}
    channels = _channels_by_mean_share(rows)
    label_w, top, row_h, gap = 150, 34, 26, 18
    panel_w = (WIDTH - label_w - gap * (len(models) - 1)) / max(len(models), 1)
    biggest = max((float(r["share"] or 0) for r in rows), default=0.0) or 1.0
    body: list[str] = []
    for i, channel in enumerate(channels):
        body.append(_text(label_w - 12, top + i * row_h + 17, channel, "label", "end"))
    for m, model in enumerate(models):
        x0 = label_w + m * (panel_w + gap)
        body.append(_text(x0, 18, model.replace("_", " "), "label strong"))
        for i, channel in enumerate(channels):
            row = cells.get((model, channel))
            if row is not None:
                body += _credit_bar(row, x0, top + i * row_h, panel_w - 52, biggest, m)
    height = top + len(channels) * row_h + 6
    return _svg(WIDTH, height, "Conversions credited to each channel, by model", body, "credit")


def _channels_by_mean_share(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    totals: dict[str, float] = {}
    for r in rows:
        totals[r["channel"]] = totals.get(r["channel"], 0.0) + float(r["share"] or 0)
    return sorted(totals, key=lambda c: (-totals[c], c))


def _credit_bar(
    row: Mapping[str, Any], x: float, y: float, width: float, biggest: float, m: int
) -> list[str]:
    share = float(row["share"] or 0)
    w = width * share / biggest
    tip = (
        f"{row['model']} · {row['channel']}: {count(row['conversions'])} conversions "
        f"({percent(share)}), value {row['value']:,.2f}"
    )
    return [
        _rect(x, y + 5, width, 16, "#eef1f5"),
        _rect(x, y + 5, w, 16, model_colour(m), tip),
        _text(
            x + w + 5,
            y + 18,
            f"{float(row['conversions']):,.1f}",
            "value small",
            metric="credit.conversions",
            model=row["model"],
            channel=row["channel"],
            value=row["conversions"],
        ),
    ]


# ---------------------------------------------------------------------- drop-off
def dropoff(rows: Sequence[Mapping[str, Any]]) -> str:
    """Drop-off rate per stage x channel with its interval (whiskers), worst first."""
    label_w, right_w, top, row_h = 250, 190, 30, 30
    axis_w = WIDTH - label_w - right_w
    body: list[str] = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = label_w + tick * axis_w
        body.append(
            f'<line x1="{_num(x)}" y1="{top - 6}" x2="{_num(x)}" '
            f'y2="{top + len(rows) * row_h}" class="grid"/>'
        )
        body.append(_text(x, top - 12, percent(tick, 0), "label muted", "middle"))
    for i, row in enumerate(rows):
        body += _dropoff_row(row, label_w, top + i * row_h, axis_w)
    height = top + len(rows) * row_h + 8
    return _svg(WIDTH, height, "Drop-off hot spots", body, "dropoff")


def _dropoff_row(row: Mapping[str, Any], x0: float, y: float, axis_w: float) -> list[str]:
    rate, low, high = float(row["rate"]), float(row["ci_low"]), float(row["ci_high"])
    where = f"{row['stage'] or DASH} · {row['channel']}"
    mid = y + 15
    lo_x, hi_x = x0 + low * axis_w, x0 + high * axis_w
    tip = (
        f"{where}: {count(row['dropped_out'])} of {count(row['passing'])} dropped out "
        f"({percent(rate)}; interval {percent(low)}{DASH}{percent(high)})"
    )
    return [
        _text(x0 - 12, mid + 5, where, "label", "end"),
        _rect(x0, y + 6, rate * axis_w, 18, DROPPED, tip),
        f'<line x1="{_num(lo_x)}" y1="{_num(mid)}" x2="{_num(hi_x)}" y2="{_num(mid)}" '
        f'class="whisker"/>',
        f'<line x1="{_num(lo_x)}" y1="{_num(mid - 6)}" x2="{_num(lo_x)}" '
        f'y2="{_num(mid + 6)}" class="whisker"/>',
        f'<line x1="{_num(hi_x)}" y1="{_num(mid - 6)}" x2="{_num(hi_x)}" '
        f'y2="{_num(mid + 6)}" class="whisker"/>',
        _text(
            x0 + axis_w + 14,
            mid + 5,
            percent(rate),
            "value",
            metric="dropoff.rate",
            rank=row["rank"],
            value=rate,
        ),
        _text(
            x0 + axis_w + 74,
            mid + 5,
            f"{count(row['dropped_out'])} / {count(row['passing'])}",
            "label muted",
        ),
    ]


# ---------------------------------------------------------------------- stage removal effects
def removal_effects(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markov removal effect of each stage: the share of conversions lost without it."""
    label_w, right_w, top, row_h = 190, 150, 8, 30
    axis_w = WIDTH - label_w - right_w
    body: list[str] = []
    for k, row in enumerate(rows):
        y, effect = top + k * row_h, float(row["removal_effect"])
        tip = f"{row['stage']}: removing it loses {percent(effect)} of conversions"
        body += [
            _text(label_w - 12, y + 18, str(row["stage"]), "label", "end"),
            _rect(label_w, y + 5, axis_w, 18, "#eef1f5"),
            _rect(label_w, y + 5, effect * axis_w, 18, stage_colour(k), tip),
            _text(
                label_w + axis_w + 14,
                y + 19,
                percent(effect),
                "value",
                metric="stage.removal_effect",
                stage=row["stage"],
                value=effect,
            ),
        ]
    height = top + len(rows) * row_h + 6
    return _svg(WIDTH, height, "Stage removal effects", body, "effects")
