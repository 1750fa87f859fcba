"""Journey reports over HTTP, on small journey sets worked out by hand.

The main set has ten journeys over the default funnel (A awareness, C consideration,
D decision, R retention, V advocacy); touch k of journey i is at 2025-01-0i + k hours
(journey 10 on 2025-01-10), and a converting journey converts one hour after its
last touch::

    j1  A search, C email, D search                      converts, 100
    j2  A social                                         no
    j3  A social, C email                                no
    j4  A search, C email, A social, D search            converts, 50   (loops C->A)
    j5  C email, C email, D direct                       no
    j6  D direct                                         converts, 30
    j7  A search, C search, D email, R email             no
    j8  A social, C email, D email, R direct, V social   converts, 20
    j9  A social, C search, A email                      no             (loops C->A)
    j10 A social                                         no

j1 and j4 carry the attribute plan=pro. The counts asserted below are worked out from
this table in the comments beside them.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.helpers import assert_problem

STAGE = {"A": "awareness", "C": "consideration", "D": "decision", "R": "retention", "V": "advocacy"}
HOUR = 3600.0
JOURNEYS: list[tuple[str, list[tuple[str, str]], float | None]] = [
    ("j1", [("A", "search"), ("C", "email"), ("D", "search")], 100.0),
    ("j2", [("A", "social")], None),
    ("j3", [("A", "social"), ("C", "email")], None),
    ("j4", [("A", "search"), ("C", "email"), ("A", "social"), ("D", "search")], 50.0),
    ("j5", [("C", "email"), ("C", "email"), ("D", "direct")], None),
    ("j6", [("D", "direct")], 30.0),
    ("j7", [("A", "search"), ("C", "search"), ("D", "email"), ("R", "email")], None),
    (
        "j8",
        [("A", "social"), ("C", "email"), ("D", "email"), ("R", "direct"), ("V", "social")],
        20.0,
    ),
    ("j9", [("A", "social"), ("C", "search"), ("A", "email")], None),
    ("j10", [("A", "social")], None),
]


def journey_record(i: int, jid: str, touches: list[tuple[str, str]], value: float | None) -> dict:
    day = f"2025-01-{i:02d}"
    record: dict[str, Any] = {
        "journey_id": jid,
        "customer_id": f"c{i}",
        "touchpoints": [
            {
                "channel": ch,
                "stage": STAGE[st],
                "timestamp": f"{day}T{k:02d}:00:00Z",
                "device": "mobile" if i % 2 else "desktop",
            }
            for k, (st, ch) in enumerate(touches)
        ],
        "converted": value is not None,
        "value": value or 0.0,
        "attributes": {"plan": "pro" if jid in ("j1", "j4") else "free"},
    }
    if value is not None:
        record["converted_at"] = f"{day}T{len(touches):02d}:00:00Z"
    return record


def ingest(client: FlaskClient, auth: dict[str, str], records: list[dict]) -> None:
    response = client.post("/v1/journeys", json={"journeys": records}, headers=auth)
    assert response.status_code == 200, response.get_data(True)


@pytest.fixture
def journeys(client: FlaskClient, auth: dict[str, str]) -> None:
    ingest(client, auth, [journey_record(i + 1, *j) for i, j in enumerate(JOURNEYS)])


def get_rows(client: FlaskClient, auth: dict[str, str], report: str, **params: Any) -> list:
    response = client.get(f"/v1/reports/{report}", query_string=params, headers=auth)
    assert response.status_code == 200, response.get_data(True)
    return response.get_json()  # type: ignore[no-any-return]


def pick(rows: list[dict], *columns: str) -> list[tuple]:
    return [tuple(r[c] for c in columns) for r in rows]


# ---------------------------------------------------------------------- funnel
def test_funnel_counts_every_outcome_per_stage(client, auth, journeys):
    rows = get_rows(client, auth, "funnel")
    # reached, moved_on, converted, dropped_out, looped_back, converting
    assert pick(
        rows,
        "stage",
        "step",
        "reached",
        "moved_on",
        "converted",
        "dropped_out",
        "looped_back",
        "converting",
    ) == [
        # A: j1 j2 j3 j4 j7 j8 j9 j10; j2 j9 j10 end there unconverted
        ("awareness", 1, 8, 5, 0, 3, 0, 3),
        # C: j1 j3 j4 j5 j7 j8 j9; j3 ends there; j9 goes back to A and ends there
        ("consideration", 2, 7, 5, 0, 1, 1, 3),
        # D: j1 j4 j5 j6 j7 j8; j1 j4 j6 convert there, j5 drops out
        ("decision", 3, 6, 2, 3, 1, 0, 4),
        ("retention", 4, 2, 1, 0, 1, 0, 1),
        ("advocacy", 5, 1, 0, 1, 0, 0, 1),
    ]
    for row in rows:
        parts = row["moved_on"] + row["converted"] + row["dropped_out"] + row["looped_back"]
        assert parts == row["reached"]
    # step: reached the previous stage too (A: of all 10; C: j1 j3 j4 j7 j8 j9 of A's 8)
    assert [r["step_rate"] for r in rows] == pytest.approx([8 / 10, 6 / 8, 5 / 7, 2 / 6, 1 / 2])
    assert [r["cumulative_rate"] for r in rows] == pytest.approx([0.8, 0.7, 0.6, 0.2, 0.1])
    assert [r["conversion_rate"] for r in rows] == pytest.approx([3 / 8, 3 / 7, 4 / 6, 1 / 2, 1])


def test_funnel_of_an_empty_selection_lists_the_stages_with_zeros(client, auth):
    rows = get_rows(client, auth, "funnel")
    assert [r["stage"] for r in rows] == list(STAGE.values())
    assert all(r["reached"] == 0 and r["step_rate"] is None for r in rows)


def test_funnel_follows_the_workspace_stage_order(client, auth, journeys):
    order = ["consideration", "awareness", "decision", "retention", "advocacy"]
    response = client.put("/v1/stages", json={"stages": [{"name": s} for s in order]}, headers=auth)
    assert response.status_code == 200, response.get_data(True)
    rows = get_rows(client, auth, "funnel")
    assert [r["stage"] for r in rows] == order
    # with C before A, j4 (A C A D) and j9 (A C A) no longer loop; j1 (A C D) does
    assert get_rows(client, auth, "loops")[0]["from_stage"] == "awareness"


# ---------------------------------------------------------------------- drop-off
def test_dropoff_by_stage_and_channel_ranked_by_interval(client, auth, journeys):
    rows = get_rows(client, auth, "dropoff")
    by_pair = {(r["stage"], r["channel"]): r for r in rows}
    # passing: journeys with a touch there; dropped: unconverted journeys ending there
    assert {k: (r["passing"], r["dropped_out"]) for k, r in by_pair.items()} == {
        ("awareness", "search"): (3, 0),  # j1 j4 j7
        ("awareness", "social"): (6, 2),  # j2 j3 j4 j8 j9 j10; j2 j10 end there
        ("awareness", "email"): (1, 1),  # j9
        ("consideration", "email"): (5, 1),  # j1 j3 j4 j5 j8; j3
        ("consideration", "search"): (2, 0),  # j7 j9
        ("decision", "search"): (2, 0),
        ("decision", "direct"): (2, 1),  # j5 j6; j5
        ("decision", "email"): (2, 0),
        ("retention", "email"): (1, 1),  # j7
        ("retention", "direct"): (1, 0),
        ("advocacy", "social"): (1, 0),
    }
    assert [r["rank"] for r in rows] == list(range(1, 12))
    lows = [r["ci_low"] for r in rows]
    assert lows == sorted(lows, reverse=True)
    # 1 of 1: Wilson 95% interval [z^2/(n+z^2), 1] with n = 1
    z2 = 1.959963984540054**2
    assert {pick(rows[:2], "stage", "channel")[i] for i in range(2)} == {
        ("awareness", "email"),
        ("retention", "email"),
    }
    assert rows[0]["ci_low"] == pytest.approx(1 / (1 + z2)) and rows[0]["ci_high"] == 1
    # 2 of 6 (Wilson low 0.097) edges out 1 of 2 (0.095)
    assert pick(rows[2:4], "stage", "channel", "dropped_out", "passing") == [
        ("awareness", "social", 2, 6),
        ("decision", "direct", 1, 2),
    ]
    assert get_rows(client, auth, "dropoff", limit=3) == rows[:3]


def test_dropoff_interval_level(client, auth, journeys):
    wide = {(r["stage"], r["channel"]): r for r in get_rows(client, auth, "dropoff", level=0.99)}
    narrow = {(r["stage"], r["channel"]): r for r in get_rows(client, auth, "dropoff")}
    assert wide[("decision", "direct")]["ci_low"] < narrow[("decision", "direct")]["ci_low"]


# ---------------------------------------------------------------------- loops
def test_loops_from_stage_to_stage_and_by_channel(client, auth, journeys):
    rows = get_rows(client, auth, "loops")
    # j4 steps C->A through social (converts), j9 through email (does not)
    assert sorted(
        pick(rows, "from_stage", "to_stage", "channel", "journeys", "steps", "conversions"), key=str
    ) == sorted(
        [
            ("consideration", "awareness", None, 2, 2, 1),
            ("consideration", "awareness", "email", 1, 1, 0),
            ("consideration", "awareness", "social", 1, 1, 1),
        ],
        key=str,
    )


def test_loop_summary_compares_looping_and_straight_journeys(client, auth, journeys):
    rows = get_rows(client, auth, "loops/summary")
    assert pick(rows, "kind", "journeys", "conversions") == [
        ("looping", 2, 1),  # j4 j9
        ("straight", 8, 3),  # j1 j6 j8 convert
    ]
    assert [r["conversion_rate"] for r in rows] == pytest.approx([0.5, 3 / 8])


# ---------------------------------------------------------------------- channel roles
def test_channel_roles_in_converting_journeys(client, auth, journeys):
    rows = {r["channel"]: r for r in get_rows(client, auth, "channel-roles")}
    # converting: j1 search>email>search, j4 search>email>social>search, j6 direct,
    # j8 social>email>email>direct>social (a single touch opens and closes)
    assert {c: (r["opens"], r["assists"], r["closes"], r["touched"]) for c, r in rows.items()} == {
        "search": (2, 0, 2, 2),
        "email": (0, 3, 0, 3),
        "social": (1, 1, 1, 2),
        "direct": (1, 1, 1, 2),
    }
    assert rows["email"]["assist_ratio"] is None
    assert rows["social"]["assist_ratio"] == 1


def test_segment_filter_reads_only_matching_journeys(client, auth, journeys):
    rows = get_rows(client, auth, "channel-roles", attributes='{"plan": "pro"}')
    # j1 and j4 only
    assert {r["channel"]: (r["opens"], r["assists"], r["closes"]) for r in rows} == {
        "search": (2, 0, 2),
        "email": (0, 2, 0),
        "social": (0, 1, 0),
    }
    mobile = get_rows(client, auth, "loops/summary", device="mobile")  # odd journeys
    assert pick(mobile, "kind", "journeys") == [("looping", 1), ("straight", 4)]


# ---------------------------------------------------------------------- transitions
def test_transitions_by_channel(client, auth, journeys):
    rows = get_rows(client, auth, "transitions")
    counts = {(r["source"], r["target"]): r["count"] for r in rows}
    assert counts == {
        ("(start)", "search"): 3,
        ("(start)", "social"): 5,
        ("(start)", "email"): 1,
        ("(start)", "direct"): 1,
        ("search", "email"): 4,
        ("search", "search"): 1,
        ("search", "(conversion)"): 2,
        ("email", "search"): 1,
        ("email", "social"): 1,
        ("email", "email"): 3,
        ("email", "direct"): 2,
        ("email", "(null)"): 3,
        ("social", "email"): 2,
        ("social", "search"): 2,
        ("social", "(null)"): 2,
        ("social", "(conversion)"): 1,
        ("direct", "(null)"): 1,
        ("direct", "(conversion)"): 1,
        ("direct", "social"): 1,
    }
    probability = {(r["source"], r["target"]): r["probability"] for r in rows}
    assert probability[("email", "(null)")] == pytest.approx(3 / 10)
    assert probability[("(start)", "social")] == pytest.approx(5 / 10)


def test_workspace_defaults_apply_unless_the_request_overrides_them(client, auth, journeys):
    response = client.put("/v1/settings", json={"collapse_repeats": True}, headers=auth)
    assert response.status_code == 200, response.get_data(True)
    pairs = {(r["source"], r["target"]) for r in get_rows(client, auth, "transitions", by="stage")}
    assert ("consideration", "consideration") not in pairs
    rows = get_rows(client, auth, "transitions", by="stage", collapse_repeats="false")
    assert ("consideration", "consideration") in {(r["source"], r["target"]) for r in rows}


def test_transitions_by_stage_and_collapsed(client, auth, journeys):
    rows = get_rows(client, auth, "transitions", by="stage")
    counts = {(r["source"], r["target"]): r["count"] for r in rows}
    assert counts == {
        ("(start)", "awareness"): 8,
        ("(start)", "consideration"): 1,
        ("(start)", "decision"): 1,
        ("awareness", "consideration"): 6,
        ("awareness", "decision"): 1,
        ("awareness", "(null)"): 3,
        ("consideration", "decision"): 4,
        ("consideration", "awareness"): 2,
        ("consideration", "consideration"): 1,
        ("consideration", "(null)"): 1,
        ("decision", "(conversion)"): 3,
        ("decision", "(null)"): 1,
        ("decision", "retention"): 2,
        ("retention", "(null)"): 1,
        ("retention", "advocacy"): 1,
        ("advocacy", "(conversion)"): 1,
    }
    # collapsing repeats merges j5's two consideration/email touches
    collapsed = get_rows(client, auth, "transitions", by="stage", collapse_repeats="true")
    assert ("consideration", "consideration") not in {(r["source"], r["target"]) for r in collapsed}


# ---------------------------------------------------------------------- paths
def test_top_paths_by_journeys_and_by_value(client, auth, journeys):
    rows = get_rows(client, auth, "paths", limit=3)
    assert pick(rows, "rank", "path", "length", "journeys", "conversions", "nulls") == [
        (1, "social", 1, 2, 0, 2),  # j2 j10; ties below in path order
        (2, "direct", 1, 1, 1, 0),
        (3, "email > email > direct", 3, 1, 0, 1),
    ]
    by_value = get_rows(client, auth, "paths", sort="value", limit=3)
    assert pick(by_value, "path", "value", "conversion_rate") == [
        ("search > email > search", 100, 1),
        ("search > email > social > search", 50, 1),
        ("direct", 30, 1),
    ]
    stages = get_rows(client, auth, "paths", by="stage", limit=1)
    assert pick(stages, "path", "journeys") == [("awareness", 2)]


def test_channel_groups_merge_channels(client, auth, journeys):
    groups = '{"search": "paid", "social": "paid"}'
    rows = get_rows(client, auth, "paths", channel_groups=groups, limit=1)
    # j2 j10 (social) and j6 ... : "paid" alone is j2 and j10
    assert pick(rows, "path", "journeys") == [("paid", 2)]


# ---------------------------------------------------------------------- timing
def test_timing_percentiles(client, auth, journeys):
    rows = get_rows(client, auth, "timing", percentiles=[25, 50, 90])
    got = {(r["measure"], r["from_stage"], r["to_stage"], r["percentile"]): r for r in rows}
    # converting journeys take 3h (j1), 4h (j4), 1h (j6), 5h (j8)
    to_conv = [got[("time_to_conversion", None, None, q)]["seconds"] for q in (25, 50, 90)]
    assert to_conv == [1 * HOUR, 3 * HOUR, 5 * HOUR]
    assert got[("time_to_conversion", None, None, 50)]["journeys"] == 4
    # C -> D: 1h (j1 j7 j8) and 2h (j4 j5)
    c_to_d = [got[("stage_to_stage", "consideration", "decision", q)] for q in (25, 50, 90)]
    assert [r["seconds"] for r in c_to_d] == [HOUR, HOUR, 2 * HOUR]
    assert c_to_d[0]["journeys"] == 5
    assert got[("stage_to_stage", "awareness", "consideration", 50)]["journeys"] == 6
    assert got[("stage_to_stage", "retention", "advocacy", 90)]["seconds"] == HOUR


def test_date_range_selects_by_conversion_or_last_touch_date(client, auth, journeys):
    rows = get_rows(client, auth, "funnel", date_from="2025-01-06", date_to="2025-01-10")
    decision = rows[2]
    # j6..j10: D reached by j6 (converts there), j7 and j8 (move on)
    assert pick([decision], "reached", "converted", "moved_on") == [(3, 1, 2)]
    assert rows[0]["reached"] == 4  # j7 j8 j9 j10


# ---------------------------------------------------------------------- stage removal effects
def test_stage_removal_effects_by_hand(client, auth):
    # x@A -> y@D converts (10), x@A alone does not, y@D alone converts (20).
    # P(conv) = 2/3; without A only y@D's own journey converts: 1/3, effect 1/2;
    # without D nothing converts: effect 1. Credit 2 conversions in ratio 1/2 : 1.
    records = [
        {
            "journey_id": "a",
            "touchpoints": [
                {"channel": "x", "stage": "awareness", "timestamp": "2025-02-01T00:00:00Z"},
                {"channel": "y", "stage": "decision", "timestamp": "2025-02-01T01:00:00Z"},
            ],
            "converted": True,
            "value": 10,
        },
        {
            "journey_id": "b",
            "touchpoints": [
                {"channel": "x", "stage": "awareness", "timestamp": "2025-02-01T00:00:00Z"}
            ],
        },
        {
            "journey_id": "c",
            "touchpoints": [
                {"channel": "y", "stage": "decision", "timestamp": "2025-02-01T00:00:00Z"}
            ],
            "converted": True,
            "value": 20,
        },
    ]
    ingest(client, auth, records)
    rows = get_rows(client, auth, "stage-removal-effects")
    assert [r["stage"] for r in rows] == ["awareness", "decision"]
    assert [r["removal_effect"] for r in rows] == pytest.approx([0.5, 1.0])
    assert [r["value_removal_effect"] for r in rows] == pytest.approx([0.5, 1.0])
    assert [r["conversions"] for r in rows] == pytest.approx([2 / 3, 4 / 3])
    assert [r["value"] for r in rows] == pytest.approx([10, 20])
    assert [r["share"] for r in rows] == pytest.approx([1 / 3, 2 / 3])


# ---------------------------------------------------------------------- sequence effects
def _plain(jid: str, channels: list[str], value: float | None) -> dict:
    record: dict[str, Any] = {
        "journey_id": jid,
        "touchpoints": [
            {"channel": ch, "timestamp": f"2025-03-01T{k:02d}:00:00Z"}
            for k, ch in enumerate(channels)
        ],
        "converted": value is not None,
        "value": value or 0.0,
    }
    return record


def test_sequence_effects_by_hand(client, auth):
    # a > b converts (10), a > b does not, b > a does not: P(conversion) = 1/3.
    # Order 1: start -> a 2/3, -> b 1/3; a -> b 2/3, a -> null 1/3 (b > a ends in a);
    # b -> conversion, null, a 1/3 each. h_a = 2/3 h_b, h_b = 1/3 + 1/3 h_a, so
    # h_b = 3/7, h_a = 2/7. Cut a > b: h_a = 0, h_b = 1/3, P = 1/9 (effect 2/3).
    # Cut b > a: h_b = 1/3, h_a = 2/9, P = 4/27 + 3/27 = 7/27 (effect 2/9).
    # Order 2: each path is one state; cutting a > b cuts start -> (a, b), the only
    # way to convert (effect 1); cutting b > a cuts start -> (b, a), which never
    # converts (effect 0).
    records = [_plain("j1", ["a", "b"], 10.0), _plain("j2", ["a", "b"], None)]
    ingest(client, auth, [*records, _plain("j3", ["b", "a"], None)])
    one = get_rows(client, auth, "sequence-effects", order=1)
    assert pick(one, "rank", "sequence", "source", "target", "steps") == [
        (1, "a > b", "a", "b", 2.0),
        (2, "b > a", "b", "a", 1.0),
    ]
    assert [r["p_conversion"] for r in one] == pytest.approx([1 / 3, 1 / 3])
    assert [r["p_conversion_cut"] for r in one] == pytest.approx([1 / 9, 7 / 27])
    assert [r["removal_effect"] for r in one] == pytest.approx([2 / 3, 2 / 9])
    assert [r["value_removal_effect"] for r in one] == pytest.approx([2 / 3, 2 / 9])
    two = get_rows(client, auth, "sequence-effects")  # order 2 by default
    assert [r["removal_effect"] for r in two] == pytest.approx([1.0, 0.0])
    assert [r["p_conversion_cut"] for r in two] == pytest.approx([0.0, 1 / 3])
    assert pick(get_rows(client, auth, "sequence-effects", top=1), "sequence") == [("a > b",)]


@pytest.mark.parametrize("params", [{"order": 5}, {"order": 0}, {"top": 0}, {"top": 201}])
def test_sequence_effects_parameters_out_of_range(client, auth, params):
    body = assert_problem(
        client.get("/v1/reports/sequence-effects", query_string=params, headers=auth), 422
    )
    assert body["errors"]


# ---------------------------------------------------------------------- formats and errors
REPORTS = [
    "transitions",
    "paths",
    "funnel",
    "dropoff",
    "loops",
    "loops/summary",
    "channel-roles",
    "timing",
    "stage-removal-effects",
    "sequence-effects",
]


@pytest.mark.parametrize("report", REPORTS)
def test_csv_carries_the_same_rows_as_json(client, auth, journeys, report):
    rows = get_rows(client, auth, report)
    assert rows
    response = client.get(f"/v1/reports/{report}", headers={**auth, "Accept": "text/csv"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(True)
    assert text.endswith("\r\n")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == list(rows[0])
    assert parsed[1:] == [[_csv(v) for v in row.values()] for row in rows]
    again = client.get(f"/v1/reports/{report}?format=csv", headers=auth)
    assert again.get_data(True) == text


def _csv(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


@pytest.mark.parametrize("report", REPORTS)
def test_reports_need_an_api_key(client, report):
    assert_problem(client.get(f"/v1/reports/{report}"), 401)


@pytest.mark.parametrize(
    "params",
    [
        {"by": "device"},
        {"date_from": "2025-13-01"},
        {"unknown": "1"},
        {"attributes": "[1]"},
        {"date_from": "2025-02-01", "date_to": "2025-01-01"},
        {"format": "xml"},
    ],
)
def test_bad_parameters_are_invalid_input(client, auth, params):
    body = assert_problem(
        client.get("/v1/reports/transitions", query_string=params, headers=auth), 422
    )
    assert body["errors"]


def test_stage_reports_need_stages(client, auth):
    ingest(
        client,
        auth,
        [
            {
                "journey_id": "n",
                "touchpoints": [{"channel": "x", "timestamp": "2025-02-01T00:00:00Z"}],
            }
        ],
    )
    body = assert_problem(client.get("/v1/reports/funnel", headers=auth), 422)
    assert "stages" in body["detail"]
    assert get_rows(client, auth, "transitions")[0]["source"] == "(start)"
