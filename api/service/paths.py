"""Client-aggregated paths: coded against the workspace's dictionaries and stored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import store
from .errors import FieldError, InvalidInput
from .ingest import batch_limit, write_result


def write_paths(
    db: store.Database, workspace_id: int, paths: Sequence[Mapping[str, Any]], limit: int
) -> dict[str, int]:
    """Store a batch of paths (loaded ``PathIn`` records) in one transaction, or raise
    InvalidInput listing every bad one; nothing is written then."""
    batch_limit(paths, limit, "paths", "")
    with db.transaction() as conn:
        coder = store.Coder(conn, workspace_id)
        rows = code_paths(coder, paths)
        coder.save()
        return write_result(store.write_paths(conn, workspace_id, rows))


def code_paths(coder: store.Coder, paths: Sequence[Mapping[str, Any]]) -> list[store.PathRow]:
    rows: list[store.PathRow] = []
    errors: list[FieldError] = []
    seen: dict[tuple[Any, ...], int] = {}
    for i, p in enumerate(paths):
        stage_codes = []
        for k, name in enumerate(p["stages"] or [None] * len(p["path"])):
            code = 0 if name is None else coder.stages.get(name)
            if code is None:
                errors.append(FieldError(f"/paths/{i}/stages/{k}", f"Unknown stage {name!r}."))
            stage_codes.append(code or 0)
        key = (p["date"], tuple(p["path"]), tuple(stage_codes))
        if seen.setdefault(key, i) != i:
            errors.append(
                FieldError(f"/paths/{i}", f"Same date, path and stages as path {seen[key]}.")
            )
        rows.append(
            store.PathRow(
                day=p["date"],
                channels=[coder.channel_code(c) for c in p["path"]],
                stages=stage_codes,
                conversions=p["conversions"],
                nulls=p["nulls"],
                value=p["value"],
            )
        )
    if errors:
        bad = len({e.pointer.split("/")[2] for e in errors})
        raise InvalidInput(f"{bad} of {len(paths)} paths are invalid; nothing was written.", errors)
    return rows
