"""What the report's charts show, read from the served page: axes scaled to the data,
the drop-off ranking column, the flow's counts and loops, touches without a stage kept
apart, and the models' warnings. Expected numbers are worked by hand in the comments."""

from __future__ import annotations

import html as entities
import itertools
import re
from typing import Any

import pytest

from attribution import PathSet, attribute
from attribution.synthetic import STAGE_NAMES, generate
from tests.html.test_report_page import metric, notices_of, parse
from tests.http.test_reports import JOURNEYS, ingest, journey_record


@pytest.fixture
def journeys(client, auth) -> None:
    """The ten hand-counted journeys of tests/http/test_reports.py."""
    ingest(client, auth, [journey_record(i + 1, *j) for i, j in enumerate(JOURNEYS)])


def record(jid: str, touches: list[tuple[str | None, str]], converted: bool) -> dict:
    """A journey of (stage, channel) touches an hour apart on 2025-02-01."""
    return {
        "journey_id": jid,
        "touchpoints": [
            {"channel": ch, "stage": st, "timestamp": f"2025-02-01T{k:02d}:00:00Z"}
            for k, (st, ch) in enumerate(touches)
        ],
        "converted": converted,
        "value": 10.0 if converted else 0.0,
    }


def report(client, auth, **query: Any) -> str:
    response = client.get("/report", query_string=query, headers=auth)
    assert response.status_code == 200, response.get_data(True)
    return response.get_data(True)


def chart(html: str, name: str) -> str:
    found = re.search(rf'<svg class="chart {name}".*?</svg>', html, flags=re.S)
    assert found, name
    return found.group(0)


def ticks(html: str, name: str) -> list[tuple[float, str]]:
    """An axis's ticks and their labels, left to right."""
    found = re.findall(
        rf'<text [^>]*data-axis="{name}" data-tick="([^"]+)"[^>]*>([^<]*)</text>', html
    )
    return [(float(t), text) for t, text in found]


def texts(svg: str, cls: str) -> list[str]:
    return [entities.unescape(t) for t in re.findall(rf'class="{cls}"[^>]*>([^<]*)<', svg)]


# ---------------------------------------------------------------------- axes
def test_axes_end_at_a_round_number_just_past_the_data(client, auth):
    # a: x@awareness, converts; b: x@awareness, does not; c: y@decision, converts.
    # Funnel: awareness reached by 2, decision by 1: count axis 0, 1, 2.
    # Markov: P(conversion) = 2/3 * 1/2 + 1/3 = 2/3; without awareness 1/3, without
    # decision 1/3: both effects 1/2, so the axis runs 0-50% in steps of 10.
    # Drop-off: awareness·x 1 of 2 (Wilson 95% high 0.906), decision·y 0 of 2 (high
    # 0.658): the axis runs to 100% in steps of 20.
    ingest(
        client,
        auth,
        [
            record("a", [("awareness", "x")], True),
            record("b", [("awareness", "x")], False),
            record("c", [("decision", "y")], True),
        ],
    )
    html = report(client, auth, models="linear")
    assert ticks(html, "funnel") == [(0, "0"), (1, "1"), (2, "2")]
    assert ticks(html, "effects") == [(k / 10, f"{10 * k}%") for k in range(6)]
    assert metric(parse(html), "stage.removal_effect", "stage") == pytest.approx(
        {"awareness": 0.5, "decision": 0.5}
    )
    assert ticks(html, "dropoff") == [(k / 5, f"{20 * k}%") for k in range(6)]
    # the longest removal-effect bar ends at the axis's end
    effects = chart(html, "effects")
    widths = [float(w) for w in re.findall(r'<rect x="190" y="[^"]+" width="([^"]+)"', effects)]
    assert max(widths) == pytest.approx(780)  # the axis: 1120 - 190 - 150


def test_dropoff_axis_follows_the_highest_interval_end(client, auth):
    # 10 journeys through search@awareness, one drops out: rate 0.1, n = 10,
    # Wilson 95%: centre (0.1 + 1.96^2/20) / (1 + 1.96^2/10) = 0.2110, half-width
    # 1.96 sqrt(0.09/10 + 1.96^2/400) / 1.3842 = 0.1931: 0.0179 to 0.4042, so the
    # axis ends at 50% in steps of 10, not at 100%.
    records = [record(f"s{i}", [("awareness", "search")], i > 0) for i in range(10)]
    ingest(client, auth, records)
    html = report(client, auth, models="linear")
    assert ticks(html, "dropoff") == [(k / 10, f"{10 * k}%") for k in range(6)]
    page = parse(html)
    assert metric(page, "dropoff.ci_low", "rank") == pytest.approx({"1": 0.0179}, abs=1e-4)
    assert metric(page, "dropoff.ci_high", "rank") == pytest.approx({"1": 0.4042}, abs=1e-4)


def test_dropoff_ranking_column_is_on_the_page(client, auth):
    # p: 1 of 1 journeys drops out (rate 100%, Wilson low 0.2065); q: 4 of 8 (rate
    # 50%, Wilson low: centre 0.5, half 1.96 sqrt(0.25/8 + 1.96^2/256) / 1.4802 =
    # 0.2848, low 0.2152). q ranks first though its rate is lower: the page shows the
    # column it is ranked by.
    records = [record("p1", [("awareness", "p")], False)]
    records += [record(f"q{i}", [("awareness", "q")], i % 2 == 0) for i in range(8)]
    ingest(client, auth, records)
    html = report(client, auth, models="linear")
    page = parse(html)
    assert metric(page, "dropoff.rate", "rank") == pytest.approx({"1": 0.5, "2": 1.0})
    lows = metric(page, "dropoff.ci_low", "rank")
    assert lows == pytest.approx({"1": 0.2152, "2": 0.2065}, abs=1e-4)
    svg = chart(html, "dropoff")
    assert "ranked by: at least" in svg
    assert re.findall(r'data-metric="dropoff.ci_low"[^>]*>([^<]*)<', svg) == ["21.5%", "20.7%"]
    assert "ranked by the interval's lower end" in html


# ---------------------------------------------------------------------- flow
def test_flow_counts_stays_and_moves_back_instead_of_drawing_them(client, auth, journeys):
    """The ten journeys of tests/http/test_reports.py: j5 touches consideration twice in
    a row (one stay); j4 and j9 go from consideration back to awareness (two moves
    back); nothing else repeats or goes back."""
    html = report(client, auth)
    svg = chart(html, "flow")
    page = parse(svg)
    assert 'class="loop"' not in svg  # no arcs under the chart
    assert metric(page, "flow.stay", "node") == {"consideration": 1}
    assert metric(page, "flow.back", "node") == {"consideration": 2}
    # written under the stage's column, in rows headed at the left
    assert texts(svg, "label strong")[-2:] == ["↻ stay", "↩ back"]
    written = re.findall(r'<text x="([^"]+)"[^>]*data-metric="flow.(stay|back)"[^>]*>([^<]*)<', svg)
    column = re.search(r'<text x="([^"]+)"[^>]*data-node="consideration"', svg)
    assert column and written == [(column.group(1), "stay", "1"), (column.group(1), "back", "2")]
    back = metric(parse(html), "flow.back_move", "source", "target")
    assert back == {("consideration", "awareness"): 2}
    # bands: into awareness j1 j2 j3 j4 j7 j8 j9 j10, awareness -> consideration j1 j3 j4
    # j7 j8 j9; each band wide enough carries its count at its start
    links = metric(page, "flow.link", "source", "target")
    assert links[("(start)", "awareness")] == 8 and links[("awareness", "consideration")] == 6
    on_bands = re.findall(
        r'data-metric="flow.link" [^>]*data-value="([^"]+)">.*?</path>'
        r'<text [^>]*class="bandnum"[^>]*>([^<]*)</text>',
        svg,
    )
    assert len(on_bands) == len(links)  # ten journeys: every band is wide enough
    assert all(float(value) == float(text) for value, text in on_bands)


@pytest.mark.parametrize("n_stages", [5, 8])
def test_flow_stays_readable(client, auth, n_stages):
    """Five or eight stages, and touches without a stage (one in seven): each column's
    name fits its column (cut short, whole on hover), so neighbouring names do not run
    into each other, and no loop is drawn."""
    stages = [*STAGE_NAMES, "stage_6", "stage_7", "stage_8"][:n_stages]
    response = client.put(
        "/v1/stages", json={"stages": [{"name": s} for s in stages]}, headers=auth
    )
    assert response.status_code == 200, response.get_data(True)
    records = list(generate(400, n_stages=n_stages, seed=3).records())
    touches = [t for r in records for t in r["touchpoints"]]
    for t in touches[::7]:
        t["stage"] = None
    ingest(client, auth, records)
    svg = chart(report(client, auth, models="linear"), "flow")
    assert 'class="loop"' not in svg
    names = re.findall(
        r'<text x="([^"]+)" y="[^"]+" class="label strong" text-anchor="middle"[^>]*>'
        r"(?:<title>([^<]*)</title>)?([^<]*)</text>",
        svg,
    )
    assert [whole or shown for _, whole, shown in names] == ["no stage", *stages]
    for _, whole, shown in names:
        assert not whole or (shown.endswith("…") and whole.startswith(shown[:-1]))
    for (x0, _, a), (x1, _, b) in itertools.pairwise(names):
        # 13 px bold text is at most 7.5 px a character
        assert float(x1) - float(x0) >= 7.5 * (len(a) + len(b)) / 2


# ---------------------------------------------------------------------- no stage
def test_touches_without_a_stage_stand_apart(client, auth):
    # n1: x@awareness, z without a stage, y@decision, converts; n2: z alone, drops out;
    # n3: x@awareness, y@decision, z without a stage, converts. Moves into "no stage":
    # awareness (n1) and decision (n3), one each; none is drawn as a band.
    ingest(
        client,
        auth,
        [
            record("n1", [("awareness", "x"), (None, "z"), ("decision", "y")], True),
            record("n2", [(None, "z")], False),
            record("n3", [("awareness", "x"), ("decision", "y"), (None, "z")], True),
        ],
    )
    html = report(client, auth, models="linear")
    svg = chart(html, "flow")
    page = parse(svg)
    at = {
        d["node"]: float(x)
        for x, d in zip(re.findall(r'<text x="([^"]+)"[^>]*data-metric="flow.node"', svg),
                        (d for d in page.items if d.get("metric") == "flow.node"), strict=True)
    }  # fmt: skip
    # "no stage" comes right after all journeys, before every stage and the outcomes
    assert at["All journeys"] < at["no stage"] < at["awareness"] < at["decision"]
    assert at["decision"] < at["Converted"] and at["decision"] < at["Dropped out"]
    assert metric(page, "flow.to_no_stage", "node") == {"awareness": 1, "decision": 1}
    links = metric(page, "flow.link", "source", "target")
    assert ("awareness", "(none)") not in links and ("decision", "(none)") not in links
    assert links[("(none)", "decision")] == 1 and links[("(none)", "(null)")] == 1
    assert "(none)" not in entities.unescape(re.sub(r"data-[a-z]+=\"[^\"]*\"", "", svg))
    # the funnel (every workspace stage) and the removal effects (the stages touched)
    # list it last, under a rule, as "no stage"
    for name, stages in (("funnel", STAGE_NAMES), ("effects", ("awareness", "decision"))):
        rows = re.findall(r'<text [^>]*data-row="([^"]+)"[^>]*>([^<]*)<', chart(html, name))
        assert rows == [*((s, s) for s in stages), ("(none)", "no stage")]
        rule = chart(html, name).index("outside the stage order")
        assert chart(html, name).index('data-row="(none)"') > rule


# ---------------------------------------------------------------------- warnings
def test_sampled_shapley_shows_its_error(client, auth):
    """17 channels in one stage are more players than Shapley computes exactly (16):
    the page says the credit is sampled, and gives each channel's standard error as
    the engine computes it on the same journeys (summed over the channel's stages)."""
    channels = [f"c{k:02d}" for k in range(17)]
    lists = [[channels[k], channels[(k + 1) % 17]] for k in range(17)]
    converted = [k % 3 != 0 for k in range(17)]
    ingest(
        client,
        auth,
        [
            record(f"s{k}", [("awareness", c) for c in path], conv)
            for k, (path, conv) in enumerate(zip(lists, converted, strict=True))
        ],
    )
    html = report(client, auth, models=["linear", "shapley"])
    notices = notices_of(html)
    assert any(n.startswith("shapley: The data has 17") for n in notices)
    sampled = [n for n in notices if "standard error" in n]
    assert len(sampled) == 1 and sampled[0].startswith("shapley: its credit is sampled")
    paths = PathSet.from_lists(
        lists,
        [1.0 if c else 0.0 for c in converted],
        [0.0 if c else 1.0 for c in converted],
        [10.0 if c else 0.0 for c in converted],
        stages=[["awareness"] * 2] * 17,
    )
    credit = attribute(paths, "shapley")
    errors = credit.details["standard_error"].sum(axis=1)
    se = dict(zip(credit.channel_names, errors, strict=True))
    shown = {
        d["channel"]: float(d["error"])
        for d in parse(html).items
        if d.get("metric") == "credit.table" and "error" in d
    }
    assert shown == pytest.approx({c: float(v) for c, v in se.items()})
    assert max(shown.values()) > 0
    worst = max(shown, key=lambda c: (shown[c], c))
    assert f"\u00b1{shown[worst]:,.2f} ({worst})" in sampled[0]
    exact = [d for d in parse(html).items if d.get("metric") == "credit.table"]
    assert all("error" not in d for d in exact if d["model"] == "linear")


def test_lookback_trimming_is_noted_on_the_page(client, auth):
    # t1: touches on 2025-02-01 and 2025-02-10, converting at 2025-02-10T02:00; with a
    # 3-day lookback its first touch is left out: 1 of the 4 touches. t2's two touches
    # are an hour apart and stay.
    t1 = record("t1", [("awareness", "x")], True)
    t1["touchpoints"].append(
        {"channel": "y", "stage": "decision", "timestamp": "2025-02-10T01:00:00Z"}
    )
    t1["converted_at"] = "2025-02-10T02:00:00Z"
    t2 = record("t2", [("awareness", "x"), ("decision", "y")], False)
    ingest(client, auth, [t1, t2])
    query = {"lookback_days": 3, "models": "linear"}
    assert notices_of(report(client, auth, **query)) == [
        "lookback_days=3 left out 1 of 4 touches, those over 3 days before their "
        "journey's conversion (or last touch)."
    ]


def test_removal_effects_are_said_not_to_add_up(client, auth, journeys):
    html = report(client, auth)
    section = re.search(r'<section class="card" id="effects">.*?</section>', html, re.S)
    assert section and "Effects are not additive" in section.group(0)
    shown = metric(parse(html), "stage.removal_effect", "stage")
    assert sum(shown.values()) > 1  # as the note warns, they sum past 100% here
