"""Query parameters every table route takes."""

from __future__ import annotations

import marshmallow as ma


class TableQuery(ma.Schema):
    """Query parameters every table endpoint takes."""

    format = ma.fields.String(
        validate=ma.validate.OneOf(["json", "csv"]),
        metadata={"description": "`csv` or `json`; without it, `Accept: text/csv` picks CSV"},
    )
