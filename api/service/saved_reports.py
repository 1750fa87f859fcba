"""Saved reports: named run parameters whose table a BI tool refreshes by URL.

A saved report keeps a run body as given. Its table is answered by the run that
answered it last while that run's parameters (the body with today's workspace
defaults applied) and the workspace's data version are unchanged; otherwise a
refresh runs it again, synchronously, with the bounds of ``POST /v1/attribution``.
Two refreshes of one report at once start one run: a refresh claims the report as it
records its run (:func:`api.store.saved_reports.claim`, a compare and swap under the
row lock), and a refresh that finds another under way waits for it. A report's
series is computed at each request; each answer is stored whole for the BI view
``series_latest_v1`` (:func:`record_series`). Table links are stored rows named by a
signed token (:mod:`.signing`), so each can be revoked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from .. import store
from ..store import runs
from ..store import saved_reports as saved
from . import runs as run_service
from . import series, signing
from .errors import Conflict, FieldError, Gone, InvalidInput, Unauthorized, Unavailable
from .heartbeat import sweep

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
NAME_RULE = "1-100 letters, digits, '-' or '_', starting with a letter or digit"
POLL_SECONDS = 0.1
"""How often a refresh waiting for another one looks again."""
BUSY_RETRY_AFTER = 5


@dataclass(frozen=True)
class Refreshed:
    """The run answering a saved report's table, and whether it was already there."""

    run_id: str
    hit: bool


class _Taken(Exception):
    """Another refresh claimed the report first; the run being recorded is undone."""


def check_name(name: str, pointer: str = "/name") -> None:
    if not NAME.fullmatch(name):
        detail = f"{name!r} is not a saved report name: use {NAME_RULE}."
        raise InvalidInput(detail, [FieldError(pointer, detail)])


def create(
    db: store.Database, workspace_id: int, name: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    """Save run parameters (a run body, as JSON) under a new name."""
    check_name(name)
    with db.transaction() as conn:
        _check_parameters(conn, workspace_id, body)
        try:
            return saved.create(conn, workspace_id, name, body)
        except store.ConflictError:
            detail = (
                f"A saved report named {name!r} exists; PUT /v1/saved-reports/{name} "
                "replaces its parameters."
            )
            raise Conflict(detail, [FieldError("/name", detail)]) from None


def replace(
    db: store.Database, workspace_id: int, name: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    """Replace a saved report's parameters; its next table request runs them."""
    with db.transaction() as conn:
        _check_parameters(conn, workspace_id, body)
        return saved.replace(conn, workspace_id, name, body)


def _check_parameters(conn: Any, workspace_id: int, body: Mapping[str, Any]) -> None:
    """Refuse a body a run would refuse (model options, confidence), pointing into it."""
    run_service.plan_run(loaded(body), runs.get_settings(conn, workspace_id))


def loaded(body: Mapping[str, Any]) -> dict[str, Any]:
    """A stored (JSON) run body as a loaded one: its dates as dates."""
    out = dict(body)
    for key in ("date_from", "date_to"):
        if isinstance(out.get(key), str):
            out[key] = date.fromisoformat(out[key])
    return out


def refresh(
    db: store.Database,
    workspace_id: int,
    name: str,
    *,
    timeout: float,
    budget: int,
    max_runs: int = 0,
    poll: float = POLL_SECONDS,
) -> Refreshed:
    """The run answering the report now: the last one while nothing it depends on has
    changed, else a new one (or the one another refresh is making, waited for up to
    ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        with db.transaction() as conn:
            state = saved.refresh_state(conn, workspace_id, name)
            defaults = runs.get_settings(conn, workspace_id)
        plan = run_service.plan_run(loaded(state.body), defaults)
        if _answers(state, plan.parameters_hash()):
            assert state.run_id is not None
            return Refreshed(state.run_id, hit=True)
        if state.pending_status == "succeeded":
            assert state.pending_run_id is not None
            _settle(db, workspace_id, state.report_id, state.pending_run_id)
        elif state.pending_status in ("queued", "running"):
            _wait(db, workspace_id, name, deadline, poll)
        else:
            left = max(1.0, deadline - time.monotonic())
            run_id = _run(db, workspace_id, state, plan, left, budget=budget, max_runs=max_runs)
            if run_id is not None:
                return Refreshed(run_id, hit=False)


def _answers(state: saved.RefreshState, parameters_hash: str) -> bool:
    return (
        state.run_id is not None
        and state.parameters_hash == parameters_hash
        and state.run_version == state.data_version
    )


def _wait(db: store.Database, workspace_id: int, name: str, deadline: float, poll: float) -> None:
    """Wait for the refresh under way, unless its process died (it is then failed, and
    the next look claims the report) or the time is up."""
    with db.transaction() as conn:
        sweep(conn, workspace_id)
    if time.monotonic() >= deadline:
        raise Unavailable(
            f"A refresh of saved report {name!r} is under way and has not finished; "
            "try again shortly.",
            retry_after=BUSY_RETRY_AFTER,
        )
    time.sleep(poll)


def _run(
    db: store.Database,
    workspace_id: int,
    state: saved.RefreshState,
    plan: run_service.RunPlan,
    timeout: float,
    *,
    budget: int,
    max_runs: int,
) -> str | None:
    """Run the report as a claimed refresh; its run id, or None when another refresh
    claimed it first."""
    claimed: list[str] = []

    def claim(conn: Any, run_id: str) -> None:
        if not saved.claim(conn, workspace_id, state.report_id, run_id, state.pending_run_id):
            raise _Taken()
        claimed.append(run_id)

    try:
        run_id = run_service.run_sync(
            db, workspace_id, plan, timeout, budget=budget, max_runs=max_runs, claim=claim
        )
    except _Taken:
        return None
    except BaseException:
        if claimed:
            with db.transaction() as conn:
                saved.release(conn, workspace_id, state.report_id, claimed[0])
        raise
    _settle(db, workspace_id, state.report_id, run_id)
    return run_id


def _settle(db: store.Database, workspace_id: int, report_id: int, run_id: str) -> None:
    with db.transaction() as conn:
        saved.settle(conn, workspace_id, report_id, run_id)


# ---------------------------------------------------------------------- series
def record_series(
    db: store.Database, workspace_id: int, report: Mapping[str, Any], answer: series.Answer
) -> str | None:
    """Store a saved report's series answer as its rows of ``series_latest_v1``,
    replacing the last; its id, or None when the report was replaced or deleted while
    the series was computed (the answer is then not the report's)."""
    columns = (*series.COLUMNS, *series.SPEND_COLUMNS)
    rows = ([r[c] for c in columns] for r in answer.rows)
    read = saved.SeriesAnswer(answer.data_version, answer.date_from, answer.date_to,
                              answer.currency)  # fmt: skip
    with db.transaction() as conn:
        return saved.put_series(conn, workspace_id, report["report_id"], report["parameters"],
                                read, rows)  # fmt: skip


# ---------------------------------------------------------------------- table links
def create_link(
    db: store.Database,
    workspace_id: int,
    name: str,
    secret: str,
    expires_in: int | None,
) -> dict[str, Any]:
    """A stored link to the report's table and its token, expiring after
    ``expires_in`` seconds (never when None)."""
    expires_at = None
    if expires_in is not None:
        expires_at = datetime.fromtimestamp(int(time.time()) + expires_in, UTC)
    with db.transaction() as conn:
        report_id = saved.get(conn, workspace_id, name)["report_id"]
        link = saved.create_link(conn, workspace_id, report_id, expires_at)
    return with_token(link, workspace_id, report_id, secret)


def list_links(
    db: store.Database, workspace_id: int, name: str, secret: str
) -> list[dict[str, Any]]:
    """The report's links, revoked ones included, each with its token."""
    with db.transaction() as conn:
        report_id = saved.get(conn, workspace_id, name)["report_id"]
        links = saved.list_links(conn, workspace_id, report_id)
    return [with_token(link, workspace_id, report_id, secret) for link in links]


def revoke_link(db: store.Database, workspace_id: int, name: str, link_id: str) -> None:
    with db.transaction() as conn:
        report_id = saved.get(conn, workspace_id, name)["report_id"]
        saved.revoke_link(conn, workspace_id, report_id, link_id)


def with_token(
    link: Mapping[str, Any], workspace_id: int, report_id: int, secret: str
) -> dict[str, Any]:
    """The link with its token (signing is deterministic, so a listed link shows the
    token it was given out with)."""
    expires = link["expires_at"]
    signed = signing.TableLink(
        workspace_id=workspace_id,
        report_id=report_id,
        link_id=link["link_id"],
        expires=None if expires is None else int(expires.timestamp()),
    )
    return {**link, "token": signing.sign_table(secret, signed)}


def open_link(db: store.Database, secret: str, token: str, name: str) -> int:
    """The workspace whose saved report ``name`` a table token opens; Unauthorized for
    a token that is not a genuine table link to that report, Gone for one that
    expired or was revoked (or whose report was deleted)."""
    try:
        link = signing.verify_table(secret, token, time.time())
    except signing.LinkExpired as e:
        raise Gone(str(e)) from None
    except signing.LinkError as e:
        raise Unauthorized(str(e)) from None
    with db.transaction() as conn:
        found = saved.find_link(conn, link.workspace_id, link.report_id, link.link_id)
    if found is None:
        raise Gone("The table link no longer works: its saved report was deleted.")
    if found.revoked_at is not None:
        raise Gone("The table link was revoked; ask for a new one.")
    if found.expired:
        raise Gone("The table link has expired; ask for a new one.")
    if found.name != name:
        raise Unauthorized(f"The table link opens saved report {found.name!r}, not {name!r}.")
    return link.workspace_id
