"""Turn any SQLAlchemy statement into a pandas DataFrame with a fixed dtype contract.

Dtypes come from the result's column types as PostgreSQL describes them (a prepared statement's
attributes), never from the data, so an empty result or an all-NULL column gets the same dtypes
as a full one:

==============================  ===========================  =================================
PostgreSQL type                 ``numpy_nullable`` (default)  ``pyarrow``
==============================  ===========================  =================================
smallint, integer, bigint       ``Int64``                     ``int64[pyarrow]``
real / double precision         ``Float32`` / ``Float64``     ``float[pyarrow]`` / ``double``
boolean                         ``boolean``                   ``bool[pyarrow]``
text, varchar, char, name       ``string`` (pd.NA)            ``string[pyarrow]``
timestamptz                     ``datetime64[us, UTC]``       ``timestamp[us, tz=UTC][pyarrow]``
timestamp                       ``datetime64[us]``            ``timestamp[us][pyarrow]``
date                            ``object`` (datetime.date)    ``date32[day][pyarrow]``
numeric                         ``object`` (decimal.Decimal)  ``decimal128(38, s)`` for a table
                                                              column declared ``Numeric(p, s)``,
                                                              else ``object`` (decimal.Decimal)
anything else (json, uuid, ...) ``object`` (asyncpg values)   ``object`` (asyncpg values)
==============================  ===========================  =================================

Columns are labelled and ordered as in the statement (``Select.selected_columns`` keys, or the
names PostgreSQL gives a ``text()`` query's columns). ``load_frame`` and ``stream_frames`` run
on the caller's own connection, so they see its uncommitted writes;
``load_frame_new_connection`` is the fast path for big results and reads on a separate
connection (see its docstring).
"""

from __future__ import annotations

import asyncio
import decimal
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import adbc_driver_manager as adbc_errors
import asyncpg
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
from asyncpg import utils as asyncpg_utils
from sqlalchemy import Column as TableColumn
from sqlalchemy import Numeric, Select, TableClause, inspect, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.expression import CompoundSelect, TextualSelect

from blogdata._adbc import close_idle_connections, read_arrow
from blogdata._columns import (
    COPYABLE,
    ResultColumn,
    assemble,
    concat,
    describe,
    records_to_arrays,
    records_to_frame,
    table_to_frame,
)
from blogdata._copy import copy_to_arrow
from blogdata.errors import BlogdataError, InvalidInputError, QueryError, translate_db_error

__all__ = [
    "APPLICATION_NAME",
    "DtypeBackend",
    "Statement",
    "load_frame",
    "load_frame_new_connection",
    "close_kept_connections",
    "stream_frames",
]

DtypeBackend = Literal["numpy_nullable", "pyarrow"]

#: What the loaders accept: a Core/ORM select, a ``text()`` query, a table, or a mapped class.
Statement = Select[Any] | CompoundSelect[Any] | TextClause | TextualSelect | TableClause | type

_BACKENDS = ("numpy_nullable", "pyarrow")


@dataclass(frozen=True)
class _Query:
    """A statement compiled for asyncpg: SQL with ``$n`` placeholders and its arguments."""

    sql: str
    args: tuple[Any, ...]
    labels: tuple[str, ...] | None
    numeric_scales: tuple[int | None, ...] | None
    rerunnable: bool


_Selectable = Select[Any] | CompoundSelect[Any] | TextClause | TextualSelect


def _as_selectable(stmt: object) -> _Selectable:
    """Turn what the caller passed into something that compiles to one SELECT."""
    if isinstance(stmt, Select | CompoundSelect | TextClause | TextualSelect):
        return stmt
    if isinstance(stmt, TableClause):
        return select(stmt)
    if isinstance(stmt, type):
        mapper: Any = inspect(stmt, raiseerr=False)
        if mapper is not None:
            return select(stmt)
    raise InvalidInputError(
        f"cannot load a frame from {type(stmt).__name__!s} {stmt!r:.60}; pass a SQLAlchemy "
        "select(...), text(...), a Table or a mapped class"
    )


def _numeric_scale(column: object) -> int | None:
    """Return the declared scale of a table column typed ``Numeric(p, s)``, else None."""
    if isinstance(column, TableColumn) and isinstance(column.type, Numeric):
        scale = column.type.scale
        if scale is not None and column.type.precision is not None and scale >= 0:
            return int(scale)
    return None


def _compile(stmt: object, dialect: Any) -> _Query:
    """Compile ``stmt`` for asyncpg, keeping every value a bound parameter."""
    selectable = _as_selectable(stmt)
    compiled = selectable.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    processors = compiled._bind_processors
    args = []
    for name in compiled.positiontup or []:
        processor: Callable[[Any], Any] | None = processors.get(name)  # type: ignore[assignment]
        args.append(processor(params[name]) if processor is not None else params[name])
    labels: tuple[str, ...] | None = None
    scales: tuple[int | None, ...] | None = None
    rerunnable = True
    if isinstance(selectable, TextClause | TextualSelect):
        # Only a plain query may run twice (COPY first, then row by row if a value won't parse).
        rerunnable = compiled.string.lstrip().split(None, 1)[0].lower() in _READ_ONLY_VERBS
    if not isinstance(selectable, TextClause):
        columns = selectable.selected_columns
        scales = tuple(_numeric_scale(c) for c in columns)
        if not isinstance(selectable, TextualSelect):  # text keeps the names its SQL gives
            labels = tuple(columns.keys())
    return _Query(compiled.string, tuple(args), labels, scales, rerunnable)


_READ_ONLY_VERBS = frozenset({"select", "values", "table"})


async def _driver(db: AsyncSession | AsyncConnection) -> tuple[AsyncConnection, Any]:
    """Return the SQLAlchemy connection and its asyncpg connection, with the transaction begun."""
    if isinstance(db, AsyncSession):
        if db.autoflush:
            await db.flush()  # as session.execute would: pending ORM changes become visible
        conn = await db.connection()
    elif isinstance(db, AsyncConnection):
        conn = db
    else:
        raise InvalidInputError(
            f"expected an AsyncSession or AsyncConnection, got {type(db).__name__}"
        )
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if not isinstance(driver, asyncpg.Connection):
        raise InvalidInputError("the loaders need a postgresql+asyncpg:// connection")
    if conn.in_transaction() and not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens its transaction lazily, on the first statement.
        await conn.exec_driver_sql("SELECT 1")
    return conn, driver


def _query_error(exc: Exception) -> BlogdataError:
    """Translate a driver error into ours, keeping the server's message and SQLSTATE."""
    return translate_db_error(exc, doing="the query")


def _check(stmt: object, dtype_backend: str) -> None:
    if dtype_backend not in _BACKENDS:
        raise InvalidInputError(
            f"dtype_backend must be 'numpy_nullable' or 'pyarrow', not {dtype_backend!r}"
        )
    _as_selectable(stmt)


async def _prepare(driver: Any, query: _Query, backend: str) -> tuple[Any, list[ResultColumn]]:
    try:
        prepared = await driver.prepare(query.sql)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _query_error(exc) from exc
    return prepared, describe(
        query.labels, query.numeric_scales, prepared.get_attributes(), backend
    )


async def load_frame(
    db: AsyncSession | AsyncConnection,
    stmt: Statement,
    *,
    dtype_backend: DtypeBackend = "numpy_nullable",
) -> pd.DataFrame:
    """Run ``stmt`` on the caller's own connection and return the result as a DataFrame.

    The load runs inside the caller's transaction, so it sees the session's uncommitted (and,
    with autoflush, pending) writes. Parameters stay bound parameters. Dtypes follow the table in
    this module's docstring: with ``numpy_nullable`` a ``numeric`` column holds
    ``decimal.Decimal`` objects (exact, dtype ``object``); with ``pyarrow`` a table column
    declared ``Numeric(p, s)`` becomes ``decimal128(38, s)``.

    How: when every column has a type of the table above, the rows travel as
    ``COPY (query) TO STDOUT (FORMAT csv)`` on the same connection and pyarrow parses them in a
    worker thread while they arrive; otherwise (json, arrays, uuid, ...) they are fetched as
    asyncpg records and built into columns.

    Args:
        db: the session or connection to read through.
        stmt: a ``select(...)`` (Core or ORM entities), ``text(...)``, a ``Table`` or a mapped
            class (meaning all its columns).
        dtype_backend: ``"numpy_nullable"`` (pandas extension dtypes) or ``"pyarrow"``
            (``pd.ArrowDtype`` columns).

    Raises:
        InvalidInputError: ``stmt`` is not a statement, or the backend is unknown.
        QueryError: PostgreSQL rejected the query (its message and SQLSTATE are kept).
    """
    _check(stmt, dtype_backend)
    conn, driver = await _driver(db)
    query = _compile(stmt, conn.dialect)
    prepared, columns = await _prepare(driver, query, dtype_backend)
    if columns and query.rerunnable and all(c.kind in COPYABLE for c in columns):
        try:
            box = [await copy_to_arrow(driver, query.sql, query.args, [c.wire for c in columns])]
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _query_error(exc) from exc
        except (pa.ArrowInvalid, decimal.InvalidOperation):
            pass  # a value the CSV route cannot read (e.g. 'infinity'): fetch rows below
        else:
            return table_to_frame(box, columns, dtype_backend)
    try:
        records = await prepared.fetch(*query.args)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _query_error(exc) from exc
    return records_to_frame(records, columns, dtype_backend)


_BATCH = 10_000


async def stream_frames(
    db: AsyncSession | AsyncConnection,
    stmt: Statement,
    *,
    chunk_size: int = 50_000,
    dtype_backend: DtypeBackend = "numpy_nullable",
) -> AsyncIterator[pd.DataFrame]:
    """Yield the result of ``stmt`` as DataFrames of at most ``chunk_size`` rows.

    A server-side cursor on the caller's own connection keeps memory bounded by one chunk, and
    the connection stays usable between chunks; every chunk has the columns and dtypes that
    ``load_frame`` gives. An empty result yields nothing.

    Raises:
        InvalidInputError: ``chunk_size`` is not positive, or ``stmt`` is not a statement.
        QueryError: PostgreSQL rejected the query.
    """
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size <= 0:
        raise InvalidInputError(f"chunk_size must be a positive integer, not {chunk_size!r}")
    _check(stmt, dtype_backend)
    conn, driver = await _driver(db)
    if not driver.is_in_transaction():
        raise InvalidInputError(
            "stream_frames reads through a server-side cursor, which lives in a transaction; "
            "use an AsyncSession, or a connection inside `async with conn.begin():`"
        )
    query = _compile(stmt, conn.dialect)
    prepared, columns = await _prepare(driver, query, dtype_backend)
    try:
        cursor = await prepared.cursor(*query.args)
        done = False
        while not done:
            parts = []
            rows = 0
            while rows < chunk_size:
                # Convert a few thousand records at a time, so few Python objects live at once.
                want = min(_BATCH, chunk_size - rows)
                records = await cursor.fetch(want)
                if records:
                    parts.append(records_to_arrays(records, columns))
                    rows += len(records)
                if len(records) < want:
                    done = True
                    break
                del records
            if rows:
                yield assemble(concat(parts, columns), columns, dtype_backend)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _query_error(exc) from exc


#: URL query keys libpq understands (asyncpg-only ones, e.g. prepared_statement_cache_size, go).
_LIBPQ_KEYS = frozenset(
    {"host", "port", "sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "options"}
)
#: How the separate connections show in pg_stat_activity.
APPLICATION_NAME = "blogdata-loaders"


def _libpq_uri(url: URL) -> str:
    """Turn the engine's SQLAlchemy URL into a libpq URI (a socket folder stays ``?host=``)."""
    query: dict[str, str | tuple[str, ...]] = {
        k: v for k, v in url.query.items() if k in _LIBPQ_KEYS
    }
    ssl = url.query.get("ssl")
    if isinstance(ssl, str) and "sslmode" not in query:
        query["sslmode"] = ssl  # asyncpg's ssl=require is libpq's sslmode=require
    query["application_name"] = APPLICATION_NAME
    plain = url.set(drivername="postgresql", query=query)
    return plain.render_as_string(hide_password=False)


def _check_snapshot_id(value: str) -> str:
    if not value.replace("-", "").isalnum():  # snapshot ids look like 00000003-0000001B-1
        raise QueryError(f"unexpected snapshot id {value!r} from pg_export_snapshot()")
    return value


async def _export_snapshot(conn: AsyncConnection, driver: Any) -> tuple[str | None, str]:
    """Refuse if the caller has writes the new connection cannot see; else export its snapshot."""
    xid, isolation = await driver.fetchrow(
        "SELECT txid_current_if_assigned(), current_setting('transaction_isolation')"
    )
    if xid is not None:
        raise InvalidInputError(
            "load_frame_new_connection reads on a separate connection, which cannot see the "
            "uncommitted writes of this session's open transaction; commit (or roll back) first, "
            "or use load_frame, which reads on the session's own connection"
        )
    if not driver.is_in_transaction():
        return None, "REPEATABLE READ"
    level = "SERIALIZABLE" if isolation == "serializable" else "REPEATABLE READ"
    if conn.in_nested_transaction():
        # A snapshot cannot be exported from inside a savepoint. Under READ COMMITTED each
        # statement takes a fresh snapshot anyway, which is what the new connection gets.
        if isolation == "read committed":
            return None, level
        raise InvalidInputError(
            "load_frame_new_connection cannot share the snapshot of a "
            f"{isolation} transaction from inside a savepoint; use load_frame"
        )
    snapshot = await driver.fetchval("SELECT pg_export_snapshot()")
    return _check_snapshot_id(str(snapshot)), level


async def load_frame_new_connection(
    db: AsyncSession | AsyncConnection,
    stmt: Statement,
    *,
    dtype_backend: DtypeBackend = "numpy_nullable",
) -> pd.DataFrame:
    """Load ``stmt`` through ADBC on a SEPARATE connection (not the session's): the fast path.

    The rows travel as binary COPY decoded by ADBC's PostgreSQL driver in a worker thread, off
    the event loop, and come out with the same dtypes as ``load_frame``. The separate connection
    is kept open between calls (a couple per server, each read in its own transaction). Because
    it is not the session's connection, the call refuses to run when the session has writes
    that connection could not see (an open transaction that has written, or pending ORM
    changes). Otherwise, inside a transaction it imports the session's snapshot
    (``pg_export_snapshot``), so it reads exactly the data the session sees; outside one it
    reads the latest committed data. Bound parameters are inlined by asyncpg's own mechanism
    (each value quoted by the server's ``quote_literal``) so that ADBC can use COPY.

    Raises:
        InvalidInputError: the session has uncommitted writes, ``stmt`` is not a statement, or
            the backend is unknown.
        QueryError: PostgreSQL rejected the query.
    """
    _check(stmt, dtype_backend)
    if isinstance(db, AsyncSession) and (db.new or db.dirty or db.deleted):
        raise InvalidInputError(
            "load_frame_new_connection reads on a separate connection, which cannot see this "
            "session's pending changes; flush and commit them first, or use load_frame"
        )
    conn, driver = await _driver(db)
    query = _compile(stmt, conn.dialect)
    _, columns = await _prepare(driver, query, dtype_backend)
    snapshot, isolation = await _export_snapshot(conn, driver)
    try:
        sql = (
            await asyncpg_utils._mogrify(driver, query.sql, query.args) if query.args else query.sql
        )
        uri = _libpq_uri(conn.engine.url)
        # One worker thread reads and converts: memory freed by the read is reused at once.
        return await asyncio.to_thread(
            _read_frame, uri, sql, snapshot, isolation, columns, dtype_backend
        )
    except (asyncpg.PostgresError, asyncpg.InterfaceError, adbc_errors.Error) as exc:
        raise _query_error(exc) from exc


def _read_frame(
    uri: str,
    sql: str,
    snapshot: str | None,
    isolation: str,
    columns: Sequence[ResultColumn],
    backend: str,
) -> pd.DataFrame:
    box = [read_arrow(uri, sql, snapshot, isolation)]
    return table_to_frame(box, columns, backend)


def close_kept_connections() -> None:
    """Close the idle ADBC connections ``load_frame_new_connection`` keeps (also done at exit)."""
    close_idle_connections()
