"""Opaque page cursors: the (time, id) key of the last row of a page, base64url-encoded."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from ..problems import FieldError, InvalidInput


def encode(at: datetime, key: str) -> str:
    text = f"{at.isoformat()}|{key}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(cursor: str | None) -> tuple[datetime, str] | None:
    """The key a cursor holds (None without one); a 422 for one not given out here."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, key = text.split("|", 1)
        return datetime.fromisoformat(at), key
    except (ValueError, binascii.Error):
        raise bad_cursor() from None


def bad_cursor() -> InvalidInput:
    detail = "Not a cursor this service gave out."
    return InvalidInput(detail, [FieldError("/query/cursor", detail)])
