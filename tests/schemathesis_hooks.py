"""Rules of the API that OpenAPI 3.0 cannot state, applied to Schemathesis' generated
requests just before they are sent, so that a request valid by the spec is valid by
these rules too. Each rule is also written in the operation's description. Loaded by
``schemathesis.toml`` (the CLI) and by ``tests/http/test_schemathesis.py``.

- A date range runs forward: ``date_to`` is not before ``date_from`` (swapped here).
- A cursor is one the service gave out: a made-up ``cursor`` is dropped (the stateful
  phase still pages with real ones from responses).
- ``model`` of a run's journey export is one of that run's models: dropped here.
- A signed report link carries its own selection: other parameters beside ``token``
  are dropped. A table link's token is not sent with an API key (the run sends a key).
- A daily series covers at most 1,096 days (``date_to`` is brought closer here).
- A synchronous run's work (models x paths x players x bootstrap replicates) is
  bounded by a budget that depends on the data: replicates are kept to 20.
- position_based's first and last shares add up to at most 1 (scaled down here).
- shapley_rate refuses data with more players than its ``max_players``, a count of the
  workspace's channels (or channel-stage pairs): the option is left to its default.
- Text cannot hold a NUL character (PostgreSQL stores none). Body strings say so with a
  pattern; keys and values inside JSON-encoded query parameters and inside the
  free-form `filters` and `channel_groups` objects cannot, so NULs are removed from them
  here.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import schemathesis

NUL = "\x00"
MAX_REPLICATES = 20
SERIES_DAYS = 1096

# NDJSON and CSV bodies are text: send the generated strings as they are.
schemathesis.serializer.alias(["application/x-ndjson", "text/csv"], "text/plain")


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    if isinstance(case.query, dict):
        case.query = _query(case.operation.path, case.query)
    if isinstance(case.body, dict):
        _forward(case.body)
        confidence = case.body.get("confidence")
        if isinstance(confidence, dict) and isinstance(confidence.get("replicates"), int):
            confidence["replicates"] = min(confidence["replicates"], MAX_REPLICATES)
        for key in ("filters", "channel_groups"):
            if key in case.body:
                case.body[key] = _without_nul(case.body[key])
        for options in (case.body, case.body.get("options")):
            if isinstance(options, dict):
                _shares_within_one(options.get("position_based"))
                if isinstance(options.get("shapley_rate"), dict):
                    options["shapley_rate"].pop("max_players", None)


def _query(path: str, query: dict[str, Any]) -> dict[str, Any]:
    if path == "/report" and "token" in query:
        return {"token": query["token"]}
    if path.startswith("/v1/saved-reports/"):
        query.pop("token", None)  # the run sends an API key, and a link's token comes alone
    query = {k: _without_nul(v) for k, v in query.items() if k != "cursor"}
    if path.endswith("/journeys") and path.startswith("/v1/attribution/runs/"):
        query.pop("model", None)
    _forward(query)
    if path.removesuffix(".csv") == "/v1/attribution/series":
        _series_span(query)
    return query


def _forward(fields: dict[str, Any]) -> None:
    start, end = fields.get("date_from"), fields.get("date_to")
    if isinstance(start, str) and isinstance(end, str) and end < start:
        fields["date_from"], fields["date_to"] = end, start


def _series_span(query: dict[str, Any]) -> None:
    try:
        start = date.fromisoformat(query["date_from"])
        end = date.fromisoformat(query["date_to"])
    except (KeyError, TypeError, ValueError):
        return
    if (end - start).days >= SERIES_DAYS:
        query["date_to"] = (start + timedelta(days=SERIES_DAYS - 1)).isoformat()


def _shares_within_one(options: Any) -> None:
    if not isinstance(options, dict):
        return
    first, last = options.get("first_share"), options.get("last_share")
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (first, last))
    if numbers and first + last > 1:
        options["first_share"], options["last_share"] = first / 2, last / 2


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(NUL, "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value
