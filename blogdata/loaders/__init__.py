"""Turn any SQLAlchemy statement into a pandas DataFrame: every row and value the driver returns.

One function, :func:`load_frame`, its Arrow twin :func:`load_arrow` (the same fetch, a
``pyarrow.Table`` without pandas; its types are the README's Arrow type table), and its
streaming twin, :func:`stream_frames`. Each takes ``max_bytes`` (stop the server's work and raise
``ResultTooLargeError`` once more than that has arrived) and ``progress`` (a bar after a second,
in a notebook or on a terminal; see ``_meter``). The driver is
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
There is no second connection. Three routes carry the rows; the one taken is
``frame.attrs["blogdata.route"]`` (and a DEBUG line on the ``blogdata.loaders`` logger):

- ``"binary"``: ``COPY (query) TO STDOUT (FORMAT binary)``, decoded in-process into Arrow
  buffers as it streams (``_binary``). ``"auto"`` takes it where it provably gives the driver's
  answer: the values have literal forms, ``standard_conforming_strings`` is on,
  ``client_encoding`` is UTF8 (both read from what PostgreSQL reports to the driver, no query),
  and every column has a type the decoder reads (the table above, uuid and bytea too).
- ``"copy"``: the same COPY as CSV, parsed by pyarrow in a thread while it streams; it also
  needs ISO DateStyle and ``extra_float_digits >= 1``, so wherever it applies binary does:
  ``"auto"`` never needs it; it stays for forcing and comparison.
- ``"rows"``: the driver's own records, converted column by column. Always available.

A statement COPY cannot wrap (``SHOW``, ``EXPLAIN [ANALYZE]``, ``EXECUTE name``, a trailing
``;``) is refused by PostgreSQL's parser before anything runs (SQLSTATE 42601, located in the
COPY text); ``"auto"`` then reads it on ``"rows"``. That is the only fallback: once a
statement has started executing, its error is the caller's, so a failing statement never runs
twice.

Bound values are never spliced into SQL text: the literal statement COPY needs is rendered by
SQLAlchemy's compiler where each placeholder stands, and checked against the bound one (see
``_statement``). A load runs inside one SAVEPOINT (when the connection is in a transaction), so a
failed or interrupted load leaves the caller's transaction and earlier work usable; a cancelled
load (task cancel, ``wait_for`` timeout, Jupyter's interrupt) stops the server's work and never
hands back a connection in the middle of a COPY.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import asyncpg
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from blogdata._checks import check_count
from blogdata.errors import InvalidInputError
from blogdata.loaders._binary import binary_batches, binary_to_table, frame_from_binary
from blogdata.loaders._copy import CopyRefused, copy_batches, copy_to_table
from blogdata.loaders._dtypes import arrow_column, arrow_type, frame_from_table, records_to_columns
from blogdata.loaders._guard import Guard
from blogdata.loaders._meter import Meter, check_max_bytes
from blogdata.loaders._route import DtypeBackend, Plan, Route, choose, open_guard, plan, refused
from blogdata.loaders._rows import frame_from_records, stream_records
from blogdata.loaders._statement import Statement

__all__ = [
    "ROUTE_ATTR",
    "DtypeBackend",
    "Route",
    "Statement",
    "load_arrow",
    "load_frame",
    "stream_frames",
]

#: The key in ``DataFrame.attrs`` naming the route that produced the frame (and in a
#: ``load_arrow`` table's schema metadata, as bytes).
ROUTE_ATTR = "blogdata.route"

logger = logging.getLogger("blogdata.loaders")

#: Records fetched per round trip when the rows route must count bytes as they arrive.
_COUNTED_BATCH = 10_000
_FIRST_BATCH = 500


def _tag(frame: pd.DataFrame, route: str) -> pd.DataFrame:
    frame.attrs[ROUTE_ATTR] = route
    return frame


@dataclass
class _Fetched:
    """What a route brought back: a COPY route's wire table, or the driver's records."""

    described: Plan
    route: str
    table: pa.Table | None = None
    records: Sequence[Any] = ()


async def _estimate(guard: Guard, described: Plan) -> int | None:
    """Return the planner's row estimate for the statement (one EXPLAIN), or None."""
    described.stale = True  # the unnamed statement is EXPLAIN's now
    try:
        sql = "EXPLAIN (FORMAT JSON) " + described.query.sql
        explain = await guard.driver.prepare(sql, name="")
        value = await explain.fetchval(*described.query.args)
    except asyncpg.PostgresError:  # SHOW, EXPLAIN itself ...: no estimate, nothing else ran
        await guard.rewind()
        return None
    top = (json.loads(value) if isinstance(value, str) else value)[0]["Plan"]
    return int(top["Plan Rows"])


async def _fetch_rows(guard: Guard, described: Plan, meter: Meter) -> Sequence[Any]:
    """Fetch the records; with a budget, in batches through a cursor, counting as they arrive."""
    prepared = await described.statement(guard.driver)
    args = described.query.args
    if meter.max_bytes is None or not guard.driver.is_in_transaction():
        # Outside a transaction there is no cursor: the budget is checked once all arrived.
        records: list[Any] = await prepared.fetch(*args)
        meter.add_records(records)
        return records
    # A cursor, in batches that start small (a small budget is not overshot by much) and grow.
    cursor = await prepared.cursor(*args)
    out: list[Any] = []
    want = _FIRST_BATCH
    while True:
        chunk = await cursor.fetch(want)
        meter.add_records(chunk)
        out.extend(chunk)
        if len(chunk) < want:
            return out
        want = min(2 * want, _COUNTED_BATCH)


async def _fetch(
    db: AsyncSession | AsyncConnection, stmt: Statement, backend: str, route: str,
    max_bytes: int | None, progress: bool | None, what: str,
) -> _Fetched:  # fmt: skip
    """Plan ``stmt``, choose the route and read it: the one path of load_frame and load_arrow."""
    budget = check_max_bytes(max_bytes)
    guard = await open_guard(db, backend, route)
    meter = Meter(what, max_bytes=budget, progress=progress)
    async with meter, guard.savepoint():  # one SAVEPOINT pair, and only inside a transaction
        described = await plan(guard, stmt, backend, route)
        chosen = choose(route, described)
        logger.debug("%s: route %s (binary: %s)", what, chosen, described.binary_problem or "ok")
        if progress:
            meter.total = await _estimate(guard, described)
        if chosen in ("binary", "copy"):
            sql = described.literal_sql
            assert sql is not None
            try:
                if chosen == "binary":
                    table = await binary_to_table(guard.driver, sql, described.oids, meter=meter)
                else:
                    wires = [c.wire for c in described.columns]
                    table = await copy_to_table(guard.driver, sql, wires, meter=meter)
                return _Fetched(described, chosen, table=table)
            except CopyRefused as refusal:
                chosen = refused(route, refusal)
                await guard.rewind()  # the refused COPY aborted the savepoint; nothing ran
                described.stale = True
        return _Fetched(described, "rows", records=await _fetch_rows(guard, described, meter))


async def load_frame(
    db: AsyncSession | AsyncConnection,
    stmt: Statement,
    *,
    dtype_backend: DtypeBackend = "numpy_nullable",
    route: Route = "auto",
    max_bytes: int | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Run ``stmt`` on the session's own connection and return the driver's answer as a frame.

    The load is what ``session.execute(stmt)`` would be on this session: same connection,
    transaction, snapshot, role, settings, temporary tables, locks and uncommitted (and, with
    autoflush, pending) writes, and what the statement does happens to the session. Dtypes
    follow the table in this module's docstring; the route taken is
    ``frame.attrs["blogdata.route"]``. It reads exactly what :func:`load_arrow` reads, then
    applies the pandas dtype contract.

    Args:
        db: the session or connection to read through.
        stmt: a ``select(...)`` (Core or ORM entities), ``text(...)`` (also ``SHOW``,
            ``EXPLAIN [ANALYZE]``, ``EXECUTE name``), a ``Table`` or a mapped class (meaning
            all its columns).
        dtype_backend: ``"numpy_nullable"`` (pandas extension dtypes) or ``"pyarrow"``
            (``pd.ArrowDtype`` columns).
        route: ``"auto"`` (binary COPY where it gives the driver's answer, else the driver's
            rows), or ``"binary"``, ``"copy"`` or ``"rows"`` to force one (for tests and
            benchmarks).
        max_bytes: stop once more than this many bytes of result have arrived (None: no
            limit); see :func:`load_arrow`.
        progress: None (default) shows a bar of rows and bytes received once the load has run
            a second, in a notebook or on a terminal; True also shows the planner's row
            estimate as the total (one ``EXPLAIN`` first); False never shows one.

    Raises:
        InvalidInputError: ``stmt`` is not a statement, or an argument is unknown.
        RouteUnavailableError: the forced route cannot give the driver's answer here.
        ResultTooLargeError: more than ``max_bytes`` arrived; the server's work was stopped.
        QueryError: PostgreSQL rejected the query (its message and SQLSTATE are kept), or a
            value is outside its column's dtype.
    """
    fetched = await _fetch(db, stmt, dtype_backend, route, max_bytes, progress, "load_frame")
    described, chosen = fetched.described, fetched.route
    if fetched.table is not None:
        return _frame(fetched.table, described, chosen, dtype_backend)
    return _tag(frame_from_records(fetched.records, described.columns, dtype_backend), "rows")


async def load_arrow(
    db: AsyncSession | AsyncConnection,
    stmt: Statement,
    *,
    route: Route = "auto",
    max_bytes: int | None = None,
    progress: bool | None = None,
) -> pa.Table:
    """Run ``stmt`` on the session's own connection and return the driver's answer as Arrow.

    The same load as :func:`load_frame` (the same connection, transaction and state, the same
    routes, one savepoint), without pandas: the binary COPY route's Arrow buffers become the
    table's columns. Column types follow the "Arrow type table" of the README: the types of
    ``load_frame(dtype_backend="pyarrow")`` where it has Arrow types, and for the columns it
    keeps as Python objects: numeric without a declared scale and json/jsonb as PostgreSQL's
    text, uuid as ``pa.uuid()``, bytea as ``binary``, time as ``time64[us]``, interval as
    ``duration[us]``, anything else as the text of the driver's value (``str``). The route taken
    is in the schema's metadata (``table.schema.metadata[b"blogdata.route"]``). A polars frame
    is ``polars.from_arrow(table, rechunk=False)``, which takes the number, boolean and
    timestamp buffers without a copy.

    ``max_bytes`` is counted on the result's bytes as they arrive (a COPY's bytes before they
    are decoded; on the rows route, the records' approximate size, batch by batch through a
    cursor inside a transaction, all at once outside one). Past it the server's work is stopped
    (the COPY cancelled, the cursor closed, the load's savepoint rolled back), nothing is kept,
    and :class:`~blogdata.errors.ResultTooLargeError` says how much arrived and the ways out;
    the session and its transaction stay usable. A table takes about as much memory as the
    bytes received; a pandas frame of it more (Python objects for dates, numerics, json).

    Raises:
        InvalidInputError: ``stmt`` is not a statement, or an argument is unknown.
        RouteUnavailableError: the forced route cannot give the driver's answer here.
        ResultTooLargeError: more than ``max_bytes`` arrived; the server's work was stopped.
        QueryError: PostgreSQL rejected the query, or a value has no Arrow form here.
    """
    fetched = await _fetch(db, stmt, "pyarrow", route, max_bytes, progress, "load_arrow")
    columns = fetched.described.columns
    if fetched.table is not None:
        table = fetched.table
        values: list[Any] = []
        for _ in columns:  # let go of each wire column as it is converted
            values.append(table.column(0))
            table = table.remove_column(0)
        del table
    else:
        values = records_to_columns(fetched.records, columns)
    arrays = []
    for column in columns:
        arrays.append(arrow_column(column, values.pop(0)))
    fields = [pa.field(c.name, arrow_type(c)) for c in columns]
    metadata = {ROUTE_ATTR: fetched.route}
    if not columns:
        return pa.table({}, schema=pa.schema([], metadata=metadata))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))


def _frame(table: pa.Table, described: Plan, route: str, backend: str) -> pd.DataFrame:
    if route == "binary":
        frame = frame_from_binary(table, described.oids, described.columns, backend)
    else:
        frame = frame_from_table(table, described.columns, backend)
    return _tag(frame, route)


async def _stream_copy(
    guard: Guard, described: Plan, route: str, chunk_size: int, backend: str, meter: Meter
) -> AsyncGenerator[pd.DataFrame, None]:
    """Yield ``chunk_size``-row frames from a binary or CSV COPY while it streams."""
    sql = described.literal_sql
    assert sql is not None
    if route == "binary":
        batches = binary_batches(guard.driver, sql, described.oids, meter=meter)
    else:
        batches = copy_batches(guard.driver, sql, [c.wire for c in described.columns], meter=meter)
    pending: list[pa.RecordBatch] = []
    rows = 0
    async with aclosing(batches):
        async for batch in batches:
            pending.append(batch)
            rows += batch.num_rows
            if route != "binary":
                meter.set_rows(meter.rows + batch.num_rows)
            del batch
            while rows >= chunk_size:
                table = pa.Table.from_batches(pending)
                head, rest = table.slice(0, chunk_size), table.slice(chunk_size)
                del table
                pending, rows = rest.to_batches(), rest.num_rows
                del rest
                yield _frame(head, described, route, backend)
                del head
    if rows:
        table = pa.Table.from_batches(pending, schema=pending[0].schema)
        pending.clear()
        yield _frame(table, described, route, backend)


async def stream_frames(
    db: AsyncSession | AsyncConnection,
    stmt: Statement,
    *,
    chunk_size: int = 50_000,
    dtype_backend: DtypeBackend = "numpy_nullable",
    route: Route = "auto",
    max_bytes: int | None = None,
    progress: bool | None = None,
) -> AsyncIterator[pd.DataFrame]:
    """Yield the result of ``stmt`` as DataFrames of ``chunk_size`` rows (the last may be short).

    Every chunk has the columns and dtypes ``load_frame`` gives, and memory stays bounded by a
    chunk and a few parse blocks. The rows stream on the session's own connection, as binary
    COPY (decoded block by block; or ``route="copy"``, CSV parsed incrementally by pyarrow)
    or, where COPY cannot give the driver's answer, through a server-side cursor
    (``route="rows"``). The connection is busy while the stream is open: use another session
    for other queries meanwhile, and close the iterator (``contextlib.aclosing``) to stop early.
    An empty result yields nothing.

    ``max_bytes`` caps the whole stream (the bytes received over all its chunks), not a chunk:
    a chunk's memory is already bounded by ``chunk_size``, so the cap is a guard against a
    statement that reads far more than meant; past it the server's work stops as in
    :func:`load_arrow`, and the chunks already yielded stay the caller's. ``progress`` is as in
    :func:`load_frame`: one bar for the whole stream.

    Raises:
        InvalidInputError: ``chunk_size`` is not a positive integer, or ``stmt`` is not a
            statement, or a cursor is needed outside a transaction.
        RouteUnavailableError: the forced route cannot give the driver's answer here.
        ResultTooLargeError: more than ``max_bytes`` arrived; the server's work was stopped.
        QueryError: PostgreSQL rejected the query.
    """
    check_count(chunk_size, "chunk_size", minimum=1)
    budget = check_max_bytes(max_bytes)
    guard = await open_guard(db, dtype_backend, route)
    meter = Meter("stream_frames", max_bytes=budget, progress=progress, streaming=True)
    async with meter, guard.savepoint():
        described = await plan(guard, stmt, dtype_backend, route)
        chosen = choose(route, described)
        logger.debug("stream_frames: route %s", chosen)
        if progress:
            meter.total = await _estimate(guard, described)
        if chosen in ("binary", "copy"):
            try:
                frames = _stream_copy(guard, described, chosen, chunk_size, dtype_backend, meter)
                async with aclosing(frames):
                    async for frame in frames:
                        yield frame
            except CopyRefused as refusal:  # raised before the first chunk: nothing ran
                chosen = refused(route, refusal)
                await guard.rewind()
                described.stale = True
        if chosen == "rows":
            if not guard.driver.is_in_transaction():
                raise InvalidInputError(
                    "stream_frames reads through a server-side cursor here, which lives in a "
                    "transaction; use an AsyncSession, or a connection inside "
                    "`async with conn.begin():`"
                )
            prepared = await described.statement(guard.driver)
            records = stream_records(prepared, described.query.args, chunk_size)
            async for chunk in records:
                meter.add_records(chunk)
                yield _tag(frame_from_records(chunk, described.columns, dtype_backend), "rows")
