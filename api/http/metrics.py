"""Prometheus metrics: what the service counts, and ``GET /metrics``.

Counters and histograms live in this process; under ``pathcredit serve`` every gunicorn
worker writes them to files in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape, answered by any
one worker, sums them all (prometheus-client's multiprocess mode). Gauges of the
connection pools are summed over the workers alive. What the database knows (unfinished
runs, jobs of the queue) is read when scraped, on the short-timeout readiness
connection.

Other modules count with the functions here (:func:`rate_limited`);
requests and the rows of ingestion are counted by :mod:`api.http.logs` and the
application's hooks.
"""

from __future__ import annotations

import hmac
import os
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from flask import Flask, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from .. import store
from ..problems import NotFound, Unauthorized
from ..store import probes
from . import openapi
from .context import database, settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"
"""The route of a request no URL rule matched (404, 405)."""
REJECTED = "<rejected>"
"""The route of a request the HTTP server refused before the application saw it."""

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

REQUESTS = Counter(
    "pathcredit_http_requests",
    "HTTP requests answered, by route (URL rule), method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "pathcredit_http_request_duration_seconds",
    "Time from a request's arrival to the last byte of its answer.",
    ["route", "method", "status"],
    buckets=SECONDS,
)
ROWS = Counter(
    "pathcredit_ingested_rows",
    "Journeys and paths received by writes that succeeded, by kind and outcome "
    "(created, replaced, unchanged); its rate is rows per second.",
    ["kind", "outcome"],
)
RATE_LIMITED = Counter(
    "pathcredit_rate_limited_requests",
    "Requests refused with 429 by a rate or concurrency limit, by route.",
    ["route"],
)

# Pool measures (psycopg_pool's names) -> gauges summed over the live workers.
POOL_GAUGES = {
    "pool_max": Gauge(
        "pathcredit_db_pool_max_connections",
        "Connections the pools may open.",
        multiprocess_mode="livesum",
    ),
    "pool_size": Gauge(
        "pathcredit_db_pool_connections",
        "Connections the pools hold, in use or idle.",
        multiprocess_mode="livesum",
    ),
    "pool_available": Gauge(
        "pathcredit_db_pool_idle_connections",
        "Connections idle in the pools.",
        multiprocess_mode="livesum",
    ),
    "requests_waiting": Gauge(
        "pathcredit_db_pool_waiting_requests",
        "Requests waiting for a connection.",
        multiprocess_mode="livesum",
    ),
}
# Pool counters (cumulative per pool) -> counters, moved by what changed since the
# last look; the scale turns milliseconds into seconds.
POOL_COUNTERS: dict[str, tuple[Counter, float]] = {
    "requests_num": (
        Counter("pathcredit_db_pool_checkouts", "Connections handed out by the pools."),
        1.0,
    ),
    "requests_wait_ms": (
        Counter(
            "pathcredit_db_pool_wait_seconds",
            "Time spent waiting for a connection from the pools.",
        ),
        0.001,
    ),
    "requests_errors": (
        Counter(
            "pathcredit_db_pool_timeouts",
            "Requests for a connection that failed (timed out, pool closed).",
        ),
        1.0,
    ),
    "connections_lost": (
        Counter("pathcredit_db_pool_lost_connections", "Connections found broken."),
        1.0,
    ),
}
_seen: weakref.WeakKeyDictionary[store.Database, dict[str, int]] = weakref.WeakKeyDictionary()
_seen_lock = threading.Lock()

WRITE_ENDPOINTS = {
    "journeys.Journeys": "journeys",
    "journeys.Bulk": "journeys",
    "paths.Paths": "paths",
}
"""Endpoints whose 200 answer is a write's counts (received, created, ...)."""
OUTCOMES = ("created", "replaced", "unchanged")

bp = openapi.Blueprint("metrics", __name__, description="Operations (no API key)")


def rate_limited(route: str) -> None:
    """Count a request refused by a rate or concurrency limit (``route``: its URL rule)."""
    RATE_LIMITED.labels(route=route).inc()


def request_done(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request."""
    labels = {"route": route, "method": method, "status": str(status)}
    REQUESTS.labels(**labels).inc()
    LATENCY.labels(**labels).observe(seconds)


def rows_written(kind: str, counts: Mapping[str, Any]) -> None:
    """Count the rows of a successful write from the counts it answered with."""
    for outcome in OUTCOMES:
        value = counts.get(outcome)
        if isinstance(value, int) and value > 0:
            ROWS.labels(kind=kind, outcome=outcome).inc(value)


def sample_pool(db: store.Database) -> None:
    """Copy the pool's current measures into the gauges and counters."""
    stats = probes.pool_stats(db)
    if not stats:
        return
    for name, gauge in POOL_GAUGES.items():
        gauge.set(stats.get(name, 0))
    with _seen_lock:
        last = _seen.setdefault(db, {})
        for name, (counter, scale) in POOL_COUNTERS.items():
            value = stats.get(name, 0)
            if value > last.get(name, 0):
                counter.inc((value - last.get(name, 0)) * scale)
            last[name] = value


def count_writes(response: Response) -> Response:
    """After a request: the rows a write endpoint took, from the counts it answered."""
    kind = WRITE_ENDPOINTS.get(request.endpoint or "")
    if kind and response.status_code == 200 and response.is_json:
        body = response.get_json(silent=True)
        if isinstance(body, Mapping):
            rows_written(kind, body)
    return response


class DatabaseCollector(Collector):
    """Unfinished runs and the queue's jobs, read when scraped.

    A database that does not answer within the readiness check's timeouts makes
    ``pathcredit_database_up`` 0 and leaves the other families out.
    """

    def __init__(self, db: store.Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "pathcredit_database_up", "1 when the scrape could read the database."
        )
        try:
            with self.db.transaction() as conn:
                runs = probes.unfinished_runs(conn)
                states = probes.runs_by_state(conn)
                jobs = probes.jobs_by_status(conn)
        except store.StoreError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        family = GaugeMetricFamily(
            "pathcredit_runs_unfinished",
            "Attribution runs of every workspace not yet finished, by state.",
            labels=["state"],
        )
        for state, count in runs.items():
            family.add_metric([state], count)
        yield family
        finished = CounterMetricFamily(
            "pathcredit_runs_finished",
            "Attribution runs of every workspace finished, by final state (the web "
            "processes' and every job worker's).",
            labels=["state"],
        )
        took = SummaryMetricFamily(
            "pathcredit_run_duration_seconds",
            "Time finished attribution runs took from start to finish, by final state.",
            labels=["state"],
        )
        for state in ("succeeded", "failed"):
            n, timed, seconds = states.get(state, (0, 0, 0.0))
            finished.add_metric([state], n)
            took.add_metric([state], count_value=timed, sum_value=seconds)
        yield finished
        yield took
        if jobs is not None:
            family = GaugeMetricFamily(
                "pathcredit_jobs", "Jobs in the queue's table, by status.", labels=["status"]
            )
            for status, count in sorted(jobs.items()):
                family.add_metric([status], count)
            yield family


def exposition(collectors: Iterable[Collector]) -> bytes:
    """The text format of every metric: all workers' files in multiprocess mode, this
    process's registry otherwise, then what ``collectors`` read now."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    now = CollectorRegistry()
    for collector in collectors:
        now.register(collector)
    return generate_latest(registry) + generate_latest(now)


def _check_token() -> None:
    token = settings().metrics_token
    if "Authorization" not in request.headers:  # no credentials: 401, on or off
        off = "" if token else " (metrics are off here: set PATHCREDIT_METRICS_TOKEN)"
        raise Unauthorized(f"Send the metrics token as `Authorization: Bearer <token>`{off}.")
    if not token:
        raise NotFound("Metrics are turned off: set PATHCREDIT_METRICS_TOKEN.")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        raise Unauthorized("Send the metrics token as `Authorization: Bearer <token>`.")


@bp.route("/metrics")
@bp.response(
    200,
    {"type": "string"},
    content_type="text/plain",
    description="Prometheus text exposition format 0.0.4.",
)
@bp.problems(401, 404)
@bp.doc(security=[{"metricsToken": []}])
def metrics() -> Response:
    """Prometheus metrics of the whole server.

    Requests by route, method and status with latency histograms, rows ingested,
    attribution runs by state and duration, connection pool use, rate-limit refusals,
    unfinished runs and the queue's jobs by status. Summed over every worker process.
    Needs the token set in `PATHCREDIT_METRICS_TOKEN` (the API key does not open it);
    without that setting the route answers 404.
    """
    _check_token()
    sample_pool(database())
    health = current_app.extensions["pathcredit.probe_db"]
    body = exposition([DatabaseCollector(health)])
    return Response(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)


def register(app: Flask, api: openapi.Api) -> None:
    api.spec.components.security_scheme(
        "metricsToken",
        {"type": "http", "scheme": "bearer", "description": "PATHCREDIT_METRICS_TOKEN"},
    )
    api.register_blueprint(bp)
    app.after_request(count_writes)
