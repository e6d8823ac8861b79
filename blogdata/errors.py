"""Errors raised by blogdata: one base class, a short tree under it.

Every message names what failed and what to do about it::

    BlogdataError
    ├── ConfigurationError          settings or environment are wrong
    ├── DatabaseUnavailableError    the server cannot be reached or started
    │   └── PoolExhaustedError      every pooled connection stayed busy for pool_timeout
    ├── InvalidInputError           an argument is rejected before any SQL runs (also a ValueError)
    ├── NotFoundError               the row asked for does not exist (also a LookupError)
    ├── AlreadyExistsError          a unique constraint was violated (SQLSTATE 23505)
    ├── RelatedRowMissingError      a foreign key points nowhere (SQLSTATE 23503)
    ├── InsufficientFundsError      a transfer would make a balance negative
    ├── ReplicationLagError         the read server did not replay the primary's writes in time
    └── QueryError                  the database rejected a statement; carries its message
        ├── StatementTimeoutError   a statement ran past statement_timeout (SQLSTATE 57014)
        └── ReadOnlySessionError    a write was attempted on a read session (SQLSTATE 25006)

Database errors are translated at one boundary, :func:`translate_db_error`, by SQLSTATE; it
takes SQLAlchemy's wrapped errors and asyncpg's own (from COPY and other driver-level calls).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "RETRYABLE_SQLSTATES",
    "AlreadyExistsError",
    "BlogdataError",
    "ConfigurationError",
    "DatabaseUnavailableError",
    "InsufficientFundsError",
    "InvalidInputError",
    "NotFoundError",
    "PoolExhaustedError",
    "QueryError",
    "ReadOnlySessionError",
    "RelatedRowMissingError",
    "ReplicationLagError",
    "StatementTimeoutError",
    "sqlstate_of",
    "translate_db_error",
]

#: Serialization failure and deadlock: the whole unit of work may be run again.
RETRYABLE_SQLSTATES: frozenset[str] = frozenset({"40001", "40P01"})

_KEY_RE = re.compile(r"Key \(([^)]*)\)=")


class BlogdataError(Exception):
    """Base class of every error blogdata raises on purpose."""


class ConfigurationError(BlogdataError):
    """A setting or the environment is wrong; the message says which and how to fix it."""


class DatabaseUnavailableError(BlogdataError):
    """The database server cannot be reached or started."""


class InvalidInputError(BlogdataError, ValueError):
    """An argument was rejected before any SQL ran."""


class NotFoundError(BlogdataError, LookupError):
    """The row asked for does not exist."""


class AlreadyExistsError(BlogdataError):
    """A row with the same unique value already exists."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RelatedRowMissingError(BlogdataError):
    """A foreign key refers to a row that does not exist."""


class InsufficientFundsError(BlogdataError):
    """A transfer would take an account's balance below zero."""


class QueryError(BlogdataError):
    """The database rejected a statement; ``str(err)`` carries the server's own message."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class PoolExhaustedError(DatabaseUnavailableError):
    """Every pooled connection stayed checked out for ``pool_timeout`` seconds."""


class StatementTimeoutError(QueryError):
    """A statement ran longer than ``statement_timeout``; the transaction must be rolled back."""


class ReadOnlySessionError(QueryError):
    """A write was attempted on a read session (or on a hot standby): writes go to the primary."""


class ReplicationLagError(BlogdataError):
    """The read server had not replayed the primary's writes when the wait timed out."""


def _driver_error(exc: BaseException) -> BaseException:
    """Return asyncpg's exception behind a SQLAlchemy one (or ``exc`` itself)."""
    orig: BaseException | None = getattr(exc, "orig", None)
    if orig is None:
        return exc
    return orig.__cause__ if orig.__cause__ is not None else orig


def sqlstate_of(exc: BaseException) -> str | None:
    """Return the PostgreSQL SQLSTATE behind a SQLAlchemy, asyncpg or ADBC error, or None."""
    for candidate in (exc, getattr(exc, "orig", None), _driver_error(exc)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str) and state:
            return state
    return None


def _server_words(exc: BaseException) -> str:
    # ADBC appends the whole COPY statement after a blank line: keep the server's words only.
    return str(_driver_error(exc)).split("\n\n", 1)[0].strip()


def _columns(table: Any, constraint: str | None, detail: str) -> list[str]:
    """Return the columns of ``constraint`` on ``table``, else those named in the detail."""
    if table is not None and constraint:
        for item in (*table.constraints, *table.indexes):
            if item.name == constraint and hasattr(item, "columns"):
                return [c.name for c in item.columns]
    match = _KEY_RE.search(detail)
    return [c.strip() for c in match.group(1).split(",")] if match else []


def _referred(table: Any, constraint: str | None) -> str:
    for fk in getattr(table, "foreign_key_constraints", ()):
        if fk.name == constraint:
            return str(fk.referred_table.name)
    return "another table"


def translate_db_error(
    exc: BaseException, *, table: Any = None, doing: str = "the statement"
) -> BlogdataError:
    """Translate a database error into blogdata's tree by its SQLSTATE; raise it ``from exc``.

    23505 gives ``AlreadyExistsError`` (``field`` from ``table``'s constraint, a SQLAlchemy
    ``Table``, or the server's detail), 23503 ``RelatedRowMissingError``, 57014
    ``StatementTimeoutError``, 40001/40P01 a ``QueryError`` saying to rerun the unit of work,
    anything else a ``QueryError`` with the server's message and SQLSTATE. ``doing`` names the
    operation in the message ("the query", "seeding" ...).
    """
    state = sqlstate_of(exc)
    driver = _driver_error(exc)
    said = _server_words(exc)
    constraint = getattr(driver, "constraint_name", None)
    table_name = getattr(driver, "table_name", None) or getattr(table, "name", "") or "the"
    field = ", ".join(_columns(table, constraint, getattr(driver, "detail", None) or "")) or None
    if state == "23505":
        what = field or constraint or "this unique value"
        return AlreadyExistsError(
            f"a {table_name} row with this {what} already exists; "
            f"choose another {what} or update the existing row",
            field=field,
        )
    if state == "23503":
        return RelatedRowMissingError(
            f"{table_name}.{field or constraint} refers to a {_referred(table, constraint)} row "
            "that does not exist; create that row first or fix the id"
        )
    if state == "57014":
        return StatementTimeoutError(
            f"{doing} was cancelled ({said}); roll back, then narrow the query or allow more time",
            sqlstate=state,
        )
    if state == "25006":
        return ReadOnlySessionError(
            f"{doing} tried to write on a read session ({said}); reads go to the read server, "
            "writes must use a normal session on the primary (session_scope())",
            sqlstate=state,
        )
    if state in RETRYABLE_SQLSTATES:
        return QueryError(
            f"{doing} conflicted with a concurrent transaction ({said}); roll back and run the "
            "whole unit of work again",
            sqlstate=state,
        )
    hint = " (is the database migrated? run `blogdata migrate upgrade`)" if state == "42P01" else ""
    return QueryError(
        f"{doing} failed: {said}{hint} (SQLSTATE {state}); fix the statement and retry",
        sqlstate=state,
    )
