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
NARROW_PANEL = 170.0
"""Credit panels narrower than this (six models or more) stack a bar's share and value."""


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
def num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def svg(width: float, height: float, label: str, body: Sequence[str], cls: str) -> str:
    return (
        f'<svg class="chart {cls}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {num(width)} {num(height)}" width="{num(width)}" '
        f'height="{num(height)}" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "", **data: Any) -> str:
    attrs = "".join(f' data-{k}="{escape(str(v))}"' for k, v in data.items())
    title = f"<title>{escape(tip)}</title>" if tip else ""
    return (
        f'<rect x="{num(x)}" y="{num(y)}" width="{num(max(w, 0))}" '
        f'height="{num(max(h, 0))}" fill="{fill}" rx="2"{attrs}>{title}</rect>'
    )


def label(
    x: float, y: float, s: str, cls: str = "", anchor: str = "start", *, fit: int = 0, **data: Any
) -> str:
    """Text at (x, y); longer than ``fit`` characters, it is cut short (whole on hover)."""
    attrs = "".join(f' data-{k}="{escape(str(v))}"' for k, v in data.items())
    shown = s if not fit or len(s) <= fit else s[: fit - 1] + "\u2026"
    title = f"<title>{escape(s)}</title>" if shown != s else ""
    return (
        f'<text x="{num(x)}" y="{num(y)}" class="{cls}" '
        f'text-anchor="{anchor}"{attrs}>{title}{escape(shown)}</text>'
    )


def legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    """Coloured swatches with labels in one row."""
    out: list[str] = []
    for name, colour in items:
        out += [rect(x, y - 10, 12, 12, colour), label(x + 18, y, name, "legend")]
        x += 34 + 7.5 * len(name)
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
            label(0, y + 17, str(row["stage"]), "label strong", fit=24),
            label(0, y + 35, f"{count(row['reached'])} reached", "label muted"),
        ]
        body += _funnel_bar(row, k, label_w, y, bar_w / max(total_journeys, 1e-300))
        body.append(
            label(
                WIDTH - right_w + 14,
                y + 26,
                percent(row["cumulative_rate"]),
                "value big",
                metric="funnel.cumulative_rate",
                stage=row["stage"],
                value=row["cumulative_rate"],
            )
        )
        body.append(label(WIDTH - right_w + 14, y + 42, "of all journeys", "label muted"))
    height = top + len(rows) * row_h + 4
    return svg(WIDTH, height, "Stage funnel", body, "funnel")


def _funnel_bar(row: Mapping[str, Any], k: int, x: float, y: float, scale: float) -> list[str]:
    out: list[str] = []
    for key, meaning, colour in _FUNNEL_PARTS:
        n = float(row[key])
        w = n * scale
        tip = f"{row['stage']}: {count(n)} {meaning}"
        out.append(
            rect(
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
            out.append(label(x + w / 2, y + 27, count(n), "inbar", "middle"))
        x += w
    return out


# ---------------------------------------------------------------------- credit by model
def credit(rows: Sequence[Mapping[str, Any]], models: Sequence[str], most: int = 16) -> str:
    """Conversions credited to each channel, one small bar chart per model side by side.

    ``rows`` are the attribution table's channel rows (``model``, ``channel``,
    ``conversions``, ``value``, ``share``). Each bar is written on: its conversions
    beside it, its share and value under it, so a printed page carries the numbers.
    Channels are ordered by their mean share over models, and every panel shares one
    scale, so bars compare across models. Past ``most`` channels the rest are counted
    in a last line (the page's table lists them).
    """
    cells = {(r["model"], r["channel"]): r for r in rows}
    ranked = channels_by_mean_share(rows)
    channels = ranked[:most]
    label_w, top, gap = 150, 34, 18
    panel_w = (WIDTH - label_w - gap * (len(models) - 1)) / max(len(models), 1)
    stacked = panel_w < NARROW_PANEL  # share and value each on a line of their own
    row_h = 56 if stacked else 42
    biggest = max((float(r["share"] or 0) for r in rows), default=0.0) or 1.0
    body: list[str] = []
    for i, channel in enumerate(channels):
        body.append(label(label_w - 12, top + i * row_h + 22, channel, "label", "end", fit=20))
    for m, model in enumerate(models):
        x0 = label_w + m * (panel_w + gap)
        body.append(label(x0, 18, model.replace("_", " "), "label strong"))
        for i, channel in enumerate(channels):
            row = cells.get((model, channel))
            if row is not None:
                body += _credit_bar(row, x0, top + i * row_h, panel_w - 52, biggest, m, stacked)
    height = top + len(channels) * row_h + 6
    if len(ranked) > most:
        more = f"and {len(ranked) - most} more channels, in the table below"
        body.append(label(label_w, height + 12, more, "label muted"))
        height += 22
    return svg(WIDTH, height, "Conversions credited to each channel, by model", body, "credit")


def channels_by_mean_share(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    totals: dict[str, float] = {}
    for r in rows:
        totals[r["channel"]] = totals.get(r["channel"], 0.0) + float(r["share"] or 0)
    return sorted(totals, key=lambda c: (-totals[c], c))


def _credit_bar(
    row: Mapping[str, Any],
    x: float,
    y: float,
    width: float,
    biggest: float,
    m: int,
    stacked: bool = False,
) -> list[str]:
    share = float(row["share"] or 0)
    w = width * share / biggest
    tip = (
        f"{row['model']} · {row['channel']}: {count(row['conversions'])} conversions "
        f"({percent(share)}), value {row['value']:,.2f}"
    )
    key = {"model": row["model"], "channel": row["channel"]}
    return [
        rect(x, y + 5, width, 16, "#eef1f5"),
        rect(x, y + 5, w, 16, model_colour(m), tip),
        label(x + w + 5, y + 18, f"{float(row['conversions']):,.1f}", "value small",
              metric="credit.conversions", value=row["conversions"], **key),
        label(x, y + 35, percent(share), "label muted", metric="credit.share", value=share,
              **key),
        label(x + (0 if stacked else 52), y + (49 if stacked else 35),
              f"value {float(row['value']):,.0f}", "label muted", metric="credit.value",
              value=row["value"], **key),
    ]  # fmt: skip


# ---------------------------------------------------------------------- drop-off
def dropoff(rows: Sequence[Mapping[str, Any]]) -> str:
    """Drop-off rate per stage x channel with its interval (whiskers), worst first."""
    label_w, right_w, top, row_h = 250, 190, 30, 30
    axis_w = WIDTH - label_w - right_w
    body: list[str] = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = label_w + tick * axis_w
        body.append(
            f'<line x1="{num(x)}" y1="{top - 6}" x2="{num(x)}" '
            f'y2="{top + len(rows) * row_h}" class="grid"/>'
        )
        body.append(label(x, top - 12, percent(tick, 0), "label muted", "middle"))
    for i, row in enumerate(rows):
        body += _dropoff_row(row, label_w, top + i * row_h, axis_w)
    height = top + len(rows) * row_h + 8
    return svg(WIDTH, height, "Drop-off hot spots", body, "dropoff")


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
        label(x0 - 12, mid + 5, where, "label", "end", fit=34),
        rect(x0, y + 6, rate * axis_w, 18, DROPPED, tip),
        f'<line x1="{num(lo_x)}" y1="{num(mid)}" x2="{num(hi_x)}" y2="{num(mid)}" '
        f'class="whisker"/>',
        f'<line x1="{num(lo_x)}" y1="{num(mid - 6)}" x2="{num(lo_x)}" '
        f'y2="{num(mid + 6)}" class="whisker"/>',
        f'<line x1="{num(hi_x)}" y1="{num(mid - 6)}" x2="{num(hi_x)}" '
        f'y2="{num(mid + 6)}" class="whisker"/>',
        label(
            x0 + axis_w + 14,
            mid + 5,
            percent(rate),
            "value",
            metric="dropoff.rate",
            rank=row["rank"],
            value=rate,
        ),
        label(
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
            label(label_w - 12, y + 18, str(row["stage"]), "label", "end", fit=24),
            rect(label_w, y + 5, axis_w, 18, "#eef1f5"),
            rect(label_w, y + 5, effect * axis_w, 18, stage_colour(k), tip),
            label(
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
    return svg(WIDTH, height, "Stage removal effects", body, "effects")
