"""Signed report links: a token that names a workspace, a selection and an expiry.

A token is ``<payload>.<signature>``, both base64url without padding: the payload is
compact JSON, the signature HMAC-SHA256 of the payload text under a key derived from
the server secret (``PATHCREDIT_SECRET_KEY``) for this one purpose, so the same secret
can sign other things later without one signature standing in for another. Nothing is
stored: a link works until it expires, or until the secret changes (which revokes every
link at once). Nothing here knows HTTP.
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
MAX_TOKEN = 8000
"""Longest token: `GET /report?token=...` must fit the server's 8,190-byte request line."""


class LinkError(Exception):
    """The token is malformed, forged or expired; the message says which."""


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
    text = _b64(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    return f"{text}.{_b64(_mac(secret, text))}"


def verify(secret: str, token: str, now: float) -> Link:
    """The link a token carries; raises LinkError unless it is genuine and unexpired."""
    text, _, signature = token.partition(".")
    # The signature is compared as the text a signer writes, not as decoded bytes:
    # base64 decoding ignores stray characters and the unused bits of the last one,
    # so one link would have many spellings that all verify.
    if not hmac.compare_digest(signature.encode(), _b64(_mac(secret, text)).encode()):
        raise LinkError("The report link is not valid.")
    try:
        payload = json.loads(_unb64(text))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise LinkError("The report link is malformed.") from None
    link = _link(payload)
    if link.expires <= now:
        raise LinkError("The report link has expired; ask for a new one.")
    return link


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


def _mac(secret: str, text: str) -> bytes:
    key = hmac.new(secret.encode(), PURPOSE, hashlib.sha256).digest()
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
