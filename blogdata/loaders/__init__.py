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

Routes, tried in this order by ``route="auto"``; each is used only where it provably gives the
driver's answer, and the one taken is ``frame.attrs["blogdata.route"]`` (and a DEBUG line on the
``blogdata.loaders`` logger):

- ``"adbc"``: ADBC's binary COPY on a separate pooled connection, in a worker thread, importing
  the session's snapshot. Only when the session has no writes in its transaction, no temporary
  tables, the same role and the same settings that shape results (a fingerprint of ``pg_settings``
  compared with the ADBC connection's), every column has a type ADBC maps exactly, and every
  bound value has a literal form; ``"auto"`` takes it only for results the planner expects to be
  large (8 MB or more), where it is fastest. Any failure there falls back: the read is read-only.
- ``"copy"``: ``COPY (query) TO STDOUT (FORMAT csv)`` on the session's own connection (so it
  sees the session's uncommitted writes), parsed by pyarrow in a thread while it streams. Only
  when the values have literal forms, ``standard_conforming_strings`` is on, dates and times are
  written in ISO DateStyle, floats are written exactly (``extra_float_digits >= 1``), and every
  column has a type of the table above.
- ``"rows"``: the driver's own records, converted column by column. Always available.

Bound values are never spliced into SQL text: the literal statement COPY needs is rendered by
SQLAlchemy's compiler where each placeholder stands, and checked against the bound one (see
``_statement``). Loads on the session's connection run inside a SAVEPOINT, so a failed or
interrupted load leaves the caller's transaction and earlier work usable; a cancelled load (task
cancel, ``wait_for`` timeout, Jupyter's interrupt) stops the server's work and never hands back a
connection in the middle of a COPY.
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
import pyarrow.compute as pc  # type: ignore[import-untyped]
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from blogdata._checks import check_count
from blogdata.errors import (
    BlogdataError,
    InvalidInputError,
    QueryError,
    invalidate_connection,
    translating,
)
from blogdata.loaders._adbc import SESSION_FINGERPRINT, AdbcRead, close_idle_connections
from blogdata.loaders._copy import copy_batches, copy_to_table
from blogdata.loaders._dtypes import (
    ADBC_KINDS,
    ADBC_TYPE_NAMES,
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

__all__ = [
    "APPLICATION_NAME",
    "ROUTE_ATTR",
    "DtypeBackend",
    "Route",
    "RouteUnavailableError",
    "Statement",
    "close_idle_connections",
    "load_frame",
    "stream_frames",
]

DtypeBackend = Literal["numpy_nullable", "pyarrow"]
#: ``"auto"`` picks the fastest route that gives the driver's answer; the others force one.
Route = Literal["auto", "adbc", "copy", "rows"]
#: The key in ``DataFrame.attrs`` naming the route that produced the frame.
ROUTE_ATTR = "blogdata.route"
#: How the ADBC route's separate connections show in pg_stat_activity.
APPLICATION_NAME = "blogdata-loaders"

_BACKENDS = ("numpy_nullable", "pyarrow")
_ROUTES = ("auto", "adbc", "copy", "rows")
_SAVEPOINT = "blogdata_load"
_RECOVERY_SECONDS = 3.0

logger = logging.getLogger("blogdata.loaders")
#: The driver's errors for "this connection is busy or gone" (not SQL errors).
_BUSY = (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError)
#: Every error of the driver's own (``asyncpg.DataError`` is a ValueError too).
_DRIVER = (asyncpg.PostgresError, OSError, *_BUSY)
T = TypeVar("T")


class RouteUnavailableError(InvalidInputError):
    """A forced route cannot give the driver's answer for this statement on this session."""


def _check(dtype_backend: str, route: str) -> None:
    if dtype_backend not in _BACKENDS:
        raise InvalidInputError(
            f"dtype_backend must be 'numpy_nullable' or 'pyarrow', not {dtype_backend!r}"
        )
    if route not in _ROUTES:
        raise InvalidInputError(f"route must be one of {', '.join(_ROUTES)}, not {route!r}")


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
    """What the session's connection says about itself, for choosing a route."""

    in_transaction: bool
    wrote: bool
    isolation: str
    temp_tables: bool
    exact_literals: bool
    iso_dates: bool
    exact_floats: bool


_STATE_SQL = """
SELECT txid_current_if_assigned() IS NOT NULL,
       current_setting('transaction_isolation'),
       EXISTS (SELECT FROM pg_catalog.pg_class WHERE relnamespace = pg_my_temp_schema()),
       current_setting('standard_conforming_strings') = 'on',
       current_setting('DateStyle') LIKE 'ISO%',
       current_setting('extra_float_digits')::int >= 1
"""


async def _state(driver: Any) -> _State:
    row = await driver.fetchrow(_STATE_SQL)
    return _State(driver.is_in_transaction(), *row)


@dataclass
class _Plan:
    """A described statement, and why each route can or cannot give the driver's answer."""

    query: CompiledQuery
    prepared: Any
    columns: list[ResultColumn]
    literal_sql: str | None
    why_not: dict[str, str]


def _kind_problem(columns: Sequence[ResultColumn], kinds: frozenset[str]) -> str | None:
    for column in columns:
        if column.kind not in kinds:
            return f"column {column.name!r} has a type it does not map exactly"
    return None


async def _describe(guard: _Guard, query: CompiledQuery, backend: str, state: _State) -> _Plan:
    """Prepare the bound statement (and its literal twin) and rule out the routes that differ."""
    driver = guard.driver
    async with guard.savepoint():
        prepared = await driver.prepare(query.sql)
    attributes = prepared.get_attributes()
    dialect: Any = guard.conn.dialect
    loads = dialect._json_deserializer or json.loads
    columns = describe(query.labels, query.numeric_scales, attributes, backend, loads)
    literal = query.literal_sql if state.exact_literals else None
    if literal is not None and literal != query.sql:
        literal = await _checked_literal(guard, literal, attributes)
    why_not: dict[str, str] = {}
    shared = None
    if not columns:
        shared = "the result has no columns"
    elif query.literal_sql is None:
        shared = "a bound value has no literal form that is provably the driver's"
    elif not state.exact_literals:
        shared = "standard_conforming_strings is off"
    elif literal is None:
        shared = "the statement with literal values does not describe the same columns"
    copy_problem = shared or _kind_problem(columns, COPY_KINDS)
    kinds = {c.kind for c in columns}
    if copy_problem is None and not state.iso_dates and kinds & TEMPORAL_KINDS:
        copy_problem = "DateStyle is not ISO, and the result has dates or times"
    if copy_problem is None and not state.exact_floats and kinds & FLOAT_KINDS:
        copy_problem = "extra_float_digits < 1 would round the floats"
    if copy_problem:
        why_not["copy"] = copy_problem
    adbc_problem = shared or _kind_problem(columns, ADBC_KINDS)
    if adbc_problem is None and state.wrote:
        adbc_problem = "the session has written in its transaction, unseen by other connections"
    if adbc_problem is None and state.temp_tables:
        adbc_problem = "the session has temporary tables, which another connection cannot see"
    if adbc_problem is None and _needs_snapshot(state) and guard.conn.in_nested_transaction():
        adbc_problem = "a snapshot cannot be shared from inside a savepoint"
    if adbc_problem:
        why_not["adbc"] = adbc_problem
    return _Plan(query, prepared, columns, literal, why_not)


#: Results the planner expects to be smaller than this read faster on the session's connection
#: than through a thread and a second connection. Either route gives the same frame.
_ADBC_MIN_BYTES = 8 << 20


async def _small(guard: _Guard, plan: _Plan) -> bool:
    """Whether the planner expects a result too small for the ADBC route to pay off."""
    async with guard.savepoint():
        # SQLAlchemy's json codec decodes EXPLAIN's json column already (asyncpg's explain()
        # would json.loads it a second time): ask for it directly.
        explained = await guard.driver.fetchval(
            "EXPLAIN (FORMAT JSON) " + plan.query.sql, *plan.query.args
        )
    if isinstance(explained, str | bytes):
        explained = json.loads(explained)
    top = explained[0]["Plan"]
    return float(top["Plan Rows"]) * float(top["Plan Width"]) < _ADBC_MIN_BYTES


async def _checked_literal(guard: _Guard, literal: str, attributes: Sequence[Any]) -> str | None:
    """Return ``literal`` if it prepares as one statement with the same column types, else None."""
    try:
        async with guard.savepoint():
            twin = await guard.driver.prepare(literal)
    except BlogdataError:
        return None
    same = [a.type.oid for a in twin.get_attributes()] == [a.type.oid for a in attributes]
    return literal if same else None


def _needs_snapshot(state: _State) -> bool:
    return state.in_transaction and state.isolation in ("repeatable read", "serializable")


def _choose(requested: str, plan: _Plan, stream: bool) -> str:
    if stream and requested == "adbc":
        raise RouteUnavailableError(
            "route 'adbc' cannot stream: stream_frames reads on the session's own connection"
        )
    candidates = ["copy", "rows"] if stream else ["adbc", "copy", "rows"]
    if requested != "auto":
        if requested in plan.why_not:
            raise RouteUnavailableError(
                f"route {requested!r} cannot give the driver's answer here: "
                f"{plan.why_not[requested]}; use route='auto'"
            )
        return requested
    return next(r for r in candidates if r not in plan.why_not)


#: URL query keys libpq understands (asyncpg-only ones, e.g. prepared_statement_cache_size, go).
_LIBPQ_KEYS = frozenset(
    {"host", "port", "sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "options"}
)


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


_MIN_US = -62135596800000000  # datetime.min, in microseconds since 1970
_MAX_US = 253402300799999999  # datetime.max


def _adbc_frame(
    table: pa.Table, columns: Sequence[ResultColumn], backend: str
) -> pd.DataFrame | None:
    """Check ADBC's table against the description and convert it; None if anything differs."""
    if table.num_columns != len(columns):
        return None
    for i, column in enumerate(columns):
        metadata = table.schema.field(i).metadata or {}
        name = metadata.get(b"POSTGRESQL:type", b"").decode()
        if name not in ADBC_TYPE_NAMES.get(column.kind, ()):
            return None
        if column.kind in ("timestamptz", "timestamp") and table.num_rows:
            # ADBC wraps ±infinity (and years past 9999) around: read those on another route.
            bounds = pc.min_max(table.column(i).cast(pa.int64()))
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            if low is not None and (low < _MIN_US or high > _MAX_US):
                return None
    frame: pd.DataFrame = _frame_from_table(table, columns, backend)
    return frame


async def _export_snapshot(driver: Any, state: _State) -> tuple[str | None, str]:
    if not _needs_snapshot(state):
        return None, "REPEATABLE READ"
    snapshot = str(await driver.fetchval("SELECT pg_export_snapshot()"))
    if not snapshot.replace("-", "").isalnum():  # ids look like 00000003-0000001B-1
        raise InvalidInputError(f"unexpected snapshot id {snapshot!r} from pg_export_snapshot()")
    return snapshot, state.isolation.upper()


async def _load_adbc(
    guard: _Guard, plan: _Plan, state: _State, backend: str
) -> pd.DataFrame | None:
    """Read on a separate connection; None if it cannot give the session's answer."""
    assert plan.literal_sql is not None
    fingerprint = str(await guard.read(guard.driver.fetchval(SESSION_FINGERPRINT)))
    snapshot, isolation = await guard.read(_export_snapshot(guard.driver, state))
    uri = _libpq_uri(guard.conn.engine.url)
    read = AdbcRead(uri, plan.literal_sql, snapshot, isolation, fingerprint)

    def work() -> pd.DataFrame | None:
        table = read.run()
        return None if table is None else _adbc_frame(table, plan.columns, backend)

    future = asyncio.get_running_loop().run_in_executor(None, work)
    try:
        return await asyncio.shield(future)
    except BaseException:
        read.cancel()  # the server stops the COPY; the thread then ends on its own
        await _finally(asyncio.wait([future], timeout=_RECOVERY_SECONDS))
        raise


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


async def _prepare(
    db: AsyncSession | AsyncConnection, stmt: Statement, backend: str, route: str
) -> tuple[_Guard, _State, _Plan]:
    """Check the arguments, compile and describe ``stmt``: what every load starts with."""
    _check(backend, route)
    conn, driver = await _driver(db)
    query = compile_statement(stmt, conn.dialect)
    guard = _Guard(conn, driver)
    state = await guard.read(_state(driver))
    return guard, state, await _describe(guard, query, backend, state)


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
    """Run ``stmt`` and return exactly what the driver returns, as a DataFrame.

    The load sees what ``session.execute(stmt)`` would see on this session: its uncommitted
    (and, with autoflush, pending) writes, its role, settings and snapshot. Dtypes follow the
    table in this module's docstring; the route taken is ``frame.attrs["blogdata.route"]``.

    Args:
        db: the session or connection to read through.
        stmt: a ``select(...)`` (Core or ORM entities), ``text(...)``, a ``Table`` or a mapped
            class (meaning all its columns).
        dtype_backend: ``"numpy_nullable"`` (pandas extension dtypes) or ``"pyarrow"``
            (``pd.ArrowDtype`` columns).
        route: ``"auto"`` (the fastest route that gives the driver's answer), or ``"adbc"``,
            ``"copy"`` or ``"rows"`` to force one (for tests and benchmarks).

    Raises:
        InvalidInputError: ``stmt`` is not a statement, or an argument is unknown.
        RouteUnavailableError: the forced route cannot give the driver's answer here.
        QueryError: PostgreSQL rejected the query (its message and SQLSTATE are kept), or a
            value is outside its column's dtype.
    """
    guard, state, plan = await _prepare(db, stmt, dtype_backend, route)
    driver = guard.driver
    if route == "auto" and "adbc" not in plan.why_not and await _small(guard, plan):
        plan.why_not["adbc"] = "the planner expects a small result, read faster on the session"
    chosen = _choose(route, plan, stream=False)
    if chosen == "adbc":
        frame = await _load_adbc(guard, plan, state, dtype_backend)
        if frame is not None:
            logger.debug("load_frame: route adbc")
            return _tag(frame, "adbc")
        if route == "adbc":
            raise RouteUnavailableError(
                "route 'adbc' cannot give the driver's answer here: the separate connection's "
                "role or settings differ from the session's, or it could not read the result; "
                "use route='auto'"
            )
        chosen = "copy" if "copy" not in plan.why_not else "rows"
    logger.debug("load_frame: route %s (not %s)", chosen, plan.why_not or "-")
    async with guard.savepoint():
        if chosen == "copy":
            assert plan.literal_sql is not None
            table = await copy_to_table(driver, plan.literal_sql, [c.wire for c in plan.columns])
        else:
            records = await plan.prepared.fetch(*plan.query.args)
    if chosen == "copy":
        box = [table]
        del table
        return _tag(_frame_from_table(box.pop(), plan.columns, dtype_backend), "copy")
    return _tag(_frame_from_records(records, plan.columns, dtype_backend), "rows")


_BATCH = 10_000


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
    chunk and a few parse blocks. The rows stream as COPY on the session's own connection
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
    guard, _, plan = await _prepare(db, stmt, dtype_backend, route)
    driver = guard.driver
    chosen = _choose(route, plan, stream=True)
    logger.debug("stream_frames: route %s", chosen)
    if chosen == "rows" and not driver.is_in_transaction():
        raise InvalidInputError(
            "stream_frames reads through a server-side cursor here, which lives in a "
            "transaction; use an AsyncSession, or a connection inside `async with conn.begin():`"
        )
    async with guard.savepoint():
        if chosen == "copy":
            assert plan.literal_sql is not None
            wires = [c.wire for c in plan.columns]
            pending: list[pa.RecordBatch] = []
            rows = 0
            async for batch in copy_batches(driver, plan.literal_sql, wires):
                pending.append(batch)
                rows += batch.num_rows
                while rows >= chunk_size:
                    table = pa.Table.from_batches(pending)
                    head, rest = table.slice(0, chunk_size), table.slice(chunk_size)
                    pending, rows = rest.to_batches(), rest.num_rows
                    yield _tag(_frame_from_table(head, plan.columns, dtype_backend), "copy")
            if rows:
                table = pa.Table.from_batches(pending, schema=pending[0].schema)
                yield _tag(_frame_from_table(table, plan.columns, dtype_backend), "copy")
        else:
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
                    yield _tag(_frame_from_records(records, plan.columns, dtype_backend), "rows")
