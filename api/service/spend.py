"""Spend in: rows of (date, channel, campaign, amount, currency, rate) from a JSON body
or a CSV file, checked as one batch and written in one transaction, or not at all.

The workspace reports in one currency (its ``currency`` setting, ISO 4217, ``USD``
unless set). A row in another currency must carry ``rate``, the reporting-currency
units one unit of its own is worth; no rate is ever fetched. A row is stored converted
(amount x rate) with its original amount, currency and rate kept beside it. Rows are
keyed by (date, channel, campaign): sending a key again replaces its row, so a batch
can be sent twice; one batch may not hold a key twice.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from .. import store
from ..store import runs as run_store
from ..store import spend as spend_store
from .bulk import other_separator
from .errors import Conflict, FieldError, InvalidInput
from .ingest import MAX_TEXT, MAX_VALUE, PLAIN_END

DEFAULT_CURRENCY = "USD"
"""The reporting currency of a workspace that has not set one."""
CURRENCY = r"^[A-Z]{3}$"
MAX_RATE = 1e9
COLUMNS = ("date", "channel", "campaign", "amount", "currency", "rate")
REQUIRED = ("date", "channel", "amount")
CSV_TYPES = ("text/csv",)

Locate = Callable[[int, str], str]
"""A row's index and a field -> the pointer an error names."""


def in_body(index: int, field: str) -> str:
    return f"/spend/{index}/{field}" if field else f"/spend/{index}"


def in_csv(index: int, field: str) -> str:
    return f"/{index}/{field}" if field else f"/{index}"


def reporting_currency(settings: Mapping[str, Any]) -> str:
    """The workspace's reporting currency from its stored settings."""
    return str(settings.get("currency") or DEFAULT_CURRENCY)


# ---------------------------------------------------------------------- checking
def check_rows(
    rows: Sequence[Mapping[str, Any]], currency: str, locate: Locate = in_body
) -> list[spend_store.SpendRow]:
    """Rows with typed fields -> rows to store; InvalidInput listing every bad field.

    A row in ``currency`` needs no rate (1 if given); any other needs one. A key
    (date, channel, campaign) may appear once per batch.
    """
    errors: list[FieldError] = []
    bad: set[int] = set()
    seen: dict[tuple[Any, ...], int] = {}
    out: list[spend_store.SpendRow] = []
    for i, row in enumerate(rows):
        own = row.get("currency") or currency
        rate = row.get("rate")
        key = (row["date"], row["channel"], row.get("campaign"))
        first = seen.setdefault(key, i)
        for field, detail in _row_faults(own, rate, currency, first, i):
            errors.append(FieldError(locate(i, field), detail))
            bad.add(i)
        out.append(
            spend_store.SpendRow(
                day=row["date"],
                channel=row["channel"],
                campaign=row.get("campaign"),
                amount=_decimal(row["amount"]),
                currency=own,
                rate=_decimal(1 if rate is None else rate),
            )
        )
    if errors:
        detail = f"{len(bad)} of {len(rows)} spend rows are invalid; nothing was written."
        raise InvalidInput(detail, errors)
    return out


def _row_faults(
    own: str, rate: float | None, currency: str, first: int, i: int
) -> list[tuple[str, str]]:
    """(field, problem) pairs of a row's currency, rate and key."""
    faults = []
    if own != currency and rate is None:
        detail = (
            f"The workspace reports in {currency}; a row in {own} needs `rate`, the "
            f"{currency} one {own} is worth (no rates are fetched)."
        )
        faults.append(("rate", detail))
    elif own == currency and rate not in (None, 1):
        detail = f"A row in the reporting currency ({currency}) takes no rate, or 1."
        faults.append(("rate", detail))
    if first != i:
        detail = f"Row {first} has the same date, channel and campaign; send each once."
        faults.append(("", detail))
    return faults


def _decimal(x: float) -> Decimal:
    """The decimal a number was written as (its shortest repr), not its binary value."""
    return Decimal(repr(float(x)))


def write(
    db: store.Database,
    workspace_id: int,
    rows: Sequence[Mapping[str, Any]],
    locate: Locate = in_body,
) -> dict[str, Any]:
    """Check and store a batch in one transaction; counts and the reporting currency."""
    with db.transaction() as conn:
        currency = reporting_currency(run_store.get_settings(conn, workspace_id))
        checked = check_rows(rows, currency, locate)
        counts = spend_store.put_spend(conn, workspace_id, currency, checked)
    return {
        "received": len(rows),
        "created": counts.created,
        "replaced": counts.replaced,
        "unchanged": counts.unchanged,
        "currency": currency,
    }


def check_currency_change(conn: Any, workspace_id: int, currency: str) -> None:
    """Refuse a reporting currency other than the one stored spend is in: its amounts
    were converted into that one."""
    stored = [c for c in spend_store.spend_currencies(conn, workspace_id) if c != currency]
    if stored:
        detail = (
            f"The workspace's spend is stored in {', '.join(stored)}; the reporting "
            f"currency cannot become {currency} while it is. Send "
            f'"currency": "{stored[0]}", or delete the spend (DELETE /v1/spend) and send '
            "it again after the change."
        )
        raise Conflict(detail, [FieldError("/currency", detail)])


# ---------------------------------------------------------------------- CSV
def read_csv(data: bytes, max_rows: int) -> list[dict[str, Any]]:
    """A CSV upload -> rows with typed fields, as the JSON body gives them. Errors name
    the 0-based data row and the column (``/3/amount``) or the header
    (``/header/<column>``)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        detail = f"Not valid UTF-8 (byte {e.start})."
        raise InvalidInput("The CSV file is not UTF-8; nothing was written.",
                           [FieldError("/", detail)]) from None  # fmt: skip
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        _check_header(reader.fieldnames or [])
        cells = list(reader)
    except csv.Error as e:
        raise InvalidInput(
            "The CSV file cannot be read; nothing was written.",
            [FieldError("/", f"Not readable CSV ({e}).")],
        ) from None
    if not cells:
        raise InvalidInput("The CSV file holds no spend rows; nothing was written.")
    if len(cells) > max_rows:
        detail = f"At most {max_rows} rows per upload; this one has {len(cells)}."
        raise InvalidInput(detail, [FieldError("/", detail)])
    rows, errors = [], []
    for i, row in enumerate(cells):
        typed, bad = _typed(row)
        rows.append(typed)
        errors += [FieldError(in_csv(i, field), detail) for field, detail in bad]
    if errors:
        bad_rows = len({e.pointer.split("/")[1] for e in errors})
        raise InvalidInput(
            f"{bad_rows} of {len(cells)} spend rows are invalid (pointers start with the "
            "0-based data row); nothing was written.",
            errors,
        )
    return rows


def _check_header(columns: Sequence[str]) -> None:
    separator = other_separator(columns, COLUMNS)
    if separator is not None:
        detail = f"The columns are separated by {separator}; separate them with commas."
        raise InvalidInput(
            "The CSV header is not one this endpoint reads; nothing was written.",
            [FieldError("/header", detail)],
        )
    unknown = [c for c in columns if c not in COLUMNS]
    missing = [c for c in REQUIRED if c not in columns]
    if unknown or missing:
        accepted = f"Unknown column; the columns read are {', '.join(COLUMNS)}."
        raise InvalidInput(
            "The CSV header is not one this endpoint reads; nothing was written.",
            [FieldError(f"/header/{c}", accepted) for c in unknown]
            + [FieldError(f"/header/{c}", "Missing required column.") for c in missing],
        )


_PLAIN = re.compile(PLAIN_END)


def _typed(row: Mapping[str | None, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """One CSV row's cells typed, and its (column, problem) pairs."""
    if None in row:
        return {}, [("", "The row has more cells than the header.")]
    out: dict[str, Any] = {}
    bad: list[tuple[str, str]] = []
    for column in COLUMNS:
        cell = (row.get(column) or "").strip()
        if not cell:
            if column in REQUIRED:
                bad.append((column, "Missing data for required field."))
            continue
        try:
            out[column] = CELLS[column](cell)
        except ValueError as e:
            bad.append((column, str(e)))
    return out, bad


def _date(cell: str) -> date:
    if not re.fullmatch(r"\d{4}-\d\d-\d\d", cell):
        raise ValueError("Not a valid date (YYYY-MM-DD).")
    try:
        return date.fromisoformat(cell)
    except ValueError:
        raise ValueError("Not a valid date (YYYY-MM-DD).") from None


def _text(cell: str) -> str:
    if len(cell) > MAX_TEXT:
        raise ValueError(f"Longer than maximum length {MAX_TEXT}.")
    if not _PLAIN.match(cell):
        raise ValueError("Must not contain control characters.")
    return cell


def _number(cell: str, *, positive: bool, high: float) -> float:
    try:
        x = float(cell)
    except ValueError:
        raise ValueError("Not a valid number.") from None
    if not math.isfinite(x) or x < 0 or (positive and x == 0) or x > high:
        low = "greater than 0" if positive else "at least 0"
        raise ValueError(f"Must be {low} and at most {high:g}.")
    return x


def _currency(cell: str) -> str:
    if not re.fullmatch(CURRENCY, cell):
        raise ValueError("Not an ISO 4217 currency code (three capital letters, like EUR).")
    return cell


CELLS: dict[str, Callable[[str], Any]] = {
    "date": _date,
    "channel": _text,
    "campaign": _text,
    "amount": lambda c: _number(c, positive=False, high=MAX_VALUE),
    "currency": _currency,
    "rate": lambda c: _number(c, positive=True, high=MAX_RATE),
}
"""How each CSV column's cells are read, with the JSON schema's rules."""
