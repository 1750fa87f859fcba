"""Request bodies as the ingestion routes read them: streamed in chunks, decompressed
when sent with ``Content-Encoding: gzip``, and held to a size limit that applies to the
body after decompression (so a small gzip body cannot inflate past it)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

from flask import Request, request

from ..problems import BadRequest, PayloadTooLarge, UnsupportedMediaType

CHUNK = 1 << 20
ENCODINGS = ("identity", "gzip", "x-gzip")
KEY = "pathcredit.body"
"""Where :func:`whole` keeps the body it read, in the request's environ."""


def chunks(limit: int, req: Request | None = None) -> Iterator[bytes]:
    """The request body, decompressed when sent with ``Content-Encoding: gzip``; over
    ``limit`` bytes (decompressed) is a 413, a body that is not gzip a 400, another
    encoding a 415."""
    req = req if req is not None else request
    encoding = req.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ENCODINGS:
        raise UnsupportedMediaType("Content-Encoding may be gzip or none.")
    req.max_content_length = limit
    stream = req.stream
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding != "identity" else None
    total = raw = 0
    # Not one read past the limit: werkzeug answers that with its own 413.
    while raw < limit and (chunk := stream.read(min(CHUNK, limit - raw))):
        raw += len(chunk)
        if inflate is not None:
            chunk = _inflate(inflate, chunk, limit - total)
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
        yield chunk
    # werkzeug stops reading a body sent without a length (chunked) at the limit, as if
    # it ended there: one more byte means it is larger.
    if req.content_length is None and raw >= limit and req.environ["wsgi.input"].read(1):
        raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
    if inflate is not None and not inflate.eof:
        raise BadRequest("The gzip body ends early.")


def whole(limit: int, req: Request) -> bytes:
    """The whole body, as :func:`chunks` gives it, read once per request."""
    data = req.environ.get(KEY)
    if data is None:
        data = req.environ[KEY] = b"".join(chunks(limit, req))
    return data


def parsed(req: Request) -> Any:
    """The JSON body :func:`whole` read (decompressed), else werkzeug's; None when
    there is none or it is not JSON."""
    data = req.environ.get(KEY)
    if data is None:
        return req.get_json(silent=True)
    try:
        return json.loads(data)
    except ValueError:
        return None


def _inflate(inflate: zlib._Decompress, chunk: bytes, room: int) -> bytes:
    """A compressed chunk inflated, stopping one byte past ``room``."""
    try:
        out = inflate.decompress(chunk, room + 1)
        while inflate.unconsumed_tail and len(out) <= room:
            out += inflate.decompress(inflate.unconsumed_tail, room - len(out) + 1)
    except zlib.error:
        raise BadRequest("The body is not valid gzip.") from None
    return out
