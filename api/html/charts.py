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

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from attribution.paths import NO_STAGE

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
UNSTAGED, UNSTAGED_ON = "#9aa3b2", "went on to a stage"
DASH = "\u2013"
NO_STAGE_LABEL = "no stage"
APART_GAP = 24.0
"""Space above the "no stage" row, which stands apart from the ordered stages."""
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


# ---------------------------------------------------------------------- axes
NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


def nice_ticks(top: float, most: int = 5, least_step: float = 0.0) -> list[float]:
    """Ticks from 0 in round steps (1, 2, 2.5 or 5 times a power of ten) to the first
    at or above ``top``: the smallest such step that needs at most ``most`` intervals,
    so the longest bar ends near the axis's end. ``least_step`` keeps counts on whole
    numbers. With nothing to show (``top`` <= 0) the axis runs to one step."""
    top = max(top, 0.0)
    if top == 0.0:
        return [0.0, max(least_step, 1.0)]
    magnitude = 10.0 ** math.floor(math.log10(top / most))
    step = next(
        m * magnitude for m in NICE_STEPS if math.ceil(top / (m * magnitude) - 1e-9) <= most
    )
    step = max(step, least_step)
    intervals = math.ceil(top / step - 1e-9)
    return [round(k * step, 12) for k in range(intervals + 1)]


def percent_tick(x: float) -> str:
    """A tick as a percentage with as many decimals as its step needs (2.5%, 20%)."""
    return f"{100 * x:.1f}".removesuffix(".0") + "%"


def axis(
    ticks: Sequence[float],
    x0: float,
    width: float,
    top: float,
    bottom: float,
    text: Callable[[float], str],
    name: str,
) -> list[str]:
    """Grid lines at ``ticks`` (the last at ``x0 + width``) labelled above ``top`` by
    ``text(tick)``; each label carries its tick as ``data-tick``, for the tests."""
    out: list[str] = []
    for tick in ticks:
        x = x0 + tick / ticks[-1] * width
        out.append(
            f'<line x1="{num(x)}" y1="{num(top - 6)}" x2="{num(x)}" y2="{num(bottom)}" '
            f'class="grid"/>'
        )
        out.append(label(x, top - 12, text(tick), "label muted", "middle", axis=name, tick=tick))
    return out


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


def funnel(rows: Sequence[Mapping[str, Any]]) -> str:
    """Per stage, a bar as long as the journeys that reached it, split by what they did,
    on a count axis that ends at a round number just past the stage most reached.

    Touches without a stage (``(none)``) are outside the stage order: their row is
    drawn apart, under a rule, as "no stage", never as the stage after the last.
    """
    label_w, right_w, row_h, top = 190, 150, 50, 64
    bar_w = WIDTH - label_w - right_w
    staged = [r for r in rows if r["stage"] != NO_STAGE]
    apart = [r for r in rows if r["stage"] == NO_STAGE]
    ticks = nice_ticks(max((float(r["reached"]) for r in rows), default=0.0), least_step=1.0)
    bottom = top + len(rows) * row_h + (APART_GAP if apart else 0)
    parts = [(p[1], p[2] or stage_colour(0)) for p in _FUNNEL_PARTS]
    if apart:
        parts.append((UNSTAGED_ON, UNSTAGED))
    body = legend(parts, label_w, 16)
    body += axis(ticks, label_w, bar_w, top, bottom - 6, count, "funnel")
    y = float(top)
    for k, row in enumerate(staged + apart):
        if row["stage"] == NO_STAGE:
            y += APART_GAP
            body.append(_apart_rule(y - APART_GAP / 2 - 2, label_w))
        body += _funnel_row(row, k, y, label_w, bar_w / ticks[-1], right_w)
        y += row_h
    return svg(WIDTH, bottom + 4, "Stage funnel", body, "funnel")


def _funnel_row(
    row: Mapping[str, Any], k: int, y: float, label_w: float, scale: float, right_w: float
) -> list[str]:
    stage = stage_label(row["stage"])
    out = [
        label(0, y + 17, stage, "label strong", fit=24, row=row["stage"]),
        label(0, y + 35, f"{count(row['reached'])} reached", "label muted"),
    ]
    out += _funnel_bar(row, k, label_w, y, scale)
    out.append(
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
    out.append(label(WIDTH - right_w + 14, y + 42, "of all journeys", "label muted"))
    return out


def _stage_fill(row: Mapping[str, Any], k: int) -> str:
    return UNSTAGED if row["stage"] == NO_STAGE else stage_colour(k)


def stage_label(stage: str) -> str:
    """How the page names a stage: touches without one are "no stage"."""
    return NO_STAGE_LABEL if stage == NO_STAGE else stage


def _apart_rule(y: float, x0: float) -> str:
    """A dashed rule from ``x0`` at ``y``, named at its left: the rows under it stand
    outside the stage order."""
    return (
        label(0, y + 4, "outside the stage order", "label muted")
        + f'<line x1="{num(x0)}" y1="{num(y)}" x2="{num(WIDTH)}" y2="{num(y)}" class="grid" '
        f'stroke-dasharray="4 4"/>'
    )


def _funnel_bar(row: Mapping[str, Any], k: int, x: float, y: float, scale: float) -> list[str]:
    out: list[str] = []
    for key, meaning, colour in _FUNNEL_PARTS:
        if row["stage"] == NO_STAGE and key == "looped_back":
            # no stage ranks after the last, so every move on from it reads as a loop back
            meaning, colour = UNSTAGED_ON, UNSTAGED
        n = float(row[key])
        w = n * scale
        tip = f"{stage_label(row['stage'])}: {count(n)} {meaning}"
        out.append(
            rect(
                x,
                y + 4,
                w,
                36,
                colour or _stage_fill(row, k),
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
DROPOFF_COLUMNS = (
    # (heading, x from the axis's end, anchor)
    ("ranked by: at least", 150, "end"),
    ("rate", 210, "end"),
    ("95% interval", 332, "end"),
    ("dropped / passing", 352, "start"),
)


def dropoff(rows: Sequence[Mapping[str, Any]]) -> str:
    """Drop-off rate per stage x channel with its interval (whiskers), worst first.

    Rows are ranked by the interval's lower end, so that number is the table's first
    column ("at least"), beside the rate and the interval; the axis ends at a round
    percentage just past the highest interval end.
    """
    label_w, right_w, top, row_h = 230, 462, 50, 30
    axis_w = WIDTH - label_w - right_w
    bottom = top + len(rows) * row_h
    ticks = nice_ticks(max((float(r["ci_high"]) for r in rows), default=0.0))
    body = axis(ticks, label_w, axis_w, top, bottom, percent_tick, "dropoff")
    for heading, dx, anchor in DROPOFF_COLUMNS:
        body.append(label(label_w + axis_w + dx, top - 12, heading, "label muted", anchor))
    for i, row in enumerate(rows):
        body += _dropoff_row(row, label_w, top + i * row_h, axis_w, ticks[-1])
    return svg(WIDTH, bottom + 8, "Drop-off hot spots", body, "dropoff")


def _dropoff_row(
    row: Mapping[str, Any], x0: float, y: float, axis_w: float, axis_top: float
) -> list[str]:
    rate, low, high = float(row["rate"]), float(row["ci_low"]), float(row["ci_high"])
    where = f"{stage_label(row['stage']) if row['stage'] else DASH} · {row['channel']}"
    mid, scale = y + 15, axis_w / axis_top
    lo_x, hi_x = x0 + low * scale, x0 + high * scale
    interval = f"{percent(low)}{DASH}{percent(high)}"
    tip = (
        f"{where}: {count(row['dropped_out'])} of {count(row['passing'])} dropped out "
        f"({percent(rate)}; interval {interval})"
    )
    cells = [percent(low), percent(rate), interval,
             f"{count(row['dropped_out'])} / {count(row['passing'])}"]  # fmt: skip
    metrics = ("dropoff.ci_low", "dropoff.rate", "dropoff.ci_high", "")
    values = (low, rate, high, None)
    out = [
        label(x0 - 12, mid + 5, where, "label", "end", fit=30),
        rect(x0, y + 6, rate * scale, 18, DROPPED, tip),
        f'<line x1="{num(lo_x)}" y1="{num(mid)}" x2="{num(hi_x)}" y2="{num(mid)}" '
        f'class="whisker"/>',
        f'<line x1="{num(lo_x)}" y1="{num(mid - 6)}" x2="{num(lo_x)}" '
        f'y2="{num(mid + 6)}" class="whisker"/>',
        f'<line x1="{num(hi_x)}" y1="{num(mid - 6)}" x2="{num(hi_x)}" '
        f'y2="{num(mid + 6)}" class="whisker"/>',
    ]
    for (_, dx, anchor), text, name, value in zip(
        DROPOFF_COLUMNS, cells, metrics, values, strict=True
    ):
        cls = "value" if name == "dropoff.ci_low" else "label" if name else "label muted"
        data = {"metric": name, "rank": row["rank"], "value": value} if name else {}
        out.append(label(x0 + axis_w + dx, mid + 5, text, cls, anchor, **data))
    return out


# ---------------------------------------------------------------------- stage removal effects
def removal_effects(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markov removal effect of each stage: the share of conversions lost without it,
    on a percentage axis that ends just past the largest effect ("no stage" apart)."""
    label_w, right_w, top, row_h = 190, 150, 30, 30
    axis_w = WIDTH - label_w - right_w
    staged = [r for r in rows if r["stage"] != NO_STAGE]
    apart = [r for r in rows if r["stage"] == NO_STAGE]
    bottom = top + len(rows) * row_h + (APART_GAP if apart else 0)
    ticks = nice_ticks(max((float(r["removal_effect"]) for r in rows), default=0.0))
    body = axis(ticks, label_w, axis_w, top, bottom - 4, percent_tick, "effects")
    y = float(top)
    for k, row in enumerate(staged + apart):
        if row["stage"] == NO_STAGE:
            y += APART_GAP
            body.append(_apart_rule(y - APART_GAP / 2 + 2, label_w))
        effect = float(row["removal_effect"])
        stage = stage_label(row["stage"])
        tip = f"{stage}: removing it loses {percent(effect)} of conversions"
        body += [
            label(label_w - 12, y + 18, stage, "label", "end", fit=24, row=row["stage"]),
            rect(label_w, y + 5, effect / ticks[-1] * axis_w, 18, _stage_fill(row, k), tip),
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
        y += row_h
    return svg(WIDTH, bottom + 6, "Stage removal effects", body, "effects")
