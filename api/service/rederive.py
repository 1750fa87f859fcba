"""Deriving a workspace's journeys again after its event rules change.

A workspace of at most ``inline_events`` events (``PATHCREDIT_REDERIVE_INLINE_EVENTS``)
is derived again in the request that changes the rules, in its transaction: the answer
says what changed, and the journeys are ready when it comes. A larger one gets a
re-derivation (a row a client polls) and a job of the queue, both written in the
transaction that stores the rules; the answer comes at once.

The job goes over the workspace's ids (typed anonymousIds and userIds) in byte order,
:data:`STEP_IDS` at a time, each step in a transaction of its own under the
workspace's write lock, so event writes go on between steps instead of waiting for the
whole workspace. No write is lost or doubled: the rules are committed before the job
starts, so a write that lands meanwhile derives its people under the new rules, and a
step that derives them again finds their journeys unchanged; journeys are keyed by id,
so deriving a person twice writes them once. A try that stops (a lost database, a
stopping worker) records nothing for its unfinished step, and the next try goes on after
the last id done. A newer change of rules supersedes a re-derivation still to finish.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable
from typing import Any

from .. import store
from ..store import events as event_store
from ..store import rederivations
from ..store.dictionaries import lock_workspace
from . import event_rules, events, jobs
from .ingest import large_write

log = logging.getLogger(__name__)

STEP_IDS = 20_000
"""Ids derived again per transaction of a background re-derivation."""


class RetryLater(Exception):
    """The try stopped before the end; the job is to be tried again."""


def change_rules(
    db: store.Database, workspace_id: int, rules: dict[str, Any], inline_events: int
) -> dict[str, Any]:
    """Store the rules and derive the journeys again: in this transaction for a
    workspace of at most ``inline_events`` events (``rederived``: what changed), else
    as a job (``rederivation``: the row to poll)."""
    with db.transaction() as conn:
        lock_workspace(conn, workspace_id)
        stages = [s.name for s in store.list_stages(conn, workspace_id)]
        event_rules.check(rules, stages)
        event_store.put_rules(conn, workspace_id, rules)
        rederivations.supersede(conn, workspace_id)
        held = event_store.count_events(conn, workspace_id)
        stored = event_store.get_rules(conn, workspace_id)
        if held <= inline_events:
            people, counts, deleted = events.rederive(conn, workspace_id)
            return {"rules": stored, "rederived": {"people": people, **_counts(counts, deleted)}}
        rederivation_id = rederivations.create(conn, workspace_id, held)
        job = jobs.defer_rederive(conn, workspace_id, rederivation_id)
        rederivations.set_job(conn, workspace_id, rederivation_id, job)
        found = rederivations.get(conn, workspace_id, rederivation_id)
    return {"rules": stored, "rederivation": found}


def execute(
    db: store.Database,
    workspace_id: int,
    rederivation_id: str,
    *,
    stop: Callable[[], bool] = lambda: False,
    step_ids: int = STEP_IDS,
) -> None:
    """One try of a background re-derivation (see the module's docstring)."""
    with db.transaction() as conn:
        ids = sorted(events.workspace_ids(conn, workspace_id))
        running, last = rederivations.start(conn, workspace_id, rederivation_id, len(ids))
    if not running:
        return
    k = bisect.bisect_right(ids, last) if last is not None else 0
    with large_write():
        while k < len(ids):
            if stop():
                raise RetryLater("the worker is stopping")
            part = ids[k : k + step_ids]
            if not step(db, workspace_id, rederivation_id, part):
                return  # superseded by newer rules
            k += len(part)
    with db.transaction() as conn:
        rederivations.finish(conn, workspace_id, rederivation_id, "succeeded")


def step(db: store.Database, workspace_id: int, rederivation_id: str, ids: list[str]) -> bool:
    """Derive again the people holding these ids, in a transaction of its own; False
    when the re-derivation was superseded meanwhile."""
    with db.transaction() as conn:
        lock_workspace(conn, workspace_id)
        if not rederivations.still_running(conn, workspace_id, rederivation_id):
            return False
        people, counts, deleted = events.rebuild(conn, workspace_id, ids)
        done = {"people": people, **_counts(counts, deleted)}
        rederivations.advance(conn, workspace_id, rederivation_id, ids[-1], len(ids), done)
    return True


def fail(db: store.Database, workspace_id: int, rederivation_id: str, error: str) -> None:
    with db.transaction() as conn:
        rederivations.finish(conn, workspace_id, rederivation_id, "failed", error)


def get(db: store.Database, workspace_id: int, rederivation_id: str) -> dict[str, Any]:
    with db.transaction() as conn:
        return rederivations.get(conn, workspace_id, rederivation_id)


def _counts(counts: store.WriteCounts, deleted: int) -> dict[str, int]:
    return {
        "created": counts.created,
        "replaced": counts.replaced,
        "unchanged": counts.unchanged,
        "deleted": deleted,
    }
