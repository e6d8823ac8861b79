"""Outgrow one machine on Dask: partitioned reads of any statement, all in one snapshot.

``dask.dataframe.read_sql_query`` splits a query into ranges, but each partition reads on its
own connection at its own moment: under concurrent writes the partitions come from different
points in time, and rows are lost or counted twice without a word. PostgreSQL can do better:
a transaction can export its snapshot (``pg_export_snapshot()``) and any other transaction on
the same server can adopt it (``SET TRANSACTION SNAPSHOT``), on a primary and on a hot standby.

:func:`dask_frame` builds a ``dask.dataframe.DataFrame`` whose partitions each read one slice
of ``stmt`` on a connection of their own, opened by the worker that runs the partition, all in
the snapshot the caller's session exported::

    async with session_scope(isolation_level="REPEATABLE READ") as session:
        posts = await dask_frame(session, select(Post), partitions=4, on=Post.id)
        per_author = posts.groupby("author_id").size().compute()   # inside the transaction

- **Slices** are ranges of ``on`` cut where the data in the snapshot puts them
  (``percentile_disc`` bounds, so partitions are about even), or hash buckets
  (``mod(hashtext(on::text), N)``) where ``on`` has no ordering (``split="hash"`` forces them).
  NULLs of ``on`` go to the first partition.
- **Exact:** each partition is read with :func:`blogdata.loaders.load_frame`, so it has the
  loaders' dtype contract; ``meta`` comes from the statement's described columns (prepared,
  never run), not from sampling. Every partition is checked against it.
- **Lifetime:** the snapshot lives as long as the caller's transaction. Compute the frame before
  the transaction ends; a partition that starts later fails with :class:`SnapshotError`, never
  with other data. :func:`snapshot_frames` makes that lifetime a block, and on leaving it
  cancels whatever partition is still reading.
- **Refused:** a session that has written in its transaction (other connections cannot see
  those rows, so no partition could), and one with pending ORM changes, which would be flushed.
- **Connections:** every partition opens one connection (SQLAlchemy engine, ``NullPool``) named
  ``blogdata.dask <snapshot> #<n>`` (``application_name``), reads in a ``REPEATABLE READ``
  transaction that is always rolled back (what a statement does on a partition is undone), and
  closes it when the task ends, however it ends.
- **Secrets:** the URL, password included, travels to the workers inside :class:`HiddenUrl`,
  whose ``repr`` hides the password: task names, the dashboard and worker logs show the
  partition as ``<partition n of snapshot ...>``.

Dask and distributed are an optional extra (``pip install 'blogdata[distributed]'``); ``import
blogdata`` never imports this module.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import dask
import dask.dataframe as dd
import pandas as pd
from distributed import default_client
from sqlalchemy import (
    Column,
    Float,
    Integer,
    NullPool,
    Numeric,
    Text,
    and_,
    cast,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement, TextClause

from blogdata._checks import check_count
from blogdata.db.engine import create_engine
from blogdata.errors import InvalidInputError, QueryError, SnapshotError
from blogdata.loaders import DtypeBackend, Statement, load_frame
from blogdata.loaders._guard import Guard, session_driver
from blogdata.loaders._route import plan
from blogdata.loaders._rows import frame_from_records
from blogdata.loaders._statement import as_selectable, compile_statement
from blogdata.translate import sqlstate_of

__all__ = ["HiddenUrl", "Snapshot", "SnapshotError", "dask_frame", "snapshot_frames"]

#: Every partition's connection is named ``blogdata.dask <snapshot> #<n>`` (application_name).
APPLICATION_PREFIX = "blogdata.dask"
Split = Literal["auto", "range", "hash"]
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9A-F]+)?$")
#: "invalid snapshot identifier" / "invalid parameter value": the exporting transaction ended.
_SNAPSHOT_GONE = ("22023", "55000")

# Is there a default btree ordering for the type (or a domain's base type, or an enum)?
_ORDERED_SQL = """
SELECT format_type(:oid, NULL), EXISTS (
  SELECT 1 FROM pg_catalog.pg_type t
  JOIN pg_catalog.pg_opclass c ON c.opcdefault
  JOIN pg_catalog.pg_am a ON a.oid = c.opcmethod AND a.amname = 'btree'
  WHERE t.oid = :oid AND t.typcategory <> 'A' AND (
    c.opcintype = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
    OR (c.opcintype = 'anyenum'::regtype AND t.typtype = 'e')))
"""


class HiddenUrl:
    """A database URL whose ``repr``, ``str`` and Dask token never show its password."""

    __slots__ = ("_url",)

    def __init__(self, url: str | URL) -> None:
        self._url = url if isinstance(url, str) else url.render_as_string(hide_password=False)

    def reveal(self) -> str:
        """Return the URL with its password, for the one place that connects."""
        return self._url

    def __repr__(self) -> str:
        return f"HiddenUrl({make_url(self._url).render_as_string(hide_password=True)!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type[HiddenUrl], tuple[str]]:
        return (HiddenUrl, (self._url,))

    def __dask_tokenize__(self) -> str:
        return "blogdata.HiddenUrl"


@dataclass(frozen=True, repr=False)
class _Partition:
    """What a worker needs to read one partition; its repr names only the snapshot."""

    url: HiddenUrl
    snapshot: str
    number: int
    sql: str  # the slice, with its values as literals
    scales: tuple[int | None, ...]  # Numeric(p, s) table columns, for the pyarrow backend
    names: tuple[str, ...]
    dtypes: tuple[str, ...]
    backend: str

    @property
    def application_name(self) -> str:
        """The name its connection shows in pg_stat_activity."""
        return f"{APPLICATION_PREFIX} {self.snapshot} #{self.number}"

    def __repr__(self) -> str:
        return f"<partition {self.number} of snapshot {self.snapshot}>"

    def __dask_tokenize__(self) -> tuple[str, int, str, str]:
        return (self.snapshot, self.number, self.sql, self.backend)


def _statement(part: _Partition) -> Any:
    """Return the slice as a ``text()`` statement (colons escaped), keeping Numeric scales."""
    columns = [
        Column(f"c{i}", Numeric(38, scale)) if scale is not None else column(f"c{i}")
        for i, scale in enumerate(part.scales)
    ]
    return text(part.sql.replace(":", "\\:")).columns(*columns)


async def _read(part: _Partition) -> pd.DataFrame:
    engine = create_engine(
        part.url.reveal(),
        poolclass=NullPool,
        connect_args={"server_settings": {"application_name": part.application_name}},
    )
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            # Never committed: whatever the statement does on a partition is rolled back.
            transaction = await conn.begin()
            try:
                try:
                    await conn.execute(text(f"SET TRANSACTION SNAPSHOT '{part.snapshot}'"))
                except (QueryError, DBAPIError) as exc:
                    if sqlstate_of(exc) in _SNAPSHOT_GONE or "snapshot" in str(exc):
                        said = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                        raise SnapshotError(
                            f"partition {part.number} cannot read in snapshot {part.snapshot}: "
                            f"{said}. The snapshot lives as long as the transaction that exported "
                            "it: compute the frame before that session's transaction ends, on "
                            "workers that reach the same server"
                        ) from None
                    raise
                await conn.execute(text("SET LOCAL standard_conforming_strings = on"))
                frame = await load_frame(conn, _statement(part), dtype_backend=part.backend)  # type: ignore[arg-type]
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()
    frame.columns = pd.Index(part.names)
    got = tuple(str(d) for d in frame.dtypes)
    if got != part.dtypes:
        raise QueryError(
            f"partition {part.number} has dtypes {got}, not the statement's {part.dtypes}: the "
            "statement does not describe the same columns on the worker's connection"
        )
    return frame


def read_partition(part: _Partition) -> pd.DataFrame:
    """Read one partition on a connection of its own, in the snapshot (runs on a worker)."""
    return asyncio.run(_read(part))


def _on_position(on: object, names: Sequence[str]) -> int:
    name = on if isinstance(on, str) else getattr(on, "key", None) or getattr(on, "name", None)
    positions = [i for i, n in enumerate(names) if n == name]
    if len(positions) != 1:
        found = "is not one of" if not positions else "appears twice among"
        raise InvalidInputError(
            f"on={name!r} {found} the statement's columns {list(names)}; pass the label of "
            "exactly one result column (a name, or the column itself, e.g. Post.id)"
        )
    return positions[0]


@dataclass
class Snapshot:
    """A snapshot exported by the caller's session: frames read inside it on any worker."""

    db: AsyncSession | AsyncConnection
    conn: AsyncConnection
    id: str
    url: HiddenUrl

    @property
    def application_prefix(self) -> str:
        """The start of every partition connection's application_name in this snapshot."""
        return f"{APPLICATION_PREFIX} {self.id} #"

    async def frame(
        self,
        stmt: Statement,
        *,
        partitions: int,
        on: object,
        split: Split = "auto",
        dtype_backend: DtypeBackend = "numpy_nullable",
    ) -> dd.DataFrame:
        """Return ``stmt`` as a Dask frame of ``partitions`` slices of ``on`` (at most), in it.

        Raises:
            InvalidInputError: a bad argument, ``on`` not one result column, or a bound value
                with no literal form (the workers get each slice's SQL as text).
            QueryError: PostgreSQL rejected the statement.
        """
        check_count(partitions, "partitions", minimum=1)
        if split not in ("auto", "range", "hash"):
            raise InvalidInputError(f"split must be 'auto', 'range' or 'hash', not {split!r}")
        guard = Guard(*(await session_driver(self.db)))
        async with guard.savepoint():
            described = await plan(guard, stmt, dtype_backend, "rows")
        meta = frame_from_records([], described.columns, dtype_backend)
        names = [c.name for c in described.columns]
        position = _on_position(on, names)
        compiled = compile_statement(stmt, self.conn.dialect)
        scales = compiled.numeric_scales or (None,) * len(names)
        selectable = as_selectable(stmt)
        if isinstance(selectable, TextClause):
            if len(set(names)) != len(names):
                raise InvalidInputError(
                    f"the text() statement's columns {names} repeat a name; give each an alias"
                )
            selectable = selectable.columns(*[column(n) for n in names])
        sub = selectable.subquery("blogdata_part")
        columns = list(sub.c)
        key = columns[position]
        found = await self.conn.execute(text(_ORDERED_SQL), {"oid": described.oids[position]})
        type_name, ordered = found.one()
        if split == "auto":
            split = "range" if ordered else "hash"
        conditions: list[ColumnElement[bool]] = []
        if split == "range":
            conditions = await self._ranges(key, str(type_name), partitions)
        sqls = self._sqls(columns, conditions) if conditions else None
        if sqls is None:
            sqls = self._sqls(columns, _buckets(key, partitions))
        if sqls is None:
            raise InvalidInputError(
                "dask_frame sends each slice's SQL to the workers as text, and a bound value of "
                "this statement has no literal form that is provably the driver's (a list, a "
                "JSON document, a naive datetime for a timestamptz...); write it as a literal "
                "or bind a plain value"
            )
        dtypes = tuple(str(d) for d in meta.dtypes)
        parts = [
            _Partition(self.url, self.id, n, sql, tuple(scales), tuple(names), dtypes,
                       dtype_backend)
            for n, sql in enumerate(sqls)
        ]  # fmt: skip
        # Dask would convert text columns to its own string dtype: the loaders' dtypes stay.
        with dask.config.set({"dataframe.convert-string": False}):
            frame: dd.DataFrame = dd.from_map(  # type: ignore[no-untyped-call]
                read_partition, parts, meta=meta, label="blogdata-snapshot"
            )
        return frame

    async def _ranges(self, key: Any, type_name: str, partitions: int) -> list[ColumnElement[bool]]:
        """Cut ``key`` where the data puts its quantiles (one scan), as typed literals.

        The bounds come back as their text and are written as ``'text'::type``: whatever they
        are, the ranges they cut cover every value exactly once; they only decide the balance.
        """
        if partitions == 1:
            return [true()]
        fractions = array([literal(i / partitions, Float) for i in range(1, partitions)])
        quantiles = func.percentile_disc(fractions).within_group(key)
        found = (await self.conn.execute(select(cast(quantiles, ARRAY(Text))))).scalar()
        texts: list[str] = []
        for value in found or []:  # ascending in PostgreSQL's order; keep it, drop repeats
            if value is not None and value not in texts:
                texts.append(value)
        bounds: list[Any] = [
            literal_column("'" + t.replace("'", "''") + "'::" + type_name) for t in texts
        ]
        if not bounds:
            return [true()]
        pieces: list[ColumnElement[bool]] = [or_(key < bounds[0], key.is_(None))]
        pieces += [and_(key >= lo, key < hi) for lo, hi in zip(bounds, bounds[1:], strict=False)]
        pieces.append(key >= bounds[-1])
        return pieces

    def _sqls(self, columns: list[Any], conditions: list[ColumnElement[bool]]) -> list[str] | None:
        sqls = []
        for condition in conditions:
            query = compile_statement(select(*columns).where(condition), self.conn.dialect)
            if query.literal_sql is None:
                return None
            sqls.append(query.literal_sql)
        return sqls

    async def compute(self, *collections: Any) -> Any:
        """Compute Dask collections of this snapshot in a thread, cancelling them if cancelled.

        Returns one result per collection (a tuple when given several), like ``dask.compute``.
        With a ``distributed.Client`` the work is submitted to it and, on cancellation or error,
        its futures are cancelled and the partitions still reading on the server are cancelled.
        """
        client = _current_client()
        if client is None:
            results = await asyncio.to_thread(dask.compute, *collections)  # type: ignore[attr-defined]
        else:
            futures = client.compute(list(collections))
            try:
                results = await asyncio.to_thread(client.gather, futures)
            except BaseException:
                client.cancel(futures)
                await self.cancel_reads()
                raise
        return results[0] if len(collections) == 1 else tuple(results)

    async def cancel_reads(self) -> int:
        """Cancel the queries of this snapshot's partitions still running; return how many."""
        async with self.conn.engine.connect() as other:
            result = await other.execute(
                text(
                    "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity "
                    "WHERE starts_with(application_name, :prefix) AND pid <> pg_backend_pid()"
                ),
                {"prefix": self.application_prefix},
            )
            return int(result.scalar() or 0)


def _current_client() -> Any:
    try:
        return default_client()  # type: ignore[no-untyped-call]
    except ValueError:
        return None


def _buckets(key: Any, partitions: int) -> list[ColumnElement[bool]]:
    """Hash buckets of ``key``'s text; NULLs in bucket 0."""
    bucket = func.coalesce(
        func.abs(func.hashtext(cast(key, Text)) % literal(partitions, Integer)), 0
    )
    return [bucket == literal(n, Integer) for n in range(partitions)]


async def export_snapshot(
    db: AsyncSession | AsyncConnection, url: str | URL | None = None
) -> Snapshot:
    """Export the snapshot of ``db``'s transaction, refusing a session that cannot share it.

    Raises:
        SnapshotError: the session has written in its transaction, has pending ORM changes,
            or PostgreSQL refused to export its snapshot.
    """
    if isinstance(db, AsyncSession) and (db.new or db.dirty or db.deleted):
        raise SnapshotError(
            "the session has pending ORM changes: flushed, they would be writes no other "
            "connection can see; commit them first, or read in a session of its own"
        )
    conn, driver = await session_driver(db)
    written = await conn.exec_driver_sql("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
    if written.scalar():
        raise SnapshotError(
            "the session has written in its transaction, and no other connection can see "
            "uncommitted rows, so no partition could; commit first, or read in a new "
            "transaction (session_scope(isolation_level='REPEATABLE READ'))"
        )
    if str(driver.get_settings().standard_conforming_strings) != "on":
        raise SnapshotError(
            "standard_conforming_strings is off on this session; the partitions' SQL needs it "
            "on: SET standard_conforming_strings = on"
        )
    try:
        exported = await conn.exec_driver_sql("SELECT pg_export_snapshot()")
    except (QueryError, DBAPIError) as exc:
        raise SnapshotError(
            f"PostgreSQL refused to export this transaction's snapshot: {exc}; read in a "
            "REPEATABLE READ transaction that has not written"
        ) from None
    snapshot = str(exported.scalar())
    if not _SNAPSHOT_ID.match(snapshot):  # pragma: no cover - PostgreSQL's own format
        raise SnapshotError(f"unexpected snapshot identifier {snapshot!r}")
    target = HiddenUrl(url if url is not None else conn.engine.url)
    return Snapshot(db, conn, snapshot, target)


async def dask_frame(
    db: AsyncSession | AsyncConnection,
    stmt: Statement,
    *,
    partitions: int,
    on: object,
    split: Split = "auto",
    dtype_backend: DtypeBackend = "numpy_nullable",
    url: str | URL | None = None,
) -> dd.DataFrame:
    """Return ``stmt`` as a Dask frame whose partitions read in ``db``'s snapshot, on workers.

    Compute it before ``db``'s transaction ends (the transaction holds the snapshot open).
    ``url`` is where workers connect (default: ``db``'s own engine URL); it must reach the same
    server. See the module docstring for slices, dtypes, connections and secrets.

    Raises:
        SnapshotError: ``db`` has written in its transaction (see :func:`export_snapshot`).
        InvalidInputError: a bad argument, or ``on`` is not one of the result's columns.
        QueryError: PostgreSQL rejected the statement.
    """
    snapshot = await export_snapshot(db, url)
    return await snapshot.frame(
        stmt, partitions=partitions, on=on, split=split, dtype_backend=dtype_backend
    )


@asynccontextmanager
async def snapshot_frames(
    db: AsyncSession | AsyncConnection, url: str | URL | None = None
) -> AsyncIterator[Snapshot]:
    """Export ``db``'s snapshot for the block; on leaving, cancel its partitions still reading.

    ``snapshot.frame(stmt, partitions=..., on=...)`` builds frames in it, and
    ``await snapshot.compute(...)`` computes them without blocking the event loop.
    """
    snapshot = await export_snapshot(db, url)
    try:
        yield snapshot
    finally:
        await snapshot.cancel_reads()
