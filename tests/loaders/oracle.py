"""The oracle of the loaders' differential tests, and how a loaded frame is compared with it.

The oracle of a statement is what the driver returns for it: ``await db.execute(stmt)`` on the
SAME session the loader is then given (same transaction, snapshot, role, search_path and
settings), its rows turned into the frame the dtype contract of ``blogdata.loaders`` promises.
The caller declares the PostgreSQL type of every result column (``"int4"``, ``"float8"``,
``"text"``, ``"numeric"``, ``"numeric(10,2)"``...); the oracle never asks the loaders (or the
server's row description) what a column is, so a loader that mis-describes a column fails.

Statements given to the oracle carry no SQLAlchemy result processing of their own (``text()``
queries, untyped ``column()``, or Integer/String/DateTime/Numeric/Float table columns, which
the asyncpg dialect passes through), so ``db.execute`` returns exactly asyncpg's values.

How the expected frame is built (the dtype contract, one builder per declared type):

=========================  ===================================  ==================================
declared type              numpy_nullable                       pyarrow
=========================  ===================================  ==================================
int2, int4, int8, oid      ``Int64``                            ``int64[pyarrow]``
float4 / float8            ``Float32`` / ``Float64``, built      ``float`` / ``double[pyarrow]``
                           from values + mask, so NaN stays
                           NaN and only NULL is NA
bool                       ``boolean``                          ``bool[pyarrow]``
text, varchar, bpchar,     ``string`` (``pd.StringDtype()``)    ``string[pyarrow]``
name
timestamptz                ``datetime64[us, UTC]``              ``timestamp[us, tz=UTC][pyarrow]``
timestamp                  ``datetime64[us]``                   ``timestamp[us][pyarrow]``
date                       ``object`` (``datetime.date``)       ``date32[day][pyarrow]``
numeric                    ``object`` (``Decimal``)             ``object`` (``Decimal``)
numeric(p,s) (a table      ``object`` (``Decimal``)             ``decimal128(38, s)``; a NaN or
column declared so)                                             infinity makes the oracle expect
                                                                ``QueryError``
json, jsonb, enums, and    ``object``: the values              the same
anything else              ``session.execute`` gives, exactly
                           (json decoded by SQLAlchemy's
                           asyncpg codec, so JSON null and SQL
                           NULL are both None; enums as str)
=========================  ===================================  ==================================

Normalisation, the whole of it:

* ±infinity timestamps and dates are what asyncpg gives: ``datetime.max``/``datetime.min`` and
  ``date.max``/``date.min``. asyncpg returns infinity ``timestamptz`` as a NAIVE
  ``datetime.max``; a naive value in a ``timestamptz`` column is read as UTC.
* An aware ``timestamptz`` value is converted to UTC (the column is UTC); nothing else is.
* ``object`` columns are compared through a canonical text of each value: its type's qualified
  name plus its ``repr``, recursively for lists and records (``None`` stays ``None``, so NULL
  positions are compared as NA). So the types must be asyncpg's exactly, ``Decimal('1.0')``
  differs from ``Decimal('1.00')``, ``Decimal('NaN')`` equals ``Decimal('NaN')``, float NaN in an
  array equals NaN, ``-0.0`` differs from ``0.0``, and a ``time``/``datetime`` must carry the
  same UTC offset.
* Float columns are compared by ``assert_frame_equal`` (exact) and, in addition, element by
  element through Arrow: ``None`` (NA) vs ``nan`` vs ``repr(value)``, so NaN is never NA and
  ``-0.0`` is not ``0.0``.
* Everything is then compared with ``pandas.testing.assert_frame_equal(check_exact=True)``,
  dtypes included; labels (duplicates allowed) and order must be the statement's; the index is a
  ``RangeIndex``; ``frame.attrs["blogdata.route"]`` must be the route forced.
* When ``db.execute`` raises (a server error, or a value asyncpg cannot return such as a BC
  date), the oracle is "raises", and a loader must raise ``QueryError``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]  # no stubs
from pandas.testing import assert_frame_equal, assert_series_equal
from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.db import migrate
from blogdata.db.engine import create_database, create_engine, drop_database
from blogdata.errors import BlogdataError, QueryError, RouteUnavailableError
from blogdata.loaders import DtypeBackend, Route, load_arrow, load_frame, stream_frames
from blogdata.models import Post, User

INTS = frozenset({"int2", "int4", "int8", "oid"})
FLOATS = {"float4": (np.float32, pa.float32(), pd.Float32Dtype()),
          "float8": (np.float64, pa.float64(), pd.Float64Dtype())}  # fmt: skip
TEXTS = frozenset({"text", "varchar", "bpchar", "name"})
_SCALED = re.compile(r"numeric\((\d+),\s*(\d+)\)")
ROUTES = ("binary", "copy", "rows")
BACKENDS = ("numpy_nullable", "pyarrow")


@dataclass
class Expected:
    """The oracle's answer: a frame, or the error the driver raised (then loaders must raise)."""

    frame: pd.DataFrame | None
    error: BaseException | None = None
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


class OracleRaises(Exception):
    """The oracle's expectation is an error (the driver raised, or a dtype cannot hold a value)."""


def _tz_utc(value: dt.datetime) -> dt.datetime:
    """A timestamptz value as naive UTC (asyncpg's naive infinity is already UTC)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _arrow_series(values: list[Any], arrow_type: pa.DataType) -> pd.Series:
    return pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([values], type=arrow_type)))


def _timestamps(values: list[Any], *, tz: bool, backend: str) -> pd.Series:
    naive = [None if v is None else (_tz_utc(v) if tz else v) for v in values]
    if backend == "pyarrow":
        arrow = pa.array(naive, type=pa.timestamp("us"))
        if tz:
            arrow = arrow.cast(pa.timestamp("us", tz="UTC"))
        return _arrow_series(arrow, arrow.type)
    data = np.array(
        [np.datetime64("NaT", "us") if v is None else np.datetime64(v, "us") for v in naive],
        dtype="datetime64[us]",
    )
    series = pd.Series(data, dtype="datetime64[us]")
    return series.dt.tz_localize("UTC") if tz else series


def expected_column(values: list[Any], declared: str, backend: str) -> pd.Series:
    """One column of the expected frame: asyncpg's ``values`` under the dtype contract."""
    mask = np.array([v is None for v in values], dtype=bool)
    if declared in INTS:
        if backend == "pyarrow":
            return _arrow_series(values, pa.int64())
        data = np.array([0 if v is None else v for v in values], dtype=np.int64)
        return pd.Series(pd.arrays.IntegerArray(data, mask))
    if declared in FLOATS:
        numpy_type, arrow_type, _ = FLOATS[declared]
        if backend == "pyarrow":
            return _arrow_series(values, arrow_type)
        floats = np.array([0.0 if v is None else v for v in values], dtype=numpy_type)
        return pd.Series(
            pd.arrays.FloatingArray(cast("npt.NDArray[np.floating[Any]]", floats), mask)
        )
    if declared == "bool":
        if backend == "pyarrow":
            return _arrow_series(values, pa.bool_())
        flags: npt.NDArray[np.bool_] = np.array(
            [False if v is None else v for v in values], dtype=bool
        )
        return pd.Series(pd.arrays.BooleanArray(flags, mask))
    if declared in TEXTS:
        if backend == "pyarrow":
            return _arrow_series(values, pa.string())
        return pd.Series(pd.array(values, dtype=pd.StringDtype()))
    if declared in ("timestamptz", "timestamp"):
        return _timestamps(values, tz=declared == "timestamptz", backend=backend)
    if declared == "date" and backend == "pyarrow":
        return _arrow_series(values, pa.date32())
    scaled = _SCALED.fullmatch(declared)
    if scaled and backend == "pyarrow":
        if any(v is not None and not v.is_finite() for v in values):
            raise OracleRaises(f"{declared} cannot hold {values!r:.80} in decimal128")
        return _arrow_series(values, pa.decimal128(38, int(scaled.group(2))))
    series = pd.Series(values, dtype=object)
    return series.where(~mask, None) if len(values) else series


def expected_frame(
    rows: Sequence[Sequence[Any]], labels: Sequence[str], types: Sequence[str], backend: str
) -> pd.DataFrame:
    """The frame the contract gives for asyncpg's ``rows`` with these labels and declared types."""
    assert len(labels) == len(types), f"declared {len(types)} types for columns {list(labels)}"
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in labels]
    built = {
        i: expected_column(list(values), declared, backend)
        for i, (values, declared) in enumerate(zip(columns, types, strict=True))
    }
    frame = pd.DataFrame(built, index=pd.RangeIndex(len(rows)))
    frame.columns = pd.Index(list(labels))
    return frame


async def oracle(db: Any, stmt: Any, types: Sequence[str], backend: str) -> Expected:
    """Run ``stmt`` through ``db.execute`` on the same session and build the expected frame.

    When the driver raises, the result is ``Expected(None, error)`` and the session's
    transaction may be aborted: the caller rolls back (and re-applies its settings).
    """
    try:
        result = await db.execute(stmt)
        labels, rows = list(result.keys()), [tuple(r) for r in result.all()]
    except Exception as exc:  # the driver's answer is an error: loaders must raise too
        return Expected(None, exc)
    try:
        frame = expected_frame(rows, labels, types, backend)
    except OracleRaises as exc:
        return Expected(None, exc, rows, labels)
    return Expected(frame, None, rows, labels)


def canonical(value: Any) -> Any:
    """A comparable text of one object-column value: qualified type name and repr, recursively."""
    if value is None:
        return None
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    if isinstance(value, list | tuple) or type(value).__name__ == "Record":
        return f"{kind}[{', '.join(str(canonical(v)) for v in value)}]"
    if isinstance(value, float) and math.isnan(value):
        return f"{kind}:nan"
    if isinstance(value, Decimal):
        return f"{kind}:{value.as_tuple()}"
    if isinstance(value, dt.datetime | dt.time):
        return f"{kind}:{value!r}@{value.utcoffset()!r}"
    return f"{kind}:{value!r}"


def _canonical_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every object column replaced by the canonical text of its values."""
    out = frame.copy()
    for i in range(frame.shape[1]):
        if frame.dtypes.iloc[i] == np.dtype(object):
            out.isetitem(i, [canonical(v) for v in frame.iloc[:, i]])
    return out


def _float_cells(series: pd.Series) -> list[str | None]:
    """Each cell of a float column as None (NA), 'nan', or repr (so -0.0 stays -0.0)."""
    return [None if v is None else repr(float(v)) for v in pa.array(series.array).to_pylist()]


def assert_same_frame(got: pd.DataFrame, expected: pd.DataFrame, what: str = "") -> None:
    """Assert ``got`` equals the oracle's frame: labels, order, dtypes, every cell exactly.

    Every column is checked and every differing one reported (dtype, or cells through
    ``assert_series_equal``), then the whole frame through ``assert_frame_equal``.
    """
    assert isinstance(got, pd.DataFrame), f"{what}: got {type(got).__name__}, not a DataFrame"
    assert list(got.columns) == list(expected.columns), (
        f"{what}: labels {list(got.columns)} != oracle's {list(expected.columns)}"
    )
    assert len(got) == len(expected), f"{what}: {len(got)} rows, the oracle has {len(expected)}"
    left, right = _canonical_frame(got), _canonical_frame(expected)
    problems = []
    for i, dtype in enumerate(expected.dtypes):
        label = f"column {i} {expected.columns[i]!r}"
        if got.dtypes.iloc[i] != dtype:
            problems.append(f"{label}: dtype {got.dtypes.iloc[i]} != oracle's {dtype}")
            continue
        try:
            assert_series_equal(
                left.iloc[:, i], right.iloc[:, i], check_exact=True, check_index=False, obj=label
            )
        except AssertionError as exc:
            problems.append(" ".join(str(exc).split())[:700])
            continue
        if str(dtype).lower().startswith(("float", "double")):
            cells = zip(
                _float_cells(got.iloc[:, i]), _float_cells(expected.iloc[:, i]), strict=True
            )
            bad = [(r, a, b) for r, (a, b) in enumerate(cells) if a != b]
            if bad:
                problems.append(f"{label}: float cells (row, got, oracle) {bad[:5]}")
    assert not problems, f"{what}: " + "\n".join(problems)
    assert_frame_equal(left, right, check_exact=True, check_dtype=True, obj=what or "DataFrame")
    assert isinstance(got.index, pd.RangeIndex) and got.index.start == 0, (
        f"{what}: index {got.index!r} is not a RangeIndex from 0"
    )


def concat_chunks(chunks: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Join stream chunks column by column (labels may repeat), with a fresh RangeIndex."""
    first = chunks[0]
    columns = {
        i: pd.concat([c.iloc[:, i] for c in chunks], ignore_index=True)
        for i in range(first.shape[1])
    }
    rows = sum(len(c) for c in chunks)
    frame = pd.DataFrame(columns, index=pd.RangeIndex(rows))
    frame.columns = first.columns
    return frame


#: The ways a test reads a statement: each forced route, the default, and streaming.
WAYS = ("binary", "copy", "rows", "auto", "stream-auto", "stream-binary", "stream-copy",
        "stream-rows")  # fmt: skip


async def load(db: Any, stmt: Any, backend: str, way: str, chunk_size: int) -> pd.DataFrame:
    """Read ``stmt`` one ``way``; a stream is checked chunk by chunk and returned concatenated."""
    if not way.startswith("stream-"):
        frame = await load_frame(
            db, stmt, dtype_backend=cast(DtypeBackend, backend), route=cast(Route, way)
        )
        route = frame.attrs.get("blogdata.route")
        want = ROUTES if way == "auto" else (way,)
        assert route in want, f"{way}: frame.attrs['blogdata.route'] is {route!r}, not in {want}"
        return frame
    route = cast(Route, way.removeprefix("stream-"))  # WAYS: "stream-" and a route
    chunks = [
        c
        async for c in stream_frames(db, stmt, chunk_size=chunk_size,
                                     dtype_backend=cast(DtypeBackend, backend), route=route)
    ]  # fmt: skip
    want = ROUTES if route == "auto" else (route,)
    for i, chunk in enumerate(chunks):
        assert chunk.attrs.get("blogdata.route") in want, (
            f"{way}: chunk {i} route {chunk.attrs.get('blogdata.route')!r} not in {want}"
        )
        assert 0 < len(chunk) <= chunk_size, f"{way}: chunk {i} has {len(chunk)} rows"
        assert list(chunk.dtypes) == list(chunks[0].dtypes), (
            f"{way}: chunk {i} dtypes {list(chunk.dtypes)} != chunk 0's {list(chunks[0].dtypes)}"
        )
    if not chunks:
        return pd.DataFrame()  # compared with the oracle's labels below
    return concat_chunks(chunks)


async def check_way(
    db: Any,
    stmt: Any,
    types: Sequence[str],
    backend: str,
    way: str,
    *,
    chunk_size: int = 3,
    setup: Callable[[Any], Awaitable[None]] | None = None,
) -> str:
    """Check one way of reading ``stmt`` against the oracle run on the same session just before.

    ``setup`` (session settings, temporary objects) has been applied by the caller; when the
    oracle raises, the transaction is rolled back and ``setup`` applied again before the load,
    so the loader is not handed an aborted transaction.

    Returns ``"equal"``, ``"raised"`` (both the oracle and the loader raised) or
    ``"unavailable"`` (forced copy said why it cannot serve this statement).
    """
    expected = await oracle(db, stmt, types, backend)
    if expected.error is not None:
        await db.rollback()
        if setup is not None:
            await setup(db)
    try:
        got = await load(db, stmt, backend, way, chunk_size)
    except RouteUnavailableError as exc:
        assert way in ("binary", "copy", "stream-binary", "stream-copy"), (
            f"{way} must never be unavailable, but raised RouteUnavailableError: {exc}"
        )
        assert str(exc), f"{way}: RouteUnavailableError without a reason"
        return "unavailable"
    except QueryError as exc:
        assert expected.error is not None, (
            f"{way} raised QueryError({exc}) but the oracle returned {len(expected.rows)} rows: "
            f"{expected.rows[:3]!r}"
        )
        return "raised"
    except BlogdataError as exc:
        raise AssertionError(
            f"{way} raised {type(exc).__name__}({exc}); the oracle "
            + (f"raised {expected.error!r}" if expected.error else f"gave {expected.rows[:3]!r}")
        ) from exc
    if expected.error is not None:
        raise AssertionError(
            f"the oracle raised {expected.error!r} but {way} returned a frame:\n{got!r:.400}"
        )
    assert expected.frame is not None
    if way.startswith("stream-") and got.shape == (0, 0):
        assert len(expected.frame) == 0, f"{way} yielded no chunk; the oracle has rows"
        return "equal"
    assert_same_frame(got, expected.frame, f"{way}/{backend}")
    return "equal"


# The database the differential tests read: committed objects, shared by every test of the run.
SETUP_SQL = [
    "CREATE TYPE fid_mood AS ENUM ('sad', 'ok', 'happy', 'with,comma', 'quo\"te', 'back\\slash')",
    "CREATE DOMAIN fid_posint AS integer CHECK (VALUE > 0)",
    "CREATE DOMAIN fid_label AS text",
    "CREATE TABLE fid_enum (id int PRIMARY KEY, mood fid_mood, n fid_posint, label fid_label)",
    "INSERT INTO fid_enum VALUES (1, 'sad', 1, 'a'), (2, 'with,comma', 2147483647, ''),"
    " (3, 'quo\"te', NULL, NULL), (4, NULL, 5, 'x,y'), (5, 'back\\slash', 7, E'\\\\N')",
    "CREATE TABLE victim (id int)",
    "INSERT INTO victim VALUES (1)",
    "CREATE SEQUENCE fid_seq",
    "CREATE TABLE fid_num (id int PRIMARY KEY, amount numeric(10, 2))",
    "INSERT INTO fid_num VALUES (1, 12.3), (2, NULL), (3, -99999999.99), (4, 0), (5, 99999999.99)",
    "CREATE TABLE fid_num_nan (id int PRIMARY KEY, amount numeric(10, 2))",
    "INSERT INTO fid_num_nan VALUES (1, 1.5), (2, 'NaN'), (3, NULL)",
    "CREATE TABLE fid_secret (id int, s text)",
    "INSERT INTO fid_secret VALUES (1, 'top secret')",
    "CREATE TABLE fid_rls (id int PRIMARY KEY, owner text, v text)",
    "ALTER TABLE fid_rls ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY fid_own ON fid_rls USING (owner = current_user)",
    "CREATE TABLE fid_sp (v text)",
    "INSERT INTO fid_sp VALUES ('public')",
    "CREATE SCHEMA fid_alt",
    "CREATE TABLE fid_alt.fid_sp (v text)",
    "INSERT INTO fid_alt.fid_sp VALUES ('alt'), ('alt 2')",
]


_RLS_OWNERS = ["{rls}", "{rls}", "someone_else", "{rls}", "nobody"]


async def _populate(engine: Any, no_select: str, rls: str) -> None:
    """Commit the objects of ``SETUP_SQL``, 40 posts (half with NULL views) and the grants."""
    async with AsyncSession(engine) as session:
        user = User(email="f@example.com", username="fid", hashed_password="x")
        session.add(user)
        await session.flush()
        session.add_all(
            Post(title=f"post {i}", content=None if i % 3 else f"body {i}",
                 author_id=user.id, views=None if i % 2 else i)
            for i in range(40)
        )  # fmt: skip
        for sql in SETUP_SQL:
            await session.execute(text(sql))
        for i, owner in enumerate(_RLS_OWNERS):
            await session.execute(
                text("INSERT INTO fid_rls VALUES (:i, :o, :v)"),
                {"i": i, "o": owner.format(rls=rls), "v": f"row {i}"},
            )
        for role in (no_select, rls):
            await session.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
        await session.execute(text(f'GRANT SELECT ON fid_rls TO "{rls}"'))
        await session.commit()


@dataclass
class FidelityDb:
    """The committed database of the differential tests and the roles made for them."""

    url: URL
    engine: AsyncEngine
    no_select_role: str
    rls_role: str
    rls_rows: int


@asynccontextmanager
async def fidelity_database(server_url: URL) -> AsyncIterator[FidelityDb]:
    """A migrated database with posts (NULL views), an enum, a domain, RLS and two roles."""
    suffix = uuid.uuid4().hex[:8]
    no_select, rls = f"fid_nosel_{suffix}", f"fid_rls_{suffix}"
    admin = create_engine(server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        for role in (no_select, rls):
            await conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN'))
    name = f"blogdata_fidelity_{suffix}"
    try:
        url = await create_database(server_url, name)
        await migrate.upgrade(url)
        engine = create_engine(url)
        try:
            await _populate(engine, no_select, rls)
            yield FidelityDb(url, engine, no_select, rls, _RLS_OWNERS.count("{rls}"))
        finally:
            await engine.dispose()
    finally:
        await drop_database(server_url, name)
        async with admin.connect() as conn:
            for role in (no_select, rls):
                await conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        await admin.dispose()


# ---- load_arrow: the Arrow type table, and a table compared with the driver's rows ------------

#: The ways ``load_arrow`` reads: each forced route, and the default.
ARROW_WAYS = ("arrow-binary", "arrow-copy", "arrow-rows", "arrow-auto")


def expected_arrow_column(values: list[Any], declared: str) -> tuple[pa.DataType, list[Any]]:
    """The Arrow type the README's table gives ``declared``, and the driver's values as its cells.

    The cells are what ``to_pylist()`` of a right column gives, after :func:`_arrow_cell`'s
    normalisation (json columns are compared decoded: the cells here are the driver's values).
    """
    if declared in INTS:
        return pa.int64(), values
    if declared in FLOATS:
        return FLOATS[declared][1], values
    if declared == "bool":
        return pa.bool_(), values
    if declared in TEXTS:
        return pa.string(), values
    if declared in ("timestamptz", "timestamp"):
        tz = declared == "timestamptz"
        naive = [None if v is None else (_tz_utc(v) if tz else v) for v in values]
        return pa.timestamp("us", tz="UTC" if tz else None), naive
    if declared == "date":
        return pa.date32(), values
    scaled = _SCALED.fullmatch(declared)
    if scaled:
        if any(v is not None and not v.is_finite() for v in values):
            raise OracleRaises(f"{declared} cannot hold {values!r:.80} in decimal128")
        return pa.decimal128(38, int(scaled.group(2))), values
    if declared == "numeric":  # PostgreSQL's numeric_out text: no exponent, its scale kept
        return pa.string(), [None if v is None else format(v, "f") for v in values]
    if declared in ("json", "jsonb"):
        return pa.string(), values
    if declared == "uuid":
        return pa.uuid(), [None if v is None else uuid.UUID(bytes=v.bytes) for v in values]
    if declared == "bytea":
        return pa.binary(), values
    if declared == "time":
        return pa.time64("us"), values
    if declared == "interval":
        return pa.duration("us"), values
    return pa.string(), [None if v is None else str(v) for v in values]  # anything else


def _arrow_cell(value: Any, declared: str) -> Any:
    """One loaded cell, normalised as the oracle's: json decoded, timestamptz naive UTC."""
    if value is None:
        return None
    if declared in ("json", "jsonb"):
        return json.loads(value)
    if declared == "timestamptz":
        return _tz_utc(value)
    return value


def assert_same_table(
    got: pa.Table, rows: Sequence[Sequence[Any]], labels: Sequence[str], types: Sequence[str],
    what: str = "",
) -> None:  # fmt: skip
    """Assert ``got`` holds the driver's ``rows``: labels, order, Arrow types, every cell."""
    assert isinstance(got, pa.Table), f"{what}: got {type(got).__name__}, not a pyarrow.Table"
    assert got.column_names == list(labels), f"{what}: labels {got.column_names} != {labels}"
    assert got.num_rows == len(rows), f"{what}: {got.num_rows} rows, the oracle has {len(rows)}"
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in labels]
    problems = []
    for i, (values, declared) in enumerate(zip(columns, types, strict=True)):
        label = f"column {i} {labels[i]!r} ({declared})"
        arrow_type, cells = expected_arrow_column(list(values), declared)
        if got.schema.field(i).type != arrow_type:
            problems.append(f"{label}: type {got.schema.field(i).type} != {arrow_type}")
            continue
        loaded = [canonical(_arrow_cell(v, declared)) for v in got.column(i).to_pylist()]
        wanted = [canonical(v) for v in cells]
        bad = [(r, a, b) for r, (a, b) in enumerate(zip(loaded, wanted, strict=True)) if a != b]
        if bad:
            problems.append(f"{label}: cells (row, got, oracle) {bad[:4]!r:.600}")
    assert not problems, f"{what}: " + "\n".join(problems)


async def check_arrow(
    db: Any, stmt: Any, types: Sequence[str], way: str, *,
    setup: Callable[[Any], Awaitable[None]] | None = None,
) -> str:  # fmt: skip
    """Check ``load_arrow`` (one of ``ARROW_WAYS``) against the driver on the same session.

    Returns ``"equal"``, ``"raised"`` (the driver raised, or a decimal128 column cannot hold
    a value, and load_arrow raised ``QueryError``) or ``"unavailable"`` (a forced COPY said why).
    """
    route = cast(Route, way.removeprefix("arrow-"))
    try:
        result = await db.execute(stmt)
        labels, rows = list(result.keys()), [tuple(r) for r in result.all()]
        error: BaseException | None = None
    except Exception as exc:  # the driver's answer is an error: load_arrow must raise too
        error, labels, rows = exc, [], []
        await db.rollback()
        if setup is not None:
            await setup(db)
    if error is None:
        try:
            columns = list(zip(*rows, strict=True)) if rows else [() for _ in types]
            for values, declared in zip(columns, types, strict=True):
                expected_arrow_column(list(values), declared)
        except OracleRaises as exc:
            error = exc
    try:
        got = await load_arrow(db, stmt, route=route)
    except RouteUnavailableError as exc:
        assert route in ("binary", "copy"), f"{way} must never be unavailable: {exc}"
        return "unavailable"
    except QueryError as exc:
        assert error is not None, f"{way} raised QueryError({exc}); the driver gave {rows[:3]!r}"
        return "raised"
    assert error is None, f"the oracle raised {error!r} but {way} returned {got!r:.300}"
    taken = (got.schema.metadata or {}).get(b"blogdata.route", b"").decode()
    want = ROUTES if route == "auto" else (route,)
    assert taken in want, f"{way}: schema metadata route {taken!r} not in {want}"
    assert_same_table(got, rows, labels, types, way)
    return "equal"
