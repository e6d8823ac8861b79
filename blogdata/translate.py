"""Translating database errors into blogdata's: the one boundary every layer uses.

Database errors are translated at one boundary. :func:`translate_db_error` maps one error by its
SQLSTATE; it takes SQLAlchemy's wrapped errors, asyncpg's own (from COPY, cursors and other
driver-level calls) and ADBC's. :func:`translating` is the same boundary as a context manager::

    async with translating("seeding", connection=conn):
        await driver.copy_records_to_table(...)

It raises the translated error ``from`` the driver's, and when the connection was lost it
invalidates ``connection`` first, so a connection in an unknown state never goes back to the
pool and the caller's ``rollback()``/``close()`` afterwards cannot fail. Engines made by
``blogdata.db.engine.create_engine`` apply the connection-loss part to every SQLAlchemy statement
by themselves (a ``handle_error`` hook).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import URL

from blogdata._url import server_address
from blogdata.errors import (
    RETRYABLE_SQLSTATES,
    AlreadyExistsError,
    BlogdataError,
    ConnectionLostError,
    QueryError,
    ReadOnlySessionError,
    RelatedRowMissingError,
    RetryableConflictError,
    StatementTimeoutError,
)

__all__ = [
    "invalidate_connection",
    "is_connection_lost",
    "sqlstate_of",
    "translate_db_error",
    "translating",
]

_KEY_RE = re.compile(r"Key \(([^)]*)\)=")


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
    said = str(_driver_error(exc)).split("\n\n", 1)[0].strip()
    return said or exc.__class__.__name__


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


#: Server states that mean the connection is gone: class 08 and the three shutdown states.
_LOST_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
#: asyncpg's words when it notices the socket is gone (InterfaceError, InternalClientError).
_CLOSED_WORDS = ("connection is closed", "connection was closed", "underlying connection is closed")
_BUSY_WORDS = "another operation is in progress"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """Yield ``exc``, the DBAPI error SQLAlchemy wraps, and the driver error behind that."""
    seen: list[BaseException] = []
    for candidate in (exc, getattr(exc, "orig", None), _driver_error(exc), exc.__cause__):
        if isinstance(candidate, BaseException) and not any(candidate is s for s in seen):
            seen.append(candidate)
            yield candidate


def _is_driver_error(exc: BaseException) -> bool:
    """Return whether ``exc`` comes from SQLAlchemy's DBAPI layer, asyncpg, ADBC or the socket."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError | ConnectionError):
        return True
    module = type(exc).__module__
    return module.startswith(("asyncpg", "adbc_driver")) or (
        sqlstate_of(exc) is not None and not isinstance(exc, BlogdataError)
    )


def _driver_closed(connection: Any) -> bool:
    """Return whether the asyncpg connection behind ``connection`` is known to be closed."""
    try:
        sync = getattr(connection, "sync_connection", connection)
        if getattr(sync, "invalidated", False):
            return True
        fairy = getattr(sync, "_dbapi_connection", None)  # no reconnect, unlike .connection
        driver = getattr(fairy, "driver_connection", None)
        return bool(driver is not None and driver.is_closed())
    except Exception:  # a best-effort probe: never mask the error being translated
        return False


def is_connection_lost(exc: BaseException, connection: Any = None) -> bool:
    """Return whether ``exc`` means the connection to the server is gone (not a bad statement).

    True for SQLSTATE class 08 and 57P01-57P03, for SQLAlchemy errors that invalidated their
    connection, for asyncpg's "connection is closed" errors (and "another operation is in
    progress" on a connection that is closed), and for socket errors under the driver.
    """
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, ConnectionLostError):
        return True
    if isinstance(exc, BlogdataError):
        return False
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = sqlstate_of(exc)
    if state is not None and (state.startswith("08") or state in _LOST_SQLSTATES):
        return True
    for candidate in _chain(exc):
        if isinstance(candidate, ConnectionError):
            return True
        words = str(candidate).lower()
        if any(w in words for w in _CLOSED_WORDS):
            return True
        if _BUSY_WORDS in words and connection is not None and _driver_closed(connection):
            return True
    return False


def _where(connection: Any) -> str | None:
    """Describe the server behind ``connection`` without IO, or None if it cannot be told."""
    try:
        if isinstance(connection, URL):
            url = connection
        else:
            bind = getattr(connection, "bind", None) or connection
            if hasattr(bind, "sync_session"):
                bind = bind.sync_session.get_bind()
            url = bind.engine.url if hasattr(bind, "engine") else bind.url
    except Exception:  # no bind, or a foreign object: the message just omits the address
        return None
    if not isinstance(url, URL):
        return None
    return server_address(url)


def _connection_lost(
    exc: BaseException | None, *, doing: str = "the statement", where: str | None = None
) -> ConnectionLostError:
    """Build the ``ConnectionLostError`` for a connection lost during ``doing``."""
    said = f" ({_server_words(exc)})" if exc is not None else ""
    at = f" at {where}" if where else ""
    return ConnectionLostError(
        f"the connection to PostgreSQL{at} was lost during {doing}{said}; roll back and run "
        "the unit of work again, and check the server with `blogdata db status`",
        doing=doing,
        where=where,
    )


def translate_db_error(
    exc: BaseException,
    *,
    table: Any = None,
    doing: str = "the statement",
    connection: Any = None,
) -> BlogdataError:
    """Translate a database error into blogdata's tree by its SQLSTATE; raise it ``from exc``.

    A lost connection (see :func:`is_connection_lost`) gives ``ConnectionLostError``, naming
    the server when ``connection`` (an engine, connection, session or URL) is given. 23505
    gives ``AlreadyExistsError`` (``field`` from ``table``'s constraint, a SQLAlchemy ``Table``,
    or the server's detail), 23503 ``RelatedRowMissingError``, 57014 ``StatementTimeoutError``,
    40001/40P01 ``RetryableConflictError``, anything else a ``QueryError`` with the server's
    message and SQLSTATE. ``doing`` names the operation in the message ("the query",
    "seeding" ...). Pure: it never touches the connection (:func:`translating` does).
    """
    if isinstance(exc, BlogdataError):
        return exc
    if is_connection_lost(exc, connection):
        return _connection_lost(exc, doing=doing, where=_where(connection))
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
        return RetryableConflictError(
            f"{doing} conflicted with a concurrent transaction ({said}); roll back and run the "
            "whole unit of work again",
            sqlstate=state,
        )
    if state is None and _BUSY_WORDS in said.lower():
        return QueryError(
            f"{doing} failed: {said}; one connection runs one statement at a time: give each "
            "concurrent task its own session or connection"
        )
    hint = " (is the database migrated? run `blogdata migrate upgrade`)" if state == "42P01" else ""
    code = f" (SQLSTATE {state})" if state else ""
    return QueryError(
        f"{doing} failed: {said}{hint}{code}; fix the statement and retry", sqlstate=state
    )


async def invalidate_connection(connection: Any) -> None:
    """Discard the connection behind ``connection`` so it never returns to the pool; never raise.

    ``connection`` is an ``AsyncConnection`` or an ``AsyncSession`` (its connection, if it has
    one in a transaction); anything else is ignored. Afterwards ``rollback()`` and ``close()``
    succeed, and the next statement gets a fresh connection.
    """
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    try:
        if isinstance(connection, AsyncSession):
            if not connection.in_transaction():
                return
            connection = await connection.connection()
        if isinstance(connection, AsyncConnection) and not connection.closed:
            await connection.invalidate()
    except Exception:  # the connection is already unusable; discarding it is best effort
        return


def _invalidate_sync(connection: Any) -> None:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    try:
        connection = getattr(connection, "sync_session", connection)
        if isinstance(connection, Session):
            if not connection.in_transaction():
                return
            connection = connection.connection()
        connection = getattr(connection, "sync_connection", connection)
        if isinstance(connection, Connection) and not connection.closed:
            connection.invalidate()
    except Exception:  # the connection is already unusable; discarding it is best effort
        return


def _located(err: ConnectionLostError, where: str | None) -> ConnectionLostError:
    """Return ``err``, or the same error naming the server if an inner boundary could not."""
    if err.where is not None or where is None:
        return err
    cause = err.__cause__
    fresh = _connection_lost(cause, doing=err.doing, where=where)
    fresh.__cause__ = cause
    return fresh


class translating:  # noqa: N801 - a context manager used like contextlib's functions
    """Translate driver errors raised in the block: the one boundary, as a context manager.

    Usage: ``async with translating("seeding", connection=conn): ...`` (or a plain ``with``
    in sync code, e.g. under ``run_sync``, with a ``Connection`` or ``Session``). A SQLAlchemy,
    asyncpg or ADBC error becomes ``translate_db_error(exc, table=table, doing=doing,
    connection=connection)``, raised ``from`` it. When the connection was lost, ``connection``
    is invalidated first, so it never goes back to the pool and the caller's ``rollback()`` and
    ``close()`` cannot fail; a ``ConnectionLostError`` from an inner boundary is handled the
    same way (and gains the server's address). Other exceptions pass through untouched, except
    those of the types in ``also`` (e.g. ``OSError`` for code on the driver's socket), which are
    translated like the driver's.
    """

    def __init__(
        self,
        doing: str,
        *,
        table: Any = None,
        connection: Any = None,
        also: tuple[type[Exception], ...] = (),
    ) -> None:
        self.doing = doing
        self.table = table
        self.connection = connection
        self.also = also

    def _error(self, exc: BaseException) -> BlogdataError | None:
        """Return the error to raise instead of ``exc`` (``exc`` itself to re-raise), or None."""
        if isinstance(exc, ConnectionLostError):
            return _located(exc, _where(self.connection))
        if not isinstance(exc, Exception):
            return None
        if not (_is_driver_error(exc) or isinstance(exc, self.also)):
            return None
        return translate_db_error(
            exc, table=self.table, doing=self.doing, connection=self.connection
        )

    def _raise(self, exc: BaseException, error: BlogdataError) -> None:
        if error is exc:
            return  # re-raised as it is by the with statement
        raise error from (exc.__cause__ if isinstance(exc, ConnectionLostError) else exc)

    async def __aenter__(self) -> None:
        """Enter the block."""

    async def __aexit__(self, typ: object, exc: BaseException | None, tb: object) -> None:
        """Translate ``exc``; invalidate the connection first if it was lost."""
        error = None if exc is None else self._error(exc)
        if exc is None or error is None:
            return
        if isinstance(error, ConnectionLostError):
            await invalidate_connection(self.connection)
        self._raise(exc, error)

    def __enter__(self) -> None:
        """Enter the block (sync code)."""

    def __exit__(self, typ: object, exc: BaseException | None, tb: object) -> None:
        """Translate ``exc``; invalidate a sync connection first if it was lost."""
        error = None if exc is None else self._error(exc)
        if exc is None or error is None:
            return
        if isinstance(error, ConnectionLostError):
            _invalidate_sync(self.connection)
        self._raise(exc, error)
