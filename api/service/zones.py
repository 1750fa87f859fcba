"""The workspace time zone: every day (conversion dates, rollup days, date ranges,
series) is a day in it. Changing it re-buckets the stored journeys.

A change takes the workspace's write lock, sets the zone, moves each journey's day
and rebuilds the per-day rollups, all in one transaction: writes of the workspace wait
for it (and then count their days in the new zone), and runs read either the old days
or the new, never a mix. A workspace of up to ``rebucket_inline_journeys`` journeys
changes within the settings request; a larger one's change is a job of the queue
(:mod:`.jobs`) whose progress is a resource clients poll, while the zone in effect
stays the old one until the job commits.
"""

from __future__ import annotations

import logging
import zoneinfo
from functools import cache
from typing import Any
from uuid import UUID

from .. import store
from ..store import zones
from ..store.dictionaries import lock_workspace
from . import jobs
from .errors import FieldError, InvalidInput, NotFound

log = logging.getLogger(__name__)

DEFAULT_ZONE = "UTC"


@cache
def _names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_zone(conn: Any, name: str, pointer: str = "/time_zone") -> None:
    """Raise InvalidInput unless ``name`` is an IANA zone that Python and the database
    both know."""
    if name not in _names() or not zones.zone_known(conn, name):
        raise InvalidInput(
            f"{name!r} is not a time zone of the IANA database.",
            [FieldError(pointer, "Not an IANA time zone name, such as Europe/Paris or UTC.")],
        )


def change_zone(
    conn: Any, workspace_id: int, name: str, inline_limit: int
) -> zones.ZoneChange | None:
    """Make ``name`` the workspace's zone, in the caller's transaction: at once when the
    workspace holds at most ``inline_limit`` journeys, else as a queued job (returned).
    While a change waits or runs, asking for its zone again is that change; asking
    for another is refused until it ends. The open change is looked at before the
    write lock is taken, which a running change holds: a request neither waits for it
    nor misses it."""
    pending = _pending(conn, workspace_id, name)
    if pending is not None:
        return pending
    current = lock_workspace(conn, workspace_id)
    pending = _pending(conn, workspace_id, name)  # queued while this request waited
    if pending is not None:
        return pending
    if name == current:
        return None
    check_zone(conn, name)
    total = zones.count_journeys(conn, workspace_id)
    if total <= inline_limit:
        zones.set_time_zone(conn, workspace_id, name)
        zones.rebucket(conn, workspace_id, name)
        return None
    change_id = zones.insert_change(conn, workspace_id, name, total)
    job_id = jobs.defer_zone_change(conn, workspace_id, str(change_id))
    zones.link_change(conn, workspace_id, change_id, job_id)
    return zones.get_change(conn, workspace_id, change_id)


def _pending(conn: Any, workspace_id: int, name: str) -> zones.ZoneChange | None:
    """The open change when it is to ``name``; InvalidInput when it is to another."""
    pending = zones.open_change(conn, workspace_id)
    if pending is not None and pending.time_zone != name:
        raise InvalidInput(
            f"The time zone is being changed to {pending.time_zone}; wait for that change to end.",
            [FieldError("/time_zone", f"A change to {pending.time_zone} is under way.")],
        )
    return pending


def execute_change(db: store.Database, workspace_id: int, change_id: UUID) -> None:
    """Run a queued change: one transaction holds the write lock, sets the zone,
    re-buckets and marks the change succeeded; progress goes out on other connections
    as batches finish. A failure marks the change failed and leaves the zone as it was."""
    with db.transaction() as conn:
        change = zones.get_change(conn, workspace_id, change_id)
    if change.status not in ("queued", "running"):
        return  # done by an earlier try
    name = change.time_zone

    def report(done: int) -> None:
        with db.transaction() as side:
            zones.set_change(side, workspace_id, change_id, "running", done)

    try:
        report(0)
        with db.transaction() as conn:
            lock_workspace(conn, workspace_id)
            zones.set_time_zone(conn, workspace_id, name)
            zones.rebucket(conn, workspace_id, name, report)
            total = zones.count_journeys(conn, workspace_id)
            zones.set_change(conn, workspace_id, change_id, "succeeded", total)
    except store.UnavailableError:
        raise  # the queue tries again
    except Exception as e:
        log.exception("time zone change %s failed", change_id)
        give_up(db, workspace_id, change_id, str(e) or type(e).__name__)


def give_up(db: store.Database, workspace_id: int, change_id: UUID, reason: str) -> None:
    """Mark a change failed (the zone stays as it was), if the database answers."""
    try:
        with db.transaction() as conn:
            zones.set_change(conn, workspace_id, change_id, "failed", 0, reason)
    except store.UnavailableError:
        log.exception("could not record the failure of time zone change %s", change_id)


def get_change(db: store.Database, workspace_id: int, change_id: UUID) -> zones.ZoneChange:
    with db.transaction() as conn:
        try:
            return zones.get_change(conn, workspace_id, change_id)
        except store.NotFoundError:
            raise NotFound(f"No time zone change {change_id} in this workspace.") from None


def zone_of(conn: Any, workspace_id: int) -> str:
    return zones.get_time_zone(conn, workspace_id)


def open_change(conn: Any, workspace_id: int) -> zones.ZoneChange | None:
    return zones.open_change(conn, workspace_id)
