"""Turn any SQLAlchemy statement into a pandas DataFrame: every row and value the driver returns.

One function, :func:`load_frame`, and its streaming twin, :func:`stream_frames`. The driver is
the oracle: whatever route a load takes, the frame holds exactly what ``session.execute(stmt)``
returns on the same session, with the dtypes below, which come from the result's column types
as PostgreSQL describes them (never from the data), so an empty result or an all-NULL column has
the same dtypes as a full one.

==========================  ===============================  ==================================
PostgreSQL type             ``numpy_nullable`` (default)     ``pyarrow``
==========================  ===============================  ==================================
smallint, integer, bigint,  ``Int64``                        ``int64[pyarrow]``
oid
real / double precision     ``Float32`` / ``Float64``: NaN   ``float[pyarrow]`` /
                            stays NaN, NULL is NA            ``double[pyarrow]``
boolean                     ``boolean``                      ``bool[pyarrow]``
text, varchar, char, name   ``string`` (NA for NULL)         ``string[pyarrow]``
timestamptz                 ``datetime64[us, UTC]``          ``timestamp[us, tz=UTC][pyarrow]``
timestamp                   ``datetime64[us]``               ``timestamp[us][pyarrow]``
date                        ``object`` (datetime.date)       ``date32[day][pyarrow]``
numeric                     ``object`` (decimal.Decimal;     ``decimal128(38, s)`` for a table
                            NaN and ±Infinity included)      column declared ``Numeric(p, s)``,
                                                             else ``object`` (Decimal)
json, jsonb                 ``object`` (str: the JSON text   ``object`` (the same)
                            as the driver gives it; JSON
                            ``null`` is ``'null'``, SQL
                            NULL is None)
anything else (enums,       ``object``: exactly asyncpg's    ``object`` (the same)
uuid, inet, interval, time, Python values
timetz, bytea, arrays, ...)
==========================  ===============================  ==================================

Where a value is outside what a dtype holds, the result follows the driver or is an error:
±infinity timestamps and dates arrive as asyncpg gives them (``datetime.max``/``datetime.min``,
``date.max``/``date.min``); a date before year 1 (which asyncpg cannot return either) and a NaN,
Infinity or over-long value in a ``decimal128`` column raise :class:`QueryError` naming the
column. Columns keep the statement's labels and order (``Select.selected_columns`` keys, or the
names PostgreSQL gives a ``text()`` query's columns).

Every load runs on the caller's own connection, as ``session.execute(stmt)`` would: inside
its transaction and snapshot, under its role and row-level security, with its settings (custom
ones such as ``app.tenant_id`` and ``SET LOCAL`` ones included), temporary tables, locks and
uncommitted (and, with autoflush, pending) writes, and as part of its SERIALIZABLE transaction.
What the statement does (``set_config``, advisory locks, ``nextval``) happens to the session.
There is no second connection. Two routes carry the rows; the one taken is
``frame.attrs["blogdata.route"]`` (and a DEBUG line on the ``blogdata.loaders`` logger):

- ``"copy"``: ``COPY (query) TO STDOUT (FORMAT csv)``, parsed by pyarrow in a thread while it
  streams. ``"auto"`` takes it where it provably gives the driver's answer: the values have
  literal forms, ``standard_conforming_strings`` is on, ``client_encoding`` is UTF8, dates and
  times are written in ISO DateStyle, floats are written exactly (``extra_float_digits >= 1``),
  and every column has a type of the table above.
- ``"rows"``: the driver's own records, converted column by column. Always available.

A statement COPY cannot wrap (``SHOW``, ``EXPLAIN [ANALYZE]``, ``EXECUTE name``, a trailing
``;``) is refused by PostgreSQL's parser before anything runs (SQLSTATE 42601, located in the
COPY text); ``"auto"`` then reads it on ``"rows"``. That is the only fallback: once a
statement has started executing, its error is the caller's, so a failing statement never runs
twice.

Bound values are never spliced into SQL text: the literal statement COPY needs is rendered by
SQLAlchemy's compiler where each placeholder stands, and checked against the bound one (see
``_statement``). Loads run inside a SAVEPOINT (when the connection is in a transaction), so a
failed or interrupted load leaves the caller's transaction and earlier work usable; a cancelled
load (task cancel, ``wait_for`` timeout, Jupyter's interrupt) stops the server's work and never
hands back a connection in the middle of a COPY.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import asyncpg
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from blogdata._checks import check_count
from blogdata.errors import BlogdataError, InvalidInputError, QueryError, RouteUnavailableError
from blogdata.loaders._copy import CopyRefused, copy_batches, copy_to_table
from blogdata.loaders._dtypes import (
    COPY_KINDS,
    FLOAT_KINDS,
    TEMPORAL_KINDS,
    ResultColumn,
    assemble,
    describe,
    finish,
    records_to_columns,
)
from blogdata.loaders._statement import CompiledQuery, Statement, compile_statement
from blogdata.translate import invalidate_connection, translating

__all__ = [
    "ROUTE_ATTR",
    "DtypeBackend",
    "Route",
    "Statement",
    "load_frame",
    "stream_frames",
]

DtypeBackend = Literal["numpy_nullable", "pyarrow"]
#: ``"auto"`` picks COPY where it gives the driver's answer, else rows; the others force one.
Route = Literal["auto", "copy", "rows"]
#: The key in ``DataFrame.attrs`` naming the route that produced the frame.
ROUTE_ATTR = "blogdata.route"

_BACKENDS = ("numpy_nullable", "pyarrow")
_ROUTES = ("auto", "copy", "rows")
_SAVEPOINT = "blogdata_load"
_RECOVERY_SECONDS = 3.0

logger = logging.getLogger("blogdata.loaders")
#: The driver's errors for "this connection is busy or gone" (not SQL errors).
_BUSY = (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError)
#: Every error of the driver's own (``asyncpg.DataError`` is a ValueError too).
_DRIVER = (asyncpg.PostgresError, OSError, *_BUSY)
T = TypeVar("T")


def _check(dtype_backend: str, route: str) -> None:
    if dtype_backend not in _BACKENDS:
        raise InvalidInputError(
            f"dtype_backend must be 'numpy_nullable' or 'pyarrow', not {dtype_backend!r}"
        )
    if route not in _ROUTES:
        raise InvalidInputError(
            f"route must be one of {', '.join(repr(r) for r in _ROUTES)}, not {route!r}"
        )


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


async def _finally(work: Awaitable[T]) -> T:
    """Await ``work`` to its end even if this task is cancelled meanwhile (then re-cancel)."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


class _Guard:
    """The session connection's safety net: savepoints, recovery after interrupts, errors."""

    def __init__(self, conn: AsyncConnection, driver: Any) -> None:
        self.conn = conn
        self.driver = driver

    def _translating(self) -> translating:
        # OSError too: these calls talk to the driver's socket themselves.
        return translating("the query", connection=self.conn, also=(OSError,))

    async def read(self, work: Awaitable[T]) -> T:
        """Await a driver call outside a savepoint, translating its errors."""
        async with self._translating():
            return await work

    async def _recover(self, savepoint: bool) -> None:
        """Bring the connection back to where the load began, or invalidate it."""
        sql = (
            f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}; RELEASE SAVEPOINT {_SAVEPOINT}"
            if savepoint
            else "SELECT 1"
        )
        deadline = asyncio.get_running_loop().time() + _RECOVERY_SECONDS
        while True:
            try:
                await asyncio.wait_for(self.driver.execute(sql), _RECOVERY_SECONDS)
                return
            except _BUSY:
                # The cancelled COPY has not finished unwinding: asyncpg sent the server a
                # cancel request; wait for its answer (unless the connection is gone).
                alive = not self.driver.is_closed()
                if alive and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.01)
                    continue
            except (asyncpg.PostgresError, OSError, TimeoutError):
                pass
            break
        # State unknown: never let the pool hand this connection out again.
        await invalidate_connection(self.conn)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Run the block in a SAVEPOINT (if in a transaction); undo just it on any failure."""
        inside = self.driver.is_in_transaction()
        async with self._translating():  # after the recovery below, which it may invalidate
            try:
                if inside:
                    await self.driver.execute(f"SAVEPOINT {_SAVEPOINT}")
                yield
                if inside:
                    await self.driver.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            except BaseException as exc:
                if not self.conn.invalidated:
                    await _finally(self._recover(inside))
                if isinstance(exc, ValueError | OverflowError) and not isinstance(
                    exc, (BlogdataError, *_DRIVER)
                ):
                    # The driver could not turn a value into Python (a date before year 1 ...).
                    raise QueryError(
                        f"a value in the result has no Python form ({exc}); filter it out or "
                        "cast it to text in the query"
                    ) from exc
                raise


@dataclass(frozen=True)
class _State:
    """The session settings that decide whether COPY's text is exactly the driver's values."""

    exact_literals: bool
    utf8: bool
    iso_dates: bool
    exact_floats: bool


_STATE_SQL = """
SELECT current_setting('standard_conforming_strings') = 'on',
       current_setting('client_encoding') = 'UTF8',
       current_setting('DateStyle') LIKE 'ISO%',
       current_setting('extra_float_digits')::int >= 1
"""


@dataclass
class _Plan:
    """A described statement, and why COPY cannot give the driver's answer (None: it can)."""

    query: CompiledQuery
    prepared: Any
    columns: list[ResultColumn]
    literal_sql: str | None
    copy_problem: str | None


def _copy_problem(
    query: CompiledQuery, columns: Sequence[ResultColumn], literal: str | None, state: _State
) -> str | None:
    """Why COPY's CSV would not be exactly the driver's answer here; None if it would be."""
    if not columns:
        return "the result has no columns"
    if query.literal_sql is None:
        return "a bound value has no literal form that is provably the driver's"
    if not state.exact_literals:
        return "standard_conforming_strings is off"
    if not state.utf8:
        # asyncpg sends SQL text as UTF-8 but values in client_encoding: COPY's would differ.
        return "client_encoding is not UTF8"
    if literal is None:
        return "the statement with literal values does not describe the same columns"
    for column in columns:
        if column.kind not in COPY_KINDS:
            return f"column {column.name!r} has a type COPY's text does not map exactly"
    kinds = {c.kind for c in columns}
    if not state.iso_dates and kinds & TEMPORAL_KINDS:
        return "DateStyle is not ISO, and the result has dates or times"
    if not state.exact_floats and kinds & FLOAT_KINDS:
        return "extra_float_digits < 1 would round the floats"
    return None


async def _checked_literal(guard: _Guard, literal: str, attributes: Sequence[Any]) -> str | None:
    """Return ``literal`` if it prepares as one statement with the same column types, else None."""
    try:
        async with guard.savepoint():
            twin = await guard.driver.prepare(literal)
    except BlogdataError:
        return None
    same = [a.type.oid for a in twin.get_attributes()] == [a.type.oid for a in attributes]
    return literal if same else None


async def _prepare(
    db: AsyncSession | AsyncConnection, stmt: Statement, backend: str, route: str
) -> tuple[_Guard, _Plan]:
    """Check the arguments, compile, prepare and describe ``stmt`` (nothing of it runs yet)."""
    _check(backend, route)
    conn, driver = await _driver(db)
    query = compile_statement(stmt, conn.dialect)
    guard = _Guard(conn, driver)
    row = await guard.read(driver.fetchrow(_STATE_SQL))
    state = _State(*row)
    async with guard.savepoint():
        prepared = await driver.prepare(query.sql)
    attributes = prepared.get_attributes()
    dialect: Any = conn.dialect
    loads = dialect._json_deserializer or json.loads
    columns = describe(query.labels, query.numeric_scales, attributes, backend, loads)
    literal = query.literal_sql if state.exact_literals and state.utf8 else None
    if literal is not None and literal != query.sql:
        literal = await _checked_literal(guard, literal, attributes)
    problem = _copy_problem(query, columns, literal, state)
    return guard, _Plan(query, prepared, columns, literal, problem)


def _choose(requested: str, plan: _Plan) -> str:
    if requested == "copy" and plan.copy_problem is not None:
        raise RouteUnavailableError(
            f"route 'copy' cannot give the driver's answer here: {plan.copy_problem}; "
            "use route='auto'"
        )
    if requested == "auto":
        return "rows" if plan.copy_problem is not None else "copy"
    return requested


def _refused(route: str, refusal: CopyRefused) -> str:
    """Return the route after PostgreSQL refused the COPY wrapper (nothing ran), or refuse."""
    if route == "copy":
        raise RouteUnavailableError(
            f"route 'copy' cannot run this statement: PostgreSQL does not accept it inside "
            f"COPY ({refusal}); nothing ran; use route='auto' (it reads such statements "
            "through the driver's rows)"
        ) from None
    logger.debug("COPY cannot wrap the statement (%s): route rows", refusal)
    return "rows"


def _frame_from_table(table: pa.Table, columns: Sequence[ResultColumn], backend: str) -> Any:
    arrays = []
    for column in columns:
        values = table.column(0)
        table = table.remove_column(0)
        arrays.append(finish(column, values, backend))
        del values
    del table
    return assemble(arrays, columns, backend)


def _frame_from_records(
    records: Sequence[Any], columns: Sequence[ResultColumn], backend: str
) -> pd.DataFrame:
    values = records_to_columns(records, columns)
    try:
        arrays = [finish(c, v, backend) for c, v in zip(columns, values, strict=True)]
    except (pa.ArrowInvalid, OverflowError) as exc:
        raise QueryError(f"a value does not fit its column's dtype: {exc}") from None
    frame = assemble(arrays, columns, backend)
    if not columns:
        frame = pd.DataFrame(index=pd.RangeIndex(len(records)))
    return frame


def _tag(frame: pd.DataFrame, route: str) -> pd.DataFrame:
    frame.attrs[ROUTE_ATTR] = route
    return frame


async def load_frame(
    db: AsyncSession | AsyncConnection,
    stmt: Statement,
    *,
    dtype_backend: DtypeBackend = "numpy_nullable",
    route: Route = "auto",
) -> pd.DataFrame:
    """Run ``stmt`` on the session's own connection and return the driver's answer as a frame.

    The load is what ``session.execute(stmt)`` would be on this session: same connection,
    transaction, snapshot, role, settings, temporary tables, locks and uncommitted (and, with
    autoflush, pending) writes, and what the statement does happens to the session. Dtypes
    follow the table in this module's docstring; the route taken is
    ``frame.attrs["blogdata.route"]``.

    Args:
        db: the session or connection to read through.
        stmt: a ``select(...)`` (Core or ORM entities), ``text(...)`` (also ``SHOW``,
            ``EXPLAIN [ANALYZE]``, ``EXECUTE name``), a ``Table`` or a mapped class (meaning
            all its columns).
        dtype_backend: ``"numpy_nullable"`` (pandas extension dtypes) or ``"pyarrow"``
            (``pd.ArrowDtype`` columns).
        route: ``"auto"`` (COPY where it gives the driver's answer, else the driver's rows),
            or ``"copy"`` or ``"rows"`` to force one (for tests and benchmarks).

    Raises:
        InvalidInputError: ``stmt`` is not a statement, or an argument is unknown.
        RouteUnavailableError: the forced route cannot give the driver's answer here.
        QueryError: PostgreSQL rejected the query (its message and SQLSTATE are kept), or a
            value is outside its column's dtype.
    """
    guard, plan = await _prepare(db, stmt, dtype_backend, route)
    chosen = _choose(route, plan)
    logger.debug("load_frame: route %s (copy: %s)", chosen, plan.copy_problem or "possible")
    if chosen == "copy":
        assert plan.literal_sql is not None
        try:
            async with guard.savepoint():
                wires = [c.wire for c in plan.columns]
                box = [await copy_to_table(guard.driver, plan.literal_sql, wires)]
        except CopyRefused as refusal:
            chosen = _refused(route, refusal)
        else:
            return _tag(_frame_from_table(box.pop(), plan.columns, dtype_backend), "copy")
    async with guard.savepoint():
        records = await plan.prepared.fetch(*plan.query.args)
    return _tag(_frame_from_records(records, plan.columns, dtype_backend), "rows")


_BATCH = 10_000


async def _stream_copy(
    guard: _Guard, plan: _Plan, chunk_size: int, backend: str
) -> AsyncIterator[pd.DataFrame]:
    assert plan.literal_sql is not None
    wires = [c.wire for c in plan.columns]
    pending: list[pa.RecordBatch] = []
    rows = 0
    async for batch in copy_batches(guard.driver, plan.literal_sql, wires):
        pending.append(batch)
        rows += batch.num_rows
        while rows >= chunk_size:
            table = pa.Table.from_batches(pending)
            head, rest = table.slice(0, chunk_size), table.slice(chunk_size)
            pending, rows = rest.to_batches(), rest.num_rows
            yield _tag(_frame_from_table(head, plan.columns, backend), "copy")
    if rows:
        table = pa.Table.from_batches(pending, schema=pending[0].schema)
        yield _tag(_frame_from_table(table, plan.columns, backend), "copy")


async def _stream_rows(plan: _Plan, chunk_size: int, backend: str) -> AsyncIterator[pd.DataFrame]:
    cursor = await plan.prepared.cursor(*plan.query.args)
    done = False
    while not done:
        records: list[Any] = []
        while len(records) < chunk_size:
            want = min(_BATCH, chunk_size - len(records))
            got = await cursor.fetch(want)
            records.extend(got)
            if len(got) < want:
                done = True
                break
        if records:
            yield _tag(_frame_from_records(records, plan.columns, backend), "rows")


async def stream_frames(
    db: AsyncSession | AsyncConnection,
    stmt: Statement,
    *,
    chunk_size: int = 50_000,
    dtype_backend: DtypeBackend = "numpy_nullable",
    route: Route = "auto",
) -> AsyncIterator[pd.DataFrame]:
    """Yield the result of ``stmt`` as DataFrames of ``chunk_size`` rows (the last may be short).

    Every chunk has the columns and dtypes ``load_frame`` gives, and memory stays bounded by a
    chunk and a few parse blocks. The rows stream on the session's own connection, as COPY
    (``route="copy"``, parsed incrementally by pyarrow) or, where COPY cannot give the driver's
    answer, through a server-side cursor (``route="rows"``). The connection is busy while the
    stream is open: use another session for other queries meanwhile, and close the iterator
    (``contextlib.aclosing``) to stop early. An empty result yields nothing.

    Raises:
        InvalidInputError: ``chunk_size`` is not a positive integer, or ``stmt`` is not a
            statement, or a cursor is needed outside a transaction.
        RouteUnavailableError: the forced route cannot give the driver's answer here.
        QueryError: PostgreSQL rejected the query.
    """
    check_count(chunk_size, "chunk_size", minimum=1)
    guard, plan = await _prepare(db, stmt, dtype_backend, route)
    chosen = _choose(route, plan)
    logger.debug("stream_frames: route %s", chosen)
    if chosen == "copy":
        try:
            async with guard.savepoint():
                async for frame in _stream_copy(guard, plan, chunk_size, dtype_backend):
                    yield frame
        except CopyRefused as refusal:  # raised before the first chunk: nothing ran
            chosen = _refused(route, refusal)
        else:
            return
    if not guard.driver.is_in_transaction():
        raise InvalidInputError(
            "stream_frames reads through a server-side cursor here, which lives in a "
            "transaction; use an AsyncSession, or a connection inside `async with conn.begin():`"
        )
    async with guard.savepoint():
        async for frame in _stream_rows(plan, chunk_size, dtype_backend):
            yield frame
