"""Store errors, and the one place driver errors (SQLSTATE) are translated into them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg


class StoreError(Exception):
    """Base of every error the store raises."""


class NotFoundError(StoreError):
    """The row asked for does not exist in this workspace."""


class ConflictError(StoreError):
    """The write contradicts data already stored (a duplicate, a value in use)."""


class InvalidDataError(StoreError):
    """The database rejected a value (out of range, malformed)."""


class UnavailableError(StoreError):
    """The database cannot be reached, or the connection broke."""


class MigrationError(StoreError):
    """The schema is not in a state migrations can move forward from."""


@contextmanager
def translated() -> Iterator[None]:
    """Turn psycopg errors raised inside the block into store errors, by SQLSTATE class."""
    try:
        yield
    except pg.UniqueViolation as e:
        raise ConflictError(_message(e)) from e
    # the DB-API classes cover every SQLSTATE of classes 22 and 23 (pg.DataException is
    # 22000 alone: a NUL in a JSON filter, 22P05, would slip past it)
    except (psycopg.DataError, psycopg.IntegrityError) as e:
        raise InvalidDataError(_message(e)) from e
    except (psycopg.OperationalError, psycopg.InterfaceError) as e:
        raise UnavailableError(_message(e)) from e
    except psycopg.Error as e:
        raise StoreError(_message(e)) from e


def _message(error: psycopg.Error) -> str:
    diag = error.diag
    text = diag.message_primary or str(error).strip()
    if diag.message_detail:
        text = f"{text} ({diag.message_detail})"
    return text
