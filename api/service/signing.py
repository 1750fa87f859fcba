"""Signed links: report links (a workspace, a selection and an expiry) and table links
(a saved report's stored link).

A token is ``<payload>.<signature>``, both base64url without padding: the payload is
compact JSON, the signature HMAC-SHA256 of the payload text under a key derived from
the server secret (``PATHCREDIT_SECRET_KEY``) for one purpose, so a report link's token
never verifies as a table link's, nor the other way round. Report links are not
stored: one works until it expires, or until the secret changes (which revokes every
link at once). A table link's token names a stored link, which the caller checks (it
can be revoked). Nothing here knows HTTP.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from .selection import Selection

PURPOSE = b"pathcredit report link v1"
TABLE_PURPOSE = b"pathcredit table link v1"
MAX_TOKEN = 8000
"""Longest token: `GET /report?token=...` must fit the server's 8,190-byte request line."""


class LinkError(Exception):
    """The token is malformed, forged or expired; the message says which."""


class LinkExpired(LinkError):
    """The token is genuine but past its expiry."""


@dataclass(frozen=True)
class Link:
    """What a valid token grants: one workspace's report for one selection."""

    workspace_id: int
    workspace: str
    selection: Selection
    models: tuple[str, ...]
    expires: int


def sign(secret: str, link: Link) -> str:
    payload = {
        "w": link.workspace_id,
        "n": link.workspace,
        "s": link.selection.parameters(),
        "m": list(link.models),
        "e": link.expires,
    }
    return _seal(secret, PURPOSE, payload)


def verify(secret: str, token: str, now: float) -> Link:
    """The link a token carries; raises LinkError unless it is genuine and unexpired."""
    link = _link(_open(secret, PURPOSE, token, "report link"))
    if link.expires <= now:
        raise LinkExpired("The report link has expired; ask for a new one.")
    return link


@dataclass(frozen=True)
class TableLink:
    """What a valid table token names: one stored link to one saved report's table."""

    workspace_id: int
    report_id: int
    link_id: str
    expires: int | None


def sign_table(secret: str, link: TableLink) -> str:
    payload = {"w": link.workspace_id, "r": link.report_id, "l": link.link_id, "e": link.expires}
    return _seal(secret, TABLE_PURPOSE, payload)


def verify_table(secret: str, token: str, now: float) -> TableLink:
    """The stored link a token names; raises LinkError unless it is genuine, and
    LinkExpired past its expiry. Whether it was revoked is the store's to say."""
    payload = _open(secret, TABLE_PURPOSE, token, "table link")
    try:
        expires = payload["e"]
        link = TableLink(
            workspace_id=int(payload["w"]),
            report_id=int(payload["r"]),
            link_id=str(payload["l"]),
            expires=None if expires is None else int(expires),
        )
    except (KeyError, TypeError, ValueError):
        raise LinkError("The table link is malformed.") from None
    if link.expires is not None and link.expires <= now:
        raise LinkExpired("The table link has expired; ask for a new one.")
    return link


def _seal(secret: str, purpose: bytes, payload: Mapping[str, Any]) -> str:
    text = _b64(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    return f"{text}.{_b64(_mac(secret, text, purpose))}"


def _open(secret: str, purpose: bytes, token: str, what: str) -> Any:
    """The payload of a token signed for ``purpose``; LinkError unless genuine."""
    text, _, signature = token.partition(".")
    # The signature is compared as the text a signer writes, not as decoded bytes:
    # base64 decoding ignores stray characters and the unused bits of the last one,
    # so one link would have many spellings that all verify.
    if not hmac.compare_digest(signature.encode(), _b64(_mac(secret, text, purpose)).encode()):
        raise LinkError(f"The {what} is not valid.")
    try:
        return json.loads(_unb64(text))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise LinkError(f"The {what} is malformed.") from None


def _link(payload: Any) -> Link:
    """Payloads are ours (the signature checked out), so only their shape is checked."""
    try:
        return Link(
            workspace_id=int(payload["w"]),
            workspace=str(payload["n"]),
            selection=selection_from_parameters(payload["s"]),
            models=tuple(str(m) for m in payload["m"]),
            expires=int(payload["e"]),
        )
    except (KeyError, TypeError, ValueError):
        raise LinkError("The report link is malformed.") from None


def selection_from_parameters(p: Mapping[str, Any]) -> Selection:
    """The inverse of :meth:`Selection.parameters`."""
    filters = p.get("filters") or {}
    return Selection(
        date_from=_date(p.get("date_from")),
        date_to=_date(p.get("date_to")),
        attributes=filters.get("attributes"),
        device=filters.get("device"),
        campaign=filters.get("campaign"),
        channel_groups=dict(p.get("channel_groups") or {}),
        collapse_repeats=bool(p.get("collapse_repeats")),
        lookback_days=p.get("lookback_days"),
    )


def _date(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _mac(secret: str, text: str, purpose: bytes) -> bytes:
    key = hmac.new(secret.encode(), purpose, hashlib.sha256).digest()
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
